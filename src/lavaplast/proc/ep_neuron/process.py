"""``EPNeuron``: a layer of equilibrium-propagation neurons that talk in events."""

from __future__ import annotations

import typing as ty

import numpy as np

from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import LogConfig
from lava.magma.core.process.variable import Var

from lavaplast.core import ACTIVATIONS, check_beta, check_choice, check_nonnegative, ep_window
from lavaplast.proc.base import CheckedProcess, per_neuron


class EPNeuron(CheckedProcess):
    """Neurons with a state in [0, 1], ``s <- sigma(a_in + bias [+ nudge])``.

    ``activation`` names ``sigma`` in :data:`lavaplast.core.ACTIVATIONS`:
    ``"hard"`` (``clip(., 0, 1)``) or ``"logistic"``.

    ``a_in`` ``(batch, n)`` sums the synapses below (``W s_below``) and above
    (``W^T s_above``). The state leaves the neuron only as sigma-delta events
    on ``s_out``: the change since the last value sent, where it exceeds
    ``threshold`` (:func:`lavaplast.core.sigma_delta_encode`).

    Every batch runs the schedule of :func:`lavaplast.core.ep_phase`: load,
    ``T1`` free steps, ``T2`` steps nudged by ``+beta`` and, for symmetric
    nudging, a restore step and ``T2`` steps nudged by ``-beta``. An output
    layer (``output=True``) takes the one-hot target on ``target_in`` at the
    load step and adds ``beta * (target - s)`` while nudged. With ``lr > 0``
    the biases learn from the contrast of the phase ends. ``events`` counts
    the non-zero entries sent.

    Device mismatch: ``gain`` (positive) and ``offset``, scalars or ``(n,)``
    per neuron, make the neuron respond ``sigma(gain * drive + offset)``, the
    nudge included in the drive (:func:`lavaplast.core.mismatch.neuron_response`).
    Both ``None`` (the default): the ideal neuron.
    """

    def __init__(
        self,
        *,
        shape: tuple,
        bias=0.0,
        T1: int = 30,
        T2: int = 10,
        beta: float = 0.5,
        nudging: str = "symmetric",
        threshold: float = 0.0,
        output: bool = False,
        lr: float = 0.0,
        activation: str = "hard",
        readout: ty.Optional[dict] = None,
        gain=None,
        offset=None,
        name: ty.Optional[str] = None,
        log_config: ty.Optional[LogConfig] = None,
    ) -> None:
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"EPNeuron: shape must be (batch, n) with positive sizes, got {shape}")
        window = ep_window(T1, T2, nudging)
        beta = check_beta(beta, "EPNeuron: beta")
        threshold = check_nonnegative("EPNeuron: threshold", threshold)
        lr = check_nonnegative("EPNeuron: lr", lr)
        activation = check_choice("activation", activation, tuple(ACTIVATIONS), "EPNeuron: ")
        bias = per_neuron("EPNeuron: bias", bias, shape[1])
        if gain is not None:
            gain = per_neuron("EPNeuron: gain", gain, shape[1])
            if not np.all(gain > 0):
                raise ValueError(f"EPNeuron: gain must be > 0 for every neuron, got {gain[gain <= 0][0]!r}")
        if offset is not None:
            offset = per_neuron("EPNeuron: offset", offset, shape[1])
        if readout is not None and tuple(readout["shape"]) != (shape[1],):
            raise ValueError(f"EPNeuron: readout must have shape ({shape[1]},), got {tuple(readout['shape'])}")
        super().__init__(shape=shape, T1=T1, T2=T2, beta=beta, nudging=nudging, threshold=threshold,
                         output=bool(output), lr=lr, activation=activation, window=window, readout=readout,
                         gain=gain, offset=offset, name=name,
                         log_config=log_config)
        self.a_in = InPort(shape=shape)
        self.target_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.s = Var(shape=shape, init=0)
        self.bias = Var(shape=(shape[1],), init=bias)
        self.events = Var(shape=(1,), init=0)
