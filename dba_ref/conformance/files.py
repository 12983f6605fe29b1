"""The golden files: where they are, reading and writing them, and exporting their inputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import data_dir_override
from .cases import CASES, case_inputs, min_margin, reference_outputs, step_inputs
from .declaration import Declaration
from .schema import GOLDEN_MIN_MARGIN, STEP_BASES, is_input

#: Inputs of the golden files that only their reference-only first DBA steps use (``dba_sgd/W1``, ...):
#: not exported (the trajectories take the declared metrics and strategies).
REFERENCE_INPUTS = ("step_metric", "step_strategy")

#: Where the package's golden cases are: ``golden/`` beside this module.
PACKAGE_GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


def golden_dir() -> Path:
    """The folder the golden cases are read from: :data:`PACKAGE_GOLDEN_DIR`, or
    ``$DBA_REF_DATA_DIR/golden`` when that variable is set (see :mod:`dba_ref.data`)."""
    override = data_dir_override()
    return override / "golden" if override else PACKAGE_GOLDEN_DIR


def write_golden(directory) -> list[Path]:
    """Compute every case of :data:`CASES` and write ``<directory>/<case>.npz``; return the paths.

    Raises ``RuntimeError`` if a case holds a near-tie (a margin ≤ :data:`GOLDEN_MIN_MARGIN`):
    golden selections must be unambiguous for every correct implementation.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for case in CASES:
        inputs = case_inputs(case)
        data = {**inputs, **reference_outputs(inputs)}
        if min_margin(data) <= GOLDEN_MIN_MARGIN[case.dtype]:
            raise RuntimeError(f"case {case.name!r} has a decision margin {min_margin(data):.3g} <= "
                               f"{GOLDEN_MIN_MARGIN[case.dtype]}; choose another seed")
        path = directory / f"{case.name}.npz"
        np.savez_compressed(path, **data)
        paths.append(path)
    return paths


def load_npz(path) -> dict:
    """All arrays of an ``.npz`` file (no pickles); a missing or unreadable file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError (pickled objects), EOFError ...
        raise ValueError(f"{path} is not a readable .npz file of plain arrays ({exc})") from exc


def load_golden(directory=None) -> dict:
    """``{case name: {key: array}}`` for every case of :data:`CASES` found in ``directory``."""
    directory = Path(directory) if directory is not None else golden_dir()
    missing = [c.name for c in CASES if not (directory / f"{c.name}.npz").is_file()]
    if missing:
        raise FileNotFoundError(
            f"golden cases {', '.join(missing)} not found in {directory}; dba-ref ships them in "
            f"{PACKAGE_GOLDEN_DIR} (reinstall it if they are missing there), or write them to a folder "
            "with python data/golden/make_golden.py --out DIR in a source checkout"
        )
    return {c.name: load_npz(directory / f"{c.name}.npz") for c in CASES}


def export_inputs(directory, golden=None, declaration: Declaration | None = None) -> list[Path]:
    """Write the inputs of the declared cases, ``<directory>/<case>.npz``; return their paths.

    Each file holds a case's model, weights, batch and hyper-parameters, with
    ``metrics``, ``strategies`` and ``bases`` the declared ones, ``steps`` the
    trajectories' length and ``step_X``, ``step_y`` their batches
    (:func:`~dba_ref.conformance.cases.step_inputs`). Beside them,
    ``DECLARATION.json`` records the declaration (``dba-ref conformance check
    --inputs DIR`` reads it back) and ``OUTPUTS.txt`` lists every key to compute.
    """
    golden = load_golden() if golden is None else golden
    declaration = Declaration() if declaration is None else declaration
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    undeclared = {f"{base}_{name}" for base, names in STEP_BASES.items() if base not in declaration.bases
                  for name in names}
    paths, lines = [], [
        f"Outputs expected by `dba-ref conformance check RESULTS.npz --inputs {directory}` for the declaration",
        f"  {declaration.flags() or 'everything (no --case, --only, --metric, --strategy or --base)'}",
        "(DECLARATION.json): one .npz holding each key below as <case>/<key>. Shapes are those of the reference;",
        "1-D keys (selected sets, removal orders, path values) may have any length. The dba_<base>/ keys are",
        "trajectories, one row per step: step t starts from the weights after step t-1 (the case's W<l>, b<l>",
        "for t = 1) on the batch step_X[t-1], step_y[t-1]; their indices and removed rows are padded with -1.",
        "See docs/golden_schema.md.", "",
    ]
    for name in declaration.cases:
        data = golden[name]
        inputs = {k: v for k, v in data.items() if is_input(k) and k not in REFERENCE_INPUTS and k not in undeclared}
        inputs.update(metrics=np.array(declaration.metrics), strategies=np.array(declaration.strategies),
                      bases=np.array(declaration.bases), steps=np.array(declaration.steps, np.int64),
                      **{k: v for k, v in step_inputs(name, data, declaration.steps).items() if k not in undeclared})
        path = directory / f"{name}.npz"
        np.savez(path, **inputs)
        paths.append(path)
        lines.append(f"[{name}] {data['description']}")
        for key, (quantity, shape) in declaration.outputs(data).items():
            dtype = data[key].dtype if key in data else np.dtype(np.int64 if quantity.startswith("step_")
                                                                 else str(data["dtype"]))
            lines.append(f"  {name}/{key}  {dtype}  {'1-D' if shape is None else shape}")
    declaration.write(directory)
    (directory / "OUTPUTS.txt").write_text("\n".join(lines) + "\n")
    return paths
