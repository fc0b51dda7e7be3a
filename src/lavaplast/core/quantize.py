"""Weight quantizers shared by every backend.

The functions take numpy arrays or torch tensors and return the same kind.
"""

from __future__ import annotations

from array_api_compat import array_namespace


def binarize(w):
    """Sign of ``w`` with ``sign(0) = +1``, in the dtype of ``w``.

    ``numpy.sign`` and ``torch.sign`` map 0 to 0, which would leave a synapse
    with no effect; a binary synapse must always be +1 or -1.
    """
    xp = array_namespace(w)
    one = xp.ones_like(w)
    return xp.where(w >= 0, one, -one)


def ternarize(w, threshold: float = 0.05):
    """``sign(w)`` where ``|w| > threshold``, else 0 (ALGORITHMS.md section 4)."""
    if not threshold >= 0:
        raise ValueError(f"ternarize: threshold must be >= 0, got {threshold!r}")
    xp = array_namespace(w)
    one = xp.ones_like(w)
    zero = xp.zeros_like(w)
    return xp.where(w > threshold, one, xp.where(w < -threshold, -one, zero))
