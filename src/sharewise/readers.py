"""Reading files sharewise is given: checked against what they should hold, never executing code.

Every file a command reads (checkpoints, best states, summaries, affinity and tree files) may be
damaged, of another type, or hostile. These readers turn each such case into a
:class:`~sharewise.errors.DataError` naming the file, and ``torch.load`` always runs with
``weights_only=True``: torch's restricted unpickler refuses any pickle that would import or call
something other than tensors and plain containers, so a planted payload is an error, not code run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sharewise.errors import DataError


def read_text(path: str | Path, what: str) -> str:
    """The file's text, strictly UTF-8; a missing, folder or binary file is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "missing"
        raise DataError(f"expected the {what} {str(path)!r}, but it is {kind}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: expected a UTF-8 {what}, but byte {err.start} is not UTF-8 (a binary or "
                        f"wrongly encoded file?); pass the right file") from None


def read_json(path: str | Path, what: str = "JSON file", kind: type = dict) -> Any:
    """Parse a JSON file written by sharewise; anything else raises :class:`DataError` naming it.

    ``kind`` is the top-level type expected (a mapping for every sharewise JSON file).
    """
    path = Path(path)
    text = read_text(path, what)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: expected a {what}, but it is not valid JSON ({err.msg} at line {err.lineno}, "
                        f"column {err.colno}); the file is corrupt or of another type") from None
    if not isinstance(data, kind):
        raise DataError(f"{path}: expected a {what} holding a JSON {kind.__name__}, got {type(data).__name__}")
    return data


def load_torch(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load`` with ``weights_only=True`` (never runs code from the file) and a clear error.

    A pickle that would import or call anything other than tensors and plain containers is refused
    by torch's restricted unpickler; the message names the file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(f"expected the {what} {str(path)!r}, but it is {'a folder' if path.is_dir() else 'missing'}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same to the user
        # torch's own text suggests weights_only=False, which would run the payload: keep only the reason.
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()
                 and not any(w in ln.lower() for w in ("weights_only", "weights only", "documentation"))]
        first = lines[0].rstrip(".") if lines else type(err).__name__
        raise DataError(f"cannot read the {what} {str(path)!r}: it is corrupt, not a sharewise file, or holds "
                        f"objects other than tensors (refused: nothing in it is executed); {first}") from None
