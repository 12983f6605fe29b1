"""The four tiled kernels of the CUDA backend, built on the engine of :mod:`dba_ref.backends.cuda_tiles`.

Each is a tile ``C[i, j] = Σ_k L(i, k) · R(j, k)`` of the engine, with its
operands read by rows or by columns, and an epilogue: what the kernel does
with the finished tile.

==============  ===============================  =========  ===================  =====================
kernel          C                                shape      L, R                 epilogue
==============  ===============================  =========  ===================  =====================
``gram``        ``K = (Δ Δᵀ) ⊙ (A Aᵀ + 1)``      (B, B)     rows, rows (twice)   upper tiles, mirrored
``linear``      ``Z = A Wᵀ + b``, ``A' = φ(Z)``  (B, out)   rows, rows           bias, activation
``backward``    ``Δ = (Δ' W) ⊙ φ'(Z)``           (B, in)    rows, columns        derivative
``masked_sum``  ``G = (1/k) Δ_Sᵀ A_S``           (out, in)  columns, columns     scale by 1/k
==============  ===============================  =========  ===================  =====================

:func:`tile_kernels` compiles the four for one float type and block shape;
their launches (grids, block shapes) are :mod:`dba_ref.backends.cuda_launch`.
The Gram matrix and the masked means accumulate in float64 (spec §4), the
forward and backward passes in the model's dtype, as :mod:`dba_ref.backprop`.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from numba import cuda

from .cuda_tiles import TileConfig, TileEngine, tile_engine

#: Activation ids of the ``linear`` and ``backward`` kernels (the order of :data:`dba_ref.model.ACTIVATIONS`).
ACTIVATION_IDS = {"relu": 0, "tanh": 1, "sigmoid": 2, "identity": 3}
NO_ACTIVATION = -1      # the output layer: Z only


# --------------------------------------------------------------------------
# Activations φ and φ' (as dba_ref.model.ACTIVATIONS), by id
# --------------------------------------------------------------------------
@cuda.jit(device=True, inline=True)
def _sigmoid(z):
    e = math.exp(-abs(z))               # exp of a non-positive number never overflows
    return 1 / (1 + e) if z >= 0 else e / (1 + e)


@cuda.jit(device=True, inline=True)
def activate(activation, z):
    """``φ(z)``: relu, tanh, sigmoid or identity (ids of :data:`ACTIVATION_IDS`)."""
    if activation == 0:
        return z if z > 0 else z - z            # z − z: a zero of z's float type (z is finite)
    if activation == 1:
        return math.tanh(z)
    if activation == 2:
        return _sigmoid(z)
    return z


@cuda.jit(device=True, inline=True)
def derivative(activation, z):
    """``φ'(z)`` written in terms of z: ``[z > 0]``, ``1 − tanh(z)²``, ``σ(z)(1 − σ(z))``, 1."""
    zero = z - z
    if activation == 0:
        return zero + 1 if z > 0 else zero
    if activation == 1:
        h = math.tanh(z)
        return 1 - h * h
    if activation == 2:
        s = _sigmoid(z)
        return s * (1 - s)
    return zero + 1


# --------------------------------------------------------------------------
# The four kernels, each built on one engine
# --------------------------------------------------------------------------
class TileKernels(NamedTuple):
    """The four kernels of one dtype and block shape (see the module docstring)."""

    config: TileConfig
    gram: object            # gram(A, D, K, one)
    linear: object          # linear(A, W, b, activation, Z, A_out)
    backward: object        # backward(D_next, W, rows, Z, activation, D)
    masked_sum: object      # masked_sum(A, D, rows, k, G)


@functools.cache
def tile_kernels(dtype, shape: TileConfig) -> TileKernels:
    """The kernels whose shared tiles and accumulators have float type ``dtype``, for one block shape."""
    engine = tile_engine(dtype, shape)
    return TileKernels(shape, _gram_kernel(engine), _linear_kernel(engine), _backward_kernel(engine),
                       _masked_sum_kernel(engine))


def _gram_kernel(engine: TileEngine):
    t, THREADS, WORK, TILE, ACC, SLICES, by_rows, rows_by_columns, by_columns = engine
    U = np.uint64

    @cuda.jit
    def gram(A, D, K, one):
        """Tile (blockIdx.y, blockIdx.x) of ``K = (D Dᵀ) ⊙ (A Aᵀ + 1)``; only tiles on and above the diagonal.

        ``A Aᵀ + 1`` is parked in the tile of K between the two products;
        each thread rereads only what it wrote, and multiplies it in place
        (one load and one store an entry: no barrier, and no address kept
        across the two, which would cost registers: ``benchmarks/gpu_registers.py``).
        An off-diagonal tile also writes each entry to (j, i), in the lower
        triangle no block reads. A diagonal tile computes both (i, j) and
        (j, i), in two threads that form exactly the same sums (the same
        products in the same order), so K is exactly symmetric.
        """
        bi = U(cuda.blockIdx.y)
        bj = U(cuda.blockIdx.x)
        if bj < bi:
            return
        n = U(K.shape[0])
        acc = cuda.local.array(ACC, t)
        left = cuda.shared.array(SLICES, t)
        right = cuda.shared.array(SLICES, t)
        # (both operands by rows: the `rows` argument, here K, is not read)
        by_rows(A, bi * TILE, n, A, bj * TILE, n, K, U(A.shape[1]), acc, left, right)
        i0 = bi * TILE + U(cuda.threadIdx.y)
        j0 = bj * TILE + U(cuda.threadIdx.x)
        for u in range(WORK):
            for v in range(WORK):
                i, j = i0 + THREADS * u, j0 + THREADS * v
                if i < n and j < n:
                    K[i, j] = acc[u, v] + one
        by_rows(D, bi * TILE, n, D, bj * TILE, n, K, U(D.shape[1]), acc, left, right)
        mirror = bi != bj
        for u in range(WORK):
            for v in range(WORK):
                i, j = i0 + THREADS * u, j0 + THREADS * v
                if i < n and j < n:
                    x = acc[u, v] * K[i, j]
                    K[i, j] = x
                    if mirror:
                        K[j, i] = x

    return gram


def _linear_kernel(engine: TileEngine):
    t, THREADS, WORK, TILE, ACC, SLICES, by_rows, rows_by_columns, by_columns = engine
    U = np.uint64

    @cuda.jit
    def linear(A, W, b, activation, Z, A_out):
        """Tile of ``Z = A Wᵀ + b`` (B, out) and, unless ``activation`` is NO_ACTIVATION, ``A_out = φ(Z)``."""
        n, n_out = U(Z.shape[0]), U(Z.shape[1])
        i0 = U(cuda.blockIdx.y) * TILE
        j0 = U(cuda.blockIdx.x) * TILE
        acc = cuda.local.array(ACC, t)
        left = cuda.shared.array(SLICES, t)
        right = cuda.shared.array(SLICES, t)
        by_rows(A, i0, n, W, j0, n_out, b, U(A.shape[1]), acc, left, right)
        for u in range(WORK):
            for v in range(WORK):
                i = i0 + U(cuda.threadIdx.y) + THREADS * u
                j = j0 + U(cuda.threadIdx.x) + THREADS * v
                if i < n and j < n_out:
                    Z[i, j] = acc[u, v] + b[j]
        if activation != NO_ACTIVATION:                 # a second, rolled loop: acc stays in registers
            for u in range(WORK):
                for v in range(WORK):
                    i = i0 + U(cuda.threadIdx.y) + THREADS * u
                    j = j0 + U(cuda.threadIdx.x) + THREADS * v
                    if i < n and j < n_out:
                        A_out[i, j] = activate(activation, Z[i, j])

    return linear


def _backward_kernel(engine: TileEngine):
    t, THREADS, WORK, TILE, ACC, SLICES, by_rows, rows_by_columns, by_columns = engine
    U = np.uint64

    @cuda.jit
    def backward(D_next, W, rows, Z, activation, D):
        """Tile of ``Δ = (Δ' W) ⊙ φ'(Z)`` (B, in), ``Δ'`` (B, out), ``W`` (out, in); ``rows = 0..out−1``."""
        n, n_in = U(D.shape[0]), U(D.shape[1])
        i0 = U(cuda.blockIdx.y) * TILE
        j0 = U(cuda.blockIdx.x) * TILE
        acc = cuda.local.array(ACC, t)
        left = cuda.shared.array(SLICES, t)
        right = cuda.shared.array(SLICES, t)
        rows_by_columns(D_next, i0, n, W, j0, n_in, rows, U(W.shape[0]), acc, left, right)
        for u in range(WORK):
            for v in range(WORK):
                i = i0 + U(cuda.threadIdx.y) + THREADS * u
                j = j0 + U(cuda.threadIdx.x) + THREADS * v
                if i < n and j < n_in:
                    D[i, j] = acc[u, v]
        for u in range(WORK):                           # a second, rolled loop: acc stays in registers
            for v in range(WORK):
                i = i0 + U(cuda.threadIdx.y) + THREADS * u
                j = j0 + U(cuda.threadIdx.x) + THREADS * v
                if i < n and j < n_in:
                    D[i, j] *= derivative(activation, Z[i, j])

    return backward


def _masked_sum_kernel(engine: TileEngine):
    t, THREADS, WORK, TILE, ACC, SLICES, by_rows, rows_by_columns, by_columns = engine
    U = np.uint64

    @cuda.jit
    def masked_sum(A, D, rows, k, G):
        """Tile of ``G = (1/k) Σ_p D[rows[p]] ⊗ A[rows[p]]``, shape (out, in): the mean gradient over ``rows``."""
        n_out, n_in = U(G.shape[0]), U(G.shape[1])
        o0 = U(cuda.blockIdx.y) * TILE
        f0 = U(cuda.blockIdx.x) * TILE
        acc = cuda.local.array(ACC, t)
        left = cuda.shared.array(SLICES, t)
        right = cuda.shared.array(SLICES, t)
        by_columns(D, o0, n_out, A, f0, n_in, rows, U(rows.shape[0]), acc, left, right)
        for u in range(WORK):
            for v in range(WORK):
                o = o0 + U(cuda.threadIdx.y) + THREADS * u
                f = f0 + U(cuda.threadIdx.x) + THREADS * v
                if o < n_out and f < n_in:
                    G[o, f] = acc[u, v] / k

    return masked_sum
