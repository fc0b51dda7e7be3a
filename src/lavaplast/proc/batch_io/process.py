"""Batch sources and sinks: datasets in, network outputs back in bulk."""

from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import LogConfig
from lava.magma.core.process.variable import Var

from lavaplast.core import check_finite_array, check_int, check_labels
from lavaplast.proc.base import CheckedProcess


class BatchSource(CheckedProcess):
    """Sends one batch of samples per window of ``hold`` time steps.

    Window ``w`` (steps ``w * hold + 1 .. (w + 1) * hold``) sends rows
    ``order[w * batch : (w + 1) * batch]`` of ``data`` (wrapping around) on
    ``s_out`` ``(batch, n)``; with ``labels`` it also sends their one-hot
    codes on ``target_out`` ``(batch, n_classes)``, once per window, on its
    last step (when a network holding the batch for ``hold`` steps learns).
    With ``once=True`` both are sent only on the first step of each window
    (for receivers that take the batch in as one event and hold it).
    ``order`` defaults to ``0..N-1``. The data travel to the model once, at
    start-up.

    ``target_delay`` postpones each window's target by that many steps:
    window ``w``'s target goes out at step ``(w + 1) * hold + target_delay``
    and nothing goes out on ``target_out`` before step ``hold +
    target_delay``. A pipelined learner (``hold=1``) whose output population
    hears batch ``k`` ``L`` steps after it was sent sets ``target_delay=L``,
    so that the target arrives together with the output it belongs to and no
    one has to store it.
    """

    def __init__(
        self,
        *,
        data: np.ndarray,
        batch: int,
        hold: int = 1,
        labels: ty.Optional[np.ndarray] = None,
        n_classes: int = 10,
        order: ty.Optional[np.ndarray] = None,
        once: bool = False,
        target_delay: int = 0,
        name: ty.Optional[str] = None,
        log_config: ty.Optional[LogConfig] = None,
    ) -> None:
        data = check_finite_array("BatchSource: data", data)
        if data.ndim != 2 or len(data) == 0:
            raise ValueError(f"BatchSource: data must be a non-empty 2-D array (N, n), got shape {data.shape}")
        batch = check_int("BatchSource: batch", batch, 1)
        hold = check_int("BatchSource: hold", hold, 1)
        n_classes = check_int("BatchSource: n_classes", n_classes, 1)
        if labels is not None:
            labels = check_labels("BatchSource: labels", labels, len(data), n_classes)
        order = np.arange(len(data)) if order is None else np.asarray(order, dtype=np.int64)
        if order.ndim != 1 or len(order) == 0 or order.min() < 0 or order.max() >= len(data):
            raise ValueError(f"BatchSource: order must be a 1-D array of row indices in 0..{len(data) - 1}")
        target_delay = check_int("BatchSource: target_delay", target_delay, 0)
        if once and target_delay:
            raise ValueError("BatchSource: target_delay needs once=False (with once=True the target goes out "
                             "with the batch)")
        super().__init__(data=data, batch=batch, hold=hold, labels=labels, n_classes=n_classes, order=order,
                         once=bool(once), target_delay=target_delay, name=name, log_config=log_config)
        self.s_out = OutPort(shape=(batch, data.shape[1]))
        self.target_out = OutPort(shape=(batch, n_classes))


class BatchSink(CheckedProcess):
    """Records what arrives on ``a_in`` ``(batch, n)`` at chosen steps.

    At steps ``offset + k * every`` (k = 0, 1, ...) the received array is
    written to row ``k`` of ``record``, the ``spec`` of a
    :class:`lavaplast.proc.runtime.SharedArray` of shape ``(n_records,
    batch, n)``; records past the end are dropped.
    """

    def __init__(
        self,
        *,
        shape: tuple,
        record: dict,
        every: int = 1,
        offset: int = 1,
        name: ty.Optional[str] = None,
        log_config: ty.Optional[LogConfig] = None,
    ) -> None:
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2:
            raise ValueError(f"BatchSink: shape must be (batch, n), got {shape}")
        if tuple(record["shape"][1:]) != shape:
            raise ValueError(f"BatchSink: record array has shape {tuple(record['shape'])}, expected (k, {shape[0]}, {shape[1]})")
        every = check_int("BatchSink: every", every, 1)
        offset = check_int("BatchSink: offset", offset, 1)
        super().__init__(shape=shape, record=record, every=every, offset=offset, name=name, log_config=log_config)
        self.a_in = InPort(shape=shape)
        self.count = Var(shape=(1,), init=0)
