"""Spiking on-chip learning: LIF populations behind binary synapses that learn with a local rule, on Lava.

:class:`LavaSpikingLearner` runs a
:class:`~lavaplast.reference.spiking_learner.SpikingLearnerState` on Lava's
CPU simulator. It is a thin layer over the graph specification: it
describes its state as a :class:`~lavaplast.graph.spec.GraphSpec`
(:func:`learner_spec`; :func:`learner_state` reads one back) and runs the
graph :func:`lavaplast.graph.backends.lava.spiking_learning_graph` builds
from it. The schedule (a new batch every ``T`` steps, learning pipelined
behind it), the factors and the rule are those of
:mod:`lavaplast.core.spiking_learning` and :mod:`lavaplast.core.rules`; the
twin :class:`~lavaplast.reference.spiking_learner.SpikingLearnerTwin` runs
the same in snnTorch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from lavaplast.core import check_batch_order, check_int, check_positive
from lavaplast.core.spiking_learning import LearnerSchedule
from lavaplast.proc import SharedArray, run_in_chunks
from lavaplast.reference.spiking_learner import SpikingLearnerState


def learner_spec(state: SpikingLearnerState, *, batch: int = 1, timeout: float = 600.0, name: str = "spiking-learner"):
    """The :class:`~lavaplast.graph.spec.GraphSpec` of a spiking learner, its weights held in memory.

    ``lif`` populations (``beta``, ``threshold``, ``slope``), connections
    learning with the state's rule (``metaplastic`` as the named fields of
    the learning table, other rules with ``params``), a ``spike_count``
    readout carrying the error's ``gain``, ``bias`` and ``loss``; ``T`` is
    ``run.steps``, the encoding ``input.encoding``, the seed ``run.seed``.
    The feedback matrices are not part of a specification (a graph file
    draws them with ``run.seed``) and travel with the state, as does its
    fixed-point format (a choice of process models).
    """
    from lavaplast.graph.spec import (
        Connection,
        GraphSpec,
        InputSpec,
        LearningSpec,
        Population,
        ReadoutSpec,
        RunSpec,
        WeightsSpec,
        validate,
    )

    s, L = state, state.n_layers
    names = [f"hidden{l + 1}" for l in range(L - 1)] + ["output"]
    pops = tuple(Population(name=names[l], size=s.sizes[l + 1], neuron="lif",
                            params=dict(beta=s.beta[l], threshold=s.threshold[l], reset="zero", slope=s.slope[l]))
                 for l in range(L))
    conns = []
    for l in range(L):
        p = s.params[l]
        if s.rule == "metaplastic":
            learning = LearningSpec(rule="metaplastic", lr=p["lr"], meta=p["meta"], betas=tuple(p["betas"]),
                                    eps=p["eps"], weight_decay=p["weight_decay"])
        elif s.rule == "metaplastic_sgd":
            learning = LearningSpec(rule="metaplastic", optimizer="sgd", lr=p["lr"], meta=p["meta"],
                                    weight_decay=p["weight_decay"])
        else:
            learning = LearningSpec(rule=s.rule, params=dict(p))
        conns.append(Connection(pre=(["input"] + names)[l], post=names[l], quantizer=s.quantizer,
                                ternary_threshold=s.ternary_threshold, weights=WeightsSpec.from_array(s.hidden[l]),
                                learning=learning))
    spec = GraphSpec(name=name, input=InputSpec(size=s.sizes[0], source="external", encoding=s.encoding),
                     populations=pops, connections=tuple(conns),
                     readout=ReadoutSpec(population="output", kind="spike_count", gain=s.gain, bias=s.bias,
                                         loss=s.loss),
                     run=RunSpec(steps=s.T, batch=batch, seed=s.seed, learning=True, timeout=timeout),
                     backends=("lava", "snntorch"), description="A spiking on-chip learner (LavaSpikingLearner).")
    return validate(spec)


def learner_state(spec, feedback=None) -> SpikingLearnerState:
    """The :class:`~lavaplast.reference.spiking_learner.SpikingLearnerState` of a spiking learning graph.

    ``feedback`` defaults to ``+-1`` matrices drawn with ``run.seed``. Every
    connection must learn with one and the same registered rule.
    """
    from lavaplast.graph.backends.base import feedback_matrices, hidden_weights, lif_params, lif_slope, unsupported

    pops = spec.populations
    for i, pop in enumerate(pops):
        if pop.neuron != "lif":
            raise unsupported(spec, f"populations[{i}].neuron", "a spiking learner has 'lif' populations only")
    if spec.readout.kind != "spike_count" or spec.readout.population != pops[-1].name:
        raise unsupported(spec, "readout", "a spiking learner is read out by the spike counts of its last "
                          "population")
    rules = [c.learning.rule_and_params() for c in spec.connections]
    for i, (rule, _) in enumerate(rules):
        if rule in ("off", "ep") or rule != rules[0][0]:
            raise unsupported(spec, f"connections[{i}].learning.rule", "every connection of a spiking learner "
                              f"learns with one registered local rule (got {[r for r, _ in rules]})")
    if spec.input.encoding not in ("rate", "current"):
        raise unsupported(spec, "input.encoding", "a spiking learner codes its input as 'rate' or 'current'")
    if feedback is None:
        feedback = feedback_matrices(spec)
    quantizers = {c.quantizer for c in spec.connections}
    thresholds = {c.ternary_threshold for c in spec.connections}
    if len(quantizers) > 1 or len(thresholds) > 1:
        raise unsupported(spec, "connections", "every connection of a spiking learner has one quantizer and "
                          "ternary threshold")
    lif = [lif_params(p) for p in pops]
    r = spec.readout
    return SpikingLearnerState(hidden=hidden_weights(spec), feedback=feedback, T=spec.run.steps,
                               beta=[b for b, _ in lif], threshold=[th for _, th in lif],
                               slope=[lif_slope(p) for p in pops],
                               rule=rules[0][0], params=[p for _, p in rules], gain=r.gain, bias=r.bias,
                               loss=r.loss, encoding=spec.input.encoding, seed=spec.run.seed,
                               quantizer=quantizers.pop(), ternary_threshold=thresholds.pop())


class LavaSpikingLearner:
    """Runs a :class:`~lavaplast.reference.spiking_learner.SpikingLearnerState` on Lava's CPU simulator.

    ``batch`` samples travel side by side; every batch takes ``T`` steps
    and learns ``L`` steps after its window ends, while the next batch is
    already in (pipelined). ``timeout`` bounds each run of ``chunk_steps``
    steps; the runtime is stopped on every exit path. After a call,
    :attr:`steps` holds the time steps run and :attr:`seconds` the wall time.
    """

    def __init__(self, state: SpikingLearnerState, *, batch: int = 1, timeout: float = 600.0,
                 chunk_steps: int = 5000, progress: bool = False):
        if not isinstance(state, SpikingLearnerState):
            raise ValueError(f"state must be a SpikingLearnerState, got {type(state).__name__}")
        self.state = state
        self.batch = check_int("batch", batch, 1)
        self.timeout = check_positive("timeout", timeout)
        self.chunk_steps = check_int("chunk_steps", chunk_steps, 1)
        self.progress = progress
        self.steps = 0
        self.seconds = 0.0
        self.last_chunks: list[tuple[int, float]] = []

    @property
    def spec(self):
        """The graph specification of :attr:`state` as it is now (see :func:`learner_spec`)."""
        return learner_spec(self.state, batch=self.batch, timeout=self.timeout)

    def _run(self, src, steps: int, desc: str, tag: str) -> None:
        t0 = time.perf_counter()
        # The first chunk holds one window and the pipeline's depth: start-up and the first batch.
        self.last_chunks = run_in_chunks(src, steps, first=self.state.T + self.state.n_layers,
                                         chunk_steps=self.chunk_steps, timeout=self.timeout, tag=tag,
                                         progress=self.progress, desc=desc)
        self.steps, self.seconds = steps, time.perf_counter() - t0

    def run(self, x, y=None, order=None, *, learn: bool = True) -> np.ndarray:
        """Present batches ``order[k*batch:(k+1)*batch]`` of ``x`` (learning from ``y`` if ``learn``).

        Returns every presented sample's output spike counts ``(len(order),
        n_out)``; with ``learn`` the state's hidden weights are updated.
        """
        from lavaplast.graph.backends.lava import spiking_learning_graph

        s = self.state
        x, y = s.check_inputs(x, y)
        if learn and y is None:
            raise ValueError("learning needs labels y")
        order = check_batch_order(order, self.batch, len(x))
        n_batches = len(order) // self.batch
        schedule = LearnerSchedule(T=s.T, L=s.n_layers, n_batches=n_batches)
        readouts = [SharedArray(w.shape) for w in s.hidden] if learn else []
        try:
            with SharedArray((n_batches, self.batch, s.sizes[-1])) as record:
                src = spiking_learning_graph(self.spec, s.feedback, x, y, order, self.batch, learning=learn,
                                             readouts=readouts, count_record=record, fixed_point=s.fixed_point)
                self._run(src, schedule.steps(n_batches), "spiking learning" if learn else "spiking inference",
                          "fixed_pt" if s.fixed_point is not None else "floating_pt")
                counts = record.read().reshape(len(order), -1)
            for l, r in enumerate(readouts):
                s.hidden[l] = r.read()
        finally:
            for r in readouts:
                r.close()
        return counts

    def train(self, x, y, order=None) -> np.ndarray:
        """Learn from ``(x, y)`` in the sequence ``order``; returns the output counts seen while learning."""
        return self.run(x, y, order, learn=True)

    def counts(self, x) -> np.ndarray:
        """Output spike counts of every sample of ``x`` (no learning), ``(N, n_out)``."""
        x, _ = self.state.check_inputs(x)
        n = len(x)
        padded = np.zeros((-(-n // self.batch) * self.batch, x.shape[1]))
        padded[:n] = x
        return self.run(padded, learn=False)[:n]

    def predict(self, x) -> np.ndarray:
        """Class predictions: the output neuron with the most spikes (the first of equals)."""
        return self.counts(x).argmax(1)


class RuleMismatchError(AssertionError):
    """A learning rule moves the weights differently on Lava than in its twin."""


@dataclass
class RuleCheck:
    """What :func:`check_rule` measured: the largest hidden-weight difference between Lava and the
    twin, the fraction of equal output spike counts while learning, and the largest weight change
    (a rule that changes nothing passes trivially; :attr:`moved` says it did not)."""

    rule: str
    max_weight_diff: float
    equal_counts: float
    max_weight_change: float
    tolerance: float
    steps: int

    @property
    def moved(self) -> bool:
        return self.max_weight_change > 1e3 * self.tolerance

    @property
    def passed(self) -> bool:
        return self.max_weight_diff <= self.tolerance and self.equal_counts == 1.0


def check_rule(rule, params=None, *, sizes=(64, 24, 10), T: int = 5, batch: int = 5, samples: int = 100,
               seed: int = 0, tolerance: float = 1e-9, x=None, y=None) -> RuleCheck:
    """Train a small spiking learner with ``rule`` on Lava and in its twin; raise if they disagree.

    ``rule`` is a registered name or a :class:`~lavaplast.core.rules.LocalRule`
    (registered first if it is not), ``params`` its parameters. The learner
    (``sizes``, ``T`` steps per sample, ``batch``) learns from ``samples``
    digits (or the given ``x`` in [0, 1], ``y``) once on Lava's CPU
    simulator and once in the snnTorch twin, from the same state. Raises
    :class:`RuleMismatchError` when the hidden weights differ by more than
    ``tolerance`` or any output spike count differs (typical causes: state
    kept outside the rule's ``state`` dict, code that behaves differently on
    numpy and torch); returns the :class:`RuleCheck` otherwise.
    """
    from lavaplast.core import LocalRule, get_rule, register_rule, rule_names
    from lavaplast.reference.spiking_learner import SpikingLearnerTwin, init_spiking_learner

    if isinstance(rule, LocalRule):
        if rule.name not in rule_names() or get_rule(rule.name) is not rule:
            register_rule(rule, replace=True)
        rule = rule.name
    if x is None:
        from lavaplast.data import load_dataset

        x, y = load_dataset("digits", "train")
        x = x.reshape(len(x), -1) / 255.0
    samples = check_int("samples", samples, 1) // batch * batch
    if samples == 0 or samples > len(x):
        raise ValueError(f"samples must give at least one batch of {batch} from {len(x)} inputs, got {samples}")
    order = np.random.default_rng(seed).permutation(len(x))[:samples]
    start = init_spiking_learner(list(sizes), T=T, rule=rule, params=params, seed=seed)
    lava, twin = LavaSpikingLearner(start.copy(), batch=batch, timeout=300), SpikingLearnerTwin(start.copy())
    c_lava = lava.train(x, y, order)
    c_twin = twin.train(x, y, order, batch=batch)
    result = RuleCheck(rule=rule, tolerance=float(tolerance), steps=lava.steps,
                       max_weight_diff=max(float(np.abs(a - b).max()) for a, b in
                                           zip(lava.state.hidden, twin.state.hidden)),
                       equal_counts=float(np.mean(np.all(c_lava == c_twin, axis=1))),
                       max_weight_change=max(float(np.abs(a - w).max()) for a, w in
                                             zip(lava.state.hidden, start.hidden)))
    if not result.passed:
        raise RuleMismatchError(f"rule {rule!r}: Lava and the twin disagree: hidden weights differ by up to "
                                f"{result.max_weight_diff:.3g} (tolerance {tolerance:g}), "
                                f"{100 * result.equal_counts:.1f}% of output spike counts equal")
    return result
