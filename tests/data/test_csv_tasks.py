"""CSV tasks: kind inference, one-hot encoding, imputation, and error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sharewise.data.csv_tasks import load_csv_folder, load_csv_task
from sharewise.errors import DataError


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_binary_string_target_with_onehot_and_imputation(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "t.csv",
        "age,colour,y\n10,red,yes\n?,blue,no\n30,,yes\n20,red,no\n",
    )
    t = load_csv_task(p, "y")
    assert t.kind == "binary" and t.kind_inferred and t.class_names == ["no", "yes"]
    assert t.y.tolist() == [1, 0, 1, 0] and t.y.dtype == np.int64
    assert t.feature_names == ["age", "colour=blue", "colour=red"]
    # age median of 10, 30, 20 is 20; the missing colour gets the mode "red".
    np.testing.assert_array_equal(t.x, [[10, 0, 1], [20, 1, 0], [30, 0, 1], [20, 0, 1]])
    assert t.x.dtype == np.float32
    assert "age: 1 missing -> median 20" in t.notes and "colour: 1 missing -> mode 'red'" in t.notes
    assert "inferred: non-numeric target with 2 distinct values" in t.notes


def test_numeric_integer_target_is_classification(tmp_path: Path) -> None:
    p = _write(tmp_path / "c.csv", "a,label\n" + "".join(f"{i},{i % 3}\n" for i in range(12)))
    t = load_csv_task(p, "label")
    assert t.kind == "multiclass" and t.class_names == ["0", "1", "2"] and t.n_classes == 3
    assert "3 distinct integer values" in t.notes


def test_many_values_or_fractions_are_regression(tmp_path: Path) -> None:
    p = _write(tmp_path / "r.csv", "a,v\n" + "".join(f"{i},{i * 1.5}\n" for i in range(4)))
    t = load_csv_task(p, "v")
    assert t.kind == "regression" and t.y.dtype == np.float32 and t.class_names == []
    assert "not all integers" in t.notes
    p2 = _write(tmp_path / "r2.csv", "a,v\n" + "".join(f"{i},{i}\n" for i in range(11)))
    assert load_csv_task(p2, "v").kind == "regression"
    assert load_csv_task(p2, "v", kind="multiclass").n_classes == 11


def test_explicit_kind_checks(tmp_path: Path) -> None:
    p = _write(tmp_path / "k.csv", "a,y\n1,x\n2,y\n3,z\n")
    with pytest.raises(DataError, match="needs exactly 2 target values, but found 3"):
        load_csv_task(p, "y", kind="binary")
    with pytest.raises(DataError, match="numeric target, but found 'x'"):
        load_csv_task(p, "y", kind="regression")
    with pytest.raises(DataError, match="unknown task kind 'ordinal'"):
        load_csv_task(p, "y", kind="ordinal")


def test_missing_target_rows_dropped(tmp_path: Path) -> None:
    t = load_csv_task(_write(tmp_path / "m.csv", "a,y\n1,0\n2,NA\n3,1\n"), "y")
    assert len(t.y) == 2 and "dropped 1 rows with a missing target" in t.notes


def test_errors(tmp_path: Path) -> None:
    p = _write(tmp_path / "e.csv", "a,b\n1,2\n")
    with pytest.raises(DataError, match=r"e\.csv: expected a target column named 'y', but the header has \['a', 'b'\]"):
        load_csv_task(p, "y")
    bad = _write(tmp_path / "bad.csv", "a,b,y\n1,2,0\n3,1\n")
    with pytest.raises(DataError, match=r"bad\.csv, line 3: expected 3 fields .*found 2"):
        load_csv_task(bad, "y")
    nohead = _write(tmp_path / "nohead.csv", "1,2\n3,4\n")
    with pytest.raises(DataError, match=r"nohead\.csv, line 1: expected a header row"):
        load_csv_task(nohead, "1")


def test_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="found none"):
        load_csv_folder(tmp_path, "y")
    _write(tmp_path / "b.csv", "a,y\n1,0\n2,1\n")
    _write(tmp_path / "a.csv", "a,y\n1,0.5\n2,1.5\n")
    tasks = load_csv_folder(tmp_path, "y", kinds={"b": "regression"})
    assert list(tasks) == ["a", "b"]
    assert tasks["a"].kind == "regression" and tasks["b"].kind == "regression"
    assert not tasks["b"].kind_inferred
    with pytest.raises(DataError, match=r"tasks \['zz'\] that have no CSV file"):
        load_csv_folder(tmp_path, "y", kinds={"zz": "binary"})


def test_real_uci_file_as_csv(shared_data: Path, tmp_path: Path) -> None:
    rows = (shared_data / "uci10" / "iris.data").read_text().split()
    p = _write(tmp_path / "iris.csv", "sl,sw,pl,pw,species\n" + "\n".join(rows) + "\n")
    t = load_csv_task(p, "species")
    assert t.x.shape == (150, 4) and t.kind == "multiclass" and t.n_classes == 3
