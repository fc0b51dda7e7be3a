"""Continual learning with metaplastic binary synapses (docs/algorithms.md, section 1).

:func:`run_continual` trains one network on a stream of tasks and, after every
epoch, tests it on every task seen so far, with and without the task's saved
BatchNorm parameters. It writes ``results.json``, ``history.csv``,
``accuracy.png`` and a ``checkpoint.pt`` that lets an interrupted run resume;
every file is written atomically (see :mod:`lavaplast.outputs`).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch.nn import functional as F

from lavaplast.data import Task, data_dir, make_tasks
from lavaplast.experiments.config import ContinualConfig
from lavaplast.outputs import (
    config_differences,
    read_checkpoint,
    read_json,
    run_folder,
    save_torch,
    write_json,
)
from lavaplast.progress import progress_bar, show_progress
from lavaplast.experiments.report import plot_accuracy, write_history_csv
from lavaplast.reference import (
    BNN,
    EWC,
    FullPrecisionMLP,
    MetaplasticAdam,
    batchnorm_state,
    load_batchnorm_state,
)

CHECKPOINT = "checkpoint.pt"
OUTPUTS = ("results.json", "history.csv", "accuracy.png", CHECKPOINT)


def build_tasks(config: ContinualConfig) -> list[Task]:
    """The task stream the config asks for (merged into one task if ``joint``)."""
    common = dict(data_dir=config.data_dir, train_limit=config.train_limit, test_limit=config.test_limit)
    if config.protocol == "permuted":
        tasks = make_tasks("permuted", n_tasks=config.n_tasks, dataset=config.dataset, seed=config.seed,
                           permute_first=config.permute_first, **common)
    elif config.protocol == "sequence":
        tasks = make_tasks("sequence", names=config.datasets, **common)
    elif config.protocol == "stream":
        tasks = make_tasks("stream", dataset=config.dataset, n_subsets=config.n_subsets, seed=config.seed, **common)
    else:
        tasks = make_tasks("split", dataset=config.dataset, **common)
    return tasks


def build_model(config: ContinualConfig, n_inputs: int, n_classes: int) -> torch.nn.Module:
    sizes = [n_inputs, *config.hidden, n_classes]
    if config.model == "fp":
        return FullPrecisionMLP(sizes, batchnorm=config.batchnorm)
    return BNN(sizes, batchnorm=config.batchnorm, quantizer=config.quantizer,
               ternary_threshold=config.ternary_threshold)


def build_optimizer(config: ContinualConfig, model: torch.nn.Module) -> MetaplasticAdam:
    """One parameter group per weight layer (its own ``meta``), one for the rest."""
    layers = model.linear_layers()
    groups = [{"params": [layer.weight], "meta": m} for layer, m in zip(layers, config.layer_meta())]
    in_groups = {id(layer.weight) for layer in layers}
    rest = [p for p in model.parameters() if id(p) not in in_groups]
    if rest:
        groups.append({"params": rest, "meta": 0.0})
    return MetaplasticAdam(groups, lr=config.lr, weight_decay=config.weight_decay)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Test accuracy of ``model`` on (x, y), in percent."""
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = model(x[start:start + batch_size].to(device))
        correct += (logits.argmax(1).cpu() == y[start:start + batch_size]).sum().item()
    return 100.0 * correct / len(x)


def _joint_task(tasks: list[Task]) -> Task:
    return Task(
        name="joint",
        x_train=np.concatenate([t.x_train for t in tasks]),
        y_train=np.concatenate([t.y_train for t in tasks]),
        x_test=tasks[0].x_test,
        y_test=tasks[0].y_test,
        n_classes=tasks[0].n_classes,
    )


def comparable_config(values: dict) -> dict:
    """A config dict in a canonical form, for deciding whether two runs are the same run.

    Settings that mean the same are made equal: ``meta`` becomes one value
    per weight layer, ``data_dir`` the folder it resolves to, and settings
    the protocol does not use are dropped.
    """
    out = dict(values)
    out.pop("device", None)  # where a run computes is not what it is: resuming elsewhere is fine
    # Settings added later: a run saved without them used their defaults.
    out.setdefault("quantizer", "binary")
    out.setdefault("ternary_threshold", 0.05)
    out.setdefault("train_ber", 0.0)
    if out["quantizer"] == "binary":
        out.pop("ternary_threshold")
    hidden = [int(h) for h in out.get("hidden", [])]
    out["hidden"] = hidden
    meta = out.get("meta", 0.0)
    meta = [meta] if np.ndim(meta) == 0 else list(meta)
    if len(meta) == 1:
        meta = meta * (len(hidden) + 1)
    out["meta"] = [float(m) for m in meta]
    out["data_dir"] = str(data_dir(out.get("data_dir")).resolve())
    unused = {
        "permuted": ("datasets", "n_subsets"),
        "sequence": ("dataset", "n_tasks", "n_subsets", "permute_first"),
        "stream": ("datasets", "n_tasks", "permute_first"),
        "split": ("datasets", "n_tasks", "n_subsets", "permute_first"),
    }.get(out.get("protocol"), ())
    if not out.get("ewc_lambda"):
        unused += ("fisher_batches",)
    for key in unused:
        out.pop(key, None)
    if "datasets" in out:
        out["datasets"] = list(out["datasets"])
    return out


def _check_same_config(saved: dict, config: ContinualConfig, source: Path) -> None:
    diffs = config_differences(comparable_config(saved), comparable_config(config.to_dict()))
    if diffs:
        raise ValueError(f"{source} was written by a run with another config ({'; '.join(diffs)}); "
                         "resume with the same settings, or start a new run in another --out (or --overwrite)")


_CHECKPOINT_KEYS = {"config", "model", "optimizer", "ewc", "bn_saved", "history", "task", "epoch", "elapsed"}


def load_checkpoint(path: Path, hint: str = "delete it, start over with --overwrite, or use another --out") -> dict:
    """The checkpoint of a continual-learning run; a damaged or foreign file is a one-line
    ``ValueError`` naming it and ending with ``hint`` (what the user can do)."""
    return read_checkpoint(path, _CHECKPOINT_KEYS, "lavaplast continual", hint)


def run_continual(
    config: ContinualConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: Optional[bool] = None,
    log: Callable[[str], None] = functools.partial(print, flush=True),
    tasks: Optional[list[Task]] = None,
) -> dict:
    """Train on the task stream of ``config``; return (and save) the results.

    ``tasks`` overrides the stream built from the config (the config still
    records the settings). After every epoch a ``checkpoint.pt`` is written;
    all files are written atomically, so a run killed at any moment leaves
    the previous complete checkpoint.

    Output folder: a new run refuses a folder that already holds a run
    (``results.json`` or ``checkpoint.pt``) unless ``overwrite``, which
    first deletes that run's files. With ``resume``:

    * a folder with ``results.json`` holds a finished run: nothing is
      trained, and its saved results are returned;
    * otherwise the run continues from ``checkpoint.pt``, written after its
      last finished epoch;
    * with no checkpoint, a one-line notice is logged and a fresh run starts
      (so the same command can start a job and restart it).

    The saved config must equal ``config`` (compared in the canonical form of
    :func:`comparable_config`); otherwise a ``ValueError`` names the
    differing settings. ``progress``: ``None`` draws progress bars only when
    stderr is a terminal.
    """
    with run_folder(out_dir, overwrite=overwrite, resume=resume, outputs=OUTPUTS) as out:
        return _run_continual(config, out, resume, show_progress(progress), log, tasks)


def _run_continual(config, out_dir: Path, resume: bool, progress: bool, log, tasks) -> dict:
    ckpt = None
    ckpt_path = out_dir / CHECKPOINT
    if resume:
        results_path = out_dir / "results.json"
        if results_path.exists():
            saved = read_json(results_path, "results file")
            _check_same_config(saved.get("config", {}), config, results_path)
            log(f"{out_dir} holds a finished run; nothing to resume. Its saved results are reported.")
            return saved
        if ckpt_path.exists():
            ckpt = load_checkpoint(ckpt_path)
            _check_same_config(ckpt["config"], config, ckpt_path)
        else:
            log(f"no {CHECKPOINT} in {out_dir}: nothing to resume, starting a fresh run")

    torch.manual_seed(config.seed)
    tasks = build_tasks(config) if tasks is None else tasks
    eval_tasks = tasks
    train_tasks = [_joint_task(tasks)] if config.joint else tasks
    to_torch = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    test_sets = [(to_torch(t.x_test), to_torch(t.y_test)) for t in eval_tasks]
    n_inputs = tasks[0].x_train.shape[1]
    device = torch.device(config.device)
    model = build_model(config, n_inputs, tasks[0].n_classes).to(device)
    optimizer = build_optimizer(config, model)
    ewc = EWC(model, config.ewc_lambda) if config.ewc_lambda > 0 else None
    bn_saved: list[dict] = []
    history: list[dict] = []
    start_task, start_epoch, elapsed = 0, 0, 0.0

    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ewc is not None:
            ewc.load_state_dict(ckpt["ewc"])
        bn_saved, history = ckpt["bn_saved"], ckpt["history"]
        start_task, start_epoch, elapsed = ckpt["task"], ckpt["epoch"], ckpt["elapsed"]
        log(f"resuming from {ckpt_path}: task {start_task + 1}, epoch {start_epoch + 1}")

    # Tasks that share one test set (stream learning) are evaluated once.
    shared_test = len({id(t.x_test) for t in eval_tasks}) == 1 and len(eval_tasks) > 1
    for ti in range(start_task, len(train_tasks)):
        task = train_tasks[ti]
        x_train, y_train = to_torch(task.x_train), to_torch(task.y_train)
        if ti > start_task or start_epoch == 0:
            if config.reset_optimizer and ti > 0:
                optimizer = build_optimizer(config, model)
        for epoch in range(start_epoch if ti == start_task else 0, config.epochs):
            t0 = time.perf_counter()
            model.train()
            epoch_seed = config.seed * 1_000_003 + ti * 1009 + epoch
            gen = torch.Generator().manual_seed(epoch_seed)
            order = torch.randperm(len(x_train), generator=gen)
            if config.train_ber > 0:  # error-aware training: transient read errors, seeded per epoch
                model.set_read_faults(config.train_ber, seed=epoch_seed)
            total_loss, n_batches = 0.0, 0
            desc = f"task {ti + 1}/{len(train_tasks)} epoch {epoch + 1}/{config.epochs}"
            batches = progress_bar(range(0, len(order), config.batch_size), progress, desc=desc, unit="batch")
            for start in batches:
                idx = order[start:start + config.batch_size]
                if len(idx) < 2 and config.batchnorm != "none":
                    continue  # batch-statistic BatchNorm needs two samples
                loss = F.cross_entropy(model(x_train[idx].to(device)), y_train[idx].to(device))
                if ewc is not None:
                    loss = loss + ewc.penalty()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total_loss += loss.item()
                n_batches += 1
            elapsed += time.perf_counter() - t0
            if config.train_ber > 0:
                model.set_read_faults(0.0)  # tests read the weights ideally
            last_epoch = epoch == config.epochs - 1
            if last_epoch:
                bn_saved = bn_saved[:ti] + [batchnorm_state(model)]
                if ewc is not None and ti < len(train_tasks) - 1:
                    ewc.consolidate(_fisher_batches(x_train, y_train, config, ti))
            train_loss = total_loss / max(n_batches, 1)
            if last_epoch or config.eval_every == "epoch":
                row = _evaluate_seen(model, eval_tasks, test_sets, ti, bn_saved, config, shared_test)
                row.update(task=ti + 1, epoch=epoch + 1, train_loss=train_loss, train_seconds=round(elapsed, 3))
                history.append(row)
                accs = " ".join(f"{a:5.1f}" for a in row["acc"])
                log(f"{desc}  loss {train_loss:.3f}  acc per task: {accs}")
            else:
                log(f"{desc}  loss {train_loss:.3f}")
            save_torch(
                dict(config=config.to_dict(), model={k: v.cpu() for k, v in model.state_dict().items()}, optimizer=optimizer.state_dict(),
                     ewc=ewc.state_dict() if ewc is not None else None, bn_saved=bn_saved, history=history,
                     task=ti + (1 if last_epoch else 0), epoch=0 if last_epoch else epoch + 1, elapsed=elapsed),
                ckpt_path,
            )
        start_epoch = 0

    results = _results(config, history, eval_tasks, elapsed)
    # results.json last: its presence marks a finished run.
    write_history_csv(history, out_dir / "history.csv")
    plot_accuracy(results, out_dir / "accuracy.png")
    write_json(out_dir / "results.json", results)
    return results


def _fisher_batches(x, y, config: ContinualConfig, ti: int):
    gen = torch.Generator().manual_seed(config.seed + 7919 * (ti + 1))
    order = torch.randperm(len(x), generator=gen)
    for b in range(min(config.fisher_batches, len(x) // config.batch_size)):
        idx = order[b * config.batch_size:(b + 1) * config.batch_size]
        yield x[idx].to(config.device), y[idx].to(config.device)


def _evaluate_seen(model, eval_tasks, test_sets, ti, bn_saved, config, shared_test) -> dict:
    """Accuracy on every task seen so far, with the current and the saved BatchNorm."""
    seen = len(eval_tasks) if config.joint else ti + 1
    if shared_test:
        seen = 1
    current = batchnorm_state(model)
    acc_shared, acc_task_bn = [], []
    for k in range(seen):
        x, y = test_sets[k]
        acc_shared.append(evaluate(model, x, y, config.eval_batch_size))
        if k < len(bn_saved) and k < ti and not config.joint:
            load_batchnorm_state(model, bn_saved[k])
            acc_task_bn.append(evaluate(model, x, y, config.eval_batch_size))
            load_batchnorm_state(model, current)
        else:
            acc_task_bn.append(acc_shared[-1])
    acc = acc_task_bn if config.task_bn else acc_shared
    return dict(acc=acc, acc_task_bn=acc_task_bn, acc_shared_bn=acc_shared)


def _results(config: ContinualConfig, history: list[dict], tasks: list[Task], elapsed: float) -> dict:
    last = history[-1]
    names = [t.name for t in tasks][: len(last["acc"])]
    mean = lambda v: float(np.mean(v))  # noqa: E731
    return dict(
        config=config.to_dict(),
        task_names=names,
        history=history,
        final_accuracy=last["acc"],
        final_accuracy_task_bn=last["acc_task_bn"],
        final_accuracy_shared_bn=last["acc_shared_bn"],
        mean_final_accuracy=mean(last["acc"]),
        mean_final_accuracy_task_bn=mean(last["acc_task_bn"]),
        mean_final_accuracy_shared_bn=mean(last["acc_shared_bn"]),
        train_seconds=round(elapsed, 2),
        torch_version=torch.__version__,
    )
