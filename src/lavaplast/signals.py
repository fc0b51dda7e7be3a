"""Termination requests (SIGTERM, SIGHUP) as an exception.

By default SIGTERM and SIGHUP end Python at once: no ``finally`` block runs,
so child processes and shared memory are left behind. Inside
:class:`terminate_on_signals` they raise :class:`Terminated` instead, which
unwinds the stack like Ctrl-C does, and cleanup code runs.
"""

from __future__ import annotations

import os
import signal
import threading

TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """The process was asked to terminate by a signal (SIGTERM or SIGHUP).

    A ``BaseException`` like ``KeyboardInterrupt``, so that ``except
    Exception`` blocks do not swallow it.
    """

    def __init__(self, signum: int):
        super().__init__(int(signum))
        self.signum = int(signum)

    @property
    def signame(self) -> str:
        """The signal's name, e.g. ``"SIGTERM"``."""
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        """The conventional exit status of a process ended by this signal: 128 + signum."""
        return 128 + self.signum

    def __str__(self) -> str:
        return f"terminated by {self.signame}"


class terminate_on_signals:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated`.

    Only the first signal raises; later ones are dropped, so that the cleanup
    started by the first is not cut short. With ``defer=True`` the first
    signal is held and raised when the block ends (for cleanup code that
    must not be interrupted). The previous handlers are restored on exit.

    Signals can be handled only in the main thread: elsewhere this does
    nothing. A signal that is ignored when the block starts (``nohup``
    ignores SIGHUP) stays ignored.
    """

    def __init__(self, defer: bool = False):
        self.defer = defer
        self.received: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        if self.received is not None:
            return
        self.received = signum
        if not self.defer:
            raise Terminated(signum)

    def __enter__(self) -> "terminate_on_signals":
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in TERMINATING_SIGNALS:
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN:
                continue
            signal.signal(signum, self._handle)
            self._previous[signum] = previous
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        for signum, previous in self._previous.items():
            # None: a handler installed outside Python; the default is the closest.
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()
        if self.defer and self.received is not None and not isinstance(exc, Terminated):
            raise Terminated(self.received)
        return False


def _reset_in_child() -> None:
    # A forked child (a Lava model) inherits the parent's handlers; it must
    # not raise Terminated out of its own code, but end as if no handler
    # were installed: its parent does the cleanup.
    for signum in TERMINATING_SIGNALS:
        installed = handler = signal.getsignal(signum)
        while isinstance(getattr(handler, "__self__", None), terminate_on_signals):
            handler = handler.__self__._previous.get(signum, signal.SIG_DFL)
        if handler is not installed:
            try:
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)
            except (ValueError, OSError):
                pass


os.register_at_fork(after_in_child=_reset_in_child)
