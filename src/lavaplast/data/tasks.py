"""Task streams for continual learning built from the datasets in this package.

Every builder returns a ``list[Task]`` with flattened float32 inputs in
[0, 1]. All accept ``train_limit`` / ``test_limit``: keep at most the first
k examples after a shuffle seeded by ``seed`` (the same subset for every
task of a stream), so tests and demos can run on small slices.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .datasets import load_dataset
from .registry import DISPLAY_NAMES, canonical_name

N_CLASSES = 10
PROTOCOLS = ("permuted", "sequence", "stream", "split")


@dataclass
class Task:
    """One learning task: flattened train/test data and the label space size.

    ``x_*`` are float32 ``(N, D)`` in [0, 1]; ``y_*`` are int64 ``(N,)`` with
    values in ``0..n_classes-1``. Inputs are coerced to those dtypes.
    ``info`` holds builder details (source dataset, image shape, the pixel
    permutation or class group) for logging and inspection.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.x_train = np.asarray(self.x_train, dtype=np.float32)
        self.x_test = np.asarray(self.x_test, dtype=np.float32)
        self.y_train = np.asarray(self.y_train, dtype=np.int64)
        self.y_test = np.asarray(self.y_test, dtype=np.int64)
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.ndim != 2:
                raise ValueError(f"task {self.name!r}: x_{part} must be 2-D (N, D), got shape {x.shape}")
            if y.shape != (len(x),):
                raise ValueError(f"task {self.name!r}: y_{part} must have shape ({len(x)},), got {y.shape}")
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ValueError(
                f"task {self.name!r}: x_train has {self.x_train.shape[1]} features "
                f"but x_test has {self.x_test.shape[1]}"
            )
        if not isinstance(self.n_classes, numbers.Integral) or self.n_classes < 1:
            raise ValueError(f"task {self.name!r}: n_classes must be a positive int, got {self.n_classes!r}")
        for part, y in (("train", self.y_train), ("test", self.y_test)):
            if y.size and (y.min() < 0 or y.max() >= self.n_classes):
                raise ValueError(f"task {self.name!r}: y_{part} has labels outside 0..{self.n_classes - 1}")

    @property
    def n_features(self) -> int:
        """Input dimension D."""
        return self.x_train.shape[1]

    def __repr__(self) -> str:
        return (
            f"Task(name={self.name!r}, train={self.x_train.shape}, "
            f"test={self.x_test.shape}, n_classes={self.n_classes})"
        )


# --- helpers ----------------------------------------------------------------


def _check_positive_int(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        expected = "a positive int or None" if allow_none else "a positive int"
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def _subset(x: np.ndarray, y: np.ndarray, limit: int | None, seed: int):
    """First ``limit`` items after a seeded shuffle; everything if ``limit`` is None."""
    if limit is None:
        return x, y
    index = np.random.default_rng(seed).permutation(len(x))[:limit]
    return x[index], y[index]


def _flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)


def _load_split_pair(dataset, data_dir, seed, train_limit, test_limit):
    """Load a dataset as flattened float (x_train, y_train, x_test, y_test, image shape)."""
    _check_seed(seed)
    _check_positive_int("train_limit", train_limit, allow_none=True)
    _check_positive_int("test_limit", test_limit, allow_none=True)
    xtr, ytr = load_dataset(dataset, "train", data_dir=data_dir)
    xte, yte = load_dataset(dataset, "test", data_dir=data_dir)
    shape = xtr.shape[1:]
    xtr, ytr = _subset(xtr, ytr, train_limit, seed)
    xte, yte = _subset(xte, yte, test_limit, seed)
    return _flat(xtr), ytr, _flat(xte), yte, shape


# --- builders ---------------------------------------------------------------


def permuted_tasks(
    n_tasks: int,
    dataset: str = "mnist",
    seed: int = 0,
    permute_first: bool = True,
    data_dir=None,
    train_limit: int | None = None,
    test_limit: int | None = None,
) -> list[Task]:
    """Permuted-pixel tasks: task k applies one fixed pixel permutation to all images.

    Permutations come from ``np.random.default_rng(seed)``, one per task in
    order. With ``permute_first=False`` task 1 uses the identity while the
    other tasks keep the permutations they would have had otherwise.
    Names are ``"p<Dataset>-<k>"``, e.g. ``"pMNIST-1"``; ``task.info["permutation"]``
    holds the column order, i.e. ``x_task = x_original[:, permutation]``.
    Each task owns its permuted copy (about 220 MB per task for full MNIST).
    """
    _check_positive_int("n_tasks", n_tasks)
    name = canonical_name(dataset)
    xtr, ytr, xte, yte, shape = _load_split_pair(name, data_dir, seed, train_limit, test_limit)
    rng = np.random.default_rng(seed)
    n_pixels = xtr.shape[1]
    perms = [rng.permutation(n_pixels) for _ in range(n_tasks)]
    if not permute_first:
        perms[0] = np.arange(n_pixels)
    prefix = "p" + DISPLAY_NAMES[name]
    return [
        Task(f"{prefix}-{k}", xtr[:, p], ytr, xte[:, p], yte, N_CLASSES,
             info={"dataset": name, "image_shape": shape, "permutation": p})
        for k, p in enumerate(perms, start=1)
    ]


def dataset_sequence(
    names: Sequence[str] = ("mnist", "fashion-mnist"),
    data_dir=None,
    seed: int = 0,
    train_limit: int | None = None,
    test_limit: int | None = None,
) -> list[Task]:
    """One task per dataset in ``names`` (repeats allowed, e.g. MNIST -> FMNIST -> MNIST).

    All datasets must share one image size. A repeated dataset gets the
    same (shared, not copied) arrays again and a name suffixed with its
    occurrence ("MNIST-2").
    """
    if isinstance(names, str) or len(names) == 0:
        raise ValueError(f"names must be a non-empty sequence of dataset names, got {names!r}")
    canon = [canonical_name(n) for n in names]
    loaded = {
        n: _load_split_pair(n, data_dir, seed, train_limit, test_limit) for n in dict.fromkeys(canon)
    }
    shapes = {n: loaded[n][4] for n in loaded}
    if len(set(shapes.values())) > 1:
        raise ValueError(
            "all datasets in a sequence need the same image size, got "
            + ", ".join(f"{n}: {'x'.join(map(str, s))}" for n, s in shapes.items())
        )
    tasks, seen = [], {}
    for n in canon:
        seen[n] = seen.get(n, 0) + 1
        label = DISPLAY_NAMES[n] + (f"-{seen[n]}" if seen[n] > 1 else "")
        xtr, ytr, xte, yte, shape = loaded[n]
        tasks.append(Task(label, xtr, ytr, xte, yte, N_CLASSES,
                          info={"dataset": n, "image_shape": shape}))
    return tasks


def stream_tasks(
    dataset: str = "fashion-mnist",
    n_subsets: int = 60,
    seed: int = 0,
    data_dir=None,
    train_limit: int | None = None,
    test_limit: int | None = None,
) -> list[Task]:
    """Cut the (shuffled) training set into ``n_subsets`` disjoint parts, learned in turn.

    Parts differ in size by at most one example and together cover the
    training set (or its ``train_limit`` subset) exactly once. Every task's
    test set is the full test set (or its ``test_limit`` subset).
    """
    _check_positive_int("n_subsets", n_subsets)
    name = canonical_name(dataset)
    xtr, ytr, xte, yte, shape = _load_split_pair(name, data_dir, seed, train_limit, test_limit)
    if n_subsets > len(xtr):
        raise ValueError(f"n_subsets must be in 1..{len(xtr)} (training set size), got {n_subsets}")
    # Derived stream so the order differs from the train_limit subset draw.
    order = np.random.default_rng([seed, 1]).permutation(len(xtr))
    return [
        Task(f"{DISPLAY_NAMES[name]}-subset-{k}", xtr[part], ytr[part], xte, yte, N_CLASSES,
             info={"dataset": name, "image_shape": shape, "subset": k})
        for k, part in enumerate(np.array_split(order, n_subsets), start=1)
    ]


def class_split_tasks(
    dataset: str = "mnist",
    splits: Sequence[Sequence[int]] = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9)),
    seed: int = 0,
    data_dir=None,
    train_limit: int | None = None,
    test_limit: int | None = None,
) -> list[Task]:
    """Class-incremental tasks: task k keeps only the classes in ``splits[k]``.

    Labels keep their original class ids and ``n_classes`` stays 10, so a
    single 10-way output head is shared by all tasks. Limits apply to the
    whole dataset before filtering.
    """
    if isinstance(splits, str) or len(splits) == 0:
        raise ValueError(f"splits must be a non-empty sequence of class groups, got {splits!r}")
    groups = []
    for group in splits:
        group = tuple(group) if not isinstance(group, numbers.Integral) else (group,)
        bad = [c for c in group if isinstance(c, bool) or not isinstance(c, numbers.Integral)
               or not 0 <= c < N_CLASSES]
        if not group or bad or len(set(group)) != len(group):
            raise ValueError(
                f"each split must be a non-empty group of distinct class ids in 0..{N_CLASSES - 1}, "
                f"got {group!r}"
            )
        groups.append(tuple(int(c) for c in group))
    name = canonical_name(dataset)
    xtr, ytr, xte, yte, shape = _load_split_pair(name, data_dir, seed, train_limit, test_limit)
    tasks = []
    for group in groups:
        tr, te = np.isin(ytr, group), np.isin(yte, group)
        label = f"{DISPLAY_NAMES[name]}-classes-{''.join(map(str, group))}"
        if not tr.any() or not te.any():
            raise ValueError(f"task {label}: no examples of classes {group} (limits too small?)")
        tasks.append(Task(label, xtr[tr], ytr[tr], xte[te], yte[te], N_CLASSES,
                          info={"dataset": name, "image_shape": shape, "classes": group}))
    return tasks


_BUILDERS = {
    "permuted": permuted_tasks,
    "sequence": dataset_sequence,
    "stream": stream_tasks,
    "split": class_split_tasks,
}


def make_tasks(protocol: str, **kwargs) -> list[Task]:
    """Build tasks for ``protocol`` ("permuted", "sequence", "stream", "split").

    ``kwargs`` are passed to the matching builder: :func:`permuted_tasks`,
    :func:`dataset_sequence`, :func:`stream_tasks`, :func:`class_split_tasks`.
    """
    key = protocol.strip().lower() if isinstance(protocol, str) else protocol
    if key not in _BUILDERS:
        raise ValueError(f"unknown protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
    return _BUILDERS[key](**kwargs)
