"""Saving and plotting experiment results.

Figures are drawn on :class:`matplotlib.figure.Figure` objects, never through
pyplot: no backend is selected and no global figure state is touched, so
plotting here neither changes nor depends on what a notebook or script uses
for its own figures. Every plot function returns its Figure (a notebook
displays it when it is the cell's last expression) and, given a path, also
saves it atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from lavaplast.outputs import save_figure, write_csv


def write_history_csv(history: list[dict], path: str | Path) -> None:
    """One row per (training epoch, tested task): both accuracies."""
    rows = []
    for row in history:
        for k, acc in enumerate(row["acc"]):
            rows.append([row["task"], row["epoch"], k + 1, f"{acc:.2f}", f"{row['acc_task_bn'][k]:.2f}",
                         f"{row['acc_shared_bn'][k]:.2f}", f"{row['train_loss']:.4f}"])
    write_csv(path, ["task_trained", "epoch", "tested_task", "acc", "acc_task_bn", "acc_shared_bn", "train_loss"],
              rows)


def new_figure(**kwargs):
    """A matplotlib Figure detached from pyplot (``kwargs`` go to ``Figure``)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def finish_figure(fig, path: Optional[str | Path], dpi: int = 120):
    """Lay out ``fig``, save it to ``path`` if given, and return it."""
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path, dpi=dpi)
    return fig


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


def plot_accuracy(results: dict, path: Optional[str | Path] = None, title: Optional[str] = None):
    """Test accuracy of every task after each training epoch, one line per task; returns the Figure."""
    cfg = results["config"]
    fig = new_figure(figsize=(7, 4))
    ax = fig.subplots()
    _draw_history(ax, results)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or f"{cfg['protocol']}  meta={cfg.get('meta')}  ewc={cfg.get('ewc_lambda', 0)}  lr={cfg['lr']}")
    return finish_figure(fig, path)


def plot_comparison(runs: dict, path: Optional[str | Path] = None):
    """Side-by-side accuracy-per-task curves of several runs on the same task stream; returns the Figure."""
    fig = new_figure(figsize=(5 * len(runs), 3.8))
    axes = fig.subplots(1, len(runs), sharey=True, squeeze=False)
    for ax, (name, results) in zip(axes[0], runs.items()):
        _draw_history(ax, results)
        ax.set_title(f"{name}: mean final {results['mean_final_accuracy']:.1f}%")
    axes[0][0].set_ylabel("test accuracy (%)")
    return finish_figure(fig, path)
