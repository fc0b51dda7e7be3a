"""`lavaplast deploy`: a BNN trained by `lavaplast continual` runs as a graph file, on Lava and torch."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from lavaplast.cli import main as cli
from lavaplast.experiments import ContinualConfig, run_continual
from lavaplast.experiments.continual import build_model, build_tasks
from lavaplast.graph.backends import run_graph
from lavaplast.graph.deploy import deploy_run, weights_path
from lavaplast.graph.inputs import build_input
from lavaplast.graph.spec import GraphSpecError, NeuronFile, load_graph
from lavaplast.reference import load_batchnorm_state

TINY = dict(protocol="permuted", dataset="digits", n_tasks=2, hidden=[16], epochs=1, batch_size=50,
            eval_batch_size=300, lr=0.02, train_limit=300, test_limit=100, seed=0)


def _train(folder, **changes):
    config = ContinualConfig(**{**TINY, **changes})
    run_continual(config, folder, progress=False, log=lambda s: None)
    return config


@pytest.fixture(scope="module")
def running_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("running")
    return folder, _train(folder, batchnorm="running")


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch")
    return folder, _train(folder, batchnorm="batch")


def _reference(folder, config, task: int):
    """The trained BNN with task ``task``'s saved BatchNorm, in float64, and that task's permutation."""
    ckpt = torch.load(folder / "checkpoint.pt", weights_only=False)
    tasks = build_tasks(config)
    model = build_model(config, tasks[0].n_features, tasks[0].n_classes)
    model.load_state_dict(ckpt["model"])
    load_batchnorm_state(model, ckpt["bn_saved"][task - 1])
    return model.eval(), tasks[task - 1]


def _small(spec, samples: int):
    return spec.replace(input=dataclasses.replace(spec.input, samples=samples),
                        run=dataclasses.replace(spec.run, batch=samples))


@pytest.mark.parametrize("backend", ["lava", "torch"])
def test_deployed_graph_predicts_what_the_bnn_predicts(running_run, backend, tmp_path, request):
    if backend == "lava":
        request.getfixturevalue("no_lava_leftovers")
    folder, config = running_run
    # Task 1 of 2: its BatchNorm must be restored and its permutation folded into w0.
    done = deploy_run(folder, tmp_path / "g.toml", task=1)
    spec = _small(load_graph(done.graph), 60)
    inputs = build_input(spec)
    result = run_graph(spec, inputs, backend)

    model, task = _reference(folder, config, 1)
    # The network saw the task's permuted pixels; the graph reads the plain images.
    x = torch.from_numpy(inputs.values[:, task.info["permutation"]])
    with torch.no_grad():
        logits = model.double()(x).numpy()
    # Running-statistic BatchNorm folds exactly; the two differ by float64 rounding only.
    np.testing.assert_array_equal(result.predictions, logits.argmax(1))
    np.testing.assert_allclose(result.readout, logits, rtol=1e-9, atol=1e-9)


def test_batch_statistic_batchnorm_is_frozen_on_the_calibration_images(batch_run, tmp_path):
    folder, config = batch_run
    done = deploy_run(folder, tmp_path / "g.toml", calibration=200)
    assert (done.task, done.calibration) == (2, 200)
    model, task = _reference(folder, config, 2)
    calib = task.x_train[:200]
    # The graph reads plain pixels: undo the permutation the task applied.
    plain = np.empty_like(calib)
    plain[:, task.info["permutation"]] = calib
    np.save(tmp_path / "calib.npy", plain[None].astype(np.float64))
    spec = load_graph(done.graph)
    result = run_graph(spec, build_input(spec, input_file=tmp_path / "calib.npy"), "torch")
    # Batch-statistic BatchNorm normalises with the statistics of the batch it is given: on the
    # calibration images taken as one batch the network computes what the frozen fold computes
    # (up to float32 rounding of the network's own forward pass).
    with torch.no_grad():
        logits = model(torch.from_numpy(calib)).numpy()
    np.testing.assert_array_equal(result.predictions, logits.argmax(1))
    np.testing.assert_allclose(result.readout, logits, rtol=1e-4, atol=1e-4)


def test_cli_deploys_and_the_graph_runs(running_run, tmp_path, capsys):
    folder, _ = running_run
    graph = tmp_path / "deployed.toml"
    assert cli(["deploy", str(folder), "--to", str(graph)]) == 0
    out = capsys.readouterr().out
    assert "task 2" in out and str(weights_path(graph)) in out
    text = graph.read_text()
    assert 'gain = { file = "deployed.weights.npz", key = "gain0" }' in text
    spec = load_graph(graph)
    assert isinstance(spec.populations[0].params["gain"], NeuronFile)
    assert [p.neuron for p in spec.populations] == ["sign", "error"]
    assert (spec.input.encoding, spec.run.steps, spec.backends) == ("current", 1, ("lava", "torch"))
    with np.load(weights_path(graph)) as archive:
        assert set(archive.files) == {"w0", "gain0", "bias0", "w1", "gain1", "bias1"}
    assert cli(["run", str(graph), "--backend", "torch", "--samples", "50", "--out", str(tmp_path / "run"),
                "--no-progress"]) == 0
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["samples"] == 50 and saved["accuracy"] is not None
    # The files are there now: a second deploy needs --overwrite.
    capsys.readouterr()
    assert cli(["deploy", str(folder), "--to", str(graph)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli(["deploy", str(folder), "--to", str(graph), "--overwrite", "--task", "1"]) == 0


def _bad_folders(tmp_path, good):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "checkpoint.pt").write_bytes((good / "checkpoint.pt").read_bytes())
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "checkpoint.pt").write_bytes(b"not a checkpoint")
    (garbage / "results.json").write_text("{}")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    torch.save({"weights": 1}, foreign / "checkpoint.pt")
    (foreign / "results.json").write_text("{}")
    graph_run = tmp_path / "graph_run"
    graph_run.mkdir()
    (graph_run / "results.json").write_text("{}")
    empty = tmp_path / "empty"
    empty.mkdir()
    return {"missing": (tmp_path / "nope", "no such run folder"),
            "empty": (empty, "not a run folder of 'lavaplast continual'"),
            "unfinished": (unfinished, "unfinished run"),
            "garbage": (garbage, "cannot be read"),
            "foreign": (foreign, "is not a checkpoint of 'lavaplast continual'"),
            "results only": (graph_run, "no checkpoint.pt")}


def test_bad_run_folders_and_options_give_one_line(running_run, tmp_path, capsys):
    folder, _ = running_run
    cases = _bad_folders(tmp_path, folder)
    cases["task"] = (folder, "task must be between 1 and 2")
    for name, (run, expected) in cases.items():
        argv = ["deploy", str(run), "--to", str(tmp_path / f"{name.replace(' ', '_')}.toml")]
        if name == "task":
            argv += ["--task", "3"]
        assert cli(argv) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("lavaplast: error: "), (name, err)
        assert expected in err, (name, err)


def _graph_with_gain(tmp_path, gain: str) -> str:
    return f"""
name = "g"
backends = ["torch"]
[input]
size = 4
source = "external"
[[populations]]
name = "out"
size = 3
neuron = "error"
params = {{ gain = {gain} }}
[[connections]]
pre = "input"
post = "out"
[readout]
population = "out"
kind = "logits"
"""


@pytest.mark.parametrize("gain, field, problem", [
    ('{ file = "missing.npz", key = "g" }', "populations[0].params.gain.file", "does not exist"),
    ('{ file = "p.npz", key = "nope" }', "populations[0].params.gain.key", "expected one of g, bad, inf"),
    ('{ file = "p.npz", key = "bad" }', "populations[0].params.gain.key", "has shape (4,)"),
    ('{ file = "p.npz", key = "inf" }', "populations[0].params.gain.key", "NaN or infinite"),
    ('{ file = "p.npz" }', "populations[0].params.gain.key", "missing required field"),
    ('{ file = "p.npz", key = "g", scale = 2 }', "populations[0].params.gain.scale", "unknown field"),
])
def test_file_backed_neuron_parameters_are_validated(tmp_path, gain, field, problem):
    np.savez(tmp_path / "p.npz", g=np.array([1.0, 2.0, 3.0]), bad=np.ones(4), inf=np.array([1.0, np.inf, 0.0]))
    path = tmp_path / "g.toml"
    path.write_text(_graph_with_gain(tmp_path, gain))
    with pytest.raises(GraphSpecError) as err:
        load_graph(path)
    assert f"{path}: {field}: " in str(err.value) and problem in str(err.value)


def test_file_backed_neuron_parameters_load(tmp_path):
    np.savez(tmp_path / "p.npz", g=np.array([1.0, 2.0, 3.0]))
    path = tmp_path / "g.toml"
    path.write_text(_graph_with_gain(tmp_path, '{ file = "p.npz", key = "g" }'))
    gain = load_graph(path).populations[0].params["gain"]
    assert gain == NeuronFile(file=tmp_path / "p.npz", key="g", values=(1.0, 2.0, 3.0))
