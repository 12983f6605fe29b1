"""The golden files: where they are, reading and writing them, and exporting their inputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import data_dir_override
from .cases import CASES, case_inputs, min_margin, reference_outputs
from .schema import GOLDEN_MIN_MARGIN, is_input, output_keys

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


def export_inputs(directory, golden=None) -> list[Path]:
    """Write ``<directory>/<case>.npz`` holding only the inputs, and ``OUTPUTS.txt`` listing what to compute."""
    golden = load_golden() if golden is None else golden
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths, lines = [], [
        "Outputs expected by `dba-ref conformance check RESULTS.npz`: one .npz holding, for every case,",
        "each key below as <case>/<key>. Shapes are those of the reference; indices, removed and values",
        "are 1-D of any length (they are compared step by step). See docs/golden_schema.md.", "",
    ]
    for name, data in golden.items():
        path = directory / f"{name}.npz"
        np.savez(path, **{k: v for k, v in data.items() if is_input(k)})
        paths.append(path)
        lines.append(f"[{name}] {data['description']}")
        lines += [f"  {name}/{k}  {data[k].dtype}  {data[k].shape}" for k in output_keys(data)]
    (directory / "OUTPUTS.txt").write_text("\n".join(lines) + "\n")
    return paths
