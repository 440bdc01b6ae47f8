"""Quiet trouble made loud: size-aware alerts in every manifest and console summary, the
--max-rejected-rate gate, and hints for numbers written for people."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from scorer import alerts, runs
from scorer.layout import ObjectVersion
from scorer.model import LoadedModel
from tests.scorer.test_s3_runs import cli, eventbridge, manifests


def score_frame_file(
    tmp_path: Path, model: LoadedModel, frame: pd.DataFrame, **kw: Any
) -> runs.RunResult:
    src = tmp_path / "in.csv"
    frame.to_csv(src, index=False)
    return runs.score(
        ObjectVersion("", str(src)), str(tmp_path / "out"), model, "claims-v1-0000000000000000",
        **kw,
    )  # fmt: skip


def sample(rows: int, seed: int) -> pd.DataFrame:
    from training.sample_data import generate

    return generate(rows, seed=seed).drop(columns=["charges"])


def far_outside(rows: int, seed: int = 3) -> pd.DataFrame:
    frame = sample(rows, seed)
    frame["age"] = frame["age"] + 200
    frame["bmi"] = frame["bmi"] * 5
    return frame


def codes(result: runs.RunResult) -> set[tuple[str, str, str | None]]:
    return {(a.code, a.level, a.column) for a in result.manifest.alerts}


@pytest.mark.parametrize("seed", [21, 22, 23, 24, 25])
def test_fifty_rows_from_the_training_distribution_raise_no_alert(
    tmp_path: Path, claims_model: LoadedModel, seed: int
) -> None:
    result = score_frame_file(tmp_path, claims_model, sample(50, seed))
    assert result.manifest.status == "ok"
    assert result.manifest.alerts == ()


def test_a_file_far_outside_training_raises_major_drift_and_share_alerts(
    tmp_path: Path, claims_model: LoadedModel
) -> None:
    result = score_frame_file(tmp_path, claims_model, far_outside(5000))
    found = codes(result)
    assert ("DRIFT_FEATURE", "major", "age") in found
    assert ("DRIFT_FEATURE", "major", "bmi") in found
    assert ("DRIFT_PREDICTION", "major", None) in found
    assert ("OUT_OF_RANGE_SHARE", "major", "age") in found
    # columns that did not move raise nothing
    assert not {c for c in found if c[2] in ("sex", "smoker", "region", "children")}
    drift = next(a for a in result.manifest.alerts if a.column == "age")
    assert drift.value > drift.threshold >= 0.25
    assert json.loads(result.manifest.to_json())["alerts"] == [
        a.to_dict() for a in result.manifest.alerts
    ]


def test_unseen_categories_over_the_share_threshold_alert(
    tmp_path: Path, claims_model: LoadedModel
) -> None:
    frame = sample(1000, 5)
    frame.loc[frame.index[:300], "region"] = "atlantis"
    found = codes(score_frame_file(tmp_path, claims_model, frame))
    assert ("UNSEEN_SHARE", "major", "region") in found


def test_share_thresholds_allow_for_the_file_size() -> None:
    # 3 of 50 (6 %) is not evidence of more than 5 %; 300 of 5,000 is
    assert alerts.wilson_lower(3, 50) < 0.05 < alerts.wilson_lower(300, 5000)
    assert alerts.chi2_quantile(0.999, 9) == pytest.approx(27.877, rel=0.01)
    assert alerts.chi2_quantile(0.99, 3) == pytest.approx(11.345, rel=0.01)
    # the PSI sampling noise alone reaches shrinks with the run's size
    small = alerts.psi_threshold(0.25, 10, 50, 800, 0.001)
    large = alerts.psi_threshold(0.25, 10, 50_000, 800, 0.001)
    assert small > 0.5
    assert large == 0.25


def test_every_row_outside_training_is_not_a_plain_ok_on_the_console(
    tmp_path: Path, trained_registry: str
) -> None:
    src = tmp_path / "far.csv"
    far_outside(50).to_csv(src, index=False)
    done = cli(
        "score", str(src), "--registry", trained_registry, "--model", "claims",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("ok: "))
    assert "warnings: OUT_OF_RANGE×" in line
    assert "alerts: " in line
    assert "major drift of 'age' (PSI " in line


BAD = "age,sex,bmi,children,smoker,region\n" + "x,male,1,0,no,northeast\n" * 48


def mostly_rejected(tmp_path: Path) -> Path:
    src = tmp_path / "bad.csv"
    src.write_text(BAD + "40,male,30.5,2,no,southeast\n" * 2)
    return src


def test_48_of_50_rejected_is_partial_with_an_alert_by_default(
    tmp_path: Path, trained_registry: str
) -> None:
    src = mostly_rejected(tmp_path)
    done = cli(
        "score", str(src), "--registry", trained_registry, "--model", "claims",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = "partial: 50 rows in, 2 scored, 48 rejected; alerts: major: 96% of rows were rejected"
    assert line in done.stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_max_rejected_rate_fails_the_run_and_keeps_rejected_csv(
    tmp_path: Path, trained_registry: str, how: str
) -> None:
    src = mostly_rejected(tmp_path)
    out = tmp_path / "out"
    args = ["score", str(src), "--registry", trained_registry, "--model", "claims"]
    args += ["--out", str(out)]
    if how == "flag":
        done = cli(*args, "--max-rejected-rate", "0.5")
    else:
        done = cli(*args, env={"DROPSCORE_MAX_REJECTED_RATE": "0.5"})
    assert done.returncode == 2, done.stderr
    assert "failed: 50 rows in" in done.stderr
    assert "[TOO_MANY_REJECTED]" in done.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "failed"
    assert m["reason"]["code"] == "TOO_MANY_REJECTED"
    assert (m["rows_in"], m["rows_scored"], m["rows_rejected"]) == (50, 2, 48)
    rejected = list(csv.DictReader(io.StringIO((out / "rejected.csv").read_text())))
    assert len(rejected) == 48
    assert set(m["outputs"]) == {"predictions", "rejected"}


def test_max_rejected_rate_below_the_share_passes_and_bad_values_are_refused(
    tmp_path: Path, trained_registry: str
) -> None:
    src = mostly_rejected(tmp_path)
    args = ["score", str(src), "--registry", trained_registry, "--model", "claims"]
    ok = cli(*args, "--out", str(tmp_path / "a"), "--max-rejected-rate", "0.97")
    assert ok.returncode == 0, ok.stderr
    bad = cli(*args, "--out", str(tmp_path / "b"), "--max-rejected-rate", "20%")
    assert bad.returncode == 2  # a usage error: nothing ran
    assert "error [BAD_ARGUMENT]: --max-rejected-rate" in bad.stderr
    assert not (tmp_path / "b").exists()


def test_event_and_sweep_obey_the_gate(s3: Any, bucket: str, s3_registry: str) -> None:
    body = BAD + "40,male,30.5,2,no,southeast\n" * 2
    version = s3.put_object(Bucket=bucket, Key="incoming/bad.csv", Body=body.encode())["VersionId"]
    event = json.dumps(eventbridge("incoming/bad.csv", version, bucket))
    done = cli("event", "--event", "-", "--max-rejected-rate", "0.5", stdin=event)
    assert done.returncode == 2, done.stderr
    s3.put_object(Bucket=bucket, Key="incoming/bad2.csv", Body=body.encode())
    swept = cli("sweep", "--bucket", bucket, env={"DROPSCORE_MAX_REJECTED_RATE": "0.5"})
    assert swept.returncode == 0, swept.stderr
    assert "failed: 50 rows in, 2 scored, 48 rejected" in swept.stderr
    found = manifests(s3, bucket)
    assert len(found) == 2
    assert {m["reason"]["code"] for m in found.values()} == {"TOO_MANY_REJECTED"}


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("20,000.0", "; remove the thousands separators"),
        ("1,234,567", "; remove the thousands separators"),
        ("1,5", "; use '.' as the decimal separator"),
        ("1,234", "; if ',' is the decimal separator use '.', if it separates thousands remove"),
        ("12abc", ", not a number"),
    ],
    ids=["thousands-with-decimals", "millions", "decimal-comma", "ambiguous", "plain-text"],
)
def test_numbers_written_for_people_get_a_hint(
    tmp_path: Path, claims_model: LoadedModel, value: str, hint: str
) -> None:
    src = tmp_path / "in.csv"
    src.write_text(f'age,sex,bmi,children,smoker,region\n40,male,"{value}",2,no,southeast\n')
    runs.score(ObjectVersion("", str(src)), str(tmp_path / "out"), claims_model, "claims-v1-0")
    [row] = list(csv.DictReader(io.StringIO((tmp_path / "out" / "rejected.csv").read_text())))
    assert row["code"] == "WRONG_TYPE"
    assert row["message"].startswith(f"'bmi' is '{value}', not a number")
    assert hint in row["message"]
    if value == "12abc":
        assert row["message"] == "'bmi' is '12abc', not a number"
