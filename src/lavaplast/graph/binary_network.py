"""A multi-layer binary network that learns on chip, as a Lava process graph.

Training graph (one per call to :meth:`LavaBinaryMLP.train`)::

    BatchSource --s_out--> BinaryDense_1 --> SignNeuron_1 --> BinaryDense_2 --> ... --> ErrorNeuron
         \\--target_out-------------------------------------------------------------------^   |
    every SignNeuron_l gets ErrorNeuron.err_out on fb_in (fixed random feedback)  <-----------/
    and returns its local error to BinaryDense_l.err_in; BinaryDense_L gets err_out directly.

Each batch is held for ``L + 1`` steps (``L`` weight layers, one step of
synaptic delay each); at the last step of the window every layer holds the
batch's input and error together and learns (``lrn`` phase of that step
only). Targets and errors travel only on that step. Hidden weights and Adam moments stay in the processes for the whole
call and come back in bulk through shared memory.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from lavaplast.core import check_finite_array, check_int, check_labels, check_positive
from lavaplast.proc import (
    BatchSink,
    BatchSource,
    BinaryDense,
    ErrorNeuron,
    LavaSession,
    SharedArray,
    SignNeuron,
    sim_config,
)
from lavaplast.reference.local_bnn import LocalMLPState


class LavaBinaryMLP:
    """Runs a :class:`~lavaplast.reference.local_bnn.LocalMLPState` on Lava's CPU simulator.

    ``batch`` samples travel together through every process (a batch
    dimension inside the processes). ``timeout`` bounds each run of
    ``chunk_steps`` steps; the runtime is stopped on every exit path.
    """

    def __init__(self, state: LocalMLPState, *, batch: int = 100, timeout: float = 600.0,
                 chunk_steps: int = 2000, progress: bool = False):
        if not isinstance(state, LocalMLPState):
            raise ValueError(f"state must be a LocalMLPState, got {type(state).__name__}")
        self.state = state
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
    def window(self) -> int:
        """Time steps per batch while learning: one per synaptic delay, plus one."""
        return self.n_layers + 1

    def _check_inputs(self, x: np.ndarray, y: Optional[np.ndarray] = None) -> tuple:
        """Finite inputs ``(N, n_in)`` and, with ``y``, int labels in ``0..n_classes-1``."""
        x = check_finite_array("inputs", x, (None, self.state.sizes[0]))
        if y is not None:
            y = check_labels("labels", y, len(x), self.state.sizes[-1])
        return x, y

    def _run(self, anchor, steps: int, desc: str, first: int) -> None:
        # The first chunk (one batch) also compiles and starts the graph; the
        # others measure the simulator alone.
        first = min(first, steps)
        rest = steps - first
        chunks = [first] + [self.chunk_steps] * (rest // self.chunk_steps)
        if rest % self.chunk_steps:
            chunks.append(rest % self.chunk_steps)
        bar = None
        if self.progress:
            from lavaplast.progress import tqdm_class

            bar = tqdm_class()(total=steps, desc=desc, unit="step", leave=False)
        try:
            self.last_chunks = []
            with LavaSession(anchor, sim_config(), timeout=self.timeout) as session:
                for n in chunks:
                    t0 = time.perf_counter()
                    session.run(n)
                    self.last_chunks.append((n, time.perf_counter() - t0))
                    if bar is not None:
                        bar.update(n)
        finally:
            if bar is not None:
                bar.close()
        self.steps_run += steps

    def train(self, x: np.ndarray, y: np.ndarray, order: np.ndarray) -> int:
        """Learn on chip from batches ``order[k*batch:(k+1)*batch]`` of (x, y), in turn.

        ``len(order)`` must be a multiple of ``batch``. Adam moments start
        from zero (a fresh optimizer, as at a task boundary). Updates the
        hidden weights of :attr:`state`; returns the number of time steps run.
        """
        x, y = self._check_inputs(x, y)
        order = np.asarray(order, dtype=np.int64)
        if order.ndim != 1 or len(order) == 0 or len(order) % self.batch:
            raise ValueError(f"order must be a non-empty 1-D index array whose length is a multiple of "
                             f"batch={self.batch}, got length {len(order)}")
        s, B, K, L = self.state, self.batch, self.window, self.n_layers
        n_classes = s.sizes[-1]
        readouts = [SharedArray(w.shape) for w in s.hidden]
        try:
            src = BatchSource(data=x, labels=y, n_classes=n_classes, batch=B, hold=K, order=order)
            schedule = dict(learn_every=K, learn_offset=0)
            out = ErrorNeuron(shape=(B, n_classes), gain=s.gain[-1], bias=s.bias[-1], loss=s.loss, **schedule)
            src.target_out.connect(out.target_in)
            prev = src.s_out
            for l in range(L):
                dense = BinaryDense(hidden_weights=s.hidden[l], batch=B, learning="local", meta=s.meta[l],
                                    lr=s.lr, betas=s.betas, eps=s.eps, weight_decay=s.weight_decay,
                                    readout=readouts[l].spec, **schedule)
                prev.connect(dense.s_in)
                if l < L - 1:
                    neuron = SignNeuron(shape=(B, s.sizes[l + 1]), gain=s.gain[l], bias=s.bias[l],
                                        feedback=s.feedback[l], **schedule)
                    dense.a_out.connect(neuron.a_in)
                    neuron.err_out.connect(dense.err_in)
                    out.err_out.connect(neuron.fb_in)
                    prev = neuron.s_out
                else:
                    dense.a_out.connect(out.a_in)
                    out.err_out.connect(dense.err_in)
            steps = len(order) // B * K
            self._run(src, steps, "on-chip training", first=K)
            for l, r in enumerate(readouts):
                s.hidden[l] = r.read()
        finally:
            for r in readouts:
                r.close()
        return steps

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Network outputs for ``x`` (N, n_in), computed by an inference graph (pipelined: one batch per step)."""
        x, _ = self._check_inputs(x)
        s, B, L = self.state, self.batch, self.n_layers
        n_windows = -(-len(x) // B)
        padded = np.zeros((n_windows * B, x.shape[1]))
        padded[: len(x)] = x
        with SharedArray((n_windows, B, s.sizes[-1])) as record:
            src = BatchSource(data=padded, batch=B, hold=1)
            prev = src.s_out
            for l in range(L):
                dense = BinaryDense(hidden_weights=s.hidden[l], batch=B)
                neuron = SignNeuron(shape=(B, s.sizes[l + 1]), gain=s.gain[l], bias=s.bias[l],
                                    mode="sign" if l < L - 1 else "identity")
                prev.connect(dense.s_in)
                dense.a_out.connect(neuron.a_in)
                prev = neuron.s_out
            # Batch k leaves the source at step k + 1 and the last neuron L steps later.
            sink = BatchSink(shape=(B, s.sizes[-1]), record=record.spec, offset=L + 1)
            prev.connect(sink.a_in)
            self._run(src, n_windows + L, "on-chip inference", first=L + 1)
            return record.read().reshape(n_windows * B, -1)[: len(x)]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class predictions for ``x`` (N, n_in)."""
        return self.logits(x).argmax(1)
