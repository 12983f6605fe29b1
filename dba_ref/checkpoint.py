"""Checkpoint files: the exact state of a training run, written atomically, read back only when intact.

A checkpoint stores any *state tree* built from what the package's optimizers
and training loop keep between steps: ``None``, ``bool``, ``int`` (any size,
e.g. a PCG64 generator's 128-bit state), ``float`` (NaN and ±inf included),
``str``, NumPy arrays and scalars (any numeric dtype), ``list``, ``tuple``,
``dict`` (any such keys, e.g. EnhancedSGD's tuple-keyed Q-table), and the
package's own frozen dataclasses and named tuples (``DBAState``,
``LayerStep``, ``Selection``, ``AdaptiveBatchState``, ``AdanState``, ...).

**Exact.** Arrays are stored with their dtype and bytes, floats as the
hex of their 8 bytes, ints as JSON integers: what is read back is equal bit
for bit to what was written, so a resumed run continues exactly where the
interrupted one stopped. A named tuple's ``RECORD_FIELDS`` (``DBAState.last``:
what the last step did, its mean gradients and updates) are not stored: no
update reads them, and they come back as their defaults.

**Safe: no pickle.** The tree is JSON (structure) plus an ``.npz`` archive of
plain arrays read with ``allow_pickle=False``. A class is rebuilt only if it
is a dataclass or named tuple defined in an already imported ``dba_ref``
module; nothing in a checkpoint can name a function to call or a module to
import, so loading a file from elsewhere cannot run code.

**Atomic and checked.** The file is ``HEADER`` + payload, where the header
line holds the format version, the payload's length and its SHA-256. It is
written to a temporary file in the same folder, flushed and ``fsync``-ed,
then renamed over the old one (and the folder ``fsync``-ed): a crash at any
moment leaves either the old checkpoint or the new one, never half of one.
Reading refuses (``CheckpointError``, a ``ValueError``) a file that is not a
checkpoint, has another format version, is truncated, or whose checksum does
not match.

File layout::

    DBA-REF-CHECKPOINT <format> <payload bytes> <sha256 of payload>\\n
    <payload: an .npz archive with "tree.json" (uint8) and arrays "0", "1", ...>

>>> import numpy as np, tempfile, os
>>> from dba_ref.checkpoint import read_checkpoint, write_checkpoint
>>> state = {"step": 3, "m": np.arange(3.0), ("a", None): float("nan")}
>>> path = write_checkpoint(os.path.join(tempfile.mkdtemp(), "ckpt"), state)
>>> back = read_checkpoint(path)
>>> back["step"], back["m"], back[("a", None)]
(3, array([0., 1., 2.]), nan)
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import struct
import sys
from pathlib import Path

import numpy as np

#: Version of the file layout and of the tree encoding.
FORMAT = 1
MAGIC = b"DBA-REF-CHECKPOINT"
#: Modules whose dataclasses and named tuples a checkpoint may hold.
PACKAGE = "dba_ref"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: not one, another format, truncated, corrupt, or from another run."""


# --------------------------------------------------------------------------
# The state tree <-> (JSON structure, arrays)
# --------------------------------------------------------------------------
def _class_name(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _is_namedtuple(obj) -> bool:
    return isinstance(obj, tuple) and hasattr(type(obj), "_fields")


def _packable(items: list, kind: type) -> bool:
    """A list of only Python floats (or only ints that fit int64): stored as one array, still exact."""
    if not items or not all(type(x) is kind for x in items):
        return False
    return kind is float or all(-(1 << 63) <= x < (1 << 63) for x in items)


def encode(obj, arrays: list, where: str = "state"):
    """The JSON structure of ``obj``; its arrays are appended to ``arrays`` and referred to by position.

    Raises ``TypeError`` naming ``where`` (a path such as ``state.base[1]``) for anything
    that cannot be stored exactly and safely.
    """
    if obj is None or type(obj) in (bool, int, str):
        return obj
    if type(obj) is float:
        return {"$": "float", "bits": struct.pack(">d", obj).hex()}     # every float64, NaN payloads included
    if isinstance(obj, (np.ndarray, np.generic)):
        if obj.dtype.hasobject or obj.dtype.kind not in "biufcSU":
            raise TypeError(f"{where}: cannot checkpoint an array of dtype {obj.dtype} (object or structured)")
        arrays.append(np.asarray(obj))
        return {"$": "array" if isinstance(obj, np.ndarray) else "scalar", "ref": len(arrays) - 1}
    cls = type(obj)
    if dataclasses.is_dataclass(obj) or _is_namedtuple(obj):
        if not cls.__module__.split(".")[0] == PACKAGE:
            raise TypeError(f"{where}: cannot checkpoint {_class_name(cls)}: only dba_ref's own state classes")
        if _is_namedtuple(obj):
            skipped = getattr(cls, "RECORD_FIELDS", ())      # what the last step did: not needed to continue
            return {"$": "namedtuple", "class": _class_name(cls),
                    "fields": {k: encode(v, arrays, f"{where}.{k}") for k, v in zip(cls._fields, obj)
                               if k not in skipped}}
        fields = dataclasses.fields(obj)
        if not all(f.init for f in fields):
            raise TypeError(f"{where}: cannot checkpoint {_class_name(cls)}: it has fields set outside __init__")
        return {"$": "dataclass", "class": _class_name(cls),
                "fields": {f.name: encode(getattr(obj, f.name), arrays, f"{where}.{f.name}") for f in fields}}
    if cls in (list, tuple):
        for kind, tag, dtype in ((float, "floats", np.float64), (int, "ints", np.int64)):
            if cls is list and _packable(obj, kind):
                arrays.append(np.array(obj, dtype))
                return {"$": tag, "ref": len(arrays) - 1}
        return {"$": cls.__name__, "items": [encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if cls is dict:
        return {"$": "dict", "items": [[encode(k, arrays, f"{where} key {k!r}"), encode(v, arrays, f"{where}[{k!r}]")]
                                       for k, v in obj.items()]}
    raise TypeError(f"{where}: cannot checkpoint a {cls.__module__}.{cls.__qualname__}")


def _state_class(name: str):
    """A dataclass or named tuple of an already imported dba_ref module, or CheckpointError."""
    module_name, _, qualname = name.partition(":")
    module = sys.modules.get(module_name) if module_name.split(".")[0] == PACKAGE else None
    cls = getattr(module, qualname, None) if module is not None and qualname.isidentifier() else None
    if not isinstance(cls, type) or not (dataclasses.is_dataclass(cls) or
                                         (issubclass(cls, tuple) and hasattr(cls, "_fields"))):
        raise CheckpointError(f"the checkpoint names a class {name!r} that is not a dba_ref state class "
                              "(written by another version of dba-ref?)")
    return cls


def decode(tree, arrays):
    """Inverse of :func:`encode`: ``arrays`` maps each ``ref`` to its array."""
    if tree is None or type(tree) in (bool, int, str):
        return tree
    if type(tree) is not dict or "$" not in tree:
        raise CheckpointError(f"malformed checkpoint tree node {str(tree)[:80]!r}")
    tag = tree["$"]
    if tag == "float":
        return struct.unpack(">d", bytes.fromhex(tree["bits"]))[0]
    if tag in ("array", "scalar", "floats", "ints"):
        arr = arrays[str(tree["ref"])]
        return arr if tag == "array" else arr[()] if tag == "scalar" else arr.tolist()
    if tag in ("list", "tuple"):
        items = [decode(v, arrays) for v in tree["items"]]
        return items if tag == "list" else tuple(items)
    if tag == "dict":
        return {decode(k, arrays): decode(v, arrays) for k, v in tree["items"]}
    if tag in ("namedtuple", "dataclass"):
        return _state_class(tree["class"])(**{k: decode(v, arrays) for k, v in tree["fields"].items()})
    raise CheckpointError(f"unknown node type {tag!r} in the checkpoint (written by another version of dba-ref?)")


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
def atomic_write(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one, never a mix.

    Temporary file in the same folder, flush, ``fsync``, rename over ``path``, ``fsync`` of the folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    if hasattr(os, "O_DIRECTORY"):                   # POSIX: make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def write_checkpoint(path, state) -> Path:
    """Store the state tree ``state`` in ``path`` atomically (see the module docstring)."""
    arrays: list = []
    tree = encode(state, arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **{"tree.json": np.frombuffer(json.dumps(tree).encode(), np.uint8)},
             **{str(i): a for i, a in enumerate(arrays)})
    payload = buffer.getvalue()
    header = b"%s %d %d %s\n" % (MAGIC, FORMAT, len(payload), hashlib.sha256(payload).hexdigest().encode())
    return atomic_write(path, header + payload)


def read_checkpoint(path):
    """The state tree stored in ``path``; ``CheckpointError`` (a ``ValueError``) says why a file is refused."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc.strerror or exc})") from exc
    line, newline, payload = raw.partition(b"\n")
    parts = line.split(b" ")
    if not newline or len(parts) != 4 or parts[0] != MAGIC:
        raise CheckpointError(f"{path}: not a dba-ref checkpoint (the file does not start with {MAGIC.decode()})")
    if parts[1] != str(FORMAT).encode():
        raise CheckpointError(f"{path}: checkpoint format {parts[1].decode(errors='replace')}; this dba-ref "
                              f"reads format {FORMAT}")
    try:
        length = int(parts[2])
    except ValueError:
        raise CheckpointError(f"{path}: corrupt checkpoint header") from None
    if len(payload) != length:
        raise CheckpointError(f"{path}: truncated or padded checkpoint: {len(payload)} bytes of data, the header "
                              f"promises {length}")
    if hashlib.sha256(payload).hexdigest().encode() != parts[3]:
        raise CheckpointError(f"{path}: corrupt checkpoint: the SHA-256 checksum of its data does not match")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        tree = json.loads(arrays.pop("tree.json").tobytes())
    except (ValueError, KeyError, OSError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint data ({exc})") from exc
    try:
        return decode(tree, arrays)
    except (KeyError, TypeError, ValueError, struct.error) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path}: malformed checkpoint ({exc!r})") from exc


__all__ = ["CheckpointError", "FORMAT", "encode", "decode", "atomic_write", "write_checkpoint", "read_checkpoint"]
