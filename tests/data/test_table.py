"""The one table path: reading checks (separators, encodings, inf, stray words, class counts) and
the ``table`` task set (one split for every task, shared inputs, missing labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sharewise.data.columns import encode_features, encode_target
from sharewise.data.table import read_table
from sharewise.data.tasksets import build_tasks
from sharewise.errors import DataError
from tests.data._table_helpers import multi_label_csv


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_separator_is_detected_and_noted(tmp_path: Path) -> None:
    t = read_table(_write(tmp_path / "s.csv", "a;b;y\n1;2;x\n3;4;z\n"))
    assert t.columns == ["a", "b", "y"] and t.cells.tolist() == [["1", "2", "x"], ["3", "4", "z"]]
    assert any("separator semicolon (';') detected" in n for n in t.notes)
    tab = read_table(_write(tmp_path / "s.tsv", "a\tb\n1\t2\n"))
    assert tab.columns == ["a", "b"] and not tab.notes


def test_quoted_fields_and_line_numbers(tmp_path: Path) -> None:
    t = read_table(_write(tmp_path / "q.csv", 'a,b\n\n"1,5",x\n2,"y, z"\n'))
    assert t.cells.tolist() == [["1,5", "x"], ["2", "y, z"]] and t.lines.tolist() == [3, 4]


def test_non_utf8_text_names_the_line_and_the_fix(tmp_path: Path) -> None:
    p = _write(tmp_path / "l.csv", "a,city\n1,Zürich\n", encoding="latin-1")
    with pytest.raises(DataError, match=r"l\.csv, line 2: the file is not valid utf-8-sig text \(byte 0xfc.*encoding=latin-1"):
        read_table(p)
    assert read_table(p, encoding="latin-1").cells[0, 1] == "Zürich"


def test_inf_is_an_error_naming_line_and_column(tmp_path: Path) -> None:
    t = read_table(_write(tmp_path / "i.csv", "a,y\n1,0\ninf,1\n"))
    with pytest.raises(DataError, match=r"i\.csv, line 3, field 1: column 'a' holds 1 infinite value\(s\) \('inf'\)"):
        encode_features(t, ["a"])


def test_numeric_column_with_stray_words_is_an_error(tmp_path: Path) -> None:
    rows = [f"{i},{i % 2}" for i in range(30)]
    rows[7] = "seven,1"
    t = read_table(_write(tmp_path / "n.csv", "a,y\n" + "\n".join(rows) + "\n"))
    with pytest.raises(DataError, match=r"column 'a' holds numbers in 29 of 30 filled rows, but also 1 text value\(s\): 'seven' \(line 9\)"):
        encode_features(t, ["a"])
    x, names, notes = encode_features(t, ["a"], missing=("", "seven"))  # declared missing: imputed
    assert names == ["a"] and x[7, 0] == np.median([i for i in range(30) if i != 7])
    assert "a: 1 missing -> median" in notes[0]


def test_id_like_text_column_and_too_many_classes(tmp_path: Path) -> None:
    t = read_table(_write(tmp_path / "id.csv", "id,y\n" + "".join(f"u{i},c{i}\n" for i in range(80))))
    with pytest.raises(DataError, match=r"column 'id' is text with 80 distinct values in 80 rows.*drop=\['id'\]"):
        encode_features(t, ["id"])
    with pytest.raises(DataError, match=r"target column 'y': 80 distinct classes in 80 labelled rows is more than max_classes=50"):
        encode_target(t, "y", max_classes=50)


def test_missing_target_cells_are_kept_as_missing(tmp_path: Path) -> None:
    t = read_table(_write(tmp_path / "m.csv", "a,c,r\n1,x,1.5\n2,,\n3,y,?\n4,x,2.25\n"))
    c = encode_target(t, "c")
    assert c.kind == "binary" and c.y.tolist() == [0, -1, 1, 0] and c.n_missing == 1
    r = encode_target(t, "r")
    assert r.kind == "regression" and np.isnan(r.y[1:3]).all() and r.y[[0, 3]].tolist() == [1.5, 2.25]


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    import pandas as pd  # pyarrow (the parquet extra) is installed by `make test`
    p = multi_label_csv(tmp_path / "t.csv")
    pd.read_csv(p, dtype=str, keep_default_na=False).to_parquet(tmp_path / "t.parquet")
    a = build_tasks("table", data_dir=None, seed=0, options={"path": str(p), "targets": ["reg", "bin", "cls"]})
    b = build_tasks("table", data_dir=None, seed=0,
                    options={"path": str(tmp_path / "t.parquet"), "targets": ["reg", "bin", "cls"]})
    for ta, tb in zip(a, b):
        assert torch.equal(ta.x_train, tb.x_train) and torch.equal(ta.y_test.nan_to_num(-9), tb.y_test.nan_to_num(-9))


def test_table_taskset_one_split_shared_inputs_missing_labels(tmp_path: Path) -> None:
    p = multi_label_csv(tmp_path / "t.csv")
    tasks = build_tasks("table", data_dir=None, seed=0, options={"path": str(p), "targets": ["reg", "bin", "cls"]})
    assert [(t.name, t.kind, t.n_outputs) for t in tasks] == [("reg", "regression", 1), ("bin", "binary", 1),
                                                              ("cls", "multiclass", 3)]
    for split in ("train", "val", "test"):  # one split, one input tensor: the sampler's shared mode
        assert all(t.split(split)[0] is tasks[0].split(split)[0] for t in tasks)
    assert tasks[0].x_train.shape == (42, 4) and tasks[0].x_test.shape[0] == 12  # a, b, colour one-hot; 70/10/20 % of 60
    reg = tasks[0]
    n_labelled = int(reg.labelled("train").sum()) + int(reg.labelled("val").sum()) + int(reg.labelled("test").sum())
    assert n_labelled == 30 and bool(tasks[1].labelled("train").all())
    # standardised on the labelled training rows
    y = reg.y_train[reg.labelled("train")]
    assert abs(float(y.mean())) < 1e-5 and abs(float(y.std(unbiased=False)) - 1) < 1e-5
    assert reg.summary()["n_train_labelled"] == int(reg.labelled("train").sum())
    assert "one seeded split of 60 rows" in reg.notes["split"] and "reg: kind regression" in reg.notes["preprocessing"]
    from sharewise.data.sampler import StackedTaskSampler

    assert StackedTaskSampler(tasks, 8, torch.Generator().manual_seed(0)).shared_inputs


def test_table_too_small_to_split_names_file_and_column(tmp_path: Path) -> None:
    p = _write(tmp_path / "s.csv", "a,z\n1,1.5\n")
    with pytest.raises(DataError, match=r"s\.csv: 1 rows are too few to split 0\.7/0\.1/0\.2"):
        build_tasks("table", data_dir=None, seed=0, options={"path": str(p), "targets": ["z"]})
    p1 = _write(tmp_path / "s1.csv", "a,y\n" + "".join(f"{i},{int(i == 0)}\n" for i in range(10)))
    with pytest.raises(DataError, match=r"s1\.csv, target column 'y': the training split holds a single class"):
        build_tasks("table", data_dir=None, seed=0, options={"path": str(p1), "targets": ["y"]})  # row 0 lands in val
    rows = "".join(f"{i},{i % 2},{'' if i else 1.5}\n" for i in range(20))
    p2 = _write(tmp_path / "s2.csv", "a,y,z\n" + rows)
    with pytest.raises(DataError, match=r"s2\.csv, target column 'z': the (train|test) split has no labelled row"):
        build_tasks("table", data_dir=None, seed=0, options={"path": str(p2), "targets": ["y", "z"]})


def test_table_option_errors(tmp_path: Path) -> None:
    p = multi_label_csv(tmp_path / "t.csv")
    with pytest.raises(DataError, match=r"expected target columns \['nope', 'gone'\], but the header has"):
        build_tasks("table", data_dir=None, seed=0, options={"path": str(p), "targets": ["reg", "nope", "gone"]})
    with pytest.raises(DataError, match=r"tasks.options.kinds names \['zz'\]"):
        build_tasks("table", data_dir=None, seed=0, options={"path": str(p), "targets": ["reg"], "kinds": {"zz": "binary"}})


def test_csv_folder_file_too_small_to_split_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "tasks"
    folder.mkdir()
    _write(folder / "tiny.csv", "a,y\n1,0.5\n")
    with pytest.raises(DataError, match=r"tiny\.csv: 1 labelled rows are too few to split"):
        build_tasks("csv_folder", data_dir=None, seed=0, options={"folder": str(folder), "target": "y"})


def test_streamed_tasks_are_refused_by_commands_that_need_tensors() -> None:
    from torch.utils.data import TensorDataset

    from sharewise.data.streaming import DatasetTask, require_in_memory
    from sharewise.errors import ConfigError

    ds = TensorDataset(torch.zeros(3, 2), torch.zeros(3).long())
    with pytest.raises(ConfigError, match="sharewise affinity needs in-memory tasks"):
        require_in_memory([DatasetTask("t", "binary", 1, ds, None, ds, (2,))], "affinity")
