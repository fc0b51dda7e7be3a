"""ProcessModel of ``LearningBinaryDense``: the rule of :mod:`lavaplast.core.rules`, wired to ports."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lavaplast.core import apply_rule, binarize, get_rule, ternarize, ternary_matmul
from lavaplast.core.spiking_learning import FixedPoint
from lavaplast.proc.base import single_threaded_blas
from lavaplast.proc.learning_binary_dense.process import LearningBinaryDense
from lavaplast.proc.runtime import SharedArray


class AbstractLearningBinaryDenseModel(PyLoihiProcessModel):
    """Ports, forward pass and factor bookkeeping shared by both models (undecorated: Lava's tags add up
    over inheritance)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    sig_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    hidden_weights: np.ndarray = LavaPyType(np.ndarray, float)
    a_buff: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        single_threaded_blas()
        p = proc_params
        # The registry is the parent's: Lava forks its model processes, so user rules registered before the run exist here.
        self.rule, self.params = get_rule(p["rule"]), p["params"]
        self.quantizer, self.threshold = p["quantizer"], p["threshold"]
        self.schedule, self.layer, self.learning = p["schedule"], p["layer"], p["learning"]
        self._readout = SharedArray.attach(p["readout"]) if p["readout"] is not None else None
        self.fixed_point = p["fixed_point"]
        self._weights = None
        self._state = None
        self._pre_sum = None
        self._pre = None
        self._signal = None

    def _quantize(self) -> None:
        if self.quantizer == "binary":
            self._weights = binarize(self.hidden_weights)
        else:
            self._weights = ternarize(self.hidden_weights, self.threshold)

    def run_spk(self) -> None:
        if self._weights is None:  # Vars are set after __init__
            self._quantize()
            self._state = self.rule.init_state(self.hidden_weights)
            self._publish()
        # Like Dense: send what was summed last step (one step of synaptic delay).
        self.a_out.send(self.a_buff)
        x = self.s_in.recv()
        phase = self.schedule.connection_phase(self.time_step, self.layer)
        if phase == 0 or self._pre_sum is None:
            self._pre_sum = np.zeros_like(x)
        self._pre_sum += x
        if phase == self.schedule.T - 1:
            self._pre = self._pre_sum / self.schedule.T
        self.a_buff = ternary_matmul(x, self._weights)
        if self.lrn_guard():
            self._signal = self.sig_in.recv()

    def lrn_guard(self) -> bool:
        return self.learning and self.schedule.learning_batch(self.time_step) >= 0

    def _rule_step(self):
        """The hidden weights the rule moves to from this learning step's factors (float)."""
        post, third = self._signal[0], self._signal[1]
        return apply_rule(self.rule, self._pre, post, third, self.hidden_weights, self._state, self.params)

    def _publish(self) -> None:
        if self._readout is not None:
            self._readout[1][...] = self.hidden_weights


@implements(proc=LearningBinaryDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLearningBinaryDenseModel(AbstractLearningBinaryDenseModel):
    """Float model: hidden weights and the rule's state in float64."""

    def __init__(self, proc_params):
        super().__init__(proc_params)
        if self.fixed_point is not None:
            raise ValueError("LearningBinaryDense: this process holds its weights in fixed point (fixed_point "
                             "given); run it with the fixed_pt models (sim_config('fixed_pt'))")

    def run_lrn(self) -> None:
        self.hidden_weights[...] = self._rule_step()
        self._quantize()
        self._publish()


@implements(proc=LearningBinaryDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyLearningBinaryDenseModelFixed(AbstractLearningBinaryDenseModel):
    """Fixed-point model: hidden weights on the grid of ``fixed_point`` (default ``FixedPoint()``)."""

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.fixed_point = self.fixed_point or FixedPoint()
        self._q = None
        self._rng = self.fixed_point.rng(self.layer)

    def run_spk(self) -> None:
        if self._q is None:  # the initial weights, rounded onto the grid before anything runs
            self._q = self.fixed_point.to_grid(self.hidden_weights)
            self.hidden_weights[...] = self.fixed_point.value(self._q)
        super().run_spk()

    def run_lrn(self) -> None:
        update = self._rule_step() - self.hidden_weights
        self._q = self.fixed_point.step(self._q, update, self._rng)
        self.hidden_weights[...] = self.fixed_point.value(self._q)
        self._quantize()
        self._publish()
