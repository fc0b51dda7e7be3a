"""The rate trainer trains exactly the network the ``torch`` backend runs for a LIF graph."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from lavaplast.graph.backends import run_graph
from lavaplast.graph.inputs import build_input
from lavaplast.graph.spec import load_graph, parse_graph
from lavaplast.graph.train_rate import (
    _dataset,
    load_training_graph,
    main,
    rate_predictions,
    save_sign_weights,
    train_rate_network,
)

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
DEPLOY = PROCESSES / "mnist_lif_deploy.toml"


def _digits_graph(weights_file=None, samples: int = 300):
    conns = [dict(pre="input", post="hidden"), dict(pre="hidden", post="out")]
    if weights_file is not None:
        for i, c in enumerate(conns):
            c["weights"] = dict(file=str(weights_file), key=f"w{i}")
    data = dict(name="digits-lif", backends=["snntorch", "torch"],
                input=dict(size=64, dataset="digits", split="test", samples=samples, encoding="current"),
                populations=[dict(name="hidden", size=32, neuron="lif", params=dict(beta=0.95, threshold=8.0)),
                             dict(name="out", size=10, neuron="lif", params=dict(beta=0.95, threshold=17.0))],
                connections=conns, readout=dict(population="out", kind="spike_count"), run=dict(steps=32, batch=100))
    return parse_graph(data)


def test_training_reduces_loss_and_the_torch_backend_runs_what_was_trained(tmp_path):
    spec = _digits_graph()
    history = []
    weights = train_rate_network(spec, 4, 0.01, batch=20, history=history)
    assert len(history) == 4 and history[-1] < 0.7 * history[0], history
    assert [w.shape for w in weights.values()] == [(32, 64), (10, 32)]
    save_sign_weights(tmp_path / "w.npz", weights)
    trained = _digits_graph(tmp_path / "w.npz")
    run = run_graph(trained, build_input(trained), "torch")
    x, y = _dataset(spec, "test", 300)
    ours = rate_predictions(spec, list(weights.values()), x)
    np.testing.assert_array_equal(run.predictions, ours)
    assert run.accuracy == pytest.approx(100 * np.mean(ours == y))
    assert run.accuracy > 60


def test_weights_file_round_trips_through_the_graph_file(tmp_path):
    rng = np.random.default_rng(0)
    weights = {"w0": rng.normal(size=(32, 64)).astype(np.float32), "w1": rng.normal(size=(10, 32))}
    weights["w0"][0, 0] = 0.0  # sign(0) = +1, as the quantizer has it
    save_sign_weights(tmp_path / "w.npz", weights, test_accuracy=np.array(50.0))
    with np.load(tmp_path / "w.npz") as f:
        assert f["w0"].dtype == np.int8 and f["w0"][0, 0] == 1
    spec = _digits_graph(tmp_path / "w.npz")
    from lavaplast.graph.backends.base import hidden_weights

    for got, want in zip(hidden_weights(spec), weights.values()):
        np.testing.assert_array_equal(got, np.where(want >= 0, 1.0, -1.0))


@pytest.mark.parametrize("kwargs, needle", [
    (dict(epochs=0), "epochs"),
    (dict(epochs=1.5), "epochs"),
    (dict(lr=math.nan), "lr"),
    (dict(lr=-0.1), "lr"),
    (dict(batch=0), "batch"),
    (dict(temperature=math.inf), "temperature"),
])
def test_bad_arguments_are_refused(kwargs, needle):
    args = dict(epochs=1, lr=0.01) | kwargs
    with pytest.raises(ValueError, match=needle):
        train_rate_network(_digits_graph(), args.pop("epochs"), args.pop("lr"), train_samples=10, **args)


def test_graphs_it_cannot_train_are_refused():
    spec = load_graph(PROCESSES / "deploy_bnn.toml")
    with pytest.raises(ValueError, match=r"populations\[0\]\.neuron.*'lif'"):
        train_rate_network(spec, 1, 0.01)
    spec = _digits_graph()
    latency = spec.replace(input=dataclasses.replace(spec.input, encoding="latency"))
    with pytest.raises(ValueError, match="encoding"):
        train_rate_network(latency, 1, 0.01)


def test_command_line_writes_a_small_file(tmp_path, capsys):
    graph = tmp_path / "g.toml"
    graph.write_text((PROCESSES / "spiking_classifier.toml").read_text()
                     .replace('encoding = "rate"', 'encoding = "current"')
                     .replace("[[connections]]\npre = \"hidden\"",
                              "[[connections]]\nweights = { file = \"w.npz\", key = \"w1\" }\npre = \"hidden\""))
    assert main([str(graph), "--epochs", "1", "--train-samples", "200", "--out", str(tmp_path / "w.npz"),
                 "--no-progress"]) == 0
    assert "wrote" in capsys.readouterr().out
    spec = load_graph(graph)  # the weights file it names now exists
    assert spec.connections[1].weights.init == "file"
    assert load_training_graph(graph).connections[1].weights.init == "uniform"
    assert main([str(graph), "--epochs", "0", "--out", str(tmp_path / "x.npz")]) == 2
    assert "epochs" in capsys.readouterr().err and not (tmp_path / "x.npz").exists()


@pytest.mark.needs_full_data
def test_shipped_mnist_graph_rate_accuracy_matches_its_weights_file():
    from lavaplast import data

    if set(data.dataset_status("mnist").values()) != {"ok"}:
        pytest.skip("MNIST not in the data folder; run `make data`")
    spec = load_graph(DEPLOY)
    with np.load(spec.connections[0].weights.file) as f:
        assert f["w0"].dtype == np.int8 and float(f["test_accuracy"]) > 94
    assert DEPLOY.with_name("weights").joinpath(spec.connections[0].weights.file.name).stat().st_size < 200_000
    small = spec.replace(input=dataclasses.replace(spec.input, samples=200))
    run = run_graph(small, build_input(small, steps=1), "torch")
    from lavaplast.graph.backends.base import hidden_weights

    x, y = _dataset(spec, "test", 200)
    np.testing.assert_array_equal(run.predictions, rate_predictions(spec, hidden_weights(spec), x))
    assert run.accuracy > 90
