"""The DBA update (spec §6): for every layer, the mean gradient over the samples its search keeps.

For every layer l separately::

    K_l  = (Δ_l Δ_lᵀ) ⊙ (A_{l-1} A_{l-1}ᵀ + 1)            Gram of the per-sample gradients     (B, B)
    S_l  = search(K_l; metric, strategy, min_size, tol)     the subset to keep
    ḡ_l  = (1/|S_l|) Δ_{S_l}ᵀ [A_{S_l}, 1]                 mean gradient over the subset        (out, in), (out,)

The list of ``ḡ_l`` is what a base optimizer (SGD, Adam, ...) then receives
in place of the batch-mean gradient (:func:`dba_ref.optimizers.dba` does
that). A batch smaller than ``min_size`` (the last batch of an epoch, say) is
used whole: that is not an error here, unlike in :func:`dba_ref.select`.

The three computations of a layer are a backend's :class:`Kernels`; the
NumPy reference ones are the default, and :mod:`dba_ref.backends` offers
others with the same signatures.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from .backprop import subset_mean_grad
from .gram import identity_gram
from .search import NUMPY_SEARCH, SearchKernels, check_exhaustive_size, min_size_count, search


class Kernels(NamedTuple):
    """What a DBA step computes for one layer: the Gram matrix, the search, the masked mean.

    ``gram(A, D) -> K`` (spec §3), ``search`` the three searching functions
    (:class:`~dba_ref.search.SearchKernels`, spec §5) and
    ``mean_grad(A, D, indices) -> (gW, gb)`` (spec §6), each with the
    signature and the semantics of the NumPy reference.
    """

    gram: Callable
    search: SearchKernels
    mean_grad: Callable


#: The reference kernels.
NUMPY_KERNELS = Kernels(identity_gram, NUMPY_SEARCH, subset_mean_grad)


def search_plan(strategy: str, min_size, batch_size: int) -> tuple[str, int]:
    """How a batch of ``batch_size`` is searched: ``(strategy, m)`` with ``m`` the count of ``min_size``.

    A batch smaller than ``min_size`` is used whole, ``("all", batch_size)``;
    otherwise ``exhaustive`` is refused above :data:`~dba_ref.search.EXHAUSTIVE_MAX_B`.
    """
    m = min_size_count(min_size, batch_size)
    if m > batch_size:
        return "all", batch_size
    check_exhaustive_size(strategy, batch_size)
    return strategy, m


def dba_gradients(signals, metric: str, strategy: str, min_size, tol: float,
                  kernels: Kernels = NUMPY_KERNELS) -> tuple[list, list]:
    """The DBA update direction of every layer of a batch: ``([(gW_l, gb_l)], [Selection_l])``.

    ``signals`` is the batch's :class:`~dba_ref.backprop.Signals`; ``metric``,
    ``strategy``, ``min_size`` (a count or a fraction) and ``tol`` are those
    of :func:`dba_ref.select`, already checked. A layer whose selection keeps
    the whole batch gets exactly the plain mean gradient (``mean_grad`` with
    every index is ``mean_grad`` of the batch), so ``strategy="all"``
    reproduces the base optimizer bit for bit.
    """
    strategy, m = search_plan(strategy, min_size, signals.batch_size)
    grads, selections = [], []
    for A, D in signals.layers:
        selection = search(kernels.gram(A, D), metric, strategy, m, tol, kernels.search)
        grads.append(kernels.mean_grad(A, D, selection.indices))
        selections.append(selection)
    return grads, selections
