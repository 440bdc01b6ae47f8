"""Outputs belong to their input: a destination that holds another input's or another model's run
is refused with DESTINATION_IN_USE (nothing overwritten, nothing claimed as done); the same input
with the same model is a harmless "already scored"."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from scorer import runs, storage
from scorer.errors import DestinationInUse
from scorer.layout import ObjectVersion
from scorer.manifest import InputEntry, Manifest, ModelEntry, destination_conflict
from scorer.model import LoadedModel
from tests.scorer.test_s3_runs import cli

HEADER = "age,sex,bmi,children,smoker,region\n"
A_ROWS = "40,male,30.5,2,no,southeast\n33,female,22.1,0,yes,northwest\n"
B_ROWS = "61,female,35.0,3,no,northeast\n"


def score_cli(src: Path, out: Path, registry: str, *extra: str) -> tuple[int, str]:
    done = cli(
        "score", str(src), "--registry", registry, "--model", "claims", "--out", str(out), *extra
    )
    return done.returncode, done.stderr


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_b_into_a_folder_that_holds_a_is_refused_and_a_stays(
    tmp_path: Path, trained_registry: str
) -> None:
    a, b, out = tmp_path / "A.csv", tmp_path / "B.csv", tmp_path / "D"
    a.write_text(HEADER + A_ROWS)
    b.write_text(HEADER + B_ROWS)
    code, err = score_cli(a, out, trained_registry)
    assert code == 0, err
    before = snapshot(out)
    code, err = score_cli(b, out, trained_registry)
    assert code == 2, err
    assert "error [DESTINATION_IN_USE]" in err
    assert "already scored" not in err
    assert "another input" in err
    assert "--out" in err
    assert snapshot(out) == before  # A's results, untouched
    assert json.loads(before["manifest.json"])["rows_in"] == 2


def test_a_refused_then_fixed_is_not_already_scored(tmp_path: Path, trained_registry: str) -> None:
    a, out = tmp_path / "A.csv", tmp_path / "D"
    a.write_text("age,sex,bmi,children,smoker\n40,male,30.5,2,no\n")  # no 'region'
    code, err = score_cli(a, out, trained_registry)
    assert code == 2, err
    assert "MISSING_COLUMNS" in err
    before = snapshot(out)
    a.write_text(HEADER + A_ROWS)  # fixed in place, same name
    code, err = score_cli(a, out, trained_registry)
    assert code == 2, err
    assert "error [DESTINATION_IN_USE]" in err
    assert "status failed" in err
    assert snapshot(out) == before


def test_the_same_content_again_is_already_scored(tmp_path: Path, trained_registry: str) -> None:
    a, out = tmp_path / "A.csv", tmp_path / "D"
    a.write_text(HEADER + A_ROWS)
    assert score_cli(a, out, trained_registry)[0] == 0
    before = snapshot(out)
    os.utime(a, (1_000_000, 1_000_000))  # touched, same bytes: the same input
    code, err = score_cli(a, out, trained_registry)
    assert code == 0, err
    assert "\nalready scored: 2 rows in" in err
    assert snapshot(out) == before


def test_another_model_into_the_same_folder_is_refused(
    tmp_path: Path, trained_registry: str
) -> None:
    a, out = tmp_path / "A.csv", tmp_path / "D"
    a.write_text(HEADER + A_ROWS)
    assert score_cli(a, out, trained_registry)[0] == 0
    before = snapshot(out)
    done = cli(
        "score", str(a), "--registry", trained_registry, "--model", "income", "--out", str(out)
    )
    assert done.returncode == 2, done.stderr
    assert "DESTINATION_IN_USE" in done.stderr
    assert "model claims@1" in done.stderr
    assert snapshot(out) == before


def test_conflict_names_the_model_version_that_holds_the_folder() -> None:
    held = Manifest(
        run_id="claims-v1-00000000000000aa",
        status="ok",
        input=InputEntry(url="A.csv", sha256="ab" * 32, keys=("url", "sha256")),
        model=ModelEntry(name="claims", version=1, keys=("name", "version")),
    )
    assert destination_conflict(held, "claims-v1-00000000000000aa", "claims@1", "D") is None
    other_version = destination_conflict(held, "claims-v2-00000000000000aa", "claims@2", "D")
    assert other_version is not None
    assert "model claims@1 (this run: claims@2)" in other_version
    other_input = destination_conflict(held, "claims-v1-00000000000000bb", "claims@1", "D")
    assert other_input is not None
    assert "another input ('A.csv', sha256 abab" in other_input


def _score(src: Path, out: Path, model: LoadedModel, run_id: str) -> runs.RunResult:
    return runs.score(ObjectVersion("", str(src)), str(out), model, run_id, info=None)


@pytest.mark.parametrize(
    ("leftover", "ours"),
    [
        ("predictions.csv", HEADER + A_ROWS),  # other bytes than ours: create-only refuses
        ("rejected.csv", HEADER + A_ROWS),  # a file this run does not write at all
        ("predictions.csv", "age,sex\n1,2\n"),  # a refused run writes nothing
    ],
    ids=["other-predictions", "other-rejected", "refused-run-beside-other-predictions"],
)
def test_outputs_a_killed_run_of_another_input_left_are_never_adopted(
    tmp_path: Path, claims_model: LoadedModel, leftover: str, ours: str
) -> None:
    out = tmp_path / "D"
    out.mkdir()
    (out / leftover).write_text("row_number,prediction\n1,999\n")  # another input's, no manifest
    src = tmp_path / "B.csv"
    src.write_text(ours)
    with pytest.raises(DestinationInUse, match="without a manifest"):
        _score(src, out, claims_model, "claims-v1-00000000000000bb")
    assert not (out / "manifest.json").exists()
    assert (out / leftover).read_text() == "row_number,prediction\n1,999\n"


def test_a_killed_run_of_the_same_input_is_completed(
    tmp_path: Path, claims_model: LoadedModel
) -> None:
    src = tmp_path / "A.csv"
    src.write_text(HEADER + A_ROWS)
    first = _score(src, tmp_path / "first", claims_model, "claims-v1-00000000000000aa")
    out = tmp_path / "D"
    out.mkdir()
    # as if killed after predictions.csv became visible, before the manifest
    (out / "predictions.csv").write_bytes((tmp_path / "first" / "predictions.csv").read_bytes())
    again = _score(src, out, claims_model, "claims-v1-00000000000000aa")
    assert not again.already_done
    assert again.manifest.status == "ok"
    assert storage.exists(str(out / "manifest.json"))
    assert again.manifest.outputs["predictions"].sha256 == (
        first.manifest.outputs["predictions"].sha256
    )


def test_s3_destinations_obey_the_same_rule(s3: Any, bucket: str, s3_registry: str) -> None:
    """An S3 --out: B after A is refused; a leftover rejected.csv of another run is refused."""
    s3.put_object(Bucket=bucket, Key="in/A.csv", Body=(HEADER + A_ROWS).encode())
    s3.put_object(Bucket=bucket, Key="in/B.csv", Body=(HEADER + B_ROWS).encode())

    def score(src: str, out: str) -> Any:
        return cli(
            "score", f"s3://{bucket}/{src}", "--registry", s3_registry, "--model", "claims",
            "--out", f"s3://{bucket}/{out}",
        )  # fmt: skip

    assert score("in/A.csv", "adhoc/D").returncode == 0
    listing = s3.list_object_versions(Bucket=bucket, Prefix="adhoc/")["Versions"]
    refused = score("in/B.csv", "adhoc/D")
    assert refused.returncode == 2, refused.stderr
    assert "error [DESTINATION_IN_USE]" in refused.stderr
    assert s3.list_object_versions(Bucket=bucket, Prefix="adhoc/")["Versions"] == listing
    s3.put_object(Bucket=bucket, Key="adhoc/E/rejected.csv", Body=b"row_number\n1\n")
    leftover = score("in/A.csv", "adhoc/E")
    assert leftover.returncode == 2, leftover.stderr
    assert "without a manifest" in leftover.stderr
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="adhoc/E/")["Contents"]}
    assert "adhoc/E/manifest.json" not in keys
