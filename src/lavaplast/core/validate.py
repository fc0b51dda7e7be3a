"""Argument checks, one definition each, for every public entry point.

Every check either returns the value in a canonical form (a Python ``float``
or ``int``, a numpy array) or raises ``ValueError`` naming what was checked,
the bad value and what was expected. NaN and infinity are refused wherever
a finite number is expected: a comparison written ``x > 0`` lets ``inf``
through and a comparison written ``not x <= 0`` lets NaN through, so the
checks here test finiteness explicitly.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Optional, Sequence

import numpy as np


def _describe(low, high, low_open, high_open) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


def check_number(
    what: str,
    value,
    *,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float within the given bounds, else a ``ValueError``.

    ``low_open``/``high_open`` make a bound strict (``> low``, ``< high``).
    Booleans, strings, NaN and infinities are refused.
    """
    expected = "a finite number" + (f" {_describe(low, high, low_open, high_open)}" if (low, high) != (None, None)
                                     else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if not (isinstance(value, np.ndarray) and value.ndim == 0 and np.issubdtype(value.dtype, np.number)):
            raise ValueError(f"{what} must be {expected}, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{what} must be {expected}, got {value!r}")
    if low is not None and (x <= low if low_open else x < low):
        raise ValueError(f"{what} must be {expected}, got {value!r}")
    if high is not None and (x >= high if high_open else x > high):
        raise ValueError(f"{what} must be {expected}, got {value!r}")
    return x


def check_positive(what: str, value) -> float:
    """A finite number ``> 0``."""
    return check_number(what, value, low=0.0, low_open=True)


def check_nonnegative(what: str, value) -> float:
    """A finite number ``>= 0``."""
    return check_number(what, value, low=0.0)


def check_int(what: str, value, low: int = 1, high: Optional[int] = None) -> int:
    """``value`` as an int in ``low..high``; floats (even 2.0) and booleans are refused."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if ok and value >= low and (high is None or value <= high):
        return int(value)
    expected = f"an integer >= {low}" if high is None else f"an integer in {low}..{high}"
    raise ValueError(f"{what} must be {expected}, got {value!r}")


def check_optional_int(what: str, value, low: int = 1) -> Optional[int]:
    """``None`` or an integer ``>= low``."""
    if value is None:
        return None
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= low
    if not ok:
        raise ValueError(f"{what} must be None or an integer >= {low}, got {value!r}")
    return int(value)


def check_choice(what: str, value, choices: Sequence[str], who: str = "") -> str:
    """``value`` if it is one of ``choices``; ``who`` prefixes the message (``"BinaryDense: "``)."""
    if isinstance(value, str) and value in choices:
        return value
    raise ValueError(f"{who}unknown {what} {value!r}; expected one of {', '.join(map(str, choices))}")


def check_meta(meta, what: str = "meta") -> float:
    """The metaplasticity strength ``m``: a finite number >= 0."""
    return check_nonnegative(what, meta)


def check_betas(what: str, betas) -> tuple:
    """Adam's ``(beta1, beta2)``: two finite numbers in [0, 1)."""
    try:
        values = tuple(betas)
    except TypeError:
        raise ValueError(f"{what} must be two numbers in [0, 1), got {betas!r}") from None
    if len(values) != 2:
        raise ValueError(f"{what} must be two numbers in [0, 1), got {betas!r}")
    return tuple(check_number(f"{what}[{i}]", b, low=0.0, high=1.0, high_open=True) for i, b in enumerate(values))


def check_adam(who: str, *, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, meta=0.0) -> dict:
    """The hyper-parameters of the metaplastic Adam rule, validated together.

    ``eps`` must be > 0: inputs that never fire leave both moments at 0, and
    ``0 / (0 + eps)`` is NaN for ``eps = 0``. ``lr`` must be >= 0 (0 freezes
    the weights).
    """
    return dict(
        lr=check_nonnegative(f"{who}lr", lr),
        betas=check_betas(f"{who}betas", betas),
        eps=check_positive(f"{who}eps", eps),
        weight_decay=check_nonnegative(f"{who}weight_decay", weight_decay),
        meta=check_meta(meta, f"{who}meta"),
    )


def per_layer(what: str, value, n_layers: int, check: Callable = check_nonnegative) -> list:
    """One value per weight layer: a scalar (or a one-element list) is broadcast.

    ``check(name, value)`` validates each value (finite and >= 0 by default,
    the check of ``meta``); a broadcast value is named ``what``, one of a
    list ``what[i]``. Returns a list of ``n_layers`` checked values.
    """
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{what} must be a number or one number per layer, got {value!r}")
    if np.ndim(value) == 0:
        return [check(what, value)] * n_layers
    values = list(value)
    if len(values) == 1:
        return [check(what, values[0])] * n_layers
    if len(values) != n_layers:
        raise ValueError(f"{what} has {len(values)} values but the network has {n_layers} weight layers; "
                         f"give one value or one per layer")
    return [check(f"{what}[{i}]", v) for i, v in enumerate(values)]


_COUNTS = {1: "one", 2: "two"}


def check_sizes(what: str, sizes, min_len: int = 2) -> list:
    """Layer widths as a list of ints >= 1, at least ``min_len`` of them."""
    count = "one or more" if min_len == 1 else f"at least {_COUNTS.get(min_len, min_len)}"
    expected = f"a list of {count} positive integers"
    if isinstance(sizes, (str, bytes)) or np.ndim(sizes) != 1:
        raise ValueError(f"{what} must be {expected}, got {sizes!r}")
    values = list(sizes)
    ok = len(values) >= min_len and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
                                        for s in values)
    if not ok:
        raise ValueError(f"{what} must be {expected}, got {values!r}")
    return [int(s) for s in values]


def check_finite_array(what: str, array, shape: Optional[tuple] = None) -> np.ndarray:
    """``array`` as a float numpy array with no NaN or infinity (and ``shape``, if given;
    ``None`` in ``shape`` matches any size)."""
    try:
        x = np.asarray(array, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an array of numbers, got {type(array).__name__}") from None
    if shape is not None:
        ok = x.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, x.shape))
        if not ok:
            want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
            raise ValueError(f"{what} must have shape {want}, got {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{what} contains {int(bad.sum())} NaN or infinite values (first {x[first]} at index "
                         f"{first[0] if len(first) == 1 else first})")
    return x


def check_batch_order(order, batch: int, n_rows: int) -> np.ndarray:
    """The sequence of rows a learner takes its batches from: a non-empty 1-D integer array of indices in
    ``0..n_rows-1`` whose length is a multiple of ``batch`` (``None``: every row in turn)."""
    order = np.arange(n_rows) if order is None else np.asarray(order)
    if order.ndim != 1 or len(order) == 0 or len(order) % batch:
        raise ValueError(f"order must be a non-empty 1-D index array whose length is a multiple of "
                         f"batch={batch}, got length {len(order) if order.ndim else order.shape}")
    if order.dtype.kind not in "iu" or order.min() < 0 or order.max() >= n_rows:
        raise ValueError(f"order must hold integer row indices in 0..{n_rows - 1}")
    return order.astype(np.int64)


def check_labels(what: str, labels, n: int, n_classes: int) -> np.ndarray:
    """Class labels as an int64 array of shape ``(n,)`` with values in ``0..n_classes-1``.

    Float labels are accepted only when every value is a whole number
    (``3.0``); ``2.5`` or NaN is an error, never truncated.
    """
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"{what} must have shape ({n},), got {y.shape}")
    if y.dtype == bool or not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"{what} must be integer class labels in 0..{n_classes - 1}, got dtype {y.dtype}")
    if not np.issubdtype(y.dtype, np.integer):
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            i = int(np.argmin(whole))
            raise ValueError(f"{what} must be integer class labels in 0..{n_classes - 1}, "
                             f"got {y[i]!r} at index {i}")
    out = y.astype(np.int64)
    bad = (out < 0) | (out >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{what} must be integer class labels in 0..{n_classes - 1}, got {y[i]!r} at index {i}")
    return out


def check_device(device) -> str:
    """A torch device name the references can run on here: ``cpu``, ``cuda`` or ``cuda:N`` (a GPU that
    torch sees)."""
    import re

    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} needs a GPU, but torch sees none (torch {torch.__version__}, "
                             f"CUDA build {torch.version.cuda}); use --device cpu")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: torch sees {torch.cuda.device_count()} GPU(s)")
    return device
