"""`lavaplast compare`: spike-for-spike agreement, accuracy against time steps, messages and synaptic operations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lavaplast.cli import main as cli
from lavaplast.graph.compare import OUTPUTS, compare_graph, differing_spikes
from lavaplast.graph.spec import load_graph

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
CLASSIFIER = PROCESSES / "spiking_classifier.toml"

TINY = """
name = "tiny"
backends = ["lava", "snntorch", "torch"]

[input]
size = 3
file = "input.npy"

[[populations]]
name = "hidden"
size = 2
neuron = "lif"
params = { beta = 0.0, threshold = 0.5 }

[[populations]]
name = "out"
size = 2
neuron = "lif"
params = { beta = 0.0, threshold = 0.5 }

[[connections]]
pre = "input"
post = "hidden"
weights = { file = "w0.npy" }

[[connections]]
pre = "hidden"
post = "out"
weights = { file = "w1.npy" }

[readout]
population = "out"
kind = "spike_count"

[run]
batch = 2
"""


@pytest.fixture
def tiny_graph(tmp_path):
    """A 3-2-2 graph whose every spike can be counted by hand.

    With ``beta = 0`` a neuron spikes exactly when its input in that step
    exceeds 0.5. ``hidden[0]`` sums the three inputs and ``hidden[1]`` their
    negation, so ``hidden[0]`` spikes in every step with an input spike and
    ``hidden[1]`` never; ``out[0]`` receives ``hidden[0] - hidden[1]`` and
    ``out[1]`` the opposite, so ``out[0]`` repeats ``hidden[0]`` one step
    later and ``out[1]`` never spikes.
    """
    folder = tmp_path / "tiny"
    folder.mkdir()
    np.save(folder / "w0.npy", np.array([[0.3, 0.2, 0.1], [-0.3, -0.2, -0.1]]))
    np.save(folder / "w1.npy", np.array([[0.4, -0.4], [-0.4, 0.4]]))
    data = np.zeros((3, 2, 3))
    data[0, 0, 0] = 1.0                       # sample 0: one input spike at step 0 ...
    data[2, 0, :2] = 1.0                      # ... and two at the last step: 3 input spikes
    data[1, 1, 1] = 1.0                       # sample 1: one input spike at step 1
    np.save(folder / "input.npy", data)
    (folder / "graph.toml").write_text(TINY)
    return folder / "graph.toml"


def test_messages_and_synops_match_a_hand_count(tiny_graph, no_lava_leftovers):
    result = compare_graph(load_graph(tiny_graph))
    assert result["steps"] == 3 and result["samples"] == 2
    assert result["accuracy_vs_steps"]["steps"] == [3]
    assert any("fixes T = 3" in note for note in result["notes"])
    # Input spikes: 3 + 1; hidden[0] spikes 2 + 1 times; out[0] the same, one step later.
    expected = {"input_messages": 2.0, "messages": {"hidden": 1.5, "out": 1.5}, "messages_total": 3.0,
                "synops": {"input->hidden": 2.0 * 2, "hidden->out": 1.5 * 2}, "synops_total": 7.0}
    for backend in ("lava", "snntorch"):
        cost = {k: v for k, v in result["cost"][backend].items() if k != "mode"}
        assert cost == expected, backend
    # Dense: every neuron once (2 + 2), every synapse once (3 * 2 + 2 * 2).
    rate = {k: v for k, v in result["cost"]["torch"].items() if k != "mode"}
    assert rate == {"input_messages": 3.0, "messages": {"hidden": 2.0, "out": 2.0}, "messages_total": 4.0,
                    "synops": {"input->hidden": 6.0, "hidden->out": 4.0}, "synops_total": 10.0}
    lava = result["runs"]["lava"]
    assert lava.records["hidden"][:, :, 0].sum(axis=0).tolist() == [2, 1]
    assert lava.records["out"][:, :, 0].sum(axis=0).tolist() == [2, 1]
    assert lava.records["hidden"][:, :, 1].sum() == 0 and lava.records["out"][:, :, 1].sum() == 0
    for pop in ("hidden", "out"):
        agreement = result["agreement"]["populations"][pop]
        assert agreement["differing"] == 0 and agreement["entries"] == (3 + 2) * 2 * 2
        assert agreement["spikes"] == {"lava": 3, "snntorch": 3} and agreement["fraction_equal"] == 1.0
    assert set(result["agreement"]["predictions"]) == {"lava-snntorch", "lava-torch", "snntorch-torch"}
    assert all(v["same"] == 2 for v in result["agreement"]["predictions"].values())
    assert result["accuracy_vs_steps"]["lava"] == [None] and result["accuracy_vs_steps"]["rate"] is None


def test_lava_and_snntorch_agree_spike_for_spike(no_lava_leftovers):
    spec = load_graph(CLASSIFIER)
    result = compare_graph(spec, samples=12, steps=(1, 4))
    assert result["backends"] == ["lava", "snntorch"] and result["steps"] == spec.run.steps
    assert differing_spikes(result) == 0
    for pop in spec.populations:
        agreement = result["agreement"]["populations"][pop.name]
        assert agreement["differing"] == 0 and agreement["fraction_equal"] == 1.0
        assert agreement["spikes"]["lava"] == agreement["spikes"]["snntorch"] > 0
        assert agreement["entries"] == (spec.run.steps + 2) * 12 * pop.size
    assert result["agreement"]["predictions"]["lava-snntorch"] == {"same": 12, "samples": 12, "fraction": 1.0}
    acc = result["accuracy_vs_steps"]
    assert acc["steps"] == [1, 4] and acc["lava"] == acc["snntorch"] and acc["differing_spikes"] == [0, 0]
    assert acc["rate"] is None and "does not declare the torch backend" in acc["rate_note"]
    # More time steps, more spikes: the cost of a spiking answer grows with T.
    assert acc["lava_messages_total"][0] < acc["lava_messages_total"][1]
    cost = result["cost"]["lava"]
    assert cost["synops_total"] == pytest.approx(cost["input_messages"] * 32 + cost["messages"]["hidden"] * 10)


def test_cli_compare_writes_its_outputs(tmp_path, capsys, no_lava_leftovers):
    out = tmp_path / "cmp"
    argv = ["compare", str(CLASSIFIER), "--samples", "10", "--steps", "2", "1", "--out", str(out), "--no-progress"]
    assert cli(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "differing spikes: 0" in printed and "accuracy vs T" in printed
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    data = json.loads((out / "compare.json").read_text())
    for key in ("graph", "command", "backends", "samples", "steps", "agreement", "accuracy", "accuracy_vs_steps",
                "cost", "seconds", "notes"):
        assert key in data, key
    assert "runs" not in data and data["graph"]["name"] == "spiking-binary-classifier"
    assert data["command"].startswith("lavaplast compare ") and "--steps 2 1" in data["command"]
    assert data["samples"] == 10 and data["accuracy_vs_steps"]["steps"] == [1, 2]
    assert set(data["cost"]) == {"lava", "snntorch"}
    report = (out / "report.md").read_text()
    for heading in ("## Agreement", "## Accuracy against time steps", "## Messages and synaptic operations"):
        assert heading in report
    assert "| hidden |" in report and data["command"] in report
    for name in ("rasters.png", "accuracy_vs_steps.png", "messages.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    # An existing comparison is refused without --overwrite and replaced with it.
    assert cli(argv) == 2
    assert "already holds a comparison" in capsys.readouterr().err
    assert cli(argv + ["--backends", "snntorch", "--overwrite"]) == 0
    assert json.loads((out / "compare.json").read_text())["backends"] == ["snntorch"]


def test_cli_compare_bad_input_is_one_line(tmp_path, cli_fails):
    out = tmp_path / "out"
    base = ["compare", str(CLASSIFIER), "--out", str(out), "--no-progress"]
    cli_fails(base + ["--backends", "lava", "loihi"], "unknown backend 'loihi'")
    cli_fails(base + ["--backends", "torch"], "backends", "declares lava, snntorch", "'torch'")
    cli_fails(base + ["--steps", "4", "0"], "steps", ">= 1", "[4, 0]")
    cli_fails(base + ["--samples", "0"], "--samples", ">= 1")
    cli_fails(["compare", str(PROCESSES / "onchip_continual.toml"), "--out", str(out)], "run.learning")
    cli_fails(["compare", str(tmp_path / "missing.toml"), "--out", str(out)], "no such graph file")
    assert not out.exists()
