"""MD5 verification of IDX files, cached per process."""

from __future__ import annotations

import gzip
import hashlib
import os
import pathlib

from .registry import GZ_MD5, MD5

_CHUNK = 1 << 20
# (resolved path, size, mtime_ns, dataset, stem) -> verification result.
_CACHE: dict[tuple, bool] = {}


def md5_bytes(data: bytes) -> str:
    """Return the hex MD5 digest of ``data``."""
    return hashlib.md5(data).hexdigest()


def md5_file(path: str | os.PathLike, uncompress: bool = False) -> str:
    """Return the hex MD5 of a file, or of its gunzipped content if ``uncompress``."""
    digest = hashlib.md5()
    opener = gzip.open if uncompress else open
    with opener(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_uncached(dataset: str, stem: str, path: pathlib.Path) -> bool:
    if path.suffix != ".gz":
        return md5_file(path) == MD5[dataset][stem]
    if md5_file(path) == GZ_MD5[dataset][stem]:
        return True
    try:
        return md5_file(path, uncompress=True) == MD5[dataset][stem]
    except (OSError, EOFError):
        return False


def verify_file(dataset: str, stem: str, path: str | os.PathLike) -> bool:
    """Check ``path`` against the published MD5 of ``dataset``'s file ``stem``.

    ``stem`` is the uncompressed file name (e.g. ``"train-images-idx3-ubyte"``).
    A ``.gz`` file passes if either its own MD5 equals the official archive's
    or its decompressed content matches. Results are cached by path, size
    and modification time, so repeated calls cost one ``stat``.
    """
    path = pathlib.Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, dataset, stem)
    if key not in _CACHE:
        _CACHE[key] = _check_uncached(dataset, stem, path)
    return _CACHE[key]


def clear_cache() -> None:
    """Forget all cached verification results."""
    _CACHE.clear()
