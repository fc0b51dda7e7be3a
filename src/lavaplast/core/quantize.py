"""Weight quantizers shared by every backend.

The functions take numpy arrays or torch tensors and return the same kind.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace

from lavaplast.core.validate import check_nonnegative


def binarize(w, out=None):
    """Sign of ``w`` with ``sign(0) = +1``, in the dtype of ``w``.

    ``numpy.sign`` and ``torch.sign`` map 0 to 0, which would leave a synapse
    with no effect; a binary synapse must always be +1 or -1.

    ``out``, an array of the same kind and shape as ``w`` (a floating dtype),
    receives the result, which is returned: the same values without
    allocating (a model that re-binarizes its weights after every update
    reuses one buffer). ``out`` may be ``w`` itself.
    """
    xp = array_namespace(w)
    if out is None:
        one = xp.ones_like(w)
        return xp.where(w >= 0, one, -one)
    if tuple(out.shape) != tuple(w.shape):
        raise ValueError(f"binarize: out has shape {tuple(out.shape)}, expected {tuple(w.shape)}")
    # 1 where w >= 0 (NaN compares False, as in the allocating form), else 0;
    # then {0, 1} -> {-1, +1} in place.
    if isinstance(w, np.ndarray):
        np.greater_equal(w, 0, out=out)
    else:
        out[...] = w >= 0
    out *= 2
    out -= 1
    return out


def ternarize(w, threshold: float = 0.05):
    """``sign(w)`` where ``|w| > threshold``, else 0 (docs/algorithms.md, section 5)."""
    threshold = check_nonnegative("ternarize: threshold", threshold)
    xp = array_namespace(w)
    one = xp.ones_like(w)
    zero = xp.zeros_like(w)
    return xp.where(w > threshold, one, xp.where(w < -threshold, -one, zero))


_MAX_SLICES = 64


def ternary_matmul(x, q):
    """``x @ q.T`` for weights ``q`` in {-1, 0, +1}, exact up to one final rounding.

    A BLAS sum rounds after every addition in an order that depends on the
    library, the thread count and the batch shape, so a pre-activation that
    is exactly 0 can come out as ``+-1e-17`` and flip a sign neuron. Here
    each row of ``x`` is cut into slices of ``53 - bit_length(n_in)``
    significant bits on a grid set by the row's largest magnitude: a slice
    times ``+-1`` summed over ``n_in`` inputs never leaves float64's 53 bits,
    so every slice's sum is exact in any order, and the slice sums are added
    in a fixed order. Every backend and batch layout thus gets the same
    bits. Inputs from float32 data or sign neurons need one slice (a single
    matrix product); general float64 inputs two or three.

    ``x`` is ``(batch, n_in)`` or ``(n_in,)``, ``q`` ``(n_out, n_in)``, both
    numpy arrays (torch tensors are converted); returns a float64 numpy array
    ``(batch, n_out)`` or ``(n_out,)``.
    """
    x = np.asarray(x, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    rows = x.reshape(1, -1) if x.ndim == 1 else x
    bits = 53 - rows.shape[1].bit_length()
    top = np.abs(rows).max(axis=1, keepdims=True) if rows.size else np.zeros((len(rows), 1))
    unit = np.ldexp(1.0, np.frexp(top)[1] - bits)
    step = np.ldexp(1.0, -bits)
    rest = rows
    out = None
    for _ in range(_MAX_SLICES):
        part = np.rint(rest / unit) * unit
        total = part @ q.T
        out = total if out is None else out + total
        rest = rest - part
        if not rest.any():
            break
        unit = unit * step
    else:
        out = out + rest @ q.T
    return out.reshape(-1) if x.ndim == 1 else out
