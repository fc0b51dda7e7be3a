"""Reading and writing the IDX file format used by MNIST-style datasets.

An IDX file starts with a 4-byte magic ``00 00 <dtype code> <ndim>``,
followed by ``ndim`` big-endian uint32 dimensions and the row-major data
(big-endian for multi-byte types). Gzip-compressed files are handled
transparently on read, and written when the path ends in ``.gz``.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import struct

import numpy as np

# IDX dtype code -> big-endian numpy dtype.
_CODE_TO_DTYPE = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_KIND_SIZE_TO_CODE = {(dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx_bytes(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse an uncompressed IDX byte string; ``name`` is used in errors."""
    if len(data) < 4:
        raise ValueError(f"{name}: not an IDX file (only {len(data)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _CODE_TO_DTYPE:
        raise ValueError(f"{name}: bad IDX magic 0x{data[:4].hex()}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX header (expected {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _CODE_TO_DTYPE[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{name}: IDX size mismatch: header says shape {shape} "
            f"({expected} data bytes) but file has {len(data) - header}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    # astype copies, which also makes the result writable and native-endian.
    return arr.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a numpy array.

    Compression is detected from the file content, not the name. Raises
    ``ValueError`` naming the file if it is malformed.
    """
    path = pathlib.Path(path)
    data = path.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: corrupt gzip stream ({exc})") from exc
    return read_idx_bytes(data, str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialise ``array`` to uncompressed IDX bytes.

    Supported dtypes: uint8, int8, int16, int32, float32, float64.
    Other dtypes raise ``ValueError``; cast explicitly first.
    """
    array = np.asarray(array)
    code = _KIND_SIZE_TO_CODE.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise ValueError(
            f"IDX cannot store dtype {array.dtype}; use one of "
            "uint8, int8, int16, int32, float32, float64"
        )
    if array.ndim > 255:
        raise ValueError(f"IDX supports at most 255 dimensions, got {array.ndim}")
    if any(n >= 2**32 for n in array.shape):
        raise ValueError(f"IDX dimensions must be < 2**32, got shape {array.shape}")
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    body = np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()
    return header + body


def write_idx(path: str | os.PathLike, array: np.ndarray) -> pathlib.Path:
    """Write ``array`` as an IDX file; gzip-compress if ``path`` ends in ``.gz``.

    Returns the path written.
    """
    path = pathlib.Path(path)
    data = idx_bytes(array)
    if path.suffix == ".gz":
        # mtime=0 keeps the output byte-identical across runs.
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path
