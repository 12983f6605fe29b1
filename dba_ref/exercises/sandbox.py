"""Running a student's code in a process of its own, with limits, and reading back plain numbers only.

:func:`run_submission` starts ``python -I -S harness.py IO_DIR``
(:mod:`~dba_ref.exercises.harness`) in a new session, in an empty temporary
working folder, with an environment of its own and a ``sys.path`` of the
standard library and a folder that links NumPy alone, so the submission can
import neither ``dba_ref`` nor any other installed package. Before the
student's code runs, the child sets its own limits (:class:`Limits`): CPU
seconds and address space (``resource.setrlimit`` ``RLIMIT_CPU``,
``RLIMIT_AS``) and the size of any file it writes (``RLIMIT_FSIZE``). The
grader keeps a wall clock: once the submission has run for
``Limits.seconds`` (its NumPy import is not counted) the whole process group
is killed. What comes back is read with ``numpy.load(allow_pickle=False)``
and :func:`~dba_ref.exercises.harness.decode`, checked, and never executed.

This is a process boundary, not a security sandbox: the child runs as the
same user as the grader, can read every file that user can read (the
package's own reference answers included) and, with enough effort, reach
outside its folder. ``docs/teaching.md`` says what it does and does not
protect against.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import harness

#: How long the child may take to start and import NumPy before the student's code runs (not counted in the limit).
STARTUP_SECONDS = 60.0
#: Largest outcome file of one case that is read back (bytes); a larger one is a failed case.
MAX_OUTCOME_BYTES = 64 * 2 ** 20
#: How much of what the student's code printed is kept (bytes).
MAX_PRINTED = 4000


@dataclass(frozen=True)
class Limits:
    """What one submission may use: ``seconds`` of run time for all its cases together (wall clock, from the
    moment its code starts; CPU time is capped a little above), ``memory_mb`` of address space (NumPy itself
    takes about 100 MB of it), ``output_mb`` per file written (printed text included)."""

    seconds: float = 20.0
    memory_mb: int = 1024
    output_mb: int = 16

    def __post_init__(self):
        for name, low in (("seconds", 0.1), ("memory_mb", 200), ("output_mb", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < low:
                raise ValueError(f"Limits.{name} must be a number >= {low}, got {value!r}")

    def child_limits(self) -> dict:
        """The rlimits the child sets on itself (CPU: the wall-clock limit plus the start-up allowance)."""
        return {"cpu_seconds": int(math.ceil(self.seconds + STARTUP_SECONDS)),
                "memory_bytes": int(self.memory_mb * 2 ** 20), "file_bytes": int(self.output_mb * 2 ** 20)}


@dataclass(frozen=True)
class Returned:
    """A case whose function returned: ``value`` and the inputs after the call, as plain data."""

    value: object
    inputs_after: list


@dataclass(frozen=True)
class Raised:
    """A case whose function raised: the exception type's name, its message, where in the student's code."""

    kind: str
    message: str
    where: str = ""
    missing_module: str = ""

    def text(self) -> str:
        return f"{self.kind}: {self.message}{self.where}"


@dataclass(frozen=True)
class NotRun:
    """A case that produced no outcome: ``reason`` says why (the time limit, a crash, an unreadable file...)."""

    reason: str


@dataclass(frozen=True)
class SubmissionRun:
    """Everything one run of a submission produced.

    ``load`` is ``None`` when the file loaded, else a :class:`Raised` (an
    exception while the file itself ran) or a :class:`NotRun`; ``missing``
    the functions it does not define; ``outcomes`` one :class:`Returned`,
    :class:`Raised` or :class:`NotRun` per case; ``forbidden_imports`` the
    modules it tried to import that the task forbids; ``printed`` the start
    of what it printed; ``seconds`` how long its code ran.
    """

    load: object
    missing: tuple
    outcomes: tuple
    forbidden_imports: tuple = ()
    printed: str = ""
    seconds: float = 0.0


def _numpy_lib(tmp: Path) -> Path:
    """A folder that holds NumPy (a link to the installed package and its bundled libraries) and nothing else."""
    lib = tmp / "lib"
    lib.mkdir()
    package = Path(np.__file__).resolve().parent
    for path in (package, package.with_name("numpy.libs")):
        if path.exists():
            (lib / path.name).symlink_to(path, target_is_directory=True)
    return lib


def _child_env(work: Path) -> dict:
    env = {"PATH": os.defpath, "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "PYTHONIOENCODING": "utf-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    for threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[threads] = "1"
    if "SYSTEMROOT" in os.environ:                  # Windows cannot start Python without it
        env["SYSTEMROOT"] = os.environ["SYSTEMROOT"]
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the child and everything it started in its session."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _wait(proc: subprocess.Popen, ready: Path, seconds: float) -> tuple:
    """Wait for the child: ``(ended, seconds its code ran)``; ``ended`` is ``"exited"``, ``"time"`` or ``"startup"``."""
    start = time.monotonic()
    started = None
    while True:
        try:
            proc.wait(timeout=0.02)
            return "exited", (time.monotonic() - started if started is not None else 0.0)
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if started is None and ready.exists():
            started = now
        if started is None and now - start > STARTUP_SECONDS:
            return "startup", 0.0
        if started is not None and now - started > seconds:
            return "time", now - started


def _read_json(path: Path, max_bytes: int = 2 ** 20):
    try:
        if not path.is_file() or path.stat().st_size > max_bytes:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None


def _read_outcome(path: Path):
    """``(outcome, forbidden imports)`` of one case (a :class:`NotRun` when its file is too large or malformed),
    or ``None`` when there is no file."""
    try:
        if not path.is_file():
            return None
        if path.stat().st_size > MAX_OUTCOME_BYTES:
            return NotRun(f"your answer is larger than {MAX_OUTCOME_BYTES // 2 ** 20} MB"), ()
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        spec = json.loads(bytes(arrays.pop(harness.SPEC_KEY)).decode("utf-8"))
        if type(spec) is not dict:
            raise harness.BadFormat("not an outcome")
        if spec.get("status") == "returned":
            value = harness.decode(spec.get("value"), arrays)
            after = harness.decode(spec.get("inputs_after"), arrays)
            if not isinstance(after, list):
                raise harness.BadFormat("inputs are not a list")
            return Returned(value, after), _strings(spec.get("forbidden_imports"))
        if spec.get("status") == "raised":
            return _raised(spec), _strings(spec.get("forbidden_imports"))
        raise harness.BadFormat("an unknown status")
    except (OSError, ValueError, KeyError, TypeError, RecursionError, UnicodeDecodeError, EOFError,
            harness.BadFormat) as exc:
        return NotRun(f"the grader could not read back the outcome of this case ({type(exc).__name__}); "
                      "did your code write to the grader's files or replace NumPy's functions?"), ()


def _raised(record: dict) -> Raised:
    """The :class:`Raised` the child process recorded in ``record`` (each field cut to ``MAX_TEXT``)."""
    fields = ("kind", "message", "where", "missing_module")
    return Raised(**{k: str(record.get(k, ""))[:harness.MAX_TEXT] for k in fields})


def _strings(value) -> tuple:
    return tuple(str(v)[:200] for v in value) if isinstance(value, list) else ()


def _how_it_ended(ended: str, returncode, limits: Limits, during: str, done: bool = False) -> str:
    if ended == "time":
        return (f"time limit: your code was still running after {limits.seconds:g} s (the limit for all cases "
                "together) and was stopped; an infinite loop, or a loop that never reaches its end?")
    if done and returncode == 0:
        return ("the grader's files were removed or changed while your code ran, so nothing came back: your code "
                "must not touch files outside its own working folder")
    if ended == "startup":
        return f"the grader's process did not start within {STARTUP_SECONDS:g} s (a busy machine?)"
    if returncode is not None and returncode < 0:
        sig = -returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        if name == "SIGXCPU":
            return "CPU time limit: your code used more CPU time than allowed and was stopped"
        if name == "SIGKILL":
            return (f"the process running your code was killed ({name}); it may have run out of memory "
                    f"(the limit is {limits.memory_mb} MB)")
        return f"the process running your code crashed ({name})"
    return (f"your code ended the process {during} (exit status {returncode}): os._exit() or another way out "
            "of the interpreter; a function must return its answer")


def run_submission(source: str, filename: str, functions, cases, inputs: dict, limits: Limits = Limits(),
                   forbidden_modules=("dba_ref",)) -> SubmissionRun:
    """Run ``source`` in a child process on ``cases`` and read back what happened.

    ``cases`` are ``(protocol, function, args_spec)`` with ``args_spec`` the
    :func:`~dba_ref.exercises.harness.encode`\\ d argument tuple and ``inputs``
    its arrays; ``functions`` the names the exercise asks for. ``filename``
    is how tracebacks name the student's file.
    """
    if os.name != "posix":
        raise OSError("the grader runs submissions on Linux or macOS only: it needs POSIX process groups and "
                      "resource limits")
    with tempfile.TemporaryDirectory(prefix="dba-ref-grade-", ignore_cleanup_errors=True) as tmp:
        tmp = Path(tmp)
        io, work = tmp / "io", tmp / "work"
        io.mkdir()
        work.mkdir()
        config = {"lib_dir": str(_numpy_lib(tmp)), "limits": limits.child_limits(), "filename": filename,
                  "functions": list(functions), "forbidden_modules": list(forbidden_modules),
                  "cases": [{"protocol": p, "function": f, "args": a} for p, f, a in cases]}
        (io / harness.CONFIG).write_text(json.dumps(config), encoding="utf-8")
        np.savez(io / harness.INPUTS, **inputs)
        (io / harness.SOURCE).write_text(source, encoding="utf-8")
        with open(io / harness.OUTPUT, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-I", "-S", str(Path(harness.__file__).resolve()), str(io)],
                                    cwd=work, env=_child_env(work), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                ended, seconds = _wait(proc, io / harness.READY, limits.seconds)
            finally:
                _kill_group(proc)
                proc.wait()
        try:
            with open(io / harness.OUTPUT, "rb") as f:
                printed = f.read(MAX_PRINTED).decode("utf-8", "replace")
        except OSError:                           # removed by the student's code
            printed = ""
        loaded = _read_json(io / harness.LOADED)
        done = (io / harness.DONE).exists()
        if not isinstance(loaded, dict):
            reason = _how_it_ended(ended, proc.returncode, limits, "while your file was loading", done)
            return SubmissionRun(NotRun(reason), (), tuple(NotRun(reason) for _ in cases), printed=printed,
                                 seconds=seconds)
        forbidden = set(_strings(loaded.get("forbidden_imports")))
        missing = tuple(m for m in _strings(loaded.get("missing")) if m in set(functions))
        load = None if loaded.get("status") == "loaded" else _raised(loaded)
        outcomes, stopped = [], False
        for i, (_, function, _) in enumerate(cases):
            skip = stopped or load is not None or function in missing
            read = None if skip else _read_outcome(io / harness.case_file(i))
            if read is None:
                if not skip:
                    stopped = True                 # the first case without an outcome is where the run ended
                    outcomes.append(NotRun(_how_it_ended(ended, proc.returncode, limits, "during this case", done)))
                else:
                    outcomes.append(NotRun("not run: " + ("your file did not load" if load is not None else
                                                          f"no function {function}" if function in missing else
                                                          "the run had ended during an earlier case")))
                continue
            outcome, imports = read
            forbidden.update(imports)
            outcomes.append(outcome)
        return SubmissionRun(load, missing, tuple(outcomes), tuple(sorted(forbidden)), printed, seconds)
