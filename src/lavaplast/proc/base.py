"""Base class and argument checks shared by lavaplast's Lava processes."""

import numpy as np
from lava.magma.core.process.process import AbstractProcess

from lavaplast.core.validate import check_int


class CheckedProcess(AbstractProcess):
    """An ``AbstractProcess`` that may reject its arguments before initialising.

    Lava's ``__del__`` assumes a fully initialised process; a constructor
    that raises ``ValueError`` first would otherwise print an ignored
    ``AttributeError`` when the half-built object is collected.
    """

    def __del__(self):
        if "_runtime" in self.__dict__:
            super().__del__()


def check_schedule(who: str, learn_every, learn_offset) -> None:
    """Validate a learning schedule: steps ``learn_offset + k * learn_every``."""
    check_int(f"{who}: learn_every", learn_every, 1)
    if not (isinstance(learn_offset, (int, np.integer)) and 0 <= learn_offset < learn_every):
        raise ValueError(f"{who}: learn_offset must be in 0..{learn_every - 1}, got {learn_offset!r}")


def is_learning_step(time_step: int, learn_every: int, learn_offset: int) -> bool:
    """True at steps ``learn_offset + k * learn_every``: the only steps on which
    learning signals are sent and received (no messages in between)."""
    return (time_step - learn_offset) % learn_every == 0


def single_threaded_blas() -> None:
    """Limit BLAS to one thread in this (model) process.

    Every ProcessModel runs in its own forked process; with OpenBLAS's default
    thread pool in each, a graph of 8 models on 2 cores spends its time
    spinning: measured 3x fewer steps/s than with one thread per model.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def per_neuron(what: str, value, n: int) -> np.ndarray:
    """A scalar or ``(n,)`` parameter as a finite float array of shape ``(n,)``."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{what} must be a scalar or have shape ({n},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return arr.copy()
