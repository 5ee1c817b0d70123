"""IDX reader and MNIST / Fashion-MNIST loaders, on the real files and on corrupt fixtures."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from sharewise.data.idx import load_mnist, read_idx
from sharewise.errors import DataError


def _idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def test_read_idx_roundtrip_raw_and_gz(tmp_path: Path) -> None:
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(_idx_bytes(arr))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(_idx_bytes(arr)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx.gz"), arr)
    big = np.array([1, -2, 70000], dtype=">i4")
    (tmp_path / "b.idx").write_bytes(_idx_bytes(big, 0x0C))
    out = read_idx(tmp_path / "b.idx")
    assert out.dtype.isnative and out.tolist() == [1, -2, 70000]


def test_truncated_gzip(tmp_path: Path) -> None:
    blob = gzip.compress(_idx_bytes(np.random.default_rng(0).integers(0, 255, (50, 28, 28), dtype=np.uint8)))
    (tmp_path / "cut.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"cut\.gz.*truncated"):
        read_idx(tmp_path / "cut.gz")


def test_wrong_magic(tmp_path: Path) -> None:
    (tmp_path / "bad.idx").write_bytes(b"<html>not idx</html>")
    with pytest.raises(DataError, match=r"bad\.idx is not an IDX file.*3c 68 74 6d"):
        read_idx(tmp_path / "bad.idx")


def test_wrong_payload_size(tmp_path: Path) -> None:
    blob = _idx_bytes(np.zeros((3, 4), dtype=np.uint8))[:-2]
    (tmp_path / "short.idx").write_bytes(blob)
    with pytest.raises(DataError, match=r"short\.idx.*expected 12 payload bytes, but found 10"):
        read_idx(tmp_path / "short.idx")


def _write_set(folder: Path, n: int, labels: np.ndarray | None = None, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    imgs = np.zeros((n, 28, 28), dtype=np.uint8)
    lbls = np.arange(n, dtype=np.uint8) % 10 if labels is None else labels
    for prefix in ("train", "t10k"):
        for kind, arr in (("images-idx3", imgs), ("labels-idx1", lbls)):
            blob = _idx_bytes(arr)
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(blob))
            else:
                (folder / name).write_bytes(blob)


def test_torchvision_raw_layout_uncompressed(tmp_path: Path) -> None:
    _write_set(tmp_path / "FashionMNIST" / "raw", 5, gz=False)
    data = load_mnist(tmp_path, "fashion-mnist")
    assert data["train"][0].shape == (5, 28, 28) and data["test"][1].dtype == np.int64


def test_label_out_of_range(tmp_path: Path) -> None:
    _write_set(tmp_path, 3, labels=np.array([1, 12, 3], dtype=np.uint8))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: expected labels in 0\.\.9, but found 12"):
        load_mnist(tmp_path)


def test_count_mismatch(tmp_path: Path) -> None:
    _write_set(tmp_path / "mnist", 4)
    (tmp_path / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(_idx_bytes(np.zeros(3, dtype=np.uint8)))
    )
    with pytest.raises(DataError, match="has 3 labels and .* has 4 images"):
        load_mnist(tmp_path)


def test_missing_files_message(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*MNIST.raw.*--data-dir"):
        load_mnist(tmp_path)
    with pytest.raises(DataError, match="unknown MNIST variant 'kmnist'"):
        load_mnist(tmp_path, "kmnist")


@pytest.mark.parametrize("variant", ["mnist", "fashion-mnist"])
def test_real_mnist(shared_data: Path, variant: str) -> None:
    data = load_mnist(shared_data, variant)
    x_tr, y_tr = data["train"]
    x_te, y_te = data["test"]
    assert x_tr.shape == (60000, 28, 28) and x_tr.dtype == np.uint8
    assert x_te.shape == (10000, 28, 28) and y_te.dtype == np.int64
    assert set(np.unique(y_tr)) == set(range(10)) and y_te.min() >= 0 and y_te.max() <= 9
    if variant == "mnist":
        # Official test class counts quoted in the data README.
        assert np.bincount(y_te)[:3].tolist() == [980, 1135, 1032]
    else:
        assert np.bincount(y_te).tolist() == [1000] * 10
