"""The paper's binarized MLP, its full-precision twin, and BatchNorm helpers."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from lavaplast.core import DeviceFaults, check_choice, check_sizes
from lavaplast.reference.binary import QUANTIZERS, BinaryLinear, SignActivation

BATCHNORM_MODES = ("batch", "running", "none")


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    return check_sizes("layer sizes (input, ..., output)", sizes)


def _batchnorm(n: int, mode: str, affine: bool) -> nn.Module:
    if mode == "none":
        return nn.Identity()
    # "batch": batch statistics at train and test time, as in the 2023 version
    # of the paper's code (running statistics made permuted MNIST unstable).
    return nn.BatchNorm1d(n, affine=affine, track_running_stats=(mode == "running"))


class MLP(nn.Module):
    """Multi-layer perceptron: Linear -> BatchNorm -> activation per hidden layer.

    The output layer is Linear -> BatchNorm and returns logits. With
    ``binary=True`` (the paper's BNN, see :class:`BNN`) the linear layers are
    :class:`BinaryLinear` without bias and the activation is the sign with a
    straight-through gradient; with ``binary=False`` they are real-valued
    linear layers and the activation is ``activation`` ("relu" or "sign").
    Inputs are flattened, so image batches of shape (N, 28, 28) are accepted.

    ``quantizer="ternary"`` (binary networks) makes the weights ternary,
    ``sign(W_h)`` where ``|W_h| > ternary_threshold`` and 0 elsewhere; the
    activations stay binary. :meth:`set_read_faults` reads every weight
    layer through a device read model (error-aware training, faulty chips).
    """

    def __init__(
        self,
        sizes: Sequence[int] = (784, 1024, 1024, 10),
        *,
        binary: bool = True,
        batchnorm: str = "batch",
        bn_affine: bool = True,
        activation: str | None = None,
        init_scale: float = 0.05,
        quantizer: str = "binary",
        ternary_threshold: float = 0.05,
    ):
        super().__init__()
        self.sizes = _check_sizes(sizes)
        check_choice("batchnorm", batchnorm, BATCHNORM_MODES)
        self.quantizer = check_choice("quantizer", quantizer, QUANTIZERS)
        if not binary and quantizer != "binary":
            raise ValueError(f"quantizer={quantizer!r} needs binary=True (a full-precision network has no quantizer)")
        activation = check_choice("activation", activation or ("sign" if binary else "relu"), ("sign", "relu"))
        self.binary = binary
        layers: list[nn.Module] = []
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))
        for i, (n_in, n_out) in enumerate(pairs):
            if binary:
                layers.append(BinaryLinear(n_in, n_out, bias=False, init_scale=init_scale, quantizer=quantizer,
                                           ternary_threshold=ternary_threshold))
            else:
                layers.append(nn.Linear(n_in, n_out, bias=batchnorm == "none"))
            layers.append(_batchnorm(n_out, batchnorm, bn_affine))
            if i < len(pairs) - 1:
                layers.append(SignActivation() if activation == "sign" else nn.ReLU())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() > 2:
            x = x.flatten(1)
        if x.shape[1] != self.sizes[0]:
            raise ValueError(f"{type(self).__name__} expects {self.sizes[0]} input features, got shape {tuple(x.shape)}")
        return self.layers(x)

    def linear_layers(self) -> list[nn.Linear]:
        """The weight layers, input first."""
        return [m for m in self.layers if isinstance(m, nn.Linear)]

    def set_read_faults(self, ber: float = 0.0, *, frozen: bool = False, sigma: float = 0.0, seed: int = 0) -> None:
        """Read every weight layer through :class:`lavaplast.core.DeviceFaults` of this network's
        quantizer: bit error rate ``ber``, ``frozen`` per chip or drawn at every forward pass,
        conductance variability ``sigma``; layer ``k`` is array ``k`` of the chip ``seed``.
        ``ber=0`` and ``sigma=0`` restore ideal reads."""
        if not self.binary:
            raise ValueError("read faults need a binary or ternary network (binary=True)")
        for k, layer in enumerate(self.linear_layers()):
            faults = DeviceFaults(tuple(layer.weight.shape), ber=ber, kind=self.quantizer, frozen=frozen,
                                  sigma=sigma, seed=seed, array=k)
            layer.set_faults(faults if faults.active else None)


class BNN(MLP):
    """The paper's binarized network: binary weights, sign activations, BatchNorm."""

    def __init__(self, sizes: Sequence[int] = (784, 1024, 1024, 10), **kwargs):
        super().__init__(sizes, binary=True, **kwargs)


class FullPrecisionMLP(MLP):
    """Same layout as :class:`BNN` with real-valued weights and ReLU."""

    def __init__(self, sizes: Sequence[int] = (784, 1024, 1024, 10), **kwargs):
        kwargs.setdefault("activation", "relu")
        super().__init__(sizes, binary=False, **kwargs)


def batchnorm_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copy of every BatchNorm parameter and buffer of ``model``.

    Saved at the end of a task and restored when that task is tested, which
    is the paper's use of task identity at test time.
    """
    state = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            for key, value in module.state_dict().items():
                state[f"{name}.{key}"] = value.detach().clone()
    return state


def load_batchnorm_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Restore a state saved by :func:`batchnorm_state` (strict on names)."""
    own = batchnorm_state(model)
    if set(own) != set(state):
        raise ValueError(
            f"BatchNorm state does not fit the model: missing {sorted(set(own) - set(state))}, "
            f"unexpected {sorted(set(state) - set(own))}"
        )
    with torch.no_grad():
        modules = dict(model.named_modules())
        for key, value in state.items():
            module_name, _, attr = key.rpartition(".")
            getattr(modules[module_name], attr).copy_(value)
