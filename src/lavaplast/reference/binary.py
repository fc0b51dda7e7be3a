"""Binary layers with hidden weights and straight-through gradients."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lavaplast.core import binarize, check_positive


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


def binary_weight_ste(hidden: torch.Tensor) -> torch.Tensor:
    """Binary weights ``sign(W_h)`` (sign(0) = +1) whose gradient goes to the hidden weights ``W_h`` as is."""
    return _BinarizeWeight.apply(hidden)


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
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False, init_scale: float = 0.05):
        self.init_scale = check_positive("BinaryLinear: init_scale", init_scale)
        super().__init__(in_features, out_features, bias=bias)

    def reset_parameters(self) -> None:
        # The paper initialises hidden weights uniformly in (-0.05, 0.05).
        nn.init.uniform_(self.weight, -self.init_scale, self.init_scale)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def binary_weight(self) -> torch.Tensor:
        """The effective weights, ``sign(W_h)``, detached."""
        return binarize(self.weight.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, binary_weight_ste(self.weight), self.bias)
