"""NIR exchange for inference graphs: a graph of ``lif`` populations to a NIR file and back, exact or refused.

`NIR <https://neuroir.org>`_ describes networks in continuous time. A
lavaplast graph ``input -> populations`` of ``lif`` neurons behind binary or
ternary synapses is written as the chain::

    Input -> Linear -> LIF -> Linear -> LIF -> ... -> Output

with these conventions (the same ones snnTorch's exporter and importer use,
so that snnTorch reads our files and we read its files):

- **Discretisation.** Time steps are ``dt = 1e-4`` (:data:`DT`, snnTorch's
  fixed step) with forward Euler: ``tau dv/dt = (v_leak - v) + r I``
  becomes ``v[t] = (1 - dt/tau) v[t-1] + (r dt/tau) I[t]``. A population
  with ``beta`` becomes ``tau = dt / (1 - beta)``, ``r = tau / dt`` (input
  gain 1), ``v_leak = 0``, ``v_threshold = threshold``, ``v_reset = 0``, one
  value per neuron. Lava's float ``LIF(dv=1 - beta)`` decays by
  ``1 - (1 - beta)`` (:func:`lavaplast.reference.spiking.lava_decay`); the
  exporter checks that ``1 - dt/tau`` gives that number to the bit and
  refuses the rare ``beta`` for which no float64 ``tau`` does (it names
  the nearest ``beta`` that has one). The importer computes ``beta = 1 -
  dt/tau`` in the file's float type, as snnTorch's importer does; Lava
  then decays by exactly that number.
- **Synaptic delay.** NIR edges are instantaneous: at step ``t`` every
  population integrates what its ``Linear`` node gets at step ``t``. Lava's
  ``Dense``/``BinaryDense`` delays by one step, so in the Lava graph
  population ``i`` (0-based) shows at step ``t + i + 1`` the spikes the NIR
  graph, run step by step (e.g. snnTorch's imported network in its ordinary
  loop), shows at step ``t``. The graph metadata records it
  (``lava_delay_per_connection = 1``) next to ``dt``; no ``Delay`` node is
  written, since snnTorch cannot import one.
- **Weights.** A ``Linear`` node holds the effective weights ``q(W_h)`` as
  int8 ``-1``/``0``/``+1`` (``(post, pre)``). The hidden weights, the
  quantizer and the ternary threshold have no place in NIR; they go into
  a sidecar ``<file>.hidden.npz`` (:func:`sidecar_path`), read back when
  it sits beside the NIR file.
- **Input.** The ``Input`` node carries the input size only: the NIR graph
  takes what the encoder sends each step (spikes or currents), so the
  dataset, encoding and run settings of a graph file are not exported.

Refused, with a :class:`~lavaplast.graph.spec.GraphSpecError` naming the
field or the NIR node and parameter: on export, non-``lif`` populations,
graphs that learn while they run, readouts other than the spike counts of
the last population; on import, anything but an ``Input -> (Linear |
Affine -> LIF | CubaLIF)+ -> Output`` chain, ``IF`` nodes, ``v_leak != 0``,
``v_reset != 0``, an input gain ``r dt / tau != 1``, ``tau < dt``,
per-neuron ``tau`` or ``v_threshold`` that differ (Lava's ``LIF`` takes
one ``dv`` and one ``vth``), ``Affine`` nodes with a non-zero bias, weights
other than ``-1``, ``0``, ``+1``, and ``CubaLIF`` nodes whose synaptic
current does not last exactly one step (``tau_syn == dt``, ``w_in = 1``).
The learning settings of connections are not exported: an imported graph
does not learn.

This module does not import Lava (the ``lavaplast.graph`` package's
``__init__`` does).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
from pathlib import Path
from typing import Optional

import nir
import numpy as np

from lavaplast.core.quantize import binarize, ternarize
from lavaplast.outputs import save_npz, write_bytes, write_text
from lavaplast.graph.spec import (
    INPUT_NAME,
    Connection,
    GraphSpec,
    GraphSpecError,
    InputSpec,
    NeuronFile,
    Population,
    ReadoutSpec,
    WeightsSpec,
    validate,
    weights_path,
)

DT = 1e-4
"""The time step of the discretisation, in seconds: snnTorch's exporter and importer fix it to 1e-4."""

LAVA_DELAY = 1
"""Steps of delay Lava's ``Dense``/``BinaryDense`` adds per connection (NIR edges add none)."""

_TERNARY_THRESHOLD = 0.05


def sidecar_path(path: str | os.PathLike) -> Path:
    """The sidecar of a NIR file: ``<path>.hidden.npz`` with its hidden weights and quantizers."""
    return Path(f"{os.fspath(path)}.hidden.npz")


def _refuse(where: str, field: str, problem: str):
    raise GraphSpecError(f"{where}: {field}: {problem}")


# --- export -------------------------------------------------------------------


def _decay_from_tau(tau, dtype=np.float64):
    """``1 - dt/tau`` in ``dtype``: the decay snnTorch's importer (and ours) reads from ``tau``."""
    tau = np.asarray(tau, dtype=dtype)
    return dtype(1) - dtype(DT) / tau


def _tau_for(beta: float) -> Optional[float]:
    """The float64 ``tau`` whose ``1 - dt/tau`` is Lava's decay for ``beta`` to the bit, or ``None``."""
    dv = 1.0 - beta
    decay = 1.0 - dv
    tau = DT / dv
    return tau if float(_decay_from_tau(tau)) == decay else None


def _nearest_exportable(beta: float) -> Optional[float]:
    down = up = beta
    for _ in range(10000):
        down, up = float(np.nextafter(down, 0.0)), float(np.nextafter(up, 1.0))
        for b in (down, up):
            if 0.0 <= b < 1.0 and _tau_for(b) is not None:
                return b
    return None


def _check_exportable(spec: GraphSpec) -> None:
    where = spec.where
    for i, pop in enumerate(spec.populations):
        if pop.neuron != "lif":
            _refuse(where, f"populations[{i}].neuron", f"{pop.name!r} has {pop.neuron!r} neurons, which NIR cannot "
                    "describe; only graphs of 'lif' populations are exported")
    if spec.run.learning:
        _refuse(where, "run.learning", "learning is on, but NIR holds no learning rules; export the inference "
                "graph (learning = false)")
    last = spec.populations[-1].name
    if spec.readout.population != last or spec.readout.kind != "spike_count":
        _refuse(where, "readout", f"a {spec.readout.kind!r} readout of {spec.readout.population!r} cannot be "
                f"exported: NIR's Output node carries the spikes of the last population ({last!r}), read out "
                "as 'spike_count'")


def _export(spec: GraphSpec) -> tuple[nir.NIRGraph, dict]:
    """The NIR graph of ``spec`` and the arrays of its sidecar."""
    from lavaplast.graph.backends.base import hidden_weights

    spec = validate(spec)
    _check_exportable(spec)
    where = spec.where
    weights = hidden_weights(spec)
    names = [p.name for p in spec.populations]
    nodes = {INPUT_NAME: nir.Input(input_type={"input": np.array([spec.input.size])})}
    edges = []
    sidecar = {}
    prev = INPUT_NAME
    for i, (conn, pop, w) in enumerate(zip(spec.connections, spec.populations, weights)):
        beta, threshold = float(pop.params["beta"]), float(pop.params["threshold"])
        tau = _tau_for(beta)
        if tau is None:
            near = _nearest_exportable(beta)
            _refuse(where, f"populations[{i}].params.beta", f"beta = {beta!r} has no float64 tau with "
                    "1 - dt/tau == 1 - (1 - beta) (Lava's decay) to the bit; "
                    + (f"a nearby beta that has one is {near!r}" if near is not None else "choose another beta"))
        q = binarize(w) if conn.quantizer == "binary" else ternarize(w, conn.ternary_threshold)
        syn = f"{conn.pre}-{conn.post}"
        n = pop.size
        nodes[syn] = nir.Linear(weight=np.asarray(q, dtype=np.int8))
        nodes[pop.name] = nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / DT), v_leak=np.zeros(n),
                                  v_threshold=np.full(n, threshold), v_reset=np.zeros(n))
        edges += [(prev, syn), (syn, pop.name)]
        prev = pop.name
        sidecar[syn] = np.asarray(w, dtype=np.float64)
        sidecar[f"{syn}:quantizer"] = np.array(conn.quantizer)
        sidecar[f"{syn}:ternary_threshold"] = np.array(float(conn.ternary_threshold))
    # A population may be called "output"; the Output node then takes another name.
    out = "output" if "output" not in names else "output-spikes"
    nodes[out] = nir.Output(output_type={"output": np.array([spec.populations[-1].size])})
    edges.append((prev, out))
    metadata = {"generator": "lavaplast", "name": spec.name, "dt": DT, "lava_delay_per_connection": LAVA_DELAY}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata), sidecar


def graph_to_nir(spec: GraphSpec) -> nir.NIRGraph:
    """The NIR graph of an inference graph of ``lif`` populations (see the module docstring).

    Raises :class:`~lavaplast.graph.spec.GraphSpecError` for anything NIR
    cannot hold exactly.
    """
    return _export(spec)[0]


def write_nir(spec: GraphSpec, path: str | os.PathLike) -> Path:
    """Write ``spec`` as a NIR file ``path`` and its hidden weights as the sidecar :func:`sidecar_path`.

    Writing the same graph twice gives the same bytes. Returns ``path``.
    """
    graph, sidecar = _export(spec)
    path = Path(path)
    data = io.BytesIO()  # written whole, then renamed into place: a killed run leaves no half file
    nir.write(data, graph)
    write_bytes(path, data.getvalue())
    save_npz(sidecar_path(path), **sidecar)
    return path


# --- import -------------------------------------------------------------------


_KNOWN = (nir.Input, nir.Output, nir.Linear, nir.Affine, nir.LIF, nir.CubaLIF)


def _node_field(name: str, node, param: str = "") -> str:
    return f"node {name!r} ({type(node).__name__})" + (f".{param}" if param else "")


def _chain(graph: nir.NIRGraph, where: str) -> list[str]:
    """The node names of ``graph`` from its Input to its Output, refusing anything but a chain."""
    nodes = graph.nodes
    for name, node in nodes.items():
        if isinstance(node, nir.NIRGraph):
            _refuse(where, _node_field(name, node), "a nested graph (recurrent layers export as one) cannot be "
                    "imported: lavaplast graphs are feed-forward chains")
        if isinstance(node, nir.IF):
            _refuse(where, _node_field(name, node), "integrate-and-fire neurons never leak (beta = 1), but "
                    "lavaplast's lif neurons need beta in [0, 1) (snnTorch's importer turns IF into "
                    "Leaky(beta=0.9), a different model)")
        if not isinstance(node, _KNOWN):
            _refuse(where, _node_field(name, node), "this node type cannot be imported; expected Input, Linear, "
                    "Affine, LIF, CubaLIF and Output nodes")
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        _refuse(where, "nodes", f"expected one Input node, found {len(inputs)} ({', '.join(map(repr, inputs))})")
    succ = {k: [] for k in nodes}
    pred = {k: [] for k in nodes}
    for a, b in graph.edges:
        if a not in nodes or b not in nodes:
            _refuse(where, "edges", f"edge ({a!r}, {b!r}) names a node the graph does not have")
        succ[a].append(b)
        pred[b].append(a)
    for k in nodes:
        if len(succ[k]) > 1 or len(pred[k]) > 1:
            many = (f"feeds {len(succ[k])} nodes ({', '.join(map(repr, succ[k]))})" if len(succ[k]) > 1 else
                    f"receives from {len(pred[k])} nodes ({', '.join(map(repr, pred[k]))})")
            _refuse(where, _node_field(k, nodes[k]), f"{many}; only feed-forward chains without branches can "
                    "be imported")
    order = [inputs[0]]
    while succ[order[-1]]:
        nxt = succ[order[-1]][0]
        if nxt in order:
            _refuse(where, _node_field(nxt, nodes[nxt]), "the graph has a cycle; only feed-forward chains can "
                    "be imported")
        order.append(nxt)
    left = [k for k in nodes if k not in order]
    if left:
        _refuse(where, "nodes", f"nodes {', '.join(map(repr, left))} are not on the chain from the Input node")
    if not isinstance(nodes[order[-1]], nir.Output):
        _refuse(where, _node_field(order[-1], nodes[order[-1]]), "the chain must end in an Output node")
    body = order[1:-1]
    if not body or len(body) % 2:
        _refuse(where, "nodes", "expected (Linear or Affine, then LIF or CubaLIF) one or more times between "
                f"Input and Output, got {', '.join(type(nodes[k]).__name__ for k in body) or 'nothing'}")
    for j, k in enumerate(body):
        want = (nir.Linear, nir.Affine) if j % 2 == 0 else (nir.LIF, nir.CubaLIF)
        if not isinstance(nodes[k], want):
            _refuse(where, _node_field(k, nodes[k]), f"expected {' or '.join(t.__name__ for t in want)} here: "
                    "synapses and neurons alternate")
    return order


def _float_type(*arrays):
    dtype = np.result_type(*[np.asarray(a) for a in arrays])
    return dtype.type if dtype in (np.float32, np.float64) else np.float64


def _uniform(where: str, field: str, value, n: int, what: str) -> float:
    """The one value of a per-neuron parameter (a number or ``n`` of them), refusing ones that differ."""
    arr = np.asarray(value)
    try:
        arr = np.broadcast_to(arr, (n,))
    except ValueError:
        _refuse(where, field, f"has shape {arr.shape}, expected ({n},) (one value per neuron)")
    if not np.all(np.isfinite(arr)):
        _refuse(where, field, f"must be finite, got {arr.tolist()}")
    if np.any(arr != arr[0]):
        _refuse(where, field, f"differs between neurons (from {arr.min()!r} to {arr.max()!r}); {what}")
    return arr[0]


def _gain_is_one(gain, dtype) -> bool:
    """An input gain equal to 1 up to the rounding of the file's float type (``r = tau / dt`` is rounded)."""
    return bool(np.all(np.abs(np.asarray(gain, dtype=np.float64) - 1.0) <= 4 * np.finfo(dtype).eps))


def _neuron_params(name: str, node, n: int, where: str) -> dict:
    """``beta`` and ``threshold`` of a LIF or CubaLIF node that maps exactly onto a lif population."""
    def field(param):
        return _node_field(name, node, param)

    scalar_lava = "Lava's LIF takes one dv and one vth per process, and a lif population one beta and threshold"
    tau = node.tau if isinstance(node, nir.LIF) else node.tau_mem
    tau_name = "tau" if isinstance(node, nir.LIF) else "tau_mem"
    for param in ("v_leak", "v_reset"):
        value = getattr(node, param)
        arr = np.asarray(value if value is not None else 0.0)
        if not np.all(arr == 0):
            _refuse(where, field(param), f"must be 0, got {arr.tolist()}: lif neurons leak towards 0 and reset "
                    "to 0")
    if isinstance(node, nir.CubaLIF):
        ftype = _float_type(node.tau_syn)
        alpha = _decay_from_tau(node.tau_syn, ftype)
        if not np.all(alpha == 0):
            _refuse(where, field("tau_syn"), f"gives a synaptic decay 1 - dt/tau_syn = {np.asarray(alpha).tolist()}"
                    f" (dt = {DT}); lif neurons take the input of one step only (tau_syn == dt)")
        if not _gain_is_one(np.asarray(node.w_in, dtype=np.float64) * DT / np.asarray(node.tau_syn, np.float64),
                            ftype):
            _refuse(where, field("w_in"), f"w_in * dt / tau_syn must be 1, got w_in = {np.asarray(node.w_in).tolist()}")
    # beta in tau's own float type, as snnTorch's importer computes it; r's
    # tolerance from the coarser of the two types.
    ftype = _float_type(tau)
    gain_type = np.float32 if np.float32 in (_float_type(tau), _float_type(node.r)) else np.float64
    tau_v = _uniform(where, field(tau_name), tau, n, scalar_lava)
    if not tau_v >= ftype(DT):
        _refuse(where, field(tau_name), f"= {tau_v!r} is below dt = {DT}, which gives a decay 1 - dt/tau < 0; "
                "lif populations need beta in [0, 1)")
    beta = float(_decay_from_tau(tau_v, ftype))
    if not 0.0 <= beta < 1.0:
        _refuse(where, field(tau_name), f"= {tau_v!r} gives beta = 1 - dt/tau = {beta!r}, outside [0, 1)")
    r = np.asarray(node.r)
    if r.shape not in ((), (n,)) or not _gain_is_one(r * DT / np.asarray(tau, dtype=np.float64), gain_type):
        _refuse(where, field("r"), f"r * dt / {tau_name} must be 1 (r = {tau_name} / dt), got r = {r.tolist()} "
                f"with {tau_name} = {np.asarray(tau).tolist()}: lif neurons add their input unscaled")
    threshold = float(_uniform(where, field("v_threshold"), node.v_threshold, n, scalar_lava))
    if not threshold > 0:
        _refuse(where, field("v_threshold"), f"must be > 0, got {threshold!r}")
    return {"beta": beta, "threshold": threshold, "reset": "zero"}


def _effective_weights(name: str, node, n_in: int, where: str) -> np.ndarray:
    w = np.asarray(node.weight)
    if w.ndim != 2 or w.shape[1] != n_in:
        _refuse(where, _node_field(name, node, "weight"), f"has shape {w.shape}, expected (n_out, {n_in})")
    if isinstance(node, nir.Affine):
        bias = np.asarray(node.bias)
        if np.any(bias != 0):
            _refuse(where, _node_field(name, node, "bias"), "must be 0: binary synapses have no bias")
    bad = ~np.isin(w, (-1, 0, 1))
    if bad.any():
        _refuse(where, _node_field(name, node, "weight"), f"holds values other than -1, 0, +1 (e.g. "
                f"{w[bad].flat[0]!r}); lavaplast synapses are binary or ternary")
    return w.astype(np.float64)


def _sidecar(path: Optional[Path], where: str) -> Optional[dict]:
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except Exception as err:
        _refuse(where, "sidecar", f"cannot read {str(path)!r} ({type(err).__name__}: {err})")


def _population_name(node_name: str, taken: set, k: int) -> str:
    name = node_name
    if not name.isidentifier() or name == INPUT_NAME or name in taken:
        name = f"layer{k}"
        while name in taken:
            name += "_"
    return name


def nir_to_graph(nir_graph: nir.NIRGraph, name: str, *, input: Optional[InputSpec] = None, hidden: Optional[dict] = None,
                 where: str = "<nir graph>", description: str = "") -> GraphSpec:
    """A :class:`~lavaplast.graph.spec.GraphSpec` of ``lif`` populations from a NIR chain (see the module docstring).

    The weights stay in memory (``WeightsSpec.from_array``): nothing is
    written, so running a ``.nir`` file leaves its folder as it was;
    :func:`write_graph_toml` writes them to a file beside the graph. ``hidden`` (the arrays of a
    sidecar) supplies hidden weights and quantizers; without it the hidden
    weights are the NIR weights, with the binary quantizer when they are all
    ``+-1`` and the ternary one otherwise. ``input`` (of the same size)
    replaces the default input, an external one (NIR carries no input: every
    run supplies its array, ``lavaplast run --input``). ``where``
    names the source in error messages, ``description`` goes into the spec.
    Refusals raise
    :class:`~lavaplast.graph.spec.GraphSpecError` naming the node and the
    parameter.
    """
    metadata = dict(getattr(nir_graph, "metadata", None) or {})
    try:
        dt = float(metadata.get("dt", DT))
    except (TypeError, ValueError):
        dt = None
    if dt != DT:
        _refuse(where, "metadata.dt", f"the graph was discretised with dt = {metadata['dt']!r}, but lavaplast "
                f"reads NIR with dt = {DT} (snnTorch's step)")
    order = _chain(nir_graph, where)
    nodes = nir_graph.nodes
    in_node = nodes[order[0]]
    shape = np.asarray(in_node.input_type["input"]).reshape(-1)
    if shape.size != 1 or not shape[0] >= 1:
        _refuse(where, _node_field(order[0], in_node, "shape"), f"is {shape.tolist()}, expected one dimension "
                "(n_in,); export from snnTorch with ignore_dims=[0] to drop the batch dimension")
    n_in = int(shape[0])
    pops, conns, taken = [], [], set()
    pre, size = INPUT_NAME, n_in
    body = order[1:-1]
    for k in range(len(body) // 2):
        syn_name, neu_name = body[2 * k], body[2 * k + 1]
        w = _effective_weights(syn_name, nodes[syn_name], size, where)
        n = w.shape[0]
        params = _neuron_params(neu_name, nodes[neu_name], n, where)
        pop_name = _population_name(neu_name, taken, k + 1)
        taken.add(pop_name)
        quantizer = "binary" if np.all(w != 0) else "ternary"
        threshold = _TERNARY_THRESHOLD
        w_h = w
        if hidden is not None:
            if syn_name not in hidden:
                _refuse(where, "sidecar", f"has no hidden weights for node {syn_name!r}; the NIR file and its "
                        "sidecar do not belong together")
            w_h = np.asarray(hidden[syn_name], dtype=np.float64)
            quantizer = str(hidden.get(f"{syn_name}:quantizer", quantizer))
            threshold = float(hidden.get(f"{syn_name}:ternary_threshold", threshold))
            if quantizer not in ("binary", "ternary") or w_h.shape != w.shape or not np.isfinite(w_h).all():
                _refuse(where, "sidecar", f"entry {syn_name!r}: expected finite hidden weights of shape {w.shape} "
                        f"and a binary or ternary quantizer, got shape {w_h.shape}, quantizer {quantizer!r}")
        q = binarize(w_h) if quantizer == "binary" else ternarize(w_h, threshold)
        if not np.array_equal(q, w):
            _refuse(where, "sidecar" if hidden is not None else _node_field(syn_name, nodes[syn_name], "weight"),
                    f"the hidden weights of {syn_name!r} quantize ({quantizer}) to other weights than the NIR "
                    "file holds")
        pops.append(Population(name=pop_name, size=n, neuron="lif", params=params))
        conns.append(Connection(pre=pre, post=pop_name, quantizer=quantizer, ternary_threshold=threshold,
                                weights=WeightsSpec.from_array(w_h)))
        pre, size = pop_name, n
    if input is None:
        input = InputSpec(size=n_in, source="external")
    elif input.size != n_in:
        _refuse(where, "input.size", f"the NIR graph takes {n_in} inputs, the given input has {input.size}")
    spec = GraphSpec(name=name, input=input, populations=tuple(pops), connections=tuple(conns),
                     readout=ReadoutSpec(population=pops[-1].name, kind="spike_count"),
                     backends=("lava", "snntorch"), description=description)
    return validate(spec)


def read_nir(path: str | os.PathLike, *, input: Optional[InputSpec] = None) -> GraphSpec:
    """Import a NIR file as a :class:`~lavaplast.graph.spec.GraphSpec` (see :func:`nir_to_graph`).

    The weights stay in memory (nothing is written); the sidecar
    ``<path>.hidden.npz``, when present, supplies the hidden weights. The
    graph is named after the name the file records, else its stem.
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise GraphSpecError(f"{where}: no such NIR file")
    try:
        graph = nir.read(path)
    except Exception as err:  # h5py and NIR's own checks raise many kinds of errors
        raise GraphSpecError(f"{where}: not a readable NIR file ({type(err).__name__}: {err})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise GraphSpecError(f"{where}: holds a single {type(graph).__name__} node, not a graph")
    name = str((graph.metadata or {}).get("name", "")) or path.stem
    return nir_to_graph(graph, name, input=input,
                        hidden=_sidecar(sidecar_path(path), where), where=where,
                        description=f"Imported from the NIR file {path.name}.")


# --- graph files --------------------------------------------------------------


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write the non-finite number {value!r} to a graph file")
        return repr(value)
    if isinstance(value, (str, Path)):
        # JSON's escapes are valid TOML escapes; TOML also wants DEL escaped.
        return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to a graph file")


def _file_ref(file: Path, base: Path) -> str:
    """``file`` relative to the graph file's folder when it lies under it, else absolute."""
    file = Path(file)
    try:
        return file.resolve().relative_to(base).as_posix()
    except ValueError:
        return str(file.resolve())


def _params(params: dict, base: Path) -> dict:
    """Population parameters as TOML data: a file-backed parameter stays a reference to its file."""
    return {k: {"file": _file_ref(v.file, base), "key": v.key} if isinstance(v, NeuronFile) else v
            for k, v in params.items()}


def graph_toml(spec: GraphSpec, base: Path) -> str:
    """The text of a graph file for ``spec``, file paths relative to ``base`` where they lie under it."""
    lines = [f"name = {_toml_value(spec.name)}"]
    if spec.description:
        lines.append(f"description = {_toml_value(spec.description)}")
    lines += [f"backends = {_toml_value(list(spec.backends))}", "", "[input]"]
    inp = spec.input
    lines.append(f"size = {inp.size}")
    if inp.source == "array":
        lines += ['source = "array"', f"file = {_toml_value(_file_ref(inp.file, base))}"]
    elif inp.source == "external":
        lines += ['source = "external"', f"encoding = {_toml_value(inp.encoding)}"]
    else:
        lines += ['source = "dataset"', f"dataset = {_toml_value(inp.dataset)}", f"split = {_toml_value(inp.split)}",
                  f"samples = {inp.samples}", f"encoding = {_toml_value(inp.encoding)}",
                  f"scale = {_toml_value(float(inp.scale))}"]
    for pop in spec.populations:
        lines += ["", "[[populations]]", f"name = {_toml_value(pop.name)}", f"size = {pop.size}",
                  f"neuron = {_toml_value(pop.neuron)}", f"params = {_toml_value(_params(pop.params, base))}"]
    for c in spec.connections:
        w = c.weights
        if w.init == "file":
            weights = {"init": "file", "file": _file_ref(w.file, base)}
            if w.key is not None:
                weights["key"] = w.key
        else:
            weights = {"init": "uniform", "scale": float(w.scale), "seed": w.seed}
        lr = c.learning
        learning = {"rule": lr.rule}
        if lr.rule == "metaplastic":
            learning.update(meta=float(lr.meta), lr=float(lr.lr), optimizer=lr.optimizer,
                            weight_decay=float(lr.weight_decay), betas=[float(b) for b in lr.betas],
                            eps=float(lr.eps))
        elif lr.rule == "ep":
            learning.update(lr=float(lr.lr), meta=float(lr.meta), hidden_lr=float(lr.hidden_lr))
        elif lr.rule != "off":
            learning.update({k: list(v) if isinstance(v, tuple) else v for k, v in lr.params.items()})
        lines += ["", "[[connections]]", f"pre = {_toml_value(c.pre)}", f"post = {_toml_value(c.post)}",
                  f"quantizer = {_toml_value(c.quantizer)}",
                  f"ternary_threshold = {_toml_value(float(c.ternary_threshold))}",
                  f"weights = {_toml_value(weights)}", f"learning = {_toml_value(learning)}"]
        if c.faults.active:
            lines.append(f"faults = {_toml_value(dict(ber=float(c.faults.ber), sigma=float(c.faults.sigma), seed=c.faults.seed))}")
    r = spec.run
    lines += ["", "[readout]", f"population = {_toml_value(spec.readout.population)}",
              f"kind = {_toml_value(spec.readout.kind)}", f"gain = {_toml_value(float(spec.readout.gain))}",
              f"bias = {_toml_value(float(spec.readout.bias))}", f"loss = {_toml_value(spec.readout.loss)}", "", "[run]", f"steps = {r.steps}", f"batch = {r.batch}",
              f"seed = {r.seed}", f"learning = {_toml_value(r.learning)}", f"timeout = {_toml_value(float(r.timeout))}"]
    if spec.equilibrium is not None:
        e = spec.equilibrium
        lines += ["", "[equilibrium]", f"T1 = {e.T1}", f"T2 = {e.T2}", f"beta = {_toml_value(float(e.beta))}",
                  f"nudging = {_toml_value(e.nudging)}"]
    return "\n".join(lines) + "\n"


def write_graph_toml(spec: GraphSpec, path: str | os.PathLike) -> Path:
    """Write ``spec`` as a graph file ``path`` that :func:`~lavaplast.graph.spec.load_graph` reads back equal.

    Every field is written out; in-memory weights (``init = "array"``) are
    written to ``<graph stem>.weights.npz`` beside it, one array per
    population under its name. Weights and input files under the graph
    file's folder are referred to relative to it, others by absolute path.
    Returns ``path``.
    """
    path = Path(path)
    spec = validate(spec)
    arrays = {c.post: c.weights.values for c in spec.connections if c.weights.init == "array"}
    if arrays:
        # In-memory weights (an imported NIR file, a graph built in Python) go to a file beside the graph.
        wfile = weights_path(path).resolve()
        conns = tuple(dataclasses.replace(c, weights=WeightsSpec(init="file", file=wfile, key=c.post))
                      if c.post in arrays else c for c in spec.connections)
        save_npz(wfile, **arrays)
        spec = dataclasses.replace(spec, connections=conns)
    return write_text(path, graph_toml(spec, path.resolve().parent))


def load_graph_file(path: str | os.PathLike) -> GraphSpec:
    """A graph from a ``.toml`` graph file or a ``.nir`` file (read through :func:`read_nir`)."""
    from lavaplast.graph.spec import load_graph

    path = Path(path)
    return read_nir(path) if path.suffix == ".nir" else load_graph(path)
