"""The graph specification: every class of malformed graph gets a message that
names the file, the field (dotted path), the bad value and what was expected."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from lavaplast.graph.spec import GraphSpecError, load_graph, load_weights, parse_graph

PROCESSES = sorted((Path(__file__).resolve().parent.parent / "processes").glob("*.toml"))

BASE = {
    "name": "t",
    "backends": ["lava", "snntorch"],
    "input": {"size": 4, "dataset": "digits", "samples": 2},
    "populations": [
        {"name": "hidden", "size": 3, "neuron": "lif", "params": {"beta": 0.5, "threshold": 1.0}},
        {"name": "out", "size": 2, "neuron": "lif"},
    ],
    "connections": [{"pre": "input", "post": "hidden"}, {"pre": "hidden", "post": "out"}],
    "readout": {"population": "out", "kind": "spike_count"},
    "run": {"steps": 5, "batch": 2},
}


def _with(change) -> dict:
    data = copy.deepcopy(BASE)
    change(data)
    return data


def _set(path: str, value):
    def change(data):
        *keys, last = path.split(".")
        node = data
        for k in keys:
            node = node[int(k)] if isinstance(node, list) else node[k]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return change


def _drop(path: str):
    def change(data):
        *keys, last = path.split(".")
        node = data
        for k in keys:
            node = node[int(k)] if isinstance(node, list) else node[k]
        del node[int(last) if isinstance(node, list) else last]
    return change


def test_shipped_graph_files_are_valid():
    assert PROCESSES, "processes/ holds no graph files"
    for path in PROCESSES:
        spec = load_graph(path)
        assert spec.sizes[0] == spec.input.size
        assert [c.post for c in spec.connections] == [p.name for p in spec.populations]


def test_a_valid_graph_is_read_in_chain_order():
    data = _with(lambda d: d["connections"].reverse())
    spec = parse_graph(data, "g.toml")
    assert [(c.pre, c.post) for c in spec.connections] == [("input", "hidden"), ("hidden", "out")]
    assert spec.sizes == [4, 3, 2]
    assert spec.population("hidden").params == {"beta": 0.5, "threshold": 1.0, "reset": "zero"}
    assert spec.population("out").params["beta"] == 0.9  # the documented default


@pytest.mark.parametrize("change, message", [
    (_set("populations.0.tau", 3.0), r"g.toml: populations\[0\].tau: unknown field 'tau'"),
    (_set("run.stpes", 3), r"g.toml: run.stpes: unknown field 'stpes'; expected one of"),
    (_set("colour", "red"), r"g.toml: colour: unknown field 'colour'"),
    (_set("populations.0.size", "3"), r"populations\[0\].size: expected an integer, got '3'"),
    (_set("populations.0.size", 0), r"populations\[0\].size: expected a finite integer >= 1, got 0"),
    (_set("populations.0.size", True), r"populations\[0\].size: expected an integer, got True"),
    (_set("run.learning", "yes"), r"run.learning: expected true or false, got 'yes'"),
    (_set("populations.0.params.beta", 1.0), r"populations\[0\].params.beta: expected a finite number >= 0 and < 1"),
    (_set("populations.0.params.beta", float("nan")), r"params.beta: expected a finite number"),
    (_set("populations.0.params.threshold", float("inf")), r"params.threshold: expected a finite number > 0"),
    (_set("populations.0.params.reset", "subtract"), r"params.reset: expected one of 'zero', got 'subtract'"),
    (_set("populations.0.neuron", "izhikevich"),
     r"populations\[0\].neuron: expected one of 'lif', 'sign', 'error', 'ep', got 'izhikevich'"),
    (_set("connections.1.learning", {"rule": "hebb"}),
     r"connections\[1\].learning.rule: expected one of 'off', 'metaplastic', 'ep', .*'bcm'.*, got 'hebb'"),
    (_set("connections.1.learning", {"rule": "bcm", "lr": 1e-3, "tua": 10}),
     r"connections\[1\].learning.tua: unknown field 'tua' for rule 'bcm'; expected one of rule, lr, tau"),
    (_set("connections.1.learning", {"rule": "bcm", "tau": 0.5}),
     r"connections\[1\].learning: bcm: tau must be"),
    (_set("connections.1.post", "outt"),
     r"connections\[1\].post: unknown population 'outt'; expected one of hidden, out"),
    (_set("connections.0.pre", "retina"), r"connections\[0\].pre: unknown population 'retina'"),
    (_set("connections.1.pre", "input"), r"connections\[1\].pre: 'input' does not continue the chain"),
    (_drop("connections.1"), r"populations\[1\]: population 'out' receives no connection"),
    (_set("populations.1.name", "hidden"), r"populations\[1\].name: duplicate population name 'hidden'"),
    (_set("populations.0.name", "input"), r"populations\[0\].name: expected a name"),
    (_drop("readout"), r"g.toml: readout: missing required field"),
    (_set("readout.population", "nowhere"), r"readout.population: unknown population 'nowhere'"),
    (_set("readout.kind", "sign"), r"readout.kind: readout 'sign' needs a population of sign neurons"),
    (_set("input.dataset", "cifar"), r"input.dataset: expected one of mnist, fashion-mnist"),
    (_set("input.encoding", "phase"), r"input.encoding: expected one of 'rate', 'current', 'latency'"),
    (_set("backends", ["loihi"]), r"backends\[0\]: expected one of 'lava', 'snntorch', 'torch', got 'loihi'"),
    (_set("populations.0", {"name": "hidden", "size": 3, "neuron": "sign"}),
     r"backends: the snntorch backend runs 'lif' neurons only"),
    (_set("populations.0.neuron", "sign"),
     r"populations\[0\].params.beta: unknown field 'beta'; expected one of bias, gain, output"),
    (_set("run.learning", True), r"run.learning: learning is on but every connection has rule 'off'"),
    (_set("connections.0.quantizer", "none"),
     r"connections\[0\].quantizer: full-precision synapses \('none'\) run in EP graphs only"),
    (_set("connections.1.learning", {"rule": "metaplastic", "betas": [0.9, 1.0]}),
     r"connections\[1\].learning.betas: expected two numbers in \[0, 1\)"),
    (_set("connections.1.learning", {"rule": "metaplastic", "eps": 0.0}),
     r"connections\[1\].learning.eps: expected a finite number > 0, got 0.0"),
    (_set("connections.0.weights", {"file": "missing.npz", "key": "W1"}),
     r"connections\[0\].weights.file: weights file '.*missing.npz' does not exist"),
])
def test_malformed_graphs_are_refused_with_a_named_field(change, message):
    with pytest.raises(GraphSpecError, match=message):
        parse_graph(_with(change), "g.toml", base=Path("/nonexistent"))


def test_weights_file_shape_and_key_are_checked(tmp_path):
    np.savez(tmp_path / "w.npz", W1=np.ones((3, 5)), W2=np.ones((2, 3)))
    bad_shape = _set("connections.0.weights", {"file": "w.npz", "key": "W1"})
    with pytest.raises(GraphSpecError, match=r"weights.file: weights in '.*w.npz' have shape \(3, 5\), "
                                             r"expected \(3, 4\) \(post, pre\)"):
        parse_graph(_with(bad_shape), "g.toml", base=tmp_path)
    bad_key = _set("connections.1.weights", {"file": "w.npz", "key": "W3"})
    with pytest.raises(GraphSpecError, match=r"weights.key: 'W3' is not an array of .*; expected one of W1, W2"):
        parse_graph(_with(bad_key), "g.toml", base=tmp_path)
    good = parse_graph(_with(_set("connections.1.weights", {"file": "w.npz", "key": "W2"})), "g.toml", base=tmp_path)
    np.testing.assert_array_equal(load_weights(good.connections[1].weights, (2, 3)), np.ones((2, 3)))


def test_uniform_weights_are_seeded_per_connection():
    spec = parse_graph(copy.deepcopy(BASE), "g.toml")
    a = load_weights(spec.connections[0].weights, (3, 4), seed_offset=0)
    b = load_weights(spec.connections[0].weights, (3, 4), seed_offset=0)
    c = load_weights(spec.connections[0].weights, (3, 4), seed_offset=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and np.abs(a).max() <= 0.05


def test_files_that_are_not_graphs_are_named(tmp_path):
    with pytest.raises(GraphSpecError, match=r"nothere.toml: no such graph file"):
        load_graph(tmp_path / "nothere.toml")
    (tmp_path / "broken.toml").write_text("name = 'x'\n[input\nsize = 3\n")
    with pytest.raises(GraphSpecError, match=r"broken.toml: not valid TOML"):
        load_graph(tmp_path / "broken.toml")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(GraphSpecError, match=r"binary.toml: not (a text file|valid TOML)"):
        load_graph(tmp_path / "binary.toml")


def test_input_array_file_is_checked(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((5, 2, 3)))
    data = _with(_set("input", {"size": 4, "file": "x.npy"}))
    with pytest.raises(GraphSpecError, match=r"input.file: input array has shape \(5, 2, 3\), expected \(T, B, 4\)"):
        parse_graph(data, "g.toml", base=tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((5, 2, 4)))
    assert parse_graph(data, "g.toml", base=tmp_path).input.source == "array"
