"""ProcessModel of ``WindowSource``."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lavaplast.core.spiking_learning import window_input
from lavaplast.proc.window_source.process import WindowSource


@implements(proc=WindowSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt")
class PyWindowSourceModel(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    target_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        self.data, self.labels, self.order = p["data"], p["labels"], p["order"]
        self.batch, self.schedule, self.n_classes = p["batch"], p["schedule"], p["n_classes"]
        self.encoding, self.seed = p["encoding"], p["seed"]
        self.n_batches = len(self.order) // self.batch
        self._window = np.zeros((self.schedule.T, self.batch, self.data.shape[1]))

    def _rows(self, k: int) -> np.ndarray:
        return self.order[k * self.batch:(k + 1) * self.batch]

    def run_spk(self) -> None:
        k, j = self.schedule.source_step(self.time_step)
        if j == 0:
            if k < self.n_batches:
                self._window = window_input(self.data[self._rows(k)], self.schedule.T, self.encoding, self.seed, k)
            else:
                self._window[...] = 0.0
        self.s_out.send(self._window[j])
        if self.labels is not None:
            k_learn = self.schedule.learning_batch(self.time_step)
            if k_learn >= 0:
                target = np.zeros((self.batch, self.n_classes))
                target[np.arange(self.batch), self.labels[self._rows(k_learn)]] = 1.0
                self.target_out.send(target)
