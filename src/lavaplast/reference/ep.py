"""PyTorch reference of equilibrium propagation (EP) for layered networks.

The dynamics and the contrastive update are the functions of
:mod:`lavaplast.core.ep`; this module holds the parameters, the nudging
schemes (one-sided, random-sign, symmetric), SGD training, and the
backpropagation-through-time gradient that EP is checked against.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from lavaplast.core.ep import (
    ACTIVATIONS,
    NUDGING,
    holomorphic_update,
    readout_update,
    softmax_readout,
    check_beta,
    check_layers,
    check_steps,
    ep_step,
    ep_update,
    free_phase,
    nudged_phase,
)
from lavaplast.core.metaplastic import AdamMoments
from lavaplast.core.mismatch import ChipMismatch, as_mismatch
from lavaplast.core.quantize import binarize
from lavaplast.core.validate import (
    check_adam,
    check_choice,
    check_device,
    check_finite_array,
    check_int,
    check_labels,
    check_positive,
    check_sizes,
    per_layer,
)

LOSSES = ("mse", "ce")


def check_ep_settings(nudging: str, loss: str, activation: str, n_nudges: int) -> tuple:
    """Validate the scheme of an EP network together; returns ``(nudging, loss, activation, n_nudges)``.

    Holomorphic nudging needs an analytic activation (``"logistic"``) and
    the MSE loss; ``n_nudges`` is an integer >= 2.
    """
    nudging = check_choice("nudging", nudging, NUDGING)
    loss = check_choice("loss", loss, LOSSES)
    activation = check_choice("activation", activation, tuple(ACTIVATIONS))
    n_nudges = check_int("n_nudges", n_nudges, 2)
    if nudging == "holomorphic":
        if activation != "logistic":
            raise ValueError("holomorphic nudging needs an analytic activation: use activation='logistic'")
        if loss != "mse":
            raise ValueError("holomorphic nudging supports loss='mse' only")
    return nudging, loss, activation, n_nudges


class EPNetwork:
    """A layered EP network ``sizes[0] -> ... -> sizes[-1]``.

    ``loss="mse"``: the last layer is the output of the dynamics, trained on
    ``1/2 ||s_N - y||^2``. ``loss="ce"``: the dynamics end at ``sizes[-2]``
    and a softmax readout ``sizes[-2] -> sizes[-1]`` outside them is trained
    on the cross-entropy (its gradient nudges the top layer; the readout
    itself learns by its plain gradient at the free equilibrium).

    ``T1`` free steps, ``T2`` nudged steps, nudge strength ``beta`` and the
    nudging scheme: ``"symmetric"`` (+beta and -beta: removes the O(beta)
    bias), ``"one-sided"`` (+beta against the free state) or
    ``"random-sign"`` (one-sided with the sign of beta drawn per batch).
    ``"holomorphic"`` (``n_nudges`` complex nudges ``|beta| e^{2 pi i k/N}``,
    which needs ``activation="logistic"``: the hard sigmoid is not analytic).
    ``lrs`` is one SGD learning rate per layer (or one for all). Weights start uniform in
    ``+-1/sqrt(fan_in)``; states start at zero for every batch.

    ``mismatch``: a :class:`~lavaplast.core.mismatch.ChipMismatch` drawn for
    the sizes of the dynamics (``[sizes[0], *state_sizes]``): the network then
    runs on that chip. :attr:`weights` stay the *programmed* weights (what
    learning changes and what transfers between chips); the dynamics use
    :meth:`dynamics_weights` (``G * W``) and neurons respond
    ``sigma(g * drive + o)``. The local EP rule is unchanged (docs/devices.md).
    ``None`` (the default) is the ideal network, computed exactly as before.

    ``device``: where the tensors live and the dynamics run (``"cpu"``,
    ``"cuda"``, ``"cuda:N"``). The initial weights are drawn on the CPU, so
    a seed gives the same network on every device; inputs may come from
    any device, and :meth:`predict` returns numpy arrays.
    """

    def __init__(self, sizes: Sequence[int], *, T1: int = 30, T2: int = 10, beta: float = 0.5,
                 nudging: str = "symmetric", lrs: Optional[Sequence[float]] = None, seed: int = 0,
                 loss: str = "mse", activation: str = "hard", n_nudges: int = 4, dtype=torch.float32,
                 mismatch: Optional[ChipMismatch] = None, device: str = "cpu"):
        sizes = check_sizes("sizes", sizes)
        self.device = torch.device(check_device(device))
        self.T1, self.T2 = check_steps(T1, "T1"), check_steps(T2, "T2")
        self.beta = check_beta(beta)
        self.nudging, self.loss_name, self.activation_name, self.n_nudges = check_ep_settings(
            nudging, loss, activation, n_nudges)
        if loss == "ce" and len(sizes) < 3:
            raise ValueError("loss='ce' needs at least one layer of dynamics below the readout (3 sizes)")
        self.activation = ACTIVATIONS[activation]
        self.seed = check_int("seed", seed, 0)
        n_layers = len(sizes) - 1
        lrs = per_layer("lrs", 0.05 if lrs is None else lrs, n_layers, check_positive)
        self.sizes, self.lrs, self.dtype = sizes, lrs, dtype
        gen = torch.Generator().manual_seed(seed)
        self.weights, self.biases = [], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / np.sqrt(n_in)
            self.weights.append(((torch.rand(n_out, n_in, generator=gen, dtype=dtype) * 2 - 1) * bound).to(self.device))
            self.biases.append(((torch.rand(n_out, generator=gen, dtype=dtype) * 2 - 1) * bound).to(self.device))
        # With a cross-entropy readout, the last layer is outside the dynamics.
        self.readout = (self.weights.pop(), self.biases.pop()) if loss == "ce" else None
        self._sign_gen = np.random.default_rng(seed)
        self.mismatch = mismatch

    @property
    def mismatch(self) -> Optional[ChipMismatch]:
        """The chip the network runs on (``None``: ideal). Settable, e.g. to move trained weights onto a chip."""
        return self._mismatch

    @mismatch.setter
    def mismatch(self, mismatch: Optional[ChipMismatch]) -> None:
        self._mismatch = as_mismatch(mismatch, [self.sizes[0], *self.state_sizes], "the network's dynamics")
        if self._mismatch is None:
            self._chip = None
        else:
            t = lambda arrays: [torch.tensor(np.array(a), dtype=self.dtype, device=self.device)  # noqa: E731
                                for a in arrays]
            self._chip = (t(mismatch.conductances), t(mismatch.gains), t(mismatch.offsets))

    def dynamics_weights(self, weights: Optional[Sequence] = None) -> list:
        """The matrices the dynamics use: the programmed ``weights`` (default :attr:`weights`) times the chip's
        conductance factors, or the weights themselves (the same objects) without mismatch."""
        weights = self.weights if weights is None else weights
        if self._chip is None:
            return weights
        return [w * g.to(w.dtype) for w, g in zip(weights, self._chip[0])]

    def neuron_mismatch(self, dtype=None) -> dict:
        """``neuron_gains`` / ``neuron_offsets`` for the phase functions of :mod:`lavaplast.core.ep` (empty
        without mismatch); ``dtype``: convert them (e.g. to complex for holomorphic EP)."""
        if self._chip is None:
            return {}
        cast = (lambda a: a) if dtype is None else (lambda a: a.to(dtype))  # noqa: E731
        return dict(neuron_gains=[cast(g) for g in self._chip[1]], neuron_offsets=[cast(o) for o in self._chip[2]])

    @property
    def is_binary(self) -> bool:
        """True for networks with binary synapses (:class:`BinaryEPNetwork`)."""
        return False

    def set_parameters(self, weights: Sequence, biases: Sequence) -> None:
        """Replace the weights and biases of the dynamics (layer order), e.g. with trained ones.

        Each array must have the shape of the one it replaces and be finite;
        they are stored as tensors of the network's dtype.
        """
        self.weights = self._replace("weights", self.weights, weights)
        self.biases = self._replace("biases", self.biases, biases)

    def _replace(self, what: str, old: list, new: Sequence) -> list:
        new = list(new)
        if len(new) != len(old):
            raise ValueError(f"{what} must hold {len(old)} arrays, got {len(new)}")
        out = []
        for n, (o, v) in enumerate(zip(old, new)):
            v = check_finite_array(f"{what}[{n}]", v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v,
                                   tuple(o.shape))
            out.append(torch.tensor(v, dtype=self.dtype, device=self.device))
        return out

    @property
    def state_sizes(self) -> list[int]:
        """Sizes of the layers that take part in the dynamics."""
        return self.sizes[1:] if self.readout is None else self.sizes[1:-1]

    def zero_state(self, batch: int) -> list:
        return [torch.zeros(batch, n, dtype=self.dtype, device=self.device) for n in self.state_sizes]

    def output(self, s: list):
        """Class scores from the states: the top layer (MSE) or the readout's probabilities (CE)."""
        return s[-1] if self.readout is None else softmax_readout(s[-1], self.readout)

    def _inputs(self, x, y=None):
        x = torch.as_tensor(x, dtype=self.dtype, device=self.device).flatten(1)
        if x.shape[1] != self.sizes[0]:
            raise ValueError(f"inputs must have {self.sizes[0]} features, got shape {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            check_finite_array("inputs", x.cpu().numpy())
        if y is None:
            return x, None
        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        if np.ndim(y) == 1:  # class labels -> one-hot targets
            labels = check_labels("labels", y, len(x), self.sizes[-1])
            return x, torch.nn.functional.one_hot(torch.from_numpy(labels), self.sizes[-1]).to(self.device,
                                                                                                 self.dtype)
        if np.shape(y) != (x.shape[0], self.sizes[-1]):
            raise ValueError(f"targets must have shape ({x.shape[0]}, {self.sizes[-1]}), got {tuple(np.shape(y))}")
        return x, torch.as_tensor(check_finite_array("targets", y), dtype=self.dtype, device=self.device)

    @torch.no_grad()
    def free(self, x) -> list:
        """The free equilibrium (``T1`` steps from zero)."""
        x, _ = self._inputs(x)
        return free_phase(x, self.zero_state(len(x)), self.dynamics_weights(), self.biases, self.T1,
                          self.activation, **self.neuron_mismatch())

    @torch.no_grad()
    def predict(self, x) -> np.ndarray:
        """Class predictions: the most active output unit at the free equilibrium."""
        return self.output(self.free(x)).argmax(1).cpu().numpy()

    @torch.no_grad()
    def gradient_estimate(self, x, y) -> list:
        """EP's estimate of ``-dL/dtheta`` on a batch, as ``[(dW_n, db_n), ...]``."""
        x, y = self._inputs(x, y)
        check_layers(x, self.zero_state(len(x)), self.weights, self.biases)
        weights, chip = self.dynamics_weights(), self.neuron_mismatch()
        s_free = free_phase(x, self.zero_state(len(x)), weights, self.biases, self.T1, self.activation, **chip)
        if self.nudging == "holomorphic":
            return self._holomorphic(x, y, s_free)
        beta = self.beta
        if self.nudging == "random-sign" and self._sign_gen.random() < 0.5:
            beta = -beta
        s_pos = nudged_phase(x, s_free, weights, self.biases, self.T2, beta, y, self.readout, self.activation,
                             **chip)
        if self.nudging == "symmetric":
            s_neg = nudged_phase(x, s_free, weights, self.biases, self.T2, -beta, y, self.readout,
                                 self.activation, **chip)
            updates = ep_update(x, s_pos, s_neg, beta, -beta)
        else:
            updates = ep_update(x, s_pos, s_free, beta, 0.0)
        if self.readout is not None:
            updates.append(readout_update(s_free[-1], y, self.readout))
        return updates

    def _holomorphic(self, x, y, s_free) -> list:
        cdtype = torch.complex128 if self.dtype == torch.float64 else torch.complex64
        c = lambda t: t.to(cdtype)  # noqa: E731
        xc, yc = c(x), c(y)
        weights, biases = [c(w) for w in self.dynamics_weights()], [c(b) for b in self.biases]
        chip = self.neuron_mismatch(cdtype)
        betas = [abs(self.beta) * complex(np.exp(2j * np.pi * k / self.n_nudges)) for k in range(self.n_nudges)]
        nudged = [nudged_phase(xc, [c(s) for s in s_free], weights, biases, self.T2, beta_k, yc,
                               activation=self.activation, **chip) for beta_k in betas]
        return [(w.to(self.dtype), b.to(self.dtype)) for w, b in holomorphic_update(xc, nudged, betas)]

    def parameters(self) -> list:
        """``[(W, b), ...]`` in layer order, the readout last (as gradient_estimate returns them)."""
        pairs = list(zip(self.weights, self.biases))
        return pairs + ([self.readout] if self.readout is not None else [])

    @torch.no_grad()
    def train_batch(self, x, y) -> None:
        """One EP step of SGD on a batch (labels or one-hot targets)."""
        for (dw, db), (w, b), lr in zip(self.gradient_estimate(x, y), self.parameters(), self.lrs):
            w.add_(dw, alpha=lr)
            b.add_(db, alpha=lr)

    def loss(self, x, y) -> float:
        """The training loss at the free equilibrium, batch mean."""
        x, y = self._inputs(x, y)
        return float(_loss(self.free(x), y, self.readout))


def _loss(s: list, y, readout=None):
    """MSE on the top layer, or the cross-entropy of the readout ``(W_out, b_out)``; batch mean."""
    if readout is None:
        return 0.5 * ((s[-1] - y) ** 2).sum(1).mean()
    w, b = readout
    return torch.nn.functional.cross_entropy(s[-1] @ w.T + b, y.argmax(1))


def bptt_gradient(net: EPNetwork, x, y, T: Optional[int] = None) -> list:
    """``-dL/dtheta`` by backpropagation through ``T`` (default ``T1``) steps of the free dynamics.

    Autograd through the unrolled dynamics from the zero state, with the same
    weights and data; the reference EP's estimate is checked against. On a
    mismatched chip (``net.mismatch``) the dynamics are the chip's and the
    gradient is taken with respect to the *programmed* weights, which reach
    the dynamics through the conductance factors ``G``: divide by ``G`` for
    the gradient with respect to the effective weights ``G * W``.
    """
    T = check_steps(net.T1 if T is None else T)
    x, y = net._inputs(x, y)
    params = [(w.clone().requires_grad_(True), b.clone().requires_grad_(True)) for w, b in net.parameters()]
    n_dyn = len(net.weights)
    weights, biases = [w for w, _ in params[:n_dyn]], [b for _, b in params[:n_dyn]]
    s = net.zero_state(len(x))
    effective, chip = net.dynamics_weights(weights), net.neuron_mismatch()
    for _ in range(T):
        s = ep_step(x, s, effective, biases, activation=net.activation, **chip)
    loss = _loss(s, y, params[-1] if net.readout is not None else None)
    flat = [t for pair in params for t in pair]
    grads = torch.autograd.grad(loss, flat)
    return [(-grads[2 * i], -grads[2 * i + 1]) for i in range(len(params))]


class BinaryEPNetwork(EPNetwork):
    """EP with binary synapses whose hidden weights consolidate (docs/algorithms.md, section 4).

    The dynamics use ``W_n = gain_n * sign(W_h,n)`` with ``gain_n =
    1/sqrt(fan_in)``; EP's estimate of the gradient with respect to those
    binary weights drives the hidden weights through the metaplastic Adam rule
    of :mod:`lavaplast.core` (strength ``meta``, one value or one per layer),
    the same rule as the metaplastic BNN. Biases learn by plain SGD (``lrs``).
    :meth:`reset_optimizer` clears Adam's moments (at task boundaries).
    """

    def __init__(self, sizes: Sequence[int], *, meta=0.0, lr: float = 0.005, init_scale: float = 0.05,
                 **kwargs):
        if kwargs.get("loss", "mse") != "mse":
            raise ValueError("BinaryEPNetwork supports loss='mse' only")
        super().__init__(sizes, **kwargs)
        n_layers = len(self.sizes) - 1
        self.meta = per_layer("meta", meta, n_layers)
        self.lr = check_adam("", lr=lr)["lr"]
        init_scale = check_positive("init_scale", init_scale)
        gen = torch.Generator().manual_seed(self.seed + 1)
        self.hidden = [((torch.rand(w.shape, generator=gen, dtype=self.dtype) * 2 - 1) * init_scale).to(self.device)
                       for w in self.weights]
        self.gains = [1.0 / np.sqrt(n_in) for n_in in self.sizes[:-1]]
        self.refresh_weights()
        self.reset_optimizer()

    @property
    def is_binary(self) -> bool:
        return True

    def refresh_weights(self) -> None:
        """Recompute the binary weights ``gain * sign(W_h)`` from the hidden weights."""
        self.weights = [binarize(h) * g for h, g in zip(self.hidden, self.gains)]

    def set_hidden(self, hidden: Sequence) -> None:
        """Replace the hidden weights (layer order, finite, same shapes) and refresh the binary weights."""
        self.hidden = self._replace("hidden", self.hidden, hidden)
        self.refresh_weights()

    def reset_optimizer(self) -> None:
        self._adam = [AdamMoments(h) for h in self.hidden]

    @torch.no_grad()
    def train_batch(self, x, y) -> None:
        for n, ((dw, db), b, lr) in enumerate(zip(self.gradient_estimate(x, y), self.biases, self.lrs)):
            # dw is -dL/dW_binary; the hidden weight takes that gradient as is (straight through).
            self._adam[n].step_(self.hidden[n], -dw, lr=self.lr, meta=self.meta[n])
            b.add_(db, alpha=lr)
        self.refresh_weights()
