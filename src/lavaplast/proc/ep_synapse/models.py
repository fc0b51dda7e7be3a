"""ProcessModel of ``EPSynapse``."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lavaplast.core import binarize, ep_phase, ep_weight_contrast, metaplastic_adam_step_
from lavaplast.proc.base import single_threaded_blas
from lavaplast.proc.ep_synapse.process import EPSynapse
from lavaplast.proc.runtime import SharedArray


@implements(proc=EPSynapse, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyEPSynapseModelFloat(PyLoihiProcessModel):
    pre_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    post_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    up_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    down_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    weights: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        single_threaded_blas()
        p = proc_params
        self.T1, self.T2, self.nudging = p["T1"], p["T2"], p["nudging"]
        self.beta, self.lr, self.window = p["beta"], p["lr"], p["window"]
        self.input_layer = p["input_layer"]
        self._readout = SharedArray.attach(p["readout"]) if p["readout"] is not None else None
        n_post, n_pre = p["weights"].shape
        b = p["batch"]
        self._pre, self._post = np.zeros((b, n_pre)), np.zeros((b, n_post))
        self._up, self._down = np.zeros((b, n_post)), np.zeros((b, n_pre))
        self._ends = {}
        # Device mismatch: the synapse conducts with conductance * programmed weights (refreshed every window:
        # the weights Var is only set after __init__, and learning changes it at the window's end).
        self._conductance = p["conductance"]
        self._effective = None
        self._hidden = None if p["hidden_weights"] is None else p["hidden_weights"].copy()
        if self._hidden is not None:
            self.gain, self.meta = p["gain"], p["meta"]
            self._moments = (np.zeros_like(self._hidden), np.zeros_like(self._hidden))
            self._step = 0

    def run_spk(self) -> None:
        self.up_out.send(self._up)
        self.down_out.send(self._down)
        k = (self.time_step - 1) % self.window + 1
        if k == 1:
            self._effective = self.weights if self._conductance is None else self.weights * self._conductance
        if ep_phase(k, self.T1, self.T2, self.nudging) == "load":
            self._pre[...] = 0.0
            self._post[...] = 0.0
        if not self.input_layer or k == 1:
            pre_events = self.pre_in.recv()
            if pre_events.any():
                self._pre += pre_events
                self._up = self._pre @ self._effective.T
        post_events = self.post_in.recv()
        if post_events.any():
            self._post += post_events
            if not self.input_layer:  # nothing listens below the input
                self._down = self._post @ self._effective
        if k == 1:  # reset: the buffers must reflect the cleared states
            self._up = self._pre @ self._effective.T
            self._down[...] = 0.0
        if k in (self.T1 + 1, self.T1 + self.T2 + 1, self.window):
            self._ends[k] = (self._pre.copy(), self._post.copy())

    def lrn_guard(self) -> bool:
        return self.lr > 0 and (self.time_step % self.window == 0)

    def run_lrn(self) -> None:
        pre_a, post_a = self._ends[self.T1 + self.T2 + 1]
        if self.nudging == "symmetric":
            pre_b, post_b = self._ends[self.window]
            dw = ep_weight_contrast(pre_a, post_a, pre_b, post_b, self.beta, -self.beta)
        else:
            pre_b, post_b = self._ends[self.T1 + 1]
            dw = ep_weight_contrast(pre_a, post_a, pre_b, post_b, self.beta, 0.0)
        if self._hidden is None:
            self.weights += self.lr * dw
        else:
            # dw is -dL/dW; the hidden weight takes that gradient straight through the sign.
            self._step = metaplastic_adam_step_(self._hidden, -dw, *self._moments, self._step, lr=self.lr,
                                                meta=self.meta)
            self.weights[...] = binarize(self._hidden) * self.gain
        # The new weights act from the next window on (every state resets then).
        if self._readout is not None:
            self._readout[1][...] = self.weights if self._hidden is None else self._hidden
