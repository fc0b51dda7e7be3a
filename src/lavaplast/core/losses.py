"""Output losses and their gradients, written once.

Shared by the local-learning output error (:mod:`lavaplast.core.local_learning`)
and the nudge of equilibrium propagation (:mod:`lavaplast.core.ep`). Arrays
are batch first, ``(batch, n)``; numpy arrays or torch tensors.
"""

from __future__ import annotations

from array_api_compat import array_namespace


def softmax(z):
    """Row-wise ``exp(z) / sum(exp(z))``, shifted by the row maximum so large logits cannot overflow."""
    xp = array_namespace(z)
    e = xp.exp(z - xp.max(z, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


def mse_error(output, target):
    """``dL/doutput = output - target`` of ``L = 1/2 ||output - target||^2``."""
    return output - target


def ce_error(logits, target):
    """``dL/dlogits = softmax(logits) - target`` of the cross-entropy of a softmax."""
    return softmax(logits) - target
