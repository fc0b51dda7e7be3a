"""Train the rate-based network of a LIF graph, the network the ``torch`` backend runs.

::

    python -m lavaplast.graph.train_rate processes/mnist_lif_deploy.toml --epochs 4 \\
        --out processes/weights/mnist_lif_784-512-512-10.npz

For a feed-forward graph of ``lif`` populations read out by ``spike_count``,
:mod:`lavaplast.graph.backends.torch` computes, per connection, the current
``I = r_pre @ sign(W_h)^T`` and, per population, the firing rate of a
zero-reset LIF under that constant current: the staircase ``1 / k`` of
:func:`~lavaplast.graph.backends.torch.lif_rate`; the first layer's rates
are the encoding's mean drive and the prediction is the argmax of the last
population's rates. :func:`train_rate_network` trains that very function:

- the synapses are ``sign(W_h)`` with the gradient handed to the hidden
  weights ``W_h`` unchanged (straight through), which
  :class:`~lavaplast.reference.optim.MetaplasticAdam` updates;
- each population's forward pass is the exact staircase (float arithmetic
  aside); its backward pass uses a surrogate derivative, ``1 / threshold``
  for currents in ``(-threshold, 2 threshold)`` and 0 elsewhere: the slope
  of the integrate-and-fire rate ``I / threshold`` around the staircase's
  working range, wide enough that silent and saturated neurons still learn;
- the loss is the cross-entropy of ``temperature * rates`` of the output
  population (rates lie in [0, 1], so the temperature sets how sharp the
  softmax can get).

The population parameters (``beta``, ``threshold``) come from the graph;
training starts from uniform hidden weights drawn with ``seed`` (whatever
the graph's ``weights`` say: they describe the deployment). The written file
holds ``sign(W_h)`` of every connection as int8 (``w0``, ``w1``, ...), the
only thing inference uses, compressed, plus ``test_accuracy`` (the rate
model's, percent, on the graph's split) and the training settings.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from lavaplast.core import binarize, check_int, check_positive
from lavaplast.graph.inputs import mean_drive
from lavaplast.graph.spec import GraphSpec, parse_graph
from lavaplast.reference.binary import binary_weight_ste

ENCODINGS = ("rate", "current")


class _LIFRate(torch.autograd.Function):
    """The zero-reset LIF's rate staircase forward, a box surrogate derivative backward."""

    @staticmethod
    def forward(ctx, current, beta: float, threshold: float):
        ctx.save_for_backward(current)
        ctx.threshold = threshold
        return lif_rate_torch(current, beta, threshold)

    @staticmethod
    def backward(ctx, grad_out):
        (current,) = ctx.saved_tensors
        th = ctx.threshold
        window = (current > -th) & (current < 2.0 * th)
        return grad_out * window.to(grad_out.dtype) / th, None, None


def lif_rate_torch(current: torch.Tensor, beta: float, threshold: float) -> torch.Tensor:
    """Spikes per step of a zero-reset LIF under a constant ``current``: ``1 / k``, ``k`` the first step
    with ``current (1 - beta^k) / (1 - beta) > threshold``, 0 if never (no gradient; see :func:`rate_forward`)."""
    if beta == 0.0:
        return (current > threshold).to(current.dtype)
    fires = current * (1.0 / (1.0 - beta)) > threshold
    safe = torch.where(fires, current, torch.full_like(current, 2.0 * threshold))
    c = 1.0 - threshold * (1.0 - beta) / safe
    k = torch.clamp(torch.floor(torch.log(c) / math.log(beta)) + 1.0, min=1.0)
    return torch.where(fires, 1.0 / k, torch.zeros_like(current))


def _check_graph(spec: GraphSpec) -> None:
    where = spec.where
    for i, pop in enumerate(spec.populations):
        if pop.neuron != "lif":
            raise ValueError(f"{where}: populations[{i}].neuron: the rate trainer trains 'lif' populations only, "
                             f"got {pop.neuron!r}")
    for i, conn in enumerate(spec.connections):
        if conn.quantizer != "binary":
            raise ValueError(f"{where}: connections[{i}].quantizer: the rate trainer trains binary synapses, "
                             f"got {conn.quantizer!r}")
    if spec.readout.kind != "spike_count" or spec.readout.population != spec.populations[-1].name:
        raise ValueError(f"{where}: readout: the rate trainer needs the 'spike_count' of the last population, "
                         f"got {spec.readout.kind!r} of {spec.readout.population!r}")
    if spec.input.source != "dataset" or spec.input.encoding not in ENCODINGS:
        raise ValueError(f"{where}: input: the rate trainer needs a dataset input with encoding "
                         f"{' or '.join(ENCODINGS)}, got source {spec.input.source!r}, "
                         f"encoding {spec.input.encoding!r}")


def rate_forward(spec: GraphSpec, weights, drive, *, grad: bool = False) -> list:
    """Rates of every population (torch tensors ``(N, n)``) for first-layer rates ``drive``.

    ``weights``: hidden weights ``(post, pre)`` per connection (tensors or
    arrays). Without ``grad`` the pass runs in float64, as the ``torch``
    backend does; with ``grad`` it keeps ``weights``' dtype and builds the
    graph for the surrogate gradient.
    """
    dtype = weights[0].dtype if grad else torch.float64
    h = torch.as_tensor(np.asarray(drive) if not torch.is_tensor(drive) else drive, dtype=dtype)
    outs = []
    with torch.set_grad_enabled(grad):
        for w, pop in zip(weights, spec.populations):
            w = torch.as_tensor(w, dtype=dtype) if not grad else w
            current = h @ binary_weight_ste(w).T
            beta, threshold = float(pop.params["beta"]), float(pop.params["threshold"])
            h = _LIFRate.apply(current, beta, threshold) if grad else lif_rate_torch(current, beta, threshold)
            outs.append(h)
    return outs


def rate_predictions(spec: GraphSpec, weights, values: np.ndarray, batch: int = 1000) -> np.ndarray:
    """The rate model's predictions (argmax of the output rates, first index on ties) for dataset values."""
    drive = mean_drive(values, spec.input.encoding)
    preds = [rate_forward(spec, weights, drive[k:k + batch])[-1].argmax(1).numpy()
             for k in range(0, len(drive), batch)]
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def _dataset(spec: GraphSpec, split: str, limit: Optional[int] = None) -> tuple:
    from lavaplast.data import load_dataset

    images, labels = load_dataset(spec.input.dataset, split)
    x = images.reshape(len(images), -1).astype(np.float64) / 255.0 * spec.input.scale
    if x.shape[1] != spec.input.size:
        raise ValueError(f"{spec.input.dataset} images have {x.shape[1]} pixels, the graph declares {spec.input.size}")
    if limit is not None:
        x, labels = x[:limit], labels[:limit]
    return x, np.asarray(labels, dtype=np.int64)


def train_rate_network(spec: GraphSpec, epochs: int, lr: float = 0.005, *, batch: int = 100,
                       temperature: float = 20.0, init_scale: float = 0.05, seed: int = 0,
                       train_samples: Optional[int] = None, history: Optional[list] = None,
                       progress: bool = False) -> dict:
    """Train the rate-based network of ``spec`` on its dataset's train split (see the module docstring).

    ``epochs`` passes over ``train_samples`` training images (default all),
    mini-batches of ``batch``, MetaplasticAdam (``meta = 0``) at rate ``lr``;
    hidden weights start uniform in ``(-init_scale, init_scale)`` drawn with
    ``seed``. If ``history`` is a list, each epoch's mean loss is appended.
    Returns ``{"w0": (post, pre) float32 hidden weights, "w1": ..., ...}``
    in chain order. Bad arguments raise ``ValueError``.
    """
    from lavaplast.progress import progress_bar
    from lavaplast.reference.optim import MetaplasticAdam

    epochs = check_int("epochs", epochs, 1)
    lr = check_positive("lr", lr)
    batch = check_int("batch", batch, 1)
    temperature = check_positive("temperature", temperature)
    init_scale = check_positive("init_scale", init_scale)
    seed = check_int("seed", seed, 0)
    if train_samples is not None:
        train_samples = check_int("train_samples", train_samples, 1)
    _check_graph(spec)
    x, y = _dataset(spec, "train", train_samples)
    drive = torch.as_tensor(mean_drive(x, spec.input.encoding), dtype=torch.float32)
    labels = torch.as_tensor(y)
    gen = torch.Generator().manual_seed(seed)
    sizes = spec.sizes
    weights = [torch.nn.Parameter((torch.rand(sizes[i + 1], sizes[i], generator=gen) * 2 - 1) * init_scale)
               for i in range(len(spec.populations))]
    opt = MetaplasticAdam(weights, lr=lr, meta=0.0)
    for _ in progress_bar(range(epochs), progress, desc=f"train {spec.name}", unit="epoch", total=epochs):
        order = torch.randperm(len(drive), generator=gen)
        total, seen = 0.0, 0
        for k in range(0, len(order), batch):
            idx = order[k:k + batch]
            rates = rate_forward(spec, weights, drive[idx], grad=True)[-1]
            loss = torch.nn.functional.cross_entropy(temperature * rates, labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        if history is not None:
            history.append(total / seen)
    return {f"w{i}": w.detach().numpy().copy() for i, w in enumerate(weights)}


def save_sign_weights(path, weights: dict, **extra) -> Path:
    """Write ``sign(W_h)`` of every connection as int8 (sign(0) = +1) to a compressed ``.npz``, atomically.

    The signs are all inference uses; one byte each, compressed to about
    one bit, keeps a 784-512-512-10 network near 90 KB. ``extra`` arrays
    (accuracy, settings) are stored beside them.
    """
    from lavaplast.outputs import save_npz

    arrays = {k: binarize(np.asarray(w, dtype=np.float64)).astype(np.int8) for k, w in weights.items()}
    arrays.update({k: np.asarray(v) for k, v in extra.items()})
    return save_npz(path, compressed=True, **arrays)


def load_training_graph(path) -> GraphSpec:
    """A graph file read for training: its connections' ``weights`` are dropped (training draws its own),
    so a graph may name a weights file that training is about to write."""
    from lavaplast.graph.spec import read_graph_data

    path = Path(path)
    data = read_graph_data(path)
    for conn in data.get("connections", []):
        if isinstance(conn, dict):
            conn.pop("weights", None)
    return parse_graph(data, where=str(path), base=path.resolve().parent)


def main(argv=None) -> int:
    """Command-line entry: train the graph's rate network and write its weights file."""
    from lavaplast.cli import run_reporting_errors

    p = argparse.ArgumentParser(prog="python -m lavaplast.graph.train_rate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("graph", help="a graph file (.toml) of lif populations with a spike_count readout")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--out", required=True, help="the .npz weights file to write")
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--temperature", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-samples", type=int, default=None)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty())
    args = p.parse_args(argv)

    def command() -> int:
        spec = load_training_graph(args.graph)
        t0 = time.perf_counter()
        history: list = []
        weights = train_rate_network(spec, args.epochs, args.lr, batch=args.batch, temperature=args.temperature,
                                     seed=args.seed, train_samples=args.train_samples, history=history,
                                     progress=args.progress)
        seconds = time.perf_counter() - t0
        xt, yt = _dataset(spec, spec.input.split)
        accuracy = float(np.mean(rate_predictions(spec, list(weights.values()), xt) == yt) * 100)
        save_sign_weights(args.out, weights, test_accuracy=np.array(accuracy), epochs=np.array(args.epochs),
                          lr=np.array(args.lr), temperature=np.array(args.temperature), seed=np.array(args.seed),
                          sizes=np.array(spec.sizes))
        losses = ", ".join(f"{v:.3f}" for v in history)
        print(f"{spec.name}: {' -> '.join(map(str, spec.sizes))}; loss per epoch {losses}; rate-model accuracy "
              f"on {spec.input.dataset}/{spec.input.split} ({len(yt)} images) {accuracy:.2f}%; "
              f"{seconds:.0f} s; wrote {args.out}")
        return 0

    return run_reporting_errors(command, prog="python -m lavaplast.graph.train_rate")


if __name__ == "__main__":
    sys.exit(main())
