"""Atomic writes: a results file is either the old complete version or the new complete one.

Write to a temporary file in the same directory, fsync, then ``os.replace`` (atomic on POSIX),
so a crash or a kill never leaves a half-written ``summary.json`` or checkpoint behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from sharewise.errors import DataError
from sharewise.readers import load_torch, read_json, read_text  # noqa: F401 - re-exported


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp's 0600 would hide results from others


def atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n"
    atomic_write(Path(path), lambda fh: fh.write(text.encode()))


def write_text(path: str | Path, text: str) -> None:
    atomic_write(Path(path), lambda fh: fh.write(text.encode()))


def save_torch(path: str | Path, obj: Any) -> None:
    atomic_write(Path(path), lambda fh: torch.save(obj, fh))


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one line; a crash can at most lose this line, never corrupt earlier ones."""
    line = json.dumps(record, default=_json_default) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file of records, ignoring only a trailing partial line left by a crash.

    A bad line anywhere else is corruption, not a crash: it raises :class:`DataError` naming the
    file and line, so a resume never silently drops the history after it.
    """
    path = Path(path)
    text = read_text(path, "JSON-lines file")
    lines = text.split("\n")
    partial_tail = not text.endswith("\n")  # append_jsonl writes whole lines ending in a newline
    records = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if partial_tail and lineno == len(lines):
                break  # the half-written last line of a killed process
            raise DataError(f"{path}, line {lineno}: not valid JSON ({err.msg} at column {err.colno}); the file "
                            f"is corrupt. Restore it from a backup, or delete the line (its record is lost) "
                            f"and re-run") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {lineno}: expected a JSON object per line, got "
                            f"{type(record).__name__}; the file is corrupt or not a sharewise file")
        records.append(record)
    return records


def _json_default(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")
