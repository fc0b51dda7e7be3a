"""ProcessModels of ``BinaryDense``.

The dynamics and the learning rule come from :mod:`lavaplast.core`, the
same functions the PyTorch reference calls; these models only wire them to
ports. No torch here: models run in forked children.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lavaplast.core import binarize, local_gradient, metaplastic_adam_step_, metaplastic_sgd_step_, ternarize
from lavaplast.proc.base import is_learning_step, single_threaded_blas
from lavaplast.proc.binary_dense.process import BinaryDense
from lavaplast.proc.runtime import SharedArray


@implements(proc=BinaryDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyBinaryDenseModelFloat(PyLoihiProcessModel):
    """Float model: hidden weights and Adam moments in float64."""

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
        self._readout = SharedArray.attach(p["readout"]) if p["readout"] is not None else None
        self._weights = None
        self._grad = None
        self._work = None

    def _quantize(self) -> np.ndarray:
        if self.quantizer == "binary":
            return binarize(self.hidden_weights)
        return ternarize(self.hidden_weights, self.threshold)

    def run_spk(self) -> None:
        if self._weights is None:  # Vars are set after __init__
            self._weights = self._quantize()
            self._publish()
        # Like Dense: send what was accumulated last step, so recurrent
        # graphs cannot deadlock.
        self.a_out.send(self.a_buff)
        x = self.s_in.recv()
        self.a_buff = x @ self._weights.T
        if not self.lrn_guard():
            return
        if self.learning == "host":
            self._grad = self.grad_in.recv()
        else:
            self._grad = local_gradient(self.err_in.recv(), x)

    def lrn_guard(self) -> bool:
        return self.learning != "off" and is_learning_step(self.time_step, self.learn_every, self.learn_offset)

    def run_lrn(self) -> None:
        if self.optimizer == "adam":
            if self._work is None:
                self._work = tuple(np.empty_like(self.hidden_weights) for _ in range(3))
            self.adam_step[0] = metaplastic_adam_step_(
                self.hidden_weights, self._grad, self.exp_avg, self.exp_avg_sq, int(self.adam_step[0]),
                **self.hyper, **self.adam, work=self._work,
            )
        else:
            metaplastic_sgd_step_(self.hidden_weights, self._grad, **self.hyper)
        self._weights = self._quantize()
        self._publish()

    def _publish(self) -> None:
        if self._readout is not None:
            self._readout[1][...] = self.hidden_weights
