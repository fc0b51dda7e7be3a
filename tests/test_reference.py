"""PyTorch reference: binary layers, BNN, MetaplasticAdam and EWC."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from lavaplast.reference import (
    BNN,
    EWC,
    BinaryLinear,
    FullPrecisionMLP,
    MetaplasticAdam,
    batchnorm_state,
    load_batchnorm_state,
    sign_ste,
)


def paper_adam_reference(w0, grads, lr, betas, eps, meta, wd=0.0, elementwise_meta=True):
    """Independent float64 loop: Adam as in the paper plus the metaplastic rule."""
    w = np.array(w0, dtype=np.float64)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    b1, b2 = betas
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g, dtype=np.float64) + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        eta = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        step = eta * m / (np.sqrt(v) + eps)
        if elementwise_meta:
            sign = np.where(w >= 0, 1.0, -1.0)
            fm = 1 - np.tanh(meta * np.abs(w)) ** 2
            step = np.where(sign * m > 0, fm * step, step)
        w = w - step
    return w


def test_sign_ste_forward_and_gradient():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    y = sign_ste(x)
    assert y.tolist() == [-1, -1, -1, 1, 1, 1, 1]
    y.backward(torch.arange(1.0, 8.0))
    assert x.grad.tolist() == [0, 2, 3, 4, 5, 6, 0]


def test_binary_linear_uses_sign_and_passes_gradient_to_hidden_weights():
    torch.manual_seed(0)
    layer = BinaryLinear(5, 3)
    assert layer.bias is None
    assert layer.weight.abs().max() <= 0.05
    x = torch.randn(4, 5)
    wb = torch.where(layer.weight >= 0, 1.0, -1.0).detach().requires_grad_(True)
    ref = F.linear(x, wb)
    out = layer(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    g = torch.randn(4, 3)
    out.backward(g)
    ref.backward(g)
    torch.testing.assert_close(layer.weight.grad, wb.grad, rtol=0, atol=0)


def test_bnn_layout_and_binary_hidden_activity():
    torch.manual_seed(0)
    net = BNN((784, 32, 16, 10))
    assert [tuple(l.weight.shape) for l in net.linear_layers()] == [(32, 784), (16, 32), (10, 16)]
    acts = []
    net.layers[2].register_forward_hook(lambda mod, i, o: acts.append(o))
    out = net(torch.rand(8, 28, 28))
    assert out.shape == (8, 10)
    assert set(acts[0].unique().tolist()) <= {-1.0, 1.0}
    fp = FullPrecisionMLP((20, 8, 3))
    assert fp(torch.randn(5, 20)).shape == (5, 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sizes=(784,)), "at least two"),
    (dict(sizes=(784, 0, 10)), "positive"),
    (dict(sizes=(4, 2), batchnorm="layer"), "batchnorm"),
    (dict(sizes=(4, 2), activation="tanh"), "activation"),
])
def test_bad_model_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BNN(**kwargs)


def test_bnn_rejects_wrong_input_width():
    with pytest.raises(ValueError, match="expects 784 input features"):
        BNN((784, 8, 10))(torch.zeros(2, 100))


def test_batchnorm_state_round_trip():
    torch.manual_seed(0)
    net = BNN((6, 4, 3), batchnorm="running")
    saved = batchnorm_state(net)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net(torch.randn(10, 6))  # moves running stats
    load_batchnorm_state(net, saved)
    for key, value in batchnorm_state(net).items():
        torch.testing.assert_close(value, saved[key])
    with pytest.raises(ValueError, match="does not fit"):
        load_batchnorm_state(net, {"bogus": torch.zeros(1)})


def test_metaplastic_adam_matches_independent_reference_over_many_steps():
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    w0 = rng.uniform(-0.3, 0.3, size=(6, 5))
    grads = [rng.normal(0, 0.1, size=w0.shape) + 0.05 for _ in range(50)]
    p = torch.nn.Parameter(torch.tensor(w0))
    opt = MetaplasticAdam([p], lr=0.02, meta=2.0, weight_decay=1e-3)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    expected = paper_adam_reference(w0, grads, 0.02, (0.9, 0.999), 1e-8, 2.0, wd=1e-3)
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=0, atol=1e-12)
    # and the attenuation really did something
    plain = paper_adam_reference(w0, grads, 0.02, (0.9, 0.999), 1e-8, 0.0, wd=1e-3)
    assert np.abs(plain - expected).max() > 1e-3


def test_one_dimensional_parameters_get_plain_adam():
    rng = np.random.default_rng(2)
    b0 = rng.uniform(-1, 1, size=7)
    grads = [rng.normal(0, 1, size=7) for _ in range(20)]
    p = torch.nn.Parameter(torch.tensor(b0))
    opt = MetaplasticAdam([p], lr=0.05, meta=10.0)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    plain = paper_adam_reference(b0, grads, 0.05, (0.9, 0.999), 1e-8, 0.0, elementwise_meta=False)
    np.testing.assert_allclose(p.detach().numpy(), plain, rtol=0, atol=1e-12)


def test_meta_zero_equals_torch_adam_when_eps_is_negligible():
    # The paper's Adam and torch.optim.Adam differ only in where eps sits
    # (eps = 0 itself is refused: inputs that never fire would give 0 / 0).
    torch.manual_seed(3)
    w = torch.randn(4, 3, dtype=torch.float64)
    a, b = torch.nn.Parameter(w.clone()), torch.nn.Parameter(w.clone())
    oa, ob = MetaplasticAdam([a], lr=0.01, eps=1e-300), torch.optim.Adam([b], lr=0.01, eps=1e-300)
    for _ in range(30):
        g = torch.randn(4, 3, dtype=torch.float64)
        a.grad, b.grad = g.clone(), g.clone()
        oa.step()
        ob.step()
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_per_group_meta():
    w0 = np.array([[0.8, -0.8]])
    g = np.array([[0.3, -0.3]])  # both steps shrink |w|
    pa, pb = torch.nn.Parameter(torch.tensor(w0)), torch.nn.Parameter(torch.tensor(w0))
    opt = MetaplasticAdam([{"params": [pa], "meta": 0.0}, {"params": [pb], "meta": 3.0}], lr=0.1, meta=99.0)
    pa.grad, pb.grad = torch.tensor(g), torch.tensor(g)
    opt.step()
    for p, m in ((pa, 0.0), (pb, 3.0)):
        np.testing.assert_allclose(p.detach().numpy(), paper_adam_reference(w0, [g], 0.1, (0.9, 0.999), 1e-8, m),
                                   rtol=0, atol=1e-12)
    assert opt.param_groups[1]["meta"] == 3.0


def test_metaplastic_adam_trains_a_bnn_in_float32():
    torch.manual_seed(0)
    net = BNN((20, 32, 3))
    opt = MetaplasticAdam(net.parameters(), lr=0.01, meta=1.0)
    x = torch.randn(60, 20)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    first = None
    for _ in range(60):
        loss = F.cross_entropy(net(x), y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    state = opt.state_dict()
    opt2 = MetaplasticAdam(net.parameters(), lr=0.01, meta=1.0)
    opt2.load_state_dict(state)
    assert opt2.state_dict()["state"][0]["step"] == 60


@pytest.mark.parametrize("kwargs, match", [
    (dict(meta=-1.0), "meta"),
    (dict(meta=float("nan")), "meta"),
    (dict(lr=-0.1), "lr"),
    (dict(betas=(0.9, 1.0)), "betas"),
    (dict(weight_decay=-1.0), "weight_decay"),
])
def test_metaplastic_adam_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MetaplasticAdam([torch.nn.Parameter(torch.zeros(2, 2))], **kwargs)


def test_metaplastic_adam_rejects_bad_group_meta():
    with pytest.raises(ValueError, match="meta"):
        MetaplasticAdam([{"params": [torch.nn.Parameter(torch.zeros(2, 2))], "meta": -0.5}])


def test_ewc_penalty_closed_form():
    torch.manual_seed(0)
    net = FullPrecisionMLP((4, 3, 2), batchnorm="none")
    ewc = EWC(net, lam=10.0)
    assert ewc.penalty().item() == 0.0
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    ewc.consolidate([(x, y)])
    fisher, anchors = ewc.tasks[0]
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    for name, p in net.named_parameters():
        if p.dim() > 1:
            torch.testing.assert_close(fisher[name], p.grad ** 2 * 8)
    assert ewc.penalty().item() == 0.0
    with torch.no_grad():
        net.linear_layers()[0].weight.add_(0.1)
    name = "layers.0.weight"
    expected = 0.5 * 10.0 * (fisher[name] * 0.01).sum()
    torch.testing.assert_close(ewc.penalty(), expected)
    with pytest.raises(ValueError, match="lam"):
        EWC(net, lam=-1)
