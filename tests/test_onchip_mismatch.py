"""Device mismatch in the sign-neuron on-chip learner: the Lava graph of a mismatched chip against its twin."""

import numpy as np
import pytest

pytest.importorskip("lava")

from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402

from lavaplast.core import binarize, ternarize  # noqa: E402
from lavaplast.core.mismatch import ChipMismatch  # noqa: E402
from lavaplast.data import make_tasks  # noqa: E402
from lavaplast.graph import LavaBinaryMLP  # noqa: E402
from lavaplast.graph.binary_network import onchip_chip, onchip_spec  # noqa: E402
from lavaplast.proc import BatchSink, BatchSource, BinaryDense, LavaSession, SharedArray  # noqa: E402
from lavaplast.reference import LocalBinaryMLP, init_local_mlp  # noqa: E402
from lavaplast.reference.local_bnn import chip_neurons  # noqa: E402

EYE = np.eye(10)
SIZES = [64, 48, 24, 10]


@pytest.fixture(scope="module")
def task():
    return make_tasks("permuted", n_tasks=1, dataset="digits", seed=0)[0]


def _chip(sizes=SIZES, seed=3, level=1.0):
    return ChipMismatch(sizes, sigma_gain=0.3 * level, sigma_offset=0.3 * level, sigma_synapse=0.3 * level,
                        seed=seed)


def _twin_train(twin, x, y, order, batch):
    """What one LavaBinaryMLP.train call does, on the twin: a fresh optimizer (and pipeline), then each batch."""
    twin.reset_optimizer()
    for k in range(0, len(order), batch):
        idx = order[k:k + batch]
        twin.train_batch(x[idx], EYE[y[idx]])
    twin.sync_state()


def _by_hand(state, chip, x):
    """The mismatched network's logits and hidden outputs, written out from the definition with plain numpy:
    each neuron ``sign(g * (gain * a + bias) + o)``, each synapse ``G * sign(W_h)``."""
    h, outs = np.asarray(x, dtype=np.float64), []
    for l, w in enumerate(state.hidden):
        a = h @ (chip.conductances[l] * np.where(w >= 0, 1.0, -1.0)).T
        z = chip.gains[l] * (state.gain[l] * a + state.bias[l]) + chip.offsets[l]
        if l == len(state.hidden) - 1:
            return z, outs
        h = np.where(z >= 0, 1.0, -1.0)
        outs.append(h)


def test_twin_forward_on_a_mismatched_chip_follows_the_definition(task):
    state = init_local_mlp(SIZES, seed=1)
    state.bias = [np.random.default_rng(l).normal(0, 0.5, len(b)) for l, b in enumerate(state.bias)]
    chip = _chip()
    twin = LocalBinaryMLP(state, mismatch=chip)
    x = task.x_test[:200]
    h, z = twin.forward(x)
    logits, hidden = _by_hand(state, chip, x)
    np.testing.assert_allclose(z[-1].numpy(), logits, rtol=0, atol=1e-10)
    for got, want in zip(h[1:], hidden):
        assert np.mean(got.numpy() == want) > 0.999  # a sign may flip only within rounding of 0
    # The chip matters: the ideal network computes other logits.
    ideal = LocalBinaryMLP(state).forward(x)[1][-1].numpy()
    assert np.abs(ideal - logits).max() > 0.5


def test_folding_the_neuron_deviations_is_exact_algebra():
    chip = _chip()
    gain, bias = np.full(48, 0.125), np.linspace(-1, 1, 48)
    g, b = chip_neurons(gain, bias, chip, 0)
    np.testing.assert_array_equal(g, chip.gains[0] * 0.125)
    np.testing.assert_array_equal(b, chip.gains[0] * bias + chip.offsets[0])
    a = np.random.default_rng(0).normal(0, 8, (5, 48))
    np.testing.assert_allclose(g * a + b, chip.gains[0] * (gain * a + bias) + chip.offsets[0], rtol=0, atol=1e-12)
    # No chip, or a chip without neuron spreads: the arrays as they were.
    for other in (None, ChipMismatch(SIZES, sigma_synapse=0.5)):
        g, b = chip_neurons(gain, bias, other, 0)
        np.testing.assert_array_equal(g, gain)
        np.testing.assert_array_equal(b, bias)


@pytest.mark.usefixtures("no_lava_leftovers")
@pytest.mark.parametrize("pipelined, batch, n_batches", [(False, 40, 12), (True, 20, 24)])
def test_mismatched_lava_graph_equals_its_twin_update_for_update(task, pipelined, batch, n_batches):
    state = init_local_mlp(SIZES, meta=2.0, lr=0.02, seed=1)
    chip = _chip()
    lava = LavaBinaryMLP(state.copy(), batch=batch, pipelined=pipelined, mismatch=chip)
    twin = LocalBinaryMLP(state.copy(), pipelined=pipelined, mismatch=chip)
    ideal = LocalBinaryMLP(state.copy(), pipelined=pipelined)
    order = np.random.default_rng(0).permutation(len(task.x_train))[:n_batches * batch]
    lava.train(task.x_train, task.y_train, order)
    _twin_train(twin, task.x_train, task.y_train, order, batch)
    _twin_train(ideal, task.x_train, task.y_train, order, batch)
    for a, b, c, w0 in zip(lava.state.hidden, twin.state.hidden, ideal.state.hidden, state.hidden):
        assert np.abs(a - b).max() < 1e-9
        assert np.abs(a - w0).max() > 0.05  # it really learned
        assert np.abs(a - c).max() > 1e-3  # and from the chip's activity, not the ideal network's
    logits_lava = lava.logits(task.x_test)
    logits_twin = twin.forward(task.x_test)[1][-1].numpy()
    np.testing.assert_allclose(logits_lava, logits_twin, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(lava.predict(task.x_test), twin.predict(task.x_test))


@pytest.mark.usefixtures("no_lava_leftovers")
def test_the_ideal_chip_is_exactly_the_network_without_mismatch(task):
    state = init_local_mlp(SIZES, meta=2.0, lr=0.02, seed=1)
    ideal_chip = ChipMismatch.ideal(SIZES)
    # The graph builders get the specification's own neurons and no conductance (exact ternary sums).
    neurons, conductances = onchip_chip(onchip_spec(state), ideal_chip)
    assert conductances == [None, None, None]
    for (g, b), g0, b0 in zip(neurons, state.gain, state.bias):
        np.testing.assert_array_equal(g, g0)
        np.testing.assert_array_equal(b, b0)
    order = np.random.default_rng(0).permutation(len(task.x_train))[:480]
    plain, on_ideal = LocalBinaryMLP(state.copy()), LocalBinaryMLP(state.copy(), mismatch=ideal_chip)
    _twin_train(plain, task.x_train, task.y_train, order, 40)
    _twin_train(on_ideal, task.x_train, task.y_train, order, 40)
    for a, b in zip(plain.state.hidden, on_ideal.state.hidden):
        np.testing.assert_array_equal(a, b)  # bit for bit
    lava = LavaBinaryMLP(state.copy(), batch=40, mismatch=ideal_chip)
    lava.train(task.x_train, task.y_train, order)
    for a, b in zip(lava.state.hidden, plain.state.hidden):
        assert np.abs(a - b).max() < 1e-9
    np.testing.assert_array_equal(lava.predict(task.x_test), plain.predict(task.x_test))
    assert lava.spec.name == "onchip"  # an ideal chip still describes itself as a graph file


@pytest.mark.usefixtures("no_lava_leftovers")
@pytest.mark.parametrize("tag", ["floating_pt", "fixed_pt"])
@pytest.mark.parametrize("quantizer", ["binary", "ternary"])
def test_binary_dense_conductance_scales_every_synapse(tag, quantizer):
    rng = np.random.default_rng(4)
    w = rng.uniform(-0.2, 0.2, size=(6, 9))
    x = rng.normal(size=(12, 9))
    G = np.exp(0.4 * rng.normal(size=(6, 9)))
    with SharedArray((3, 4, 6)) as record:
        src = BatchSource(data=x, batch=4)
        dense = BinaryDense(hidden_weights=w, batch=4, quantizer=quantizer, threshold=0.05, conductance=G)
        sink = BatchSink(shape=(4, 6), record=record.spec, offset=2)  # one step of synaptic delay
        src.s_out.connect(dense.s_in)
        dense.a_out.connect(sink.a_in)
        with LavaSession(src, Loihi2SimCfg(select_tag=tag), timeout=60) as session:
            session.run(4)
        out = record.read().reshape(12, 6)
    q = binarize(w) if quantizer == "binary" else ternarize(w, 0.05)
    # Written out element by element: sum_j x_j * G_ij * q_ij.
    expected = np.einsum("bj,ij,ij->bi", x, G, q)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    assert np.abs(out - x @ q.T).max() > 0.1  # the factors matter


@pytest.mark.parametrize("conductance, match", [
    (-np.ones((6, 9)), "must be > 0 for every synapse"),
    (np.zeros((6, 9)), "must be > 0 for every synapse"),
    (np.full((6, 9), np.nan), "NaN or infinite"),
    (np.full((6, 9), np.inf), "NaN or infinite"),
    (np.ones((9, 6)), r"must have shape \(6, 9\)"),
    ("high", "must be an array of numbers"),
])
def test_binary_dense_rejects_bad_conductance(conductance, match):
    with pytest.raises(ValueError, match=match):
        BinaryDense(hidden_weights=np.zeros((6, 9)), conductance=conductance)


def test_bad_mismatch_is_a_clear_error():
    state = init_local_mlp(SIZES, seed=1)
    other = _chip(sizes=[64, 32, 10])
    for make in (lambda m: LocalBinaryMLP(state, mismatch=m), lambda m: LavaBinaryMLP(state, mismatch=m)):
        with pytest.raises(ValueError, match=r"drawn for sizes \[64, 32, 10\], but the on-chip learner has sizes "
                                             r"\[64, 48, 24, 10\]"):
            make(other)
        with pytest.raises(ValueError, match="mismatch must be a ChipMismatch or None, got dict"):
            make(dict(sigma_gain=0.1))
    with pytest.raises(ValueError, match="drawn for sizes"):
        onchip_chip(onchip_spec(state), other)
    # A graph specification has no mismatch fields: a mismatched learner refuses to describe itself as one.
    with pytest.raises(ValueError, match="mismatched chip .* no fields for device mismatch"):
        LavaBinaryMLP(state, mismatch=_chip()).spec


# --- the experiment ------------------------------------------------------------------------------------------

SMALL = dict(dataset="digits", hidden=[32], levels=[0.0, 1.0], transfer_chips=2, epochs=1, finetune_epochs=1,
             batch=50, lava_samples=100, lava_test=100, progress=False, log=lambda s: None)


@pytest.mark.usefixtures("no_lava_leftovers")
def test_experiment_on_digits_recomputes_from_its_own_files(tmp_path):
    from lavaplast.data import load_dataset
    from lavaplast.experiments.onchip_mismatch import run_onchip_mismatch_experiment
    from lavaplast.outputs import RunFolderError

    out = tmp_path / "run"
    res = run_onchip_mismatch_experiment(out, **SMALL)
    for name in ("results.json", "onchip_mismatch.csv", "onchip_mismatch.png", "ideal_state.npz"):
        assert (out / name).stat().st_size > 0
    zero, one = res["levels"]
    assert zero["transfer"] == zero["insitu_scratch"] == res["ideal_test_acc"]
    # The transfer onto each chip, recomputed by hand from the saved weights and the chip's definition.
    xt, yt = load_dataset("digits", "test")
    xt = (xt.reshape(len(xt), -1) / 255.0).astype(np.float32).astype(np.float64)
    saved = np.load(out / "ideal_state.npz")
    state = init_local_mlp(res["sizes"], seed=0)
    state.hidden, state.gain, state.bias = [saved["W1"], saved["W2"]], [saved["gain1"], saved["gain2"]], \
        [saved["bias1"], saved["bias2"]]
    for seed, acc in enumerate(one["transfer_chips"]):
        chip = ChipMismatch(res["sizes"], sigma_gain=0.2, sigma_offset=0.3, sigma_synapse=0.2, seed=seed)
        logits, _ = _by_hand(state, chip, xt)
        assert acc == pytest.approx(np.mean(logits.argmax(1) == yt) * 100, abs=1e-9)
    lines = (out / "onchip_mismatch.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[2].startswith("1,0.2,0.3,0.2,")
    lava = res["lava"]
    assert lava["max_weight_difference"] < 1e-9 and lava["max_weight_change"] > 1e-3
    assert lava["equal_predictions"] == 100.0 and lava["lava_test_acc"] == lava["twin_test_acc"]
    with pytest.raises(RunFolderError, match="overwrite"):
        run_onchip_mismatch_experiment(out, **SMALL)


@pytest.mark.parametrize("change, match", [
    (dict(sigma_gain=0, sigma_offset=0, sigma_synapse=0), "at least one of sigma_gain"),
    (dict(sigma_offset=-0.1), "sigma_offset"),
    (dict(sigma_synapse=float("nan")), "sigma_synapse"),
    (dict(levels=[]), "levels must be a non-empty list"),
    (dict(lava_samples=120), "multiple of batch=50"),
    (dict(epochs=0), "epochs"),
    (dict(hidden=[]), "hidden"),
    (dict(train_limit=10), "smaller than one batch"),
])
def test_experiment_rejects_bad_settings_before_writing(tmp_path, change, match):
    from lavaplast.experiments.onchip_mismatch import run_onchip_mismatch_experiment

    with pytest.raises(ValueError, match=match):
        run_onchip_mismatch_experiment(tmp_path / "run", **{**SMALL, **change})
    assert not (tmp_path / "run").exists()
