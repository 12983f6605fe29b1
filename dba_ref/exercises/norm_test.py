"""Exercise 12: AdAdaGrad's adaptive batch test, the norm test on a batch's per-sample gradients.

The student writes ``norm_test(G, eta) -> (statistic, next_batch_size)`` for
per-sample gradients ``G`` (B, P), B >= 2: ``σ² = Σ_i ‖g_i − ḡ‖² / (B − 1)``,
``statistic = σ² / (B ‖ḡ‖²)``; the test passes when ``statistic <= η²`` and
the next batch keeps B, else it grows to ``⌈σ² / (η² ‖ḡ‖²)⌉`` (``inf`` when
``ḡ = 0``). The reference is :func:`dba_ref.optimizers.adaptive_batch.norm_test`
(its statistic is ``B/(B − 1)·mean_variance``, exercise 4). Mistakes named:
the biased variance, the statistic without its ``/B``, ``‖Σ g_i‖²`` for
``‖ḡ‖²``, η for η², the size rounded down, a batch that shrinks.
"""
from __future__ import annotations

import math

import numpy as np

from ..agreement import AMBIGUITY, rounding_tolerance, value_scale
from ..backprop import Signals
from ..optimizers.adaptive_batch import norm_test as reference_norm_test
from .definitions import Case, Exercise
from .differences import as_float_array, fmt, with_cause


def _test(G, eta):
    """The reference's :class:`~dba_ref.optimizers.adaptive_batch.BatchTest` of per-sample gradients ``G``
    (one "layer" with no input: ``g_i = Δ_i``)."""
    G = np.asarray(G, np.float64)
    return reference_norm_test(Signals([np.zeros((G.shape[0], 0))], [G], np.zeros(G.shape[0])), float(eta))


def next_batch_size(B: int, implied: float):
    """B when the test passes (``implied <= B``), else ``⌈implied⌉`` (``inf`` for an infinite implied size)."""
    if not implied > B:
        return B
    return math.inf if math.isinf(implied) else int(math.ceil(implied))


def reference_batch_test(G, eta) -> tuple:
    """``(statistic, next batch size)`` of the norm test on ``G`` with ``eta``."""
    result = _test(G, eta)
    return float(result.statistic), next_batch_size(result.batch_size, result.implied_size)


def _scale(G) -> float:
    """The rounding scale of the statistic: ``B/(B − 1)·value_scale(mean_variance)`` of the batch's ``T, Q``."""
    G = np.asarray(G, np.float64)
    B = G.shape[0]
    T, Q = float(np.sum(G * G)), float(np.sum(G.sum(axis=0) ** 2))
    return B / (B - 1) * float(value_scale("mean_variance", T, Q, B))


def _statistic_tolerance(G) -> float:
    """Rounding tolerance of the statistic: its scale, and ``B + P + 4`` roundings (the sums over samples and
    coordinates, then a few divisions)."""
    B, P = np.shape(G)
    return float(rounding_tolerance(_scale(G), B + P + 4))


def _case(name, G, eta) -> Case:
    G = np.asarray(G, np.float64)
    return Case(f"{name} (B = {G.shape[0]}, P = {G.shape[1]}, eta = {eta:g})", (G, float(eta)))


def _clear(G, eta) -> bool:
    """Whether the test's decisions on ``G`` are clear: the statistic is not at η² and the implied size not at
    an integer, both by more than the agreement rule's AMBIGUITY in units of their rounding scale."""
    statistic, _ = reference_batch_test(G, eta)
    if not math.isfinite(statistic):
        return True
    B = np.shape(G)[0]
    scale = _scale(G)
    implied = B * statistic / eta ** 2
    return (abs(statistic - eta ** 2) > AMBIGUITY["float64"] * scale
            and abs(implied - round(implied)) > AMBIGUITY["float64"] * scale * B / eta ** 2)


def _edges(rng) -> list:
    mean = np.array([1.0, -0.5, 0.25])
    return [_case("identical gradients (σ² = 0: the test passes)", [mean] * 4, 0.1),
            _case("the gradients cancel (ḡ = 0: the next batch is infinite)", [[1.0, 2.0], [-1.0, -2.0]], 0.5),
            _case("two samples, a clear pass", [[1.0, 0.1], [1.0, -0.1]], 0.5),
            _case("a noisy batch (the test fails: the batch grows)", mean + 2.0 * rng.normal(size=(6, 3)), 0.2),
            _case("one coordinate (P = 1)", [[1.0], [1.5], [0.5], [1.2]], 0.1),
            _case("a large eta (a lenient test)", mean + 0.5 * rng.normal(size=(5, 3)), 2.0)]


def _random(rng) -> Case:
    while True:
        B, P = int(rng.integers(2, 17)), int(rng.integers(1, 7))
        G = rng.normal(size=P) + rng.uniform(0.1, 3.0) * rng.normal(size=(B, P))
        eta = float(rng.uniform(0.05, 1.0))
        if _clear(G, eta):
            return _case("random batch", G, eta)


def _grade(got, expected, case) -> str | None:
    G, eta = case.args
    B = G.shape[0]
    statistic, size = expected
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return the pair (statistic, next_batch_size); you returned {type(got).__name__}"
    stat, problem = as_float_array(got[0], "the statistic")
    if problem:
        return problem
    if stat.shape != ():
        return f"the statistic is one number; you returned an array of shape {stat.shape}"
    stat = float(stat)
    tolerance = _statistic_tolerance(G)
    if not (stat == statistic or abs(stat - statistic) <= tolerance):
        message = f"your statistic is {fmt(stat)}, expected σ²/(B‖ḡ‖²) = {fmt(statistic)}"
        wrong = [(statistic * (B - 1) / B, "you used the biased variance (divided by B): σ² = Σ‖g_i − ḡ‖²/(B − 1)"),
                 (statistic * B, "the division by B is missing: the variance of a mean of B samples is σ²/B, so "
                                 "the statistic is σ²/(B‖ḡ‖²)"),
                 (statistic / B ** 2, "you used ‖Σ g_i‖² where the test has ‖ḡ‖² = ‖Σ g_i‖²/B²")]
        cause = next((why for value, why in wrong if math.isfinite(value) and abs(stat - value) <= 4 * B * tolerance),
                     None)
        return with_cause(message, cause)
    n, problem = as_float_array(got[1], "the next batch size")
    if problem:
        return problem
    if n.shape != () or not (math.isinf(float(n)) or float(n) == int(n)):
        return f"the next batch size is one whole number (or inf); you returned {got[1]!r}"
    n = float(n)
    if n == size:
        return None
    message = (f"the next batch size is {fmt(n)}, expected {fmt(size)} (statistic {fmt(statistic)}, "
               f"η² = {fmt(eta ** 2)})")
    implied = B * statistic / eta ** 2
    if math.isfinite(implied):
        wrong = [(next_batch_size(B, B * statistic / eta), "you compared with η, the test compares with η²"),
                 (B if math.floor(implied) <= B else math.floor(implied),
                  "the size is rounded down: take the ceiling, ⌈σ²/(η²‖ḡ‖²)⌉, so the next test can pass"),
                 (math.ceil(implied), "the batch size never shrinks: when the test passes, keep B")]
        cause = next((why for value, why in wrong if value == n and value != size), None)
    else:
        cause = "ḡ = 0 here: no finite batch makes the mean reliable, so the next batch size is inf (math.inf)"
    return with_cause(message, cause)


EXERCISE = Exercise(12, "norm_test", "AdAdaGrad's norm test", (("norm_test", ("G", "eta")),), reference_batch_test,
                    _edges, _random, _grade, reads_first="06_adaptive_batch_sizes.ipynb", minutes=30,
                    builds_on=(4,))
