"""`make bench-scale` (bench/scale.py) on a tiny file: the one-process and the sharded run are
compared byte for byte, and the report carries the overhead ratio. No speed is asserted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import scale

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_tiny_sharded_run_is_byte_identical_and_the_report_has_the_ratio(
    trained_registry: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable, "-m", "bench.scale", "--rows", "6000", "--shard-over-mb", "0.05",
            "--registry", trained_registry, "--out", str(tmp_path), "--keep",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "outputs: IDENTICAL" in done.stdout
    assert "ratio local:2 / none: " in done.stdout
    runs = tmp_path / "run" / "6000-lr"
    manifest = scale._manifest(runs / "local")
    assert manifest["shards"] > 1  # it really was sharded
    assert manifest["rows_rejected"] > 0  # the bad ages: rejected.csv is compared too
    # the comparison can fail: one changed byte in the sharded predictions is reported
    changed = tmp_path / "changed"
    shutil.copytree(runs / "local", changed)
    data = bytearray((changed / "predictions.csv").read_bytes())
    data[-3] = ord("9") if data[-3] != ord("9") else ord("8")
    (changed / "predictions.csv").write_bytes(bytes(data))
    same, why = scale.identical(runs / "none", changed)
    assert not same
    assert "predictions.csv" in why


def test_the_sample_has_quoted_multiline_cells_and_bad_rows(tmp_path: Path) -> None:
    import csv

    path = scale.sample(2000, tmp_path)
    text = path.read_text(encoding="utf-8")
    with path.open(newline="", encoding="utf-8") as fh:
        records = list(csv.reader(fh))
    assert len(records) == 2001  # header + rows, though the file has more physical lines
    assert text.count("\n") > 2001
    assert any("\n" in cell and "," in cell for row in records for cell in row)
    assert sum(row[0] == "n/a" for row in records[1:]) == 2000 // scale.BAD_EVERY
