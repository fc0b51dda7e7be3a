"""Spiking on-chip learning: the Lava graph against its snnTorch twin, and both against closed forms."""

import numpy as np
import pytest
import torch

pytest.importorskip("lava")

from lavaplast.core import get_rule, local_rule, output_error, rule_names  # noqa: E402
from lavaplast.core.spiking_learning import (  # noqa: E402
    LearnerSchedule,
    check_window,
    lif_step,
    surrogate_derivative,
    window_input,
)
from lavaplast.data import load_dataset  # noqa: E402
from lavaplast.graph.spiking_learner import LavaSpikingLearner, learner_spec, learner_state  # noqa: E402
from lavaplast.reference.spiking import lava_decay  # noqa: E402
from lavaplast.reference.spiking_learner import (  # noqa: E402
    SpikingLearnerState,
    SpikingLearnerTwin,
    init_spiking_learner,
)

pytestmark = pytest.mark.usefixtures("no_lava_leftovers")


@pytest.fixture(scope="module")
def digits():
    x, y = load_dataset("digits", "train")
    return x.reshape(len(x), -1) / 255.0, y


def _assert_same(lava: LavaSpikingLearner, twin: SpikingLearnerTwin, c_lava, c_twin, start: SpikingLearnerState):
    np.testing.assert_array_equal(c_lava, c_twin)
    for a, b, w0 in zip(lava.state.hidden, twin.state.hidden, start.hidden):
        assert np.abs(a - b).max() < 1e-9
        assert np.abs(a - w0).max() > 1e-3  # both really learned


# --- the schedule and the factors, in closed form --------------------------------


def test_schedule_in_closed_form():
    s = LearnerSchedule(T=5, L=2, n_batches=3)
    assert s.steps(3) == 17
    # batch k learns at k T + L + T
    assert [t for t in range(1, 40) if s.learning_batch(t) >= 0] == [7, 12, 17]
    assert [s.learning_batch(t) for t in (7, 12, 17)] == [0, 1, 2]
    # population 2 hears batch 0 at steps 4..8 (two synaptic delays after the source's 1..5 ... plus one)
    assert [t for t in range(1, 14) if s.population_phase(t, 2) == 0] == [3, 8, 13]
    assert [t for t in range(1, 14) if s.connection_phase(t, 1) == 0] == [1, 6, 11]
    assert s.source_step(7) == (1, 1)
    with pytest.raises(ValueError, match=r"T must be > the number of connections \(3\) .* got T=3"):
        check_window(3, 3)


def test_lif_step_and_surrogate_in_closed_form():
    v = np.array([[0.5, 1.0, -0.2]])
    a = np.array([[0.6, 0.05, 0.1]])
    v_after, spikes, v_before = lif_step(v, a, 0.9, 1.0)
    np.testing.assert_allclose(v_before, [[1.05, 0.95, -0.08]])
    np.testing.assert_array_equal(spikes, [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(v_after, [[0.0, 0.95, -0.08]])
    np.testing.assert_allclose(surrogate_derivative(np.array([1.0, 3.0, -1.0]), 1.0, 0.5), [1.0, 0.25, 0.25])
    spikes = window_input(np.full((2, 1000), 0.3), 4, "rate", seed=1, batch_index=7)
    assert spikes.shape == (4, 2, 1000) and abs(spikes.mean() - 0.3) < 0.02
    np.testing.assert_array_equal(spikes, window_input(np.full((2, 1000), 0.3), 4, "rate", 1, 7))
    assert not np.array_equal(spikes, window_input(np.full((2, 1000), 0.3), 4, "rate", 1, 8))


def test_one_layer_update_equals_the_rule_on_hand_computed_factors():
    """A single connection, one batch: the update the twin makes is the rule applied to the window's
    input rate, mean surrogate derivative and output error, all computed here from scratch."""
    rng = np.random.default_rng(3)
    T, B, n_in, n_out = 6, 3, 12, 4
    x, y = rng.random((B, n_in)), np.array([0, 3, 1])
    state = SpikingLearnerState(hidden=[rng.uniform(-0.1, 0.1, (n_out, n_in))], feedback=[], T=T, beta=0.8,
                                threshold=1.5, slope=0.7, params=dict(lr=0.05, meta=0.0), gain=0.4, bias=0.1)
    twin = SpikingLearnerTwin(state.copy())
    twin.train(x, y, np.arange(B), batch=B)

    inp = window_input(x, T, "rate", 0, 0)
    w = np.where(state.hidden[0] >= 0, 1.0, -1.0)
    v, psi, counts = np.zeros((B, n_out)), np.zeros((B, n_out)), np.zeros((B, n_out))
    for j in range(T):  # the population hears input step j one step after the connection summed it
        v = lava_decay(0.8) * v + inp[j] @ w.T
        psi += 1 / (1 + 0.7 * np.abs(v - 1.5)) ** 2
        spikes = v > 1.5
        counts += spikes
        v[spikes] = 0.0
    err = output_error(0.4 * counts + 0.1, np.eye(n_out)[y], "ce")
    g = (psi / T * err).T @ inp.mean(0) / B
    # First Adam step, eps outside the bias correction: lr sqrt(1 - b2) / (1 - b1) * m / (sqrt(v) + eps)
    # with m = (1 - b1) g, v = (1 - b2) g^2.
    expected = state.hidden[0] - 0.05 * g / (np.abs(g) + 1e-8 / np.sqrt(1 - 0.999))
    np.testing.assert_allclose(twin.state.hidden[0], expected, rtol=0, atol=1e-12)


# --- Lava against the twin -------------------------------------------------------


@pytest.mark.parametrize("sizes, batch, rule, params", [
    ([64, 20, 10], 4, "metaplastic", dict(lr=0.01, meta=1.0)),
    ([64, 16, 12, 10], 1, "metaplastic", dict(lr=0.01, meta=0.5)),
    ([64, 20, 10], 5, "metaplastic_sgd", dict(lr=0.05, meta=2.0)),
    ([64, 20, 10], 5, "bcm", dict(lr=0.01, tau=5.0)),
    ([64, 20, 10], 5, "reward_hebbian", dict(lr=0.05, tau=5.0)),
])
def test_lava_equals_twin_update_for_update(digits, sizes, batch, rule, params):
    x, y = digits
    start = init_spiking_learner(sizes, T=len(sizes) + 4, rule=rule, params=params, seed=2)
    order = np.random.default_rng(0).permutation(len(x))[: 12 * batch]
    lava, twin = LavaSpikingLearner(start.copy(), batch=batch, timeout=120), SpikingLearnerTwin(start.copy())
    c_lava, c_twin = lava.train(x, y, order), twin.train(x, y, order, batch=batch)
    assert lava.steps == 12 * start.T + len(sizes) - 1  # pipelined: T steps per batch, plus the depth once
    _assert_same(lava, twin, c_lava, c_twin, start)
    np.testing.assert_array_equal(lava.predict(x[:37]), twin.predict(x[:37], batch=batch))


def test_ternary_synapses_and_current_input(digits):
    x, y = digits
    start = init_spiking_learner([64, 20, 10], T=5, encoding="current", quantizer="ternary",
                                 params=dict(lr=0.02, meta=0.5), seed=4)
    start.ternary_threshold = 0.02
    lava, twin = LavaSpikingLearner(start.copy(), batch=6, timeout=120), SpikingLearnerTwin(start.copy())
    order = np.arange(60)
    _assert_same(lava, twin, lava.train(x, y, order), twin.train(x, y, order, batch=6), start)


def test_a_user_rule_runs_on_lava_and_the_twin(digits, registry):
    @local_rule("test_oja_spiking", defaults={"lr": 0.01})
    def oja(pre, post, third, hidden, state, *, lr):
        """Oja's rule on the window rates, gated by the third factor's sign."""
        y_post = post * third
        return lr * (y_post.T @ pre - (y_post * y_post).sum(0)[:, None] * hidden) / pre.shape[0]

    x, y = digits
    assert "test_oja_spiking" in rule_names()
    start = init_spiking_learner([64, 20, 10], T=4, rule="test_oja_spiking", seed=5)
    lava, twin = LavaSpikingLearner(start.copy(), batch=5, timeout=120), SpikingLearnerTwin(start.copy())
    order = np.arange(50)
    _assert_same(lava, twin, lava.train(x, y, order), twin.train(x, y, order, batch=5), start)


@pytest.mark.needs_full_data
def test_lava_equals_twin_after_training_on_mnist():
    x, y = load_dataset("mnist", "train")
    xt, yt = load_dataset("mnist", "test")
    x, xt = x[:2000].reshape(2000, -1) / 255.0, xt[:500].reshape(500, -1) / 255.0
    start = init_spiking_learner([784, 100, 10], T=10, params=dict(lr=0.01, meta=1.0), gain=0.5, seed=0)
    lava, twin = LavaSpikingLearner(start.copy(), batch=20, timeout=300), SpikingLearnerTwin(start.copy())
    order = np.arange(2000)
    _assert_same(lava, twin, lava.train(x, y[:2000], order), twin.train(x, y[:2000], order, batch=20), start)
    pred = lava.predict(xt)
    np.testing.assert_array_equal(pred, twin.predict(xt, batch=20))
    assert (pred == yt[:500]).mean() > 0.6  # measured 0.7x after 2000 images


# --- the graph specification --------------------------------------------------------


def test_the_learner_is_a_graph_spec_that_reads_back_as_its_state(tmp_path):
    from lavaplast.graph.nir import write_graph_toml
    from lavaplast.graph.spec import load_graph

    state = init_spiking_learner([64, 12, 10], T=7, beta=[0.8, 0.9], rule="bcm", params=dict(lr=0.003, tau=20.0),
                                 gain=0.3, loss="mse", encoding="current", seed=6)
    spec = learner_spec(state)
    back = learner_state(load_graph(write_graph_toml(spec, tmp_path / "learner.toml")), feedback=state.feedback)
    for a, b in zip(state.hidden, back.hidden):
        np.testing.assert_array_equal(a, b)
    for name in ("T", "beta", "threshold", "slope", "rule", "params", "gain", "bias", "loss", "encoding", "seed"):
        assert getattr(back, name) == getattr(state, name), name


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    (dict(T=2), r"T must be > the number of connections \(2\)"),
    (dict(beta=1.0), r"beta must be a finite number >= 0 and < 1, got 1.0"),
    (dict(threshold=float("nan")), r"threshold must be a finite number > 0"),
    (dict(rule="hebb"), r"hebb"),
    (dict(params=dict(lr=-1.0)), r"lr"),
    (dict(params=dict(lr=0.1, tau=3.0)), r"unknown parameter 'tau'"),
    (dict(loss="hinge"), r"unknown loss 'hinge'; expected one of ce, mse"),
])
def test_bad_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        init_spiking_learner([8, 5, 3], **{"T": 4, **change})


def test_bad_inputs_are_refused(digits):
    x, y = digits
    lava = LavaSpikingLearner(init_spiking_learner([64, 8, 10], T=4), batch=3)
    with pytest.raises(ValueError, match=r"inputs must lie in \[0, 1\] for rate coding"):
        lava.train(x * 2, y, np.arange(6))
    with pytest.raises(ValueError, match=r"multiple of batch=3"):
        lava.train(x, y, np.arange(7))
    with pytest.raises(ValueError, match=r"labels"):
        lava.train(x[:6], np.arange(6) + 10, np.arange(6))
    bad = x[:6].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN"):
        lava.predict(bad)


def test_registered_rules_are_the_shipped_ones():
    for name in ("metaplastic", "metaplastic_sgd", "plain", "bcm", "reward_hebbian"):
        assert get_rule(name).name == name
    assert torch.get_default_dtype() == torch.float32  # the twin's float64 is local, not global


# --- continual learning from the command line -------------------------------------------


def test_cli_onchip_lif_reports_lava_twin_agreement(tmp_path, capsys):
    import json

    from lavaplast.cli import main

    out = tmp_path / "run"
    assert main(["onchip", "--neuron", "lif", "--dataset", "digits", "--n-tasks", "2", "--hidden", "24",
                 "--steps", "5", "--batch", "10", "--lr", "0.01", "--meta", "1.0", "--train-limit", "1000",
                 "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["neuron"] == "lif" and results["sizes"] == [64, 24, 10]
    for row in results["history"]:
        assert row["agreement"] == 100.0
        assert max(row["max_weight_diff"]) < 1e-9
        assert row["acc_lava"] == row["acc_twin"]
        assert row["lava_steps"] == 100 * 5 + 2  # 100 batches of 10, pipelined
    assert results["history"][0]["acc_lava"][0] > 40  # one pass over 1000 permuted digits
    assert (out / "accuracy.png").stat().st_size > 10_000
    capsys.readouterr()
    assert main(["onchip", "--neuron", "lif", "--dataset", "digits", "--hidden", "24", "24", "--steps", "3",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "T must be > the number of connections (3)" in capsys.readouterr().err


# --- the rule checker -------------------------------------------------------------------


def test_check_rule_passes_the_shipped_rules():
    from lavaplast.graph.spiking_learner import check_rule

    result = check_rule("reward_hebbian", dict(lr=0.05, tau=5.0), samples=40)
    assert result.passed and result.moved and result.max_weight_diff < 1e-12 and result.steps == 8 * 5 + 2


def test_check_rule_catches_state_kept_outside_the_rule(registry):
    """A rule that counts its calls in a closure instead of its ``state``: in the twin one counter serves
    every layer, in Lava every synapse process forks its own copy, so the learning rates drift apart."""
    from lavaplast.core import LocalRule
    from lavaplast.graph.spiking_learner import RuleMismatchError, check_rule

    calls = [0]

    def decaying(pre, post, third, hidden, state, *, lr):
        calls[0] += 1
        return -lr / calls[0] * ((post * third).T @ pre) / pre.shape[0]

    broken = LocalRule("test_closure_counter", decaying, defaults={"lr": 0.05})
    with pytest.raises(RuleMismatchError, match=r"rule 'test_closure_counter': Lava and the twin disagree: "
                                                 r"hidden weights differ by up to"):
        check_rule(broken, samples=40)

    def fixed(pre, post, third, hidden, state, *, lr):
        state["calls"] = state.get("calls", 0) + 1
        return -lr / state["calls"] * ((post * third).T @ pre) / pre.shape[0]

    assert check_rule(LocalRule("test_state_counter", fixed, defaults={"lr": 0.05}), samples=40).passed


# --- fixed point ------------------------------------------------------------------------


def test_fixed_point_lava_equals_its_twin_and_stays_near_float(digits):
    from lavaplast.core.spiking_learning import FixedPoint

    x, y = digits
    xt, yt = load_dataset("digits", "test")
    xt = xt.reshape(len(xt), -1) / 255.0
    fp = FixedPoint(frac_bits=10, bits=16, seed=3)
    float_state = init_spiking_learner([64, 32, 10], T=6, params=dict(lr=0.01, meta=1.0), seed=1)
    fixed_state = float_state.copy()
    fixed_state.fixed_point = fp
    # One batch from weights on the grid: the forward pass is the float one, and each weight is off the
    # float update by the rounding of that update alone, under one grid step.
    on_grid = float_state.copy()
    on_grid.hidden = [fp.value(fp.to_grid(w)) for w in on_grid.hidden]
    one = np.arange(10)
    lava = LavaSpikingLearner(fixed_state.copy(), batch=10, timeout=120)
    lava.train(x, y, one)
    flt = SpikingLearnerTwin(on_grid.copy())
    flt.train(x, y, one, batch=10)
    for a, b, w0 in zip(lava.state.hidden, flt.state.hidden, on_grid.hidden):
        assert 0 < np.abs(a - b).max() < 2.0 ** -10
        assert np.abs(b - w0).max() > 10 * 2.0 ** -10  # the update itself is many grid steps
        assert np.all(a * 2 ** 10 == np.rint(a * 2 ** 10))  # on the grid
    # A pass over 600 digits: Lava's fixed_pt models equal the fixed-point twin exactly; against float,
    # rounding sends individual trajectories apart but the accuracy stays within 10 points.
    order = np.arange(600)
    lava = LavaSpikingLearner(fixed_state.copy(), batch=10, timeout=120)
    twin, flt = SpikingLearnerTwin(fixed_state.copy()), SpikingLearnerTwin(float_state.copy())
    _assert_same(lava, twin, lava.train(x, y, order), twin.train(x, y, order, batch=10), fixed_state)
    flt.train(x, y, order, batch=10)
    acc_fixed, acc_float = np.mean(lava.predict(xt) == yt), np.mean(flt.predict(xt, batch=10) == yt)
    assert abs(acc_fixed - acc_float) <= 0.10, (acc_fixed, acc_float)
    with pytest.raises(ValueError, match="fixed_point must be a FixedPoint"):
        SpikingLearnerState(hidden=[np.zeros((3, 4))], feedback=[], T=3, fixed_point=12)


@pytest.mark.needs_full_data
def test_cli_onchip_sequence_learns_mnist_then_fashion_mnist(tmp_path):
    import json

    from lavaplast.cli import main

    out = tmp_path / "seq"
    assert main(["onchip", "--protocol", "sequence", "--neuron", "lif", "--hidden", "32", "--steps", "4",
                 "--batch", "20", "--lr", "0.01", "--train-limit", "400", "--test-limit", "100", "--out", str(out),
                 "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["task_names"] == ["MNIST", "Fashion-MNIST"] and results["config"]["protocol"] == "sequence"
    assert [len(row["acc_lava"]) for row in results["history"]] == [1, 2]
    assert all(row["agreement"] == 100.0 for row in results["history"])
