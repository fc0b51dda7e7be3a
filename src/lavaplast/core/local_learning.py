"""Local learning signals for binary networks on chip, written once.

A layer's weight gradient is the outer product of a third factor (an error
per post-synaptic neuron) and the synapse's own input, averaged over the
batch. The output error comes from an error population comparing output and
target; hidden layers get it through fixed random feedback (direct feedback
alignment), gated by the straight-through derivative of the sign neuron.
All functions take numpy arrays or torch tensors, shapes ``(batch, n)``.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace

from lavaplast.core.losses import ce_error, mse_error
from lavaplast.core.quantize import binarize
from lavaplast.core.validate import check_choice, check_finite_array, check_positive

LOSSES = ("ce", "mse")


def neuron_drive(a, gain, bias):
    """Pre-activation ``gain * a + bias`` of a neuron (BatchNorm folded into gain, bias)."""
    return a * gain + bias


def fold_batchnorm(mean, var, gamma, beta, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """``(gain, bias)`` such that ``gain * a + bias == BatchNorm(a)`` in evaluation mode:
    ``gain = gamma / sqrt(var + eps)``, ``bias = beta - mean * gain`` (float64)."""
    mean, var, gamma, beta = (check_finite_array(name, v) for name, v in
                              (("mean", mean), ("var", var), ("gamma", gamma), ("beta", beta)))
    if np.any(var < 0):
        raise ValueError(f"fold_batchnorm: var must be >= 0, got a minimum of {var.min()!r}")
    eps = check_positive("fold_batchnorm: eps", eps)
    gain = gamma / np.sqrt(var + eps)
    return gain, beta - mean * gain


def sign_neuron(z):
    """The sign neuron's output, +1 where ``z >= 0`` else -1."""
    return binarize(z)


def output_error(logits, target, loss: str = "ce"):
    """dLoss/dlogits per sample: ``softmax(logits) - target`` (cross-entropy) or ``logits - target`` (MSE)."""
    check_choice("loss", loss, LOSSES)
    return mse_error(logits, target) if loss == "mse" else ce_error(logits, target)


def feedback_error(err, feedback, z):
    """Direct feedback alignment: ``(err @ feedback^T) * 1[|z| <= 1]``.

    ``err`` (batch, n_classes) is the broadcast output error, ``feedback``
    (n, n_classes) a fixed random matrix, ``z`` (batch, n) the neuron's
    pre-activation; the gate is the straight-through derivative of sign.
    """
    xp = array_namespace(z)
    return (err @ feedback.T) * xp.astype(xp.abs(z) <= 1, z.dtype)


def local_gradient(err, pre):
    """Weight gradient from local quantities: ``err^T @ pre / batch``, shape (n_out, n_in)."""
    return err.T @ pre / pre.shape[0]
