"""PyTorch twin of the on-chip binary MLP trained by local rules.

The network the Lava graph of :mod:`lavaplast.graph.binary_network` runs:
binary weights ``sign(W_h)``, sign neurons ``sign(gain * a + bias)`` in the
hidden layers, an output population with logits ``gain * a + bias`` and
error ``softmax(logits) - target``. Learning is local: the output layer
learns from that error, hidden layers from fixed random projections of it
(direct feedback alignment) gated by the sign's straight-through derivative,
and every hidden weight moves by the metaplastic Adam rule. All the math
comes from :mod:`lavaplast.core`, shared with the Lava models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from lavaplast.core import (
    LOSSES,
    binarize,
    check_meta,
    feedback_error,
    local_gradient,
    metaplastic_adam_step_,
    neuron_drive,
    output_error,
    sign_neuron,
)


@dataclass
class LocalMLPState:
    """Everything that defines the network, as numpy arrays (backend-free).

    ``hidden[l]`` is layer l's hidden-weight matrix ``(n_out, n_in)``,
    ``feedback[l]`` the fixed DFA matrix ``(n_l, n_classes)`` of hidden layer
    l, ``gain[l]``/``bias[l]`` the neuron parameters of layer l, ``meta[l]``
    its metaplasticity.
    """

    hidden: list
    feedback: list
    gain: list
    bias: list
    meta: list
    lr: float = 0.005
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    loss: str = "ce"
    info: dict = field(default_factory=dict)

    @property
    def sizes(self) -> list[int]:
        return [self.hidden[0].shape[1]] + [w.shape[0] for w in self.hidden]

    def copy(self) -> "LocalMLPState":
        return LocalMLPState(
            hidden=[w.copy() for w in self.hidden], feedback=[f.copy() for f in self.feedback],
            gain=[g.copy() for g in self.gain], bias=[b.copy() for b in self.bias], meta=list(self.meta),
            lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay, loss=self.loss,
            info=dict(self.info),
        )


def init_local_mlp(
    sizes: Sequence[int],
    *,
    meta=0.0,
    lr: float = 0.005,
    weight_decay: float = 0.0,
    loss: str = "ce",
    seed: int = 0,
    init_scale: float = 0.05,
) -> LocalMLPState:
    """A fresh network: hidden weights U(-init_scale, init_scale), +-1 feedback,
    ``gain = 1/sqrt(fan_in)`` so pre-activations stay O(1) without BatchNorm."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must be at least two positive integers, got {sizes!r}")
    n_layers = len(sizes) - 1
    metas = [meta] * n_layers if np.ndim(meta) == 0 else list(meta)
    if len(metas) != n_layers:
        raise ValueError(f"meta has {len(metas)} values but the network has {n_layers} weight layers")
    metas = [check_meta(m, f"meta[{i}]") for i, m in enumerate(metas)]
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    rng = np.random.default_rng(seed)
    pairs = list(zip(sizes[:-1], sizes[1:]))
    hidden = [rng.uniform(-init_scale, init_scale, size=(o, i)) for i, o in pairs]
    feedback = [rng.choice([-1.0, 1.0], size=(o, sizes[-1])) for _, o in pairs[:-1]]
    gain = [np.full(o, 1.0 / np.sqrt(i)) for i, o in pairs]
    bias = [np.zeros(o) for _, o in pairs]
    return LocalMLPState(hidden, feedback, gain, bias, metas, lr=lr, weight_decay=weight_decay, loss=loss,
                         info={"seed": seed, "init_scale": init_scale})


class LocalBinaryMLP:
    """Trains a :class:`LocalMLPState` with the local rule in PyTorch (float64).

    ``train_batch`` does exactly what one window of the Lava graph does;
    ``reset_optimizer`` clears the Adam moments (the paper resets them at
    every task boundary).
    """

    def __init__(self, state: LocalMLPState):
        self.state = state
        t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
        self.hidden = [t(w) for w in state.hidden]
        self.feedback = [t(f) for f in state.feedback]
        self.gain = [t(g) for g in state.gain]
        self.bias = [t(b) for b in state.bias]
        self.reset_optimizer()

    def reset_optimizer(self) -> None:
        self._moments = [(torch.zeros_like(w), torch.zeros_like(w)) for w in self.hidden]
        self._steps = [0] * len(self.hidden)

    def forward(self, x) -> tuple[list, list]:
        """Layer inputs ``h`` (h[0] = x) and pre-activations ``z``; ``z[-1]`` are the logits."""
        h, z = [torch.as_tensor(x, dtype=torch.float64)], []
        for l, w in enumerate(self.hidden):
            z.append(neuron_drive(h[-1] @ binarize(w).T, self.gain[l], self.bias[l]))
            if l < len(self.hidden) - 1:
                h.append(sign_neuron(z[-1]))
        return h, z

    @torch.no_grad()
    def predict(self, x) -> np.ndarray:
        """Class predictions for inputs ``x`` (N, n_in)."""
        return self.forward(x)[1][-1].argmax(1).numpy()

    @torch.no_grad()
    def train_batch(self, x, target) -> None:
        """One local-learning step on a batch: ``x`` (B, n_in), one-hot ``target`` (B, n_classes)."""
        h, z = self.forward(x)
        err = output_error(z[-1], torch.as_tensor(target, dtype=torch.float64), self.state.loss)
        n = len(self.hidden)
        for l in range(n):
            third = err if l == n - 1 else feedback_error(err, self.feedback[l], z[l])
            grad = local_gradient(third, h[l])
            m, v = self._moments[l]
            self._steps[l] = metaplastic_adam_step_(
                self.hidden[l], grad, m, v, self._steps[l], lr=self.state.lr, betas=self.state.betas,
                eps=self.state.eps, weight_decay=self.state.weight_decay, meta=self.state.meta[l],
            )

    def sync_state(self) -> LocalMLPState:
        """Copy the hidden weights back into :attr:`state` and return it."""
        for l, w in enumerate(self.hidden):
            self.state.hidden[l] = w.numpy().copy()
        return self.state


@torch.no_grad()
def state_from_bnn(model, calibration=None) -> LocalMLPState:
    """Deploy a trained :class:`~lavaplast.reference.models.BNN` as a :class:`LocalMLPState`.

    Hidden weights carry over as they are; each BatchNorm folds into the
    neurons' ``gain`` and ``bias``. BatchNorm with running statistics uses
    them; BatchNorm that normalises with batch statistics (the paper's
    choice) needs ``calibration`` inputs, whose statistics are frozen in
    (exactly what the model computes on that set taken as one batch).
    """
    from torch import nn

    from lavaplast.reference.models import MLP

    if not isinstance(model, MLP) or not model.binary:
        raise ValueError(f"state_from_bnn expects a binary lavaplast MLP (BNN), got {type(model).__name__}")
    linears = model.linear_layers()
    if any(layer.bias is not None for layer in linears):
        raise ValueError("state_from_bnn: linear layers with a bias are not supported (the BNN has none)")
    h = None if calibration is None else torch.as_tensor(calibration).flatten(1).to(linears[0].weight.dtype)
    gains, biases = [], []
    modules = list(model.layers)
    for i, module in enumerate(modules):
        if isinstance(module, nn.Linear):
            a = None if h is None else module(h)
            bn = modules[i + 1]
            n = module.out_features
            if isinstance(bn, nn.BatchNorm1d):
                if bn.track_running_stats:
                    mean, var = bn.running_mean, bn.running_var
                elif a is None:
                    raise ValueError("state_from_bnn: this BNN normalises with batch statistics; "
                                     "pass calibration inputs to freeze them")
                else:
                    mean, var = a.mean(0), a.var(0, unbiased=False)
                gamma = bn.weight if bn.affine else torch.ones(n, dtype=mean.dtype)
                beta = bn.bias if bn.affine else torch.zeros(n, dtype=mean.dtype)
                gain = gamma / torch.sqrt(var + bn.eps)
                gains.append(gain.double().numpy().copy())
                biases.append((beta - mean * gain).double().numpy().copy())
            else:
                gains.append(np.ones(n))
                biases.append(np.zeros(n))
            if h is not None:
                h = modules[i + 2](bn(a)) if i + 2 < len(modules) else None
    hidden = [layer.weight.detach().double().numpy().copy() for layer in linears]
    return LocalMLPState(hidden=hidden, feedback=[], gain=gains, bias=biases, meta=[0.0] * len(hidden),
                         info={"deployed_from": type(model).__name__})
