"""Local learning rules for one layer of binary synapses, and a registry of them.

A *rule* says what a layer's synapses do at one learning step, from local
quantities only (docs/algorithms.md, "Writing a learning rule"):

- ``pre``    (B, n_in):  presynaptic trace per sample (a spike count over the
  window, a low-pass filtered trace, ...);
- ``post``   (B, n_out): postsynaptic term (e.g. the surrogate derivative of
  the membrane);
- ``third``  (B, n_out): third factor per postsynaptic neuron (e.g. the error
  broadcast by direct feedback alignment, or a reward);
- ``hidden`` (n_out, n_in): the hidden weights; the synapses compute with
  ``sign(hidden)``;
- ``state``: a dict of the rule's own quantities (Adam moments, a sliding
  threshold, ...), made by the rule's ``init_state(hidden)``;
- keyword parameters (``lr``, ``meta``, ...), declared with their defaults.

The rule's function has the signature
``update(pre, post, third, hidden, state, **params) -> update`` and returns
the *update*, an array shaped like ``hidden``, to be added to it
(``hidden_new = hidden + update``). It must not modify ``hidden``; it may
modify ``state`` in place (arrays in place, scalar counters by replacing the
dict entry), which is how it carries quantities from one step to the next.
Written once with array-API code (``xp = array_namespace(hidden)``) it runs
unchanged on numpy arrays (a Lava process model) and torch tensors (a torch
twin).

:func:`apply_rule` is the one entry point that checks the shapes and
parameters, calls the rule and refuses a non-finite or mis-shaped update;
:func:`register_rule` / :func:`local_rule` add a rule to the registry that
:func:`get_rule` reads by name. Shipped rules: ``"metaplastic"``,
``"metaplastic_sgd"``, ``"plain"``, ``"bcm"`` and ``"reward_hebbian"``.
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Optional, Union

from array_api_compat import array_namespace, device

from lavaplast.core.local_learning import local_gradient
from lavaplast.core.metaplastic import metaplastic_adam_step_, metaplastic_sgd_step_
from lavaplast.core.validate import (
    check_betas,
    check_choice,
    check_meta,
    check_nonnegative,
    check_number,
    check_positive,
)


def _no_state(hidden) -> dict:
    """The ``init_state`` of a rule that keeps nothing between steps."""
    return {}


@dataclass(frozen=True, eq=False)
class LocalRule:
    """A local learning rule: its name, its update function and its parameters.

    ``update(pre, post, third, hidden, state, **params)`` returns the array to
    add to ``hidden`` (see the module docstring for the shapes).
    ``init_state(hidden)`` returns a fresh state dict for one layer (a reset
    rule). ``defaults`` maps every parameter name to its default value: a
    parameter without a default does not exist. ``checks`` maps a parameter
    name to a validator ``check(what, value) -> value`` (e.g.
    ``core.check_nonnegative``); a parameter without one must be a finite
    number (``core.check_number``). ``doc`` defaults to the update function's
    docstring. The name must be a Python identifier (it names the rule in
    configurations and error messages). The defaults are validated when the
    rule is made, so a rule with a bad default cannot exist. Rules compare
    and hash by identity.
    """

    name: str
    update: Callable
    init_state: Callable = _no_state
    defaults: Mapping = field(default_factory=dict)
    doc: str = ""
    checks: Mapping = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier() or keyword.iskeyword(self.name):
            raise ValueError(f"a rule's name must be a Python identifier that is not a keyword, got {self.name!r}")
        for what in ("update", "init_state"):
            if not callable(getattr(self, what)):
                raise ValueError(f"rule {self.name!r}: {what} must be callable, "
                                 f"got {type(getattr(self, what)).__name__}")
        if not isinstance(self.defaults, Mapping) or not isinstance(self.checks, Mapping):
            raise ValueError(f"rule {self.name!r}: defaults and checks must be mappings")
        for key in self.defaults:
            if not isinstance(key, str) or not key.isidentifier():
                raise ValueError(f"rule {self.name!r}: parameter names must be identifiers, got {key!r}")
        for key, check in self.checks.items():
            if not callable(check):
                raise ValueError(f"rule {self.name!r}: the check of {key!r} must be callable, got {check!r}")
        extra = sorted(set(self.checks) - set(self.defaults))
        if extra:
            raise ValueError(f"rule {self.name!r}: checks given for parameters without a default: {', '.join(extra)}")
        # Frozen dataclass: set the derived fields through object.__setattr__.
        # Read-only copies, so that nobody edits a registered rule's defaults.
        object.__setattr__(self, "checks", MappingProxyType(dict(self.checks)))
        checked = {key: self._check(key, value) for key, value in self.defaults.items()}
        object.__setattr__(self, "defaults", MappingProxyType(checked))
        if not isinstance(self.doc, str):
            raise ValueError(f"rule {self.name!r}: doc must be a string, got {type(self.doc).__name__}")
        if not self.doc:
            object.__setattr__(self, "doc", inspect.getdoc(self.update) or "")

    def __reduce__(self):
        # The read-only mappings do not pickle; rebuild from plain dicts (a
        # rule made of module-level functions can then cross process borders).
        return (LocalRule, (self.name, self.update, self.init_state, dict(self.defaults), self.doc,
                            dict(self.checks)))

    def _check(self, key: str, value):
        check = self.checks.get(key, check_number)
        return check(f"{self.name}: {key}", value)

    def check_params(self, params: Optional[Mapping] = None) -> dict:
        """All of the rule's parameters, validated, with defaults for those not given.

        ``params`` maps parameter names to values (``None``: all defaults). An
        unknown name is a ``ValueError`` that names it and the known ones; a
        bad value (NaN, infinity, not a number, out of the declared range) is
        a ``ValueError`` from the parameter's check. Returns a new dict.
        """
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ValueError(f"{self.name}: params must be a mapping of parameter names to values, "
                             f"got {type(params).__name__}")
        known = tuple(self.defaults)
        for key in params:
            if not known:
                raise ValueError(f"{self.name}: unknown parameter {key!r}; the rule takes no parameters")
            check_choice("parameter", key, known, who=f"{self.name}: ")
        out = dict(self.defaults)
        for key, value in params.items():
            out[key] = self._check(key, value)
        return out


# ----------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------

_REGISTRY: dict = {}


def register_rule(rule: LocalRule, *, replace: bool = False) -> LocalRule:
    """Add ``rule`` to the registry under ``rule.name`` and return it.

    A name already registered is refused (``ValueError``) unless ``replace``
    is true; a name that is not an identifier cannot reach the registry
    because :class:`LocalRule` refuses it.
    """
    if not isinstance(rule, LocalRule):
        raise ValueError(f"register_rule expects a LocalRule, got {type(rule).__name__}")
    if rule.name in _REGISTRY and not replace:
        raise ValueError(f"a rule named {rule.name!r} is already registered; pass replace=True to replace it")
    _REGISTRY[rule.name] = rule
    return rule


def get_rule(name: str) -> LocalRule:
    """The registered rule called ``name``; an unknown name is a ``ValueError`` listing the registered ones."""
    check_choice("learning rule", name, rule_names())
    return _REGISTRY[name]


def rule_names() -> tuple:
    """The names of the registered rules, sorted."""
    return tuple(sorted(_REGISTRY))


def local_rule(name: str, *, defaults: Optional[Mapping] = None, init_state: Callable = _no_state,
               checks: Optional[Mapping] = None, doc: str = "", replace: bool = False) -> Callable:
    """Decorator: make a :class:`LocalRule` of the decorated update function and register it.

    ::

        @local_rule("oja", defaults={"lr": 1e-3}, checks={"lr": check_nonnegative})
        def oja(pre, post, third, hidden, state, *, lr):
            "Oja's rule: dW = lr (post^T pre - diag(sum_b post^2) W) / B."
            return lr * (post.T @ pre - (post * post).sum(0)[:, None] * hidden) / pre.shape[0]

    The decorated name is bound to the :class:`LocalRule` (its function is
    ``.update``), which :func:`apply_rule` accepts as well as the name.
    """
    def wrap(update: Callable) -> LocalRule:
        rule = LocalRule(name, update, init_state, dict(defaults or {}), doc, dict(checks or {}))
        return register_rule(rule, replace=replace)

    return wrap


# ----------------------------------------------------------------------------
# Applying a rule
# ----------------------------------------------------------------------------

def _shape(x) -> tuple:
    return tuple(int(s) for s in x.shape)


def _count_bad(xp, x) -> int:
    return int(xp.sum(xp.astype(~xp.isfinite(x), xp.int64)))


def apply_rule(rule: Union[LocalRule, str], pre, post, third, hidden, state: MutableMapping,
               params: Optional[Mapping] = None):
    """One learning step of a layer: ``hidden + rule.update(...)``, checked.

    ``rule`` is a :class:`LocalRule` or a registered name; ``params`` go
    through ``rule.check_params`` (``None``: defaults). Checks that ``hidden``
    is a real floating array shaped (n_out, n_in), ``pre`` (B, n_in), ``post``
    and ``third`` (B, n_out) with the same B >= 1, all of one library;
    ``pre``, ``post`` and ``third`` are cast to ``hidden``'s dtype. The
    update the rule returns must be an array of that library shaped like
    ``hidden`` with no NaN or infinity, else ``ValueError`` naming the rule:
    a rule never writes NaN into the weights. Returns a new array; ``hidden``
    is not modified. ``state`` is modified in place by the rule, and is
    already advanced when the update is refused.
    """
    if isinstance(rule, str):
        rule = get_rule(rule)
    elif not isinstance(rule, LocalRule):
        raise ValueError(f"apply_rule: rule must be a LocalRule or a registered name, got {type(rule).__name__}")
    checked = rule.check_params(params)
    who = f"apply_rule({rule.name!r})"
    try:
        xp = array_namespace(pre, post, third, hidden)
    except TypeError as err:
        raise ValueError(f"{who}: pre, post, third and hidden must be arrays of one library "
                         f"(numpy or torch): {err}") from None
    if not isinstance(state, MutableMapping):
        raise ValueError(f"{who}: state must be a dict (from the rule's init_state), got {type(state).__name__}")

    if hidden.ndim != 2:
        raise ValueError(f"{who}: hidden must have shape (n_out, n_in), got {_shape(hidden)}")
    if not xp.isdtype(hidden.dtype, "real floating"):
        raise ValueError(f"{who}: hidden must be a real floating array, got dtype {hidden.dtype}")
    n_out, n_in = _shape(hidden)
    if pre.ndim != 2 or pre.shape[1] != n_in or pre.shape[0] < 1:
        raise ValueError(f"{who}: pre must have shape (B, n_in) = (B, {n_in}) with B >= 1, got {_shape(pre)}")
    batch = int(pre.shape[0])
    for what, x in (("post", post), ("third", third)):
        if _shape(x) != (batch, n_out):
            raise ValueError(f"{who}: {what} must have shape (B, n_out) = ({batch}, {n_out}), got {_shape(x)}")
    # Spike counts may come as integers; the rule computes in hidden's dtype.
    pre, post, third = (x if x.dtype == hidden.dtype else xp.astype(x, hidden.dtype) for x in (pre, post, third))

    update = rule.update(pre, post, third, hidden, state, **checked)

    try:
        same_library = array_namespace(update) is xp
    except TypeError:
        same_library = False
    if not same_library:
        raise ValueError(f"rule {rule.name!r} must return an array of the same library as hidden, "
                         f"got {type(update).__name__}")
    if _shape(update) != (n_out, n_in):
        raise ValueError(f"rule {rule.name!r} returned an update of shape {_shape(update)}; "
                         f"expected hidden's shape {(n_out, n_in)}")
    if not bool(xp.all(xp.isfinite(update))):
        # Only on failure: say whether the inputs were already bad.
        bad_inputs = [what for what, x in (("pre", pre), ("post", post), ("third", third), ("hidden", hidden))
                      if _count_bad(xp, x)]
        cause = (f" (non-finite values in {', '.join(bad_inputs)})" if bad_inputs
                 else " from finite inputs")
        raise ValueError(f"rule {rule.name!r} returned {_count_bad(xp, update)} NaN or infinite update "
                         f"values{cause}; the weights were not changed")
    new = hidden + update
    if new.dtype != hidden.dtype:
        new = xp.astype(new, hidden.dtype)
    return new


# ----------------------------------------------------------------------------
# Shipped rules
# ----------------------------------------------------------------------------

def _check_tau(what: str, value) -> float:
    """A time constant in steps: a finite number >= 1 (tau = 1 keeps only the last step)."""
    return check_number(what, value, low=1.0)


def _check_meta(what: str, value) -> float:
    """``core.check_meta`` with the argument order of the other checks."""
    return check_meta(value, what)


_ADAM_CHECKS = {"lr": check_nonnegative, "betas": check_betas, "eps": check_positive,
                "weight_decay": check_nonnegative, "meta": _check_meta}


def _adam_state(hidden) -> dict:
    """Fresh Adam state: both moments at zero and no step taken (the names of ``MetaplasticAdam``'s state)."""
    xp = array_namespace(hidden)
    return {"exp_avg": xp.zeros_like(hidden), "exp_avg_sq": xp.zeros_like(hidden), "step": 0}


def _per_neuron_zeros(hidden):
    xp = array_namespace(hidden)
    return xp.zeros((hidden.shape[0],), dtype=hidden.dtype, device=device(hidden))


def _bcm_state(hidden) -> dict:
    """Fresh BCM state: the sliding threshold ``theta`` (n_out,) at zero."""
    return {"theta": _per_neuron_zeros(hidden)}


def _reward_state(hidden) -> dict:
    """Fresh reward-Hebbian state: the reward ``baseline`` (n_out,) at zero."""
    return {"baseline": _per_neuron_zeros(hidden)}


def metaplastic_rule(pre, post, third, hidden, state, *, lr, betas, eps, weight_decay, meta):
    """Metaplastic Adam on the three-factor gradient (docs/algorithms.md, sections 1 and 2).

    ::

        g    = (post * third)^T pre / B  (+ weight_decay * W_h)
        m_t  = b1 m_{t-1} + (1 - b1) g          v_t = b2 v_{t-1} + (1 - b2) g^2
        eta_t = lr sqrt(1 - b2^t) / (1 - b1^t)
        U    = eta_t m_t / (sqrt(v_t) + eps)
        update = -f_meta(meta, W_h) U   where sign(W_h) U > 0  (the step shrinks |W_h|)
        update = -U                     elsewhere
        f_meta(meta, W_h) = 1 - tanh^2(meta |W_h|)

    ``post * third`` is the error of ``core.local_gradient`` (e.g. post the
    straight-through gate ``1[|z| <= 1]``, third the error fed back by direct
    feedback alignment), so ``g`` is a loss gradient and the update descends
    it. ``eps`` sits outside the bias correction, as
    in ``MetaplasticAdam``. State: ``exp_avg`` (m), ``exp_avg_sq`` (v),
    advanced in place, and ``step`` (t), replaced. Defaults follow the
    paper's protocol: lr 0.005, meta 1.35.
    """
    xp = array_namespace(hidden)
    grad = local_gradient(post * third, pre)
    # The same code path as MetaplasticAdam and BinaryDense, on a copy: the
    # update is the difference, and hidden stays untouched.
    new = xp.asarray(hidden, copy=True)
    state["step"] = metaplastic_adam_step_(new, grad, state["exp_avg"], state["exp_avg_sq"], state["step"],
                                           lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, meta=meta)
    return new - hidden


def plain_rule(pre, post, third, hidden, state, *, lr, betas, eps, weight_decay):
    """Adam on the three-factor gradient without consolidation: ``"metaplastic"`` with meta = 0.

    ::

        g = (post * third)^T pre / B  (+ weight_decay * W_h)
        update = -eta_t m_t / (sqrt(v_t) + eps)    (Adam as in "metaplastic")

    A plain binary network: every step passes unattenuated. State as in
    ``"metaplastic"``.
    """
    return metaplastic_rule(pre, post, third, hidden, state, lr=lr, betas=betas, eps=eps,
                            weight_decay=weight_decay, meta=0.0)


def metaplastic_sgd_rule(pre, post, third, hidden, state, *, lr, meta, weight_decay):
    """Metaplastic SGD on the three-factor gradient (``core.metaplastic_sgd_step_``).

    ::

        g = (post * third)^T pre / B  (+ weight_decay * W_h)
        update = -f_meta(meta, W_h) lr g   where sign(W_h) g > 0  (the step shrinks |W_h|)
        update = -lr g                     elsewhere

    No state: the form the fixed-point learning engine uses (section 6).
    """
    xp = array_namespace(hidden)
    new = xp.asarray(hidden, copy=True)
    metaplastic_sgd_step_(new, local_gradient(post * third, pre), lr=lr, meta=meta, weight_decay=weight_decay)
    return new - hidden


def bcm_rule(pre, post, third, hidden, state, *, lr, tau):
    """BCM rule with a sliding threshold per postsynaptic neuron.

    ::

        update[i, j] = lr / B  sum_b post[b, i] (post[b, i] - theta[i]) pre[b, j]
        theta <- theta + (mean_b post[b]^2 - theta) / tau      (after the update)

    A synapse is potentiated when its neuron's activity exceeds the threshold
    and depressed below it; the threshold follows the mean squared activity
    with time constant ``tau`` steps (>= 1), which keeps the activity from
    running away. The update uses the threshold from before this step. The
    third factor is ignored. State: ``theta`` (n_out,), starting at 0 and
    advanced in place.
    """
    theta = state["theta"]
    update = lr * local_gradient(post * (post - theta), pre)
    xp = array_namespace(hidden)
    theta += (xp.mean(post * post, axis=0) - theta) / tau
    return update


def reward_hebbian_rule(pre, post, third, hidden, state, *, lr, tau):
    """Reward-modulated Hebbian rule with a running reward baseline.

    ::

        update[i, j] = lr / B  sum_b (third[b, i] - baseline[i]) post[b, i] pre[b, j]
        baseline <- baseline + (mean_b third[b] - baseline) / tau     (after the update)

    ``third`` is the reward (or any modulator), one per sample and
    postsynaptic neuron: broadcast a global reward to (B, n_out). Subtracting
    the running baseline makes the update follow the reward's surprise
    rather than its level. The update uses the baseline from before this
    step. State: ``baseline`` (n_out,), starting at 0 and advanced in place.
    """
    baseline = state["baseline"]
    update = lr * local_gradient((third - baseline) * post, pre)
    xp = array_namespace(hidden)
    baseline += (xp.mean(third, axis=0) - baseline) / tau
    return update


_ADAM_DEFAULTS = {"lr": 0.005, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}

register_rule(LocalRule("metaplastic", metaplastic_rule, _adam_state, {**_ADAM_DEFAULTS, "meta": 1.35},
                        checks=_ADAM_CHECKS))
register_rule(LocalRule("plain", plain_rule, _adam_state, dict(_ADAM_DEFAULTS),
                        checks={k: v for k, v in _ADAM_CHECKS.items() if k != "meta"}))
register_rule(LocalRule("metaplastic_sgd", metaplastic_sgd_rule, _no_state,
                        {"lr": 0.01, "meta": 1.35, "weight_decay": 0.0},
                        checks={k: _ADAM_CHECKS[k] for k in ("lr", "meta", "weight_decay")}))
register_rule(LocalRule("bcm", bcm_rule, _bcm_state,
                        {"lr": 1e-3, "tau": 100.0}, checks={"lr": check_nonnegative, "tau": _check_tau}))
register_rule(LocalRule("reward_hebbian", reward_hebbian_rule, _reward_state,
                        {"lr": 1e-3, "tau": 100.0}, checks={"lr": check_nonnegative, "tau": _check_tau}))

__all__ = [
    "LocalRule",
    "apply_rule",
    "bcm_rule",
    "get_rule",
    "local_rule",
    "metaplastic_rule",
    "metaplastic_sgd_rule",
    "plain_rule",
    "register_rule",
    "reward_hebbian_rule",
    "rule_names",
]
