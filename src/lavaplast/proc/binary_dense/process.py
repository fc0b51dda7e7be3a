"""``BinaryDense``: binary (or ternary) synapses that learn on chip."""

from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import LogConfig
from lava.magma.core.process.variable import Var

from lavaplast.core import check_adam, check_choice, check_faults, check_finite_array, check_int, check_nonnegative
from lavaplast.proc.base import CheckedProcess, check_schedule

QUANTIZERS = ("binary", "ternary")
LEARNING = ("off", "host", "local")
OPTIMIZERS = ("adam", "sgd")


class BinaryDense(CheckedProcess):
    """Dense connections whose effective weights are quantized hidden weights.

    ``a_out = s_in @ q(W_h)^T``, delivered one step later like Lava's
    ``Dense``. With ``batch=None`` the ports have Dense's shapes, ``s_in``
    ``(n_in,)`` and ``a_out`` ``(n_out,)``, so stock Lava processes connect
    directly; with an integer ``batch`` they carry a batch dimension,
    ``(batch, n_in)`` and ``(batch, n_out)``, so one time step serves a
    whole batch. The sum is :func:`lavaplast.core.ternary_matmul` (exact,
    the same bits as the PyTorch twins). ``q`` is ``"binary"`` (sign, with sign(0) = +1) or
    ``"ternary"`` (sign where ``|W_h| > threshold``, else 0).

    Learning (every ``learn_every`` steps, at steps ``learn_offset +
    k * learn_every``) moves the hidden weights by the metaplastic rule of
    :mod:`lavaplast.core` with strength ``meta``, Adam- or SGD-style, the
    moments kept in the process. The gradient with respect to the binary
    weights comes from

    - ``learning="host"``: the ``grad_in`` port, a ``(n_out, n_in)`` gradient
      computed off chip (chip in the loop: not local);
    - ``learning="local"``: the outer product of the ``err_in`` third factor
      (shaped like ``a_out``) and the synapse's own input ``s_in``, averaged
      over the batch: ``grad = err_in^T s_in / batch`` (local; without a
      batch dimension, a batch of one).

    ``grad_in`` and ``err_in`` are read only on learning steps, so their
    senders send only then: learning signals cost no messages in between.
    Learning steps start at ``learn_start``: a pipelined learner has no
    error before its first batch reaches the output.

    ``error_delay`` (local learning) says how many steps after its input the
    error arrives. With 0 (a batch held until its error comes back) the
    gradient uses this step's ``s_in``. In a pipelined learner a new batch
    arrives every step and the error of the batch that arrived ``d`` steps
    ago arrives now: with ``error_delay=d`` the model keeps its last ``d +
    1`` inputs and pairs the error with that batch's (``learn_start >
    error_delay``).

    When the update is applied: in the learning phase of the step whose
    gradient it is, after that step's sums were taken (so they go out, next
    step, with the weights from before it). A pipelined learner
    (``error_delay > 0``) with a ``readout_step`` defers it instead
    (``defer_update``): the gradient taken in the spiking phase of step
    ``t`` is applied in the spiking phase of step ``t + 1``, after that
    step's ``a_out`` went out (step ``t``'s sums) and before its new sums
    are taken, and the gradient of ``readout_step`` itself in that step's
    post-learning management phase, before the weights are written to the
    readout. Every sum therefore uses exactly the weights it would use with
    the learning phase; the process just never asks for that phase, so the
    runtime skips the phase's synchronisation of all processes and the
    update overlaps the other processes' spiking phase. In between, the
    ``hidden_weights`` Var (and the Adam moments) lag by the one pending
    update.

    ``cache_sums`` keeps the synaptic sums of an input that is held for
    several steps (one comparison of the input per step); a pipelined
    graph, whose input changes every step, turns it off.

    ``readout`` is the ``spec`` of a :class:`lavaplast.proc.runtime.SharedArray`
    of shape ``(n_out, n_in)`` into which the model writes the hidden weights
    (bulk read-back; ``Var.get`` is element by element): after every update,
    or, with ``readout_step``, once, at the end of that step (its
    post-learning management phase, which the runtime waits for before the
    run returns). The matrix is then copied once per run instead of once
    per update; the caller runs exactly to ``readout_step`` (it may run in
    several chunks: a deferred update waits in the process between them).

    The ``fixed_pt`` model keeps the hidden weights as ``hidden_bits``-bit
    signed integers with ``frac_bits`` fractional bits (so they saturate at
    ``+-2**(hidden_bits - 1 - frac_bits)``), takes ``f_meta`` from a table with
    one entry per ``2**lut_index_shift`` integer steps, rounds updates
    stochastically (seeded by ``seed``) or to nearest, and supports
    ``optimizer="sgd"`` (Adam's division and square root have no Loihi-like
    integer form here).

    ``faults`` (a dict of :class:`lavaplast.core.DeviceFaults` settings:
    ``ber``, ``frozen``, ``sigma``, ``seed``, ``array``; the kind is the
    quantizer) reads the quantized weights through the device read model:
    every step's sums use one read, drawn afresh at every step (transient)
    or once per chip (frozen). A twin that makes one read per step from the
    same settings sees the same faults.

    ``conductance`` (``(n_out, n_in)``, finite, > 0; device mismatch, see
    :class:`lavaplast.core.mismatch.ChipMismatch`) is each synapse's frozen
    conductance factor: a synapse programmed to ``q(W_h)`` conducts
    ``conductance * q(W_h)`` (times its fault read, with ``faults``), and
    the sums are a plain product ``s_in @ (conductance * q(W_h))^T``, the
    same in both models. Learning still moves the programmed hidden
    weights, from the synapse's own input and error. ``None`` (the
    default): ideal devices, the exact ternary sum above.
    """

    def __init__(
        self,
        *,
        hidden_weights: np.ndarray,
        batch: ty.Optional[int] = None,
        quantizer: str = "binary",
        threshold: float = 0.05,
        learning: str = "off",
        meta: float = 0.0,
        optimizer: str = "adam",
        lr: float = 0.005,
        betas: tuple = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        learn_every: int = 1,
        learn_offset: int = 0,
        learn_start: int = 1,
        error_delay: int = 0,
        cache_sums: bool = True,
        readout: ty.Optional[dict] = None,
        readout_step: ty.Optional[int] = None,
        hidden_bits: int = 16,
        frac_bits: int = 12,
        lut_index_shift: int = 6,
        stochastic_rounding: bool = True,
        seed: int = 0,
        faults: ty.Optional[dict] = None,
        conductance: ty.Optional[np.ndarray] = None,
        name: ty.Optional[str] = None,
        log_config: ty.Optional[LogConfig] = None,
    ) -> None:
        hidden_weights = check_finite_array("BinaryDense: hidden_weights", hidden_weights)
        if hidden_weights.ndim != 2 or 0 in hidden_weights.shape:
            raise ValueError(
                f"BinaryDense: hidden_weights must be a non-empty 2-D array (n_out, n_in), "
                f"got shape {hidden_weights.shape}"
            )
        batch = None if batch is None else check_int("BinaryDense: batch", batch, 1)
        quantizer = check_choice("quantizer", quantizer, QUANTIZERS, "BinaryDense: ")
        threshold = check_nonnegative("BinaryDense: threshold", threshold)
        learning = check_choice("learning mode", learning, LEARNING, "BinaryDense: ")
        optimizer = check_choice("optimizer", optimizer, OPTIMIZERS, "BinaryDense: ")
        rule = check_adam("BinaryDense: ", lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, meta=meta)
        check_schedule("BinaryDense", learn_every, learn_offset)
        learn_start = check_int("BinaryDense: learn_start", learn_start, 1)
        error_delay = check_int("BinaryDense: error_delay", error_delay, 0)
        if error_delay and learning != "local":
            raise ValueError(f"BinaryDense: error_delay applies to learning='local', got learning={learning!r}")
        if learn_start <= error_delay:
            raise ValueError(f"BinaryDense: learn_start must be > error_delay={error_delay} (the first error "
                             f"belongs to the input of step 1), got {learn_start}")
        if readout_step is not None:
            readout_step = check_int("BinaryDense: readout_step", readout_step, 1)
            if readout is None:
                raise ValueError("BinaryDense: readout_step needs a readout array")
        hidden_bits = check_int("BinaryDense: hidden_bits", hidden_bits, 2, 32)
        frac_bits = check_int("BinaryDense: frac_bits", frac_bits, 0, hidden_bits - 1)
        lut_index_shift = check_int("BinaryDense: lut_index_shift", lut_index_shift, 0, hidden_bits - 2)
        seed = check_int("BinaryDense: seed", seed, 0)
        if faults is not None:
            faults = check_faults("BinaryDense: faults", faults, hidden_weights.shape, quantizer)
        if conductance is not None:
            conductance = check_finite_array("BinaryDense: conductance", conductance, hidden_weights.shape)
            if not np.all(conductance > 0):
                raise ValueError(f"BinaryDense: conductance must be > 0 for every synapse, got "
                                 f"{conductance[conductance <= 0][0]!r}")
        # Only with a readout step does the run's last gradient have a phase
        # to be applied in (its post-learning management) before read-back.
        defer_update = error_delay > 0 and readout_step is not None
        if readout is not None and tuple(readout["shape"]) != hidden_weights.shape:
            raise ValueError(
                f"BinaryDense: readout array has shape {tuple(readout['shape'])}, expected {hidden_weights.shape}"
            )
        super().__init__(
            hidden_weights=hidden_weights, batch=batch, quantizer=quantizer, threshold=threshold,
            learning=learning, optimizer=optimizer, **rule, learn_every=learn_every, learn_offset=learn_offset,
            learn_start=learn_start, error_delay=error_delay, cache_sums=bool(cache_sums), readout=readout,
            readout_step=readout_step,
            defer_update=defer_update,
            hidden_bits=hidden_bits, frac_bits=frac_bits, lut_index_shift=lut_index_shift,
            stochastic_rounding=stochastic_rounding, seed=seed, faults=faults, conductance=conductance, name=name,
            log_config=log_config,
        )
        n_out, n_in = hidden_weights.shape
        self.n_in, self.n_out, self.batch = n_in, n_out, batch
        self.defer_update = defer_update
        lead = () if batch is None else (batch,)
        self.s_in = InPort(shape=lead + (n_in,))
        self.a_out = OutPort(shape=lead + (n_out,))
        self.grad_in = InPort(shape=(n_out, n_in))
        self.err_in = InPort(shape=lead + (n_out,))
        self.hidden_weights = Var(shape=(n_out, n_in), init=hidden_weights)
        self.exp_avg = Var(shape=(n_out, n_in), init=0)
        self.exp_avg_sq = Var(shape=(n_out, n_in), init=0)
        self.adam_step = Var(shape=(1,), init=0)
        self.a_buff = Var(shape=lead + (n_out,), init=0)
