"""Running Lava process graphs safely: timeouts, clean stops, bulk read-back.

Lava's CPU simulator runs every ProcessModel in a forked child. A model that
raises can leave the run hanging, and a graph that is not stopped leaves its
children and shared memory behind. :class:`LavaSession` bounds every ``run``
by a timeout, raises a failing model's own exception as soon as the model
process reports it, and stops the runtime (or, if that fails, kills its
processes) on every exit path: errors, timeouts, Ctrl-C, SIGTERM and SIGHUP.
It only ever touches the processes that Lava's runtime started, and it
leaves an outer SIGALRM timer running.

``Var.get()`` moves one element per message (seconds for a weight matrix),
so matrices come back through :class:`SharedArray`: a shared-memory block
that a model writes into and the parent reads after ``run`` returns.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from multiprocessing import resource_tracker as mp_resource_tracker
from multiprocessing import shared_memory
from typing import Optional

import numpy as np
import psutil

from lavaplast.signals import TERMINATING_SIGNALS, terminate_on_signals


def sim_config(tag: str = "floating_pt"):
    """Lava's CPU simulator configuration selecting the ``tag`` models
    ("floating_pt" or "fixed_pt")."""
    from lava.magma.core.run_configs import Loihi2SimCfg

    if tag not in ("floating_pt", "fixed_pt"):
        raise ValueError(f"unknown model tag {tag!r}; expected 'floating_pt' or 'fixed_pt'")
    return Loihi2SimCfg(select_tag=tag)


class LavaTimeoutError(TimeoutError):
    """A Lava run did not finish within its timeout; its processes were killed."""


class LavaModelError(RuntimeError):
    """A Lava ProcessModel failed in its own (forked) process.

    When the model's exception comes back intact, :meth:`LavaSession.run`
    raises that exception itself (same type and message) with a
    ``LavaModelError`` as its ``__cause__``, whose text is the model's
    traceback. A model process that died without reporting an exception (or
    whose exception could not be transferred) raises a ``LavaModelError``.
    """

    def __init__(self, message: str, process_name: Optional[str] = None, model_traceback: str = ""):
        super().__init__(message)
        self.process_name = process_name
        self.model_traceback = model_traceback

    def __str__(self) -> str:
        text = super().__str__()
        if self.model_traceback:
            text += "; the model's traceback:\n" + self.model_traceback.rstrip()
        return text


def lava_children() -> list[psutil.Process]:
    """Live descendant processes of this process other than multiprocessing's resource tracker.

    After every :class:`LavaSession` has closed this is empty unless the
    caller started processes of its own; tests use it to catch leaked Lava
    model processes. Zombies (exited, not yet reaped) are not counted.
    """
    tracker = getattr(getattr(mp_resource_tracker, "_resource_tracker", None), "_pid", None)
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.pid == tracker or child.status() == psutil.STATUS_ZOMBIE:
                continue
            if "resource_tracker" in " ".join(child.cmdline()):
                continue
            found.append(child)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _runtime_processes(runtime) -> list:
    """The ``multiprocessing.Process`` objects a Lava runtime started: its
    actors (model processes and runtime services), the shared-memory
    manager and, if enabled, the watchdog processes."""
    infra = getattr(runtime, "_messaging_infrastructure", None)
    procs = list(getattr(infra, "actors", None) or [])
    manager = getattr(getattr(infra, "smm", None), "_manager", None)
    procs.append(getattr(manager, "_process", None))
    watchdog = getattr(runtime, "_watchdog_manager", None)
    procs += [getattr(watchdog, "_lm", None), getattr(watchdog, "_sm", None)]
    procs.append(getattr(getattr(watchdog, "_mp_manager", None), "_process", None))
    return [p for p in procs if p is not None]


def _owned_processes(runtime) -> dict[int, psutil.Process]:
    """Live processes of a runtime and everything they started, by pid.

    Taken as psutil handles before anything is killed: psutil refuses to
    signal a pid that has since been reused by an unrelated process.
    """
    found: dict[int, psutil.Process] = {}
    me = os.getpid()
    for proc in _runtime_processes(runtime):
        try:
            pid = proc.pid
        except ValueError:  # closed: already joined and released
            continue
        if pid is None:
            continue
        try:
            handle = psutil.Process(pid)
            if handle.ppid() != me:
                continue
            found[pid] = handle
            for child in handle.children(recursive=True):
                found[child.pid] = child
        except psutil.Error:
            continue
    return found


def _kill(procs) -> None:
    alive = []
    for proc in procs:
        try:
            proc.kill()
            alive.append(proc)
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)


def _force_shutdown(process) -> None:
    """Kill the processes of a failed, hung or interrupted run and free Lava's shared memory.

    Touches only what the runtime started (found through Lava's own
    bookkeeping), never other children of this process. Goes through
    multiprocessing so that the children are reaped, and shuts the
    shared-memory manager down cleanly so that it unlinks its segments;
    ``Runtime.stop`` would wait forever on a dead model.
    """
    runtime = getattr(process, "runtime", None)
    if runtime is None:
        return
    owned = _owned_processes(runtime)
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
        manager = getattr(smm, "_manager", None)
        try:
            smm.shutdown()
        except Exception:
            pass  # fails while the runtime's ports still view its blocks
        if manager is not None:
            _shut_down_manager(manager)
        smm._manager = None
    _kill(owned.values())
    runtime._is_started = False
    runtime._is_running = False


def _shut_down_manager(manager) -> None:
    """Make a shared-memory manager process unlink its segments and exit.

    Asked directly: ``manager.shutdown()`` runs only once, so a first
    attempt cut short (Ctrl-C inside Lava's stop) would otherwise leave the
    manager to be killed and its segments to leak until this interpreter exits.
    """
    from multiprocessing import managers

    proc = getattr(manager, "_process", None)
    try:
        if proc is None or not proc.is_alive():
            return
        conn = manager._Client(manager._address, authkey=manager._authkey)
        try:
            managers.dispatch(conn, None, "shutdown")
        finally:
            conn.close()
        proc.join(timeout=5)
    except Exception:
        pass


def _actor_names(runtime) -> list:
    """``(actor, what it runs)`` for each of a runtime's actors.

    Lava starts one actor per Python ProcessModel, in the order of the
    executable's process builders, then the runtime services.
    """
    from lava.magma.compiler.builders.py_builder import PyProcessBuilder

    infra = getattr(runtime, "_messaging_infrastructure", None)
    builders = getattr(getattr(runtime, "_executable", None), "proc_builders", None) or {}
    models = [(proc, b.proc_model) for proc, b in builders.items() if isinstance(b, PyProcessBuilder)]
    named = []
    for i, actor in enumerate(list(getattr(infra, "actors", None) or [])):
        if i < len(models):
            proc, model = models[i]
            named.append((actor, f"{model.__name__} of {proc.name}"))
        else:
            named.append((actor, "a Lava runtime service"))
    return named


def _poll_actors(runtime, ended: dict) -> Optional[BaseException]:
    """The failure of a runtime's model process, if one has failed or died, else None.

    Lava's ``SystemProcess`` sends ``(exception, traceback text)`` (or None
    on a normal end) through a pipe when its process ends; a model that
    raises in ``run_spk`` etc. ends that way while the rest of the graph
    waits for it forever. Actors that ended normally (a runtime service
    after a model's error) are added to ``ended`` (actor -> description).
    """
    for actor, what in _actor_names(runtime):
        if actor in ended or getattr(actor, "_is_done", False):
            continue
        try:
            # Read the exit code first: a process that has exited has written all it ever will.
            code = actor.exitcode
            name = f"{what} (process {actor.name}, pid {actor.pid})"
            if actor._pconn.poll():
                report = actor._pconn.recv()
            elif code is not None:
                return LavaModelError(f"Lava model process {name} exited with code {code} "
                                      f"during a run without reporting an exception", name)
            else:
                continue
        except (OSError, EOFError, ValueError, AssertionError):
            continue
        except Exception as err:  # an exception that cannot be unpickled here
            return LavaModelError(f"Lava model process {name} failed; its exception could not be "
                                  f"transferred ({err!r})", name)
        actor._exception = report  # where Lava's own join would have put it
        if report is None:
            ended[actor] = name
            continue
        exc, tb = report
        cause = LavaModelError(f"{type(exc).__name__} in Lava model process {name}", name, tb)
        if isinstance(exc, BaseException):
            exc.__cause__ = cause
            return exc
        return cause
    return None


def _actor_handles(runtime, ended: dict) -> list:
    """What to wait on for the actors still running: the pipe each reports
    its end through and its exit sentinel."""
    handles = []
    for actor in list(getattr(getattr(runtime, "_messaging_infrastructure", None), "actors", None) or []):
        if actor in ended or getattr(actor, "_is_done", False):
            continue
        try:
            handles += [actor._pconn, actor.sentinel]
        except (AttributeError, ValueError):
            continue
    return handles


class LavaSession:
    """Run a Lava process graph for bounded stretches of time.

    ::

        with LavaSession(net_output_process, run_cfg, timeout=60) as session:
            session.run(100)         # raises LavaTimeoutError after 60 s
            ...read results...
        # the runtime is stopped here, whatever happened

    Every exit path stops the runtime or kills its processes: errors,
    timeouts, Ctrl-C, and SIGTERM/SIGHUP, which (in the main thread) raise
    :class:`lavaplast.signals.Terminated` during a run. An exception inside a
    ProcessModel is raised by :meth:`run` within a fraction of a second (see
    :class:`LavaModelError`). Only the runtime's own processes are ever
    killed.

    A stopped graph cannot run again (Lava segfaults); build a new one.
    """

    #: How long a run waits, after the runtime reported a model error, for the
    #: failed model to report its exception.
    error_grace = 5.0
    #: The longest pause (seconds) between two checks of a running graph:
    #: how late a failed model or the end of a run may be noticed.
    poll_max = 0.005

    def __init__(self, process, run_cfg, timeout: float = 60.0, stop_timeout: float = 20.0):
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.process = process
        self.run_cfg = run_cfg
        self.timeout = float(timeout)
        self.stop_timeout = float(stop_timeout)
        self.steps = 0
        self._started = False
        self._closed = False

    def __enter__(self) -> "LavaSession":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(force=exc_type is not None)

    def run(self, num_steps: int, timeout: Optional[float] = None) -> None:
        """Advance the graph by ``num_steps`` time steps (blocking).

        Raises :class:`LavaTimeoutError` after ``timeout`` seconds (default:
        the session's), a failing model's own exception, or
        :class:`lavaplast.signals.Terminated` on SIGTERM/SIGHUP; on any
        error the session is closed and its processes are gone.

        Off the main thread the compile and start-up of the first run are
        not bounded by the timeout (no signal can interrupt them there).
        """
        from lava.magma.core.run_conditions import RunSteps

        if self._closed:
            raise RuntimeError("this LavaSession is closed; a stopped Lava graph cannot run again")
        if not (isinstance(num_steps, (int, np.integer)) and num_steps >= 1):
            raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
        limit = self.timeout if timeout is None else float(timeout)
        self._started = True
        with terminate_on_signals():
            try:
                with _deadline(limit) as deadline:
                    # Not blocking inside Lava: a failed model would block it
                    # forever, out of reach of other threads' checks.
                    condition = RunSteps(num_steps=int(num_steps), blocking=False)
                    with _signals_left_to_parent():
                        self.process.run(condition=condition, run_cfg=self.run_cfg)
                    self._wait_for_steps(deadline)
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

    def _wait_for_steps(self, deadline: "_deadline") -> None:
        from multiprocessing.connection import wait

        from lava.magma.runtime.mgmt_token_enums import MGMT_RESPONSE, enum_equal

        runtime = self.process.runtime
        ports = list(runtime.service_to_runtime)
        pause = 0.0005
        ended: dict = {}
        trouble_since = None
        failure = _poll_actors(runtime, ended)
        while True:
            if failure is not None:
                raise failure
            ready = [port for port in ports if port.probe()]
            if ended or any(enum_equal(port.peek(), MGMT_RESPONSE.ERROR) for port in ready):
                # A model failed; it reports its exception once it has shut its ports.
                trouble_since = time.monotonic() if trouble_since is None else trouble_since
                if time.monotonic() - trouble_since > self.error_grace:
                    ended_text = "; ".join(ended.values()) or "none"
                    raise LavaModelError("the Lava runtime reported a failed ProcessModel, but no model process "
                                         f"reported an exception (processes that ended: {ended_text})")
            elif len(ready) == len(ports):
                break
            if deadline.expired():
                raise _Expired()
            # Sleep until an actor reports or exits (one system call), or the
            # pause is over: the run's end is seen at most ~25% (and
            # poll_max) after its last step.
            if wait(_actor_handles(runtime, ended), timeout=pause):
                failure = _poll_actors(runtime, ended)
            pause = min(1.25 * pause, self.poll_max)
        runtime.wait()  # every response is in: collects them without blocking

    def close(self, force: bool = False) -> None:
        """Stop the runtime; with ``force`` (or if stopping fails) kill its processes.

        SIGTERM/SIGHUP arriving meanwhile are held until the processes are
        gone, then raised as :class:`lavaplast.signals.Terminated`.
        """
        if self._closed:
            return
        self._closed = True
        if not self._started:
            return
        with terminate_on_signals(defer=True):
            pending = None
            if not force:
                try:
                    force = not self._stop()
                except BaseException as exc:  # Ctrl-C while stopping
                    force, pending = True, exc
            if force:
                _force_shutdown(self.process)
            if pending is not None:
                raise pending

    def _stop(self) -> bool:
        """Stop the runtime the normal way; False if that failed or hung."""
        runtime = getattr(self.process, "runtime", None)
        if runtime is None:
            return True
        ended: dict = {}
        if _poll_actors(runtime, ended) is not None or ended:
            return False
        if threading.current_thread() is threading.main_thread():
            try:
                with _deadline(self.stop_timeout):
                    self.process.stop()
                return True
            except (_Expired, Exception):
                return False
        # No alarm off the main thread: stop in a helper thread and give up
        # on it (it stays blocked in Lava) if it takes too long.
        stopped = []

        def stop():
            try:
                self.process.stop()
                stopped.append(True)
            except Exception:
                pass

        helper = threading.Thread(target=stop, name="lava-stop", daemon=True)
        helper.start()
        helper.join(self.stop_timeout)
        return bool(stopped)


def run_in_chunks(anchor, steps: int, *, first: int, chunk_steps: int, timeout: float, tag: str = "floating_pt",
                  progress: bool = False, desc: str = "") -> list[tuple[int, float]]:
    """Run the graph of ``anchor`` for ``steps`` steps in one :class:`LavaSession`, in chunks.

    The first chunk (``first`` steps, e.g. one batch) also compiles and
    starts the graph; the others, of ``chunk_steps`` steps, measure the
    simulator alone. ``timeout`` bounds each chunk; ``tag`` selects the
    models (:func:`sim_config`); ``progress`` draws a bar named ``desc``.
    Returns ``(steps, seconds)`` of every chunk.
    """
    first = min(first, steps)
    rest = steps - first
    chunks = [first] + [chunk_steps] * (rest // chunk_steps)
    if rest % chunk_steps:
        chunks.append(rest % chunk_steps)
    bar = None
    if progress:
        from lavaplast.progress import tqdm_class

        bar = tqdm_class()(total=steps, desc=desc, unit="step", leave=False)
    timed = []
    try:
        with LavaSession(anchor, sim_config(tag), timeout=timeout) as session:
            for n in chunks:
                t0 = time.perf_counter()
                session.run(n)
                timed.append((n, time.perf_counter() - t0))
                if bar is not None:
                    bar.update(n)
    finally:
        if bar is not None:
            bar.close()
    return timed


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (if it is not running) with
    SIGTERM and SIGHUP blocked, so that a signal to the whole process group
    does not end it before the segments it tracks are freed."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, TERMINATING_SIGNALS)
    try:
        mp_resource_tracker.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


class _signals_left_to_parent:
    """Processes started in this block (the first run forks Lava's) keep
    SIGTERM and SIGHUP blocked for good.

    A hangup or ``kill -- -PGID`` signals the whole process group; the
    shared-memory manager must then live until the parent has asked it to
    unlink its segments, and so must multiprocessing's resource tracker. The
    parent itself gets any such signal when the block ends.
    """

    def __enter__(self):
        _start_resource_tracker()
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, TERMINATING_SIGNALS)
        return self

    def __exit__(self, *exc) -> bool:
        signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
        return False


class _Expired(BaseException):
    pass


class _deadline:
    """Bound a block by ``seconds``.

    In the main thread, SIGALRM raises :class:`_Expired` when time is up. A
    timer already running (ITIMER_REAL, e.g. pytest-timeout's) is saved and
    restored with its remaining time; if it falls due inside the block its
    own handler is called then, as if this block were not there. Off the
    main thread (where signals cannot be delivered) nothing interrupts the
    block: code that waits polls :meth:`expired`.
    """

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self._main = threading.current_thread() is threading.main_thread()
        self._due = 0.0
        self._outer_handler = None
        self._outer_due: Optional[float] = None
        self._outer_interval = 0.0

    def expired(self) -> bool:
        """True once the time is up."""
        return time.monotonic() >= self._due

    def _arm(self) -> None:
        due = self._due if self._outer_due is None else min(self._due, self._outer_due)
        signal.setitimer(signal.ITIMER_REAL, max(due - time.monotonic(), 1e-6))

    def _on_alarm(self, signum, frame):
        now = time.monotonic()
        if self._outer_due is not None and now >= self._outer_due - 1e-3:
            self._outer_due = self._outer_due + self._outer_interval if self._outer_interval > 0 else None
            self._arm()  # first, in case the outer handler raises
            self._call_outer(signum, frame)
            return
        if now >= self._due - 1e-3:
            raise _Expired()
        self._arm()  # woken early (a stray SIGALRM): wait on

    def _call_outer(self, signum, frame) -> None:
        handler = self._outer_handler
        if callable(handler):
            handler(signum, frame)
        elif handler in (signal.SIG_DFL, None):
            # The default action of SIGALRM ends the process.
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.setitimer(signal.ITIMER_REAL, 0)
            os.kill(os.getpid(), signal.SIGALRM)

    def __enter__(self) -> "_deadline":
        now = time.monotonic()
        self._due = now + self.seconds
        if self._main:
            self._outer_handler = signal.signal(signal.SIGALRM, self._on_alarm)
            delay, self._outer_interval = signal.getitimer(signal.ITIMER_REAL)
            self._outer_due = now + delay if delay > 0 else None
            self._arm()
        return self

    def __exit__(self, *exc) -> bool:
        if self._main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL if self._outer_handler is None else self._outer_handler)
            if self._outer_due is not None:
                # A timer already due fires at once, under its own handler.
                remaining = max(self._outer_due - time.monotonic(), 1e-6)
                signal.setitimer(signal.ITIMER_REAL, remaining, self._outer_interval)
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
        _start_resource_tracker()
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
