"""Device mismatch of an analog chip: frozen per-neuron and per-synapse deviations, drawn once from a seed.

No two analog neurons or synapses fabricated from the same layout behave
alike. :class:`ChipMismatch` describes one chip of a layered network
``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` (``sizes[0]`` is the input, which
has no neurons):

- per-neuron **gain** ``g_i = exp(sigma_gain * z)``: lognormal, median 1,
  positive by construction (no clipping is ever needed);
- per-neuron **offset** ``o_i = sigma_offset * z``: additive, in the units of
  the neuron's state;
- per-synapse **conductance factor** ``G_ij = exp(sigma_synapse * z)``:
  lognormal, median 1, positive by construction. A synapse programmed to
  ``W_ij`` conducts ``G_ij W_ij``; the same device serves both directions of
  an EP synapse, so the effective matrix stays tied (symmetric).

with ``z`` independent standard normals. A neuron whose ideal response is
``sigma(d)`` to the drive ``d`` responds ``sigma(g d + o)`` (:func:`neuron_response`).

Each kind of deviation and each layer draws from its own stream
(``numpy.random.default_rng([seed, kind, layer])``), and the standard
normals do not depend on the sigmas: the same seed is the same chip, and
raising one sigma scales that chip's deviations without redrawing them or
changing the other kinds.

Why equilibrium propagation still computes the gradient of the mismatched
chip (docs/devices.md): with gains and offsets, the fixed point
``s = clip(g * (W s + b) + o, 0, 1)`` stationarises the energy
``E(s) = sum_i s_i^2 / (2 g_i) - Phi(s) - sum_i (o_i / g_i) s_i`` on the box
``[0, 1]``, whose derivatives with respect to ``W`` and ``b`` are those of
``-Phi``: EP's local contrast is unchanged and exact for the chip. A
conductance factor makes the contrast the gradient with respect to the
effective weight ``G W``; with respect to the programmed weight the gradient
is ``G`` times that, so the contrast, applied to the programmed weight, is a
descent direction (it changes the effective weight by ``G`` times the
descent step, a positive per-synapse learning rate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from lavaplast.core.validate import check_int, check_number, check_sizes

# Stream indices of the three kinds of deviation (the second entry of the seed sequence).
_GAIN, _OFFSET, _SYNAPSE = 0, 1, 2


def check_sigma(what: str, value) -> float:
    """A mismatch spread: a finite number >= 0 (0: that kind of deviation is absent)."""
    return check_number(what, value, low=0.0)


def neuron_response(drive, gain=None, offset=None):
    """The drive a mismatched neuron feeds its activation: ``gain * drive + offset``.

    ``gain`` and ``offset`` broadcast over the batch (shape ``(n,)``);
    ``None`` means the ideal neuron and returns ``drive`` itself, so an ideal
    network computes exactly what it did without mismatch. Works on numpy
    arrays and torch tensors.
    """
    if gain is not None:
        drive = drive * gain
    if offset is not None:
        drive = drive + offset
    return drive


@dataclass(frozen=True)
class ChipMismatch:
    """The frozen mismatch of one chip running a layered network of ``sizes``.

    ``sigma_gain``, ``sigma_offset``, ``sigma_synapse``: spreads (finite,
    >= 0) of the per-neuron log-gain, the per-neuron offset and the
    per-synapse log-conductance; ``seed``: which chip. After construction,
    :attr:`gains` and :attr:`offsets` hold one ``(sizes[n],)`` array per
    neuron layer ``n = 1 .. N`` and :attr:`conductances` one
    ``(sizes[n], sizes[n - 1])`` array per connection (float64, read-only).
    """

    sizes: Sequence[int]
    sigma_gain: float = 0.0
    sigma_offset: float = 0.0
    sigma_synapse: float = 0.0
    seed: int = 0
    gains: list = field(init=False, repr=False, compare=False)
    offsets: list = field(init=False, repr=False, compare=False)
    conductances: list = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen dataclass)
        set_("sizes", tuple(check_sizes("sizes", self.sizes)))
        for name in ("sigma_gain", "sigma_offset", "sigma_synapse"):
            set_(name, check_sigma(name, getattr(self, name)))
        set_("seed", check_int("seed", self.seed, 0))
        sizes = self.sizes
        set_("gains", [_frozen(np.exp(self.sigma_gain * self._normal(_GAIN, n, (sizes[n],))))
                       for n in range(1, len(sizes))])
        set_("offsets", [_frozen(self.sigma_offset * self._normal(_OFFSET, n, (sizes[n],)))
                         for n in range(1, len(sizes))])
        set_("conductances", [_frozen(np.exp(self.sigma_synapse * self._normal(_SYNAPSE, n, (sizes[n], sizes[n - 1]))))
                              for n in range(1, len(sizes))])

    def _normal(self, kind: int, layer: int, shape: tuple) -> np.ndarray:
        # One stream per (chip, kind, layer): the draws do not depend on the sigmas or on the other kinds.
        return np.random.default_rng([self.seed, kind, layer]).standard_normal(shape)

    @classmethod
    def ideal(cls, sizes: Sequence[int]) -> "ChipMismatch":
        """A chip without mismatch: gains 1, offsets 0, conductance factors 1."""
        return cls(sizes)

    @property
    def is_ideal(self) -> bool:
        """True when every sigma is 0 (the deviations are then exactly 1, 0 and 1)."""
        return self.sigma_gain == self.sigma_offset == self.sigma_synapse == 0.0

    @property
    def n_layers(self) -> int:
        """Number of neuron layers (and of connections)."""
        return len(self.sizes) - 1

    def check_sizes(self, sizes: Sequence[int], who: str = "the network") -> None:
        """Refuse a network whose layer sizes are not this chip's."""
        if tuple(int(s) for s in sizes) != self.sizes:
            raise ValueError(f"the mismatch was drawn for sizes {list(self.sizes)}, but {who} has sizes "
                             f"{[int(s) for s in sizes]}")

    def effective_weights(self, weights: Sequence) -> list:
        """``G * W`` per connection: what the chip conducts when programmed to ``weights``
        (numpy arrays or torch tensors; the factors are converted to the weights' type)."""
        if len(weights) != self.n_layers:
            raise ValueError(f"need {self.n_layers} weight matrices, got {len(weights)}")
        return [w * _like(g, w) for w, g in zip(weights, self.conductances)]

    def summary(self) -> dict:
        """The settings and the measured spread of the draws (for results files)."""
        def stats(arrays: list) -> dict:
            flat = np.concatenate([a.ravel() for a in arrays])
            return dict(mean=float(flat.mean()), std=float(flat.std()), min=float(flat.min()), max=float(flat.max()))

        return dict(sizes=list(self.sizes), sigma_gain=self.sigma_gain, sigma_offset=self.sigma_offset,
                    sigma_synapse=self.sigma_synapse, seed=self.seed, gain=stats(self.gains),
                    offset=stats(self.offsets), conductance=stats(self.conductances))


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _like(a: np.ndarray, ref):
    """``a`` as the array type of ``ref`` (a torch tensor of its dtype, or numpy)."""
    if type(ref).__module__.startswith("torch"):
        import torch

        return torch.as_tensor(np.array(a), dtype=ref.dtype)  # a copy: the draws are read-only
    return a


def as_mismatch(mismatch: Optional[ChipMismatch], sizes: Sequence[int], who: str = "the network"):
    """``None`` or a :class:`ChipMismatch` drawn for ``sizes``; anything else is a clear error."""
    if mismatch is None:
        return None
    if not isinstance(mismatch, ChipMismatch):
        raise ValueError(f"mismatch must be a ChipMismatch or None, got {type(mismatch).__name__}")
    mismatch.check_sizes(sizes, who)
    return mismatch
