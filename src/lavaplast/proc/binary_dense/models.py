"""ProcessModels of ``BinaryDense``: floating_pt and fixed_pt.

The dynamics and the learning rule come from :mod:`lavaplast.core`, the
same functions the PyTorch reference calls; these models only wire them to
ports. No torch here: models run in forked children.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lavaplast.core import (
    DeviceFaults,
    binarize,
    f_meta_lut,
    from_fixed,
    local_gradient,
    metaplastic_adam_step_,
    metaplastic_sgd_step_,
    metaplastic_update_fixed_,
    read_sums,
    ternarize,
    to_fixed,
)
from lavaplast.proc.base import is_learning_step, single_threaded_blas
from lavaplast.proc.binary_dense.process import BinaryDense
from lavaplast.proc.runtime import SharedArray


class AbstractBinaryDenseModel(PyLoihiProcessModel):
    """Ports, state and forward pass shared by both models (undecorated:
    Lava's tags add up over inheritance, so each model derives from this)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    grad_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    err_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    hidden_weights: np.ndarray = LavaPyType(np.ndarray, float)
    exp_avg: np.ndarray = LavaPyType(np.ndarray, float)
    exp_avg_sq: np.ndarray = LavaPyType(np.ndarray, float)
    adam_step: np.ndarray = LavaPyType(np.ndarray, int)
    a_buff: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        single_threaded_blas()
        p = proc_params
        self.quantizer = p["quantizer"]
        self.threshold = p["threshold"]
        self.learning = p["learning"]
        self.optimizer = p["optimizer"]
        self.hyper = dict(lr=p["lr"], meta=p["meta"], weight_decay=p["weight_decay"])
        self.adam = dict(betas=p["betas"], eps=p["eps"])
        self.learn_every = p["learn_every"]
        self.learn_offset = p["learn_offset"]
        self.learn_start = p["learn_start"]
        faults = p["faults"]
        self._faults = None
        if faults is not None:
            self._faults = DeviceFaults(tuple(p["hidden_weights"].shape), kind=self.quantizer, **faults)
        # Device mismatch: each synapse's frozen conductance factor (None: ideal devices).
        self._conductance = None if p["conductance"] is None else np.array(p["conductance"], dtype=np.float64)
        self._conducted = None  # conductance * q(W_h), refreshed with the quantized weights
        # A transient fault is a new read each step: its sums cannot be reused.
        self.cache_sums = p["cache_sums"] and (self._faults is None or self._faults.frozen)
        self.readout_step = p["readout_step"]
        self.defer_update = p["defer_update"]
        # A gradient taken in this step's spiking phase whose update waits
        # for the next spiking phase (or for the readout step's management).
        self._pending = False
        self._readout = SharedArray.attach(p["readout"]) if p["readout"] is not None else None
        self._started = False
        self._weights = None
        # The input the cached synaptic sums were computed from: a batch held
        # for several steps (the learning window) is summed once.
        self._summed_input = None
        self._sums = None
        # Inputs of the last error_delay + 1 steps; the oldest is that of the
        # batch whose error arrives now (None: no delay, nothing kept).
        delay = p["error_delay"]
        self._past = deque(maxlen=delay + 1) if delay else None
        self._grad = None
        self._work = None

    def _quantize(self) -> None:
        """Refresh the effective weights from the hidden weights (invalidates the cached sums)."""
        if self.quantizer == "binary":
            # Into one buffer: this runs after every update. The sums taken
            # from the old weights are already computed (a_buff).
            if self._weights is None:
                self._weights = np.empty_like(self.hidden_weights)
            binarize(self.hidden_weights, out=self._weights)
        else:
            self._weights = ternarize(self.hidden_weights, self.threshold)
        if self._conductance is not None:
            self._conducted = self._conductance * self._weights
        self._summed_input = None

    def _read_sums(self, x) -> np.ndarray:
        """This step's synaptic sums of ``x``: one read of the quantized weights (through the faults, if
        any), times each synapse's conductance factor, if any."""
        if self._conductance is None:
            return read_sums(x, self._weights, self._faults)
        # Real conductances: the exact ternary sum does not apply; a plain product, computed as the twin does.
        if self._faults is None or not self._faults.active:
            conducted = self._conducted
        else:
            conducted = self._conductance * self._faults.read(self._weights)
        return np.asarray(x, dtype=np.float64) @ conducted.T

    def run_spk(self) -> None:
        if not self._started:  # Vars are set after __init__
            self._started = True
            self._quantize()
            self._publish()
        # Like Dense: send what was accumulated last step, so recurrent
        # graphs cannot deadlock.
        self.a_out.send(self.a_buff)
        if self._pending:
            # Last step's update, deferred to here (see BinaryDense's
            # defer_update): the sums below use it, as they would after a
            # learning phase of last step, and meanwhile the other
            # processes already work on what was just sent.
            self._apply_update()
        x = self.s_in.recv()
        if not self.cache_sums:
            self._sums = self._read_sums(x)
        elif self._summed_input is None or not np.array_equal(x, self._summed_input):
            self._sums = self._read_sums(x)
            self._summed_input = x
        self.a_buff = self._sums
        if self._past is not None:
            self._past.append(x)  # recv returns a new array every step
        if not self.learning_step():
            return
        if self.learning == "host":
            self._grad = self.grad_in.recv()
        else:
            # Ports without a batch dimension carry a batch of one.
            err = self.err_in.recv()
            pre = x if self._past is None else self._past[0]
            self._grad = local_gradient(err.reshape(-1, err.shape[-1]), pre.reshape(-1, pre.shape[-1]))
        self._pending = self.defer_update

    def learning_step(self) -> bool:
        """Whether this step takes a gradient (and its senders send a learning signal)."""
        return (self.learning != "off" and self.time_step >= self.learn_start
                and is_learning_step(self.time_step, self.learn_every, self.learn_offset))

    def lrn_guard(self) -> bool:
        # A deferred update needs no learning phase: with no process asking
        # for one, the runtime skips the phase and its synchronisation.
        return self.learning_step() and not self.defer_update

    def post_guard(self) -> bool:
        # With readout_step the weights are written once, at the end of that
        # step; the runtime waits for this phase before the run returns.
        return self.readout_step is not None and self.time_step == self.readout_step

    def run_post_mgmt(self) -> None:
        if self._pending:
            # The readout step's own gradient: no later spiking phase of this
            # run would apply it, and the read-back must include it.
            self._apply_update()
        self._publish()

    def run_lrn(self) -> None:
        self._apply_update()

    def _apply_update(self) -> None:
        """Move the hidden weights by the stored gradient, then refresh the effective weights."""
        self._pending = False
        self._update_hidden()
        self._quantize()
        if self.readout_step is None:
            self._publish()

    def _update_hidden(self) -> None:
        """One step of the learning rule on ``hidden_weights`` with ``self._grad`` (per model)."""
        raise NotImplementedError

    def _publish(self) -> None:
        if self._readout is not None:
            self._readout[1][...] = self.hidden_weights


@implements(proc=BinaryDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyBinaryDenseModelFloat(AbstractBinaryDenseModel):
    """Float model: hidden weights and Adam moments in float64."""

    def _update_hidden(self) -> None:
        if self.optimizer == "adam":
            if self._work is None:
                self._work = tuple(np.empty_like(self.hidden_weights) for _ in range(3))
            self.adam_step[0] = metaplastic_adam_step_(
                self.hidden_weights, self._grad, self.exp_avg, self.exp_avg_sq, int(self.adam_step[0]),
                **self.hyper, **self.adam, work=self._work,
            )
        else:
            metaplastic_sgd_step_(self.hidden_weights, self._grad, **self.hyper)


@implements(proc=BinaryDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyBinaryDenseModelFixed(AbstractBinaryDenseModel):
    """Fixed-point learning state: integer hidden weights, f_meta from a table.

    The forward pass is the float model's (binary weights make it exact);
    the hidden weights live as ``hidden_bits``-bit integers with
    ``frac_bits`` fractional bits and every update is scaled, attenuated
    by the lookup table, rounded and saturated in that format. The
    ``hidden_weights`` Var and the read-back hold their real values.
    """

    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        if self.learning != "off" and self.optimizer != "sgd":
            raise ValueError(
                f"the fixed_pt BinaryDense model supports optimizer='sgd' only, got {self.optimizer!r}; "
                "use the floating_pt model for Adam"
            )
        self.bits, self.frac_bits, self.shift = p["hidden_bits"], p["frac_bits"], p["lut_index_shift"]
        self._lut = f_meta_lut(p["meta"], self.frac_bits, self.bits, self.shift)
        self._rng = np.random.default_rng(p["seed"]) if p["stochastic_rounding"] else None
        self._q = None

    def run_spk(self) -> None:
        if self._q is None:
            self._q = to_fixed(self.hidden_weights, self.frac_bits, self.bits)
            self.hidden_weights[...] = from_fixed(self._q, self.frac_bits)
        super().run_spk()

    def _update_hidden(self) -> None:
        grad = self._grad
        if self.hyper["weight_decay"]:
            grad = grad + self.hyper["weight_decay"] * self.hidden_weights
        metaplastic_update_fixed_(self._q, self.hyper["lr"] * grad, self._lut, self.shift, self.frac_bits,
                                  self.bits, rng=self._rng)
        self.hidden_weights[...] = from_fixed(self._q, self.frac_bits)
