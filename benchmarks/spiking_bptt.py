"""The BPTT ceiling of the spiking binary network on MNIST, checked on the Lava graph.

Trains a 784-``--hidden``-10 spiking binary network (LIF neurons with zero
reset, binary synapses, one step of synaptic delay per layer: the network of
:class:`lavaplast.graph.spiking.LavaSpikingBinaryMLP`) offline with
surrogate-gradient backpropagation through time and MetaplasticAdam
(:func:`lavaplast.reference.spiking_bptt.train_bptt`) on rate-coded MNIST
pixels over ``--T`` steps. Then it measures

- the test accuracy of the trained network's float64 forward pass (the
  snnTorch twin's arithmetic) on the whole test split, after every epoch;
- the deployed Lava graph (CPU simulator) on the first ``--lava-samples``
  test images, fed the very same spikes: its accuracy and the number of
  spikes and predictions that differ from the float64 forward pass (and
  the spikes that differ from the snnTorch twin ``SpikingBinaryMLP``).

::

    nice -n 10 python benchmarks/spiking_bptt.py --out benchmarks/results/spiking_bptt.json

writes the numbers, the settings and the timings as JSON (and, with
``--weights FILE.npz``, the trained weights as a graph weights file). It
needs the full MNIST files; without them it stops with the message that
names ``make data``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from common import save  # benchmarks/common.py (the script's folder is on sys.path)
from lavaplast.data import DataCorruptError, DataMissingError, load_dataset
from lavaplast.reference.spiking_bptt import deploy_check, save_weights, train_bptt


def _mnist(split: str, limit=None) -> tuple:
    images, labels = load_dataset("mnist", split)
    x = images.reshape(len(images), -1) / 255.0
    if limit is not None:
        x, labels = x[:limit], labels[:limit]
    return x, labels


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--T", type=int, default=25, help="input time steps per image (rate coding)")
    p.add_argument("--beta", type=float, default=0.9)
    # 784 inputs at MNIST's mean rate put ~100 +-1 synapses to work per step;
    # 48 did best among 8, 16, 24, 32, 48, 64 and 96 when training on 10k images for two epochs.
    p.add_argument("--threshold", type=float, default=48.0)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--meta", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-samples", type=int, default=None, help="first N training images (default all)")
    p.add_argument("--test-samples", type=int, default=None, help="first N test images (default all)")
    p.add_argument("--eval-batch", type=int, default=500, help="test images per rate-coded batch (and Lava run)")
    p.add_argument("--lava-samples", type=int, default=1000, help="first N test images run on the Lava graph")
    p.add_argument("--weights", default=None, help="also write the trained weights (.npz) for a graph file")
    # The time-step loop is many small tensor operations: on a busy 2-core
    # machine a second intra-op thread made training 3x slower (the threads
    # wait for each other); raise it on an idle machine with more cores.
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--device", default="cpu", help="where the training runs: cpu, cuda or cuda:N")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty())
    p.add_argument("--out", default="benchmarks/results/spiking_bptt.json")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    try:
        x, y = _mnist("train", args.train_samples)
        xt, yt = _mnist("test", args.test_samples)
    except (DataMissingError, DataCorruptError) as err:
        raise SystemExit(f"benchmarks/spiking_bptt.py: error: {err}") from None
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args, x, y, xt, yt)
    finally:
        torch.set_num_threads(threads)


def run(args, x, y, xt, yt) -> dict:
    """Train, evaluate, deploy on Lava and write the JSON (``args`` from :func:`main`)."""

    def report(h: dict) -> None:
        print(f"epoch {h['epoch']}: loss {h['loss']:.3f}, train {h['train_accuracy']:.2f}%, "
              f"test (float64) {h['test_accuracy']:.2f}%, {h['seconds']:.0f} s", flush=True)

    common = dict(T=args.T, beta=args.beta, threshold=args.threshold, seed=args.seed)
    t0 = time.perf_counter()
    result = train_bptt(x, y, [784, args.hidden, 10], epochs=args.epochs, batch=args.batch, lr=args.lr,
                        meta=args.meta, x_test=xt, y_test=yt, eval_batch=args.eval_batch, progress=args.progress,
                        on_epoch=report, device=args.device, **common)
    train_seconds = time.perf_counter() - t0
    weights = result.hidden_weights

    n_lava = min(args.lava_samples, len(xt))
    t0 = time.perf_counter()
    check = deploy_check(weights, xt[:n_lava], batch=args.eval_batch, **common)
    lava_seconds = time.perf_counter() - t0
    lava_acc = float(np.mean(check["predictions_lava"] == yt[:n_lava]) * 100)
    twin_subset_acc = float(np.mean(check["predictions_bptt"] == yt[:n_lava]) * 100)

    data = dict(
        benchmark="spiking_bptt",
        network=f"784-{args.hidden}-10 LIF (zero reset), binary synapses, rate-coded MNIST over T={args.T} steps",
        settings=result.settings,
        history=result.history,
        test_samples=len(yt),
        twin_test_accuracy=result.history[-1]["test_accuracy"],
        lava=dict(samples=n_lava, accuracy=lava_acc, twin_accuracy_same_samples=twin_subset_acc,
                  differing_predictions=check["differing_predictions"], differing_spikes=check["differing_spikes"],
                  differing_spikes_twin=check["differing_spikes_twin"], spikes=check["spikes"], seconds_lava_runs=check["seconds_lava"], seconds_total=lava_seconds),
        seconds=dict(train_and_eval=train_seconds, per_epoch=[h["seconds"] for h in result.history]),
        threads=args.threads,
    )
    if args.weights:
        save_weights(args.weights, weights, test_accuracy=np.array(data["twin_test_accuracy"]),
                     beta=np.array(args.beta), threshold=np.array(args.threshold), T=np.array(args.T),
                     sizes=np.array(result.settings["sizes"]))
        data["weights_file"] = args.weights
    out = save(data, args.out)
    print(f"twin (float64) test accuracy {data['twin_test_accuracy']:.2f}% on {len(yt)} images; Lava graph "
          f"{lava_acc:.2f}% on the first {n_lava} (twin {twin_subset_acc:.2f}%), "
          f"{check['differing_predictions']} differing predictions, {check['differing_spikes']} differing spikes "
          f"of {check['spikes']}; training {train_seconds:.0f} s, Lava {lava_seconds:.0f} s -> {out}")
    return data


if __name__ == "__main__":
    main()
