#!/usr/bin/env bash
# The GPU checks of the CUDA backend in one go, for a session that is lent a GPU machine.
#
# Here (the development machine, in the repository root), once:
#     bash benchmarks/gpu_session.sh prepare
# downloads the NumPy 2.3.5 wheel for the GPU machine's Python 3.12 into .whl/ (ignored by git):
# the machine's numba-cuda cannot run with its NumPy 2.5 (np.row_stack was removed; see
# dba_ref.backends.cuda_environment.numpy_conflict). Then, on the GPU machine, with .whl carried:
#     bash benchmarks/gpu_session.sh
# It puts that NumPy first on PYTHONPATH, runs the CUDA tests on the device, then
# benchmarks/gpu.py, and writes everything under $OUT (default: ./gpu_out):
#     versions.txt   nvidia-smi, Python packages
#     pytest.log     DBA_REF_REAL_GPU=1 pytest ... -k "cuda or backend"
#     gpu.md         the benchmark's tables (ready for docs/performance.md)
#     gpu.json       every number the benchmark measured
# Each stage has a time limit so that the whole run fits a 10-minute command.
set -uo pipefail
cd "$(dirname "$0")/.."
NUMPY_WHEEL_VERSION=2.3.5

if [ "${1:-}" = "prepare" ]; then
    exclude="$(git rev-parse --git-path info/exclude)"
    grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "numpy==${NUMPY_WHEEL_VERSION}"
    exit $?
fi

OUT="${OUT:-gpu_out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .whl/numpy-${NUMPY_WHEEL_VERSION}-*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/numpy-${NUMPY_WHEEL_VERSION}-*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
    echo "warning: no .whl/numpy-${NUMPY_WHEEL_VERSION}-*.whl carried: run 'bash $0 prepare' here first" | tee "$OUT/warning.txt"
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

{
    nvidia-smi
    python3 -c "import sys, numpy, numba; print(sys.version); print('numpy', numpy.__version__, numpy.__file__); print('numba', numba.__version__)"
    python3 -m pip list 2>/dev/null | grep -iE "numba|cupy|torch|cuda|numpy"
} > "$OUT/versions.txt" 2>&1

DBA_REF_REAL_GPU=1 timeout 270 python3 -m pytest -p no:cacheprovider -q -ra \
    tests/test_backends.py tests/test_properties.py tests/test_cuda.py tests/test_frameworks_torch_device.py \
    -k "cuda or backend" 2>&1 | tee "$OUT/pytest.log" | tail -25

timeout 300 python3 benchmarks/gpu.py --json "$OUT/gpu.json" 2>&1 | tee "$OUT/gpu.md"
