"""Device mismatch and the sign-neuron on-chip learner: offline training transferred onto a mismatched chip
against the same learner trained on that chip by its local rule (docs/devices.md).

The learner is :class:`~lavaplast.reference.local_bnn.LocalBinaryMLP` (sign
neurons, binary synapses, output error plus direct feedback alignment,
metaplastic Adam in every synapse), the twin of
:class:`~lavaplast.graph.LavaBinaryMLP`. On a chip
(:class:`~lavaplast.core.mismatch.ChipMismatch`) every neuron computes from
``g * (gain * a + bias) + o`` and every synapse conducts ``G * sign(W_h)``.
For every mismatch level ``k`` (the chip's spreads are ``k`` times the given
sigmas: the same chip, its deviations scaled):

- **ideal**: the learner trained on the ideal chip (offline);
- **offline transfer**: its hidden weights (and gains, biases) programmed
  onto the chip, tested there, on ``transfer_chips`` chips;
- **in situ, from scratch**: the same initial state and batches, trained by
  the local rule on the chip;
- **in situ, fine-tuned**: the transferred learner trained further on the
  chip (a fresh optimizer, as a chip programmed with the weights starts).

The table runs on the twin, which the tests prove equal to the Lava graph
update for update. To show it here too, the headline chip (level 1)
fine-tunes the transferred learner on the actual Lava graph for the first
``lava_samples`` samples of the fine-tuning epoch, beside the twin on the
same batches, and the two are compared.

The helpers that load the data, check the levels and draw the chips are
those of ``lavaplast ep mismatch`` (:mod:`lavaplast.experiments.mismatch`).
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from lavaplast.core.validate import check_int, check_nonnegative, check_optional_int, check_positive, check_sizes

OUTPUTS = ("results.json", "onchip_mismatch.csv", "onchip_mismatch.png", "ideal_state.npz")


def run_onchip_mismatch_experiment(
    out_dir: str | Path,
    *,
    dataset: str = "mnist",
    hidden: Sequence[int] = (256,),
    sigma_gain: float = 0.2,
    sigma_offset: float = 0.3,
    sigma_synapse: float = 0.2,
    levels: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0),
    chip_seed: int = 0,
    transfer_chips: int = 5,
    epochs: int = 3,
    finetune_epochs: int = 1,
    lr: float = 0.005,
    meta: float = 1.0,
    batch: int = 100,
    train_limit: Optional[int] = None,
    test_limit: Optional[int] = None,
    lava_samples: int = 3000,
    lava_test: int = 1000,
    seed: int = 0,
    data_dir: Optional[str] = None,
    overwrite: bool = False,
    progress: Optional[bool] = None,
    log: Callable[[str], None] = functools.partial(print, flush=True),
) -> dict:
    """Offline transfer against in-situ local learning over mismatch levels; writes results.json,
    onchip_mismatch.csv, onchip_mismatch.png and ideal_state.npz (the transferred hidden weights) into the run
    folder ``out_dir``.

    ``hidden``: hidden sign-neuron layer widths (the network is ``n_in -
    hidden... - 10``). ``levels`` scale the three sigmas (level 1 is the
    headline and always runs). ``epochs``: offline and from-scratch
    training; ``finetune_epochs``: in-situ training after the transfer (0:
    none). ``lr``, ``meta``: the local rule's Adam step and metaplasticity.
    ``transfer_chips``: the transfer is tested on this many chips (seeds
    ``chip_seed``, ``chip_seed + 1``, ...) at every level; in-situ training
    runs on chip ``chip_seed``. ``lava_samples``: samples of in-situ
    fine-tuning on the Lava graph of the headline chip (a multiple of
    ``batch``; 0: no Lava run), tested on the first ``lava_test`` test
    images. Every argument is checked before anything is loaded or written;
    a folder that already holds a run is refused unless ``overwrite``.
    """
    from lavaplast.core.mismatch import check_sigma
    from lavaplast.experiments.config import canonical_dataset, normalise_data_dir
    from lavaplast.experiments.mismatch import _check_levels
    from lavaplast.outputs import run_folder
    from lavaplast.progress import show_progress

    hidden = check_sizes("hidden", hidden, min_len=1)
    settings = dict(
        dataset=canonical_dataset("dataset", dataset), hidden=hidden,
        sigma_gain=check_sigma("sigma_gain", sigma_gain), sigma_offset=check_sigma("sigma_offset", sigma_offset),
        sigma_synapse=check_sigma("sigma_synapse", sigma_synapse), levels=_check_levels(levels),
        chip_seed=check_int("chip_seed", chip_seed, 0), transfer_chips=check_int("transfer_chips", transfer_chips, 1),
        epochs=check_int("epochs", epochs, 1), finetune_epochs=check_int("finetune_epochs", finetune_epochs, 0),
        lr=check_positive("lr", lr), meta=check_nonnegative("meta", meta), batch=check_int("batch", batch, 1),
        train_limit=check_optional_int("train_limit", train_limit),
        test_limit=check_optional_int("test_limit", test_limit),
        lava_samples=check_int("lava_samples", lava_samples, 0), lava_test=check_int("lava_test", lava_test, 1),
        seed=check_int("seed", seed, 0), data_dir=normalise_data_dir(data_dir))
    if settings["sigma_gain"] == settings["sigma_offset"] == settings["sigma_synapse"] == 0:
        raise ValueError("at least one of sigma_gain, sigma_offset, sigma_synapse must be > 0 (all 0 is the ideal "
                         "chip: nothing to compare)")
    if settings["lava_samples"] % settings["batch"]:
        raise ValueError(f"lava_samples must be a multiple of batch={settings['batch']}, got "
                         f"{settings['lava_samples']}")
    if settings["train_limit"] is not None and settings["train_limit"] < settings["batch"]:
        raise ValueError(f"train_limit={settings['train_limit']} is smaller than one batch of "
                         f"batch={settings['batch']}")
    with run_folder(out_dir, overwrite=overwrite, outputs=OUTPUTS) as out:
        return _run(settings, out, show_progress(progress), log)


def _run(settings: dict, out_dir: Path, progress: bool, log) -> dict:
    from lavaplast.experiments.mismatch import _chip, _load
    from lavaplast.progress import progress_bar
    from lavaplast.reference.local_bnn import LocalBinaryMLP, init_local_mlp

    xs, ys, xts, yt = _load(settings)
    # float32 pixels / 255, kept as float32 (the learner takes its batches to float64, exactly).
    x, y, xt = xs.numpy(), ys.numpy(), xts.numpy()
    n_classes = 10
    sizes = [x.shape[1], *settings["hidden"], n_classes]
    E, F, B = settings["epochs"], settings["finetune_epochs"], settings["batch"]
    rng = np.random.default_rng(settings["seed"])
    usable = len(x) - len(x) % B
    # One order per epoch, shared by every learner: offline and from-scratch training take epochs 1..E, the
    # fine-tuning continues with epochs E+1..E+F (after the E epochs the transferred learner saw offline).
    orders = [rng.permutation(len(x))[:usable] for _ in range(E + F)]
    eye = np.eye(n_classes)
    init = init_local_mlp(sizes, meta=settings["meta"], lr=settings["lr"], seed=settings["seed"])

    def accuracy(net) -> float:
        return float(np.mean(net.predict(xt) == yt) * 100)

    def train(net, epochs: range, what: str) -> float:
        """One training run: a fresh optimizer, then every batch of ``epochs`` in turn."""
        t0 = time.perf_counter()
        net.reset_optimizer()
        for e in epochs:
            for k in progress_bar(range(0, usable, B), progress, desc=f"{what} epoch {e + 1}", unit="batch"):
                idx = orders[e][k:k + B]
                net.train_batch(x[idx], eye[y[idx]])
        net.sync_state()
        return time.perf_counter() - t0

    ideal = LocalBinaryMLP(init.copy())
    seconds = train(ideal, range(E), "ideal")
    ideal_acc = accuracy(ideal)
    log(f"ideal chip, {E} epochs offline: test {ideal_acc:.2f}% ({seconds:.0f} s, {seconds / E:.0f} s per epoch)")
    trained = ideal.state.copy()
    ideal_more = None
    if F:
        # The fine-tuned learners' budget on the ideal chip: the same F epochs, the same fresh optimizer.
        longer = LocalBinaryMLP(trained.copy())
        train(longer, range(E, E + F), "ideal fine-tune")
        ideal_more = accuracy(longer)
        log(f"ideal chip, {E} + {F} epochs (the fine-tuned learners' total): test {ideal_more:.2f}%")

    rows = []
    for level in settings["levels"]:
        chip = _chip(settings, sizes, level)
        row = dict(level=level, sigma_gain=chip.sigma_gain, sigma_offset=chip.sigma_offset,
                   sigma_synapse=chip.sigma_synapse, chip=chip.summary(), ideal=ideal_acc)
        if chip.is_ideal:
            # The ideal chip computes exactly the ideal learner (tested): transfer and in situ are the ideal run.
            row.update(transfer=ideal_acc, transfer_chips=[ideal_acc] * settings["transfer_chips"],
                       insitu_scratch=ideal_acc, insitu_finetune=ideal_more)
            rows.append(row)
            continue
        row["transfer_chips"] = [
            accuracy(LocalBinaryMLP(trained.copy(), mismatch=_chip(settings, sizes, level, s)))
            for s in range(settings["chip_seed"], settings["chip_seed"] + settings["transfer_chips"])]
        row["transfer"] = row["transfer_chips"][0]
        scratch = LocalBinaryMLP(init.copy(), mismatch=chip)
        row["insitu_scratch_seconds"] = round(train(scratch, range(E), f"in situ k={level:g}"), 1)
        row["insitu_scratch"] = accuracy(scratch)
        row["insitu_finetune"] = None
        if F:
            tuned = LocalBinaryMLP(trained.copy(), mismatch=chip)
            train(tuned, range(E, E + F), f"fine-tune k={level:g}")
            row["insitu_finetune"] = accuracy(tuned)
        log(f"level {level:g} (sigma gain {chip.sigma_gain:g}, offset {chip.sigma_offset:g}, synapse "
            f"{chip.sigma_synapse:g}): transfer {row['transfer']:.2f}% (over {len(row['transfer_chips'])} chips "
            f"mean {np.mean(row['transfer_chips']):.2f}, {min(row['transfer_chips']):.2f} to "
            f"{max(row['transfer_chips']):.2f}%), in situ from scratch {row['insitu_scratch']:.2f}%"
            + (f", fine-tuned {row['insitu_finetune']:.2f}%" if F else ""))
        rows.append(row)

    head = next(r for r in rows if r["level"] == 1.0)
    headline = dict(level=1.0, sigma_gain=head["sigma_gain"], sigma_offset=head["sigma_offset"],
                    sigma_synapse=head["sigma_synapse"], ideal=ideal_acc, ideal_same_total_epochs=ideal_more,
                    transfer=head["transfer"], transfer_chips_mean=float(np.mean(head["transfer_chips"])),
                    transfer_chips_min=min(head["transfer_chips"]), transfer_chips_max=max(head["transfer_chips"]),
                    insitu_scratch=head["insitu_scratch"], insitu_finetune=head["insitu_finetune"],
                    transfer_loss=ideal_acc - head["transfer"],
                    transfer_loss_chips_mean=ideal_acc - float(np.mean(head["transfer_chips"])),
                    insitu_scratch_gap=ideal_acc - head["insitu_scratch"])
    # The first level at which the transfer loses >= 5 points on average over the chips, and how far in-situ
    # training from scratch ends from the ideal learner there (None: no level loses that much).
    lossy = [r for r in rows if ideal_acc - float(np.mean(r["transfer_chips"])) >= 5.0]
    first_lossy = None
    if lossy:
        r = lossy[0]
        first_lossy = dict(level=r["level"], transfer_loss_chips_mean=ideal_acc - float(np.mean(r["transfer_chips"])),
                           insitu_scratch_gap=ideal_acc - r["insitu_scratch"],
                           insitu_finetune_gap=None if r["insitu_finetune"] is None else
                           (ideal_more - r["insitu_finetune"]))
    lava = None
    if settings["lava_samples"]:
        order = orders[E] if F else orders[0]
        lava = _lava_check(settings, sizes, trained, order, x, y, xt, yt, log)
    results = dict(settings=settings, sizes=sizes, train_samples=len(x), test_samples=len(xt),
                   ideal_test_acc=ideal_acc, ideal_train_seconds=round(seconds, 1),
                   ideal_same_total_epochs_test_acc=ideal_more, levels=rows, headline=headline,
                   first_level_transfer_loses_5_points=first_lossy, lava=lava)
    from lavaplast.outputs import save_npz

    save_npz(out_dir / "ideal_state.npz", **{f"W{n + 1}": w for n, w in enumerate(trained.hidden)},
             **{f"gain{n + 1}": g for n, g in enumerate(trained.gain)},
             **{f"bias{n + 1}": b for n, b in enumerate(trained.bias)})
    _write(results, out_dir)
    return results


def _lava_check(settings: dict, sizes: list, trained, order: np.ndarray, x, y, xt, yt, log) -> dict:
    """Fine-tune the transferred learner on the Lava graph of the headline chip and on its twin, on the same
    ``lava_samples`` samples; compare hidden weights and test predictions."""
    from lavaplast.experiments.mismatch import _chip
    from lavaplast.graph import LavaBinaryMLP  # imports Lava
    from lavaplast.reference.local_bnn import LocalBinaryMLP

    chip = _chip(settings, sizes, 1.0)
    n, B, n_test = settings["lava_samples"], settings["batch"], min(settings["lava_test"], len(xt))
    if n > len(order):
        raise ValueError(f"lava_samples={n} exceeds the {len(order)} samples of an epoch")
    rows = order[:n]
    # Only the rows the run uses, as float64 (the learner's own precision; float32 pixels convert exactly).
    xs, ys, xts, yts = x[rows].astype(np.float64), y[rows], xt[:n_test].astype(np.float64), yt[:n_test]
    local = np.arange(n)
    twin = LocalBinaryMLP(trained.copy(), mismatch=chip)
    before = float(np.mean(twin.predict(xts) == yts) * 100)
    lava = LavaBinaryMLP(trained.copy(), batch=B, mismatch=chip)
    t0 = time.perf_counter()
    lava.train(xs, ys, local)
    train_seconds = time.perf_counter() - t0
    eye = np.eye(sizes[-1])
    twin.reset_optimizer()  # as every LavaBinaryMLP.train call starts
    for k in range(0, n, B):
        twin.train_batch(xs[k:k + B], eye[ys[k:k + B]])
    twin.sync_state()
    pred_lava, pred_twin = lava.predict(xts), twin.predict(xts)
    res = dict(samples=n, test_samples=n_test, chip_level=1.0,
               max_weight_difference=max(float(np.abs(a - b).max()) for a, b in
                                         zip(lava.state.hidden, twin.state.hidden)),
               max_weight_change=max(float(np.abs(a - b).max()) for a, b in zip(lava.state.hidden, trained.hidden)),
               equal_predictions=float(np.mean(pred_lava == pred_twin) * 100),
               transfer_test_acc=before, lava_test_acc=float(np.mean(pred_lava == yts) * 100),
               twin_test_acc=float(np.mean(pred_twin == yts) * 100), lava_train_seconds=round(train_seconds, 1),
               lava_samples_per_s=n / train_seconds)
    log(f"Lava graph of the level-1 chip, fine-tuned in situ on {n} samples: test {res['lava_test_acc']:.2f}% on "
        f"{n_test} images (transferred: {before:.2f}%); twin {res['twin_test_acc']:.2f}%, "
        f"{res['equal_predictions']:.1f}% equal predictions, hidden weights within "
        f"{res['max_weight_difference']:.1e}")
    return res


def _write(results: dict, out_dir: Path) -> None:
    from lavaplast.experiments.mismatch import write_results

    write_results(results, out_dir, "onchip_mismatch", plot_onchip_mismatch)


def plot_onchip_mismatch(results: dict, path: Optional[str | Path] = None):
    """:func:`lavaplast.experiments.mismatch.plot_mismatch` for the sign-neuron learner; returns the Figure."""
    from lavaplast.experiments.mismatch import plot_mismatch

    return plot_mismatch(results, path, learner="sign-neuron on-chip learner", method="in situ local rule")


def add_onchip_mismatch_parser(sub, add_output_args: Callable, add_progress_args: Callable) -> None:
    """``lavaplast onchip-mismatch``: the command's arguments."""
    from lavaplast.experiments.mismatch import add_chip_arguments, add_run_arguments

    m = sub.add_parser("onchip-mismatch", help="device mismatch and the sign-neuron on-chip learner: offline "
                       "training transferred to a chip against in-situ local learning on it",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_chip_arguments(m, [256], "hidden sign-neuron layer widths")
    m.add_argument("--lr", type=float, default=0.005, help="the local rule's Adam step")
    m.add_argument("--meta", type=float, default=1.0, help="metaplasticity m of every synapse")
    m.add_argument("--batch", type=int, default=100)
    add_run_arguments(m, 3000, "runs/onchip_mismatch", add_output_args, add_progress_args)


def run_onchip_mismatch_cli(args) -> int:
    """Run ``lavaplast onchip-mismatch`` from parsed arguments; prints the headline."""
    res = run_onchip_mismatch_experiment(
        args.out, dataset=args.dataset, hidden=args.hidden, sigma_gain=args.sigma_gain,
        sigma_offset=args.sigma_offset, sigma_synapse=args.sigma_synapse, levels=args.levels,
        chip_seed=args.chip_seed, transfer_chips=args.transfer_chips, epochs=args.epochs,
        finetune_epochs=args.finetune_epochs, lr=args.lr, meta=args.meta, batch=args.batch,
        train_limit=args.train_limit, test_limit=args.test_limit, lava_samples=args.lava_samples,
        lava_test=args.lava_test, seed=args.seed, data_dir=args.data_dir, overwrite=args.overwrite,
        progress=args.progress)
    h = res["headline"]
    print(f"level 1: ideal {h['ideal']:.2f}%, offline transfer {h['transfer']:.2f}% (mean over chips "
          f"{h['transfer_chips_mean']:.2f}%), in situ from scratch {h['insitu_scratch']:.2f}%"
          + ("" if h["insitu_finetune"] is None else f", fine-tuned {h['insitu_finetune']:.2f}%")
          + f"; wrote {Path(args.out) / 'results.json'}, onchip_mismatch.csv, onchip_mismatch.png")
    return 0
