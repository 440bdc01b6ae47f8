"""The manifest JSON is the contract: what older code wrote reads back as the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

from scorer.manifest import Manifest

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
