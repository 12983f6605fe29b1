"""Launching the CUDA backend's kernels: host arrays to the device, grids and block shapes, results back.

Host code only, unchecked (the callers check their inputs once): device
arrays in, device arrays out, except where a name says it copies to the host.

- the tiled products (:mod:`dba_ref.backends.cuda_products`): :func:`launch_gram`,
  :func:`launch_linear`, :func:`launch_backward`, :func:`launch_masked_sum`, each on
  the block shape :func:`dba_ref.backends.cuda_tiles.choose_config` picks for its grid
  from the compiled kernel's occupancy (:func:`resident_blocks`);
- the reductions (:mod:`dba_ref.backends.cuda_reductions`): :func:`launch_stats`
  (``r``, ``diag``, ``(T, Q)`` of stacked Gram matrices), :func:`launch_greedy`
  (every layer's greedy path in one launch, laid out by a :class:`GreedyPlan`) and
  :func:`launch_mean` (the mean gradient over a list of rows: ``masked_sum`` and ``masked_bias``);
- :func:`step_variants`: every kernel a training step launches, with the argument
  types it passes (what ``benchmarks/gpu_registers.py`` compiles without a GPU).
"""
from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import numpy as np
from numba import cuda, from_dtype, types

from ..metrics import METRIC_NAMES
from .cuda_environment import SIMULATOR
from .cuda_products import tile_kernels
from . import cuda_reductions
from .cuda_reductions import MAX_BLOCK, MAX_TEAMS, REDUCE, SAMPLES, TEAM, greedy_kernel
from .cuda_tiles import CONFIGS, TileConfig, choose_config


def blocks(n: int, size: int) -> int:
    """How many blocks of ``size`` cover ``n``."""
    return (n + size - 1) // size


#: Threads per block of the one-thread-per-sample kernels (the softmax and cross-entropy of the output layer).
SOFTMAX_THREADS = 128


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


def argument_types(kernel, args) -> tuple:
    """The Numba types ``kernel`` is compiled for when launched with ``args``."""
    return tuple(kernel.typeof_pyval(a) for a in args)


def resident_blocks(kernel, args, threads: int) -> int:
    """How many blocks of ``threads`` threads of ``kernel``, compiled for ``args``, the GPU holds at once.

    The driver's occupancy calculator (``cuOccupancyMaxActiveBlocksPerMultiprocessor``,
    through Numba's ``max_cooperative_grid_blocks``) from the registers and
    shared memory the compiled kernel uses, times the multiprocessors.
    """
    return _resident_blocks(kernel, argument_types(kernel, args), threads)


@functools.cache
def _resident_blocks(kernel, signature: tuple, threads: int) -> int:
    return kernel.compile(signature).max_cooperative_grid_blocks(threads)


# --------------------------------------------------------------------------
# The tiled products
# --------------------------------------------------------------------------
def _launch_tiled(name: str, dtype, n_rows: int, n_cols: int, args, shape: TileConfig | None,
                  upper=False) -> TileConfig:
    """Launch tile kernel ``name`` of float type ``dtype`` over a ``(n_rows, n_cols)`` result, on ``shape``
    (None: :func:`choose_config`); ``upper``: only the tiles on and above the diagonal work. Returns the shape."""
    def kernel(s):
        return getattr(tile_kernels(np.dtype(dtype), s), name)

    def n_blocks(tile):
        rows, cols = blocks(n_rows, tile), blocks(n_cols, tile)
        return rows * (rows + 1) // 2 if upper else rows * cols

    if shape is None:
        typed = []                      # the arguments' types, read once a launch (the same for every shape)

        def resident(s):
            launched = kernel(s)
            if not typed:
                typed.append(argument_types(launched, args))
            return _resident_blocks(launched, typed[0], s.threads ** 2)

        shape = choose_config(n_blocks, resident)
    grid = (blocks(n_cols, shape.tile), blocks(n_rows, shape.tile))
    kernel(shape)[grid, (shape.threads, shape.threads)](*args)
    return shape


def launch_gram(dA, dD, dK, shape: TileConfig | None = None) -> TileConfig:
    """``dK ← (dD dDᵀ) ⊙ (dA dAᵀ + 1)`` in ``dK``'s dtype; ``shape`` None: :func:`choose_config`. Each tiled
    launch returns the block shape it ran on."""
    B = dK.shape[0]
    return _launch_tiled("gram", dK.dtype, B, B, (dA, dD, dK, dK.dtype.type(1)), shape, upper=True)


def launch_linear(dA, dW, db, activation: int, dZ, dA_out, shape: TileConfig | None = None) -> TileConfig:
    """``dZ ← dA dWᵀ + db`` and, for a hidden layer, ``dA_out ← φ(dZ)`` (activation id, or NO_ACTIVATION)."""
    return _launch_tiled("linear", dZ.dtype, *dZ.shape, (dA, dW, db, activation, dZ, dA_out), shape)


def launch_backward(dD_next, dW, d_rows, dZ, activation: int, dD, shape: TileConfig | None = None) -> TileConfig:
    """``dD ← (dD_next dW) ⊙ φ'(dZ)``; ``d_rows`` holds ``0 … dW.shape[0] − 1`` (or more)."""
    return _launch_tiled("backward", dD.dtype, *dD.shape, (dD_next, dW, d_rows, dZ, activation, dD), shape)


def launch_masked_sum(dA, dD, d_rows, dG, shape: TileConfig | None = None) -> TileConfig:
    """``dG ← (1/|rows|) dD[rows]ᵀ dA[rows]``, accumulated in ``dG``'s dtype."""
    k = dG.dtype.type(d_rows.shape[0])
    return _launch_tiled("masked_sum", dG.dtype, *dG.shape, (dA, dD, d_rows, k, dG), shape)


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


class GreedyPlan(NamedTuple):
    """How :func:`dba_ref.backends.cuda_reductions.greedy_kernel` lays out a greedy search.

    ``parts`` teams of TEAM threads share each layer's samples. Not
    ``cooperative``: one block per layer holds its teams (at most MAX_BLOCK
    threads). ``cooperative``: every team is a block of its own, and the
    blocks of all layers synchronise grid-wide at every step (a cooperative
    launch; the simulator runs it as one block holding every team).
    """

    parts: int
    cooperative: bool

    def launch_shape(self, n_layers: int) -> tuple[int, int]:
        """``(blocks, threads per block)`` of the launch."""
        if not self.cooperative:
            if self.parts * TEAM > MAX_BLOCK:
                raise ValueError(f"one block holds at most {MAX_TEAMS} teams of {TEAM} threads here; got {self}: "
                                 f"use a cooperative plan for more teams a layer")
            return n_layers, self.parts * TEAM
        if SIMULATOR:
            return 1, n_layers * self.parts * TEAM
        return n_layers * self.parts, TEAM


#: One block of TEAM threads per layer: the search of the earlier kernel, and the plan when a cooperative
#: launch cannot be made.
ONE_BLOCK = GreedyPlan(1, False)


def greedy_plan(batch_size: int) -> GreedyPlan:
    """Teams enough that a thread holds at most SAMPLES samples (one batch of loads a step): one block per
    layer while one team is enough (B ≤ TEAM · SAMPLES = 1,024 on a GPU), else a cooperative launch.

    A first estimate, unmeasured: ``benchmarks/gpu.py`` times the plans
    against :data:`ONE_BLOCK` on a GPU.
    """
    parts = blocks(batch_size, TEAM * SAMPLES)
    return GreedyPlan(parts, parts * TEAM > MAX_BLOCK)


def _c_array(of, ndim: int):
    return types.Array(of, ndim, "C")


#: The Numba types of the arguments :func:`greedy_arguments` makes (from a float64 ``(L, B, B)`` Gram stack and
#: :func:`launch_stats`' outputs, a Python int ``min_size`` and float ``tol``): what the greedy kernel is compiled for.
GREEDY_SIGNATURE = (_c_array(types.float64, 3), _c_array(types.float64, 2), _c_array(types.float64, 2),
                    _c_array(types.float64, 2), types.int64, types.int64, types.float64, types.int64,
                    _c_array(types.float64, 2), _c_array(types.int8, 2), _c_array(types.float64, 3),
                    _c_array(types.int64, 3), _c_array(types.int64, 2), _c_array(types.float64, 2),
                    _c_array(types.int64, 1))


def greedy_arguments(dK, r, diag, totals, metric: str, min_size: int, tol: float, parts: int) -> tuple:
    """The arguments of :func:`~dba_ref.backends.cuda_reductions.greedy_kernel` for ``parts`` teams a layer:
    the inputs, and new work arrays, tables and outputs (``removed``, ``values``, ``counts``, the last three)."""
    L, B = dK.shape[0], dK.shape[1]
    return (dK, r, diag, totals, METRIC_NAMES.index(metric), min_size, tol, parts,
            cuda.device_array((L, B), np.float64), cuda.device_array((L, B), np.int8),
            cuda.device_array((2, L, parts), np.float64), cuda.device_array((2, L, parts), np.int64),
            cuda.device_array((L, B), np.int64), cuda.device_array((L, B), np.float64), cuda.device_array(L, np.int64))


def cooperative_room() -> tuple[int, str | None]:
    """How many teams a cooperative launch of the greedy kernel can have, and why none (or None).

    Compiles the kernel for the argument types :func:`launch_greedy` passes
    (:data:`GREEDY_SIGNATURE`; the grid-wide barrier links Numba's cudadevrt)
    and asks the driver how many of its blocks (one team each) the GPU holds
    at once (:func:`resident_blocks`); in the simulator, the teams of its one
    block. The answer, a refusal too, is kept.
    """
    if SIMULATOR:
        return MAX_TEAMS, None
    return _cooperative_room(greedy_kernel(True))


@functools.cache
def _cooperative_room(kernel) -> tuple[int, str | None]:
    try:
        return _resident_blocks(kernel, GREEDY_SIGNATURE, TEAM), None
    except Exception as error:          # noqa: BLE001  (Numba's linker and driver errors: cudadevrt missing, ...)
        return 0, f"the cooperative greedy kernel did not build: {type(error).__name__}: {error}"


def launch_greedy(dK, r, diag, totals, metric: str, min_size: int, tol: float, plan: GreedyPlan | None = None) -> list:
    """The greedy path of every layer in one launch, copied to the host: ``[(removed, values)]``.

    ``plan`` None: :func:`greedy_plan`, with as many teams as one cooperative
    grid holds at most; where a cooperative launch cannot be made (the kernel
    does not link, or fewer than two teams a layer fit) the search runs on
    :data:`ONE_BLOCK`, with a warning if it did not link. Every plan gives the
    same path, bit for bit.
    """
    L, B = dK.shape[0], dK.shape[1]
    chosen = greedy_plan(B) if plan is None else plan
    if plan is None and chosen.cooperative:
        room, refusal = cooperative_room()
        if refusal:
            warnings.warn(f"{refusal}; the greedy search runs on one block per layer", RuntimeWarning, stacklevel=2)
        chosen = GreedyPlan(min(chosen.parts, room // L), True) if room // L >= 2 else ONE_BLOCK
    args = greedy_arguments(dK, r, diag, totals, metric, min_size, tol, chosen.parts)
    n_blocks, threads = chosen.launch_shape(L)
    greedy_kernel(chosen.cooperative)[n_blocks, threads](*args)
    removed, values, counts = (x.copy_to_host() for x in args[-3:])
    return [(removed[l, :n].copy(), values[l, :n].copy()) for l, n in enumerate(counts)]


def launch_mean(dA, dD, rows: np.ndarray):
    """``(1/|S|) Δ_Sᵀ [A_S, 1]`` in float64 over the host int64 ``rows`` (see :func:`batch_rows`), as host ``(gW, gb)``."""
    d_rows = cuda.to_device(rows)
    gW = cuda.device_array((dD.shape[1], dA.shape[1]), np.float64)
    gb = cuda.device_array(dD.shape[1], np.float64)
    launch_masked_sum(dA, dD, d_rows, gW)
    cuda_reductions.masked_bias[blocks(dD.shape[1], REDUCE), REDUCE](dD, d_rows, np.float64(rows.shape[0]), gb)
    return gW.copy_to_host(), gb.copy_to_host()


# --------------------------------------------------------------------------
# Every kernel a training step launches
# --------------------------------------------------------------------------
class KernelVariant(NamedTuple):
    """A kernel as a training step launches it: its argument types and block, for compiling without a GPU."""

    name: str
    kernel: object                  # the Numba dispatcher
    signature: tuple                # Numba types of the arguments, as the launch passes them
    threads: int                    # per block
    shape: TileConfig | None        # the block shape of a tiled product


def step_variants(dtype) -> list[KernelVariant]:
    """Every kernel, at every block shape, that a training step of a model in ``dtype`` may launch.

    The argument types are those the launches of this module and of
    :mod:`dba_ref.backends.cuda_backprop` pass: every array C-contiguous;
    the forward and backward passes in ``dtype``; the Gram matrix and the
    masked means accumulated in float64 from ``dtype`` inputs (spec §4).
    """

    t, f64, i64, array = from_dtype(np.dtype(dtype)), types.float64, types.int64, _c_array

    found = []
    for shape in CONFIGS:
        threads = shape.threads ** 2
        model, wide = tile_kernels(np.dtype(dtype), shape), tile_kernels(np.dtype(np.float64), shape)
        found += [
            KernelVariant("gram", wide.gram, (array(t, 2), array(t, 2), array(f64, 2), f64), threads, shape),
            KernelVariant("linear", model.linear, (array(t, 2), array(t, 2), array(t, 1), i64, array(t, 2),
                                                   array(t, 2)), threads, shape),
            KernelVariant("backward", model.backward, (array(t, 2), array(t, 2), array(i64, 1), array(t, 2), i64,
                                                       array(t, 2)), threads, shape),
            KernelVariant("masked_sum", wide.masked_sum, (array(t, 2), array(t, 2), array(i64, 1), f64,
                                                          array(f64, 2)), threads, shape),
        ]
    found += [
        KernelVariant("softmax_cross_entropy", cuda_reductions.softmax_cross_entropy, (array(t, 2), array(i64, 1), array(t, 2),
                                                                       array(t, 1)), SOFTMAX_THREADS, None),
        KernelVariant("masked_bias", cuda_reductions.masked_bias, (array(t, 2), array(i64, 1), f64, array(f64, 1)),
                      REDUCE, None),
        KernelVariant("column_sums", cuda_reductions.column_sums, (array(f64, 3), array(f64, 2), array(f64, 2)),
                      REDUCE, None),
        KernelVariant("totals", cuda_reductions.totals, (array(f64, 2), array(f64, 2), array(f64, 2)), REDUCE, None),
        KernelVariant("greedy", greedy_kernel(False), GREEDY_SIGNATURE, MAX_BLOCK, None),
        KernelVariant("greedy (cooperative)", greedy_kernel(True), GREEDY_SIGNATURE, TEAM, None),
    ]
    return found
