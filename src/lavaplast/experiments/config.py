"""Settings of a continual-learning run, validated in one place."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

from lavaplast.core import check_meta

PROTOCOLS = ("permuted", "sequence", "stream", "split")
MODELS = ("bnn", "fp")
BATCHNORM = ("batch", "running")
EVAL_EVERY = ("epoch", "task")


@dataclass
class ContinualConfig:
    """Everything that defines a continual-learning run (saved in results.json).

    ``meta`` is one value for every weight layer or a list with one value per
    weight layer (input layer first). ``task_bn`` selects which accuracy is
    reported as ``final_accuracy``: with the BatchNorm parameters saved at the
    end of each task restored when that task is tested (the paper's choice,
    which uses task identity), or with the current ones (no task identity).
    Both are always measured and saved. ``eval_every`` is "epoch" (test
    after every epoch) or "task" (only after the last epoch of each task, for
    streams of many small tasks).
    """

    protocol: str = "permuted"
    n_tasks: int = 6
    dataset: str = "mnist"
    datasets: Sequence[str] = ("mnist", "fashion-mnist")
    n_subsets: int = 60
    permute_first: bool = True
    hidden: Sequence[int] = (1024, 1024)
    model: str = "bnn"
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
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; expected one of {', '.join(PROTOCOLS)}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; expected one of {', '.join(MODELS)}")
        if self.eval_every not in EVAL_EVERY:
            raise ValueError(f"unknown eval_every {self.eval_every!r}; expected one of {', '.join(EVAL_EVERY)}")
        if self.batchnorm not in BATCHNORM:
            raise ValueError(f"unknown batchnorm {self.batchnorm!r}; expected one of {', '.join(BATCHNORM)}")
        self.hidden = [int(h) for h in self.hidden]
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden must list one or more positive layer widths, got {self.hidden!r}")
        for name in ("n_tasks", "n_subsets", "epochs", "batch_size", "eval_batch_size", "fisher_batches"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be None or an integer >= 1, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not self.ewc_lambda >= 0:
            raise ValueError(f"ewc_lambda must be >= 0, got {self.ewc_lambda!r}")
        self.datasets = list(self.datasets)
        self.meta = self.layer_meta()[0] if isinstance(self.meta, (int, float)) else self.layer_meta()

    @property
    def n_weight_layers(self) -> int:
        return len(self.hidden) + 1

    def layer_meta(self) -> list[float]:
        """One ``meta`` value per weight layer, input layer first."""
        if isinstance(self.meta, (int, float)):
            return [check_meta(self.meta)] * self.n_weight_layers
        values = list(self.meta)
        if len(values) == 1:
            values = values * self.n_weight_layers
        if len(values) != self.n_weight_layers:
            raise ValueError(
                f"meta has {len(values)} values but the network has {self.n_weight_layers} weight layers "
                f"(hidden={self.hidden} plus the output layer); give one value or one per layer"
            )
        return [check_meta(v, f"meta[{i}]") for i, v in enumerate(values)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ContinualConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; expected some of {sorted(known)}")
        return cls(**values)
