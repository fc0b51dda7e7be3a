"""Spiking binary network: the Lava graph against its snnTorch twin, spike for spike."""

import time

import numpy as np
import pytest
import torch

from lavaplast.data import load_dataset
from lavaplast.reference.spiking import SpikingBinaryMLP, lava_decay, rate_encode

pytest.importorskip("lava")
from lavaplast.graph.spiking import LavaSpikingBinaryMLP  # noqa: E402

pytestmark = pytest.mark.usefixtures("no_lava_leftovers")

B, T = 8, 20
# Binary synapses only see the sign of the hidden weights, so activity is set
# by the threshold: 2.0 keeps both layers moderately active, and integer
# currents after a reset hit v == threshold exactly, which exercises the
# strict ">" of both simulators.
BETA, THRESHOLD = 0.9, 2.0


def _weights(sizes, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n_out, n_in)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]


@pytest.fixture(scope="module")
def digit_spikes():
    x, y = load_dataset("digits", "test")
    return rate_encode(x[:B].reshape(B, -1) / 255.0, T, seed=0)


def test_lava_matches_snntorch_spike_for_spike(digit_spikes):
    weights = _weights([64, 32, 10])
    twin = SpikingBinaryMLP(weights, beta=BETA, threshold=THRESHOLD)
    with torch.no_grad():
        ref_trains, ref_counts, ref_mems = twin(digit_spikes, return_membranes=True)

    t0 = time.perf_counter()
    net = LavaSpikingBinaryMLP(weights, beta=BETA, threshold=THRESHOLD, batch=B, timeout=60)
    trains, counts = net.run(digit_spikes)
    elapsed = time.perf_counter() - t0

    assert len(trains) == 2
    for l, (lava_spk, ref_spk) in enumerate(zip(trains, ref_trains)):
        assert lava_spk.shape == (T + 2, B, net.sizes[l + 1])
        active = lava_spk.mean()
        assert 0.01 < active < 0.9, f"layer {l}: {active:.3f} of entries spike"
        np.testing.assert_array_equal(lava_spk, ref_spk.numpy(), err_msg=f"layer {l} spike trains differ")
        # The strict-threshold edge case really occurred.
        assert (ref_mems[l] == THRESHOLD).any()
    # Delays: layer l cannot spike before step l (0-based); nothing reaches it at step 0.
    assert not trains[0][0].any() and not trains[1][:2].any()
    np.testing.assert_array_equal(counts, ref_counts.numpy())
    np.testing.assert_array_equal(counts.argmax(1), twin.predict(digit_spikes).numpy())
    assert elapsed < 60


def test_twin_delay_and_decay():
    # One input neuron, one synapse of +1 per layer, one spike at input step 0.
    w = [np.ones((1, 1)), np.ones((1, 1))]
    x = np.zeros((3, 1, 1))
    x[0] = 1.0
    twin = SpikingBinaryMLP(w, beta=0.5, threshold=0.5)
    spikes, counts = twin(x)
    assert spikes[0][:, 0, 0].tolist() == [0, 1, 0, 0, 0]  # reaches layer 1 one step later
    assert spikes[1][:, 0, 0].tolist() == [0, 0, 1, 0, 0]  # and layer 2 one more step later
    assert counts.tolist() == [[1.0]]
    assert lava_decay(0.9) == 1 - (1 - 0.9)


def test_rate_encode():
    x = np.array([[0.0, 1.0, 0.5]])
    s = rate_encode(x, 400, seed=3)
    assert s.shape == (400, 1, 3)
    assert set(np.unique(s)) <= {0.0, 1.0}
    assert s[:, 0, 0].sum() == 0 and s[:, 0, 1].sum() == 400
    assert 150 < s[:, 0, 2].sum() < 250
    np.testing.assert_array_equal(s, rate_encode(x, 400, seed=3))
    with pytest.raises(ValueError, match="rates in"):
        rate_encode(np.array([1.5]), 5)
    with pytest.raises(ValueError, match="T must be"):
        rate_encode(x, 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(hidden_weights=[]), "non-empty list"),
        (dict(hidden_weights=np.ones((3, 4))), "non-empty list"),
        (dict(hidden_weights=[np.ones(4)]), r"hidden_weights\[0\] must be a non-empty 2-D"),
        (dict(hidden_weights=[np.ones((3, 4)), np.ones((2, 5))]), "has 5 inputs but layer 0 has 3 outputs"),
        (dict(hidden_weights=[np.full((3, 4), np.nan)]), "NaN"),
        (dict(beta=1.0), r"beta must be a number in \[0, 1\)"),
        (dict(beta=-0.1), r"beta must be a number in \[0, 1\)"),
        (dict(threshold=0.0), "threshold must be a finite number > 0"),
        (dict(batch=0), "batch must be an integer >= 1"),
        (dict(timeout=0), "timeout must be a finite number > 0"),
    ],
)
def test_bad_parameters(kwargs, match):
    args = dict(hidden_weights=[np.ones((3, 4))], beta=0.9, threshold=1.0, batch=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        LavaSpikingBinaryMLP(args.pop("hidden_weights"), **args)
    if "batch" not in kwargs and "timeout" not in kwargs:
        args.pop("batch")
        with pytest.raises(ValueError, match=match):
            SpikingBinaryMLP(kwargs.get("hidden_weights", [np.ones((3, 4))]), **args)


@pytest.mark.parametrize("shape", [(5, 2), (5, 3, 4), (5, 2, 3), (0, 2, 4)])
def test_bad_spike_shapes(shape):
    net = LavaSpikingBinaryMLP([np.ones((3, 4))], batch=2)
    with pytest.raises(ValueError, match=r"spikes must have shape \(T, 2, 4\)"):
        net.run(np.zeros(shape))


def test_bad_twin_input():
    twin = SpikingBinaryMLP([np.ones((3, 4))])
    with pytest.raises(ValueError, match=r"input must have shape \(T, B, 4\)"):
        twin(np.zeros((5, 2, 3)))
    with pytest.raises(ValueError, match="n_steps"):
        twin(np.zeros((5, 2, 4)), n_steps=0)


def test_its_graph_spec_runs_the_same_on_every_backend_of_graph_files(digit_spikes):
    from lavaplast.graph.backends import run_graph
    from lavaplast.graph.inputs import GraphInput

    weights = _weights([64, 16, 10], seed=3)
    net = LavaSpikingBinaryMLP(weights, beta=[0.8, 0.9], threshold=THRESHOLD, batch=B, timeout=60)
    spec = net.spec
    assert [p.params["beta"] for p in spec.populations] == [0.8, 0.9]
    trains, counts = net.run(digit_spikes)
    inputs = GraphInput(data=digit_spikes, values=digit_spikes.mean(0), labels=None, source="test")
    twin = run_graph(spec, inputs, "snntorch")
    for name, lava_spk in zip(["layer1", "layer2"], trains):
        np.testing.assert_array_equal(twin.records[name], lava_spk)
    np.testing.assert_array_equal(twin.readout, counts)
