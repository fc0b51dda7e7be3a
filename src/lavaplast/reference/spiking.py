"""snnTorch twin of the spiking binary network of :mod:`lavaplast.graph.spiking`.

Each layer is a binary-weight linear map (``sign(W_h)``, no bias) followed by
``snn.Leaky(beta, threshold, reset_mechanism="zero")``. The twin reproduces the
Lava graph spike for spike, so it models what the Lava graph does:

- one step of synaptic delay per layer (``BinaryDense`` sends what it
  received a step earlier): at step ``k`` layer 1 gets ``x[k - 1]`` and layer
  ``l`` gets the spikes of layer ``l - 1`` at step ``k - 1``; every synaptic
  input is zero at ``k = 0``;
- Lava's float ``LIF`` with ``du = 1``, ``dv = 1 - beta``: its decay factor
  is ``1 - dv``, computed in float64, which is not always ``beta`` to the
  last bit, so the twin uses that same number, and float64 throughout
  (snnTorch would store a Python float ``beta`` as float32).

Lava's ``v > vth`` and snnTorch's ``mem - threshold > 0`` agree for all
finite floats, and snnTorch's delayed zero reset (applied at the start of the
next step) equals Lava's immediate ``v = 0`` after a spike.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import snntorch as snn
import torch
from torch import nn

from lavaplast.core import (
    binarize,
    check_choice,
    check_finite_array,
    check_int,
    check_number,
    ternarize,
    ternary_matmul,
)
from lavaplast.core.spiking_learning import lava_decay


def rate_encode(x, T: int, seed: int = 0) -> np.ndarray:
    """Bernoulli spike trains ``(T, *x.shape)`` firing with probability ``x`` per step.

    ``x`` holds rates in [0, 1] (e.g. pixels / 255); the same ``seed`` gives
    the same spikes, so the Lava graph and the twin can share an input.
    """
    x = check_finite_array("rate_encode: x", x)
    T = check_int("rate_encode: T", T, 1)
    if x.size == 0 or not np.all((x >= 0) & (x <= 1)):
        raise ValueError("rate_encode: x must be a non-empty array of rates in [0, 1]")
    rng = np.random.default_rng(seed)
    return (rng.random((int(T),) + x.shape) < x).astype(float)


def _per_layer(what: str, value, n_layers: int) -> list:
    """One value per layer: a scalar is repeated, a sequence must have ``n_layers`` items."""
    if isinstance(value, (list, tuple, np.ndarray)):
        values = list(np.asarray(value).reshape(-1)) if isinstance(value, np.ndarray) else list(value)
        if len(values) != n_layers:
            raise ValueError(f"{what} must be one value or one per layer ({n_layers}), got {len(values)} values")
        return values
    return [value] * n_layers


def check_spiking_network(hidden_weights: Sequence, beta, threshold) -> list[np.ndarray]:
    """Validate the parameters of a spiking binary network; return the weights as float64 arrays.

    ``hidden_weights`` is a non-empty list of 2-D ``(n_out, n_in)`` arrays
    whose sizes chain; ``beta`` (one value or one per layer) must lie in
    [0, 1) and ``threshold`` (one value or one per layer) be > 0.
    """
    if isinstance(hidden_weights, np.ndarray) or not isinstance(hidden_weights, (list, tuple)) \
            or len(hidden_weights) == 0:
        raise ValueError("hidden_weights must be a non-empty list of 2-D arrays (n_out, n_in)")
    weights = []
    for l, w in enumerate(hidden_weights):
        w = check_finite_array(f"hidden_weights[{l}]", w.detach().cpu() if isinstance(w, torch.Tensor) else w)
        if w.ndim != 2 or 0 in w.shape:
            raise ValueError(f"hidden_weights[{l}] must be a non-empty 2-D array (n_out, n_in), got shape {w.shape}")
        if weights and w.shape[1] != weights[-1].shape[0]:
            raise ValueError(f"hidden_weights[{l}] has {w.shape[1]} inputs but layer {l - 1} "
                             f"has {weights[-1].shape[0]} outputs")
        weights.append(w)
    for b in _per_layer("beta", beta, len(weights)):
        try:
            check_number("beta", b, low=0.0, high=1.0, high_open=True)
        except ValueError:
            raise ValueError(f"beta must be a number in [0, 1), got {b!r}") from None
    for th in _per_layer("threshold", threshold, len(weights)):
        check_number("threshold", th, low=0.0, low_open=True)
    return weights


def quantize(hidden, quantizer: str = "binary", ternary_threshold: float = 0.05) -> np.ndarray:
    """The synaptic weights of ``hidden``: ``sign`` (binary, sign(0) = +1) or ternary, float64."""
    quantizer = check_choice("quantizer", quantizer, ("binary", "ternary"))
    hidden = np.asarray(hidden, dtype=np.float64)
    return binarize(hidden) if quantizer == "binary" else ternarize(hidden, ternary_threshold)


class SpikingBinaryMLP(nn.Module):
    """Binary-synapse spiking MLP (snnTorch ``Leaky`` neurons, zero reset), with Lava's synaptic delays.

    ``hidden_weights`` are ``(n_out, n_in)`` hidden-weight matrices; the
    synapses use ``sign(W_h)`` (sign(0) = +1), or with ``quantizer="ternary"``
    ``sign(W_h)`` where ``|W_h| > ternary_threshold`` and 0 elsewhere.
    ``beta``, ``threshold``, ``quantizer`` and ``ternary_threshold`` are one
    value for every layer or a sequence with one per layer (a graph file's
    populations each have their own). Everything runs in float64.
    """

    def __init__(self, hidden_weights: Sequence, beta=0.9, threshold=1.0, *, quantizer="binary",
                 ternary_threshold=0.05):
        super().__init__()
        weights = check_spiking_network(hidden_weights, beta, threshold)
        n = len(weights)
        self.sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights]
        for l, (w, q, th) in enumerate(zip(weights, _per_layer("quantizer", quantizer, n),
                                           _per_layer("ternary_threshold", ternary_threshold, n))):
            self.register_buffer(f"weight{l}", torch.from_numpy(quantize(w, q, th)))
        self.neurons = nn.ModuleList(
            snn.Leaky(beta=torch.tensor(lava_decay(b), dtype=torch.float64),
                      threshold=torch.tensor(float(th), dtype=torch.float64), reset_mechanism="zero")
            for b, th in zip(_per_layer("beta", beta, n), _per_layer("threshold", threshold, n))
        )

    @property
    def n_layers(self) -> int:
        return len(self.neurons)

    def default_steps(self, T: int) -> int:
        """Steps needed for the last of ``T`` input steps to reach the output: ``T + n_layers``."""
        return T + self.n_layers

    def forward(self, x, n_steps: Optional[int] = None, return_membranes: bool = False):
        """Run the network on ``x`` ``(T, B, n_in)`` (spikes or currents, step by step).

        Runs ``n_steps`` steps (default ``T + n_layers``, so that every input
        step reaches the last layer; ``x`` counts as zero past ``T``).
        Returns ``(spikes, counts)``: a list with one ``(n_steps, B, n_l)``
        spike recording per layer and the output spike counts ``(B, n_out)``;
        with ``return_membranes``, also the membrane potentials per layer
        (before the reset, as snnTorch returns them).
        """
        x = torch.as_tensor(x, dtype=torch.float64)
        if not bool(torch.isfinite(x).all()):
            check_finite_array("input", x.numpy())
        if x.ndim != 3 or x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] != self.sizes[0]:
            raise ValueError(f"input must have shape (T, B, {self.sizes[0]}) with T, B >= 1, got {tuple(x.shape)}")
        T, B, _ = x.shape
        n_steps = check_int("n_steps", self.default_steps(T) if n_steps is None else n_steps, 1)
        weights = [getattr(self, f"weight{l}") for l in range(self.n_layers)]
        spikes = [x.new_zeros((n_steps, B, n)) for n in self.sizes[1:]]
        mems_out = [x.new_zeros((n_steps, B, n)) for n in self.sizes[1:]]
        mems = [x.new_zeros((B, n)) for n in self.sizes[1:]]
        for k in range(n_steps):
            for l in range(self.n_layers):
                # What layer l hears at step k left its source at step k - 1.
                if k == 0:
                    pre = None
                elif l == 0:
                    pre = x[k - 1] if k - 1 < T else None
                else:
                    pre = spikes[l - 1][k - 1]
                # The sum of the Lava graph's BinaryDense, to the bit.
                cur = (x.new_zeros((B, self.sizes[l + 1])) if pre is None
                       else torch.from_numpy(ternary_matmul(pre.detach().numpy(), weights[l].numpy())))
                spk, mems[l] = self.neurons[l](cur, mems[l])
                spikes[l][k] = spk
                mems_out[l][k] = mems[l]
        counts = spikes[-1].sum(0)
        if return_membranes:
            return spikes, counts, mems_out
        return spikes, counts

    @torch.no_grad()
    def predict(self, x, n_steps: Optional[int] = None) -> torch.Tensor:
        """Class predictions ``(B,)``: the output neuron with the most spikes."""
        return self.forward(x, n_steps)[1].argmax(1)
