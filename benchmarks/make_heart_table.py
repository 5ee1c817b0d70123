"""Write the real multi-label table of docs/results.md: UCI Heart Disease (Cleveland) as a CSV.

Usage: python benchmarks/make_heart_table.py ../shared/data heart.csv

The original ``uci10/heart-cleveland.data`` (303 rows, 14 unnamed comma-separated fields, ``?``
for 6 missing cells) gets its UCI column names as a header and is written unchanged otherwise;
``configs/table/heart.yaml`` then treats six of its columns as tasks on the same patients:
``diagnosis`` (0-4, multiclass), ``thal`` (3 codes, 2 missing: multiclass with missing labels),
``ca`` (0-3 vessels, 4 missing), ``exang`` (binary), ``thalach`` and ``chol`` (regression, scales
~150 and ~250 mg/dl). The table itself is not committed (it is derived data).
"""

from __future__ import annotations

import sys
from pathlib import Path

COLUMNS = ("age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak", "slope",
           "ca", "thal", "diagnosis")


def main(data_dir: str, out: str) -> None:
    src = Path(data_dir) / "uci10" / "heart-cleveland.data"
    if not src.is_file():
        sys.exit(f"expected {src}; pass the shared data folder (the one holding uci10/) as the first argument")
    rows = [line.strip() for line in src.read_text().splitlines() if line.strip()]
    Path(out).write_text(",".join(COLUMNS) + "\n" + "\n".join(rows) + "\n")
    print(f"wrote {out}: {len(rows)} rows, columns {', '.join(COLUMNS)}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
