"""From a dropped file to the scorer's environment, with the template's own EventPattern and
InputTransformer.

moto routes S3 (EventBridge notifications on) -> the rule -> an SQS queue standing in for the
ECS target, applying the pattern; it does not apply input transformers and has no ECS target.
So the transformer is rendered here, EventBridge-style, for a real-shaped event with a
URL-encoded key, and its output is handed to `scorer event` the way ECS would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from typing import Any
from urllib.parse import quote_plus

import pytest
from infra_support import ROOT, client, resolve

from scorer import events, layout
from scorer.layout import ObjectVersion

SCORER_DOCKERFILE = ROOT / "Dockerfile.scorer"


def rule_target(template: dict[str, Any]) -> dict[str, Any]:
    (target,) = template["Resources"]["ObjectCreatedRule"]["Properties"]["Targets"]
    return target


def event_pattern(template: dict[str, Any], bucket: str) -> dict[str, Any]:
    return resolve(template["Resources"]["ObjectCreatedRule"]["Properties"]["EventPattern"], {
        "Bucket": bucket
    })  # fmt: skip


# --- routing: the exact pattern in moto's EventBridge ------------------------------------------
@pytest.fixture
def routed(moto_endpoint: str, bucket: str, s3, template):  # type: ignore[no-untyped-def]
    """The bucket sends events to EventBridge; the template's pattern routes them to a queue."""
    sqs = client("sqs", moto_endpoint)
    evb = client("events", moto_endpoint)
    queue_url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    rule = f"r-{uuid.uuid4().hex[:12]}"
    evb.put_rule(Name=rule, EventPattern=json.dumps(event_pattern(template, bucket)))
    evb.put_targets(Rule=rule, Targets=[{"Id": "stand-in", "Arn": queue_arn}])
    yield bucket, queue_url
    evb.remove_targets(Rule=rule, Ids=["stand-in"])
    evb.delete_rule(Name=rule)


def delivered_keys(sqs: Any, queue_url: str, until: str) -> list[str]:
    """Keys of the events in the queue, read until the sentinel key arrives."""
    keys: list[str] = []
    for _ in range(20):
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for msg in resp.get("Messages", []):
            body = json.loads(msg["Body"])
            assert body["detail-type"] == "Object Created"
            keys.append(body["detail"]["object"]["key"])
        if until in keys:
            return keys
    raise AssertionError(f"the sentinel {until} never arrived; got {keys}")


IN, UN, NO = layout.INPUT, layout.UNSUPPORTED, layout.IGNORED
ROUTING = [
    ("incoming/a/b.csv", True, IN, "a CSV in a subfolder of incoming starts a run"),
    ("incoming/c.csv", True, IN, "a CSV directly in incoming starts a run"),
    ("incoming/d/e.csv.gz", True, IN, "a gzipped CSV starts a run"),
    ("incoming/y.CSV", True, IN, "an upper-case suffix starts a run that scores it"),
    ("incoming/z.Csv.GZ", True, IN, "a mixed-case gzip suffix starts a run that scores it"),
    ("incoming/x.txt", True, UN, "a non-CSV under incoming starts a run that refuses it"),
    ("incoming/noext", True, UN, "a file without extension starts a run that refuses it"),
    ("incoming/folder/", True, NO, "a folder marker is routed and ignored by the scorer"),
    ("scored/x.csv", False, NO, "results never start a run"),
    ("models/claims/1/x.csv", False, NO, "model files never start a run"),
    ("archive/incoming/z.csv", False, NO, "incoming/ must be the start of the key"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("key", "expected", "kind"), [r[:3] for r in ROUTING], ids=[r[3] for r in ROUTING]
)
def test_event_pattern_routes_every_object_under_incoming(
    routed, s3, moto_endpoint, key, expected, kind
) -> None:
    bucket, queue_url = routed
    sentinel = f"incoming/sentinel-{uuid.uuid4().hex[:6]}.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=b"a,b\n1,2\n")
    s3.put_object(Bucket=bucket, Key=sentinel, Body=b"a,b\n1,2\n")
    keys = delivered_keys(client("sqs", moto_endpoint), queue_url, until=sentinel)
    assert (key in keys) is expected
    assert keys.count(sentinel) == 1
    # the scorer's own notion agrees with the rule: what is routed is scored or refused
    # (a folder marker is not a file), and nothing else under incoming/ exists
    assert layout.classify(key) == kind


def test_event_from_another_bucket_is_not_routed(routed, s3, moto_endpoint, bucket) -> None:
    _, queue_url = routed
    other = f"t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=other)
    s3.put_bucket_notification_configuration(
        Bucket=other, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    s3.put_object(Bucket=other, Key="incoming/a.csv", Body=b"a\n1\n")
    sentinel = "incoming/sentinel.csv"
    s3.put_object(Bucket=bucket, Key=sentinel, Body=b"a\n1\n")
    assert delivered_keys(client("sqs", moto_endpoint), queue_url, until=sentinel) == [sentinel]


# --- the input transformer, rendered as EventBridge does ---------------------------------------
def json_path(event: dict[str, Any], path: str) -> Any:
    """The subset of JSONPath EventBridge input paths use: ``$.a.b-c.d``."""
    assert path.startswith("$.")
    node: Any = event
    for part in path[2:].split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def render_input_template(template: str, paths: dict[str, str], event: dict[str, Any]) -> str:
    """EventBridge's substitution: a placeholder inside a JSON string is replaced by the raw
    text of the value; one outside a string by the value as JSON."""
    values = {name: json_path(event, path) for name, path in paths.items()}
    out: list[str] = []
    in_string = escaped = False
    i = 0
    while i < len(template):
        ch = template[i]
        m = re.match(r"<([A-Za-z0-9_.-]+)>", template[i:])
        if m and m.group(1) in values:
            value = values[m.group(1)]
            if in_string:
                out.append("" if value is None else str(value))
            else:
                out.append(json.dumps(value))
            i += m.end()
            continue
        out.append(ch)
        if in_string and ch == "\\" and not escaped:
            escaped = True
        else:
            if ch == '"' and not escaped:
                in_string = not in_string
            escaped = False
        i += 1
    return "".join(out)


def object_created_event(bucket: str, key: str, version_id: str, etag: str, size: int) -> dict:
    """An S3 "Object Created" event as EventBridge delivers it (shape from the S3 user guide);
    the key is URL-encoded the way S3 encodes it ('+' for space)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-25T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": size,
                "etag": etag,
                "version-id": version_id,
                "sequencer": "00617F08299329D189",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "203.0.113.15",
            "reason": "PutObject",
        },
    }


def overrides_for(template: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    transformer = rule_target(template)["InputTransformer"]
    rendered = render_input_template(
        transformer["InputTemplate"], transformer["InputPathsMap"], event
    )
    return json.loads(rendered)  # must be valid JSON, or RunTask gets nothing


KEYS = [
    ("incoming/my file(2).csv", "incoming/my+file%282%29.csv", "spaces and parentheses"),
    ("incoming/a/b/c.csv.gz", "incoming/a/b/c.csv.gz", "nested gzip"),
    ("incoming/Ünï cödé.csv", "incoming/%C3%9Cn%C3%AF+c%C3%B6d%C3%A9.csv", "non-ASCII"),
    ('incoming/say "hi" \\ bye+1.csv', "incoming/say+%22hi%22+%5C+bye%2B1.csv",
     "quotes, backslash and a literal plus"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "encoded"), [k[:2] for k in KEYS], ids=[k[2] for k in KEYS])
def test_transformer_puts_bucket_key_and_version_into_the_scorer_environment(
    template, key, encoded
) -> None:
    event = object_created_event("drop-bucket", key, "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", "e1", 9)
    assert event["detail"]["object"]["key"] == encoded
    overrides = overrides_for(template, event)
    (container,) = overrides["containerOverrides"]
    task = template["Resources"]["ScorerTaskDefinition"]["Properties"]
    assert container["name"] == task["ContainerDefinitions"][0]["Name"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env == {
        "DROPSCORE_BUCKET": "drop-bucket",
        "DROPSCORE_KEY": encoded,
        "DROPSCORE_VERSION_ID": "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
    }
    assert events.from_environment(env) == ObjectVersion(
        bucket="drop-bucket", key=key, version_id="3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
    )


def test_transformer_output_for_an_unversioned_bucket_means_no_version(template) -> None:
    event = object_created_event("b", "incoming/a.csv", "v", "e", 1)
    del event["detail"]["object"]["version-id"]  # S3 omits it when versioning is off
    env = {
        e["name"]: e["value"]
        for e in overrides_for(template, event)["containerOverrides"][0]["environment"]
    }
    assert env["DROPSCORE_VERSION_ID"] == ""
    assert events.from_environment(env).version_id is None


# --- end to end: the rendered overrides, run like the Fargate task ----------------------------
def container_command(template: dict[str, Any], logical: str, bucket: str) -> list[str]:
    """The image's ENTRYPOINT (from the Dockerfile) + the task definition's Command."""
    (entry,) = re.findall(r"^ENTRYPOINT (\[.*\])$", SCORER_DOCKERFILE.read_text(), re.MULTILINE)
    entrypoint = json.loads(entry)
    assert entrypoint[0] == "python"
    props = template["Resources"][logical]["Properties"]
    command = resolve(props["ContainerDefinitions"][0]["Command"], {"Bucket": bucket})
    return [sys.executable, *entrypoint[1:], *command]


def container_env(
    template: dict[str, Any], logical: str, bucket: str, overrides: list[dict[str, str]]
) -> dict[str, str]:
    """Task-definition environment + container overrides, as ECS merges them, on top of the
    moto credentials/endpoint; PYTHONPATH as the image sets it."""
    props = template["Resources"][logical]["Properties"]
    # the settings `jobs add` mirrors schedules with (stack ARNs) play no part in `event`
    mirror = ("DROPSCORE_SCHEDULE", "DROPSCORE_ECS_", "DROPSCORE_TASK_DEF", "DROPSCORE_SUBNETS",
              "DROPSCORE_SECURITY_GROUPS", "DROPSCORE_DEAD_LETTER")  # fmt: skip
    defined = resolve(
        [
            e
            for e in props["ContainerDefinitions"][0]["Environment"]
            if not e["Name"].startswith(mirror)
        ],
        {
            "Bucket": bucket,
            "ModelName": "claims",
            "UiDomainName": "scores.example.org",
            # where Dask workers would run if a file scaled out on Fargate (scorer/fargate.py)
            "WorkerTaskDefinition": "arn:aws:ecs:us-east-1:1234:task-definition/ds-worker:1",
            "WorkerSecurityGroup": "sg-0123456789abcdef0",
            "MaxWorkers": "16",
            "WorkerCpu": "2048",
            "ShardOverMb": "off",  # the stack's default: every file in one task
        },
        {"HasUiDomain": True, "ScalesOut": False},
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DROPSCORE_")}
    env.update({e["Name"]: e["Value"] for e in defined})
    env.update({e["name"]: e["value"] for e in overrides})
    env["PYTHONPATH"] = str(ROOT)
    return env


def put_claims_csv(s3: Any, bucket: str, key: str, rows: int) -> dict[str, Any]:
    from training.sample_data import generate

    body = generate(rows, seed=3).drop(columns=["charges"]).to_csv(index=False).encode()
    return s3.put_object(Bucket=bucket, Key=key, Body=body)


def manifests(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return [
        json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
        for o in listed
        if o["Key"].endswith("/manifest.json")
    ]


@pytest.mark.slow
def test_rendered_overrides_make_scorer_event_score_the_right_object(
    template, s3, bucket, s3_registry, tmp_path
) -> None:
    assert s3_registry == f"s3://{bucket}/models"
    key = "incoming/my file(2).csv"
    put = put_claims_csv(s3, bucket, key, rows=40)
    put_claims_csv(s3, bucket, "incoming/my file(3).csv", rows=7)  # a neighbour not to score
    head = s3.head_object(Bucket=bucket, Key=key)
    event = object_created_event(
        bucket, key, put["VersionId"], head["ETag"].strip('"'), head["ContentLength"]
    )
    overrides = overrides_for(template, event)["containerOverrides"][0]["environment"]

    proc = subprocess.run(
        container_command(template, "ScorerTaskDefinition", bucket),
        env=container_env(template, "ScorerTaskDefinition", bucket, overrides),
        cwd=tmp_path,  # the task's WorkingDirectory is its writable /tmp
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (manifest,) = manifests(s3, bucket, "scored/my file(2)/")
    assert manifest["status"] == "ok"
    assert manifest["rows_in"] == 40
    assert manifests(s3, bucket, "scored/my file(3)/") == []


@pytest.mark.slow
def test_sweep_task_command_scores_a_file_whose_event_was_lost(
    template, s3, bucket, s3_registry, tmp_path
) -> None:
    put_claims_csv(s3, bucket, "incoming/lost/event.csv", rows=12)
    proc = subprocess.run(
        container_command(template, "SweepTaskDefinition", bucket),
        env=container_env(template, "SweepTaskDefinition", bucket, []),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (manifest,) = manifests(s3, bucket, "scored/lost/event/")
    assert manifest["status"] == "ok"
    assert manifest["rows_in"] == 12
