"""The metaplastic rule against closed forms and an element-wise reference."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lavaplast.core import (
    adam_direction,
    adam_moments_,
    binarize,
    check_meta,
    f_meta,
    metaplastic_adam_step_,
    metaplastic_sgd_step_,
    metaplastic_update,
    metaplastic_update_,
    ternarize,
)


def rule_elementwise(h, d, m):
    """The rule as docs/algorithms.md states it, one scalar at a time, in float64."""
    out = np.empty(h.shape, dtype=np.float64)
    for i, (hi, di) in enumerate(zip(h.ravel().astype(float), d.ravel().astype(float))):
        sign = 1.0 if hi >= 0 else -1.0
        if sign * di > 0:
            out.flat[i] = hi - (1 - math.tanh(m * abs(hi)) ** 2) * di
        else:
            out.flat[i] = hi - di
    return out


def test_f_meta_published_values():
    # docs/algorithms.md: m = 1.35 gives 0.894, 0.654, 0.236, 0.018 at |W_h| = 0.25, 0.5, 1, 2.
    got = f_meta(1.35, np.array([0.25, -0.5, 1.0, -2.0]))
    np.testing.assert_allclose(got, [0.894, 0.654, 0.236, 0.018], atol=6e-4)
    assert f_meta(0.0, np.array([3.0]))[0] == 1.0
    assert float(f_meta(1.35, torch.tensor([0.0]))[0]) == 1.0


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_step_toward_zero_is_attenuated_by_exactly_f_meta(backend):
    h = np.array([0.5, -0.5, 1.0, -2.0], dtype=np.float64)
    d = np.array([0.01, -0.01, 0.02, -0.03])  # each step shrinks |h|
    wrap = torch.from_numpy if backend == "torch" else np.asarray
    new = np.asarray(metaplastic_update(wrap(h), wrap(d), 1.35))
    expected = h - (1 - np.tanh(1.35 * np.abs(h)) ** 2) * d
    np.testing.assert_allclose(new, expected, rtol=0, atol=1e-15)
    assert np.all(np.abs(h - new) < np.abs(d))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_step_away_from_zero_is_not_attenuated(backend):
    h = np.array([0.5, -0.5, 1.0, -2.0])
    d = np.array([-0.01, 0.01, -0.02, 0.03])  # each step grows |h|
    wrap = torch.from_numpy if backend == "torch" else np.asarray
    new = np.asarray(metaplastic_update(wrap(h), wrap(d), 5.0))
    np.testing.assert_array_equal(new, h - d)


def test_zero_hidden_weight_counts_as_positive():
    h = np.zeros(2)
    d = np.array([0.1, -0.1])
    np.testing.assert_array_equal(metaplastic_update(h, d, 3.0), [-0.1, 0.1])
    np.testing.assert_array_equal(binarize(h), [1.0, 1.0])


def test_functional_form_leaves_input_alone_and_inplace_form_does_not():
    h = np.array([0.3, -0.2])
    d = np.array([0.1, 0.1])
    before = h.copy()
    metaplastic_update(h, d, 1.0)
    np.testing.assert_array_equal(h, before)
    out = metaplastic_update_(h, d, 1.0)
    assert out is h and not np.array_equal(h, before)


dtypes = st.sampled_from([np.float32, np.float64])
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), dtype=dtypes, shape=shapes, m=st.floats(0, 10), backend=st.sampled_from(["numpy", "torch"]))
def test_rule_matches_elementwise_reference(data, dtype, shape, m, backend):
    elements = st.floats(-3, 3, width=32)
    h = data.draw(hnp.arrays(dtype, shape, elements=elements))
    d = data.draw(hnp.arrays(dtype, shape, elements=st.floats(-0.125, 0.125, width=32)))
    wrap = torch.from_numpy if backend == "torch" else np.asarray
    got = metaplastic_update(wrap(h.copy()), wrap(d), m)
    assert tuple(got.shape) == shape
    assert np.asarray(got).dtype == dtype
    tol = 2e-7 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), rule_elementwise(h, d, m), rtol=0,
                               atol=tol * (1 + np.abs(h).max()))


def test_adam_step_closed_form_first_step():
    lr, b1, b2, eps, m = 0.01, 0.9, 0.999, 1e-8, 1.35
    h = np.array([[0.5, 0.5]])
    g = np.array([[0.2, -0.2]])  # first pushes +0.5 toward zero, second away
    m1, v1 = np.zeros_like(h), np.zeros_like(h)
    step = metaplastic_adam_step_(h, g, m1, v1, 0, lr=lr, betas=(b1, b2), eps=eps, meta=m)
    assert step == 1
    # After one step m1 = (1-b1) g, v1 = (1-b2) g^2, eta_1 = lr sqrt(1-b2)/(1-b1).
    u = (1 - b1) * 0.2 / (math.sqrt((1 - b2) * 0.04) + eps)
    delta = lr * math.sqrt(1 - b2) / (1 - b1) * u
    fm = 1 - math.tanh(m * 0.5) ** 2
    np.testing.assert_allclose(h, [[0.5 - fm * delta, 0.5 + delta]], rtol=1e-12)
    np.testing.assert_allclose(m1, (1 - b1) * g)
    np.testing.assert_allclose(v1, (1 - b2) * g * g)


def test_adam_moments_and_direction():
    g = np.array([1.0, -2.0])
    m, v = np.zeros(2), np.zeros(2)
    adam_moments_(g, m, v, (0.5, 0.75))
    np.testing.assert_allclose(m, [0.5, -1.0])
    np.testing.assert_allclose(v, [0.25, 1.0])
    d = adam_direction(m, v, 1, lr=1.0, betas=(0.5, 0.75), eps=0.0)
    np.testing.assert_allclose(d, [1.0, -1.0])  # first Adam step is lr * sign(g)
    with pytest.raises(ValueError, match="step >= 1"):
        adam_direction(m, v, 0, lr=1.0)


def test_weight_decay_is_added_to_gradient():
    h = np.array([1.0])
    metaplastic_sgd_step_(h, np.array([0.0]), lr=0.1, weight_decay=0.5, meta=0.0)
    np.testing.assert_allclose(h, [1.0 - 0.1 * 0.5])


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "x", None])
def test_bad_meta_is_rejected(bad):
    with pytest.raises(ValueError, match="meta"):
        check_meta(bad)
    with pytest.raises(ValueError, match="meta"):
        f_meta(bad, np.zeros(1))


def test_quantizers():
    w = np.array([-0.2, -0.05, 0.0, 0.04, 0.06])
    np.testing.assert_array_equal(binarize(w), [-1, -1, 1, 1, 1])
    np.testing.assert_array_equal(ternarize(w, 0.05), [-1, 0, 0, 0, 1])
    np.testing.assert_array_equal(ternarize(torch.tensor(w), 0.05).numpy(), [-1, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="threshold"):
        ternarize(w, -1.0)
