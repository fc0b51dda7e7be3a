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
        self.once, self.target_delay = p["once"], p["target_delay"]
        self._window = -1

    def _rows(self, window: int) -> np.ndarray:
        """Row indices of window ``window``'s batch (the order wraps around)."""
        return self.order[np.arange(window * self.batch, (window + 1) * self.batch) % len(self.order)]

    def _target(self, window: int) -> np.ndarray:
        """One-hot targets of window ``window``'s batch (zeros without labels)."""
        target = np.zeros((self.batch, self.n_classes))
        if self.labels is not None:
            target[np.arange(self.batch), self.labels[self._rows(window)]] = 1.0
        return target

    def run_spk(self) -> None:
        window = (self.time_step - 1) // self.hold
        first_step = window != self._window
        if first_step:
            self._window = window
            self._x = self.data[self._rows(window)]
        if self.once:
            if first_step:
                self.s_out.send(self._x)
                self.target_out.send(self._target(window))
            return
        self.s_out.send(self._x)
        # Window w's target leaves at step (w + 1) * hold + target_delay: on the
        # window's last step, or target_delay steps later for a pipelined learner.
        late = self.time_step - self.target_delay
        if late >= self.hold and late % self.hold == 0:
            self.target_out.send(self._target(late // self.hold - 1))


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
