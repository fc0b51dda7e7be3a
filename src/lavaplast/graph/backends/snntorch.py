"""The ``snntorch`` backend: the snnTorch twin of a graph of ``lif`` populations.

Built from the specification alone as a
:class:`~lavaplast.reference.spiking.SpikingBinaryMLP` with each
population's ``beta`` and ``threshold`` and each connection's quantizer; it
models the Lava graph's one-step synaptic delays and Lava's float LIF, so it
reproduces the ``lava`` backend spike for spike (same records, same shape
``(T + L, N, n)``). A ``membrane`` readout is the final membrane potential
after the last reset, as Lava holds it.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from lavaplast.graph.backends.base import (
    GraphRun,
    chain_readout,
    hidden_weights,
    lif_params,
    nonzero_counts,
    readout_index,
    unsupported,
)
from lavaplast.graph.inputs import GraphInput
from lavaplast.graph.spec import GraphSpec
from lavaplast.progress import progress_bar


def build_twin(spec: GraphSpec, weights=None):
    """The :class:`~lavaplast.reference.spiking.SpikingBinaryMLP` of an all-``lif`` graph."""
    from lavaplast.reference.spiking import SpikingBinaryMLP

    for i, pop in enumerate(spec.populations):
        if pop.neuron != "lif":
            raise unsupported(spec, f"populations[{i}].neuron", f"the snntorch backend runs 'lif' neurons only, "
                              f"got {pop.neuron!r}")
    params = [lif_params(p) for p in spec.populations]
    return SpikingBinaryMLP(hidden_weights(spec) if weights is None else weights,
                            beta=[b for b, _ in params], threshold=[th for _, th in params],
                            quantizer=[c.quantizer for c in spec.connections],
                            ternary_threshold=[c.ternary_threshold for c in spec.connections])


def run(spec: GraphSpec, inputs: GraphInput, *, progress: bool = False) -> GraphRun:
    """Run ``spec`` on ``inputs`` with the snnTorch twin, ``run.batch`` samples at a time."""
    if spec.run.learning:
        from lavaplast.graph.backends.learning import run_learning

        return run_learning(spec, inputs, backend="snntorch", progress=progress)
    t0 = time.perf_counter()
    twin = build_twin(spec)
    T, N, _ = inputs.data.shape
    B = min(spec.run.batch, N)
    i_read = readout_index(spec)
    parts = [[] for _ in spec.populations]
    membranes = []
    starts = range(0, N, B)
    with torch.no_grad():
        for start in progress_bar(starts, progress, desc=f"{spec.name} on snntorch", unit="batch",
                                  total=len(starts)):
            spikes, _, mems = twin(inputs.data[:, start: start + B], return_membranes=True)
            for l, s in enumerate(spikes):
                parts[l].append(s.numpy())
            # snnTorch returns the membrane before its (delayed) reset; Lava's v is reset at once.
            last = (mems[i_read][-1] * (1 - spikes[i_read][-1])).numpy()
            membranes.append(last)
    records = [np.concatenate(p, axis=1) for p in parts]
    readout = chain_readout(spec, records, T, np.concatenate(membranes))
    named = {pop.name: r for pop, r in zip(spec.populations, records)}
    counts, kinds = nonzero_counts(spec, named)
    return GraphRun(backend="snntorch", records=named, readout=readout, predictions=readout.argmax(1),
                    labels=inputs.labels, counts=counts, count_kind=kinds, steps=twin.default_steps(T),
                    seconds=time.perf_counter() - t0, info={"batches": len(starts), "batch": B})
