"""Binary-weight EP with metaplastic hidden weights on a sequence of tasks."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from lavaplast.data import make_tasks
from lavaplast.reference.ep import BinaryEPNetwork


def run_binary_ep_sequence(
    metas: Sequence[float],
    out_dir: str | Path,
    *,
    dataset: str = "mnist",
    n_tasks: int = 2,
    hidden: Sequence[int] = (512,),
    T1: int = 30,
    T2: int = 10,
    beta: float = 0.5,
    lr: float = 0.001,
    bias_lr: float = 0.05,
    batch: int = 32,
    epochs: int = 2,
    train_limit: int | None = 20000,
    test_limit: int | None = 5000,
    seed: int = 0,
    log: Callable[[str], None] = functools.partial(print, flush=True),
) -> dict:
    """Learn permuted tasks in turn with binary EP, once per ``meta``; test every task seen after each epoch."""
    if not metas:
        raise ValueError("metas must list at least one metaplasticity value")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = make_tasks("permuted", n_tasks=n_tasks, dataset=dataset, seed=seed, train_limit=train_limit,
                       test_limit=test_limit)
    sizes = [tasks[0].n_features, *hidden, tasks[0].n_classes]
    runs = {}
    for meta in metas:
        net = BinaryEPNetwork(sizes, T1=T1, T2=T2, beta=beta, lrs=[bias_lr] * (len(sizes) - 1), meta=meta,
                              lr=lr, seed=seed)
        history, t0 = [], time.perf_counter()
        for ti, task in enumerate(tasks):
            net.reset_optimizer()  # a fresh optimizer per task, as in the paper
            for epoch in range(epochs):
                order = np.random.default_rng([seed, ti, epoch]).permutation(len(task.x_train))
                for k in range(0, len(order), batch):
                    idx = order[k:k + batch]
                    net.train_batch(task.x_train[idx], task.y_train[idx])
                accs = [float(np.mean(net.predict(t.x_test) == t.y_test) * 100) for t in tasks[: ti + 1]]
                history.append(dict(task=ti + 1, epoch=epoch + 1, acc=accs))
                log(f"m = {meta:g}  task {ti + 1} epoch {epoch + 1}: " + " ".join(f"{a:.1f}" for a in accs))
        runs[f"{meta:g}"] = dict(meta=float(meta), history=history, final_accuracy=history[-1]["acc"],
                                 seconds=round(time.perf_counter() - t0, 1))
    results = dict(dataset=dataset, n_tasks=n_tasks, sizes=sizes, T1=T1, T2=T2, beta=beta, lr=lr, bias_lr=bias_lr,
                   batch=batch, epochs=epochs, train_limit=train_limit, test_limit=test_limit, seed=seed, runs=runs)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results
