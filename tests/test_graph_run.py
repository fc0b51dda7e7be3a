"""Graph files run: every shipped graph on every backend it declares, Lava against its twins, `lavaplast run`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lavaplast.cli import main as cli
from lavaplast.graph.backends import run_graph
from lavaplast.graph.backends.torch import lif_rate
from lavaplast.graph.inputs import build_input, encode
from lavaplast.graph.spec import load_graph

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
GRAPHS = sorted(PROCESSES.glob("*.toml"))
CLASSIFIER = PROCESSES / "spiking_classifier.toml"


def _small(spec, samples: int = 10, batch: int = 5):
    return spec.replace(input=dataclasses.replace(spec.input, samples=samples),
                        run=dataclasses.replace(spec.run, batch=batch))


def _cases():
    return [pytest.param(path, backend, id=f"{path.stem}-{backend}")
            for path in GRAPHS for backend in load_graph(path).backends]


def _skip_without_dataset(spec) -> None:
    """Skip a graph whose dataset files (full MNIST, Fashion-MNIST) are not downloaded."""
    from lavaplast.data import dataset_status
    from lavaplast.data.registry import PACKAGED_DATASETS

    if spec.input.source != "dataset" or spec.input.dataset in PACKAGED_DATASETS:
        return
    status = dataset_status(spec.input.dataset)
    if set(status.values()) != {"ok"}:
        pytest.skip(f"{spec.input.dataset} files not available ({status}); run `make data`")


@pytest.mark.parametrize("path, backend", _cases())
def test_every_graph_runs_on_every_declared_backend(path, backend, request):
    spec = _small(load_graph(path))
    _skip_without_dataset(spec)
    if backend == "lava":
        request.getfixturevalue("no_lava_leftovers")
    inputs = build_input(spec, steps=min(spec.run.steps, 8))
    run = run_graph(spec, inputs, backend)
    assert run.backend == backend
    assert run.predictions.shape == (10,)
    assert run.readout.shape == (10, spec.population(spec.readout.population).size)
    assert np.isfinite(run.readout).all()
    assert run.accuracy is not None and 0 <= run.accuracy <= 100
    assert run.records, "nothing recorded"
    for name, record in run.records.items():
        assert record.ndim == 3 and record.shape[1:] == (10, spec.population(name).size), name
    assert run.seconds > 0


def test_lava_matches_snntorch_from_one_graph_file(no_lava_leftovers):
    spec = load_graph(CLASSIFIER)
    inputs = build_input(spec)
    lava, twin = run_graph(spec, inputs, "lava"), run_graph(spec, inputs, "snntorch")
    n_layers = len(spec.populations)
    for pop in spec.populations:
        a, b = lava.records[pop.name], twin.records[pop.name]
        assert a.shape == (spec.run.steps + n_layers, spec.input.samples, pop.size)
        assert 0.01 < a.mean() < 0.9, f"{pop.name}: activity {a.mean():.3f} proves little"
        assert int((a != b).sum()) == 0, f"{pop.name}: {int((a != b).sum())} spikes differ"
    assert lava.counts == twin.counts
    np.testing.assert_array_equal(lava.predictions, twin.predictions)


def test_membrane_readout_matches_between_lava_and_snntorch(no_lava_leftovers):
    from lavaplast.graph.spec import ReadoutSpec

    spec = _small(load_graph(CLASSIFIER), samples=6, batch=6)
    spec = spec.replace(readout=ReadoutSpec(population="out", kind="membrane"))
    inputs = build_input(spec, steps=10)
    lava, twin = run_graph(spec, inputs, "lava"), run_graph(spec, inputs, "snntorch")
    np.testing.assert_array_equal(lava.readout, twin.readout)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.97])
def test_lif_rate_matches_a_long_simulation(beta):
    import snntorch as snn

    from lavaplast.reference.spiking import lava_decay

    threshold, steps = 1.0, 4000
    currents = np.concatenate([np.linspace(-0.5, 3.0, 57), [threshold * (1 - beta) * 1.0001, 0.0]])
    neuron = snn.Leaky(beta=torch.tensor(lava_decay(beta), dtype=torch.float64),
                       threshold=torch.tensor(threshold, dtype=torch.float64), reset_mechanism="zero")
    cur = torch.tensor(currents, dtype=torch.float64)
    mem, spikes = torch.zeros_like(cur), torch.zeros_like(cur)
    with torch.no_grad():
        for _ in range(steps):
            spk, mem = neuron(cur, mem)
            spikes += spk
    simulated = spikes.numpy() / steps
    predicted = lif_rate(currents, beta, threshold)
    # A periodic neuron fires floor(steps / k) times in `steps` steps.
    np.testing.assert_allclose(simulated, np.floor(steps * predicted + 1e-9) / steps, atol=0)
    assert predicted[currents <= (threshold * (1 - beta) if beta else threshold)].max() == 0


def test_encodings():
    v = np.array([[0.0, 0.25, 1.0, 0.5]])
    latency = encode(v, "latency", 5)
    assert latency.sum(0).tolist() == [[0, 1, 1, 1]]
    assert latency[:, 0, 2].argmax() == 0 and latency[:, 0, 1].argmax() == 3 and latency[:, 0, 3].argmax() == 2
    np.testing.assert_array_equal(encode(v, "current", 3), np.repeat(v[None], 3, axis=0))
    rate = encode(np.full((2, 3), 0.3), "rate", 2000, seed=1)
    assert set(np.unique(rate)) <= {0.0, 1.0} and abs(rate.mean() - 0.3) < 0.02


def test_input_override(tmp_path, no_lava_leftovers):
    spec = load_graph(CLASSIFIER)
    data = np.random.default_rng(0).random((7, 3, spec.input.size)) < 0.2
    np.save(tmp_path / "in.npy", data.astype(np.float32))
    inputs = build_input(spec, input_file=tmp_path / "in.npy")
    assert inputs.data.shape == (7, 3, 64) and inputs.labels is None
    lava, twin = run_graph(spec, inputs, "lava"), run_graph(spec, inputs, "snntorch")
    assert lava.accuracy is None and lava.records["out"].shape == (9, 3, 10)
    for name in lava.records:
        np.testing.assert_array_equal(lava.records[name], twin.records[name])


def test_cli_run_writes_results(tmp_path, capsys, no_lava_leftovers):
    out = tmp_path / "run"
    argv = ["run", str(CLASSIFIER), "--samples", "12", "--steps", "10", "--out", str(out), "--no-progress"]
    assert cli(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "spiking-binary-classifier: 64 -> 32 -> 10" in printed and "spikes per sample" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["backend"] == "lava" and results["samples"] == 12 and results["steps"] == 12
    assert results["graph"]["name"] == "spiking-binary-classifier"
    assert set(results["counts"]) == {"hidden", "out"} and results["accuracy"] is not None
    with np.load(out / "spikes.npz") as spikes:
        assert spikes["hidden"].shape == (12, 12, 32) and spikes["out"].shape == (12, 12, 10)
        assert int(spikes["out"].sum()) == results["counts"]["out"]
    assert (out / "raster.png").read_bytes()[:4] == b"\x89PNG"
    # An existing run is refused without --overwrite, replaced with it.
    assert cli(argv[:-1] + ["--backend", "snntorch", "--no-progress"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert cli(argv + ["--backend", "snntorch", "--overwrite"]) == 0
    assert json.loads((out / "results.json").read_text())["backend"] == "snntorch"


def test_cli_bad_input_and_backend(tmp_path, cli_fails):
    out = str(tmp_path / "out")
    np.save(tmp_path / "shape.npy", np.zeros((5, 2, 63)))
    cli_fails(["run", str(CLASSIFIER), "--input", str(tmp_path / "shape.npy"), "--out", out],
           "shape.npy", "(5, 2, 63)", "(T, B, 64)")
    bad = np.zeros((5, 2, 64))
    bad[1, 1, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    cli_fails(["run", str(CLASSIFIER), "--input", str(tmp_path / "nan.npy"), "--out", out], "nan.npy", "NaN")
    cli_fails(["run", str(CLASSIFIER), "--backend", "torch", "--out", out], "backends", "'torch'")
    cli_fails(["run", str(PROCESSES / "deploy_bnn.toml"), "--backend", "snntorch", "--out", out],
           "backends", "'snntorch'")
    assert not (tmp_path / "out").exists()


def test_deploy_bnn_lava_equals_torch_and_learning_twins_agree(no_lava_leftovers):
    spec = _small(load_graph(PROCESSES / "deploy_bnn.toml"), samples=40, batch=20)
    inputs = build_input(spec)
    lava, ref = run_graph(spec, inputs, "lava"), run_graph(spec, inputs, "torch")
    np.testing.assert_array_equal(lava.readout, ref.readout)
    assert lava.accuracy > 60
    spec = _small(load_graph(PROCESSES / "onchip_continual.toml"), samples=20, batch=5)
    inputs = build_input(spec)
    lava, twin = run_graph(spec, inputs, "lava"), run_graph(spec, inputs, "torch")
    assert lava.info["train_samples"] == 20
    np.testing.assert_array_equal(lava.readout, twin.readout)
