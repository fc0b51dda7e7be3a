"""A multi-layer binary network that learns on chip, as a Lava process graph.

:class:`LavaBinaryMLP` is a thin layer over the graph specification: it
describes its :class:`~lavaplast.reference.local_bnn.LocalMLPState` as a
:class:`~lavaplast.graph.spec.GraphSpec` (:func:`onchip_spec`) and runs the
graphs that :func:`lavaplast.graph.backends.lava.onchip_training_graph`
(learning) and :func:`~lavaplast.graph.backends.lava.pipelined_chain_graph`
(inference) build from it, the same builders that run graph files.

Learning runs on one of two schedules (``L`` weight layers, one step of
synaptic delay each):

- held (the default): each batch is held for ``L + 1`` steps; at the
  window's last step every layer holds the batch's input and error together
  and learns, so every batch sees the weights that all earlier batches
  left. ``n * (L + 1)`` steps for ``n`` batches.
- pipelined (``pipelined=True``): a new batch enters every step. Batch ``k``
  (0-based) leaves the source at step ``k + 1``, population ``l`` (1-based)
  hears it at step ``k + l + 1`` and the error population at step
  ``k + L + 1``, which computes its error and broadcasts it in that same
  step; every layer then takes its gradient from batch ``k`` with the input
  and pre-activation it kept of it. The update is applied after that step's
  forward sums were taken and before the next step's: at the start of the
  next step's spiking phase, or at the run's last step in its
  post-learning management phase (``BinaryDense``'s deferred update: no
  learning phase, so no extra synchronisation of all processes per step).
  Layer ``l`` thus sums batch ``k`` with its weights from before the
  updates of batches ``k - (L - l + 1)`` onwards (pipelined direct
  feedback alignment; the twin
  :class:`~lavaplast.reference.local_bnn.LocalBinaryMLP` with
  ``pipelined=True`` does the same). No error exists before step ``L + 1``
  and the last batch needs ``L`` steps to drain: ``n + L`` steps.

Hidden weights and Adam moments stay in the processes for the whole call and
come back in bulk through shared memory, once, at the end of the run.

Device mismatch (``mismatch=``, a :class:`~lavaplast.core.mismatch.ChipMismatch`)
builds both graphs as that chip: every neuron computes from ``g * (gain * a +
bias) + o`` and every synapse conducts ``G * q(W_h)`` (see
:func:`onchip_chip`), exactly as the twin does with the same ``mismatch``.
A graph specification has no fields for a chip's deviations, so a
mismatched learner refuses to describe itself as one (:attr:`LavaBinaryMLP.spec`)
rather than write a graph file that silently runs on ideal devices.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from lavaplast.core import check_batch_order, check_finite_array, check_int, check_labels, check_positive
from lavaplast.core.mismatch import ChipMismatch, as_mismatch
from lavaplast.proc import SharedArray, run_in_chunks
from lavaplast.reference.local_bnn import LocalMLPState, chip_conductances, chip_neurons


def onchip_spec(state: LocalMLPState, *, batch: int = 100, timeout: float = 600.0, name: str = "onchip"):
    """The :class:`~lavaplast.graph.spec.GraphSpec` of an on-chip learner: ``sign`` hidden populations,
    an ``error`` output, ``metaplastic`` connections, the state's weights held in memory.

    Gains, biases, ``meta``, ``lr``, Adam's ``betas``/``eps``, weight decay
    and the loss come from ``state``; the feedback matrices are not part of
    a specification (a graph file draws them with ``run.seed``) and travel
    with the state. The input is external: the caller supplies the data.
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

    L = len(state.hidden)
    pops, conns = [], []
    for l in range(L):
        last = l == L - 1
        name_l = "output" if last else f"hidden{l + 1}"
        params = dict(gain=state.gain[l].tolist(), bias=state.bias[l].tolist())
        if last:
            params["loss"] = state.loss
        else:
            params["output"] = "sign"
        pops.append(Population(name=name_l, size=state.sizes[l + 1], neuron="error" if last else "sign",
                               params=params))
        conns.append(Connection(pre=pops[-2].name if l else "input", post=name_l, quantizer=state.quantizer,
                                ternary_threshold=state.ternary_threshold,
                                weights=WeightsSpec.from_array(state.hidden[l]),
                                learning=LearningSpec(rule="metaplastic", meta=float(state.meta[l]),
                                                      lr=float(state.lr), betas=tuple(state.betas),
                                                      eps=float(state.eps), weight_decay=float(state.weight_decay))))
    spec = GraphSpec(name=name, input=InputSpec(size=state.sizes[0], source="external"), populations=tuple(pops),
                     connections=tuple(conns), readout=ReadoutSpec(population="output", kind="logits"),
                     run=RunSpec(batch=batch, learning=True, timeout=timeout),
                     description="An on-chip metaplastic learner (LavaBinaryMLP).")
    return validate(spec)


def onchip_chip(spec, mismatch=None) -> tuple[list, list]:
    """``(neurons, conductances)`` of a chain of ``sign``/``error`` populations on the chip ``mismatch``.

    ``neurons[l]`` is population ``l``'s ``(gain, bias)`` with the chip's
    per-neuron deviations folded in (a neuron computes from ``g * (gain * a
    + bias) + o``, i.e. gain ``g * gain`` and bias ``g * bias + o``; see
    :func:`lavaplast.reference.local_bnn.chip_neurons`, which the twin uses
    too, so both see the same chip by construction); ``conductances[l]`` is
    connection ``l``'s per-synapse factor for ``BinaryDense``'s
    ``conductance`` (``None``: exact ternary sums). A graph specification
    has no mismatch fields: the mismatch travels beside it, as a Python
    object. ``None``: the specification's own gains and biases, ideal
    synapses.
    """
    from lavaplast.graph.backends.base import per_neuron

    pops = spec.populations
    ideal = [(per_neuron(p.params["gain"], p.size), per_neuron(p.params["bias"], p.size)) for p in pops]
    if mismatch is None:
        return ideal, [None] * len(pops)
    as_mismatch(mismatch, [spec.input.size, *(p.size for p in pops)], f"graph {spec.name!r}")
    return ([chip_neurons(g, b, mismatch, l) for l, (g, b) in enumerate(ideal)],
            chip_conductances(mismatch, len(pops)))


def training_steps(n_batches: int, n_layers: int, pipelined: bool) -> int:
    """Time steps of a learning run over ``n_batches`` batches through ``n_layers`` weight layers:
    ``n_batches * (n_layers + 1)`` held, ``n_batches + n_layers`` pipelined (see the module docstring)."""
    return n_batches + n_layers if pipelined else n_batches * (n_layers + 1)


class LavaBinaryMLP:
    """Runs a :class:`~lavaplast.reference.local_bnn.LocalMLPState` on Lava's CPU simulator.

    ``batch`` samples travel together through every process (a batch
    dimension inside the processes). ``timeout`` bounds each run of
    ``chunk_steps`` steps; the runtime is stopped on every exit path.
    ``pipelined`` selects the learning schedule (see the module docstring):
    the held schedule (default) learns exactly as
    :class:`~lavaplast.reference.local_bnn.LocalBinaryMLP`'s ``train_batch``
    does, batch after batch; the pipelined one takes a new batch every step
    and learns as that twin does with ``pipelined=True``. Held stays the
    default: it is plain (not stale) feedback alignment, which the on-chip
    experiments and the graph backends check against the held twin batch by
    batch.

    ``mismatch`` (a :class:`~lavaplast.core.mismatch.ChipMismatch` drawn for
    ``state.sizes``; ``None``: ideal devices) runs learning and inference on
    that chip, as the twin does with the same ``mismatch``; :attr:`state`
    keeps the programmed weights, gains and biases.
    """

    def __init__(self, state: LocalMLPState, *, batch: int = 100, timeout: float = 600.0,
                 chunk_steps: int = 2000, progress: bool = False, pipelined: bool = False,
                 mismatch: Optional[ChipMismatch] = None):
        if not isinstance(state, LocalMLPState):
            raise ValueError(f"state must be a LocalMLPState, got {type(state).__name__}")
        self.state = state
        self.mismatch = as_mismatch(mismatch, state.sizes, "the on-chip learner")
        self.pipelined = bool(pipelined)
        self.batch = check_int("batch", batch, 1)
        self.timeout = check_positive("timeout", timeout)
        self.chunk_steps = check_int("chunk_steps", chunk_steps, 1)
        self.progress = progress
        self.steps_run = 0
        self.last_chunks: list[tuple[int, float]] = []  # (steps, seconds) of the last run; the first includes start-up

    @property
    def n_layers(self) -> int:
        return len(self.state.hidden)

    @property
    def spec(self):
        """The graph specification of :attr:`state` as it is now (see :func:`onchip_spec`).

        Refused (ValueError) on a mismatched chip: a specification cannot
        hold the chip's deviations, and a graph file written from it would
        run on ideal devices. The ideal chip (every sigma 0) is allowed: it
        computes exactly what the specification does.
        """
        if self.mismatch is not None and not self.mismatch.is_ideal:
            raise ValueError("this LavaBinaryMLP runs on a mismatched chip (ChipMismatch with sigma_gain="
                             f"{self.mismatch.sigma_gain:g}, sigma_offset={self.mismatch.sigma_offset:g}, "
                             f"sigma_synapse={self.mismatch.sigma_synapse:g}); a graph specification has no "
                             "fields for device mismatch, so it cannot describe this learner (use onchip_spec("
                             "learner.state) for the programmed network on ideal devices)")
        return self._spec()

    def _spec(self):
        # The programmed network; the builders add the chip (self.mismatch) beside it.
        return onchip_spec(self.state, batch=self.batch, timeout=self.timeout)

    @property
    def window(self) -> int:
        """Time steps per batch while learning: one per synaptic delay plus one (held), or 1 (pipelined,
        plus ``n_layers`` steps per run to drain the pipeline)."""
        return 1 if self.pipelined else self.n_layers + 1

    def _check_inputs(self, x: np.ndarray, y: Optional[np.ndarray] = None) -> tuple:
        """Finite inputs ``(N, n_in)`` and, with ``y``, int labels in ``0..n_classes-1``."""
        x = check_finite_array("inputs", x, (None, self.state.sizes[0]))
        if y is not None:
            y = check_labels("labels", y, len(x), self.state.sizes[-1])
        return x, y

    def _run(self, anchor, steps: int, desc: str, first: int) -> None:
        self.last_chunks = run_in_chunks(anchor, steps, first=first, chunk_steps=self.chunk_steps,
                                         timeout=self.timeout, progress=self.progress, desc=desc)
        self.steps_run += steps

    def train(self, x: np.ndarray, y: np.ndarray, order: np.ndarray) -> int:
        """Learn on chip from batches ``order[k*batch:(k+1)*batch]`` of (x, y), in turn.

        ``len(order)`` must be a multiple of ``batch``. Adam moments start
        from zero (a fresh optimizer, as at a task boundary) and, pipelined,
        the pipeline starts empty. Updates the hidden weights of
        :attr:`state`; returns the number of time steps run: ``n * (L + 1)``
        for ``n`` batches held, ``n + L`` pipelined.
        """
        x, y = self._check_inputs(x, y)
        order = check_batch_order(order, self.batch, len(x))
        from lavaplast.graph.backends.lava import onchip_training_graph

        s, B, L = self.state, self.batch, self.n_layers
        readouts = [SharedArray(w.shape) for w in s.hidden]
        try:
            src = onchip_training_graph(self._spec(), s.feedback, x, y, order, B, readouts, pipelined=self.pipelined,
                                        mismatch=self.mismatch)
            steps = training_steps(len(order) // B, L, self.pipelined)
            # The first chunk (with the start-up) takes the first batch to the output and learns from it.
            self._run(src, steps, "on-chip training", first=L + 1)
            for l, r in enumerate(readouts):
                s.hidden[l] = r.read()
        finally:
            for r in readouts:
                r.close()
        return steps

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Network outputs for ``x`` (N, n_in), computed by an inference graph (pipelined: one batch per step)."""
        x, _ = self._check_inputs(x)
        from lavaplast.graph.backends.lava import pipelined_chain_graph

        s, B, L = self.state, self.batch, self.n_layers
        n_windows = -(-len(x) // B)
        padded = np.zeros((n_windows * B, x.shape[1]))
        padded[: len(x)] = x
        with SharedArray((n_windows, B, s.sizes[-1])) as record:
            src = pipelined_chain_graph(self._spec(), padded, B, record, mismatch=self.mismatch)
            # Batch k leaves the source at step k + 1 and the last neuron L steps later.
            self._run(src, n_windows + L, "on-chip inference", first=L + 1)
            return record.read().reshape(n_windows * B, -1)[: len(x)]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class predictions for ``x`` (N, n_in)."""
        return self.logits(x).argmax(1)
