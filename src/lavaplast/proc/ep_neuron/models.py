"""ProcessModel of ``EPNeuron``."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lavaplast.core import ACTIVATIONS, ep_bias_contrast, ep_phase, output_nudge, sigma_delta_encode
from lavaplast.core.mismatch import neuron_response
from lavaplast.proc.base import single_threaded_blas
from lavaplast.proc.ep_neuron.process import EPNeuron
from lavaplast.proc.runtime import SharedArray


@implements(proc=EPNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyEPNeuronModelFloat(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    target_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    s: np.ndarray = LavaPyType(np.ndarray, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    events: np.ndarray = LavaPyType(np.ndarray, int)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        single_threaded_blas()
        p = proc_params
        self.T1, self.T2, self.nudging = p["T1"], p["T2"], p["nudging"]
        self.beta, self.threshold, self.lr = p["beta"], p["threshold"], p["lr"]
        self.output, self.window = p["output"], p["window"]
        self.activation = ACTIVATIONS[p["activation"]]
        self.gain, self.offset = p["gain"], p["offset"]  # device mismatch (None: ideal)
        self._readout = SharedArray.attach(p["readout"]) if p["readout"] is not None else None
        self._sent = None
        self._target = None
        self._free = self._plus = None

    def run_spk(self) -> None:
        k = (self.time_step - 1) % self.window + 1
        phase = ep_phase(k, self.T1, self.T2, self.nudging)
        drive = self.a_in.recv()
        if phase == "load":
            # A new batch: every process of the graph resets on this step.
            self.s[...] = 0.0
            self._sent = np.zeros_like(self.s)
            if self.output:
                self._target = self.target_in.recv()
        elif phase == "restore":
            self.s[...] = self._free
        else:
            drive = drive + self.bias
            if self.output and phase != "free":
                beta = self.beta if phase == "plus" else -self.beta
                drive = drive + output_nudge(self.s, self._target, beta)
            self.s[...] = self.activation(neuron_response(drive, self.gain, self.offset))
        events, self._sent = sigma_delta_encode(self.s, self._sent, self.threshold)
        self.events[0] += int(np.count_nonzero(events))
        self.s_out.send(events)
        if k == self.T1 + 1:
            self._free = self.s.copy()
        elif k == self.T1 + self.T2 + 1:
            self._plus = self.s.copy()

    def lrn_guard(self) -> bool:
        return self.lr > 0 and (self.time_step % self.window == 0)

    def run_lrn(self) -> None:
        if self.nudging == "symmetric":
            db = ep_bias_contrast(self._plus, self.s, self.beta, -self.beta)
        else:
            db = ep_bias_contrast(self._plus, self._free, self.beta, 0.0)
        self.bias += self.lr * db
        if self._readout is not None:
            self._readout[1][...] = self.bias
