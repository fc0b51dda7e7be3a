"""The metaplastic rule of Laborieux et al. (2021), written once.

Every backend (the PyTorch optimizer, the Lava process models) calls these
functions, so equivalence tests check wiring rather than two copies of the
math. All functions accept numpy arrays or torch tensors. Functions whose
name ends in ``_`` update their array arguments in place (the hot path of
training); the others return new arrays.

Notation (docs/algorithms.md, section 1): ``W_h`` hidden weight, ``m`` the
metaplasticity strength, ``f_meta(m, W_h) = 1 - tanh^2(m |W_h|)``.
"""

from __future__ import annotations

import math

from array_api_compat import array_namespace

from lavaplast.core.validate import check_meta


def _native(x):
    """numpy or torch, whichever owns ``x``: both accept ``out=`` for the
    element-wise functions used below, which the array API does not."""
    if type(x).__module__.startswith("torch"):
        import torch

        return torch
    import numpy

    return numpy


def _tanh_(lib, x):
    if lib.__name__ == "torch":
        # torch's CPU tanh is several times slower than its sigmoid;
        # tanh(x) = 2 sigmoid(2x) - 1.
        return x.mul_(2).sigmoid_().mul_(2).sub_(1)
    return lib.tanh(x, out=x)


def f_meta(meta: float, hidden):
    """Plasticity factor ``1 - tanh^2(meta * |hidden|)``, in (0, 1].

    1 for a fresh synapse (or ``meta = 0``); it falls toward 0 as the hidden
    weight grows, which makes consolidated synapses hard to flip.
    """
    meta = check_meta(meta)
    xp = array_namespace(hidden)
    t = xp.tanh(meta * xp.abs(hidden))
    return 1 - t * t


def metaplastic_update_(hidden, decrement, meta: float, work=None):
    """In place: ``hidden <- hidden - decrement``, with metaplastic attenuation.

    Where the step would shrink ``|hidden|`` (``sign(hidden) * decrement > 0``,
    i.e. push the binary weight toward a flip), the decrement is multiplied by
    ``f_meta(meta, hidden)``; steps that grow ``|hidden|`` pass unchanged.
    At ``hidden = 0`` the factor is 1 either way, so the convention
    ``sign(0) = +1`` needs no special case. ``work`` is an optional pair of
    scratch arrays shaped like ``hidden``: fresh megabyte-sized allocations
    cost as much as the arithmetic. Returns ``hidden``.
    """
    if meta == 0:
        hidden -= decrement
        return hidden
    lib = _native(hidden)
    factor, toward = work if work is not None else (lib.empty_like(hidden), lib.empty_like(hidden))
    # step = decrement * (1 - toward * tanh^2(meta |hidden|)), computed as
    # hidden += (toward * tanh^2 - 1) * decrement.
    lib.abs(hidden, out=factor)
    factor *= meta
    _tanh_(lib, factor)
    factor *= factor
    lib.multiply(hidden, decrement, out=toward)
    lib.greater(toward, 0, out=toward)
    factor *= toward
    factor -= 1
    factor *= decrement
    hidden += factor
    return hidden


def metaplastic_update(hidden, decrement, meta: float):
    """Functional form of :func:`metaplastic_update_`: returns a new array."""
    xp = array_namespace(hidden)
    return metaplastic_update_(xp.asarray(hidden, copy=True), decrement, meta)


def _scratch(lib, like, work, n: int):
    if work is not None:
        return work
    return tuple(lib.empty_like(like) for _ in range(n))


def adam_moments_(grad, exp_avg, exp_avg_sq, betas=(0.9, 0.999), work=None) -> None:
    """In place: advance Adam's first and second moments by one gradient.

    ``work``, if given, is one scratch array shaped like ``grad``.
    """
    b1, b2 = betas
    lib = _native(grad)
    (scratch,) = _scratch(lib, grad, work, 1)
    exp_avg *= b1
    lib.multiply(grad, 1 - b1, out=scratch)
    exp_avg += scratch
    exp_avg_sq *= b2
    lib.multiply(grad, grad, out=scratch)
    scratch *= 1 - b2
    exp_avg_sq += scratch


def adam_direction(exp_avg, exp_avg_sq, step: int, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, out=None):
    """Adam's decrement ``eta_t * m_t / (sqrt(v_t) + eps)`` after ``step`` updates.

    ``eta_t = lr * sqrt(1 - b2^t) / (1 - b1^t)`` as in the paper's optimizer
    (eps sits outside the bias correction, unlike ``torch.optim.Adam``).
    Written into ``out`` when given.
    """
    if step < 1:
        raise ValueError(f"adam_direction needs step >= 1, got {step}")
    lib = _native(exp_avg)
    b1, b2 = betas
    eta = lr * math.sqrt(1 - b2**step) / (1 - b1**step)
    (direction,) = _scratch(lib, exp_avg, None if out is None else (out,), 1)
    lib.sqrt(exp_avg_sq, out=direction)
    direction += eps
    lib.divide(exp_avg, direction, out=direction)
    direction *= eta
    return direction


def metaplastic_adam_step_(
    hidden,
    grad,
    exp_avg,
    exp_avg_sq,
    step: int,
    *,
    lr: float,
    betas=(0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    meta: float = 0.0,
    work=None,
) -> int:
    """In place: one step of metaplastic Adam on a hidden-weight array.

    ``grad`` is the loss gradient with respect to the binary weights (it is
    not modified); weight decay is added to it. ``exp_avg``, ``exp_avg_sq``
    are Adam's moments after ``step`` updates and are advanced in place. Only
    the step is attenuated; the moments are those of plain Adam. ``meta = 0``
    gives plain Adam in the paper's form. ``work``: optional three scratch
    arrays shaped like ``hidden``. Returns the new step count.
    """
    lib = _native(hidden)
    work = _scratch(lib, hidden, work, 3)
    if weight_decay:
        grad = grad + weight_decay * hidden
    adam_moments_(grad, exp_avg, exp_avg_sq, betas, work=work[:1])
    step += 1
    direction = adam_direction(exp_avg, exp_avg_sq, step, lr, betas, eps, out=work[0])
    metaplastic_update_(hidden, direction, meta, work=work[1:])
    return step


class AdamMoments:
    """Adam's state for one hidden-weight array: both moments and the step count.

    What a synapse population keeps between updates (the Lava models hold the
    same three quantities as Vars); :meth:`step_` applies one metaplastic
    Adam step with it. A fresh instance is a reset optimizer (the paper resets
    it at every task boundary). numpy arrays or torch tensors.
    """

    def __init__(self, like):
        lib = _native(like)
        self.exp_avg = lib.zeros_like(like)
        self.exp_avg_sq = lib.zeros_like(like)
        self.step = 0

    def step_(self, hidden, grad, **hyper):
        """In place: one :func:`metaplastic_adam_step_` of ``hidden`` by ``grad``
        (``hyper``: lr, betas, eps, weight_decay, meta). Returns ``hidden``."""
        self.step = metaplastic_adam_step_(hidden, grad, self.exp_avg, self.exp_avg_sq, self.step, **hyper)
        return hidden


def metaplastic_sgd_step_(hidden, grad, *, lr: float, meta: float = 0.0, weight_decay: float = 0.0):
    """In place: one metaplastic SGD step, ``hidden - lr * grad`` attenuated toward zero."""
    if weight_decay:
        grad = grad + weight_decay * hidden
    return metaplastic_update_(hidden, lr * grad, meta)
