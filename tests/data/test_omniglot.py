"""Omniglot loader on the real zips (counts, paper order, inversion), layouts, splits and errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from sharewise.data._omniglot_source import find_sources
from sharewise.data.omniglot import OMNIGLOT_PAPER_ORDER, alphabet_seed, load_omniglot, omniglot_split
from sharewise.errors import DataError


@pytest.fixture(scope="module")
def omniglot_small(shared_data: Path):
    """All 50 alphabets at 28x28 (counts do not depend on size; keeps memory ~50 MB, not 1.4 GB)."""
    return load_omniglot(shared_data, image_size=28)


def test_paper_order_resolves_to_zip_folders(shared_data: Path) -> None:
    idx = find_sources(shared_data, ("background", "evaluation"))
    folders = set(idx["background"].characters) | set(idx["evaluation"].characters)
    assert len(OMNIGLOT_PAPER_ORDER) == 50 == len(set(OMNIGLOT_PAPER_ORDER))
    assert set(OMNIGLOT_PAPER_ORDER) == folders
    assert len(idx["background"].characters) == 30 and len(idx["evaluation"].characters) == 20


def test_all_counts(omniglot_small) -> None:
    d = omniglot_small
    assert d.names == list(OMNIGLOT_PAPER_ORDER)
    assert sum(a.n_characters for a in d.alphabets.values()) == 1623
    assert sum(len(a.images) for a in d.alphabets.values()) == 32460
    by_part = {p: sum(a.n_characters for a in d.alphabets.values() if a.part == p) for p in ("background", "evaluation")}
    assert by_part == {"background": 964, "evaluation": 659}
    for a in d.alphabets.values():
        assert a.images.shape[1:] == (28, 28) and a.images.dtype == np.float32
        assert np.bincount(a.char_labels).tolist() == [20] * a.n_characters
        for c in range(a.n_characters):
            assert sorted(a.drawing_ids[a.char_labels == c].tolist()) == list(range(20))


def test_full_size_inverted(shared_data: Path) -> None:
    d = load_omniglot(shared_data, ["Korean", "Latin"])
    assert d.names == ["Korean", "Latin"]
    img = d.alphabets["Latin"].images
    assert img.shape == (26 * 20, 105, 105) and img.min() == 0.0 and img.max() == 1.0
    assert img.mean() < 0.2  # strokes (1.0) are sparse on a 0.0 background
    assert set(np.unique(img).tolist()) == {0.0, 1.0}  # no resize: still binary


def test_background_only(shared_data: Path) -> None:
    idx = find_sources(shared_data, ("background",))
    assert len(idx["background"].characters) == 30
    with pytest.raises(DataError, match="'Tengwar' not found.*background_only=True"):
        load_omniglot(shared_data, ["Tengwar"], background_only=True)


def test_split_deterministic_and_seeded(omniglot_small) -> None:
    a = omniglot_small.alphabets["Gujarati"]
    s1 = omniglot_split(a.char_labels, a.drawing_ids, seed=alphabet_seed(0, a.name))
    s2 = omniglot_split(a.char_labels, a.drawing_ids, seed=alphabet_seed(0, a.name))
    s3 = omniglot_split(a.char_labels, a.drawing_ids, seed=alphabet_seed(1, a.name))
    assert all(np.array_equal(x, y) for x, y in zip(s1, s2))
    assert not np.array_equal(s1[0], s3[0])
    assert np.array_equal(np.sort(np.concatenate(s1)), np.arange(len(a.char_labels)))
    for part, k in zip(s1, (10, 4, 6)):
        assert np.bincount(a.char_labels[part]).tolist() == [k] * a.n_characters
    assert alphabet_seed(0, "Gujarati") != alphabet_seed(0, "Sylheti")


def test_split_too_few_drawings() -> None:
    with pytest.raises(DataError, match="character 0 has 3 drawings, but counts \\[2, 2\\] need 4"):
        omniglot_split(np.zeros(3, dtype=int), np.arange(3), counts=(2, 2))


def test_missing_alphabet_suggests(shared_data: Path) -> None:
    with pytest.raises(DataError, match=r"'Korea' not found in .*images_background\.zip.*close matches: \['Korean'"):
        load_omniglot(shared_data, ["Korea"])


def _copy_chars(shared_data: Path, dest: Path, alphabet: str, n_chars: int) -> None:
    with zipfile.ZipFile(shared_data / "omniglot" / "images_background.zip") as zf:
        for name in zf.namelist():
            parts = name.split("/")
            if parts[1] == alphabet and int(parts[2].removeprefix("character")) <= n_chars:
                out = dest / name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(zf.read(name))


def test_torchvision_extracted_layout(shared_data: Path, tmp_path: Path) -> None:
    _copy_chars(shared_data, tmp_path / "omniglot-py", "Latin", 2)
    d = load_omniglot(tmp_path, background_only=True)
    assert d.names == ["Latin"] and d.alphabets["Latin"].images.shape == (40, 105, 105)
    assert d.sources["background"].endswith("omniglot-py/images_background")


def test_zip_without_layout(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "images_background.zip", "w") as zf:
        zf.writestr("Latin/character01/a.png", b"x")
    with pytest.raises(DataError, match=r"images_background\.zip does not have the Omniglot layout.*Latin/character01/a\.png"):
        load_omniglot(tmp_path, background_only=True)


def test_truncated_zip_and_missing(tmp_path: Path, shared_data: Path) -> None:
    blob = (shared_data / "omniglot" / "images_evaluation.zip").read_bytes()
    (tmp_path / "omniglot").mkdir()
    (tmp_path / "omniglot" / "images_background.zip").write_bytes(blob[:1000])
    with pytest.raises(DataError, match=r"could not open the Omniglot zip .*images_background\.zip"):
        load_omniglot(tmp_path)
    with pytest.raises(DataError, match=r"images_background\.zip.*omniglot-py"):
        load_omniglot(tmp_path / "nowhere")
