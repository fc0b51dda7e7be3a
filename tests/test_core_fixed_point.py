"""Fixed-point helpers against the float rule."""

import numpy as np

from lavaplast.core import (
    f_meta,
    f_meta_lut,
    from_fixed,
    metaplastic_update,
    metaplastic_update_fixed_,
    round_shift,
    to_fixed,
)


def test_to_fixed_rounds_and_saturates():
    q = to_fixed([0.5, -0.25, 1e-4, 100.0, -100.0], frac_bits=12, bits=16)
    np.testing.assert_array_equal(q, [2048, -1024, 0, 32767, -32768])
    np.testing.assert_allclose(from_fixed(q[:2], 12), [0.5, -0.25])


def test_lut_tracks_f_meta_within_its_resolution():
    lut = f_meta_lut(1.35, frac_bits=12, bits=16, index_shift=6)
    assert len(lut) == 512 and lut[0] == 256
    centres = (np.arange(512) + 0.5) * 64 / 4096
    np.testing.assert_allclose(lut / 256, f_meta(1.35, centres), atol=0.5 / 256 + 1e-12)


def test_stochastic_rounding_is_unbiased():
    rng = np.random.default_rng(0)
    r = round_shift(np.full(200_000, 0.3 * 256), 8, rng)
    assert set(np.unique(r)) == {0, 1}
    assert abs(r.mean() - 0.3) < 0.005
    np.testing.assert_array_equal(round_shift(np.array([0.3 * 256, 0.7 * 256]), 8), [0, 1])


def test_fixed_update_matches_float_rule_to_quantisation():
    rng = np.random.default_rng(1)
    w = rng.uniform(-2, 2, 1000)
    step = rng.normal(0, 0.05, 1000)
    lut = f_meta_lut(1.35, 12, 16, 6)
    q = to_fixed(w, 12, 16)
    metaplastic_update_fixed_(q, step, lut, 6, 12, 16)
    exact = metaplastic_update(from_fixed(to_fixed(w, 12, 16), 12), step, 1.35)
    # Error budget: f_meta read half a bin (32 units) away, its slope is at most
    # 0.77 * m; the table is rounded to 1/512; the result to half a unit.
    factor_err = 0.77 * 1.35 * 32 / 4096 + 0.5 / 256
    bound = np.abs(step) * factor_err + 0.5 / 4096 + 1e-12
    assert np.all(np.abs(from_fixed(q, 12) - exact) <= bound)
