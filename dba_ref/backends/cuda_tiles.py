"""The register-tiled product engine of the CUDA backend: block shapes, and the staged tile product.

Every dense product of a DBA step on the GPU is a tile of

    C[i, j] = Σ_k L(i, k) · R(j, k)

where each operand is read either by **rows** (``L(i, k) = M[i, k]``: the
contraction runs along a row of a row-major matrix) or by **columns**
(``L(i, k) = M[rows[k], i]``: it runs down a column, through a list of rows).
This module computes such a tile (:func:`tile_engine`); the four kernels
built on it, which differ only in their operands and in what they do with the
finished tile, are :mod:`dba_ref.backends.cuda_products`.

**The engine.** A block of ``THREADS × THREADS`` threads computes a ``TILE ×
TILE`` tile of C, ``TILE = THREADS · WORK``; thread ``(ty, tx)`` holds the
``WORK × WORK`` entries ``(ty + THREADS·u, tx + THREADS·v)`` in registers.
The contraction runs ``CHUNK`` indices at a time (4 in float64, 8 in
float32: 32 bytes, one memory sector of a row): both operands' ``TILE ×
CHUNK`` slices are staged in shared memory, stored k-major (``s[k, row]``) so
that at each k a thread reads its ``WORK`` values of L and ``WORK`` of R as
consecutive words (no bank conflicts) and does ``WORK²`` fused multiply-adds
with them. Two shared stages: while the block multiplies chunk c, each thread
already holds its share of chunk c + 1 in registers (loaded from global
memory before the multiplications, stored after them), so a global load's
latency hides behind ``CHUNK · WORK²`` FMAs and one barrier per chunk
suffices. The k-major rows are padded by 4 elements so that the stores of a
rows-layout slice (lanes along k) fall into distinct banks too.

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
largest whose grid fills the GPU once (as many blocks as the compiled kernel
has room for on all multiprocessors together), so small batches are not
left to a few SMs. In Numba's CUDA simulator (a Python thread per CUDA
thread) the same code runs with 8-wide tiles, so that the tests at B ≤ 40
cover many tiles and partial ones.

Float types: the engine's dtype is that of its shared tiles and
accumulators; inputs of either float type are converted as they are staged.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from numba import cuda, from_dtype

from .cuda_environment import SIMULATOR


class TileConfig(NamedTuple):
    """A block shape: ``THREADS × THREADS`` threads, each computing ``WORK × WORK`` entries."""

    threads: int
    work: int

    @property
    def tile(self) -> int:
        return self.threads * self.work


#: Block shapes, largest tile first (:func:`choose_config` picks one per launch).
CONFIGS = (TileConfig(2, 4),) if SIMULATOR else (TileConfig(16, 8), TileConfig(16, 4), TileConfig(8, 4))


def choose_config(n_blocks, resident) -> TileConfig:
    """The largest tile whose grid fills the GPU once, else the smallest.

    ``n_blocks(tile)`` is how many blocks the launch has at that tile width;
    ``resident(shape)`` how many blocks of the kernel compiled for that shape
    the whole GPU holds at once (the driver's occupancy calculator, from the
    registers and shared memory of the compiled kernel: see
    :func:`dba_ref.backends.cuda_launch.resident_blocks`). A grid of fewer
    blocks leaves multiprocessors, or their room for more warps, idle; so a
    larger tile (more FMAs per shared-memory load) is taken only when its
    grid fills every place at least once. ``resident`` is asked from the
    largest shape down, and never for the smallest: a shape is compiled only
    when it may be chosen. ``benchmarks/gpu.py`` times every shape, to check the rule.
    """
    for shape in CONFIGS[:-1]:
        if n_blocks(shape.tile) >= resident(shape):
            return shape
    return CONFIGS[-1]


class TileEngine(NamedTuple):
    """The engine of one float type and block shape: its constants, and the tile product of each operand layout.

    The constants are what a kernel built on the engine needs to address its
    tile and declare its arrays (``np.uint64`` where they index). The three
    products are device functions
    ``accumulate(L, l0, n_l, R, r0, n_r, rows, n_k, acc, left, right)`` (see
    :func:`tile_engine`), for L and R read by rows, L by rows and R by
    columns, and both by columns.
    """

    numba_type: object      # the Numba float type of the shared slices and accumulators
    threads: np.uint64      # THREADS
    work: np.uint64         # WORK
    tile: np.uint64         # TILE = THREADS · WORK
    acc: tuple              # shape of a thread's accumulators, (WORK, WORK)
    slices: tuple           # shape of a kernel's shared slices: two stages of CHUNK k-major rows
    by_rows: object
    rows_by_columns: object
    by_columns: object


@functools.cache
def tile_engine(dtype, shape: TileConfig) -> TileEngine:
    """The staged tile product whose shared slices and accumulators have float type ``dtype``, for one block shape."""
    t = from_dtype(np.dtype(dtype))
    U = np.uint64
    chunk = 32 // np.dtype(dtype).itemsize                   # a slice's row in global memory: one 32-byte sector
    THREADS, WORK, CHUNK, TILE = U(shape.threads), U(shape.work), U(chunk), U(shape.tile)
    N_THREADS = THREADS * THREADS
    PER_THREAD = TILE * CHUNK // N_THREADS                   # elements of one slice each thread stages
    STRIDE = TILE + U(4)                                     # k-major rows padded by 4 elements (see stage)
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

    return TileEngine(t, THREADS, WORK, TILE, (shape.work, shape.work), (2, chunk, int(STRIDE)),
                      make_accumulate(False, False), make_accumulate(False, True), make_accumulate(True, True))
