"""Data loading and stratified subsets."""
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

import dba_ref.data
from dba_ref.data import (bundled_data_dir, load_dataset, load_idx_dataset, make_split, read_idx,
                          stratified_indices)

MNIST5K_SHA256 = "809ec085d551285cf9efad12c42a6aead98c62f96eb9936cc5b778870773e50d"


def test_bundled_mnist5k_is_the_documented_file():
    with np.load(bundled_data_dir() / "mnist5k.npz") as f:
        images, labels = f["images"], f["labels"]
    assert images.dtype == np.uint8 and labels.dtype == np.uint8
    assert hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest() == MNIST5K_SHA256
    data = load_dataset("mnist5k")
    assert data.X.shape == (5000, 784) and data.X.min() == 0.0 and data.X.max() == 1.0
    assert np.bincount(data.y).tolist() == [500] * 10


def test_mnist5k_is_package_data_unless_the_variable_points_elsewhere(tmp_path, monkeypatch):
    monkeypatch.delenv("DBA_REF_DATA_DIR", raising=False)
    package = Path(dba_ref.data.__file__).resolve().parent
    assert bundled_data_dir() == package and (package / "mnist5k.npz").is_file()
    monkeypatch.setenv("DBA_REF_DATA_DIR", "")                     # empty: unset
    assert bundled_data_dir() == package
    monkeypatch.setenv("DBA_REF_DATA_DIR", str(tmp_path))
    assert bundled_data_dir() == tmp_path


@pytest.mark.parametrize("per_class,seed", [(60, 0), (10, 3)])
def test_stratified_split_is_seeded_balanced_and_disjoint(per_class, seed):
    data = load_dataset("mnist5k")
    a = make_split(data, per_class=per_class, seed=seed, val_per_class=5)
    b = make_split(data, per_class=per_class, seed=seed, val_per_class=5)
    np.testing.assert_array_equal(a.train_idx, b.train_idx)
    assert np.bincount(a.y_train).tolist() == [per_class] * 10
    assert np.bincount(a.y_val).tolist() == [5] * 10
    assert not set(a.train_idx) & set(a.val_idx)
    assert len(a.y_test) == 5000 - 10 * per_class - 50
    c = make_split(data, per_class=per_class, seed=seed + 1)
    assert not np.array_equal(a.train_idx, c.train_idx)


def test_fraction_and_errors():
    y = np.repeat(np.arange(3), 100)
    idx = stratified_indices(y, fraction=0.1, seed=0)
    assert np.bincount(y[idx]).tolist() == [10, 10, 10]
    with pytest.raises(ValueError, match="exactly one"):
        stratified_indices(y, per_class=3, fraction=0.1)
    with pytest.raises(ValueError, match="only 100 samples available, 101"):
        stratified_indices(y, per_class=101)
    with pytest.raises(ValueError, match="class 0 has only 1 sample available, 2 were asked for"):
        stratified_indices(np.array([0, 1, 1]), per_class=2)


def test_digits():
    data = load_dataset("digits")
    assert data.X.shape == (1797, 64) and data.X.max() == 1.0


def write_idx(path, array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(header + array.astype(">u1" if type_code == 0x08 else ">i4").tobytes())


def test_idx_reader_round_trip_and_dataset(tmp_path, rng):
    for part, n in (("train", 7), ("t10k", 3)):
        write_idx(tmp_path / f"{part}-images-idx3-ubyte.gz", rng.integers(0, 256, size=(n, 4, 5)))
        write_idx(tmp_path / f"{part}-labels-idx1-ubyte", rng.integers(0, 10, size=n))
    data = load_idx_dataset(tmp_path, "mnist")
    assert data.X.shape == (7, 20) and data.X_test.shape == (3, 20) and data.X.max() <= 1.0
    ints = np.arange(12).reshape(3, 4)
    write_idx(tmp_path / "ints", ints, type_code=0x0C)
    np.testing.assert_array_equal(read_idx(tmp_path / "ints"), ints)


def test_fashion_mnist_folder_can_be_named_by_the_environment(tmp_path, rng, monkeypatch):
    monkeypatch.setenv("DBA_REF_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"in {tmp_path} .apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")                    # an empty folder: what CI's main test run sees
    for part, n in (("train", 7), ("t10k", 3)):
        write_idx(tmp_path / f"{part}-images-idx3-ubyte", rng.integers(0, 256, size=(n, 2, 2)))
        write_idx(tmp_path / f"{part}-labels-idx1-ubyte", rng.integers(0, 10, size=n))
    assert load_dataset("fashion-mnist").X_test.shape == (3, 4)
    monkeypatch.delenv("DBA_REF_FASHION_MNIST_DIR")
    assert dba_ref.data.fashion_mnist_dir() == Path("/usr/share/datasets/fashion-mnist")


def test_idx_reader_refuses_bad_files(tmp_path):
    (tmp_path / "magic").write_bytes(b"\x12\x34\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="bad magic number"):
        read_idx(tmp_path / "magic")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(tmp_path / "short")
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read IDX file"):
        read_idx(tmp_path / "bad.gz")


def test_missing_idx_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_idx_dataset(tmp_path, "fashion-mnist")
    with pytest.raises(FileNotFoundError, match="needs the official IDX files"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


def test_broken_bundled_file_is_reported(tmp_path, monkeypatch):
    (tmp_path / "mnist5k.npz").write_bytes(b"PK\x03\x04 truncated")
    monkeypatch.setenv("DBA_REF_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="unreadable or truncated"):
        load_dataset("mnist5k")
    monkeypatch.setenv("DBA_REF_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="bundled MNIST-5k not found.*point it at a folder holding mnist5k"):
        load_dataset("mnist5k")


@pytest.mark.optional_data
def test_fashion_mnist_official_split():
    try:
        data = load_dataset("fashion-mnist")
    except FileNotFoundError as exc:                    # names the folder and apt-get install dataset-fashion-mnist
        pytest.skip(f"Fashion-MNIST is not on this machine: {exc}")
    assert data.X.shape == (60000, 784) and data.X_test.shape == (10000, 784)
    assert np.bincount(data.y_test).tolist() == [1000] * 10
