"""Training the equilibrium-propagation reference on MNIST / Fashion-MNIST."""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from lavaplast.data import load_dataset
from lavaplast.reference.ep import EPNetwork


@dataclass
class EPConfig:
    """Settings of an EP training run (saved in results.json)."""

    dataset: str = "mnist"
    hidden: Sequence[int] = (500,)
    T1: int = 30
    T2: int = 10
    beta: float = 0.5
    nudging: str = "symmetric"
    loss: str = "mse"
    activation: str = "hard"
    n_nudges: int = 4
    lrs: Sequence[float] = field(default_factory=lambda: [0.2, 0.1])
    batch: int = 32
    epochs: int = 1
    train_limit: Optional[int] = None
    test_limit: Optional[int] = None
    seed: int = 0
    data_dir: Optional[str] = None

    def __post_init__(self):
        self.hidden = [int(h) for h in self.hidden]
        self.lrs = [float(v) for v in self.lrs]
        if len(self.lrs) != len(self.hidden) + 1:
            raise ValueError(f"lrs must hold one learning rate per weight layer ({len(self.hidden) + 1}), "
                             f"got {self.lrs}")
        for name in ("batch", "epochs"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _flat(images: np.ndarray, limit: Optional[int]) -> tuple:
    x = torch.tensor(images.reshape(len(images), -1) / 255.0, dtype=torch.float32)
    return x if limit is None else x[:limit]


def run_ep_training(config: EPConfig, out_dir: str | Path, *, progress: bool = True,
                    log: Callable[[str], None] = functools.partial(print, flush=True)) -> dict:
    """Train with EP, test after every epoch; writes results.json, history.csv and accuracy.png."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    xtr, ytr = load_dataset(config.dataset, "train", data_dir=config.data_dir)
    xte, yte = load_dataset(config.dataset, "test", data_dir=config.data_dir)
    x, xt = _flat(xtr, config.train_limit), _flat(xte, config.test_limit)
    y = torch.tensor(ytr[: len(x)])
    yt = yte[: len(xt)]
    sizes = [x.shape[1], *config.hidden, 10]
    net = EPNetwork(sizes, T1=config.T1, T2=config.T2, beta=config.beta, nudging=config.nudging,
                    lrs=config.lrs, seed=config.seed, loss=config.loss, activation=config.activation,
                    n_nudges=config.n_nudges)
    history, elapsed = [], 0.0
    for epoch in range(config.epochs):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(config.seed * 7919 + epoch))
        batches = range(0, len(x), config.batch)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=f"EP epoch {epoch + 1}/{config.epochs}", unit="batch", leave=False)
        t0 = time.perf_counter()
        for k in batches:
            idx = order[k:k + config.batch]
            net.train_batch(x[idx], y[idx])
        elapsed += time.perf_counter() - t0
        train_acc = float(np.mean(net.predict(x[:10000]) == y[:10000].numpy()) * 100)
        test_acc = float(np.mean(net.predict(xt) == yt) * 100)
        history.append(dict(epoch=epoch + 1, train_acc=train_acc, test_acc=test_acc, train_seconds=round(elapsed, 2)))
        log(f"epoch {epoch + 1}/{config.epochs}  train {train_acc:.2f}%  test {test_acc:.2f}%  ({elapsed:.0f} s)")
    results = dict(config=dataclasses.asdict(config), sizes=sizes, history=history,
                   final_test_accuracy=history[-1]["test_acc"],
                   best_test_accuracy=max(h["test_acc"] for h in history),
                   train_seconds=round(elapsed, 2), samples_per_s=len(x) * config.epochs / max(elapsed, 1e-9))
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    params = net.parameters()
    np.savez(out_dir / "weights.npz", **{f"W{n + 1}": w.numpy() for n, (w, _) in enumerate(params)},
             **{f"b{n + 1}": b.numpy() for n, (_, b) in enumerate(params)})
    with open(out_dir / "history.csv", "w") as f:
        f.write("epoch,train_acc,test_acc,train_seconds\n")
        for h in history:
            f.write(f"{h['epoch']},{h['train_acc']:.2f},{h['test_acc']:.2f},{h['train_seconds']}\n")
    from lavaplast.experiments.report import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([h["epoch"] for h in history], [h["train_acc"] for h in history], "-o", ms=3, label="train (10k)")
    ax.plot([h["epoch"] for h in history], [h["test_acc"] for h in history], "-o", ms=3, label="test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"EP {'-'.join(map(str, sizes))}, {config.nudging} beta={config.beta}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "accuracy.png", dpi=120)
    plt.close(fig)
    return results


def evaluate_run(run_dir: str | Path, split: str = "test", data_dir: Optional[str] = None) -> dict:
    """Rebuild a trained network from ``results.json`` + ``weights.npz`` and test it."""
    run_dir = Path(run_dir)
    for name in ("results.json", "weights.npz"):
        if not (run_dir / name).exists():
            raise ValueError(f"{run_dir} has no {name}; point at the --out folder of 'lavaplast ep train'")
    saved = json.loads((run_dir / "results.json").read_text())
    config = EPConfig(**saved["config"])
    net = EPNetwork(saved["sizes"], T1=config.T1, T2=config.T2, beta=config.beta, nudging=config.nudging,
                    lrs=config.lrs, loss=config.loss, activation=config.activation, n_nudges=config.n_nudges)
    weights = np.load(run_dir / "weights.npz")
    for n, (w, b) in enumerate(net.parameters()):
        w.copy_(torch.from_numpy(weights[f"W{n + 1}"]))
        b.copy_(torch.from_numpy(weights[f"b{n + 1}"]))
    images, labels = load_dataset(config.dataset, split, data_dir=data_dir or config.data_dir)
    acc = float(np.mean(net.predict(_flat(images, None)) == labels) * 100)
    return dict(run=str(run_dir), split=split, accuracy=acc, samples=len(labels))
