"""``make demo``: metaplastic against plain binary synapses on permuted MNIST.

Two identical binarized networks learn the same permuted-MNIST tasks one
after another; one has plain binary synapses (m = 0), the other metaplastic
ones. The table shows how well each remembers every task at the end.

The demo rewrites its own output folder (``--out``, default ``runs/demo``)
each time it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lavaplast.experiments import ContinualConfig, run_continual
from lavaplast.experiments.report import plot_comparison


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-tasks", type=int, default=3)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--meta", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/demo")
    args = p.parse_args(argv)

    out = Path(args.out)
    runs = {}
    for meta in (0.0, args.meta):
        config = ContinualConfig(protocol="permuted", n_tasks=args.n_tasks, hidden=args.hidden, meta=meta,
                                 epochs=args.epochs, lr=args.lr, seed=args.seed)
        print(f"\n== m = {meta} ==")
        runs[f"m = {meta:g}"] = run_continual(config, out / f"meta_{meta:g}", overwrite=True)

    header = "network      " + " ".join(f"task {k + 1:<3d}" for k in range(args.n_tasks)) + "  mean"
    print(f"\nFinal test accuracy (%) after learning {args.n_tasks} permuted-MNIST tasks "
          f"({'-'.join(map(str, [784, *args.hidden, 10]))}, {args.epochs} epoch(s)/task, lr {args.lr}):")
    print(header)
    for name, res in runs.items():
        accs = " ".join(f"{a:8.1f}" for a in res["final_accuracy"])
        print(f"{name:12s} {accs}  {res['mean_final_accuracy']:5.1f}")
    plot_comparison(runs, out / "demo.png")
    print(f"\nplot: {out / 'demo.png'}; per-run results.json, history.csv and accuracy.png under {out}/")
    return runs


if __name__ == "__main__":
    import sys

    from lavaplast.cli import run_reporting_errors

    def _demo() -> int:
        main()
        return 0

    sys.exit(run_reporting_errors(_demo, prog="lavaplast demo"))
