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


# --- Lava's BinaryDense reads through the same model as the twins ------------------------------


@pytest.mark.usefixtures("no_lava_leftovers")
@pytest.mark.parametrize("kind, frozen, sigma", [("binary", False, 0.0), ("ternary", False, 0.0),
                                                 ("ternary", True, 0.2)])
def test_lava_binary_dense_reads_one_draw_per_step_like_the_twin(kind, frozen, sigma):
    from lava.magma.core.run_configs import Loihi2SimCfg

    from lavaplast.core import ternarize, ternary_matmul
    from lavaplast.proc import BatchSink, BatchSource, BinaryDense, LavaSession, SharedArray

    rng = np.random.default_rng(3)
    hidden = rng.normal(0, 0.1, size=(6, 9))
    batch, steps = 4, 12
    x = rng.choice([-1.0, 1.0], size=(steps * batch, 9))
    faults = dict(ber=0.2, frozen=frozen, sigma=sigma, seed=11, array=2)
    src = BatchSource(data=x, batch=batch)
    dense = BinaryDense(hidden_weights=hidden, batch=batch, quantizer=kind, threshold=0.05, faults=faults)
    with SharedArray((steps, batch, 6)) as record:
        sink = BatchSink(shape=(batch, 6), record=record.spec, offset=2)
        src.s_out.connect(dense.s_in)
        dense.a_out.connect(sink.a_in)
        with LavaSession(src, Loihi2SimCfg(select_tag="floating_pt"), timeout=120) as session:
            session.run(steps + 1)
        lava_sums = record.read()
    q = ternarize(hidden, 0.05) if kind == "ternary" else np.where(hidden >= 0, 1.0, -1.0)
    twin = DeviceFaults(hidden.shape, kind=kind, **faults)
    ideal = []
    for k in range(steps):  # window k is the k-th read
        read = twin.read(q)
        xk = x[k * batch:(k + 1) * batch]
        np.testing.assert_allclose(lava_sums[k], xk @ read.T, rtol=0, atol=1e-12)
        ideal.append(ternary_matmul(xk, q))
    assert not np.allclose(lava_sums, np.array(ideal))  # the faults did act


def test_binary_dense_rejects_bad_fault_settings():
    from lavaplast.proc import BinaryDense

    w = np.zeros((2, 3))
    with pytest.raises(ValueError, match="ber must be a finite number >= 0 and <= 0.5, got 2"):
        BinaryDense(hidden_weights=w, faults=dict(ber=2))
    with pytest.raises(ValueError, match=r"unknown settings \['rate'\]"):
        BinaryDense(hidden_weights=w, faults=dict(rate=0.1))
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0, got -0.1"):
        BinaryDense(hidden_weights=w, faults=dict(sigma=-0.1))


# --- graph files: frozen faults per connection, the same chip on every backend ------------------

PROCESSES = __import__("pathlib").Path(__file__).resolve().parent.parent / "processes"


def _faulty_deploy(ber=0.1, sigma=0.0, seed=3, samples=60):
    import dataclasses

    from lavaplast.graph.spec import FaultsSpec, load_graph

    spec = load_graph(PROCESSES / "deploy_bnn.toml")
    faults = FaultsSpec(ber=ber, sigma=sigma, seed=seed)
    return spec.replace(input=dataclasses.replace(spec.input, samples=samples),
                        run=dataclasses.replace(spec.run, batch=20),
                        connections=tuple(dataclasses.replace(c, faults=faults) for c in spec.connections))


@pytest.mark.usefixtures("no_lava_leftovers")
@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_graph_faults_lava_equals_torch_and_cost_accuracy(sigma):
    from lavaplast.graph.backends import run_graph
    from lavaplast.graph.inputs import build_input

    spec = _faulty_deploy(ber=0.15, sigma=sigma)
    inputs = build_input(spec)
    lava, torch_run = run_graph(spec, inputs, "lava"), run_graph(spec, inputs, "torch")
    np.testing.assert_allclose(lava.readout, torch_run.readout, rtol=0, atol=1e-12)
    ideal = run_graph(_faulty_deploy(ber=0.0, sigma=0.0), inputs, "torch")
    assert not np.allclose(torch_run.readout, ideal.readout)
    assert torch_run.accuracy < ideal.accuracy


def test_graph_faults_round_trip_and_bad_fields(tmp_path):
    from lavaplast.graph.nir import write_graph_toml
    from lavaplast.graph.spec import GraphSpecError, load_graph

    spec = _faulty_deploy(ber=0.01, sigma=0.1, seed=7)
    path = write_graph_toml(spec, tmp_path / "g.toml")
    again = load_graph(path)
    assert [c.faults for c in again.connections] == [c.faults for c in spec.connections]
    text = path.read_text()
    for bad, pattern in [("ber = 0.01", "ber = 0.7"), ("sigma = 0.1", "sigma = -1.0"), ("seed = 7", "seed = 7, rate = 1")]:
        (tmp_path / "bad.toml").write_text(text.replace(bad, pattern, 1))
        with pytest.raises(GraphSpecError, match=r"connections\[0\]\.faults"):
            load_graph(tmp_path / "bad.toml")
    import dataclasses

    from lavaplast.graph.spec import FaultsSpec, validate

    with pytest.raises(GraphSpecError, match=r"connections\[0\]\.faults: ber must be a finite number >= 0 and <= 0.5"):
        validate(spec.replace(connections=(dataclasses.replace(spec.connections[0], faults=FaultsSpec(ber=2.0)),
                                           spec.connections[1])))
