"""The device read model: error rates, the ternary 2T2R structure, frozen faults, variability."""

import numpy as np
import pytest

from lavaplast.core.devices import DeviceFaults, apply_read_errors, ternary_error_rates


def _binomial_bound(p: float, n: int) -> float:
    """Five standard deviations of a binomial proportion."""
    return 5 * np.sqrt(p * (1 - p) / n) + 1e-12


def _ternary(shape, p0, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.choice([-1.0, 1.0], size=shape)
    w[rng.random(shape) < p0] = 0.0
    return w


@pytest.mark.parametrize("ber", [1e-3, 1e-2, 0.1])
def test_binary_reads_flip_signs_at_the_requested_rate(ber):
    w = np.random.default_rng(1).choice([-1.0, 1.0], size=(400, 500))
    read = DeviceFaults(w.shape, ber=ber, kind="binary", seed=2).read(w)
    flipped = read != w
    assert np.all(read[flipped] == -w[flipped])
    assert abs(flipped.mean() - ber) < _binomial_bound(ber, w.size)


@pytest.mark.parametrize("ber, p0", [(1e-2, 0.3), (0.05, 0.5), (0.1, 0.1)])
def test_ternary_reads_have_the_2t2r_structure_and_mean_rate(ber, p0):
    w = _ternary((500, 600), p0, seed=3)
    p0 = float((w == 0).mean())
    read = DeviceFaults(w.shape, ber=ber, kind="ternary", seed=4).read(w)
    assert not np.any(read * w == -1), "a +-1 was read as -+1"
    zero, nonzero = w == 0, w != 0
    to_nonzero, to_zero = ternary_error_rates(ber, p0)
    assert to_nonzero == pytest.approx(2 * ber / (1 + p0)) and to_zero == pytest.approx(ber / (1 + p0))
    assert abs((read[zero] != 0).mean() - to_nonzero) < _binomial_bound(to_nonzero, zero.sum())
    assert abs((read[nonzero] == 0).mean() - to_zero) < _binomial_bound(to_zero, nonzero.sum())
    assert abs((read != w).mean() - ber) < _binomial_bound(ber, w.size)  # the mean error rate is ber
    # zeros read as nonzero take either sign equally often
    signs = read[zero & (read != 0)]
    assert abs((signs > 0).mean() - 0.5) < _binomial_bound(0.5, len(signs))


def test_frozen_faults_stay_frozen_and_transient_ones_do_not():
    w = _ternary((200, 300), 0.4, seed=5)
    frozen = DeviceFaults(w.shape, ber=0.05, kind="ternary", frozen=True, seed=6)
    first = frozen.read(w)
    for _ in range(3):
        np.testing.assert_array_equal(frozen.read(w), first)
    transient = DeviceFaults(w.shape, ber=0.05, kind="ternary", seed=6)
    assert not np.array_equal(transient.read(w), transient.read(w))
    # The same seed and settings give the same sequence of reads, whichever object reads.
    a, b = DeviceFaults(w.shape, ber=0.05, seed=7), DeviceFaults(w.shape, ber=0.05, seed=7)
    wb = np.sign(w + 0.5)
    for _ in range(3):
        np.testing.assert_array_equal(a.read(wb), b.read(wb))


def test_frozen_faults_are_monotone_in_the_error_rate():
    w = np.random.default_rng(8).choice([-1.0, 1.0], size=(100, 100))
    low = DeviceFaults(w.shape, ber=0.01, frozen=True, seed=9).read(w) != w
    high = DeviceFaults(w.shape, ber=0.05, frozen=True, seed=9).read(w) != w
    assert low.sum() > 0 and np.all(high[low])


def test_variability_is_frozen_per_device_and_has_the_requested_spread():
    w = np.ones((300, 400))
    dev = DeviceFaults(w.shape, sigma=0.1, seed=10)
    read = dev.read(w)
    np.testing.assert_array_equal(read, dev.read(w))
    assert abs(read.mean() - 1.0) < 0.002 and abs(read.std() - 0.1) < 0.002


def test_zero_error_rate_reads_the_weights_as_they_are():
    w = _ternary((20, 30), 0.3)
    np.testing.assert_array_equal(DeviceFaults(w.shape, ber=0.0, kind="ternary").read(w), w)


@pytest.mark.parametrize("kwargs, message", [
    (dict(ber=0.6), r"ber must be a finite number >= 0 and <= 0.5, got 0.6"),
    (dict(ber=float("nan")), r"ber must be a finite number"),
    (dict(kind="quaternary"), r"kind"),
    (dict(sigma=-0.1), r"sigma must be a finite number >= 0"),
    (dict(frozen="yes"), r"frozen must be True or False"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DeviceFaults((3, 4), **kwargs)


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match=r"binary device reads take weights in \{-1, \+1\}"):
        DeviceFaults((2, 2), ber=0.1).read(np.array([[1.0, 0.0], [1.0, -1.0]]))
    with pytest.raises(ValueError, match=r"weights have shape \(3,\), the device array \(2, 2\)"):
        DeviceFaults((2, 2), ber=0.1).read(np.ones(3))
    with pytest.raises(ValueError, match=r"ternary device reads take weights in \{-1, 0, \+1\}; got other values, e.g. 0.5"):
        apply_read_errors(np.array([0.5]), 0.1, "ternary", np.zeros(1), np.ones(1))
