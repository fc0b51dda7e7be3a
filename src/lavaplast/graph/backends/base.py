"""What every backend returns, and the pieces of a graph all of them read the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from lavaplast.graph.spec import GraphSpec, NeuronFile, Population, load_weights


@dataclass
class GraphRun:
    """The outcome of running a graph on one backend.

    ``records[name]`` is ``(steps, N, n)``: spikes (``lif``), outputs
    (``sign``, ``error``) or states (``ep``) of a population at every
    recorded step, for every sample; the rate-based backend records one
    step of rates. Populations a backend cannot observe are absent.
    ``readout`` ``(N, n_out)`` holds the readout's values and
    ``predictions`` ``(N,)`` their argmax. ``counts[name]`` is the total
    number of spikes or events (non-zero messages) the population sent over
    the run, ``count_kind[name]`` says which. ``info`` holds backend notes
    (training steps, events while learning, ...).
    """

    backend: str
    records: dict
    readout: np.ndarray
    predictions: np.ndarray
    labels: Optional[np.ndarray]
    counts: dict
    count_kind: dict
    steps: int
    seconds: float
    info: dict = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return len(self.predictions)

    @property
    def accuracy(self) -> Optional[float]:
        """Percent of samples whose prediction is the label; ``None`` without labels."""
        if self.labels is None:
            return None
        return float(100.0 * np.mean(self.predictions == self.labels))

    def per_sample(self) -> dict:
        """Spikes or events per sample, per population."""
        return {name: float(c) / max(self.samples, 1) for name, c in self.counts.items()}


def unsupported(spec: GraphSpec, field_path: str, problem: str) -> ValueError:
    """A ``ValueError`` naming the graph and the spec field a backend cannot run."""
    return ValueError(f"{spec.where}: {field_path}: {problem}")


def hidden_weights(spec: GraphSpec) -> list[np.ndarray]:
    """Initial hidden weights ``(post, pre)`` of every connection, in chain order."""
    sizes = spec.sizes
    return [load_weights(c.weights, (sizes[i + 1], sizes[i]), seed_offset=i) for i, c in enumerate(spec.connections)]


def per_neuron(value, n: int) -> np.ndarray:
    """A population parameter (a number, one per neuron, or a :class:`NeuronFile`) as an ``(n,)`` float array."""
    if isinstance(value, NeuronFile):
        value = value.values  # read and checked when the graph was validated
    arr = np.asarray(value, dtype=np.float64)
    return np.full(n, float(arr)) if arr.ndim == 0 else arr.copy()


def output_mode(spec: GraphSpec, index: int) -> str:
    """What a ``sign`` or ``error`` population sends: ``sign``, ``binary`` or ``identity``.

    ``error`` populations and the population read out as ``logits`` send
    ``gain * a + bias`` itself (identity); a ``logits`` readout of a
    population that feeds another is refused (it would feed logits on).
    """
    pop = spec.populations[index]
    is_logits = spec.readout.kind == "logits" and spec.readout.population == pop.name
    if is_logits and index != len(spec.populations) - 1:
        raise unsupported(spec, "readout.population", f"a 'logits' readout of {pop.name!r} needs the last "
                          "population (its logits would otherwise feed the next one)")
    if pop.neuron == "error" or is_logits:
        return "identity"
    return pop.params["output"]


def readout_index(spec: GraphSpec) -> int:
    return [p.name for p in spec.populations].index(spec.readout.population)


def chain_readout(spec: GraphSpec, records: list, steps: int, membranes: Optional[np.ndarray] = None) -> np.ndarray:
    """Readout values ``(N, n)`` of a feed-forward chain simulated step by step.

    ``records[i]`` is population ``i``'s ``(steps + L, N, n)`` recording.
    ``spike_count``: spikes over the whole run; ``membrane``: the final
    membrane potential (after the last reset); ``sign``/``logits``: the mean
    output over the ``steps`` steps in which population ``i`` responds to an
    input step (it hears input step ``k`` at row ``k + i + 1``).
    """
    i = readout_index(spec)
    kind = spec.readout.kind
    if kind == "spike_count":
        return records[i].sum(axis=0)
    if kind == "membrane":
        return membranes
    return records[i][i + 1: i + 1 + steps].mean(axis=0)


def nonzero_counts(spec: GraphSpec, records: dict) -> tuple[dict, dict]:
    """Total non-zero messages per population: spikes for ``lif``, events otherwise."""
    counts, kinds = {}, {}
    for pop in spec.populations:
        if pop.name in records:
            counts[pop.name] = int(np.count_nonzero(records[pop.name]))
            kinds[pop.name] = "spikes" if pop.neuron == "lif" else "events"
    return counts, kinds


def population_kinds(spec: GraphSpec) -> set:
    return {p.neuron for p in spec.populations}


def is_learning_graph(spec: GraphSpec) -> bool:
    """Graphs that train before they answer: on-chip learning and EP graphs."""
    return spec.run.learning or "ep" in population_kinds(spec)


def lif_params(pop: Population) -> tuple[float, float]:
    return float(pop.params["beta"]), float(pop.params["threshold"])


def lif_slope(pop: Population) -> float:
    """The slope of a ``lif`` population's surrogate derivative: its ``slope``, else ``1 / threshold``."""
    return float(pop.params.get("slope", 1.0 / float(pop.params["threshold"])))


def feedback_matrices(spec: GraphSpec) -> list[np.ndarray]:
    """The fixed +-1 feedback matrices ``(n_l, n_classes)`` of a learning graph's hidden populations,
    drawn with ``run.seed``."""
    rng = np.random.default_rng(spec.run.seed)
    n_classes = spec.populations[-1].size
    return [rng.choice([-1.0, 1.0], size=(p.size, n_classes)) for p in spec.populations[:-1]]


def check_onchip(spec: GraphSpec) -> None:
    """Refuse what the on-chip learning graph does not run, naming the field.

    Hidden populations are ``sign`` neurons sending their sign, the last is
    an ``error`` population, and every connection learns with the
    ``metaplastic`` rule and ``adam`` on binary synapses (the settings the
    twin :class:`~lavaplast.reference.local_bnn.LocalBinaryMLP` also runs).
    """
    pops = spec.populations
    for i, pop in enumerate(pops[:-1]):
        if pop.neuron != "sign" or pop.params["output"] != "sign":
            raise unsupported(spec, f"populations[{i}]", "hidden populations of an on-chip learning graph are "
                              "'sign' neurons with output 'sign'")
    if pops[-1].neuron != "error":
        raise unsupported(spec, f"populations[{len(pops) - 1}].neuron", "the output of an on-chip learning "
                          "graph is an 'error' population")
    for i, c in enumerate(spec.connections):
        if c.learning.rule != "metaplastic":
            raise unsupported(spec, f"connections[{i}].learning.rule", "every connection of an on-chip "
                              "learning graph learns with rule 'metaplastic'")
        if c.learning.optimizer != "adam":
            raise unsupported(spec, f"connections[{i}].learning.optimizer", "on-chip learning runs 'adam'")
    if len({(c.quantizer, c.ternary_threshold) for c in spec.connections}) > 1:
        raise unsupported(spec, "connections", "every connection of an on-chip learning graph has the same "
                          "quantizer and ternary_threshold")


def check_ep(spec: GraphSpec) -> str:
    """Refuse what the EP graph does not run; return its synapses: ``"binary"`` or ``"none"`` (full precision).

    Every population shares one activation and one event threshold, every
    connection one kind of synapse, and a graph that learns trains every
    connection with rule ``ep`` (its ``lr`` > 0); binary synapses share one
    ``hidden_lr``.
    """
    pops = spec.populations
    for name in ("activation", "threshold"):
        for i, p in enumerate(pops):
            if p.params[name] != pops[0].params[name]:
                raise unsupported(spec, f"populations[{i}].params.{name}", f"every EP population must share one "
                                  f"{name}")
    kinds = [c.quantizer for c in spec.connections]
    for i, q in enumerate(kinds):
        if q not in ("binary", "none") or q != kinds[0]:
            raise unsupported(spec, f"connections[{i}].quantizer", "an EP graph runs binary synapses or "
                              "full-precision ones ('none'), the same kind on every connection")
    rules = [c.learning for c in spec.connections]
    if spec.run.learning:
        for i, r in enumerate(rules):
            if r.rule != "ep":
                raise unsupported(spec, f"connections[{i}].learning.rule", "an EP graph that learns trains every "
                                  "connection with rule 'ep'")
            if r.lr <= 0:
                raise unsupported(spec, f"connections[{i}].learning.lr", "EP's bias learning rate must be > 0")
    for i, r in enumerate(rules):
        if r.hidden_lr != rules[0].hidden_lr:
            raise unsupported(spec, f"connections[{i}].learning.hidden_lr", "every connection must share one "
                              "hidden_lr (the network has a single Adam rate)")
    return kinds[0]
