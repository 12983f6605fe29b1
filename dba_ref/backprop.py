"""Per-sample backpropagation (spec §2).

Backpropagating the *sum* of per-sample losses keeps every sample's own error
signal, because samples do not interact in an MLP::

    Δ_L = softmax(Z_L) - onehot(y)                 (B, out_L)
    Δ_l = (Δ_{l+1} W_{l+1}) ⊙ φ'(Z_l)              (B, out_l)

The per-sample gradient of sample i for layer l is an outer product::

    ∇W_l(i) = Δ_l[i] ⊗ A_{l-1}[i]                  (out_l, in_l)
    ∇b_l(i) = Δ_l[i]                               (out_l,)

Everything DBA needs is in the pair ``(A_{l-1}, Δ_l)`` of each layer: the
:class:`Signals` of a batch. From it come the explicit per-sample gradients
(:func:`per_sample_grads`, for teaching and checking), the Gram matrices
(:mod:`dba_ref.gram`) and the mean gradient over any subset of samples
(:func:`mean_grad`, checked; :func:`subset_mean_grad`, the unchecked kernel
the backends and the DBA update call), which is all an optimizer ever receives.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_indices, check_layer_signals
from .model import ACTIVATIONS, MLP, cross_entropy, softmax


@dataclass(frozen=True)
class Signals:
    """The per-sample quantities of one batch.

    Attributes
    ----------
    inputs : list of ndarray
        ``inputs[l]`` is ``A_{l-1}``, the input of layer l, shape ``(B, in_l)``.
    deltas : list of ndarray
        ``deltas[l]`` is ``Δ_l``, the error signal of layer l, shape ``(B, out_l)``.
    losses : ndarray
        Per-sample losses ``ℓ_i``, shape ``(B,)``.
    backend : str
        The backend that computed them (:mod:`dba_ref.backends`), which DBA's
        update computes with too: ``"numpy"`` for :func:`backprop`.
    """

    inputs: list
    deltas: list
    losses: np.ndarray
    backend: str = "numpy"

    @property
    def batch_size(self) -> int:
        return int(self.losses.shape[0])

    @property
    def layers(self):
        """Iterate over ``(A_{l-1}, Δ_l)`` pairs, one per layer."""
        return zip(self.inputs, self.deltas)

    def mean_grads(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The batch-mean gradient of every layer, :func:`mean_grads` of these signals."""
        return mean_grads(self)


def backprop(model: MLP, X, y, check_input: bool = True) -> Signals:
    """One batched forward and backward pass giving every sample's error signals.

    Parameters
    ----------
    model : MLP
    X : array ``(B, in)`` ; y : int array ``(B,)``
    check_input : bool
        Validate and convert ``(X, y)`` first (:meth:`MLP.check_batch`);
        callers that already did, like the training loop, pass False.

    Returns
    -------
    Signals with ``inputs[l]`` = A_{l-1} ``(B, in_l)`` and ``deltas[l]`` = Δ_l ``(B, out_l)``.
    """
    if check_input:
        X, y = model.check_batch(X, y)
    pre, inputs = model.forward_all(X)
    B = X.shape[0]
    dphi = ACTIVATIONS[model.activation].grad
    delta = softmax(pre[-1])
    delta[np.arange(B), y] -= 1
    deltas = [delta]
    for l in range(model.n_layers - 2, -1, -1):
        delta = (delta @ model.weights[l + 1]) * dphi(pre[l])
        deltas.append(delta)
    deltas.reverse()
    return Signals(inputs=inputs, deltas=deltas, losses=cross_entropy(pre[-1], y))


def per_sample_grads(model: MLP, X, y) -> list[tuple[np.ndarray, np.ndarray]]:
    """Explicit per-sample gradients, one ``(gW, gb)`` per layer.

    ``gW[i] = Δ_l[i] ⊗ A_{l-1}[i]`` has shape ``(B, out_l, in_l)`` and
    ``gb[i] = Δ_l[i]`` has shape ``(B, out_l)``. This materialises
    B·out·in numbers per layer: it is for teaching and for checking the Gram
    identity, not for training.

    >>> import numpy as np
    >>> from dba_ref import MLP, per_sample_grads
    >>> gW, gb = per_sample_grads(MLP([3, 2]), np.ones((5, 3)), np.zeros(5, int))[0]
    >>> gW.shape, gb.shape
    ((5, 2, 3), (5, 2))
    """
    signals = backprop(model, X, y)
    return [(np.einsum("bo,bi->boi", D, A), D.copy()) for A, D in signals.layers]


def flatten_layer_grads(gW: np.ndarray, gb: np.ndarray) -> np.ndarray:
    """Stack one layer's per-sample gradients into ``G`` of shape ``(B, P_l)``.

    Row i is ``g_i = [vec(∇W_l(i)), ∇b_l(i)]`` with ``P_l = out·in + out``.
    """
    return np.concatenate([gW.reshape(gW.shape[0], -1), gb], axis=1)


def mean_grad(A: np.ndarray, D: np.ndarray, indices=None) -> tuple[np.ndarray, np.ndarray]:
    """Mean gradient of one layer over a subset S of the batch, with no per-sample gradient.

    ``(1/|S|) Σ_{i∈S} g_i = (1/|S|) Δ_Sᵀ [A_S, 1]``, returned as ``(gW, gb)``
    of shapes ``(out, in)`` and ``(out,)``.

    Parameters
    ----------
    A : array ``(B, in)`` ; D : array ``(B, out)``
        One layer's inputs ``A_{l-1}`` and error signals ``Δ_l`` (:class:`Signals`);
        float32 when both are, else float64.
    indices : None, int array ``(k,)`` or bool array ``(B,)``
        The subset S: ``None`` for the whole batch (the gradient of the usual
        mean loss); distinct integer indices in ``[0, B)``, in any order (the
        mean does not depend on it: they are sorted first); or a boolean mask
        of length B. S must hold at least one sample. Repeated, negative or
        out-of-range indices, floats and masks of another length are refused
        with a ``ValueError`` or ``TypeError`` saying what to pass.

    Examples
    --------
    >>> import numpy as np
    >>> A, D = np.array([[1.0], [2.0], [4.0]]), np.array([[1.0], [1.0], [1.0]])
    >>> mean_grad(A, D, [2, 0])                       # the mean of samples 0 and 2
    (array([[2.5]]), array([1.]))
    >>> mean_grad(A, D, [True, False, True])[0]       # the same subset as a mask
    array([[2.5]])
    """
    A, D = check_layer_signals(A, D)
    rows = None if indices is None else np.sort(check_indices(indices, A.shape[0]))
    return subset_mean_grad(A, D, rows)


def subset_mean_grad(A: np.ndarray, D: np.ndarray, rows=None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mean_grad`'s arithmetic, unchecked: the backends' kernel (:class:`dba_ref.update.Kernels`).

    ``(1/k) Δ[rows]ᵀ [A[rows], 1]`` with ``k = len(A[rows])``: the rows are
    taken exactly as NumPy indexing takes them (a row listed twice counts
    twice, a boolean mask selects); the DBA step passes a selection's sorted
    distinct indices. ``rows=None``, and ``rows`` equal to ``0, 1, ..., B − 1``,
    compute ``Δᵀ [A, 1] / B`` on the arrays as given, so that a selection of the
    whole batch is the plain mean gradient bit for bit.
    """
    if rows is not None and not _every_row_in_order(rows, A.shape[0]):
        A, D = A[rows], D[rows]
    k = A.shape[0]
    return (D.T @ A) / k, D.sum(axis=0) / k


def _every_row_in_order(rows, batch_size: int) -> bool:
    """Is ``rows`` the integer index array ``0, 1, ..., batch_size − 1``?"""
    rows = np.asarray(rows)
    return (rows.shape == (batch_size,) and np.issubdtype(rows.dtype, np.integer)
            and bool((rows == np.arange(batch_size)).all()))


def mean_grads(signals: Signals) -> list[tuple[np.ndarray, np.ndarray]]:
    """The batch-mean gradient of every layer, ``[(gW_l, gb_l)]``: what plain optimizers use."""
    return [subset_mean_grad(A, D) for A, D in signals.layers]


def batch_grads(model: MLP, X, y) -> list[tuple[np.ndarray, np.ndarray]]:
    """Gradient of the mean loss ``(1/B) Σ_i ℓ_i`` for every layer, ``[(gW_l, gb_l)]``."""
    return mean_grads(backprop(model, X, y))
