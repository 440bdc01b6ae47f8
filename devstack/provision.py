"""The demo's local AWS (moto): the bucket, the rule on ``incoming/`` → a queue (+ DLQ) standing
in for the RunTask target, a rule routing run events to a queue the demo prints from, and the
sample model published under ``models/``."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from scorer.layout import INCOMING, MANIFEST, MODELS

QUEUE = "dropscore-scorer-events"
DLQ = "dropscore-scorer-dlq"
RUN_EVENTS_QUEUE = "dropscore-run-events"  # what a subscriber (e-mail, Slack) would receive


def provision(bucket: str) -> tuple[str, str]:
    """Bucket, notifications, rule → queue (+ DLQ). Returns (queue url, dlq url)."""
    import boto3

    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    ev = boto3.client("events")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={
            "VisibilityTimeout": "600",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    ev.put_rule(Name="dropscore-incoming", EventPattern=json.dumps(event_pattern(bucket)))
    ev.put_targets(Rule="dropscore-incoming", Targets=[{"Id": "scorer", "Arn": queue_arn}])
    return queue_url, dlq_url


def event_pattern(bucket: str) -> dict[str, Any]:
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [bucket]},
            # every object under incoming/: CSVs are scored, other files get a terminal
            # UNSUPPORTED_EXTENSION manifest (wildcards would be case-sensitive: a.CSV lost)
            "object": {"key": [{"prefix": INCOMING}]},
        },
    }


def provision_run_events() -> str:
    """A rule on the local bus routing source ``dropscore`` (run and job events) to a queue the
    demo prints from, as the stack's rule routes them to the alarm topic. Returns its URL."""
    import boto3

    sqs = boto3.client("sqs")
    ev = boto3.client("events")
    url = sqs.create_queue(QueueName=RUN_EVENTS_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    ev.put_rule(Name="dropscore-run-events", EventPattern=json.dumps({"source": ["dropscore"]}))
    ev.put_targets(Rule="dropscore-run-events", Targets=[{"Id": "console", "Arn": arn}])
    return url


def print_run_events(stopping: threading.Event, queue_url: str) -> None:
    """One line per run event as it arrives: type, input, status, counts, alerts."""
    import boto3

    from scorer.notify import one_line

    sqs = boto3.client("sqs")
    while not stopping.is_set():
        try:
            msgs = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=5
            ).get("Messages", [])
        except Exception:  # moto is stopping with the demo; nothing left to print
            return
        for msg in msgs:
            event = json.loads(msg["Body"])
            print(f"[event] {one_line(event['detail-type'], event['detail'])}", flush=True)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=msg["ReceiptHandle"])


def publish(registry: Path, bucket: str) -> None:
    """The local registry's files under s3://<bucket>/models/, as training would publish them."""
    import boto3

    s3 = boto3.client("s3")
    for path in sorted(p for p in registry.rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, f"{MODELS}/{path.relative_to(registry).as_posix()}")


def wait_manifest(s3: Any, bucket: str, prefix: str, seconds: float) -> dict[str, Any] | None:
    """The first manifest under ``prefix`` (with its ``key``), or None after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        resp = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        for obj in resp.get("Contents", []):
            if obj["Key"].endswith(f"/{MANIFEST}"):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                return {"key": obj["Key"], **json.loads(body)}
        time.sleep(1)
    return None
