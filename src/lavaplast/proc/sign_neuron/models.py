"""ProcessModel of ``SignNeuron``."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lavaplast.core import feedback_error, neuron_drive, sign_neuron
from lavaplast.proc.base import is_learning_step, single_threaded_blas
from lavaplast.proc.sign_neuron.process import SignNeuron


@implements(proc=SignNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt")
class PySignNeuronModelFloat(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    fb_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    err_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    gain: np.ndarray = LavaPyType(np.ndarray, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        single_threaded_blas()
        self.mode = proc_params["mode"]
        self.feedback = proc_params["feedback"]
        self.schedule = (proc_params["learn_every"], proc_params["learn_offset"])

    def run_spk(self) -> None:
        z = neuron_drive(self.a_in.recv(), self.gain, self.bias)
        if self.mode == "sign":
            self.s_out.send(sign_neuron(z))
        elif self.mode == "binary":
            self.s_out.send((z >= 0).astype(float))
        else:
            self.s_out.send(z)
        if self.feedback is not None and is_learning_step(self.time_step, *self.schedule):
            # Sent after s_out: the error depends on later layers, which
            # only see this step's output through a one-step synapse delay.
            self.err_out.send(feedback_error(self.fb_in.recv(), self.feedback, z))
