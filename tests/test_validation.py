"""No silent wrong numbers: bad settings and inputs are refused with a named ValueError,
equivalent settings normalise identically, and Lava computes what its PyTorch twin computes."""

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from lavaplast.core import ternary_matmul
from lavaplast.experiments.config import ContinualConfig
from lavaplast.experiments.ep_train import EPConfig
from lavaplast.experiments.onchip import OnChipConfig
from lavaplast.reference import LocalBinaryMLP, MetaplasticAdam, init_local_mlp
from lavaplast.reference.ep import BinaryEPNetwork, EPNetwork

INF, NAN = float("inf"), float("nan")


# --- 1. configs ---------------------------------------------------------------

@pytest.mark.parametrize("cls", [ContinualConfig, OnChipConfig])
@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=INF), "lr must be a finite number > 0, got inf"),
    (dict(lr=NAN), "lr must be a finite number > 0"),
    (dict(meta=[0.0, INF, 0.0]), r"meta\[1\] must be a finite number >= 0"),
    (dict(train_limit=0), "train_limit must be None or an integer >= 1, got 0"),
    (dict(test_limit=-5), "test_limit must be None or an integer >= 1, got -5"),
    (dict(epochs=1.0), "epochs must be an integer >= 1, got 1.0"),
    (dict(hidden=[16, 0]), "hidden must be a list of one or more positive integers"),
])
def test_configs_refuse_non_finite_and_non_integer_settings(cls, kwargs, match):
    kwargs = dict(hidden=[16, 16], **kwargs) if "hidden" not in kwargs else kwargs
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_continual_config_refuses_infinite_decay_and_untrainable_limits():
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0, got inf"):
        ContinualConfig(weight_decay=INF)
    with pytest.raises(ValueError, match="ewc_lambda must be a finite number >= 0, got nan"):
        ContinualConfig(ewc_lambda=NAN)
    # Batch-statistic BatchNorm skips single-sample batches: these would "train" with loss 0.
    with pytest.raises(ValueError, match=r"train_limit=1 leaves 1 training sample\(s\) per task.*batch_size=100"):
        ContinualConfig(train_limit=1)
    with pytest.raises(ValueError, match="batch_size must be >= 2.*batch_size=1"):
        ContinualConfig(batch_size=1)
    with pytest.raises(ValueError, match="train_limit=10 over n_subsets=6 leaves 1"):
        ContinualConfig(protocol="stream", n_subsets=6, train_limit=10)
    assert ContinualConfig(train_limit=2).train_limit == 2


def test_n_tasks_must_agree_with_the_protocol():
    with pytest.raises(ValueError, match="n_tasks=2 does not match protocol 'split', which runs 5 tasks"):
        ContinualConfig(protocol="split", n_tasks=2)
    assert ContinualConfig(protocol="split").n_tasks == 5
    assert ContinualConfig(protocol="split", n_tasks=5).to_dict() == ContinualConfig(protocol="split").to_dict()
    assert ContinualConfig(protocol="sequence", datasets=["mnist", "fmnist", "mnist"]).n_tasks == 3
    with pytest.raises(ValueError, match="n_tasks=4 does not match protocol 'stream', which runs 3 tasks"):
        ContinualConfig(protocol="stream", n_subsets=3, n_tasks=4)
    assert ContinualConfig(protocol="permuted", n_tasks=2).n_tasks == 2


def test_ep_config_refuses_bad_settings():
    with pytest.raises(ValueError, match=r"lrs\[0\] must be a finite number > 0, got nan"):
        EPConfig(lrs=[NAN, 0.1])
    with pytest.raises(ValueError, match="train_limit must be None or an integer >= 1, got 0"):
        EPConfig(train_limit=0)
    with pytest.raises(ValueError, match="test_limit must be None or an integer >= 1, got -1"):
        EPConfig(test_limit=-1)
    with pytest.raises(ValueError, match="beta must be a finite non-zero number"):
        EPConfig(beta=INF)
    with pytest.raises(ValueError, match="unknown nudging 'both'"):
        EPConfig(nudging="both")
    with pytest.raises(ValueError, match="analytic"):
        EPConfig(nudging="holomorphic", activation="hard")


def test_equivalent_settings_normalise_identically(monkeypatch, tmp_path):
    monkeypatch.delenv("LAVAPLAST_DATA", raising=False)
    a = ContinualConfig(meta=[0, 0, 0], data_dir="~/.cache/lavaplast", dataset="MNIST", datasets=("mnist", "FMNIST"))
    b = ContinualConfig(meta=0.0, hidden=(1024, 1024))
    assert a.to_dict() == b.to_dict()
    assert a.meta == 0.0 and a.data_dir is None and a.datasets == ["mnist", "fashion-mnist"]
    assert ContinualConfig(meta=[1.0]).layer_meta() == [1.0, 1.0, 1.0]
    assert ContinualConfig(meta=[1.0, 0.0, 0.0]).meta == [1.0, 0.0, 0.0]
    rel = ContinualConfig(data_dir=str(tmp_path / "x" / ".."))
    assert rel.data_dir == str(tmp_path)
    for config in (a, ContinualConfig(meta=[1, 2, 3], extra={"note": (1, 2)})):
        d = config.to_dict()
        assert json.loads(json.dumps(d)) == d
        assert ContinualConfig.from_dict(d).to_dict() == d
    import dataclasses

    assert dataclasses.asdict(OnChipConfig(meta=[0.5, 0.5, 0.5])) == dataclasses.asdict(OnChipConfig(meta=0.5))
    assert OnChipConfig(meta=[1.0]).meta == 1.0  # broadcast, like ContinualConfig
    assert dataclasses.asdict(EPConfig(lrs=[0.1, 0.1])) == dataclasses.asdict(EPConfig(lrs=0.1))
    onchip = dataclasses.asdict(OnChipConfig(meta=[1, 2, 3]))
    assert json.loads(json.dumps(onchip)) == onchip


def test_onchip_config_refuses_a_limit_below_one_batch():
    with pytest.raises(ValueError, match="train_limit=50 is smaller than one batch of batch=100"):
        OnChipConfig(train_limit=50)


# --- 2. inputs and labels -------------------------------------------------------

def test_twins_refuse_non_finite_inputs():
    twin = LocalBinaryMLP(init_local_mlp([4, 3, 2]))
    x = np.zeros((2, 4))
    x[1, 2] = NAN
    with pytest.raises(ValueError, match=r"inputs contains 1 NaN or infinite values \(first nan at index \(1, 2\)\)"):
        twin.train_batch(x, np.eye(2))
    with pytest.raises(ValueError, match="inputs contains"):
        twin.predict(x)
    with pytest.raises(ValueError, match="target contains"):
        twin.train_batch(np.zeros((2, 4)), np.array([[1.0, INF], [0.0, 1.0]]))
    for net in (EPNetwork([4, 3, 2]), BinaryEPNetwork([4, 3, 2])):
        with pytest.raises(ValueError, match="inputs contains"):
            net.predict(x)
        with pytest.raises(ValueError, match="inputs contains"):
            net.train_batch(x, [0, 1])


def test_ep_labels_are_checked_not_truncated():
    net = EPNetwork([4, 3, 2])
    with pytest.raises(ValueError, match=r"labels must be integer class labels in 0..1, got 0.5 at index 1"):
        net.train_batch(np.zeros((2, 4)), np.array([1.0, 0.5]))
    with pytest.raises(ValueError, match=r"labels must be integer class labels in 0..1, got 7 at index 0"):
        net.train_batch(np.zeros((2, 4)), np.array([7, 0]))
    with pytest.raises(ValueError, match="labels must be integer class labels"):
        net.train_batch(np.zeros((2, 4)), torch.tensor([1.5, 0.0]))
    net.train_batch(np.zeros((2, 4)), np.array([1.0, 0.0]))  # whole-number floats are labels


# --- 3. optimizer settings ----------------------------------------------------

def _param():
    return torch.nn.Parameter(torch.zeros(2, 2))


@pytest.mark.parametrize("kwargs, match", [
    (dict(eps=0.0), "MetaplasticAdam: eps must be a finite number > 0, got 0.0"),
    (dict(lr=INF), "MetaplasticAdam: lr must be a finite number >= 0, got inf"),
    (dict(weight_decay=NAN), "MetaplasticAdam: weight_decay"),
    (dict(betas=(0.9, NAN)), r"MetaplasticAdam: betas\[1\]"),
])
def test_metaplastic_adam_refuses_bad_defaults(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MetaplasticAdam([_param()], **kwargs)


@pytest.mark.parametrize("group, match", [
    (dict(lr=INF), "param group 1 lr must be a finite number >= 0, got inf"),
    (dict(eps=0.0), "param group 1 eps must be a finite number > 0"),
    (dict(weight_decay=-1.0), "param group 1 weight_decay must be a finite number >= 0"),
    (dict(betas=(1.0, 0.9)), r"param group 1 betas\[0\]"),
    (dict(meta=NAN), "param group 1 meta"),
])
def test_metaplastic_adam_validates_every_group(group, match):
    with pytest.raises(ValueError, match=match):
        MetaplasticAdam([{"params": [_param()]}, {"params": [_param()], **group}])
    opt = MetaplasticAdam([_param()])
    with pytest.raises(ValueError, match=match):
        opt.add_param_group({"params": [_param()], **group})
    assert opt.param_groups[0]["eps"] == 1e-8  # defaults are filled in and checked too


def test_every_rule_refuses_negative_weight_decay_and_infinite_rates():
    from lavaplast.proc import BinaryDense
    from lavaplast.proc.ep_synapse.process import EPSynapse

    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0, got -0.1"):
        init_local_mlp([4, 3, 2], weight_decay=-0.1)
    with pytest.raises(ValueError, match="lr must be a finite number >= 0, got inf"):
        init_local_mlp([4, 3, 2], lr=INF)
    with pytest.raises(ValueError, match="lr must be a finite number >= 0, got inf"):
        BinaryEPNetwork([4, 3, 2], lr=INF)
    with pytest.raises(ValueError, match=r"meta has 3 values but the network has 2 weight layers"):
        BinaryEPNetwork([4, 3, 2], meta=[1.0, 2.0, 3.0])
    assert BinaryEPNetwork([4, 3, 2], meta=[2.0]).meta == [2.0, 2.0]
    w = np.zeros((2, 3))
    for kwargs, match in [
        (dict(lr=INF), "BinaryDense: lr must be a finite number >= 0, got inf"),
        (dict(eps=-1e-8), "BinaryDense: eps must be a finite number > 0"),
        (dict(eps=NAN), "BinaryDense: eps"),
        (dict(weight_decay=-1.0), "BinaryDense: weight_decay"),
        (dict(weight_decay=NAN), "BinaryDense: weight_decay"),
        (dict(threshold=INF), "BinaryDense: threshold must be a finite number >= 0"),
        (dict(hidden_bits=16.0), "BinaryDense: hidden_bits must be an integer in 2..32"),
    ]:
        with pytest.raises(ValueError, match=match):
            BinaryDense(hidden_weights=w, **kwargs)
    with pytest.raises(ValueError, match="EPSynapse: lr must be a finite number >= 0, got inf"):
        EPSynapse(weights=w, batch=1, lr=INF)
    with pytest.raises(ValueError, match="EPSynapse: gain must be a finite number > 0, got inf"):
        EPSynapse(weights=w, batch=1, hidden_weights=w, gain=INF)


def test_process_numbers_must_be_finite():
    from lavaplast.proc import BatchSource, SignNeuron
    from lavaplast.proc.ep_neuron.process import EPNeuron

    with pytest.raises(ValueError, match="EPNeuron: threshold must be a finite number >= 0, got inf"):
        EPNeuron(shape=(1, 2), threshold=INF)
    with pytest.raises(ValueError, match="EPNeuron: unknown activation 'tanh'"):
        EPNeuron(shape=(1, 2), activation="tanh")
    with pytest.raises(ValueError, match="SignNeuron: feedback contains"):
        SignNeuron(shape=(1, 2), feedback=np.array([[NAN], [0.0]]))
    with pytest.raises(ValueError, match="BatchSource: data contains"):
        BatchSource(data=np.full((2, 2), INF), batch=1)
    with pytest.raises(ValueError, match="BatchSource: labels must be integer class labels in 0..2, got 0.5"):
        BatchSource(data=np.zeros((2, 2)), batch=1, labels=np.array([0.5, 1.0]), n_classes=3)
    with pytest.raises(ValueError, match="init_scale must be a finite number > 0"):
        init_local_mlp([4, 3, 2], init_scale=NAN)


# --- 4. what the Lava graph runs ------------------------------------------------

def test_lava_ep_refuses_settings_it_does_not_run():
    from lavaplast.graph import LavaEPNetwork

    for kwargs, match in [
        (dict(nudging="random-sign"), "supports nudging 'symmetric' or 'one-sided', got nudging='random-sign'"),
        (dict(nudging="holomorphic", activation="logistic"), "got nudging='holomorphic'"),
        (dict(loss="ce", sizes=[4, 3, 2]), "loss='mse'"),
    ]:
        sizes = kwargs.pop("sizes", [4, 2])
        with pytest.raises(ValueError, match=match):
            LavaEPNetwork(EPNetwork(sizes, **kwargs))
    with pytest.raises(ValueError, match="net must be an EPNetwork"):
        LavaEPNetwork(object())


def test_reference_ep_public_api_for_builders():
    net, binary = EPNetwork([4, 3, 2]), BinaryEPNetwork([4, 3, 2], dtype=torch.float64)
    assert not net.is_binary and binary.is_binary
    hidden = [-h for h in binary.hidden]
    binary.set_hidden(hidden)
    for h, w, g in zip(binary.hidden, binary.weights, binary.gains):
        torch.testing.assert_close(w, torch.where(h >= 0, 1.0, -1.0).double() * g)
    with pytest.raises(ValueError, match=r"hidden\[0\] must have shape \(3, 4\)"):
        binary.set_hidden([np.zeros((4, 3)), np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"biases\[1\] contains"):
        net.set_parameters(net.weights, [np.zeros(3), np.full(2, NAN)])


# --- 5. the exact synaptic sum --------------------------------------------------

def _exact(x, q):
    return np.array([[float(sum(Fraction(float(a)) * int(b) for a, b in zip(row, w))) for w in q] for row in x])


def test_blas_sums_depend_on_the_layout_and_ternary_matmul_does_not():
    # 0.1 + 0.2 - 0.1 - 0.2 is exactly 0, but BLAS rounds after every addition in an
    # order that depends on the batch shape: the sign of a sign neuron then depends on it.
    x = np.array([[0.1, 0.2, 0.1, 0.2]])
    q = np.array([[-1.0, -1.0, 1.0, 1.0], [1.0, 1.0, -1.0, -1.0]])
    layouts = [x @ q.T, np.tile(x, (3, 1))[:1] @ q.T, (np.tile(x, (3, 1)) @ q.T)[:1],
               (torch.tensor(x) @ torch.tensor(q).T).numpy()]
    assert len({tuple(v.ravel()) for v in layouts}) > 1  # the divergence
    for xs in (x, np.tile(x, (3, 1)), x[0]):
        np.testing.assert_array_equal(ternary_matmul(xs, q), np.zeros(np.shape(xs)[:-1] + (2,)))
    np.testing.assert_array_equal(ternary_matmul(torch.tensor(x), q), np.zeros((1, 2)))
    rng = np.random.default_rng(0)
    for x in (rng.random((5, 300)), rng.random((5, 300)).astype(np.float32), rng.choice([0.1, 0.2, 0.3], (5, 40)),
              rng.standard_normal((3, 50)) * np.logspace(-30, 30, 50)):
        q = rng.choice([-1.0, 0.0, 1.0], (7, x.shape[1]))
        out = ternary_matmul(x, q)
        np.testing.assert_array_equal(out, _exact(x, q))  # exact sum, rounded once
        np.testing.assert_array_equal(out[2:3], ternary_matmul(x[2:3], q))
    assert math.isclose(ternary_matmul(np.array([1e300, 1.0, -1e300]), np.array([[1.0, 1.0, 1.0]]))[0], 1.0)


# --- Lava graphs ------------------------------------------------------------------

lava = pytest.importorskip("lava")


@pytest.fixture
def lava_clean(no_lava_leftovers):
    yield


def test_lava_builders_refuse_bad_inputs_before_running(lava_clean):
    from lavaplast.graph import LavaBinaryMLP, LavaEPNetwork, LavaSpikingBinaryMLP

    net = LavaBinaryMLP(init_local_mlp([4, 3, 2]), batch=2)
    x = np.zeros((4, 4))
    x[3, 0] = INF
    with pytest.raises(ValueError, match="inputs contains 1 NaN or infinite values"):
        net.train(x, np.zeros(4, dtype=int), np.arange(4))
    with pytest.raises(ValueError, match="inputs contains"):
        net.predict(x)
    with pytest.raises(ValueError, match=r"labels must be integer class labels in 0..1, got 0.5 at index 2"):
        net.train(np.zeros((4, 4)), np.array([0.0, 1.0, 0.5, 1.0]), np.arange(4))
    with pytest.raises(ValueError, match=r"labels must be integer class labels in 0..1, got 3 at index 0"):
        net.train(np.zeros((4, 4)), np.array([3, 1, 0, 1]), np.arange(4))
    ep = LavaEPNetwork(EPNetwork([4, 2]), batch=2)
    with pytest.raises(ValueError, match="inputs contains"):
        ep.predict(x)
    with pytest.raises(ValueError, match="labels must be integer class labels in 0..1, got 2.5"):
        ep.train(np.zeros((2, 4)), np.array([2.5, 0.0]), np.arange(2))
    with pytest.raises(ValueError, match="spikes contains"):
        LavaSpikingBinaryMLP([np.ones((3, 4))], batch=1).run(np.full((2, 1, 4), NAN))


def test_lava_ep_runs_the_logistic_activation_of_the_network(lava_clean):
    from lavaplast.core import ep_step, logistic
    from lavaplast.data import load_dataset
    from lavaplast.graph import LavaEPNetwork

    x, y = load_dataset("digits", "train")
    x = x.reshape(len(x), -1)[:32] / 255.0
    y = y[:32]
    kw = dict(T1=8, T2=3, beta=0.5, lrs=[0.2, 0.1], activation="logistic", dtype=torch.float64, seed=2)
    net, ref = EPNetwork([64, 20, 10], **kw), EPNetwork([64, 20, 10], **kw)
    traj, _ = LavaEPNetwork(net, batch=16).free_states(x[:16])
    s, expected = ref.zero_state(16), [ref.zero_state(16)[-1].numpy()]
    for _ in range(ref.T1):
        s = ep_step(torch.tensor(x[:16]), s, ref.weights, ref.biases, activation=logistic)
        expected.append(s[-1].numpy())
    np.testing.assert_allclose(traj, np.stack(expected), rtol=0, atol=1e-12)
    LavaEPNetwork(net, batch=16).train(x, y, np.arange(32))
    for k in (0, 16):
        ref.train_batch(x[k:k + 16], y[k:k + 16])
    for (w, b), (wr, br) in zip(net.parameters(), ref.parameters()):
        assert float((w - wr).abs().max()) < 1e-9 and float((b - br).abs().max()) < 1e-9


def test_lava_and_twin_agree_where_a_pre_activation_is_exactly_zero(lava_clean):
    from lavaplast.graph import LavaBinaryMLP

    # The hidden neuron's sum is -0.1 - 0.2 + 0.1 + 0.2, exactly 0. Summed by BLAS for
    # one sample it is -2.8e-17 (sign -1), by torch 0 (sign +1): before the sums were
    # exact, the output weights ended 1e-2 apart after these 10 batches.
    state = init_local_mlp([4, 1, 2], lr=0.01, seed=0)
    state.hidden[0] = np.array([[-0.01, -0.01, 0.01, 0.01]])
    x = np.tile([0.1, 0.2, 0.1, 0.2], (10, 1))
    y = np.random.default_rng(1).integers(0, 2, 10)
    lava, twin = LavaBinaryMLP(state.copy(), batch=1), LocalBinaryMLP(state.copy())
    lava.train(x, y, np.arange(10))
    for k in range(10):
        twin.train_batch(x[k:k + 1], np.eye(2)[y[k:k + 1]])
    twin.sync_state()
    assert float(twin.forward(x[:1])[1][0][0, 0]) == 0.0
    assert np.abs(twin.state.hidden[1] - state.hidden[1]).max() > 1e-3  # it learned
    for a, b in zip(lava.state.hidden, twin.state.hidden):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(lava.logits(x[:3]), twin.forward(x[:3])[1][-1].numpy())


def test_binary_dense_without_batch_wires_to_stock_lava_processes(lava_clean):
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    from lavaplast.proc import BinaryDense, LavaSession, sim_config

    rng = np.random.default_rng(0)
    data = rng.choice([0.1, 0.2, 0.3], size=(5, 6))  # (n_in, T): RingBuffer sends column t - 1 at step t
    hidden = rng.uniform(-1, 1, size=(3, 5))
    src = RingBuffer(data=data)
    dense = BinaryDense(hidden_weights=hidden)
    lif = LIF(shape=(3,), du=1.0, dv=0.0, vth=1e9)  # u = this step's input
    assert dense.s_in.shape == (5,) and dense.a_out.shape == (3,) and dense.a_buff.shape == (3,)
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    monitor = Monitor()
    monitor.probe(lif.u, 6)
    with LavaSession(src, sim_config(), timeout=120) as session:
        session.run(6)
        u = monitor.get_data()[lif.name]["u"]
    q = np.where(hidden >= 0, 1.0, -1.0)
    expected = np.vstack([np.zeros(3), ternary_matmul(data[:, :5].T, q)])  # one step of synaptic delay
    np.testing.assert_allclose(u, expected, rtol=0, atol=1e-12)
