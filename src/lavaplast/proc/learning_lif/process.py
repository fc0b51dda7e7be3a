"""LIF neurons of a spiking learner: ``LearningLIF`` (hidden populations) and ``OutputLIF`` (the output).

Both run Lava's float LIF with ``du = 1``, ``dv = 1 - beta`` and no bias
(:func:`lavaplast.core.spiking_learning.lif_step`), reset their membrane to
0 at the first step of every window, and keep the factors their input
synapses learn from (:mod:`lavaplast.core.spiking_learning`). On the
learning step of batch ``k`` they send ``(post, third)`` on ``sig_out``
``(2, batch, n)``: ``post`` the mean surrogate derivative over the batch's
window, ``third`` the error broadcast to the population.
"""

from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import LogConfig
from lava.magma.core.process.variable import Var

from lavaplast.core import LOSSES, check_choice, check_finite_array, check_int
from lavaplast.core.spiking_learning import LearnerSchedule, check_learner_neuron, lava_decay
from lavaplast.proc.base import CheckedProcess, per_neuron


def _common(who: str, shape, beta, threshold, slope, T, layer, n_layers, n_batches, learning) -> dict:
    shape = tuple(int(s) for s in np.atleast_1d(shape))
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"{who}: shape must be (batch, n) with positive sizes, got {shape}")
    try:
        beta, threshold, slope = check_learner_neuron(beta, threshold, slope)
    except ValueError as err:
        raise ValueError(f"{who}: {err}") from None
    layer = check_int(f"{who}: layer", layer, 1)
    n_layers = check_int(f"{who}: n_layers", n_layers, 1)
    if layer > n_layers:
        raise ValueError(f"{who}: layer must be in 1..n_layers={n_layers}, got {layer}")
    schedule = LearnerSchedule(T=check_int(f"{who}: T", T, 1), L=n_layers, n_batches=n_batches)
    if not isinstance(learning, (bool, np.bool_)):
        raise ValueError(f"{who}: learning must be True or False, got {learning!r}")
    return dict(shape=shape, decay=lava_decay(beta), threshold=threshold, slope=slope, layer=layer,
                schedule=schedule, learning=bool(learning))


class LearningLIF(CheckedProcess):
    """A hidden population ``layer`` (1-based) of a spiking learner with ``n_layers`` connections.

    Ports (``B`` = batch): ``a_in`` ``(B, n)`` synaptic input, ``s_out``
    ``(B, n)`` spikes (0/1), ``fb_in`` ``(B, n_classes)`` the output error
    (learning steps only), ``sig_out`` ``(2, B, n)`` the factors ``(post,
    e @ feedback^T)`` for the connection that feeds it (learning steps
    only). ``feedback`` is the fixed ``(n, n_classes)`` matrix of direct
    feedback alignment. ``v`` holds the membrane.
    """

    def __init__(self, *, shape: tuple, feedback: np.ndarray, beta: float = 0.9, threshold: float = 1.0,
                 slope: float = 1.0, T: int, layer: int, n_layers: int, n_batches: ty.Optional[int] = None,
                 learning: bool = True, name: ty.Optional[str] = None,
                 log_config: ty.Optional[LogConfig] = None) -> None:
        p = _common("LearningLIF", shape, beta, threshold, slope, T, layer, n_layers, n_batches, learning)
        B, n = p["shape"]
        feedback = check_finite_array("LearningLIF: feedback", feedback)
        if feedback.ndim != 2 or feedback.shape[0] != n or feedback.shape[1] < 1:
            raise ValueError(f"LearningLIF: feedback must have shape ({n}, n_classes), got {feedback.shape}")
        super().__init__(feedback=feedback, name=name, log_config=log_config, **p)
        self.a_in = InPort(shape=(B, n))
        self.s_out = OutPort(shape=(B, n))
        self.fb_in = InPort(shape=(B, feedback.shape[1]))
        self.sig_out = OutPort(shape=(2, B, n))
        self.v = Var(shape=(B, n), init=0.0)


class OutputLIF(CheckedProcess):
    """The output population (the last, ``layer = n_layers``) of a spiking learner.

    Ports: ``a_in``, ``s_out`` as :class:`LearningLIF`; ``count_out`` ``(B,
    n)`` the spikes of the current window so far, every step (a sink that
    reads it at a learning step reads the batch's spike counts);
    ``target_in`` ``(B, n)`` the one-hot targets and ``err_out`` ``(B, n)``
    the error ``output_error(gain * counts + bias, target, loss)``, sent to
    the hidden populations, and ``sig_out`` ``(2, B, n)`` ``(post, error)``
    for the connection that feeds it (learning steps only).
    """

    def __init__(self, *, shape: tuple, beta: float = 0.9, threshold: float = 1.0, slope: float = 1.0,
                 gain=1.0, bias=0.0, loss: str = "ce", T: int, n_layers: int, n_batches: ty.Optional[int] = None,
                 learning: bool = True, name: ty.Optional[str] = None,
                 log_config: ty.Optional[LogConfig] = None) -> None:
        p = _common("OutputLIF", shape, beta, threshold, slope, T, n_layers, n_layers, n_batches, learning)
        B, n = p["shape"]
        super().__init__(gain=per_neuron("OutputLIF: gain", gain, n), bias=per_neuron("OutputLIF: bias", bias, n),
                         loss=check_choice("loss", loss, LOSSES, "OutputLIF: "), name=name, log_config=log_config, **p)
        self.a_in = InPort(shape=(B, n))
        self.s_out = OutPort(shape=(B, n))
        self.count_out = OutPort(shape=(B, n))
        self.target_in = InPort(shape=(B, n))
        self.err_out = OutPort(shape=(B, n))
        self.sig_out = OutPort(shape=(2, B, n))
        self.v = Var(shape=(B, n), init=0.0)
