"""On-chip learning throughput: lavaplast's learning graphs against Lava's own STDP, in one run.

Eight measurements, side by side in one process, each on its own graph of
five or six Lava processes:

(a) ``stdp_1step``  Lava's stock on-chip learning: a ``RingBuffer`` of
    rate-coded input spikes -> ``LearningDense`` (STDPLoihi) -> ``LIF`` ->
    ``LearningDense`` (STDPLoihi) -> ``LIF``, one time step per sample;
(b) ``stdp_Tstep``  the same graph with ``T`` time steps per sample (the LIF
    window a spiking learner needs; ``--steps-per-sample``);
(c) ``sign_batch1``  lavaplast's metaplastic sign learner
    (:class:`lavaplast.graph.LavaBinaryMLP`), batch 1, each sample held for
    ``L + 1`` steps (the held schedule);
(d) ``sign_batchN``  the same at batch ``--batch``;
(e) ``sign_batch1_pipelined``  the sign learner on its pipelined schedule
    (``LavaBinaryMLP(pipelined=True)``), a new sample entering every step;
(f) ``sign_batchN_pipelined``  the same at batch ``--batch``;
(g) ``lif_batch1``  lavaplast's spiking learner
    (:class:`lavaplast.graph.LavaSpikingLearner`: LIF populations behind
    binary synapses, metaplastic Adam with a local three-factor rule),
    batch 1, MNIST pixels rate-coded over ``T`` steps per sample;
(h) ``lif_batchN``  the same at batch ``--batch``.

The goals (see :data:`GOALS`): at batch 1 each lavaplast learning graph
processes at least as many samples per second as stock STDP presented with
the same number of time steps per sample, (e) against (a) and (g) against
(b); at batch ``--batch`` at least 30 times as many, (f) against (a) and
(h) against (b). The JSON's ``ratios`` hold every comparison, its
``goals`` whether each goal is met and by what ratio.

Every rate is samples per second of steady-state simulation: each graph
first runs a warm-up chunk (its first sample or batch, which also compiles
and starts the graph; reported as ``startup_seconds``), then ``--chunks``
timed chunks. The modes run in turn, ``--repeats`` times over (the
machine is shared, so its load drifts); the headline rate of a mode is its
best pass, and every pass's rates and ratios are kept. Both stock layers
learn, and the first pass reads their weights back to show that STDP really
changed them. Inputs are real MNIST images (``lavaplast.data.load_mnist``);
without the MNIST files, or for input sizes other than 784, they are
uniform random intensities, and the JSON says so.

Further learners join with a graph runner (see :data:`GraphRunner`),
either interleaved with the other modes::

    run_benchmark(extra=[Learner("other_Tstep", my_runner, samples=120, against="stdp_Tstep")])

or measured on its own into an existing result::

    add_learner(result, "other_Tstep", my_runner, against="stdp_Tstep", x=x, y=y, samples=120)

    python benchmarks/bench_learning.py --out benchmarks/results/learning.json
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from lavaplast.outputs import write_json

#: A graph runner measures one learning graph:
#: ``runner(x, y, samples, chunks) -> dict``. It learns from the rows of
#: ``x`` (intensities in [0, 1], shape (N, n_in)) and labels ``y`` in turn
#: (wrapping around past N): first a warm-up chunk that includes building,
#: compiling and starting its graph, then ``samples`` timed samples in
#: ``chunks`` runs. The dict must hold ``samples`` (timed samples),
#: ``seconds`` (their simulation time), ``startup_seconds`` (the warm-up
#: chunk) and ``chunk_samples_per_s`` (one rate per timed chunk); anything
#: else it holds (settings, weight changes) goes into the JSON as it is.
GraphRunner = Callable[[np.ndarray, np.ndarray, int, int], dict]

# Stock STDP configuration. The Loihi learning engine parses the rule's
# scaling constants as mantissa * 2^exp with exp in -7..9, so 2^-7 is the
# smallest learning rate STDPLoihi accepts; with the default trace impulse
# of 16 one pre/post pairing moves a weight by 2^-7 * 16 = 0.125. Weights
# and the LIF threshold are on that (Loihi-like) scale.
STDP_RULE = dict(learning_rate=2.0 ** -7, A_plus=1.0, A_minus=-1.0, tau_plus=10.0, tau_minus=10.0, t_epoch=1)
LIF_PARAMS = dict(du=1.0, dv=0.1, vth=16.0)
RUN_TAG = "floating_pt"  # selects PyLearningDenseModelFloat, PyLifModelFloat, PySendModelFloat


def _chunk_sizes(total: int, chunks: int) -> list[int]:
    """``total`` split into at most ``chunks`` near-equal positive parts."""
    chunks = max(1, min(chunks, total))
    base, extra = divmod(total, chunks)
    return [base + (i < extra) for i in range(chunks)]


def _weight_change(before: np.ndarray, after: np.ndarray) -> dict:
    diff = np.asarray(after, dtype=float) - np.asarray(before, dtype=float)
    return dict(shape=list(before.shape), mean_abs_initial=float(np.abs(before).mean()),
                mean_abs_change=float(np.abs(diff).mean()), max_abs_change=float(np.abs(diff).max()),
                mean_change=float(diff.mean()), fraction_changed=float((diff != 0).mean()))


def rate_spikes(x: np.ndarray, samples: int, steps_per_sample: int, max_rate: float,
                rng: np.random.Generator) -> np.ndarray:
    """Bernoulli spike trains ``(n_in, samples * steps_per_sample)`` for rows ``0..samples-1`` of ``x``
    (wrapping), each row held for ``steps_per_sample`` steps, spike probability ``max_rate * x``."""
    rows = np.arange(samples) % len(x)
    p = np.clip(x[rows] * max_rate, 0.0, 1.0)
    spikes = rng.random((samples, steps_per_sample, x.shape[1])) < p[:, None, :]
    # RingBuffer plays the last axis as time.
    return spikes.reshape(samples * steps_per_sample, x.shape[1]).T.astype(float)


def build_stdp_graph(sizes: Sequence[int], spikes: np.ndarray, *, seed: int = 0,
                     input_density: float = 0.13):
    """Lava's stock learning graph: RingBuffer -> [LearningDense(STDPLoihi) -> LIF] per layer.

    Every layer learns: each LIF's ``s_out`` feeds its own LearningDense's
    back-propagating-spike port ``s_in_bap`` (the post-synaptic spikes
    STDP needs) as well as the next layer. Initial weights are
    N(0, vth / sqrt(expected active inputs)) with ``input_density`` the
    expected fraction of active inputs per step, so that the LIFs fire.
    Returns ``(source, [LearningDense, ...], [initial weights, ...])``.
    """
    from lava.proc.dense.process import LearningDense
    from lava.proc.io.source import RingBuffer
    from lava.proc.learning_rules.stdp_learning_rule import STDPLoihi
    from lava.proc.lif.process import LIF

    rng = np.random.default_rng((seed, 3))
    src = RingBuffer(data=spikes)
    prev, denses, initial = src.s_out, [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        scale = LIF_PARAMS["vth"] / math.sqrt(max(1.0, input_density * n_in))
        w = rng.normal(0.0, scale, (n_out, n_in))
        # A fresh rule per connection: rule objects are mutable (a model rewrites its rule when a
        # learning Var is set), so connections must not share one.
        dense = LearningDense(weights=w, learning_rule=STDPLoihi(**STDP_RULE))
        lif = LIF(shape=(n_out,), **LIF_PARAMS)
        prev.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        lif.s_out.connect(dense.s_in_bap)
        denses.append(dense)
        initial.append(w)
        prev = lif.s_out
    return src, denses, initial


def stdp_runner(sizes: Sequence[int], steps_per_sample: int, *, max_rate: float = 1.0, seed: int = 0,
                check_weights: bool = True, timeout: float = 900.0) -> GraphRunner:
    """A :data:`GraphRunner` for Lava's stock STDP graph, ``steps_per_sample`` steps per sample.

    The spike trains for the warm-up sample and the timed samples are drawn
    up front into the RingBuffer (drawing is not timed). With
    ``check_weights`` the weights are read back after the timed chunks
    (``Var.get``, not timed; seconds for a 784x256 matrix) and compared with
    the initial ones.
    """
    from lavaplast.proc import LavaSession, sim_config

    def run(x: np.ndarray, y: np.ndarray, samples: int, chunks: int) -> dict:
        T = steps_per_sample
        # Separate random streams for data, spikes and weights: one shared seed would draw
        # the spikes' uniforms equal to random input intensities, and no input would spike.
        spikes = rate_spikes(x, samples + 1, T, max_rate, np.random.default_rng((seed, 2)))
        density = float(spikes.mean())
        t_build = time.perf_counter()
        src, denses, initial = build_stdp_graph(sizes, spikes, seed=seed, input_density=density)
        build = time.perf_counter() - t_build
        rates, seconds = [], 0.0
        with LavaSession(src, sim_config(RUN_TAG), timeout=timeout) as session:
            t0 = time.perf_counter()
            session.run(T)  # warm-up: compile, start, first sample
            startup = time.perf_counter() - t0
            for n in _chunk_sizes(samples, chunks):
                t0 = time.perf_counter()
                session.run(n * T)
                dt = time.perf_counter() - t0
                rates.append(n / dt)
                seconds += dt
            t0 = time.perf_counter()
            learned = [d.weights.get() for d in denses] if check_weights else None
            readback = time.perf_counter() - t0
        out = dict(samples=samples, seconds=seconds, startup_seconds=startup, chunk_samples_per_s=rates,
                   build_seconds=build, steps_per_sample=T, steps=(samples + 1) * T, warmup_samples=1,
                   input_spikes_per_sample=float(spikes.sum() / (samples + 1)), learning_layers="all")
        if learned is not None:
            changes = [_weight_change(w0, w1) for w0, w1 in zip(initial, learned)]
            out.update(weight_readback_seconds=readback, weight_change=changes,
                       weights_changed=all(c["fraction_changed"] > 0 for c in changes))
        return out

    return run


def sign_learner_runner(sizes: Sequence[int], batch: int, *, meta: float = 1.35, lr: float = 0.005,
                        seed: int = 0, timeout: float = 900.0, pipelined: bool = False) -> GraphRunner:
    """A :data:`GraphRunner` for lavaplast's :class:`~lavaplast.graph.LavaBinaryMLP` at ``batch``.

    Timed samples are rounded up to whole batches. ``LavaBinaryMLP.train``
    runs its first ``L + 1`` steps as a chunk of its own (build, compile,
    start-up, the first batch through to its update): that is the warm-up;
    the rest runs in ``chunks`` chunks. Held, each timed chunk of ``n``
    steps learns from ``n / (L + 1)`` batches; ``pipelined``, from ``n``
    (one enters and one leaves every step; the run's last ``L`` steps
    drain the pipeline).
    """
    from lavaplast.graph import LavaBinaryMLP
    from lavaplast.reference import init_local_mlp

    def run(x: np.ndarray, y: np.ndarray, samples: int, chunks: int) -> dict:
        n_batches = max(1, -(-samples // batch))
        state = init_local_mlp(list(sizes), meta=meta, lr=lr, seed=seed)
        before = [w.copy() for w in state.hidden]
        net = LavaBinaryMLP(state, batch=batch, timeout=timeout, pipelined=pipelined)
        window = net.window  # steps per batch: L + 1 held, 1 pipelined
        net.chunk_steps = max(window, -(-n_batches // max(1, chunks)) * window)
        order = np.arange((n_batches + 1) * batch) % len(x)
        t0 = time.perf_counter()
        steps = net.train(x, y % sizes[-1], order)
        total = time.perf_counter() - t0
        (_, startup), *timed = net.last_chunks
        seconds = sum(sec for _, sec in timed)
        changes = []
        for w0, w1 in zip(before, state.hidden):
            change = _weight_change(w0, w1)
            change["binary_weights_flipped"] = float((np.sign(w0) != np.sign(w1)).mean())
            changes.append(change)
        return dict(samples=n_batches * batch, seconds=seconds, startup_seconds=startup,
                    chunk_samples_per_s=[n // window * batch / sec for n, sec in timed],
                    train_call_seconds=total, batch=batch, steps_per_sample=window,
                    schedule="pipelined" if pipelined else "held", steps=steps, warmup_samples=batch,
                    learning="metaplastic Adam on hidden weights, binary sign(W) synapses",
                    meta=meta, lr=lr, weight_change=changes,
                    weights_changed=all(c["fraction_changed"] > 0 for c in changes))

    return run


def spiking_learner_runner(sizes: Sequence[int], batch: int, steps_per_sample: int, *, lr: float = 0.01,
                           meta: float = 1.0, seed: int = 0, timeout: float = 900.0) -> GraphRunner:
    """A :data:`GraphRunner` for lavaplast's :class:`~lavaplast.graph.LavaSpikingLearner` at ``batch``.

    The learner is ``init_spiking_learner(sizes, T=steps_per_sample,
    params=dict(lr=lr, meta=meta))``: rate-coded inputs (Bernoulli spikes,
    probability = intensity), ``T`` steps per batch, each batch learning
    ``L`` steps after its window while the next one is already in. Timed
    samples are rounded up to whole batches. ``LavaSpikingLearner`` runs its
    first ``T + L`` steps as a chunk of its own (build, compile, start-up,
    the first batch through to its update): that is the warm-up; the rest
    runs in ``chunks`` chunks of whole windows, each chunk of ``n`` steps
    presenting ``n / T`` batches.
    """
    from lavaplast.graph import LavaSpikingLearner
    from lavaplast.reference.spiking_learner import init_spiking_learner

    def run(x: np.ndarray, y: np.ndarray, samples: int, chunks: int) -> dict:
        T = steps_per_sample
        n_timed = max(1, -(-samples // batch))
        state = init_spiking_learner(list(sizes), T=T, params=dict(lr=lr, meta=meta), seed=seed)
        before = [w.copy() for w in state.hidden]
        # Chunks of whole windows, so that every timed chunk presents whole batches.
        net = LavaSpikingLearner(state, batch=batch, timeout=timeout, chunk_steps=-(-n_timed // max(1, chunks)) * T)
        order = np.arange((n_timed + 1) * batch) % len(x)  # the warm-up batch, then the timed ones
        t0 = time.perf_counter()
        net.train(x, y % sizes[-1], order)
        total = time.perf_counter() - t0
        (_, startup), *timed = net.last_chunks
        seconds = sum(sec for _, sec in timed)
        changes = []
        for w0, w1 in zip(before, state.hidden):
            change = _weight_change(w0, w1)
            change["binary_weights_flipped"] = float((np.sign(w0) != np.sign(w1)).mean())
            changes.append(change)
        return dict(samples=n_timed * batch, seconds=seconds, startup_seconds=startup,
                    chunk_samples_per_s=[n // T * batch / sec for n, sec in timed],
                    train_call_seconds=total, batch=batch, steps_per_sample=T, steps=net.steps,
                    warmup_samples=batch, encoding=state.encoding,
                    learning="metaplastic Adam on hidden weights (local three-factor rule), binary sign(W) "
                             "synapses, LIF neurons",
                    meta=meta, lr=lr, weight_change=changes,
                    weights_changed=all(c["fraction_changed"] > 0 for c in changes))

    return run


def measure(runner: GraphRunner, x: np.ndarray, y: np.ndarray, samples: int, chunks: int = 4) -> dict:
    """Run ``runner`` once and add ``samples_per_s`` (timed samples over their simulation seconds)."""
    t0 = time.perf_counter()
    out = dict(runner(x, y, samples, chunks))
    out["wall_seconds"] = time.perf_counter() - t0
    out["samples_per_s"] = out["samples"] / out["seconds"]
    return out


@dataclass
class Learner:
    """One mode of the benchmark: a learning graph, how many samples to time, what to compare it with.

    ``against`` names a mode measured earlier in the same pass (or None).
    """

    name: str
    runner: GraphRunner
    samples: int
    against: Optional[str] = None
    label: str = ""


def _record(result: dict, learner: Learner, runs: list) -> dict:
    """Put the runs of one mode into ``result``: best-of-passes rate as the headline, every pass kept."""
    modes = result.setdefault("modes", {})
    if learner.against is not None and learner.against not in modes:
        raise ValueError(f"unknown mode {learner.against!r} to compare {learner.name!r} with; "
                         f"measured so far: {sorted(modes)}")
    rates = [r["samples_per_s"] for r in runs]
    best = runs[int(np.argmax(rates))]
    checked = next((r for r in runs if "weights_changed" in r), None)
    entry = dict(label=learner.label or learner.name, samples=best["samples"], seconds=best["seconds"],
                 samples_per_s=best["samples_per_s"], samples_per_s_median=float(np.median(rates)),
                 samples_per_s_per_pass=rates, startup_seconds=float(np.median([r["startup_seconds"] for r in runs])),
                 startup_seconds_per_pass=[r["startup_seconds"] for r in runs], runs=runs)
    if checked is not None:
        entry.update(weights_changed=checked["weights_changed"], weight_change=checked["weight_change"])
    modes[learner.name] = entry
    if learner.against is not None:
        key = f"{learner.name}/{learner.against}"
        other = modes[learner.against]
        result.setdefault("ratios", {})[key] = entry["samples_per_s"] / other["samples_per_s"]
        # Each pass runs its modes back to back, so per-pass ratios see nearly the same machine load.
        result.setdefault("ratios_per_pass", {})[key] = [
            a / b for a, b in zip(rates, other["samples_per_s_per_pass"])]
    return entry


def add_learner(result: dict, name: str, runner: GraphRunner, *, against: Optional[str], x: np.ndarray,
                y: np.ndarray, samples: int, chunks: int = 4, label: str = "", repeats: int = 1) -> dict:
    """Measure the learning graph of ``runner`` (``repeats`` times) as mode ``name`` of ``result``.

    Adds ``result["modes"][name]`` and, with ``against`` (a mode already in
    ``result``), ``result["ratios"][f"{name}/{against}"]``: its samples per
    second over those of ``against``. Returns the mode's entry. This is the
    hook for further learners, e.g. a spiking LIF learner against
    ``stdp_Tstep``; :func:`run_benchmark` takes the same as a
    :class:`Learner` in ``extra`` to interleave it with the other modes.
    """
    learner = Learner(name, runner, samples, against, label)
    if against is not None and against not in result.get("modes", {}):
        raise ValueError(f"unknown mode {against!r} to compare {name!r} with; "
                         f"measured so far: {sorted(result.get('modes', {}))}")
    return _record(result, learner, [measure(runner, x, y, samples, chunks) for _ in range(repeats)])


def load_inputs(n_in: int, n_classes: int, rows: int, source: str, seed: int = 0) -> tuple:
    """``(x, y, info)``: ``rows`` MNIST training images scaled to [0, 1] and their labels, or random data.

    Random data (uniform intensities, random labels) is used when asked for,
    when the inputs are not 784 wide, or when the MNIST files are missing;
    ``info`` says which and why.
    """
    reason = None
    if source == "mnist" and n_in != 784:
        reason = f"input size {n_in} is not MNIST's 784"
    elif source == "mnist":
        from lavaplast.data import DataMissingError, load_mnist

        try:
            images, labels = load_mnist("train")
        except DataMissingError as err:
            reason = f"MNIST files missing: {err}"
        else:
            rows = min(rows, len(images))
            x = images[:rows].reshape(rows, -1).astype(float) / 255.0
            return x, labels[:rows].astype(np.int64) % n_classes, dict(
                source="mnist", split="train", rows=rows, mean_intensity=float(x.mean()))
    rng = np.random.default_rng((seed, 1))
    x = rng.random((rows, n_in))
    info = dict(source="random", rows=rows, mean_intensity=float(x.mean()),
                note="uniform random intensities, random labels" + (f" ({reason})" if reason else ""))
    return x, rng.integers(0, n_classes, rows), info


#: The project's throughput goals: ``(mode, against, at least, statement)``. "N" is ``--batch``, "T"
#: ``--steps-per-sample``.
GOALS = (
    ("sign_batch1_pipelined", "stdp_1step", 1.0,
     "sign learner at batch 1 >= stock STDP at 1 step per sample"),
    ("sign_batchN_pipelined", "stdp_1step", 30.0,
     "sign learner at batch N >= 30x stock STDP at 1 step per sample"),
    ("lif_batch1", "stdp_Tstep", 1.0,
     "spiking LIF learner at batch 1 >= stock STDP at T steps per sample"),
    ("lif_batchN", "stdp_Tstep", 30.0,
     "spiking LIF learner at batch N >= 30x stock STDP at T steps per sample"),
)


def goal_report(result: dict) -> dict:
    """Each goal of :data:`GOALS` whose modes were measured: the ratio asked for, the measured one
    (best pass per mode, as the headline rates) and every pass's, and whether it is met."""
    goals = {}
    for mode, against, at_least, statement in GOALS:
        key = f"{mode}/{against}"
        if key not in result.get("ratios", {}):
            continue
        measured = result["ratios"][key]
        settings = result["settings"]
        statement = statement.replace("batch N", f"batch {settings['batch']}")
        goals[key] = dict(goal=statement.replace("T steps", f"{settings['steps_per_sample']} steps"),
                          at_least=at_least, measured=measured, measured_per_pass=result["ratios_per_pass"][key],
                          met=bool(measured >= at_least))
    return goals


def run_benchmark(sizes: Sequence[int] = (784, 256, 10), *, steps_per_sample: int = 25, batch: int = 100,
                  stdp_samples: int = 1500, stdp_t_samples: int = 120, batch1_samples: int = 1000,
                  batchn_samples: int = 10000, lif_batch1_samples: int = 150, lif_batchn_samples: int = 5000,
                  chunks: int = 4, repeats: int = 2, max_rate: float = 1.0, data: str = "mnist", seed: int = 0,
                  extra: Sequence[Learner] = ()) -> dict:
    """Measure modes (a)-(h) and any ``extra`` learners in this process; return the result.

    The modes run one after the other in ``repeats`` passes (a, b, c, d,
    e, f, g, h, extra..., then again), so that every mode sees the same
    spread of machine load; each mode's headline rate is its best pass, and
    the per-pass rates and ratios are kept. The stock weights are read back
    and checked in the first pass only (``Var.get`` takes seconds).
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must be at least two positive layer sizes, got {sizes}")
    for name, value in dict(steps_per_sample=steps_per_sample, batch=batch, stdp_samples=stdp_samples,
                            stdp_t_samples=stdp_t_samples, batch1_samples=batch1_samples,
                            batchn_samples=batchn_samples, lif_batch1_samples=lif_batch1_samples,
                            lif_batchn_samples=lif_batchn_samples, chunks=chunks, repeats=repeats).items():
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not 0 < max_rate <= 1:
        raise ValueError(f"max_rate must be in (0, 1], got {max_rate!r}")
    if steps_per_sample <= len(sizes) - 1:
        raise ValueError(f"steps_per_sample must be > the number of connections ({len(sizes) - 1}) for the "
                         f"spiking learner, got {steps_per_sample}")
    t_start = time.perf_counter()
    load_before = os.getloadavg()
    rows = max([stdp_samples, stdp_t_samples, batch1_samples, batchn_samples, lif_batch1_samples,
                lif_batchn_samples] + [e.samples for e in extra])
    x, y, data_info = load_inputs(sizes[0], sizes[-1], rows + batch + 1, data, seed)

    # lavaplast's modes (runners hold no state, so every pass reuses them).
    T = steps_per_sample
    lavaplast_modes = [
        Learner("sign_batch1", sign_learner_runner(sizes, 1, seed=seed), batch1_samples, "stdp_1step",
                "(c) sign learner, batch 1, held"),
        Learner("sign_batchN", sign_learner_runner(sizes, batch, seed=seed), batchn_samples, "stdp_1step",
                f"(d) sign learner, batch {batch}, held"),
        Learner("sign_batch1_pipelined", sign_learner_runner(sizes, 1, seed=seed, pipelined=True),
                batch1_samples, "stdp_1step", "(e) sign learner, batch 1, pipelined"),
        Learner("sign_batchN_pipelined", sign_learner_runner(sizes, batch, seed=seed, pipelined=True),
                batchn_samples, "stdp_1step", f"(f) sign learner, batch {batch}, pipelined"),
        Learner("lif_batch1", spiking_learner_runner(sizes, 1, T, seed=seed), lif_batch1_samples, "stdp_Tstep",
                f"(g) LIF learner, batch 1, {T} steps/sample"),
        Learner("lif_batchN", spiking_learner_runner(sizes, batch, T, seed=seed), lif_batchn_samples,
                "stdp_Tstep", f"(h) LIF learner, batch {batch}, {T} steps/sample"),
    ]

    def learners(first_pass: bool) -> list:
        stdp = dict(max_rate=max_rate, seed=seed, check_weights=first_pass)
        return [
            Learner("stdp_1step", stdp_runner(sizes, 1, **stdp), stdp_samples,
                    label="(a) stock STDP, 1 step/sample"),
            Learner("stdp_Tstep", stdp_runner(sizes, T, **stdp), stdp_t_samples,
                    label=f"(b) stock STDP, {T} steps/sample"),
            *lavaplast_modes,
            *extra,
        ]

    runs: dict = {}
    for rep in range(repeats):
        for learner in learners(rep == 0):
            runs.setdefault(learner.name, (learner, []))[1].append(measure(learner.runner, x, y, learner.samples,
                                                                          chunks))
    result = dict(
        benchmark="learning_throughput",
        lava_version=version("lava-nc"),
        sizes=sizes,
        data=data_info,
        settings=dict(steps_per_sample=T, batch=batch, chunks=chunks, repeats=repeats,
                      max_rate=max_rate, seed=seed, samples={n: l.samples for n, (l, _) in runs.items()},
                      headline="best pass per mode (samples_per_s); per-pass rates and ratios kept"),
        stock_config=dict(
            graph="RingBuffer -> " + " -> ".join(f"LearningDense({a}x{b}) -> LIF({b})"
                                                 for a, b in zip(sizes[:-1], sizes[1:])),
            learning_layers="all (every LearningDense has STDPLoihi; each LIF s_out -> its s_in_bap)",
            learning_rule="lava.proc.learning_rules.stdp_learning_rule.STDPLoihi",
            rule=STDP_RULE, trace_impulse=16, lif=LIF_PARAMS,
            run_config=f"Loihi2SimCfg(select_tag={RUN_TAG!r})",
            models="PyLearningDenseModelFloat, PyLifModelFloat, PySendModelFloat (RingBuffer)",
            input="Bernoulli spikes, p = max_rate * pixel intensity, drawn per time step",
            initial_weights="N(0, vth / sqrt(expected active inputs per step))",
            state_between_samples="not reset (streaming): LIF voltages and STDP traces carry over",
        ),
        sign_config=dict(graph="BatchSource -> BinaryDense -> SignNeuron -> ... -> BinaryDense -> ErrorNeuron",
                         cls="lavaplast.graph.LavaBinaryMLP", init="init_local_mlp(sizes, meta=1.35, lr=0.005)",
                         run_config=f"Loihi2SimCfg(select_tag={RUN_TAG!r})", held_steps=len(sizes),
                         pipelined_steps="1 per batch, plus L per run to drain the pipeline"),
        spiking_config=dict(graph="WindowSource -> LearningBinaryDense -> LearningLIF -> ... -> "
                                  "LearningBinaryDense -> OutputLIF",
                            cls="lavaplast.graph.LavaSpikingLearner",
                            init=f"init_spiking_learner(sizes, T={T}, params=dict(lr=0.01, meta=1.0))",
                            input="rate-coded (Bernoulli spikes, p = pixel / 255), drawn per time step",
                            run_config="Loihi2SimCfg(select_tag='floating_pt')",
                            steps=f"{T} per batch, plus L per run for the last batch to learn"),
        # A source, then a connection and a population per layer; the spiking learner also has a sink
        # for the output spike counts.
        processes=dict(stock=1 + 2 * (len(sizes) - 1), sign=1 + 2 * (len(sizes) - 1),
                       spiking=2 + 2 * (len(sizes) - 1)),
    )
    for learner, mode_runs in runs.values():
        _record(result, learner, mode_runs)
    result["goals"] = goal_report(result)
    result["startup_seconds"] = {k: m["startup_seconds"] for k, m in result["modes"].items()}
    result["stock_weights_changed"] = all(result["modes"][k]["weights_changed"] for k in ("stdp_1step", "stdp_Tstep"))
    result["load_average_before_after"] = [list(load_before), list(os.getloadavg())]
    result["total_seconds"] = time.perf_counter() - t_start
    return result


def save(result: dict, path: str, argv: Sequence[str]) -> Path:
    """Add the exact command and the machine to ``result``; write it as JSON (atomically)."""
    script = Path(__file__).resolve().relative_to(Path(__file__).resolve().parent.parent)  # from the repo root
    result.update(command=shlex.join(["python", str(script), *argv]), cpus=os.cpu_count(),
                  machine=platform.machine(), python=platform.python_version())
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    return out


def print_table(result: dict) -> None:
    print(f"{'mode':42s} {'samples':>7s} {'samples/s':>10s} {'per pass':>20s} {'start-up s':>10s}")
    for m in result["modes"].values():
        passes = " ".join(f"{r:.1f}" for r in m["samples_per_s_per_pass"])
        print(f"{m['label']:42s} {m['samples']:7d} {m['samples_per_s']:10.1f} {passes:>20s} "
              f"{m['startup_seconds']:10.2f}")
    for k, v in result["ratios"].items():
        goal = result["goals"].get(k)
        passes = ", ".join(f"{r:.2f}" for r in result["ratios_per_pass"][k])
        print(f"ratio {k:36s} {v:7.2f}x (per pass {passes})"
              + (f"  goal >= {goal['at_least']:g}: {'met' if goal['met'] else 'not met'}" if goal else ""))
    for k in ("stdp_1step", "stdp_Tstep"):
        changes = ", ".join(f"{c['mean_abs_change']:.3f} of {c['mean_abs_initial']:.3f} "
                            f"({100 * c['fraction_changed']:.0f}% of weights)"
                            for c in result["modes"][k]["weight_change"])
        print(f"{k}: mean |dW| per layer (of mean |W0|): {changes}")
    print(f"total {result['total_seconds']:.0f} s")


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[784, 256, 10])
    p.add_argument("--steps-per-sample", "-T", type=int, default=25,
                   help="steps per sample of modes (b), (g) and (h)")
    p.add_argument("--batch", type=int, default=100, help="batch of modes (d), (f) and (h)")
    p.add_argument("--stdp-samples", type=int, default=1500, help="timed samples of (a)")
    p.add_argument("--stdp-t-samples", type=int, default=120, help="timed samples of (b)")
    p.add_argument("--batch1-samples", type=int, default=1000, help="timed samples of (c) and (e)")
    p.add_argument("--batchn-samples", type=int, default=10000, help="timed samples of (d) and (f)")
    p.add_argument("--lif-batch1-samples", type=int, default=150, help="timed samples of (g)")
    p.add_argument("--lif-batchn-samples", type=int, default=5000, help="timed samples of (h)")
    p.add_argument("--chunks", type=int, default=4, help="timed chunks per mode")
    p.add_argument("--repeats", type=int, default=2, help="passes over all modes; the best pass is the headline")
    p.add_argument("--max-rate", type=float, default=1.0, help="spike probability per step of a white pixel")
    p.add_argument("--data", choices=("mnist", "random"), default="mnist")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/learning.json")
    args = p.parse_args(argv)
    result = run_benchmark(args.sizes, steps_per_sample=args.steps_per_sample, batch=args.batch,
                           stdp_samples=args.stdp_samples, stdp_t_samples=args.stdp_t_samples,
                           batch1_samples=args.batch1_samples, batchn_samples=args.batchn_samples,
                           lif_batch1_samples=args.lif_batch1_samples, lif_batchn_samples=args.lif_batchn_samples,
                           chunks=args.chunks, repeats=args.repeats, max_rate=args.max_rate, data=args.data,
                           seed=args.seed)
    out = save(result, args.out, argv)
    print_table(result)
    print(f"-> {out}")
    return result


if __name__ == "__main__":
    main()
