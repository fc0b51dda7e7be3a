"""Graph files: Lava against the snnTorch twin, spike for spike, at scale.

The shipped spiking classifier (``processes/spiking_classifier.toml``: rate-coded
input -> binary synapses -> LIF -> binary synapses -> LIF) widened to MNIST
(784 inputs, ``--hidden`` LIF neurons, 10 outputs), run on ``--samples`` MNIST
test images for ``--steps`` time steps on both backends from the one
specification; records every spike of every population and counts those
that differ. Also times each backend.

    python benchmarks/bench_graphs.py --out benchmarks/results/graphs.json
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np

from common import save  # benchmarks/common.py (the script's folder is on sys.path)
from lavaplast.graph.backends import run_graph
from lavaplast.graph.inputs import build_input
from lavaplast.graph.spec import parse_graph

try:
    import tomllib
except ModuleNotFoundError:
    import tomli as tomllib

CLASSIFIER = Path(__file__).resolve().parent.parent / "processes" / "spiking_classifier.toml"


def mnist_classifier(hidden: int, samples: int, steps: int, batch: int):
    """The shipped classifier's graph with an MNIST input and ``hidden`` LIF neurons."""
    data = copy.deepcopy(tomllib.loads(CLASSIFIER.read_text()))
    data["name"] = "spiking-binary-classifier-mnist"
    data["input"].update(size=784, dataset="mnist", split="test", samples=samples)
    data["populations"][0]["size"] = hidden
    data["run"].update(steps=steps, batch=batch)
    return parse_graph(data, f"{CLASSIFIER} (MNIST variant)", base=CLASSIFIER.parent)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--out", default="benchmarks/results/graphs.json")
    args = p.parse_args(argv)

    spec = mnist_classifier(args.hidden, args.samples, args.steps, args.batch)
    inputs = build_input(spec)
    lava = run_graph(spec, inputs, "lava")
    twin = run_graph(spec, inputs, "snntorch")
    populations = {}
    for pop in spec.populations:
        a, b = lava.records[pop.name], twin.records[pop.name]
        populations[pop.name] = dict(size=pop.size, recorded_entries=int(a.size), spikes_lava=int(a.sum()),
                                     spikes_snntorch=int(b.sum()), differing=int(np.count_nonzero(a != b)))
    differing = sum(v["differing"] for v in populations.values())
    result = dict(
        benchmark="graph_lava_vs_snntorch",
        graph=spec.to_dict(),
        samples=args.samples,
        steps=args.steps,
        recorded_steps=lava.steps,
        populations=populations,
        differing_spikes=differing,
        equal_predictions=float(np.mean(lava.predictions == twin.predictions)),
        seconds=dict(lava=round(lava.seconds, 2), snntorch=round(twin.seconds, 2)),
        samples_per_s=dict(lava=args.samples / lava.seconds, snntorch=args.samples / twin.seconds),
    )
    out = save(result, args.out)
    for name, v in populations.items():
        print(f"{name:8s} {v['spikes_lava']:9d} spikes on Lava, {v['spikes_snntorch']:9d} on snnTorch, "
              f"{v['differing']} differing of {v['recorded_entries']} recorded entries")
    print(f"{differing} differing spikes over {args.samples} MNIST test images x {args.steps} steps; "
          f"Lava {lava.seconds:.1f} s, snnTorch {twin.seconds:.1f} s -> {out}")
    return result


if __name__ == "__main__":
    main()
