"""The manifest JSON is the contract: what older code wrote reads back as the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scorer import cluster, runs, service, storage
from scorer.errors import SourceGone
from scorer.layout import ObjectVersion
from scorer.manifest import Manifest
from scorer.model import LoadedModel
from scorer.shards import Scale

DATA = Path(__file__).parent / "data"


def test_a_manifest_written_before_shards_round_trips_byte_for_byte() -> None:
    text = (DATA / "manifest_before_shards.json").read_text()
    manifest = Manifest.from_json(text)
    assert manifest.shards == 0
    assert manifest.to_json() == text


def test_an_unsharded_run_writes_no_shards_field_and_a_sharded_one_does() -> None:
    plain = Manifest(run_id="r", status="ok", input={"url": "a.csv"}, model={"name": "m"})
    assert "shards" not in json.loads(plain.to_json())
    sharded = Manifest(run_id="r", status="ok", input={}, model={}, workers=2, shards=7)
    doc = json.loads(sharded.to_json())
    assert doc["shards"] == 7
    assert Manifest.from_json(sharded.to_json()) == sharded


def test_an_older_manifest_without_task_cost_or_events_reads_with_defaults() -> None:
    doc = json.loads((DATA / "manifest_before_shards.json").read_text())
    for key in ("task", "cost", "event_bus", "libraries", "workers_peak_memory_mb"):
        doc.pop(key)
    manifest = Manifest.from_json(json.dumps(doc))
    assert (manifest.task, manifest.cost, manifest.event_bus, manifest.shards) == ({}, {}, None, 0)


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
