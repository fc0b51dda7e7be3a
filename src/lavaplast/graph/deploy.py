"""Deploy a BNN trained by ``lavaplast continual`` as a graph file.

::

    lavaplast deploy runs/permuted --to deployed.toml [--task K] [--calibration N] [--overwrite]

:func:`deploy_run` reads the run folder (``checkpoint.pt`` and
``results.json`` of a finished run), rebuilds the network from the saved
config and weights, restores the BatchNorm saved at the end of task ``K``
and folds it into per-neuron ``gain``/``bias``
(:func:`~lavaplast.reference.local_bnn.state_from_bnn`). BatchNorm that
normalises with batch statistics is frozen on the first ``N`` training
images of task ``K``; BatchNorm with running statistics folds exactly.

It writes ``<GRAPH stem>.weights.npz`` beside the graph (hidden weights
``w0``, ``w1``, ... ``(post, pre)``, neuron parameters ``gain0``,
``bias0``, ...) and the graph: sign hidden populations, an ``error``
output population read out as logits, the task's dataset test split as
constant currents for one step, backends lava and torch. A pixel
permutation of the task (permuted protocol) is folded into ``w0``, so the
graph reads the plain images and computes exactly what the network computes
on the permuted ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from lavaplast.core import check_int
from lavaplast.graph.spec import (
    Connection,
    GraphSpec,
    InputSpec,
    Population,
    ReadoutSpec,
    RunSpec,
    WeightsSpec,
    read_neuron_file,
    weights_path,
)

CHECKPOINT = "checkpoint.pt"
RESULTS = "results.json"
DEFAULT_CALIBRATION = 1000


@dataclass
class Deployed:
    """What :func:`deploy_run` wrote: the graph (``spec``, ``graph`` file, ``weights`` file),
    the deployed task (1-based ``task``, its ``task_name``) and the number of ``calibration`` images
    (0 for running-statistic BatchNorm)."""

    spec: GraphSpec
    graph: Path
    weights: Path
    task: int
    task_name: str
    calibration: int


def load_run(run_dir: str | os.PathLike) -> dict:
    """The checkpoint of a finished ``lavaplast continual`` run; a ``ValueError`` (one line) otherwise."""
    from lavaplast.experiments.continual import load_checkpoint

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir}: no such run folder")
    ckpt_path, results_path = run_dir / CHECKPOINT, run_dir / RESULTS
    if not ckpt_path.is_file() and not results_path.is_file():
        raise ValueError(f"{run_dir} is not a run folder of 'lavaplast continual' (no {CHECKPOINT}, no {RESULTS})")
    if not ckpt_path.is_file():
        raise ValueError(f"{run_dir} has {RESULTS} but no {CHECKPOINT}: the trained weights are missing")
    if not results_path.is_file():
        raise ValueError(f"{run_dir} holds an unfinished run (no {RESULTS}): finish it with "
                         "'lavaplast continual ... --resume' before deploying it")
    return load_checkpoint(ckpt_path, hint="deploy the folder of a finished 'lavaplast continual' run")


def deploy_run(
    run_dir: str | os.PathLike,
    to: str | os.PathLike,
    *,
    task: Optional[int] = None,
    calibration: int = DEFAULT_CALIBRATION,
    overwrite: bool = False,
    data_dir=None,
) -> Deployed:
    """Write the graph file ``to`` (and its weights file) for the BNN of the run in ``run_dir``.

    ``task`` (1-based, default the last) selects the task whose saved
    BatchNorm is folded and whose test split the graph reads;
    ``calibration`` is the number of that task's first training images that
    freeze batch-statistic BatchNorm. ``data_dir`` overrides the run's data
    folder. Existing output files are refused unless ``overwrite``. Bad run
    folders and settings raise a one-line ``ValueError``.
    """
    from lavaplast.data import load_dataset
    from lavaplast.experiments.config import ContinualConfig
    from lavaplast.experiments.continual import build_model, build_tasks
    from lavaplast.graph.nir import write_graph_toml
    from lavaplast.outputs import save_npz
    from lavaplast.reference import load_batchnorm_state
    from lavaplast.reference.local_bnn import state_from_bnn

    to, run_dir = Path(to), Path(run_dir)
    wpath = weights_path(to)
    if to.suffix != ".toml":
        raise ValueError(f"--to {to}: expected a graph file name ending in .toml")
    calibration = check_int("calibration (images that freeze BatchNorm statistics)", calibration, 2)
    existing = [str(p) for p in (to, wpath) if p.exists()]
    if existing and not overwrite:
        raise ValueError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace")

    ckpt = load_run(run_dir)
    try:
        config = ContinualConfig.from_dict(dict(ckpt["config"]))
        if data_dir is not None:
            config = ContinualConfig.from_dict({**config.to_dict(), "data_dir": os.fspath(data_dir)})
    except (TypeError, ValueError) as err:
        raise ValueError(f"{run_dir / CHECKPOINT}: its saved config is not valid ({err})") from None
    if config.model != "bnn":
        raise ValueError(f"{run_dir} trained a {config.model!r} model; only a binary network ('bnn') runs on "
                         "binary synapses")
    tasks = build_tasks(config)
    k = len(tasks) if task is None else task
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(tasks):
        raise ValueError(f"task must be between 1 and {len(tasks)} (the run's tasks), got {task!r}")
    chosen = tasks[k - 1]
    # A joint run trains (and saves BatchNorm for) one merged task.
    bn_index = 0 if config.joint else k - 1
    bn_saved = ckpt["bn_saved"]
    if bn_index >= len(bn_saved):
        raise ValueError(f"{run_dir / CHECKPOINT} holds BatchNorm for {len(bn_saved)} task(s), not for task {k}: "
                         "the run did not finish that task")

    model = build_model(config, chosen.n_features, chosen.n_classes)
    try:
        model.load_state_dict(ckpt["model"])
        load_batchnorm_state(model, bn_saved[bn_index])
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{run_dir / CHECKPOINT}: the saved weights do not fit the saved config ({err})") \
            from None
    model.eval()
    n_cal = 0
    if config.batchnorm == "batch":
        n_cal = min(calibration, len(chosen.x_train))
        state = state_from_bnn(model, calibration=chosen.x_train[:n_cal])
    else:
        state = state_from_bnn(model)

    hidden = [w.astype(np.float32) for w in state.hidden]
    permutation = chosen.info.get("permutation")
    if permutation is not None:
        # The task feeds x[:, perm] to w0; the graph feeds x, so column perm[j] gets column j.
        w0 = np.empty_like(hidden[0])
        w0[:, np.asarray(permutation)] = hidden[0]
        hidden[0] = w0
    arrays = {}
    for l, (w, g, b) in enumerate(zip(hidden, state.gain, state.bias)):
        arrays[f"w{l}"], arrays[f"gain{l}"], arrays[f"bias{l}"] = w, g, b
    to.resolve().parent.mkdir(parents=True, exist_ok=True)
    save_npz(wpath, **arrays)

    dataset = chosen.info.get("dataset", config.dataset)
    _, test_labels = load_dataset(dataset, "test", data_dir=config.data_dir)
    sizes = state.sizes
    names = [f"hidden{l}" for l in range(len(sizes) - 2)] + ["out"]
    pops, conns = [], []
    for l, name in enumerate(names):
        gain = read_neuron_file(wpath, f"gain{l}", sizes[l + 1], str(wpath), f"populations[{l}].params.gain")
        bias = read_neuron_file(wpath, f"bias{l}", sizes[l + 1], str(wpath), f"populations[{l}].params.bias")
        if name == "out":
            params = dict(gain=gain, bias=bias, loss="ce")
        else:
            params = dict(gain=gain, bias=bias, output="sign")
        pops.append(Population(name=name, size=sizes[l + 1], neuron="error" if name == "out" else "sign",
                               params=params))
        conns.append(Connection(pre="input" if l == 0 else names[l - 1], post=name, quantizer=state.quantizer,
                                ternary_threshold=state.ternary_threshold,
                                weights=WeightsSpec(init="file", file=wpath.resolve(), key=f"w{l}")))
    bn = (f"batch-statistic BatchNorm frozen on the first {n_cal} training images of the task" if n_cal
          else "running-statistic BatchNorm")
    note = "; its pixel permutation is folded into w0" if permutation is not None else ""
    if "classes" in chosen.info:
        note += "; the input is the whole test split (all classes), not only the task's classes"
    description = (f"The {'-'.join(map(str, sizes))} BNN of the continual run {run_dir.resolve()} "
                   f"({config.protocol}), task {k}/{len(tasks)} {chosen.name!r}: {bn}{note}.")
    spec = GraphSpec(name=f"deploy-{run_dir.resolve().name}-task{k}", description=description,
                     backends=("lava", "torch"),
                     input=InputSpec(size=sizes[0], source="dataset", dataset=dataset, split="test",
                                     samples=len(test_labels), encoding="current"),
                     populations=tuple(pops), connections=tuple(conns),
                     readout=ReadoutSpec(population="out", kind="logits"), run=RunSpec(steps=1, batch=100, seed=0))
    write_graph_toml(spec, to)
    return Deployed(spec=spec, graph=to, weights=wpath, task=k, task_name=chosen.name, calibration=n_cal)
