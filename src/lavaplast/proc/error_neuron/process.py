"""``ErrorNeuron``: the output population that compares output and target."""

from __future__ import annotations

import typing as ty

from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import LogConfig
from lava.magma.core.process.variable import Var

from lavaplast.core import LOSSES, check_choice, check_int
from lavaplast.proc.base import CheckedProcess, check_schedule, per_neuron


class ErrorNeuron(CheckedProcess):
    """Output neurons ``logits = gain * a_in + bias`` and their error.

    Receives the last layer's synaptic input on ``a_in`` and the one-hot
    target on ``target_in`` (both ``(batch, n_classes)``); sends the logits
    on ``s_out`` and the error ``dLoss/dlogits`` on ``err_out`` (the
    broadcast third factor of learning): ``softmax(logits) - target`` for
    ``loss="ce"``, ``logits - target`` for ``loss="mse"``. Target and
    error travel only on learning steps: steps ``learn_offset + k *
    learn_every`` from step ``learn_start`` on (a pipelined learner starts
    once its first batch has reached this population).
    """

    def __init__(
        self,
        *,
        shape: tuple,
        gain=1.0,
        bias=0.0,
        loss: str = "ce",
        learn_every: int = 1,
        learn_offset: int = 0,
        learn_start: int = 1,
        name: ty.Optional[str] = None,
        log_config: ty.Optional[LogConfig] = None,
    ) -> None:
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"ErrorNeuron: shape must be (batch, n_classes) with positive sizes, got {shape}")
        loss = check_choice("loss", loss, LOSSES, "ErrorNeuron: ")
        n = shape[1]
        gain = per_neuron("ErrorNeuron: gain", gain, n)
        bias = per_neuron("ErrorNeuron: bias", bias, n)
        check_schedule("ErrorNeuron", learn_every, learn_offset)
        learn_start = check_int("ErrorNeuron: learn_start", learn_start, 1)
        super().__init__(shape=shape, loss=loss, learn_every=learn_every, learn_offset=learn_offset,
                         learn_start=learn_start, name=name, log_config=log_config)
        self.a_in = InPort(shape=shape)
        self.target_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.err_out = OutPort(shape=shape)
        self.gain = Var(shape=(n,), init=gain)
        self.bias = Var(shape=(n,), init=bias)
