"""The GPU verification of the CUDA backend: one short run on a fresh GPU machine, most important first.

Here, on a machine with pip and the internet, once (the NumPy wheel the GPU
machine's numba-cuda can run with, into ``.whl/``, which git ignores)::

    python benchmarks/gpu_verify.py prepare

There, on the GPU machine, in a copy of the repository with ``.whl/`` (about
6 minutes; needs only Python 3.12 with numba-cuda, pytest, and optionally
PyTorch, CuPy and compute-sanitizer, as NVIDIA's CUDA images have them)::

    python3 benchmarks/gpu_verify.py run --out DIR

The stages, in this order, each under a time limit (seconds, :data:`LIMITS`):

1. ``environment``: the carried NumPy installed into a private folder put
   first on ``PYTHONPATH`` (the repository itself second), the device, the
   driver, the versions, whether numba-cuda can run with that NumPy;
2. ``kernel-tests``: ``DBA_REF_REAL_GPU=1 pytest tests/test_cuda_kernels.py``,
   every tiled kernel at every block shape and dtype on multi-block grids with
   partial edge tiles, each run twice and compared bit for bit, and the greedy
   search on every plan (B = 257 and 1,100);
3. ``sanitizer``: ``compute-sanitizer --tool racecheck`` and ``--tool synccheck``
   on ``benchmarks/gpu_sanitize.py`` (one small Gram launch, the greedy search
   on one block per layer and on a cooperative grid), where the tool exists;
4. ``whole-step-tests``: the CUDA tests of ``tests/test_cuda.py``,
   ``tests/test_backends.py`` and ``tests/test_frameworks_torch_device.py``
   (the forward and backward passes, the whole DBA step, the backend against
   NumPy at B up to 1,100), without the two that need no GPU;
5. ``benchmark``: ``benchmarks/gpu.py`` (the Gram kernel against cuBLAS via
   CuPy, the greedy search's plans against the one-block layout, the DBA step
   against a plain PyTorch step and the framework way, B = 1024, 4096, 8192),
   which writes its JSON after every row.

Stages 2 to 5 run in one Python process, so that a kernel compiled for one is
not compiled again for the next (Numba compiles each variant in seconds); a
stage that outlives its limit is stopped and the next one starts in a new
process. ``DIR/results.json`` is rewritten after every stage and every test,
so a run cut off at any point leaves what it measured; also in ``DIR``:
``verify.log`` (everything printed), ``sanitizer.txt``, ``benchmark.md`` (the
tables for ``docs/performance.md``) and ``benchmark.json``. The last lines
printed are a summary. This script uses only the standard library itself:
the stages run with the carried NumPy.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMPY_VERSION = "2.3.5"         # numba-cuda <= 0.30.4 cannot run with NumPy 2.5 (np.row_stack)
PYTHON_VERSION = "3.12"         # the GPU machine's Python
WHEELS = ROOT / ".whl"
SITE = Path("/tmp/dba-ref-gpu-site")
STAGES = ("environment", "kernel-tests", "sanitizer", "whole-step-tests", "benchmark")
#: Seconds each stage may take at most (from measured and estimated compile times: about 30 kernel variants
#: compiled in the kernel tests, a few seconds each), and the whole run.
LIMITS = {"environment": 40, "kernel-tests": 110, "sanitizer": 70, "whole-step-tests": 90, "benchmark": 110}
TOTAL = 350
#: The whole-step tests: the CUDA ones, without the two that need no GPU (the register check, ~40 s;
#: the benchmark's smoke run in the simulator, ~40 s).
WHOLE_STEP = ["tests/test_cuda.py", "tests/test_backends.py", "tests/test_frameworks_torch_device.py",
              "-k", "cuda and not without_spills and not smoke_mode"]


# --------------------------------------------------------------------------
# The results file
# --------------------------------------------------------------------------
def load(out: Path) -> dict:
    path = out / "results.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save(out: Path, results: dict) -> None:
    temporary = out / "results.json.tmp"
    temporary.write_text(json.dumps(results, indent=1, default=str))
    os.replace(temporary, out / "results.json")


def set_stage(out: Path, name: str, **fields) -> dict:
    results = load(out)
    results.setdefault("stages", {}).setdefault(name, {}).update(fields)
    save(out, results)
    return results


def log(out: Path, text: str) -> None:
    print(text, flush=True)
    with open(out / "verify.log", "a") as f:
        f.write(text + "\n")


# --------------------------------------------------------------------------
# prepare (here)
# --------------------------------------------------------------------------
def prepare(python_version: str) -> int:
    """Download the NumPy wheel for the GPU machine into ``.whl/``."""
    WHEELS.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--python-version", python_version, "--implementation", "cp",
               "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
               "--platform", "manylinux2014_x86_64", "-d", str(WHEELS), f"numpy=={NUMPY_VERSION}"]
    done = subprocess.run(command)
    if done.returncode == 0:
        print(f"# {', '.join(p.name for p in WHEELS.glob('numpy-*.whl'))} in {WHEELS}: carry .whl to the GPU machine")
    return done.returncode


# --------------------------------------------------------------------------
# run (there): the parent, standard library only
# --------------------------------------------------------------------------
def stage_environment(out: Path, simulator: bool = False) -> dict:
    """Install the carried NumPy privately; return the environment of the other stages, and record the machine.

    ``simulator``: a dry run of this script on a machine without a GPU, every
    kernel in Numba's simulator (the tests at their simulator sizes).
    """
    started = time.time()
    set_stage(out, "environment", status="running", started=started)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if simulator:
        env.update(NUMBA_ENABLE_CUDASIM="1")
        env.pop("DBA_REF_REAL_GPU", None)
    else:
        env.update(DBA_REF_REAL_GPU="1")
        env.pop("NUMBA_ENABLE_CUDASIM", None)
    info, problems = {}, []
    wheels = sorted(WHEELS.glob(f"numpy-{NUMPY_VERSION}-*.whl"))
    if wheels and not simulator:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                               "--no-cache-dir", "--upgrade", "--target", str(SITE), str(wheels[-1])],
                              capture_output=True, text=True)
        if done.returncode != 0:
            problems.append(f"pip install {wheels[-1].name} failed: {done.stderr[-500:]}")
        env["PYTHONPATH"] = os.pathsep.join([str(SITE), str(ROOT)] + env.get("PYTHONPATH", "").split(os.pathsep))
    else:
        if not simulator:
            problems.append(f"no .whl/numpy-{NUMPY_VERSION}-*.whl carried: run 'python benchmarks/gpu_verify.py "
                            f"prepare' before copying the repository")
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + env.get("PYTHONPATH", "").split(os.pathsep))
    smi = shutil.which("nvidia-smi")
    if smi:
        done = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm",
                               "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        info["nvidia-smi"] = done.stdout.strip() or done.stderr.strip()
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60,
                           cwd=ROOT)
    try:
        info.update(json.loads(probe.stdout.strip().splitlines()[-1]))
    except (IndexError, json.JSONDecodeError):
        problems.append(f"the probe failed: {probe.stderr[-1500:]}")
    info["compute-sanitizer"] = sanitizer_path()
    if info.get("numpy_conflict"):
        problems.append(info["numpy_conflict"])
    status = "failed" if problems or not (info.get("device") or simulator) else "passed"
    set_stage(out, "environment", status=status, seconds=round(time.time() - started, 1), info=info,
              problems=problems)
    log(out, f"# environment: {status} ({time.time() - started:.0f} s): {info.get('device')}, "
             f"{info.get('versions')}; sanitizer {info['compute-sanitizer']}" + "".join(f"\n#   {p}" for p in problems))
    return env


PROBE = """
import json, numpy, numba
found = {"versions": {"python": __import__("platform").python_version(), "numpy": numpy.__version__,
                      "numpy_file": numpy.__file__, "numba": numba.__version__}}
for name in ("numba_cuda", "cupy", "torch", "pytest"):
    try:
        found["versions"][name] = getattr(__import__(name), "__version__", "?")
    except Exception as error:
        found["versions"][name] = f"missing ({type(error).__name__})"
from numba import config, cuda
found["cuda_implementation"] = getattr(cuda, "implementation", "Built-in")
if config.ENABLE_CUDASIM:
    found["device"] = "Numba's CUDA simulator"
elif cuda.is_available():
    device = cuda.get_current_device()
    name = device.name.decode() if isinstance(device.name, bytes) else str(device.name)
    found["device"] = name
    found["compute_capability"] = list(device.compute_capability)
    found["multiprocessors"] = device.MULTIPROCESSOR_COUNT
    try:
        found["driver"] = list(cuda.cudadrv.driver.driver.get_version())
    except Exception as error:
        found["driver"] = f"unknown ({type(error).__name__})"
from dba_ref.backends.cuda_environment import numpy_conflict
found["numpy_conflict"] = numpy_conflict()
print(json.dumps(found))
"""


def sanitizer_path() -> str | None:
    found = shutil.which("compute-sanitizer")
    candidates = sorted(glob.glob("/usr/local/cuda*/bin/compute-sanitizer") +
                        glob.glob("/usr/local/cuda*/compute-sanitizer/compute-sanitizer") +
                        glob.glob("/opt/nvidia/*/compute-sanitizer"))
    return found or (candidates[-1] if candidates else None)


def run(out: Path, names: list, limits: dict, simulator: bool = False) -> int:
    """Every stage of ``names`` in order, each within ``limits[name]`` seconds, the whole within :data:`TOTAL`."""
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    save(out, {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv),
               "limits": limits, "total_limit": TOTAL, "simulator": simulator, "stages": {}})
    (out / "verify.log").write_text("")
    env = stage_environment(out, simulator)
    remaining = [name for name in STAGES[1:] if name in names]
    while remaining:
        left = TOTAL - (time.time() - start)
        if left < 15:
            for name in remaining:
                set_stage(out, name, status="not run", reason="no time left")
            break
        with open(out / "verify.log", "a") as logfile:
            child = subprocess.Popen([sys.executable, __file__, "stages", "--out", str(out), *remaining], cwd=ROOT,
                                     env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
            remaining = watch(child, out, remaining, start, limits)
    summary(out, time.time() - start, ["environment"] + [name for name in STAGES[1:] if name in names])
    return 0


def watch(child, out: Path, stages: list, start: float, limits: dict) -> list:
    """Wait for the child running ``stages``; stop it when its current stage outlives its limit or the run its
    total. Returns the stages still to run (none when the child ended by itself)."""
    reported = set()
    while child.poll() is None:
        time.sleep(0.5)
        results = load(out)
        for name in stages:
            stage = results.get("stages", {}).get(name, {})
            if name not in reported and stage.get("status") not in (None, "running"):
                reported.add(name)
                log(out, f"# {name}: {stage['status']} in {stage.get('seconds')} s {stage.get('counts', '')}")
        stage = results.get("current")
        if stage is None:
            continue
        name, since = stage["stage"], stage["since"]
        limit = min(limits[name], TOTAL - (since - start))
        if time.time() - since > limit:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            results = load(out)
            results.pop("current", None)
            results.setdefault("stages", {}).setdefault(name, {}).update(
                status="timed out", seconds=round(time.time() - since, 1), limit=limit)
            save(out, results)
            log(out, f"# {name}: stopped after {time.time() - since:.0f} s (its limit)")
            return stages[stages.index(name) + 1:]
    results = load(out)
    if results.pop("current", None) is not None:         # the child died inside a stage
        name = next(n for n in stages if results["stages"].get(n, {}).get("status") == "running")
        results["stages"][name].update(status="crashed", exit_code=child.returncode)
        save(out, results)
        log(out, f"# {name}: the process ended with exit code {child.returncode} (see verify.log)")
        return stages[stages.index(name) + 1:]
    return []


def summary(out: Path, seconds: float, names) -> None:
    """Print what the run found (the last lines of its output)."""
    results = load(out)
    device = results.get("stages", {}).get("environment", {}).get("info", {}).get("device", "no device")
    print(f"\n## GPU verification ({seconds:.0f} s): {device}")
    for name in names:
        stage = results.get("stages", {}).get(name, {})
        line = f"- {name}: {stage.get('status', 'not run')}"
        if "seconds" in stage:
            line += f" in {stage['seconds']} s"
        if "counts" in stage:
            line += f" ({', '.join(f'{n} {k}' for k, n in stage['counts'].items())})"
        print(line)
        for problem in (stage.get("problems") or [])[:12]:
            print(f"    {problem[:300]}")
    targets = results.get("targets")
    if not targets and (out / "benchmark.json").exists():       # the benchmark was cut off: its tables so far
        targets = json.loads((out / "benchmark.json").read_text()).get("targets")
        results["targets"] = targets
        save(out, results)
    if targets:
        print("\n## Targets" + ("" if results["stages"].get("benchmark", {}).get("status") == "passed"
                                 else " (from the tables the benchmark finished)"))
        for key, value in targets.items():
            print(f"- {key}: {round(value, 3) if isinstance(value, float) else value}")
    print(f"\n# every number: {out}/results.json, {out}/benchmark.json; tables: {out}/benchmark.md")


# --------------------------------------------------------------------------
# stages (there): the child, with the carried NumPy
# --------------------------------------------------------------------------
class Collector:
    """A pytest plugin that records every test's outcome in the results file as it finishes."""

    def __init__(self, out: Path, stage: str):
        self.out, self.stage = out, stage
        self.tests: dict = {}

    def pytest_runtest_logreport(self, report):
        if report.when != "call" and not (report.failed or report.skipped):
            return
        entry = {"outcome": report.outcome, "seconds": round(report.duration, 2)}
        if report.failed or report.skipped:
            entry["message"] = str(report.longrepr)[-1500:]
        self.tests[report.nodeid] = entry
        counts: dict = {}
        for test in self.tests.values():
            counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
        problems = [f"{nodeid}: {test['message'][-250:]}" for nodeid, test in self.tests.items()
                    if test["outcome"] == "failed"]
        set_stage(self.out, self.stage, tests=self.tests, counts=counts, problems=problems)


def run_tests(out: Path, stage: str, arguments: list) -> str:
    import pytest

    code = pytest.main(["-p", "no:cacheprovider", "-q", "-rfEs", *arguments], plugins=[Collector(out, stage)])
    return "passed" if code == 0 else "failed" if code == 1 else f"pytest exit code {int(code)}"


def run_sanitizer(out: Path) -> str:
    """racecheck and synccheck on ``benchmarks/gpu_sanitize.py``, the two at once (each compiles its own kernels)."""
    tool = sanitizer_path()
    if tool is None:
        set_stage(out, "sanitizer", reason="compute-sanitizer not found")
        return "skipped"
    started = time.time()
    commands = {check: [tool, "--tool", check, "--error-exitcode", "3", sys.executable, "benchmarks/gpu_sanitize.py"]
                for check in ("racecheck", "synccheck")}
    running = {check: subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for check, command in commands.items()}
    reports, problems = {}, []
    with open(out / "sanitizer.txt", "w") as text:
        for check, process in running.items():
            output = process.communicate()[0]
            text.write(f"$ {' '.join(commands[check])}\n{output}\n(exit code {process.returncode}, "
                       f"{time.time() - started:.0f} s)\n\n")
            text.flush()
            found = re.findall(r"(?:ERROR|RACECHECK) SUMMARY: .*", output)
            reports[check] = {"exit_code": process.returncode, "summary": found,
                              "seconds": round(time.time() - started)}
            if process.returncode != 0:
                problems.append(f"{check}: exit code {process.returncode}: {'; '.join(found) or output[-300:]}")
            set_stage(out, "sanitizer", tool=tool, reports=reports, problems=problems)
    return "passed" if not problems else "failed"


def run_benchmark(out: Path) -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu

    class Tee:
        def __init__(self, *streams):
            self.streams = streams

        def write(self, text):
            for stream in self.streams:
                stream.write(text)
                stream.flush()

        def flush(self):
            for stream in self.streams:
                stream.flush()

    with open(out / "benchmark.md", "w") as tables:
        stdout, sys.stdout = sys.stdout, Tee(sys.stdout, tables)
        try:
            smoke = ["--smoke"] if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else []
            code = gpu.main(["--json", str(out / "benchmark.json"), *smoke])
        finally:
            sys.stdout = stdout
    if not (out / "benchmark.json").exists():
        return "not run (see verify.log)"
    record = json.loads((out / "benchmark.json").read_text())
    results = load(out)
    results["targets"] = record.get("targets")
    save(out, results)
    return "passed" if code == 0 else f"exit code {code}"


def stages(out: Path, names: list) -> int:
    os.chdir(ROOT)
    for name in names:
        started = time.time()
        results = set_stage(out, name, status="running", started=started)
        results["current"] = {"stage": name, "since": started}
        save(out, results)
        print(f"\n# ===== {name} =====", flush=True)
        try:
            if name == "kernel-tests":
                status = run_tests(out, name, ["tests/test_cuda_kernels.py"])
            elif name == "sanitizer":
                status = run_sanitizer(out)
            elif name == "whole-step-tests":
                status = run_tests(out, name, WHOLE_STEP)
            else:
                status = run_benchmark(out)
        except Exception as error:          # noqa: BLE001  (recorded; the next stage still runs)
            traceback.print_exc()
            status = f"error: {type(error).__name__}: {error}"
            set_stage(out, name, problems=[traceback.format_exc()[-1500:]])
        results = load(out)
        results.pop("current", None)
        results["stages"][name].update(status=status, seconds=round(time.time() - started, 1))
        save(out, results)
        print(f"# {name}: {status} in {time.time() - started:.0f} s", file=sys.__stderr__, flush=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ready = commands.add_parser("prepare", help="here: download the NumPy wheel the GPU machine needs into .whl/")
    ready.add_argument("--python-version", default=PYTHON_VERSION, help="the GPU machine's Python (default 3.12)")
    go = commands.add_parser("run", help="there: every stage, into --out")
    go.add_argument("--out", default="gpu_out", help="folder for the results (default: gpu_out)")
    go.add_argument("--only", default=",".join(STAGES[1:]),
                    help="the stages after 'environment' to run (default: all, in their order)")
    go.add_argument("--limit", action="append", default=[], metavar="STAGE=SECONDS",
                    help="another time limit for a stage (a test of the limits)")
    go.add_argument("--simulator", action="store_true",
                    help="a dry run without a GPU: the stages in Numba's CUDA simulator, at its sizes")
    inner = commands.add_parser("stages", help="(internal) stages 2-5 in one process")
    inner.add_argument("--out", required=True)
    inner.add_argument("names", nargs="+", choices=STAGES[1:])
    args = parser.parse_args(argv)
    if args.command == "prepare":
        return prepare(args.python_version)
    if args.command == "run":
        names = args.only.split(",")
        limits = dict(LIMITS)
        for item in args.limit:
            name, _, seconds = item.partition("=")
            limits[name] = float(seconds)
        if not set(names) <= set(STAGES[1:]) or not set(limits) <= set(STAGES):
            parser.error(f"stages are {', '.join(STAGES[1:])}")
        return run(Path(args.out).resolve(), names, limits, args.simulator)
    return stages(Path(args.out).resolve(), args.names)


if __name__ == "__main__":
    sys.exit(main())
