"""The graph specification: one validated description of a process graph.

A graph file (TOML, documented field by field in ``processes/README.md``)
names an input, populations of neurons, the binary-synapse connections
between them, a readout and run settings. :func:`load_graph` reads and
validates it into a :class:`GraphSpec`; every backend (the Lava graph, the
snnTorch twin, the rate-based PyTorch network, NIR export) is built from
that object alone.

Validation errors are :class:`GraphSpecError` (a ``ValueError``) whose
message names the file, the field as a dotted path (``connections[1].post``),
the bad value and what was expected.

Lava is not imported here.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from lavaplast.core.devices import DeviceFaults
from lavaplast.core.ep import ACTIVATIONS

NEURONS = ("lif", "sign", "error", "ep")
BACKENDS = ("lava", "snntorch", "torch")
ENCODINGS = ("rate", "current", "latency")
INPUT_SOURCES = ("dataset", "array", "external")
QUANTIZERS = ("binary", "ternary", "none")
RULES = ("off", "metaplastic", "ep")
OPTIMIZERS = ("adam", "sgd")
WEIGHT_INITS = ("uniform", "file")
READOUTS = {
    "spike_count": ("lif",),
    "membrane": ("lif",),
    "sign": ("sign",),
    "logits": ("error", "sign"),
    "ep_state": ("ep",),
}
NUDGING = ("symmetric", "one-sided")
SPLITS = ("train", "test")
INPUT_NAME = "input"


class GraphSpecError(ValueError):
    """A graph file or specification is malformed; the message names the file, field, value and expectation."""


# --- reading tables with named errors -----------------------------------------


_REQUIRED = object()


def _kind_name(kind) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "a table"}
    if isinstance(kind, tuple):
        return " or ".join(names[k] for k in kind)
    return names[kind]


class _Table:
    """A TOML table being read: each ``take`` checks one field; ``finish`` refuses the rest."""

    def __init__(self, where: str, path: str, data):
        self.where, self.path = where, path
        if not isinstance(data, dict):
            self.fail(path, data, "a table")
        self.data = dict(data)
        self.seen: set[str] = set()

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, path: str, value, expected: str, problem: str = ""):
        problem = problem or f"expected {expected}, got {value!r}"
        raise GraphSpecError(f"{self.where}: {path or '(top level)'}: {problem}")

    def take(self, key: str, kind, default=_REQUIRED, *, choices=None, low=None, high=None, low_open=False,
             high_open=False):
        self.seen.add(key)
        path = self.field(key)
        if key not in self.data:
            if default is _REQUIRED:
                self.fail(path, None, "", f"missing required field (expected {_kind_name(kind)})")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = any(isinstance(value, k) and not (k in (int, float) and isinstance(value, bool)) for k in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value) if int not in kinds else value
        if not ok:
            self.fail(path, value, _kind_name(kind))
        if choices is not None and value not in choices:
            self.fail(path, value, f"one of {', '.join(map(repr, choices))}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            bounds = []
            if low is not None:
                bounds.append(f"{'>' if low_open else '>='} {low:g}")
            if high is not None:
                bounds.append(f"{'<' if high_open else '<='} {high:g}")
            expected = f"a finite {'integer' if isinstance(value, int) else 'number'}" + (
                " " + " and ".join(bounds) if bounds else "")
            bad = not math.isfinite(value)
            bad |= low is not None and (value <= low if low_open else value < low)
            bad |= high is not None and (value >= high if high_open else value > high)
            if bad:
                self.fail(path, value, expected)
        return value

    def table(self, key: str, default=_REQUIRED) -> "_Table":
        value = self.take(key, dict, {} if default is not _REQUIRED else _REQUIRED)
        return _Table(self.where, self.field(key), value)

    def finish(self, allowed_extra: tuple = ()) -> None:
        unknown = sorted(set(self.data) - self.seen - set(allowed_extra))
        if unknown:
            known = ", ".join(sorted(self.seen)) or "none"
            raise GraphSpecError(f"{self.where}: {self.field(unknown[0])}: unknown field {unknown[0]!r}; "
                                 f"expected one of {known}")


# --- the specification --------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    """Where the input comes from and how it becomes spikes or currents.

    ``source="dataset"``: ``samples`` images of ``dataset``/``split`` (pixels
    / 255 times ``scale``), encoded per time step as Bernoulli spikes with
    that rate (``rate``), as a constant current (``current``), or as one
    spike at step ``round((1 - value) * (steps - 1))`` (``latency``: brighter
    pixels fire earlier; zero pixels never). ``source="array"``: a ``.npy``
    file of shape ``(T, B, size)`` used as it is (``file``, relative to the
    graph file). ``source="external"``: the graph only fixes the input width;
    every run supplies the array (``lavaplast run --input``), as for a graph
    imported from NIR, which carries no input.
    """

    size: int
    source: str = "dataset"
    dataset: Optional[str] = None
    split: str = "test"
    samples: int = 100
    encoding: str = "rate"
    scale: float = 1.0
    file: Optional[Path] = None


@dataclass(frozen=True)
class Population:
    """A population of ``size`` neurons of one kind, with that kind's parameters.

    - ``lif``: ``beta`` (membrane decay per step, in [0, 1)), ``threshold``
      (> 0), ``reset`` (``"zero"``): Lava's ``LIF(du=1, dv=1-beta,
      vth=threshold)``, snnTorch's ``Leaky(beta, threshold,
      reset_mechanism="zero")``; optionally ``slope`` (> 0), the slope of the
      surrogate derivative a spiking learner uses (default ``1 / threshold``);
    - ``sign``: ``gain``, ``bias`` (a number, one per neuron, or a
      :class:`NeuronFile` array of a ``.npz``) and ``output``
      (``"sign"``, ``"binary"`` or ``"identity"``): ``s = sign(gain * a + bias)``;
    - ``error``: the output population of on-chip learning: logits ``gain *
      a + bias``, error ``softmax - target`` (``loss="ce"``) or ``logits -
      target`` (``"mse"``);
    - ``ep``: equilibrium-propagation neurons (state in [0, 1], sigma-delta
      events above ``threshold``), ``activation`` and ``bias``.
    """

    name: str
    size: int
    neuron: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class NeuronFile:
    """A per-neuron parameter read from array ``key`` of the ``.npz`` ``file``.

    ``values`` holds the array as read (and checked: shape ``(size,)``,
    finite) when the graph was validated, so every backend runs the numbers
    that were checked; ``file`` and ``key`` are kept so that a graph written
    back refers to the file instead of copying the numbers.
    """

    file: Path
    key: str
    values: tuple


@dataclass(frozen=True)
class WeightsSpec:
    """Initial hidden weights, shape ``(post, pre)``: ``uniform`` in ``[-scale, scale]``
    drawn with ``seed``, ``file`` (``.npy``, or ``.npz`` with ``key``), or ``array``:
    ``values`` held in memory (a graph built in Python, or imported from NIR
    without writing files; :func:`~lavaplast.graph.nir.write_graph_toml`
    writes such weights to a file next to the graph)."""

    init: str = "uniform"
    scale: float = 0.05
    seed: int = 0
    file: Optional[Path] = None
    key: Optional[str] = None
    values: Optional[np.ndarray] = field(default=None, compare=False, repr=False)

    @classmethod
    def from_array(cls, values) -> "WeightsSpec":
        """In-memory weights (a float64 copy, read-only so that no backend changes the spec)."""
        arr = np.array(values, dtype=np.float64)
        arr.flags.writeable = False
        return cls(init="array", values=arr)


@dataclass(frozen=True)
class LearningSpec:
    """The learning rule of a connection: ``off``, ``metaplastic`` (the metaplastic
    Adam or SGD step, from the local error; Adam's ``betas`` and ``eps``), any
    rule registered in :mod:`lavaplast.core.rules` (its parameters in
    ``params``; spiking learning graphs), or
    ``ep`` (EP's local contrast: ``lr`` is the SGD rate of the post
    population's biases and of full-precision weights; binary synapses move
    their hidden weights by metaplastic Adam at ``hidden_lr``)."""

    rule: str = "off"
    meta: float = 0.0
    lr: float = 0.005
    optimizer: str = "adam"
    weight_decay: float = 0.0
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    hidden_lr: float = 0.005
    params: dict = field(default_factory=dict)

    def rule_and_params(self) -> tuple[str, dict]:
        """The :mod:`lavaplast.core.rules` rule this connection learns with, and its parameters.

        ``metaplastic`` maps to the registered ``metaplastic`` rule (Adam)
        or ``metaplastic_sgd`` (``optimizer = "sgd"``) with the fields above;
        any other registered rule carries its parameters in ``params``.
        """
        if self.rule == "metaplastic":
            if self.optimizer == "sgd":
                return "metaplastic_sgd", dict(lr=self.lr, meta=self.meta, weight_decay=self.weight_decay)
            return "metaplastic", dict(lr=self.lr, meta=self.meta, betas=tuple(self.betas), eps=self.eps,
                                       weight_decay=self.weight_decay)
        return self.rule, dict(self.params)


@dataclass(frozen=True)
class FaultsSpec:
    """Device read faults of a connection's synapses, frozen per chip (stuck devices): bit error rate
    ``ber`` (binary sign flips, or the ternary 2T2R error structure), conductance variability ``sigma``,
    drawn from ``seed`` (see :class:`lavaplast.core.DeviceFaults`)."""

    ber: float = 0.0
    sigma: float = 0.0
    seed: int = 0

    @property
    def active(self) -> bool:
        return self.ber > 0 or self.sigma > 0

    def settings(self, array: int) -> Optional[dict]:
        """The :class:`~lavaplast.core.DeviceFaults` settings of array ``array`` (the connection's index),
        or ``None`` for ideal reads."""
        if not self.active:
            return None
        return dict(ber=float(self.ber), sigma=float(self.sigma), seed=int(self.seed), array=int(array),
                    frozen=True)


@dataclass(frozen=True)
class Connection:
    """Binary (or ternary) synapses ``pre -> post``: ``a_post = s_pre @ q(W_h)^T``,
    one step of delay, ``q`` the quantizer (``ternary_threshold`` for ternary).
    EP graphs also take full-precision synapses (``quantizer = "none"``:
    ``W = W_h``); their binary synapses are ``sign(W_h) / sqrt(fan_in)``."""

    pre: str
    post: str
    quantizer: str = "binary"
    ternary_threshold: float = 0.05
    weights: WeightsSpec = WeightsSpec()
    learning: LearningSpec = LearningSpec()
    faults: FaultsSpec = FaultsSpec()


@dataclass(frozen=True)
class ReadoutSpec:
    """What is read out as the graph's answer: ``kind`` of ``population``.

    A spiking graph that learns computes its output error from the readout:
    ``softmax(gain * counts + bias) - target`` (``loss = "ce"``) or
    ``gain * counts + bias - target`` (``"mse"``), ``counts`` the spikes of
    a sample's window.
    """

    population: str
    kind: str
    gain: float = 1.0
    bias: float = 0.0
    loss: str = "ce"


@dataclass(frozen=True)
class EquilibriumSpec:
    """Phase settings of an EP graph: free steps ``T1``, nudged steps ``T2``, ``beta``, ``nudging``."""

    T1: int = 30
    T2: int = 10
    beta: float = 0.5
    nudging: str = "symmetric"


@dataclass(frozen=True)
class RunSpec:
    """How the graph runs: time ``steps`` per sample, ``batch`` samples side by side,
    the ``seed`` of every random draw, ``learning`` on or off, a ``timeout`` per Lava run."""

    steps: int = 25
    batch: int = 100
    seed: int = 0
    learning: bool = False
    timeout: float = 600.0


@dataclass(frozen=True)
class GraphSpec:
    """A validated process graph. ``populations`` and ``connections`` are in
    feed-forward order (input first); ``path`` is the file it came from."""

    name: str
    input: InputSpec
    populations: tuple
    connections: tuple
    readout: ReadoutSpec
    run: RunSpec = RunSpec()
    backends: tuple = ("lava",)
    description: str = ""
    equilibrium: Optional[EquilibriumSpec] = None
    path: Optional[Path] = None

    @property
    def where(self) -> str:
        """How messages name the graph: its file, or its name."""
        return str(self.path) if self.path else self.name

    def population(self, name: str) -> Population:
        """The population called ``name``."""
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise KeyError(name)

    @property
    def sizes(self) -> list[int]:
        """Layer sizes in order, the input first."""
        return [self.input.size] + [p.size for p in self.populations]

    def replace(self, **changes) -> "GraphSpec":
        """A copy with some fields changed (validated again)."""
        return validate(dataclasses.replace(self, **changes))

    def to_dict(self) -> dict:
        """The specification as plain data, in the layout of the TOML file."""
        def plain(obj):
            if dataclasses.is_dataclass(obj):
                return {k: plain(v) for k, v in dataclasses.asdict(obj).items()}
            if isinstance(obj, Path):
                return str(obj)
            if isinstance(obj, (list, tuple)):
                return [plain(v) for v in obj]
            if isinstance(obj, dict):
                return {k: plain(v) for k, v in obj.items()}
            return obj

        data = plain(self)
        data.pop("path", None)
        return data


# --- parsing ------------------------------------------------------------------


_NEURON_PARAMS = {
    "lif": {"beta": 0.9, "threshold": 1.0, "reset": "zero"},
    "sign": {"gain": 1.0, "bias": 0.0, "output": "sign"},
    "error": {"gain": 1.0, "bias": 0.0, "loss": "ce"},
    "ep": {"bias": 0.0, "activation": "hard", "threshold": 0.0},
}


def _per_neuron(t: _Table, key: str, default, n: int, base: Optional[Path] = None):
    value = t.take(key, (float, list, dict), default)
    path = t.field(key)
    if isinstance(value, dict):
        ft = _Table(t.where, path, value)
        file = _resolve(base, ft.take("file", str))
        array_key = ft.take("key", str)
        ft.finish()
        return read_neuron_file(file, array_key, n, t.where, path)
    if isinstance(value, list):
        if len(value) != n or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            t.fail(path, value, f"a number or a list of {n} numbers (one per neuron)")
        value = [float(v) for v in value]
        if not all(math.isfinite(v) for v in value):
            t.fail(path, value, "finite numbers")
    elif not math.isfinite(value):
        t.fail(path, value, "a finite number")
    return value


def read_neuron_file(file: Path, key: str, n: int, where: str = "<graph>", path: str = "params") -> NeuronFile:
    """Read and check a per-neuron parameter: array ``key`` of the ``.npz`` ``file``, shape ``(n,)``, finite.

    Errors are :class:`GraphSpecError` naming ``where`` and the field ``path``.
    """
    file = Path(file)
    if not file.is_file():
        _fail(where, f"{path}.file", f"parameter file {str(file)!r} does not exist")
    try:
        with np.load(file, allow_pickle=False) as archive:
            if key not in archive.files:
                _fail(where, f"{path}.key", f"{key!r} is not an array of {str(file)!r}; expected one of "
                      f"{', '.join(archive.files)}")
            array = np.asarray(archive[key])
    except GraphSpecError:
        raise
    except Exception as err:  # a missing, truncated or foreign file raises many kinds of errors
        _fail(where, f"{path}.file", f"cannot read parameter file {str(file)!r} as an .npz archive "
              f"({type(err).__name__}: {err})")
    if array.shape != (n,) or array.dtype.kind not in "biuf":
        _fail(where, f"{path}.key", f"array {key!r} of {str(file)!r} has shape {array.shape} and dtype {array.dtype}, "
              f"expected {n} numbers (one per neuron)")
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        _fail(where, f"{path}.key", f"array {key!r} of {str(file)!r} holds {int((~np.isfinite(values)).sum())} "
              "NaN or infinite values; expected finite numbers")
    return NeuronFile(file=file, key=key, values=tuple(float(v) for v in values))


def _population(where: str, path: str, data, base: Optional[Path] = None) -> Population:
    t = _Table(where, path, data)
    name = t.take("name", str)
    if not name.isidentifier() or name == INPUT_NAME:
        t.fail(t.field("name"), name, f"a name made of letters, digits and '_' other than {INPUT_NAME!r}")
    size = t.take("size", int, low=1)
    neuron = t.take("neuron", str, choices=NEURONS)
    p = t.table("params", default={})
    defaults = _NEURON_PARAMS[neuron]
    if neuron == "lif":
        params = dict(beta=p.take("beta", float, defaults["beta"], low=0.0, high=1.0, high_open=True),
                      threshold=p.take("threshold", float, defaults["threshold"], low=0.0, low_open=True),
                      reset=p.take("reset", str, defaults["reset"], choices=("zero",)))
        if "slope" in p.data:  # only spiking learning uses it; its default (1 / threshold) is the learner's
            params["slope"] = p.take("slope", float, low=0.0, low_open=True)
    elif neuron == "sign":
        params = dict(gain=_per_neuron(p, "gain", defaults["gain"], size, base),
                      bias=_per_neuron(p, "bias", defaults["bias"], size, base),
                      output=p.take("output", str, defaults["output"], choices=("sign", "binary", "identity")))
    elif neuron == "error":
        params = dict(gain=_per_neuron(p, "gain", defaults["gain"], size, base),
                      bias=_per_neuron(p, "bias", defaults["bias"], size, base),
                      loss=p.take("loss", str, defaults["loss"], choices=("ce", "mse")))
    else:
        params = dict(bias=_per_neuron(p, "bias", defaults["bias"], size, base),
                      activation=p.take("activation", str, defaults["activation"], choices=tuple(ACTIVATIONS)),
                      threshold=p.take("threshold", float, defaults["threshold"], low=0.0))
    p.finish()
    t.finish()
    return Population(name=name, size=size, neuron=neuron, params=params)


def _resolve(base: Optional[Path], value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() or base is None else base / path


def _connection(where: str, path: str, data, base: Optional[Path]) -> Connection:
    t = _Table(where, path, data)
    pre = t.take("pre", str)
    post = t.take("post", str)
    quantizer = t.take("quantizer", str, "binary", choices=QUANTIZERS)
    ternary_threshold = t.take("ternary_threshold", float, 0.05, low=0.0)
    w = t.table("weights", default={})
    init = w.take("init", str, "file" if "file" in w.data else "uniform", choices=WEIGHT_INITS)
    if init == "uniform":
        weights = WeightsSpec(init=init, scale=w.take("scale", float, 0.05, low=0.0, low_open=True),
                              seed=w.take("seed", int, 0, low=0))
    else:
        file = _resolve(base, w.take("file", str))
        weights = WeightsSpec(init=init, file=file, key=w.take("key", str, None))
    w.finish()
    lt = t.table("learning", default={})
    rule = lt.take("rule", str, "off", choices=_rule_names())
    learning = LearningSpec(rule=rule)
    if rule == "metaplastic":
        learning = LearningSpec(rule=rule, meta=lt.take("meta", float, 0.0, low=0.0),
                                lr=lt.take("lr", float, 0.005, low=0.0),
                                optimizer=lt.take("optimizer", str, "adam", choices=OPTIMIZERS),
                                weight_decay=lt.take("weight_decay", float, 0.0, low=0.0),
                                betas=_betas(lt), eps=lt.take("eps", float, 1e-8, low=0.0, low_open=True))
    elif rule == "ep":
        learning = LearningSpec(rule=rule, lr=lt.take("lr", float, 0.05, low=0.0),
                                meta=lt.take("meta", float, 0.0, low=0.0),
                                hidden_lr=lt.take("hidden_lr", float, 0.005, low=0.0))
    elif rule != "off":
        learning = LearningSpec(rule=rule, params=_rule_params(lt, rule))
    lt.finish()
    ft = t.table("faults", default={})
    faults = FaultsSpec(ber=ft.take("ber", float, 0.0, low=0.0, high=0.5), sigma=ft.take("sigma", float, 0.0, low=0.0),
                        seed=ft.take("seed", int, 0, low=0))
    ft.finish()
    t.finish()
    return Connection(pre=pre, post=post, quantizer=quantizer, ternary_threshold=ternary_threshold,
                      weights=weights, learning=learning, faults=faults)


def _rule_names() -> tuple:
    """The rules a connection may name: ``off``, ``ep`` and every registered local rule."""
    from lavaplast.core.rules import rule_names

    return tuple(dict.fromkeys(RULES + tuple(rule_names())))


def _rule_params(t: _Table, rule: str) -> dict:
    """The parameters of a registered rule: the table's other keys, checked by the rule."""
    from lavaplast.core.rules import get_rule

    local = get_rule(rule)
    given = {k: v for k, v in t.data.items() if k != "rule"}
    for key in given:
        if key not in local.defaults:
            known = ", ".join(["rule", *sorted(local.defaults)])
            t.fail(t.field(key), given[key], "", f"unknown field {key!r} for rule {rule!r}; expected one of {known}")
        t.seen.add(key)
        if isinstance(given[key], list):  # TOML arrays (e.g. Adam's betas) are tuples to the rules
            given[key] = tuple(given[key])
    try:
        return dict(local.check_params(given))
    except ValueError as err:
        raise GraphSpecError(f"{t.where}: {t.path}: {err}") from None


def _betas(t: _Table) -> tuple:
    betas = t.take("betas", list, [0.9, 0.999])
    ok = len(betas) == 2 and all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1
                                 for b in betas)
    if not ok:
        t.fail(t.field("betas"), betas, "two numbers in [0, 1) (Adam's decay rates of the moments)")
    return tuple(float(b) for b in betas)


def _input(where: str, t: _Table, base: Optional[Path]) -> InputSpec:
    from lavaplast.data.registry import DATASETS, canonical_name

    size = t.take("size", int, low=1)
    source = t.take("source", str, "array" if "file" in t.data else "dataset", choices=INPUT_SOURCES)
    if source == "array":
        spec = InputSpec(size=size, source=source, file=_resolve(base, t.take("file", str)))
    elif source == "external":
        # A learner coding the values it is given needs the encoding; a chain run on --input arrays ignores it.
        spec = InputSpec(size=size, source=source, encoding=t.take("encoding", str, "rate", choices=ENCODINGS))
    else:
        name = t.take("dataset", str)
        try:
            name = canonical_name(name)
        except (KeyError, ValueError):
            t.fail(t.field("dataset"), name, f"one of {', '.join(DATASETS)}")
        spec = InputSpec(size=size, source=source, dataset=name, split=t.take("split", str, "test", choices=SPLITS),
                         samples=t.take("samples", int, 100, low=1),
                         encoding=t.take("encoding", str, "rate", choices=ENCODINGS),
                         scale=t.take("scale", float, 1.0, low=0.0, low_open=True))
    t.finish()
    return spec


def parse_graph(data: dict, where: str = "<graph>", base: Optional[Path] = None) -> GraphSpec:
    """Validate graph data (a parsed TOML document) into a :class:`GraphSpec`.

    ``where`` names the source in error messages; relative file paths are
    resolved against ``base``.
    """
    top = _Table(where, "", data)
    name = top.take("name", str)
    description = top.take("description", str, "")
    backends = top.take("backends", list, ["lava"])
    for i, b in enumerate(backends):
        if b not in BACKENDS:
            top.fail(f"backends[{i}]", b, f"one of {', '.join(map(repr, BACKENDS))}")
    if not backends or len(set(backends)) != len(backends):
        top.fail("backends", backends, "a non-empty list of distinct backends")
    inp = _input(where, top.table("input"), base)
    pops_data = top.take("populations", list)
    if not pops_data:
        top.fail("populations", pops_data, "at least one [[populations]] table")
    pops = [_population(where, f"populations[{i}]", d, base) for i, d in enumerate(pops_data)]
    conns_data = top.take("connections", list)
    conns = [_connection(where, f"connections[{i}]", d, base) for i, d in enumerate(conns_data)]
    rt = top.table("readout")
    readout = ReadoutSpec(population=rt.take("population", str), kind=rt.take("kind", str, choices=tuple(READOUTS)),
                          gain=rt.take("gain", float, 1.0), bias=rt.take("bias", float, 0.0),
                          loss=rt.take("loss", str, "ce", choices=("ce", "mse")))
    rt.finish()
    run_t = top.table("run", default={})
    run = RunSpec(steps=run_t.take("steps", int, 25, low=1), batch=run_t.take("batch", int, 100, low=1),
                  seed=run_t.take("seed", int, 0, low=0), learning=run_t.take("learning", bool, False),
                  timeout=run_t.take("timeout", float, 600.0, low=0.0, low_open=True))
    run_t.finish()
    equilibrium = None
    if "equilibrium" in top.data or any(p.neuron == "ep" for p in pops):
        et = top.table("equilibrium", default={})
        equilibrium = EquilibriumSpec(T1=et.take("T1", int, 30, low=1), T2=et.take("T2", int, 10, low=1),
                                      beta=et.take("beta", float, 0.5, low=0.0, low_open=True),
                                      nudging=et.take("nudging", str, "symmetric", choices=NUDGING))
        et.finish()
    top.finish()
    spec = GraphSpec(name=name, description=description, backends=tuple(backends), input=inp,
                     populations=tuple(pops), connections=tuple(conns), readout=readout, run=run,
                     equilibrium=equilibrium, path=None if base is None else Path(where))
    return _check_structure(spec, where)


def validate(spec: GraphSpec) -> GraphSpec:
    """Check a :class:`GraphSpec` built in Python (or changed with ``replace``)."""
    return _check_structure(spec, str(spec.path) if spec.path else "<graph>")


def _fail(where: str, path: str, problem: str):
    raise GraphSpecError(f"{where}: {path}: {problem}")


def _check_structure(spec: GraphSpec, where: str) -> GraphSpec:
    """Cross-field checks: names, the feed-forward chain, sizes, weights files, readout, backends."""
    names = [p.name for p in spec.populations]
    for i, name in enumerate(names):
        if name in names[:i]:
            _fail(where, f"populations[{i}].name", f"duplicate population name {name!r}")
    known = [INPUT_NAME, *names]
    sizes = {INPUT_NAME: spec.input.size, **{p.name: p.size for p in spec.populations}}
    incoming: dict[str, int] = {}
    for i, c in enumerate(spec.connections):
        if c.pre not in known:
            _fail(where, f"connections[{i}].pre", f"unknown population {c.pre!r}; expected one of {', '.join(known)}")
        if c.post not in names:
            _fail(where, f"connections[{i}].post",
                  f"unknown population {c.post!r}; expected one of {', '.join(names)}")
        if c.post in incoming:
            _fail(where, f"connections[{i}].post", f"population {c.post!r} already receives connections[{incoming[c.post]}]; "
                  "a graph is a feed-forward chain: one incoming connection per population")
        incoming[c.post] = i
    # The chain: input -> populations[0] -> populations[1] -> ...
    expected_pre = INPUT_NAME
    for k, pop in enumerate(spec.populations):
        if pop.name not in incoming:
            _fail(where, f"populations[{k}]", f"population {pop.name!r} receives no connection "
                  f"(expected a connection from {expected_pre!r})")
        i = incoming[pop.name]
        c = spec.connections[i]
        if c.pre != expected_pre:
            _fail(where, f"connections[{i}].pre", f"{c.pre!r} does not continue the chain: populations are "
                  f"connected in the order they are listed, so {pop.name!r} must receive from {expected_pre!r}")
        expected_pre = pop.name
    ordered = tuple(spec.connections[incoming[p.name]] for p in spec.populations)
    for i, c in enumerate(spec.connections):
        shape = (sizes[c.post], sizes[c.pre])
        if c.weights.init == "file":
            _check_weights_file(where, f"connections[{i}].weights", c.weights, shape)
        elif c.weights.init == "array":
            _check_weights_array(where, f"connections[{i}].weights", c.weights.values, shape)
    neurons = {p.neuron for p in spec.populations}
    ep = "ep" in neurons
    if ep and neurons != {"ep"}:
        _fail(where, "populations", "an EP graph has 'ep' neurons only (one network settles as a whole)")
    if "error" in neurons and spec.populations[-1].neuron != "error":
        _fail(where, "populations", "an 'error' population can only be the last (the output) population")
    for i, c in enumerate(spec.connections):
        if c.quantizer == "none" and not ep:
            _fail(where, f"connections[{i}].quantizer", "full-precision synapses ('none') run in EP graphs only; "
                  "expected 'binary' or 'ternary'")
        try:
            DeviceFaults((1,), ber=c.faults.ber, sigma=c.faults.sigma, seed=c.faults.seed)
        except ValueError as err:
            _fail(where, f"connections[{i}].faults", str(err))
        if c.faults.active and ep:
            _fail(where, f"connections[{i}].faults", "device read faults run in feed-forward graphs (sign, lif); "
                  "EP graphs model device mismatch instead")
        if c.faults.active and (c.quantizer == "none" or c.learning.rule != "off"):
            _fail(where, f"connections[{i}].faults", "device read faults apply to binary or ternary synapses "
                  "that do not learn (an inference graph); this connection "
                  + ("has full-precision synapses" if c.quantizer == "none" else f"learns with {c.learning.rule!r}"))
        if c.learning.rule == "ep" and not ep:
            _fail(where, f"connections[{i}].learning.rule", "rule 'ep' needs 'ep' neurons")
        if ep and c.learning.rule == "metaplastic":
            _fail(where, f"connections[{i}].learning.rule", "an EP graph learns with rule 'ep' (or 'off')")
    if spec.readout.population not in names:
        _fail(where, "readout.population", f"unknown population {spec.readout.population!r}; "
              f"expected one of {', '.join(names)}")
    pop = spec.population(spec.readout.population)
    if pop.neuron not in READOUTS[spec.readout.kind]:
        _fail(where, "readout.kind", f"readout {spec.readout.kind!r} needs a population of "
              f"{' or '.join(READOUTS[spec.readout.kind])} neurons, but {pop.name!r} has {pop.neuron!r} neurons")
    if spec.run.learning and all(c.learning.rule == "off" for c in spec.connections):
        _fail(where, "run.learning", "learning is on but every connection has rule 'off'")
    if "snntorch" in spec.backends and any(c.faults.active for c in spec.connections):
        _fail(where, "backends", "device read faults run on the lava and torch backends; remove 'snntorch'")
    if "snntorch" in spec.backends and neurons != {"lif"}:
        _fail(where, "backends", f"the snntorch backend runs 'lif' neurons only; this graph has "
              f"{', '.join(sorted(neurons))}")
    if spec.input.source == "array":
        _check_input_file(where, spec.input)
    return dataclasses.replace(spec, connections=ordered)


def _check_weights_file(where: str, path: str, w: WeightsSpec, shape: tuple) -> None:
    if not w.file.is_file():
        _fail(where, f"{path}.file", f"weights file {str(w.file)!r} does not exist")
    try:
        if w.file.suffix == ".npz":
            with np.load(w.file) as archive:
                if w.key is None or w.key not in archive.files:
                    _fail(where, f"{path}.key", f"{w.key!r} is not an array of {str(w.file)!r}; expected one of "
                          f"{', '.join(archive.files)}")
                got = archive[w.key].shape
        else:
            got = np.load(w.file, mmap_mode="r").shape
    except GraphSpecError:
        raise
    except Exception as err:
        _fail(where, f"{path}.file", f"cannot read weights file {str(w.file)!r} ({type(err).__name__}: {err})")
    if tuple(got) != tuple(shape):
        _fail(where, f"{path}.file", f"weights in {str(w.file)!r} have shape {tuple(got)}, expected {tuple(shape)} "
              "(post, pre)")


def _check_weights_array(where: str, path: str, values, shape: tuple) -> None:
    if values is None or np.shape(values) != tuple(shape):
        _fail(where, f"{path}.values", f"expected in-memory weights of shape {tuple(shape)} (post, pre), got "
              f"{None if values is None else np.shape(values)}")
    if not np.isfinite(values).all():
        _fail(where, f"{path}.values", f"holds {int((~np.isfinite(values)).sum())} NaN or infinite values; "
              "expected finite numbers")


def _check_input_file(where: str, inp: InputSpec) -> None:
    if not inp.file.is_file():
        _fail(where, "input.file", f"input file {str(inp.file)!r} does not exist")
    try:
        shape = np.load(inp.file, mmap_mode="r").shape
    except Exception as err:
        _fail(where, "input.file", f"cannot read input file {str(inp.file)!r} ({type(err).__name__}: {err})")
    if len(shape) != 3 or shape[2] != inp.size or 0 in shape:
        _fail(where, "input.file", f"input array has shape {tuple(shape)}, expected (T, B, {inp.size})")


def read_graph_data(path: str | os.PathLike) -> dict:
    """The parsed TOML document of a graph file, not yet validated (tomli on Python 3.10)."""
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:
        import tomli as tomllib

    path = Path(path)
    if not path.is_file():
        raise GraphSpecError(f"{path}: no such graph file")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise GraphSpecError(f"{path}: not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise GraphSpecError(f"{path}: not a text file") from None


def load_graph(path: str | os.PathLike) -> GraphSpec:
    """Read and validate a graph file (``.toml``)."""
    path = Path(path)
    return parse_graph(read_graph_data(path), where=str(path), base=path.resolve().parent)


def load_weights(w: WeightsSpec, shape: tuple, seed_offset: int = 0) -> np.ndarray:
    """The initial hidden weights of a connection, ``shape`` = ``(post, pre)``, float64 (a fresh array)."""
    if w.init == "array":
        return np.array(w.values, dtype=np.float64)
    if w.init == "file":
        if w.file.suffix == ".npz":
            with np.load(w.file) as archive:
                return np.asarray(archive[w.key], dtype=np.float64)
        return np.asarray(np.load(w.file), dtype=np.float64)
    rng = np.random.default_rng([w.seed, seed_offset])
    return rng.uniform(-w.scale, w.scale, size=shape)


def weights_path(graph: str | os.PathLike) -> Path:
    """The weights file written beside a graph file: ``<stem>.weights.npz``."""
    graph = Path(graph)
    return graph.with_name(f"{graph.stem}.weights.npz")


def describe(spec: GraphSpec) -> str:
    """One line per population: a short summary of the graph for terminals and logs."""
    lines = [f"{spec.name}: {' -> '.join(map(str, spec.sizes))}"]
    for c, p in zip(spec.connections, spec.populations):
        rule = "" if c.learning.rule == "off" else f", learns ({c.learning.rule})"
        lines.append(f"  {c.pre} -> {p.name}: {c.quantizer} synapses{rule}; {p.size} {p.neuron} neurons")
    lines.append(f"  readout: {spec.readout.kind} of {spec.readout.population}")
    return "\n".join(lines)

