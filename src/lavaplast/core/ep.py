"""Equilibrium propagation for layered networks, written once (docs/algorithms.md, section 3).

Prototypical discrete-time setting: layers ``s_0 = x, s_1 .. s_N`` with
weights ``W_n`` (n_n, n_{n-1}) and biases ``b_n``, the primitive

    Phi(x, s) = sum_n s_n . (W_n s_{n-1} + b_n),

and the dynamics ``s <- sigma(dPhi/ds)`` with the hard sigmoid
``sigma = clip(., 0, 1)``: layer n receives ``W_n s_{n-1} + W_{n+1}^T s_{n+1}
+ b_n`` (one matrix serves both directions). The nudged phase adds
``-beta dL/ds_N`` to the output drive, with the MSE loss
``L = 1/2 ||s_N - y||^2`` or the cross-entropy of a softmax readout that
sits outside the dynamics (:func:`softmax_readout`). The local contrast of two equilibria estimates the
loss gradient; :func:`ep_update` returns the descent direction.

Arrays are batch first, ``(batch, n)``; numpy arrays or torch tensors.

On a mismatched chip (:mod:`lavaplast.core.mismatch`) the phases take the
effective weights and each layer's neuron gains and offsets; the local
contrast is unchanged (docs/devices.md).
"""

from __future__ import annotations

from typing import Sequence

from array_api_compat import array_namespace

from lavaplast.core.losses import ce_error, mse_error, softmax
from lavaplast.core.mismatch import neuron_response
from lavaplast.core.validate import check_int, check_number

NUDGING = ("symmetric", "one-sided", "random-sign", "holomorphic")


def hard_sigmoid(x):
    """``clip(x, 0, 1)``."""
    xp = array_namespace(x)
    return xp.clip(x, 0.0, 1.0)


def logistic(x):
    """``1 / (1 + exp(-x))``: analytic, so it also runs the complex dynamics of holomorphic EP."""
    xp = array_namespace(x)
    return 1.0 / (1.0 + xp.exp(-x))


ACTIVATIONS = {"hard": hard_sigmoid, "logistic": logistic}


def check_steps(T, what: str = "T") -> int:
    """``T`` as an int, or a clear error if it is not a positive integer."""
    try:
        return check_int(what, T, 1)
    except ValueError:
        raise ValueError(f"{what} must be a positive integer number of steps, got {T!r}") from None


def check_beta(beta, what: str = "beta") -> float:
    """``beta`` as a float, or a clear error if it is zero or not finite."""
    try:
        value = check_number(what, beta)
    except ValueError:
        value = 0.0
    if value == 0:
        raise ValueError(f"{what} must be a finite non-zero number, got {beta!r}")
    return value


def check_layers(x, s: Sequence, weights: Sequence, biases: Sequence) -> None:
    """Shapes must chain: ``W_n`` is (n_n, n_{n-1}), ``b_n`` (n_n,), ``s_n`` (batch, n_n)."""
    if not (len(s) == len(weights) == len(biases)) or len(weights) == 0:
        raise ValueError(f"need one state, weight and bias per layer, got {len(s)}, {len(weights)}, {len(biases)}")
    prev = tuple(x.shape)
    if len(prev) != 2:
        raise ValueError(f"x must have shape (batch, n_in), got {prev}")
    for n, (sn, w, b) in enumerate(zip(s, weights, biases), start=1):
        if tuple(w.shape) != (w.shape[0], prev[1]) or len(w.shape) != 2:
            raise ValueError(f"W_{n} must have shape (n_{n}, {prev[1]}), got {tuple(w.shape)}")
        if tuple(b.shape) != (w.shape[0],):
            raise ValueError(f"b_{n} must have shape ({w.shape[0]},), got {tuple(b.shape)}")
        if tuple(sn.shape) != (prev[0], w.shape[0]):
            raise ValueError(f"s_{n} must have shape ({prev[0]}, {w.shape[0]}), got {tuple(sn.shape)}")
        prev = tuple(sn.shape)


def phi(x, s: Sequence, weights: Sequence, biases: Sequence):
    """The primitive ``Phi`` per sample, shape (batch,)."""
    xp = array_namespace(x)
    total = 0.0
    below = x
    for sn, w, b in zip(s, weights, biases):
        total = total + xp.sum(sn * (below @ w.T + b), axis=1)
        below = sn
    return total


def input_drive(x, weights: Sequence, biases: Sequence):
    """``W_1 x + b_1``: constant while the input is, so phases compute it once."""
    return x @ weights[0].T + biases[0]


def softmax_readout(s_top, readout):
    """Class probabilities of the readout ``(W_out, b_out)`` that sits outside the dynamics."""
    w, b = readout
    return softmax(s_top @ w.T + b)


def readout_update(s_top, target, readout) -> tuple:
    """Descent direction ``-dL/d(W_out, b_out)`` of the cross-entropy readout, batch-averaged."""
    xp = array_namespace(s_top)
    w, b = readout
    err = ce_error(s_top @ w.T + b, target)
    return -(err.T @ s_top) / s_top.shape[0], -xp.sum(err, axis=0) / s_top.shape[0]


def drives(x, s: Sequence, weights: Sequence, biases: Sequence, beta: float = 0.0, target=None,
           x_drive=None, readout=None) -> list:
    """``dPhi_beta/ds_n`` for every layer (bottom-up and top-down input, plus the nudge).

    ``x_drive``: :func:`input_drive` if already computed. With ``readout``
    ``(W_out, b_out)``, the loss is the cross-entropy of a softmax readout of
    the top layer (outside the dynamics) and the nudge is
    ``beta * W_out^T (target - softmax)``; without it, MSE on the top layer.
    """
    n_layers = len(weights)
    below = [x, *s[:-1]]
    out = []
    for n in range(n_layers):
        if n == 0 and x_drive is not None:
            d = x_drive
        else:
            d = below[n] @ weights[n].T + biases[n]
        if n + 1 < n_layers:
            d = d + s[n + 1] @ weights[n + 1]
        out.append(d)
    if beta != 0:
        if target is None:
            raise ValueError("a nudged step (beta != 0) needs a target")
        out[-1] = out[-1] + output_nudge(s[-1], target, beta, readout)
    return out


def output_nudge(s_top, target, beta, readout=None):
    """``-beta dL/ds_N``, the nudge on the top layer's drive: ``beta (target - s_N)`` for the MSE
    loss, ``beta W_out^T (target - softmax)`` for the cross-entropy of the ``readout``."""
    if readout is None:
        return -beta * mse_error(s_top, target)
    w, b = readout
    return -beta * (ce_error(s_top @ w.T + b, target) @ w)


def ep_step(x, s: Sequence, weights: Sequence, biases: Sequence, beta: float = 0.0, target=None,
            x_drive=None, readout=None, activation=hard_sigmoid, neuron_gains=None, neuron_offsets=None) -> list:
    """One synchronous step ``s <- sigma(dPhi_beta/ds)``; returns the new states.

    ``neuron_gains`` / ``neuron_offsets``: one ``(n,)`` array per layer (or
    ``None``), the frozen mismatch of a chip's neurons
    (:class:`lavaplast.core.mismatch.ChipMismatch`): layer ``n`` then computes
    ``sigma(g_n * dPhi_beta/ds_n + o_n)``, the nudge included (it enters the
    neuron like any other input). ``None`` is the ideal neuron, computed
    exactly as without mismatch.
    """
    d = drives(x, s, weights, biases, beta, target, x_drive, readout)
    if neuron_gains is None and neuron_offsets is None:
        return [activation(dn) for dn in d]
    gains = [None] * len(d) if neuron_gains is None else neuron_gains
    offsets = [None] * len(d) if neuron_offsets is None else neuron_offsets
    return [activation(neuron_response(dn, g, o)) for dn, g, o in zip(d, gains, offsets)]


def free_phase(x, s: Sequence, weights: Sequence, biases: Sequence, T: int, activation=hard_sigmoid,
               neuron_gains=None, neuron_offsets=None) -> list:
    """``T`` steps of the free dynamics from ``s`` (neuron mismatch as in :func:`ep_step`)."""
    check_steps(T, "T1")
    x_drive = input_drive(x, weights, biases)
    for _ in range(T):
        s = ep_step(x, s, weights, biases, x_drive=x_drive, activation=activation, neuron_gains=neuron_gains,
                    neuron_offsets=neuron_offsets)
    return s


def nudged_phase(x, s: Sequence, weights: Sequence, biases: Sequence, T: int, beta, target,
                 readout=None, activation=hard_sigmoid, neuron_gains=None, neuron_offsets=None) -> list:
    """``T`` steps of the nudged dynamics (``beta != 0``) from ``s`` (usually the free equilibrium).

    ``beta`` may be complex (holomorphic EP): then ``x``, ``s``, the
    parameters and ``target`` must be complex arrays and ``activation`` analytic.
    Neuron mismatch as in :func:`ep_step`.
    """
    check_steps(T, "T2")
    if isinstance(beta, complex):
        if beta == 0:
            raise ValueError("beta must be non-zero")
    else:
        beta = check_beta(beta)
    x_drive = input_drive(x, weights, biases)
    for _ in range(T):
        s = ep_step(x, s, weights, biases, beta, target, x_drive=x_drive, readout=readout, activation=activation,
                    neuron_gains=neuron_gains, neuron_offsets=neuron_offsets)
    return s


def holomorphic_update(x, s_nudged: Sequence[Sequence], betas: Sequence[complex]) -> list:
    """Holomorphic EP: ``-dL/dtheta = Re (1/N) sum_k dPhi/dtheta(s_k) / beta_k``.

    ``s_nudged[k]`` are the (complex) equilibria nudged by ``betas[k] =
    |beta| exp(2 pi i k / N)``; the average cancels every error term below
    order N, so the estimate is exact up to O(|beta|^N) at finite ``|beta|``
    (N = 2 is symmetric EP). Returns real ``[(dW_n, db_n), ...]``.
    """
    if len(s_nudged) != len(betas) or len(betas) < 2:
        raise ValueError(f"need one nudged equilibrium per beta, and at least 2, got {len(s_nudged)} and {len(betas)}")
    xp = array_namespace(x)
    n = len(betas)
    out = None
    for s_k, beta_k in zip(s_nudged, betas):
        terms = []
        below = x
        for sk in s_k:
            terms.append(((sk.T @ below) / (beta_k * n * x.shape[0]), xp.sum(sk, axis=0) / (beta_k * n * x.shape[0])))
            below = sk
        out = terms if out is None else [(a + c, b + d) for (a, b), (c, d) in zip(out, terms)]
    return [(xp.real(w), xp.real(b)) for w, b in out]


def ep_weight_contrast(pre_a, post_a, pre_b, post_b, beta_a: float, beta_b: float):
    """One synapse's share of :func:`ep_update`: ``(post_a^T pre_a - post_b^T pre_b) / ((beta_a - beta_b) batch)``."""
    if beta_a == beta_b:
        raise ValueError(f"the two nudges must differ, got beta_a = beta_b = {beta_a!r}")
    return (post_a.T @ pre_a - post_b.T @ pre_b) / ((beta_a - beta_b) * pre_a.shape[0])


def ep_bias_contrast(post_a, post_b, beta_a: float, beta_b: float):
    """One neuron layer's bias share of :func:`ep_update`."""
    if beta_a == beta_b:
        raise ValueError(f"the two nudges must differ, got beta_a = beta_b = {beta_a!r}")
    xp = array_namespace(post_a)
    return xp.sum(post_a - post_b, axis=0) / ((beta_a - beta_b) * post_a.shape[0])


def ep_update(x, s_a: Sequence, s_b: Sequence, beta_a: float, beta_b: float) -> list:
    """Descent direction ``-dL/dtheta`` from two equilibria, layer by layer, batch-averaged.

    ``(dPhi/dtheta(s_a) - dPhi/dtheta(s_b)) / (beta_a - beta_b)``: for ``W_n``
    the contrast of the local pre/post products ``s_n s_{n-1}^T``. Returns a
    list of ``(dW_n, db_n)``.
    """
    out = []
    below_a, below_b = x, x
    for sa, sb in zip(s_a, s_b):
        out.append((ep_weight_contrast(below_a, sa, below_b, sb, beta_a, beta_b),
                    ep_bias_contrast(sa, sb, beta_a, beta_b)))
        below_a, below_b = sa, sb
    return out


def ep_window(T1: int, T2: int, nudging: str) -> int:
    """Time steps per batch of the event-driven schedule (see :func:`ep_phase`)."""
    check_steps(T1, "T1")
    check_steps(T2, "T2")
    if nudging == "symmetric":
        return T1 + 2 * T2 + 2
    if nudging == "one-sided":
        return T1 + T2 + 1
    raise ValueError(f"the event-driven schedule supports 'symmetric' and 'one-sided' nudging, got {nudging!r}")


def ep_phase(k: int, T1: int, T2: int, nudging: str) -> str:
    """Phase of step ``k`` (1-based) of a batch window.

    ``"load"`` (k = 1: states reset, the input arrives), ``"free"`` (T1
    steps), ``"plus"`` (T2 steps nudged by +beta), and for symmetric nudging
    ``"restore"`` (one step back to the free equilibrium) and ``"minus"``
    (T2 steps nudged by -beta). With one step of synaptic delay, the state at
    window step ``k`` equals the rate-based state after ``k - 1`` steps.
    """
    if k == 1:
        return "load"
    if k <= T1 + 1:
        return "free"
    if k <= T1 + T2 + 1:
        return "plus"
    if nudging == "symmetric" and k == T1 + T2 + 2:
        return "restore"
    return "minus"
