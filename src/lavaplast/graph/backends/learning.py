"""Graphs that learn before they answer: on-chip metaplastic learning, spiking learners and equilibrium propagation.

Both train for one pass over the first ``input.samples`` images of the
input dataset's *train* split (rounded down to whole batches of
``run.batch``; ``run.learning = false`` skips training), then answer for
the input samples (``input.split``). Both take the pixel values as they are
(``input.encoding = "current"``): their neurons hold a batch for a window
of steps, they are not driven by spike trains.

- On-chip learning (``sign`` hidden populations, an ``error`` output,
  every connection ``rule = "metaplastic"``): a
  :class:`~lavaplast.reference.local_bnn.LocalMLPState` from the
  specification (hidden weights, gains, biases, ``meta``, ``lr``,
  ``weight_decay``, the error population's loss; the fixed random ±1
  feedback matrices drawn with ``run.seed``), run by
  :class:`~lavaplast.graph.binary_network.LavaBinaryMLP` (``lava``) or its
  twin :class:`~lavaplast.reference.local_bnn.LocalBinaryMLP` (``torch``).
- EP (``ep`` populations, ``[equilibrium]``): a
  :class:`~lavaplast.reference.ep.BinaryEPNetwork` (synapses ``sign(W_h) /
  sqrt(fan_in)``), or an :class:`~lavaplast.reference.ep.EPNetwork` for
  full-precision synapses (``quantizer = "none"``), with the
  specification's weights, biases, ``T1``, ``T2``, ``beta``, nudging and
  activation; each connection's ``lr`` is the SGD rate of its post
  population's biases (and of full-precision weights), its ``meta`` the
  metaplasticity of binary synapses' hidden weights, which move by
  metaplastic Adam at ``hidden_lr``. Run by :class:`~lavaplast.graph.ep_network.LavaEPNetwork`
  (``lava``, event-driven with the populations' ``threshold``) or the
  network's own rate-based training (``torch``).

- Spiking learners (``lif`` populations only, ``run.learning``, every
  connection with one registered rule of :mod:`lavaplast.core.rules`): a
  :class:`~lavaplast.reference.spiking_learner.SpikingLearnerState` from
  the specification (:func:`~lavaplast.graph.spiking_learner.learner_state`;
  ``run.steps`` steps per sample, the input ``rate`` or ``current`` coded),
  run by :class:`~lavaplast.graph.spiking_learner.LavaSpikingLearner`
  (``lava``) or its twin
  :class:`~lavaplast.reference.spiking_learner.SpikingLearnerTwin`
  (``snntorch``). The readout is the output spike counts.

Whatever these builders cannot run is refused with a ``ValueError`` naming
the field.
"""

from __future__ import annotations

import time

import numpy as np

from lavaplast.graph.backends.base import (
    GraphRun,
    check_ep,
    check_onchip,
    feedback_matrices,
    hidden_weights,
    per_neuron,
    unsupported,
)
from lavaplast.graph.inputs import GraphInput, dataset_values
from lavaplast.graph.spec import GraphSpec
from lavaplast.progress import progress_bar

def _check_common(spec: GraphSpec, inputs: GraphInput) -> None:
    if inputs.labels is None or spec.input.source != "dataset":
        raise unsupported(spec, "input", "a learning graph reads a labelled dataset; an input array "
                          "(--input or input.file) has no labels to learn from")
    spiking = all(p.neuron == "lif" for p in spec.populations)
    if spiking and spec.input.encoding not in ("rate", "current"):
        raise unsupported(spec, "input.encoding", f"a spiking learner codes its input as 'rate' or 'current', "
                          f"not {spec.input.encoding!r}")
    if not spiking and spec.input.encoding != "current":
        raise unsupported(spec, "input.encoding", f"a learning graph of sign or EP neurons takes the pixel values "
                          f"as they are: use 'current', not {spec.input.encoding!r}")
    if spec.readout.population != spec.populations[-1].name:
        raise unsupported(spec, "readout.population", "a learning graph is read out at its last population")


def _training_set(spec: GraphSpec) -> tuple[np.ndarray, np.ndarray, int]:
    """The first whole batches of ``input.samples`` train images, and the batch size."""
    n = spec.input.samples
    B = min(spec.run.batch, n)
    x, y = dataset_values(spec, split="train", samples=n // B * B)
    return x, y, B


def _same(spec: GraphSpec, values: list, field_name: str):
    for i, v in enumerate(values):
        if v != values[0]:
            raise unsupported(spec, f"connections[{i}].learning.{field_name}", f"every connection must share "
                              f"one {field_name} (got {values}); the network has a single one")
    return values[0]


# --- on-chip metaplastic learning ------------------------------------------------


def local_state(spec: GraphSpec):
    """The :class:`~lavaplast.reference.local_bnn.LocalMLPState` of an on-chip learning graph."""
    from lavaplast.reference.local_bnn import LocalMLPState

    check_onchip(spec)
    pops = spec.populations
    rules = [c.learning for c in spec.connections]
    lr = _same(spec, [r.lr for r in rules], "lr")
    weight_decay = _same(spec, [r.weight_decay for r in rules], "weight_decay")
    betas = _same(spec, [r.betas for r in rules], "betas")
    eps = _same(spec, [r.eps for r in rules], "eps")
    feedback = feedback_matrices(spec)
    return LocalMLPState(hidden=hidden_weights(spec), feedback=feedback,
                         gain=[per_neuron(p.params["gain"], p.size) for p in pops],
                         bias=[per_neuron(p.params["bias"], p.size) for p in pops],
                         meta=[r.meta for r in rules], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         loss=pops[-1].params["loss"], quantizer=spec.connections[0].quantizer,
                         ternary_threshold=spec.connections[0].ternary_threshold)


def _run_local(spec: GraphSpec, inputs: GraphInput, backend: str, progress: bool) -> tuple:
    state = local_state(spec)
    info = {}
    if backend == "lava":
        from lavaplast.graph.binary_network import LavaBinaryMLP

        x, y, B = _training_set(spec)
        net = LavaBinaryMLP(state, batch=B, timeout=spec.run.timeout, progress=progress)
        if spec.run.learning:
            info["train_steps"] = net.train(x, y, np.arange(len(x)))
        logits = net.logits(inputs.values)
    else:
        from lavaplast.reference.local_bnn import LocalBinaryMLP

        twin = LocalBinaryMLP(state)
        if spec.run.learning:
            x, y, B = _training_set(spec)
            eye = np.eye(state.sizes[-1])
            for k in progress_bar(range(0, len(x), B), progress, desc=f"{spec.name} training", unit="batch"):
                twin.train_batch(x[k:k + B], eye[y[k:k + B]])
            twin.sync_state()
        logits = twin.forward(inputs.values)[1][-1].numpy()
    if spec.run.learning:
        info["train_samples"] = len(x)
    return {spec.populations[-1].name: logits[None]}, logits, {}, {}, info


# --- equilibrium propagation -------------------------------------------------------


def ep_network(spec: GraphSpec):
    """The EP network of an EP graph, parameters from the specification: a
    :class:`~lavaplast.reference.ep.BinaryEPNetwork` for binary synapses, an
    :class:`~lavaplast.reference.ep.EPNetwork` for full-precision ones."""
    import torch

    from lavaplast.reference.ep import BinaryEPNetwork, EPNetwork

    synapses = check_ep(spec)
    pops, eq = spec.populations, spec.equilibrium
    rules = [c.learning for c in spec.connections]
    # Without learning the rates are never used, but the network wants valid ones.
    lrs = [r.lr for r in rules] if spec.run.learning else [1.0] * len(rules)
    common = dict(T1=eq.T1, T2=eq.T2, beta=eq.beta, nudging=eq.nudging, lrs=lrs, seed=spec.run.seed,
                  activation=pops[0].params["activation"], dtype=torch.float64)
    biases = [per_neuron(p.params["bias"], p.size) for p in pops]
    if synapses == "none":
        net = EPNetwork(spec.sizes, **common)
        net.set_parameters(hidden_weights(spec), biases)
        return net
    net = BinaryEPNetwork(spec.sizes, meta=[r.meta for r in rules], lr=rules[0].hidden_lr, **common)
    net.set_hidden(hidden_weights(spec))
    net.set_parameters(net.weights, biases)
    return net


def _run_ep(spec: GraphSpec, inputs: GraphInput, backend: str, progress: bool) -> tuple:
    net = ep_network(spec)
    names = [p.name for p in spec.populations]
    info = {"hidden_adam_lr": net.lr} if net.is_binary else {}
    if spec.run.learning:
        x, y, B = _training_set(spec)
        info["train_samples"] = len(x)
    if backend == "lava":
        from lavaplast.graph.ep_network import LavaEPNetwork

        lava = LavaEPNetwork(net, batch=min(spec.run.batch, inputs.samples),
                             threshold=spec.populations[0].params["threshold"],
                             timeout=spec.run.timeout)
        if spec.run.learning:
            lava.batch = B
            lava.train(x, y, np.arange(len(x)))
            info["train_events"] = dict(zip(names, lava.events))
            info["train_steps"] = lava.steps
            lava.batch = min(spec.run.batch, inputs.samples)
        trajectory, final = lava.free_states(inputs.values)
        counts = dict(zip(names, lava.events))
        return {names[-1]: trajectory}, final, counts, {n: "events" for n in names}, info
    if spec.run.learning:
        for k in progress_bar(range(0, len(x), B), progress, desc=f"{spec.name} training", unit="batch"):
            net.train_batch(x[k:k + B], y[k:k + B])
    states = [s.numpy() for s in net.free(inputs.values)]
    records = {n: s[None] for n, s in zip(names, states)}
    # A rate-based network sends every state at every step of the free phase.
    counts = {n: int(s.size) * spec.equilibrium.T1 for n, s in zip(names, states)}
    return records, states[-1], counts, {n: "dense messages" for n in names}, info


# --- spiking on-chip learning -----------------------------------------------------


def _run_spiking(spec: GraphSpec, inputs: GraphInput, backend: str, progress: bool) -> tuple:
    from lavaplast.graph.spiking_learner import LavaSpikingLearner, learner_state
    from lavaplast.reference.spiking_learner import SpikingLearnerTwin

    if backend not in ("lava", "snntorch"):
        raise unsupported(spec, "backends", f"a spiking learner runs on 'lava' or its twin 'snntorch', not "
                          f"{backend!r}")
    state = learner_state(spec)
    B = min(spec.run.batch, inputs.samples)
    info = {}
    if spec.run.learning:
        x, y, B = _training_set(spec)
        info["train_samples"] = len(x)
    if backend == "lava":
        net = LavaSpikingLearner(state, batch=B, timeout=spec.run.timeout, progress=progress)
        if spec.run.learning:
            net.train(x, y)
            info["train_steps"] = net.steps
        counts = net.counts(inputs.values)
    else:
        twin = SpikingLearnerTwin(state)
        if spec.run.learning:
            twin.train(x, y, np.arange(len(x)), batch=B)
        counts = twin.counts(inputs.values, batch=B)
    out = spec.populations[-1].name
    return {out: counts[None]}, counts, {out: int(counts.sum())}, {out: "spikes"}, info


def run_learning(spec: GraphSpec, inputs: GraphInput, *, backend: str, progress: bool = False) -> GraphRun:
    """Train (when ``run.learning``) and answer with an on-chip learning or EP graph on ``backend``."""
    t0 = time.perf_counter()
    _check_common(spec, inputs)
    kinds = {p.neuron for p in spec.populations}
    runner = _run_ep if "ep" in kinds else _run_spiking if kinds == {"lif"} else _run_local
    records, readout, counts, kinds, info = runner(spec, inputs, backend, progress)
    steps = next(iter(records.values())).shape[0]
    return GraphRun(backend=backend, records=records, readout=readout, predictions=readout.argmax(1),
                    labels=inputs.labels, counts=counts, count_kind=kinds, steps=steps,
                    seconds=time.perf_counter() - t0, info=info)
