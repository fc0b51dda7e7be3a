"""Device mismatch: a network trained offline and transferred onto a chip against the same network trained
on that chip by equilibrium propagation (docs/devices.md).

For every mismatch level ``k`` (the chip's spreads are ``k`` times the given
``sigma_gain``, ``sigma_offset``, ``sigma_synapse``; the same chip, its
deviations scaled, see :class:`~lavaplast.core.mismatch.ChipMismatch`):

- **ideal**: the EP reference trained offline on the ideal model;
- **offline transfer**: its programmed weights and biases copied onto the
  chip, tested there;
- **in situ, from scratch**: the same architecture, initial weights and
  batches, trained by EP on the chip;
- **in situ, fine-tuned**: the transferred network trained further on the
  chip by EP.

The table's in-situ training runs on the chip's rate-based twin
(:class:`~lavaplast.reference.ep.EPNetwork` with ``mismatch``), which the
tests prove equal to the Lava graph of the chip. To show it here too, the
headline chip (level 1) fine-tunes on the actual Lava graph
(:class:`~lavaplast.graph.LavaEPNetwork`) for the first ``lava_samples``
samples, beside a float64 twin on the same batches, and the two are compared.
"""

from __future__ import annotations

import argparse
import copy
import functools
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from lavaplast.core.validate import (
    check_int,
    check_nonnegative,
    check_optional_int,
    check_positive,
    check_sizes,
    per_layer,
)

OUTPUTS = ("results.json", "mismatch.csv", "mismatch.png", "ideal_weights.npz")


def _check_levels(levels) -> list:
    if isinstance(levels, (str, bytes)) or np.ndim(levels) != 1 or len(levels) == 0:
        raise ValueError(f"levels must be a non-empty list of numbers >= 0, got {levels!r}")
    checked = [check_nonnegative(f"levels[{i}]", v) for i, v in enumerate(levels)]
    # Level 1 is the headline (the sigmas as given): always run, and each level once, in order.
    return sorted(set(checked) | {1.0})


def run_mismatch_experiment(
    out_dir: str | Path,
    *,
    dataset: str = "mnist",
    hidden: Sequence[int] = (128,),
    sigma_gain: float = 0.2,
    sigma_offset: float = 0.3,
    sigma_synapse: float = 0.2,
    levels: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0),
    chip_seed: int = 0,
    transfer_chips: int = 5,
    epochs: int = 3,
    finetune_epochs: int = 1,
    T1: int = 30,
    T2: int = 10,
    beta: float = 0.5,
    lrs: Sequence[float] = (0.2, 0.1),
    batch: int = 32,
    train_limit: Optional[int] = None,
    test_limit: Optional[int] = None,
    lava_samples: int = 2048,
    lava_test: int = 1000,
    seed: int = 0,
    data_dir: Optional[str] = None,
    overwrite: bool = False,
    progress: Optional[bool] = None,
    log: Callable[[str], None] = functools.partial(print, flush=True),
) -> dict:
    """Offline transfer against in-situ EP training over mismatch levels; writes results.json, mismatch.csv,
    mismatch.png and ideal_weights.npz (the transferred weights) into the run folder ``out_dir``.

    ``levels`` scale the three sigmas (level 1, the sigmas as given, is the
    headline and is always run). ``epochs``: offline and from-scratch
    training; ``finetune_epochs``: in-situ training after the transfer (0:
    none). ``transfer_chips``: the transfer is also tested on this many
    chips (seeds ``chip_seed``, ``chip_seed + 1``, ...) at every level, to show
    how much it varies from chip to chip (testing is cheap; in-situ training
    runs on chip ``chip_seed`` only). ``lava_samples``: samples of in-situ
    fine-tuning on the Lava graph of the headline chip (a multiple of
    ``batch``), checked against its twin, tested on the first
    ``lava_test`` test images (0: no Lava run). Every argument is checked
    before anything is loaded or written; a folder that already holds a run
    is refused unless ``overwrite``.
    """
    from lavaplast.core.ep import check_beta, check_steps
    from lavaplast.core.mismatch import check_sigma
    from lavaplast.experiments.config import canonical_dataset, normalise_data_dir
    from lavaplast.outputs import run_folder

    hidden = check_sizes("hidden", hidden, min_len=1)
    settings = dict(
        dataset=canonical_dataset("dataset", dataset), hidden=hidden,
        sigma_gain=check_sigma("sigma_gain", sigma_gain), sigma_offset=check_sigma("sigma_offset", sigma_offset),
        sigma_synapse=check_sigma("sigma_synapse", sigma_synapse), levels=_check_levels(levels),
        chip_seed=check_int("chip_seed", chip_seed, 0), transfer_chips=check_int("transfer_chips", transfer_chips, 1),
        epochs=check_int("epochs", epochs, 1),
        finetune_epochs=check_int("finetune_epochs", finetune_epochs, 0), T1=check_steps(T1, "T1"),
        T2=check_steps(T2, "T2"), beta=check_beta(beta), lrs=per_layer("lrs", lrs, len(hidden) + 1, check_positive),
        batch=check_int("batch", batch, 1), train_limit=check_optional_int("train_limit", train_limit),
        test_limit=check_optional_int("test_limit", test_limit),
        lava_samples=check_int("lava_samples", lava_samples, 0),
        lava_test=check_int("lava_test", lava_test, 1), seed=check_int("seed", seed, 0),
        data_dir=normalise_data_dir(data_dir))
    if settings["sigma_gain"] == settings["sigma_offset"] == settings["sigma_synapse"] == 0:
        raise ValueError("at least one of sigma_gain, sigma_offset, sigma_synapse must be > 0 (all 0 is the ideal "
                         "chip: nothing to compare)")
    if settings["lava_samples"] % settings["batch"]:
        raise ValueError(f"lava_samples must be a multiple of batch={settings['batch']}, got "
                         f"{settings['lava_samples']}")
    from lavaplast.progress import show_progress

    with run_folder(out_dir, overwrite=overwrite, outputs=OUTPUTS) as out:
        return _run(settings, out, show_progress(progress), log)


def _load(settings: dict) -> tuple:
    import torch

    from lavaplast.data import load_dataset

    x, y = load_dataset(settings["dataset"], "train", data_dir=settings["data_dir"])
    xt, yt = load_dataset(settings["dataset"], "test", data_dir=settings["data_dir"])
    x, y = x[: settings["train_limit"]], y[: settings["train_limit"]]
    xt, yt = xt[: settings["test_limit"]], yt[: settings["test_limit"]]
    flat = lambda a: torch.tensor(a.reshape(len(a), -1) / 255.0, dtype=torch.float32)  # noqa: E731
    if settings["lava_samples"] > len(x):
        raise ValueError(f"lava_samples={settings['lava_samples']} exceeds the {len(x)} training samples")
    return flat(x), torch.as_tensor(y), flat(xt), np.asarray(yt)


def _chip(settings: dict, sizes: list, level: float, seed: Optional[int] = None):
    from lavaplast.core.mismatch import ChipMismatch

    return ChipMismatch(sizes, sigma_gain=level * settings["sigma_gain"], sigma_offset=level * settings["sigma_offset"],
                        sigma_synapse=level * settings["sigma_synapse"],
                        seed=settings["chip_seed"] if seed is None else seed)


def _run(settings: dict, out_dir: Path, progress: bool, log) -> dict:
    from lavaplast.reference.ep import EPNetwork

    x, y, xt, yt = _load(settings)
    sizes = [x.shape[1], *settings["hidden"], 10]
    E, F, B = settings["epochs"], settings["finetune_epochs"], settings["batch"]
    rng = np.random.default_rng(settings["seed"])
    # One order per epoch, shared by every network: offline and from-scratch training take epochs 1..E, the
    # fine-tuning continues with epochs E+1..E+F (after the E epochs the transferred network saw offline).
    orders = [rng.permutation(len(x)) for _ in range(E + F)]

    def make(mismatch=None):
        return EPNetwork(sizes, T1=settings["T1"], T2=settings["T2"], beta=settings["beta"], nudging="symmetric",
                         lrs=settings["lrs"], seed=settings["seed"], mismatch=mismatch)

    def accuracy(net) -> float:
        return float(np.mean(net.predict(xt) == yt) * 100)

    def train(net, epochs: range, what: str) -> float:
        from lavaplast.progress import progress_bar

        t0 = time.perf_counter()
        for e in epochs:
            for k in progress_bar(range(0, len(x), B), progress, desc=f"{what} epoch {e + 1}", unit="batch"):
                idx = orders[e][k:k + B]
                net.train_batch(x[idx], y[idx])
        return time.perf_counter() - t0

    ideal = make()
    seconds = train(ideal, range(E), "ideal")
    ideal_acc = accuracy(ideal)
    log(f"ideal network, {E} epochs offline: test {ideal_acc:.2f}% ({seconds:.0f} s)")
    trained = ([w.clone() for w in ideal.weights], [b.clone() for b in ideal.biases])
    ideal_more = None
    if F:
        longer = copy.deepcopy(ideal)
        train(longer, range(E, E + F), "ideal")
        ideal_more = accuracy(longer)
        log(f"ideal network, {E + F} epochs offline (the fine-tuned networks' total): test {ideal_more:.2f}%")

    rows = []
    for level in settings["levels"]:
        chip = _chip(settings, sizes, level)
        row = dict(level=level, sigma_gain=chip.sigma_gain, sigma_offset=chip.sigma_offset,
                   sigma_synapse=chip.sigma_synapse, chip=chip.summary(), ideal=ideal_acc)
        if chip.is_ideal:
            # The ideal chip computes exactly the ideal network (tested): transfer and in situ are the ideal run.
            row.update(transfer=ideal_acc, transfer_chips=[ideal_acc] * settings["transfer_chips"],
                       insitu_scratch=ideal_acc, insitu_finetune=ideal_more)
            rows.append(row)
            continue
        row["transfer_chips"] = []
        for seed in range(settings["chip_seed"], settings["chip_seed"] + settings["transfer_chips"]):
            other = make(_chip(settings, sizes, level, seed))
            other.set_parameters(*trained)
            row["transfer_chips"].append(accuracy(other))
        transferred = make(chip)
        transferred.set_parameters(*trained)
        row["transfer"] = row["transfer_chips"][0]
        scratch = make(chip)
        row["insitu_scratch_seconds"] = round(train(scratch, range(E), f"in situ k={level:g}"), 1)
        row["insitu_scratch"] = accuracy(scratch)
        row["insitu_finetune"] = None
        if F:
            train(transferred, range(E, E + F), f"fine-tune k={level:g}")
            row["insitu_finetune"] = accuracy(transferred)
        log(f"level {level:g} (sigma gain {chip.sigma_gain:g}, offset {chip.sigma_offset:g}, synapse "
            f"{chip.sigma_synapse:g}): transfer {row['transfer']:.2f}% (over {len(row['transfer_chips'])} chips "
            f"{min(row['transfer_chips']):.2f} to {max(row['transfer_chips']):.2f}%), in situ from scratch "
            f"{row['insitu_scratch']:.2f}%" + (f", fine-tuned {row['insitu_finetune']:.2f}%" if F else ""))
        rows.append(row)

    head = next(r for r in rows if r["level"] == 1.0)
    headline = dict(level=1.0, sigma_gain=head["sigma_gain"], sigma_offset=head["sigma_offset"],
                    sigma_synapse=head["sigma_synapse"], ideal=ideal_acc, ideal_same_total_epochs=ideal_more,
                    transfer=head["transfer"], transfer_chips_mean=float(np.mean(head["transfer_chips"])),
                    transfer_chips_min=min(head["transfer_chips"]), transfer_chips_max=max(head["transfer_chips"]),
                    insitu_scratch=head["insitu_scratch"],
                    insitu_finetune=head["insitu_finetune"], transfer_loss=ideal_acc - head["transfer"],
                    insitu_scratch_gap=ideal_acc - head["insitu_scratch"])
    lava = None
    if settings["lava_samples"]:
        lava = _lava_check(settings, sizes, trained, orders[E] if F else orders[0], x, y, xt, yt, log)
    results = dict(settings=settings, sizes=sizes, train_samples=len(x), test_samples=len(xt), ideal_test_acc=ideal_acc,
                   ideal_train_seconds=round(seconds, 1), ideal_same_total_epochs_test_acc=ideal_more, levels=rows,
                   headline=headline, lava=lava)
    from lavaplast.outputs import save_npz

    save_npz(out_dir / "ideal_weights.npz", **{f"W{n + 1}": w.numpy() for n, w in enumerate(trained[0])},
             **{f"b{n + 1}": b.numpy() for n, b in enumerate(trained[1])})
    _write(results, out_dir)
    return results


def _lava_check(settings: dict, sizes: list, trained: tuple, order: np.ndarray, x, y, xt, yt, log) -> dict:
    """Fine-tune the transferred network on the Lava graph of the headline chip and on its float64 twin, on
    the same ``lava_samples`` samples; compare weights, biases and test predictions."""
    import torch

    from lavaplast.graph import LavaEPNetwork  # imports Lava
    from lavaplast.reference.ep import EPNetwork

    chip = _chip(settings, sizes, 1.0)
    n, B, n_test = settings["lava_samples"], settings["batch"], min(settings["lava_test"], len(xt))

    def make():
        net = EPNetwork(sizes, T1=settings["T1"], T2=settings["T2"], beta=settings["beta"], nudging="symmetric",
                        lrs=settings["lrs"], seed=settings["seed"], mismatch=chip, dtype=torch.float64)
        net.set_parameters(*trained)
        return net

    on_lava, twin = make(), make()
    xs, ys, xts = x.double().numpy(), y.numpy(), xt[:n_test].double().numpy()
    before = float(np.mean(twin.predict(xts) == yt[:n_test]) * 100)
    lava = LavaEPNetwork(on_lava, batch=B)
    t0 = time.perf_counter()
    lava.train(xs, ys, order[:n])
    train_seconds = time.perf_counter() - t0
    for k in range(0, n, B):
        twin.train_batch(xs[order[k:k + B]], ys[order[k:k + B]])
    pred_lava, pred_twin = lava.predict(xts), twin.predict(xts)
    res = dict(samples=n, test_samples=n_test, chip_level=1.0,
               max_weight_difference=max(float((a - b).abs().max()) for a, b in zip(on_lava.weights, twin.weights)),
               max_bias_difference=max(float((a - b).abs().max()) for a, b in zip(on_lava.biases, twin.biases)),
               equal_predictions=float(np.mean(pred_lava == pred_twin) * 100),
               transfer_test_acc=before, lava_test_acc=float(np.mean(pred_lava == yt[:n_test]) * 100),
               twin_test_acc=float(np.mean(pred_twin == yt[:n_test]) * 100), lava_train_seconds=round(train_seconds, 1),
               lava_samples_per_s=n / train_seconds)
    log(f"Lava graph of the chip, fine-tuned in situ on {n} samples: test {res['lava_test_acc']:.2f}% on {n_test} "
        f"images (transferred: {before:.2f}%); twin {res['twin_test_acc']:.2f}%, {res['equal_predictions']:.1f}% "
        f"equal predictions, weights within {res['max_weight_difference']:.1e}")
    return res


def write_results(results: dict, out_dir: Path, stem: str, figure: Callable) -> None:
    """A mismatch experiment's outputs: ``<stem>.csv`` (one row per level), ``<stem>.png`` (``figure``),
    then ``results.json``, each atomically."""
    from lavaplast.outputs import write_csv, write_json

    fmt = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731
    write_csv(out_dir / f"{stem}.csv",
              ["level", "sigma_gain", "sigma_offset", "sigma_synapse", "ideal", "offline_transfer",
               "offline_transfer_mean_over_chips", "offline_transfer_min", "offline_transfer_max",
               "insitu_from_scratch", "insitu_finetuned"],
              [[f"{r['level']:g}", f"{r['sigma_gain']:g}", f"{r['sigma_offset']:g}", f"{r['sigma_synapse']:g}",
                fmt(r["ideal"]), fmt(r["transfer"]), fmt(float(np.mean(r["transfer_chips"]))),
                fmt(min(r["transfer_chips"])), fmt(max(r["transfer_chips"])), fmt(r["insitu_scratch"]),
                fmt(r["insitu_finetune"])]
               for r in results["levels"]])
    figure(results, out_dir / f"{stem}.png")
    write_json(out_dir / "results.json", results)  # last: marks a finished run


def _write(results: dict, out_dir: Path) -> None:
    write_results(results, out_dir, "mismatch", plot_mismatch)


def plot_mismatch(results: dict, path: Optional[str | Path] = None, *, learner: str = "EP",
                  method: str = "in situ EP"):
    """Test accuracy against the mismatch level: offline transfer (chip ``chip_seed`` and the mean over the
    chips, their range shaded), in situ (``method``: from scratch, fine-tuned) and the ideal network of
    ``learner``; returns the Figure."""
    from lavaplast.experiments.report import finish_figure, new_figure

    rows, s = results["levels"], results["settings"]
    levels = [r["level"] for r in rows]
    fig = new_figure(figsize=(6.5, 4))
    ax = fig.subplots()
    ax.axhline(results["ideal_test_acc"], color="k", lw=0.8, ls="--", label="ideal chip (offline)")
    ax.plot(levels, [r["transfer"] for r in rows], "-o", color="C3",
            label=f"offline training, transferred to chip {s['chip_seed']}")
    n_chips = len(rows[0]["transfer_chips"])
    if n_chips > 1:
        ax.plot(levels, [float(np.mean(r["transfer_chips"])) for r in rows], ":", color="C3",
                label=f"transfer, mean over {n_chips} chips")
        ax.fill_between(levels, [min(r["transfer_chips"]) for r in rows], [max(r["transfer_chips"]) for r in rows],
                        color="C3", alpha=0.15, lw=0, label=f"transfer, range over {n_chips} chips")
    ax.plot(levels, [r["insitu_scratch"] for r in rows], "-s", color="C0", label=f"{method}, from scratch")
    if s["finetune_epochs"]:
        ax.plot(levels, [r["insitu_finetune"] for r in rows], "-^", color="C2",
                label=f"{method}, fine-tuned {s['finetune_epochs']} epoch(s) after transfer")
    ax.set_xlabel(f"mismatch level k (sigma gain {s['sigma_gain']:g}k, offset {s['sigma_offset']:g}k, "
                  f"synapse {s['sigma_synapse']:g}k)", fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{learner} {'-'.join(map(str, results['sizes']))} on a mismatched chip (seed {s['chip_seed']}), "
                 f"{s['epochs']} epochs", fontsize=9)
    ax.legend(fontsize=7)
    return finish_figure(fig, path)


def add_chip_arguments(m, hidden: list, hidden_help: Optional[str] = None) -> None:
    """The arguments every mismatch experiment takes: data, network width, the chip and the training budget."""
    m.add_argument("--dataset", default="mnist")
    m.add_argument("--hidden", type=int, nargs="+", default=hidden, help=hidden_help)
    m.add_argument("--sigma-gain", type=float, default=0.2, help="spread of the per-neuron log-gain (level 1)")
    m.add_argument("--sigma-offset", type=float, default=0.3, help="spread of the per-neuron offset (level 1)")
    m.add_argument("--sigma-synapse", type=float, default=0.2,
                   help="spread of the per-synapse log-conductance (level 1)")
    m.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5, 2.0],
                   help="mismatch levels k: the chip's sigmas are k times the above (level 1 always runs)")
    m.add_argument("--chip-seed", type=int, default=0, help="which chip (its deviations)")
    m.add_argument("--transfer-chips", type=int, default=5,
                   help="also test the transfer on this many chips (seeds chip-seed, chip-seed + 1, ...)")
    m.add_argument("--epochs", type=int, default=3, help="offline and from-scratch in-situ training")
    m.add_argument("--finetune-epochs", type=int, default=1, help="in-situ training after the transfer (0: none)")


def add_run_arguments(m, lava_samples: int, out: str, add_output_args: Callable,
                      add_progress_args: Callable) -> None:
    """The arguments every mismatch experiment ends with: data limits, the Lava check, seed, folders."""
    m.add_argument("--train-limit", type=int, default=None)
    m.add_argument("--test-limit", type=int, default=None)
    m.add_argument("--lava-samples", type=int, default=lava_samples,
                   help="in-situ fine-tuning on the Lava graph of the level-1 chip, checked against its twin "
                        "(a multiple of --batch; 0: no Lava run)")
    m.add_argument("--lava-test", type=int, default=1000, help="test images of the Lava check")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--data-dir", default=None,
                   help="folder of IDX files (default $LAVAPLAST_DATA or ~/.cache/lavaplast)")
    m.add_argument("--out", default=out)
    add_output_args(m)
    add_progress_args(m)


def add_mismatch_parser(esub, add_output_args: Callable, add_progress_args: Callable) -> None:
    """``lavaplast ep mismatch``: the subcommand's arguments."""
    m = esub.add_parser("mismatch", help="device mismatch: offline training transferred to a chip against in-situ "
                        "EP training on it", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_chip_arguments(m, [128])
    m.add_argument("--T1", type=int, default=30)
    m.add_argument("--T2", type=int, default=10)
    m.add_argument("--beta", type=float, default=0.5)
    m.add_argument("--lrs", type=float, nargs="+", default=[0.2, 0.1])
    m.add_argument("--batch", type=int, default=32)
    add_run_arguments(m, 2048, "runs/ep_mismatch", add_output_args, add_progress_args)


def run_mismatch_cli(args) -> int:
    """Run ``lavaplast ep mismatch`` from parsed arguments; prints the headline."""
    res = run_mismatch_experiment(
        args.out, dataset=args.dataset, hidden=args.hidden, sigma_gain=args.sigma_gain,
        sigma_offset=args.sigma_offset, sigma_synapse=args.sigma_synapse, levels=args.levels,
        chip_seed=args.chip_seed, transfer_chips=args.transfer_chips, epochs=args.epochs,
        finetune_epochs=args.finetune_epochs, T1=args.T1, T2=args.T2, beta=args.beta, lrs=args.lrs,
        batch=args.batch, train_limit=args.train_limit, test_limit=args.test_limit,
        lava_samples=args.lava_samples, lava_test=args.lava_test, seed=args.seed, data_dir=args.data_dir,
        overwrite=args.overwrite, progress=args.progress)
    h = res["headline"]
    print(f"level 1: ideal {h['ideal']:.2f}%, offline transfer {h['transfer']:.2f}%, in situ from scratch "
          f"{h['insitu_scratch']:.2f}%" + ("" if h["insitu_finetune"] is None else
                                           f", fine-tuned {h['insitu_finetune']:.2f}%")
          + f"; wrote {Path(args.out) / 'results.json'}, mismatch.csv, mismatch.png")
    return 0
