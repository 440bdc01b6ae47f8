"""The manifest JSON is the contract: what older code wrote reads back as the same bytes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from scorer import api, cliutil, cluster, jobs, pinning, runs, service, storage
from scorer.__main__ import main
from scorer.errors import SourceGone
from scorer.layout import ObjectVersion
from scorer.manifest import InputEntry, Manifest, ModelEntry
from scorer.model import LoadedModel
from scorer.shards import Scale
from tests.scorer.test_s3_runs import manifests

DATA = Path(__file__).parent / "data"


def test_a_manifest_written_before_shards_round_trips_byte_for_byte() -> None:
    text = (DATA / "manifest_before_shards.json").read_text()
    manifest = Manifest.from_json(text)
    assert manifest.shards == 0
    assert manifest.to_json() == text


def test_an_unsharded_run_writes_no_shards_field_and_a_sharded_one_does() -> None:
    plain = Manifest(run_id="r", status="ok", input=InputEntry(url="a.csv"), model=ModelEntry())
    assert "shards" not in json.loads(plain.to_json())
    sharded = Manifest(
        run_id="r", status="ok", input=InputEntry(), model=ModelEntry(), workers=2, shards=7
    )
    doc = json.loads(sharded.to_json())
    assert doc["shards"] == 7
    assert Manifest.from_json(sharded.to_json()) == sharded


def test_an_older_manifest_without_task_cost_or_events_reads_with_defaults() -> None:
    doc = json.loads((DATA / "manifest_before_shards.json").read_text())
    for key in ("task", "cost", "event_bus", "libraries", "workers_peak_memory_mb"):
        doc.pop(key)
    manifest = Manifest.from_json(json.dumps(doc))
    assert (manifest.task.to_dict(), manifest.cost.to_dict()) == ({}, {})
    assert (manifest.event_bus, manifest.shards) == (None, 0)


GOOD = "19,female,27.9,0,yes,southwest\n33,male,22.7,0,no,northwest\n"
RUNS = {  # the files behind each terminal status a run writes
    "ok": "age,sex,bmi,children,smoker,region\n" + GOOD,
    "partial": "age,sex,bmi,children,smoker,region\n" + GOOD + "forty,male,30.1,1,no,southeast\n",
    "failed": "age,sex,bmi,children,smoker,region\nforty,male,30.1,1,no,southeast\n",
    "header only": "age,sex,bmi,children,smoker,region\n",
    "refused": "age,sex,bmi\n1,2,3\n",
}


@pytest.fixture(scope="module", autouse=True)
def _aws_env_first(moto_endpoint: str) -> None:
    """Dask's worker processes inherit the environment when they start: S3 at moto before."""


def _written(tmp: Path, data: bytes, model: LoadedModel, scale: Scale | None = None) -> str:
    src = tmp / "in.csv"
    src.write_bytes(data)
    out = tmp / "out"
    runs.score(
        ObjectVersion("", str(src)),
        str(out),
        model,
        "claims-v1-roundtrip",
        info=storage.head(str(src)),
        batch_rows=2,
        workers=0,
        scale=scale,
    )
    return (out / "manifest.json").read_text()


@pytest.mark.parametrize("name", list(RUNS), ids=[f"a {n} run" for n in RUNS])
def test_a_run_manifest_reads_back_to_the_same_bytes(
    name: str, tmp_path: Path, claims_model: LoadedModel
) -> None:
    text = _written(tmp_path, RUNS[name].encode(), claims_model)
    doc = json.loads(text)
    assert doc["status"] == (name if name in ("ok", "partial") else "failed")
    assert "shards" not in doc
    assert Manifest.from_json(text).to_json() == text


def test_a_sharded_run_manifest_reads_back_to_the_same_bytes(
    tmp_path: Path, claims_model: LoadedModel
) -> None:
    data = ("age,sex,bmi,children,smoker,region\n" + GOOD * 40).encode()
    text = _written(tmp_path, data, claims_model, Scale(cluster.parse("local:1"), 256))
    assert json.loads(text)["shards"] >= 2
    assert Manifest.from_json(text).to_json() == text


def test_a_manifest_refused_before_reading_reads_back_to_the_same_bytes(
    tmp_path: Path, claims_model: LoadedModel
) -> None:
    out = tmp_path / "out"
    src = ObjectVersion("", str(tmp_path / "gone.csv"))
    service.refuse(src, str(out), claims_model, "claims-v1-gone", SourceGone("gone.csv is gone"))
    text = (out / "manifest.json").read_text()
    assert json.loads(text)["reason"]["code"] == "SOURCE_GONE"
    assert Manifest.from_json(text).to_json() == text


# --- every other path that ends a run: each manifest reads back to the bytes it was written as


def _round_trips(manifest: Manifest) -> dict[str, Any]:
    text = manifest.to_json()
    assert Manifest.from_json(text).to_json() == text
    assert Manifest.from_json(text) == manifest
    return dict(json.loads(text))


def test_a_scored_frame_manifest_names_only_its_bytes_and_sha256(claims_model: LoadedModel) -> None:
    data = RUNS["partial"].encode()
    manifest, _, _ = api.score_csv(data, claims_model)
    doc = _round_trips(manifest)
    assert doc["input"] == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert (doc["status"], doc["rows_rejected"], doc["reason"]) == ("partial", 1, None)


def test_a_scored_file_manifest_names_the_callers_file(claims_model: LoadedModel) -> None:
    scored = api.score_file(RUNS["ok"].encode(), claims_model, name="mine.csv")
    doc = _round_trips(scored.manifest)
    assert list(doc["input"]) == [*RUN_INPUT, "dialect", "compressed"]
    assert doc["input"]["url"] == "mine.csv"


RUN_INPUT = ["url", "bucket", "key", "version_id", "etag", "bytes", "sha256"]


@pytest.mark.parametrize(
    ("data", "code", "read"),
    [
        (RUNS["partial"], "TOO_MANY_REJECTED", True),
        (RUNS["refused"], "MISSING_COLUMNS", False),
        (RUNS["header only"], "HEADER_ONLY", True),
    ],
    ids=["rejects too many rows", "misses a column", "has no data rows"],
)
def test_a_failed_run_manifest_keeps_the_input_keys_it_got_to(
    data: str, code: str, read: bool, tmp_path: Path, claims_model: LoadedModel
) -> None:
    """A file refused at its header was never read to the end: no dialect, no compression."""
    src = tmp_path / "in.csv"
    src.write_bytes(data.encode())
    out = tmp_path / "out"
    result = runs.score(
        ObjectVersion("", str(src)),
        str(out),
        claims_model,
        "claims-v1-failed",
        info=storage.head(str(src)),
        workers=0,
        max_rejected_rate=0.1,
    )
    text = (out / "manifest.json").read_text()
    assert result.manifest.to_json() == text
    doc = _round_trips(result.manifest)
    assert (doc["status"], doc["reason"]["code"]) == ("failed", code)
    assert list(doc["input"]) == RUN_INPUT + (["dialect", "compressed"] if read else [])
    assert (doc["input"]["sha256"] is None) == (not read)


def test_an_s3_run_manifest_keeps_its_models_origin_and_output_keys(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    body = RUNS["partial"].encode()
    meta = {"Metadata": pinning.metadata_for("claims", 1)}
    put = s3.put_object(Bucket=bucket, Key="incoming/pinned.csv", Body=body, **meta)
    ref = ObjectVersion(bucket, "incoming/pinned.csv", put["VersionId"])
    result = service.score_object(ref, service.Settings(registry=s3_registry))
    assert result is not None
    doc = _round_trips(result.manifest)
    key = next(k for k in manifests(s3, bucket) if result.manifest.run_id in k)
    stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert stored == result.manifest.to_json()
    assert list(doc["model"])[-2:] == ["source", "requested"]
    assert doc["model"]["requested"] == "claims@1"
    assert list(doc["outputs"]["predictions"]) == ["url", "sha256", "bytes", "key"]


def test_a_job_run_manifest_reads_back_to_the_same_bytes(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    s3.put_object(Bucket=bucket, Key="incoming/daily/a.csv", Body=RUNS["ok"].encode())
    spec = jobs.Job(
        "daily",
        f"s3://{bucket}/incoming/daily/*.csv",
        "claims:production",
        "rate(1 hour)",
        mode="new",
    )
    jobs.add(bucket, spec, service.Settings(), None)
    assert cliutil.run(main, ["jobs", "run", "daily", "--bucket", bucket]) == 0
    [(key, doc)] = manifests(s3, bucket).items()
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert Manifest.from_json(text).to_json() == text
    assert doc["status"] == "ok"
