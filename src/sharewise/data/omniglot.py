"""Omniglot (Lake et al. 2015) as one task per alphabet, read straight from the official zips.

Layout: ``images_background/<Alphabet>/characterNN/XXXX_YY.png`` (30 alphabets) and
``images_evaluation/...`` (20 alphabets), each PNG a 105x105 1-bit image of one drawing ``YY`` of
20. The soft-ordering paper (Sec. 4.3, App. A.3) trains on all 50 alphabets in a fixed order whose
first 20 are also the Gumbel-Matrix paper's Omniglot tasks; both use grey images with strokes = 1.
Images are decoded in memory (zips are never extracted, nothing is cached to disk).
"""

from __future__ import annotations

import difflib
import io
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sharewise.data._omniglot_source import PARTS, AlphabetIndex, find_sources
from sharewise.errors import DataError

# App. A.3 "The fixed ordering of tasks", spelled as the folders in the official zips.
OMNIGLOT_PAPER_ORDER: tuple[str, ...] = (
    "Gujarati", "Sylheti", "Arcadian", "Tibetan", "Old_Church_Slavonic_(Cyrillic)", "Angelic",
    "Malay_(Jawi_-_Arabic)", "Sanskrit", "Cyrillic", "Anglo-Saxon_Futhorc", "Syriac_(Estrangelo)",
    "Ge_ez", "Japanese_(katakana)", "Keble", "Manipuri", "Alphabet_of_the_Magi", "Gurmukhi",
    "Korean", "Early_Aramaic", "Atemayar_Qelisayer", "Tagalog", "Mkhedruli_(Georgian)",
    "Inuktitut_(Canadian_Aboriginal_Syllabics)", "Tengwar", "Hebrew", "N_Ko", "Grantha", "Latin",
    "Syriac_(Serto)", "Tifinagh", "Balinese", "Mongolian", "ULOG", "Futurama", "Malayalam", "Oriya",
    "Ojibwe_(Canadian_Aboriginal_Syllabics)", "Avesta", "Kannada", "Bengali", "Japanese_(hiragana)",
    "Armenian", "Aurek-Besh", "Glagolitic", "Asomtavruli_(Georgian)", "Greek", "Braille",
    "Burmese_(Myanmar)", "Blackfoot_(Canadian_Aboriginal_Syllabics)", "Atlantean",
)  # fmt: skip


@dataclass
class OmniglotAlphabet:
    """One alphabet (= one task). images: float32 ``[n, H, W]`` in [0, 1], strokes 1.0;
    char_labels: int64 ``[n]`` in ``0..n_characters-1`` (``characterNN`` folders in sorted order);
    drawing_ids: int64 ``[n]``, the drawing number ``YY - 1`` from ``XXXX_YY.png``."""

    name: str
    part: str  # "background" or "evaluation"
    images: np.ndarray
    char_labels: np.ndarray
    drawing_ids: np.ndarray
    character_names: list[str]

    @property
    def n_characters(self) -> int:
        return len(self.character_names)


@dataclass
class OmniglotData:
    """Alphabets in load order (the paper order unless ``alphabets`` was given); ``sources`` says
    which zip or folder each part was read from."""

    alphabets: dict[str, OmniglotAlphabet]
    sources: dict[str, str]

    @property
    def names(self) -> list[str]:
        return list(self.alphabets)


def _decode(blob: bytes, where: str, image_size: int | None) -> np.ndarray:
    from PIL import Image  # imported here: every run imports this module, few read Omniglot

    try:
        img = Image.open(io.BytesIO(blob)).convert("L")  # 1-bit -> 0/255 grey
    except Exception as exc:  # PIL raises several types for bad data
        raise DataError(
            f"could not decode the Omniglot image {where}: {type(exc).__name__}: {exc}. The archive "
            "is probably corrupt; download it again."
        ) from exc
    if img.size != (105, 105):
        raise DataError(f"{where}: expected a 105x105 Omniglot image, but found {img.size}.")
    if image_size is not None and image_size != 105:
        # BOX (area averaging) when shrinking keeps thin strokes as grey instead of dropping them;
        # bilinear when enlarging.
        resample = Image.Resampling.BOX if image_size < 105 else Image.Resampling.BILINEAR
        img = img.resize((image_size, image_size), resample=resample)
    return 1.0 - np.asarray(img, dtype=np.float32) / 255.0  # invert: white paper -> 0, ink -> 1


def rescale_pixels(x: Any, pixel_max: float = 1.0, white_background: bool = False) -> Any:
    """Images as decoded (strokes 1 on a 0 background) -> strokes ``pixel_max`` on 0, or with
    ``white_background`` the scan's own polarity (paper ``pixel_max``, strokes 0). Arrays or tensors."""
    if white_background:
        x = 1.0 - x
    return x * pixel_max if pixel_max != 1 else x


def alphabet_members(name: str, index: AlphabetIndex) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """(member paths, char labels, drawing ids, character names) of one alphabet, in load order
    (characters sorted, drawings sorted): shared by the in-memory and the lazy loader."""
    chars = sorted(index.characters[name])
    members, labels, drawings = [], [], []
    for c, char in enumerate(chars):
        for member in sorted(index.characters[name][char]):
            stem = member.rsplit("/", 1)[-1].removesuffix(".png")
            try:
                drawing = int(stem.rsplit("_", 1)[1]) - 1
            except (IndexError, ValueError):
                raise DataError(
                    f"{index.where}: expected drawings named XXXX_YY.png, but found {member!r}."
                ) from None
            members.append(member)
            labels.append(c)
            drawings.append(drawing)
    return members, np.asarray(labels, dtype=np.int64), np.asarray(drawings, dtype=np.int64), chars


def _load_alphabet(name: str, part: str, index: AlphabetIndex, image_size: int | None) -> OmniglotAlphabet:
    members, labels, drawings, chars = alphabet_members(name, index)
    images = [_decode(index.read(m), f"{m} in {index.where}", image_size) for m in members]
    return OmniglotAlphabet(
        name=name,
        part=part,
        images=np.stack(images),  # [n, H, W]
        char_labels=labels,
        drawing_ids=drawings,
        character_names=chars,
    )


def load_omniglot(
    data_dir: str | Path,
    alphabets: Sequence[str] | None = None,
    image_size: int | None = None,
    background_only: bool = False,
) -> OmniglotData:
    """Load Omniglot alphabets from ``data_dir``.

    Searched in order: ``data_dir/omniglot/``, ``data_dir/``, ``data_dir/omniglot-py/``
    (torchvision's raw folder); in each, an extracted ``images_<part>/`` folder or the official
    ``images_<part>.zip`` (read with :mod:`zipfile`, never extracted). ``alphabets=None`` loads all
    50 in :data:`OMNIGLOT_PAPER_ORDER` (the 30 background ones with ``background_only``).
    ``image_size`` resizes the 105x105 images (area averaging down, bilinear up).
    """
    if image_size is not None and image_size < 1:
        raise DataError(f"image_size must be a positive number of pixels or None, but got {image_size}.")
    wanted, owner, indexes, parts = index_omniglot(data_dir, alphabets, background_only)
    loaded = {a: _load_alphabet(a, owner[a], indexes[owner[a]], image_size) for a in wanted}
    return OmniglotData(alphabets=loaded, sources={p: indexes[p].where for p in parts})


def index_omniglot(
    data_dir: str | Path, alphabets: Sequence[str] | None = None, background_only: bool = False
) -> tuple[list[str], dict[str, str], dict[str, AlphabetIndex], tuple[str, ...]]:
    """(alphabets in load order, alphabet -> part, part -> index, parts) without decoding anything."""
    data_dir = Path(data_dir)
    parts = ("background",) if background_only else PARTS
    indexes = find_sources(data_dir, parts)
    owner = {a: p for p, idx in indexes.items() for a in idx.characters}
    if alphabets is None:
        wanted = [a for a in OMNIGLOT_PAPER_ORDER if a in owner]
        wanted += sorted(a for a in owner if a not in OMNIGLOT_PAPER_ORDER)  # any extra folders
    else:
        wanted = list(alphabets)
        for a in wanted:
            if a not in owner:
                close = difflib.get_close_matches(a, list(owner), n=3, cutoff=0.4)
                hint = f"close matches: {close}" if close else f"available: {sorted(owner)}"
                raise DataError(
                    f"Omniglot alphabet {a!r} not found in "
                    f"{', '.join(indexes[p].where for p in parts)}; {hint}. Alphabet names are the "
                    "folder names in the zips, e.g. 'Old_Church_Slavonic_(Cyrillic)'"
                    + ("" if not background_only else "; background_only=True hides the 20 "
                       "evaluation alphabets")
                    + "."
                )
    return wanted, owner, indexes, parts


def alphabet_seed(seed: int, alphabet: str) -> list[int]:
    """A per-alphabet seed, stable across processes (crc32, not Python's salted ``hash``)."""
    return [int(seed), zlib.crc32(alphabet.encode("utf-8"))]


def omniglot_split(
    char_labels: np.ndarray,
    drawing_ids: np.ndarray,
    counts: Sequence[int] = (10, 4, 6),
    seed: int | Sequence[int] = 0,
) -> list[np.ndarray]:
    """Split every character's drawings into parts of ``counts`` drawings (train/val/test).

    The Gumbel-Matrix setup splits each character's 20 drawings 10/4/6, so every character occurs in
    every part. Drawings are ordered by ``drawing_ids`` before the seeded shuffle, so the split does
    not depend on file order. Pass ``alphabet_seed(seed, name)`` to seed per alphabet. Characters with
    more drawings than ``sum(counts)`` leave the extras out. Returns sorted index arrays.
    """
    char_labels = np.asarray(char_labels)
    drawing_ids = np.asarray(drawing_ids)
    if char_labels.shape != drawing_ids.shape or char_labels.ndim != 1:
        raise DataError(
            f"omniglot_split expected 1-D char_labels and drawing_ids of equal length, but got "
            f"shapes {char_labels.shape} and {drawing_ids.shape}."
        )
    if len(counts) == 0 or any(int(k) < 0 for k in counts):
        raise DataError(f"omniglot_split counts must be non-negative integers, but got {list(counts)}.")
    need = int(sum(counts))
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in counts]
    for c in np.unique(char_labels):
        members = np.flatnonzero(char_labels == c)
        if len(members) < need:
            raise DataError(
                f"omniglot_split: character {int(c)} has {len(members)} drawings, but counts "
                f"{list(counts)} need {need}; use smaller counts."
            )
        members = rng.permutation(members[np.argsort(drawing_ids[members], kind="stable")])
        start = 0
        for p, k in enumerate(counts):
            parts[p].append(members[start : start + int(k)])
            start += int(k)
    return [np.sort(np.concatenate(p)) if p else np.empty(0, dtype=np.int64) for p in parts]
