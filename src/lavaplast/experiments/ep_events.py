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
from lavaplast.outputs import config_differences, read_checkpoint, read_json, run_folder, save_torch, write_json
from lavaplast.experiments.report import finish_figure, new_figure
from lavaplast.reference.ep import EPNetwork


CHECKPOINT = "checkpoint.pt"
OUTPUTS = ("results.json", "accuracy_vs_events.png", CHECKPOINT)


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
    resume: bool = False,
    log: Callable[[str], None] = functools.partial(print, flush=True),
) -> dict:
    """Train and test once per threshold; writes results.json and accuracy_vs_events.png.

    ``lrs`` is one learning rate per weight layer (one value is used for
    every layer). Every network is tested after every epoch (``history``
    of each row, ``reference_history``). Every argument is checked before
    anything is loaded or written.

    After every epoch a ``checkpoint.pt`` is written atomically. A folder
    that already holds a run is refused unless ``overwrite`` (start again)
    or ``resume``: a finished run (``results.json``) is returned as saved,
    an interrupted one continues from its last finished epoch and ends with
    the results an uninterrupted run gives; with no checkpoint a fresh run
    starts. The saved settings must equal these ones.
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
    with run_folder(out_dir, overwrite=overwrite, resume=resume, outputs=OUTPUTS) as out:
        x, y = load_dataset(dataset, "train", data_dir=data_dir)
        xt, yt = load_dataset(dataset, "test", data_dir=data_dir)
        x, y = x[:train_limit].reshape(-1, x[0].size) / 255.0, y[:train_limit]
        xt, yt = xt[:test_limit].reshape(-1, xt[0].size) / 255.0, yt[:test_limit]
        usable = len(x) - len(x) % batch
        if usable == 0:
            raise ValueError(f"{len(x)} training samples are fewer than one batch of {batch}")
        rng = np.random.default_rng(seed)
        orders = [rng.permutation(len(x))[:usable] for _ in range(epochs)]
        sizes = [x.shape[1], *hidden, 10]
        settings = dict(dataset=dataset, sizes=sizes, T1=T1, T2=T2, beta=beta, lrs=lrs, batch=batch,
                        epochs=epochs, seed=seed, thresholds=thresholds, train_limit=train_limit,
                        test_limit=test_limit)
        make = lambda: EPNetwork(sizes, T1=T1, T2=T2, beta=beta, nudging="symmetric", lrs=lrs,  # noqa: E731
                                 seed=seed, dtype=torch.float64)
        return _Sweep(out, settings, make, (x, y, xt, yt), orders, log).run(resume)


_CHECKPOINT_KEYS = {"settings", "reference", "rows", "job", "epoch", "history", "weights", "biases", "events",
                    "seconds"}


def _reference(history: list, seconds: float) -> dict:
    """The rate-based reference's entry of the results, from its per-epoch history."""
    return dict(test_acc=history[-1]["test_acc"], history=history, train_seconds=round(seconds, 1))


class _Sweep:
    """The jobs of a sweep (the rate-based reference, then one per threshold), epoch by epoch, with a
    checkpoint after each epoch so that a killed sweep continues where it stopped."""

    def __init__(self, out: Path, settings: dict, make, data, orders, log):
        self.out, self.settings, self.make, self.data, self.orders, self.log = out, settings, make, data, orders, log
        self.ckpt_path = out / CHECKPOINT

    def run(self, resume: bool) -> dict:
        from lavaplast.graph import LavaEPNetwork  # imports Lava

        state = self._restore() if resume else None
        if state is not None and "finished" in state:
            return state["finished"]
        x, y, xt, yt = self.data
        s = self.settings
        batch = s["batch"]
        reference = state["reference"] if state else None
        rows = state["rows"] if state else []
        first_job = state["job"] if state else 0
        for job in range(first_job, 1 + len(s["thresholds"])):
            net = self.make()
            history, events, seconds, first_epoch = [], 0.0, 0.0, 0
            if state is not None and job == first_job and state["weights"] is not None:
                net.set_parameters(state["weights"], state["biases"])
                history, events, seconds, first_epoch = (state["history"], state["events"], state["seconds"],
                                                         state["epoch"])
            threshold = None if job == 0 else s["thresholds"][job - 1]
            lava = None if job == 0 else LavaEPNetwork(net, batch=batch, threshold=threshold)
            for epoch in range(first_epoch, len(self.orders)):
                order = self.orders[epoch]
                t0 = time.perf_counter()
                if lava is None:
                    for k in range(0, len(order), batch):
                        net.train_batch(x[order[k:k + batch]], y[order[k:k + batch]])
                    seconds += time.perf_counter() - t0
                    acc = float(np.mean(net.predict(xt) == yt) * 100)
                    history.append(dict(epoch=epoch + 1, test_acc=acc))
                else:
                    lava.train(x, y, order)
                    seconds += time.perf_counter() - t0
                    epoch_events = lava.events_per_sample(len(order))
                    events += epoch_events * len(order)
                    acc = float(np.mean(lava.predict(xt) == yt) * 100)
                    test_events = lava.events_per_sample(len(xt) + (-len(xt)) % batch)
                    history.append(dict(epoch=epoch + 1, test_acc=acc, train_events_per_sample=epoch_events,
                                        test_events_per_sample=test_events))
                self._save(reference, rows, job, epoch + 1, history, net, events, seconds)
                name = "rate-based reference" if lava is None else f"threshold {threshold:g}"
                self.log(f"{name}: epoch {epoch + 1}/{len(self.orders)}, test {acc:.2f}% ({seconds:.0f} s)")
            if lava is None:
                reference = _reference(history, seconds)
            else:
                rows.append(self._row(threshold, history, events, seconds))
                r = rows[-1]
                self.log(f"threshold {threshold:g}: test {r['test_acc']:.2f}%, {r['train_events_per_sample']:.0f} "
                         f"events per training sample ({r['train_reduction']:.1f}x fewer than dense), "
                         f"{r['test_events_per_sample']:.0f} per test sample ({r['test_reduction']:.1f}x fewer)")
            state = None
        n_train = sum(len(o) for o in self.orders)
        results = dict(s, train_samples=n_train, test_samples=len(xt), reference_test_acc=reference["test_acc"],
                       reference_history=reference["history"], reference_train_seconds=reference["train_seconds"],
                       sweep=rows)
        _plot(results, self.out / "accuracy_vs_events.png")
        write_json(self.out / "results.json", results)  # marks a finished run
        self.ckpt_path.unlink(missing_ok=True)
        return results

    def _row(self, threshold, history, events, seconds) -> dict:
        sizes, s = self.settings["sizes"], self.settings
        n_train = sum(len(o) for o in self.orders)
        dense_train = sum(sizes[1:]) * ep_window(s["T1"], s["T2"], "symmetric")
        dense_test = sum(sizes[1:]) * ep_window(s["T1"], 1, "one-sided")
        train_events, test_events = events / n_train, history[-1]["test_events_per_sample"]
        return dict(threshold=float(threshold), test_acc=history[-1]["test_acc"],
                    train_events_per_sample=train_events, dense_train_messages_per_sample=dense_train,
                    train_reduction=dense_train / max(train_events, 1e-9), test_events_per_sample=test_events,
                    dense_test_messages_per_sample=dense_test, test_reduction=dense_test / max(test_events, 1e-9),
                    train_seconds=round(seconds, 1), train_samples_per_s=n_train / seconds, history=history)

    def _save(self, reference, rows, job, epoch, history, net, events, seconds) -> None:
        save_torch(dict(settings=self.settings, reference=reference, rows=rows, job=job, epoch=epoch,
                        history=history, weights=[np.asarray(w) for w in net.weights],
                        biases=[np.asarray(b) for b in net.biases], events=events, seconds=seconds),
                   self.ckpt_path)

    def _restore(self) -> Optional[dict]:
        """What a resumed run starts from: ``{"finished": results}``, a checkpoint, or None (fresh)."""
        results_path = self.out / "results.json"
        if results_path.exists():
            saved = read_json(results_path, "results file")
            self._check_settings(saved, results_path)
            self.log(f"{self.out} holds a finished sweep; nothing to resume. Its saved results are reported.")
            return {"finished": saved}
        if not self.ckpt_path.exists():
            self.log(f"no {CHECKPOINT} in {self.out}: nothing to resume, starting a fresh sweep")
            return None
        state = read_checkpoint(self.ckpt_path, _CHECKPOINT_KEYS, "lavaplast ep sweep")
        self._check_settings(state["settings"], self.ckpt_path)
        if state["epoch"] == len(self.orders):  # the job was finished: the next one starts
            finished = self._finish_job(state)
            state = dict(state, **finished)
        self.log(f"resuming from {self.ckpt_path}: job {state['job'] + 1} of {1 + len(self.settings['thresholds'])}, "
                 f"epoch {state['epoch'] + 1}")
        return state

    def _finish_job(self, state) -> dict:
        reference, rows = state["reference"], list(state["rows"])
        if state["job"] == 0:
            reference = _reference(state["history"], state["seconds"])
        else:
            rows.append(self._row(self.settings["thresholds"][state["job"] - 1], state["history"], state["events"],
                                  state["seconds"]))
        return dict(reference=reference, rows=rows, job=state["job"] + 1, epoch=0, history=[], events=0.0,
                    seconds=0.0, weights=None)

    def _check_settings(self, saved: dict, source: Path) -> None:
        keys = self.settings.keys()
        diffs = config_differences({k: saved.get(k) for k in keys}, self.settings)
        if diffs:
            raise ValueError(f"{source} was written by a sweep with other settings ({'; '.join(diffs)}); resume "
                             "with the same settings, or start a new sweep in another --out (or --overwrite)")


def _plot(results: dict, path: Optional[Path] = None):
    """Left: test accuracy against messages per training sample, one point per threshold. Right: test
    accuracy after each epoch, per threshold and for the rate-based reference. Returns the Figure."""
    rows = results["sweep"]
    fig = new_figure(figsize=(11, 4))
    ax, ax_epochs = fig.subplots(1, 2)
    ax.plot([r["train_events_per_sample"] for r in rows], [r["test_acc"] for r in rows], "-o",
            label="event-driven (Lava)")
    for r in rows:
        ax.annotate(f"{r['threshold']:g}", (r["train_events_per_sample"], r["test_acc"]), fontsize=7,
                    textcoords="offset points", xytext=(3, 3))
    dense = rows[0]["dense_train_messages_per_sample"]
    ax.axvline(dense, color="grey", ls=":", label="dense rate-based messages")
    ax.axhline(results["reference_test_acc"], color="k", lw=0.8, ls="--", label="rate-based reference accuracy")
    ax.set_xscale("log")
    low, high = ax.get_ylim()
    ax.set_ylim(low, min(high, 100.5))  # a lone point gets a symmetric margin above 100%
    ax.set_xlabel("messages per training sample (log)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"event-driven EP {'-'.join(map(str, results['sizes']))}: labels = event threshold", fontsize=9)
    ax.legend(fontsize=7)
    # results written before per-epoch testing hold the final accuracies only
    reference = (results.get("reference_history")
                 or [dict(epoch=results["epochs"], test_acc=results["reference_test_acc"])])
    ax_epochs.plot([h["epoch"] for h in reference], [h["test_acc"] for h in reference], "k--o", ms=3,
                   label="rate-based reference")
    for r in rows:
        history = r.get("history") or [dict(epoch=results["epochs"], test_acc=r["test_acc"])]
        ax_epochs.plot([h["epoch"] for h in history], [h["test_acc"] for h in history], "-o", ms=3,
                       label=f"threshold {r['threshold']:g}")
    ax_epochs.set_xlabel("epoch")
    ax_epochs.set_ylabel("test accuracy (%)")
    ax_epochs.set_title("test accuracy after each epoch", fontsize=9)
    ax_epochs.legend(fontsize=7)
    return finish_figure(fig, path)
