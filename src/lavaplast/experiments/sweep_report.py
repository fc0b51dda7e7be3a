"""``lavaplast sweep report DIR``: each command's headline numbers, mean +- std over seeds per config.

Runs are grouped by everything but the seed. For every group and headline
number the report gives the mean, the sample standard deviation over the
seeds (``ddof = 1``; empty for a single seed) and the number of seeds, as
``report.md`` and ``report.csv``, and plots the curves of the command
averaged over seeds, with a band of +- one standard deviation
(``report_*.png``). Only complete runs count; the report says how many are
missing.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional

import numpy as np

from lavaplast.experiments.report import finish_figure, new_figure
from lavaplast.experiments.sweep import MARKER, SWEEP_JSON
from lavaplast.outputs import read_json, write_csv, write_text

# --- headline numbers ---------------------------------------------------------------


def _per_task(prefix: str, names: list, values) -> dict:
    if not values:
        return {}
    names = list(names or []) + [f"task {k + 1}" for k in range(len(names or []), len(values))]
    return {f"{prefix}{names[k]}": float(v) for k, v in enumerate(values) if v is not None}


def _continual(r: dict) -> dict:
    names = r.get("task_names") or []
    out = {"mean final accuracy": r["mean_final_accuracy"]}
    for variant, label in (("task_bn", "per-task BN"), ("shared_bn", "shared BN")):
        if f"mean_final_accuracy_{variant}" in r:
            out[f"mean ({label})"] = r[f"mean_final_accuracy_{variant}"]
            out.update(_per_task(f"{label}: ", names, r.get(f"final_accuracy_{variant}")))
    out["train seconds"] = r.get("train_seconds")
    return out


def _onchip(r: dict) -> dict:
    out = {"mean final accuracy": r["mean_final_accuracy"]}
    out.update(_per_task("", r.get("task_names"), r.get("final_accuracy")))
    twin = r.get("final_accuracy_twin")
    if twin:
        out["twin mean final accuracy"] = float(np.mean(twin))
    out["Lava training samples/s"] = r.get("lava_train_samples_per_s")
    return out


def _ep_train(r: dict) -> dict:
    return {"final test accuracy": r["final_test_accuracy"], "best test accuracy": r["best_test_accuracy"],
            "train seconds": r.get("train_seconds")}


def _ep_sweep(r: dict) -> dict:
    out = {"reference test accuracy": r["reference_test_acc"]}
    for row in r["sweep"]:
        t = f"{row['threshold']:g}"
        out[f"accuracy @ threshold {t}"] = row["test_acc"]
        out[f"messages per training sample @ threshold {t}"] = row["train_events_per_sample"]
        out[f"fewer messages than dense @ threshold {t}"] = row.get("train_reduction")
    if r.get("reference_history"):  # tested after every epoch: the best epoch too
        out["reference best epoch accuracy"] = max(h["test_acc"] for h in r["reference_history"])
        for row in r["sweep"]:
            out[f"best epoch accuracy @ threshold {row['threshold']:g}"] = max(h["test_acc"] for h in row["history"])
    return out


def _run(r: dict) -> dict:
    out = {"accuracy": r.get("accuracy")}
    kinds = r.get("count_kind") or {}
    for name, value in (r.get("per_sample") or {}).items():
        out[f"{name}: {kinds.get(name, 'events')} per sample"] = value
    out["seconds"] = r.get("seconds")
    return out


def _robustness(r: dict) -> dict:
    cfg, out = r["config"], {}
    for entry in r["runs"]:
        name = entry.get("label") or entry.get("run")
        for mode, curve in entry["curves"].items():
            for level, mean in zip(cfg["levels"], curve["mean"]):
                out[f"{name} {mode} @ {cfg['sweep']} {level:g}"] = mean
            out[f"{name} {mode}: {cfg['sweep']} at 1 point lost"] = curve.get("level_at_1pt_loss")
    return out


def _generic(r: dict) -> dict:
    # A command without its own extractor: its top-level numbers, and lists of numbers item by item.
    out = {}
    for key, value in r.items():
        if key == "config":
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
        elif isinstance(value, list) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                       for v in value):
            out.update({f"{key}[{i}]": v for i, v in enumerate(value)})
    return out


HEADLINES = {"continual": _continual, "onchip": _onchip, "ep train": _ep_train, "ep sweep": _ep_sweep,
             "run": _run, "robustness": _robustness}


def headline(command: str, results: dict) -> dict:
    """The headline numbers of one run's results, name -> value (``None`` values dropped)."""
    try:
        numbers = HEADLINES.get(command, _generic)(results)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"results of 'lavaplast {command}' lack {exc}; they were not written by this "
                         "version of the command") from None
    return {k: float(v) for k, v in numbers.items() if v is not None}


def mean_std(values) -> tuple[float, Optional[float], int]:
    """Mean, sample standard deviation (``ddof = 1``; ``None`` for one value) and count."""
    x = np.asarray(values, dtype=float)
    return float(x.mean()), (float(x.std(ddof=1)) if len(x) > 1 else None), len(x)


# --- loading ---------------------------------------------------------------------------------


def load_sweep_runs(folder: str | Path) -> tuple[dict, list]:
    """``sweep.json`` and, for each of its complete runs, ``(run entry, results)``."""
    folder = Path(folder)
    if not (folder / SWEEP_JSON).is_file():
        raise ValueError(f"{folder} is not a sweep folder: it has no {SWEEP_JSON} (run 'lavaplast sweep FILE "
                         "--out DIR' first)")
    sweep = read_json(folder / SWEEP_JSON, "sweep file")
    runs = sweep.get("runs")
    if not isinstance(sweep.get("command"), str) or not isinstance(runs, list) or \
            not all(isinstance(e, dict) and {"folder", "config"} <= set(e) for e in runs):
        raise ValueError(f"{folder / SWEEP_JSON} was not written by 'lavaplast sweep' (no command, or runs without "
                         "folder and config)")
    loaded = []
    for entry in sweep.get("runs", []):
        run_dir = folder / entry["folder"]
        marker = run_dir / MARKER
        if not marker.is_file():
            continue
        record = read_json(marker, "run marker")
        if record.get("status") != "complete" or record.get("config") != entry["config"]:
            continue
        results = read_json(run_dir / "results.json", "results file")
        loaded.append((entry, results))
    return sweep, loaded


def _group_key(config: dict) -> str:
    return json.dumps(config["options"], sort_keys=True)


def _label(options: dict, varying: list) -> str:
    if not varying:
        return "all runs"
    return ", ".join(f"{k.replace('_', '-')}={_show(options.get(k))}" for k in varying)


def _show(value) -> str:
    if value is None:
        return "(default)"
    if isinstance(value, list):
        return " ".join(_show(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# --- the report -------------------------------------------------------------------------------


def sweep_report(folder: str | Path, out: Optional[str | Path] = None) -> dict:
    """Write ``report.md``, ``report.csv`` and plots for the sweep in ``folder`` (into ``out``, default
    ``folder``); return ``dict(rows=..., metrics=..., markdown=..., files=...)``.

    Each row is a config (the options, all but the seed) with, per headline
    number, ``mean``, ``std`` (sample, ``ddof = 1``) and ``n`` (seeds).
    """
    folder = Path(folder)
    sweep, loaded = load_sweep_runs(folder)
    out = Path(out) if out is not None else folder
    out.mkdir(parents=True, exist_ok=True)
    command = sweep["command"]
    total = len(sweep.get("runs", []))
    if not loaded:
        raise ValueError(f"no run of the sweep in {folder} is complete yet (0 of {total}); nothing to report")

    groups: dict = {}
    for entry, results in loaded:
        groups.setdefault(_group_key(entry["config"]), []).append((entry, results))
    option_sets = [json.loads(k) for k in groups]
    names = sorted({k for o in option_sets for k in o})
    varying = [k for k in names if len({json.dumps(o.get(k)) for o in option_sets}) > 1]
    fixed = {k: option_sets[0].get(k) for k in names if k not in varying}

    metrics: list = []
    rows = []
    for key, members in groups.items():
        options = json.loads(key)
        per_metric: dict = {}
        for entry, results in members:
            for name, value in headline(command, results).items():
                per_metric.setdefault(name, []).append(value)
                if name not in metrics:
                    metrics.append(name)
        stats = {name: mean_std(values) for name, values in per_metric.items()}
        rows.append(dict(label=_label(options, varying), options=options,
                         seeds=sorted(e["config"].get("seed") for e, _ in members if "seed" in e["config"]),
                         stats=stats, members=members))

    header = [k.replace("_", "-") for k in varying] + ["seeds"]
    csv_rows = []
    for row in rows:
        line = [_show(row["options"].get(k)) for k in varying] + [" ".join(map(str, row["seeds"])) or "-"]
        for name in metrics:
            m = row["stats"].get(name)
            line += ["", "", 0] if m is None else [repr(m[0]), "" if m[1] is None else repr(m[1]), m[2]]
        csv_rows.append(line)
    csv_header = header + [f"{name} {part}" for name in metrics for part in ("mean", "std", "n")]
    files = [write_csv(out / "report.csv", csv_header, csv_rows)]

    md = [f"# Sweep report: lavaplast {command}", "",
          f"{sum(len(r['members']) for r in rows)} of {total} runs complete, {len(rows)} "
          f"config{'s' if len(rows) > 1 else ''}; mean +- sample "
          "standard deviation over seeds (n = seeds)."]
    if fixed:
        md.append("Same in every config: " + ", ".join(f"{k.replace('_', '-')}={_show(v)}" for k, v in fixed.items())
                  + ".")
    md += ["", "| " + " | ".join(header + metrics) + " |", "|" + "---|" * (len(header) + len(metrics))]
    for row, line in zip(rows, csv_rows):
        cells = line[:len(header)]
        for name in metrics:
            m = row["stats"].get(name)
            cells.append("" if m is None else (f"{m[0]:.2f}" if m[1] is None else f"{m[0]:.2f} +- {m[1]:.2f}"))
        md.append("| " + " | ".join(cells) + " |")
    markdown = "\n".join(md) + "\n"
    files.append(write_text(out / "report.md", markdown))

    plot = PLOTS.get(command)
    if plot is not None:
        path = plot(rows, folder, out)
        if path is not None:
            files.append(path)
    return dict(command=command, rows=[{k: v for k, v in r.items() if k != "members"} for r in rows],
                metrics=metrics, varying=varying, markdown=markdown, files=files)


# --- plots averaged over seeds ------------------------------------------------------------------


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _band(ax, xs, runs_values, **kwargs):
    """Mean line of ``runs_values`` (one array per seed, same length) with a +- std band."""
    y = np.asarray(runs_values, dtype=float)
    mean = y.mean(0)
    std = y.std(0, ddof=1) if len(y) > 1 else None
    # Error bars as well as the band: a band around a single point is invisible.
    container = ax.errorbar(xs, mean, yerr=std, capsize=2, elinewidth=0.8, **kwargs)
    if std is not None:
        ax.fill_between(xs, mean - std, mean + std, color=container.lines[0].get_color(), alpha=0.2, lw=0)
    return container


def _task_of(step) -> int:
    return step[0] if isinstance(step, tuple) else step


def _task_curves(rows, folder: Path, out: Path, *, step_key, acc_key, xlabel, path_name, title,
                 separators: bool) -> Optional[Path]:
    """One panel per config: each tested task's accuracy over training, averaged over seeds."""
    fig = new_figure(figsize=(max(6.5, 5 * len(rows)), 3.8))
    axes = fig.subplots(1, len(rows), sharey=True, squeeze=False)[0]
    for ax, row in zip(axes, rows):
        curves: dict = {}  # tested task -> list over seeds of {step: acc}
        for entry, _ in row["members"]:
            path = folder / entry["folder"] / "history.csv"
            if not path.is_file():
                continue
            per_task: dict = {}
            for rec in _read_csv(path):
                if rec.get(acc_key, "") == "":
                    continue
                per_task.setdefault(int(rec["tested_task"]), {})[step_key(rec)] = float(rec[acc_key])
            for task, values in per_task.items():
                curves.setdefault(task, []).append(values)
        # One x position per evaluation, shared by all tasks of the panel.
        order = sorted({s for seeds in curves.values() for v in seeds for s in v})
        for task, seeds in sorted(curves.items()):
            steps = sorted(set.intersection(*(set(v) for v in seeds)))  # evaluations every seed has
            xs = [order.index(s) + 1 for s in steps]
            _band(ax, xs, [[v[s] for s in steps] for v in seeds], marker="o", ms=3, label=f"task {task}")
        for i in range(1, len(order) if separators else 0):
            if _task_of(order[i]) != _task_of(order[i - 1]):
                ax.axvline(i + 0.5, color="grey", lw=0.5, ls=":")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{row['label']} (n={len(row['members'])})", fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylim(0, 100)
        if len(curves) <= 12:
            ax.legend(fontsize=7, loc="lower left")
    axes[0].set_ylabel("test accuracy (%)")
    fig.suptitle(title, fontsize=10)
    finish_figure(fig, out / path_name)
    return out / path_name


def _plot_continual(rows, folder, out):
    return _task_curves(rows, folder, out, step_key=lambda r: (int(r["task_trained"]), int(r["epoch"])),
                        acc_key="acc", xlabel="evaluation (all tasks)", path_name="report_accuracy.png",
                        title="every task's accuracy over training: mean over seeds, +- 1 std", separators=True)


def _plot_onchip(rows, folder, out):
    return _task_curves(rows, folder, out, step_key=lambda r: int(r["task_trained"]), acc_key="acc_lava",
                        xlabel="tasks trained", path_name="report_accuracy.png",
                        title="on chip (Lava), every task: mean over seeds, +- 1 std", separators=False)


def _plot_ep_train(rows, folder, out):
    fig = new_figure(figsize=(6, 4))
    ax = fig.subplots()
    for row in rows:
        seeds = [[float(r["test_acc"]) for r in _read_csv(folder / e["folder"] / "history.csv")]
                 for e, _ in row["members"] if (folder / e["folder"] / "history.csv").is_file()]
        if seeds:
            n = min(len(s) for s in seeds)
            _band(ax, list(range(1, n + 1)), [s[:n] for s in seeds], marker="o", ms=3,
                  label=f"{row['label']} (n={len(seeds)})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7)
    ax.set_title("EP test accuracy: mean over seeds, band +- 1 std", fontsize=10)
    return finish_figure(fig, out / "report_accuracy.png") and out / "report_accuracy.png"


def _plot_ep_sweep(rows, folder, out):
    per_epoch = any(results.get("reference_history") for row in rows for _, results in row["members"])
    fig = new_figure(figsize=(11 if per_epoch else 6, 4))
    ax, *rest = fig.subplots(1, 2 if per_epoch else 1, squeeze=False)[0]
    if per_epoch:
        _plot_ep_sweep_epochs(rows, rest[0])
    for row in rows:
        by_t: dict = {}
        for _, results in row["members"]:
            for r in results["sweep"]:
                by_t.setdefault(r["threshold"], []).append((r["train_events_per_sample"], r["test_acc"]))
        ts = sorted(by_t)
        mx = [float(np.mean([e for e, _ in by_t[t]])) for t in ts]
        my = [float(np.mean([a for _, a in by_t[t]])) for t in ts]
        sy = [float(np.std([a for _, a in by_t[t]], ddof=1)) if len(by_t[t]) > 1 else 0.0 for t in ts]
        sx = [float(np.std([e for e, _ in by_t[t]], ddof=1)) if len(by_t[t]) > 1 else 0.0 for t in ts]
        ax.errorbar(mx, my, xerr=sx, yerr=sy, marker="o", capsize=3, label=f"{row['label']} (n={len(row['members'])})")
        for t, x, y in zip(ts, mx, my):
            ax.annotate(f"{t:g}", (x, y), fontsize=7, textcoords="offset points", xytext=(4, 4))
    dense = {r.get("dense_train_messages_per_sample") for row in rows for _, res in row["members"]
             for r in res["sweep"]} - {None}
    for n, d in enumerate(sorted(dense)):  # the scale the events are measured against
        ax.axvline(d, color="grey", ls=":", label="dense rate-based messages" if n == 0 else None)
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on a narrow range
    ax.set_xlabel("messages per training sample (log)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7)
    ax.set_title("event-driven EP, labels = threshold: mean +- std over seeds", fontsize=10)
    return finish_figure(fig, out / "report_accuracy_vs_messages.png") and out / "report_accuracy_vs_messages.png"


def _plot_ep_sweep_epochs(rows, ax):
    """Test accuracy after each epoch, per threshold and for the reference: mean over seeds with a band."""
    for row in rows:
        curves: dict = {}  # curve name -> one list of accuracies per seed
        for _, results in row["members"]:
            if results.get("reference_history"):
                curves.setdefault("reference", []).append([h["test_acc"] for h in results["reference_history"]])
                for r in results["sweep"]:
                    curves.setdefault(f"threshold {r['threshold']:g}", []).append(
                        [h["test_acc"] for h in r["history"]])
        for name, seeds in curves.items():
            n = min(len(s) for s in seeds)
            _band(ax, list(range(1, n + 1)), [s[:n] for s in seeds], marker="o", ms=3,
                  ls="--" if name == "reference" else "-", label=f"{row['label']}, {name} (n={len(seeds)})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7)
    ax.set_title("test accuracy after each epoch: mean over seeds, +- 1 std", fontsize=10)


PLOTS = {"continual": _plot_continual, "onchip": _plot_onchip, "ep train": _plot_ep_train,
         "ep sweep": _plot_ep_sweep}
