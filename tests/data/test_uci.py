"""UCI-10 loaders on the real files (shapes, classes, imputation) and on corrupt fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sharewise.data.uci import UCI10_NAMES, _SPECS, load_uci, load_uci10
from sharewise.errors import DataError

# (rows, features, classes): the data README's table, checked against the files (all agree).
EXPECTED = {
    "australian": (690, 14, 2),
    "wdbc": (569, 30, 2),
    "ecoli": (336, 7, 8),
    "german": (1000, 24, 2),
    "heart-cleveland": (303, 13, 5),
    "hepatitis": (155, 19, 2),
    "iris": (150, 4, 3),
    "pima": (768, 8, 2),
    "wine": (178, 13, 3),
    "yeast": (1484, 8, 10),
}


def test_names_in_paper_order() -> None:
    assert UCI10_NAMES == tuple(EXPECTED)
    assert set(_SPECS) == set(UCI10_NAMES)


@pytest.mark.parametrize("name", UCI10_NAMES)
def test_real_tables(shared_data: Path, name: str) -> None:
    t = load_uci(name, shared_data)
    n, f, c = EXPECTED[name]
    assert t.x.shape == (n, f) and t.x.dtype == np.float32
    assert t.y.shape == (n,) and t.y.dtype == np.int64
    assert t.n_classes == c == len(t.class_names)
    assert set(np.unique(t.y)) == set(range(c))
    assert not np.isnan(t.x).any()
    assert t.source.name == _SPECS[name].file


def test_real_details(shared_data: Path) -> None:
    tables = load_uci10(shared_data / "uci10")  # data_dir may also be the uci10 folder itself
    assert tables["german"].source.name == "german.data-numeric"
    assert tables["heart-cleveland"].class_names == ["0", "1", "2", "3", "4"]
    assert "imputed 6 missing" in tables["heart-cleveland"].notes
    assert "imputed 167 missing" in tables["hepatitis"].notes
    assert tables["hepatitis"].class_names == ["1", "2"]
    assert np.bincount(tables["hepatitis"].y).tolist() == [32, 123]  # 32 die, 123 live
    assert tables["wdbc"].class_names == ["B", "M"]
    assert tables["ecoli"].class_names == ["cp", "im", "imL", "imS", "imU", "om", "omL", "pp"]
    assert np.bincount(tables["wine"].y).tolist() == [59, 71, 48]
    # wdbc's first feature is the mean radius (17.99 in row 1), not the id column.
    assert tables["wdbc"].x[0, 0] == pytest.approx(17.99)


def test_imputation_is_column_median(tmp_path: Path) -> None:
    values = [1] * 76 + [2] * 2 + [10] * 76  # 154 observed rows + 1 missing = UCI's 155; median 2
    (tmp_path / "hepatitis.data").write_text(
        "\n".join(",".join(["2"] + [str(v)] * 18 + ["1"]) for v in values) + "\n"
        + ",".join(["1"] + ["?"] * 18 + ["2"]) + "\n"
    )
    t = load_uci("hepatitis", tmp_path)
    np.testing.assert_allclose(t.x[154, :18], 2.0)
    assert "imputed 18 missing" in t.notes


def test_wrong_field_count(tmp_path: Path) -> None:
    (tmp_path / "uci10").mkdir()
    (tmp_path / "uci10" / "iris.data").write_text("5.1,3.5,1.4,0.2,Iris-setosa\n\n4.9,3.0,1.4,Iris-setosa\n")
    with pytest.raises(DataError, match=r"iris\.data, line 3: expected 5 .*found 4: '4\.9,3\.0,1\.4,Iris-setosa'"):
        load_uci("iris", tmp_path)


def test_unparseable_value(tmp_path: Path) -> None:
    (tmp_path / "pima.data").write_text("6,148,72,35,0,33.6,0.627,50,1\n1,85,66,2x9,0,26.6,0.351,31,0\n")
    with pytest.raises(DataError, match=r"pima\.data, line 2, field 4: expected a number .*found '2x9'"):
        load_uci("pima", tmp_path)


def test_ecoli_without_header(tmp_path: Path) -> None:
    (tmp_path / "ecoli.data").write_text("AAT_ECOLI 0.49 0.29 0.48 0.50 0.56 0.24 0.35 cp\n" * 336)
    assert load_uci("ecoli", tmp_path).x.shape == (336, 7)


def test_unknown_and_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown UCI task 'breast'.*australian, wdbc"):
        load_uci("breast", tmp_path)
    with pytest.raises(DataError, match=r"wine\.data.*--data-dir"):
        load_uci("wine", tmp_path)
