"""Selections of samples: what the functions that take one accept, what they refuse, on every backend.

A selection S of a batch of B samples is given as distinct integer indices in
``[0, B)``, in any order, at least one, or as a boolean mask of length B
(``dba_ref._validation.check_indices``). The public functions that take one
(``dba_ref.mean_grad``, ``DeviceStep.mean_grad`` of the CUDA backend,
``dba_ref.metrics.subset_stats``) check it once:

- for any valid selection, ``mean_grad`` is the explicit mean of the explicit
  per-sample gradients over S (to rounding at its scale, ``tests/conftest.py``),
  whatever the order or the form (indices or mask) it is given in;
- every other selection (repeated, negative, out-of-range or float indices,
  2-D arrays, empty, masks of another length or with no True) is refused with a
  ``ValueError``/``TypeError`` that says what to pass, the same error from every
  function and backend.

The backends' kernels (``Kernels.mean_grad``, which the DBA step calls with a
selection's sorted distinct indices) are unchecked, but exact for whatever they
are given: rows are taken as NumPy indexing takes them (a repeated row counts
twice, a mask selects, an index out of range is an ``IndexError``) on every
backend, and the whole-batch shortcut fires only for ``0, 1, ..., B − 1`` in
order, where it is exact.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dba_ref import MLP, backprop, mean_grad, per_sample_grads
from dba_ref.backends import BACKENDS, get_backend
from dba_ref.backprop import subset_mean_grad
from dba_ref.metrics import subset_stats

from helpers import assert_within_rounding, mean_grad_scale

#: Examples per backend: the CUDA simulator runs a Python thread per CUDA thread.
EXAMPLES = {"numpy": 100, "numba": 50, "cuda": 6}
MAX_B = {"numpy": 9, "numba": 9, "cuda": 5}


def examples(backend):
    return settings(max_examples=EXAMPLES[backend], deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def cuda_step(A, D):
    """A CUDA ``DeviceStep`` of one layer (the simulator in CI), or a skip where the backend cannot run."""
    try:
        get_backend("cuda")
    except OSError as error:
        pytest.skip(str(error))
    from dba_ref.backends.cuda import DeviceStep

    return DeviceStep([(A, D)])


@st.composite
def layer_batches(draw, max_b):
    """A random MLP, a batch of 1..max_b samples (rows possibly repeated), one of its layers' (A, D) and the
    layer's explicit per-sample gradients ``(gW, gb)``."""
    sizes = [draw(st.integers(1, 5)) for _ in range(draw(st.integers(2, 3)))]
    sizes[-1] = max(sizes[-1], 2)
    model = MLP(sizes, activation=draw(st.sampled_from(["relu", "tanh"])), seed=draw(st.integers(0, 2 ** 16)))
    B = draw(st.integers(1, max_b))
    X = draw(arrays(np.float64, (B, sizes[0]), elements=st.floats(-3, 3)))
    y = np.array(draw(st.lists(st.integers(0, sizes[-1] - 1), min_size=B, max_size=B)))
    if draw(st.booleans()):
        src = np.array(draw(st.lists(st.integers(0, B - 1), min_size=B, max_size=B)))
        X, y = X[src], y[src]
    layer = draw(st.integers(0, model.n_layers - 1))
    A, D = list(backprop(model, X, y).layers)[layer]
    return A, D, per_sample_grads(model, X, y)[layer]


@st.composite
def valid_selections(draw, B):
    """``(selection, S)``: a valid selection in one of its accepted forms, and the sorted indices S it selects."""
    S = np.array(sorted(draw(st.sets(st.integers(0, B - 1), min_size=1))), np.int64)
    form = draw(st.sampled_from(["sorted", "permuted", "list", "mask", "int32"]))
    if form == "permuted":
        return draw(st.permutations(list(S))), S
    if form == "list":
        return [int(i) for i in S], S
    if form == "mask":
        mask = np.zeros(B, bool)
        mask[S] = True
        return mask, S
    return S.astype(np.int32 if form == "int32" else np.int64), S


def explicit_mean(gW, gb, rows):
    """``(1/k) Σ_p g_{rows[p]}`` from the explicit per-sample gradients (a repeated row counts twice)."""
    return gW[rows].sum(axis=0) / len(rows), gb[rows].sum(axis=0) / len(rows)


def assert_mean_of(got, A, D, gW, gb, rows, what):
    """``got`` is the explicit mean over ``rows`` to rounding: k products summed, then a division."""
    sW, sb = mean_grad_scale(A, D, rows)
    eW, eb = explicit_mean(gW, gb, rows)
    assert_within_rounding(got[0], eW, sW, len(rows) + 1, what=f"{what}: weight gradient")
    assert_within_rounding(got[1], eb, sb, len(rows) + 1, what=f"{what}: bias gradient")


# ---------------------------------------------------------------------------------------------------------------
# Valid selections: the explicit mean, whatever the form
# ---------------------------------------------------------------------------------------------------------------
@examples("numpy")
@given(data=st.data(), case=layer_batches(MAX_B["numpy"]))
def test_mean_grad_of_any_valid_selection_is_the_explicit_mean(data, case):
    A, D, (gW, gb) = case
    selection, S = data.draw(valid_selections(A.shape[0]))
    got = mean_grad(A, D, selection)
    assert_mean_of(got, A, D, gW, gb, S, f"selection {selection!r}")
    sorted_ = mean_grad(A, D, S)                    # the order and the form do not change a bit
    assert all(np.array_equal(g, s) for g, s in zip(got, sorted_))


def test_device_step_mean_grad_of_any_valid_selection_is_the_explicit_mean():
    @examples("cuda")
    @given(data=st.data(), case=layer_batches(MAX_B["cuda"]))
    def check(data, case):
        A, D, (gW, gb) = case
        selection, S = data.draw(valid_selections(A.shape[0]))
        assert_mean_of(cuda_step(A, D).mean_grad(0, selection), A, D, gW, gb, S, f"selection {selection!r}")

    check()


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_kernel_takes_rows_as_numpy_indexing_does(backend):
    """Repeated rows, negative rows, masks, any order: the kernel's mean is over ``np.arange(B)[rows]``."""
    kernel = get_backend(backend).kernels.mean_grad

    @examples(backend)
    @given(data=st.data(), case=layer_batches(MAX_B[backend]))
    def check(data, case):
        A, D, (gW, gb) = case
        B = A.shape[0]
        kind = data.draw(st.sampled_from(["repeated", "negative", "mask", "any order"]))
        if kind == "mask":
            rows = np.array(data.draw(st.lists(st.booleans(), min_size=B, max_size=B)))
            if not rows.any():
                rows[data.draw(st.integers(0, B - 1))] = True
        else:
            rows = np.array(data.draw(st.lists(st.integers(0, B - 1), min_size=1, max_size=2 * B)))
            rows = rows - B if kind == "negative" else rows
        assert_mean_of(kernel(A, D, rows), A, D, gW, gb, np.arange(B)[rows], f"{kind} rows {rows!r}")

    check()


@pytest.mark.parametrize("backend", BACKENDS)
def test_only_the_whole_batch_in_order_takes_the_shortcut(backend):
    """The issue's cases: a selection of length B that is not 0..B−1 is not the batch mean, on every backend."""
    kernel = get_backend(backend).kernels.mean_grad
    rng = np.random.default_rng(18)
    A, D = rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    g = [np.einsum("o,i->oi", D[i], A[i]) for i in range(3)]
    whole = kernel(A, D, None)
    assert all(np.array_equal(a, b) for a, b in zip(kernel(A, D, np.arange(3)), whole))    # bit for bit
    for rows, members in (([True, False, True], [0, 2]), (np.array([True, False, True]), [0, 2]),
                          ([0, 0, 1], [0, 0, 1]), ([2, 1, 0], [2, 1, 0])):
        expected = sum(g[i] for i in members) / len(members)
        np.testing.assert_allclose(kernel(A, D, rows)[0], expected, rtol=1e-12, atol=1e-15)
        if sorted(members) != [0, 1, 2]:
            assert not np.allclose(kernel(A, D, rows)[0], whole[0])
    with pytest.raises(IndexError):
        kernel(A, D, [0, 1, 5])


def test_public_whole_batch_selections_are_the_plain_mean_bit_for_bit():
    rng = np.random.default_rng(0)
    A, D = rng.normal(size=(6, 3)), rng.normal(size=(6, 4))
    plain = mean_grad(A, D)
    for selection in (np.arange(6), [5, 4, 3, 2, 1, 0], np.ones(6, bool)):
        assert all(np.array_equal(a, b) for a, b in zip(mean_grad(A, D, selection), plain))
    np.testing.assert_array_equal(mean_grad(A, D, [True, False, True, False, False, False])[1], (D[0] + D[2]) / 2)


def test_subset_stats_of_a_mask_and_of_indices_agree_and_the_empty_set_is_zero():
    G = np.random.default_rng(1).normal(size=(5, 3))
    K = G @ G.T
    T, Q, k = subset_stats(K, [1, 3])
    assert (T, Q, k) == subset_stats(K, np.array([False, True, False, True, False]))
    assert k == 2 and np.isclose(T, K[1, 1] + K[3, 3]) and np.isclose(Q, np.sum(G[[1, 3]].sum(axis=0) ** 2))
    assert subset_stats(K, []) == (0.0, 0.0, 0) == subset_stats(K, np.zeros(5, bool))


# ---------------------------------------------------------------------------------------------------------------
# Invalid selections: the same clear error from every public function
# ---------------------------------------------------------------------------------------------------------------
#: (kind, selection for a batch of 3, error, what the message says)
INVALID = [
    ("repeated", [0, 0, 1], ValueError, r"holds 0 more than once; each sample may be selected once \(pass np.unique"),
    ("out of range", [0, 1, 5], ValueError, r"holds 5, outside \[0, 3\) for a batch of 3"),
    ("negative", [-1, 0], ValueError, r"holds -1, outside \[0, 3\).*negative indices are not accepted"),
    ("empty", [], ValueError, r"selects no sample; give at least one"),
    ("float", [0.0, 1.0], TypeError, r"distinct integer indices.*got dtype float64 \(convert whole numbers"),
    ("2-D", [[0, 1]], ValueError, r"must be a 1-D array.*got shape \(1, 2\)"),
    ("scalar", 1, ValueError, r"must be a 1-D array.*got shape \(\)"),
    ("short mask", [True, False], ValueError, r"boolean mask of length 2 for a batch of 3"),
    ("empty mask", [False, False, False], ValueError, r"boolean mask with no True entry"),
    ("string", "012", TypeError, r"must be a 1-D array of distinct integer indices in \[0, 3\) or a boolean mask"),
    ("None in a list", [0, None], TypeError, r"got dtype object"),
]


@pytest.mark.parametrize("selection,error,message", [case[1:] for case in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_selections_are_refused_alike_everywhere(selection, error, message):
    rng = np.random.default_rng(3)
    A, D = rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    K = A @ A.T
    calls = {"mean_grad": lambda: mean_grad(A, D, selection),
             "DeviceStep.mean_grad": lambda: cuda_step(A, D).mean_grad(0, selection),
             "subset_stats": lambda: subset_stats(K, selection)}
    if selection == [] or selection == [False, False, False]:
        del calls["subset_stats"]                    # the empty set's statistics are defined: (0, 0, 0)
    messages = set()
    for name, call in calls.items():
        with pytest.raises(error, match=message) as info:
            call()
        messages.add(str(info.value))
    assert len(messages) == 1, messages              # one rule, one message


@examples("numpy")
@given(data=st.data(), B=st.integers(1, 12), kind=st.sampled_from(["repeated", "out of range", "negative", "float",
                                                                   "short mask", "long mask", "2-D"]))
def test_every_invalid_selection_of_each_kind_is_refused(data, B, kind):
    """Drawn selections of each invalid kind; ``mean_grad`` refuses them and leaves its inputs alone."""
    rng = np.random.default_rng(B)
    A, D = rng.normal(size=(B, 2)), rng.normal(size=(B, 3))
    before = A.copy(), D.copy()
    S = list(data.draw(st.permutations(sorted(data.draw(st.sets(st.integers(0, B - 1), min_size=1))))))
    if kind == "repeated":
        S.insert(data.draw(st.integers(0, len(S))), data.draw(st.sampled_from(S)))
    elif kind == "out of range":
        S.insert(data.draw(st.integers(0, len(S))), data.draw(st.integers(B, 3 * B)))
    elif kind == "negative":
        S.insert(data.draw(st.integers(0, len(S))), data.draw(st.integers(-3 * B, -1)))
    if kind == "float":
        selection = np.array(S, float)
    elif kind in ("short mask", "long mask"):
        n = data.draw(st.integers(0, B - 1) if kind == "short mask" else st.integers(B + 1, 2 * B))
        selection = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    elif kind == "2-D":
        selection = np.array(S)[None, :]
    else:
        selection = np.array(S)
    error = TypeError if kind == "float" else ValueError
    with pytest.raises(error, match="indices"):
        mean_grad(A, D, selection)
    assert np.array_equal(A, before[0]) and np.array_equal(D, before[1])


# ---------------------------------------------------------------------------------------------------------------
# The layer's arrays: checked at the same boundary
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("A,D,error,message", [
    (np.ones((3, 2)), np.ones((4, 2)), ValueError, "A has 3 rows and D has 4"),
    (np.ones(3), np.ones((3, 2)), ValueError, r"A must be 2-D"),
    (np.ones((3, 2)), np.full((3, 2), np.nan), ValueError, "D contains NaN or inf"),
    (np.ones((3, 2)), np.array([["a", "b"]] * 3), TypeError, "D must be a numeric array"),
])
def test_mean_grad_checks_the_layer_arrays(A, D, error, message):
    with pytest.raises(error, match=message):
        mean_grad(A, D, [0])


def test_mean_grad_keeps_float32_and_the_kernel_is_the_same_arithmetic():
    rng = np.random.default_rng(4)
    A, D = rng.normal(size=(7, 3)).astype(np.float32), rng.normal(size=(7, 2)).astype(np.float32)
    got = mean_grad(A, D, [6, 1, 3])
    assert got[0].dtype == got[1].dtype == np.float32
    assert all(np.array_equal(a, b) for a, b in zip(got, subset_mean_grad(A, D, np.array([1, 3, 6]))))
