"""Local learning rules: shipped rules against independent computations, the registry, apply_rule's checks."""

import math
import pickle

import numpy as np
import pytest
import torch

import lavaplast.core.rules as rules_module
from lavaplast.core import (
    LocalRule,
    apply_rule,
    check_nonnegative,
    get_rule,
    local_rule,
    register_rule,
    rule_names,
)
from lavaplast.reference.optim import MetaplasticAdam

SHIPPED = ("bcm", "metaplastic", "metaplastic_sgd", "plain", "reward_hebbian")
B, N_IN, N_OUT = 4, 5, 3


def layer_inputs(rng, steps=4):
    """``steps`` triples (pre, post, third) in float64: spike counts, a surrogate derivative, an error."""
    return [(rng.integers(0, 4, size=(B, N_IN)).astype(float), rng.uniform(0, 1, size=(B, N_OUT)),
             rng.normal(size=(B, N_OUT))) for _ in range(steps)]


def grad_of(pre, post, third):
    """The three-factor gradient, written out: g[i, j] = mean_b post[b, i] third[b, i] pre[b, j]."""
    g = np.zeros((N_OUT, N_IN))
    for b in range(pre.shape[0]):
        for i in range(N_OUT):
            for j in range(N_IN):
                g[i, j] += post[b, i] * third[b, i] * pre[b, j]
    return g / pre.shape[0]


def run_rule(name, hidden, inputs, params, wrap=np.asarray):
    """Apply rule ``name`` over ``inputs``; returns the hidden weights after each step (numpy) and the state."""
    rule = get_rule(name)
    h = wrap(hidden.copy())
    state = rule.init_state(h)
    out = []
    for pre, post, third in inputs:
        h = apply_rule(rule, wrap(pre), wrap(post), wrap(third), h, state, params)
        out.append(np.asarray(h).copy())
    return out, state


def test_shipped_rules_are_registered_with_their_math_documented():
    assert set(SHIPPED) <= set(rule_names())
    for name in SHIPPED:
        rule = get_rule(name)
        assert rule.name == name and "update" in rule.doc and "/ B" in rule.doc
    assert "lr" in get_rule("plain").defaults and "meta" not in get_rule("plain").defaults


# --- metaplastic, plain, metaplastic_sgd ------------------------------------------------------------------------

def numpy_metaplastic_adam(h, grads, lr, b1, b2, eps, wd, meta):
    """The rule of docs/algorithms.md section 1, written out in numpy: hidden weights after each step."""
    m, v = np.zeros_like(h), np.zeros_like(h)
    out = []
    for t, g in enumerate(grads, start=1):
        g = g + wd * h
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        u = lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        toward_flip = np.where(h >= 0, 1.0, -1.0) * u > 0
        h = h - np.where(toward_flip, 1 - np.tanh(meta * np.abs(h)) ** 2, 1.0) * u
        out.append(h)
    return out


def test_metaplastic_matches_numpy_adam_loop_and_metaplastic_adam():
    rng = np.random.default_rng(0)
    hidden = rng.uniform(-1, 1, size=(N_OUT, N_IN))
    inputs = layer_inputs(rng, steps=5)
    params = {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-8, "weight_decay": 0.01, "meta": 1.35}
    got, state = run_rule("metaplastic", hidden, inputs, params)
    assert state["step"] == 5

    grads = [grad_of(*x) for x in inputs]
    expected = numpy_metaplastic_adam(hidden, grads, 0.05, 0.8, 0.99, 1e-8, 0.01, 1.35)
    for g_step, e_step in zip(got, expected):
        np.testing.assert_allclose(g_step, e_step, rtol=0, atol=1e-12)

    p = torch.nn.Parameter(torch.from_numpy(hidden.copy()))
    opt = MetaplasticAdam([p], **params)
    for g, g_step in zip(grads, got):
        p.grad = torch.from_numpy(g)
        opt.step()
        np.testing.assert_allclose(p.detach().numpy(), g_step, rtol=0, atol=1e-12)
    # The state is MetaplasticAdam's, under the same names.
    np.testing.assert_allclose(state["exp_avg"], opt.state[p]["exp_avg"].numpy(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(state["exp_avg_sq"], opt.state[p]["exp_avg_sq"].numpy(), rtol=0, atol=1e-15)
    # Consolidation mattered in this run.
    plain = numpy_metaplastic_adam(hidden, grads, 0.05, 0.8, 0.99, 1e-8, 0.01, 0.0)
    assert np.abs(plain[-1] - got[-1]).max() > 1e-3


def test_plain_is_metaplastic_with_meta_zero():
    rng = np.random.default_rng(1)
    hidden = rng.uniform(-1, 1, size=(N_OUT, N_IN))
    inputs = layer_inputs(rng)
    params = {"lr": 0.02, "weight_decay": 1e-3}
    plain, _ = run_rule("plain", hidden, inputs, params)
    meta0, _ = run_rule("metaplastic", hidden, inputs, {**params, "meta": 0.0})
    for a, b in zip(plain, meta0):
        np.testing.assert_array_equal(a, b)


def test_meta_shrinks_exactly_the_steps_toward_a_flip_by_f_meta():
    # Both rules see the same fixed hidden weights and inputs, so their Adam
    # moments agree at every step and only the attenuation differs.
    rng = np.random.default_rng(2)
    hidden = rng.uniform(-1.5, 1.5, size=(N_OUT, N_IN))
    meta = 2.0
    s_meta, s_plain = get_rule("metaplastic").init_state(hidden), get_rule("plain").init_state(hidden)
    for pre, post, third in layer_inputs(rng):
        u_meta = apply_rule("metaplastic", pre, post, third, hidden, s_meta, {"lr": 0.01, "meta": meta}) - hidden
        u_plain = apply_rule("plain", pre, post, third, hidden, s_plain, {"lr": 0.01}) - hidden
        toward_flip = hidden * u_plain < 0
        assert toward_flip.any() and (~toward_flip).any()
        factor = np.where(toward_flip, 1 - np.tanh(meta * np.abs(hidden)) ** 2, 1.0)
        np.testing.assert_allclose(u_meta, factor * u_plain, rtol=1e-12, atol=1e-15)
        assert np.all(np.abs(u_meta[toward_flip]) < np.abs(u_plain[toward_flip]))


def test_metaplastic_sgd_closed_form():
    rng = np.random.default_rng(3)
    hidden = rng.uniform(-1, 1, size=(N_OUT, N_IN))
    inputs = layer_inputs(rng, steps=3)
    lr, meta, wd = 0.1, 1.35, 0.05
    got, state = run_rule("metaplastic_sgd", hidden, inputs, {"lr": lr, "meta": meta, "weight_decay": wd})
    assert state == {}
    h = hidden
    for x, g_step in zip(inputs, got):
        d = lr * (grad_of(*x) + wd * h)
        toward_flip = np.where(h >= 0, 1.0, -1.0) * d > 0
        h = h - np.where(toward_flip, 1 - np.tanh(meta * np.abs(h)) ** 2, 1.0) * d
        np.testing.assert_allclose(g_step, h, rtol=0, atol=1e-12)


# --- bcm, reward_hebbian ----------------------------------------------------------------------------------------

def test_bcm_closed_form():
    rng = np.random.default_rng(4)
    hidden = rng.uniform(-1, 1, size=(N_OUT, N_IN))
    inputs = layer_inputs(rng)
    lr, tau = 0.03, 3.0
    got, state = run_rule("bcm", hidden, inputs, {"lr": lr, "tau": tau})
    h, theta = hidden, np.zeros(N_OUT)
    for (pre, post, _), g_step in zip(inputs, got):
        h = h + lr * np.einsum("bi,bj->ij", post * (post - theta), pre) / B
        theta = theta + ((post**2).mean(axis=0) - theta) / tau
        np.testing.assert_allclose(g_step, h, rtol=0, atol=1e-12)
    np.testing.assert_allclose(state["theta"], theta, rtol=0, atol=1e-15)


def test_bcm_by_hand_and_third_factor_ignored():
    rule = get_rule("bcm")
    hidden = np.zeros((1, 1))
    state = rule.init_state(hidden)
    params = {"lr": 0.5, "tau": 3.0}
    # Step 1: theta = 0, update = 0.5 * 3 * 3 * 2 = 9; theta <- 9 / 3 = 3.
    h = apply_rule(rule, np.array([[2.0]]), np.array([[3.0]]), np.array([[7.0]]), hidden, state, params)
    np.testing.assert_allclose(h, [[9.0]])
    np.testing.assert_allclose(state["theta"], [3.0])
    # Step 2: post 1 is below theta 3: update = 0.5 * 1 * (1 - 3) * 2 = -2; theta <- 3 + (1 - 3) / 3.
    h = apply_rule(rule, np.array([[2.0]]), np.array([[1.0]]), np.array([[-5.0]]), h, state, params)
    np.testing.assert_allclose(h, [[7.0]])
    np.testing.assert_allclose(state["theta"], [3.0 - 2.0 / 3.0])


def test_reward_hebbian_closed_form():
    rng = np.random.default_rng(5)
    hidden = rng.uniform(-1, 1, size=(N_OUT, N_IN))
    inputs = layer_inputs(rng)
    lr, tau = 0.02, 2.5
    got, state = run_rule("reward_hebbian", hidden, inputs, {"lr": lr, "tau": tau})
    h, baseline = hidden, np.zeros(N_OUT)
    for (pre, post, third), g_step in zip(inputs, got):
        h = h + lr * np.einsum("bi,bj->ij", (third - baseline) * post, pre) / B
        baseline = baseline + (third.mean(axis=0) - baseline) / tau
        np.testing.assert_allclose(g_step, h, rtol=0, atol=1e-12)
    np.testing.assert_allclose(state["baseline"], baseline, rtol=0, atol=1e-15)


def test_reward_hebbian_by_hand():
    rule = get_rule("reward_hebbian")
    hidden = np.zeros((1, 2))
    state = rule.init_state(hidden)
    pre, post = np.array([[1.0, 2.0]]), np.array([[0.5]])
    params = {"lr": 1.0, "tau": 2.0}
    # Step 1: baseline 0, reward 4: update = 4 * 0.5 * [1, 2]; baseline <- 2.
    h = apply_rule(rule, pre, post, np.array([[4.0]]), hidden, state, params)
    np.testing.assert_allclose(h, [[2.0, 4.0]])
    # Step 2: the same reward 4 is now a surprise of 2 only.
    h = apply_rule(rule, pre, post, np.array([[4.0]]), h, state, params)
    np.testing.assert_allclose(h, [[3.0, 6.0]])
    np.testing.assert_allclose(state["baseline"], [3.0])


# --- one definition, two backends -------------------------------------------------------------------------------

PARAMS = {"metaplastic": {"lr": 0.05, "meta": 1.35, "weight_decay": 0.01}, "plain": {"lr": 0.05},
          "metaplastic_sgd": {"lr": 0.1, "meta": 2.0}, "bcm": {"lr": 0.05, "tau": 2.0},
          "reward_hebbian": {"lr": 0.05, "tau": 2.0}}


@pytest.mark.parametrize("name", rule_names())
def test_numpy_and_torch_agree_for_every_registered_rule(name):
    rng = np.random.default_rng(6)
    hidden = rng.uniform(-1, 1, size=(N_OUT, N_IN))
    inputs = layer_inputs(rng, steps=5)
    params = PARAMS.get(name)
    got_np, state_np = run_rule(name, hidden, inputs, params)
    got_torch, state_torch = run_rule(name, hidden, inputs, params, wrap=torch.from_numpy)
    for a, b in zip(got_np, got_torch):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert not np.array_equal(got_np[-1], hidden)
    assert set(state_np) == set(state_torch)
    for key, value in state_np.items():
        assert isinstance(state_torch[key], torch.Tensor) == isinstance(value, np.ndarray)
        np.testing.assert_allclose(np.asarray(state_torch[key]), value, rtol=0, atol=1e-12)


@pytest.mark.parametrize("wrap", [np.asarray, torch.from_numpy], ids=["numpy", "torch"])
@pytest.mark.parametrize("name", SHIPPED)
def test_apply_rule_returns_a_new_array_and_leaves_hidden_alone(name, wrap):
    rng = np.random.default_rng(7)
    hidden = wrap(rng.uniform(-1, 1, size=(N_OUT, N_IN)))
    before = np.asarray(hidden).copy()
    rule = get_rule(name)
    pre, post, third = (wrap(x) for x in layer_inputs(rng, steps=1)[0])
    new = apply_rule(rule, pre, post, third, hidden, rule.init_state(hidden), PARAMS[name])
    assert type(new) is type(hidden) and new.dtype == hidden.dtype and new is not hidden
    np.testing.assert_array_equal(np.asarray(hidden), before)


def test_integer_spike_counts_are_cast_to_the_weights_dtype():
    rng = np.random.default_rng(8)
    pre, post, third = layer_inputs(rng, steps=1)[0]
    hidden = rng.uniform(-1, 1, size=(N_OUT, N_IN))
    for wrap in (np.asarray, torch.from_numpy):
        rule = get_rule("reward_hebbian")
        as_int = apply_rule(rule, wrap(pre.astype(np.int64)), wrap(post), wrap(third), wrap(hidden),
                            rule.init_state(wrap(hidden)))
        as_float = apply_rule(rule, wrap(pre), wrap(post), wrap(third), wrap(hidden), rule.init_state(wrap(hidden)))
        np.testing.assert_array_equal(np.asarray(as_int), np.asarray(as_float))


def test_shipped_rules_pickle():
    rule = pickle.loads(pickle.dumps(get_rule("metaplastic")))
    assert rule.update is get_rule("metaplastic").update
    assert dict(rule.defaults) == dict(get_rule("metaplastic").defaults)


# --- parameters -------------------------------------------------------------------------------------------------

def test_check_params_fills_defaults_and_returns_canonical_values():
    rule = get_rule("metaplastic")
    params = rule.check_params({"lr": 1, "betas": [0.5, 0.75]})
    assert params == {**rule.defaults, "lr": 1.0, "betas": (0.5, 0.75)}
    assert rule.check_params(None) == dict(rule.defaults)
    with pytest.raises(TypeError):
        rule.defaults["lr"] = 2.0  # read-only


def test_unknown_parameter_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match=r"metaplastic: unknown parameter 'lrr'.*lr.*betas.*eps.*weight_decay.*meta"):
        get_rule("metaplastic").check_params({"lrr": 0.1})
    with pytest.raises(ValueError, match="unknown parameter 'meta'"):
        get_rule("plain").check_params({"meta": 1.0})  # plain has no consolidation to set
    hidden = np.zeros((1, 1))
    with pytest.raises(ValueError, match="bcm: unknown parameter 'rate'; expected one of lr, tau"):
        apply_rule("bcm", np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)), hidden,
                   get_rule("bcm").init_state(hidden), {"rate": 0.1})


@pytest.mark.parametrize("name, params, needle", [
    ("metaplastic", {"lr": float("nan")}, "metaplastic: lr must be a finite number >= 0"),
    ("metaplastic", {"lr": float("inf")}, "metaplastic: lr must be a finite number >= 0"),
    ("metaplastic", {"lr": -0.1}, "metaplastic: lr must be a finite number >= 0"),
    ("metaplastic", {"lr": "0.1"}, "metaplastic: lr"),
    ("metaplastic", {"meta": -1.0}, "metaplastic: meta"),
    ("metaplastic", {"eps": 0.0}, "metaplastic: eps must be a finite number > 0"),
    ("metaplastic", {"betas": (0.9, 1.0)}, r"metaplastic: betas\[1\]"),
    ("metaplastic_sgd", {"weight_decay": float("nan")}, "metaplastic_sgd: weight_decay"),
    ("bcm", {"tau": 0.5}, "bcm: tau must be a finite number >= 1"),
    ("reward_hebbian", {"lr": True}, "reward_hebbian: lr"),
])
def test_bad_parameter_values_are_refused(name, params, needle):
    with pytest.raises(ValueError, match=needle):
        get_rule(name).check_params(params)
    hidden = np.zeros((N_OUT, N_IN))
    pre, post, third = layer_inputs(np.random.default_rng(9), steps=1)[0]
    with pytest.raises(ValueError, match=needle):
        apply_rule(name, pre, post, third, hidden, get_rule(name).init_state(hidden), params)


# --- registry ---------------------------------------------------------------------------------------------------

def _zero_update(pre, post, third, hidden, state):
    """Does nothing."""
    return hidden * 0


def test_unknown_rule_lists_the_registered_names():
    with pytest.raises(ValueError, match="unknown learning rule 'hebb'") as err:
        get_rule("hebb")
    for name in SHIPPED:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="unknown learning rule"):
        apply_rule("hebb", np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)), {})


def test_duplicate_names_are_refused_unless_replaced(registry):
    rule = LocalRule("metaplastic", _zero_update)
    with pytest.raises(ValueError, match="'metaplastic' is already registered"):
        register_rule(rule)
    assert get_rule("metaplastic") is not rule
    assert register_rule(rule, replace=True) is rule
    assert get_rule("metaplastic") is rule


def test_isolation_fixture_restored_the_shipped_rules():
    assert get_rule("metaplastic").update is rules_module.metaplastic_rule


@pytest.mark.parametrize("name", ["two words", "1st", "", "class", "a-b", 3])
def test_rule_names_must_be_identifiers(registry, name):
    with pytest.raises(ValueError, match="identifier"):
        register_rule(LocalRule(name, _zero_update))
    assert name not in rule_names()


def test_malformed_rules_are_refused():
    with pytest.raises(ValueError, match="register_rule expects a LocalRule"):
        register_rule(_zero_update)
    with pytest.raises(ValueError, match="update must be callable"):
        LocalRule("r", 3)
    with pytest.raises(ValueError, match="r: lr must be a finite number"):
        LocalRule("r", _zero_update, defaults={"lr": float("nan")})
    with pytest.raises(ValueError, match="r: lr must be a finite number >= 0"):
        LocalRule("r", _zero_update, defaults={"lr": -1.0}, checks={"lr": check_nonnegative})
    with pytest.raises(ValueError, match="checks given for parameters without a default: tau"):
        LocalRule("r", _zero_update, defaults={"lr": 0.1}, checks={"tau": check_nonnegative})
    with pytest.raises(ValueError, match="the check of 'lr' must be callable"):
        LocalRule("r", _zero_update, defaults={"lr": 0.1}, checks={"lr": 0.0})
    with pytest.raises(ValueError, match="takes no parameters"):
        LocalRule("r", _zero_update).check_params({"lr": 0.1})


# --- a user-written rule ----------------------------------------------------------------------------------------

def _count_state(hidden):
    return {"calls": 0}


def test_user_rule_from_the_decorator_runs_through_apply_rule(registry):
    @local_rule("oja", defaults={"lr": 0.1}, checks={"lr": check_nonnegative}, init_state=_count_state)
    def oja(pre, post, third, hidden, state, *, lr):
        """Oja's rule: update = lr (post^T pre - diag(sum_b post^2) W_h) / B."""
        state["calls"] += 1
        return lr * (post.T @ pre - (post * post).sum(0)[:, None] * hidden) / pre.shape[0]

    assert isinstance(oja, LocalRule) and get_rule("oja") is oja and "oja" in rule_names()
    assert oja.doc.startswith("Oja's rule") and oja.defaults == {"lr": 0.1}
    with pytest.raises(ValueError, match="oja: lr"):
        oja.check_params({"lr": -1.0})

    rng = np.random.default_rng(10)
    hidden = rng.uniform(-1, 1, size=(N_OUT, N_IN))
    inputs = layer_inputs(rng, steps=3)
    got, state = run_rule("oja", hidden, inputs, {"lr": 0.05})
    got_torch, _ = run_rule("oja", hidden, inputs, {"lr": 0.05}, wrap=torch.from_numpy)
    assert state == {"calls": 3}
    h = hidden
    for (pre, post, _), g_step, t_step in zip(inputs, got, got_torch):
        expected = h.copy()
        for i in range(N_OUT):
            for j in range(N_IN):
                expected[i, j] += 0.05 * np.mean(post[:, i] * (pre[:, j] - post[:, i] * h[i, j]))
        h = expected
        np.testing.assert_allclose(g_step, h, rtol=0, atol=1e-12)
        np.testing.assert_allclose(t_step, h, rtol=0, atol=1e-12)

    with pytest.raises(ValueError, match="'oja' is already registered"):
        local_rule("oja")(oja.update)


# --- apply_rule refuses bad shapes and bad updates --------------------------------------------------------------

def _ok():
    rng = np.random.default_rng(11)
    pre, post, third = layer_inputs(rng, steps=1)[0]
    return dict(pre=pre, post=post, third=third, hidden=rng.uniform(-1, 1, size=(N_OUT, N_IN)))


@pytest.mark.parametrize("what, shape, needle", [
    ("hidden", (N_OUT * N_IN,), r"hidden must have shape \(n_out, n_in\), got \(15,\)"),
    ("pre", (B, N_IN + 1), r"pre must have shape \(B, n_in\) = \(B, 5\) with B >= 1, got \(4, 6\)"),
    ("pre", (0, N_IN), r"pre must have shape \(B, n_in\) = \(B, 5\) with B >= 1, got \(0, 5\)"),
    ("pre", (N_IN,), r"pre must have shape \(B, n_in\)"),
    ("post", (B, N_OUT + 1), r"post must have shape \(B, n_out\) = \(4, 3\), got \(4, 4\)"),
    ("third", (B + 1, N_OUT), r"third must have shape \(B, n_out\) = \(4, 3\), got \(5, 3\)"),
    ("third", (B, 1), r"third must have shape \(B, n_out\) = \(4, 3\), got \(4, 1\)"),
])
def test_apply_rule_names_the_bad_shape(what, shape, needle):
    args = _ok()
    args[what] = np.zeros(shape)
    state = get_rule("metaplastic").init_state(args["hidden"])
    with pytest.raises(ValueError, match=r"apply_rule\('metaplastic'\): " + needle):
        apply_rule("metaplastic", args["pre"], args["post"], args["third"], args["hidden"], state)


def test_apply_rule_refuses_mixed_libraries_integer_weights_and_a_missing_state():
    a = _ok()
    with pytest.raises(ValueError, match="arrays of one library"):
        apply_rule("bcm", torch.from_numpy(a["pre"]), a["post"], a["third"], a["hidden"], {"theta": np.zeros(3)})
    with pytest.raises(ValueError, match="real floating"):
        apply_rule("bcm", a["pre"], a["post"], a["third"], np.zeros((N_OUT, N_IN), dtype=np.int64), {})
    with pytest.raises(ValueError, match="state must be a dict"):
        apply_rule("bcm", a["pre"], a["post"], a["third"], a["hidden"], None)


def _register_returning(make_update):
    def update(pre, post, third, hidden, state):
        return make_update(hidden)

    return register_rule(LocalRule("user_rule", update), replace=True)


@pytest.mark.parametrize("make_update, needle", [
    (lambda h: h * float("nan"), "rule 'user_rule' returned 15 NaN or infinite update values from finite inputs"),
    (lambda h: h * 0 + np.where(h > 0, np.inf, 0.0), "rule 'user_rule' returned .* NaN or infinite"),
    (lambda h: h.T * 0, r"rule 'user_rule' returned an update of shape \(5, 3\); expected hidden's shape \(3, 5\)"),
    (lambda h: h[0] * 0, r"update of shape \(5,\)"),
    (lambda h: 0.0, "rule 'user_rule' must return an array of the same library"),
    (lambda h: torch.zeros(h.shape, dtype=torch.float64), "must return an array of the same library"),
])
def test_a_bad_update_is_refused_and_the_weights_stay(registry, make_update, needle):
    rule = _register_returning(make_update)
    a = _ok()
    before = a["hidden"].copy()
    with pytest.raises(ValueError, match=needle):
        apply_rule(rule, a["pre"], a["post"], a["third"], a["hidden"], {})
    np.testing.assert_array_equal(a["hidden"], before)


def test_non_finite_inputs_are_named_when_the_update_is_refused():
    a = _ok()
    a["pre"][1, 2] = np.nan
    rule = get_rule("reward_hebbian")
    with pytest.raises(ValueError, match=r"rule 'reward_hebbian' returned .* \(non-finite values in pre\)"):
        apply_rule(rule, a["pre"], a["post"], a["third"], a["hidden"], rule.init_state(a["hidden"]))
