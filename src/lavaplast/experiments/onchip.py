"""Continual learning entirely on chip: the Lava graph against its twin.

A binary network learns a stream of permuted tasks with a local rule
(output error + direct feedback alignment, metaplastic Adam in every
synapse), once in Lava's CPU simulator and once in its twin, from the same
initial state and the same batches. ``neuron="sign"``: sign neurons, the
PyTorch twin :class:`~lavaplast.reference.local_bnn.LocalBinaryMLP`;
``neuron="lif"``: the spiking learner (LIF populations, ``steps`` per
sample, rate-coded input, the rule ``rule``) and its snnTorch twin
:class:`~lavaplast.reference.spiking_learner.SpikingLearnerTwin`. After
each task both are tested on every task seen so far; the results hold both,
their agreement, and the largest hidden-weight difference between the two.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from lavaplast.core import check_choice, check_int, check_nonnegative, check_optional_int, check_positive, check_sizes
from lavaplast.data import Task, make_tasks
from lavaplast.experiments.config import canonical_dataset, compact_per_layer, normalise_data_dir
from lavaplast.outputs import run_folder, write_csv, write_json
from lavaplast.progress import show_progress
from lavaplast.experiments.report import finish_figure, new_figure
from lavaplast.reference.local_bnn import LocalBinaryMLP, init_local_mlp

BACKENDS = ("both", "lava", "twin")
NEURONS = ("sign", "lif")
# permuted: n_tasks pixel permutations of `dataset`; sequence: MNIST, then Fashion-MNIST (n_tasks is 2).
PROTOCOLS = ("permuted", "sequence")


@dataclass
class OnChipConfig:
    """Settings of an on-chip continual-learning run (saved in results.json).

    ``quantizer`` ``"binary"`` or ``"ternary"`` (with ``ternary_threshold``) chooses the synapses.
    """

    dataset: str = "mnist"
    n_tasks: int = 3
    hidden: Sequence[int] = (256, 256)
    meta: Union[float, Sequence[float]] = 0.0
    lr: float = 0.02
    epochs: int = 1
    batch: int = 100
    train_limit: Optional[int] = None
    test_limit: Optional[int] = None
    seed: int = 0
    backend: str = "both"
    data_dir: Optional[str] = None
    neuron: str = "sign"
    protocol: str = "permuted"
    steps: int = 10
    rule: str = "metaplastic"
    gain: float = 0.5
    quantizer: str = "binary"
    ternary_threshold: float = 0.05

    def __post_init__(self):
        # Normalised like ContinualConfig, so equivalent settings give equal asdict() (see its module).
        self.dataset = canonical_dataset("dataset", self.dataset)
        self.hidden = check_sizes("hidden", self.hidden, min_len=1)
        for name in ("n_tasks", "epochs", "batch"):
            setattr(self, name, check_int(name, getattr(self, name), 1))
        self.seed = check_int("seed", self.seed, 0)
        for name in ("train_limit", "test_limit"):
            setattr(self, name, check_optional_int(name, getattr(self, name)))
        self.backend = check_choice("backend", self.backend, BACKENDS)
        self.neuron = check_choice("neuron", self.neuron, NEURONS)
        self.protocol = check_choice("protocol", self.protocol, PROTOCOLS)
        self.steps = check_int("steps", self.steps, 1)
        self.gain = check_positive("gain", self.gain)
        self.quantizer = check_choice("quantizer", self.quantizer, ("binary", "ternary"))
        self.ternary_threshold = check_nonnegative("ternary_threshold", self.ternary_threshold)
        if self.protocol == "sequence" and self.n_tasks != 2:
            raise ValueError(f"protocol 'sequence' learns MNIST then Fashion-MNIST: n_tasks must be 2, got "
                             f"{self.n_tasks}")
        if self.neuron == "lif":
            from lavaplast.core import check_window, get_rule

            check_window(self.steps, len(self.hidden) + 1)
            self.rule = get_rule(self.rule).name
        self.lr = check_positive("lr", self.lr)
        self.meta = compact_per_layer("meta", self.meta, len(self.hidden) + 1)
        self.data_dir = normalise_data_dir(self.data_dir)
        if self.train_limit is not None and self.train_limit < self.batch:
            raise ValueError(f"train_limit={self.train_limit} is smaller than one batch of batch={self.batch}: "
                             f"a task would have no batch to train on")


def task_order(n_train: int, batch: int, epochs: int, seed: int, task: int) -> np.ndarray:
    """The batches of one task: a fresh permutation per epoch, cut to whole batches."""
    rng = np.random.default_rng([seed, task])
    usable = n_train - n_train % batch
    if usable == 0:
        raise ValueError(f"a task has {n_train} training samples, fewer than one batch of {batch}")
    return np.concatenate([rng.permutation(n_train)[:usable] for _ in range(epochs)])


def _accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float(100.0 * np.mean(pred == y))


OUTPUTS = ("results.json", "history.csv", "accuracy.png")


def run_onchip(
    config: OnChipConfig,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    progress: Optional[bool] = None,
    log: Callable[[str], None] = functools.partial(print, flush=True),
    tasks: Optional[list[Task]] = None,
) -> dict:
    """Train and test as described in the module docstring; writes results.json, history.csv, accuracy.png.

    A folder that already holds a run is refused unless ``overwrite``.
    ``progress``: ``None`` draws the Lava progress bars only when stderr is
    a terminal.
    """
    with run_folder(out_dir, overwrite=overwrite, outputs=OUTPUTS) as out:
        return _run_onchip(config, out, show_progress(progress), log, tasks)


def _run_onchip(config: OnChipConfig, out_dir: Path, progress: bool, log, tasks) -> dict:
    if tasks is None:
        common = dict(seed=config.seed, data_dir=config.data_dir, train_limit=config.train_limit,
                      test_limit=config.test_limit)
        if config.protocol == "sequence":
            tasks = make_tasks("sequence", names=("mnist", "fashion-mnist"), **common)
        else:
            tasks = make_tasks("permuted", n_tasks=config.n_tasks, dataset=config.dataset, **common)
    sizes = [tasks[0].n_features, *config.hidden, tasks[0].n_classes]
    lava, twin = _learners(config, sizes, progress)
    history = []
    seconds = {"lava_train": 0.0, "lava_test": 0.0, "twin_train": 0.0, "twin_test": 0.0}
    for ti, task in enumerate(tasks):
        order = task_order(len(task.x_train), config.batch, config.epochs, config.seed, ti)
        row = {"task": ti + 1, "samples": int(len(order))}
        if lava is not None:
            t0 = time.perf_counter()
            row["lava_steps"] = lava.train(task.x_train, task.y_train, order)
            seconds["lava_train"] += time.perf_counter() - t0
        if twin is not None:
            t0 = time.perf_counter()
            twin.train(task.x_train, task.y_train, order)
            seconds["twin_train"] += time.perf_counter() - t0
        seen = tasks[: ti + 1]
        if lava is not None:
            t0 = time.perf_counter()
            preds = lava.predict(np.concatenate([t.x_test for t in seen]))
            seconds["lava_test"] += time.perf_counter() - t0
            row["acc_lava"], row["pred_lava"] = _split_acc(preds, seen), preds
        if twin is not None:
            t0 = time.perf_counter()
            preds = twin.predict(np.concatenate([t.x_test for t in seen]))
            seconds["twin_test"] += time.perf_counter() - t0
            row["acc_twin"], row["pred_twin"] = _split_acc(preds, seen), preds
        if lava is not None and twin is not None:
            row["agreement"] = float(np.mean(row["pred_lava"] == row["pred_twin"]) * 100)
            row["max_weight_diff"] = [float(np.abs(a - b).max()) for a, b in
                                      zip(lava.state.hidden, twin.state.hidden)]
        row.pop("pred_lava", None)
        row.pop("pred_twin", None)
        history.append(row)
        parts = [f"task {ti + 1}/{len(tasks)}"]
        for key in ("acc_lava", "acc_twin"):
            if key in row:
                parts.append(f"{key[4:]}: " + " ".join(f"{a:5.1f}" for a in row[key]))
        log("  ".join(parts))

    last = history[-1]
    primary = "acc_lava" if lava is not None else "acc_twin"
    results = dict(
        config=dataclasses.asdict(config),
        sizes=sizes,
        task_names=[t.name for t in tasks],
        history=history,
        final_accuracy=last[primary],
        mean_final_accuracy=float(np.mean(last[primary])),
        final_accuracy_twin=last.get("acc_twin"),
        seconds={k: round(v, 2) for k, v in seconds.items()},
    )
    if lava is not None:
        results["lava_steps"] = sum(r["lava_steps"] for r in history)
        trained = sum(r["samples"] for r in history)
        results["lava_train_samples_per_s"] = trained / max(seconds["lava_train"], 1e-9)
    _write_csv(history, out_dir / "history.csv")
    _plot(results, out_dir / "accuracy.png")
    write_json(out_dir / "results.json", results)  # last: marks a finished run
    return results


class _SignTwin:
    """The PyTorch twin of the sign graph, with the Lava learner's ``train``: a fresh optimizer per call."""

    def __init__(self, state, batch: int):
        self.net, self.batch = LocalBinaryMLP(state), batch
        self.state = self.net.state

    def train(self, x, y, order) -> None:
        eye = np.eye(self.state.sizes[-1])
        self.net.reset_optimizer()  # a fresh optimizer per task, like the Lava graph
        for k in range(0, len(order), self.batch):
            idx = order[k:k + self.batch]
            self.net.train_batch(x[idx], eye[y[idx]])
        self.net.sync_state()

    def predict(self, x):
        return self.net.predict(x)


class _LifLava:
    """:class:`~lavaplast.graph.spiking_learner.LavaSpikingLearner` whose ``train`` returns the steps run."""

    def __init__(self, state, batch: int, progress: bool):
        from lavaplast.graph.spiking_learner import LavaSpikingLearner

        self.net = LavaSpikingLearner(state, batch=batch, progress=progress)
        self.state = state

    def train(self, x, y, order) -> int:
        self.net.train(x, y, order)
        return self.net.steps

    def predict(self, x):
        return self.net.predict(x)


class _LifTwin:
    def __init__(self, state, batch: int):
        from lavaplast.reference.spiking_learner import SpikingLearnerTwin

        self.net, self.batch, self.state = SpikingLearnerTwin(state), batch, state

    def train(self, x, y, order) -> None:
        self.net.train(x, y, order, batch=self.batch)

    def predict(self, x):
        return self.net.predict(x, batch=self.batch)


def _learners(config: OnChipConfig, sizes: list, progress: bool) -> tuple:
    """``(lava, twin)`` learners from one initial state (``None`` where the backend leaves one out)."""
    use_lava = config.backend in ("both", "lava")
    use_twin = config.backend in ("both", "twin")
    meta = compact_per_layer("meta", config.meta, len(sizes) - 1)
    if config.neuron == "sign":
        from lavaplast.graph import LavaBinaryMLP  # imports Lava

        state = init_local_mlp(sizes, meta=meta, lr=config.lr, seed=config.seed, quantizer=config.quantizer,
                               ternary_threshold=config.ternary_threshold)
        lava = LavaBinaryMLP(state.copy(), batch=config.batch, progress=progress) if use_lava else None
        return lava, _SignTwin(state.copy(), config.batch) if use_twin else None
    from lavaplast.reference.spiking_learner import init_spiking_learner

    metas = meta if isinstance(meta, list) else [meta] * (len(sizes) - 1)
    state = init_spiking_learner(sizes, T=config.steps, rule=config.rule, gain=config.gain, seed=config.seed,
                                 params=[_lif_params(config.rule, config.lr, m) for m in metas],
                                 quantizer=config.quantizer)
    state.ternary_threshold = config.ternary_threshold
    lava = _LifLava(state.copy(), config.batch, progress) if use_lava else None
    return lava, _LifTwin(state.copy(), config.batch) if use_twin else None


def _lif_params(rule: str, lr: float, meta: float) -> dict:
    """The rule's parameters: ``lr``, and ``meta`` where the rule has it."""
    from lavaplast.core import get_rule

    defaults = get_rule(rule).defaults
    return {k: v for k, v in (("lr", lr), ("meta", meta)) if k in defaults}


def _split_acc(preds: np.ndarray, seen: list[Task]) -> list[float]:
    accs, start = [], 0
    for t in seen:
        accs.append(_accuracy(preds[start:start + len(t.y_test)], t.y_test))
        start += len(t.y_test)
    return accs


def _write_csv(history: list[dict], path: Path) -> None:
    rows = []
    for row in history:
        n = len(row.get("acc_lava") or row.get("acc_twin"))
        for k in range(n):
            rows.append([row["task"], k + 1,
                         f"{row['acc_lava'][k]:.2f}" if "acc_lava" in row else "",
                         f"{row['acc_twin'][k]:.2f}" if "acc_twin" in row else ""])
    write_csv(path, ["task_trained", "tested_task", "acc_lava", "acc_twin"], rows)


def _plot(results: dict, path: Optional[Path] = None):
    """Accuracy of every task after each task learned, Lava and twin; returns the Figure."""
    history = results["history"]
    fig = new_figure(figsize=(6.5, 4))
    ax = fig.subplots()
    n = len(history)
    for k in range(n):
        xs = [r["task"] for r in history if r["task"] > k]
        for key, style in (("acc_lava", "-o"), ("acc_twin", "--x")):
            if key in history[-1]:
                ys = [r[key][k] for r in history if r["task"] > k]
                ax.plot(xs, ys, style, ms=4, color=f"C{k}",
                        label=f"task {k + 1} ({'Lava' if key == 'acc_lava' else 'PyTorch twin'})")
    ax.set_xlabel("tasks learned")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_xticks(range(1, n + 1))
    cfg = results["config"]
    ax.set_title(f"on-chip local learning, m={cfg['meta']}, {'-'.join(map(str, results['sizes']))}")
    ax.legend(fontsize=7, loc="lower left")
    return finish_figure(fig, path)
