"""The student's side of grading: runs a submission's functions on the cases and writes back plain numbers.

This module is also a script. The grader (:mod:`dba_ref.exercises.sandbox`)
runs it as ``python -I -S harness.py IO_DIR`` in a process of its own, whose
``sys.path`` holds the standard library and NumPy and nothing else (so
neither ``dba_ref`` nor any other installed package can be imported), in an
empty working folder, under the time, memory and file-size limits the grader
passes. There it loads the student's source, calls the functions the
exercise asks for on every case, and writes each case's outcome to
``IO_DIR/case_<i>.npz`` as it finishes: plain arrays, and a JSON description
of how they nest (:func:`encode`). Nothing the student's code returns leaves
the process as an object: a NumPy array subclass, an object array or an
instance of the student's own class is written down as *unsupported*, with
its type's name, and a pickle is never written or read.

None of this is trusted by the grader. Everything here runs in the same
process as the student's code, which may patch NumPy, this module or the
files it writes; the grader reads the files back with ``allow_pickle=False``,
checks every dtype and shape (:func:`decode`), and judges them in its own
process against answers it computed itself. A patched harness can therefore
only make a case fail, never pass.

The grader imports this module too, for the format (:func:`encode` and
:func:`decode` are the one writer and reader of it), for the protocols that
say how a case calls the student's functions (:data:`PROTOCOLS`), and for
:func:`run_cases`, which :func:`dba_ref.exercises.check` runs in the
notebook's own process for a quick self-check. So it imports nothing but the
standard library and NumPy.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

#: Names of the files in IO_DIR that the grader and the harness exchange.
CONFIG, INPUTS, SOURCE, READY, LOADED, DONE, OUTPUT = ("config.json", "inputs.npz", "submission.py", "ready",
                                                      "loaded.json", "done", "output.txt")
#: Key of the JSON description inside each ``case_<i>.npz``.
SPEC_KEY = "__spec__"
#: How much of an exception message or of a string comes back (characters).
MAX_TEXT = 600
#: Largest list, tuple or dict the encoder writes down item by item; deeper nesting than MAX_DEPTH is unsupported.
MAX_ITEMS, MAX_DEPTH = 100_000, 16
#: Array dtypes that come back: booleans, integers, floats (``dtype.kind``).
NUMERIC_KINDS = "biuf"


def case_file(i: int) -> str:
    """The name of case ``i``'s outcome in IO_DIR."""
    return f"case_{i}.npz"


# --------------------------------------------------------------------------
# Plain values: the one format in which inputs go in and answers come back
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Unsupported:
    """What came back in place of a value that is not plain data: ``what`` names its type."""

    what: str


@dataclass(frozen=True)
class NamedTupleValue:
    """A NamedTuple the student's code returned, as plain data: its class name, field names and values."""

    type_name: str
    fields: tuple
    values: tuple

    def get(self, field: str, default=None):
        return self.values[self.fields.index(field)] if field in self.fields else default


def _type_name(value) -> str:
    cls = type(value)
    module = getattr(cls, "__module__", "") or ""
    return cls.__qualname__ if module in ("builtins", "") else f"{module}.{cls.__qualname__}"


def encode(value, arrays: dict, depth: int = 0):
    """The JSON-able description of ``value``; its arrays are copied into ``arrays`` under fresh keys.

    Plain data only: ``None``, ``bool``, ``int``, ``float``, ``str``, NumPy
    arrays (exactly ``numpy.ndarray``, of a boolean, integer or float dtype)
    and scalars, and lists, tuples, NamedTuples and dicts (string keys) of
    them. Anything else, subclasses included, is described as
    ``{"t": "unsupported", "what": <its type>}``; its methods are never called.
    """
    import numpy as np

    t = type(value)
    if depth > MAX_DEPTH:
        return {"t": "unsupported", "what": f"data nested more than {MAX_DEPTH} levels deep"}
    if value is None:
        return {"t": "none"}
    if t is bool:
        return {"t": "bool", "v": value}
    if t is int:
        if abs(value) >= 2 ** 63:
            return {"t": "unsupported", "what": "an int too large for 64 bits"}
        return {"t": "int", "v": value}
    if t is float:
        return {"t": "float", "v": value}
    if t is str:
        return {"t": "str", "v": value[:MAX_TEXT]}
    if t is np.ndarray or isinstance(value, np.generic) and t in numpy_scalar_types():
        if value.dtype.kind not in NUMERIC_KINDS:
            return {"t": "unsupported", "what": f"an array of dtype {value.dtype}"}
        key = f"a{len(arrays)}"
        arrays[key] = np.array(value, copy=True)
        return {"t": "array" if t is np.ndarray else "scalar", "k": key}
    if isinstance(value, np.ndarray):
        return {"t": "unsupported", "what": f"an instance of {_type_name(value)}, a subclass of numpy.ndarray"}
    if t in (list, tuple) or (isinstance(value, tuple) and hasattr(t, "_fields")):
        base = list if t is list else tuple          # their own methods, never a subclass's
        if base.__len__(value) > MAX_ITEMS:
            return {"t": "unsupported", "what": f"a {t.__name__} of more than {MAX_ITEMS} items"}
        items = [encode(v, arrays, depth + 1) for v in base.__iter__(value)]
        if t is list:
            return {"t": "list", "v": items}
        if t is tuple:
            return {"t": "tuple", "v": items}
        fields = [str(f) for f in getattr(t, "_fields", ())][:len(items)]
        return {"t": "namedtuple", "name": t.__name__[:100], "fields": fields, "v": items}
    if t is NamedTupleValue:                     # plain data already (a snapshot the protocol took)
        return {"t": "namedtuple", "name": value.type_name, "fields": list(value.fields),
                "v": [encode(v, arrays, depth + 1) for v in value.values]}
    if t is Unsupported:
        return {"t": "unsupported", "what": value.what}
    if t is dict and len(value) <= MAX_ITEMS and all(type(k) is str for k in dict.keys(value)):
        return {"t": "dict", "v": {k: encode(v, arrays, depth + 1) for k, v in dict.items(value)}}
    return {"t": "unsupported", "what": f"an object of type {_type_name(value)}"}


_SCALAR_TYPES = []


def numpy_scalar_types() -> frozenset:
    """The NumPy scalar types that come back as numbers: booleans, integers and floats."""
    if not _SCALAR_TYPES:
        import numpy as np

        _SCALAR_TYPES.append(frozenset(np.dtype(c).type for c in np.typecodes["AllInteger"]
                                       + np.typecodes["AllFloat"] + "?"))
    return _SCALAR_TYPES[0]


class BadFormat(ValueError):
    """A description or an array that does not follow the format (a tampered or truncated file)."""


def decode(spec, arrays, depth: int = 0):
    """The value that :func:`encode` described, rebuilt from plain parts; raises :class:`BadFormat` on anything else.

    Arrays come back as plain ``numpy.ndarray`` (scalars as NumPy scalars),
    tuples and lists as such, NamedTuples as :class:`NamedTupleValue`,
    unsupported values as :class:`Unsupported`. ``arrays`` maps keys to arrays
    (an ``NpzFile`` opened with ``allow_pickle=False`` or a dict).
    """
    import numpy as np

    if depth > MAX_DEPTH + 1 or type(spec) is not dict or type(spec.get("t")) is not str:
        raise BadFormat("not a value description")
    t, v = spec["t"], spec.get("v")
    if t == "none":
        return None
    if t in ("bool", "int", "float", "str"):
        want = {"bool": (bool,), "int": (int,), "float": (float, int), "str": (str,)}[t]
        if type(v) not in want or (t == "int" and type(v) is bool):
            raise BadFormat(f"a {t} that is not one")
        return float(v) if t == "float" else v
    if t in ("array", "scalar"):
        key = spec.get("k")
        if type(key) is not str or key not in arrays:
            raise BadFormat("an array that is missing")
        arr = arrays[key]
        if type(arr) is not np.ndarray or arr.dtype.kind not in NUMERIC_KINDS or arr.dtype.fields is not None:
            raise BadFormat(f"an array of dtype {getattr(arr, 'dtype', '?')}")
        if t == "scalar":
            if arr.ndim != 0:
                raise BadFormat("a scalar that is not 0-d")
            return arr[()]
        return arr
    if t == "unsupported":
        return Unsupported(str(spec.get("what", "?"))[:MAX_TEXT])
    if t in ("list", "tuple", "namedtuple"):
        if type(v) is not list or len(v) > MAX_ITEMS:
            raise BadFormat(f"a {t} that is not one")
        items = [decode(s, arrays, depth + 1) for s in v]
        if t == "list":
            return items
        if t == "tuple":
            return tuple(items)
        fields = spec.get("fields")
        if type(fields) is not list or len(fields) != len(items) or not all(type(f) is str for f in fields):
            raise BadFormat("a NamedTuple without its field names")
        return NamedTupleValue(str(spec.get("name", "?"))[:100], tuple(fields), tuple(items))
    if t == "dict":
        if type(v) is not dict:
            raise BadFormat("a dict that is not one")
        return {str(k): decode(s, arrays, depth + 1) for k, s in v.items()}
    raise BadFormat(f"an unknown kind of value {t!r}")


def plain_copy(value):
    """``value`` as plain data, copied now: what would come back if it were returned at this moment."""
    arrays = {}
    return decode(encode(value, arrays), arrays)


# --------------------------------------------------------------------------
# How a case calls the student's functions
# --------------------------------------------------------------------------
def call(functions: dict, name: str, args: tuple):
    """``functions[name](*args)``: the protocol of most exercises."""
    return functions[name](*args)


def optimizer_steps(functions: dict, name: str, args: tuple):
    """An optax-style optimizer: ``init, update = functions[name](**hyper)``, ``state = init(params)``, then
    ``updates, state = update(grads_t, state, params)`` for every step t.

    ``args = (hyper, params, grads)``, ``grads`` a list with one gradient (a
    list of arrays like ``params``) per step. Returns the plain data of what
    happened: ``{"init": state_0, "updates": [u_1, ...], "states": [state_1,
    ...], "states_at_end": [state_0, state_1, ...]}``, each state copied when
    it was returned, and all of them once more after the last step (a state
    changed in place by a later update differs between the two).
    """
    hyper, params, grads = args
    optimizer = functions[name](**hyper)
    if isinstance(optimizer, tuple) and len(optimizer) == 2:
        init, update = optimizer
    else:
        init, update = getattr(optimizer, "init", None), getattr(optimizer, "update", None)
    if not callable(init) or not callable(update):
        raise TypeError(f"{name}(...) must return the pair (init, update) of two functions, got "
                        f"{_type_name(optimizer)}")
    state = init(params)
    kept, snapshots = [state], {"init": plain_copy(state), "updates": [], "states": []}
    for g in grads:
        result = update(g, state, params)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(f"update must return the pair (updates, new_state), got {_type_name(result)}")
        updates, state = result
        snapshots["updates"].append(plain_copy(updates))
        snapshots["states"].append(plain_copy(state))
        kept.append(state)
    snapshots["states_at_end"] = [plain_copy(s) for s in kept]
    return snapshots


def finite_difference(functions: dict, name: str, args: tuple):
    """``functions[name](f, Z, h)`` with ``f`` the test function named ``args[0]`` (:data:`TEST_FUNCTIONS`)."""
    fname, Z, h = args
    return functions[name](TEST_FUNCTIONS[fname][0], Z, h)


#: The protocols by name (a case's ``protocol``).
PROTOCOLS = {"call": call, "optimizer_steps": optimizer_steps, "finite_difference": finite_difference}


def _cubic(Z):
    import numpy as np

    return float(np.sum(np.asarray(Z, np.float64) ** 3) / 3.0)


def _logsumexp(Z):
    import numpy as np

    Z = np.asarray(Z, np.float64)
    top = Z.max()
    return float(top + np.log(np.exp(Z - top).sum()))


def _cubic_grad(Z):
    return Z * Z


def _logsumexp_grad(Z):
    import numpy as np

    e = np.exp(Z - Z.max())
    return e / e.sum()


#: Scalar test functions of an array for the finite-difference exercise: ``name -> (f, ∇f, bound on |f‴|/6)``.
TEST_FUNCTIONS = {"cubic": (_cubic, _cubic_grad, 1.0 / 3.0),
                  "logsumexp": (_logsumexp, _logsumexp_grad, 1.0 / 6.0)}


# --------------------------------------------------------------------------
# Running the cases
# --------------------------------------------------------------------------
def where_raised(exc: BaseException, skip_dirs=()) -> str:
    """``' (in f, line N: code)'``: the last frame of the traceback outside this folder, NumPy and ``skip_dirs``."""
    import numpy as np

    skip = [Path(__file__).resolve().parent, Path(np.__file__).resolve().parent, *map(Path, skip_dirs)]

    def students(frame) -> bool:
        path = Path(frame.filename).resolve()
        return not any(path == d or d in path.parents for d in skip)

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if students(f)]
    if not frames:
        return ""
    f = frames[-1]
    return f" (in {f.name}, line {f.lineno}: {f.line})" if f.line else f" (in {f.name}, line {f.lineno})"


def describe_exception(exc: BaseException) -> dict:
    """What the grader learns of an exception: its type's name, its message and where in the student's code."""
    if isinstance(exc, SystemExit):
        return {"status": "raised", "kind": "SystemExit", "message": f"sys.exit({exc.code!r})"[:MAX_TEXT],
                "where": where_raised(exc)}
    try:
        message = str(exc)[:MAX_TEXT]
    except BaseException:  # noqa: BLE001 — a student's exception whose __str__ fails
        message = "(its message could not be read)"
    return {"status": "raised", "kind": type(exc).__name__[:100], "message": message, "where": where_raised(exc),
            "missing_module": str(getattr(exc, "name", "") or "")[:200] if isinstance(exc, ImportError) else ""}


def run_case(functions: dict, protocol: str, name: str, args: tuple) -> tuple:
    """Run one case: ``(outcome, arrays)``, the outcome a JSON-able dict (``status`` ``"returned"`` with the
    plain ``value`` and ``inputs_after``, or ``"raised"``) and its arrays."""
    arrays = {}
    try:
        value = PROTOCOLS[protocol](functions, name, args)
        return {"status": "returned", "value": encode(value, arrays), "inputs_after": encode(list(args), arrays)}, \
            arrays
    except BaseException as exc:  # noqa: BLE001 — SystemExit and KeyboardInterrupt are findings too
        return describe_exception(exc), {}


def run_cases(functions: dict, cases: list) -> list:
    """Every case ``(protocol, name, args)`` run in this process; the plain outcome of each (for a self-check)."""
    outcomes = []
    for protocol, name, args in cases:
        outcome, arrays = run_case(functions, protocol, name, args)
        for key in ("value", "inputs_after"):
            if key in outcome:
                outcome[key] = decode(outcome[key], arrays)
        outcomes.append(outcome)
    return outcomes


class _ForbiddenImportWatch:
    """A meta-path finder that notes every attempt to import one of ``names`` and lets it fail as usual."""

    def __init__(self, names):
        self.names, self.attempts = tuple(names), []

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names and fullname not in self.attempts:
            self.attempts.append(fullname)
        return None


class _Copies(dict):
    """The input arrays, each handed out as a new copy."""

    def __getitem__(self, key):
        return dict.__getitem__(self, key).copy()


def _set_limits(limits: dict) -> None:
    try:
        import resource
        import signal
    except ImportError:                       # not a POSIX system: the grader's wall clock is the only limit
        return
    if hasattr(signal, "SIGXFSZ"):            # a write past the file-size limit fails with an error, not a kill
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for name, value in (("RLIMIT_CPU", limits.get("cpu_seconds")), ("RLIMIT_AS", limits.get("memory_bytes")),
                        ("RLIMIT_FSIZE", limits.get("file_bytes")), ("RLIMIT_CORE", 0)):
        which = getattr(resource, name, None)
        if which is not None and value is not None:
            try:
                resource.setrlimit(which, (int(value), int(value) + (1 if name == "RLIMIT_CPU" else 0)))
            except (ValueError, OSError):
                pass


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".part")
    write(tmp)
    os.replace(tmp, path)


def _save_outcome(path: Path, outcome: dict, arrays: dict, savez, np) -> None:
    spec = np.frombuffer(json.dumps(outcome).encode("utf-8"), np.uint8)

    def write(tmp):
        with open(tmp, "wb") as f:
            savez(f, **{SPEC_KEY: spec}, **arrays)

    _write_atomic(path, write)


def main(io_dir: str) -> int:
    """The child process: load the submission, run every case, write each outcome as it finishes."""
    io = Path(io_dir)
    config = json.loads((io / CONFIG).read_text(encoding="utf-8"))
    sys.path[:0] = [config["lib_dir"]]          # NumPy alone, linked into a folder of its own
    _set_limits(config["limits"])
    import numpy as np

    savez = np.savez                            # kept before the student's code can replace it
    with np.load(io / INPUTS, allow_pickle=False) as f:
        inputs = {k: f[k] for k in f.files}
    case_specs = config["cases"]
    source = (io / SOURCE).read_text(encoding="utf-8")
    filename = config["filename"]
    import linecache
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    watch = _ForbiddenImportWatch(config.get("forbidden_modules", ()))
    sys.meta_path.insert(0, watch)
    (io / READY).write_text("ready")
    module = type(sys)("submission")
    module.__file__ = filename
    sys.modules["submission"] = module
    try:
        exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 — the point of this process
    except BaseException as exc:  # noqa: BLE001
        loaded = describe_exception(exc)
    else:
        loaded = {"status": "loaded"}
    namespace = module.__dict__
    loaded["missing"] = [name for name in config["functions"] if not callable(namespace.get(name))]
    loaded["forbidden_imports"] = list(watch.attempts)
    _write_atomic(io / LOADED, lambda tmp: tmp.write_text(json.dumps(loaded), encoding="utf-8"))
    if loaded["status"] != "loaded":
        return 0
    for i, spec in enumerate(case_specs):
        if spec["function"] in loaded["missing"]:
            continue
        args = tuple(decode(spec["args"], _Copies(inputs)))      # every case gets fresh copies of its inputs
        outcome, arrays = run_case(namespace, spec["protocol"], spec["function"], args)
        outcome["forbidden_imports"] = list(watch.attempts)
        try:
            _save_outcome(io / case_file(i), outcome, arrays, savez, np)
        except BaseException as exc:  # noqa: BLE001 — e.g. an answer larger than the file-size limit
            too_big = {"status": "raised", "kind": "AnswerNotWritten", "where": "", "forbidden_imports": [],
                       "message": f"your answer could not be sent back to the grader ({type(exc).__name__}); "
                                  "is it far larger than the answer asked for?"}
            _save_outcome(io / case_file(i), too_big, {}, savez, np)
    (io / DONE).write_text("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
