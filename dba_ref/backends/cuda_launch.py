"""Launching the CUDA backend's kernels: host arrays to the device, grids and block shapes, results back.

Host code only, unchecked (the callers check their inputs once): device
arrays in, device arrays out, except where a name says it copies to the host.

- the tiled products (:mod:`dba_ref.backends.cuda_products`): :func:`launch_gram`,
  :func:`launch_linear`, :func:`launch_backward`, :func:`launch_masked_sum`, each on
  the block shape :func:`dba_ref.backends.cuda_tiles.choose_config` picks for its grid;
- the reductions (:mod:`dba_ref.backends.cuda_reductions`): :func:`launch_stats`
  (``r``, ``diag``, ``(T, Q)`` of stacked Gram matrices), :func:`launch_greedy`
  (every layer's greedy path in one launch) and :func:`launch_mean` (the mean
  gradient over a list of rows: ``masked_sum`` and ``masked_bias``).
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ..metrics import METRIC_NAMES
from .cuda_products import tile_kernels
from . import cuda_reductions
from .cuda_reductions import REDUCE
from .cuda_tiles import TileConfig, choose_config


def blocks(n: int, size: int) -> int:
    """How many blocks of ``size`` cover ``n``."""
    return (n + size - 1) // size


def float_dtype(*arrays) -> np.dtype:
    """The arrays' common dtype when it is float32 or float64, else float64."""
    dtype = np.result_type(*arrays)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def upload(x: np.ndarray, dtype: np.dtype):
    """A device copy of the host array ``x`` in ``dtype`` (made contiguous first, as a copy to the device needs)."""
    return cuda.to_device(np.ascontiguousarray(x, dtype))


def batch_rows(batch_size: int, rows=None) -> np.ndarray:
    """``np.arange(batch_size)[rows]`` as int64 (``None``: every row): the rows a mean is taken over.

    The rows are read exactly as NumPy indexing reads them, as the reference
    :func:`dba_ref.backprop.subset_mean_grad` does (a boolean mask selects, an
    index out of range is NumPy's ``IndexError``), so that no device kernel
    ever reads outside the batch.
    """
    every = np.arange(batch_size, dtype=np.int64)
    return every if rows is None else every[rows]


# --------------------------------------------------------------------------
# The tiled products
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


# --------------------------------------------------------------------------
# The reductions
# --------------------------------------------------------------------------
def launch_stats(dK):
    """``(r, diag, totals)`` on the device for the stacked Gram matrices ``dK`` (L, B, B)."""
    L, B = dK.shape[0], dK.shape[1]
    r = cuda.device_array((L, B), np.float64)
    diag = cuda.device_array((L, B), np.float64)
    out = cuda.device_array((L, 2), np.float64)
    cuda_reductions.column_sums[(blocks(B, REDUCE), L), REDUCE](dK, r, diag)
    cuda_reductions.totals[L, REDUCE](r, diag, out)
    return r, diag, out


def launch_greedy(dK, r, diag, totals, metric: str, min_size: int, tol: float) -> list:
    """The greedy path of every layer in one launch, copied to the host: ``[(removed, values)]``."""
    L, B = dK.shape[0], dK.shape[1]
    work = cuda.device_array((L, B), np.float64)
    active = cuda.device_array((L, B), np.int8)
    removed = cuda.device_array((L, B), np.int64)
    values = cuda.device_array((L, B), np.float64)
    counts = cuda.device_array(L, np.int64)
    cuda_reductions.greedy[L, REDUCE](dK, r, diag, totals, METRIC_NAMES.index(metric), min_size, tol, work,
                                      active, removed, values, counts)
    counts, removed, values = (x.copy_to_host() for x in (counts, removed, values))
    return [(removed[l, :n].copy(), values[l, :n].copy()) for l, n in enumerate(counts)]


def launch_mean(dA, dD, rows: np.ndarray):
    """``(1/|S|) Δ_Sᵀ [A_S, 1]`` in float64 over the host int64 ``rows`` (see :func:`batch_rows`), as host ``(gW, gb)``."""
    d_rows = cuda.to_device(rows)
    gW = cuda.device_array((dD.shape[1], dA.shape[1]), np.float64)
    gb = cuda.device_array(dD.shape[1], np.float64)
    launch_masked_sum(dA, dD, d_rows, gW)
    cuda_reductions.masked_bias[blocks(dD.shape[1], REDUCE), REDUCE](dD, d_rows, np.float64(rows.shape[0]), gb)
    return gW.copy_to_host(), gb.copy_to_host()
