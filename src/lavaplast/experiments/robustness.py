"""Accuracy of trained binary and ternary networks on faulty resistive-memory chips.

:func:`run_robustness` takes the run folders of ``lavaplast continual``
(binary or ternary BNNs, trained ideally or error-aware) or graph files
(``.toml`` or ``.nir`` inference graphs, run on one backend) and tests each one
with its weights read through :class:`lavaplast.core.DeviceFaults` over a
range of bit error rates (or of conductance variability): faults drawn at
every forward pass (``transient``) or once per chip (``frozen``: stuck
devices), ``draws`` times each (passes, or chips). It writes
``results.json``, ``robustness.csv`` and ``robustness.png`` (accuracy
against the error level, one panel per dataset), atomically.

Every task of a run is tested with the BatchNorm parameters saved at the end
of that task (as ``lavaplast continual`` reports it); the accuracy of a run
is the mean over its tasks. A graph file gets the faults of its
``connections.faults`` (frozen per chip: graph files describe a chip), so
graphs are swept in the frozen mode only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from lavaplast.core import check_ber, check_choice, check_int, check_number, check_optional_int
from lavaplast.outputs import read_json, run_folder, write_csv, write_json
from lavaplast.progress import progress_bar, show_progress

OUTPUTS = ("results.json", "robustness.csv", "robustness.png")
MODES = ("transient", "frozen")
SWEEPS = ("ber", "sigma")
DEFAULT_BERS = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 2e-2, 4e-2, 1e-1, 0.2, 0.3)
DEFAULT_SIGMAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


@dataclass
class RobustnessConfig:
    """What is swept: ``sweep`` (``"ber"`` or ``"sigma"``) over ``levels``, in fault ``modes``, ``draws``
    times per level (passes of the test set, or chips), chips numbered from ``seed``; ``test_limit``
    test images per task (``None``: all)."""

    sweep: str = "ber"
    levels: Optional[Sequence[float]] = None
    modes: Sequence[str] = MODES
    draws: int = 5
    seed: int = 0
    test_limit: Optional[int] = None

    def __post_init__(self):
        self.sweep = check_choice("sweep", self.sweep, SWEEPS)
        if self.levels is None:
            self.levels = DEFAULT_BERS if self.sweep == "ber" else DEFAULT_SIGMAS
        if isinstance(self.levels, (str, bytes)) or len(self.levels) == 0:
            raise ValueError(f"levels must be a non-empty list of {self.sweep} values, got {self.levels!r}")
        check = check_ber if self.sweep == "ber" else functools.partial(check_number, "sigma", low=0.0)
        self.levels = sorted({check(v) for v in self.levels})
        if isinstance(self.modes, str) or len(self.modes) == 0:
            raise ValueError(f"modes must be a non-empty list of {' / '.join(MODES)}, got {self.modes!r}")
        self.modes = [check_choice("mode", m, MODES) for m in dict.fromkeys(self.modes)]
        self.draws = check_int("draws", self.draws, 1)
        self.seed = check_int("seed", self.seed, 0)
        self.test_limit = check_optional_int("test_limit", self.test_limit)

    def to_dict(self) -> dict:
        return dict(sweep=self.sweep, levels=list(self.levels), modes=list(self.modes), draws=self.draws,
                    seed=self.seed, test_limit=self.test_limit)


class TrainedRun:
    """A finished ``lavaplast continual`` run: its config, network (trained weights) and test sets."""

    def __init__(self, folder: str | Path, test_limit: Optional[int] = None):
        from lavaplast.experiments.config import ContinualConfig
        from lavaplast.experiments.continual import CHECKPOINT, build_model, build_tasks, load_checkpoint

        self.folder = Path(folder)
        results_path = self.folder / "results.json"
        if not results_path.is_file():
            raise ValueError(f"{self.folder} holds no finished 'lavaplast continual' run (no results.json); "
                             "train one first, e.g. 'lavaplast continual --n-tasks 1 --out RUN'")
        saved = read_json(results_path, "results file")
        self.config = ContinualConfig.from_dict(saved["config"])
        if self.config.model != "bnn":
            raise ValueError(f"{self.folder} holds a full-precision network (model={self.config.model!r}); "
                             "device faults apply to binary and ternary networks (model='bnn')")
        ckpt = load_checkpoint(self.folder / CHECKPOINT, hint="train the run again")
        if self.config.test_limit is None or (test_limit is not None and test_limit < self.config.test_limit):
            self.config.test_limit = test_limit
        self.tasks = build_tasks(self.config)
        self.model = build_model(self.config, self.tasks[0].x_test.shape[1], self.tasks[0].n_classes)
        self.model.load_state_dict(ckpt["model"])
        self.bn_saved = ckpt["bn_saved"]
        self.ideal_accuracy = float(saved["mean_final_accuracy"])

    @property
    def label(self) -> str:
        c = self.config
        name = c.quantizer + (f" (threshold {c.ternary_threshold:g})" if c.quantizer == "ternary" else "")
        return name + (f", error-aware {c.train_ber:g}" if c.train_ber > 0 else "")

    @property
    def dataset(self) -> str:
        return self.config.dataset if self.config.protocol != "sequence" else "+".join(self.config.datasets)

    def describe(self) -> dict:
        c = self.config
        return dict(run=str(self.folder), label=self.label, dataset=self.dataset, quantizer=c.quantizer,
                    ternary_threshold=c.ternary_threshold if c.quantizer == "ternary" else None,
                    train_ber=c.train_ber, sizes=list(self.model.sizes), n_tasks=len(self.tasks),
                    zero_fraction=self.zero_fraction(), accuracy_at_training=self.ideal_accuracy)

    def zero_fraction(self) -> float:
        """The fraction of weights stored as 0 (ternary networks), over all layers."""
        w = [layer.binary_weight() for layer in self.model.linear_layers()]
        return float(sum((q == 0).sum().item() for q in w) / sum(q.numel() for q in w))

    @torch.no_grad()
    def accuracy(self, ber: float = 0.0, sigma: float = 0.0, frozen: bool = False, chip: int = 0) -> float:
        """Mean test accuracy over the run's tasks (percent) with the weights read through faults of the chip."""
        from lavaplast.experiments.continual import evaluate
        from lavaplast.reference import load_batchnorm_state

        self.model.set_read_faults(ber, frozen=frozen, sigma=sigma, seed=chip)
        try:
            accs = []
            for k, task in enumerate(self.tasks):
                if k < len(self.bn_saved) and self.config.task_bn:
                    load_batchnorm_state(self.model, self.bn_saved[k])
                x, y = torch.from_numpy(task.x_test), torch.from_numpy(task.y_test)
                accs.append(evaluate(self.model, x, y, self.config.eval_batch_size))
            return float(np.mean(accs))
        finally:
            self.model.set_read_faults(0.0)


class GraphUnderTest:
    """An inference graph file (``.toml`` or ``.nir``) run on ``backend`` with frozen device faults on
    every connection."""

    modes = ("frozen",)

    def __init__(self, path: str | Path, test_limit: Optional[int] = None, backend: Optional[str] = None):
        import dataclasses

        from lavaplast.graph.backends import check_backend
        from lavaplast.graph.inputs import build_input
        from lavaplast.graph.nir import load_graph_file

        self.folder = Path(path)
        spec = load_graph_file(self.folder)
        if test_limit is not None:
            spec = spec.replace(input=dataclasses.replace(spec.input, samples=test_limit))
        self.backend = check_backend(spec, backend)
        quantizers = {c.quantizer for c in spec.connections}
        if "none" in quantizers or len(quantizers) != 1:
            raise ValueError(f"{self.folder}: device faults need binary or ternary synapses of one kind, "
                             f"the graph has {sorted(quantizers)}")
        self.quantizer = quantizers.pop()
        self.spec = spec
        self.inputs = build_input(spec)
        if self.inputs.labels is None:
            raise ValueError(f"{self.folder}: its input has no labels, so it has no accuracy to sweep "
                             "(use a dataset input)")
        self.ideal_accuracy = self.accuracy()

    @property
    def label(self) -> str:
        return f"{self.spec.name} ({self.quantizer}, {self.backend})"

    @property
    def dataset(self) -> str:
        return self.spec.input.dataset or "array input"

    def describe(self) -> dict:
        return dict(run=str(self.folder), label=self.label, dataset=self.dataset, quantizer=self.quantizer,
                    backend=self.backend, train_ber=None,
                    sizes=[self.spec.input.size, *(p.size for p in self.spec.populations)],
                    accuracy_at_training=self.ideal_accuracy)

    def accuracy(self, ber: float = 0.0, sigma: float = 0.0, frozen: bool = True, chip: int = 0) -> float:
        import dataclasses

        from lavaplast.graph.backends import run_graph
        from lavaplast.graph.spec import FaultsSpec

        if not frozen:
            raise ValueError("graph files hold frozen faults (a chip); transient faults are swept on run folders")
        faults = FaultsSpec(ber=ber, sigma=sigma, seed=chip)
        spec = self.spec.replace(connections=tuple(dataclasses.replace(c, faults=faults)
                                                   for c in self.spec.connections))
        return float(run_graph(spec, self.inputs, self.backend).accuracy)


def load_target(path: str | Path, test_limit: Optional[int] = None, backend: Optional[str] = None):
    """A :class:`GraphUnderTest` for a ``.toml``/``.nir`` file, else a :class:`TrainedRun` (a run folder)."""
    path = Path(path)
    if path.suffix in (".toml", ".nir"):
        if not path.is_file():
            raise ValueError(f"graph file {path} does not exist")
        return GraphUnderTest(path, test_limit, backend)
    if backend is not None:
        raise ValueError(f"--backend applies to graph files; {path} is a run folder (tested with its PyTorch network)")
    return TrainedRun(path, test_limit)


def level_at_loss(levels: Sequence[float], accuracy: Sequence[float], loss: float = 1.0) -> Optional[float]:
    """The error level at which ``accuracy`` (one value per level, ``levels[0] == 0`` the ideal read) first
    falls ``loss`` points below the ideal, interpolated linearly in log(level) between the two levels
    around the crossing (the first nonzero level if it already falls there); ``None`` if it never does."""
    levels = np.asarray(levels, dtype=float)
    accuracy = np.asarray(accuracy, dtype=float)
    if levels[0] != 0:
        raise ValueError("level_at_loss needs the ideal read (level 0) first")
    target = accuracy[0] - loss
    below = np.nonzero(accuracy[1:] < target)[0]
    if len(below) == 0:
        return None
    i = below[0] + 1
    if i == 1:
        return float(levels[1])
    lo, hi = np.log(levels[i - 1]), np.log(levels[i])
    frac = (accuracy[i - 1] - target) / (accuracy[i - 1] - accuracy[i])
    return float(np.exp(lo + frac * (hi - lo)))


def sweep_run(run: TrainedRun, config: RobustnessConfig, progress: bool = False) -> dict:
    """Accuracy of one trained run at every level and mode: ``{mode: {mean, std, draws}}`` (lists per level)."""
    curves = {}
    for mode in [m for m in config.modes if m in getattr(run, "modes", MODES)]:
        frozen = mode == "frozen"
        table = np.zeros((len(config.levels), config.draws))
        cells = [(i, d) for i in range(len(config.levels)) for d in range(config.draws)]
        for i, d in progress_bar(cells, progress, desc=f"{run.folder.name} {mode}", unit="test"):
            level = config.levels[i]
            if level == 0:
                table[i, d] = run.accuracy() if d == 0 else table[i, 0]  # an ideal read is deterministic
                continue
            kwargs = dict(ber=level) if config.sweep == "ber" else dict(sigma=level)
            table[i, d] = run.accuracy(frozen=frozen, chip=config.seed + d, **kwargs)
        mean = table.mean(axis=1)
        curves[mode] = dict(mean=mean.round(4).tolist(), std=table.std(axis=1).round(4).tolist(),
                            draws=table.round(4).tolist(),
                            level_at_1pt_loss=level_at_loss(config.levels, mean, 1.0))
    return curves


def run_robustness(
    runs: Sequence[str | Path],
    out_dir: str | Path,
    config: Optional[RobustnessConfig] = None,
    *,
    overwrite: bool = False,
    backend: Optional[str] = None,
    progress: Optional[bool] = None,
    log: Callable[[str], None] = functools.partial(print, flush=True),
) -> dict:
    """Sweep device faults over ``runs`` (``lavaplast continual`` folders, or graph files run on
    ``backend``); return and save the results."""
    config = config or RobustnessConfig()
    if isinstance(runs, (str, Path)) or len(runs) == 0:
        raise ValueError(f"runs must be a non-empty list of run folders or graph files, got {runs!r}")
    trained = [load_target(r, config.test_limit, backend) for r in runs]
    for t in trained:
        skipped = [m for m in config.modes if m not in getattr(t, "modes", MODES)]
        if skipped:
            log(f"{t.folder}: a graph file describes one chip, so its faults are frozen; "
                f"mode {', '.join(skipped)} is swept on run folders only")
    if not any(m in getattr(t, "modes", MODES) for t in trained for m in config.modes):
        raise ValueError(f"nothing to sweep: graph files take mode 'frozen', got modes {list(config.modes)}")
    with run_folder(out_dir, overwrite=overwrite, outputs=OUTPUTS) as out:
        entries = []
        for run in trained:
            entry = run.describe()
            entry["curves"] = sweep_run(run, config, show_progress(progress))
            entries.append(entry)
            for mode, c in entry["curves"].items():
                at = c["level_at_1pt_loss"]
                log(f"{run.dataset:14s} {run.label:40s} {mode:9s} ideal {c['mean'][0]:.2f}%  "
                    f"-1 point at {config.sweep} {'beyond the range' if at is None else f'{at:.2g}'}")
        results = dict(config=config.to_dict(), runs=entries)
        rows = []
        for e in entries:
            for mode, c in e["curves"].items():
                for level, mean, std in zip(config.levels, c["mean"], c["std"]):
                    rows.append([e["dataset"], e["label"], e["run"], mode, level, f"{mean:.2f}", f"{std:.2f}",
                                 config.draws])
        write_csv(out / "robustness.csv", ["dataset", "network", "run", "mode", config.sweep, "accuracy_mean",
                                           "accuracy_std", "draws"], rows)
        plot_robustness(results, out / "robustness.png")
        write_json(out / "results.json", results)  # last: marks a finished sweep
    return results


def plot_robustness(results: dict, path: Optional[str | Path] = None):
    """Accuracy against the error level, one panel per dataset, a line per network and mode (band: +-1 std)."""
    from lavaplast.experiments.report import finish_figure, new_figure

    config = results["config"]
    levels = np.asarray(config["levels"], dtype=float)
    datasets = list(dict.fromkeys(e["dataset"] for e in results["runs"]))
    fig = new_figure(figsize=(5.2 * len(datasets), 4))
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    nonzero = levels[levels > 0]
    for ax, dataset in zip(axes, datasets):
        for k, e in enumerate(r for r in results["runs"] if r["dataset"] == dataset):
            for mode, c in e["curves"].items():
                mean, std = np.asarray(c["mean"]), np.asarray(c["std"])
                style = "-" if mode == "transient" else "--"
                ax.plot(levels, mean, style, marker="o", ms=3, color=f"C{k}", label=f"{e['label']}, {mode}")
                ax.fill_between(levels, mean - std, mean + std, color=f"C{k}", alpha=0.15, lw=0)
        if config["sweep"] == "ber" and len(nonzero):
            ax.set_xscale("symlog", linthresh=float(nonzero.min()), linscale=0.3)
        ax.set_xlabel("bit error rate" if config["sweep"] == "ber" else "conductance variability sigma")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="lower left")
    return finish_figure(fig, path)
