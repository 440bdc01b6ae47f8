"""The synthetic insurance-like generator: deterministic, the right columns, plausible values."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.sample_data import REGIONS, TARGET, generate

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["age", "sex", "bmi", "children", "smoker", "region", "charges"]


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    return generate(20_000, seed=3)


def test_same_seed_same_frame_other_seed_other_frame() -> None:
    pd.testing.assert_frame_equal(generate(500, seed=1), generate(500, seed=1))
    assert not generate(500, seed=1).equals(generate(500, seed=2))


@given(rows=st.integers(min_value=1, max_value=300), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_any_size_and_seed_gives_the_columns_and_ranges(rows: int, seed: int) -> None:
    frame = generate(rows, seed)
    assert list(frame.columns) == COLUMNS
    assert TARGET == "charges"
    assert len(frame) == rows
    assert frame.notna().all().all()
    assert frame["age"].between(18, 64).all()
    assert frame["bmi"].between(15, 54).all()
    assert frame["children"].between(0, 5).all()
    assert set(frame["sex"]) <= {"female", "male"}
    assert set(frame["smoker"]) <= {"yes", "no"}
    assert set(frame["region"]) <= set(REGIONS)
    assert (frame["charges"] >= 1100).all()


def test_the_relationships_a_model_should_learn_are_there(big: pd.DataFrame) -> None:
    smokers = big[big["smoker"] == "yes"]
    assert 0.17 < len(smokers) / len(big) < 0.23
    assert smokers["charges"].mean() > 2.5 * big[big["smoker"] == "no"]["charges"].mean()
    obese = smokers["bmi"] >= 30
    assert smokers[obese]["charges"].mean() > smokers[~obese]["charges"].mean() + 8000
    assert big["age"].corr(big["charges"]) > 0.2
    assert 5_000 < big["charges"].median() < 20_000
    assert set(big["region"]) == set(REGIONS)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"], ids=["plain CSV", "gzip CSV"])
def test_cli_writes_the_same_bytes_for_the_same_seed(tmp_path: Path, suffix: str) -> None:
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run / f"claims{suffix}"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "training",
                "sample-data",
                "--rows",
                "50",
                "--out",
                str(out),
                "--seed",
                "9",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert f"wrote 50 rows to {out}" in proc.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    text = gzip.decompress(outs[0]) if suffix.endswith(".gz") else outs[0]
    assert text.decode() == generate(50, seed=9).to_csv(index=False, lineterminator="\n")


def test_cli_refuses_zero_rows_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "training", "sample-data", "--rows", "0", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2  # a usage error: nothing ran
    assert proc.stderr.splitlines() == [
        "error [BAD_ARGUMENT]: --rows must be at least 1; "
        "see 'python -m training sample-data --help'"
    ]
    assert not out.exists()
