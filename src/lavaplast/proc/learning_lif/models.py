"""ProcessModels of ``LearningLIF`` and ``OutputLIF``: the dynamics and factors of
:mod:`lavaplast.core.spiking_learning`, wired to ports."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lavaplast.core.spiking_learning import lif_step, spike_error, surrogate_derivative
from lavaplast.proc.base import single_threaded_blas
from lavaplast.proc.learning_lif.process import LearningLIF, OutputLIF


class AbstractLearnerNeuronModel(PyLoihiProcessModel):
    """The LIF step and the window bookkeeping shared by both populations (undecorated)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    sig_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        single_threaded_blas()
        p = proc_params
        self.decay, self.threshold, self.slope = p["decay"], p["threshold"], p["slope"]
        self.layer, self.schedule, self.learning = p["layer"], p["schedule"], p["learning"]
        shape = p["shape"]
        self._psi = np.zeros(shape)      # surrogate derivatives summed over the current window
        self._counts = np.zeros(shape)   # spikes over the current window
        self._post = np.zeros(shape)     # mean surrogate derivative of the last completed window
        self._last_counts = np.zeros(shape)

    def _step(self) -> np.ndarray:
        """Integrate this step's input; returns the spikes. Ends a window's bookkeeping on its last step."""
        phase = self.schedule.population_phase(self.time_step, self.layer)
        if phase == 0:
            self.v[...] = 0.0
            self._psi[...] = 0.0
            self._counts[...] = 0.0
        v, spikes, v_before = lif_step(self.v, self.a_in.recv(), self.decay, self.threshold)
        self.v[...] = v
        self._psi += surrogate_derivative(v_before, self.threshold, self.slope)
        self._counts += spikes
        if phase == self.schedule.T - 1:
            self._post = self._psi / self.schedule.T
            self._last_counts = self._counts.copy()
        return spikes

    def _learns_now(self) -> bool:
        return self.learning and self.schedule.learning_batch(self.time_step) >= 0


@implements(proc=LearningLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt")
class PyLearningLIFModel(AbstractLearnerNeuronModel):
    fb_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.feedback = proc_params["feedback"]

    def run_spk(self) -> None:
        self.s_out.send(self._step())
        if self._learns_now():
            # After s_out: the output error depends on later layers, which see
            # this step's spikes only through their synaptic delays.
            third = self.fb_in.recv() @ self.feedback.T
            self.sig_out.send(np.stack([self._post, third]))


@implements(proc=OutputLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt")
class PyOutputLIFModel(AbstractLearnerNeuronModel):
    count_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    target_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    err_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        self.gain, self.bias, self.loss = p["gain"], p["bias"], p["loss"]

    def run_spk(self) -> None:
        self.s_out.send(self._step())
        self.count_out.send(self._counts.copy())
        if self._learns_now():
            # The output's window of the learning batch ends on this very step.
            err = spike_error(self._last_counts, self.target_in.recv(), self.gain, self.bias, self.loss)
            self.err_out.send(err)
            self.sig_out.send(np.stack([self._post, err]))
