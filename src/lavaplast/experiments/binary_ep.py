"""Binary-weight EP with metaplastic hidden weights on a sequence of tasks."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from lavaplast.core import check_beta, check_steps
from lavaplast.core.validate import check_int, check_meta, check_optional_int, check_positive
from lavaplast.data import make_tasks
from lavaplast.outputs import run_folder, write_json
from lavaplast.reference.ep import BinaryEPNetwork


OUTPUTS = ("results.json",)


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
    train_limit: Optional[int] = 20000,
    test_limit: Optional[int] = 5000,
    seed: int = 0,
    data_dir: Optional[str] = None,
    overwrite: bool = False,
    log: Callable[[str], None] = functools.partial(print, flush=True),
) -> dict:
    """Learn permuted tasks in turn with binary EP, once per ``meta``; test every task seen after each epoch.

    Every argument is checked before anything is loaded or written. A folder
    that already holds a run is refused unless ``overwrite``.
    """
    if np.ndim(metas) != 1 or len(metas) == 0:
        raise ValueError(f"metas must list at least one metaplasticity value, got {metas!r}")
    metas = [check_meta(m, f"metas[{i}]") for i, m in enumerate(metas)]
    n_tasks = check_int("n_tasks", n_tasks)
    hidden = [check_int(f"hidden[{i}]", h) for i, h in enumerate(hidden)]
    T1, T2 = check_steps(T1, "T1"), check_steps(T2, "T2")
    beta = check_beta(beta)
    lr, bias_lr = check_positive("lr", lr), check_positive("bias_lr", bias_lr)
    batch, epochs = check_int("batch", batch), check_int("epochs", epochs)
    train_limit = check_optional_int("train_limit", train_limit)
    test_limit = check_optional_int("test_limit", test_limit)
    seed = check_int("seed", seed, low=0)
    with run_folder(out_dir, overwrite=overwrite, outputs=OUTPUTS) as out:
        tasks = make_tasks("permuted", n_tasks=n_tasks, dataset=dataset, seed=seed, train_limit=train_limit,
                           test_limit=test_limit, data_dir=data_dir)
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
        results = dict(dataset=dataset, n_tasks=n_tasks, sizes=sizes, T1=T1, T2=T2, beta=beta, lr=lr,
                       bias_lr=bias_lr, batch=batch, epochs=epochs, train_limit=train_limit, test_limit=test_limit,
                       seed=seed, runs=runs)
        write_json(out / "results.json", results)
        return results
