"""The tiled matrix products of the CUDA backend: one register-tiled engine, four kernels.

Every dense product of a DBA step on the GPU is a tile of

    C[i, j] = Σ_k L(i, k) · R(j, k)

where each operand is read either by **rows** (``L(i, k) = M[i, k]``: the
contraction runs along a row of a row-major matrix) or by **columns**
(``L(i, k) = M[rows[k], i]``: it runs down a column, through a list of rows).
The four kernels differ only in their operands and in what they do with the
finished tile (the epilogue):

==============  ===============================  =========  ===================  =====================
kernel          C                                shape      L, R                 epilogue
==============  ===============================  =========  ===================  =====================
``gram``        ``K = (Δ Δᵀ) ⊙ (A Aᵀ + 1)``      (B, B)     rows, rows (twice)   upper tiles, mirrored
``linear``      ``Z = A Wᵀ + b``, ``A' = φ(Z)``  (B, out)   rows, rows           bias, activation
``backward``    ``Δ = (Δ' W) ⊙ φ'(Z)``           (B, in)    rows, columns        derivative
``masked_sum``  ``G = (1/k) Δ_Sᵀ A_S``           (out, in)  columns, columns     scale by 1/k
==============  ===============================  =========  ===================  =====================

**The engine** (:func:`tile_kernels`). A block of ``THREADS × THREADS``
threads computes a ``TILE × TILE`` tile of C, ``TILE = THREADS · WORK``;
thread ``(ty, tx)`` holds the ``WORK × WORK`` entries ``(ty + THREADS·u,
tx + THREADS·v)`` in registers. The contraction runs ``CHUNK`` indices at a
time (4 in float64, 8 in float32: 32 bytes, one memory sector of a row):
both operands' ``TILE × CHUNK`` slices are staged in shared memory,
stored k-major (``s[k, row]``) so that at each k a thread reads its ``WORK``
values of L and ``WORK`` of R as consecutive words (no bank conflicts) and
does ``WORK²`` fused multiply-adds with them. Two shared stages: while the
block multiplies chunk c, each thread already holds its share of chunk c + 1
in registers (loaded from global memory before the multiplications, stored
after them), so a global load's latency hides behind ``CHUNK · WORK²`` FMAs
and one barrier per chunk suffices. The k-major rows are padded by 4
elements so that the stores of a rows-layout slice (lanes along k) fall into
distinct banks too.

Why these numbers (``docs/performance.md`` has the arithmetic): per k a
thread issues ``2·WORK`` shared loads for ``WORK²`` FMAs; at ``WORK = 8`` a
float64 tile is bound by the FP64 units, not by shared memory, on an
H100/H200 (1 wavefront of 128 B per clock against 64 FP64 FMAs per clock and
SM). ``WORK = 8`` holds 64 accumulators per thread (128 registers in
float64), so the Gram kernel computes ``A Aᵀ`` first, parks ``A Aᵀ + 1`` in
K itself, and reuses the same registers for ``Δ Δᵀ``. Indices are unsigned
(``np.uint64``): Numba then emits no Python negative-index wraparound in the
inner loop, which otherwise costs more integer instructions than there are
FMAs.

**Shapes** (:data:`CONFIGS`): ``(THREADS, WORK)`` = (16, 8), (16, 4) or
(8, 4), i.e. 128-, 64- and 32-wide tiles; :func:`choose_config` takes the
largest that still gives every multiprocessor two blocks, so small batches
are not left to a few SMs. In Numba's CUDA simulator (a Python thread per CUDA
thread) the same code runs with 8-wide tiles, so that the tests at B ≤ 40
cover many tiles and partial ones.

Float types: the engine's dtype is that of its shared tiles and
accumulators; inputs of either float type are converted as they are staged.
The Gram matrix and the masked means accumulate in float64 (spec §4), the
forward and backward passes in the model's dtype, as :mod:`dba_ref.backprop`.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from numba import config, cuda, from_dtype

SIMULATOR = bool(config.ENABLE_CUDASIM)


class TileConfig(NamedTuple):
    """A block shape: ``THREADS × THREADS`` threads, each computing ``WORK × WORK`` entries."""

    threads: int
    work: int

    @property
    def tile(self) -> int:
        return self.threads * self.work


#: Block shapes, largest tile first (:func:`choose_config` picks one per launch).
CONFIGS = (TileConfig(2, 4),) if SIMULATOR else (TileConfig(16, 8), TileConfig(16, 4), TileConfig(8, 4))

#: Activation ids of the ``linear`` and ``backward`` kernels (the order of :data:`dba_ref.model.ACTIVATIONS`).
ACTIVATION_IDS = {"relu": 0, "tanh": 1, "sigmoid": 2, "identity": 3}
NO_ACTIVATION = -1      # the output layer: Z only


def blocks(n: int, size: int) -> int:
    """How many blocks of ``size`` cover ``n``."""
    return (n + size - 1) // size


@functools.cache
def _multiprocessors() -> int:
    return 1 if SIMULATOR else cuda.get_current_device().MULTIPROCESSOR_COUNT


def choose_config(n_blocks) -> TileConfig:
    """The largest tile for which ``n_blocks(tile)`` blocks give every multiprocessor two (else the smallest).

    Larger tiles do more FMAs per shared-memory load, but a grid of fewer
    blocks than multiprocessors leaves some idle, and one of barely more
    ends with a wave of a few blocks. Two blocks per SM is a first guess,
    to be checked against the block-shape columns of ``benchmarks/gpu.py``.
    """
    for shape in CONFIGS:
        if n_blocks(shape.tile) >= 2 * _multiprocessors():
            return shape
    return CONFIGS[-1]


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
# The engine
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
    t = from_dtype(np.dtype(dtype))
    U = np.uint64
    chunk = 32 // np.dtype(dtype).itemsize                   # a slice's row in global memory: one 32-byte sector
    THREADS, WORK, CHUNK, TILE = U(shape.threads), U(shape.work), U(chunk), U(shape.tile)
    N_THREADS = THREADS * THREADS
    PER_THREAD = TILE * CHUNK // N_THREADS                   # elements of one slice each thread stages
    STRIDE = TILE + U(4)                                     # k-major rows padded by 4 elements (see stage)
    SLICES = (2, chunk, int(STRIDE))                         # two stages of k-major slices
    ACC = (shape.work, shape.work)
    PENDING = int(PER_THREAD)
    WORK_INT = shape.work
    assert int(PER_THREAD) * int(N_THREADS) == int(TILE * CHUNK), shape

    @cuda.jit(device=True, inline=True)
    def position(e, columns):
        """``(r, k)`` of a thread's e-th element of a ``TILE × CHUNK`` slice.

        Consecutive threads take consecutive k in the rows layout (a row's
        contiguous features) and consecutive r in the columns layout (a row's
        contiguous columns): the global loads are coalesced either way.
        """
        if columns:
            return e % TILE, e // TILE
        return e // CHUNK, e % CHUNK

    @cuda.jit(device=True, inline=True)
    def fetch_rows(M, rows, r0, k0, n_r, n_k, pending):
        """``pending[p]`` ← this thread's share of the slice ``M[r0 + r, k0 + k]`` (0 outside ``(n_r, n_k)``)."""
        tid = U(cuda.threadIdx.y) * THREADS + U(cuda.threadIdx.x)
        for p in range(U(PENDING)):
            r, k = position(tid + p * N_THREADS, False)
            pending[p] = M[r0 + r, k0 + k] if r0 + r < n_r and k0 + k < n_k else 0

    @cuda.jit(device=True, inline=True)
    def fetch_columns(M, rows, r0, k0, n_r, n_k, pending):
        """``pending[p]`` ← this thread's share of the slice ``M[rows[k0 + k], r0 + r]`` (0 outside)."""
        tid = U(cuda.threadIdx.y) * THREADS + U(cuda.threadIdx.x)
        for p in range(U(PENDING)):
            r, k = position(tid + p * N_THREADS, True)
            pending[p] = M[rows[k0 + k], r0 + r] if r0 + r < n_r and k0 + k < n_k else 0

    @cuda.jit(device=True, inline=True)
    def stage(pending, columns, slices, s):
        """Store this thread's ``pending`` share of a slice into shared stage ``s`` (k-major).

        In the rows layout the 128 bytes a warp stores at once (16 lanes of
        float64 or 32 of float32) are 4 rows × CHUNK k; the 4-element padding
        of ``STRIDE`` shifts consecutive k by 4 rows' worth of banks, so the
        stores hit 32 distinct banks. In the columns layout they are
        consecutive r: conflict-free without padding.
        """
        tid = U(cuda.threadIdx.y) * THREADS + U(cuda.threadIdx.x)
        for p in range(U(PENDING)):
            r, k = position(tid + p * N_THREADS, columns)
            slices[s, k, r] = pending[p]

    def make_accumulate(l_columns: bool, r_columns: bool):
        """The tile product for operands read by rows (False) or by columns through ``rows`` (True)."""
        fetch_left = fetch_columns if l_columns else fetch_rows
        fetch_right = fetch_columns if r_columns else fetch_rows

        @cuda.jit(device=True, inline=True)
        def accumulate(L, l0, n_l, R, r0, n_r, rows, n_k, acc, left, right):
            """``acc[u, v] = Σ_k L(l0 + ty + THREADS·u, k) · R(r0 + tx + THREADS·v, k)`` over ``k < n_k``.

            ``left`` and ``right`` are the kernel's shared slices; every thread
            of the block must call this (it synchronises the block).
            """
            tx = U(cuda.threadIdx.x)
            ty = U(cuda.threadIdx.y)
            l_pending = cuda.local.array(PENDING, t)
            r_pending = cuda.local.array(PENDING, t)
            a = cuda.local.array(WORK_INT, t)
            b = cuda.local.array(WORK_INT, t)
            for u in range(WORK):
                for v in range(WORK):
                    acc[u, v] = 0
            n_chunks = (n_k + CHUNK - U(1)) // CHUNK
            fetch_left(L, rows, l0, U(0), n_l, n_k, l_pending)
            fetch_right(R, rows, r0, U(0), n_r, n_k, r_pending)
            stage(l_pending, l_columns, left, U(0))
            stage(r_pending, r_columns, right, U(0))
            cuda.syncthreads()
            for c in range(n_chunks):
                s = c & U(1)
                more = c + U(1) < n_chunks
                if more:                                # chunk c + 1 into registers while chunk c is multiplied
                    fetch_left(L, rows, l0, (c + U(1)) * CHUNK, n_l, n_k, l_pending)
                    fetch_right(R, rows, r0, (c + U(1)) * CHUNK, n_r, n_k, r_pending)
                for k in range(CHUNK):
                    for u in range(WORK):
                        a[u] = left[s, k, ty + THREADS * u]
                    for v in range(WORK):
                        b[v] = right[s, k, tx + THREADS * v]
                    for u in range(WORK):
                        for v in range(WORK):
                            acc[u, v] += a[u] * b[v]
                if more:                                # the other stage was last read before the barrier
                    stage(l_pending, l_columns, left, s ^ U(1))
                    stage(r_pending, r_columns, right, s ^ U(1))
                cuda.syncthreads()

        return accumulate

    by_rows = make_accumulate(False, False)
    rows_by_columns = make_accumulate(False, True)
    by_columns = make_accumulate(True, True)

    @cuda.jit
    def gram(A, D, K, one):
        """Tile (blockIdx.y, blockIdx.x) of ``K = (D Dᵀ) ⊙ (A Aᵀ + 1)``; only tiles on and above the diagonal.

        ``A Aᵀ + 1`` is parked in the tile of K between the two products (each
        thread rereads only what it wrote), and each finished entry is written
        to (i, j) and (j, i). In a diagonal tile the thread owning (j, i)
        computes exactly the same sums as the one owning (i, j) (the same
        products in the same order), so both write the same value and K is
        exactly symmetric.
        """
        bi = U(cuda.blockIdx.y)
        bj = U(cuda.blockIdx.x)
        if bj < bi:
            return
        n = U(K.shape[0])
        i0 = bi * TILE + U(cuda.threadIdx.y)
        j0 = bj * TILE + U(cuda.threadIdx.x)
        acc = cuda.local.array(ACC, t)
        left = cuda.shared.array(SLICES, t)
        right = cuda.shared.array(SLICES, t)
        # (both operands by rows: the `rows` argument, here K, is not read)
        by_rows(A, bi * TILE, n, A, bj * TILE, n, K, U(A.shape[1]), acc, left, right)
        for u in range(WORK):
            for v in range(WORK):
                i, j = i0 + THREADS * u, j0 + THREADS * v
                if i < n and j < n:
                    K[i, j] = acc[u, v] + one
        by_rows(D, bi * TILE, n, D, bj * TILE, n, K, U(D.shape[1]), acc, left, right)
        for u in range(WORK):
            for v in range(WORK):
                i, j = i0 + THREADS * u, j0 + THREADS * v
                if i < n and j < n:
                    acc[u, v] *= K[i, j]
        cuda.syncthreads()              # in a diagonal tile, K[j, i] is another thread's parked value
        for u in range(WORK):
            for v in range(WORK):
                i, j = i0 + THREADS * u, j0 + THREADS * v
                if i < n and j < n:
                    K[i, j] = acc[u, v]
                    K[j, i] = acc[u, v]

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

    return TileKernels(shape, gram, linear, backward, masked_sum)


# --------------------------------------------------------------------------
# Launches (device arrays in, device arrays out)
# --------------------------------------------------------------------------
def _grid(n_rows: int, n_cols: int, shape: TileConfig):
    return (blocks(n_cols, shape.tile), blocks(n_rows, shape.tile)), (shape.threads, shape.threads)


def _product_config(n_rows: int, n_cols: int) -> TileConfig:
    return choose_config(lambda tile: blocks(n_rows, tile) * blocks(n_cols, tile))


def launch_gram(dA, dD, dK, shape: TileConfig | None = None) -> None:
    """``dK ← (dD dDᵀ) ⊙ (dA dAᵀ + 1)`` in ``dK``'s dtype; ``shape`` None: :func:`choose_config`."""
    B = dK.shape[0]
    if shape is None:
        shape = choose_config(lambda tile: blocks(B, tile) * (blocks(B, tile) + 1) // 2)
    kernels = tile_kernels(np.dtype(dK.dtype), shape)
    grid, block = _grid(B, B, shape)
    kernels.gram[grid, block](dA, dD, dK, dK.dtype.type(1))


def launch_linear(dA, dW, db, activation: int, dZ, dA_out) -> None:
    """``dZ ← dA dWᵀ + db`` and, for a hidden layer, ``dA_out ← φ(dZ)`` (activation id, or NO_ACTIVATION)."""
    B, n_out = dZ.shape
    shape = _product_config(B, n_out)
    grid, block = _grid(B, n_out, shape)
    tile_kernels(np.dtype(dZ.dtype), shape).linear[grid, block](dA, dW, db, activation, dZ, dA_out)


def launch_backward(dD_next, dW, d_rows, dZ, activation: int, dD) -> None:
    """``dD ← (dD_next dW) ⊙ φ'(dZ)``; ``d_rows`` holds ``0 … dW.shape[0] − 1`` (or more)."""
    B, n_in = dD.shape
    shape = _product_config(B, n_in)
    grid, block = _grid(B, n_in, shape)
    tile_kernels(np.dtype(dD.dtype), shape).backward[grid, block](dD_next, dW, d_rows, dZ, activation, dD)


def launch_masked_sum(dA, dD, d_rows, dG) -> None:
    """``dG ← (1/|rows|) dD[rows]ᵀ dA[rows]``, accumulated in ``dG``'s dtype."""
    n_out, n_in = dG.shape
    shape = _product_config(n_out, n_in)
    grid, block = _grid(n_out, n_in, shape)
    k = dG.dtype.type(d_rows.shape[0])
    tile_kernels(np.dtype(dG.dtype), shape).masked_sum[grid, block](dA, dD, d_rows, k, dG)
