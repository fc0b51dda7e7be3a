"""Training the equilibrium-propagation reference on MNIST / Fashion-MNIST."""

from __future__ import annotations

import dataclasses
import functools
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from lavaplast.core import (
    check_beta,
    check_device,
    check_int,
    check_optional_int,
    check_positive,
    check_sizes,
    per_layer,
)
from lavaplast.core.ep import check_steps
from lavaplast.data import load_dataset
from lavaplast.experiments.config import canonical_dataset, normalise_data_dir
from lavaplast.outputs import (
    describe_error,
    read_json,
    run_folder,
    save_npz,
    write_csv,
    write_json,
)
from lavaplast.progress import progress_bar, show_progress
from lavaplast.experiments.report import finish_figure, new_figure
from lavaplast.reference.ep import EPNetwork, check_ep_settings


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
    device: str = "cpu"

    def __post_init__(self):
        # Normalised like ContinualConfig, so equivalent settings give equal asdict() (see its module).
        self.dataset = canonical_dataset("dataset", self.dataset)
        self.hidden = check_sizes("hidden", self.hidden, min_len=1)
        self.T1, self.T2 = check_steps(self.T1, "T1"), check_steps(self.T2, "T2")
        self.beta = check_beta(self.beta)
        self.nudging, self.loss, self.activation, self.n_nudges = check_ep_settings(
            self.nudging, self.loss, self.activation, self.n_nudges)
        self.lrs = per_layer("lrs", self.lrs, len(self.hidden) + 1, check_positive)
        for name in ("batch", "epochs"):
            setattr(self, name, check_int(name, getattr(self, name), 1))
        self.seed = check_int("seed", self.seed, 0)
        for name in ("train_limit", "test_limit"):
            setattr(self, name, check_optional_int(name, getattr(self, name)))
        self.data_dir = normalise_data_dir(self.data_dir)
        self.device = check_device(self.device)


def _flat(images: np.ndarray, limit: Optional[int]) -> tuple:
    x = torch.tensor(images.reshape(len(images), -1) / 255.0, dtype=torch.float32)
    return x if limit is None else x[:limit]


OUTPUTS = ("results.json", "weights.npz", "history.csv", "accuracy.png")


def run_ep_training(config: EPConfig, out_dir: str | Path, *, overwrite: bool = False,
                    progress: Optional[bool] = None,
                    log: Callable[[str], None] = functools.partial(print, flush=True)) -> dict:
    """Train with EP, test after every epoch; writes results.json, weights.npz, history.csv and accuracy.png.

    A folder that already holds a run is refused unless ``overwrite``.
    ``progress``: ``None`` draws progress bars only when stderr is a terminal.
    """
    with run_folder(out_dir, overwrite=overwrite, outputs=OUTPUTS) as out:
        return _run_ep_training(config, out, show_progress(progress), log)


def _run_ep_training(config: EPConfig, out_dir: Path, progress: bool, log) -> dict:
    xtr, ytr = load_dataset(config.dataset, "train", data_dir=config.data_dir)
    xte, yte = load_dataset(config.dataset, "test", data_dir=config.data_dir)
    x, xt = _flat(xtr, config.train_limit).to(config.device), _flat(xte, config.test_limit).to(config.device)
    y = torch.tensor(ytr[: len(x)])
    yt = yte[: len(xt)]
    sizes = [x.shape[1], *config.hidden, 10]
    net = EPNetwork(sizes, T1=config.T1, T2=config.T2, beta=config.beta, nudging=config.nudging,
                    lrs=config.lrs, seed=config.seed, loss=config.loss, activation=config.activation,
                    n_nudges=config.n_nudges, device=config.device)
    history, elapsed = [], 0.0
    for epoch in range(config.epochs):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(config.seed * 7919 + epoch))
        batches = progress_bar(range(0, len(x), config.batch), progress,
                               desc=f"EP epoch {epoch + 1}/{config.epochs}", unit="batch")
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
    params = net.parameters()
    save_npz(out_dir / "weights.npz", **{f"W{n + 1}": w.cpu().numpy() for n, (w, _) in enumerate(params)},
             **{f"b{n + 1}": b.cpu().numpy() for n, (_, b) in enumerate(params)})
    write_csv(out_dir / "history.csv", ["epoch", "train_acc", "test_acc", "train_seconds"],
              [[h["epoch"], f"{h['train_acc']:.2f}", f"{h['test_acc']:.2f}", h["train_seconds"]] for h in history])
    plot_history(results, out_dir / "accuracy.png")
    write_json(out_dir / "results.json", results)  # last: marks a finished run
    return results


def plot_history(results: dict, path: Optional[str | Path] = None):
    """Train and test accuracy after every epoch of an EP run; returns the Figure."""
    history, cfg = results["history"], results["config"]
    fig = new_figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot([h["epoch"] for h in history], [h["train_acc"] for h in history], "-o", ms=3, label="train (10k)")
    ax.plot([h["epoch"] for h in history], [h["test_acc"] for h in history], "-o", ms=3, label="test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"EP {'-'.join(map(str, results['sizes']))}, {cfg['nudging']} beta={cfg['beta']}")
    ax.legend()
    return finish_figure(fig, path)


def evaluate_run(run_dir: str | Path, split: str = "test", data_dir: Optional[str] = None) -> dict:
    """Rebuild a trained network from ``results.json`` + ``weights.npz`` and test it.

    A folder that is not a complete run of :func:`run_ep_training` (missing,
    truncated or foreign files) is a ``ValueError`` naming the file.
    """
    run_dir = Path(run_dir)
    hint = "point at the --out folder of 'lavaplast ep train'"
    for name in ("results.json", "weights.npz"):
        if not (run_dir / name).is_file():
            raise ValueError(f"{run_dir} has no {name}; {hint}")
    results_path = run_dir / "results.json"
    saved = read_json(results_path, "results file")
    try:
        config = EPConfig(**dict(saved["config"], device="cpu"))  # tested here, wherever it was trained
        sizes = [int(n) for n in saved["sizes"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{results_path} is not the results of an EP training run ({describe_error(exc)}); "
                         f"{hint}") from exc
    net = EPNetwork(sizes, T1=config.T1, T2=config.T2, beta=config.beta, nudging=config.nudging,
                    lrs=config.lrs, loss=config.loss, activation=config.activation, n_nudges=config.n_nudges)
    weights_path = run_dir / "weights.npz"
    try:
        with np.load(weights_path) as archive:
            weights = {key: archive[key] for key in archive.files}
        for n, (w, b) in enumerate(net.parameters()):
            w.copy_(torch.from_numpy(weights[f"W{n + 1}"]))
            b.copy_(torch.from_numpy(weights[f"b{n + 1}"]))
    except (OSError, EOFError, ValueError, KeyError, RuntimeError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{weights_path} cannot be read or does not match {results_path} "
                         f"({describe_error(exc)}); it is truncated or foreign; {hint}") from exc
    images, labels = load_dataset(config.dataset, split, data_dir=data_dir or config.data_dir)
    acc = float(np.mean(net.predict(_flat(images, None)) == labels) * 100)
    return dict(run=str(run_dir), split=split, accuracy=acc, samples=len(labels))
