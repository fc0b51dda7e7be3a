"""Writing run outputs so that a stopped job never leaves a half-written file.

Every writer here writes into a temporary file in the destination folder,
flushes it to disk (``fsync``), then renames it over the destination with
``os.replace``, which is atomic on POSIX file systems. A job killed at any
instant (``timeout``, a batch scheduler, ``docker stop``, SIGKILL) leaves the
destination either as it was or complete, never truncated; at worst a
hidden ``.<name>.<random>.lavaplast-part`` file stays behind, which
:func:`prepare_run_dir` removes the next time the folder is used.

Run folders: :func:`prepare_run_dir` (and the context manager
:func:`run_folder`) decide whether a run may write into a folder: a new run
refuses a folder that already holds a run's outputs unless asked to
overwrite them, and a failed run removes the empty folders it created.

This module needs neither Lava nor torch (torch is imported only to save a
checkpoint).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

TEMP_SUFFIX = ".lavaplast-part"
# Files whose presence marks a folder as holding a run.
RUN_MARKERS = ("results.json", "checkpoint.pt")


class RunFolderError(ValueError):
    """An output folder cannot be used: it holds another run, is a file, or is not writable."""


# --- atomic writers ----------------------------------------------------------


def _open_temp(folder: Path, name: str) -> tuple[int, Path]:
    # os.open with 0o666 lets the umask decide the permissions, as for a plain open().
    while True:
        tmp = folder / f".{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; some file systems cannot fsync a folder.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Create or replace ``path`` with what ``write(binary_file)`` writes, atomically.

    The data goes to a temporary file in the same folder, is flushed to disk,
    and only then renamed over ``path``; if anything fails or the process is
    stopped before the rename, ``path`` keeps its previous content. An
    ``OSError`` (disk full, no permission) is re-raised as an ``OSError``
    whose message names ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = _open_temp(path.parent, path.name)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            message = f"cannot write {path}: {exc.strerror or exc}"
            raise (OSError(exc.errno, message) if exc.errno is not None else OSError(message)) from exc
        raise
    _fsync_folder(path.parent)
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def json_safe(value):
    """``value`` made JSON-ready: non-finite floats become ``None``, numpy values Python ones.

    NaN and infinities are not JSON (``json.dumps`` would write the bare
    tokens ``NaN``/``Infinity`` that strict parsers reject), so they are
    stored as ``null``. Tuples become lists. Anything else that JSON cannot
    hold is left as is, so that :func:`write_json` raises ``TypeError`` for
    it instead of dropping it.
    """
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def write_json(path: str | os.PathLike, data, indent: int = 2) -> Path:
    """Write ``data`` as strict JSON, atomically.

    NaN and infinite floats are written as ``null`` (see :func:`json_safe`);
    the file never contains the non-JSON tokens ``NaN`` or ``Infinity``.
    Values JSON cannot represent raise ``TypeError``; nothing is dropped.
    """
    text = json.dumps(json_safe(data), indent=indent, allow_nan=False)
    return write_text(path, text + "\n")


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    """Write a CSV file (one header row, then ``rows``) atomically."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def save_npz(path: str | os.PathLike, *, compressed: bool = False, **arrays) -> Path:
    """Save ``arrays`` as an ``.npz`` archive at ``path`` (no suffix added), atomically;
    zip-compressed with ``compressed``."""
    save = np.savez_compressed if compressed else np.savez
    return atomic_write(path, lambda f: save(f, **arrays))


def save_torch(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (a checkpoint is complete or absent)."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Render a matplotlib figure to ``path`` atomically; the format comes from the suffix (default PNG)."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    return atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi))


# --- reading back --------------------------------------------------------------


def describe_error(exc: BaseException, limit: int = 120) -> str:
    """``"TypeName: first sentence"`` of an exception, on one line, for messages that quote it."""
    text = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_checkpoint(path: str | os.PathLike, keys: set, command: str,
                    hint: str = "delete it, start over with --overwrite, or use another --out") -> dict:
    """A checkpoint saved by :func:`save_torch` holding at least ``keys``; a damaged or foreign file is a
    one-line ``ValueError`` naming it, the ``command`` that writes such checkpoints and ``hint``."""
    import torch

    try:
        ckpt = torch.load(path, weights_only=False, map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError... on a damaged file
        raise ValueError(f"checkpoint {path} cannot be read ({describe_error(exc)}); it is truncated "
                         f"or not a lavaplast checkpoint: {hint}") from exc
    if not isinstance(ckpt, dict) or not set(keys) <= set(ckpt):
        raise ValueError(f"{path} is not a checkpoint of '{command}': {hint}")
    return ckpt


def read_json(path: str | os.PathLike, what: str = "file") -> dict:
    """Load a JSON object from ``path``; a truncated or foreign file is a ``ValueError`` naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{what} {path} cannot be read ({describe_error(exc)}); it is truncated or not "
                         "written by lavaplast") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} holds a JSON {type(data).__name__}, expected an object")
    return data


def config_differences(saved: dict, current: dict) -> list[str]:
    """``"key: saved value vs current value"`` for every key whose values differ."""
    missing = object()
    diffs = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, missing), current.get(key, missing)
        if a != b:
            show = lambda v: "(absent)" if v is missing else repr(v)  # noqa: E731
            diffs.append(f"{key} {show(a)} saved vs {show(b)} now")
    return diffs


# --- run folders ----------------------------------------------------------------


def _run_markers(folder: Path) -> list[str]:
    return [name for name in RUN_MARKERS if (folder / name).exists()]


def prepare_run_dir(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    resume: bool = False,
    outputs: Sequence[str] = (),
) -> Optional[Path]:
    """Make ``path`` ready to receive a run's outputs; return the top folder it created (or ``None``).

    * A folder that holds a run (``results.json`` or ``checkpoint.pt``) is
      refused with :class:`RunFolderError`, unless ``resume`` (the caller
      continues that run; nothing is removed) or ``overwrite`` (the markers
      and the files named in ``outputs`` are deleted first, so no file of the
      old run can be mistaken for one of the new run; nothing else in the
      folder is touched).
    * A path that is an existing file, cannot be created or is not writable
      is refused with :class:`RunFolderError` naming it and the reason.
    * Missing folders are created; leftover temporary files of an earlier
      killed write are removed.
    """
    if overwrite and resume:
        raise ValueError("overwrite and resume exclude each other: resume continues the run that overwrite "
                         "would delete")
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"output folder {folder} is an existing file, not a folder; choose another --out")
    created = None
    if not folder.exists():
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise RunFolderError(f"cannot create output folder {folder}: {exc.strerror or exc}") from exc
        created = missing[-1]
    try:
        _check_writable(folder)
        markers = _run_markers(folder)
        if markers and not (overwrite or resume):
            raise RunFolderError(
                f"output folder {folder} already holds a run ({', '.join(markers)}); choose another --out, "
                "or replace it with --overwrite" + (" or continue it with --resume" if "checkpoint.pt" in markers
                                                    else ""))
        stale = list(folder.glob(f".*{TEMP_SUFFIX}"))
        if overwrite:
            stale += [folder / name for name in dict.fromkeys([*RUN_MARKERS, *outputs])]
        for p in stale:
            try:
                p.unlink(missing_ok=True)
            except OSError as exc:
                raise RunFolderError(f"cannot remove {p} from output folder {folder}: {exc.strerror or exc}") \
                    from exc
    except BaseException:
        remove_created(folder, created)
        raise
    return created


def _check_writable(folder: Path) -> None:
    try:
        fd, tmp = _open_temp(folder, "write-test")
    except OSError as exc:
        raise RunFolderError(f"output folder {folder} is not writable: {exc.strerror or exc}") from exc
    os.close(fd)
    os.unlink(tmp)


def remove_created(folder: str | os.PathLike, created: Optional[Path]) -> None:
    """Remove ``folder`` and its parents up to ``created`` while they are empty."""
    if created is None:
        return
    folder, created = Path(folder), Path(created)
    for p in (folder, *folder.parents):
        try:
            p.rmdir()
        except OSError:
            return  # not empty (the run wrote something) or already gone
        if p == created:
            return


@contextlib.contextmanager
def run_folder(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    resume: bool = False,
    outputs: Sequence[str] = (),
) -> Iterator[Path]:
    """:func:`prepare_run_dir`, then, if the body fails (error or interrupt),
    remove the folders it created as long as nothing was written into them."""
    created = prepare_run_dir(path, overwrite=overwrite, resume=resume, outputs=outputs)
    try:
        yield Path(path)
    except BaseException:
        remove_created(path, created)
        raise
