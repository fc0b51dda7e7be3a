"""Reproduce the continual-learning tables of the README.

Each suite trains several networks side by side on the same task stream and
writes every run's folder (results.json, history.csv, accuracy.png) plus a
summary JSON and a markdown table:

    python benchmarks/continual_table.py permuted --out runs/table
    python benchmarks/continual_table.py sequence --out runs/table
    python benchmarks/continual_table.py stream   --out runs/table

Scale options (--hidden, --epochs, --lr, ...) are recorded in the summary.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

from lavaplast.experiments import ContinualConfig, run_continual
from lavaplast.experiments.report import plot_comparison
from lavaplast.outputs import write_json, write_text


def suite_configs(args) -> dict[str, ContinualConfig]:
    common = dict(hidden=args.hidden, lr=args.lr, seed=args.seed, train_limit=args.train_limit)
    if args.suite == "permuted":
        base = dict(common, protocol="permuted", n_tasks=args.n_tasks, epochs=args.epochs)
        return {
            "m = 0 (plain BNN)": ContinualConfig(**base, meta=0.0),
            f"m = {args.meta:g}": ContinualConfig(**base, meta=args.meta),
            f"EWC, lambda = {args.ewc_lambda:g}": ContinualConfig(**base, meta=0.0, ewc_lambda=args.ewc_lambda),
        }
    if args.suite == "sequence":
        base = dict(common, protocol="sequence", datasets=["mnist", "fashion-mnist"], epochs=args.epochs)
        return {
            "m = 0 (plain BNN)": ContinualConfig(**base, meta=0.0),
            f"m = {args.meta:g}": ContinualConfig(**base, meta=args.meta),
        }
    base = dict(common, protocol="stream", dataset="fashion-mnist", n_subsets=args.n_subsets,
                epochs=args.epochs, eval_every="task")
    return {
        f"stream, m = {args.meta:g}": ContinualConfig(**base, meta=args.meta),
        "stream, m = 0": ContinualConfig(**base, meta=0.0),
        "whole set at once, m = 0": ContinualConfig(**base, meta=0.0, joint=True),
    }


def markdown(summary: dict) -> str:
    runs = summary["runs"]
    n = max(len(r["final_accuracy_task_bn"]) for r in runs.values())
    first = next(iter(runs.values()))
    names = first["task_names"]
    if first["config"]["protocol"] == "stream":  # every subset shares the full test set
        names = [f"{first['config']['dataset']} test set"]
    head = "| run | BatchNorm at test | " + " | ".join(names[:n]) + " | mean |"
    lines = [head, "|" + "---|" * (n + 3)]
    for name, r in runs.items():
        variants = [("per task", "task_bn"), ("shared", "shared_bn")] if n > 1 and not r["config"]["joint"] \
            and r["config"]["protocol"] != "stream" else [("-", "task_bn")]
        for label, key in variants:
            accs = r[f"final_accuracy_{key}"]
            cells = " | ".join(f"{a:.1f}" for a in accs) + " | " * (n - len(accs))
            lines.append(f"| {name} | {label} | {cells} | {sum(accs) / len(accs):.1f} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", choices=["permuted", "sequence", "stream"])
    p.add_argument("--hidden", type=int, nargs="+", default=[1024, 1024])
    p.add_argument("--n-tasks", type=int, default=6)
    p.add_argument("--n-subsets", type=int, default=60)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--meta", type=float, default=1.35)
    p.add_argument("--ewc-lambda", type=float, default=5e3)
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/table")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    out = Path(args.out) / args.suite
    runs = {}
    for name, config in suite_configs(args).items():
        print(f"\n== {name} ==", flush=True)
        slug = "".join(c for c in name if c.isalnum() or c in ".-")
        runs[name] = run_continual(config, out / slug, progress=False if args.no_progress else None, resume=True)
    summary = dict(suite=args.suite, command=" ".join(["python", *sys.argv]), runs=runs,
                   torch=torch.__version__, machine=platform.machine())
    write_json(out / "summary.json", summary)
    plot_comparison(runs, out / "comparison.png")
    table = markdown(summary)
    write_text(out / "table.md", table + "\n")
    print("\n" + table)
    return summary


if __name__ == "__main__":
    main()
