"""Train a small binary network on digits and save its hidden weights for a graph file.

::

    python -m lavaplast.graph.export_weights processes/weights/digits_64-32-10.npz

trains a 64-32-10 binary MLP by the local rule of on-chip learning (the
PyTorch twin :class:`~lavaplast.reference.local_bnn.LocalBinaryMLP`, the
network ``processes/onchip_continual.toml`` trains on Lava) on the digits
train split, and writes an ``.npz`` with one ``(post, pre)`` hidden-weight
array per connection (``w0``, ``w1``, ...; float32) plus the neurons'
``gain``/``bias`` (``gain0``, ``bias0``, ...) and the test accuracy.
``processes/deploy_bnn.toml`` reads that file; its neuron gains are the
values printed here. The run is deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def train_digits_bnn(hidden: int = 32, epochs: int = 5, batch: int = 20, lr: float = 0.01, seed: int = 0):
    """Train a ``64-hidden-10`` local-rule BNN on digits; returns ``(state, test accuracy in percent)``."""
    from lavaplast.data import load_dataset
    from lavaplast.reference.local_bnn import LocalBinaryMLP, init_local_mlp

    x, y = load_dataset("digits", "train")
    xt, yt = load_dataset("digits", "test")
    x = x.reshape(len(x), -1) / 255.0
    xt = xt.reshape(len(xt), -1) / 255.0
    state = init_local_mlp([64, hidden, 10], lr=lr, seed=seed)
    net = LocalBinaryMLP(state)
    eye = np.eye(10)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for k in range(0, len(order) - batch + 1, batch):
            idx = order[k:k + batch]
            net.train_batch(x[idx], eye[y[idx]])
    net.sync_state()
    accuracy = float(np.mean(net.predict(xt) == yt) * 100)
    return state, accuracy


def main(argv=None) -> int:
    """Command-line entry: train and write the weights file."""
    from lavaplast.cli import run_reporting_errors
    from lavaplast.outputs import save_npz

    p = argparse.ArgumentParser(prog="python -m lavaplast.graph.export_weights", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="the .npz file to write")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    def command() -> int:
        state, accuracy = train_digits_bnn(hidden=args.hidden, epochs=args.epochs, seed=args.seed)
        arrays = {}
        for l, (w, g, b) in enumerate(zip(state.hidden, state.gain, state.bias)):
            arrays[f"w{l}"] = w.astype(np.float32)
            arrays[f"gain{l}"], arrays[f"bias{l}"] = g, b
        save_npz(args.out, **arrays, test_accuracy=np.array(accuracy))
        gains = ", ".join(f"gain{l} = {float(g[0])!r}" for l, g in enumerate(state.gain))
        print(f"test accuracy {accuracy:.1f}%; {gains}; wrote {args.out}")
        return 0

    return run_reporting_errors(command)


if __name__ == "__main__":
    sys.exit(main())
