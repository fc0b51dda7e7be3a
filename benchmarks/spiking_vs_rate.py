"""Spiking against rate-based: a trained binary MNIST network as LIF neurons, accuracy against T.

``processes/mnist_lif_deploy.toml`` (784-512-512-10 LIF neurons, binary
synapses trained as the graph's rate model by
``python -m lavaplast.graph.train_rate``, MNIST pixels as constant currents,
spike-count readout) runs on Lava, on its snnTorch twin and as its
rate-based network (``torch``) on the first ``--samples`` test images, for
every ``T`` of ``--steps`` (:func:`lavaplast.graph.compare.compare_graph`).
Prints a table of accuracy, messages and synaptic operations per sample
against ``T`` and writes the numbers and a plot::

    python benchmarks/spiking_vs_rate.py --out benchmarks/results/spiking_vs_rate.json
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from common import save  # benchmarks/common.py (the script's folder is on sys.path)
from lavaplast.graph.compare import compare_graph, plot_accuracy_vs_steps
from lavaplast.graph.spec import load_graph
from lavaplast.outputs import save_figure

GRAPH = Path(__file__).resolve().parent.parent / "processes" / "mnist_lif_deploy.toml"
STEPS = (1, 2, 4, 8, 16, 32, 64, 128)


def table(result: dict) -> list[str]:
    """One line per ``T``: accuracy on each backend, the gap to the rate model, cost per sample."""
    acc = result["accuracy_vs_steps"]
    rate = acc["rate"]
    lines = [f"{'T':>5} {'lava %':>8} {'snntorch %':>11} {'rate %':>8} {'lava - rate':>12} "
             f"{'messages':>10} {'synops':>12}"]
    for k, T in enumerate(acc["steps"]):
        lava, twin = acc["lava"][k], acc["snntorch"][k]
        lines.append(f"{T:>5} {lava:>8.1f} {twin:>11.1f} {rate:>8.1f} {lava - rate:>+12.1f} "
                     f"{acc['lava_messages_total'][k]:>10.1f} {acc['lava_synops_total'][k]:>12.0f}")
    dense = result["cost"]["torch"]
    lines.append(f"rate-based (dense, one pass): {dense['messages_total']:.0f} messages, "
                 f"{dense['synops_total']:.0f} multiply-accumulates per sample")
    return lines


def figure(data: dict):
    """Accuracy against ``T`` (:func:`plot_accuracy_vs_steps`) with the band of +-1 point around the rate model."""
    fig = plot_accuracy_vs_steps(data)
    ax = fig.axes[0]
    rate = data["accuracy_vs_steps"]["rate"]
    ax.axhspan(rate - 1, rate + 1, color="tab:green", alpha=0.15, label="rate-based +- 1 point")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    p.add_argument("--batch", type=int, default=500, help="samples side by side in one Lava run")
    p.add_argument("--out", default="benchmarks/results/spiking_vs_rate.json")
    args = p.parse_args(argv)

    spec = load_graph(GRAPH)
    spec = spec.replace(run=dataclasses.replace(spec.run, batch=args.batch))
    result = compare_graph(spec, steps=args.steps, samples=args.samples, progress=True)
    acc = result["accuracy_vs_steps"]
    data = {k: v for k, v in result.items() if k != "runs"}
    data.update(benchmark="spiking_vs_rate", gap_at_largest_T={
        b: acc[b][-1] - acc["rate"] for b in ("lava", "snntorch")})
    out = save(data, args.out)
    save_figure(figure(data), out.with_suffix(".png"))
    for line in table(result):
        print(line)
    print(f"{result['samples']} MNIST test images; differing spikes lava vs snntorch per T: "
          f"{acc.get('differing_spikes')} -> {out}, {out.with_suffix('.png')}")
    return data


if __name__ == "__main__":
    main()
