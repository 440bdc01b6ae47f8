"""The files the demo drops: a small first file with a few bad rows, and a bigger one that is
scored in shards on the local Dask cluster. Columns come from the sample-data generator and the
model card, never from here."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: every this many rows the big file's note holds a quoted cell with a comma, a quote and a
#: newline, so shards are cut at true record boundaries in the demo too
NOTE_EVERY = 997


def sample_data(path: Path, rows: int, seed: int) -> None:
    args = ["sample-data", "--rows", str(rows), "--out", str(path), "--seed", str(seed)]
    subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def first_file(path: Path, card: dict[str, Any]) -> None:
    """Sample rows plus a few bad ones, so the first result shows rejected rows too: a word in
    the card's first number column, a row cut short, ``inf`` in its last number column."""
    sample_data(path, 500, 2026)
    numbers = [f["name"] for f in card["features"] if f["kind"] == "number"]
    with open(path, newline="") as fh:
        header, *rows = list(csv.reader(fh))
    bad = [dict(zip(header, row, strict=True)) for row in rows[:3]]
    if numbers:
        bad[0][numbers[0]] = "abc"  # WRONG_TYPE
        bad[2][numbers[-1]] = "inf"  # NON_FINITE
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    writer.writerow(bad[0].values())
    writer.writerow(list(bad[1].values())[:-2])  # TOO_FEW_FIELDS
    writer.writerow(bad[2].values())
    path.write_text(out.getvalue())


def big_file(path: Path, rows: int) -> None:
    """``rows`` sample rows (about 38 bytes each) with an extra ``note`` column, now and then a
    quoted cell spanning two lines."""
    sample_data(path, rows, 2027)
    with open(path, newline="") as fh:
        header, *records = list(csv.reader(fh))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*header, "note"])
    for i, record in enumerate(records):
        note = f'checked by "desk {i % 7}", twice\nsee file {i}' if i % NOTE_EVERY == 0 else ""
        writer.writerow([*record, note])
    path.write_text(out.getvalue())
