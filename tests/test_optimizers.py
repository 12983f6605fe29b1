"""The optimizers of the package without a framework: the pure-function contract, DBA as a wrapper of each,
restatements of the papers' equations, the components of the heuristics, input validation, the listing.

A restatement computes the same numbers in another order, so it agrees to rounding: parameters after s steps
within the rounding scales the steps add up (tests/helpers.py, ``step_rounding_scale``), one-step quantities
within their own scale and operation count.
"""
import inspect
import math
from pathlib import Path

import numpy as np
import pytest

from dba_ref import MLP, backprop
from dba_ref.agreement import rounding_tolerance
from dba_ref.backprop import mean_grads
from dba_ref.cli import main
from dba_ref.optimizers import (OPTIMIZERS, WRAPPABLE, EmptyState, adam, adamp, adan, dba, diffgrad, enhanced_sgd,
                                make_optimizer, momentum, sgd, sgdp)
from dba_ref.optimizers.adagrad import adagrad_norm
from dba_ref.optimizers.adam import adam_direction
from dba_ref.optimizers.adamp import project_radial
from dba_ref.optimizers.tree import apply_updates, tree_leaves
from dba_ref.optimizers.diffgrad import abs_sigmoid
from dba_ref.optimizers.enhanced_sgd import ACTIONS

from helpers import assert_within_rounding, random_batch, step_rounding_scale

PLAIN = list(WRAPPABLE)
PER_SAMPLE = [name for name in OPTIMIZERS if name not in PLAIN]


@pytest.fixture
def batch(rng):
    model = MLP([6, 5, 3], seed=3)
    X, y = random_batch(rng, model, 12)
    return model, backprop(model, X, y)


def snapshot(tree):
    return [leaf.copy() for leaf in tree_leaves(tree)]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_is_a_pure_function_of_its_inputs(name, batch):
    """Same (grads, state, params) twice gives the same updates; inputs are never modified; shapes and dtypes kept."""
    model, signals = batch
    opt = make_optimizer(name)
    grads = signals.mean_grads()
    params = model.params
    state = opt.init(params)
    updates, state = opt.update(grads, state, params, signals=signals)   # a second step exercises the carried state
    before = snapshot(params), snapshot(grads), snapshot([signals.inputs, signals.deltas])
    u1, s1 = opt.update(grads, state, params, signals=signals)
    u2, _ = opt.update(grads, state, params, signals=signals)
    u3, _ = opt.update(None, state, params, signals=signals)     # grads=None: the batch mean of the signals
    for a, b, c in zip(tree_leaves(u1), tree_leaves(u2), tree_leaves(u3)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    for old, new in zip(before, (params, grads, [signals.inputs, signals.deltas])):
        for a, b in zip(old, tree_leaves(new)):
            np.testing.assert_array_equal(a, b)
    for u, p in zip(tree_leaves(u1), tree_leaves(params)):
        assert u.shape == p.shape and u.dtype == p.dtype and np.all(np.isfinite(u))
    assert any(np.any(u != 0) for u in tree_leaves(u1))


@pytest.mark.parametrize("name", PLAIN)
def test_every_plain_optimizer_is_a_dba_base_and_dba_all_reproduces_it(name, batch):
    model, signals = batch
    base, wrapped = make_optimizer(name), dba(make_optimizer(name), strategy="all")
    s_base, s_dba = base.init(model.params), wrapped.init(model.params)
    for _ in range(3):
        u_base, s_base = base.update(mean_grads(signals), s_base, model.params)
        u_dba, s_dba = wrapped.update(None, s_dba, model.params, signals=signals)
        for a, b in zip(tree_leaves(u_base), tree_leaves(u_dba)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_per_sample_optimizers_are_refused_as_dba_base(name):
    with pytest.raises(ValueError, match="cannot wrap .* which already wraps"):
        dba(make_optimizer(name))


def test_dba_refuses_a_gradient_and_wrappers_are_not_wrapped_twice(batch):
    model, signals = batch
    opt = dba(sgd(0.1))
    with pytest.raises(ValueError, match="pass|call update\\(None"):
        opt.update(signals.mean_grads(), opt.init(model.params), model.params, signals=signals)
    with pytest.raises(ValueError, match="cannot wrap 'dba\\(sgd\\)'"):
        dba(opt)
    with pytest.raises(TypeError, match="needs grads, or signals="):
        sgd(0.1).update(None, EmptyState(), model.params)


def test_float32_parameters_stay_float32(rng):
    model = MLP([6, 5, 3], seed=0, dtype=np.float32)
    X, y = random_batch(rng, model, 8)
    grads = mean_grads(backprop(model, X, y))
    for name in PLAIN:
        opt = make_optimizer(name)
        updates, _ = opt.update(grads, opt.init(model.params), model.params)
        assert all(u.dtype == np.float32 for u in tree_leaves(updates)), name


# ---------------------------------------------------------------------------------------------------------------
# Restatements of the papers' equations, coordinate by coordinate
# ---------------------------------------------------------------------------------------------------------------
def stream(rng, steps, shapes=((3, 2), (3,))):
    return [[tuple(rng.normal(size=s) for s in shapes)] for _ in range(steps)]


def run(opt, grads_stream, params, reduction=2):
    """``(params, state, rounding)`` after one step per entry of ``grads_stream``.

    ``rounding`` holds, per leaf, the rounding scales the steps added up
    (``step_rounding_scale``): step t's update is fed by the optimizer's running
    sums over t steps and ``reduction`` more operations (2: a square root and a
    division; a norm over P parameters: P).
    """
    state = opt.init(params)
    rounding = [np.zeros(np.shape(leaf)) for leaf in tree_leaves(params)]
    for t, grads in enumerate(grads_stream, 1):
        updates, state = opt.update(grads, state, params)
        rounding = [r + step_rounding_scale(p, u, t + reduction)
                    for r, p, u in zip(rounding, tree_leaves(params), tree_leaves(updates))]
        params = apply_updates(params, updates)
    return params, state, rounding


def assert_same_params(a, b, rounding, what="parameters"):
    for x, y, r in zip(tree_leaves(a), tree_leaves(b), rounding):
        assert_within_rounding(x, y, r, 1, what=what)


def test_adagrad_norm_follows_ward_et_al(rng):
    """b² ← b² + ‖g‖² over all parameters; θ ← θ − η g / b."""
    grads_stream, params = stream(rng, 50), [(rng.normal(size=(3, 2)), rng.normal(size=3))]
    P = 9
    ours, state, _ = run(adagrad_norm(0.7, b0=0.3), grads_stream, params)
    theta, b2 = np.concatenate([p.ravel() for p in tree_leaves(params)]), 0.3 ** 2
    rounding = np.zeros(P)
    for t, grads in enumerate(grads_stream, 1):
        g = np.concatenate([x.ravel() for x in tree_leaves(grads)])
        b2 += g @ g
        update = -0.7 * g / math.sqrt(b2)
        rounding += step_rounding_scale(theta, update, t * P + 2)      # b² sums t·P squares, then √ and a division
        theta = theta + update
    assert_within_rounding(np.concatenate([p.ravel() for p in tree_leaves(ours)]), theta, rounding, 1)
    assert_within_rounding(state.b2, b2, b2, 50 * P + 50, what="b²")       # 50·P positive squares and 50 sums


def adan_reference(theta, grads, lr, b1, b2, b3, eps, wd, bias_correction):
    """Algorithm 1 of Xie et al., one scalar coordinate at a time (paper notation: β weighs the new term)."""
    theta = np.array(theta, dtype=float)
    for j in range(theta.size):
        m = v = n = 0.0
        g_prev = None
        for t, g_all in enumerate(grads, start=1):
            g = g_all[j]
            if g_prev is None:
                g_prev = g
                if not bias_correction:
                    m, n = g, g * g
            d = g - g_prev
            m = (1 - b1) * m + b1 * g
            v = (1 - b2) * v + b2 * d
            n = (1 - b3) * n + b3 * (g + (1 - b2) * d) ** 2
            c1, c2, c3 = ((1 - (1 - b1) ** t, 1 - (1 - b2) ** t, 1 - (1 - b3) ** t) if bias_correction
                          else (1, 1, 1))
            step = lr * (m / c1 + (1 - b2) * v / c2) / (math.sqrt(n / c3) + eps)
            theta[j] = (theta[j] - step) / (1 + lr * wd)
            g_prev = g
    return theta


@pytest.mark.parametrize("bias_correction", [False, True])
def test_adan_follows_its_algorithm(rng, bias_correction):
    grads_stream = [[(rng.normal(size=4),)] for _ in range(60)]
    params = [(rng.normal(size=4),)]
    # per step three moments, the bias corrections, a root and two divisions: reduction 6
    ours, _, rounding = run(adan(0.05, 0.1, 0.2, 0.05, eps=1e-6, weight_decay=0.02, bias_correction=bias_correction),
                            grads_stream, params, reduction=6)
    ref = adan_reference(params[0][0], [g[0][0] for g in grads_stream], 0.05, 0.1, 0.2, 0.05, 1e-6, 0.02,
                         bias_correction)
    assert_within_rounding(ours[0][0], ref, rounding[0], 1)


def test_adan_variants_share_the_first_step_and_then_differ(rng):
    grads_stream, params = stream(rng, 5), [(rng.normal(size=(3, 2)), rng.normal(size=3))]
    first = [run(adan(bias_correction=bc), grads_stream[:1], params, reduction=6) for bc in (False, True)]
    assert_same_params(first[0][0], first[1][0], first[0][2])
    later = [run(adan(bias_correction=bc), grads_stream, params, reduction=6) for bc in (False, True)]
    differ = np.abs(later[0][0][0][0] - later[1][0][0][0]) > rounding_tolerance(later[1][2][0], 1)
    assert differ.any(), "after 5 steps the bias correction must make a difference beyond rounding"


def test_diffgrad_is_half_of_adam_where_the_gradient_stops_changing(rng):
    """ξ = AbsSig(g_{t−1} − g_t) is 1/2 for an unchanged gradient, and ξ(g_0 = 0) = AbsSig(g_1) at the first step."""
    g = [(rng.normal(size=(3, 2)), rng.normal(size=3))]
    params = [(np.zeros((3, 2)), np.zeros(3))]
    d_opt, a_opt = diffgrad(1e-2), adam(1e-2)
    d_state, a_state = d_opt.init(params), a_opt.init(params)
    for t in range(4):
        d_up, d_state = d_opt.update(g, d_state, params)
        a_up, a_state = a_opt.update(g, a_state, params)
        factor = [abs_sigmoid(x) for x in tree_leaves(g)] if t == 0 else [0.5, 0.5]
        for du, au, f in zip(tree_leaves(d_up), tree_leaves(a_up), factor):
            # moments over t + 1 steps, bias corrections, a root, a division, the factor: relative rounding
            assert_within_rounding(du, f * au, np.abs(f * au), t + 1 + 6, what=f"step {t + 1}")


def test_abs_sigmoid_lies_in_half_open_unit_half():
    xi = abs_sigmoid(np.array([-50.0, -1.0, 0.0, 1e-9, 3.0]))
    assert np.all((xi >= 0.5) & (xi <= 1.0)) and xi[2] == 0.5


def test_raw_eps_placement_is_corrected_placement_with_rescaled_eps(rng):
    """(√c2/c1) m/(√v + ε) = (m/c1)/(√(v/c2) + ε/√c2): the two forms differ only through ε."""
    m, v = rng.normal(size=7), rng.random(7) * 1e-4
    for t in (1, 5, 100):
        c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
        raw = adam_direction(m, v, c1, c2, 1e-3, True)
        corrected = adam_direction(m, v, c1, c2, 1e-3 / math.sqrt(c2), False)
        # c1, c2 (a power each), roots, divisions, a sum: a handful of roundings relative to the result
        assert_within_rounding(raw, corrected, np.abs(raw), 8, what=f"t={t}")
        other = adam_direction(m, v, c1, c2, 1e-3, False)                   # the same ε in the other place
        assert np.any(np.abs(raw - other) > rounding_tolerance(np.abs(raw), 8)), f"t={t}: the placements must differ"


def test_projection_removes_the_radial_component(rng):
    W = rng.normal(size=(4, 6))
    update = rng.normal(size=(4, 6))
    grad = rng.normal(size=(4, 6))
    grad -= np.sum(grad * W, axis=1, keepdims=True) / np.sum(W * W, axis=1, keepdims=True) * W   # ⟂ every row
    projected, view = project_radial(W, grad, update, delta=0.1, eps=1e-300)     # ε would leave O(ε) behind
    assert view == "channel"
    # projected = u − (u·w / w·w) w, row by row: three dot products of 6 terms and a few products; every term
    # of the dot products below is at most |u_p||w_p| or (|u·w| / w·w) w_p²
    alpha = np.sum(update * W, axis=1, keepdims=True) / np.sum(W * W, axis=1, keepdims=True)
    terms = np.abs(update) * np.abs(W) + np.abs(alpha) * W ** 2
    assert_within_rounding(np.sum(projected * W, axis=1), np.zeros(4), terms.sum(axis=1), 3 * 6 + 4,
                           what="no radial part left")
    removed = update - projected                                                   # ... and only the radial part went
    radial = np.sum(removed * W, axis=1, keepdims=True) / np.sum(W * W, axis=1, keepdims=True) * W
    assert_within_rounding(removed, radial, np.abs(update) + np.abs(projected), 3 * 6 + 4, what="only the radial part")
    aligned, view = project_radial(W, W.copy(), update, delta=0.1, eps=1e-8)      # gradient along W: no projection
    assert view is None and aligned is update
    vector, view = project_radial(rng.normal(size=5), rng.normal(size=5), update[0, :5], 0.1, 1e-8)
    assert view is None


def test_adamp_and_sgdp_without_projection_are_adam_and_momentum(rng):
    """With δ → 0 the scale-invariance test never passes: AdamP is Adam, SGDP is momentum SGD."""
    grads_stream, params = stream(rng, 20), [(rng.normal(size=(3, 2)), rng.normal(size=3))]
    for ours, reference in ((adamp(1e-2, delta=1e-300), adam(1e-2)), (sgdp(0.05, 0.9, delta=1e-300), momentum(0.05, 0.9))):
        a, _, _ = run(ours, grads_stream, params)
        b, _, rounding = run(reference, grads_stream, params, reduction=6)     # moments, corrections, root, division
        assert_same_params(a, b, rounding, what=reference.name)


def test_projection_needs_params(rng):
    opt = sgdp()
    params = [(rng.normal(size=(3, 2)), rng.normal(size=3))]
    with pytest.raises(ValueError, match="need the parameters"):
        opt.update(params, opt.init(params), None)


# ---------------------------------------------------------------------------------------------------------------
# EnhancedSGD, a heuristic: its components, and that it repeats exactly
# ---------------------------------------------------------------------------------------------------------------
def enhanced_run(rng_seed=0, steps=30, **kwargs):
    rng = np.random.default_rng(rng_seed)
    grads_stream = stream(rng, steps, shapes=((4, 5), (4,)))
    params = [(rng.normal(size=(4, 5)), rng.normal(size=4))]
    opt = enhanced_sgd(**kwargs)
    state, trace = opt.init(params), []
    for grads in grads_stream:
        updates, state = opt.update(grads, state, params)
        trace.append((updates, state))
        params = apply_updates(params, updates)
    return params, trace, grads_stream


def test_enhanced_sgd_repeats_exactly_by_seed_and_the_seed_matters():
    a, _, _ = enhanced_run(seed=7)
    b, _, _ = enhanced_run(seed=7)
    c, _, _ = enhanced_run(seed=8)
    for x, y in zip(tree_leaves(a), tree_leaves(b)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0][0], c[0][0])


def test_enhanced_sgd_first_step_is_plain_sgd_when_its_extras_are_off():
    """σ²_0 = 0: no variance scale yet; ε = 0 and an unseen state: the "no change" action; no noise, clip, centring."""
    _, trace, grads = enhanced_run(epsilon=0.0, noise_scale=0.0, clip_factor=0.0, gradient_centering=False,
                                   learning_rate=0.1)
    updates, state = trace[0]
    for u, g in zip(tree_leaves(updates), tree_leaves(grads[0])):
        assert_within_rounding(u, -0.1 * g, np.abs(0.1 * g), 3)         # η_t = η · c_η · s_t, then η_t · g
    assert state.last[1] == 0 and state.lr_scale == 1.0 and state.momentum_scale == 1.0


def test_enhanced_sgd_variance_ema_and_learning_rate_scale():
    _, trace, grads = enhanced_run(epsilon=0.0, smoothing_factor=0.3, learning_rate=0.1, steps=6)
    variance = 0.0
    for t, ((updates, state), g) in enumerate(zip(trace, grads), 1):
        previous = variance
        flat = np.concatenate([x.ravel() for x in tree_leaves(g)])
        variance = 0.3 * np.var(flat, ddof=1) + 0.7 * previous
        n_ops = 2 * flat.size + 2 * t                  # a mean and a sum of squares per step, an EMA over t steps
        assert_within_rounding(state.variance, variance, variance, n_ops, what="σ²")
        r = (variance - previous) / previous if previous > 0 else 0.0
        scale = min(max(1 - r, 0.5), 1.5)
        # r = (σ²_t − σ²_{t−1}) / σ²_{t−1} cancels: it rounds relative to (σ²_t + σ²_{t−1}) / σ²_{t−1}
        r_scale = (variance + previous) / previous if previous > 0 else 0.0
        lr = 0.1 * state.lr_scale * scale
        assert_within_rounding(state.learning_rate, lr, lr * (1 + r_scale), n_ops + 4, what="η_t")


def test_enhanced_sgd_centres_then_clips_every_array():
    """Without momentum or noise, −Δθ/η_t is the processed gradient: clip(g − mean(g), ±2σ_t), array by array."""
    _, trace, grads_stream = enhanced_run(momentum=0.0, noise_scale=0.0, steps=10)
    clipped = 0
    for (updates, state), grads in zip(trace, grads_stream):
        bound = 2 * math.sqrt(state.variance)
        for u, g in zip(tree_leaves(updates), tree_leaves(grads)):
            expected = np.clip(g - g.mean(), -bound, bound)
            # g − mean(g) (a mean of g.size terms) or the bound 2σ_t (σ²: 2 sums over 24 entries, 10 steps), then
            # u = −η_t·(…) and −u/η_t: terms of size |g| + |mean(g)| + bound
            assert_within_rounding(-u / state.learning_rate, expected, np.abs(g) + abs(g.mean()) + bound,
                                   g.size + 2 * 24 + 10 + 4)
            clipped += int(np.sum(np.abs(g - g.mean()) > bound))
    assert clipped > 0                    # the clipping was exercised


def test_enhanced_sgd_controller_explores_within_bounds():
    _, trace, _ = enhanced_run(epsilon=1.0, steps=200, action_step=0.05, scale_bounds=(0.8, 1.2))
    actions = {state.last[1] for _, state in trace}
    assert actions == set(range(len(ACTIONS)))                     # ε = 1 tries every action
    scales = np.array([(s.lr_scale, s.momentum_scale) for _, s in trace])
    assert scales.min() >= 0.8 and scales.max() <= 1.2                # min(max(·, low), high): exact
    assert any(len(s.q_table) > 1 for _, s in trace[-1:])
    assert all(s.momentum <= 0.99 for _, s in trace)


# ---------------------------------------------------------------------------------------------------------------
# Validation and the listing
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs, error, message", [
    ("adagrad", {"eps": 0.0, "initial_accumulator_value": 0.0}, ValueError, "cannot both be 0"),
    ("adagrad_norm", {"b0": 0.0}, ValueError, "b0 must be > 0"),
    ("adabelief", {"beta2": 1.0}, ValueError, r"beta2 must lie in \[0, 1\)"),
    ("adan", {"beta1": 0.98 + 0.1}, ValueError, "weighs the new term"),
    ("adan", {"bias_correction": "yes"}, TypeError, "bias_correction must be True or False"),
    ("diffgrad", {"eps_placement": "inside"}, ValueError, "unknown eps_placement"),
    ("adamp", {"wd_ratio": 2.0}, ValueError, r"wd_ratio must lie in \[0, 1\]"),
    ("sgdp", {"momentum": 1.0}, ValueError, r"momentum must lie in \[0, 1\)"),
    ("enhanced_sgd", {"epsilon": 1.5}, ValueError, "exploration probability"),
    ("enhanced_sgd", {"scale_bounds": (1.1, 2.0)}, ValueError, "low <= 1 <= high"),
    ("enhanced_sgd", {"seed": 1.5}, TypeError, "seed must be an integer"),
    ("adadagrad", {"test": "inner"}, ValueError, "unknown test"),
    ("adadagrad_norm", {"eta": -1.0}, ValueError, "eta must be > 0"),
    ("adadagrad", {"max_batch_size": 0}, ValueError, "max_batch_size must be > 0"),
    ("adam", {"lr": 0.1}, TypeError, "has no hyper-parameter lr"),
])
def test_bad_hyperparameters_say_what_to_fix(name, kwargs, error, message):
    with pytest.raises(error, match=message):
        make_optimizer(name, **kwargs)


def test_adan_weight_decay_needs_params(rng):
    opt = adan(weight_decay=0.1)
    params = [(rng.normal(size=3),)]
    with pytest.raises(ValueError, match="needs params"):
        opt.update(params, opt.init(params), None)


def test_cli_lists_every_optimizer_with_a_description(capsys):
    assert main(["optimizers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["dba", *OPTIMIZERS]          # DBA first, then the registry
    assert all(len(line.split(maxsplit=1)[1]) > 20 for line in lines)
    assert sum("[per-sample]" in line for line in lines) == len(PER_SAMPLE) + 1  # DBA reads per-sample signals too


def test_cli_shows_defaults_and_rejects_unknown_names(capsys):
    assert main(["optimizers", "adan"]) == 0
    out = capsys.readouterr().out
    assert "beta1=0.02" in out and "bias_correction=False" in out
    assert main(["optimizers", "nope"]) == 2
    assert "unknown optimizer 'nope'" in capsys.readouterr().err


DOCS = Path(__file__).resolve().parent.parent / "docs" / "optimizers"


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_has_a_page_that_states_its_defaults(name):
    """docs/optimizers/NAME.md lists every hyper-parameter with the default the code has."""
    page = (DOCS / f"{name}.md").read_text()
    factory, _ = OPTIMIZERS[name]
    for param, spec in inspect.signature(factory).parameters.items():
        assert f"| `{param}` | `{spec.default!r}` |" in page, f"{name}.md: {param} = {spec.default!r}"
    assert "## Checked against" in page
    assert f"[`{name}`]({name}.md)" in (DOCS / "README.md").read_text()
