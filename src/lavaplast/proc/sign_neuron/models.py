"""ProcessModel of ``SignNeuron``."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lavaplast.core import binarize
from lavaplast.proc.sign_neuron.process import SignNeuron


@implements(proc=SignNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySignNeuronModelFloat(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    gain: np.ndarray = LavaPyType(np.ndarray, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.mode = proc_params["mode"]

    def run_spk(self) -> None:
        y = self.a_in.recv() * self.gain + self.bias
        if self.mode == "sign":
            y = binarize(y)
        elif self.mode == "binary":
            y = (y >= 0).astype(float)
        self.s_out.send(y)
