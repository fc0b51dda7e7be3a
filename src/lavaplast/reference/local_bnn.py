"""PyTorch twin of the on-chip binary MLP trained by local rules.

The network the Lava graph of :mod:`lavaplast.graph.binary_network` runs:
binary weights ``sign(W_h)``, sign neurons ``sign(gain * a + bias)`` in the
hidden layers, an output population with logits ``gain * a + bias`` and
error ``softmax(logits) - target``. Learning is local: the output layer
learns from that error, hidden layers from fixed random projections of it
(direct feedback alignment) gated by the sign's straight-through derivative,
and every hidden weight moves by the metaplastic Adam rule. All the math
comes from :mod:`lavaplast.core`, shared with the Lava models.

On a chip with device mismatch (:class:`~lavaplast.core.mismatch.ChipMismatch`,
``mismatch=``) every neuron of weight layer ``l`` computes from its drive
``g * (gain * a + bias) + o`` instead of ``gain * a + bias`` (``g``, ``o``:
that neuron's gain and offset deviation) and every synapse conducts
``G_ij * q(W_h)_ij``. The learning rule is unchanged: the chip learns from
its own activity (its own pre-activations gate the feedback, its own
logits give the error).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch

from lavaplast.core import (
    AdamMoments,
    LOSSES,
    binarize,
    check_adam,
    check_choice,
    check_finite_array,
    check_nonnegative,
    check_positive,
    check_sizes,
    feedback_error,
    fold_batchnorm,
    local_gradient,
    neuron_drive,
    output_error,
    per_layer,
    sign_neuron,
    ternarize,
    ternary_matmul,
)
from lavaplast.core.mismatch import ChipMismatch, as_mismatch


@dataclass
class LocalMLPState:
    """Everything that defines the network, as numpy arrays (backend-free).

    ``hidden[l]`` is layer l's hidden-weight matrix ``(n_out, n_in)``,
    ``feedback[l]`` the fixed DFA matrix ``(n_l, n_classes)`` of hidden layer
    l, ``gain[l]``/``bias[l]`` the neuron parameters of layer l, ``meta[l]``
    its metaplasticity (one value is broadcast to every layer). Everything
    is validated on construction: shapes chain, arrays are finite, and the
    learning rule's settings are those :func:`lavaplast.core.check_adam`
    accepts. ``quantizer`` is ``"binary"`` (``sign(W_h)``) or ``"ternary"``
    (``sign(W_h)`` where ``|W_h| > ternary_threshold``, else 0).
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
    quantizer: str = "binary"
    ternary_threshold: float = 0.05

    def __post_init__(self):
        if not isinstance(self.hidden, (list, tuple)) or len(self.hidden) == 0:
            raise ValueError("hidden must be a non-empty list of (n_out, n_in) hidden-weight matrices")
        self.hidden = [check_finite_array(f"hidden[{l}]", w) for l, w in enumerate(self.hidden)]
        for l, w in enumerate(self.hidden):
            if w.ndim != 2 or 0 in w.shape:
                raise ValueError(f"hidden[{l}] must be a non-empty 2-D array (n_out, n_in), got shape {w.shape}")
            if l and w.shape[1] != self.hidden[l - 1].shape[0]:
                raise ValueError(f"hidden[{l}] has {w.shape[1]} inputs but layer {l - 1} has "
                                 f"{self.hidden[l - 1].shape[0]} outputs")
        n_layers, sizes = len(self.hidden), self.sizes
        for name in ("gain", "bias"):
            values = list(getattr(self, name))
            if len(values) != n_layers:
                raise ValueError(f"{name} has {len(values)} arrays but the network has {n_layers} weight layers")
            setattr(self, name, [check_finite_array(f"{name}[{l}]", v, (sizes[l + 1],))
                                 for l, v in enumerate(values)])
        # A deployed network has no feedback (it does not learn locally).
        if len(self.feedback) not in (0, n_layers - 1):
            raise ValueError(f"feedback has {len(self.feedback)} matrices; expected one per hidden layer "
                             f"({n_layers - 1}) or none")
        self.feedback = [check_finite_array(f"feedback[{l}]", f, (sizes[l + 1], sizes[-1]))
                         for l, f in enumerate(self.feedback)]
        self.meta = per_layer("meta", self.meta, n_layers)
        rule = check_adam("", lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay)
        self.lr, self.betas, self.eps, self.weight_decay = rule["lr"], rule["betas"], rule["eps"], rule["weight_decay"]
        self.loss = check_choice("loss", self.loss, LOSSES)
        self.quantizer = check_choice("quantizer", self.quantizer, ("binary", "ternary"))
        self.ternary_threshold = check_nonnegative("ternary_threshold", self.ternary_threshold)

    def quantize(self, w):
        """The synaptic weights of hidden weights ``w`` (numpy array or tensor) under this state's quantizer."""
        return binarize(w) if self.quantizer == "binary" else ternarize(w, self.ternary_threshold)

    @property
    def sizes(self) -> list[int]:
        return [self.hidden[0].shape[1]] + [w.shape[0] for w in self.hidden]

    def copy(self) -> "LocalMLPState":
        return LocalMLPState(
            hidden=[w.copy() for w in self.hidden], feedback=[f.copy() for f in self.feedback],
            gain=[g.copy() for g in self.gain], bias=[b.copy() for b in self.bias], meta=list(self.meta),
            lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay, loss=self.loss,
            info=dict(self.info), quantizer=self.quantizer, ternary_threshold=self.ternary_threshold,
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
    quantizer: str = "binary",
    ternary_threshold: float = 0.05,
) -> LocalMLPState:
    """A fresh network: hidden weights U(-init_scale, init_scale), +-1 feedback,
    ``gain = 1/sqrt(fan_in)`` so pre-activations stay O(1) without BatchNorm.

    ``meta`` is one value or one per weight layer; ``lr``, ``weight_decay``,
    ``meta`` are checked by :func:`lavaplast.core.check_adam` (via
    :class:`LocalMLPState`)."""
    sizes = check_sizes("sizes", sizes)
    init_scale = check_positive("init_scale", init_scale)
    rng = np.random.default_rng(seed)
    pairs = list(zip(sizes[:-1], sizes[1:]))
    hidden = [rng.uniform(-init_scale, init_scale, size=(o, i)) for i, o in pairs]
    feedback = [rng.choice([-1.0, 1.0], size=(o, sizes[-1])) for _, o in pairs[:-1]]
    gain = [np.full(o, 1.0 / np.sqrt(i)) for i, o in pairs]
    bias = [np.zeros(o) for _, o in pairs]
    return LocalMLPState(hidden, feedback, gain, bias, meta, lr=lr, weight_decay=weight_decay, loss=loss,
                         info={"seed": seed, "init_scale": init_scale}, quantizer=quantizer,
                         ternary_threshold=ternary_threshold)


def chip_neurons(gain, bias, mismatch: Optional[ChipMismatch], layer: int) -> tuple[np.ndarray, np.ndarray]:
    """``(gain, bias)`` of weight layer ``layer``'s (0-based) neurons as the chip ``mismatch`` realises them.

    A neuron with gain deviation ``g`` and offset ``o`` computes from
    ``g * (gain * a + bias) + o = (g * gain) * a + (g * bias + o)``, so the
    deviations fold into the neuron's own gain and bias arrays. The twin and
    the Lava graph both take their neurons from here, so they see the same
    chip by construction, down to the last bit. ``mismatch`` ``None``, or
    without gain and offset spreads: the arrays unchanged.
    """
    gain, bias = np.asarray(gain, dtype=np.float64), np.asarray(bias, dtype=np.float64)
    if mismatch is None or (mismatch.sigma_gain == 0 and mismatch.sigma_offset == 0):
        return gain, bias
    g, o = mismatch.gains[layer], mismatch.offsets[layer]
    return g * gain, g * bias + o


def chip_conductances(mismatch: Optional[ChipMismatch], n_layers: int) -> list:
    """Per weight layer, the conductance factors ``G`` of the chip ``mismatch``, or ``None`` where every factor
    is exactly 1 (no mismatch, or no synapse spread): those synapses keep the exact ternary sums."""
    if mismatch is None or mismatch.sigma_synapse == 0:
        return [None] * n_layers
    return [np.array(g) for g in mismatch.conductances]


def conducted_sums(x: np.ndarray, q: np.ndarray, conductance: Optional[np.ndarray]) -> np.ndarray:
    """Synaptic sums ``x @ (conductance * q)^T`` of inputs ``x`` (B, n_in) through quantized weights ``q``.

    ``conductance`` ``None``: :func:`lavaplast.core.ternary_matmul` (exact).
    Otherwise a plain float64 matrix product, computed exactly as
    ``BinaryDense`` computes it with a ``conductance`` (same operands, same
    layout), so the twin and the Lava graph get the same bits.
    """
    if conductance is None:
        return ternary_matmul(x, q)
    return np.asarray(x, dtype=np.float64) @ (conductance * q).T


class LocalBinaryMLP:
    """Trains a :class:`LocalMLPState` with the local rule in PyTorch (float64).

    ``train_batch`` does exactly what the Lava graph of
    :class:`~lavaplast.graph.binary_network.LavaBinaryMLP` does with one
    batch; ``reset_optimizer`` clears the Adam moments (the paper resets
    them at every task boundary, and every ``LavaBinaryMLP.train`` call
    starts from zero moments).

    With ``pipelined=False`` (the held schedule) every batch's forward pass
    uses the weights that all earlier batches left. With ``pipelined=True``
    it is the twin of the pipelined graph, where a new batch enters every
    step and the update from batch ``k`` is applied at step ``k + L + 1``
    (``L`` weight layers), while later batches are already on their way:
    weight layer ``l`` (1-based) sums batch ``k`` at step ``k + l``, after
    the updates from batches ``0 .. k - (L - l + 2)`` only. So layer ``l``
    runs batch ``k``'s forward pass with its binary weights as they were
    ``L - l + 1`` updates ago (the output layer one update behind, the first
    layer ``L``), or with those the run started from if there were fewer
    updates; errors, gates and layer inputs all come from that forward
    pass, and the update moves the current hidden weights. The pipeline
    starts empty at every ``reset_optimizer`` (as at every
    ``LavaBinaryMLP.train`` call): call it at the start of each run.

    ``mismatch`` (a :class:`~lavaplast.core.mismatch.ChipMismatch` drawn
    for ``state.sizes``, or ``None`` for ideal devices) runs the network on
    that chip (see the module docstring and :func:`chip_neurons`); the
    state keeps the programmed gains, biases and hidden weights.
    """

    def __init__(self, state: LocalMLPState, *, pipelined: bool = False, mismatch: Optional[ChipMismatch] = None):
        if not isinstance(state, LocalMLPState):
            raise ValueError(f"state must be a LocalMLPState, got {type(state).__name__}")
        self.state = state
        self.pipelined = bool(pipelined)
        self.mismatch = as_mismatch(mismatch, state.sizes, "the on-chip learner")
        t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
        self.hidden = [t(w) for w in state.hidden]
        self.feedback = [t(f) for f in state.feedback]
        neurons = [chip_neurons(g, b, self.mismatch, l) for l, (g, b) in enumerate(zip(state.gain, state.bias))]
        self.gain = [t(g) for g, _ in neurons]
        self.bias = [t(b) for _, b in neurons]
        self.conductance = chip_conductances(self.mismatch, len(state.hidden))
        self.reset_optimizer()

    def reset_optimizer(self) -> None:
        """Fresh Adam moments and, pipelined, an empty pipeline."""
        self._adam = [AdamMoments(w) for w in self.hidden]
        self._in_flight = None
        if self.pipelined:
            # Binary weights of layer l after each of the last L - l + 1 updates
            # (0-based l: the output layer keeps 2 versions, the first L + 1);
            # the oldest is the one batch k's forward pass uses.
            n = len(self.hidden)
            self._in_flight = [deque([self.state.quantize(w)], maxlen=n - l + 1) for l, w in enumerate(self.hidden)]

    def forward(self, x) -> tuple[list, list]:
        """Layer inputs ``h`` (h[0] = x) and pre-activations ``z``; ``z[-1]`` are the logits.

        ``x`` (B, n_in) must be finite. The synaptic sums are
        :func:`lavaplast.core.ternary_matmul`, as in the Lava graph, so a sum
        that is exactly 0 is 0 in both (with conductance mismatch:
        :func:`conducted_sums`). Uses the current weights.
        """
        return self._forward(x, [self.state.quantize(w) for w in self.hidden])

    def _forward(self, x, binary: list) -> tuple[list, list]:
        """:meth:`forward` with the binary weights ``binary`` (one per layer)."""
        x = check_finite_array("inputs", x.numpy() if isinstance(x, torch.Tensor) else x,
                               (None, self.state.sizes[0]))
        h, z = [torch.from_numpy(x)], []
        for l, q in enumerate(binary):
            a = torch.from_numpy(conducted_sums(h[-1].numpy(), q.numpy(), self.conductance[l]))
            z.append(neuron_drive(a, self.gain[l], self.bias[l]))
            if l < len(binary) - 1:
                h.append(sign_neuron(z[-1]))
        return h, z

    @torch.no_grad()
    def predict(self, x) -> np.ndarray:
        """Class predictions for inputs ``x`` (N, n_in)."""
        return self.forward(x)[1][-1].argmax(1).numpy()

    @torch.no_grad()
    def train_batch(self, x, target) -> None:
        """One local-learning step on a batch: ``x`` (B, n_in), one-hot ``target`` (B, n_classes).

        Pipelined, the forward pass uses the weights the pipelined graph
        uses for the batch (see the class docstring).
        """
        if self.pipelined:
            h, z = self._forward(x, [versions[0] for versions in self._in_flight])
        else:
            h, z = self.forward(x)
        target = check_finite_array("target", target.numpy() if isinstance(target, torch.Tensor) else target,
                                    (len(h[0]), self.state.sizes[-1]))
        err = output_error(z[-1], torch.from_numpy(target), self.state.loss)
        n = len(self.hidden)
        for l in range(n):
            third = err if l == n - 1 else feedback_error(err, self.feedback[l], z[l])
            grad = local_gradient(third, h[l])
            self._adam[l].step_(self.hidden[l], grad, lr=self.state.lr, betas=self.state.betas,
                                eps=self.state.eps, weight_decay=self.state.weight_decay, meta=self.state.meta[l])
            if self.pipelined:
                self._in_flight[l].append(self.state.quantize(self.hidden[l]))

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
                gain, bias = fold_batchnorm(*(t.detach().double().numpy() for t in (mean, var, gamma, beta)), bn.eps)
                gains.append(gain)
                biases.append(bias)
            else:
                gains.append(np.ones(n))
                biases.append(np.zeros(n))
            if h is not None:
                h = modules[i + 2](bn(a)) if i + 2 < len(modules) else None
    hidden = [layer.weight.detach().double().numpy().copy() for layer in linears]
    return LocalMLPState(hidden=hidden, feedback=[], gain=gains, bias=biases, meta=[0.0] * len(hidden),
                         info={"deployed_from": type(model).__name__}, quantizer=model.quantizer,
                         ternary_threshold=linears[0].ternary_threshold)
