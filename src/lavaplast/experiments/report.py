"""Saving and plotting experiment results."""

from __future__ import annotations

import csv
from pathlib import Path


def write_history_csv(history: list[dict], path: str | Path) -> None:
    """One row per (training epoch, tested task): both accuracies."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["task_trained", "epoch", "tested_task", "acc", "acc_task_bn", "acc_shared_bn", "train_loss"])
        for row in history:
            for k, acc in enumerate(row["acc"]):
                writer.writerow([row["task"], row["epoch"], k + 1, f"{acc:.2f}",
                                 f"{row['acc_task_bn'][k]:.2f}", f"{row['acc_shared_bn'][k]:.2f}",
                                 f"{row['train_loss']:.4f}"])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _draw_history(ax, results: dict) -> None:
    """Accuracy of each task after every training epoch; dotted lines at task switches."""
    history = results["history"]
    n_tasks = max(len(r["acc"]) for r in history)
    names = list(results.get("task_names") or [])
    names += [f"task {k + 1}" for k in range(len(names), n_tasks)]
    for k in range(n_tasks):
        xs = [i + 1 for i, r in enumerate(history) if len(r["acc"]) > k]
        ys = [r["acc"][k] for r in history if len(r["acc"]) > k]
        ax.plot(xs, ys, marker="o", ms=3, label=names[k])
    for i in range(1, len(history)):
        if history[i]["task"] != history[i - 1]["task"]:
            ax.axvline(i + 0.5, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("training epoch (all tasks)")
    ax.set_ylim(0, 100)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if n_tasks <= 12:
        ax.legend(fontsize=7, loc="lower left")


def plot_accuracy(results: dict, path: str | Path, title: str | None = None) -> None:
    """Test accuracy of every task after each training epoch, one line per task."""
    plt = _pyplot()
    cfg = results["config"]
    fig, ax = plt.subplots(figsize=(7, 4))
    _draw_history(ax, results)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or f"{cfg['protocol']}  meta={cfg.get('meta')}  ewc={cfg.get('ewc_lambda', 0)}  lr={cfg['lr']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_comparison(runs: dict, path: str | Path) -> None:
    """Side-by-side accuracy-per-task curves of several runs on the same task stream."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.8), sharey=True, squeeze=False)
    for ax, (name, results) in zip(axes[0], runs.items()):
        _draw_history(ax, results)
        ax.set_title(f"{name}: mean final {results['mean_final_accuracy']:.1f}%")
    axes[0][0].set_ylabel("test accuracy (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
