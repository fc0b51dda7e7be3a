"""ProcessModels of ``BatchSource`` and ``BatchSink``."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lavaplast.proc.batch_io.process import BatchSink, BatchSource
from lavaplast.proc.runtime import SharedArray


@implements(proc=BatchSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt")
class PyBatchSourceModel(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    target_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        self.data, self.labels, self.order = p["data"], p["labels"], p["order"]
        self.batch, self.hold, self.n_classes = p["batch"], p["hold"], p["n_classes"]
        self.once = p["once"]
        self._window = -1

    def run_spk(self) -> None:
        window = (self.time_step - 1) // self.hold
        first_step = window != self._window
        if first_step:
            self._window = window
            idx = self.order[np.arange(window * self.batch, (window + 1) * self.batch) % len(self.order)]
            self._x = self.data[idx]
            self._t = np.zeros((self.batch, self.n_classes))
            if self.labels is not None:
                self._t[np.arange(self.batch), self.labels[idx]] = 1.0
        if self.once:
            if first_step:
                self.s_out.send(self._x)
                self.target_out.send(self._t)
            return
        self.s_out.send(self._x)
        if self.time_step % self.hold == 0:
            self.target_out.send(self._t)


@implements(proc=BatchSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt")
class PyBatchSinkModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    count: np.ndarray = LavaPyType(np.ndarray, int)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._shm, self._record = SharedArray.attach(proc_params["record"])
        self.every, self.offset = proc_params["every"], proc_params["offset"]

    def run_spk(self) -> None:
        x = self.a_in.recv()
        k, r = divmod(self.time_step - self.offset, self.every)
        if r == 0 and 0 <= k < len(self._record):
            self._record[k] = x
            self.count[0] = k + 1
