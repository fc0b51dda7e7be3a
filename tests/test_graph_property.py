"""Property: one graph specification gives the same spikes on Lava and on the snnTorch twin.

Hypothesis draws the sizes, each population's beta and threshold, hidden
weights with exact zeros (sign(0) = +1 must agree), binary or ternary
synapses, and inputs that are spikes or real-valued currents (including
exact zeros and values on the threshold); every recorded spike and the
final membranes must be equal.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lavaplast.graph.backends import run_graph
from lavaplast.graph.inputs import build_input
from lavaplast.graph.spec import parse_graph


@st.composite
def graphs(draw):
    n_layers = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 6)) for _ in range(n_layers + 1)]
    pops, conns, weights = [], [], {}
    for i in range(n_layers):
        beta = draw(st.sampled_from([0.0, 0.25, 0.5, 0.9, 0.95, 0.999]))
        threshold = draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.7]))
        pops.append({"name": f"p{i}", "size": sizes[i + 1], "neuron": "lif",
                     "params": {"beta": beta, "threshold": threshold}})
        w = np.asarray(draw(st.lists(st.sampled_from([-0.3, -0.05, 0.0, 0.02, 0.07, 0.4]),
                                     min_size=sizes[i + 1] * sizes[i], max_size=sizes[i + 1] * sizes[i])))
        weights[f"w{i}"] = w.reshape(sizes[i + 1], sizes[i])
        conns.append({"pre": "input" if i == 0 else f"p{i - 1}", "post": f"p{i}",
                      "quantizer": draw(st.sampled_from(["binary", "ternary"])), "ternary_threshold": 0.05,
                      "weights": {"file": "w.npz", "key": f"w{i}"}})
    T, B = draw(st.integers(1, 12)), draw(st.integers(1, 3))
    values = st.sampled_from([0.0, 1.0]) if draw(st.booleans()) else st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.0, 1.5])
    x = np.asarray(draw(st.lists(values, min_size=T * B * sizes[0], max_size=T * B * sizes[0])))
    data = {"name": "drawn", "backends": ["lava", "snntorch"], "input": {"size": sizes[0], "file": "x.npy"},
            "populations": pops, "connections": conns,
            "readout": {"population": f"p{n_layers - 1}", "kind": draw(st.sampled_from(["spike_count", "membrane"]))},
            "run": {"batch": B}}
    return data, weights, x.reshape(T, B, sizes[0])


@pytest.mark.usefixtures("no_lava_leftovers")
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graphs())
def test_lava_and_snntorch_agree_on_any_drawn_graph(tmp_path_factory, drawn):
    data, weights, x = drawn
    folder = tmp_path_factory.mktemp("graph")
    np.savez(folder / "w.npz", **weights)
    np.save(folder / "x.npy", x)
    spec = parse_graph(data, "drawn.toml", base=folder)
    inputs = build_input(spec)
    lava, twin = run_graph(spec, inputs, "lava"), run_graph(spec, inputs, "snntorch")
    for name in lava.records:
        np.testing.assert_array_equal(lava.records[name], twin.records[name], err_msg=name)
    np.testing.assert_array_equal(lava.readout, twin.readout)
