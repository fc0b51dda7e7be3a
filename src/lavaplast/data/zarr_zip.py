"""Minimal reader for zarr v3 arrays stored in a zip archive.

Only what the packaged MNIST store needs: regular chunk grid, default
chunk keys, and the ``bytes`` + ``blosc`` codec chain. Anything else is
rejected with a ``ValueError`` rather than decoded wrongly.
"""

from __future__ import annotations

import itertools
import json
import math
import zipfile

import numpy as np


def _array_dtype(meta: dict, name: str) -> np.dtype:
    codecs = meta.get("codecs", [])
    codec_names = [c.get("name") for c in codecs]
    if codec_names != ["bytes", "blosc"]:
        raise ValueError(f"zarr array {name!r}: unsupported codecs {codec_names}")
    dtype = np.dtype(meta["data_type"])
    endian = codecs[0].get("configuration", {}).get("endian", "little")
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder("<" if endian == "little" else ">")
    return dtype


def read_zarr_array(store: zipfile.ZipFile, name: str) -> np.ndarray:
    """Read the zarr v3 array ``name`` from an open zip ``store``.

    Shape, chunking and dtype come from ``<name>/zarr.json``. Edge chunks
    are stored padded to the full chunk shape and are truncated here;
    absent chunks take the array's fill value.
    """
    from numcodecs import Blosc  # imported lazily: only fetch needs it

    meta = json.loads(store.read(f"{name}/zarr.json"))
    if meta.get("zarr_format") != 3 or meta.get("node_type") != "array":
        raise ValueError(f"{name!r} is not a zarr v3 array")
    if meta["chunk_grid"]["name"] != "regular":
        raise ValueError(f"zarr array {name!r}: unsupported chunk grid")
    key_enc = meta.get("chunk_key_encoding", {})
    if key_enc.get("name", "default") != "default":
        raise ValueError(f"zarr array {name!r}: unsupported chunk key encoding")
    sep = key_enc.get("configuration", {}).get("separator", "/")

    shape = tuple(meta["shape"])
    chunks = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
    dtype = _array_dtype(meta, name)
    out = np.full(shape, meta.get("fill_value", 0), dtype=dtype.newbyteorder("="))
    codec = Blosc()
    available = set(store.namelist())

    grid = [range(math.ceil(s / c)) for s, c in zip(shape, chunks)]
    for index in itertools.product(*grid):
        key = f"{name}/c" + "".join(f"{sep}{i}" for i in index)
        if key not in available:
            continue
        raw = codec.decode(store.read(key))
        chunk = np.frombuffer(raw, dtype=dtype)
        if chunk.size != math.prod(chunks):
            raise ValueError(f"zarr chunk {key!r}: {chunk.size} items, expected {math.prod(chunks)}")
        chunk = chunk.reshape(chunks)
        target = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(index, chunks, shape))
        out[target] = chunk[tuple(slice(0, t.stop - t.start) for t in target)]
    return out
