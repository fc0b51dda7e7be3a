"""The ``lava`` backend: a graph file as a Lava process graph on Lava's CPU simulator.

Feed-forward graphs of ``lif``, ``sign`` and ``error`` populations become::

    BatchSource --> BinaryDense_1 --> N_1 --> BinaryDense_2 --> N_2 --> ... --> N_L
                                       \\--> BatchSink_1         \\--> BatchSink_2      \\--> BatchSink_L

with ``N_i`` a stock ``LIF(du=1, dv=1 - beta, vth=threshold)`` (``lif``) or a
:class:`~lavaplast.proc.SignNeuron` (``sign``; ``error`` and a ``logits``
readout run it in identity mode). The source sends input step ``k`` at Lava
step ``k + 1``, every ``BinaryDense`` delays by one step and the neurons
answer in the step they receive, so population ``i`` (0-based) hears input
step ``k`` at Lava step ``k + i + 2``; the sinks record every population at
every step, row ``t - 1`` holding Lava step ``t``. Each run lasts ``T + L``
steps so that the last input step reaches the last population. Samples go
through in batches of ``run.batch`` side by side, one Lava run per batch.

On-chip learning graphs (``run.learning`` with the ``metaplastic`` rule)
run through :class:`~lavaplast.graph.binary_network.LavaBinaryMLP` and EP
graphs through :class:`~lavaplast.graph.ep_network.LavaEPNetwork`, both
built from the specification (see :mod:`lavaplast.graph.backends.learning`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from lavaplast.graph.backends.base import (
    GraphRun,
    chain_readout,
    check_ep,
    check_onchip,
    hidden_weights,
    is_learning_graph,
    lif_params,
    lif_slope,
    nonzero_counts,
    output_mode,
    per_neuron,
    readout_index,
    unsupported,
)
from lavaplast.graph.inputs import GraphInput
from lavaplast.graph.spec import GraphSpec
from lavaplast.progress import progress_bar


@dataclass
class ChainLayer:
    """One connection and the population it feeds, as the Lava chain builds them.

    ``neuron`` is ``"lif"`` (``beta``, ``threshold``) or ``"sign"`` (``gain``,
    ``bias``, ``mode``: sign, binary or identity).
    """

    hidden: np.ndarray
    neuron: str
    quantizer: str = "binary"
    ternary_threshold: float = 0.05
    beta: float = 0.9
    threshold: float = 1.0
    gain: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    mode: str = "sign"
    faults: Optional[dict] = None

    @property
    def size(self) -> int:
        return self.hidden.shape[0]


def simulate_chain(layers: list, data: np.ndarray, *, timeout: float = 600.0,
                   membrane_of: Optional[int] = None) -> tuple[list, Optional[np.ndarray]]:
    """Run one batch ``data`` ``(T, B, n_in)`` through a chain of :class:`ChainLayer` on Lava.

    Returns ``(records, membrane)``: one ``(T + L, B, n_i)`` recording per
    layer, and with ``membrane_of`` the final membrane potential ``(B, n)``
    of that (``lif``) layer, else ``None``. The runtime is stopped on every
    exit path and ``timeout`` bounds the run.
    """
    from lava.proc.lif.process import LIF

    from lavaplast.proc import BatchSink, BatchSource, BinaryDense, LavaSession, SharedArray, SignNeuron, sim_config

    T, B, n_in = data.shape
    n_steps = T + len(layers)
    # Zero steps after the input: BatchSource would otherwise wrap around and
    # replay the first steps while the deeper layers still run.
    padded = np.zeros((n_steps * B, n_in))
    padded[: T * B] = data.reshape(T * B, n_in)
    records = [SharedArray((n_steps, B, layer.size)) for layer in layers]
    membrane = None
    try:
        src = BatchSource(data=padded, batch=B, hold=1)
        prev, neurons = src.s_out, []
        for layer, record in zip(layers, records):
            dense = BinaryDense(hidden_weights=layer.hidden, batch=B, quantizer=layer.quantizer,
                                threshold=layer.ternary_threshold, faults=layer.faults)
            shape = (B, layer.size)
            if layer.neuron == "lif":
                neuron = LIF(shape=shape, du=1.0, dv=1.0 - layer.beta, vth=layer.threshold)
            else:
                neuron = SignNeuron(shape=shape, gain=layer.gain, bias=layer.bias, mode=layer.mode)
            prev.connect(dense.s_in)
            dense.a_out.connect(neuron.a_in)
            sink = BatchSink(shape=shape, record=record.spec, offset=1)
            neuron.s_out.connect(sink.a_in)
            neurons.append(neuron)
            prev = neuron.s_out
        with LavaSession(src, sim_config(), timeout=timeout) as session:
            session.run(n_steps)
            if membrane_of is not None:
                membrane = np.asarray(neurons[membrane_of].v.get(), dtype=np.float64).reshape(B, -1)
        out = [r.read() for r in records]
    finally:
        for r in records:
            r.close()
    return out, membrane


def chain_layers(spec: GraphSpec, weights: Optional[list] = None) -> list:
    """The :class:`ChainLayer` list of a feed-forward graph of ``lif``, ``sign`` and ``error`` populations."""
    weights = hidden_weights(spec) if weights is None else weights
    layers = []
    for i, (conn, pop, w) in enumerate(zip(spec.connections, spec.populations, weights)):
        common = dict(hidden=w, quantizer=conn.quantizer, ternary_threshold=conn.ternary_threshold,
                      faults=conn.faults.settings(i))
        if pop.neuron == "lif":
            beta, threshold = lif_params(pop)
            layers.append(ChainLayer(neuron="lif", beta=beta, threshold=threshold, **common))
        elif pop.neuron in ("sign", "error"):
            layers.append(ChainLayer(neuron="sign", gain=per_neuron(pop.params["gain"], pop.size),
                                     bias=per_neuron(pop.params["bias"], pop.size), mode=output_mode(spec, i),
                                     **common))
        else:
            raise unsupported(spec, f"populations[{i}].neuron", f"{pop.neuron!r} neurons do not run in a "
                              "feed-forward chain")
    return layers


def run(spec: GraphSpec, inputs: GraphInput, *, progress: bool = False) -> GraphRun:
    """Run ``spec`` on ``inputs`` on Lava's CPU simulator (see the module docstring)."""
    if is_learning_graph(spec):
        from lavaplast.graph.backends.learning import run_learning

        return run_learning(spec, inputs, backend="lava", progress=progress)
    t0 = time.perf_counter()
    layers = chain_layers(spec)
    T, N, _ = inputs.data.shape
    B = min(spec.run.batch, N)
    i_read = readout_index(spec)
    membrane_of = i_read if spec.readout.kind == "membrane" else None
    parts = [[] for _ in layers]
    membranes = []
    starts = range(0, N, B)
    for start in progress_bar(starts, progress, desc=f"{spec.name} on lava", unit="batch", total=len(starts)):
        batch = inputs.data[:, start: start + B]
        n = batch.shape[1]
        if n < B:  # the last batch: pad with silent samples so every run has the same shapes
            batch = np.concatenate([batch, np.zeros((T, B - n, batch.shape[2]))], axis=1)
        records, membrane = simulate_chain(layers, batch, timeout=spec.run.timeout, membrane_of=membrane_of)
        for l, r in enumerate(records):
            parts[l].append(r[:, :n])
        if membrane is not None:
            membranes.append(membrane[:n])
    records = [np.concatenate(p, axis=1) for p in parts]
    readout = chain_readout(spec, records, T, np.concatenate(membranes) if membranes else None)
    named = {pop.name: r for pop, r in zip(spec.populations, records)}
    counts, kinds = nonzero_counts(spec, named)
    return GraphRun(backend="lava", records=named, readout=readout, predictions=readout.argmax(1),
                    labels=inputs.labels, counts=counts, count_kind=kinds, steps=T + len(layers),
                    seconds=time.perf_counter() - t0, info={"batches": len(starts), "batch": B})


# --- graphs that learn on chip --------------------------------------------------


def onchip_training_graph(spec: GraphSpec, feedback: list, x: np.ndarray, y: np.ndarray, order: np.ndarray,
                          batch: int, readouts: list, *, pipelined: bool = False, mismatch=None):
    """The processes of an on-chip learning graph for ``spec``; returns the source (the graph's anchor).

    ::

        BatchSource --s_out--> BinaryDense_1 --> SignNeuron_1 --> BinaryDense_2 --> ... --> ErrorNeuron
             \\--target_out-------------------------------------------------------------------^   |
        every SignNeuron_l gets ErrorNeuron.err_out on fb_in (fixed random feedback)  <-----------/
        and returns its local error to BinaryDense_l.err_in; BinaryDense_L gets err_out directly.

    Batches of ``batch`` samples of ``(x, y)`` in the sequence ``order``
    (``n`` batches) go through the graph on one of two schedules; the graph
    must run exactly :func:`~lavaplast.graph.binary_network.training_steps`
    steps, at the end of which ``readouts[l]`` (a
    :class:`~lavaplast.proc.SharedArray`) receives connection ``l``'s hidden
    weights. ``feedback[l]`` ``(n_l, n_classes)`` is hidden population
    ``l``'s feedback matrix.

    - held (``pipelined=False``): each batch is held for ``L + 1`` steps
      (``L`` connections, one step of synaptic delay each); at the window's
      last step every layer holds the batch's input and error together and
      learns. ``n * (L + 1)`` steps.
    - pipelined: a new batch enters every step. Batch ``k`` leaves the source
      at step ``k + 1``, reaches population ``l`` (1-based) at step
      ``k + l + 1`` and the error population at ``k + L + 1``, where its
      target arrives too (the source delays targets by ``L``); its error
      goes out in that step, and every layer takes its gradient from it in
      that step, pairing it with the input (``BinaryDense_l``, ``L + 1 - l``
      steps old) and pre-activation (``SignNeuron_l``, ``L - l`` steps old)
      it kept of batch ``k``; each synapse applies the update at the start
      of the next step, before its next sums (so no learning phase is
      needed). Learning runs on every step from ``L + 1`` on; the
      forward passes of later batches use weights a few updates old (see
      :class:`~lavaplast.reference.local_bnn.LocalBinaryMLP`). ``n + L``
      steps.

    ``mismatch`` (a :class:`~lavaplast.core.mismatch.ChipMismatch` for the
    graph's sizes; ``None``: ideal devices) builds the graph as that chip:
    see :func:`~lavaplast.graph.binary_network.onchip_chip`.
    """
    from lavaplast.graph.binary_network import onchip_chip, training_steps
    from lavaplast.proc import BatchSource, BinaryDense, ErrorNeuron, SignNeuron

    check_onchip(spec)
    pops, L = spec.populations, len(spec.populations)
    neurons, conductances = onchip_chip(spec, mismatch)
    steps = training_steps(len(order) // batch, L, pipelined)
    if pipelined:
        # Learning every step once the first batch has reached the output.
        schedule = dict(learn_every=1, learn_offset=0, learn_start=L + 1)
        hold, target_delay = 1, L
    else:
        schedule = dict(learn_every=L + 1, learn_offset=0)
        hold, target_delay = L + 1, 0
    out_pop = pops[-1]
    src = BatchSource(data=x, labels=y, n_classes=out_pop.size, batch=batch, hold=hold, order=order,
                      target_delay=target_delay)
    out = ErrorNeuron(shape=(batch, out_pop.size), gain=neurons[-1][0], bias=neurons[-1][1],
                      loss=out_pop.params["loss"], **schedule)
    src.target_out.connect(out.target_in)
    prev = src.s_out
    for l, (conn, pop, hidden) in enumerate(zip(spec.connections, pops, hidden_weights(spec))):
        rule = conn.learning
        # Connection l + 1 (1-based) hears batch k at step k + l + 1 and its error at step k + L + 1.
        delays = dict(error_delay=L - l, cache_sums=False) if pipelined else {}
        dense = BinaryDense(hidden_weights=hidden, batch=batch, learning="local", quantizer=conn.quantizer,
                            threshold=conn.ternary_threshold, meta=rule.meta, lr=rule.lr,
                            betas=rule.betas, eps=rule.eps, weight_decay=rule.weight_decay,
                            readout=readouts[l].spec, readout_step=steps, conductance=conductances[l],
                            **schedule, **delays)
        prev.connect(dense.s_in)
        if l < L - 1:
            # Population l + 1 hears batch k at step k + l + 2, one step after its synapses.
            neuron = SignNeuron(shape=(batch, pop.size), gain=neurons[l][0], bias=neurons[l][1],
                                feedback=feedback[l], **schedule,
                                **(dict(error_delay=L - l - 1) if pipelined else {}))
            dense.a_out.connect(neuron.a_in)
            neuron.err_out.connect(dense.err_in)
            out.err_out.connect(neuron.fb_in)
            prev = neuron.s_out
        else:
            dense.a_out.connect(out.a_in)
            out.err_out.connect(dense.err_in)
    return src


def pipelined_chain_graph(spec: GraphSpec, x: np.ndarray, batch: int, record, *, mismatch=None):
    """The processes of a pipelined inference graph of ``sign``/``error`` populations; returns the source.

    Batch ``k`` of ``x`` (padded to whole batches) leaves the source at step
    ``k + 1`` and reaches the last population ``L`` steps later, so a new
    batch enters every step; the last population sends ``gain * a + bias``
    (identity), which ``record`` (a :class:`~lavaplast.proc.SharedArray` of
    shape ``(n_batches, batch, n_out)``) keeps, one row per batch.
    ``mismatch``: the chip it runs on (see
    :func:`~lavaplast.graph.binary_network.onchip_chip`).
    """
    from lavaplast.graph.binary_network import onchip_chip
    from lavaplast.proc import BatchSink, BatchSource, BinaryDense, SignNeuron

    L = len(spec.populations)
    for l, pop in enumerate(spec.populations):
        if pop.neuron not in ("sign", "error"):
            raise unsupported(spec, f"populations[{l}].neuron", "the pipelined graph runs 'sign' and 'error' "
                              "populations")
    neurons, conductances = onchip_chip(spec, mismatch)
    src = BatchSource(data=x, batch=batch, hold=1)
    prev = src.s_out
    for l, (conn, pop, hidden) in enumerate(zip(spec.connections, spec.populations, hidden_weights(spec))):
        dense = BinaryDense(hidden_weights=hidden, batch=batch, quantizer=conn.quantizer,
                            threshold=conn.ternary_threshold, faults=conn.faults.settings(l),
                            conductance=conductances[l])
        neuron = SignNeuron(shape=(batch, pop.size), gain=neurons[l][0], bias=neurons[l][1],
                            mode="identity" if l == L - 1 else output_mode(spec, l))
        prev.connect(dense.s_in)
        dense.a_out.connect(neuron.a_in)
        prev = neuron.s_out
    sink = BatchSink(shape=(batch, spec.populations[-1].size), record=record.spec, offset=L + 1)
    prev.connect(sink.a_in)
    return src


def ep_synapse_weights(spec: GraphSpec) -> tuple[list, list]:
    """``(weights, hidden)`` of an EP graph's connections: ``sign(W_h) / sqrt(fan_in)`` and ``W_h`` for binary
    synapses, ``W_h`` and ``None`` for full-precision ones."""
    from lavaplast.core import binarize

    hidden = hidden_weights(spec)
    if check_ep(spec) == "none":
        return hidden, [None] * len(hidden)
    return [binarize(h) * (1.0 / np.sqrt(h.shape[1])) for h in hidden], hidden


def ep_graph(spec: GraphSpec, x: np.ndarray, y: np.ndarray, order, batch: int, *, learn: bool, record=None,
             weight_readouts=(), bias_readouts=(), mismatch=None):
    """The processes of an event-driven EP graph for ``spec``; returns ``(source, neurons)``.

    ::

        BatchSource(once) --> EPSynapse_1 <==> EPNeuron_1 <==> EPSynapse_2 <==> ... <==> EPNeuron_N (output)
                     \\--target------------------------------------------------------------^

    ``<==>``: a neuron's events go to the synapses below (``post_in``) and
    above (``pre_in``); each synapse sends ``W pre`` up and ``W^T post``
    down into the neurons' ``a_in``. Each batch of ``(x, y)`` (in the
    sequence ``order``) runs the window of :func:`lavaplast.core.ep_window`
    for ``spec.equilibrium``; with ``learn``, synapses and neurons update
    their weights and biases at the window's end (rates from each
    connection's ``learning``) and hand them to ``weight_readouts`` /
    ``bias_readouts`` (:class:`~lavaplast.proc.SharedArray`) when the run
    ends. ``record`` (a :class:`~lavaplast.proc.SharedArray` ``(steps,
    batch, n_out)``) keeps the output population's events. ``mismatch`` (a
    :class:`~lavaplast.core.mismatch.ChipMismatch` for the graph's sizes)
    gives every neuron its gain and offset and every synapse its conductance
    factor; ``None``: ideal devices.
    """
    from lavaplast.core import ep_window
    from lavaplast.proc import BatchSink, BatchSource
    from lavaplast.proc.ep_neuron.process import EPNeuron
    from lavaplast.proc.ep_synapse.process import EPSynapse

    eq, pops = spec.equilibrium, spec.populations
    if mismatch is not None:
        mismatch.check_sizes([spec.input.size, *(p.size for p in pops)], "the EP graph")
    weights, hidden = ep_synapse_weights(spec)
    common = dict(T1=eq.T1, T2=eq.T2, beta=eq.beta, nudging=eq.nudging)
    src = BatchSource(data=x, labels=y, n_classes=pops[-1].size, batch=batch,
                      hold=ep_window(eq.T1, eq.T2, eq.nudging), order=order, once=True)
    neurons, prev = [], None
    for n, (conn, pop) in enumerate(zip(spec.connections, pops)):
        rule = conn.learning
        extra = {}
        if hidden[n] is not None:
            extra = dict(hidden_weights=hidden[n], gain=1.0 / np.sqrt(hidden[n].shape[1]), meta=rule.meta)
        syn_lr = (rule.hidden_lr if hidden[n] is not None else rule.lr) if learn else 0.0
        chip = {} if mismatch is None else dict(gain=mismatch.gains[n], offset=mismatch.offsets[n])
        syn = EPSynapse(weights=weights[n], batch=batch, lr=syn_lr, input_layer=n == 0,
                        readout=weight_readouts[n].spec if learn else None,
                        conductance=None if mismatch is None else mismatch.conductances[n], **extra, **common)
        neuron = EPNeuron(shape=(batch, pop.size), bias=per_neuron(pop.params["bias"], pop.size),
                          threshold=pop.params["threshold"], output=n == len(pops) - 1,
                          lr=rule.lr if learn else 0.0, activation=pop.params["activation"],
                          readout=bias_readouts[n].spec if learn else None, **chip, **common)
        if prev is None:
            src.s_out.connect(syn.pre_in)
        else:
            prev.s_out.connect(syn.pre_in)
            syn.down_out.connect(prev.a_in)
        syn.up_out.connect(neuron.a_in)
        neuron.s_out.connect(syn.post_in)
        neurons.append(neuron)
        prev = neuron
    src.target_out.connect(neurons[-1].target_in)
    if record is not None:
        sink = BatchSink(shape=(batch, pops[-1].size), record=record.spec, offset=1)
        neurons[-1].s_out.connect(sink.a_in)
    return src, neurons


def spiking_learning_graph(spec: GraphSpec, feedback: list, x: np.ndarray, y: Optional[np.ndarray], order,
                           batch: int, *, learning: bool, readouts=(), count_record=None, fixed_point=None):
    """The processes of a spiking learner for ``spec`` (``lif`` populations, learning connections); returns
    the source.

    ::

        WindowSource --> LearningBinaryDense_1 --> LearningLIF_1 --> ... --> LearningBinaryDense_L --> OutputLIF
             \\--target_out---------------------------------------------------------------------------^   |
        every LearningLIF_l gets OutputLIF.err_out on fb_in and sends (post, third) to its connection;    |
        LearningBinaryDense_L gets OutputLIF.sig_out  <---------------------------------------------------/

    Batches of ``batch`` samples of ``x`` in the sequence ``order`` each
    take a window of ``run.steps`` steps (the pipelined schedule of
    :mod:`lavaplast.core.spiking_learning`), coded as ``input.encoding``
    with ``run.seed``. With ``learning`` every connection learns by its
    rule from ``y``; ``readouts[l]`` (:class:`~lavaplast.proc.SharedArray`)
    receive the hidden weights. ``count_record`` (a ``SharedArray`` of shape
    ``(n_batches, batch, n_out)``) keeps every batch's output spike counts.
    ``feedback[l]`` ``(n_l, n_classes)`` is hidden population ``l``'s
    feedback matrix. ``fixed_point`` (a
    :class:`~lavaplast.core.spiking_learning.FixedPoint`) goes to every
    connection, whose ``fixed_pt`` model then holds the hidden weights on
    its grid (run the graph with ``sim_config("fixed_pt")``).
    """
    from lavaplast.proc import BatchSink
    from lavaplast.proc.learning_binary_dense.process import LearningBinaryDense
    from lavaplast.proc.learning_lif.process import LearningLIF, OutputLIF
    from lavaplast.proc.window_source.process import WindowSource

    pops, L, T = spec.populations, len(spec.populations), spec.run.steps
    for i, pop in enumerate(pops):
        if pop.neuron != "lif":
            raise unsupported(spec, f"populations[{i}].neuron", "a spiking learner has 'lif' populations only")
    n_batches = len(order) // batch
    out = pops[-1]
    src = WindowSource(data=x, labels=y if learning else None, n_classes=out.size, batch=batch, T=T, n_layers=L,
                       order=order, encoding=spec.input.encoding, seed=spec.run.seed)
    common = dict(T=T, n_layers=L, n_batches=n_batches, learning=learning)
    prev, hidden_neurons = src.s_out, []
    for l, (conn, pop, hidden) in enumerate(zip(spec.connections, pops, hidden_weights(spec))):
        rule, params = conn.learning.rule_and_params()
        if rule in ("off", "ep"):
            if learning:
                raise unsupported(spec, f"connections[{l}].learning.rule", "every connection of a spiking learner "
                                  "learns with a registered local rule (e.g. 'metaplastic')")
            rule, params = "plain", None  # never applied: the graph does not learn
        beta, threshold = lif_params(pop)
        neuron_params = dict(shape=(batch, pop.size), beta=beta, threshold=threshold, slope=lif_slope(pop))
        dense = LearningBinaryDense(hidden_weights=hidden, batch=batch, layer=l + 1, rule=rule, params=params,
                                    quantizer=conn.quantizer, threshold=conn.ternary_threshold,
                                    readout=readouts[l].spec if readouts else None, fixed_point=fixed_point,
                                    **common)
        prev.connect(dense.s_in)
        if l < L - 1:
            neuron = LearningLIF(feedback=feedback[l], layer=l + 1, **neuron_params, **common)
            hidden_neurons.append(neuron)
        else:
            r = spec.readout
            neuron = OutputLIF(gain=r.gain, bias=r.bias, loss=r.loss, **neuron_params, **common)
            src.target_out.connect(neuron.target_in)
            for h in hidden_neurons:
                neuron.err_out.connect(h.fb_in)
            if count_record is not None:
                sink = BatchSink(shape=(batch, pop.size), record=count_record.spec, offset=L + T, every=T)
                neuron.count_out.connect(sink.a_in)
        dense.a_out.connect(neuron.a_in)
        neuron.sig_out.connect(dense.sig_in)
        prev = neuron.s_out
    return src
