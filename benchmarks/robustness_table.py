"""Reproduce the device-robustness table and plot of the README.

Trains binary and ternary networks of one size on MNIST and Fashion-MNIST,
ideally and error-aware (transient read errors at ``--train-ber`` in every
training pass), then tests each with device read errors over a range of bit
error rates, transient and frozen:

    python benchmarks/robustness_table.py --out benchmarks/results/robustness

Writes every run's folder, the robustness sweep (results.json,
robustness.csv, robustness.png) and ``table.md``.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

from lavaplast.experiments import ContinualConfig, run_continual
from lavaplast.experiments.robustness import RobustnessConfig, run_robustness
from lavaplast.outputs import write_text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/robustness_table")
    p.add_argument("--hidden", type=int, nargs="+", default=[512])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--ternary-threshold", type=float, default=0.02)
    p.add_argument("--train-ber", type=float, default=0.05)
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-only", action="store_true",
                   help="train (or finish) the runs and stop: lets several processes train the datasets side by "
                        "side before one sweep")
    args = p.parse_args(argv)
    out = Path(args.out)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    runs = []
    for dataset in args.datasets:
        for quantizer in ("binary", "ternary"):
            for train_ber in (0.0, args.train_ber):
                name = f"{dataset}_{quantizer}" + (f"_aware{train_ber:g}" if train_ber else "")
                config = ContinualConfig(protocol="permuted", n_tasks=1, permute_first=False, dataset=dataset,
                                         hidden=args.hidden, epochs=args.epochs, quantizer=quantizer,
                                         ternary_threshold=args.ternary_threshold, train_ber=train_ber,
                                         train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed)
                run_continual(config, out / "runs" / name, resume=True, progress=False)
                runs.append(out / "runs" / name)
    if args.train_only:
        return 0
    results = run_robustness(runs, out / "sweep", RobustnessConfig(draws=args.draws, seed=args.seed),
                             overwrite=True, progress=False)
    write_text(out / "table.md", table(results, " ".join(["python", *sys.argv])))
    print((out / "table.md").read_text())
    return 0


def _fmt(level) -> str:
    return "beyond the range" if level is None else f"{level:.2g}"


def table(results: dict, command: str) -> str:
    levels = results["config"]["levels"]
    show = [lv for lv in (1e-3, 1e-2, 4e-2, 1e-1, 0.2) if lv in levels]
    head = ("| dataset | network | ideal | " + " | ".join(f"BER {lv:g} (transient / frozen)" for lv in show)
            + " | BER at -1 point (transient / frozen) |")
    lines = [head, "|" + "---|" * (4 + len(show))]
    for e in results["runs"]:
        t, f = e["curves"]["transient"], e["curves"]["frozen"]
        cells = [f"{t['mean'][levels.index(lv)]:.2f} / {f['mean'][levels.index(lv)]:.2f}" for lv in show]
        lines.append(f"| {e['dataset']} | {e['label']} | {t['mean'][0]:.2f} | " + " | ".join(cells)
                     + f" | {_fmt(t['level_at_1pt_loss'])} / {_fmt(f['level_at_1pt_loss'])} |")
    lines += ["", f"{results['config']['draws']} draws per level (test passes, or chips); "
              f"network {results['runs'][0]['sizes']}; torch {torch.__version__}, {platform.machine()}.",
              f"Command: `{command}`"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
