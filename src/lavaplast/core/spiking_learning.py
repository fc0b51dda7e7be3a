"""Spiking on-chip learning, written once: the schedule, the encoding, the LIF step and the local factors.

A spiking learner is a chain of ``L`` binary-synapse connections, each
feeding a population of LIF neurons; the last population is the output.
Every sample (a batch of ``B`` samples side by side) is presented for a
window of ``T`` time steps, and windows follow each other without a gap:
the network is a pipeline in which a new batch enters while the previous
one is still travelling to the output and learning.

**The schedule** (Lava time steps start at 1; :class:`LearnerSchedule`):

- the source sends input step ``j`` (0..T-1) of batch ``k`` at step
  ``k T + j + 1``;
- connection ``l`` (1-based) receives it ``l - 1`` steps later (one step of
  synaptic delay per connection): its window for batch ``k`` covers steps
  ``k T + l .. k T + l + T - 1``;
- population ``l`` hears batch ``k`` one step after its connection: window
  ``k T + l + 1 .. k T + l + T``; its membrane is reset to 0 at the first
  step of every window, so batches do not leak into each other;
- batch ``k`` *learns* at step ``t_k = k T + L + T``, the step on which the
  output population completes its window: the output error leaves the
  output population and reaches every layer in that same step.

With ``T > L`` every layer still holds the factors of batch ``k`` at
``t_k`` (its own window of batch ``k`` has ended, the next one has not);
:func:`check_window` refuses shorter windows. A run over ``n`` batches takes
``n T + L`` steps. The forward pass of batch ``k + 1`` starts before batch
``k`` has learned: layer ``l`` runs the first ``L - l + 1`` steps of its
window for batch ``k + 1`` on the weights from before batch ``k``'s update.

**The three factors** of the update of connection ``l`` for batch ``k``
(passed to a :mod:`lavaplast.core.rules` rule):

- ``pre`` ``(B, n_in)``: the presynaptic rate, spikes over the window / ``T``;
- ``post`` ``(B, n_out)``: the mean over the window of the surrogate
  derivative of the membrane, ``psi(v) = 1 / (1 + slope |v - threshold|)^2``
  (the fast sigmoid's, on the membrane before its reset), as in e-prop;
- ``third`` ``(B, n_out)``: the output error broadcast to the layer, through
  the fixed random feedback matrix ``F_l`` ``(n_l, n_classes)`` for hidden
  layers (direct feedback alignment: ``e @ F_l^T``), the error itself for
  the output. The output error is ``softmax(gain * counts + bias) - target``
  (``loss="ce"``) or ``gain * counts + bias - target`` (``"mse"``), with
  ``counts`` the output spikes over the window.

The product ``pre_i * post_j`` is a window-averaged form of e-prop's
eligibility trace ``sum_t psi_j(t) x_i(t)``: it needs one trace per neuron
instead of one per synapse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from array_api_compat import array_namespace

from lavaplast.core.local_learning import output_error
from lavaplast.core.validate import check_finite_array, check_int, check_number

ENCODINGS = ("rate", "current")


def check_window(T: int, n_layers: int) -> int:
    """A window of ``T`` steps per sample for a chain of ``n_layers`` connections: ``T > n_layers``."""
    T = check_int("T", T, 1)
    n_layers = check_int("n_layers", n_layers, 1)
    if T <= n_layers:
        raise ValueError(f"T must be > the number of connections ({n_layers}) so that every layer still holds a "
                         f"sample's factors when its error arrives, got T={T}")
    return T


@dataclass(frozen=True)
class LearnerSchedule:
    """When each part of a spiking learner with ``L`` connections and windows of ``T`` steps does what.

    ``layer`` arguments are 1-based (connection ``l`` feeds population ``l``).
    ``n_batches`` (``None``: no end) is the number of batches presented:
    later steps learn nothing.
    """

    T: int
    L: int
    n_batches: Optional[int] = None

    def __post_init__(self):
        check_window(self.T, self.L)
        if self.n_batches is not None:
            check_int("n_batches", self.n_batches, 1)

    def steps(self, n_batches: int) -> int:
        """Time steps to present ``n_batches`` batches and let the last one learn."""
        return n_batches * self.T + self.L

    def learning_batch(self, t: int) -> int:
        """The batch that learns at step ``t``, or -1 if none does."""
        k, r = divmod(t - self.L - self.T, self.T)
        in_run = self.n_batches is None or k < self.n_batches
        return k if r == 0 and k >= 0 and in_run else -1

    def population_phase(self, t: int, layer: int) -> int:
        """Step of population ``layer``'s window at ``t`` (0 = first step: the membrane resets)."""
        return (t - layer - 1) % self.T

    def connection_phase(self, t: int, layer: int) -> int:
        """Step of connection ``layer``'s window at ``t``."""
        return (t - layer) % self.T

    def source_step(self, t: int) -> tuple[int, int]:
        """``(batch, input step)`` the source sends at step ``t``."""
        return divmod(t - 1, self.T)


def window_input(x, T: int, encoding: str, seed: int, batch_index: int):
    """The ``(T, B, n)`` input of one batch ``x`` ``(B, n)`` over its window.

    ``rate``: Bernoulli spikes with probability ``x`` (in [0, 1]) per step,
    drawn from ``numpy.random.default_rng([seed, batch_index])`` so that a
    Lava source and a twin given the same batch index draw the same spikes;
    ``current``: ``x`` itself at every step. Returns float64 numpy.
    """
    x = np.asarray(x, dtype=np.float64)
    if encoding == "current":
        return np.broadcast_to(x, (T,) + x.shape).copy()
    rng = np.random.default_rng([int(seed), int(batch_index)])
    return (rng.random((T,) + x.shape) < x).astype(np.float64)


def lava_decay(beta: float) -> float:
    """The membrane decay Lava's float LIF applies for ``dv = 1 - beta``: ``1 - (1 - beta)`` in float64
    (not always ``beta`` to the last bit; every twin uses this number)."""
    return 1.0 - (1.0 - float(beta))


def lif_step(v, a, decay, threshold):
    """One step of Lava's float LIF with ``du = 1`` and no bias: ``v <- decay * v + a``; spike where
    ``v > threshold``, then ``v = 0`` there.

    ``decay`` is ``1 - dv`` (:func:`lava_decay`). Returns
    ``(v_after_reset, spikes, v_before_reset)``; the inputs are not modified.
    """
    xp = array_namespace(v)
    v = v * decay + a
    spikes = xp.astype(v > threshold, v.dtype)
    return v * (1 - spikes), spikes, v


def surrogate_derivative(v, threshold, slope):
    """The fast sigmoid's derivative at the membrane: ``1 / (1 + slope * |v - threshold|)^2``, in (0, 1]."""
    xp = array_namespace(v)
    d = 1 + slope * xp.abs(v - threshold)
    return 1 / (d * d)


def spike_error(counts, target, gain, bias, loss: str):
    """The output error of a window: ``output_error(gain * counts + bias, target, loss)``, ``(B, n_classes)``."""
    return output_error(counts * gain + bias, target, loss)


def check_learner_neuron(beta, threshold, slope) -> tuple[float, float, float]:
    """``beta`` in [0, 1), ``threshold`` > 0, ``slope`` > 0."""
    return (check_number("beta", beta, low=0.0, high=1.0, high_open=True),
            check_number("threshold", threshold, low=0.0, low_open=True),
            check_number("slope", slope, low=0.0, low_open=True))


def check_rates(what: str, x, n: int) -> np.ndarray:
    """Firing probabilities ``(N, n)``: finite, in [0, 1] (e.g. pixels / 255); float64."""
    x = check_finite_array(what, x, (None, n))
    if not np.all((x >= 0) & (x <= 1)):
        raise ValueError(f"{what} must lie in [0, 1] for rate coding (firing probabilities), got values from "
                         f"{x.min()!r} to {x.max()!r}")
    return x


@dataclass(frozen=True)
class FixedPoint:
    """Hidden weights held in fixed point: ``bits``-bit signed integers with ``frac_bits`` fractional bits.

    A weight lives on the grid ``2^-frac_bits``, saturated to
    ``[-2^(bits-1), 2^(bits-1) - 1] / 2^frac_bits``; every update the rule
    computes (in float, from the weights' real values) is rounded onto the
    grid, stochastically (``stochastic``: up with probability equal to the
    remainder, drawn from ``default_rng([seed, layer])``, so small updates
    survive on average) or to the nearest step. The rule's own state stays
    in float.
    """

    frac_bits: int = 12
    bits: int = 16
    stochastic: bool = True
    seed: int = 0

    def __post_init__(self):
        check_int("bits", self.bits, 2, 32)
        check_int("frac_bits", self.frac_bits, 0, self.bits - 1)
        check_int("seed", self.seed, 0)

    def _limits(self) -> tuple[int, int]:
        return -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1

    def to_grid(self, hidden) -> np.ndarray:
        """Integers ``q`` of the nearest grid point to ``hidden`` (saturated), as int64."""
        lo, hi = self._limits()
        return np.clip(np.rint(np.asarray(hidden, dtype=np.float64) * 2.0 ** self.frac_bits), lo, hi).astype(np.int64)

    def value(self, q) -> np.ndarray:
        """The real values of grid integers ``q``."""
        return np.asarray(q, dtype=np.float64) / 2.0 ** self.frac_bits

    def rng(self, layer: int) -> np.random.Generator:
        """The rounding generator of connection ``layer`` (1-based)."""
        return np.random.default_rng([self.seed, int(layer)])

    def step(self, q: np.ndarray, update, rng: np.random.Generator) -> np.ndarray:
        """``q`` moved by ``update`` (real-valued), rounded onto the grid and saturated; returns new integers."""
        scaled = np.asarray(update, dtype=np.float64) * 2.0 ** self.frac_bits
        low = np.floor(scaled)
        steps = low + (rng.random(scaled.shape) < scaled - low) if self.stochastic else np.rint(scaled)
        lo, hi = self._limits()
        return np.clip(q + steps.astype(np.int64), lo, hi)
