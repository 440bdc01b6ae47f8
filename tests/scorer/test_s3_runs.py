"""The batch path over a real S3 API (moto server over HTTP): events, duplicates, the sweep,
the watcher and its dead-letter queue — all through the command line, as tasks run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.scorer.test_events import eventbridge

ROOT = Path(__file__).resolve().parents[2]


def cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scorer", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )


def manifests(s3: Any, bucket: str, prefix: str = "scored/") -> dict[str, dict[str, Any]]:
    out = {}
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        if obj["Key"].endswith("manifest.json"):
            out[obj["Key"]] = json.loads(
                s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            )
    return out


def put_sample(s3: Any, bucket: str, key: str, rows: int = 120, seed: int = 4) -> str:
    from training.sample_data import generate

    body = generate(rows, seed).drop(columns=["charges"]).to_csv(index=False).encode()
    return str(s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"])


def test_event_scores_once_and_a_duplicate_writes_nothing(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    version = put_sample(s3, bucket, "incoming/batch 1/claims+q.csv")
    event = json.dumps(eventbridge("incoming/batch+1/claims%2Bq.csv", version, bucket))
    first = cli("event", "--event", "-", stdin=event)
    assert first.returncode == 0, first.stderr
    [(key, m)] = manifests(s3, bucket).items()
    assert key.startswith("scored/batch 1/claims+q/claims-v1-")
    assert (m["status"], m["rows_in"], m["rows_scored"]) == ("ok", 120, 120)
    assert m["input"]["version_id"] == version
    listing = s3.list_object_versions(Bucket=bucket, Prefix="scored/")["Versions"]
    second = cli("event", "--event", "-", stdin=event)
    assert second.returncode == 0
    assert "already scored" in second.stderr
    assert s3.list_object_versions(Bucket=bucket, Prefix="scored/")["Versions"] == listing


def test_event_from_environment_like_the_input_transformer(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    version = put_sample(s3, bucket, "incoming/env.csv")
    done = cli(
        "event",
        env={
            "DROPSCORE_BUCKET": bucket,
            "DROPSCORE_KEY": "incoming/env.csv",
            "DROPSCORE_VERSION_ID": version,
        },
    )
    assert done.returncode == 0, done.stderr
    assert len(manifests(s3, bucket)) == 1


def test_a_deleted_source_is_terminal_not_a_crash(s3: Any, bucket: str, s3_registry: str) -> None:
    version = put_sample(s3, bucket, "incoming/gone.csv")
    s3.delete_object(Bucket=bucket, Key="incoming/gone.csv", VersionId=version)
    done = cli(
        "event", "--event", "-", stdin=json.dumps(eventbridge("incoming/gone.csv", version, bucket))
    )
    assert done.returncode == 2
    [m] = manifests(s3, bucket).values()
    assert (m["status"], m["reason"]["code"]) == ("failed", "SOURCE_GONE")


def test_a_refused_file_exits_2_with_a_failed_manifest(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    v = s3.put_object(Bucket=bucket, Key="incoming/semi.csv", Body=b"a;b;c\n1;2;3\n")["VersionId"]
    done = cli(
        "event", "--event", "-", stdin=json.dumps(eventbridge("incoming/semi.csv", v, bucket))
    )
    assert done.returncode == 2
    assert "WRONG_DELIMITER" in done.stderr
    assert "Traceback" not in done.stderr
    [m] = manifests(s3, bucket).values()
    assert m["reason"]["code"] == "WRONG_DELIMITER"


def test_unknown_model_is_retryable_and_writes_nothing(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    v = put_sample(s3, bucket, "incoming/x.csv")
    done = cli(
        "event",
        "--event",
        "-",
        "--model",
        "nosuch",
        stdin=json.dumps(eventbridge("incoming/x.csv", v, bucket)),
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error [MODEL_NOT_FOUND]")
    assert manifests(s3, bucket) == {}


def test_sweep_recovers_lost_events_and_then_has_nothing_to_do(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    for i in range(3):
        put_sample(s3, bucket, f"incoming/lost/{i}.csv", rows=30, seed=i)
    s3.put_object(Bucket=bucket, Key="incoming/readme.txt", Body=b"not an input")
    s3.put_object(Bucket=bucket, Key="incoming/lost/", Body=b"")  # a folder marker: no file
    first = cli("sweep", "--bucket", bucket)
    assert first.returncode == 0, first.stderr
    assert "4 needed a run" in first.stderr
    found = manifests(s3, bucket)
    assert len(found) == 4  # the .txt is refused, not silently skipped
    refused = [m for m in found.values() if m["status"] == "failed"]
    assert [m["reason"]["code"] for m in refused] == ["UNSUPPORTED_EXTENSION"]
    second = cli("sweep", "--bucket", bucket)
    assert "0 needed a run" in second.stderr
    assert len(manifests(s3, bucket)) == 4


def test_sweep_rescore_stale_after_a_new_production_version(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    from scorer.registry import Registry

    put_sample(s3, bucket, "incoming/a.csv", rows=20)
    assert cli("sweep", "--bucket", bucket).returncode == 0
    reg = Registry(s3_registry)
    card = reg.resolve("claims")
    blob = s3.get_object(Bucket=bucket, Key="models/claims/1/model.pkl")["Body"].read()
    plan = s3.get_object(Bucket=bucket, Key="models/claims/1/plan.json")["Body"].read()
    reg.publish(
        "claims",
        blob,
        lambda v, sha: _replace(card, version=v, model_sha256=sha),
        alias="production",
        extras={"plan.json": plan},
    )
    assert "0 needed a run" in cli("sweep", "--bucket", bucket).stderr
    stale = cli("sweep", "--bucket", bucket, "--rescore-stale")
    assert "1 needed a run" in stale.stderr
    versions = sorted(m["model"]["version"] for m in manifests(s3, bucket).values())
    assert versions == [1, 2]


def _replace(card: Any, **kw: Any) -> Any:
    import dataclasses

    return dataclasses.replace(card, **kw)


@pytest.mark.slow
def test_watch_scores_events_and_sends_poison_to_the_dlq(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    import boto3

    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName=f"{bucket}-dlq")["QueueUrl"]
    queue = sqs.create_queue(QueueName=f"{bucket}-q")["QueueUrl"]
    v = put_sample(s3, bucket, "incoming/w.csv", rows=10)
    sqs.send_message(
        QueueUrl=queue, MessageBody=json.dumps(eventbridge("incoming/w.csv", v, bucket))
    )
    sqs.send_message(QueueUrl=queue, MessageBody="this is not an event")
    done = cli("watch", "--bucket", bucket, "--queue", queue, "--dlq", dlq, "--once")
    assert done.returncode == 0, done.stderr
    assert len(manifests(s3, bucket)) == 1
    poison = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in poison] == ["this is not an event"]
    left = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert left["ApproximateNumberOfMessages"] == "0"
    assert left["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_score_command_to_s3_and_local(
    tmp_path: Path, s3: Any, bucket: str, s3_registry: str, trained_registry: str
) -> None:
    put_sample(s3, bucket, "incoming/direct.csv", rows=15)
    out = f"s3://{bucket}/adhoc/run1"
    done = cli(
        "score",
        f"s3://{bucket}/incoming/direct.csv",
        "--registry",
        s3_registry,
        "--model",
        "claims@1",
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="adhoc/")["Contents"]}
    assert keys == {"adhoc/run1/predictions.csv", "adhoc/run1/manifest.json"}
    local = cli(
        "score",
        f"s3://{bucket}/incoming/direct.csv",
        "--registry",
        trained_registry,
        "--model",
        "claims",
        "--out",
        str(tmp_path / "o"),
    )
    assert local.returncode == 0, local.stderr
    remote = s3.get_object(Bucket=bucket, Key="adhoc/run1/predictions.csv")["Body"].read()
    assert (tmp_path / "o" / "predictions.csv").read_bytes() == remote
