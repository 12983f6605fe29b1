"""What the CUDA kernels cost in registers and shared memory on a Hopper GPU, read without one.

    python benchmarks/gpu_registers.py [--tile 128] [--json registers.json]

Compiles every kernel a training step launches, as it launches it
(:func:`dba_ref.backends.cuda_launch.step_variants`: each block shape, the
argument types of a float64 and of a float32 model; a float32 step computes
K and the masked means in float64 from float32 inputs), and the float32-K
Gram kernel that ``benchmarks/gpu.py`` times against cuBLAS, to PTX for
compute capability 9.0 with libNVVM, then assembles the PTX with ``ptxas -v``
(from a CUDA toolkit: on PATH, or /usr/local/cuda/bin). Prints, per kernel:
registers per thread, bytes spilled, shared memory per block, ``ld.local``
instructions in the PTX (a local array the compiler could not keep in
registers), and how many blocks of it fit on one SM: by registers (65,536 a
SM, allocated per warp in units of 256), by shared memory (228 KB a SM, 1 KB
of it reserved per block), and at most 32 blocks and 2,048 threads, the
least of these being its occupancy (on the GPU the driver computes the same,
:func:`dba_ref.backends.cuda_launch.resident_blocks`). Needs libNVVM; without
ptxas the register columns read "–". Needs no GPU, and must run without the
simulator. ``--tile`` keeps the tiled kernels of one tile width (and the
others); ``--json`` also writes the rows.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

REGISTERS_PER_SM = 65536
REGISTER_UNIT = 256                 # registers are allocated per warp, in units of 256
SHARED_PER_SM = 228 * 1024
SHARED_RESERVED = 1024              # per block, by the system
BLOCKS_PER_SM = 32
THREADS_PER_SM = 2048


def ptxas_path() -> str | None:
    return shutil.which("ptxas") or next((p for p in ["/usr/local/cuda/bin/ptxas"] if os.path.exists(p)), None)


def variants(tile: int | None):
    """``(used by, model dtype, KernelVariant)`` for every kernel compiled, each kernel and signature once."""
    from numba import types

    from dba_ref.backends import cuda_launch, cuda_products, cuda_tiles

    seen = set()
    for dtype in (np.float64, np.float32):
        for variant in cuda_launch.step_variants(dtype):
            if tile is not None and variant.shape is not None and variant.shape.tile != tile:
                continue
            if (variant.kernel, variant.signature) not in seen:
                seen.add((variant.kernel, variant.signature))
                yield "step", np.dtype(dtype).name, variant
    f32 = types.Array(types.float32, 2, "C")
    for shape in cuda_tiles.CONFIGS:
        if tile is None or shape.tile == tile:
            kernel = cuda_products.tile_kernels(np.dtype(np.float32), shape).gram
            yield "gpu.py", "float32", cuda_launch.KernelVariant("gram (float32 K)", kernel, (f32, f32, f32, types.float32),
                                                                shape.threads ** 2, shape)


def assemble(ptx: str, ptxas: str | None, max_registers: int | None = None) -> dict:
    """``ptxas -v``'s registers, spill stores and shared memory of one kernel (None: no ptxas).

    A kernel that calls an external function (the grid-wide barrier of a
    cooperative kernel, from cudadevrt) is assembled as relocatable code
    (``-c``), as Numba's linker receives it; a kernel compiled with
    ``max_registers`` is assembled with that limit, as Numba asks the driver.
    """
    if ptxas is None:
        return dict(registers=None, spilled=None, shared=None)
    options = ["-c"] if ".extern .func" in ptx else []
    options += [f"-maxrregcount={max_registers}"] if max_registers else []
    with tempfile.NamedTemporaryFile("w", suffix=".ptx") as f:
        f.write(ptx)
        f.flush()
        done = subprocess.run([ptxas, "-arch=sm_90", "-v", *options, f.name, "-o", os.devnull],
                              capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ptxas failed: {done.stderr[-2000:]}")
    number = lambda pattern: int(m.group(1)) if (m := re.search(pattern, done.stderr)) else 0  # noqa: E731
    return dict(registers=number(r"Used (\d+) registers"), spilled=number(r"(\d+) bytes spill stores"),
                shared=number(r"(\d+) bytes smem"))


def blocks_per_sm(registers: int | None, shared: int, threads: int) -> dict:
    """Blocks of one kernel an SM holds, by each limit, and the least of them (its occupancy)."""
    warps = -(-threads // 32)
    by = {"threads": min(BLOCKS_PER_SM, THREADS_PER_SM // (warps * 32)),
          "shared": SHARED_PER_SM // (shared + SHARED_RESERVED) if shared else BLOCKS_PER_SM}
    if registers is not None:
        per_warp = -(-registers * 32 // REGISTER_UNIT) * REGISTER_UNIT
        by["registers"] = REGISTERS_PER_SM // (per_warp * warps)
    by["resident"] = min(by.values())
    return by


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tile", type=int, help="only the tiled kernels of this tile width (e.g. 128), and the others")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        print("# not run: unset NUMBA_ENABLE_CUDASIM (the simulator compiles nothing)")
        return 0
    import numba.cuda.dispatcher
    from numba import cuda

    class SM90:                       # device functions ask the current device for its compute capability
        compute_capability = (9, 0)

    numba.cuda.dispatcher.get_current_device = lambda: SM90()
    ptxas = ptxas_path()
    print(f"# registers and shared memory for sm_90 (libNVVM + {ptxas or 'no ptxas'}); "
          f"command: python benchmarks/gpu_registers.py" + (f" --tile {args.tile}" if args.tile else ""))
    print("\n| used by | model dtype | kernel | block | registers | spilled (bytes) | shared (bytes) "
          "| ld.local in PTX | blocks/SM by registers | by shared memory | resident blocks/SM |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = []
    show = lambda v: "–" if v is None else v  # noqa: E731
    for used_by, dtype, variant in variants(args.tile):
        ptx, _ = cuda.compile_ptx(variant.kernel.py_func, variant.signature, cc=(9, 0))
        r = assemble(ptx, ptxas, variant.kernel.targetoptions.get("max_registers"))
        fits = blocks_per_sm(r["registers"], r["shared"] or 0, variant.threads)
        shape = variant.shape
        block = (f"{variant.threads} threads" if shape is None
                 else f"{shape.tile}² ({shape.threads}×{shape.threads} × {shape.work}×{shape.work})")
        rows.append(dict(used_by=used_by, dtype=dtype, kernel=variant.name, block=block, threads=variant.threads,
                         shape=None if shape is None else list(shape), ld_local=ptx.count("ld.local"),
                         blocks_per_sm=fits, **r))
        print(f"| {used_by} | {dtype} | {variant.name} | {block} | {show(r['registers'])} | {show(r['spilled'])} "
              f"| {show(r['shared'])} | {ptx.count('ld.local')} | {fits.get('registers', '–')} | {fits['shared']} "
              f"| {fits['resident'] if r['registers'] is not None else '–'} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(ptxas=ptxas, rows=rows), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
