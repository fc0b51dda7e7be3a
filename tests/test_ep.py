"""Equilibrium propagation: the core rule against autograd and BPTT."""

import json

import numpy as np
import pytest
import torch

from lavaplast.cli import main as cli
from lavaplast.core import drives, ep_update, free_phase, nudged_phase, phi
from lavaplast.data import load_dataset
from lavaplast.reference.ep import EPNetwork, bptt_gradient


def _batch(n=48):
    x, y = load_dataset("mnist-5k", "train")
    idx = np.random.default_rng(0).permutation(len(x))[:n]
    return x[idx].reshape(n, -1) / 255.0, y[idx]


def test_drives_are_the_gradient_of_phi_beta():
    torch.manual_seed(0)
    x = torch.rand(5, 7, dtype=torch.float64)
    w = [torch.randn(6, 7, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)]
    b = [torch.randn(6, dtype=torch.float64), torch.randn(3, dtype=torch.float64)]
    s = [torch.rand(5, 6, dtype=torch.float64, requires_grad=True),
         torch.rand(5, 3, dtype=torch.float64, requires_grad=True)]
    y = torch.rand(5, 3, dtype=torch.float64)
    beta = 0.3
    phi_beta = phi(x, s, w, b).sum() - beta * 0.5 * ((s[1] - y) ** 2).sum()
    grads = torch.autograd.grad(phi_beta, s)
    for d, g in zip(drives(x, [t.detach() for t in s], w, b, beta, y), grads):
        torch.testing.assert_close(d, g, rtol=1e-12, atol=1e-12)


def test_ep_update_is_the_contrast_of_local_products():
    x = np.array([[1.0, 0.0]])
    s_a, s_b = [np.array([[0.5]])], [np.array([[0.25]])]
    (dw, db), = ep_update(x, s_a, s_b, 0.1, -0.1)
    np.testing.assert_allclose(dw, [[(0.5 - 0.25) / 0.2, 0.0]])
    np.testing.assert_allclose(db, [(0.5 - 0.25) / 0.2])
    with pytest.raises(ValueError, match="differ"):
        ep_update(x, s_a, s_b, 0.1, 0.1)


@pytest.mark.parametrize("nudging", ["symmetric", "one-sided"])
def test_ep_estimate_matches_bptt_at_small_beta(nudging):
    x, y = _batch()
    net = EPNetwork([784, 128, 64, 10], T1=200, T2=200, beta=0.01, nudging=nudging, dtype=torch.float64)
    # the free phase has converged: another step changes nothing
    s = net.free(x)
    s_next = free_phase(torch.tensor(x), s, net.weights, net.biases, 1)
    assert max(float((a - b).abs().max()) for a, b in zip(s, s_next)) < 1e-9
    ep, bp = net.gradient_estimate(x, y), bptt_gradient(net, x, y)
    for (ew, eb), (bw, bb) in zip(ep, bp):
        assert torch.nn.functional.cosine_similarity(ew.flatten(), bw.flatten(), dim=0) > 0.99
        assert torch.nn.functional.cosine_similarity(eb, bb, dim=0) > 0.99


def test_symmetric_nudging_estimate_is_less_biased_than_one_sided():
    x, y = _batch()
    errs = {}
    for nudging in ("symmetric", "one-sided"):
        net = EPNetwork([784, 64, 10], T1=150, T2=150, beta=0.05, nudging=nudging, dtype=torch.float64)
        bp = bptt_gradient(net, x, y)
        ep = net.gradient_estimate(x, y)
        errs[nudging] = sum(float((e[0] - b[0]).norm() / b[0].norm()) for e, b in zip(ep, bp))
    assert errs["symmetric"] < errs["one-sided"]


def test_ep_trains_a_classifier():
    x, y = load_dataset("digits", "train")
    xt, yt = load_dataset("digits", "test")
    x, xt = x.reshape(len(x), -1) / 255.0, xt.reshape(len(xt), -1) / 255.0
    net = EPNetwork([64, 100, 10], T1=20, T2=6, beta=0.5, lrs=[0.2, 0.1], seed=0)
    for epoch in range(4):
        order = np.random.default_rng(epoch).permutation(len(x))
        for k in range(0, len(x), 16):
            net.train_batch(x[order[k:k + 16]], y[order[k:k + 16]])
    assert (net.predict(xt) == yt).mean() > 0.85


@pytest.mark.parametrize("kwargs, match", [
    (dict(beta=0.0), "beta must be a finite non-zero"),
    (dict(T1=0), "T1 must be a positive integer"),
    (dict(T2=-3), "T2 must be a positive integer"),
    (dict(nudging="both"), "unknown nudging"),
    (dict(lrs=[0.1, 0.1, 0.1]), "lrs has 3 values but the network has 2 weight layers"),
    (dict(lrs=[0.1, float("inf")]), r"lrs\[1\] must be a finite number > 0"),
])
def test_bad_ep_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EPNetwork([4, 3, 2], **kwargs)


def test_bad_shapes_are_named():
    net = EPNetwork([4, 3, 2])
    with pytest.raises(ValueError, match="4 features"):
        net.predict(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="targets must have shape"):
        net.train_batch(np.zeros((2, 4)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="beta"):
        nudged_phase(torch.zeros(1, 4), net.zero_state(1), net.weights, net.biases, 3, 0.0, torch.zeros(1, 2))


def test_cli_ep_train(tmp_path, capsys):
    code = cli(["ep", "train", "--dataset", "digits", "--hidden", "32", "--T1", "10", "--T2", "4",
                "--epochs", "1", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    assert "final test accuracy" in capsys.readouterr().out
    assert (tmp_path / "results.json").exists() and (tmp_path / "weights.npz").exists()
    trained = json.loads((tmp_path / "results.json").read_text())["final_test_accuracy"]
    assert cli(["ep", "evaluate", str(tmp_path)]) == 0
    assert f"test accuracy {trained:.2f}%" in capsys.readouterr().out
    assert cli(["ep", "train", "--dataset", "digits", "--beta", "0", "--out", str(tmp_path)]) == 2
    assert cli(["ep", "evaluate", str(tmp_path / "missing")]) == 2
    ce = tmp_path / "ce"
    assert cli(["ep", "train", "--dataset", "digits", "--hidden", "32", "--loss", "ce", "--lrs", "0.1", "0.05",
                "--T1", "10", "--T2", "4", "--out", str(ce), "--no-progress"]) == 0
    assert cli(["ep", "evaluate", str(ce)]) == 0


def test_binary_ep_learns_and_metaplasticity_retains(tmp_path):
    from lavaplast.experiments.binary_ep import run_binary_ep_sequence

    res = run_binary_ep_sequence([0.0, 20.0], tmp_path, dataset="digits", hidden=[128], T1=20, T2=6, lr=0.002,
                                 epochs=3, batch=16, train_limit=None, test_limit=None, log=lambda s: None)
    plain, meta = res["runs"]["0"]["final_accuracy"], res["runs"]["20"]["final_accuracy"]
    assert res["runs"]["0"]["history"][2]["acc"][0] > 70.0  # binary EP learns the first task
    assert meta[1] > 70.0  # and, with metaplasticity, still learns the second
    assert meta[0] > plain[0] + 10.0  # measured 62.7 against 42.3
    assert (tmp_path / "results.json").exists()


def test_binary_ep_rejects_bad_meta():
    from lavaplast.reference.ep import BinaryEPNetwork

    with pytest.raises(ValueError, match="meta"):
        BinaryEPNetwork([4, 3, 2], meta=-1.0)
    with pytest.raises(ValueError, match="2 weight layers"):
        BinaryEPNetwork([4, 3, 2], meta=[1.0, 2.0, 3.0])


def test_cross_entropy_readout_matches_bptt():
    x, y = _batch()
    net = EPNetwork([784, 128, 64, 10], T1=200, T2=200, beta=0.01, loss="ce", dtype=torch.float64)
    assert net.readout is not None and len(net.weights) == 2
    ep, bp = net.gradient_estimate(x, y), bptt_gradient(net, x, y)
    assert len(ep) == len(bp) == 3
    for (ew, eb), (bw, bb) in zip(ep, bp):
        assert torch.nn.functional.cosine_similarity(ew.flatten(), bw.flatten(), dim=0) > 0.99
    before = net.loss(x, y)
    net.lrs = [0.05, 0.05, 0.05]
    for _ in range(5):
        net.train_batch(x, y)
    assert net.loss(x, y) < before


def test_cross_entropy_needs_a_layer_below_the_readout():
    with pytest.raises(ValueError, match="readout"):
        EPNetwork([4, 2], loss="ce")
    with pytest.raises(ValueError, match="unknown loss"):
        EPNetwork([4, 3, 2], loss="hinge")


def test_holomorphic_ep_is_symmetric_ep_at_two_nudges_and_more_exact_with_more():
    x, y = _batch()
    kw = dict(T1=300, T2=300, beta=0.5, activation="logistic", dtype=torch.float64)
    bp = bptt_gradient(EPNetwork([784, 64, 10], **kw), x, y)
    sym = EPNetwork([784, 64, 10], nudging="symmetric", **kw).gradient_estimate(x, y)
    h2 = EPNetwork([784, 64, 10], nudging="holomorphic", n_nudges=2, **kw).gradient_estimate(x, y)
    h4 = EPNetwork([784, 64, 10], nudging="holomorphic", n_nudges=4, **kw).gradient_estimate(x, y)
    for (a, _), (b, _) in zip(sym, h2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    rel = lambda est: max(float((e[0] - g[0]).norm() / g[0].norm()) for e, g in zip(est, bp))  # noqa: E731
    assert rel(h4) < rel(sym) / 5  # measured 0.0007 against 0.012 on a deeper net


def test_holomorphic_needs_an_analytic_activation():
    with pytest.raises(ValueError, match="analytic"):
        EPNetwork([4, 3, 2], nudging="holomorphic")
    with pytest.raises(ValueError, match="n_nudges"):
        EPNetwork([4, 3, 2], nudging="holomorphic", activation="logistic", n_nudges=1)
    with pytest.raises(ValueError, match="unknown activation"):
        EPNetwork([4, 3, 2], activation="relu")


def test_ep_device_is_checked_and_cuda_matches_cpu(tmp_path):
    from lavaplast.experiments.ep_train import EPConfig, run_ep_training

    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"):
        EPNetwork([4, 3, 2], device="gpu")
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"):
        EPConfig(dataset="digits", device="tpu")
    small = dict(dataset="digits", hidden=[24], T1=8, T2=3, epochs=2, train_limit=400, test_limit=200)
    cpu = run_ep_training(EPConfig(**small, device="cpu"), tmp_path / "cpu", progress=False, log=lambda s: None)
    default = run_ep_training(EPConfig(**small), tmp_path / "default", progress=False, log=lambda s: None)
    assert [h["test_acc"] for h in cpu["history"]] == [h["test_acc"] for h in default["history"]]
    # the device is where a run computed, so a run trained anywhere is evaluated on the CPU
    saved = json.loads((tmp_path / "cpu" / "results.json").read_text())
    assert saved["config"]["device"] == "cpu"
    saved["config"]["device"] = "cuda:7"
    (tmp_path / "cpu" / "results.json").write_text(json.dumps(saved))
    assert cli(["ep", "evaluate", str(tmp_path / "cpu")]) == 0
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda' needs a GPU, but torch sees none"):
            EPNetwork([4, 3, 2], device="cuda")
        assert cli(["ep", "train", "--dataset", "digits", "--device", "cuda", "--out", str(tmp_path / "g")]) == 2
        assert not (tmp_path / "g").exists()
        return
    gpu = run_ep_training(EPConfig(**small, device="cuda"), tmp_path / "gpu", progress=False, log=lambda s: None)
    for a, b in zip(cpu["history"], gpu["history"]):
        assert abs(a["test_acc"] - b["test_acc"]) <= 1.0  # float32 sums in another order: a few samples may differ
    x, y = load_dataset("digits", "train")
    x = x.reshape(len(x), -1)[:64] / 255.0
    nets = [EPNetwork([64, 20, 10], T1=8, T2=3, dtype=torch.float64, device=d) for d in ("cpu", "cuda")]
    grads = [net.gradient_estimate(x, y[:64]) for net in nets]
    for (dw_c, db_c), (dw_g, db_g) in zip(*grads):
        assert torch.allclose(dw_c, dw_g.cpu(), atol=1e-10) and torch.allclose(db_c, db_g.cpu(), atol=1e-10)


def test_lava_refuses_a_network_on_another_device():
    from lavaplast.graph.ep_network import check_runnable

    net = EPNetwork([4, 3, 2])
    net.device = torch.device("meta")  # any device but the CPU
    with pytest.raises(ValueError, match="runs on Lava's CPU simulator.*got one on meta"):
        check_runnable(net)
