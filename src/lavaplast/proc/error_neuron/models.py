"""ProcessModel of ``ErrorNeuron``."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lavaplast.core import neuron_drive, output_error
from lavaplast.proc.base import is_learning_step, single_threaded_blas
from lavaplast.proc.error_neuron.process import ErrorNeuron


@implements(proc=ErrorNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt")
class PyErrorNeuronModelFloat(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    target_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    err_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    gain: np.ndarray = LavaPyType(np.ndarray, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        single_threaded_blas()
        self.loss = proc_params["loss"]
        self.schedule = (proc_params["learn_every"], proc_params["learn_offset"])
        self.learn_start = proc_params["learn_start"]

    def run_spk(self) -> None:
        logits = neuron_drive(self.a_in.recv(), self.gain, self.bias)
        self.s_out.send(logits)
        if self.time_step >= self.learn_start and is_learning_step(self.time_step, *self.schedule):
            self.err_out.send(output_error(logits, self.target_in.recv(), self.loss))
