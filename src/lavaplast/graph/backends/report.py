"""What ``lavaplast run`` shows and writes for a :class:`~lavaplast.graph.backends.base.GraphRun`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lavaplast.graph.backends.base import GraphRun
from lavaplast.graph.spec import GraphSpec
from lavaplast.outputs import save_figure, save_npz, write_json

OUTPUTS = ("results.json", "spikes.npz", "raster.png")
# Recordings above this size keep only the first batch of samples.
MAX_RECORD_BYTES = 200 * 1024 ** 2


def summary(spec: GraphSpec, run: GraphRun) -> str:
    """A few lines: backend, samples, steps, accuracy, spikes or events per sample, time."""
    lines = [f"backend {run.backend}: {run.samples} samples, {run.steps} recorded steps each, "
             f"{run.seconds:.2f} s"]
    if run.accuracy is not None:
        lines.append(f"accuracy {run.accuracy:.1f}% ({spec.readout.kind} of {spec.readout.population})")
    for name, value in run.per_sample().items():
        lines.append(f"  {name}: {value:.1f} {run.count_kind[name]} per sample")
    for name in (p.name for p in spec.populations):
        if name not in run.counts:
            lines.append(f"  {name}: not observed by this backend")
    return "\n".join(lines)


def _kept_records(spec: GraphSpec, run: GraphRun) -> tuple[dict, int, str]:
    arrays = {}
    for pop in spec.populations:
        if pop.name in run.records:
            r = run.records[pop.name]
            # Spike trains are 0/1: a byte each keeps the file small.
            exact = pop.neuron == "lif" and run.backend != "torch"
            arrays[pop.name] = r.astype(np.uint8) if exact else r.astype(np.float64)
    total = sum(a.nbytes for a in arrays.values())
    kept, note = run.samples, "all samples"
    if total > MAX_RECORD_BYTES:
        kept = min(spec.run.batch, run.samples)
        arrays = {k: a[:, :kept] for k, a in arrays.items()}
        note = (f"the recordings of all {run.samples} samples would take {total / 1024 ** 2:.0f} MB; "
                f"only the first {kept} samples are kept")
    return arrays, kept, note


def raster_figure(spec: GraphSpec, run: GraphRun, sample: int = 0):
    """A matplotlib ``Figure``: the first sample's activity, one panel per recorded population."""
    from matplotlib.figure import Figure

    names = [p.name for p in spec.populations if p.name in run.records]
    fig = Figure(figsize=(8, 1.2 + 1.8 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names):
        pop = spec.population(name)
        r = run.records[name][:, sample]
        if pop.neuron == "lif" and run.backend != "torch":
            t, n = np.nonzero(r)
            ax.scatter(t, n, s=12, marker="|", color="black")
            ax.set_xlim(-0.5, r.shape[0] - 0.5)
            ax.set_ylim(-0.5, r.shape[1] - 0.5)
        else:
            image = ax.imshow(r.T, aspect="auto", origin="lower", interpolation="nearest", cmap="viridis")
            fig.colorbar(image, ax=ax, pad=0.01)
        ax.set_ylabel(f"{name}\nneuron")
        kind = run.count_kind.get(name, "")
        ax.set_title(f"{name} ({pop.size} {pop.neuron}), {run.counts.get(name, 0):.0f} {kind} in all samples",
                     fontsize=9)
    axes[-1].set_xlabel("time step" if run.steps > 1 else "(rate-based: one step)")
    label = "" if run.labels is None else f", label {run.labels[sample]}"
    fig.suptitle(f"{spec.name} on {run.backend}: sample {sample}{label}, "
                 f"prediction {run.predictions[sample]}", fontsize=10)
    return fig


def write_outputs(spec: GraphSpec, run: GraphRun, out: Path, extra: dict) -> dict:
    """Write ``results.json``, ``spikes.npz`` and ``raster.png`` into ``out``; return the results."""
    arrays, kept, note = _kept_records(spec, run)
    results = {
        "graph": spec.to_dict(),
        "backend": run.backend,
        "samples": run.samples,
        "steps": run.steps,
        "accuracy": run.accuracy,
        "counts": run.counts,
        "count_kind": run.count_kind,
        "per_sample": run.per_sample(),
        "seconds": round(run.seconds, 4),
        "predictions": run.predictions,
        "info": run.info,
        "spikes_npz": {"samples": kept, "note": note,
                       "shapes": {k: list(a.shape) for k, a in arrays.items()}},
        **extra,
    }
    save_npz(out / "spikes.npz", **arrays)
    save_figure(raster_figure(spec, run), out / "raster.png")
    write_json(out / "results.json", results)
    return results
