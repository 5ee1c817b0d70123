"""Read one table file (CSV/TSV/whitespace text, or Parquet) into cells of text, checked.

This is the single table-reading path: the user's CSV tasks (:mod:`sharewise.data.csv_tasks`)
and the UCI text files (:mod:`sharewise.data.uci`, which only adds its format facts: separator,
label column, id columns) both come through :func:`read_table`, and both turn cells into numbers
with :mod:`sharewise.data.columns`.

Parsing is pandas' (its C parser: quoting, escapes and speed are its job; Parquet through
``pyarrow`` when installed). pandas over polars: it is already what scikit-learn users have, and
its ``read_csv``/``read_parquet`` cover every format we accept. Every cell is read as *text*
(``dtype=str``, no implicit NA values), so the decisions that change data (what is missing, what is
a number, what is a category) are made by us, explicitly, and written into ``notes``.

The only thing pandas does not report is a row with too *few* fields (it pads silently), so the
row lengths are checked with the standard :mod:`csv` tokenizer first; that pass also gives the
file line of every row, which the error messages name.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sharewise.errors import DataError

SEPARATORS: tuple[str, ...] = (",", ";", "\t", "|")
WHITESPACE = "whitespace"  # sep value: any run of spaces/tabs (UCI's ecoli, german numeric)
_SEP_WORDS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", WHITESPACE: "whitespace"}


@dataclass
class RawTable:
    """A table as stripped text cells.

    ``cells``: ``[N, C]`` numpy array of ``str``; ``lines``: int ``[N]``, the 1-based file line of
    each row (0 for Parquet, which has no lines); ``notes``: decisions taken while reading.
    """

    path: Path
    columns: list[str]
    cells: np.ndarray
    lines: np.ndarray
    notes: list[str] = field(default_factory=list)

    def at(self, row: int) -> str:
        """``'line 7'`` (the file line of data row ``row``), or ``'row 7'`` for Parquet."""
        return f"line {int(self.lines[row])}" if self.lines[row] else f"row {row + 1}"

    def where(self, row: int, column: int | None = None) -> str:
        """``'file.csv, line 7, field 3'`` for error messages."""
        return f"{self.path}, {self.at(row)}" + (f", field {column + 1}" if column is not None else "")

    def column(self, name: str) -> np.ndarray:
        return self.cells[:, self.columns.index(name)]


def _decode(path: Path, encoding: str) -> str:
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: the file is not valid {encoding} text (byte 0x{data[exc.start]:02x} at "
            f"offset {exc.start}). If it was saved as Latin-1 or Windows-1252, pass that encoding "
            "(tasks.options.encoding=latin-1 or cp1252), or re-save the file as UTF-8."
        ) from None
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r} for {path}; use e.g. utf-8, latin-1 "
                        "or cp1252.") from None


def _sniff(path: Path, text: str) -> tuple[str, str | None]:
    """The separator and a note when it is not the default comma.

    A candidate wins when it splits the first non-blank lines into the same number (> 1) of
    fields on every line; ties go to the order of :data:`SEPARATORS` (comma first).
    """
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t", None
    head = [ln for ln in text.splitlines()[:50] if ln.strip()][:20]
    best = ","
    for sep in SEPARATORS:
        counts = {len(row) for row in csv.reader(head, delimiter=sep)}
        if len(counts) == 1 and counts.pop() > 1:
            best = sep
            break
    if best != ",":
        return best, (f"separator {_SEP_WORDS[best]} ({best!r}) detected from the first lines "
                      "(set tasks.options.sep to override)")
    return best, None


def _rows_and_lines(path: Path, text: str, sep: str, n_fields: int | None,
                    what: str) -> tuple[list[int], int]:
    """File line of every non-blank row, checking that each has the same number of fields."""
    lines: list[int] = []
    expected = n_fields
    if sep == WHITESPACE:
        rows = ((i, ln.split(), ln) for i, ln in enumerate(text.splitlines(), start=1))
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
        rows = ((reader.line_num, r, sep.join(r)) for r in reader)
    for line_no, row, raw in rows:
        if not any(c.strip() for c in row):
            continue
        if expected is None:
            expected = len(row)
        elif len(row) != expected:
            source = what or ("the header" if not lines else "line " + str(lines[0]))
            raise DataError(
                f"{path}, line {line_no}: expected {expected} fields ({_SEP_WORDS[sep]}-separated, as in "
                f"{source}), but found {len(row)}: {raw.strip()!r}. Fix or delete that row (quote "
                "fields that contain the separator)."
            )
        lines.append(line_no)
    return lines, expected or 0


def read_table(path: str | Path, *, sep: str | None = None, header: bool = True, encoding: str = "utf-8-sig",
               n_fields: int | None = None, what: str = "") -> RawTable:
    """Read ``path`` as stripped text cells.

    ``sep``: ``None`` sniffs (``.tsv`` is tab), or one of :data:`SEPARATORS` or
    :data:`WHITESPACE`. ``header``: the first non-blank row names the columns (otherwise they are
    ``field 1 .. field C``). ``n_fields``: the number of fields every row must have (default: as
    many as the first row). ``what`` names the expected layout in errors (``'for iris'``).
    A ``.parquet`` file is read with ``pandas.read_parquet`` (needs ``pyarrow``); its header is
    its schema, and ``sep``/``encoding`` do not apply.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"expected a table file at {path}, but it does not exist; check the path.")
    notes: list[str] = []
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except ImportError:
            raise DataError(f"reading {path} needs pyarrow: pip install 'sharewise[parquet]' (or save the "
                            "table as CSV).") from None
        except Exception as exc:  # pyarrow raises its own types for damaged files
            raise DataError(f"could not read the Parquet file {path}: {type(exc).__name__}: {exc}") from None
        cells = frame.astype(object).where(frame.notna(), "").astype(str).to_numpy()
        return RawTable(path, [str(c) for c in frame.columns], np.char.strip(cells.astype(str)),
                        np.zeros(len(cells), dtype=np.int64), notes)

    text = _decode(path, encoding)
    if sep is None:
        sep, note = _sniff(path, text)
        if note:
            notes.append(note)
    elif sep not in _SEP_WORDS:
        raise DataError(f"separator {sep!r} for {path} is not supported: use one of {list(SEPARATORS)} or "
                        f"{WHITESPACE!r}.")
    lines, width = _rows_and_lines(path, text, sep, n_fields, what)
    if not lines:
        raise DataError(f"{path} is empty: expected {'a header row, then ' if header else ''}data rows.")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=r"\s+" if sep == WHITESPACE else sep, header=None,
                            dtype=str, keep_default_na=False, skip_blank_lines=True, engine="c",
                            names=range(width))
    except pd.errors.ParserError as exc:  # quoting problems the csv pass tolerated
        raise DataError(f"{path}: could not parse the table: {exc}. Check the quoting around that line.") from None
    cells = np.char.strip(frame.to_numpy(dtype=str))  # [rows incl. blank-looking, C]
    cells = cells[(cells != "").any(axis=1)]
    if len(cells) != len(lines):  # a quoted field spanning lines: keep going without line numbers
        lines = [0] * len(cells)
    line_arr = np.asarray(lines, dtype=np.int64)
    if header:
        names = [str(c) for c in cells[0]]
        if all(is_number(h) for h in names):
            raise DataError(
                f"{path}, line {line_arr[0]}: expected a header row of column names, but found only numbers "
                f"({','.join(names[:5])}...). Add a header line naming each column."
            )
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise DataError(f"{path}: the header names columns {dup} more than once; give every column "
                            "its own name.")
        cells, line_arr = cells[1:], line_arr[1:]
        if not len(cells):
            raise DataError(f"{path}: expected data rows after the header, but found none.")
    else:
        names = [f"field {j + 1}" for j in range(width)]
    return RawTable(path, names, cells, line_arr, notes)


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)$", re.IGNORECASE)


def is_number(text: str) -> bool:
    return bool(_NUMBER.match(text.strip()))
