"""Event-driven equilibrium propagation as a Lava process graph.

::

    BatchSource(once) --> EPSynapse_1 <==> EPNeuron_1 <==> EPSynapse_2 <==> ... <==> EPNeuron_N (output)
                 \\--target------------------------------------------------------------^

``<==>``: the neuron's events go to the synapses below (``post_in``) and
above (``pre_in``); each synapse sends ``W pre`` up and ``W^T post`` down into
the neurons' ``a_in``. Every batch runs the schedule of
:func:`lavaplast.core.ep_phase`; at the window's end synapses and neurons
update their weights and biases from the contrast of what they saw.

:class:`LavaEPNetwork` is a thin layer over the graph specification: it
describes its network as a :class:`~lavaplast.graph.spec.GraphSpec`
(:func:`ep_spec`) and runs the graph that
:func:`lavaplast.graph.backends.lava.ep_graph` builds from it, the builder
that also runs EP graph files.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from lavaplast.core import (
    ACTIVATIONS,
    check_batch_order,
    check_finite_array,
    check_int,
    check_labels,
    check_nonnegative,
    check_positive,
    ep_window,
)
from lavaplast.proc import LavaSession, SharedArray, sim_config


GRAPH_NUDGING = ("symmetric", "one-sided")


def check_runnable(net) -> None:
    """Refuse an EP network whose settings the event-driven graph does not run.

    The graph implements the MSE loss on the top layer, the nudging schemes
    of :data:`GRAPH_NUDGING` and the activations of
    :data:`lavaplast.core.ACTIVATIONS`; anything else would train a
    different network than ``net`` and write its weights back into ``net``.
    """
    from lavaplast.reference.ep import EPNetwork

    if not isinstance(net, EPNetwork):
        raise ValueError(f"net must be an EPNetwork or BinaryEPNetwork, got {type(net).__name__}")
    if net.device.type != "cpu":
        raise ValueError(f"the event-driven network runs on Lava's CPU simulator and reads its weights from a "
                         f"network on the CPU, got one on {net.device}; build the EPNetwork with device='cpu'")
    if net.loss_name != "mse":
        raise ValueError(f"the event-driven network supports the MSE output (loss='mse') only, "
                         f"got loss={net.loss_name!r}")
    if net.nudging not in GRAPH_NUDGING:
        raise ValueError(f"the event-driven network supports nudging {' or '.join(map(repr, GRAPH_NUDGING))}, "
                         f"got nudging={net.nudging!r}")
    if net.activation_name not in ACTIVATIONS:
        raise ValueError(f"the event-driven network supports activation {', '.join(map(repr, ACTIVATIONS))}, "
                         f"got activation={net.activation_name!r}")


def ep_spec(net, *, threshold: float = 0.0, batch: int = 32, timeout: float = 600.0, name: str = "ep"):
    """The :class:`~lavaplast.graph.spec.GraphSpec` of an EP network: ``ep`` populations (biases,
    activation, event ``threshold``), its weights held in memory (binary synapses for a
    :class:`~lavaplast.reference.ep.BinaryEPNetwork`, full-precision ones otherwise), rule ``ep`` with
    the network's rates, and its phases as ``[equilibrium]``. The input is external."""
    from lavaplast.graph.spec import (
        Connection,
        EquilibriumSpec,
        GraphSpec,
        InputSpec,
        LearningSpec,
        Population,
        ReadoutSpec,
        RunSpec,
        WeightsSpec,
        validate,
    )

    check_runnable(net)
    binary = net.is_binary
    L = len(net.weights)
    names = [f"layer{n + 1}" for n in range(L - 1)] + ["output"]
    pops = tuple(Population(name=names[n], size=net.sizes[n + 1], neuron="ep",
                            params=dict(bias=net.biases[n].double().tolist(), activation=net.activation_name,
                                        threshold=float(threshold)))
                 for n in range(L))
    conns = []
    for n in range(L):
        values = (net.hidden[n] if binary else net.weights[n]).double().numpy()
        rule = LearningSpec(rule="ep", lr=float(net.lrs[n]), meta=float(net.meta[n]) if binary else 0.0,
                            hidden_lr=float(net.lr) if binary else LearningSpec.hidden_lr)
        conns.append(Connection(pre=(["input"] + names)[n], post=names[n], quantizer="binary" if binary else "none",
                                weights=WeightsSpec.from_array(values), learning=rule))
    spec = GraphSpec(name=name, input=InputSpec(size=net.sizes[0], source="external"), populations=pops,
                     connections=tuple(conns), readout=ReadoutSpec(population="output", kind="ep_state"),
                     run=RunSpec(batch=batch, learning=True, seed=net.seed, timeout=timeout),
                     equilibrium=EquilibriumSpec(T1=net.T1, T2=net.T2, beta=net.beta, nudging=net.nudging),
                     description="An event-driven EP network (LavaEPNetwork).")
    return validate(spec)


class LavaEPNetwork:
    """Runs the parameters of a :class:`lavaplast.reference.ep.EPNetwork` on Lava.

    ``net`` provides sizes, weights, biases, ``T1``, ``T2``, ``beta``,
    ``nudging``, the activation and per-layer ``lrs``; training writes the
    learned weights and biases back into it (through its public
    ``set_parameters`` / ``set_hidden``). The graph runs the MSE loss,
    ``"symmetric"`` or ``"one-sided"`` nudging and any activation of
    :data:`lavaplast.core.ACTIVATIONS`; a network with other settings is
    refused, never run as something else. A
    :class:`~lavaplast.reference.ep.BinaryEPNetwork` runs with binary
    synapses whose hidden weights learn by the metaplastic rule (its ``lr``,
    ``meta``), each call starting from fresh Adam moments (a task boundary). ``threshold`` is the
    sigma-delta event threshold (0: every change is an event). After each
    call, :attr:`events` holds the events (non-zero messages) each neuron
    layer sent and :attr:`steps` the time steps run.

    A network on a mismatched chip (``net.mismatch``, a
    :class:`~lavaplast.core.mismatch.ChipMismatch`) runs on that chip: every
    ``EPNeuron`` gets its gains and offsets, every ``EPSynapse`` its
    conductance factors, and training writes back the programmed weights.
    The graph specification (:attr:`spec`) describes the programmed network
    only; the mismatch travels beside it.
    """

    def __init__(self, net, *, batch: int = 32, threshold: float = 0.0, timeout: float = 600.0):
        check_runnable(net)
        self.net = net
        self.batch = check_int("batch", batch, 1)
        self.threshold = check_nonnegative("threshold", threshold)
        self.timeout = check_positive("timeout", timeout)
        self.events: list[int] = []
        self.steps = 0
        self.seconds = 0.0

    @property
    def binary(self) -> bool:
        """True for a BinaryEPNetwork: metaplastic binary synapses."""
        return self.net.is_binary

    def _check(self, x, y=None):
        """Finite inputs, flattened to ``(N, n_in)``, and int labels in ``0..n_out-1``."""
        x = np.asarray(x, dtype=float)
        x = check_finite_array("inputs", x.reshape(len(x), -1) if x.ndim > 2 else x, (None, self.net.sizes[0]))
        if y is not None:
            y = check_labels("labels", y, len(x), self.net.sizes[-1])
        return x, y

    @property
    def spec(self):
        """The graph specification of :attr:`net` as it is now (see :func:`ep_spec`)."""
        return ep_spec(self.net, threshold=self.threshold, batch=self.batch, timeout=self.timeout)

    def _build(self, x, y, order, T2, nudging, learn, record):
        from lavaplast.graph.backends.lava import ep_graph
        from lavaplast.graph.spec import EquilibriumSpec

        net = self.net
        spec = self.spec
        if (T2, nudging) != (net.T2, net.nudging):
            spec = spec.replace(equilibrium=EquilibriumSpec(T1=net.T1, T2=T2, beta=net.beta, nudging=nudging))
        w_out = [SharedArray(w.shape) for w in net.weights] if learn else []
        b_out = [SharedArray(b.shape) for b in net.biases] if learn else []
        src, neurons = ep_graph(spec, x, y, order, self.batch, learn=learn, record=record, weight_readouts=w_out,
                                bias_readouts=b_out, mismatch=net.mismatch)
        return src, neurons, w_out, b_out

    def _run(self, src, neurons, steps):
        t0 = time.perf_counter()
        with LavaSession(src, sim_config(), timeout=self.timeout) as session:
            session.run(steps)
            self.events = [int(n.events.get()[0]) for n in neurons]  # one element each
        self.seconds = time.perf_counter() - t0
        self.steps = steps

    def train(self, x, y, order) -> None:
        """EP training on chip, batch by batch (``order``: a multiple of ``batch`` indices)."""
        x, y = self._check(x, y)
        order = check_batch_order(order, self.batch, len(x))
        net = self.net
        src, neurons, w_out, b_out = self._build(x, y, order, net.T2, net.nudging, True, None)
        try:
            self._run(src, neurons, len(order) // self.batch * ep_window(net.T1, net.T2, net.nudging))
            weights = [r.read() for r in w_out]
            biases = [r.read() for r in b_out]
            if self.binary:
                net.set_hidden(weights)
                net.set_parameters(net.weights, biases)
            else:
                net.set_parameters(weights, biases)
        finally:
            for r in (*w_out, *b_out):
                r.close()

    def free_states(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Output trajectory over the free phase, as a reader of the events reconstructs it.

        Returns ``(trajectory (T1 + 1, N, n_out), final (N, n_out))``: row ``t``
        is the state after ``t`` rate-based steps.
        """
        x, _ = self._check(x)
        B, T1 = self.batch, self.net.T1
        n_windows = -(-len(x) // B)
        padded = np.zeros((n_windows * B, x.shape[1]))
        padded[: len(x)] = x
        window = ep_window(T1, 1, "one-sided")
        steps = n_windows * window
        with SharedArray((steps, B, self.net.sizes[-1])) as record:
            src, neurons, _, _ = self._build(padded, np.zeros(len(padded), dtype=int), None, 1, "one-sided",
                                             False, record)
            self._run(src, neurons, steps)
            events = record.read().reshape(n_windows, window, B, -1)
        # cumulative events within each window; window step k holds rate step k - 1
        states = np.cumsum(events, axis=1)[:, : T1 + 1]
        traj = states.transpose(1, 0, 2, 3).reshape(T1 + 1, n_windows * B, -1)[:, : len(x)]
        return traj, traj[-1]

    def predict(self, x) -> np.ndarray:
        """Class predictions from the free equilibrium."""
        return self.free_states(x)[1].argmax(1)

    def events_per_sample(self, n_samples: int) -> float:
        """Events sent per sample in the last call."""
        return sum(self.events) / max(n_samples, 1)

    def dense_messages_per_sample(self, steps_per_sample: Optional[int] = None) -> int:
        """What a dense rate-based network sends per sample over the same steps: every state, every step."""
        steps = steps_per_sample if steps_per_sample is not None else ep_window(self.net.T1, self.net.T2,
                                                                                self.net.nudging)
        return sum(self.net.sizes[1:]) * steps
