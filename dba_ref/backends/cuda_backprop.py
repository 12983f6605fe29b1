"""Per-sample backpropagation on the GPU (spec §2): the forward and backward passes of :mod:`dba_ref.backprop`.

Layer by layer, with the tiled products of :mod:`dba_ref.backends.cuda_products`::

    Z_l = A_{l-1} W_lᵀ + b_l,   A_l = φ(Z_l)           linear kernel        (B, out_l)
    Δ_L = softmax(Z_L) − onehot(y),   ℓ = −log softmax(Z_L)[y]   softmax kernel (cuda_reductions)
    Δ_l = (Δ_{l+1} W_{l+1}) ⊙ φ'(Z_l)                 backward kernel      (B, out_l)

Everything stays on the device: the caller gets the layers' inputs
``A_{l-1}`` and error signals ``Δ_l`` as device arrays, ready for
:class:`dba_ref.backends.cuda_step.DeviceStep`, and the per-sample losses. The
arithmetic is that of the NumPy reference in the model's dtype; sums run in
another order (tiles of the contraction), so results agree to rounding.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from . import cuda_launch
from .cuda_products import ACTIVATION_IDS, NO_ACTIVATION
from .cuda_reductions import softmax_cross_entropy


def device_backprop(params, activation: str, X, y):
    """One batch's forward and backward passes on the GPU.

    Parameters
    ----------
    params : list of (ndarray, ndarray)
        ``(W_l, b_l)`` per layer, host arrays, ``W_l`` ``(out_l, in_l)``, all of one
        float dtype (the model's).
    activation : str
        A key of :data:`~dba_ref.backends.cuda_products.ACTIVATION_IDS`: relu, tanh,
        sigmoid or identity.
    X : ndarray
        Host array ``(B, in)`` in the model's dtype.
    y : ndarray
        Host int array ``(B,)`` of class indices (a strided view is fine: it is copied contiguous).

    Returns
    -------
    ``(inputs, deltas, losses)``: device arrays ``A_{l-1}`` ``(B, in_l)`` and
    ``Δ_l`` ``(B, out_l)`` per layer, and ``ℓ`` ``(B,)``, all in the model's dtype.

    Inputs are not checked here, as in every kernel launch:
    :meth:`dba_ref.backends.cuda_step.DeviceStep.from_batch` checks them. The
    copies in are the batch and the parameters.
    """
    dtype = np.dtype(params[0][0].dtype)
    act = ACTIVATION_IDS[activation]
    B = X.shape[0]
    weights = [cuda_launch.upload(W, dtype) for W, _ in params]
    biases = [cuda_launch.upload(b, dtype) for _, b in params]
    inputs = [cuda_launch.upload(X, dtype)]
    pre = []
    for l, (dW, db) in enumerate(zip(weights, biases)):
        hidden = l < len(params) - 1
        dZ = cuda.device_array((B, dW.shape[0]), dtype)
        dA = cuda.device_array((B, dW.shape[0]), dtype) if hidden else dZ
        cuda_launch.launch_linear(inputs[-1], dW, db, act if hidden else NO_ACTIVATION, dZ, dA)
        pre.append(dZ)
        if hidden:
            inputs.append(dA)
    delta = cuda.device_array_like(pre[-1])
    losses = cuda.device_array(B, dtype)
    threads = cuda_launch.SOFTMAX_THREADS
    softmax_cross_entropy[cuda_launch.blocks(B, threads), threads](pre[-1], cuda_launch.upload(y, np.int64), delta,
                                                                   losses)
    deltas = [delta]
    rows = cuda.to_device(np.arange(max(W.shape[0] for W, _ in params), dtype=np.int64))
    for l in range(len(params) - 2, -1, -1):
        delta = cuda.device_array_like(pre[l])
        cuda_launch.launch_backward(deltas[-1], weights[l + 1], rows, pre[l], act, delta)
        deltas.append(delta)
    deltas.reverse()
    return inputs, deltas, losses
