"""``WindowSource``: batches of samples, each presented for a window of ``T`` steps, with targets on learning steps."""

from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.process import LogConfig

from lavaplast.core import check_batch_order, check_choice, check_finite_array, check_int, check_labels
from lavaplast.core.spiking_learning import ENCODINGS, LearnerSchedule, check_rates
from lavaplast.proc.base import CheckedProcess


class WindowSource(CheckedProcess):
    """The input of a spiking learner (:mod:`lavaplast.core.spiking_learning`).

    Batch ``k`` is rows ``order[k * batch : (k + 1) * batch]`` of ``data``
    ``(N, n)``; its input step ``j`` goes out on ``s_out`` ``(batch, n)`` at
    step ``k T + j + 1``, encoded by
    :func:`~lavaplast.core.spiking_learning.window_input` (``rate``: Bernoulli
    spikes, with ``seed`` and the batch index; ``current``: the values). With
    ``labels``, the one-hot targets of batch ``k`` go out on ``target_out``
    ``(batch, n_classes)`` at its learning step ``k T + n_layers + T``, and
    only then. After the last batch the source is silent. ``len(order)``
    must be a multiple of ``batch``.
    """

    def __init__(
        self,
        *,
        data: np.ndarray,
        batch: int,
        T: int,
        n_layers: int,
        labels: ty.Optional[np.ndarray] = None,
        n_classes: int = 10,
        order: ty.Optional[np.ndarray] = None,
        encoding: str = "rate",
        seed: int = 0,
        name: ty.Optional[str] = None,
        log_config: ty.Optional[LogConfig] = None,
    ) -> None:
        data = check_finite_array("WindowSource: data", data)
        if data.ndim != 2 or len(data) == 0:
            raise ValueError(f"WindowSource: data must be a non-empty 2-D array (N, n), got shape {data.shape}")
        encoding = check_choice("encoding", encoding, ENCODINGS, "WindowSource: ")
        if encoding == "rate":
            data = check_rates("WindowSource: data", data, data.shape[1])
        batch = check_int("WindowSource: batch", batch, 1)
        n_classes = check_int("WindowSource: n_classes", n_classes, 1)
        if labels is not None:
            labels = check_labels("WindowSource: labels", labels, len(data), n_classes)
        order = check_batch_order(order, batch, len(data))
        schedule = LearnerSchedule(T=check_int("WindowSource: T", T, 1), L=check_int("WindowSource: n_layers",
                                   n_layers, 1), n_batches=len(order) // batch)
        super().__init__(data=data, batch=batch, schedule=schedule, labels=labels, n_classes=n_classes, order=order,
                         encoding=encoding, seed=check_int("WindowSource: seed", seed, 0), name=name,
                         log_config=log_config)
        self.s_out = OutPort(shape=(batch, data.shape[1]))
        self.target_out = OutPort(shape=(batch, n_classes))
