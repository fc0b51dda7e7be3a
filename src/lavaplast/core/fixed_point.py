"""Fixed-point helpers for Loihi-like integer learning state.

Hidden weights are signed integers with ``frac_bits`` fractional bits,
saturating at ``bits`` bits; the metaplastic factor ``f_meta`` comes from a
lookup table indexed by the weight magnitude, as a learning engine without
transcendental functions would do it.
"""

from __future__ import annotations

import numpy as np

from lavaplast.core.metaplastic import check_meta, f_meta


def to_fixed(x, frac_bits: int, bits: int) -> np.ndarray:
    """Round ``x`` to integers with ``frac_bits`` fractional bits, saturated to ``bits`` signed bits."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return np.clip(np.rint(np.asarray(x, dtype=float) * 2.0**frac_bits), lo, hi).astype(np.int64)


def from_fixed(q, frac_bits: int) -> np.ndarray:
    """The real values of fixed-point integers ``q``."""
    return np.asarray(q, dtype=float) / 2.0**frac_bits


def f_meta_lut(meta: float, frac_bits: int, bits: int, index_shift: int, lut_bits: int = 8) -> np.ndarray:
    """Table of ``f_meta(meta, |w|)`` in ``lut_bits``-bit fixed point, one entry per
    ``2**index_shift`` integer steps of ``|w|`` (evaluated at the bin's centre)."""
    meta = check_meta(meta)
    n = 2 ** (bits - 1 - index_shift)
    magnitudes = (np.arange(n) + 0.5) * 2.0**index_shift / 2.0**frac_bits
    return np.rint(f_meta(meta, magnitudes) * 2**lut_bits).astype(np.int64)


def round_shift(x: np.ndarray, shift: int, rng=None) -> np.ndarray:
    """``x / 2**shift`` rounded to integers: to nearest, or stochastically with ``rng``.

    Stochastic rounding keeps small updates alive on average; rounding to
    nearest drops every update smaller than half a unit.
    """
    scaled = np.asarray(x, dtype=float) / 2.0**shift
    if rng is None:
        return np.rint(scaled).astype(np.int64)
    low = np.floor(scaled)
    return (low + (rng.random(scaled.shape) < scaled - low)).astype(np.int64)


def metaplastic_update_fixed_(hidden_q, step, meta_lut, index_shift: int, frac_bits: int, bits: int,
                              lut_bits: int = 8, rng=None):
    """In place: the metaplastic update of integer hidden weights.

    ``step`` is the real-valued decrement (e.g. ``lr * grad``); it is scaled to
    the weight's integer units, attenuated by the table where it shrinks
    ``|w|`` (same rule as :func:`lavaplast.core.metaplastic_update_`), rounded,
    and applied with saturation at ``bits`` bits.
    """
    step_q = np.asarray(step, dtype=float) * 2.0**frac_bits
    idx = np.minimum(np.abs(hidden_q) >> index_shift, len(meta_lut) - 1)
    toward_zero = np.where(hidden_q >= 0, step_q > 0, step_q < 0)
    factor = np.where(toward_zero, meta_lut[idx], 2**lut_bits)
    delta = round_shift(step_q * factor, lut_bits, rng)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    np.clip(hidden_q - delta, lo, hi, out=hidden_q)
    return hidden_q
