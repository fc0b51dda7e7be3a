"""Base class of lavaplast's Lava processes."""

from lava.magma.core.process.process import AbstractProcess


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
    import numpy as np

    if not (isinstance(learn_every, (int, np.integer)) and learn_every >= 1):
        raise ValueError(f"{who}: learn_every must be an integer >= 1, got {learn_every!r}")
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
