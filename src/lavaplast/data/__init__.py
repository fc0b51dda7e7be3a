"""Datasets (MNIST, Fashion-MNIST and small packaged ones) and continual-learning task streams."""

from .datasets import (
    DataCorruptError,
    DataMissingError,
    dataset_status,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_mnist_5k,
)
from .fetch import FetchError, fetch
from .idx import read_idx, write_idx
from .paths import data_dir
from .registry import DATASETS
from .tasks import (
    PROTOCOLS,
    Task,
    class_split_tasks,
    dataset_sequence,
    make_tasks,
    permuted_tasks,
    stream_tasks,
)

__all__ = [
    "DATASETS",
    "PROTOCOLS",
    "Task",
    "class_split_tasks",
    "dataset_sequence",
    "make_tasks",
    "permuted_tasks",
    "stream_tasks",
    "DataCorruptError",
    "DataMissingError",
    "FetchError",
    "data_dir",
    "dataset_status",
    "fetch",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_mnist_5k",
    "read_idx",
    "write_idx",
]
