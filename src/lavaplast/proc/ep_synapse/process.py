"""``EPSynapse``: one weight matrix serving both directions, learning locally."""

from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import LogConfig
from lava.magma.core.process.variable import Var

from lavaplast.core import binarize, check_adam, check_beta, check_finite_array, check_int, check_positive, ep_window
from lavaplast.proc.base import CheckedProcess


class EPSynapse(CheckedProcess):
    """Tied synapses between a layer below (``n_pre``) and a layer above (``n_post``).

    One matrix ``weights`` ``(n_post, n_pre)`` serves ``W`` and ``W^T``: the
    synapse reconstructs both layers' states from their sigma-delta events
    (``pre_in``, ``post_in``, ``(batch, n)``) and sends ``W pre`` up on
    ``up_out`` and ``W^T post`` down on ``down_out``, one step later (so a
    recurrent graph cannot deadlock); it recomputes a side only when events
    arrived. With ``input_layer=True`` the layer below is the data source,
    whose batch arrives once, at the load step of each window.

    Learning is synapse-local: at the ends of the nudged phases it keeps its
    own reconstructions of pre and post, and after the window's last step
    moves ``weights`` by ``lr`` times their contrast
    (:func:`lavaplast.core.ep_weight_contrast`). ``readout``: a
    :class:`~lavaplast.proc.runtime.SharedArray` spec, updated after learning.

    Binary synapses: with ``hidden_weights``, the synapse computes with
    ``gain * sign(hidden_weights)`` and the contrast drives the hidden weights
    through the metaplastic Adam rule of :mod:`lavaplast.core` (learning
    rate ``lr``, strength ``meta``; moments kept in the process); the
    read-back then holds the hidden weights.

    Device mismatch: ``conductance`` ``(n_post, n_pre)``, positive, is each
    device's conductance factor. ``weights`` (and the hidden weights) stay
    the *programmed* values, which learning changes and the read-back
    returns; the synapse computes with ``conductance * weights`` in both
    directions. ``None`` (the default): ideal devices.
    """

    def __init__(
        self,
        *,
        weights: np.ndarray,
        batch: int,
        T1: int = 30,
        T2: int = 10,
        beta: float = 0.5,
        nudging: str = "symmetric",
        lr: float = 0.0,
        input_layer: bool = False,
        hidden_weights: ty.Optional[np.ndarray] = None,
        gain: float = 1.0,
        meta: float = 0.0,
        readout: ty.Optional[dict] = None,
        conductance: ty.Optional[np.ndarray] = None,
        name: ty.Optional[str] = None,
        log_config: ty.Optional[LogConfig] = None,
    ) -> None:
        weights = check_finite_array("EPSynapse: weights", weights)
        if weights.ndim != 2 or 0 in weights.shape:
            raise ValueError(f"EPSynapse: weights must be a non-empty 2-D array (n_post, n_pre), got {weights.shape}")
        batch = check_int("EPSynapse: batch", batch, 1)
        window = ep_window(T1, T2, nudging)
        beta = check_beta(beta, "EPSynapse: beta")
        # The SGD rate of real weights, or the metaplastic Adam rate of hidden ones: one check for both.
        rule = check_adam("EPSynapse: ", lr=lr, meta=meta)
        lr, meta = rule["lr"], rule["meta"]
        gain = check_positive("EPSynapse: gain", gain)
        if hidden_weights is not None:
            hidden_weights = check_finite_array("EPSynapse: hidden_weights", hidden_weights)
            if hidden_weights.shape != weights.shape:
                raise ValueError(f"EPSynapse: hidden_weights must have the shape of weights {weights.shape}, "
                                 f"got {hidden_weights.shape}")
            weights = binarize(hidden_weights) * gain
        if conductance is not None:
            conductance = check_finite_array("EPSynapse: conductance", conductance, weights.shape)
            if not np.all(conductance > 0):
                raise ValueError(f"EPSynapse: conductance must be > 0 for every synapse, got "
                                 f"{conductance[conductance <= 0][0]!r}")
        if readout is not None and tuple(readout["shape"]) != weights.shape:
            raise ValueError(f"EPSynapse: readout must have shape {weights.shape}, got {tuple(readout['shape'])}")
        super().__init__(weights=weights, batch=batch, T1=T1, T2=T2, beta=beta, nudging=nudging, lr=lr,
                         input_layer=bool(input_layer), window=window, readout=readout,
                         hidden_weights=hidden_weights, gain=gain, meta=meta, conductance=conductance, name=name,
                         log_config=log_config)
        n_post, n_pre = weights.shape
        self.pre_in = InPort(shape=(batch, n_pre))
        self.post_in = InPort(shape=(batch, n_post))
        self.up_out = OutPort(shape=(batch, n_post))
        self.down_out = OutPort(shape=(batch, n_pre))
        self.weights = Var(shape=weights.shape, init=weights)
