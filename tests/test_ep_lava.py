"""Event-driven EP on Lava against the rate-based reference."""

import numpy as np
import pytest
import torch

pytest.importorskip("lava")

from lavaplast.core import ep_step, sigma_delta_encode  # noqa: E402
from lavaplast.data import load_dataset  # noqa: E402
from lavaplast.graph import LavaEPNetwork  # noqa: E402
from lavaplast.proc import EPNeuron, EPSynapse  # noqa: E402
from lavaplast.reference.ep import EPNetwork  # noqa: E402
from lavaplast.outputs import RunFolderError  # noqa: E402

pytestmark = pytest.mark.usefixtures("no_lava_leftovers")


def _digits(n=None):
    x, y = load_dataset("digits", "train")
    x = x.reshape(len(x), -1) / 255.0
    return (x, y) if n is None else (x[:n], y[:n])


def _pair(nudging="symmetric"):
    kw = dict(T1=12, T2=4, beta=0.5, nudging=nudging, lrs=[0.2, 0.1], dtype=torch.float64, seed=3)
    return EPNetwork([64, 40, 10], **kw), EPNetwork([64, 40, 10], **kw)


def test_sigma_delta_reconstruction():
    rng = np.random.default_rng(0)
    values = rng.random((20, 5))
    sent = np.zeros(5)
    received = np.zeros(5)
    for v in values:
        events, sent = sigma_delta_encode(v, sent, 0.1)
        received += events
        assert np.all(np.abs(v - received) <= 0.1)
    events, _ = sigma_delta_encode(values[0], values[0], 0.0)
    assert not events.any()
    with pytest.raises(ValueError, match="threshold"):
        sigma_delta_encode(values[0], sent, -1.0)


def test_event_driven_free_phase_follows_the_rate_trajectory():
    x, _ = _digits(16)
    net, ref = _pair()
    traj, _ = LavaEPNetwork(net, batch=16).free_states(x)
    s, xs, expected = ref.zero_state(16), torch.tensor(x), [ref.zero_state(16)[-1].numpy()]
    for _ in range(ref.T1):
        s = ep_step(xs, s, ref.weights, ref.biases)
        expected.append(s[-1].numpy())
    np.testing.assert_allclose(traj, np.stack(expected), rtol=0, atol=1e-12)


@pytest.mark.parametrize("nudging", ["symmetric", "one-sided"])
def test_event_driven_training_makes_the_reference_updates(nudging):
    x, y = _digits()
    net, ref = _pair(nudging)
    order = np.random.default_rng(0).permutation(len(x))[: 16 * 8]
    lava = LavaEPNetwork(net, batch=16)
    lava.train(x, y, order)
    for k in range(0, len(order), 16):
        ref.train_batch(x[order[k:k + 16]], y[order[k:k + 16]])
    start = EPNetwork([64, 40, 10], T1=12, T2=4, dtype=torch.float64, seed=3)
    for w, wr, w0 in zip(net.weights, ref.weights, start.weights):
        assert float((w - wr).abs().max()) < 1e-9
        assert float((w - w0).abs().max()) > 1e-2
    for b, br in zip(net.biases, ref.biases):
        assert float((b - br).abs().max()) < 1e-9
    assert all(e > 0 for e in lava.events)


def test_event_threshold_cuts_messages():
    x, _ = _digits(32)
    counts = {}
    for threshold in (0.0, 0.05):
        net, _ = _pair()
        lava = LavaEPNetwork(net, batch=32, threshold=threshold)
        lava.predict(x)
        counts[threshold] = sum(lava.events)
    assert counts[0.05] < 0.7 * counts[0.0]


@pytest.mark.parametrize("cls, kwargs, match", [
    (EPNeuron, dict(shape=(2, 3), beta=0.0), "beta"),
    (EPNeuron, dict(shape=(2, 3), T1=0), "T1"),
    (EPNeuron, dict(shape=(2, 3), threshold=-0.1), "threshold"),
    (EPNeuron, dict(shape=(2, 3), nudging="random-sign"), "supports 'symmetric' and 'one-sided'"),
    (EPSynapse, dict(weights=np.zeros(3), batch=2), "2-D"),
    (EPSynapse, dict(weights=np.zeros((3, 2)), batch=2, T2=0), "T2"),
])
def test_bad_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_event_sweep_writes_results_and_plot(tmp_path):
    from lavaplast.experiments.ep_events import run_event_sweep

    res = run_event_sweep([0.0, 0.1], tmp_path, dataset="digits", hidden=[40], T1=10, T2=4, batch=50,
                          train_limit=500, test_limit=300, log=lambda s: None)
    zero, coarse = res["sweep"]
    assert zero["test_acc"] == pytest.approx(res["reference_test_acc"], abs=1e-9)  # threshold 0 is exact
    assert coarse["train_events_per_sample"] < zero["train_events_per_sample"] < zero["dense_train_messages_per_sample"]
    assert (tmp_path / "accuracy_vs_events.png").stat().st_size > 5000
    with pytest.raises(ValueError, match="thresholds"):
        run_event_sweep([-1.0], tmp_path)


def test_event_sweep_killed_mid_way_resumes_to_the_uninterrupted_results(tmp_path):
    from lavaplast.experiments.ep_events import run_event_sweep

    kw = dict(dataset="digits", hidden=[30], T1=8, T2=3, batch=50, train_limit=300, test_limit=200, epochs=2)
    whole = run_event_sweep([0.0, 0.05], tmp_path / "whole", log=lambda s: None, **kw)
    assert [h["epoch"] for h in whole["reference_history"]] == [1, 2]
    for row in whole["sweep"]:
        assert [h["epoch"] for h in row["history"]] == [1, 2]
        assert row["test_acc"] == row["history"][-1]["test_acc"]
        # events per training sample: the mean of the two epochs (equal numbers of samples)
        assert row["train_events_per_sample"] == pytest.approx(
            np.mean([h["train_events_per_sample"] for h in row["history"]]), rel=1e-12)
    # threshold 0 is exact: the same accuracy as the reference after every epoch
    assert [h["test_acc"] for h in whole["sweep"][0]["history"]] == [h["test_acc"] for h in whole["reference_history"]]

    class Killed(Exception):
        pass

    def kill_at(message):
        def log(s):
            if s.startswith(message):
                raise Killed(s)
        return log

    out = tmp_path / "killed"
    # killed after the first epoch of the second threshold (its checkpoint is written), then after the
    # reference finished (between two jobs), each time resumed with the same command
    with pytest.raises(Killed):
        run_event_sweep([0.0, 0.05], out, log=kill_at("threshold 0.05: epoch 1/2"), **kw)
    assert (out / "checkpoint.pt").exists() and not (out / "results.json").exists()
    with pytest.raises(RunFolderError, match="--resume"):
        run_event_sweep([0.0, 0.05], out, log=lambda s: None, **kw)
    with pytest.raises(ValueError, match="epochs 2 saved vs 3 now"):
        run_event_sweep([0.0, 0.05], out, resume=True, log=lambda s: None, **dict(kw, epochs=3))
    logged = []
    resumed = run_event_sweep([0.0, 0.05], out, resume=True, log=logged.append, **kw)
    assert logged[0].startswith(f"resuming from {out / 'checkpoint.pt'}: job 3 of 3, epoch 2")
    assert not any("reference" in s or "threshold 0:" in s for s in logged)  # finished jobs are not rerun
    assert not (out / "checkpoint.pt").exists()
    strip = lambda r: {k: v for k, v in r.items() if "seconds" not in k and "per_s" not in k}  # noqa: E731
    assert [strip(r) for r in resumed["sweep"]] == [strip(r) for r in whole["sweep"]]
    assert resumed["reference_history"] == whole["reference_history"]
    assert run_event_sweep([0.0, 0.05], out, resume=True, log=lambda s: None, **kw)["sweep"] == resumed["sweep"]

    out2 = tmp_path / "between_jobs"
    with pytest.raises(Killed):
        run_event_sweep([0.0, 0.05], out2, log=kill_at("rate-based reference: epoch 2/2"), **kw)
    again = run_event_sweep([0.0, 0.05], out2, resume=True, log=lambda s: None, **kw)
    assert [strip(r) for r in again["sweep"]] == [strip(r) for r in whole["sweep"]]


def test_binary_metaplastic_ep_on_lava_equals_the_reference():
    from lavaplast.reference.ep import BinaryEPNetwork

    x, y = _digits()
    kw = dict(T1=12, T2=4, beta=0.5, lrs=[0.05, 0.05], meta=3.0, lr=0.002, dtype=torch.float64, seed=1)
    net, ref = BinaryEPNetwork([64, 40, 10], **kw), BinaryEPNetwork([64, 40, 10], **kw)
    start = [h.clone() for h in net.hidden]
    order = np.random.default_rng(1).permutation(len(x))[: 16 * 10]
    LavaEPNetwork(net, batch=16).train(x, y, order)
    for k in range(0, len(order), 16):
        ref.train_batch(x[order[k:k + 16]], y[order[k:k + 16]])
    for h, hr, h0, w in zip(net.hidden, ref.hidden, start, net.weights):
        assert float((h - hr).abs().max()) < 1e-9
        assert float((h - h0).abs().max()) > 1e-3
        assert set(np.unique(np.abs(w.numpy()))) == {float(abs(w[0, 0]))}  # binary: one magnitude
    for b, br in zip(net.biases, ref.biases):
        assert float((b - br).abs().max()) < 1e-9


@pytest.mark.parametrize("binary", [False, True])
def test_the_network_is_described_by_a_graph_spec_that_reads_back_as_itself(tmp_path, binary):
    from lavaplast.graph.backends.learning import ep_network
    from lavaplast.graph.ep_network import ep_spec
    from lavaplast.graph.nir import write_graph_toml
    from lavaplast.graph.spec import load_graph
    from lavaplast.reference.ep import BinaryEPNetwork

    kw = dict(T1=9, T2=3, beta=0.3, nudging="one-sided", lrs=[0.2, 0.1], activation="logistic",
              dtype=torch.float64, seed=5)
    net = BinaryEPNetwork([64, 20, 10], meta=[1.0, 2.0], lr=0.01, **kw) if binary else EPNetwork([64, 20, 10], **kw)
    spec = ep_spec(net, threshold=0.02)
    assert [c.quantizer for c in spec.connections] == ["binary" if binary else "none"] * 2
    back = ep_network(load_graph(write_graph_toml(spec, tmp_path / "ep.toml")))
    assert type(back) is type(net)
    assert (back.T1, back.T2, back.beta, back.nudging, back.activation_name, list(back.lrs)) == \
        (9, 3, 0.3, "one-sided", "logistic", [0.2, 0.1])
    for a, b in zip(net.weights + net.biases, back.weights + back.biases):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    if binary:
        assert (list(back.meta), back.lr) == ([1.0, 2.0], 0.01)
        for a, b in zip(net.hidden, back.hidden):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
