"""Spiking against rate-based: one graph on several backends, on the very same input.

:func:`compare_graph` runs a feed-forward graph on the backends it declares
(``lava``, ``snntorch``, ``torch``) and measures three things:

**Agreement.** At the graph's own number of time steps ``T`` (``run.steps``,
or the length of an input array), the records of every population on Lava
and on snnTorch are compared entry by entry: the number of differing
entries, the spikes each sent, and the fraction of equal entries. The
predictions of every pair of backends are compared sample by sample.

**Accuracy against time steps.** Every spiking backend (``lava``,
``snntorch``) runs the same samples for each ``T`` of ``steps``; the
rate-based network (``torch``), which has no time steps, gives one
accuracy, drawn as a horizontal line. The input is built once per ``T``
with the graph's seed, so every backend receives the same spikes.

**Messages and synaptic operations**, per sample, per mode:

- spiking (``lava``, ``snntorch``; a run of ``T`` input steps lasts
  ``T + L`` recorded steps for ``L`` populations):

  - messages of a population: the non-zero entries of its record (spikes of
    ``lif`` neurons, non-zero outputs of ``sign``/``error`` neurons) over
    all ``T + L`` steps;
  - input messages: the non-zero entries of the input ``(T, N, n_in)``;
  - synaptic operations of a connection ``pre -> post``: the messages of
    ``pre`` (the input for the first connection) times the size of
    ``post``, its fan-out: each message is added into every postsynaptic
    neuron;

- rate-based (``torch``, one dense pass, no time steps):

  - messages of a population: its size (every neuron sends its value once);
  - input messages: the input size;
  - synaptic operations of a connection: ``size(pre) * size(post)``, the
    multiply-accumulates of a dense layer.

``messages_total`` sums the populations (not the input); ``synops_total``
sums the connections; all are divided by the number of samples.

Learning graphs are refused: they train before they answer and record only
their outputs. Lava is imported only through the backends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from lavaplast.graph.backends import check_backend, run_graph
from lavaplast.graph.backends.base import GraphRun, is_learning_graph
from lavaplast.graph.inputs import GraphInput, build_input
from lavaplast.graph.spec import INPUT_NAME, GraphSpec
from lavaplast.outputs import RunFolderError, run_folder, save_figure, write_json, write_text
from lavaplast.progress import progress_bar

DEFAULT_STEPS = (1, 2, 4, 8, 16, 32)
SPIKING = ("lava", "snntorch")
RATE = "torch"
OUTPUTS = ("compare.json", "report.md", "rasters.png", "accuracy_vs_steps.png", "messages.png")
_COLORS = {"lava": "tab:blue", "snntorch": "tab:orange", "torch": "tab:green"}


def check_request(spec: GraphSpec, backends: Optional[Sequence[str]] = None,
                  steps: Optional[Sequence[int]] = None) -> tuple[tuple, tuple]:
    """The backends (default: all the graph declares) and step counts to compare, checked.

    Raises ``ValueError`` with one line for an unknown backend, a backend the
    graph does not declare, a step count below 1, or a learning graph.
    """
    if is_learning_graph(spec):
        raise ValueError(f"{spec.where}: run.learning: compare runs inference graphs; this graph learns "
                         "before it answers (use 'lavaplast run')")
    backends = tuple(spec.backends if backends is None else backends)
    if not backends:
        raise ValueError("backends: name at least one backend")
    for b in backends:
        check_backend(spec, b)
    backends = tuple(dict.fromkeys(backends))
    steps = tuple(DEFAULT_STEPS if steps is None else steps)
    bad = [s for s in steps if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1]
    if not steps or bad:
        raise ValueError(f"steps: every number of time steps must be an integer >= 1, got {list(steps)}")
    return backends, tuple(sorted(set(int(s) for s in steps)))


def spiking_cost(spec: GraphSpec, inputs: GraphInput, run: GraphRun) -> dict:
    """Messages and synaptic operations per sample of a spiking run (see the module docstring)."""
    n = max(run.samples, 1)
    sent = {INPUT_NAME: np.count_nonzero(inputs.data) / n}
    for pop in spec.populations:
        sent[pop.name] = np.count_nonzero(run.records[pop.name]) / n
    return _cost(spec, sent)


def rate_cost(spec: GraphSpec) -> dict:
    """Dense messages and multiply-accumulates per sample of the rate-based network."""
    sent = {INPUT_NAME: float(spec.input.size), **{p.name: float(p.size) for p in spec.populations}}
    return _cost(spec, sent)


def _cost(spec: GraphSpec, sent: dict) -> dict:
    sizes = {p.name: p.size for p in spec.populations}
    synops = {f"{c.pre}->{c.post}": sent[c.pre] * sizes[c.post] for c in spec.connections}
    messages = {p.name: float(sent[p.name]) for p in spec.populations}
    return {"input_messages": float(sent[INPUT_NAME]), "messages": messages,
            "messages_total": float(sum(messages.values())),
            "synops": {k: float(v) for k, v in synops.items()}, "synops_total": float(sum(synops.values()))}


def _agreement(spec: GraphSpec, a: GraphRun, b: GraphRun) -> dict:
    out = {}
    for pop in spec.populations:
        ra, rb = a.records[pop.name], b.records[pop.name]
        if ra.shape != rb.shape:
            raise ValueError(f"{pop.name}: {a.backend} recorded {ra.shape}, {b.backend} {rb.shape}")
        differing = int(np.count_nonzero(ra != rb))
        out[pop.name] = {"differing": differing, "entries": int(ra.size),
                         "spikes": {a.backend: int(np.count_nonzero(ra)), b.backend: int(np.count_nonzero(rb))},
                         "fraction_equal": 1.0 - differing / max(ra.size, 1)}
    return out


def compare_graph(spec: GraphSpec, *, backends: Optional[Sequence[str]] = None,
                  steps: Optional[Sequence[int]] = None, samples: Optional[int] = None, input_file=None,
                  data_dir=None, progress: bool = False) -> dict:
    """Run ``spec`` on ``backends`` and compare them (see the module docstring).

    ``steps``: the step counts of the accuracy sweep (default
    :data:`DEFAULT_STEPS`); an input array (the graph's or ``input_file``)
    fixes ``T`` itself, and then the sweep is that one ``T``. ``samples``
    replaces ``input.samples``. Returns a dict of plain numbers (what
    :func:`write_compare` stores as ``compare.json``) plus ``"runs"``: the
    :class:`GraphRun` of each backend at the graph's own ``T``.
    """
    backends, sweep = check_request(spec, backends, steps)
    if samples is not None:
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
            raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
        spec = spec.replace(input=dataclasses.replace(spec.input, samples=int(samples)))
    notes = []
    from_array = input_file is not None or spec.input.source == "array"
    if from_array:
        base = build_input(spec, input_file=input_file)
        graph_steps = base.steps
        if tuple(sweep) != (graph_steps,):
            notes.append(f"the input array fixes T = {graph_steps}: the sweep runs that T only")
        sweep = (graph_steps,)
        inputs_for = {graph_steps: base}
    else:
        graph_steps = spec.run.steps
        inputs_for = {}
    spiking = [b for b in backends if b in SPIKING]
    plan = [(T, b) for T in sorted(set(sweep) | {graph_steps}) for b in spiking]
    if RATE in backends:
        plan.append((graph_steps, RATE))

    runs_at_graph_steps, sweep_runs = {}, {}
    for T, backend in progress_bar(plan, progress, desc=f"compare {spec.name}", unit="run", total=len(plan)):
        if T not in inputs_for:
            inputs_for[T] = build_input(spec, steps=T, data_dir=data_dir)
        run = run_graph(spec, inputs_for[T], backend)
        if T == graph_steps:
            runs_at_graph_steps[backend] = run
        if T in sweep and backend in SPIKING:
            sweep_runs[(T, backend)] = run

    base = inputs_for[graph_steps]
    agreement = {"steps": graph_steps, "populations": {}, "predictions": {}}
    if "lava" in runs_at_graph_steps and "snntorch" in runs_at_graph_steps:
        agreement["populations"] = _agreement(spec, runs_at_graph_steps["lava"], runs_at_graph_steps["snntorch"])
    for a, b in itertools.combinations(backends, 2):
        pa, pb = runs_at_graph_steps[a].predictions, runs_at_graph_steps[b].predictions
        same = int(np.count_nonzero(pa == pb))
        agreement["predictions"][f"{a}-{b}"] = {"same": same, "samples": int(len(pa)),
                                                "fraction": same / max(len(pa), 1)}

    accuracy = {"steps": list(sweep)}
    sweep_cost = {}
    for b in spiking:
        accuracy[b] = [sweep_runs[(T, b)].accuracy for T in sweep]
        sweep_cost[b] = [spiking_cost(spec, inputs_for[T], sweep_runs[(T, b)]) for T in sweep]
        accuracy[f"{b}_messages_total"] = [c["messages_total"] for c in sweep_cost[b]]
        accuracy[f"{b}_synops_total"] = [c["synops_total"] for c in sweep_cost[b]]
    if len(spiking) == 2:
        accuracy["differing_spikes"] = [
            sum(v["differing"] for v in _agreement(spec, sweep_runs[(T, "lava")],
                                                   sweep_runs[(T, "snntorch")]).values())
            for T in sweep]
    if RATE in runs_at_graph_steps:
        rate_accuracy, rate_note = runs_at_graph_steps[RATE].accuracy, "rate-based network (torch backend)"
    elif RATE in spec.backends:
        rate_accuracy, rate_note = None, "torch is not among the chosen backends: no rate-based line"
    else:
        rate_accuracy, rate_note = None, "the graph does not declare the torch backend: no rate-based line"
    accuracy["rate"] = rate_accuracy
    accuracy["rate_note"] = rate_note

    cost = {}
    for b, run in runs_at_graph_steps.items():
        cost[b] = rate_cost(spec) if b == RATE else spiking_cost(spec, base, run)
        kind = "spiking" if all(p.neuron == "lif" for p in spec.populations) else "events"
        cost[b]["mode"] = "rate (dense)" if b == RATE else f"{kind}, T = {graph_steps}"

    return {
        "graph_name": spec.name,
        "graph": spec.to_dict(),
        "graph_file": None if spec.path is None else str(spec.path),
        "backends": list(backends),
        "samples": int(base.samples),
        "steps": int(graph_steps),
        "input": base.source,
        "labels": base.labels is not None,
        "agreement": agreement,
        "accuracy": {b: run.accuracy for b, run in runs_at_graph_steps.items()},
        "accuracy_vs_steps": accuracy,
        "cost": cost,
        "seconds": {b: round(run.seconds, 4) for b, run in runs_at_graph_steps.items()},
        "notes": notes,
        "runs": runs_at_graph_steps,
    }


def differing_spikes(result: dict) -> Optional[int]:
    """Lava against snnTorch: the entries that differ, over all populations, at the graph's ``T``
    (``None`` when the two were not both run)."""
    pops = result["agreement"]["populations"]
    return sum(v["differing"] for v in pops.values()) if pops else None


# --- figures ---------------------------------------------------------------------


def plot_rasters(spec: GraphSpec, result: dict, sample: int = 0):
    """A ``Figure``: the activity of one sample, one column per backend, one row per population."""
    from matplotlib.figure import Figure

    runs = result["runs"]
    names = [p.name for p in spec.populations]
    fig = Figure(figsize=(3.6 * len(runs) + 0.6, 1.0 + 1.9 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), len(runs), squeeze=False)
    for col, (backend, run) in enumerate(runs.items()):
        for row, name in enumerate(names):
            ax, pop = axes[row, col], spec.population(name)
            r = run.records[name][:, sample]
            if backend == RATE:
                ax.barh(np.arange(pop.size), r[0], color=_COLORS[RATE], height=0.8)
                ax.set_xlabel("rate (spikes per step)" if pop.neuron == "lif" else "output")
            elif pop.neuron == "lif":
                t, i = np.nonzero(r)
                ax.scatter(t, i, s=10, marker="|", color=_COLORS.get(backend, "black"))
                ax.set_xlim(-0.5, r.shape[0] - 0.5)
                ax.set_xlabel("time step")
            else:
                ax.imshow(r.T, aspect="auto", origin="lower", interpolation="nearest", cmap="viridis")
                ax.set_xlabel("time step")
            ax.set_ylim(-0.5, pop.size - 0.5)
            sent = np.count_nonzero(r)
            ax.set_title(f"{backend}: {name}, {sent if backend != RATE else pop.size} messages", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"{name}\nneuron")
    first = next(iter(runs.values()))
    label = "" if first.labels is None else f", label {first.labels[sample]}"
    preds = ", ".join(f"{b} {run.predictions[sample]}" for b, run in runs.items())
    fig.suptitle(f"{spec.name}: sample {sample}{label}; predictions: {preds}", fontsize=10)
    return fig


def plot_accuracy_vs_steps(result: dict):
    """A ``Figure``: accuracy of each spiking backend against ``T``, the rate-based accuracy dashed."""
    from matplotlib.figure import Figure

    acc = result["accuracy_vs_steps"]
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    styles = {"lava": dict(marker="o", lw=2.5), "snntorch": dict(marker="x", ls=":", lw=1.5)}
    drawn = False
    for b in SPIKING:
        if b in acc and any(a is not None for a in acc[b]):
            ax.plot(acc["steps"], [np.nan if a is None else a for a in acc[b]], color=_COLORS[b],
                    label=f"{b} (spiking)", **styles[b])
            drawn = True
    if acc["rate"] is not None:
        ax.axhline(acc["rate"], color=_COLORS[RATE], ls="--", label=f"rate-based (torch): {acc['rate']:.1f}%")
        drawn = True
    if len(acc["steps"]) > 1:
        ax.set_xscale("log", base=2)
    ax.set_xticks(acc["steps"], [str(s) for s in acc["steps"]])
    ax.set_xlabel("time steps per sample (T)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    title = f"{result['graph_name']}: {result['samples']} samples"
    if not result["labels"]:
        title += " (no labels: no accuracy)"
    elif acc["rate"] is None:
        title += f"\n({acc['rate_note']})"
    ax.set_title(title, fontsize=10)
    if drawn:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def plot_messages(result: dict):
    """A ``Figure``: messages and synaptic operations per sample, one bar per mode, stacked by source."""
    from matplotlib.figure import Figure

    cost = result["cost"]
    modes = list(cost)
    fig = Figure(figsize=(4.0 + 1.6 * len(modes), 3.8), layout="constrained")
    ax_m, ax_s = fig.subplots(1, 2)
    x = np.arange(len(modes))
    for ax, key, title in ((ax_m, "messages", "messages per sample"),
                           (ax_s, "synops", "synaptic operations per sample")):
        parts = list(cost[modes[0]][key])
        bottom = np.zeros(len(modes))
        for part in parts:
            values = np.array([cost[m][key][part] for m in modes])
            ax.bar(x, values, bottom=bottom, label=part, width=0.6)
            bottom += values
        for xi, total in zip(x, bottom):
            ax.annotate(f"{total:,.0f}", (xi, total), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, [f"{m}\n{cost[m]['mode']}" for m in modes], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, max(bottom.max(), 1.0) * 1.15)
        ax.legend(fontsize=8)
    fig.suptitle(f"{result['graph_name']}: what each mode sends and computes (input messages not in the left "
                 "bars)", fontsize=9)
    return fig


# --- text ------------------------------------------------------------------------


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _table(header: Sequence[str], rows: list) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return lines


def report_markdown(result: dict) -> str:
    """A short Markdown report: agreement, accuracy against ``T``, messages and synaptic operations."""
    ag, acc, cost = result["agreement"], result["accuracy_vs_steps"], result["cost"]
    lines = [f"# Spiking against rate-based: {result['graph_name']}", ""]
    if result.get("command"):
        lines += [f"`{result['command']}`", ""]
    lines += [f"Input: {result['input']}; T = {result['steps']} time steps; backends: "
              f"{', '.join(result['backends'])}.", "", f"## Agreement (T = {ag['steps']})", ""]
    if ag["populations"]:
        rows = [[name, v["spikes"]["lava"], v["spikes"]["snntorch"], v["differing"], v["entries"],
                 f"{v['fraction_equal']:.6f}"] for name, v in ag["populations"].items()]
        lines += _table(["population", "lava spikes", "snntorch spikes", "differing entries", "entries",
                         "fraction equal"], rows) + [""]
    else:
        lines += ["Spike-for-spike agreement needs both lava and snntorch.", ""]
    if ag["predictions"]:
        rows = [[pair, f"{v['same']} / {v['samples']}", f"{100 * v['fraction']:.1f}%"]
                for pair, v in ag["predictions"].items()]
        lines += _table(["backends", "same predictions", "fraction"], rows) + [""]
    spiking = [b for b in SPIKING if b in acc]
    lines += ["## Accuracy against time steps", ""]
    if spiking:
        header = ["T", *[f"{b} accuracy" for b in spiking], *[f"{b} messages / sample" for b in spiking]]
        rows = [[T, *[_pct(acc[b][k]) for b in spiking], *[f"{acc[f'{b}_messages_total'][k]:.1f}" for b in spiking]]
                for k, T in enumerate(acc["steps"])]
        lines += _table(header, rows) + [""]
    rate = f"rate-based (torch): {_pct(acc['rate'])}" if acc["rate"] is not None else acc["rate_note"]
    lines += [f"{rate}.", "", "## Messages and synaptic operations per sample", ""]
    rows = [[b, c["mode"], f"{c['input_messages']:.1f}", f"{c['messages_total']:.1f}",
             ", ".join(f"{k} {v:.1f}" for k, v in c["messages"].items()), f"{c['synops_total']:.1f}"]
            for b, c in cost.items()]
    lines += _table(["backend", "mode", "input messages", "messages", "per population", "synaptic ops"], rows)
    lines += ["", "Spiking: messages are non-zero entries of the records over T + L steps; a synaptic operation "
              "is one message delivered to one postsynaptic neuron. Rate: every neuron sends its value once; "
              "synaptic operations are the dense multiply-accumulates."]
    if result["notes"]:
        lines += ["", *[f"Note: {n}." for n in result["notes"]]]
    return "\n".join(lines) + "\n"


def summary(result: dict) -> str:
    """A few lines for a terminal: agreement, accuracy against ``T``, cost per sample."""
    lines = [f"{result['graph_name']}: {', '.join(result['backends'])} on {result['samples']} samples, "
             f"T = {result['steps']}"]
    diff = differing_spikes(result)
    if diff is not None:
        total = sum(v["spikes"]["lava"] for v in result["agreement"]["populations"].values())
        lines.append(f"lava vs snntorch: differing spikes: {diff} (of {total} spikes)")
    for pair, v in result["agreement"]["predictions"].items():
        lines.append(f"same predictions {pair}: {v['same']}/{v['samples']}")
    acc = result["accuracy_vs_steps"]
    for b in SPIKING:
        if b in acc:
            lines.append(f"{b:9s} accuracy vs T: " + "  ".join(f"{T}:{_pct(a)}" for T, a in zip(acc["steps"], acc[b])))
    lines.append(f"rate-based accuracy: {_pct(acc['rate'])}" if acc["rate"] is not None else acc["rate_note"])
    for b, c in result["cost"].items():
        lines.append(f"{b:9s} ({c['mode']}): {c['messages_total']:.1f} messages, {c['synops_total']:.1f} "
                     f"synaptic ops per sample (input {c['input_messages']:.1f})")
    return "\n".join(lines)


# --- writing ---------------------------------------------------------------------


@contextlib.contextmanager
def compare_folder(out, *, overwrite: bool = False) -> Iterator[Path]:
    """:func:`lavaplast.outputs.run_folder` for a comparison: an existing ``compare.json`` is refused
    without ``overwrite``."""
    out = Path(out)
    if (out / "compare.json").exists() and not overwrite:
        raise RunFolderError(f"output folder {out} already holds a comparison (compare.json); choose another "
                             "--out, or replace it with --overwrite")
    with run_folder(out, overwrite=overwrite, outputs=OUTPUTS) as folder:
        yield folder


def write_compare(spec: GraphSpec, result: dict, out, *, command: Optional[str] = None) -> dict:
    """Write ``compare.json``, ``report.md``, ``rasters.png``, ``accuracy_vs_steps.png`` and
    ``messages.png`` into the folder ``out`` (prepared by :func:`compare_folder`); return what
    ``compare.json`` holds."""
    out = Path(out)
    data = {k: v for k, v in result.items() if k != "runs"}
    data["command"] = command
    save_figure(plot_rasters(spec, result), out / "rasters.png")
    save_figure(plot_accuracy_vs_steps(result), out / "accuracy_vs_steps.png")
    save_figure(plot_messages(result), out / "messages.png")
    write_text(out / "report.md", report_markdown(data))
    write_json(out / "compare.json", data)
    return data
