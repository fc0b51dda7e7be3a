"""The spiking learner's state and its snnTorch twin.

:class:`SpikingLearnerState` holds everything that defines a spiking
learner (a chain of binary-synapse connections into LIF populations that
learns on chip with a local three-factor rule, see
:mod:`lavaplast.core.spiking_learning`); :class:`SpikingLearnerTwin` runs it
step by step in torch with stock ``snn.Leaky`` neurons, the pipelined
schedule of the Lava graph and the same rule of :mod:`lavaplast.core.rules`
on torch tensors, so that it equals
:class:`~lavaplast.graph.spiking_learner.LavaSpikingLearner` update for
update.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import snntorch as snn
import torch

from lavaplast.core import (
    LOSSES,
    apply_rule,
    binarize,
    check_batch_order,
    check_choice,
    check_finite_array,
    check_int,
    check_labels,
    check_number,
    check_positive,
    check_sizes,
    get_rule,
    per_layer,
    ternarize,
    ternary_matmul,
)
from lavaplast.core.spiking_learning import (
    ENCODINGS,
    FixedPoint,
    LearnerSchedule,
    check_rates,
    check_window,
    spike_error,
    surrogate_derivative,
    window_input,
)
from lavaplast.reference.spiking import lava_decay

QUANTIZERS = ("binary", "ternary")


def _beta(what: str, value) -> float:
    return check_number(what, value, low=0.0, high=1.0, high_open=True)


def _positive(what: str, value) -> float:
    return check_number(what, value, low=0.0, low_open=True)


@dataclass
class SpikingLearnerState:
    """Everything that defines a spiking learner, as numpy arrays and numbers (backend-free).

    ``hidden[l]`` ``(n_{l+1}, n_l)`` are the hidden weights of connection
    ``l`` (synapses ``q(W_h)``, ``q`` = ``quantizer``), ``feedback[l]``
    ``(n_{l+1}, n_classes)`` the fixed feedback matrix of hidden population
    ``l`` (one fewer than connections). ``T`` steps per sample; per
    population ``beta`` (decay per step, [0, 1)), ``threshold`` (> 0) and
    ``slope`` (> 0, of the surrogate derivative); ``rule`` a registered
    :mod:`lavaplast.core.rules` name with ``params`` (one dict, or one per
    connection); the output error from ``gain * counts + bias`` and
    ``loss``; the input coded as ``encoding`` (``rate``: Bernoulli spikes,
    pixel values in [0, 1]; ``current``) with ``seed``; with ``fixed_point``
    (a :class:`~lavaplast.core.spiking_learning.FixedPoint`) the hidden
    weights live on its grid (Lava's ``fixed_pt`` models). Validated on
    construction (one value of a per-layer setting is broadcast).
    """

    hidden: list
    feedback: list
    T: int = 25
    beta: list = 0.9
    threshold: list = 1.0
    slope: list = 1.0
    rule: str = "metaplastic"
    params: list = field(default_factory=dict)
    gain: float = 1.0
    bias: float = 0.0
    loss: str = "ce"
    encoding: str = "rate"
    seed: int = 0
    quantizer: str = "binary"
    ternary_threshold: float = 0.05
    fixed_point: Optional[FixedPoint] = None

    def __post_init__(self):
        if not isinstance(self.hidden, (list, tuple)) or len(self.hidden) == 0:
            raise ValueError("hidden must be a non-empty list of (n_out, n_in) hidden-weight matrices")
        self.hidden = [check_finite_array(f"hidden[{l}]", w).copy() for l, w in enumerate(self.hidden)]
        for l, w in enumerate(self.hidden):
            if w.ndim != 2 or 0 in w.shape:
                raise ValueError(f"hidden[{l}] must be a non-empty 2-D array (n_out, n_in), got shape {w.shape}")
            if l and w.shape[1] != self.hidden[l - 1].shape[0]:
                raise ValueError(f"hidden[{l}] has {w.shape[1]} inputs but layer {l - 1} has "
                                 f"{self.hidden[l - 1].shape[0]} outputs")
        L, sizes = self.n_layers, self.sizes
        if not isinstance(self.feedback, (list, tuple)) or len(self.feedback) != L - 1:
            raise ValueError(f"feedback must hold one matrix per hidden population ({L - 1})")
        self.feedback = [check_finite_array(f"feedback[{l}]", f, (sizes[l + 1], sizes[-1])).copy()
                         for l, f in enumerate(self.feedback)]
        self.T = check_window(self.T, L)
        self.beta = per_layer("beta", self.beta, L, _beta)
        self.threshold = per_layer("threshold", self.threshold, L, _positive)
        self.slope = per_layer("slope", self.slope, L, _positive)
        rule = get_rule(self.rule)
        self.rule = rule.name
        params = self.params if isinstance(self.params, (list, tuple)) else [self.params] * L
        if len(params) != L:
            raise ValueError(f"params must be one dict or one per connection ({L}), got {len(params)}")
        self.params = [dict(rule.check_params(p)) for p in params]
        self.gain = check_number("gain", self.gain)
        self.bias = check_number("bias", self.bias)
        self.loss = check_choice("loss", self.loss, LOSSES)
        self.encoding = check_choice("encoding", self.encoding, ENCODINGS)
        self.seed = check_int("seed", self.seed, 0)
        self.quantizer = check_choice("quantizer", self.quantizer, QUANTIZERS)
        self.ternary_threshold = check_number("ternary_threshold", self.ternary_threshold, low=0.0)
        if self.fixed_point is not None and not isinstance(self.fixed_point, FixedPoint):
            raise ValueError(f"fixed_point must be a FixedPoint or None, got {type(self.fixed_point).__name__}")

    @property
    def n_layers(self) -> int:
        return len(self.hidden)

    @property
    def sizes(self) -> list[int]:
        return [self.hidden[0].shape[1]] + [w.shape[0] for w in self.hidden]

    def copy(self) -> "SpikingLearnerState":
        return copy.deepcopy(self)

    def synapses(self, hidden: np.ndarray) -> np.ndarray:
        """The synaptic weights of the hidden weights ``hidden``, by the state's quantizer."""
        return binarize(hidden) if self.quantizer == "binary" else ternarize(hidden, self.ternary_threshold)

    def check_inputs(self, x, y=None) -> tuple:
        """Finite inputs ``(N, n_in)`` (in [0, 1] for rate coding) and, with ``y``, int labels."""
        if self.encoding == "rate":
            x = check_rates("inputs", x, self.sizes[0])
        else:
            x = check_finite_array("inputs", x, (None, self.sizes[0]))
        if y is not None:
            y = check_labels("labels", y, len(x), self.sizes[-1])
        return x, y


def init_spiking_learner(sizes: Sequence[int], *, T: int = 25, beta=0.9, threshold=None, slope=None,
                         rule: str = "metaplastic", params=None, gain: float = 0.5, loss: str = "ce",
                         encoding: str = "rate", seed: int = 0, init_scale: float = 0.05,
                         quantizer: str = "binary") -> SpikingLearnerState:
    """A fresh spiking learner: hidden weights U(-init_scale, init_scale), +-1 feedback (drawn with ``seed``).

    ``threshold`` defaults to ``sqrt(fan_in) / 2`` per population, so that
    a binary layer's summed input (of order ``sqrt(fan_in)`` for random
    signs) drives it; ``slope`` of the surrogate to ``1 / threshold``.
    """
    sizes = check_sizes("sizes", sizes)
    init_scale = check_positive("init_scale", init_scale)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    pairs = list(zip(sizes[:-1], sizes[1:]))
    hidden = [rng.uniform(-init_scale, init_scale, size=(o, i)) for i, o in pairs]
    feedback = [rng.choice([-1.0, 1.0], size=(o, sizes[-1])) for _, o in pairs[:-1]]
    if threshold is None:
        threshold = [float(np.sqrt(i)) / 2 for i, _ in pairs]
    L = len(pairs)
    if slope is None:
        slope = [1.0 / th for th in per_layer("threshold", threshold, L, _positive)]
    return SpikingLearnerState(hidden, feedback, T=T, beta=beta, threshold=threshold, slope=slope, rule=rule,
                               params={} if params is None else params, gain=gain, loss=loss, encoding=encoding,
                               seed=seed, quantizer=quantizer)


class SpikingLearnerTwin:
    """Runs a :class:`SpikingLearnerState` in torch (float64), step by step, as the Lava graph does.

    Each population is a stock ``snn.Leaky`` (``beta`` = Lava's decay, zero
    reset, membrane set to 0 at the start of its window); each connection
    sums its input exactly (:func:`lavaplast.core.ternary_matmul`) and sends
    the sum one step later; on batch ``k``'s learning step every connection
    moves its hidden weights by the state's rule on torch tensors. A call to
    :meth:`run` with ``learn=True`` starts the rule's state afresh (as a new
    Lava graph does) and updates :attr:`state`'s hidden weights.
    """

    def __init__(self, state: SpikingLearnerState):
        if not isinstance(state, SpikingLearnerState):
            raise ValueError(f"state must be a SpikingLearnerState, got {type(state).__name__}")
        self.state = state
        s = state
        self.neurons = [snn.Leaky(beta=torch.tensor(lava_decay(b), dtype=torch.float64),
                                  threshold=torch.tensor(th, dtype=torch.float64), reset_mechanism="zero")
                        for b, th in zip(s.beta, s.threshold)]

    def run(self, x, y=None, order=None, *, batch: int = 1, learn: bool = True) -> np.ndarray:
        """Present batches ``order[k*batch:(k+1)*batch]`` of ``x`` in turn (learning from ``y`` if ``learn``).

        Returns the output spike counts of every batch's window, ``(len(order), n_out)``.
        """
        s = self.state
        x, y = s.check_inputs(x, y)
        if learn and y is None:
            raise ValueError("learning needs labels y")
        B = check_int("batch", batch, 1)
        order = check_batch_order(order, B, len(x))
        n_batches, L, T = len(order) // B, s.n_layers, s.T
        sched = LearnerSchedule(T=T, L=L, n_batches=n_batches)
        sizes = s.sizes
        f64 = dict(dtype=torch.float64)
        fp = s.fixed_point
        grid = [fp.to_grid(w) for w in s.hidden] if fp is not None else None
        hidden = [torch.from_numpy(fp.value(q) if fp is not None else w.copy()) for q, w in
                  zip(grid or s.hidden, s.hidden)]
        rngs = [fp.rng(l + 1) for l in range(L)] if fp is not None else None
        weights = [s.synapses(h.numpy()) for h in hidden]
        rule = get_rule(s.rule)
        rule_state = [rule.init_state(h) for h in hidden]
        feedback = [torch.from_numpy(f) for f in s.feedback]
        mem = [torch.zeros((B, n), **f64) for n in sizes[1:]]
        psi = [torch.zeros((B, n), **f64) for n in sizes[1:]]
        counts = [torch.zeros((B, n), **f64) for n in sizes[1:]]
        post = [torch.zeros((B, n), **f64) for n in sizes[1:]]
        last_counts = torch.zeros((B, sizes[-1]), **f64)
        pre_sum = [torch.zeros((B, n), **f64) for n in sizes[:-1]]
        pre = [torch.zeros((B, n), **f64) for n in sizes[:-1]]
        a_buff = [torch.zeros((B, n), **f64) for n in sizes[1:]]
        out_counts = np.zeros((n_batches, B, sizes[-1]))
        window = None
        eye = torch.eye(sizes[-1], **f64)
        with torch.no_grad():
            for t in range(1, sched.steps(n_batches) + 1):
                k, j = sched.source_step(t)
                if j == 0:
                    rows = x[order[k * B:(k + 1) * B]] if k < n_batches else np.zeros((B, sizes[0]))
                    window = window_input(rows, T, s.encoding, s.seed, k) if k < n_batches else np.zeros((T,) + rows.shape)
                spikes = [torch.from_numpy(window[j])]
                # Populations hear what their connection summed last step.
                for l in range(L):
                    if sched.population_phase(t, l + 1) == 0:
                        mem[l] = torch.zeros_like(mem[l])
                        psi[l].zero_()
                        counts[l].zero_()
                    spk, mem[l] = self.neurons[l](a_buff[l], mem[l])
                    psi[l] += surrogate_derivative(mem[l], s.threshold[l], s.slope[l])
                    counts[l] += spk
                    if sched.population_phase(t, l + 1) == T - 1:
                        post[l] = psi[l] / T
                        if l == L - 1:
                            last_counts = counts[l].clone()
                    spikes.append(spk)
                # Connections sum this step's spikes of the population below, with the weights before this step's update.
                for l in range(L):
                    inp = spikes[l]
                    if sched.connection_phase(t, l + 1) == 0:
                        pre_sum[l] = torch.zeros_like(pre_sum[l])
                    pre_sum[l] += inp
                    if sched.connection_phase(t, l + 1) == T - 1:
                        pre[l] = pre_sum[l] / T
                    a_buff[l] = torch.from_numpy(ternary_matmul(inp.numpy(), weights[l]))
                k_learn = sched.learning_batch(t)
                if k_learn < 0:
                    continue
                out_counts[k_learn] = last_counts.numpy()
                if not learn:
                    continue
                target = eye[torch.from_numpy(y[order[k_learn * B:(k_learn + 1) * B]])]
                err = spike_error(last_counts, target, s.gain, s.bias, s.loss)
                for l in range(L):
                    third = err if l == L - 1 else err @ feedback[l].T
                    new = apply_rule(rule, pre[l], post[l], third, hidden[l], rule_state[l], s.params[l])
                    if fp is not None:  # the update rounded onto the grid, as the fixed_pt model does
                        grid[l] = fp.step(grid[l], (new - hidden[l]).numpy(), rngs[l])
                        new = torch.from_numpy(fp.value(grid[l]))
                    hidden[l] = new
                    weights[l] = s.synapses(new.numpy())
        if learn:
            s.hidden = [h.numpy().copy() for h in hidden]
        return out_counts.reshape(n_batches * B, -1)

    def train(self, x, y, order=None, *, batch: int = 1) -> np.ndarray:
        """Learn from ``(x, y)`` in the sequence ``order`` (default: as given); returns the output counts
        seen while learning."""
        return self.run(x, y, order, batch=batch, learn=True)

    def counts(self, x, *, batch: int = 1) -> np.ndarray:
        """Output spike counts of every sample of ``x`` (no learning); ``len(x)`` is padded to whole batches."""
        s = self.state
        x, _ = s.check_inputs(x)
        n = len(x)
        padded = np.zeros((-(-n // batch) * batch, x.shape[1]))
        padded[:n] = x
        return self.run(padded, batch=batch, learn=False)[:n]

    def predict(self, x, *, batch: int = 1) -> np.ndarray:
        """Class predictions: the output neuron with the most spikes (the first of equals)."""
        return self.counts(x, batch=batch).argmax(1)
