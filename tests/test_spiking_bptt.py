"""BPTT training of the spiking binary network: dynamics, gradients, training and Lava deployment."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from lavaplast.data import load_dataset
from lavaplast.reference.spiking import SpikingBinaryMLP, rate_encode
from lavaplast.reference.spiking_bptt import (
    SpikingBPTT,
    deploy_check,
    encoding_seed,
    predict_bptt,
    save_weights,
    train_bptt,
)

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "spiking_bptt.py"

# Digits training settings (64-64-10, 10 steps): with these the float64 test
# accuracy after 5 epochs was 87.0%, 89.0% and 89.3% for seeds 0, 1 and 2
# (chance is 10%), in float32 and float64 alike.
DIGITS = dict(T=10, beta=0.9, threshold=8.0, epochs=5, batch=50, lr=0.005, seed=0)
DIGITS_MIN_ACCURACY = 75.0


def _weights(sizes, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n_out, n_in)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def _digits(split):
    x, y = load_dataset("digits", split)
    return x.reshape(len(x), -1) / 255.0, y


# --- an independent, hand-unrolled forward ----------------------------------------


class _FastSigmoidSpike(torch.autograd.Function):
    """Heaviside forward; derivative ``1 / (1 + slope |u|)^2`` (the SuperSpike fast sigmoid)."""

    @staticmethod
    def forward(ctx, u, slope):
        ctx.save_for_backward(u)
        ctx.slope = slope
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g / (1.0 + ctx.slope * u.abs()) ** 2, None


def _hand_forward(hidden, x, beta, threshold, slope):
    """The network written out step by step: binary synapses with a straight-through
    gradient, one step of delay per layer, zero reset decided by (and detached from)
    the previous step's membrane, decay ``1 - (1 - beta)``."""
    T, B, _ = x.shape
    L = len(hidden)
    decay = 1.0 - (1.0 - beta)
    signs = [w + (torch.where(w >= 0, 1.0, -1.0).to(w.dtype) - w).detach() for w in hidden]
    mems = [x.new_zeros((B, w.shape[0])) for w in hidden]
    trains = [[] for _ in hidden]
    for k in range(T + L):
        for l in range(L):
            if k == 0:
                cur = x.new_zeros((B, hidden[l].shape[0]))
            else:
                src = (x[k - 1] if k - 1 < T else x.new_zeros(x.shape[1:])) if l == 0 else trains[l - 1][k - 1]
                cur = src @ signs[l].T
            fired = (mems[l] > threshold).to(x.dtype).detach()
            mems[l] = decay * (1.0 - fired) * mems[l] + cur
            trains[l].append(_FastSigmoidSpike.apply(mems[l] - threshold, slope))
    trains = [torch.stack(t) for t in trains]
    return trains, trains[-1].sum(0)


def test_forward_and_gradients_equal_a_hand_unrolled_network():
    beta, threshold, slope, T, B = 0.8, 0.5, 0.7, 3, 6
    # A draw in which both layers spike and every weight gets a gradient.
    rng = np.random.default_rng(0)
    hidden = [rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (2, 3))]
    x = torch.from_numpy((rng.random((T, B, 4)) < 0.7).astype(np.float64))
    y = torch.from_numpy(rng.integers(0, 2, B))

    net = SpikingBPTT.from_hidden(hidden, beta, threshold, slope=slope, dtype="float64")
    trains, counts = net(x)
    loss = F.cross_entropy(counts, y)
    grads = torch.autograd.grad(loss, list(net.hidden))

    ws = [torch.tensor(w, requires_grad=True) for w in hidden]
    hand_trains, hand_counts = _hand_forward(ws, x, beta, threshold, slope)
    hand_grads = torch.autograd.grad(F.cross_entropy(hand_counts, y), ws)

    for l, (a, b) in enumerate(zip(trains, hand_trains)):
        assert a.dtype == torch.float64
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"layer {l} spikes differ")
        assert 0 < float(b.detach().mean()) < 1, f"layer {l} never or always spikes: the test would prove little"
    for l, (g, h) in enumerate(zip(grads, hand_grads)):
        assert g.abs().max() > 1e-3, f"layer {l} gets no gradient"
        # snnTorch's spike functions return float32 spikes, so the gradient that
        # reaches a spike is rounded to float32 even in a float64 network: the
        # two agree to float32 precision, not to the last float64 bit.
        torch.testing.assert_close(g, h, rtol=1e-6, atol=1e-9, msg=f"layer {l} gradients differ")


@pytest.mark.parametrize("inputs", ["spikes", "currents"])
@pytest.mark.parametrize("n_steps", [None, 2, 27])
def test_forward_equals_twin_spike_for_spike(inputs, n_steps):
    T, B = 20, 8
    weights = _weights([64, 32, 10])
    rng = np.random.default_rng(0)
    rates = rng.random((B, 64))
    # Currents are where BLAS's summation order could flip a spike; the
    # exact float64 sum rules that out.
    x = rate_encode(rates, T, seed=3) if inputs == "spikes" else rng.random((T, B, 64)) * 0.7
    net = SpikingBPTT.from_hidden(weights, 0.9, 2.0, dtype="float64")
    with torch.no_grad():
        trains, counts, mems = net(x, n_steps, return_membranes=True)
        ref_trains, ref_counts, ref_mems = SpikingBinaryMLP(weights, 0.9, 2.0)(x, n_steps, return_membranes=True)
    for l in range(2):
        assert trains[l].shape == ref_trains[l].shape
        assert torch.equal(trains[l], ref_trains[l]), f"layer {l} spikes differ"
        assert torch.equal(mems[l], ref_mems[l]), f"layer {l} membranes differ"
    assert torch.equal(counts, ref_counts)
    if n_steps is None:
        assert 0.01 < float(trains[0].mean()) < 0.9 and float(trains[1].sum()) > 0
    assert torch.equal(net.predict(x, n_steps), SpikingBinaryMLP(weights, 0.9, 2.0).predict(x, n_steps))
    assert torch.equal(net.twin().weight0, SpikingBinaryMLP(weights, 0.9, 2.0).weight0)


def test_new_network_and_weight_round_trip():
    net = SpikingBPTT([5, 4, 3], init_scale=0.1, seed=2)
    assert [tuple(p.shape) for p in net.hidden] == [(4, 5), (3, 4)]
    assert all(p.dtype == torch.float32 and float(p.detach().abs().max()) < 0.1 for p in net.hidden)
    assert np.array_equal(SpikingBPTT([5, 4, 3], init_scale=0.1, seed=2).hidden_weights()[0], net.hidden_weights()[0])
    copy = SpikingBPTT.from_hidden(net.hidden_weights(), dtype="float32")
    assert all(np.array_equal(a, b) for a, b in zip(copy.hidden_weights(), net.hidden_weights()))
    assert encoding_seed(0, 1, 2) == encoding_seed(0, 1, 2) != encoding_seed(0, 2, 1)


# --- training and deployment ------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    x, y = _digits("train")
    xt, yt = _digits("test")
    return train_bptt(x, y, [64, 64, 10], x_test=xt, y_test=yt, **DIGITS), xt, yt


def test_training_on_digits_learns(trained):
    result, xt, yt = trained
    history = result.history
    assert [h["epoch"] for h in history] == list(range(1, DIGITS["epochs"] + 1))
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["test_accuracy"] > DIGITS_MIN_ACCURACY, history
    assert history[-1]["train_accuracy"] > DIGITS_MIN_ACCURACY, history
    assert result.settings["threshold"] == DIGITS["threshold"] and result.settings["meta"] == 0.0
    # The recorded accuracy is that of the float64 network.
    preds = predict_bptt(result.hidden_weights, xt, T=DIGITS["T"], beta=DIGITS["beta"],
                         threshold=DIGITS["threshold"], seed=DIGITS["seed"])
    assert np.mean(preds == yt) * 100 == pytest.approx(history[-1]["test_accuracy"])


def test_training_is_reproducible_and_meta_consolidates():
    x, y = _digits("train")
    x, y = x[:300], y[:300]
    settings = dict(DIGITS, epochs=2)
    seen = []
    a = train_bptt(x, y, [64, 16, 10], on_epoch=seen.append, **settings)
    assert seen == a.history
    b = train_bptt(x, y, [64, 16, 10], **settings)
    assert all(np.array_equal(u, v) for u, v in zip(a.hidden_weights, b.hidden_weights))
    assert a.history[-1]["test_accuracy"] is None
    # Metaplasticity damps the steps that shrink |W_h|: hidden weights grow
    # larger and fewer synapses flip away from their initial sign (measured:
    # |W_h| 12-15% larger, 15-20% fewer flips in layer 0, seeds 0 to 2).
    m = train_bptt(x, y, [64, 16, 10], **dict(settings, meta=30.0))
    initial = SpikingBPTT([64, 16, 10], seed=settings["seed"]).hidden_weights()[0]
    assert np.mean(np.abs(m.hidden_weights[0])) > 1.05 * np.mean(np.abs(a.hidden_weights[0]))
    flips = [np.mean(np.sign(r.hidden_weights[0]) != np.sign(initial)) for r in (a, m)]
    assert 0 < flips[1] < flips[0]


def test_trained_network_runs_on_lava_spike_for_spike(trained, no_lava_leftovers):
    pytest.importorskip("lava")
    result, xt, yt = trained
    common = dict(T=DIGITS["T"], beta=DIGITS["beta"], threshold=DIGITS["threshold"], seed=DIGITS["seed"])
    n, batch = 24, 16  # two Lava runs, of 16 and 8 samples
    check = deploy_check(result.hidden_weights, xt[:n], batch=batch, timeout=60, **common)
    assert check["differing_spikes"] == 0 and check["differing_predictions"] == 0
    assert check["differing_spikes_twin"] == 0
    assert check["spikes"] > 0
    assert np.array_equal(check["predictions_bptt"], predict_bptt(result.hidden_weights, xt[:n], batch=batch,
                                                                  **common))
    assert np.mean(check["predictions_lava"] == yt[:n]) > 0.5
    # The twin, fed the first batch's spikes, agrees too.
    spikes = rate_encode(xt[:batch], DIGITS["T"], seed=encoding_seed(DIGITS["seed"], 0))
    assert np.array_equal(result.twin().predict(spikes).numpy(), check["predictions_lava"][:batch])
    lava = result.to_lava(batch=batch)
    assert (lava.beta, lava.threshold, lava.sizes) == (DIGITS["beta"], DIGITS["threshold"], [64, 64, 10])


@pytest.mark.parametrize("signs_only", [True, False])
def test_save_weights(tmp_path, signs_only):
    weights = _weights([6, 4, 3])
    weights[0][0, 0] = 0.0  # sign(0) = +1
    path = save_weights(tmp_path / "w.npz", weights, signs_only=signs_only, test_accuracy=np.array(12.5))
    with np.load(path) as f:
        assert sorted(f.files) == ["test_accuracy", "w0", "w1"]
        for l, w in enumerate(weights):
            assert f[f"w{l}"].shape == w.shape
            assert f[f"w{l}"].dtype == (np.int8 if signs_only else np.float32)
            assert np.array_equal(np.where(f[f"w{l}"] >= 0, 1, -1), np.where(w >= 0, 1, -1))
        assert float(f["test_accuracy"]) == 12.5


_GRAPH = """
name = "bptt-digits"
backends = ["lava", "snntorch"]
[input]
size = 64
dataset = "digits"
split = "test"
samples = 4
encoding = "rate"
[[populations]]
name = "hidden"
size = 4
neuron = "lif"
params = { beta = 0.9, threshold = 8.0 }
[[populations]]
name = "out"
size = 3
neuron = "lif"
params = { beta = 0.9, threshold = 8.0 }
[[connections]]
pre = "input"
post = "hidden"
weights = { file = "w.npz", key = "w0" }
[[connections]]
pre = "hidden"
post = "out"
weights = { file = "w.npz", key = "w1" }
[readout]
population = "out"
kind = "spike_count"
"""


def test_saved_weights_load_as_a_graphs_weights(tmp_path):
    from lavaplast.graph.spec import load_graph, load_weights

    weights = _weights([64, 4, 3])
    save_weights(tmp_path / "w.npz", weights)
    (tmp_path / "graph.toml").write_text(_GRAPH)
    spec = load_graph(tmp_path / "graph.toml")
    for l, (conn, w) in enumerate(zip(spec.connections, weights)):
        loaded = load_weights(conn.weights, w.shape)
        assert np.array_equal(np.where(loaded >= 0, 1, -1), np.where(w >= 0, 1, -1)), f"w{l}"


# --- bad arguments ---------------------------------------------------------------------

_X = np.full((10, 4), 0.5)
_Y = np.arange(10) % 3


@pytest.mark.parametrize("change, needle", [
    (dict(T=0), "T must be an integer >= 1, got 0"),
    (dict(T=2.0), "T must be an integer >= 1, got 2.0"),
    (dict(beta=1.0), "beta must be a number in [0, 1), got 1.0"),
    (dict(beta=math.nan), "beta must be a number in [0, 1), got nan"),
    (dict(threshold=0.0), "threshold must be a finite number > 0, got 0.0"),
    (dict(threshold=math.inf), "threshold must be a finite number > 0, got inf"),
    (dict(epochs=0), "epochs must be an integer >= 1, got 0"),
    (dict(batch=True), "batch must be an integer >= 1, got True"),
    (dict(lr=math.nan), "lr must be a finite number > 0, got nan"),
    (dict(lr=-0.1), "lr must be a finite number > 0, got -0.1"),
    (dict(meta=-1.0), "meta must be a finite number >= 0, got -1.0"),
    (dict(seed=-1), "seed must be an integer >= 0, got -1"),
    (dict(surrogate="relu"), "unknown surrogate 'relu'; expected one of fast_sigmoid, atan"),
    (dict(dtype="float16"), "unknown dtype 'float16'; expected one of float32, float64"),
    (dict(slope=0.0), "slope must be a finite number > 0, got 0.0"),
    (dict(init_scale=math.inf), "init_scale must be a finite number > 0, got inf"),
    (dict(eval_batch=0), "eval_batch must be an integer >= 1, got 0"),
    (dict(progress="yes"), "progress must be True or False, got 'yes'"),
    (dict(on_epoch=3), "on_epoch must be None or a callable, got 3"),
    (dict(sizes=[4]), "sizes must be a list of at least two positive integers, got [4]"),
    (dict(sizes=[4, 0, 3]), "sizes must be a list of at least two positive integers, got [4, 0, 3]"),
    (dict(sizes=[5, 3]), "x must have 5 inputs per sample (sizes[0]), got 4"),
    (dict(x=np.full((10, 4), np.nan)), "x contains 40 NaN or infinite values"),
    (dict(x=np.full((10, 4), 2.0)), "x must hold rates in [0, 1]"),
    (dict(x=np.full((10,), 0.5)), "x must be a non-empty 2-D array"),
    (dict(y=_Y[:9]), "y must have shape (10,), got (9,)"),
    (dict(y=_Y + 1), "y must be integer class labels in 0..2, got 3"),
    (dict(x_test=_X), "x_test and y_test must be given together"),
    (dict(x_test=_X, y_test=_Y[:5]), "y_test must have shape (10,), got (5,)"),
])
def test_train_bptt_refuses_bad_arguments(change, needle):
    args = dict(x=_X, y=_Y, sizes=[4, 3], T=2, epochs=1)
    args.update(change)
    x, y, sizes = args.pop("x"), args.pop("y"), args.pop("sizes")
    with pytest.raises(ValueError) as err:
        train_bptt(x, y, sizes, **args)
    assert needle in str(err.value)


def test_network_and_helpers_refuse_bad_arguments():
    net = SpikingBPTT([4, 3])
    with pytest.raises(ValueError, match=r"input must have shape \(T, B, 4\)"):
        net(np.zeros((2, 1, 5)))
    with pytest.raises(ValueError, match="input contains 1 NaN"):
        net(np.array([[[0.0, math.nan, 0.0, 0.0]]]))
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1, got 0"):
        net(np.zeros((2, 1, 4)), 0)
    with pytest.raises(ValueError, match=r"hidden_weights\[1\] has 2 inputs but layer 0 has 3 outputs"):
        SpikingBPTT.from_hidden([np.ones((3, 4)), np.ones((2, 2))])
    w = [np.ones((3, 4))]
    with pytest.raises(ValueError, match="x must have 4 inputs per sample"):
        predict_bptt(w, np.zeros((2, 5)), T=2, beta=0.9, threshold=1.0)
    with pytest.raises(ValueError, match="beta must be a number in"):
        predict_bptt(w, np.zeros((2, 4)), T=2, beta=-0.1, threshold=1.0)
    with pytest.raises(ValueError, match="timeout must be a finite number > 0"):
        deploy_check(w, np.zeros((2, 4)), T=2, beta=0.9, threshold=1.0, timeout=0)
    with pytest.raises(ValueError, match="signs_only must be True or False"):
        save_weights("unused.npz", w, signs_only=1)


def test_benchmark_without_mnist_names_make_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAVAPLAST_DATA", str(tmp_path))
    monkeypatch.syspath_prepend(str(BENCHMARK.parent))  # for its `import common`
    spec = importlib.util.spec_from_file_location("spiking_bptt_benchmark_under_test", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as stop:
        module.main(["--out", str(tmp_path / "out.json"), "--no-progress"])
    assert "make data" in str(stop.value) and "dataset file is missing" in str(stop.value)
    assert not (tmp_path / "out.json").exists()


def test_bptt_device_is_checked_and_cuda_matches_cpu():
    import torch

    from lavaplast.reference.spiking_bptt import train_bptt

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 12)), rng.integers(0, 3, 40)
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"):
        train_bptt(x, y, [12, 8, 3], T=4, device="gpu")
    cpu = train_bptt(x, y, [12, 8, 3], T=4, batch=10, threshold=2.0, device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="needs a GPU"):
            train_bptt(x, y, [12, 8, 3], T=4, device="cuda")
        return
    gpu = train_bptt(x, y, [12, 8, 3], T=4, batch=10, threshold=2.0, device="cuda")
    for a, b in zip(cpu.hidden_weights, gpu.hidden_weights):
        np.testing.assert_allclose(a, b, atol=1e-4)
