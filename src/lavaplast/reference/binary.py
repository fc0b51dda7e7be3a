"""Binary layers with hidden weights and straight-through gradients."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from typing import Optional

import numpy as np

from lavaplast.core import DeviceFaults, binarize, check_choice, check_nonnegative, check_positive, ternarize

QUANTIZERS = ("binary", "ternary")


class _SignSTE(torch.autograd.Function):
    """sign(x) forward (sign(0) = +1); gradient passed where |x| <= 1."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return binarize(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * (x.abs() <= 1).to(grad_out.dtype)


class _BinarizeWeight(torch.autograd.Function):
    """sign(W_h) forward; the gradient w.r.t. the binary weight goes to W_h as is."""

    @staticmethod
    def forward(ctx, hidden):
        return binarize(hidden)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out


class _TernarizeWeight(torch.autograd.Function):
    """Ternary weights forward; the gradient w.r.t. them goes to W_h as is."""

    @staticmethod
    def forward(ctx, hidden, threshold):
        return ternarize(hidden, threshold)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, None


def binary_weight_ste(hidden: torch.Tensor) -> torch.Tensor:
    """Binary weights ``sign(W_h)`` (sign(0) = +1) whose gradient goes to the hidden weights ``W_h`` as is."""
    return _BinarizeWeight.apply(hidden)


def ternary_weight_ste(hidden: torch.Tensor, threshold: float) -> torch.Tensor:
    """Ternary weights (``sign(W_h)`` where ``|W_h| > threshold``, else 0) whose gradient goes to ``W_h`` as is."""
    return _TernarizeWeight.apply(hidden, threshold)


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """Binary activation: ``sign(x)`` with a straight-through gradient zeroed where |x| > 1."""
    return _SignSTE.apply(x)


class SignActivation(nn.Module):
    """Module form of :func:`sign_ste`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sign_ste(x)


class BinaryLinear(nn.Linear):
    """Linear layer that computes with ``sign(W_h)`` and learns ``W_h``.

    ``self.weight`` holds the hidden weights (never clipped: their magnitude is
    the consolidation); the forward pass uses their sign, and the gradient with
    respect to the binary weights is handed to the hidden weights unchanged.
    No bias by default, as in the paper.

    ``quantizer="ternary"`` computes with ``sign(W_h)`` where ``|W_h| >
    ternary_threshold`` and 0 elsewhere (a 2T2R cell read in its ternary
    regime), with the same straight-through gradient.

    ``faults`` (a :class:`lavaplast.core.DeviceFaults` of the layer's shape
    and kind, or ``None``) makes every forward pass read the quantized
    weights through the device read model: in training this is error-aware
    training (the gradient still goes to the hidden weights as is), in
    testing a faulty chip. Set it with :meth:`set_faults`.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False, init_scale: float = 0.05,
                 quantizer: str = "binary", ternary_threshold: float = 0.05):
        self.init_scale = check_positive("BinaryLinear: init_scale", init_scale)
        self.quantizer = check_choice("BinaryLinear: quantizer", quantizer, QUANTIZERS)
        self.ternary_threshold = check_nonnegative("BinaryLinear: ternary_threshold", ternary_threshold)
        self.faults: Optional[DeviceFaults] = None
        super().__init__(in_features, out_features, bias=bias)

    def set_faults(self, faults: Optional[DeviceFaults]) -> None:
        """Read the weights through ``faults`` from now on (``None``: ideal reads)."""
        if faults is not None:
            if faults.shape != tuple(self.weight.shape):
                raise ValueError(f"faults are drawn for an array of shape {faults.shape}, the layer's weights "
                                 f"have shape {tuple(self.weight.shape)}")
            if faults.kind != self.quantizer:
                raise ValueError(f"a {self.quantizer} layer needs {self.quantizer} device faults, got {faults.kind!r}")
        self.faults = faults

    def reset_parameters(self) -> None:
        # The paper initialises hidden weights uniformly in (-0.05, 0.05).
        nn.init.uniform_(self.weight, -self.init_scale, self.init_scale)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def binary_weight(self) -> torch.Tensor:
        """The stored (ideal) effective weights, ``sign(W_h)`` or ternary, detached."""
        w = self.weight.detach()
        return binarize(w) if self.quantizer == "binary" else ternarize(w, self.ternary_threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.quantizer == "binary":
            w = binary_weight_ste(self.weight)
        else:
            w = ternary_weight_ste(self.weight, self.ternary_threshold)
        if self.faults is not None and self.faults.active:
            read = torch.from_numpy(self.faults.read(w.detach().cpu().numpy().astype(np.float64)))
            # The misread weights forward, the straight-through gradient backward.
            w = w + (read.to(w) - w).detach()
        return F.linear(x, w, self.bias)
