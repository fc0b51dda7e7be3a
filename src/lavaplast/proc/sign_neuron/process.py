"""``SignNeuron``: binary neurons whose threshold and gain absorb BatchNorm."""

from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import LogConfig
from lava.magma.core.process.variable import Var

from lavaplast.core import check_choice, check_finite_array, check_int, fold_batchnorm
from lavaplast.proc.base import CheckedProcess, check_schedule, per_neuron

__all__ = ["MODES", "SignNeuron", "fold_batchnorm"]

MODES = ("sign", "binary", "identity")


class SignNeuron(CheckedProcess):
    """Memoryless binary neurons: ``y = gain * a_in + bias``, then

    - ``mode="sign"``: ``s_out = +1 if y >= 0 else -1``;
    - ``mode="binary"``: ``s_out = 1 if y >= 0 else 0``;
    - ``mode="identity"``: ``s_out = y`` (a graded read-out, e.g. logits).

    ``gain`` and ``bias`` are per neuron, so a trained BatchNorm folds in
    exactly: ``gain = gamma / sqrt(var + eps)``, ``bias = beta - mean * gain``
    (:func:`fold_batchnorm`). Ports carry a batch dimension: ``(batch, n)``.
    The output is sent in the step the input arrives (no delay).

    With ``feedback`` (a fixed ``(n, n_classes)`` matrix), the neuron also
    takes part in learning by direct feedback alignment: it receives the
    broadcast output error on ``fb_in`` ``(batch, n_classes)`` and sends its
    local error ``(fb_in @ feedback^T) * 1[|y| <= 1]`` on ``err_out``, the
    third factor of its input synapses, on learning steps only
    (``learn_offset + k * learn_every`` from step ``learn_start`` on, the
    schedule of those synapses).

    ``error_delay`` says how many steps after its input the error arrives.
    With 0 (a batch held until its error comes back) the gate uses this
    step's ``y``. In a pipelined learner a new batch arrives every step and
    the error of the batch this population heard ``d`` steps ago arrives
    now: with ``error_delay=d`` the neuron keeps its last ``d + 1``
    pre-activations and gates the error with the one of that batch.
    Learning cannot start before the first such batch: ``learn_start >
    error_delay``.
    """

    def __init__(
        self,
        *,
        shape: tuple,
        gain=1.0,
        bias=0.0,
        mode: str = "sign",
        feedback: ty.Optional[np.ndarray] = None,
        learn_every: int = 1,
        learn_offset: int = 0,
        learn_start: int = 1,
        error_delay: int = 0,
        name: ty.Optional[str] = None,
        log_config: ty.Optional[LogConfig] = None,
    ) -> None:
        shape = tuple(int(s) for s in np.atleast_1d(shape))
        if len(shape) == 1:
            shape = (1, shape[0])
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"SignNeuron: shape must be (n,) or (batch, n) with positive sizes, got {shape}")
        mode = check_choice("mode", mode, MODES, "SignNeuron: ")
        n = shape[1]
        gain = per_neuron("SignNeuron: gain", gain, n)
        bias = per_neuron("SignNeuron: bias", bias, n)
        if feedback is not None:
            feedback = check_finite_array("SignNeuron: feedback", feedback)
            if feedback.ndim != 2 or feedback.shape[0] != n or feedback.shape[1] < 1:
                raise ValueError(f"SignNeuron: feedback must have shape ({n}, n_classes), got {feedback.shape}")
        check_schedule("SignNeuron", learn_every, learn_offset)
        learn_start = check_int("SignNeuron: learn_start", learn_start, 1)
        error_delay = check_int("SignNeuron: error_delay", error_delay, 0)
        if learn_start <= error_delay:
            raise ValueError(f"SignNeuron: learn_start must be > error_delay={error_delay} (the first error "
                             f"belongs to the input of step 1), got {learn_start}")
        n_fb = 1 if feedback is None else feedback.shape[1]
        super().__init__(shape=shape, mode=mode, feedback=feedback, learn_every=learn_every,
                         learn_offset=learn_offset, learn_start=learn_start, error_delay=error_delay, name=name,
                         log_config=log_config)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.fb_in = InPort(shape=(shape[0], n_fb))
        self.err_out = OutPort(shape=shape)
        self.gain = Var(shape=(n,), init=gain)
        self.bias = Var(shape=(n,), init=bias)
