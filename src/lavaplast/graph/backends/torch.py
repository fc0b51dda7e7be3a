"""The ``torch`` backend: the rate-based network of a graph, one step per sample, no delays.

Each connection turns its presynaptic rates ``r_pre`` ``(N, n_pre)`` into a
current ``I = r_pre @ q(W_h)^T`` (the exact sum of
:func:`lavaplast.core.ternary_matmul`, ``q`` the connection's quantizer),
and each population turns its current into its output:

- ``sign``: ``sign(gain * I + bias)`` (+1/-1; ``binary``: 1/0; ``identity``
  and ``error``: ``gain * I + bias``, the logits): the reference BNN forward;
- ``lif``: its firing rate under a constant current ``I`` per step. With
  zero reset, after a spike (or at the start) the membrane is
  ``v_k = I (1 + beta + ... + beta^(k-1)) = I (1 - beta^k) / (1 - beta)``
  after ``k`` steps, and the neuron fires at the first ``k >= 1`` with
  ``v_k > threshold``, then starts again from 0, so it fires every ``k``
  steps exactly: ``r(I) = 1 / k``. For ``beta = 0``, ``v_k = I``: ``r = 1``
  if ``I > threshold`` else 0. For ``0 < beta < 1``: no spike ever if
  ``I / (1 - beta) <= threshold`` (the membrane's limit), else
  ``k = floor(ln c / ln beta) + 1`` with ``c = 1 - threshold (1 - beta) / I``
  (the smallest ``k`` with ``beta^k < c``), checked against the membrane
  recursion itself to settle rounding at the boundary (:func:`lif_rate`).

That mapping is exact for a constant current; with spike trains as input
it is the mean-field approximation (their mean current). The first layer's
rates are the encoding's expected input per step
(:meth:`lavaplast.graph.inputs.GraphInput.mean_drive`). A ``spike_count``
readout is ``rate * T`` (expected spikes over the ``T`` input steps),
``membrane`` the current's fixed point ``I / (1 - beta)`` clipped at the
threshold (its value just before a spike). Records hold one step: the
rates (``lif``) or outputs of every population.

On-chip learning and EP graphs run their PyTorch references
(:class:`~lavaplast.reference.local_bnn.LocalBinaryMLP`,
:class:`~lavaplast.reference.ep.BinaryEPNetwork`), see
:mod:`lavaplast.graph.backends.learning`.
"""

from __future__ import annotations

import time

import numpy as np

from lavaplast.core import DeviceFaults, read_sums
from lavaplast.graph.backends.base import (
    GraphRun,
    hidden_weights,
    is_learning_graph,
    lif_params,
    output_mode,
    per_neuron,
    readout_index,
    unsupported,
)
from lavaplast.graph.inputs import GraphInput
from lavaplast.graph.spec import GraphSpec
from lavaplast.reference.spiking import lava_decay, quantize


_CHECKED_STEPS = 1024


def lif_interval(current, beta: float, threshold: float) -> np.ndarray:
    """Steps between spikes of a zero-reset LIF under a constant ``current`` per step (``inf``: never fires)."""
    current = np.asarray(current, dtype=np.float64)
    if beta == 0.0:
        return np.where(current > threshold, 1.0, np.inf)
    fires = current * (1.0 / (1.0 - beta)) > threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        c = 1.0 - threshold * (1.0 - beta) / current
        k = np.floor(np.log(c) / np.log(beta)) + 1.0
    k = np.where(fires, np.maximum(k, 1.0), np.inf)
    # Near the boundary rounding decides; run the recursion the simulators run
    # (Lava's decay 1 - (1 - beta)) for every interval short enough to check.
    check = fires & (k <= _CHECKED_STEPS)
    if check.any():
        decay = lava_decay(beta)
        i_val = current[check]
        found = np.full(i_val.shape, np.inf)
        v = np.zeros_like(i_val)
        for step in range(1, int(k[check].max()) + 3):
            v = decay * v + i_val
            found[np.isinf(found) & (v > threshold)] = step
        k[check] = np.where(np.isinf(found), k[check], found)
    return k


def lif_rate(current, beta: float, threshold: float) -> np.ndarray:
    """Spikes per step of a zero-reset LIF under a constant ``current`` (see the module docstring)."""
    return 1.0 / lif_interval(current, beta, threshold)


def _sums(x, conn, hidden, index: int) -> np.ndarray:
    """``x @ q(W_h)^T`` with the weights read through the connection's frozen device faults (if any)."""
    q = quantize(hidden, conn.quantizer, conn.ternary_threshold)
    settings = conn.faults.settings(index)
    faults = None if settings is None else DeviceFaults(q.shape, kind=conn.quantizer, **settings)
    return read_sums(x, q, faults)


def forward(spec: GraphSpec, drive: np.ndarray, weights=None) -> list[np.ndarray]:
    """Outputs ``(N, n)`` of every population for first-layer rates ``drive`` ``(N, n_in)``."""
    weights = hidden_weights(spec) if weights is None else weights
    h, outs = np.asarray(drive, dtype=np.float64), []
    for i, (conn, pop, w) in enumerate(zip(spec.connections, spec.populations, weights)):
        current = _sums(h, conn, w, i)
        if pop.neuron == "lif":
            beta, threshold = lif_params(pop)
            h = lif_rate(current, beta, threshold)
        elif pop.neuron in ("sign", "error"):
            z = per_neuron(pop.params["gain"], pop.size) * current + per_neuron(pop.params["bias"], pop.size)
            mode = output_mode(spec, i)
            h = z if mode == "identity" else np.where(z >= 0, 1.0, -1.0 if mode == "sign" else 0.0)
        else:
            raise unsupported(spec, f"populations[{i}].neuron", f"{pop.neuron!r} neurons do not run in a "
                              "feed-forward chain")
        outs.append(h)
    return outs


def run(spec: GraphSpec, inputs: GraphInput, *, progress: bool = False) -> GraphRun:
    """Run ``spec`` as its rate-based network on ``inputs`` (see the module docstring)."""
    if is_learning_graph(spec):
        from lavaplast.graph.backends.learning import run_learning

        return run_learning(spec, inputs, backend="torch", progress=progress)
    t0 = time.perf_counter()
    T = inputs.steps
    encoding = spec.input.encoding if inputs.labels is not None else None
    outs = forward(spec, inputs.mean_drive(encoding))
    i = readout_index(spec)
    pop, kind = spec.populations[i], spec.readout.kind
    if kind == "spike_count":
        readout = outs[i] * T
    elif kind == "membrane":
        beta, threshold = lif_params(pop)
        weights = hidden_weights(spec)
        pre = inputs.mean_drive(encoding) if i == 0 else outs[i - 1]
        current = _sums(pre, spec.connections[i], weights[i], i)
        readout = np.minimum(current / (1.0 - beta), threshold)
    else:
        readout = outs[i]
    records, counts, kinds = {}, {}, {}
    for p, out in zip(spec.populations, outs):
        records[p.name] = out[None]
        if p.neuron == "lif":
            counts[p.name], kinds[p.name] = float(out.sum() * T), "expected spikes"
        else:
            counts[p.name], kinds[p.name] = int(np.count_nonzero(out)) * T, "events"
    return GraphRun(backend="torch", records=records, readout=readout, predictions=readout.argmax(1),
                    labels=inputs.labels, counts=counts, count_kind=kinds, steps=1,
                    seconds=time.perf_counter() - t0, info={"time_steps_modelled": T})
