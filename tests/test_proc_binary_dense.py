"""Lava processes against the PyTorch reference, on Lava's CPU simulator."""

import time

import numpy as np
import pytest
import torch

from lavaplast.data import load_dataset
from lavaplast.reference import BNN, MetaplasticAdam

lava = pytest.importorskip("lava")
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402

from lavaplast.core import metaplastic_sgd_step_  # noqa: E402
from lavaplast.proc import (  # noqa: E402
    BatchSink,
    BatchSource,
    BinaryDense,
    LavaSession,
    LavaTimeoutError,
    SharedArray,
    SignNeuron,
    fold_batchnorm,
    lava_children,
)

pytestmark = pytest.mark.usefixtures("no_lava_leftovers")
CFG = Loihi2SimCfg(select_tag="floating_pt")


def _trained_like_bnn(x: np.ndarray) -> BNN:
    torch.manual_seed(0)
    net = BNN((784, 64, 32, 10), batchnorm="running", init_scale=0.05).double()
    net.train()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for _ in range(3):
            net(torch.from_numpy(x))
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.weight.uniform_(-1.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return net.eval()


def test_forward_equals_reference_bnn_on_real_mnist():
    x, _ = load_dataset("mnist-5k", "test")
    x = x[:96].reshape(96, -1).astype(np.float64) / 255.0
    net = _trained_like_bnn(x)
    hidden_ref = []
    hooks = [m.register_forward_hook(lambda mod, i, o: hidden_ref.append(o.numpy()))
             for m in net.layers if type(m).__name__ == "SignActivation"]
    with torch.no_grad():
        logits_ref = net(torch.from_numpy(x)).numpy()
    for h in hooks:
        h.remove()

    batch, layers = 32, net.linear_layers()
    bns = [m for m in net.layers if isinstance(m, torch.nn.BatchNorm1d)]
    n_windows = len(x) // batch
    src = BatchSource(data=x, batch=batch)
    records = [SharedArray((n_windows, batch, lin.out_features)) for lin in layers]
    prev, sinks = src.s_out, []
    for i, (lin, bn) in enumerate(zip(layers, bns)):
        dense = BinaryDense(hidden_weights=lin.weight.detach().numpy(), batch=batch)
        gain, bias = fold_batchnorm(bn.running_mean.numpy(), bn.running_var.numpy(),
                                    bn.weight.detach().numpy(), bn.bias.detach().numpy(), bn.eps)
        mode = "sign" if i < len(layers) - 1 else "identity"
        neuron = SignNeuron(shape=(batch, lin.out_features), gain=gain, bias=bias, mode=mode)
        prev.connect(dense.s_in)
        dense.a_out.connect(neuron.a_in)
        # Each BinaryDense delays by one step: layer i's output for window 0 arrives at step i + 2.
        sink = BatchSink(shape=(batch, lin.out_features), record=records[i].spec, offset=i + 2)
        neuron.s_out.connect(sink.a_in)
        sinks.append(sink)
        prev = neuron.s_out
    try:
        with LavaSession(src, CFG, timeout=120) as session:
            session.run(n_windows + len(layers))
        outs = [r.read().reshape(len(x), -1) for r in records]
    finally:
        for r in records:
            r.close()
    for lava_h, ref_h in zip(outs[:-1], hidden_ref):
        np.testing.assert_array_equal(lava_h, ref_h)  # every hidden spike identical
    np.testing.assert_allclose(outs[-1], logits_ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(outs[-1].argmax(1), logits_ref.argmax(1))


def _run_host_gradients(w0, grads, tag="floating_pt", **kwargs):
    """Drive a BinaryDense with one gradient per step through grad_in; returns (read-back, Var.get or None)."""
    source = BatchSource(data=np.concatenate(grads), batch=w0.shape[0])  # window k sends grads[k]
    with SharedArray(w0.shape) as readout:
        dense = BinaryDense(hidden_weights=w0, batch=1, learning="host", readout=readout.spec, **kwargs)
        source.s_out.connect(dense.grad_in)
        with LavaSession(dense, Loihi2SimCfg(select_tag=tag), timeout=120) as session:
            session.run(len(grads))
            small = dense.hidden_weights.get() if w0.size <= 64 else None
        return readout.read(), small


def test_host_gradient_updates_match_metaplastic_adam_over_150_steps():
    rng = np.random.default_rng(0)
    w0 = rng.uniform(-0.3, 0.3, size=(12, 20))
    grads = [rng.normal(0.02, 0.1, size=w0.shape) for _ in range(150)]
    hidden, _ = _run_host_gradients(w0, grads, meta=1.35, lr=0.01, weight_decay=1e-4)

    p = torch.nn.Parameter(torch.tensor(w0))
    opt = MetaplasticAdam([p], lr=0.01, meta=1.35, weight_decay=1e-4)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    ref = p.detach().numpy()
    assert np.abs(hidden - ref).max() < 1e-6
    assert np.abs(hidden - w0).max() > 0.1  # it really learned
    flips = (np.sign(hidden) != np.sign(w0)).sum()
    assert flips == (np.sign(ref) != np.sign(w0)).sum()


def test_bulk_readout_equals_var_get():
    rng = np.random.default_rng(1)
    w0 = rng.uniform(-0.3, 0.3, size=(4, 6))
    grads = [rng.normal(0, 0.1, size=w0.shape) for _ in range(10)]
    hidden, via_get = _run_host_gradients(w0, grads, meta=0.5, lr=0.02, optimizer="sgd")
    np.testing.assert_array_equal(hidden, via_get)
    expected = w0.copy()
    for g in grads:
        metaplastic_sgd_step_(expected, g, lr=0.02, meta=0.5)
    np.testing.assert_allclose(hidden, expected, rtol=0, atol=1e-12)


def test_local_rule_uses_error_times_input():
    rng = np.random.default_rng(2)
    batch, n_in, n_out, steps = 5, 7, 3, 6
    w0 = rng.uniform(-0.2, 0.2, size=(n_out, n_in))
    x = rng.normal(size=(batch * steps, n_in))
    err = rng.normal(size=(batch * steps, n_out))
    xs, es = BatchSource(data=x, batch=batch), BatchSource(data=err, batch=batch)
    with SharedArray(w0.shape) as readout:
        dense = BinaryDense(hidden_weights=w0, batch=batch, learning="local", optimizer="sgd", lr=0.05,
                            meta=2.0, readout=readout.spec)
        xs.s_out.connect(dense.s_in)
        es.s_out.connect(dense.err_in)
        with LavaSession(dense, CFG, timeout=60) as session:
            session.run(steps)
        hidden = readout.read()
    expected = w0.copy()
    for k in range(steps):
        xb, eb = x[k * batch:(k + 1) * batch], err[k * batch:(k + 1) * batch]
        metaplastic_sgd_step_(expected, eb.T @ xb / batch, lr=0.05, meta=2.0)
    np.testing.assert_allclose(hidden, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(hidden_weights=np.zeros(5)), "2-D"),
    (dict(hidden_weights=np.zeros((2, 3, 4))), "2-D"),
    (dict(hidden_weights=np.zeros((2, 3)), quantizer="quaternary"), "unknown quantizer 'quaternary'"),
    (dict(hidden_weights=np.zeros((2, 3)), meta=-1.0), "meta"),
    (dict(hidden_weights=np.zeros((2, 3)), learning="hebbian"), "unknown learning mode"),
    (dict(hidden_weights=np.zeros((2, 3)), batch=0), "batch"),
    (dict(hidden_weights=np.full((2, 3), np.nan)), "NaN"),
    (dict(hidden_weights=np.zeros((2, 3)), learn_every=3, learn_offset=3), "learn_offset"),
])
def test_binary_dense_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BinaryDense(**kwargs)


def test_mismatched_port_shapes_are_rejected_at_connection():
    src = BatchSource(data=np.zeros((8, 5)), batch=4)
    dense = BinaryDense(hidden_weights=np.zeros((2, 6)), batch=4)
    with pytest.raises(Exception, match="[Ss]hape"):
        src.s_out.connect(dense.s_in)


def test_neurons_reject_bad_per_neuron_parameters():
    from lavaplast.proc import ErrorNeuron

    with pytest.raises(ValueError, match=r"SignNeuron: gain must be a scalar or have shape \(3,\)"):
        SignNeuron(shape=(2, 3), gain=np.ones(4))
    with pytest.raises(ValueError, match=r"ErrorNeuron: gain must be a scalar or have shape \(3,\)"):
        ErrorNeuron(shape=(2, 3), gain=np.ones(4))
    with pytest.raises(ValueError, match="ErrorNeuron: bias contains NaN"):
        ErrorNeuron(shape=(2, 3), bias=np.nan)
    with pytest.raises(ValueError, match="mode"):
        SignNeuron(shape=(2, 3), mode="relu")


def test_failing_model_raises_quickly_and_cleans_up():
    src = BatchSource(data=np.random.rand(10, 4), batch=2)
    bogus = {"name": "psm_lavaplast_missing", "shape": (3, 4), "dtype": "<f8"}
    dense = BinaryDense(hidden_weights=np.ones((3, 4)), batch=2, readout=bogus)
    src.s_out.connect(dense.s_in)
    start = time.monotonic()
    with pytest.raises(Exception, match="psm_lavaplast_missing"):
        with LavaSession(dense, CFG, timeout=30) as session:
            session.run(5)
    assert time.monotonic() - start < 30
    assert lava_children() == []


def test_run_past_its_timeout_raises_and_cleans_up():
    src = BatchSource(data=np.random.rand(10, 4), batch=2)
    dense = BinaryDense(hidden_weights=np.ones((3, 4)), batch=2)
    src.s_out.connect(dense.s_in)
    start = time.monotonic()
    with pytest.raises(LavaTimeoutError, match="did not finish within 1.5 s"):
        with LavaSession(dense, CFG, timeout=1.5) as session:
            session.run(10_000_000)
    assert time.monotonic() - start < 15
    assert lava_children() == []
    with pytest.raises(RuntimeError, match="closed"):
        session.run(1)


def _host_sgd(tag, w0, grads, **kwargs):
    return _run_host_gradients(w0, grads, tag, optimizer="sgd", lr=0.05, meta=1.35, **kwargs)[0]


@pytest.mark.parametrize("stochastic", [False, True])
def test_fixed_point_model_stays_close_to_float(stochastic):
    rng = np.random.default_rng(3)
    w0 = rng.uniform(-0.3, 0.3, size=(32, 50))
    grads = [rng.normal(0.02, 0.1, size=w0.shape) for _ in range(150)]
    flt = _host_sgd("floating_pt", w0, grads)
    fix = _host_sgd("fixed_pt", w0, grads, stochastic_rounding=stochastic)
    np.testing.assert_array_equal(fix * 4096, np.rint(fix * 4096))  # 12 fractional bits
    moved = np.abs(flt - w0).mean()
    assert moved > 0.1
    assert np.abs(fix - flt).mean() < 0.02 * moved
    assert np.abs(fix - flt).max() < 0.02
    assert (np.sign(fix) == np.sign(flt)).mean() > 0.99


def test_fixed_point_model_refuses_adam_with_a_clear_error():
    source = BatchSource(data=np.zeros((4, 5)), batch=4)
    dense = BinaryDense(hidden_weights=np.ones((4, 5)), learning="host", optimizer="adam")
    source.s_out.connect(dense.grad_in)
    with pytest.raises(Exception, match="optimizer='sgd' only"):
        with LavaSession(dense, Loihi2SimCfg(select_tag="fixed_pt"), timeout=30) as session:
            session.run(2)


@pytest.mark.parametrize("tag", ["floating_pt", "fixed_pt"])
def test_ternary_quantizer_forward(tag):
    from lavaplast.core import ternarize

    rng = np.random.default_rng(4)
    w = rng.uniform(-0.2, 0.2, size=(6, 9))
    x = rng.normal(size=(12, 9))
    with SharedArray((3, 4, 6)) as record:
        src = BatchSource(data=x, batch=4)
        dense = BinaryDense(hidden_weights=w, batch=4, quantizer="ternary", threshold=0.05)
        sink = BatchSink(shape=(4, 6), record=record.spec, offset=2)  # one step of synaptic delay
        src.s_out.connect(dense.s_in)
        dense.a_out.connect(sink.a_in)
        with LavaSession(src, Loihi2SimCfg(select_tag=tag), timeout=60) as session:
            session.run(4)
        out = record.read().reshape(12, 6)
    expected = x @ ternarize(w, 0.05).T
    assert (ternarize(w, 0.05) == 0).any()
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_ctrl_c_during_a_run_stops_the_runtime():
    import os
    import signal
    import threading

    src = BatchSource(data=np.random.rand(10, 4), batch=2)
    dense = BinaryDense(hidden_weights=np.ones((3, 4)), batch=2)
    src.s_out.connect(dense.s_in)
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            with LavaSession(dense, CFG, timeout=60) as session:
                session.run(10_000_000)
    finally:
        timer.cancel()
    assert lava_children() == []
