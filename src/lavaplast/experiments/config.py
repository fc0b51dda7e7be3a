"""Settings of a continual-learning run, validated in one place.

Configs normalise what they are given, so that equivalent settings compare
equal as ``to_dict()`` (how a resumed run recognises its checkpoint) and
``to_dict()`` stays JSON-serialisable: per-layer values become one number
when they are all equal, dataset names their canonical spelling, a data
folder equal to the default ``None``, numbers plain ``int``/``float``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

from lavaplast.core import (
    check_ber,
    check_device,
    check_choice,
    check_int,
    check_nonnegative,
    check_optional_int,
    check_positive,
    check_sizes,
    per_layer,
)

PROTOCOLS = ("permuted", "sequence", "stream", "split")
MODELS = ("bnn", "fp")
QUANTIZERS = ("binary", "ternary")
BATCHNORM = ("batch", "running")
EVAL_EVERY = ("epoch", "task")
# The class groups of the split protocol (data.class_split_tasks' default).
SPLIT_TASKS = 5
# Batch-statistic BatchNorm needs two samples: smaller batches are skipped.
MIN_BATCH = 2


def compact_per_layer(what: str, value, n_layers: int) -> Union[float, list]:
    """``value`` as one float if every layer gets the same, else one float per layer.

    ``meta=[0, 0, 0]`` and ``meta=0`` (3 layers) both become ``0.0``; each
    value must be a finite number >= 0 (see :func:`lavaplast.core.per_layer`).
    """
    values = per_layer(what, value, n_layers)
    return values[0] if len(set(values)) == 1 else values


def normalise_data_dir(value) -> Optional[str]:
    """The data folder as an absolute path string, or ``None`` for the default folder.

    A path that resolves to the default (``$LAVAPLAST_DATA`` or
    ``~/.cache/lavaplast``) becomes ``None``, so giving the default
    explicitly and leaving it out compare equal.
    """
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or str(value) == "":
        raise ValueError(f"data_dir must be None or a folder path, got {value!r}")
    from lavaplast.data import data_dir

    path = os.path.abspath(os.path.expanduser(os.fspath(value)))
    return None if path == os.path.abspath(data_dir(None)) else path


def canonical_dataset(what: str, name) -> str:
    """The canonical spelling of a dataset name (``"FMNIST"`` -> ``"fashion-mnist"``)."""
    from lavaplast.data.registry import canonical_name

    try:
        return canonical_name(name)
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from None


def check_json(what: str, value) -> dict:
    """A dict that survives a JSON round trip unchanged (tuples become lists)."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a dict, got {type(value).__name__}")
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must hold JSON values only: {err}") from None


def check_flag(what: str, value) -> bool:
    """A boolean (``numpy.bool_`` too); ``0``, ``1`` or strings are refused."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise ValueError(f"{what} must be True or False, got {value!r}")


# Tasks of the permuted protocol when n_tasks is not given (the paper's six).
PERMUTED_TASKS = 6


@dataclass
class ContinualConfig:
    """Everything that defines a continual-learning run (saved in results.json).

    ``meta`` is one value for every weight layer or a list with one value per
    weight layer (input layer first); it is stored as one number when all
    layers share it. ``n_tasks`` sets the number of permuted tasks (6 when
    left at ``None``); the other protocols fix their own (split: 5 class
    pairs, sequence: one per dataset, stream: ``n_subsets``), and ``n_tasks``
    is set to that number (given explicitly, it must agree). ``task_bn`` selects which accuracy is
    reported as ``final_accuracy``: with the BatchNorm parameters saved at the
    end of each task restored when that task is tested (the paper's choice,
    which uses task identity), or with the current ones (no task identity).
    Both are always measured and saved. ``eval_every`` is "epoch" (test
    after every epoch) or "task" (only after the last epoch of each task, for
    streams of many small tasks).

    ``quantizer`` ("binary" or "ternary", BNN only) and ``ternary_threshold``
    choose the weights; ``train_ber`` > 0 trains error-aware: every training
    forward pass reads the weights with transient device errors at that bit
    error rate (:class:`lavaplast.core.DeviceFaults` of the quantizer's
    kind), while the tests read them ideally.
    """

    protocol: str = "permuted"
    n_tasks: Optional[int] = None
    dataset: str = "mnist"
    datasets: Sequence[str] = ("mnist", "fashion-mnist")
    n_subsets: int = 60
    permute_first: bool = True
    hidden: Sequence[int] = (1024, 1024)
    model: str = "bnn"
    quantizer: str = "binary"
    ternary_threshold: float = 0.05
    train_ber: float = 0.0
    batchnorm: str = "batch"
    meta: Union[float, Sequence[float]] = 0.0
    ewc_lambda: float = 0.0
    epochs: int = 1
    batch_size: int = 100
    eval_batch_size: int = 1000
    lr: float = 0.005
    weight_decay: float = 1e-7
    reset_optimizer: bool = True
    task_bn: bool = True
    joint: bool = False
    eval_every: str = "epoch"
    fisher_batches: int = 100
    train_limit: Optional[int] = None
    test_limit: Optional[int] = None
    seed: int = 0
    data_dir: Optional[str] = None
    device: str = "cpu"
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.protocol = check_choice("protocol", self.protocol, PROTOCOLS)
        self.model = check_choice("model", self.model, MODELS)
        self.quantizer = check_choice("quantizer", self.quantizer, QUANTIZERS)
        self.ternary_threshold = check_nonnegative("ternary_threshold", self.ternary_threshold)
        self.train_ber = check_ber(self.train_ber)
        device_settings = [f"{name}={getattr(self, name)!r}" for name, ideal in (("quantizer", "binary"),
                                                                               ("train_ber", 0.0))
                           if getattr(self, name) != ideal]
        if self.model != "bnn" and device_settings:
            raise ValueError(f"{' and '.join(device_settings)} need model='bnn' (a full-precision network has "
                             f"no device weights), got model={self.model!r}")
        self.eval_every = check_choice("eval_every", self.eval_every, EVAL_EVERY)
        self.batchnorm = check_choice("batchnorm", self.batchnorm, BATCHNORM)
        self.hidden = check_sizes("hidden", self.hidden, min_len=1)
        for name in ("n_subsets", "epochs", "batch_size", "eval_batch_size", "fisher_batches"):
            setattr(self, name, check_int(name, getattr(self, name), 1))
        self.n_tasks = check_optional_int("n_tasks", self.n_tasks)
        self.seed = check_int("seed", self.seed, 0)
        for name in ("train_limit", "test_limit"):
            setattr(self, name, check_optional_int(name, getattr(self, name)))
        self.lr = check_positive("lr", self.lr)
        self.weight_decay = check_nonnegative("weight_decay", self.weight_decay)
        self.ewc_lambda = check_nonnegative("ewc_lambda", self.ewc_lambda)
        for name in ("permute_first", "reset_optimizer", "task_bn", "joint"):
            setattr(self, name, check_flag(name, getattr(self, name)))
        self.dataset = canonical_dataset("dataset", self.dataset)
        if isinstance(self.datasets, str) or len(self.datasets) == 0:
            raise ValueError(f"datasets must be a non-empty list of dataset names, got {self.datasets!r}")
        self.datasets = [canonical_dataset(f"datasets[{i}]", d) for i, d in enumerate(self.datasets)]
        self.meta = compact_per_layer("meta", self.meta, self.n_weight_layers)
        self.data_dir = normalise_data_dir(self.data_dir)
        self.device = check_device(self.device)
        self.extra = check_json("extra", self.extra)
        self.n_tasks = self._protocol_tasks()
        self._check_trainable()

    def _protocol_tasks(self) -> int:
        """The number of tasks the protocol runs; ``n_tasks``, if given, must agree."""
        if self.protocol == "permuted":
            return PERMUTED_TASKS if self.n_tasks is None else self.n_tasks
        runs, source = {
            "split": (SPLIT_TASKS, f"one per class pair, {SPLIT_TASKS} in all"),
            "sequence": (len(self.datasets), f"one per entry of datasets={self.datasets}"),
            "stream": (self.n_subsets, f"one per subset, n_subsets={self.n_subsets}"),
        }[self.protocol]
        if self.n_tasks not in (runs, None):
            raise ValueError(f"n_tasks={self.n_tasks} does not match protocol {self.protocol!r}, which runs "
                             f"{runs} tasks ({source}); leave n_tasks out or set it to {runs}")
        return runs

    def _check_trainable(self) -> None:
        """Refuse settings under which no batch of a task could train (every batch would be skipped)."""
        if self.batch_size < MIN_BATCH:
            raise ValueError(f"batch_size must be >= {MIN_BATCH}: batch-statistic BatchNorm cannot train on "
                             f"single samples, got batch_size={self.batch_size}")
        if self.train_limit is None:
            return
        per_task = self.train_limit // self.n_subsets if self.protocol == "stream" else self.train_limit
        if per_task < MIN_BATCH:
            detail = f"train_limit={self.train_limit}" + (f" over n_subsets={self.n_subsets}"
                                                          if self.protocol == "stream" else "")
            raise ValueError(f"{detail} leaves {per_task} training sample(s) per task, too few for one batch of "
                             f">= {MIN_BATCH} (batch_size={self.batch_size}); every batch would be skipped")

    @property
    def n_weight_layers(self) -> int:
        return len(self.hidden) + 1

    def layer_meta(self) -> list[float]:
        """One ``meta`` value per weight layer, input layer first."""
        return per_layer("meta", self.meta, self.n_weight_layers)

    def to_dict(self) -> dict:
        """The normalised settings as a JSON-serialisable dict (equal for equivalent configs)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ContinualConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; expected some of {sorted(known)}")
        return cls(**values)
