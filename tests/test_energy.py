"""The energy account: closed-form counts, counts measured on Lava, the conversion to energy, the command."""

import json
import math

import numpy as np
import pytest

from lavaplast.core import energy as E
from lavaplast.experiments.energy import Network, account, energy_report, measure, networks_from_path

# --- constants ----------------------------------------------------------------------------------


def test_constants_have_sources_and_defaults():
    values = E.resolve_constants()
    assert values["loihi_synop_pj"] == 23.6
    assert values["loihi_synupdate_pj"] == 120.0
    assert values["gpu_fp32_mult_pj"] == 3.7 and values["gpu_fp32_add_pj"] == 0.9
    assert values["gpu_dram_32b_pj"] == 640.0
    for name, c in E.DEFAULT_CONSTANTS.items():
        assert c.source and c.check and c.unit, name
    # The unverified figures say so.
    assert "NOT VERIFIED" in E.DEFAULT_CONSTANTS["rram_program_pj"].check
    assert "2208.02651" in E.DEFAULT_CONSTANTS["rram_sense_pj"].source
    table = E.constants_table({"loihi_synop_pj": 10})
    assert table["loihi_synop_pj"]["value"] == 10 and table["loihi_synop_pj"]["default"] == 23.6
    assert table["loihi_synop_pj"]["overridden"] and not table["gpu_batch"]["overridden"]


@pytest.mark.parametrize("overrides, needle", [
    ({"loihi_synapse_pj": 1.0}, "unknown energy constant 'loihi_synapse_pj'"),
    ({"loihi_synop_pj": -1.0}, "loihi_synop_pj must be a finite number >= 0"),
    ({"loihi_synop_pj": float("nan")}, "loihi_synop_pj must be a finite number"),
    ({"gpu_dram_32b_pj": float("inf")}, "gpu_dram_32b_pj must be a finite number"),
    ({"gpu_batch": 0.5}, "gpu_batch must be a finite number >= 1"),
    ({"rram_flip_fraction": 1.5}, "rram_flip_fraction must be a fraction in [0, 1]"),
])
def test_bad_constants_are_refused(overrides, needle):
    with pytest.raises(ValueError) as err:
        E.resolve_constants(overrides)
    assert needle in str(err.value)


def test_parse_constant():
    assert E.parse_constant("loihi_synop_pj=12.5") == ("loihi_synop_pj", 12.5)
    for text, needle in [("loihi_synop_pj", "expected NAME=VALUE"), ("=3", "expected NAME=VALUE"),
                         ("loihi_synop_pj=abc", "'abc' is not a number"), ("nope=1", "unknown energy constant"),
                         ("loihi_synop_pj=-2", ">= 0"), ("loihi_synop_pj=inf", "finite")]:
        with pytest.raises(ValueError, match=None) as err:
            E.parse_constant(text)
        assert needle in str(err.value), (text, str(err.value))


# --- closed forms ----------------------------------------------------------------------------------


def test_dense_and_learning_counts_by_hand():
    sizes = [4, 3, 2]
    d = E.dense_pass(sizes)
    assert (d.synops, d.messages, d.neuron_updates, d.weight_reads) == (18, 9, 5, 18)
    assert d.bits == 9 * 32
    assert E.dense_pass(sizes, steps=5).synops == 90
    learn = E.local_learning(sizes, "adam")
    # 18 synapses; gradients 18 + feedback 3 x 2; one error message of 2 values to the hidden layer.
    assert (learn.synapse_updates, learn.learning_macs, learn.messages) == (18, 24, 2)
    assert (learn.state_reads, learn.state_writes, learn.update_ops) == (54, 54, 72)
    sgd = E.local_learning(sizes, "sgd", feedback=False)
    assert (sgd.learning_macs, sgd.state_writes, sgd.update_ops, sgd.messages) == (18, 18, 18, 0)
    t = E.dense_training(sizes, "adam")
    assert t.synops == 18 and t.synapse_updates == 18 and t.messages == 11
    with pytest.raises(ValueError, match="optimizer must be one of"):
        E.local_learning(sizes, "rmsprop")


def test_ep_counts_by_hand():
    sizes = [4, 3, 2]
    # Per step after the input's drive: up 3 x 2 plus down 2 x 3.
    assert E.ep_step_synops(sizes) == 12
    d = E.ep_dense(sizes, 10)
    assert d.synops == 4 * 3 + 10 * 12 and d.neuron_updates == 50 and d.messages == 4 + 50
    assert E.ep_rate_steps(30, 10, "symmetric") == 50 and E.ep_rate_steps(30, 10, "one-sided") == 40
    learn = E.ep_learning(sizes, "sgd")
    assert learn.learning_macs == 36 and learn.synapse_updates == 18
    # events: input 3 values -> 3 x 3; layer 1: 5 events up to 2 neurons; layer 2: 4 events down to 3.
    ev = E.ep_events(sizes, 3, [5, 4], steps=7)
    assert ev.synops == 9 + 10 + 12 and ev.messages == 12 and ev.neuron_updates == 35 and ev.bits == 12 * 32
    with pytest.raises(ValueError, match="one number per population"):
        E.ep_events(sizes, 3, [5], steps=7)


def test_event_forward_by_hand():
    ev = E.event_forward([4, 3, 2], [6, 9, 4], steps=5, bits_per_message=[1, 1, 32])
    assert ev.synops == 6 * 3 + 9 * 2 and ev.messages == 19 and ev.bits == 6 + 9 + 4 * 32
    assert ev.neuron_updates == 25 and ev.weight_reads == ev.synops
    with pytest.raises(ValueError, match="messages of the input and of each population"):
        E.event_forward([4, 3, 2], [6, 9], steps=5)


def test_energy_conversion_equals_hand_computation():
    c = E.OpCounts(synops=1000, messages=50, bits=80, neuron_updates=200, weight_reads=1000, state_reads=30,
                   state_writes=30, synapse_updates=10, learning_macs=12, update_ops=40)
    loihi = E.energy(c, "loihi")
    assert loihi["total"] == pytest.approx(1000 * 23.6 + 200 * 81 + 50 * (1.7 + 1 * 3.0) + 10 * 120)
    gpu = E.energy(c, "gpu", {"gpu_batch": 10})
    mac = 3.7 + 0.9
    assert gpu["total"] == pytest.approx(1000 * mac + 200 * 0.9 + 50 * 5.0 + (1000 + 30 + 30) * 640 / 10
                                         + (12 + 40 / 10) * mac)
    rram = E.energy(c, "rram", {"rram_flip_fraction": 0.25})
    assert rram["total"] == pytest.approx(1000 * (0.017 + 0.1) + 200 * 0.1 + (12 + 40) * mac + 60 * 5.0
                                          + 10 * 0.25 * 10.0)
    assert math.fsum(rram["parts"].values()) == pytest.approx(rram["total"])
    # An override changes exactly its term.
    cheaper = E.energy(c, "loihi", {"loihi_synop_pj": 3.6})
    assert loihi["total"] - cheaper["total"] == pytest.approx(1000 * 20.0)
    with pytest.raises(ValueError, match="substrate must be one of"):
        E.energy(c, "tpu")


# --- counts measured on Lava ---------------------------------------------------------------------


def _known_graph(tmp_path, spikes):
    """A 4-3-2 graph of LIF neurons (beta 0, threshold 0.5) behind all-(+1) weights: a neuron fires at a step
    exactly when any of its inputs fired one synaptic delay earlier."""
    np.save(tmp_path / "x.npy", spikes)
    np.save(tmp_path / "w0.npy", np.ones((3, 4)))
    np.save(tmp_path / "w1.npy", np.ones((2, 3)))
    (tmp_path / "g.toml").write_text("""
name = "known"
backends = ["lava"]
[input]
size = 4
file = "x.npy"
[[populations]]
name = "hidden"
size = 3
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
""")
    return tmp_path / "g.toml"


def test_lava_counts_equal_closed_form(tmp_path, no_lava_leftovers):
    rng = np.random.default_rng(3)
    T, B = 7, 3
    spikes = (rng.random((T, B, 4)) < 0.3).astype(float)
    spikes[2, 0] = 0.0  # a silent step
    graph = _known_graph(tmp_path, spikes)
    kind, nets = networks_from_path(graph, samples=5)
    activity = measure(nets[0].spec)
    # Closed form: every hidden neuron fires for each (step, sample) with an input spike, and every output
    # neuron one step later.
    K = int(np.count_nonzero(spikes.any(axis=2)))
    assert activity["samples"] == B and activity["steps"] == T
    assert activity["input_messages"] == pytest.approx(np.count_nonzero(spikes) / B)
    assert activity["messages"] == pytest.approx({"hidden": 3 * K / B, "out": 2 * K / B})
    entry = account(nets[0], activity)
    inf = entry["counts"]["inference"]
    assert inf["events_measured"]["synops"] == pytest.approx((np.count_nonzero(spikes) * 3 + 3 * K * 2) / B)
    assert inf["events_measured"]["messages"] == pytest.approx((np.count_nonzero(spikes) + 5 * K) / B)
    assert inf["events_measured"]["bits"] == inf["events_measured"]["messages"]  # one bit per spike
    assert inf["events_measured"]["neuron_updates"] == T * 5
    assert inf["events_dense"]["synops"] == T * (4 * 3 + 3 * 2)
    assert inf["rate_dense"]["synops"] == 4 * 3 + 3 * 2
    # The energy is the hand computation on these counts.
    m = inf["events_measured"]
    assert entry["energy_pj"]["inference"]["loihi"]["total"] == pytest.approx(
        m["synops"] * 23.6 + m["neuron_updates"] * 81.0 + m["messages"] * 4.7)
    tr = entry["counts"]["training"]["events_measured"]
    assert tr["synapse_updates"] == 18 and tr["synops"] == m["synops"]
    assert entry["energy_pj"]["training"]["loihi"]["total"] == pytest.approx(
        entry["energy_pj"]["inference"]["loihi"]["total"] + 18 * 120.0 + 1 * 2 * 4.7)


def test_sign_graph_messages_equal_numpy_forward(no_lava_leftovers):
    """deploy_bnn on Lava: every hidden sign neuron sends one message per sample, the output its non-zero logits,
    exactly as a numpy forward pass of the same weights says."""
    from lavaplast.graph.backends.base import hidden_weights, per_neuron
    from lavaplast.graph.inputs import dataset_values

    N = 7
    _, nets = networks_from_path("processes/deploy_bnn.toml", samples=N)
    spec = nets[0].spec
    activity = measure(spec)
    x, _ = dataset_values(spec)
    w0, w1 = (np.where(w >= 0, 1.0, -1.0) for w in hidden_weights(spec))
    h, o = spec.populations
    hidden = np.where(per_neuron(h.params["gain"], 32) * (x @ w0.T) + per_neuron(h.params["bias"], 32) >= 0,
                      1.0, -1.0)
    logits = per_neuron(o.params["gain"], 10) * (hidden @ w1.T) + per_neuron(o.params["bias"], 10)
    assert activity["messages"]["hidden"] == 32
    assert activity["messages"]["out"] == pytest.approx(np.count_nonzero(logits) / N)
    assert activity["input_messages"] == pytest.approx(np.count_nonzero(x) / N)
    assert activity["bits"] == {"hidden": 1, "out": 32} and activity["input_bits"] == 32


def test_ep_graph_events(no_lava_leftovers):
    from lavaplast.graph.ep_network import LavaEPNetwork
    from lavaplast.graph.backends.learning import ep_network

    _, nets = networks_from_path("processes/event_driven_ep.toml", samples=5)
    spec = nets[0].spec
    activity = measure(spec)
    entry = account(nets[0], activity)
    tr = activity["training"]
    assert tr["samples"] == 5 and tr["steps"] == 20 + 2 * 6 + 2
    dense = entry["counts"]["training"]["events_dense"]
    # The dense equivalent sends every state at every window step: LavaEPNetwork's own closed form, plus the
    # input's values.
    lava = LavaEPNetwork(ep_network(spec), batch=5)
    assert dense["messages"] - spec.input.size == lava.dense_messages_per_sample()
    events = sum(tr["events"].values())
    assert 0 < events <= lava.dense_messages_per_sample()
    measured = entry["counts"]["training"]["events_measured"]
    assert measured["messages"] == pytest.approx(tr["input_messages"] + events)
    assert measured["synapse_updates"] == 64 * 32 + 32 * 10
    assert entry["energy_pj"]["training"]["loihi"]["total"] < entry["energy_pj"]["training"]["loihi_dense"]["total"]


def test_run_folders(tmp_path, no_lava_leftovers):
    onchip = tmp_path / "onchip"
    onchip.mkdir()
    (onchip / "results.json").write_text(json.dumps({
        "config": {"dataset": "digits", "hidden": [16], "neuron": "sign", "steps": 10, "seed": 0,
                   "protocol": "permuted"},
        "sizes": [64, 16, 10]}))
    report = energy_report(onchip, samples=4)
    (entry,) = report["networks"]
    assert entry["sizes"] == [64, 16, 10] and entry["neurons"] == "sign"
    assert entry["activity"]["messages"]["layer1"] == 16  # every sign neuron, once per sample
    assert set(entry["energy_pj"]["inference"]) == {"gpu", "rram", "loihi", "loihi_dense"}

    lif = tmp_path / "lif"
    lif.mkdir()
    (lif / "results.json").write_text(json.dumps({
        "config": {"dataset": "digits", "hidden": [16], "neuron": "lif", "steps": 5, "seed": 0},
        "sizes": [64, 16, 10]}))
    (net,) = networks_from_path(lif, samples=3)[1]
    assert [p.params["threshold"] for p in net.spec.populations] == [4.0, 2.0]  # sqrt(fan_in) / 2
    assert net.spec.run.steps == 5 and net.spec.input.encoding == "rate"
    (entry,) = energy_report(lif, samples=3)["networks"]
    assert entry["neurons"] == "lif" and entry["activity"]["steps"] == 5

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "results.json").write_text(json.dumps({
        "dataset": "digits", "sizes": [64, 12, 10], "T1": 8, "T2": 3, "beta": 0.5, "lrs": [0.1, 0.05],
        "batch": 4, "seed": 0, "sweep": [{"threshold": 0.0}, {"threshold": 0.2}]}))
    report = energy_report(sweep, samples=4)
    a, b = report["networks"]
    assert a["label"].endswith("threshold 0") and b["label"].endswith("threshold 0.2")
    assert "rram" not in a["energy_pj"]["inference"]  # full-precision EP synapses
    ev = [sum(n["activity"]["training"]["events"].values()) for n in (a, b)]
    assert ev[1] < ev[0]

    fp = tmp_path / "fp"
    fp.mkdir()
    (fp / "results.json").write_text(json.dumps({"config": {"model": "fp", "batchnorm": "batch",
                                                            "hidden": [8], "dataset": "digits", "seed": 0}}))
    with pytest.raises(ValueError, match="model 'fp'"):
        energy_report(fp, samples=2)
    with pytest.raises(ValueError, match="holds no results.json"):
        energy_report(tmp_path, samples=2)


# --- the command ---------------------------------------------------------------------------------


def test_cli_writes_report(tmp_path, capsys, no_lava_leftovers):
    from lavaplast.cli import main

    out = tmp_path / "e"
    argv = ["energy", "processes/spiking_classifier.toml", "--samples", "3", "--constant", "loihi_synop_pj=10",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Loihi-class" in printed and "wrote" in printed
    assert (out / "energy.png").stat().st_size > 0
    report = json.loads((out / "energy.json").read_text())
    assert report["constants"]["loihi_synop_pj"]["value"] == 10
    assert "--constant loihi_synop_pj=10" in report["command"]
    (entry,) = report["networks"]
    m = entry["counts"]["inference"]["events_measured"]
    assert entry["energy_pj"]["inference"]["loihi"]["total"] == pytest.approx(
        m["synops"] * 10 + m["neuron_updates"] * 81 + m["messages"] * 4.7)
    assert entry["activity"]["samples"] == 3
    assert report["markdown"].startswith("| network |")
    # A second run into the same folder is refused, --overwrite replaces it.
    assert main(argv) == 2
    assert "already holds an energy report" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0


@pytest.mark.parametrize("extra, needle", [
    (["--constant", "loihi_synop_pj=-1"], "loihi_synop_pj must be a finite number >= 0"),
    (["--constant", "loihi_synop_pj=nan"], "must be a finite number"),
    (["--constant", "warp_pj=3"], "unknown energy constant 'warp_pj'"),
    (["--constant", "loihi_synop_pj"], "expected NAME=VALUE"),
    (["--samples", "0"], "--samples must be >= 1"),
])
def test_cli_rejects_bad_input(tmp_path, cli_fails, extra, needle):
    cli_fails(["energy", "processes/spiking_classifier.toml", "--out", str(tmp_path / "x"), *extra], needle)
    assert not (tmp_path / "x").exists()


def test_cli_rejects_bad_paths(tmp_path, cli_fails):
    cli_fails(["energy", str(tmp_path / "missing.toml")], "no such graph file or run folder")
    (tmp_path / "notes.txt").write_text("x")
    cli_fails(["energy", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "o")], "expected a graph file")
    cli_fails(["energy", str(tmp_path), "--out", str(tmp_path / "o")], "holds no results.json")
    assert not (tmp_path / "o").exists()


def test_network_label_and_optimizer():
    _, nets = networks_from_path("processes/onchip_continual.toml", samples=3)
    assert isinstance(nets[0], Network) and nets[0].optimizer == "adam" and nets[0].label == "onchip-continual"


def test_external_input_graph_is_refused(tmp_path):
    text = open("processes/spiking_classifier.toml").read()
    start, end = text.index("[input]"), text.index("[[populations]]")
    (tmp_path / "g.toml").write_text(text[:start] + '[input]\nsize = 64\nsource = "external"\n\n' + text[end:])
    with pytest.raises(ValueError, match="input.source is 'external'"):
        networks_from_path(tmp_path / "g.toml", samples=2)
