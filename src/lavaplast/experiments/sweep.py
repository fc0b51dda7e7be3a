"""Sweeps: many runs of one ``lavaplast`` command, on this machine or on Ray.

A sweep file (TOML, format in ``docs/sweeps.md``) names a command, fixed
options, a grid (cartesian product) and/or a list of option sets, the seeds
and the resources each run needs::

    command = "continual"
    seeds = [0, 1, 2]

    [options]
    protocol = "permuted"
    hidden = [1024, 1024]

    [grid]
    meta = [0.0, 1.35]
    lr = [0.005, 0.02]

The file is checked against the command's own argparse parser (built by
:func:`lavaplast.cli.build_parser`) before anything runs
(:mod:`lavaplast.experiments.sweep_file`). Every run is the
command started as a subprocess (``python -m lavaplast.cli COMMAND ...
--out RUNDIR``): Lava's forked model processes start from a clean process,
and a run that fails or crashes does not take the sweep down.

Each run's folder is named by a hash of its resolved config (command,
options, seed; canonical JSON), so the same run always lands in the same
folder. Beside the command's outputs it holds ``sweep_run.json`` (config,
status, timings, exit code, command line), written atomically after the
command has exited; a run is complete only when that file says its command
exited with status 0. A sweep started again skips complete runs and restarts
the others cleanly (``--resume`` where the command has it, else
``--overwrite``), so a killed sweep restarted with the same command runs only
what is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import functools
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from lavaplast.experiments.sweep_file import Sweep, load_sweep
from lavaplast.outputs import read_json, write_json
from lavaplast.signals import Terminated

RUNS_FOLDER = "runs"
MARKER = "sweep_run.json"
RUN_LOG = "sweep_run.log"
SWEEP_JSON = "sweep.json"
LOCK = ".sweep.lock"
# Seconds a run gets to stop after SIGTERM (Lava tears its model processes down) before SIGKILL.
STOP_GRACE = 30.0



def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")



# --- one run ------------------------------------------------------------------------


def run_complete(run_dir: str | os.PathLike, config: dict) -> bool:
    """Whether ``run_dir`` holds a finished run of ``config``: its marker says its command exited 0."""
    marker = Path(run_dir) / MARKER
    if not marker.is_file():
        return False
    try:
        saved = read_json(marker, "run marker")
    except ValueError:
        return False
    return saved.get("status") == "complete" and saved.get("exit_code") == 0 and saved.get("config") == config


def _parent_death_signal():
    # Linux: the run gets SIGTERM if the process that started it dies (even by SIGKILL), so that a
    # killed sweep or Ray worker leaves no run behind. libc is loaded here, before the fork: the
    # function the child calls must not import or allocate (other threads may hold locks).
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    PR_SET_PDEATHSIG = 1

    def setup():
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(143)

    return setup


class RunProcess:
    """One run as a subprocess in its own process group, with its marker and log in the run folder.

    :meth:`start` writes the marker with status ``running`` and starts the
    command; :meth:`finish` records its exit (``complete`` only for status 0)
    and is the last write to the folder; :meth:`stop` asks it to end
    (SIGTERM, then SIGKILL to its whole group after ``grace`` seconds).
    """

    def __init__(self, run: dict, run_dir: str, cwd: str, argv: list[str], threads: int,
                 gpus: Optional[Sequence[str]] = None):
        self.run, self.run_dir, self.cwd, self.argv, self.threads = run, Path(run_dir), cwd, argv, threads
        self.gpus = gpus
        self.proc: Optional[subprocess.Popen] = None
        self.record: dict = {}
        self.t0 = 0.0
        self._terminated = False

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # As many math-library threads as CPUs declared: runs do not oversubscribe the machine, and the
        # local and Ray executors give the same numbers.
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(self.threads)
        env["PYTHONUNBUFFERED"] = "1"
        if self.gpus is not None:  # the local executor's GPU slot (Ray sets this variable itself)
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus)
        shown = shlex.join(["lavaplast", *self.argv[3:]])
        self.record = dict(config=self.run["config"], key=self.run["key"], status="running", exit_code=None,
                           resolved_options=self.run.get("resolved"), command_line=shown, argv=self.argv,
                           cwd=self.cwd, host=socket.gethostname(), threads=self.threads,
                           gpus=self.gpus if self.gpus is not None else os.environ.get("CUDA_VISIBLE_DEVICES"), started=_now(), finished=None, seconds=None, log=RUN_LOG)
        write_json(self.run_dir / MARKER, self.record)
        with open(self.run_dir / RUN_LOG, "ab") as log:
            log.write(f"\n=== {self.record['started']} {shown}\n".encode())
            log.flush()
            self.t0 = time.monotonic()
            try:
                with _hold_signals():  # a signal in the middle of Popen would lose the child it started
                    self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                                 preexec_fn=_parent_death_signal())
            except OSError as exc:
                log.write(f"cannot start the run: {exc}\n".encode())
                self.finish(None, error=f"cannot start the run: {exc}")

    def poll(self) -> Optional[int]:
        return None if self.proc is None else self.proc.poll()

    def wait(self) -> int:
        return self.proc.wait()

    def terminate(self) -> None:
        """Send the command SIGTERM once (it unwinds like Ctrl-C and stops its Lava processes); a second
        SIGTERM could arrive after its handler is gone and cut its cleanup short."""
        if self.proc is not None and not self._terminated and self.proc.poll() is None:
            self._terminated = True
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """:meth:`terminate`, then SIGKILL to the run's process group if it is still there after ``grace`` s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.terminate()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def finish(self, exit_code: Optional[int], interrupted: bool = False, error: Optional[str] = None) -> dict:
        """Record the run's end in its marker (written last) and return the record."""
        if self.proc is not None:
            # Whatever the command left in its process group (it should be nothing) goes with it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        status = "complete" if exit_code == 0 and not interrupted else ("interrupted" if interrupted else "failed")
        self.record.update(status=status, exit_code=exit_code, finished=_now(),
                           seconds=round(time.monotonic() - self.t0, 3) if self.t0 else None)
        if error:
            self.record["error"] = error
        elif status == "failed":
            self.record["error"] = _last_line(self.run_dir / RUN_LOG)
        write_json(self.run_dir / MARKER, self.record)
        return dict(self.record)


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4000))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def run_argv(sweep: Sweep, run: dict, run_dir: str) -> list[str]:
    """The subprocess command line of one run."""
    argv = [sys.executable, "-m", "lavaplast.cli", *run["words"], "--out", str(run_dir), sweep.restart_flag]
    if sweep.progress_flag:
        argv.append(sweep.progress_flag)
    return argv


def execute_run(run: dict, run_dir: str, cwd: str, argv: list[str], threads: int) -> dict:
    """Run one run to its end and return its record (what the Ray executor runs in a worker).

    An interruption (``KeyboardInterrupt`` from ``ray.cancel``, or a
    termination signal) stops the command and records the run as
    interrupted before it propagates.
    """
    if not os.path.isdir(cwd):
        raise RuntimeError(f"folder {cwd} does not exist on {socket.gethostname()}: the sweep's folders must "
                           "be on a file system shared by every node")
    proc = RunProcess(run, run_dir, cwd, argv, threads)
    proc.start()
    if proc.proc is None:
        return proc.record
    try:
        code = proc.wait()
    except BaseException:
        proc.stop()
        code = proc.poll()
        proc.finish(code, interrupted=code != 0)
        raise
    return proc.finish(code)


# --- the sweep ------------------------------------------------------------------------


class SweepState:
    """``sweep.json``: the file, every run's status and this invocation's counts, rewritten on every change."""

    def __init__(self, sweep: Sweep, out: Path, executor: str, extra: dict):
        self.out = out
        self.statuses = {r["key"]: "pending" for r in sweep.runs}
        self.records: dict = {}
        self.skipped: set = set()
        self.counts = dict(total=len(sweep.runs), skipped=0, executed=0, succeeded=0, failed=0, interrupted=0,
                           not_started=0)
        self.head = dict(sweep_file=str(sweep.path.resolve()), command=sweep.command, content=sweep.text,
                         sweep=sweep.data, executor=executor, **extra, started=_now(), finished=None,
                         status="running")
        self.sweep = sweep

    def write(self) -> None:
        runs = []
        for r in self.sweep.runs:
            rec = self.records.get(r["key"], {})
            runs.append(dict(key=r["key"], folder=f"{RUNS_FOLDER}/{r['key']}", config=r["config"],
                             status=self.statuses[r["key"]], skipped=r["key"] in self.skipped,
                             exit_code=rec.get("exit_code"), seconds=rec.get("seconds"),
                             **({"error": rec["error"]} if rec.get("error") else {})))
        write_json(self.out / SWEEP_JSON, dict(self.head, counts=self.counts, runs=runs))

    def done(self, key: str, record: dict) -> None:
        self.records[key] = record
        self.statuses[key] = record["status"]
        if record["status"] == "interrupted":
            self.counts["interrupted"] += 1
        else:
            self.counts["executed"] += 1
            self.counts["succeeded" if record["status"] == "complete" else "failed"] += 1
        self.write()

    def close(self, status: str) -> None:
        self.counts["not_started"] = sum(1 for s in self.statuses.values() if s == "pending")
        self.head.update(finished=_now(), status=status)
        self.write()


@contextlib.contextmanager
def _sweep_lock(out: Path):
    """Only one sweep at a time in a folder: two would run the same runs twice."""
    import fcntl

    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another sweep is running in {out} (it holds {out / LOCK}); wait for it or "
                             "stop it first") from None
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _hold_signals():
    """Hold SIGINT, SIGTERM and SIGHUP for the block; one that arrived is delivered when it ends."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list = []
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        handler = signal.getsignal(signum)
        if handler in (signal.SIG_IGN, None):
            continue
        previous[signum] = handler
        signal.signal(signum, lambda s, f: got.append(s))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if got:
            signal.raise_signal(got[0])


@contextlib.contextmanager
def _no_sigint():
    # While runs are being stopped, a second Ctrl-C must not cut the cleanup short.
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def default_out(path: str | os.PathLike) -> Path:
    """Where a sweep's runs go when no --out is given: ``runs/sweeps/<file stem>``."""
    return Path("runs") / "sweeps" / Path(path).stem


def run_sweep(
    path: str | os.PathLike,
    out: Optional[str | os.PathLike] = None,
    *,
    executor: str = "local",
    address: Optional[str] = None,
    max_parallel: Optional[int] = None,
    progress: Optional[bool] = None,
    log: Callable[[str], None] = functools.partial(print, flush=True),
) -> dict:
    """Run every run of the sweep file ``path`` not yet complete in ``out``; return ``sweep.json``'s content.

    ``executor``: ``"local"`` (subprocesses on this machine, at most
    ``max_parallel`` at a time; default: CPUs // the CPUs a run declares) or
    ``"ray"`` (Ray tasks on a local instance, or the cluster at ``address``;
    ``max_parallel`` caps the runs in flight). A termination signal stops
    the runs in flight, records them as interrupted and propagates.
    """
    if executor not in ("local", "ray"):
        raise ValueError(f"--executor must be 'local' or 'ray', got {executor!r}")
    if max_parallel is not None and (isinstance(max_parallel, bool) or not isinstance(max_parallel, int)
                                     or max_parallel < 1):
        raise ValueError(f"--max-parallel must be an integer >= 1, got {max_parallel!r}")
    if address is not None and executor != "ray":
        raise ValueError("--address is an option of the Ray executor: add --executor ray")
    sweep = load_sweep(path)
    if executor == "ray":
        try:
            import ray
        except ImportError:
            raise ValueError("the Ray executor needs Ray: pip install 'lavaplast[ray]'") from None
        if address and not ray.is_initialized():
            _check_reachable(address)
    slots = None
    if executor == "local" and sweep.resources.num_gpus > 0:
        gpus = visible_gpus()
        slots = gpu_slots(sweep.resources.num_gpus, gpus)
        if not slots:
            raise ValueError(f"the runs need {sweep.resources.num_gpus:g} GPU(s) each (resources.num_gpus) but "
                             f"{len(gpus)} {'is' if len(gpus) == 1 else 'are'} visible here "
                             f"({'CUDA_VISIBLE_DEVICES' if 'CUDA_VISIBLE_DEVICES' in os.environ else 'torch'})")
    out = Path(out) if out is not None else default_out(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"sweep folder {out} is an existing file; choose another --out")
    try:
        (out / RUNS_FOLDER).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create sweep folder {out}: {exc.strerror or exc}") from None
    out = out.resolve()
    with _sweep_lock(out):
        state = SweepState(sweep, out, executor, dict(address=address, max_parallel=max_parallel,
                                                       resources=dict(num_cpus=sweep.resources.num_cpus,
                                                                      num_gpus=sweep.resources.num_gpus,
                                                                      custom=sweep.resources.custom)))
        todo = []
        for r in sweep.runs:
            if run_complete(out / RUNS_FOLDER / r["key"], r["config"]):
                state.statuses[r["key"]] = "complete"
                state.skipped.add(r["key"])
            else:
                todo.append(r)
        state.counts["skipped"] = len(state.skipped)
        state.write()
        log(f"sweep {sweep.path}: {len(sweep.runs)} runs of 'lavaplast {sweep.command}', {len(state.skipped)} "
            f"already complete, {len(todo)} to run ({executor} executor); folder {out}")
        from lavaplast.progress import show_progress, tqdm_class

        bar = tqdm_class()(total=len(sweep.runs), initial=len(state.skipped), unit="run", desc="sweep") \
            if show_progress(progress) and todo else None
        say = bar.write if bar is not None else log
        cwd = os.getcwd()
        try:
            if executor == "local":
                _run_local(sweep, todo, out, cwd, state, max_parallel, bar, say, slots)
            else:
                _run_ray(sweep, todo, out, cwd, state, max_parallel, address, bar, say)
        except BaseException as exc:
            state.close("interrupted" if isinstance(exc, (KeyboardInterrupt, Terminated)) else "error")
            raise
        finally:
            if bar is not None:
                bar.close()
        failed = [k for k, s in state.statuses.items() if s != "complete"]
        state.close("complete" if not failed else "failed")
    counts = state.counts
    log(f"{counts['executed']} runs executed ({counts['failed']} failed), {counts['skipped']} skipped; "
        f"wrote {out / SWEEP_JSON}")
    return read_json(out / SWEEP_JSON, "sweep file")


def _describe_run(run: dict) -> str:
    return shlex.join(["lavaplast", *run["words"]])


def _report_done(say, run: dict, record: dict, out: Path) -> None:
    if record["status"] == "complete":
        say(f"done   {run['key']}  {record.get('seconds') or 0:.1f} s  {_describe_run(run)}")
    elif record["status"] == "failed":
        say(f"FAILED {run['key']}  exit status {record.get('exit_code')}: {record.get('error', '')} "
            f"(log: {out / RUNS_FOLDER / run['key'] / RUN_LOG})")


def visible_gpus() -> list[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else every GPU torch sees."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [g.strip() for g in given.split(",") if g.strip() and not g.strip().startswith("-")]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # no torch, or a broken CUDA install: no GPU to hand out
        return []


def gpu_slots(num_gpus: float, gpus: Sequence[str]) -> list[list[str]]:
    """The GPUs of each run slot of the local executor: ``num_gpus`` whole GPUs per run, or, below 1,
    ``floor(1 / num_gpus)`` runs sharing each GPU."""
    if num_gpus <= 0:
        return []
    if num_gpus >= 1:
        k = int(num_gpus)
        return [list(gpus[i:i + k]) for i in range(0, len(gpus) - k + 1, k)]
    return [[g] for g in gpus for _ in range(int(1 // num_gpus))]


def _run_local(sweep: Sweep, todo: list, out: Path, cwd: str, state: SweepState, max_parallel, bar, say,
               slots: Optional[list] = None) -> None:
    threads = sweep.resources.threads
    limit = max_parallel or max(1, (os.cpu_count() or 1) // threads)
    free: list = []  # GPU slots not in use
    if slots is not None:  # runs that need GPUs: at most one run per slot
        limit = min(limit, len(slots))
        free = list(range(len(slots)))
    pending = list(todo)
    active: dict = {}
    held: dict = {}  # run key -> its GPU slot
    try:
        while pending or active:
            while pending and len(active) < limit:
                run = pending.pop(0)
                run_dir = out / RUNS_FOLDER / run["key"]
                gpus = None
                if slots is not None:
                    held[run["key"]] = free.pop(0)
                    gpus = slots[held[run["key"]]]
                proc = RunProcess(run, str(run_dir), cwd, run_argv(sweep, run, str(run_dir)), threads, gpus)
                # Registered before it starts: a signal that arrives while it starts still stops it.
                active[run["key"]] = (run, proc)
                state.statuses[run["key"]] = "running"
                proc.start()
                if proc.proc is None:  # could not even start: recorded as failed
                    del active[run["key"]]
                    if run["key"] in held:
                        free.append(held.pop(run["key"]))
                    state.done(run["key"], proc.record)
                    _report_done(say, run, proc.record, out)
                    continue
                state.write()
            for key, (run, proc) in list(active.items()):
                code = proc.poll()
                if code is not None:
                    # Held signals: a run that exited 0 is recorded as complete, never lost to a signal.
                    with _hold_signals():
                        del active[key]
                        if key in held:
                            free.append(held.pop(key))
                        record = proc.finish(code)
                        state.done(key, record)
                    _report_done(say, run, record, out)
                    if bar is not None:
                        bar.update(1)
            time.sleep(0.05)
    except BaseException:
        with _no_sigint():
            for run, proc in active.values():
                proc.terminate()  # all at once: they stop in parallel
            for key, (run, proc) in active.items():
                if proc.proc is None:  # stopped before its command started
                    state.statuses[key] = "pending"
                    continue
                proc.stop()
                code = proc.poll()
                state.done(key, proc.finish(code, interrupted=code != 0))
        raise


def _ray_task(run: dict, run_dir: str, cwd: str, argv: list[str], threads: int) -> dict:
    return execute_run(run, run_dir, cwd, argv, threads)


def _run_ray(sweep: Sweep, todo: list, out: Path, cwd: str, state: SweepState, max_parallel, address, bar,
             say) -> None:
    import logging

    import ray

    res = sweep.resources
    started_here = not ray.is_initialized()
    if started_here:
        common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        try:
            if address:
                ray.init(address=address, **common)
            else:
                cpus = (max_parallel * res.num_cpus) if max_parallel else (os.cpu_count() or 1)
                ray.init(num_cpus=max(cpus, res.num_cpus), **common)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ... for an unreachable cluster
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise ValueError(f"cannot start or join {where}: {_ray_error(exc)}") from None
    task = ray.remote(_ray_task).options(num_cpus=res.num_cpus, num_gpus=res.num_gpus,
                                         resources=res.custom or None, max_retries=0)
    pending = list(todo)
    inflight: dict = {}
    try:
        while pending or inflight:
            while pending and (max_parallel is None or len(inflight) < max_parallel):
                run = pending.pop(0)
                run_dir = out / RUNS_FOLDER / run["key"]
                ref = task.remote(run, str(run_dir), cwd, run_argv(sweep, run, str(run_dir)), res.threads)
                inflight[ref] = run
                state.statuses[run["key"]] = "running"
            state.write()
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.5)
            for ref in ready:
                run = inflight.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as exc:  # the task itself failed (worker lost, folder missing on a node)
                    record = dict(config=run["config"], key=run["key"], status="failed", exit_code=None,
                                  error=_ray_error(exc))
                state.done(run["key"], record)
                _report_done(say, run, record, out)
                if bar is not None:
                    bar.update(1)
    except BaseException:
        with _no_sigint():
            for ref in inflight:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)  # KeyboardInterrupt inside the task: it stops its run and records it
            deadline = time.monotonic() + STOP_GRACE + 10
            for ref, run in inflight.items():
                with contextlib.suppress(Exception):
                    ray.wait([ref], timeout=max(0.0, deadline - time.monotonic()))
                # A run that ended while the sweep was stopping keeps what its marker says.
                if run_complete(out / RUNS_FOLDER / run["key"], run["config"]):
                    state.done(run["key"], read_json(out / RUNS_FOLDER / run["key"] / MARKER, "run marker"))
                else:
                    state.statuses[run["key"]] = "interrupted"
                    state.counts["interrupted"] += 1
        raise
    finally:
        if started_here:
            ray.shutdown()


def _check_reachable(address: str) -> None:
    """Refuse a ``host:port`` (or ``ray://host:port``) nobody listens on: Ray would retry the connection
    for minutes inside C++ code, where not even SIGTERM can stop it."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # 'auto', or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ValueError(f"--address {address}: no Ray cluster answers there ({exc.strerror or exc})") from None


def _ray_error(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    from lavaplast.outputs import describe_error

    return describe_error(cause, limit=300)


# --- command line -----------------------------------------------------------------------


def sweep_parser() -> argparse.ArgumentParser:
    """The parser of ``lavaplast sweep``."""
    p = argparse.ArgumentParser(
        prog="lavaplast sweep",
        description="Run every run of a sweep file (command, options, grid, seeds) as a subprocess, skipping runs "
                    "already complete in --out; or, as 'lavaplast sweep report DIR', tabulate a sweep's results "
                    "(mean +- std over seeds). Format: docs/sweeps.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("file", metavar="SWEEP.toml", help="the sweep file, or the word 'report'")
    p.add_argument("dir", nargs="?", default=None, metavar="DIR", help="report: the sweep's folder")
    p.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local: subprocesses on this machine; ray: Ray tasks (pip install 'lavaplast[ray]')")
    p.add_argument("--address", default=None,
                   help="ray: the cluster to join (e.g. 'auto' or ray://host:10001); default: a local instance")
    p.add_argument("--max-parallel", type=int, default=None,
                   help="runs at once (default: local, CPUs // resources.num_cpus; ray, as many as fit)")
    p.add_argument("--out", default=None,
                   help="sweep folder (default runs/sweeps/<file stem>); report: where report.md, report.csv and "
                        "the plots go (default DIR)")
    p.add_argument("--dry-run", action="store_true", help="check the file and list its runs; run nothing")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="draw the progress bar even when stderr is not a terminal")
    group.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bar")
    return p


def sweep_main(words: Sequence[str]) -> int:
    """``lavaplast sweep ...`` (``words`` after ``sweep``); 0 when every run is complete, 1 if some failed."""
    args = sweep_parser().parse_args(list(words))
    if args.file == "report" and args.dir is not None:
        from lavaplast.experiments.sweep_report import sweep_report

        given = [flag for flag, value in (("--executor", args.executor != "local"), ("--address", args.address),
                                          ("--max-parallel", args.max_parallel), ("--dry-run", args.dry_run)) if value]
        if given:
            raise ValueError(f"{given[0]} is an option of running a sweep, not of 'lavaplast sweep report'")

        report = sweep_report(args.dir, args.out)
        print(report["markdown"])
        print(f"wrote {', '.join(str(p) for p in report['files'])}")
        return 0
    if args.dir is not None:
        raise ValueError(f"lavaplast sweep takes one sweep file, got a second word {args.dir!r} "
                         "(for a report: lavaplast sweep report DIR)")
    if args.file == "report" and not Path("report").is_file():
        raise ValueError("lavaplast sweep report needs the sweep's folder: lavaplast sweep report DIR")
    if args.dry_run:
        sweep = load_sweep(args.file)
        out = Path(args.out) if args.out else default_out(args.file)
        done = 0
        for r in sweep.runs:
            complete = run_complete(out / RUNS_FOLDER / r["key"], r["config"])
            done += complete
            print(f"{r['key']}  {'complete' if complete else 'to run  '}  {_describe_run(r)}")
        print(f"{len(sweep.runs)} runs, {done} complete in {out}")
        return 0
    result = run_sweep(args.file, args.out, executor=args.executor, address=args.address,
                       max_parallel=args.max_parallel, progress=args.progress)
    failed = [r for r in result["runs"] if r["status"] != "complete"]
    if failed:
        print(f"lavaplast sweep: {len(failed)} of {len(result['runs'])} runs did not complete; their logs: "
              + ", ".join(f"{r['folder']}/{RUN_LOG}" for r in failed[:5]) + (" ..." if len(failed) > 5 else ""),
              file=sys.stderr)
        return 1
    return 0
