"""How resistive-memory synapses misread their weights: one definition for every backend.

A binary weight stored in a differential 2T2R cell and read by a precharge
sense amplifier comes back with its sign flipped with probability ``ber``
(the bit error rate). Read in the ternary regime, the same cell also stores
0, and the errors take a particular structure (Laborieux et al., TCAS-I
2021): with ``p0`` the fraction of zero weights,

- a 0 is read as +1 or -1 (equally likely) with probability ``2 ber / (1 + p0)``,
- a +-1 is read as 0 with probability ``ber / (1 + p0)``,
- a +-1 is never read as -+1,

so that the mean error rate over the weights is exactly ``ber``:
``p0 * 2 ber / (1 + p0) + (1 - p0) * ber / (1 + p0) = ber``.

Faults are *transient* (drawn afresh at every read) or *frozen* (drawn once
per chip: the same devices fail at every read). :class:`DeviceFaults` does
both from a seed, so that a Lava model and its twin given the same seed see
the same faults. Conductance variability multiplies each weight by a
frozen ``1 + sigma * N(0, 1)`` per device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from lavaplast.core.quantize import ternary_matmul
from lavaplast.core.validate import check_choice, check_finite_array, check_int, check_number

FAULT_KINDS = ("binary", "ternary")


def check_ber(ber) -> float:
    """A bit error rate: a finite number in [0, 0.5] (beyond 0.5 a flip is more likely than a correct read)."""
    return check_number("ber", ber, low=0.0, high=0.5)


def _check_weights(w, kind: str) -> np.ndarray:
    w = check_finite_array("weights", w)
    allowed = (-1.0, 1.0) if kind == "binary" else (-1.0, 0.0, 1.0)
    if not np.isin(w, allowed).all():
        names = ", ".join("0" if a == 0 else f"{a:+g}" for a in allowed)
        raise ValueError(f"{kind} device reads take weights in {{{names}}}; "
                         f"got other values, e.g. {w[~np.isin(w, allowed)].ravel()[0]!r}")
    return w


def ternary_error_rates(ber: float, p0: float) -> tuple[float, float]:
    """``(P(0 -> +-1), P(+-1 -> 0))`` of the ternary 2T2R read for ``p0`` zero weights."""
    ber = check_ber(ber)
    p0 = check_number("p0", p0, low=0.0, high=1.0)
    return 2 * ber / (1 + p0), ber / (1 + p0)


def apply_read_errors(w, ber: float, kind: str, u: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """The weights ``w`` as read, given uniform draws ``u`` and random ``signs`` (+-1), one per device.

    ``binary``: a weight flips where ``u < ber``. ``ternary``: a 0 becomes
    ``signs`` where ``u < 2 ber / (1 + p0)``, a +-1 becomes 0 where ``u < ber
    / (1 + p0)``, ``p0`` being the fraction of zeros in ``w``. Comparing the
    same ``u`` against the thresholds makes frozen faults monotone: a device
    that fails at one error rate fails at every higher one.
    """
    kind = check_choice("kind", kind, FAULT_KINDS)
    w = _check_weights(w, kind)
    ber = check_ber(ber)
    if kind == "binary":
        return np.where(u < ber, -w, w)
    zero = w == 0
    to_nonzero, to_zero = ternary_error_rates(ber, float(zero.mean()))
    return np.where(zero, np.where(u < to_nonzero, signs, 0.0), np.where(u < to_zero, 0.0, w))


@dataclass
class DeviceFaults:
    """Read faults of an array of synapses of ``shape``: ``kind`` (``binary`` or ``ternary``), ``ber``,
    ``frozen`` (one draw per chip) or transient (a draw per read), and conductance variability ``sigma``
    (frozen per chip), all from ``seed``; ``array`` numbers the arrays of one chip (a network's weight
    layers), so that each layer gets its own faults from the chip's one seed.

    :meth:`read` returns the weights as the sense amplifiers see them. Two
    objects with the same settings, seed and array produce the same sequence
    of reads, whichever backend calls them.
    """

    shape: tuple
    ber: float = 0.0
    kind: str = "binary"
    frozen: bool = False
    sigma: float = 0.0
    seed: int = 0
    array: int = 0
    _rng: np.random.Generator = field(init=False, repr=False)
    _frozen_draws: Optional[tuple] = field(init=False, repr=False, default=None)
    _gain: Optional[np.ndarray] = field(init=False, repr=False, default=None)

    def __post_init__(self):
        self.shape = tuple(check_int("shape", s, 1) for s in np.atleast_1d(self.shape))
        self.ber = check_ber(self.ber)
        self.kind = check_choice("kind", self.kind, FAULT_KINDS)
        if not isinstance(self.frozen, (bool, np.bool_)):
            raise ValueError(f"frozen must be True or False, got {self.frozen!r}")
        self.sigma = check_number("sigma", self.sigma, low=0.0)
        self.seed = check_int("seed", self.seed, 0)
        self.array = check_int("array", self.array, 0)
        self._rng = np.random.default_rng([self.seed, self.array, 0])
        chip = np.random.default_rng([self.seed, self.array, 1])
        if self.frozen:
            self._frozen_draws = self._draw(chip)
        if self.sigma > 0:
            self._gain = 1.0 + self.sigma * chip.standard_normal(self.shape)

    def _draw(self, rng: np.random.Generator) -> tuple:
        return rng.random(self.shape), np.where(rng.random(self.shape) < 0.5, -1.0, 1.0)

    def read(self, w) -> np.ndarray:
        """One read of the quantized weights ``w`` (shape :attr:`shape`)."""
        w = np.asarray(w, dtype=np.float64)
        if w.shape != self.shape:
            raise ValueError(f"weights have shape {w.shape}, the device array {self.shape}")
        u, signs = self._frozen_draws if self.frozen else self._draw(self._rng)
        read = apply_read_errors(w, self.ber, self.kind, u, signs)
        return read * self._gain if self._gain is not None else read

    @property
    def active(self) -> bool:
        """Whether a read can differ from the stored weights."""
        return self.ber > 0 or self.sigma > 0


FAULT_SETTINGS = ("ber", "frozen", "sigma", "seed", "array")


def check_faults(what: str, faults: dict, shape, kind: str) -> dict:
    """``faults`` (settings of :class:`DeviceFaults` without shape and kind) checked by building them once."""
    if not isinstance(faults, dict):
        raise ValueError(f"{what} must be a dict of device fault settings, got {type(faults).__name__}")
    unknown = sorted(set(faults) - set(FAULT_SETTINGS))
    if unknown:
        raise ValueError(f"{what}: unknown settings {unknown}; expected some of {list(FAULT_SETTINGS)}")
    DeviceFaults(tuple(shape), kind=kind, **faults)
    return dict(faults)


def read_sums(x, weights, faults: Optional[DeviceFaults]) -> np.ndarray:
    """``x @ read(weights)^T``: the synaptic sums of one read through ``faults`` (``None``: an ideal read).

    Weights read as {-1, 0, +1} keep the exact sum of
    :func:`~lavaplast.core.quantize.ternary_matmul`; with conductance
    variability they are real numbers and the sum is a plain matrix product.
    """
    if faults is None or not faults.active:
        return ternary_matmul(x, weights)
    read = faults.read(weights)
    if faults.sigma == 0:
        return ternary_matmul(x, read)
    return np.asarray(x, dtype=np.float64) @ read.T
