"""``LearningBinaryDense``: binary (or ternary) synapses that learn with a rule of :mod:`lavaplast.core.rules`."""

from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import LogConfig
from lava.magma.core.process.variable import Var

from lavaplast.core import check_choice, check_finite_array, check_int, check_nonnegative, get_rule
from lavaplast.core.spiking_learning import FixedPoint, LearnerSchedule
from lavaplast.proc.base import CheckedProcess

QUANTIZERS = ("binary", "ternary")


class LearningBinaryDense(CheckedProcess):
    """Connection ``layer`` (1-based) of a spiking learner (:mod:`lavaplast.core.spiking_learning`).

    Forward: ``a_out = s_in @ q(W_h)^T``, one step of delay, ``q`` the
    quantizer (``sign``, or ``sign`` above ``threshold`` for ternary).
    Learning: the synapses add up their input over each window; on the
    learning step of batch ``k`` they receive ``(post, third)`` on ``sig_in``
    ``(2, batch, n_out)`` and move their hidden weights by ``rule`` (a name
    registered in :mod:`lavaplast.core.rules`, with ``params``) from ``pre``
    = the window's input / ``T``. The rule's state (e.g. Adam moments) starts
    fresh with the process. ``readout`` (a
    :class:`~lavaplast.proc.SharedArray` spec) receives the hidden weights
    after every update.

    Two models: ``floating_pt`` (float64 hidden weights) and ``fixed_pt``
    (``fixed_point``, a :class:`~lavaplast.core.spiking_learning.FixedPoint`:
    hidden weights on a fixed-point grid, every update rounded onto it; the
    rule computes in float from their real values). A process given
    ``fixed_point`` refuses to run the float model.
    """

    def __init__(self, *, hidden_weights: np.ndarray, batch: int, T: int, layer: int, n_layers: int,
                 rule: str = "metaplastic", params: ty.Optional[dict] = None, quantizer: str = "binary",
                 threshold: float = 0.05, n_batches: ty.Optional[int] = None, learning: bool = True,
                 readout: ty.Optional[dict] = None, fixed_point: ty.Optional[FixedPoint] = None,
                 name: ty.Optional[str] = None,
                 log_config: ty.Optional[LogConfig] = None) -> None:
        who = "LearningBinaryDense"
        hidden_weights = check_finite_array(f"{who}: hidden_weights", hidden_weights)
        if hidden_weights.ndim != 2 or 0 in hidden_weights.shape:
            raise ValueError(f"{who}: hidden_weights must be a non-empty 2-D array (n_out, n_in), got shape "
                             f"{hidden_weights.shape}")
        batch = check_int(f"{who}: batch", batch, 1)
        layer, n_layers = check_int(f"{who}: layer", layer, 1), check_int(f"{who}: n_layers", n_layers, 1)
        if layer > n_layers:
            raise ValueError(f"{who}: layer must be in 1..n_layers={n_layers}, got {layer}")
        schedule = LearnerSchedule(T=check_int(f"{who}: T", T, 1), L=n_layers, n_batches=n_batches)
        local_rule = get_rule(rule)
        params = local_rule.check_params(params)
        quantizer = check_choice("quantizer", quantizer, QUANTIZERS, f"{who}: ")
        threshold = check_nonnegative(f"{who}: threshold", threshold)
        if not isinstance(learning, (bool, np.bool_)):
            raise ValueError(f"{who}: learning must be True or False, got {learning!r}")
        if readout is not None and tuple(readout["shape"]) != hidden_weights.shape:
            raise ValueError(f"{who}: readout array has shape {tuple(readout['shape'])}, expected "
                             f"{hidden_weights.shape}")
        if fixed_point is not None and not isinstance(fixed_point, FixedPoint):
            raise ValueError(f"{who}: fixed_point must be a FixedPoint or None, got {type(fixed_point).__name__}")
        super().__init__(rule=local_rule.name, params=dict(params), quantizer=quantizer, threshold=threshold,
                         schedule=schedule, layer=layer, learning=bool(learning), readout=readout,
                         fixed_point=fixed_point, name=name, log_config=log_config)
        n_out, n_in = hidden_weights.shape
        self.s_in = InPort(shape=(batch, n_in))
        self.a_out = OutPort(shape=(batch, n_out))
        self.sig_in = InPort(shape=(2, batch, n_out))
        self.hidden_weights = Var(shape=(n_out, n_in), init=hidden_weights)
        self.a_buff = Var(shape=(batch, n_out), init=0)
