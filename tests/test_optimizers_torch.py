"""Cross-checks of the NumPy optimizers against framework implementations.

float64, 150 steps of random gradient streams on a few parameter shapes, the
same hyper-parameters on both sides; after every step the parameters must agree
to rounding: within the rounding scales the steps so far added up
(``tests/helpers.py``: ``step_rounding_scale``; step t's update is fed by the
optimizer's running sums over t steps, a norm over at most the P = 40
parameters, and a few element-wise operations).

- SGD, momentum, Nesterov, Adam, AdaGrad against ``torch.optim``;
- AdaBelief, Adan, diffGrad, AdamP, SGDP against ``pytorch_optimizer``.

Where the package implements a variant of the paper, the package's variant
(an option here) is what is compared; the paper's own variant is compared
where the two coincide (diffGrad with a negligible ε) and otherwise checked
against a restatement of the paper's equations in ``test_optimizers.py``.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
po = pytest.importorskip("pytorch_optimizer")

from dba_ref.optimizers import (adabelief, adagrad, adam, adamp, adan, diffgrad, momentum, nesterov,  # noqa: E402
                                sgd, sgdp)
from dba_ref.optimizers.tree import apply_updates, tree_leaves  # noqa: E402
from helpers import assert_within_rounding, step_rounding_scale  # noqa: E402

pytestmark = pytest.mark.torch

STEPS = 150
#: (W, b) shapes of three "layers"; the last has a single input column.
SHAPES = [((5, 3), (5,)), ((2, 5), (2,)), ((4, 1), (4,))]
#: Operations feeding one update besides the running sums: a norm over all P = 40 parameters at most (AdamP's and
#: SGDP's projections, AdaBelief's and Adan's several moments stay below), and a few element-wise operations.
UPDATE_OPS = 40 + 8


def gradient_stream(rng, params, radial_free=False):
    """Random gradients shaped like ``params``; ``radial_free`` removes most of each matrix's component along W
    (so that AdamP/SGDP's scale-invariance test fires)."""
    grads = []
    for W, b in params:
        gW = rng.normal(size=W.shape)
        if radial_free:
            gW = gW - (np.sum(gW * W) / np.sum(W * W)) * W + 1e-3 * rng.normal(size=W.shape)
        grads.append((gW, rng.normal(size=b.shape)))
    return grads


class DiffGradWithoutRootEps(po.DiffGrad):
    """``pytorch_optimizer.DiffGrad`` without the 1e-15 it adds under the root, ``√(v + 1e-15)``, like dba_ref's.

    That constant is no rounding: it moves an update by about ``1e-15 / 2v`` relative,
    5e-9 where a gradient of 0.01 gives v = 1e-7 at the first step, hundreds of times
    the rounding tolerance. Set to 0 (AdaBelief's choice in the same package), the
    two compute the same formula.
    """

    @staticmethod
    def apply_ams_bound(ams_bound, exp_avg_sq, max_exp_avg_sq, eps, exp_avg_sq_eps=0.0):
        return po.DiffGrad.apply_ams_bound(ams_bound, exp_avg_sq, max_exp_avg_sq, eps, exp_avg_sq_eps=0.0)

    @staticmethod
    def apply_ams_bound_foreach(ams_bound, exp_avg_sqs, max_exp_avg_sqs, eps, exp_avg_sq_eps=0.0):
        return po.DiffGrad.apply_ams_bound_foreach(ams_bound, exp_avg_sqs, max_exp_avg_sqs, eps, exp_avg_sq_eps=0.0)


def compare(ours, make_theirs, seed=0, radial_free=False, steps=STEPS):
    """Run both on the same stream, checking the parameters after every step; return our final state."""
    rng = np.random.default_rng(seed)
    params = [(rng.normal(size=w), rng.normal(size=b)) for w, b in SHAPES]
    theirs = [torch.tensor(leaf, dtype=torch.float64, requires_grad=True) for leaf in tree_leaves(params)]
    their_opt = make_theirs(theirs)
    state = ours.init(params)
    rounding = [np.zeros(np.shape(leaf)) for leaf in tree_leaves(params)]
    for t in range(1, steps + 1):
        grads = gradient_stream(rng, params, radial_free)
        for tensor, g in zip(theirs, tree_leaves(grads)):
            tensor.grad = torch.tensor(g, dtype=torch.float64)
        their_opt.step()
        updates, state = ours.update(grads, state, params)
        rounding = [r + step_rounding_scale(p, u, t + UPDATE_OPS)
                    for r, p, u in zip(rounding, tree_leaves(params), tree_leaves(updates))]
        params = apply_updates(params, updates)
        for l, (mine, tensor, r) in enumerate(zip(tree_leaves(params), theirs, rounding)):
            assert_within_rounding(mine, tensor.detach().numpy(), r, 1, what=f"step {t}, leaf {l}")
    return state


TORCH_CASES = {
    "sgd": (lambda: sgd(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "momentum": (lambda: momentum(0.05, 0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "nesterov": (lambda: nesterov(0.05, 0.8), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True)),
    "adam": (lambda: adam(1e-2, 0.8, 0.99, 1e-6), lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.99), eps=1e-6)),
    "adagrad": (lambda: adagrad(0.1), lambda p: torch.optim.Adagrad(p, lr=0.1)),
    "adagrad, eps and initial accumulator": (
        lambda: adagrad(0.1, eps=1e-6, initial_accumulator_value=0.3),
        lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-6, initial_accumulator_value=0.3)),
}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_matches_torch_optim(case):
    ours, theirs = TORCH_CASES[case]
    compare(ours(), theirs)


PACKAGE_CASES = {
    "adabelief": (lambda: adabelief(1e-2), lambda p: po.AdaBelief(p, lr=1e-2)),
    "adabelief, betas and eps": (lambda: adabelief(3e-3, 0.8, 0.99, 1e-12),
                                 lambda p: po.AdaBelief(p, lr=3e-3, betas=(0.8, 0.99), eps=1e-12)),
    # the package's betas are 1 − the paper's β, and it bias-corrects: bias_correction=True
    "adan (bias-corrected)": (lambda: adan(1e-2, bias_correction=True), lambda p: po.Adan(p, lr=1e-2)),
    "adan (bias-corrected), proximal weight decay": (
        lambda: adan(1e-2, 0.1, 0.2, 0.05, weight_decay=0.05, bias_correction=True),
        lambda p: po.Adan(p, lr=1e-2, betas=(0.9, 0.8, 0.95), weight_decay=0.05, weight_decouple=False)),
    # the package adds ε to √v (eps_placement="raw"), and 1e-15 inside the root, which its twin leaves out
    "diffgrad (raw ε)": (lambda: diffgrad(1e-2, eps_placement="raw"), lambda p: DiffGradWithoutRootEps(p, lr=1e-2)),
    # with a negligible ε the paper's form ("corrected") and the package's coincide
    "diffgrad (paper, ε → 0)": (lambda: diffgrad(1e-2, eps=1e-30),
                                lambda p: DiffGradWithoutRootEps(p, lr=1e-2, eps=1e-30)),
    "adamp (raw ε)": (lambda: adamp(1e-2, eps_placement="raw"), lambda p: po.AdamP(p, lr=1e-2)),
    "adamp (authors' code, ε → 0)": (lambda: adamp(1e-2, eps=1e-30), lambda p: po.AdamP(p, lr=1e-2, eps=1e-30)),
    "sgdp": (lambda: sgdp(0.05, 0.9), lambda p: po.SGDP(p, lr=0.05, momentum=0.9)),
}


@pytest.mark.parametrize("case", list(PACKAGE_CASES))
def test_matches_pytorch_optimizer(case):
    ours, theirs = PACKAGE_CASES[case]
    compare(ours(), theirs)


PROJECTION_CASES = {
    "adamp, weight decay, nesterov": (
        lambda: adamp(1e-2, weight_decay=0.1, nesterov=True, eps_placement="raw"),
        lambda p: po.AdamP(p, lr=1e-2, weight_decay=0.1, nesterov=True)),
    "adamp, δ and wd_ratio": (
        lambda: adamp(1e-2, delta=0.3, wd_ratio=0.5, weight_decay=0.2, eps_placement="raw"),
        lambda p: po.AdamP(p, lr=1e-2, delta=0.3, wd_ratio=0.5, weight_decay=0.2)),
    "sgdp, weight decay": (lambda: sgdp(0.05, 0.9, weight_decay=0.1),
                           lambda p: po.SGDP(p, lr=0.05, momentum=0.9, weight_decay=0.1)),
    "sgdp, nesterov": (lambda: sgdp(0.05, 0.8, nesterov=True, weight_decay=0.1),
                       lambda p: po.SGDP(p, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
}


@pytest.mark.parametrize("case", list(PROJECTION_CASES))
def test_projection_matches_pytorch_optimizer_when_it_fires(case):
    """Gradients nearly orthogonal to the weights: the scale-invariance test passes and the projection runs."""
    ours, theirs = PROJECTION_CASES[case]
    state = compare(ours(), theirs, radial_free=True)
    matrices = state.views[0::2]                 # leaves are W, b, W, b, ...
    assert any(view is not None for view in matrices)
    assert all(view is None for view in state.views[1::2])     # biases are never projected


def test_projection_views_both_fire_and_both_are_checked():
    """Over a radial-free stream both the channel and the layer view must occur, or the check above is partial."""
    seen = set()
    for seed in range(4):
        rng = np.random.default_rng(seed)
        params = [(rng.normal(size=w), rng.normal(size=b)) for w, b in SHAPES]
        opt = sgdp(0.05, 0.9)
        state = opt.init(params)
        for _ in range(40):
            updates, state = opt.update(gradient_stream(rng, params, radial_free=True), state, params)
            params = apply_updates(params, updates)
            seen.update(v for v in state.views if v is not None)
    assert seen == {"channel", "layer"}
