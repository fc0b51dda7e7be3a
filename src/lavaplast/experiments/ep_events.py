"""Communication cost of event-driven EP: accuracy against events, swept over the threshold.

For every sigma-delta threshold, the same network (same initial weights, same
batches) is trained on chip by :class:`lavaplast.graph.LavaEPNetwork` and
tested; the rate-based reference is trained on the same batches alongside.
Events are non-zero messages sent by neurons; the dense equivalent is every
neuron's state at every step, as a rate-based network communicates.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from lavaplast.core import ep_window
from lavaplast.data import load_dataset
from lavaplast.reference.ep import EPNetwork


def run_event_sweep(
    thresholds: Sequence[float],
    out_dir: str | Path,
    *,
    dataset: str = "mnist",
    hidden: Sequence[int] = (500,),
    T1: int = 30,
    T2: int = 10,
    beta: float = 0.5,
    lrs: Sequence[float] = (0.2, 0.1),
    batch: int = 100,
    train_limit: int = 10000,
    test_limit: int = 10000,
    epochs: int = 1,
    seed: int = 0,
    log: Callable[[str], None] = functools.partial(print, flush=True),
) -> dict:
    """Train and test once per threshold; writes results.json and accuracy_vs_events.png."""
    from lavaplast.graph import LavaEPNetwork  # imports Lava

    if not thresholds or min(thresholds) < 0:
        raise ValueError(f"thresholds must be a non-empty list of numbers >= 0, got {list(thresholds)!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x, y = load_dataset(dataset, "train")
    xt, yt = load_dataset(dataset, "test")
    x, y = x[:train_limit].reshape(-1, x[0].size) / 255.0, y[:train_limit]
    xt, yt = xt[:test_limit].reshape(-1, xt[0].size) / 255.0, yt[:test_limit]
    usable = len(x) - len(x) % batch
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(x))[:usable] for _ in range(epochs)])
    sizes = [x.shape[1], *hidden, 10]
    make = lambda: EPNetwork(sizes, T1=T1, T2=T2, beta=beta, nudging="symmetric", lrs=lrs,  # noqa: E731
                             seed=seed, dtype=torch.float64)

    ref = make()
    t0 = time.perf_counter()
    for k in range(0, len(order), batch):
        ref.train_batch(x[order[k:k + batch]], y[order[k:k + batch]])
    ref_acc = float(np.mean(ref.predict(xt) == yt) * 100)
    log(f"rate-based reference: test {ref_acc:.2f}% ({time.perf_counter() - t0:.0f} s)")

    window = ep_window(T1, T2, "symmetric")
    dense_train = sum(sizes[1:]) * window
    dense_test = sum(sizes[1:]) * ep_window(T1, 1, "one-sided")
    rows = []
    for threshold in thresholds:
        net = make()
        lava = LavaEPNetwork(net, batch=batch, threshold=float(threshold))
        t0 = time.perf_counter()
        lava.train(x, y, order)
        train_events = lava.events_per_sample(len(order))
        train_seconds = time.perf_counter() - t0
        pred = lava.predict(xt)
        test_events = lava.events_per_sample(len(xt) + (-len(xt)) % batch)
        acc = float(np.mean(pred == yt) * 100)
        rows.append(dict(threshold=float(threshold), test_acc=acc, train_events_per_sample=train_events,
                         dense_train_messages_per_sample=dense_train,
                         train_reduction=dense_train / max(train_events, 1e-9),
                         test_events_per_sample=test_events, dense_test_messages_per_sample=dense_test,
                         test_reduction=dense_test / max(test_events, 1e-9), train_seconds=round(train_seconds, 1),
                         train_samples_per_s=len(order) / train_seconds))
        log(f"threshold {threshold:g}: test {acc:.2f}%, {train_events:.0f} events per training sample "
            f"({rows[-1]['train_reduction']:.1f}x fewer than dense), {test_events:.0f} per test sample "
            f"({rows[-1]['test_reduction']:.1f}x fewer)")
    results = dict(dataset=dataset, sizes=sizes, T1=T1, T2=T2, beta=beta, lrs=list(lrs), batch=batch,
                   train_samples=len(order), test_samples=len(xt), epochs=epochs, seed=seed,
                   reference_test_acc=ref_acc, sweep=rows)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    _plot(results, out_dir / "accuracy_vs_events.png")
    return results


def _plot(results: dict, path: Path) -> None:
    from lavaplast.experiments.report import _pyplot

    plt = _pyplot()
    rows = results["sweep"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["train_events_per_sample"] for r in rows], [r["test_acc"] for r in rows], "-o", label="event-driven (Lava)")
    for r in rows:
        ax.annotate(f"{r['threshold']:g}", (r["train_events_per_sample"], r["test_acc"]), fontsize=7,
                    textcoords="offset points", xytext=(3, 3))
    dense = rows[0]["dense_train_messages_per_sample"]
    ax.axvline(dense, color="grey", ls=":", label="dense rate-based messages")
    ax.axhline(results["reference_test_acc"], color="k", lw=0.8, ls="--", label="rate-based reference accuracy")
    ax.set_xscale("log")
    ax.set_xlabel("messages per training sample (log)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"event-driven EP {'-'.join(map(str, results['sizes']))}: labels = event threshold")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
