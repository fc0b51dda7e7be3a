"""On-chip learning in Lava against the PyTorch twin; deployment of reference weights."""

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

pytest.importorskip("lava")

from lavaplast.cli import main as cli  # noqa: E402
from lavaplast.data import load_dataset, make_tasks  # noqa: E402
from lavaplast.experiments.onchip import OnChipConfig, run_onchip  # noqa: E402
from lavaplast.graph import LavaBinaryMLP  # noqa: E402
from lavaplast.reference import BNN, LocalBinaryMLP, MetaplasticAdam, init_local_mlp, state_from_bnn  # noqa: E402

pytestmark = pytest.mark.usefixtures("no_lava_leftovers")
QUIET = dict(progress=False, log=lambda s: None)


def test_lava_training_equals_twin_update_for_update():
    task = make_tasks("permuted", n_tasks=1, dataset="digits", seed=0)[0]
    state = init_local_mlp([64, 96, 48, 10], meta=2.0, lr=0.02, seed=1)
    lava, twin = LavaBinaryMLP(state.copy(), batch=40), LocalBinaryMLP(state.copy())
    order = np.random.default_rng(0).permutation(len(task.x_train))[:1480]  # 37 batches
    steps = lava.train(task.x_train, task.y_train, order)
    assert steps == 37 * 4  # 3 weight layers: 4 steps per batch
    eye = np.eye(10)
    for k in range(0, len(order), 40):
        twin.train_batch(task.x_train[order[k:k + 40]], eye[task.y_train[order[k:k + 40]]])
    twin.sync_state()
    for a, b, w0 in zip(lava.state.hidden, twin.state.hidden, state.hidden):
        assert np.abs(a - b).max() < 1e-6
        assert np.abs(a - w0).max() > 0.05  # both really learned
    pred_lava, pred_twin = lava.predict(task.x_test), twin.predict(task.x_test)
    np.testing.assert_array_equal(pred_lava, pred_twin)
    assert (pred_lava == task.y_test).mean() > 0.6


def test_onchip_metaplasticity_retains_first_task(tmp_path):
    base = dict(dataset="digits", n_tasks=2, hidden=[128], lr=0.02, epochs=3, batch=50)
    plain = run_onchip(OnChipConfig(**base, meta=0.0), tmp_path / "m0", **QUIET)
    meta = run_onchip(OnChipConfig(**base, meta=4.0), tmp_path / "m4", **QUIET)
    for res in (plain, meta):
        assert res["final_accuracy"] == res["final_accuracy_twin"]
        assert res["history"][-1]["agreement"] == 100.0
        assert res["final_accuracy"][1] > 70.0
    assert meta["final_accuracy"][0] > plain["final_accuracy"][0] + 5.0
    saved = json.loads((tmp_path / "m4" / "results.json").read_text())
    assert saved["final_accuracy"] == meta["final_accuracy"]
    assert (tmp_path / "m4" / "accuracy.png").stat().st_size > 5000
    assert len((tmp_path / "m4" / "history.csv").read_text().splitlines()) == 1 + 1 + 2


@pytest.mark.parametrize("batchnorm", ["running", "batch"])
def test_weights_trained_by_the_reference_deploy_to_lava(batchnorm):
    x, y = load_dataset("mnist-5k", "train")
    x = torch.tensor(x.reshape(len(x), -1) / 255.0)
    y = torch.tensor(y)
    torch.manual_seed(0)
    net = BNN((784, 64, 10), batchnorm=batchnorm).double()
    opt = MetaplasticAdam(net.parameters(), lr=0.01, meta=1.0)
    for epoch in range(2):
        for k in range(0, 4000, 100):
            loss = F.cross_entropy(net(x[k:k + 100]), y[k:k + 100])
            opt.zero_grad()
            loss.backward()
            opt.step()
    xt, yt = load_dataset("mnist-5k", "test")
    xt = torch.tensor(xt.reshape(len(xt), -1) / 255.0)
    net.eval()
    with torch.no_grad():
        ref = net(xt).argmax(1).numpy()  # "batch" mode: the whole test set is one batch
    state = state_from_bnn(net, calibration=xt if batchnorm == "batch" else None)
    pred = LavaBinaryMLP(state, batch=100).predict(xt.numpy())
    np.testing.assert_array_equal(pred, ref)
    assert (pred == yt).mean() > 0.8


def test_deploy_needs_calibration_for_batch_statistics():
    with pytest.raises(ValueError, match="calibration"):
        state_from_bnn(BNN((8, 4, 2), batchnorm="batch"))


@pytest.mark.parametrize("kwargs, match", [
    (dict(backend="loihi"), "unknown backend"),
    (dict(meta=-2.0), "meta"),
    (dict(meta=[1.0, 2.0]), "2 values but the network has 3 weight layers"),
    (dict(batch=0), "batch"),
])
def test_onchip_config_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OnChipConfig(**kwargs)


def test_lava_network_rejects_bad_shapes():
    net = LavaBinaryMLP(init_local_mlp([64, 16, 10]), batch=10)
    with pytest.raises(ValueError, match=r"shape \(N, 64\)"):
        net.predict(np.zeros((5, 63)))
    with pytest.raises(ValueError, match="multiple of batch=10"):
        net.train(np.zeros((30, 64)), np.zeros(30, dtype=int), np.arange(25))


def test_cli_onchip_runs(tmp_path, capsys):
    code = cli(["onchip", "--dataset", "digits", "--n-tasks", "2", "--hidden", "32", "--batch", "50",
                "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    assert "final accuracy per task" in capsys.readouterr().out


def test_the_learner_is_described_by_a_graph_spec_that_reads_back_as_its_state(tmp_path):
    from lavaplast.graph.backends.learning import local_state
    from lavaplast.graph.binary_network import onchip_spec
    from lavaplast.graph.nir import write_graph_toml
    from lavaplast.graph.spec import load_graph

    state = init_local_mlp([64, 12, 10], meta=[1.5, 0.5], lr=0.03, weight_decay=1e-4, loss="mse", seed=4)
    state.betas, state.eps = (0.8, 0.99), 1e-6
    spec = onchip_spec(state)
    assert [p.neuron for p in spec.populations] == ["sign", "error"] and spec.run.learning
    # Written as a graph file (weights beside it) and read back, it gives the same network.
    loaded = load_graph(write_graph_toml(spec, tmp_path / "learner.toml"))
    back = local_state(loaded)
    for name in ("hidden", "gain", "bias"):
        for a, b in zip(getattr(state, name), getattr(back, name)):
            np.testing.assert_array_equal(a, b)
    assert (back.meta, back.lr, back.betas, back.eps, back.weight_decay, back.loss) == \
        ([1.5, 0.5], 0.03, (0.8, 0.99), 1e-6, 1e-4, "mse")
    # The spec holds a copy: training the state later does not change it.
    state.hidden[0][:] = 0
    assert np.abs(spec.connections[0].weights.values).max() > 0


def test_ternary_synapses_learn_on_chip_like_the_twin_and_deploy():
    task = make_tasks("permuted", n_tasks=1, dataset="digits", seed=0)[0]
    state = init_local_mlp([64, 48, 10], meta=1.0, lr=0.02, seed=2, quantizer="ternary", ternary_threshold=0.03)
    lava, twin = LavaBinaryMLP(state.copy(), batch=40), LocalBinaryMLP(state.copy())
    order = np.random.default_rng(1).permutation(len(task.x_train))[:800]  # 20 batches
    lava.train(task.x_train, task.y_train, order)
    eye = np.eye(10)
    for k in range(0, len(order), 40):
        twin.train_batch(task.x_train[order[k:k + 40]], eye[task.y_train[order[k:k + 40]]])
    twin.sync_state()
    for a, b in zip(lava.state.hidden, twin.state.hidden):
        assert np.abs(a - b).max() < 1e-6
        q = lava.state.quantize(a)
        assert 0.05 < (q == 0).mean() < 0.95  # really ternary
    assert lava.spec.connections[0].quantizer == "ternary"
    np.testing.assert_array_equal(lava.predict(task.x_test), twin.predict(task.x_test))

    torch.manual_seed(0)
    net = BNN((64, 32, 10), batchnorm="running", quantizer="ternary", ternary_threshold=0.02).double().eval()
    x = torch.tensor(task.x_test, dtype=torch.float64)
    with torch.no_grad():
        ref = net(x).argmax(1).numpy()
    deployed = state_from_bnn(net)
    assert deployed.quantizer == "ternary" and deployed.ternary_threshold == 0.02
    np.testing.assert_array_equal(LavaBinaryMLP(deployed, batch=60).predict(task.x_test), ref)
