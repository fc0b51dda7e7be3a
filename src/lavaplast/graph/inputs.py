"""The input of a graph: what its ``[input]`` table (or a ``.npy`` file) feeds the first connection.

Every backend takes the same :class:`GraphInput`: an array ``(T, N, n_in)``
of what the source sends at each time step (spikes or currents) for ``N``
samples, the samples' labels when they come from a dataset, and the static
``values`` ``(N, n_in)`` the encoding started from. Dataset pixels become
``pixel / 255 * scale`` and then, per time step,

- ``rate``: a Bernoulli spike with probability ``value`` (clipped to [0, 1]),
  drawn with ``run.seed`` (:func:`lavaplast.reference.spiking.rate_encode`);
- ``current``: ``value`` itself, every step;
- ``latency``: one spike at step ``round((1 - v) * (T - 1))`` with ``v`` the
  value clipped to [0, 1] (ties to even); a value of 0 never fires.

Lava is not imported here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from lavaplast.graph.spec import GraphSpec, GraphSpecError


@dataclass
class GraphInput:
    """What a graph runs on.

    ``data``: ``(T, N, n_in)`` float64, the source's output at each step;
    ``values``: ``(N, n_in)`` the static values behind it (dataset pixels
    scaled, or the time mean of a user array); ``labels``: ``(N,)`` ints or
    ``None``; ``source``: a short description for summaries.
    """

    data: np.ndarray
    values: np.ndarray
    labels: Optional[np.ndarray]
    source: str

    @property
    def steps(self) -> int:
        return self.data.shape[0]

    @property
    def samples(self) -> int:
        return self.data.shape[1]

    def mean_drive(self, encoding: Optional[str]) -> np.ndarray:
        """The expected input per step ``(N, n_in)``, what the rate-based backend feeds its first layer:
        :func:`mean_drive` of the values for a dataset encoding; for a user array (``encoding=None``)
        or latency coding (``1 / T`` where a value fires), the array's mean over time."""
        if encoding in ("rate", "current"):
            return mean_drive(self.values, encoding)
        return self.data.mean(axis=0)


def mean_drive(values: np.ndarray, encoding: str) -> np.ndarray:
    """The expected input per step of dataset ``values`` under ``encoding``: the firing
    probabilities (``rate``: values clipped to [0, 1]) or the values themselves (``current``)."""
    if encoding == "rate":
        return np.clip(values, 0.0, 1.0)
    if encoding == "current":
        return np.asarray(values, dtype=np.float64)
    raise ValueError(f"mean_drive: encoding must be 'rate' or 'current', got {encoding!r}")


def encode(values: np.ndarray, encoding: str, steps: int, seed: int = 0) -> np.ndarray:
    """``(steps, N, n)`` source output for ``values`` ``(N, n)`` under ``encoding`` (see the module docstring)."""
    from lavaplast.reference.spiking import rate_encode

    values = np.asarray(values, dtype=np.float64)
    steps = int(steps)
    if encoding == "rate":
        return rate_encode(np.clip(values, 0.0, 1.0), steps, seed=seed)
    if encoding == "current":
        return np.broadcast_to(values, (steps, *values.shape)).copy()
    if encoding == "latency":
        v = np.clip(values, 0.0, 1.0)
        fire_at = np.rint((1.0 - v) * (steps - 1)).astype(np.int64)
        data = np.zeros((steps, *values.shape))
        rows, cols = np.nonzero(v > 0)
        data[fire_at[rows, cols], rows, cols] = 1.0
        return data
    raise ValueError(f"unknown input encoding {encoding!r}; expected rate, current or latency")


def dataset_values(spec: GraphSpec, split: Optional[str] = None, samples: Optional[int] = None,
                   data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``samples`` (default ``input.samples``) images of the input dataset's ``split``
    (default ``input.split``), flattened and scaled: ``(values (N, n_in), labels (N,))``."""
    from lavaplast.data import load_dataset

    inp = spec.input
    where = spec.where
    if inp.source != "dataset":
        raise GraphSpecError(f"{where}: input.source: this graph reads an array, not a dataset")
    split = split or inp.split
    samples = inp.samples if samples is None else int(samples)
    images, labels = load_dataset(inp.dataset, split, data_dir=data_dir)
    x = images.reshape(len(images), -1)
    if x.shape[1] != inp.size:
        raise GraphSpecError(f"{where}: input.size: {inp.dataset} images have {x.shape[1]} pixels, "
                             f"but the graph declares {inp.size}")
    if samples > len(x):
        raise GraphSpecError(f"{where}: input.samples: {samples} samples asked for, but the {split} split of "
                             f"{inp.dataset} has {len(x)}")
    return x[:samples].astype(np.float64) / 255.0 * inp.scale, labels[:samples].copy()


def load_input_array(path: str | os.PathLike, n_in: int) -> np.ndarray:
    """A user input array ``(T, B, n_in)`` from a ``.npy`` file, checked: a ``ValueError`` names the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"input file {path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as err:  # a truncated or foreign file raises many kinds of errors
        raise ValueError(f"input file {path}: cannot read it as a .npy array ({type(err).__name__}: {err})") \
            from None
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "biuf":
        raise ValueError(f"input file {path}: expected a numeric array, got dtype {getattr(data, 'dtype', None)}")
    if data.ndim != 3 or data.shape[2] != n_in or data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(f"input file {path}: array has shape {data.shape}, expected (T, B, {n_in}) "
                         "(time steps, samples, inputs) with T, B >= 1")
    data = data.astype(np.float64)
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise ValueError(f"input file {path}: {bad} entries are NaN or infinite; every input must be finite")
    return data


def build_input(spec: GraphSpec, *, steps: Optional[int] = None, input_file=None, data_dir=None) -> GraphInput:
    """The input of ``spec``: its dataset encoded over ``steps`` (default ``run.steps``) time steps,
    its array file, or ``input_file`` (``(T, B, n_in)`` ``.npy``), which overrides both."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1):
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    file = input_file if input_file is not None else (spec.input.file if spec.input.source == "array" else None)
    if file is None and spec.input.source == "external":
        where = spec.where
        raise GraphSpecError(f"{where}: input.source: the graph's input is external (it fixes only the width, "
                             f"{spec.input.size}); pass a (T, B, {spec.input.size}) array with --input FILE.npy")
    if file is not None:
        if steps is not None:
            raise ValueError(f"steps: an input array sets the number of time steps itself ({file}); "
                             "drop the steps override")
        data = load_input_array(file, spec.input.size)
        return GraphInput(data=data, values=data.mean(axis=0), labels=None, source=f"array {file}")
    values, labels = dataset_values(spec, data_dir=data_dir)
    T = spec.run.steps if steps is None else int(steps)
    data = encode(values, spec.input.encoding, T, seed=spec.run.seed)
    inp = spec.input
    return GraphInput(data=data, values=values, labels=labels,
                      source=f"{inp.dataset}/{inp.split}, {len(values)} samples, {inp.encoding} coding")
