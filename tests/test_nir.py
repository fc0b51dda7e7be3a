"""NIR exchange (lavaplast.graph.nir): snnTorch's files run on Lava, ours run in snnTorch, refusals are named.

Spike-for-spike comparisons with snnTorch use beta = 0.5 (and 0), thresholds
1 and 2, +-1 weights, spike inputs and at most 18 steps: snnTorch's
importer builds float32 modules while Lava computes in float64, and with
these values every membrane potential (an integer part below 2^5 plus at
most 18 bits of halvings) is exact in float32, so both runs hold the same
numbers, not merely close ones.
"""

from __future__ import annotations

import dataclasses

import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch import utils as snn_utils
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir

from lavaplast.cli import main
from lavaplast.graph import nir as lnir
from lavaplast.graph.inputs import GraphInput
from lavaplast.graph.spec import GraphSpecError, load_graph, parse_graph
from lavaplast.reference.spiking import lava_decay

DT = lnir.DT
T = 16

pytestmark = pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph is being deprecated:DeprecationWarning")


def _pm1(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def _spec(pops=(("hidden", 8, 0.5, 1.0), ("out", 4, 0.0, 0.5)), *, quantizers=("binary", "ternary"),
          n_in=12, learning=None, extra=None):
    data = {
        "name": "nir-test",
        "backends": ["lava", "snntorch"],
        "input": {"size": n_in, "dataset": "digits"},
        "populations": [{"name": n, "size": s, "neuron": "lif", "params": {"beta": b, "threshold": th}}
                        for n, s, b, th in pops],
        "connections": [{"pre": pre, "post": post, "quantizer": q, "ternary_threshold": 0.02,
                         "weights": {"init": "uniform", "scale": 0.05, "seed": 3},
                         "learning": learning or {"rule": "off"}}
                        for pre, post, q in zip(["input"] + [p[0] for p in pops], [p[0] for p in pops], quantizers)],
        "readout": {"population": pops[-1][0], "kind": "spike_count"},
    }
    for key, value in (extra or {}).items():
        data[key] = value
    return parse_graph(data)


def _lava_records(spec, x) -> list:
    from lavaplast.graph.backends.lava import run

    res = run(spec, GraphInput(data=x, values=x.mean(0), labels=None, source="test"))
    return [res.records[p.name] for p in spec.populations]


def _snn_records(net, x, n_steps) -> list:
    """Spikes of every Leaky of ``net`` run in snnTorch's ordinary loop, one call per step."""
    leakies = [m for m in net.modules() if isinstance(m, snn.Leaky)]
    steps = [[] for _ in leakies]
    hooks = [m.register_forward_hook(lambda mod, args, out, l=l: steps[l].append(
        (out[0] if isinstance(out, tuple) else out).detach().numpy().copy())) for l, m in enumerate(leakies)]
    snn_utils.reset(net)
    xt = torch.zeros((n_steps,) + x.shape[1:], dtype=torch.float32)
    xt[: len(x)] = torch.from_numpy(x).float()
    try:
        with torch.no_grad():
            for k in range(n_steps):
                net(xt[k])
    finally:
        for h in hooks:
            h.remove()
    return [np.stack(s).astype(np.float64) for s in steps]


def _assert_lava_lags_snntorch(lava, snn_recs):
    """Population i (0-based) in Lava shows at step t + i + 1 what the delay-free NIR graph shows at step t."""
    assert len(lava) == len(snn_recs)
    for i, (a, b) in enumerate(zip(lava, snn_recs)):
        lag = i + lnir.LAVA_DELAY
        assert not a[:lag].any()
        np.testing.assert_array_equal(a[lag:], b[: len(a) - lag], err_msg=f"population {i}")
        assert a.sum() > 0, f"population {i} never spiked: the comparison would be empty"


def _snn_net(weights, betas, thresholds, reset="zero"):
    layers = []
    for l, (w, b, th) in enumerate(zip(weights, betas, thresholds)):
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
        lin.weight.data = torch.from_numpy(w).float()
        n = w.shape[0]
        layers += [lin, snn.Leaky(beta=torch.full((n,), b), threshold=torch.full((n,), th), init_hidden=True,
                                  reset_mechanism=reset, output=l == len(weights) - 1)]
    return torch.nn.Sequential(*layers)


# --- (1) snnTorch's export runs on Lava ---------------------------------------


def test_snntorch_export_imports_and_runs_on_lava_spike_for_spike(tmp_path, no_lava_leftovers):
    rng = np.random.default_rng(0)
    weights = [_pm1(rng, (8, 12)), _pm1(rng, (4, 8))]
    net = _snn_net(weights, betas=(0.5, 0.5), thresholds=(1.0, 2.0))
    nir.write(tmp_path / "snn.nir", export_to_nir(net, torch.zeros(1, 12), ignore_dims=[0]))

    spec = lnir.read_nir(tmp_path / "snn.nir")
    assert [p.name for p in spec.populations] == ["layer1", "layer2"]  # snnTorch names nodes "1", "3"
    assert [p.params["beta"] for p in spec.populations] == [0.5, 0.5]
    assert [p.params["threshold"] for p in spec.populations] == [1.0, 2.0]
    assert [c.quantizer for c in spec.connections] == ["binary", "binary"]
    for c, w in zip(spec.connections, weights):
        assert c.weights.init == "array"
        np.testing.assert_array_equal(c.weights.values, w)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snn.nir"]  # reading writes nothing

    x = (rng.random((T, 5, 12)) < 0.4).astype(np.float64)
    L = len(spec.populations)
    _assert_lava_lags_snntorch(_lava_records(spec, x), _snn_records(net, x, T + L))


# --- (2) our export runs in snnTorch ------------------------------------------


def test_our_export_imported_by_snntorch_gives_the_lava_spikes(tmp_path, no_lava_leftovers):
    spec = _spec(pops=(("hidden", 8, 0.5, 1.0), ("out", 4, 0.0, 0.5)), quantizers=("binary", "ternary"))
    path = lnir.write_nir(spec, tmp_path / "ours.nir")
    graph = nir.read(path)
    assert graph.metadata["dt"] == DT and graph.metadata["lava_delay_per_connection"] == 1
    assert np.isin(graph.nodes["hidden-out"].weight, (-1, 0, 1)).all()
    assert (graph.nodes["hidden-out"].weight == 0).any()  # the ternary connection keeps its zeros
    net = import_from_nir(graph)

    x = (np.random.default_rng(1).random((T, 5, 12)) < 0.4).astype(np.float64)
    L = len(spec.populations)
    _assert_lava_lags_snntorch(_lava_records(spec, x), _snn_records(net, x, T + L))


# --- (3) round trips ----------------------------------------------------------


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.3, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999])
def test_tau_gives_lavas_decay_to_the_bit(tmp_path, beta):
    spec = _spec(pops=(("p", 3, beta, 1.0),), quantizers=("binary",), n_in=4)
    lif = lnir.graph_to_nir(spec).nodes["p"]
    decay = 1.0 - DT / lif.tau  # what snnTorch's importer computes (before it casts to float32)
    assert np.all(decay == lava_decay(beta))
    np.testing.assert_allclose(lif.r * DT / lif.tau, 1.0, rtol=1e-15)
    assert np.all(lif.v_leak == 0) and np.all(lif.v_reset == 0) and np.all(lif.v_threshold == 1.0)
    back = lnir.read_nir(lnir.write_nir(spec, tmp_path / "b.nir"))
    assert back.populations[0].params["beta"] == lava_decay(beta)


def test_export_import_export_gives_an_identical_file(tmp_path):
    spec = _spec(pops=(("hidden", 8, 0.9, 1.3), ("out", 4, 0.3, 0.7)), quantizers=("ternary", "binary"))
    a = lnir.write_nir(spec, tmp_path / "a.nir")
    (tmp_path / "w").mkdir()
    back = lnir.read_nir(a)
    b = lnir.write_nir(back, tmp_path / "b.nir")
    assert a.read_bytes() == b.read_bytes()
    with np.load(lnir.sidecar_path(a)) as sa, np.load(lnir.sidecar_path(b)) as sb:
        assert sa.files == sb.files
        for k in sa.files:
            np.testing.assert_array_equal(sa[k], sb[k])
    # The hidden weights, quantizers and thresholds came back from the sidecar.
    assert [(c.quantizer, c.ternary_threshold) for c in back.connections] == [("ternary", 0.02), ("binary", 0.02)]
    from lavaplast.graph.backends.base import hidden_weights

    for w0, w1 in zip(hidden_weights(spec), hidden_weights(back)):
        np.testing.assert_array_equal(w0, w1)
    assert back.name == spec.name

    toml = lnir.write_graph_toml(back, tmp_path / "w" / "g.toml")
    loaded = load_graph(toml)
    assert loaded.populations == back.populations and loaded.input == back.input
    assert [c.weights.init for c in back.connections] == ["array", "array"]
    assert [(c.weights.init, c.weights.key) for c in loaded.connections] == [("file", "hidden"), ("file", "out")]
    for w0, w1 in zip(hidden_weights(back), hidden_weights(loaded)):
        np.testing.assert_array_equal(w0, w1)
    assert 'file = "g.weights.npz"' in toml.read_text()  # beside the graph, relative to it


def test_graph_toml_round_trips_the_shipped_graph(tmp_path):
    spec = load_graph("processes/spiking_classifier.toml")
    out = lnir.write_graph_toml(spec, tmp_path / "g.toml")
    assert load_graph(out) == dataclasses.replace(spec, path=out)


def test_graph_toml_round_trips_learning_and_odd_strings(tmp_path):
    spec = _spec(learning={"rule": "metaplastic", "meta": 1.5, "optimizer": "sgd"},
                 extra={"description": 'quotes " and \\ and \t tab, é, \x7f',
                        "run": {"learning": True, "steps": 7, "timeout": 12.5}})
    out = lnir.write_graph_toml(spec, tmp_path / "g.toml")
    assert load_graph(out) == dataclasses.replace(spec, path=out)


# --- (4) snnTorch's NIR behaviour, pinned --------------------------------------


def test_snntorch_exporter_writes_beta_as_tau_with_dt_1e_4():
    net = _snn_net([np.ones((3, 4))], betas=(0.75,), thresholds=(1.5,))
    g = export_to_nir(net, torch.zeros(1, 4), ignore_dims=[0])
    lif = g.nodes["1"]
    assert lif.tau.dtype == np.float32 and lif.tau.shape == (3,)
    np.testing.assert_array_equal(lif.tau, np.float32(1e-4) / np.float32(0.25))
    np.testing.assert_array_equal(lif.r, lif.tau / np.float32(1e-4))
    assert np.all(lif.v_threshold == 1.5) and np.all(lif.v_leak == 0)


def test_snntorch_scalar_beta_fails_nirs_type_check():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False), snn.Leaky(beta=0.9, init_hidden=True))
    with pytest.raises(ValueError, match="type mismatch"):
        export_to_nir(net, torch.zeros(1, 4), ignore_dims=[0])


def test_snntorch_export_needs_ignore_dims_for_the_batch():
    net = _snn_net([np.ones((3, 4))], betas=(0.5,), thresholds=(1.0,))
    with pytest.raises(ValueError, match="type mismatch"):
        export_to_nir(net, torch.zeros(2, 4))
    g = export_to_nir(net, torch.zeros(2, 4), ignore_dims=[0])
    np.testing.assert_array_equal(g.nodes["input"].input_type["input"], [4])


def test_snntorch_exports_subtract_reset_as_reset_to_zero():
    w = [np.ones((3, 4))]
    sub, zero = (export_to_nir(_snn_net(w, (0.5,), (1.0,), reset=r), torch.zeros(1, 4), ignore_dims=[0]).nodes["1"]
                 for r in ("subtract", "zero"))
    for field in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
        np.testing.assert_array_equal(getattr(sub, field), getattr(zero, field))
    assert np.all(sub.v_reset == 0)  # the file cannot tell them apart: we import reset to zero


def test_snntorch_imports_if_as_a_leaky_neuron_with_beta_0_9():
    g = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((3, 4))), nir.IF(r=np.ones(3), v_threshold=np.full(3, 2.0)))
    leaky = [m for m in import_from_nir(g).modules() if isinstance(m, snn.Leaky)]
    assert len(leaky) == 1
    assert float(leaky[0].beta) == pytest.approx(0.9) and leaky[0].reset_mechanism == "subtract"


def test_snntorch_importer_builds_float32_modules_and_wants_one_threshold():
    spec = _spec(pops=(("p", 3, 0.9, 1.0),), quantizers=("binary",), n_in=4)
    net = import_from_nir(lnir.graph_to_nir(spec))
    assert {t.dtype for t in net.parameters()} | {b.dtype for b in net.buffers() if b.is_floating_point()} \
        == {torch.float32}
    lif = nir.LIF(tau=np.full(2, 1e-3), r=np.full(2, 10.0), v_leak=np.zeros(2), v_threshold=np.array([1.0, 2.0]))
    with pytest.raises(AssertionError, match="v_threshold must be same"):
        import_from_nir(nir.NIRGraph.from_list(nir.Linear(weight=np.ones((2, 4))), lif))


def test_we_read_the_decay_snntorchs_importer_reads(tmp_path):
    net = _snn_net([np.ones((3, 4))], betas=(0.9,), thresholds=(1.0,))
    nir.write(tmp_path / "s.nir", export_to_nir(net, torch.zeros(1, 4), ignore_dims=[0]))
    ours = lnir.read_nir(tmp_path / "s.nir").populations[0].params["beta"]
    theirs = [m for m in import_from_nir(nir.read(tmp_path / "s.nir")).modules() if isinstance(m, snn.Leaky)][0].beta
    assert ours == float(theirs[0]) and lava_decay(ours) == ours  # float32 arithmetic, then Lava's own decay


# --- (5) refusals -------------------------------------------------------------


def _lif(n=3, beta=0.5, thr=1.0, **over):
    tau = np.full(n, DT / (1 - beta))
    fields = dict(tau=tau, r=tau / DT, v_leak=np.zeros(n), v_threshold=np.full(n, thr), v_reset=np.zeros(n))
    fields.update(over)
    return nir.LIF(**fields)


def _graph(*nodes, input_shape=(4,), edges=None, metadata=None):
    named = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    for i, node in enumerate(nodes):
        named[f"n{i}"] = node
    named["output"] = nir.Output(output_type={"output": np.array([3])})
    names = list(named)
    edges = edges if edges is not None else list(zip(names[:-1], names[1:]))
    return nir.NIRGraph(nodes=named, edges=edges, metadata=metadata or {}, type_check=False)


def _import(graph, tmp_path):
    return lnir.nir_to_graph(graph, "g", where="g.nir")


W = np.ones((3, 4))


def test_a_plain_chain_imports(tmp_path):
    spec = _import(_graph(nir.Linear(weight=W), _lif()), tmp_path)
    assert spec.populations[0].params == {"beta": 0.5, "threshold": 1.0, "reset": "zero"}
    assert spec.input.source == "external" and spec.input.size == W.shape[1]


def test_affine_with_zero_bias_imports_as_binary_synapses(tmp_path):
    spec = _import(_graph(nir.Affine(weight=-W, bias=np.zeros(3)), _lif()), tmp_path)
    assert spec.connections[0].quantizer == "binary"


def test_cubalif_with_a_one_step_current_imports_as_lif(tmp_path):
    tau = np.full(3, DT / (1 - 0.9))
    cuba = nir.CubaLIF(tau_syn=np.full(3, DT), tau_mem=tau, r=tau / DT, v_leak=np.zeros(3),
                       v_threshold=np.ones(3), w_in=1.0)
    spec = _import(_graph(nir.Linear(weight=W), cuba), tmp_path)
    assert spec.populations[0].params["beta"] == 1.0 - DT / tau[0]


_REFUSED = {
    "if": (lambda: _graph(nir.Linear(weight=W), nir.IF(r=np.ones(3), v_threshold=np.ones(3))),
           r"node 'n1' \(IF\): integrate-and-fire neurons never leak"),
    "v_leak": (lambda: _graph(nir.Linear(weight=W), _lif(v_leak=np.full(3, 0.1))),
               r"node 'n1' \(LIF\)\.v_leak: must be 0"),
    "v_reset": (lambda: _graph(nir.Linear(weight=W), _lif(v_reset=np.full(3, -1.0))),
                r"node 'n1' \(LIF\)\.v_reset: must be 0"),
    "r": (lambda: _graph(nir.Linear(weight=W), _lif(r=np.ones(3))),
          r"node 'n1' \(LIF\)\.r: r \* dt / tau must be 1"),
    "tau per neuron": (lambda: _graph(nir.Linear(weight=W), _lif(tau=np.array([2e-4, 2e-4, 4e-4]),
                                                                 r=np.array([2.0, 2.0, 4.0]))),
                       r"node 'n1' \(LIF\)\.tau: differs between neurons .* one dv"),
    "threshold per neuron": (lambda: _graph(nir.Linear(weight=W), _lif(v_threshold=np.array([1.0, 1.0, 2.0]))),
                             r"node 'n1' \(LIF\)\.v_threshold: differs between neurons"),
    "tau below dt": (lambda: _graph(nir.Linear(weight=W), _lif(tau=np.full(3, DT / 2), r=np.full(3, 0.5))),
                     r"node 'n1' \(LIF\)\.tau: .* below dt"),
    "threshold": (lambda: _graph(nir.Linear(weight=W), _lif(thr=0.0)),
                  r"node 'n1' \(LIF\)\.v_threshold: must be > 0, got 0\.0"),
    "bias": (lambda: _graph(nir.Affine(weight=W, bias=np.full(3, 0.5)), _lif()),
             r"node 'n0' \(Affine\)\.bias: must be 0: binary synapses have no bias"),
    "weights": (lambda: _graph(nir.Linear(weight=np.full((3, 4), 0.5)), _lif()),
                r"node 'n0' \(Linear\)\.weight: holds values other than -1, 0, \+1 \(e\.g\. 0\.5\)"),
    "cubalif tau_syn": (lambda: _graph(nir.Linear(weight=W), nir.CubaLIF(
        tau_syn=np.full(3, 2e-4), tau_mem=np.full(3, 2e-4), r=np.full(3, 2.0), v_leak=np.zeros(3),
        v_threshold=np.ones(3), w_in=2.0)), r"node 'n1' \(CubaLIF\)\.tau_syn: gives a synaptic decay"),
    "unknown node": (lambda: _graph(nir.Linear(weight=W), nir.Scale(scale=np.ones(3)), _lif()),
                     r"node 'n1' \(Scale\): this node type cannot be imported"),
    "delay node": (lambda: _graph(nir.Linear(weight=W), nir.Delay(delay=np.ones(3)), _lif()),
                   r"node 'n1' \(Delay\): this node type cannot be imported"),
    "branch": (lambda: _graph(nir.Linear(weight=W), _lif(), edges=[
        ("input", "n0"), ("n0", "n1"), ("n1", "output"), ("input", "output")]),
        r"node 'input' \(Input\): feeds 2 nodes .* without branches"),
    "neurons without synapses": (lambda: _graph(_lif(n=4)),
                                 r"nodes: expected \(Linear or Affine, then LIF or CubaLIF\) .* got LIF"),
    "two synapses in a row": (lambda: _graph(nir.Linear(weight=np.ones((4, 4))), nir.Linear(weight=W)),
                              r"node 'n1' \(Linear\): expected LIF or CubaLIF here"),
    "batch dimension": (lambda: _graph(nir.Linear(weight=W), _lif(), input_shape=(2, 4)),
                        r"node 'input' \(Input\)\.shape: is \[2, 4\], expected one dimension .* ignore_dims=\[0\]"),
    "dt": (lambda: _graph(nir.Linear(weight=W), _lif(), metadata={"dt": 1e-3}),
           r"metadata\.dt: the graph was discretised with dt = 0\.001"),
    "nested": (lambda: _graph(nir.Linear(weight=W), nir.NIRGraph.from_list(_lif(), type_check=False)),
               r"node 'n1' \(NIRGraph\): a nested graph"),
}


@pytest.mark.parametrize("case", sorted(_REFUSED))
def test_import_refuses_with_a_named_node_and_parameter(tmp_path, case):
    make, message = _REFUSED[case]
    graph = make()
    with pytest.raises(GraphSpecError, match=r"^g\.nir: " + message):
        _import(graph, tmp_path)
    assert not (tmp_path / "g.weights.npz").exists()


def test_import_refuses_a_sidecar_of_another_graph(tmp_path):
    a = lnir.write_nir(_spec(), tmp_path / "a.nir")
    other = lnir.write_nir(_spec(quantizers=("binary", "binary")), tmp_path / "other.nir")
    lnir.sidecar_path(other).replace(lnir.sidecar_path(a))
    with pytest.raises(GraphSpecError, match=r"a\.nir: sidecar: the hidden weights of 'hidden-out' quantize"):
        lnir.read_nir(a)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.replace(populations=(s.populations[0], dataclasses.replace(
        s.populations[1], neuron="sign", params={"gain": 1.0, "bias": 0.0, "output": "sign"})),
        readout=dataclasses.replace(s.readout, kind="sign"), backends=("lava",)),
     r"populations\[1\]\.neuron: 'out' has 'sign' neurons, which NIR cannot describe"),
    (lambda s: s.replace(run=dataclasses.replace(s.run, learning=True), connections=tuple(
        dataclasses.replace(c, learning=dataclasses.replace(c.learning, rule="metaplastic")) for c in s.connections)),
     r"run\.learning: learning is on, but NIR holds no learning rules"),
    (lambda s: s.replace(readout=dataclasses.replace(s.readout, kind="membrane")),
     r"readout: a 'membrane' readout of 'out' cannot be exported"),
    (lambda s: s.replace(readout=dataclasses.replace(s.readout, population="hidden")),
     r"readout: a 'spike_count' readout of 'hidden' cannot be exported"),
    (lambda s: s.replace(populations=(dataclasses.replace(s.populations[0], params={
        "beta": 0.01, "threshold": 1.0, "reset": "zero"}), s.populations[1])),
     r"populations\[0\]\.params\.beta: beta = 0\.01 has no float64 tau .* a nearby beta that has one is 0\.0(0999|1000)"),
])
def test_export_refuses_what_nir_cannot_hold(tmp_path, change, message):
    spec = change(_spec())
    with pytest.raises(GraphSpecError, match=r"^nir-test: " + message):
        lnir.write_nir(spec, tmp_path / "x.nir")
    assert not (tmp_path / "x.nir").exists()


# --- the command line ---------------------------------------------------------


def test_cli_export_and_import(tmp_path, capsys):
    assert main(["export", "processes/spiking_classifier.toml", "--to", str(tmp_path / "m.nir")]) == 0
    assert (tmp_path / "m.nir.hidden.npz").is_file()
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((3, 2, 64)))
    (tmp_path / "g").mkdir()
    assert main(["import", str(tmp_path / "m.nir"), "--to", str(tmp_path / "g" / "g.toml"), "--input", str(x)]) == 0
    spec = load_graph(tmp_path / "g" / "g.toml")
    assert spec.input.file == x and (tmp_path / "g" / "g.weights.npz").is_file()
    orig = load_graph("processes/spiking_classifier.toml")
    assert [(p.name, p.params) for p in spec.populations] == [(p.name, p.params) for p in orig.populations]
    capsys.readouterr()
    assert main(["import", str(tmp_path / "missing.nir"), "--to", str(tmp_path / "h.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.nir: no such NIR file" in err
    assert main(["export", "processes/deploy_bnn.toml", "--to", str(tmp_path / "d.nir")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "populations[0].neuron: 'hidden' has 'sign' neurons" in err


def test_an_imported_graph_runs_on_the_input_each_run_supplies(tmp_path, capsys):
    assert main(["export", "processes/spiking_classifier.toml", "--to", str(tmp_path / "m.nir")]) == 0
    assert main(["import", str(tmp_path / "m.nir"), "--to", str(tmp_path / "g.toml")]) == 0
    assert load_graph(tmp_path / "g.toml").input.source == "external"
    capsys.readouterr()
    assert main(["run", str(tmp_path / "g.toml"), "--out", str(tmp_path / "r1")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("pass a (T, B, 64) array with --input FILE.npy") and len(err.splitlines()) == 1
    np.save(tmp_path / "x.npy", (np.random.default_rng(0).random((6, 2, 64)) < 0.5).astype(float))
    assert main(["run", str(tmp_path / "g.toml"), "--input", str(tmp_path / "x.npy"), "--out",
                 str(tmp_path / "r2")]) == 0
    assert (tmp_path / "r2" / "spikes.npz").is_file()


def test_running_a_nir_file_writes_nothing_beside_it(tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    assert main(["export", "processes/spiking_classifier.toml", "--to", str(models / "m.nir")]) == 0
    before = sorted(p.name for p in models.iterdir())
    np.save(tmp_path / "x.npy", (np.random.default_rng(0).random((5, 3, 64)) < 0.5).astype(float))
    assert main(["run", str(models / "m.nir"), "--input", str(tmp_path / "x.npy"), "--backend", "snntorch",
                 "--out", str(tmp_path / "r")]) == 0
    assert sorted(p.name for p in models.iterdir()) == before == ["m.nir", "m.nir.hidden.npz"]
    with np.load(tmp_path / "r" / "spikes.npz") as spikes:
        assert spikes["hidden"].shape[1:] == (3, 32)
