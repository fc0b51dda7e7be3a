"""Communication cost of event-driven EP: accuracy against events, swept over the threshold.

For every sigma-delta threshold, the same network (same initial weights, same
batches) is trained on chip by :class:`lavaplast.graph.LavaEPNetwork` and
tested; the rate-based reference is trained on the same batches alongside.
Events are non-zero messages sent by neurons; the dense equivalent is every
neuron's state at every step, as a rate-based network communicates.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from lavaplast.core import check_beta, check_steps, ep_window
from lavaplast.core.validate import (
    check_int,
    check_nonnegative,
    check_optional_int,
    check_positive,
    per_layer,
)
from lavaplast.data import load_dataset
from lavaplast.outputs import run_folder, write_json
from lavaplast.experiments.report import finish_figure, new_figure
from lavaplast.reference.ep import EPNetwork


OUTPUTS = ("results.json", "accuracy_vs_events.png")


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
    train_limit: Optional[int] = 10000,
    test_limit: Optional[int] = 10000,
    epochs: int = 1,
    seed: int = 0,
    data_dir: Optional[str] = None,
    overwrite: bool = False,
    log: Callable[[str], None] = functools.partial(print, flush=True),
) -> dict:
    """Train and test once per threshold; writes results.json and accuracy_vs_events.png.

    ``lrs`` is one learning rate per weight layer (one value is used for
    every layer). Every argument is checked before anything is loaded or
    written. A folder that already holds a run is refused unless
    ``overwrite``.
    """
    if np.ndim(thresholds) != 1 or len(thresholds) == 0:
        raise ValueError(f"thresholds must be a non-empty list of numbers >= 0, got {thresholds!r}")
    thresholds = [check_nonnegative(f"thresholds[{i}]", t) for i, t in enumerate(thresholds)]
    hidden = [check_int(f"hidden[{i}]", h) for i, h in enumerate(hidden)]
    T1, T2 = check_steps(T1, "T1"), check_steps(T2, "T2")
    beta = check_beta(beta)
    lrs = per_layer("lrs", lrs, len(hidden) + 1, check_positive)
    batch, epochs = check_int("batch", batch), check_int("epochs", epochs)
    train_limit = check_optional_int("train_limit", train_limit)
    test_limit = check_optional_int("test_limit", test_limit)
    seed = check_int("seed", seed, low=0)
    with run_folder(out_dir, overwrite=overwrite, outputs=OUTPUTS) as out:
        x, y = load_dataset(dataset, "train", data_dir=data_dir)
        xt, yt = load_dataset(dataset, "test", data_dir=data_dir)
        x, y = x[:train_limit].reshape(-1, x[0].size) / 255.0, y[:train_limit]
        xt, yt = xt[:test_limit].reshape(-1, xt[0].size) / 255.0, yt[:test_limit]
        usable = len(x) - len(x) % batch
        if usable == 0:
            raise ValueError(f"{len(x)} training samples are fewer than one batch of {batch}")
        rng = np.random.default_rng(seed)
        order = np.concatenate([rng.permutation(len(x))[:usable] for _ in range(epochs)])
        sizes = [x.shape[1], *hidden, 10]
        make = lambda: EPNetwork(sizes, T1=T1, T2=T2, beta=beta, nudging="symmetric", lrs=lrs,  # noqa: E731
                                 seed=seed, dtype=torch.float64)
        return _sweep(thresholds, out, make, x, y, xt, yt, order, dict(
            dataset=dataset, sizes=sizes, T1=T1, T2=T2, beta=beta, lrs=lrs, batch=batch, epochs=epochs,
            seed=seed), log)


def _sweep(thresholds, out_dir: Path, make, x, y, xt, yt, order, settings: dict, log) -> dict:
    from lavaplast.graph import LavaEPNetwork  # imports Lava

    T1, T2, batch, sizes = settings["T1"], settings["T2"], settings["batch"], settings["sizes"]
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
    results = dict(settings, train_samples=len(order), test_samples=len(xt), reference_test_acc=ref_acc, sweep=rows)
    _plot(results, out_dir / "accuracy_vs_events.png")
    write_json(out_dir / "results.json", results)  # last: marks a finished run
    return results


def _plot(results: dict, path: Optional[Path] = None):
    """Test accuracy against messages per training sample, one point per threshold; returns the Figure."""
    rows = results["sweep"]
    fig = new_figure(figsize=(6, 4))
    ax = fig.subplots()
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
    return finish_figure(fig, path)
