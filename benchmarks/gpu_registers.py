"""What the CUDA kernels cost in registers and shared memory on a Hopper GPU, read without one.

    python benchmarks/gpu_registers.py [--tile 128]

Compiles every kernel of :mod:`dba_ref.backends.cuda_products` (each block shape
and float type) and the softmax kernel of :mod:`dba_ref.backends.cuda_backprop`
to PTX for compute capability 9.0 with libNVVM, then assembles it with
``ptxas -v`` (from a CUDA toolkit: on PATH, or /usr/local/cuda/bin). Prints,
per kernel: registers per thread, bytes spilled, shared memory per block,
``ld.local`` instructions in the PTX (a local array the compiler could not
keep in registers) and how many blocks fit on one SM by registers (65,536 a
SM) and by shared memory (228 KB a SM). Needs libNVVM; without ptxas the
register columns read "–". Needs no GPU, and must run without the simulator.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

REGISTERS_PER_SM = 65536
SHARED_PER_SM = 228 * 1024


def ptxas_path() -> str | None:
    return shutil.which("ptxas") or next((p for p in ["/usr/local/cuda/bin/ptxas"] if os.path.exists(p)), None)


def kernels(tile: int | None):
    """``(dtype, shape, name, kernel, signature, threads)`` for every kernel compiled."""
    import numba
    from numba import types

    from dba_ref.backends import cuda_backprop, cuda_products, cuda_tiles

    def array(t, nd, layout="C"):
        return types.Array(t, nd, layout)

    i64 = types.int64
    for dtype in (np.float64, np.float32):
        t = numba.from_dtype(np.dtype(dtype))
        for shape in cuda_tiles.CONFIGS:
            if tile is not None and shape.tile != tile:
                continue
            k = cuda_products.tile_kernels(np.dtype(dtype), shape)
            threads = shape.threads ** 2
            yield dtype, shape, "gram", k.gram, (array(t, 2), array(t, 2), array(t, 2, "A"), t), threads
            yield dtype, shape, "linear", k.linear, (array(t, 2), array(t, 2), array(t, 1), i64, array(t, 2),
                                                     array(t, 2)), threads
            yield dtype, shape, "backward", k.backward, (array(t, 2), array(t, 2), array(i64, 1), array(t, 2), i64,
                                                         array(t, 2)), threads
            yield dtype, shape, "masked_sum", k.masked_sum, (array(t, 2), array(t, 2), array(i64, 1), t,
                                                             array(t, 2)), threads
        yield dtype, None, "softmax_cross_entropy", cuda_backprop._softmax_cross_entropy, (
            array(t, 2), array(i64, 1), array(t, 2), array(t, 1)), 128


def assemble(ptx: str, ptxas: str | None) -> dict:
    """``ptxas -v``'s registers, spill stores and shared memory of one kernel (None: no ptxas)."""
    if ptxas is None:
        return dict(registers=None, spilled=None, shared=None)
    with tempfile.NamedTemporaryFile("w", suffix=".ptx") as f:
        f.write(ptx)
        f.flush()
        report = subprocess.run([ptxas, "-arch=sm_90", "-v", f.name, "-o", os.devnull],
                                capture_output=True, text=True).stderr
    number = lambda pattern: int(m.group(1)) if (m := re.search(pattern, report)) else 0  # noqa: E731
    return dict(registers=number(r"Used (\d+) registers"), spilled=number(r"(\d+) bytes spill stores"),
                shared=number(r"(\d+) bytes smem"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tile", type=int, help="only the block shape of this tile width (e.g. 128)")
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
    print("\n| dtype | block | kernel | registers | spilled (bytes) | shared (bytes) | ld.local in PTX "
          "| blocks/SM by registers | by shared memory |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for dtype, shape, name, kernel, signature, threads in kernels(args.tile):
        ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=(9, 0))
        r = assemble(ptx, ptxas)
        block = "–" if shape is None else f"{shape.tile}² ({shape.threads}×{shape.threads} × {shape.work}×{shape.work})"
        fits = "–" if r["registers"] is None else REGISTERS_PER_SM // (r["registers"] * threads)
        fits_shared = "–" if not r["shared"] else SHARED_PER_SM // r["shared"]
        show = lambda v: "–" if v is None else v  # noqa: E731
        print(f"| {np.dtype(dtype).name} | {block} | {name} | {show(r['registers'])} | {show(r['spilled'])} "
              f"| {show(r['shared'])} | {ptx.count('ld.local')} | {fits} | {fits_shared} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
