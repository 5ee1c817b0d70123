"""Where Omniglot's PNGs live: an official zip read in place, or an extracted folder.

Both are indexed the same way (alphabet -> character -> member names) with a ``read(member)`` that
returns the PNG bytes, so the loader never cares which one it got.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sharewise.errors import DataError

PARTS: tuple[str, ...] = ("background", "evaluation")


@dataclass
class AlphabetIndex:
    """alphabet -> character folder -> member paths (zip names, or file paths for a folder)."""

    where: str
    read: Callable[[str], bytes]
    characters: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def add(self, alphabet: str, character: str, member: str) -> None:
        self.characters.setdefault(alphabet, {}).setdefault(character, []).append(member)


def _index_zip(path: Path, part: str) -> AlphabetIndex:
    try:
        zf = zipfile.ZipFile(path)
        names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(
            f"could not open the Omniglot zip {path}: {exc}. The file is truncated or not a zip; "
            "download it again."
        ) from exc

    def read(member: str) -> bytes:
        try:
            return zf.read(member)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DataError(f"could not read {member} from {path}: {exc}; download it again.") from exc

    index = AlphabetIndex(where=str(path), read=read)
    top = f"images_{part}"
    for name in names:
        bits = name.split("/")
        # Accept ".../images_<part>/<Alphabet>/<characterNN>/<file>.png" (an extra leading folder is fine).
        if len(bits) >= 4 and bits[-4] == top and bits[-1].endswith(".png"):
            index.add(bits[-3], bits[-2], name)
    if not index.characters:
        raise DataError(
            f"{path} does not have the Omniglot layout: expected entries like "
            f"{top}/<Alphabet>/characterNN/XXXX_YY.png, but found {len(names)} entries such as "
            f"{names[:3]}. Use the official {top}.zip from github.com/brendenlake/omniglot."
        )
    return index


def _index_folder(folder: Path) -> AlphabetIndex:
    index = AlphabetIndex(where=str(folder), read=lambda member: Path(member).read_bytes())
    for png in folder.glob("*/*/*.png"):
        index.add(png.parent.parent.name, png.parent.name, str(png))
    if not index.characters:
        raise DataError(
            f"{folder} does not have the Omniglot layout: expected <Alphabet>/characterNN/XXXX_YY.png "
            "inside it, but found no such PNG files. Extract the official zip again or remove the "
            "empty folder so the zip is used."
        )
    return index


def find_sources(data_dir: Path, parts: tuple[str, ...]) -> dict[str, AlphabetIndex]:
    """Index each part from the first root that holds it, as a folder or zip."""
    roots = [data_dir / "omniglot", data_dir, data_dir / "omniglot-py"]
    out: dict[str, AlphabetIndex] = {}
    for part in parts:
        for root in roots:
            folder, archive = root / f"images_{part}", root / f"images_{part}.zip"
            if folder.is_dir():
                out[part] = _index_folder(folder)
                break
            if archive.is_file():
                out[part] = _index_zip(archive, part)
                break
        else:
            looked = ", ".join(str(r / f"images_{part}[.zip]") for r in roots)
            raise DataError(
                f"expected Omniglot's images_{part}.zip (or the extracted images_{part}/ folder) in "
                f"one of: {looked}, but found none. Put the official zips in {data_dir / 'omniglot'} "
                "(or let torchvision.datasets.Omniglot download into data_dir) or pass --data-dir."
            )
    return out
