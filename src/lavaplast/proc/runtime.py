"""Running Lava process graphs safely: timeouts, clean stops, bulk read-back.

Lava's CPU simulator runs every ProcessModel in a forked child. A model that
raises can leave the run hanging, and a graph that is not stopped leaves its
children behind. :class:`LavaSession` bounds every ``run`` by a timeout and
stops the runtime (or, if that hangs, kills the children) on every exit path,
including errors and Ctrl-C.

``Var.get()`` moves one element per message (seconds for a weight matrix),
so matrices come back through :class:`SharedArray`: a shared-memory block
that a model writes into and the parent reads after ``run`` returns.
"""

from __future__ import annotations

import os
import signal
import threading
from multiprocessing import shared_memory
from typing import Optional

import numpy as np
import psutil


def sim_config(tag: str = "floating_pt"):
    """Lava's CPU simulator configuration selecting the ``tag`` models
    ("floating_pt" or "fixed_pt")."""
    from lava.magma.core.run_configs import Loihi2SimCfg

    if tag not in ("floating_pt", "fixed_pt"):
        raise ValueError(f"unknown model tag {tag!r}; expected 'floating_pt' or 'fixed_pt'")
    return Loihi2SimCfg(select_tag=tag)


class LavaTimeoutError(TimeoutError):
    """A Lava run did not finish within its timeout; its processes were killed."""


def _child_pids() -> set[int]:
    return {c.pid for c in psutil.Process().children(recursive=True)}


def lava_children() -> list[psutil.Process]:
    """Live child processes of this process that run Lava models.

    multiprocessing's resource tracker (one per interpreter, not Lava's) is
    not counted.
    """
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
            if "resource_tracker" in cmd or child.status() == psutil.STATUS_ZOMBIE:
                continue
            found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _kill(pids) -> None:
    procs = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            p.kill()
            procs.append(p)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=5)


class LavaSession:
    """Run a Lava process graph for bounded stretches of time.

    ::

        with LavaSession(net_output_process, run_cfg, timeout=60) as session:
            session.run(100)         # raises LavaTimeoutError after 60 s
            ...read results...
        # the runtime is stopped here, whatever happened

    A stopped graph cannot run again (Lava segfaults); build a new one.
    """

    def __init__(self, process, run_cfg, timeout: float = 60.0, stop_timeout: float = 20.0):
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.process = process
        self.run_cfg = run_cfg
        self.timeout = float(timeout)
        self.stop_timeout = float(stop_timeout)
        self.steps = 0
        self._before = _child_pids()
        self._started = False
        self._closed = False

    def __enter__(self) -> "LavaSession":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(force=exc_type is not None)

    def run(self, num_steps: int, timeout: Optional[float] = None) -> None:
        """Advance the graph by ``num_steps`` time steps (blocking)."""
        from lava.magma.core.run_conditions import RunSteps

        if self._closed:
            raise RuntimeError("this LavaSession is closed; a stopped Lava graph cannot run again")
        if not (isinstance(num_steps, (int, np.integer)) and num_steps >= 1):
            raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
        limit = self.timeout if timeout is None else float(timeout)
        self._started = True
        try:
            with _deadline(limit):
                self.process.run(condition=RunSteps(num_steps=int(num_steps)), run_cfg=self.run_cfg)
        except _Expired:
            self.close(force=True)
            raise LavaTimeoutError(
                f"Lava run of {num_steps} steps did not finish within {limit:g} s "
                f"(a ProcessModel may have failed or deadlocked); its processes were killed"
            ) from None
        except BaseException:
            self.close(force=True)
            raise
        self.steps += int(num_steps)

    def close(self, force: bool = False) -> None:
        """Stop the runtime; with ``force`` (or if stopping fails) kill it."""
        if self._closed:
            return
        self._closed = True
        if self._started and not force:
            try:
                with _deadline(self.stop_timeout):
                    self.process.stop()
            except (_Expired, Exception):
                force = True
        if self._started and force:
            _force_shutdown(self.process)
        leftover = {p.pid for p in lava_children()} - self._before
        _kill(leftover)


def _force_shutdown(process) -> None:
    """Kill the model processes of a failed or hung run and free Lava's shared memory.

    Goes through Lava's own bookkeeping (its actors and shared-memory manager)
    so that multiprocessing can still reap the children and nothing is left
    in /dev/shm; ``Runtime.stop`` would wait forever on a dead model.
    """
    import multiprocessing as mp

    runtime = getattr(process, "runtime", None)
    infra = getattr(runtime, "_messaging_infrastructure", None)
    actors = list(getattr(infra, "actors", None) or [])
    for actor in actors:
        try:
            if actor.is_alive():
                actor.kill()
        except (ValueError, AssertionError):
            pass
    for actor in actors:
        try:
            mp.Process.join(actor, timeout=5)
            actor._is_done = True  # Lava's join would try to close it again
        except (ValueError, AssertionError):
            pass
    smm = getattr(infra, "smm", None)
    if smm is not None:
        try:
            smm.shutdown()
        except Exception:
            pass
    if runtime is not None:
        runtime._is_started = False
        runtime._is_running = False


class _Expired(BaseException):
    pass


class _deadline:
    """Raise :class:`_Expired` in the main thread after ``seconds`` (SIGALRM).

    Off the main thread (where signals cannot be delivered), a watchdog kills
    the Lava children instead, which makes the blocked run fail.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._main = threading.current_thread() is threading.main_thread()
        self._timer: Optional[threading.Timer] = None
        self._old = None

    def _on_alarm(self, signum, frame):
        raise _Expired()

    def __enter__(self):
        if self._main:
            self._old = signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        else:
            before = _child_pids()
            self._timer = threading.Timer(self.seconds, lambda: _kill(_child_pids() - before))
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc):
        if self._main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)
        elif self._timer is not None:
            self._timer.cancel()
        return False


class SharedArray:
    """A numpy array in shared memory, for bulk data between a model and the parent.

    Create it in the parent, pass :attr:`spec` to the Process (it travels in
    ``proc_params``), and in the ProcessModel call :meth:`attach` with the
    spec to get a writable view. The parent reads :attr:`array` after a run.
    Call :meth:`close` (or use ``with``) to free the block.
    """

    def __init__(self, shape, dtype=np.float64):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        nbytes = max(1, int(np.prod(self.shape)) * self.dtype.itemsize)
        self._shm = shared_memory.SharedMemory(create=True, size=nbytes)
        self.array = np.ndarray(self.shape, dtype=self.dtype, buffer=self._shm.buf)
        self.array[...] = 0
        self._owner = os.getpid()

    @property
    def spec(self) -> dict:
        """What a ProcessModel needs to attach: name, shape, dtype."""
        return {"name": self._shm.name, "shape": self.shape, "dtype": self.dtype.str}

    @staticmethod
    def attach(spec: dict):
        """Attach to the block in a child; returns ``(shm, array)``; keep ``shm`` alive."""
        # Lava forks its model processes, so they share the creator's resource
        # tracker: attaching re-registers the same name (a no-op) and the
        # creator's unlink unregisters it once.
        shm = shared_memory.SharedMemory(name=spec["name"])
        return shm, np.ndarray(tuple(spec["shape"]), dtype=np.dtype(spec["dtype"]), buffer=shm.buf)

    def read(self) -> np.ndarray:
        """A copy of the current contents."""
        return self.array.copy()

    def close(self) -> None:
        if self._shm is None:
            return
        self.array = None
        self._shm.close()
        if os.getpid() == self._owner:
            try:
                self._shm.unlink()
            except FileNotFoundError:
                pass
        self._shm = None

    def __enter__(self) -> "SharedArray":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
