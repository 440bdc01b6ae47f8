"""Odd keys end in exactly one terminal manifest in the right folder, on every path (event,
the local bridge, sweep), and the checker and the UI's run listing agree; the checker reports
an interruption instead of a verdict.

Real moto server over HTTP: its EventBridge delivers keys unencoded (checked here), which is
why the local bridge re-encodes them as AWS does before `scorer event` decodes them once."""

from __future__ import annotations

import gzip
import json
import logging
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from scorer import catalog, cliutil, events, interrupt, layout, service, storage
from scorer.__main__ import main
from scorer.layout import ObjectVersion
from tests.reliability.conftest import ledger, manifests, put, sample_csv
from tests.reliability.faultproxy import FaultProxy
from tests.scorer.test_events import eventbridge

LONG = "incoming/" + "k" * 987 + ".csv"  # 1000 bytes: its outputs would pass S3's 1024
assert len(LONG.encode()) == 1000

CSV_KEYS = [
    "incoming/c++/a+b.csv",
    "incoming/a b/ü.csv",
    "incoming/100%.csv",
    "incoming/50%25 off.csv",
    "incoming/A.CSV",
    "incoming/b.Csv.GZ",
    "incoming/.csv",
    "incoming//x.csv",
    "incoming/a/.csv.gz",
    LONG,
]
OTHER_KEYS = ["incoming/notes.txt", "incoming/y.xlsx", "incoming/noext"]
MARKER = "incoming/folder/"


def body_for(key: str) -> bytes:
    data = sample_csv(6, seed=len(key))
    return gzip.compress(data) if key.lower().endswith(".gz") else data


def put_all(s3: Any, bucket: str, keys: list[str]) -> dict[str, str]:
    versions = {key: put(s3, bucket, key, body_for(key)) for key in keys}
    s3.put_object(Bucket=bucket, Key=MARKER, Body=b"")  # a console "folder"
    return versions


def event_file(tmp_path: Path, ref: ObjectVersion) -> str:
    path = tmp_path / f"{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(events.eventbridge_event(ref)))
    return str(path)


def assert_one_terminal_manifest_each(s3: Any, bucket: str, keys: list[str]) -> None:
    found = manifests(s3, bucket)
    by_key: dict[str, list[str]] = {}
    for where, m in found.items():
        by_key.setdefault(m["input"]["key"], []).append(where)
        out = layout.output_prefix(bucket, m["input"]["key"], m["run_id"])
        assert f"s3://{bucket}/{where}" == f"{out}/manifest.json"  # in its input's folder
        assert m["status"] in ("ok", "failed")
        if m["input"]["key"] in OTHER_KEYS:
            assert (m["status"], m["reason"]["code"]) == ("failed", "UNSUPPORTED_EXTENSION")
            assert "not a .csv or .csv.gz file" in m["reason"]["message"]
        else:
            assert (m["status"], m["rows_in"]) == ("ok", 6), m.get("reason")
    assert sorted(by_key) == sorted(keys)  # the folder marker has none
    assert all(len(v) == 1 for v in by_key.values()), by_key
    listed = s3.list_object_versions(Bucket=bucket, Prefix="scored/")
    for v in listed.get("Versions", []):
        assert len(v["Key"].encode()) <= layout.S3_KEY_LIMIT, v["Key"][:80]
    # the UI's run listing shows every run, named by its full input key
    runs = catalog.list_runs(bucket)
    shown = [catalog.summarise(e.path, catalog.read_manifest(e.path)).input for e in runs]
    assert sorted(shown) == sorted(keys)


@pytest.mark.parametrize("first", ["event", "sweep"])
def test_every_object_under_incoming_ends_in_one_terminal_manifest_on_every_path(
    s3: Any, bucket: str, s3_registry: str, tmp_path: Path, first: str
) -> None:
    keys = CSV_KEYS + OTHER_KEYS
    versions = put_all(s3, bucket, keys)
    refs = [ObjectVersion(bucket, k, versions.get(k)) for k in [*keys, MARKER]]

    def by_event() -> None:
        for ref in refs:
            code = main(["event", "--event", event_file(tmp_path, ref)])
            refused = ref.key in OTHER_KEYS and first == "event"  # later: already done, 0
            assert code == (2 if refused else 0), ref.key

    def by_sweep() -> None:
        assert main(["sweep", "--bucket", bucket]) == 0

    (by_event if first == "event" else by_sweep)()
    assert_one_terminal_manifest_each(s3, bucket, keys)
    before = manifests(s3, bucket)
    (by_sweep if first == "event" else by_event)()  # the other path: nothing new
    assert manifests(s3, bucket) == before
    assert ledger(bucket) == []


def test_moto_delivers_keys_raw_and_the_local_bridge_scores_each_once(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    """The demo's own rule and queue on moto; `watch` hands each event on as AWS would."""
    from devstack.demo import event_pattern
    from scorer.watch import watch

    sqs, evb = boto3.client("sqs"), boto3.client("events")
    queue = sqs.create_queue(QueueName=f"{bucket}-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    rule = f"{bucket}-incoming"
    evb.put_rule(Name=rule, EventPattern=json.dumps(event_pattern(bucket)))
    evb.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn["QueueArn"]}])
    keys = ["incoming/c++/a+b.csv", "incoming/a b/ü.csv", "incoming/100%.csv", "incoming/A.CSV",
            "incoming/notes.txt"]  # fmt: skip
    try:
        put_all(s3, bucket, keys)
        peek = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0)
        delivered = {json.loads(m["Body"])["detail"]["object"]["key"] for m in peek["Messages"]}
        assert "incoming/c++/a+b.csv" in delivered  # moto: raw, where AWS sends c%2B%2B/a%2Bb
        old = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
        try:
            watch(queue, service.Settings(), once=True)
        finally:
            signal.signal(signal.SIGTERM, old[0])
            signal.signal(signal.SIGINT, old[1])
    finally:
        evb.remove_targets(Rule=rule, Ids=["q"])
        evb.delete_rule(Name=rule)
    assert_one_terminal_manifest_each(s3, bucket, keys)
    left = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert left["ApproximateNumberOfMessages"] == left["ApproximateNumberOfMessagesNotVisible"]
    assert left["ApproximateNumberOfMessages"] == "0"
    assert ledger(bucket) == []


def test_an_event_whose_key_came_unencoded_is_found_not_called_gone(
    s3: Any, bucket: str, s3_registry: str, tmp_path: Path
) -> None:
    """Finding 4: decoded, 'c++/a+b' reads 'c  /a b' — not there. The key exactly as the
    event gave it is the event's version: scored there, no phantom SOURCE_GONE."""
    key = "incoming/c++/a+b.csv"
    version = put(s3, bucket, key, sample_csv(6))
    path = tmp_path / "moto-event.json"
    path.write_text(json.dumps(eventbridge(key, version, bucket)))  # raw, as moto sends it
    assert main(["event", "--event", str(path)]) == 0
    (where,) = manifests(s3, bucket)
    assert where.startswith("scored/c++/a+b/")
    assert manifests(s3, bucket)[where]["status"] == "ok"
    assert ledger(bucket) == []


def test_an_event_for_a_deleted_version_is_source_gone_with_a_checkable_run_id(
    s3: Any, bucket: str, s3_registry: str, tmp_path: Path
) -> None:
    key = "incoming/c++/gone.csv"
    version = put(s3, bucket, key, sample_csv(6))
    s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
    ref = ObjectVersion(bucket, key, version, "e1")
    assert main(["event", "--event", event_file(tmp_path, ref)]) == 2
    ((where, m),) = manifests(s3, bucket).items()
    assert where.startswith("scored/c++/gone/")
    assert m["reason"]["code"] == "SOURCE_GONE"
    assert ledger(bucket) == []  # its run id is now verified too, and holds


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    fp = FaultProxy(moto_endpoint)
    os.environ["AWS_ENDPOINT_URL"] = fp.url
    storage.s3_client.cache_clear()
    try:
        yield fp
    finally:
        os.environ["AWS_ENDPOINT_URL"] = moto_endpoint
        storage.s3_client.cache_clear()
        fp.close()


@pytest.fixture
def scored_pair(s3: Any, bucket: str, s3_registry: str) -> str:
    for name in ("a", "b"):
        put(s3, bucket, f"incoming/{name}.csv", sample_csv(20))
    assert main(["sweep", "--bucket", bucket]) == 0
    assert main(["check", "--bucket", bucket]) == 0
    return bucket


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "signal", "status": int(signal.SIGTERM), "times": 1},
        {"kind": "status", "status": 403, "code": "AccessDenied", "times": 99},
    ],
    ids=["SIGTERM while an input is counted", "an input the checker may not read"],
)
def test_an_interrupted_check_says_so_instead_of_a_verdict(
    scored_pair: str,
    proxy: FaultProxy,
    fault: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy.add(method="GET", path="/incoming/", **fault)
    old = signal.getsignal(signal.SIGTERM)
    capsys.readouterr()
    try:  # as the console script runs it: the error becomes one line and an exit code
        code = cliutil.run(main, ["check", "--bucket", scored_pair])
    finally:
        signal.signal(signal.SIGTERM, old)
        interrupt.requested.clear()
    out = capsys.readouterr()
    assert code != 0
    assert "interrupted: 2 inputs not checked" in out.out + out.err
    assert "violation(s)" not in out.err  # no result printed as if all were counted


def test_a_notification_naming_several_objects_scores_each_through_watch(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    from scorer.watch import watch

    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName=f"{bucket}-multi")["QueueUrl"]
    records = []
    for name in ("one", "two", "three"):
        v = put(s3, bucket, f"incoming/{name}.csv", sample_csv(6))
        obj = {"key": f"incoming/{name}.csv", "versionId": v}
        records.append({"s3": {"bucket": {"name": bucket}, "object": obj}})
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": records}))
    old = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        watch(queue, service.Settings(), once=True)
    finally:
        signal.signal(signal.SIGTERM, old[0])
        signal.signal(signal.SIGINT, old[1])
    assert sorted(m["input"]["key"] for m in manifests(s3, bucket).values()) == [
        "incoming/one.csv",
        "incoming/three.csv",
        "incoming/two.csv",
    ]


def test_a_run_longer_than_the_visibility_timeout_is_not_handed_out_again(
    s3: Any,
    bucket: str,
    s3_registry: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 1 s visibility against a task that takes longer (a process that imports pandas and
    loads a model): the heartbeat keeps the message hidden, so it runs once and never
    reaches the dead-letter queue (redrive after 1 receive)."""
    from scorer import watch as watch_module

    monkeypatch.setattr(watch_module, "VISIBILITY_S", 1)
    monkeypatch.setattr(watch_module, "HEARTBEAT_S", 0.2)
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName=f"{bucket}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    queue = sqs.create_queue(
        QueueName=f"{bucket}-slow",
        Attributes={
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn["QueueArn"], "maxReceiveCount": "1"}
            )
        },
    )["QueueUrl"]
    v = put(s3, bucket, "incoming/slow.csv", sample_csv(50))
    sqs.send_message(
        QueueUrl=queue, MessageBody=json.dumps(eventbridge("incoming/slow.csv", v, bucket))
    )
    old = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    caplog.set_level(logging.INFO, logger="dropscore.watch")
    try:
        watch_module.watch(queue, service.Settings(), once=True)
    finally:
        signal.signal(signal.SIGTERM, old[0])
        signal.signal(signal.SIGINT, old[1])
    runs = [r for r in caplog.records if r.getMessage() == "event finished"]
    assert len(runs) == 1, [getattr(r, "exit", None) for r in runs]
    assert sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages") is None
    assert len(manifests(s3, bucket)) == 1


def test_the_checker_does_not_read_inputs_that_were_refused_unread(
    s3: Any, bucket: str, s3_registry: str, proxy: FaultProxy
) -> None:
    """A refused file (here by its name; a bomb alike) claims no count, so the checker never
    reads it again: the bucket refusing every input read does not stop the check."""
    put(s3, bucket, "incoming/y.xlsx", b"PK\x03\x04" + b"\x00" * 64)
    assert main(["sweep", "--bucket", bucket]) == 0
    proxy.add(method="GET", path="/incoming/", kind="status", status=403, code="AccessDenied",
              times=99)  # fmt: skip
    assert ledger(bucket) == []
    assert not any(m == "GET" and "/incoming/" in p for m, p in proxy.requests)


def test_the_event_command_prints_the_manifest_where_the_configured_prefixes_put_it(
    s3: Any, bucket: str, s3_registry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With prefixes other than incoming/ and scored/, the path printed after a run is the
    manifest that exists (not one under the default prefixes)."""
    import argparse

    from scorer.__main__ import _event

    key = "in/daily/claims.csv"
    version = put(s3, bucket, key, sample_csv(6))
    ref = events.parse(events.eventbridge_event(ObjectVersion(bucket, key, version)))
    settings = service.Settings(incoming="in/", scored="out/results/")
    capsys.readouterr()
    assert _event(argparse.Namespace(event=event_file(tmp_path, ref)), settings) == 0
    printed = capsys.readouterr().err.strip().splitlines()[-1]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="out/results/")["Contents"]
    (where,) = [o["Key"] for o in listed if o["Key"].endswith("/manifest.json")]
    assert where.startswith("out/results/daily/claims/")
    assert printed == f"manifest: s3://{bucket}/{where}"


def test_the_scorer_command_reads_the_prefixes_the_ui_reads(
    s3: Any,
    bucket: str,
    s3_registry: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DROPSCORE_INCOMING / DROPSCORE_SCORED (layout.Prefixes, which the UI's settings read
    too) move where `python -m scorer event` takes inputs from and writes runs to."""
    monkeypatch.setenv(layout.INCOMING_ENV, "in/")
    monkeypatch.setenv(layout.SCORED_ENV, "out/results/")
    monkeypatch.setenv("DROPSCORE_REGISTRY", s3_registry)
    key = "in/daily/claims.csv"
    version = put(s3, bucket, key, sample_csv(6))
    ref = events.parse(events.eventbridge_event(ObjectVersion(bucket, key, version)))
    capsys.readouterr()
    assert main(["event", "--event", str(event_file(tmp_path, ref))]) == 0
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="out/results/")["Contents"]
    (where,) = [o["Key"] for o in listed if o["Key"].endswith("/manifest.json")]
    assert where.startswith("out/results/daily/claims/")
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"manifest: s3://{bucket}/{where}"
    monkeypatch.setenv(layout.SCORED_ENV, "in/results/")
    assert cliutil.run(main, ["event", "--event", str(event_file(tmp_path, ref))]) == 2
    assert "overlap" in capsys.readouterr().err


def test_the_event_command_scores_every_object_of_a_notification_and_says_why_not_the_rest(
    s3: Any, bucket: str, s3_registry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records: list[dict[str, Any]] = []
    for name in ("one", "two"):
        v = put(s3, bucket, f"incoming/{name}.csv", sample_csv(6))
        obj = {"key": f"incoming/{name}.csv", "versionId": v}
        records.append(
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": obj}}
        )
    records.insert(1, {"eventName": "ObjectRemoved:Delete", "s3": records[0]["s3"]})
    path = tmp_path / "notification.json"
    path.write_text(json.dumps({"Records": records}))
    capsys.readouterr()
    assert main(["event", "--event", str(path)]) == 0
    err = capsys.readouterr().err
    assert "not scored: record 2: event 'ObjectRemoved:Delete' is not an object creation" in err
    assert sorted(m["input"]["key"] for m in manifests(s3, bucket).values()) == [
        "incoming/one.csv",
        "incoming/two.csv",
    ]
