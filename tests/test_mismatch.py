"""Device mismatch: the chip model, EP's gradient on a mismatched chip, the Lava graph against its twin, and the
transfer-against-in-situ experiment."""

import importlib.util
import json

import numpy as np
import pytest
import torch

from lavaplast.core import free_phase, phi
from lavaplast.core.mismatch import ChipMismatch, neuron_response
from lavaplast.data import load_dataset
from lavaplast.reference.ep import EPNetwork, bptt_gradient


def _mnist_batch(n=48):
    x, y = load_dataset("mnist-5k", "train")
    idx = np.random.default_rng(0).permutation(len(x))[:n]
    return x[idx].reshape(n, -1) / 255.0, y[idx]


def _digits(n=None):
    x, y = load_dataset("digits", "train")
    x = x.reshape(len(x), -1) / 255.0
    return (x, y) if n is None else (x[:n], y[:n])


def _cos(a, b) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


# --- the chip model ---------------------------------------------------------------


def test_same_seed_is_the_same_chip_and_sigmas_scale_the_same_draws():
    a = ChipMismatch([20, 15, 5], sigma_gain=0.3, sigma_offset=0.1, sigma_synapse=0.2, seed=7)
    b = ChipMismatch([20, 15, 5], sigma_gain=0.3, sigma_offset=0.1, sigma_synapse=0.2, seed=7)
    c = ChipMismatch([20, 15, 5], sigma_gain=0.3, sigma_offset=0.1, sigma_synapse=0.2, seed=8)
    for name in ("gains", "offsets", "conductances"):
        for x, y, z in zip(getattr(a, name), getattr(b, name), getattr(c, name)):
            np.testing.assert_array_equal(x, y)
            assert not np.array_equal(x, z)
    assert [g.shape for g in a.gains] == [(15,), (5,)] and [o.shape for o in a.offsets] == [(15,), (5,)]
    assert [w.shape for w in a.conductances] == [(15, 20), (5, 15)]
    # Doubling one sigma doubles that chip's log-deviations and leaves the other kinds untouched.
    d = ChipMismatch([20, 15, 5], sigma_gain=0.6, sigma_offset=0.1, sigma_synapse=0.2, seed=7)
    for g1, g2, o1, o2 in zip(a.gains, d.gains, a.offsets, d.offsets):
        np.testing.assert_allclose(np.log(g2), 2 * np.log(g1), rtol=1e-12)
        np.testing.assert_array_equal(o1, o2)
    with pytest.raises(ValueError):  # frozen: a chip does not change
        a.gains[0][0] = 2.0


def test_zero_sigmas_are_exactly_the_ideal_chip():
    m = ChipMismatch([6, 4, 3], seed=5)
    assert m.is_ideal and ChipMismatch.ideal([6, 4, 3]).is_ideal
    assert all((g == 1.0).all() for g in m.gains) and all((o == 0.0).all() for o in m.offsets)
    assert all((w == 1.0).all() for w in m.conductances)


def test_draws_have_the_stated_distributions():
    sigma_gain, sigma_offset, sigma_synapse = 0.3, 0.15, 0.4
    m = ChipMismatch([400, 3000, 2000], sigma_gain, sigma_offset, sigma_synapse, seed=1)
    gains, offsets = np.concatenate(m.gains), np.concatenate(m.offsets)
    conductances = np.concatenate([w.ravel() for w in m.conductances])
    assert (gains > 0).all() and (conductances > 0).all()  # lognormal: positive by construction
    for values, sigma in ((np.log(gains), sigma_gain), (offsets, sigma_offset), (np.log(conductances), sigma_synapse)):
        n = len(values)
        # Normal(0, sigma): mean within 5 standard errors, std within 5 standard errors of the sample std.
        assert abs(values.mean()) < 5 * sigma / np.sqrt(n)
        assert abs(values.std() / sigma - 1) < 5 / np.sqrt(2 * n)
    # Lognormal mean exp(sigma^2 / 2): the median is 1, the mean a little above.
    assert gains.mean() == pytest.approx(np.exp(sigma_gain ** 2 / 2), rel=5 * sigma_gain / np.sqrt(len(gains)))
    summary = m.summary()
    assert summary["offset"]["std"] == pytest.approx(offsets.std()) and summary["sizes"] == [400, 3000, 2000]


@pytest.mark.parametrize("kwargs, match", [
    (dict(sigma_gain=-0.1), r"sigma_gain must be a finite number >= 0, got -0\.1"),
    (dict(sigma_offset=float("nan")), r"sigma_offset must be a finite number >= 0, got nan"),
    (dict(sigma_synapse=float("inf")), r"sigma_synapse must be a finite number >= 0, got inf"),
    (dict(sigma_gain="0.2"), r"sigma_gain must be a finite number >= 0, got '0\.2'"),
    (dict(seed=-1), r"seed must be an integer >= 0, got -1"),
    (dict(sizes=[4, 0]), r"sizes must be a list of at least two positive integers"),
])
def test_bad_mismatch_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ChipMismatch(**{"sizes": [4, 3, 2], **kwargs})


def test_a_network_refuses_a_chip_of_other_sizes():
    with pytest.raises(ValueError, match=r"drawn for sizes \[4, 3, 2\].*sizes \[4, 5, 2\]"):
        EPNetwork([4, 5, 2], mismatch=ChipMismatch([4, 3, 2], 0.1))
    with pytest.raises(ValueError, match="mismatch must be a ChipMismatch or None, got dict"):
        EPNetwork([4, 3, 2], mismatch={"sigma_gain": 0.1})
    # With a cross-entropy readout the chip holds the dynamics only (the readout is outside them).
    EPNetwork([4, 3, 5, 2], loss="ce", mismatch=ChipMismatch([4, 3, 5], 0.1))


def test_neuron_response_closed_form():
    d = np.array([[0.5, -1.0, 2.0]])
    assert neuron_response(d) is d  # the ideal neuron: the very drive, untouched
    np.testing.assert_allclose(neuron_response(d, np.array([2.0, 0.5, 1.0]), np.array([0.1, 0.0, -0.3])),
                               [[1.1, -0.5, 1.7]], rtol=0, atol=1e-15)


# --- EP on a mismatched chip ------------------------------------------------------


def test_the_ideal_chip_computes_exactly_the_ideal_network():
    x, y = _digits(32)
    plain = EPNetwork([64, 20, 10], T1=10, T2=4, seed=2, dtype=torch.float64)
    chip = EPNetwork([64, 20, 10], T1=10, T2=4, seed=2, dtype=torch.float64,
                     mismatch=ChipMismatch.ideal([64, 20, 10]))
    for (a, b), (c, d) in zip(plain.gradient_estimate(x, y), chip.gradient_estimate(x, y)):
        assert torch.equal(a, c) and torch.equal(b, d)
    assert plain.dynamics_weights() is plain.weights  # no mismatch: the same tensors


def test_the_mismatched_fixed_point_is_stationary_for_the_chip_energy():
    # E(s) = sum_i s_i^2 / (2 g_i) - Phi(s) - sum_i (o_i / g_i) s_i on the box [0, 1] (docs/devices.md):
    # at the free equilibrium its gradient vanishes inside the box and points outward on its faces.
    x, _ = _mnist_batch(16)
    m = ChipMismatch([784, 64, 10], sigma_gain=0.4, sigma_offset=0.2, sigma_synapse=0.4, seed=3)
    net = EPNetwork([784, 64, 10], T1=300, seed=1, dtype=torch.float64, mismatch=m)
    s = [t.clone().requires_grad_(True) for t in net.free(x)]
    g = [torch.tensor(a) for a in m.gains]
    o = [torch.tensor(a) for a in m.offsets]
    xs = torch.tensor(x)
    energy = (sum(((sn ** 2) / (2 * gn) - (on / gn) * sn).sum() for sn, gn, on in zip(s, g, o))
              - phi(xs, s, net.dynamics_weights(), net.biases).sum())
    grads = torch.autograd.grad(energy, s)
    inside = 0
    for sn, dn in zip(s, grads):
        sn = sn.detach()
        interior = (sn > 1e-12) & (sn < 1 - 1e-12)
        inside += int(interior.sum())
        assert float(dn[interior].abs().max()) < 1e-9
        assert bool((dn[sn <= 1e-12] >= -1e-9).all()) and bool((dn[sn >= 1 - 1e-12] <= 1e-9).all())
    assert inside > 100  # the check is not vacuous


def test_ep_estimate_is_the_gradient_of_the_mismatched_chip():
    x, y = _mnist_batch()
    m = ChipMismatch([784, 64, 10], sigma_gain=0.4, sigma_offset=0.2, sigma_synapse=0.4, seed=0)
    net = EPNetwork([784, 64, 10], T1=200, T2=200, beta=0.01, dtype=torch.float64, mismatch=m)
    s = net.free(x)  # converged: another step changes nothing
    s_next = free_phase(torch.tensor(x), s, net.dynamics_weights(), net.biases, 1, **net.neuron_mismatch())
    assert max(float((a - b).abs().max()) for a, b in zip(s, s_next)) < 1e-9
    ep, bp = net.gradient_estimate(x, y), bptt_gradient(net, x, y)  # bp: w.r.t. the programmed weights
    ideal_model = EPNetwork([784, 64, 10], T1=200, T2=200, beta=0.01, dtype=torch.float64)
    ideal_bp = bptt_gradient(ideal_model, x, y)  # what a model of the ideal chip would compute
    for (ew, eb), (bw, bb), (iw, _), G in zip(ep, bp, ideal_bp, m.conductances):
        G = torch.tensor(np.array(G))
        # EP's local contrast is the gradient w.r.t. the effective weights G W (measured 0.9993 / 0.9997)...
        assert _cos(ew, bw / G) > 0.99
        # ... so G times it is the gradient w.r.t. the programmed weights,
        assert _cos(ew * G, bw) > 0.99
        # and the contrast itself, applied to the programmed weights, descends: <update, -grad> > 0.
        assert float((ew * bw).sum()) > 0.5 * float(ew.norm() * bw.norm())  # measured 0.92 / 0.96 of the norms
        assert _cos(eb, bb) > 0.99
        # The gradient of the ideal model, which offline training follows, is no estimate of the chip's
        # (cosine measured -0.001 and -0.18 per layer, against 0.999 for EP on the chip).
        assert _cos(iw, bw) < 0.5


def test_in_situ_ep_recovers_what_the_transfer_loses():
    x, y = _digits()
    xt, yt = load_dataset("digits", "test")
    xt = xt.reshape(len(xt), -1) / 255.0
    m = ChipMismatch([64, 64, 10], sigma_gain=0.2, sigma_offset=0.3, sigma_synapse=0.2, seed=0)
    kw = dict(T1=15, T2=5, beta=0.5, lrs=[0.2, 0.1], seed=0)
    ideal, chip = EPNetwork([64, 64, 10], **kw), EPNetwork([64, 64, 10], mismatch=m, **kw)
    for epoch in range(3):
        order = np.random.default_rng(epoch).permutation(len(x))
        for k in range(0, len(x), 16):
            ideal.train_batch(x[order[k:k + 16]], y[order[k:k + 16]])
            chip.train_batch(x[order[k:k + 16]], y[order[k:k + 16]])
    transfer = EPNetwork([64, 64, 10], mismatch=m, **kw)
    transfer.set_parameters(ideal.weights, ideal.biases)
    acc = {name: float(np.mean(n.predict(xt) == yt) * 100) for name, n in
           (("ideal", ideal), ("transfer", transfer), ("in situ", chip))}
    # Measured: ideal 89.0%, transfer 38.0%, in situ 83.3%. On this small network some neurons of the chip
    # sit in the clipped zone for every input (no gradient reaches them), so in situ recovers most of the loss,
    # not all of it; the MNIST experiment (docs/devices.md) gives the full-size comparison.
    assert acc["transfer"] < acc["ideal"] - 20
    assert acc["in situ"] - acc["transfer"] > 0.8 * (acc["ideal"] - acc["transfer"])


# --- the Lava graph of a mismatched chip ------------------------------------------


needs_lava = pytest.mark.skipif(importlib.util.find_spec("lava") is None, reason="needs lava-nc")


@needs_lava
@pytest.mark.usefixtures("no_lava_leftovers")
@pytest.mark.parametrize("nudging", ["symmetric", "one-sided"])
def test_lava_graph_of_a_mismatched_chip_equals_its_twin(nudging):
    from lavaplast.graph import LavaEPNetwork

    x, y = _digits()
    m = ChipMismatch([64, 40, 10], sigma_gain=0.4, sigma_offset=0.2, sigma_synapse=0.4, seed=2)
    kw = dict(T1=12, T2=4, beta=0.5, nudging=nudging, lrs=[0.2, 0.1], dtype=torch.float64, seed=3)
    net, twin = EPNetwork([64, 40, 10], mismatch=m, **kw), EPNetwork([64, 40, 10], mismatch=m, **kw)
    ideal = EPNetwork([64, 40, 10], **kw)
    order = np.random.default_rng(0).permutation(len(x))[: 16 * 8]
    lava_net = LavaEPNetwork(net, batch=16)
    lava_net.train(x, y, order)
    for k in range(0, len(order), 16):
        twin.train_batch(x[order[k:k + 16]], y[order[k:k + 16]])
        ideal.train_batch(x[order[k:k + 16]], y[order[k:k + 16]])
    for w, wt, wi in zip(net.weights, twin.weights, ideal.weights):
        assert float((w - wt).abs().max()) < 1e-9  # measured 2e-16
        assert float((w - wi).abs().max()) > 1e-2  # the chip matters: the ideal network learns otherwise
    for b, bt in zip(net.biases, twin.biases):
        assert float((b - bt).abs().max()) < 1e-9
    # The free phase on chip follows the twin's trajectory.
    traj, final = lava_net.free_states(x[:16])
    np.testing.assert_allclose(final, twin.free(x[:16])[-1].numpy(), rtol=0, atol=1e-12)


@needs_lava
@pytest.mark.usefixtures("no_lava_leftovers")
def test_binary_synapses_on_a_mismatched_chip_equal_their_twin():
    from lavaplast.graph import LavaEPNetwork
    from lavaplast.reference.ep import BinaryEPNetwork

    x, y = _digits()
    m = ChipMismatch([64, 40, 10], sigma_gain=0.3, sigma_offset=0.1, sigma_synapse=0.3, seed=4)
    kw = dict(T1=12, T2=4, beta=0.5, lrs=[0.05, 0.05], meta=3.0, lr=0.002, dtype=torch.float64, seed=1, mismatch=m)
    net, twin = BinaryEPNetwork([64, 40, 10], **kw), BinaryEPNetwork([64, 40, 10], **kw)
    order = np.random.default_rng(1).permutation(len(x))[: 16 * 6]
    LavaEPNetwork(net, batch=16).train(x, y, order)
    for k in range(0, len(order), 16):
        twin.train_batch(x[order[k:k + 16]], y[order[k:k + 16]])
    for h, ht in zip(net.hidden, twin.hidden):
        assert float((h - ht).abs().max()) < 1e-9


@needs_lava
def test_lava_processes_refuse_bad_device_parameters():
    from lavaplast.proc import EPNeuron, EPSynapse

    with pytest.raises(ValueError, match=r"EPNeuron: gain must be > 0 for every neuron, got -0\.5"):
        EPNeuron(shape=(2, 3), gain=[1.0, -0.5, 1.0])
    with pytest.raises(ValueError, match="EPNeuron: offset contains NaN"):
        EPNeuron(shape=(2, 3), offset=[0.0, float("nan"), 0.0])
    with pytest.raises(ValueError, match=r"EPSynapse: conductance must be > 0 for every synapse, got 0\.0"):
        EPSynapse(weights=np.ones((3, 2)), batch=2, conductance=np.array([[1.0, 0.0]] * 3))
    with pytest.raises(ValueError, match=r"EPSynapse: conductance must have shape \(3, 2\)"):
        EPSynapse(weights=np.ones((3, 2)), batch=2, conductance=np.ones((2, 3)))


# --- the experiment -----------------------------------------------------------------


@needs_lava
@pytest.mark.usefixtures("no_lava_leftovers")
def test_mismatch_command_end_to_end(tmp_path, capsys):
    from lavaplast.cli import main as cli

    out = tmp_path / "run"
    args = ["ep", "mismatch", "--dataset", "digits", "--hidden", "32", "--T1", "10", "--T2", "4", "--epochs", "1",
            "--levels", "0", "2", "--sigma-offset", "0.3", "--lava-samples", "64", "--lava-test", "100",
            "--test-limit", "200", "--transfer-chips", "2", "--out", str(out), "--no-progress"]
    assert cli(args) == 0
    assert "offline transfer" in capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert [r["level"] for r in res["levels"]] == [0.0, 1.0, 2.0]  # level 1 (the headline) always runs
    zero, one, two = res["levels"]
    assert zero["transfer"] == zero["insitu_scratch"] == res["ideal_test_acc"]  # the ideal chip
    assert one["sigma_offset"] == 0.3 and two["sigma_offset"] == pytest.approx(0.6)
    assert two["chip"]["offset"]["std"] == pytest.approx(2 * one["chip"]["offset"]["std"])  # same chip, scaled
    h = res["headline"]
    assert h["transfer_loss"] == pytest.approx(h["ideal"] - h["transfer"])
    # The transfer onto the second chip, recomputed from the saved ideal weights.
    assert one["transfer"] == one["transfer_chips"][0] and len(one["transfer_chips"]) == 2
    with np.load(out / "ideal_weights.npz") as saved:
        weights, biases = [saved["W1"], saved["W2"]], [saved["b1"], saved["b2"]]
    chip = ChipMismatch(res["sizes"], sigma_gain=0.2, sigma_offset=0.3, sigma_synapse=0.2, seed=1)
    net = EPNetwork(res["sizes"], T1=10, T2=4, mismatch=chip)
    net.set_parameters(weights, biases)
    xt, yt = load_dataset("digits", "test")
    xt = torch.tensor(xt[:200].reshape(200, -1) / 255.0, dtype=torch.float32)
    assert one["transfer_chips"][1] == pytest.approx(float(np.mean(net.predict(xt) == yt[:200]) * 100))
    lava_check = res["lava"]
    assert lava_check["equal_predictions"] == 100.0 and lava_check["max_weight_difference"] < 1e-9
    rows = (out / "mismatch.csv").read_text().splitlines()
    assert rows[0].startswith("level,") and len(rows) == 4
    assert (out / "mismatch.png").stat().st_size > 5000
    assert cli(args) == 2  # a finished run is never overwritten...
    assert "--overwrite" in capsys.readouterr().err
    assert cli(args[:-1] + ["--lava-samples", "0", "--overwrite", "--no-progress"]) == 0  # ...unless asked
    assert json.loads((out / "results.json").read_text())["lava"] is None


@pytest.mark.parametrize("kwargs, match", [
    (dict(levels=[-1.0]), r"levels\[0\] must be a finite number >= 0"),
    (dict(sigma_gain=0.0, sigma_offset=0.0, sigma_synapse=0.0), "at least one of sigma_gain"),
    (dict(sigma_offset=float("nan")), "sigma_offset must be a finite number >= 0, got nan"),
    (dict(lava_samples=50, batch=32), "lava_samples must be a multiple of batch=32"),
    (dict(finetune_epochs=-1), "finetune_epochs must be an integer >= 0"),
    (dict(transfer_chips=0), "transfer_chips must be an integer >= 1, got 0"),
])
def test_bad_experiment_arguments_write_nothing(tmp_path, kwargs, match):
    from lavaplast.experiments.mismatch import run_mismatch_experiment

    with pytest.raises(ValueError, match=match):
        run_mismatch_experiment(tmp_path / "run", dataset="digits", **kwargs)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, pattern", [
    (["--sigma-gain", "-0.1"], r"sigma_gain must be a finite number >= 0, got -0\.1"),
    (["--sigma-synapse", "inf"], r"sigma_synapse must be a finite number >= 0, got inf"),
    (["--levels", "0", "nan"], r"levels\[1\] must be a finite number >= 0, got nan"),
    (["--epochs", "0"], r"epochs must be an integer >= 1, got 0"),
    (["--dataset", "mnist", "--data-dir", "NODATA"], r"lavaplast data fetch"),
])
def test_mismatch_command_bad_input_is_one_line(tmp_path, capsys, argv, pattern):
    import re

    from lavaplast.cli import main as cli

    argv = [a.replace("NODATA", str(tmp_path / "nodata")) for a in argv]
    assert cli(["ep", "mismatch", *argv, "--out", str(tmp_path / "run")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lavaplast: error: ") and re.search(pattern, lines[0]), lines
    assert not (tmp_path / "run").exists()
