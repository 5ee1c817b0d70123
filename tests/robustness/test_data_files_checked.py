"""Class 3: data files are checked against the format's known facts, not trusted.

UCI text files (the published row count and class set of each table, finite numbers, field
counts, UTF-8), IDX files (magic, declared shape against the payload, label range, images vs labels)
and Omniglot zips (not a zip, a damaged member, a wrong image size, a badly named drawing): each
damage is an error naming the file and, for text, the line and field; through the command line it
exits 2 before anything is written. (CSV / table files: ``tests/data/test_csv_tasks.py``.)
"""

from __future__ import annotations

import gzip
import io
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sharewise.data.idx import load_mnist, read_idx
from sharewise.data.omniglot import load_omniglot
from sharewise.data.uci import load_uci
from sharewise.errors import DataError
from tests.robustness._helpers import assert_refused, cli, write_config


def uci_copy(shared_data: Path, tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "data" / "uci10"
    folder.mkdir(parents=True)
    shutil.copy(shared_data / "uci10" / name, folder / name)
    return folder / name


def edit_line(path: Path, lineno: int, edit: object) -> str:
    lines = path.read_text().splitlines(keepends=True)
    lines[lineno - 1] = edit(lines[lineno - 1]) if callable(edit) else str(edit)
    path.write_text("".join(lines))
    return lines[lineno - 1]


# -- UCI -----------------------------------------------------------------------------------------

def test_truncated_iris_is_refused_naming_line_and_field(shared_data: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The reported case: a cut-off iris.data whose last label became a 4th class."""
    path = uci_copy(shared_data, tmp_path, "iris.data")
    text = path.read_text().rstrip("\n")
    path.write_text(text[: text.rfind("\n") + 1] + text[text.rfind("\n") + 1:][:-5])  # ...,Iris-virg
    with pytest.raises(DataError, match=r"iris\.data, line 150, field 5: .*'Iris-virg"):
        load_uci("iris", path.parent.parent)
    cfg = write_config(tmp_path / "t.yaml", tasks={"builder": "uci10", "options": {"names": ["iris", "wine"]}})
    code, err = cli(capsys, "run", cfg, "--out", tmp_path / "r", "--data-dir", tmp_path / "data")
    assert_refused(code, err, str(path), "line 150", "field 5")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name, damage, named", [
    # "a|b": the message names both a and b
    ("iris.data", "drop_rows", "expected the 150 rows UCI publishes for iris, but found 120"),
    ("wine.data", "drop_rows", "expected the 178 rows"),
    ("iris.data", "extra_row", "longer than the original"),
    ("wine.data", "inf", "line 3, field 2|infinite"),
    ("pima.data", "nan", "line 3, field 2|'nan'"),
    ("iris.data", "semicolons", "line 3: expected 5 fields|4.7;3.2"),
    ("yeast.data", "stray_string", "line 3, field 3|'n/a'"),
    ("wdbc.data", "unknown_class", "line 3, field 2: expected a wdbc class label"),
    ("heart-cleveland.data", "latin1", "line 3|not valid utf-8"),
    ("ecoli.data", "few_fields", "line 3: expected 9 fields|found 7"),
    ("german.data-numeric", "missing_label", "the class label (field 25) is missing"),
])
def test_damaged_uci_files_name_file_line_and_field(name: str, damage: str, named: str, shared_data: Path,
                                                    tmp_path: Path) -> None:
    path = uci_copy(shared_data, tmp_path, name)
    if damage == "drop_rows":
        lines = path.read_text().splitlines(keepends=True)
        keep = 120 if name == "iris.data" else 100
        path.write_text("".join(lines[:keep]))
    elif damage == "extra_row":
        path.write_text(path.read_text() + path.read_text().splitlines(keepends=True)[0])
    elif damage in ("inf", "nan", "stray_string"):
        value = {"inf": "inf", "nan": "nan", "stray_string": "n/a"}[damage]
        col = 2 if damage == "stray_string" else 1  # yeast's field 1 is the sequence name
        edit_line(path, 3, lambda ln: ",".join(value if i == col else f for i, f in enumerate(ln.split(","))))
    elif damage == "semicolons":
        edit_line(path, 3, lambda ln: ln.replace(",", ";"))
    elif damage == "unknown_class":
        edit_line(path, 3, lambda ln: ln.replace(",M,", ",X,", 1).replace(",B,", ",X,", 1))
    elif damage == "latin1":
        edit_line(path, 3, lambda ln: "\xe9" + ln)
        path.write_bytes(path.read_text().encode("latin-1"))
    elif damage == "few_fields":
        edit_line(path, 3, lambda ln: " ".join(ln.split()[:-2]) + "\n")
    elif damage == "missing_label":
        edit_line(path, 3, lambda ln: " ".join(ln.split()[:-1] + ["?"]) + "\n")
    with pytest.raises(DataError) as info:
        load_uci(name.split(".")[0], path.parent.parent)  # german.data-numeric is task 'german'
    message = str(info.value)
    assert str(path) in message and all(n in message for n in named.split("|")), message


def test_shipped_uci_files_pass_their_checks(shared_data: Path) -> None:
    for name, rows, classes in (("iris", 150, 3), ("yeast", 1484, 10), ("heart-cleveland", 303, 5)):
        table = load_uci(name, shared_data)
        assert table.x.shape[0] == rows and table.n_classes == classes


# -- IDX -----------------------------------------------------------------------------------------

def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    return bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(">u1").tobytes()


def mnist_folder(tmp_path: Path, n: int = 5) -> Path:
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(rng.integers(0, 255, (n, 28, 28))))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(rng.integers(0, 10, n)))
    return folder


@pytest.mark.parametrize("damage, file, named", [
    ("truncate", "train-images-idx3-ubyte", "expected 3920 payload bytes, but found 3000"),
    ("html", "train-labels-idx1-ubyte", "is not an IDX file"),
    ("empty", "t10k-images-idx3-ubyte", "(empty file)"),
    ("label_range", "train-labels-idx1-ubyte", "expected labels in 0..9, but found 12"),
    ("swap", "t10k-labels-idx1-ubyte", "expected a 1-D label array"),
    ("count", "t10k-labels-idx1-ubyte", "has 4 labels"),
    ("gzip", "train-images-idx3-ubyte.gz", "truncated or corrupt"),
])
def test_damaged_idx_files_are_named(damage: str, file: str, named: str, tmp_path: Path) -> None:
    folder = mnist_folder(tmp_path)
    path = folder / file
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: 16 + 3000])
    elif damage == "html":
        path.write_bytes(b"<!DOCTYPE html><html>rate limited</html>")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "label_range":
        path.write_bytes(idx_bytes(np.array([1, 2, 12, 3, 4])))
    elif damage == "swap":
        shutil.copy(folder / "t10k-images-idx3-ubyte", path)
    elif damage == "count":
        path.write_bytes(idx_bytes(np.array([1, 2, 3, 4])))
    else:
        raw = folder / "train-images-idx3-ubyte"
        path.write_bytes(gzip.compress(raw.read_bytes())[:200])
        raw.unlink()
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path / "data")
    assert str(path) in str(info.value) and named in str(info.value), str(info.value)


def test_idx_header_facts(tmp_path: Path) -> None:
    bad_dtype = tmp_path / "bad"
    bad_dtype.write_bytes(bytes([0, 0, 0x07, 1]) + struct.pack(">I", 3) + b"abc")
    with pytest.raises(DataError, match=r"bad is not an IDX file"):
        read_idx(bad_dtype)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 0x08, 3]) + b"\x00\x00")
    with pytest.raises(DataError, match=r"short: the IDX header declares 3 dimensions"):
        read_idx(short)


# -- Omniglot ------------------------------------------------------------------------------------

def png(size: int = 105) -> bytes:
    buf = io.BytesIO()
    Image.new("1", (size, size), 1).save(buf, format="PNG")
    return buf.getvalue()


def omniglot_zips(tmp_path: Path, member_bytes: bytes | None = None, member_name: str = "0001_01.png") -> Path:
    root = tmp_path / "data" / "omniglot"
    root.mkdir(parents=True)
    for part, alphabet in (("background", "Latin"), ("evaluation", "Greek")):
        with zipfile.ZipFile(root / f"images_{part}.zip", "w") as zf:
            for char in ("character01", "character02"):
                for d in range(1, 21):
                    name = f"images_{part}/{alphabet}/{char}/0001_{d:02d}.png"
                    if part == "background" and char == "character02" and d == 1:
                        name = name.replace("0001_01.png", member_name)
                        zf.writestr(name, member_bytes if member_bytes is not None else png())
                    else:
                        zf.writestr(name, png())
    return root


@pytest.mark.parametrize("content, member, named", [
    (b"not a png at all", "0001_01.png", "could not decode the Omniglot image"),
    (None, "drawing.png", "expected drawings named XXXX_YY.png"),
    ("small", "0001_01.png", "expected a 105x105 Omniglot image"),
])
def test_damaged_omniglot_members_are_named(content: object, member: str, named: str, tmp_path: Path) -> None:
    data = png(50) if content == "small" else content
    root = omniglot_zips(tmp_path, data, member)  # type: ignore[arg-type]
    with pytest.raises(DataError) as info:
        load_omniglot(tmp_path / "data", alphabets=["Latin"])
    assert named in str(info.value) and "images_background" in str(info.value), str(info.value)
    assert root.is_dir()


def test_omniglot_archive_that_is_not_a_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = omniglot_zips(tmp_path)
    (root / "images_evaluation.zip").write_bytes(b"<html>not found</html>")
    with pytest.raises(DataError, match="images_evaluation.zip"):
        load_omniglot(tmp_path / "data", alphabets=["Latin"])
    cfg = write_config(tmp_path / "t.yaml", tasks={"builder": "omniglot_alphabets",
                                                   "options": {"alphabets": ["Latin"], "image_size": 8}})
    code, err = cli(capsys, "run", cfg, "--out", tmp_path / "r", "--data-dir", tmp_path / "data")
    assert_refused(code, err, "images_evaluation.zip")
    assert not (tmp_path / "r").exists()


def test_good_omniglot_zips_load(tmp_path: Path) -> None:
    omniglot_zips(tmp_path)
    data = load_omniglot(tmp_path / "data", alphabets=["Latin", "Greek"])
    assert data.alphabets["Latin"].images.shape == (40, 105, 105) and data.alphabets["Greek"].n_characters == 2


# -- tables (the `table` task set; its own checks: tests/data/test_table*.py) --------------------

def write_table(path: Path, rows: int = 60, damage: str | None = None) -> Path:
    rng = np.random.default_rng(0)
    lines = ["a,b,c,y,z"] + [f"{rng.random():.3f},{rng.random():.3f},{rng.random():.3f},{i % 3},{rng.random():.3f}"
                             for i in range(rows)]
    if damage == "inf":
        lines[8] = "0.5,inf,0.5,1,0.5"
    elif damage == "stray":
        lines[10] = "0.5,0.5,n/a,1,0.5"
    elif damage == "classes":
        lines = ["a,b,y,z"] + [f"{rng.random():.3f},{rng.random():.3f},c{i},{rng.random():.3f}" for i in range(3000)]
    data = ("\n".join(lines) + "\n").encode()
    if damage == "latin1":
        data = data.replace(b"a,b,c", "\xe9,b,c".encode("latin-1"))
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("damage, named", [
    ("latin1", "line 1|not valid utf-8"), ("inf", "line 9, field 2|infinite"), ("stray", "column 'c'|'n/a'|line 11"),
    ("classes", "target column 'y'|3000 distinct classes"),
])
def test_damaged_tables_are_refused_through_the_cli(damage: str, named: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    table = write_table(tmp_path / "data.csv", damage=damage)
    cfg = write_config(tmp_path / "t.yaml", tasks={"builder": "table", "options": {"path": str(table),
                                                                                   "targets": ["y", "z"]}})
    code, err = cli(capsys, "run", cfg, "--out", tmp_path / "r")
    assert_refused(code, err, "data.csv", *named.split("|"))
    assert not (tmp_path / "r").exists()
