"""At-least-once, any-order, sometimes-never delivery over a real S3 API (moto server): every
scenario ends with the ledger checker finding nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from scorer import service, sweep
from scorer.layout import ObjectVersion
from scorer.manifest import Reason
from tests.reliability.conftest import (
    ROOT,
    cli_proc,
    ledger,
    manifests,
    open_uploads,
    put,
    run_event,
    sample_csv,
    scored_versions,
)
from tests.scorer.test_events import eventbridge


@pytest.mark.slow
def test_the_same_event_8_times_at_once_then_again_gives_one_manifest_and_no_rewrite(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    version = put(s3, bucket, "incoming/dup/claims.csv", sample_csv(400))
    event = json.dumps(eventbridge("incoming/dup/claims.csv", version, bucket))
    import boto3

    bus = f"b-{uuid.uuid4().hex[:8]}"  # its own bus: see tests/scorer/test_jobs.py::own_bus
    boto3.client("events").create_event_bus(Name=bus)
    procs = [cli_proc("event", "--event", "-", "--event-bus", bus) for _ in range(8)]
    results = [p.communicate(event, timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert codes == [0] * 8, [err for _, err in results]
    [(key, m)] = manifests(s3, bucket).items()
    assert (m["status"], m["rows_in"], m["rows_scored"]) == ("ok", 400, 400)
    # exactly one version of each object: the losers wrote nothing visible
    versions = scored_versions(s3, bucket)
    # (and the one committing process wrote the run-event marker once: see test_notify.py)
    assert [k for k, _ in versions] == [
        key.replace("manifest.json", "events.json"),
        key,
        key.replace("manifest.json", "predictions.csv"),
    ]
    again = run_event(bucket, "incoming/dup/claims.csv", version)
    assert again.returncode == 0
    assert "already scored" in again.stderr
    assert scored_versions(s3, bucket) == versions
    assert open_uploads(s3, bucket) == []
    assert ledger(bucket) == []


def test_8_duplicate_runs_racing_in_threads_write_each_object_once(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    """The model is loaded once, so the 8 runs really overlap (found 8 versions of
    predictions.csv before outputs became create-only)."""
    version = put(s3, bucket, "incoming/race.csv", sample_csv(5000))
    settings = service.Settings()
    model = service.load_model(settings.registry_for(bucket), settings.model)
    ref = ObjectVersion(bucket, "incoming/race.csv", version)
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda _: service.score_object(ref, settings, model=model), range(8))
        )
    assert sum(1 for r in results if r and not r.already_done) == 1
    assert len({r.manifest.run_id for r in results if r}) == 1
    versions = scored_versions(s3, bucket)
    assert len(versions) == len({k for k, _ in versions}) == 2
    assert open_uploads(s3, bucket) == []
    assert ledger(bucket) == []


def test_two_versions_of_one_key_arriving_out_of_order_are_each_scored_once(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    key = "incoming/ooo.csv"
    v1 = put(s3, bucket, key, sample_csv(30, seed=1))
    v2 = put(s3, bucket, key, sample_csv(50, seed=2))
    settings = service.Settings()
    second = service.score_object(ObjectVersion(bucket, key, v2), settings)
    first = service.score_object(ObjectVersion(bucket, key, v1), settings)
    late_dup = service.score_object(ObjectVersion(bucket, key, v2), settings)
    assert second
    assert first
    assert late_dup
    assert (second.manifest.rows_in, first.manifest.rows_in) == (50, 30)
    assert late_dup.already_done
    assert late_dup.manifest.run_id == second.manifest.run_id
    by_version = {m["input"]["version_id"]: m for m in manifests(s3, bucket).values()}
    assert set(by_version) == {v1, v2}
    assert ledger(bucket, all_versions=True) == []


def test_an_event_for_a_key_deleted_before_the_task_runs_is_terminal(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    gone = put(s3, bucket, "incoming/gone.csv", sample_csv(10))
    s3.delete_object(Bucket=bucket, Key="incoming/gone.csv", VersionId=gone)
    marked = put(s3, bucket, "incoming/marked.csv", sample_csv(12))
    s3.delete_object(Bucket=bucket, Key="incoming/marked.csv")  # a delete marker; version kept
    settings = service.Settings()
    r_gone = service.score_object(ObjectVersion(bucket, "incoming/gone.csv", gone), settings)
    r_marked = service.score_object(ObjectVersion(bucket, "incoming/marked.csv", marked), settings)
    assert r_gone
    assert r_marked
    assert (r_gone.manifest.status, r_gone.manifest.reason) == (
        "failed",
        Reason("SOURCE_GONE", r_gone.manifest.reason.message),  # type: ignore[union-attr]
    )
    assert (r_marked.manifest.status, r_marked.manifest.rows_in) == ("ok", 12)
    assert ledger(bucket) == []


def test_the_sweep_after_lost_events_and_a_crashed_run_leaves_a_clean_ledger(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    settings = service.Settings()
    for i in range(6):
        put(s3, bucket, f"incoming/lost/{i}.csv", sample_csv(20 + i, seed=i))
    delivered = ObjectVersion(bucket, "incoming/lost/0.csv")
    assert service.score_object(delivered, settings)
    # a run that died after its predictions but before its manifest: outputs without a manifest
    done = manifests(s3, bucket)
    [mkey] = done
    s3.delete_object(Bucket=bucket, Key=mkey)
    for obj in s3.list_object_versions(Bucket=bucket, Prefix=mkey)["Versions"]:
        s3.delete_object(Bucket=bucket, Key=mkey, VersionId=obj["VersionId"])
    for obj in s3.list_object_versions(Bucket=bucket, Prefix=mkey).get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=mkey, VersionId=obj["VersionId"])
    before = ledger(bucket)
    assert sum(v.startswith("INPUT_PENDING") for v in before) == 6
    assert sum(v.startswith("OUTPUT_WITHOUT_MANIFEST") for v in before) == 1
    assert sweep.sweep(bucket, settings) == 0
    assert len(manifests(s3, bucket)) == 6
    assert ledger(bucket) == []
    assert (
        sweep.find_pending(
            sweep.list_inputs(bucket), sweep.committed_runs(bucket), "claims", 1, rescore_stale=True
        )
        == []
    )


def _burst_size() -> int:
    return int(os.environ.get("DROPSCORE_TEST_BURST", "12"))


@pytest.mark.slow
def test_a_burst_of_files_through_watch_with_its_cap_is_all_accounted_for(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    """12 files by default (each event is a subprocess importing PyCaret); set
    DROPSCORE_TEST_BURST=200 for the issue's full burst (~10 min on 2 cores)."""
    import boto3

    n = _burst_size()
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName=f"{bucket}-burst")["QueueUrl"]
    messages = []
    for i in range(n):
        key = f"incoming/burst/{i:03d} file.csv"
        v = put(s3, bucket, key, sample_csv(25, seed=i))
        messages.append(json.dumps(eventbridge(f"incoming/burst/{i:03d}+file.csv", v, bucket)))
    for i in range(0, n, 10):
        sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": str(j), "MessageBody": b} for j, b in enumerate(messages[i : i + 10])],
        )
    t0 = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scorer",
            "watch",
            "--bucket",
            bucket,
            "--queue",
            queue,
            "--concurrency",
            "2",
            "--once",
            "--event-keys",
            "encoded",  # the messages above are shaped as AWS EventBridge sends them
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    elapsed = time.monotonic() - t0
    print(f"burst: {n} files through watch (cap 2) in {elapsed:.0f} s")
    assert done.returncode == 0, done.stderr[-2000:]
    found = manifests(s3, bucket)
    assert len(found) == n
    assert all(m["status"] == "ok" and m["rows_in"] == 25 for m in found.values())
    left = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert left["ApproximateNumberOfMessages"] == "0"
    assert left["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert open_uploads(s3, bucket) == []
    assert ledger(bucket) == []


def test_an_input_replaced_between_its_head_and_its_read_is_not_scored_as_the_old_one(
    s3: Any, trained_registry: str, faulty_store: Any
) -> None:
    """An unversioned bucket: the run id comes from the ETag the HEAD saw; if the object is
    overwritten before the GET, the old content is gone (SOURCE_GONE, terminal) and the new
    content is scored under its own ETag — never the new bytes under the old identity."""
    from pathlib import Path

    bucket = f"u-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    base = Path(trained_registry)
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        s3.put_object(
            Bucket=bucket, Key=f"models/{path.relative_to(base).as_posix()}", Body=path.read_bytes()
        )
    settings = service.Settings()
    model = service.load_model(settings.registry_for(bucket), settings.model)
    key = "incoming/replaced.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=sample_csv(20, seed=1))
    newer = sample_csv(20, seed=2)
    raced = faulty_store(f"s3://{bucket}/{key}").add(  # replaced just after the run's HEAD
        "head", key, after=lambda: s3.put_object(Bucket=bucket, Key=key, Body=newer)
    )
    stale = service.score_object(ObjectVersion(bucket, key), settings, model=model)
    assert raced.hits == 1
    assert stale is not None
    assert stale.manifest.status == "failed"
    assert (stale.manifest.reason.code if stale.manifest.reason else None) == "SOURCE_GONE"
    fresh = service.score_object(ObjectVersion(bucket, key), settings, model=model)
    assert fresh is not None
    assert (fresh.manifest.status, fresh.manifest.rows_in) == ("ok", 20)
    assert fresh.manifest.input.etag != stale.manifest.input.etag
    assert ledger(bucket) == []
