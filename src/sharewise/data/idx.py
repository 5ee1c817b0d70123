"""MNIST-style IDX files and the MNIST / Fashion-MNIST loaders built on them.

IDX is the format LeCun et al. ship MNIST in (and Zalando copied for Fashion-MNIST): a 4-byte magic
``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` big-endian uint32 sizes, then the row-major payload.
We read it ourselves rather than through torchvision so that the data layer needs only numpy, and so
that a corrupt download fails with a message naming the file instead of a reshape error deep inside.
The 4-MNISTs benchmark of the Gumbel-Matrix paper and the MNIST pairs of the soft-ordering paper
(Sec. 4.1) both start from these arrays.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from sharewise.errors import DataError

# IDX dtype codes -> big-endian numpy dtypes (the format stores multi-byte values big-endian).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

MNIST_VARIANTS: tuple[str, ...] = ("mnist", "fashion-mnist")
# Folder name torchvision uses for each variant under ``<root>/<name>/raw``.
_TORCHVISION_NAMES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_bytes(path: Path) -> bytes:
    """Return the file's bytes, un-gzipping ``.gz`` files; a truncated gzip becomes a DataError."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(
            f"could not read the IDX file {path}: expected a complete "
            f"{'gzip' if path.suffix == '.gz' else 'binary'} file, but reading failed with "
            f"{type(exc).__name__}: {exc}. The file is probably truncated or corrupt; delete it and "
            "download it again."
        ) from exc


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (raw or ``.gz``) into an array of its declared dtype and shape.

    Returns native-endian data so downstream code never meets a big-endian array. Every header
    problem (magic, size) raises :class:`DataError` naming the file, since these usually mean an
    interrupted download or an HTML error page saved under the data file's name.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(
            f"{path} is not an IDX file: expected a magic number 00 00 <dtype code in "
            f"{sorted(hex(c) for c in _IDX_DTYPES)}> <ndim>, but the first bytes are "
            f"{data[:4].hex(' ') or '(empty file)'}. Check that this is the right file (not an HTML "
            "page or a different format) and download it again."
        )
    dtype = _IDX_DTYPES[data[2]]
    ndim = data[3]
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(
            f"{path}: the IDX header declares {ndim} dimensions, so expected at least {header_len} "
            f"header bytes, but the file has only {len(data)} bytes. Download the file again."
        )
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header_len
    if found != expected:
        raise DataError(
            f"{path}: the IDX header declares shape {shape} of {dtype.name}, so expected {expected} "
            f"payload bytes, but found {found}. The file is truncated or corrupt; download it again."
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _find_mnist_file(candidates: list[Path], stem: str, variant: str, data_dir: Path) -> Path:
    for folder in candidates:
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    looked = ", ".join(str(c) for c in candidates)
    raise DataError(
        f"expected the {variant} IDX file {stem}.gz (or uncompressed {stem}) among the four standard "
        f"files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        f"t10k-labels-idx1-ubyte.gz, but did not find it in any of: {looked}. Put the files in "
        f"{data_dir / variant} (for example with torchvision.datasets.{_TORCHVISION_NAMES[variant]}"
        f"(root, download=True), whose raw folder is also searched) or pass --data-dir."
    )


def load_mnist(data_dir: str | Path, variant: str = "mnist") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load MNIST or Fashion-MNIST as ``{"train": (images, labels), "test": (images, labels)}``.

    images: uint8 ``[N, 28, 28]``; labels: int64 ``[N]`` in 0..9. Files are looked for in
    ``data_dir/<variant>/``, then ``data_dir/`` itself, then torchvision's raw layout
    (``data_dir/MNIST/raw/`` or ``data_dir/FashionMNIST/raw/``), gzipped or not, so the same
    files fetched by torchvision work without copying.
    """
    if variant not in MNIST_VARIANTS:
        raise DataError(f"unknown MNIST variant {variant!r}: expected one of {list(MNIST_VARIANTS)}.")
    data_dir = Path(data_dir)
    candidates = [data_dir / variant, data_dir, data_dir / _TORCHVISION_NAMES[variant] / "raw"]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, (img_stem, lbl_stem) in _SPLIT_FILES.items():
        img_path = _find_mnist_file(candidates, img_stem, variant, data_dir)
        lbl_path = _find_mnist_file(candidates, lbl_stem, variant, data_dir)
        images = read_idx(img_path)
        labels = read_idx(lbl_path)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(
                f"{img_path}: expected uint8 images of shape [N, 28, 28], but found {images.dtype} "
                f"of shape {images.shape}. Check that this is the images file, not the labels file."
            )
        if labels.ndim != 1:
            raise DataError(
                f"{lbl_path}: expected a 1-D label array, but found shape {labels.shape}. Check "
                "that this is the labels file, not the images file."
            )
        if len(labels) != len(images):
            raise DataError(
                f"{variant} {split}: expected as many labels as images, but {lbl_path} has "
                f"{len(labels)} labels and {img_path} has {len(images)} images. One of the two files "
                "is from a different split or download; fetch both again."
            )
        bad = np.flatnonzero((labels < 0) | (labels > 9))
        if bad.size:
            raise DataError(
                f"{lbl_path}: expected labels in 0..9, but found {int(labels[bad[0]])} at index "
                f"{int(bad[0])} ({bad.size} labels out of range). The file is corrupt or not an "
                "MNIST label file; download it again."
            )
        out[split] = (images, labels.astype(np.int64))
    return out
