"""ProcessModel of ``SignNeuron``."""

from __future__ import annotations

from collections import deque

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lavaplast.core import binarize, feedback_error, neuron_drive
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
        p = proc_params
        self.mode = p["mode"]
        self.feedback = p["feedback"]
        self.schedule = (p["learn_every"], p["learn_offset"])
        self.learn_start = p["learn_start"]
        # Pre-activations of the last error_delay + 1 steps; the oldest is that
        # of the batch whose error arrives now (None: no delay, nothing kept).
        delay = p["error_delay"]
        self._past = deque(maxlen=delay + 1) if self.feedback is not None and delay else None
        self._spikes = None

    def run_spk(self) -> None:
        z = neuron_drive(self.a_in.recv(), self.gain, self.bias)
        if self.mode == "sign":
            # One reused buffer: send copies the data into the channel.
            if self._spikes is None:
                self._spikes = np.empty_like(z)
            self.s_out.send(binarize(z, out=self._spikes))
        elif self.mode == "binary":
            self.s_out.send((z >= 0).astype(float))
        else:
            self.s_out.send(z)
        if self.feedback is None:
            return
        if self._past is not None:
            self._past.append(z)  # neuron_drive returns a new array every step
        if self.time_step >= self.learn_start and is_learning_step(self.time_step, *self.schedule):
            # Sent after s_out: the error depends on later layers, which
            # only see this step's output through a one-step synapse delay.
            gate = z if self._past is None else self._past[0]
            self.err_out.send(feedback_error(self.fb_in.recv(), self.feedback, gate))
