"""``lavaplast energy GRAPH|RUN``: operation counts measured on Lava, and what they cost on three substrates.

A graph file (``processes/*.toml``, ``.nir``) or the folder of a finished
``lavaplast continual``, ``onchip``, ``ep train`` or ``ep sweep`` run
describes one or more networks. Each is run on Lava's CPU simulator for a
few samples (:func:`measure`):

- feed-forward graphs (``lif``, ``sign``, ``error`` populations) run as the
  ``lava`` backend's process chain; the messages of every population are
  the non-zero entries of its recording (spikes, signs, logits), the
  input's the non-zero entries of the encoded input. A graph that learns
  (on-chip or spiking learner) is measured on the same chain with its
  initial weights and learning off: its forward activity, from which a
  training sample's counts add the local rule's update (closed form);
- EP graphs train on the samples (one pass over the first ``N`` training
  images, whole batches) and answer for ``N`` test images on
  :class:`~lavaplast.graph.ep_network.LavaEPNetwork`, whose neurons count
  the events they send, for training and for inference.

:func:`account` turns the measured activity into counts with
:mod:`lavaplast.core.energy` and prices them on three substrates:

- ``gpu``: the rate-based (dense) network on a GPU/CPU in fp32;
- ``loihi``: the graph's own neurons on a Loihi-class core, from the
  measured events (spiking for ``lif``, event-driven EP for ``ep``, sign
  events for ``sign``); the closed-form dense equivalent (every neuron
  sending at every step) is reported next to it;
- ``rram``: the binary (or ternary) network in 2T2R resistive arrays, one
  dense pass (only when every connection is binary or ternary).

A run folder's network is rebuilt from its ``results.json`` (sizes,
neurons, steps, phases, dataset) with freshly drawn weights of the run's
seed: the account concerns the network's shape and its activity, not the
trained weights.
"""

from __future__ import annotations

import dataclasses
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from lavaplast.core import energy as E
from lavaplast.outputs import RunFolderError, read_json, run_folder, save_figure, write_json

OUTPUTS = ("energy.json", "energy.png")
DEFAULT_SAMPLES = 20
SUBSTRATE_LABELS = {"gpu": "rate-based, GPU/CPU fp32", "loihi": "Loihi-class core", "rram": "2T2R in-memory"}


@dataclass
class Network:
    """A network to account for: its graph ``spec`` (run on Lava), a ``label`` and the optimizer its
    synapses learn with (``adam`` or ``sgd``)."""

    label: str
    spec: object
    optimizer: str = "adam"


def kind_of(spec) -> str:
    """``"ep"``, ``"lif"`` (every population spiking) or ``"sign"`` (sign and error neurons)."""
    kinds = {p.neuron for p in spec.populations}
    if "ep" in kinds:
        return "ep"
    return "lif" if kinds == {"lif"} else "sign"


def _optimizer(spec) -> str:
    if kind_of(spec) == "ep":
        return "sgd" if spec.connections[0].quantizer == "none" else "adam"
    opts = {c.learning.optimizer for c in spec.connections if c.learning.rule == "metaplastic"}
    return "sgd" if opts == {"sgd"} else "adam"


# --- what to account for -------------------------------------------------------------------------


def networks_from_path(path, samples: int) -> tuple[str, list]:
    """``(kind, networks)`` for a graph file (``kind = "graph"``) or a run folder (``"run"``)."""
    path = Path(path)
    if path.is_dir():
        return "run", run_networks(path, samples)
    if not path.exists():
        raise ValueError(f"{path}: no such graph file or run folder")
    if path.suffix not in (".toml", ".nir"):
        raise ValueError(f"{path}: expected a graph file (.toml or .nir) or a run folder holding results.json")
    if path.suffix == ".nir":
        from lavaplast.graph.nir import read_nir

        spec = read_nir(path)
    else:
        from lavaplast.graph.spec import load_graph

        spec = load_graph(path)
    if spec.input.source == "external":
        raise ValueError(f"{path}: input.source is 'external' (the graph fixes only the input width); "
                         "lavaplast energy measures graphs whose input is a dataset or an array file")
    return "graph", [Network(label=spec.name, spec=_sized(spec, samples), optimizer=_optimizer(spec))]


def _sized(spec, samples: int):
    """``spec`` run on ``samples`` samples: a dataset input reads that many; an EP graph's batch fits them."""
    if spec.input.source == "dataset":
        spec = spec.replace(input=dataclasses.replace(spec.input, samples=samples))
    if kind_of(spec) == "ep":
        spec = spec.replace(run=dataclasses.replace(spec.run, batch=min(spec.run.batch, samples)))
    return spec


def _n_features(dataset: str) -> int:
    from lavaplast.data import load_dataset

    x, _ = load_dataset(dataset, "test")
    return int(np.prod(x.shape[1:]))


def _graph(name: str, dataset: str, sizes: Sequence[int], neuron: str, *, encoding: str, steps: int = 1,
           seed: int = 0, samples: int, extra_pop: Optional[list] = None, learning=None, quantizer="binary",
           equilibrium: Optional[dict] = None, batch: int = 100):
    """A graph specification for a chain of ``sizes`` (validated by :func:`~lavaplast.graph.spec.parse_graph`)."""
    from lavaplast.graph.spec import parse_graph

    names = [f"layer{i + 1}" for i in range(len(sizes) - 2)] + ["out"]
    pops = []
    for i, n in enumerate(sizes[1:]):
        params = dict(extra_pop[i]) if extra_pop else {}
        pops.append(dict(name=names[i], size=int(n), neuron=neuron if i < len(names) - 1 or neuron != "sign"
                         else "error", params=params))
    conns = []
    for i in range(len(names)):
        c = dict(pre="input" if i == 0 else names[i - 1], post=names[i], quantizer=quantizer,
                 weights=dict(init="uniform", scale=0.05, seed=int(seed)))
        if learning is not None:
            c["learning"] = dict(learning[i] if isinstance(learning, list) else learning)
        conns.append(c)
    readout = {"lif": "spike_count", "sign": "logits", "ep": "ep_state"}[neuron]
    data = dict(name=name, backends=["lava"],
                input=dict(size=int(sizes[0]), dataset=dataset, split="test", samples=int(samples),
                           encoding=encoding),
                populations=pops, connections=conns, readout=dict(population="out", kind=readout),
                run=dict(steps=int(steps), batch=int(min(batch, samples)), seed=int(seed),
                         learning=equilibrium is not None))
    if equilibrium is not None:
        data["equilibrium"] = equilibrium
    return parse_graph(data, where=name)


def run_networks(folder: Path, samples: int) -> list:
    """The networks a run folder describes (see the module docstring)."""
    results_path = folder / "results.json"
    if not results_path.is_file():
        raise ValueError(f"run folder {folder} holds no results.json: point at the --out folder of a finished "
                         "'lavaplast continual', 'onchip', 'ep train' or 'ep sweep' run, or at a graph file")
    data = read_json(results_path, "results file")
    cfg = data.get("config", {}) if isinstance(data.get("config"), dict) else {}
    name = folder.name or "run"
    try:
        if "sweep" in data and "sizes" in data:  # ep sweep
            return [_ep_network(f"{name} threshold {row['threshold']:g}", data["dataset"], data["sizes"],
                                data["T1"], data["T2"], data["beta"], "symmetric", "hard", data["lrs"],
                                float(row["threshold"]), data["seed"], data["batch"], samples)
                    for row in data["sweep"]]
        if {"T1", "T2", "nudging"} <= set(cfg) and "sizes" in data:  # ep train
            if cfg["nudging"] not in ("symmetric", "one-sided") or cfg.get("loss", "mse") != "mse":
                raise ValueError(f"{results_path}: this EP run uses nudging {cfg['nudging']!r} and loss "
                                 f"{cfg.get('loss')!r}; the event-driven graph runs 'symmetric' or 'one-sided' "
                                 "nudging with the 'mse' loss")
            return [_ep_network(name, cfg["dataset"], data["sizes"], cfg["T1"], cfg["T2"], cfg["beta"],
                                cfg["nudging"], cfg.get("activation", "hard"), cfg["lrs"], 0.0, cfg["seed"],
                                cfg["batch"], samples)]
        if {"neuron", "steps"} <= set(cfg) and "sizes" in data:  # onchip
            sizes = [int(n) for n in data["sizes"]]
            dataset = cfg["dataset"] if cfg.get("protocol", "permuted") != "sequence" else "mnist"
            if cfg["neuron"] == "lif":
                thresholds = [float(np.sqrt(i)) / 2 for i in sizes[:-1]]  # init_spiking_learner's default
                pops = [dict(beta=0.9, threshold=t) for t in thresholds]
                spec = _graph(name, dataset, sizes, "lif", encoding="rate", steps=int(cfg["steps"]),
                              seed=cfg["seed"], samples=samples, extra_pop=pops)
            else:
                pops = [dict(gain=1.0 / float(np.sqrt(i))) for i in sizes[:-1]]
                spec = _graph(name, dataset, sizes, "sign", encoding="current", seed=cfg["seed"],
                              samples=samples, extra_pop=pops)
            return [Network(label=name, spec=spec, optimizer="adam")]
        if {"model", "batchnorm", "hidden"} <= set(cfg):  # continual
            if cfg["model"] != "bnn":
                raise ValueError(f"{results_path}: model {cfg['model']!r}: the energy account covers binary "
                                 "networks (model 'bnn')")
            dataset = cfg["datasets"][0] if cfg.get("protocol") == "sequence" else cfg["dataset"]
            sizes = [_n_features(dataset), *[int(h) for h in cfg["hidden"]], 10]
            pops = [dict(gain=1.0 / float(np.sqrt(i))) for i in sizes[:-1]]
            spec = _graph(name, dataset, sizes, "sign", encoding="current", seed=cfg["seed"], samples=samples,
                          extra_pop=pops)
            return [Network(label=name, spec=spec, optimizer="adam")]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{results_path} lacks the settings of its run ({type(exc).__name__}: {exc}); it is "
                         "truncated or from another version") from None
    raise ValueError(f"{results_path} is not the results of a 'lavaplast continual', 'onchip', 'ep train' or "
                     "'ep sweep' run")


def _ep_network(label, dataset, sizes, T1, T2, beta, nudging, activation, lrs, threshold, seed, batch, samples):
    sizes = [int(n) for n in sizes]
    lrs = list(lrs) if isinstance(lrs, (list, tuple)) else [lrs]
    lrs = (lrs * len(sizes))[: len(sizes) - 1] if len(lrs) == 1 else lrs
    pops = [dict(activation=activation, threshold=float(threshold), bias=0.0) for _ in sizes[1:]]
    learning = [dict(rule="ep", lr=float(lr)) for lr in lrs]
    spec = _graph(label, dataset, sizes, "ep", encoding="current",
                  seed=seed, samples=samples, extra_pop=pops, learning=learning, quantizer="none",
                  equilibrium=dict(T1=int(T1), T2=int(T2), beta=float(beta), nudging=nudging), batch=int(batch))
    return Network(label=label, spec=spec, optimizer="sgd")


# --- measuring on Lava -------------------------------------------------------------------------


def _inference_chain(spec):
    """A learning lif/sign graph as its inference chain: the same weights, learning off (sign graphs: one
    step per sample)."""
    from lavaplast.graph.spec import LearningSpec

    if not spec.run.learning:
        return spec
    conns = tuple(dataclasses.replace(c, learning=LearningSpec()) for c in spec.connections)
    run = dataclasses.replace(spec.run, learning=False)
    if kind_of(spec) == "sign":
        # An on-chip learning graph holds each batch for L + 1 identical steps only so that its error can
        # travel back; one step carries a sample's forward messages.
        run = dataclasses.replace(run, steps=1)
    return spec.replace(connections=conns, run=run)


def measure(spec, *, data_dir=None, progress: bool = False) -> dict:
    """Run ``spec`` on Lava and return its measured activity per sample (see the module docstring).

    Feed-forward: ``{"kind", "samples", "steps" (input steps T), "recorded_steps", "input_messages",
    "messages": {population: per sample}, "bits": {...}}``. EP: ``"inference"`` and ``"training"``
    dicts, each with ``input_messages``, ``events`` per population per sample and the window's
    ``steps``.
    """
    from lavaplast.core import ep_window
    from lavaplast.graph.backends import run_graph
    from lavaplast.graph.backends.base import output_mode
    from lavaplast.graph.inputs import build_input, dataset_values

    kind = kind_of(spec)
    t0 = time.perf_counter()
    if kind != "ep":
        chain = _inference_chain(spec)
        inputs = build_input(chain, data_dir=data_dir)
        run = run_graph(chain, inputs, "lava", progress=progress)
        n, T = run.samples, inputs.steps
        # Spikes count over the whole run (a membrane may still fire after the input ends). Sign and error
        # neurons send a value at every step, sign(bias) included before their input arrives; only the T
        # steps in which population i answers the input (rows i+1 .. i+T) are the sample's messages.
        messages = {p.name: np.count_nonzero(run.records[p.name] if p.neuron == "lif"
                                             else run.records[p.name][i + 1: i + 1 + T]) / n
                    for i, p in enumerate(chain.populations)}
        pop_bits = {p.name: E.SPIKE_BITS if p.neuron == "lif" or output_mode(chain, i) in ("sign", "binary")
                    else E.VALUE_BITS for i, p in enumerate(chain.populations)}
        graded_input = chain.input.source == "dataset" and chain.input.encoding == "current"
        return {"kind": kind, "samples": n, "steps": inputs.steps, "recorded_steps": run.steps,
                "input_messages": np.count_nonzero(inputs.data) / n, "messages": messages,
                "input_bits": E.VALUE_BITS if graded_input else E.SPIKE_BITS, "bits": pop_bits,
                "spikes_per_neuron_per_step": {p.name: E.per_step(messages[p.name], inputs.steps, p.size)
                                               for p in chain.populations},
                "source": f"Lava run of {n} samples ({inputs.source}), {time.perf_counter() - t0:.1f} s"}
    inputs = build_input(spec, data_dir=data_dir)
    run = run_graph(spec, inputs, "lava", progress=progress)
    eq, names = spec.equilibrium, [p.name for p in spec.populations]
    n = run.samples
    out = {"kind": "ep", "samples": n,
           "inference": {"steps": ep_window(eq.T1, 1, "one-sided"),
                         "input_messages": np.count_nonzero(inputs.values) / n,
                         "events": {k: run.counts[k] / n for k in names}}}
    if "train_events" in run.info and run.info.get("train_samples"):
        m = run.info["train_samples"]
        x, _ = dataset_values(spec, split="train", samples=m, data_dir=data_dir)
        out["training"] = {"steps": ep_window(eq.T1, eq.T2, eq.nudging), "samples": m,
                           "input_messages": np.count_nonzero(x) / m,
                           "events": {k: run.info["train_events"][k] / m for k in names}}
    out["source"] = f"Lava run: {out.get('training', {}).get('samples', 0)} training and {n} test samples " \
                    f"({inputs.source}), {time.perf_counter() - t0:.1f} s"
    return out


# --- the account -------------------------------------------------------------------------------


def account(network: Network, activity: dict, constants: Optional[dict] = None) -> dict:
    """Counts and energies per inference and per training sample of ``network`` (see the module docstring)."""
    spec = network.spec
    sizes, kind, opt = spec.sizes, kind_of(spec), network.optimizer
    binary = all(c.quantizer in ("binary", "ternary") for c in spec.connections)
    counts = {"inference": {}, "training": {}}
    if kind == "ep":
        eq = spec.equilibrium
        counts["inference"]["rate_dense"] = E.ep_dense(sizes, eq.T1)
        counts["training"]["rate_dense"] = E.ep_dense_training(sizes, eq.T1, eq.T2, eq.nudging, opt)
        for phase in ("inference", "training"):
            a = activity.get(phase)
            if a is None:
                continue
            events = [a["events"][p.name] for p in spec.populations]
            measured = E.ep_events(sizes, a["input_messages"], events, a["steps"])
            dense = E.ep_events(sizes, sizes[0], [a["steps"] * n for n in sizes[1:]], a["steps"])
            if phase == "training":
                measured = measured + E.ep_learning(sizes, opt)
                dense = dense + E.ep_learning(sizes, opt)
            counts[phase]["events_measured"] = measured
            counts[phase]["events_dense"] = dense
    else:
        T = activity["steps"]
        sent = [activity["input_messages"], *[activity["messages"][p.name] for p in spec.populations]]
        bits = [activity["input_bits"], *[activity["bits"][p.name] for p in spec.populations]]
        measured = E.event_forward(sizes, sent, T, bits_per_message=bits)
        dense = E.event_forward(sizes, [T * n for n in sizes], T, bits_per_message=bits)
        counts["inference"] = {"rate_dense": E.dense_pass(sizes), "events_measured": measured,
                               "events_dense": dense}
        learn = E.local_learning(sizes, opt)
        counts["training"] = {"rate_dense": E.dense_training(sizes, opt), "events_measured": measured + learn,
                              "events_dense": dense + learn}
    energies = {}
    for phase, c in counts.items():
        e = {}
        if "rate_dense" in c:
            e["gpu"] = E.energy(c["rate_dense"], "gpu", constants)
            if binary:
                e["rram"] = E.energy(c["rate_dense"], "rram", constants)
        if "events_measured" in c:
            e["loihi"] = E.energy(c["events_measured"], "loihi", constants)
            e["loihi_dense"] = E.energy(c["events_dense"], "loihi", constants)
        energies[phase] = e
    mode = {"lif": "spiking (LIF)", "ep": "event-driven EP", "sign": "sign events"}[kind]
    return {
        "label": network.label,
        "graph": spec.name,
        "sizes": sizes,
        "neurons": kind,
        "loihi_mode": mode,
        "synapses": "binary/ternary" if binary else "full precision",
        "optimizer": opt,
        "synapse_count": E.n_synapses(sizes),
        "activity": _plain(activity),
        "counts": {ph: {k: v.to_dict() for k, v in c.items()} for ph, c in counts.items()},
        "energy_pj": energies,
    }


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


# --- presenting --------------------------------------------------------------------------------


def _fmt_pj(pj: Optional[float]) -> str:
    if pj is None:
        return "-"
    for unit, scale in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if pj >= scale:
            return f"{pj / scale:.3g} {unit}"
    return f"{pj:.3g} pJ"


def _total(entry: dict, phase: str, substrate: str) -> Optional[float]:
    e = entry["energy_pj"].get(phase, {}).get(substrate)
    return None if e is None else e["total"]


def summary(report: dict) -> str:
    """A short table per network: energy per inference and per training sample on each substrate."""
    lines = []
    for entry in report["networks"]:
        sizes = "-".join(map(str, entry["sizes"]))
        lines.append(f"{entry['label']} ({sizes}, {entry['loihi_mode']}, {entry['synapses']} synapses)")
        lines.append(f"  {'substrate':38s} {'per inference':>14s} {'per training sample':>20s}")
        rows = [("gpu", SUBSTRATE_LABELS["gpu"]), ("loihi", f"{entry['loihi_mode']}, Loihi-class (measured)"),
                ("loihi_dense", "  same, every neuron every step"), ("rram", SUBSTRATE_LABELS["rram"])]
        for key, label in rows:
            inf, tr = _total(entry, "inference", key), _total(entry, "training", key)
            if inf is None and tr is None:
                continue
            lines.append(f"  {label:38s} {_fmt_pj(inf):>14s} {_fmt_pj(tr):>20s}")
        c = entry["counts"]["inference"]
        if "events_measured" in c:
            lines.append(f"  synaptic ops per inference: {c['events_measured']['synops']:.4g} measured, "
                         f"{c['events_dense']['synops']:.4g} dense-equivalent, {c['rate_dense']['synops']:.4g} "
                         "in one dense pass")
    return "\n".join(lines)


def markdown_table(report: dict) -> str:
    """The report as a Markdown table, one row per network."""
    head = ("| network | sizes | Loihi mode | GPU/CPU fp32, inference | Loihi-class, inference | 2T2R in-memory, "
            "inference | GPU/CPU fp32, training sample | Loihi-class, training sample | 2T2R in-memory, "
            "training sample |")
    rows = [head, "|" + "---|" * 9]
    for e in report["networks"]:
        cells = [e["label"], "-".join(map(str, e["sizes"])), e["loihi_mode"]]
        for phase in ("inference", "training"):
            cells += [_fmt_pj(_total(e, phase, s)) for s in ("gpu", "loihi", "rram")]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(report: dict):
    """A ``Figure``: energy per inference and per training sample, one group of bars per network."""
    from matplotlib.figure import Figure

    nets = report["networks"]
    keys = [("gpu", "tab:green"), ("loihi", "tab:blue"), ("loihi_dense", "lightsteelblue"), ("rram", "tab:orange")]
    labels = {"gpu": SUBSTRATE_LABELS["gpu"], "loihi": "Loihi-class, measured events",
              "loihi_dense": "Loihi-class, every neuron every step", "rram": SUBSTRATE_LABELS["rram"]}
    fig = Figure(figsize=(max(6.0, 1.6 * len(nets) + 3.0), 7.5), layout="constrained")
    axes = fig.subplots(2, 1)
    width = 0.8 / len(keys)
    x = np.arange(len(nets))
    for ax, phase in zip(axes, ("inference", "training")):
        for j, (key, color) in enumerate(keys):
            vals = [_total(e, phase, key) for e in nets]
            text = ["" if v is None else _fmt_pj(v) for v in vals]
            vals = [np.nan if v is None else max(v, 1e-3) for v in vals]
            bars = ax.bar(x + (j - (len(keys) - 1) / 2) * width, vals, width, color=color,
                          label=labels[key] if phase == "inference" else None)
            ax.bar_label(bars, labels=text, fontsize=6, padding=1)
        ax.set_yscale("log")
        ax.margins(y=0.15)
        ax.set_xticks(x, [e["label"] for e in nets], fontsize=8, rotation=15)
        ax.set_ylabel("pJ per sample (log)")
        ax.set_title(f"energy per {'inference' if phase == 'inference' else 'training sample'}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize=7)
    return fig


# --- command -------------------------------------------------------------------------------------


def add_energy_parser(sub) -> None:
    """Register ``lavaplast energy`` on the subparsers ``sub``."""
    p = sub.add_parser("energy", help="operation counts measured on Lava and their energy per inference and per "
                                      "training sample on GPU/CPU, a Loihi-class core and 2T2R in-memory arrays")
    p.add_argument("source", metavar="GRAPH|RUN",
                   help="graph file (.toml, .nir) or the --out folder of a continual, onchip, ep train or ep sweep run")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help=f"samples run on Lava to measure activity (default: {DEFAULT_SAMPLES})")
    p.add_argument("--constant", action="append", default=[], metavar="NAME=VALUE",
                   help="override an energy constant (repeatable); names: " + ", ".join(E.constant_names()))
    p.add_argument("--out", default=None, help="output folder (default: runs/energy/<graph or run name>)")
    p.add_argument("--data-dir", default=None,
                   help="folder of IDX files (default: $LAVAPLAST_DATA or ~/.cache/lavaplast)")
    p.add_argument("--overwrite", action="store_true", help="replace an energy report already in --out")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="draw progress bars even when stderr is not a terminal (default: only on a terminal)")
    group.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bars")


def energy_report(source, *, samples: int = DEFAULT_SAMPLES, constants: Optional[dict] = None, data_dir=None,
                  progress: bool = False) -> dict:
    """Measure and account for every network ``source`` (a graph file or run folder) describes."""
    from lavaplast.core.validate import check_int

    samples = check_int("samples", samples, 1)
    constants = dict(constants or {})
    E.resolve_constants(constants)  # refuse bad constants before anything runs
    kind, networks = networks_from_path(source, samples)
    entries = []
    for net in networks:
        activity = measure(net.spec, data_dir=data_dir, progress=progress)
        entries.append(account(net, activity, constants))
    return {"source": str(source), "source_kind": kind, "samples": samples,
            "constants": E.constants_table(constants), "networks": entries,
            "notes": [
                "counts are per sample at batch 1; GPU weight traffic and optimizer arithmetic are shared by "
                "gpu_batch samples",
                "Loihi-class training adds one local-rule update of every synapse per sample to the measured "
                "forward activity (a learning lif/sign graph is measured with its initial weights)",
                "rram constants are unverified placeholders; see docs/energy.md",
            ]}


def run_energy(args) -> int:
    """``lavaplast energy``: write ``energy.json`` and ``energy.png`` into ``--out`` and print a table."""
    from lavaplast.progress import show_progress

    constants = dict(E.parse_constant(text) for text in args.constant)
    if args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}")
    source = Path(args.source)
    if not source.exists():
        raise ValueError(f"{source}: no such graph file or run folder")
    default_name = source.stem if source.is_file() else (source.resolve().name or "run")
    out = Path(args.out) if args.out else Path("runs") / "energy" / default_name
    if (out / "energy.json").exists() and not args.overwrite:
        raise RunFolderError(f"output folder {out} already holds an energy report (energy.json); choose another "
                             "--out, or replace it with --overwrite")
    words = ["lavaplast", "energy", str(args.source), "--samples", str(args.samples)]
    for text in args.constant:
        words += ["--constant", text]
    words += ["--out", str(out)]
    with run_folder(out, overwrite=args.overwrite, outputs=OUTPUTS) as folder:
        report = energy_report(source, samples=args.samples, constants=constants, data_dir=args.data_dir,
                               progress=show_progress(args.progress))
        report["command"] = shlex.join(words)
        report["markdown"] = markdown_table(report)
        save_figure(plot(report), folder / "energy.png")
        write_json(folder / "energy.json", report)
    print(summary(report))
    print(f"wrote {out / 'energy.json'} and energy.png")
    return 0
