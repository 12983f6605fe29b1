"""The two statistics the report compares methods with: relative error reduction and a paired t-test.

::

    err = 100 − accuracy in %
    RER(DBA vs baseline) = (err_baseline − err_DBA) / err_baseline       (in %)

The paired t-test compares two methods (their test accuracies, or their times to a convergence
target) over the final seeds both finished: a
seed fixes the training and validation slices and the initialisation, so the
same seed pairs the two methods on the same data.
"""
from __future__ import annotations

import math

import numpy as np

from .collect import MethodResult


def rer(acc: float, baseline: float) -> float:
    """Relative error reduction in %, from two accuracies in % (nan when the baseline has no error)."""
    err_base = 100.0 - baseline
    return 100.0 * (err_base - (100.0 - acc)) / err_base if err_base > 0 else math.nan


def paired_t(a: dict, b: dict) -> tuple[float, int]:
    """Two-sided paired t-test of two ``{seed: value}`` over the seeds both have.

    Returns ``(p, n_pairs)``; p is nan with fewer than 2 pairs (or when every
    difference is equal).
    """
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return math.nan, len(seeds)
    from scipy.stats import ttest_rel

    diff = np.array([a[s] - b[s] for s in seeds])
    if np.all(diff == diff[0]):
        return math.nan, len(seeds)
    return float(ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue), len(seeds)


def paired_p(a: MethodResult, b: MethodResult) -> tuple[float, int]:
    """:func:`paired_t` of the test accuracies of two methods over the final seeds both finished."""
    return paired_t(a.by_seed(), b.by_seed())
