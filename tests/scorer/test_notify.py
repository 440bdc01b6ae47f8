"""Run events over a real EventBridge API (moto server): a rule on source ``dropscore`` → an SQS
queue receives what a subscriber would. Only the committing run emits, duplicates never do, a
crash between commit and emit is repaired by the sweep, and an unreachable bus never fails a run.
"""

from __future__ import annotations

import json
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from scorer import catalog, notify, service, sweep
from scorer.layout import ObjectVersion
from tests.reliability.conftest import ledger, manifests, put, run_event, sample_csv
from tests.scorer.test_alerts import far_outside


@pytest.fixture
def sink(moto_endpoint: str) -> tuple[str, str]:
    """A bus of its own with a rule ``source: dropscore`` → a fresh SQS queue: (bus, queue url)."""
    import boto3

    name = f"bus-{uuid.uuid4().hex[:8]}"
    ev = boto3.client("events")
    sqs = boto3.client("sqs")
    ev.create_event_bus(Name=name)
    url = sqs.create_queue(QueueName=f"q-{name}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    ev.put_rule(Name="runs", EventBusName=name, EventPattern=json.dumps({"source": ["dropscore"]}))
    ev.put_targets(Rule="runs", EventBusName=name, Targets=[{"Id": "q", "Arn": arn}])
    return name, url


def received(queue_url: str) -> list[dict[str, Any]]:
    """Every event the queue holds (moto delivers during PutEvents), deleted as read."""
    import boto3

    sqs = boto3.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def markers(s3: Any, bucket: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="scored/").get("Contents", [])
    return [o["Key"] for o in listing if o["Key"].endswith("/" + notify.MARKER)]


def test_8_duplicate_triggers_at_once_give_exactly_one_run_completed(
    s3: Any, bucket: str, s3_registry: str, sink: tuple[str, str]
) -> None:
    bus, queue = sink
    version = put(s3, bucket, "incoming/dup/claims.csv", sample_csv(300))
    settings = service.Settings(event_bus=bus, ui_url="http://ui.example:8501")
    model = service.load_model(settings.registry_for(bucket), settings.model)
    ref = ObjectVersion(bucket, "incoming/dup/claims.csv", version)
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda _: service.score_object(ref, settings, model=model), range(8))
        )
    assert sum(1 for r in results if r and not r.already_done) == 1
    [event] = received(queue)
    [(key, m)] = manifests(s3, bucket).items()
    assert (event["source"], event["detail-type"]) == ("dropscore", "Run Completed")
    d = event["detail"]
    assert d["run_id"] == m["run_id"]
    assert d["input"] == {"bucket": bucket, "key": "incoming/dup/claims.csv", "version_id": version}
    assert d["model"] == f"claims@{m['model']['version']}"
    assert (d["status"], d["counts"]["rows_in"], d["counts"]["rows_scored"]) == ("ok", 300, 300)
    assert d["links"]["manifest"] == f"s3://{bucket}/{key}"
    assert d["links"]["predictions"] == f"s3://{bucket}/{key.replace('manifest.json', '')}" + (
        "predictions.csv"
    )
    assert d["links"]["run_page"] == f"http://ui.example:8501/runs?run=dup/claims/{m['run_id']}"
    assert d["cost"] == m["cost"]
    assert d["duration_s"] == m["duration_s"]
    assert m["event_bus"] == bus
    assert markers(s3, bucket) == [key.replace("manifest.json", notify.MARKER)]
    # the marker is no output: the ledger holds and the UI lists one run
    assert ledger(bucket) == []
    assert [e.path.run_id for e in catalog.list_runs(bucket)] == [m["run_id"]]
    # a late duplicate finds the run done and stays silent
    again = service.score_object(ref, settings, model=model)
    assert again is not None
    assert again.already_done
    assert received(queue) == []


def test_the_run_page_link_opens_the_run_under_a_configured_results_prefix(
    s3: Any, bucket: str, s3_registry: str, sink: tuple[str, str]
) -> None:
    """Results under ``results/`` instead of ``scored/``: the link the run event carries (sent at
    the commit, and again by the sweep) is the name the UI's runs page resolves to that run."""
    from ui import data

    bus, queue = sink
    scored = "results/"
    settings = service.Settings(event_bus=bus, ui_url="http://ui.example:8501", scored=scored)
    version = put(s3, bucket, "incoming/pre/claims.csv", sample_csv(40))
    result = service.score_object(
        ObjectVersion(bucket, "incoming/pre/claims.csv", version), settings
    )
    assert result is not None
    run_id = result.manifest.run_id
    [sent] = received(queue)
    s3.delete_object(Bucket=bucket, Key=f"{scored}pre/claims/{run_id}/{notify.MARKER}")
    assert sweep.sweep(bucket, settings) == 0  # the marker is gone: the sweep sends it again
    [resent] = received(queue)
    for event in (sent, resent):
        link = urlsplit(event["detail"]["links"]["run_page"])
        assert (link.netloc, link.path) == ("ui.example:8501", "/runs")
        [run] = parse_qs(link.query)["run"]
        assert run == f"pre/claims/{run_id}"
        opened = data.manifest(bucket, run, scored)  # what the runs page shows for ?run=
        assert opened is not None
        assert (opened.run_id, opened.input.key) == (run_id, "incoming/pre/claims.csv")


def test_a_refused_file_sends_run_failed_and_a_drifting_file_run_alert(
    s3: Any, bucket: str, s3_registry: str, sink: tuple[str, str]
) -> None:
    bus, queue = sink
    settings = service.Settings(event_bus=bus)
    model = service.load_model(settings.registry_for(bucket), settings.model)
    v1 = put(s3, bucket, "incoming/book.xlsx", b"PK\x03\x04 not a csv")
    service.score_object(ObjectVersion(bucket, "incoming/book.xlsx", v1), settings, model=model)
    [failed] = received(queue)
    assert failed["detail-type"] == "Run Failed"
    assert failed["detail"]["status"] == "failed"
    assert failed["detail"]["reason"]["code"] == "UNSUPPORTED_EXTENSION"
    body = far_outside(400).to_csv(index=False).encode()
    v2 = put(s3, bucket, "incoming/odd.csv", body)
    result = service.score_object(
        ObjectVersion(bucket, "incoming/odd.csv", v2), settings, model=model
    )
    assert result is not None
    assert result.manifest.alerts
    got = received(queue)
    assert sorted(e["detail-type"] for e in got) == ["Run Alert", "Run Completed"]
    assert {e["detail"]["run_id"] for e in got} == {result.manifest.run_id}
    alert = next(e for e in got if e["detail-type"] == "Run Alert")
    assert alert["detail"]["alerts"] == [a.to_dict() for a in result.manifest.alerts]
    assert "alerts: " in notify.one_line(alert["detail-type"], alert["detail"])


def test_an_unreachable_bus_never_fails_a_committed_run_and_the_sweep_sends_it_later(
    s3: Any, bucket: str, s3_registry: str, sink: tuple[str, str], caplog: Any
) -> None:
    bus, queue = sink
    version = put(s3, bucket, "incoming/late.csv", sample_csv(50))
    gone = service.Settings(event_bus=f"no-such-bus-{uuid.uuid4().hex[:6]}")
    result = service.score_object(ObjectVersion(bucket, "incoming/late.csv", version), gone)
    assert result is not None
    assert result.manifest.status == "ok"
    assert not result.already_done
    assert "run event not sent" in caplog.text
    assert markers(s3, bucket) == []
    assert ledger(bucket) == []  # committed and consistent, events or not
    assert sweep.sweep(bucket, service.Settings(event_bus=bus)) == 0
    [event] = received(queue)
    assert event["detail"]["run_id"] == result.manifest.run_id
    assert len(markers(s3, bucket)) == 1
    sweep.sweep(bucket, service.Settings(event_bus=bus))
    assert received(queue) == []


def test_with_events_off_nothing_is_sent_or_owed(
    s3: Any, bucket: str, s3_registry: str, sink: tuple[str, str]
) -> None:
    bus, queue = sink
    version = put(s3, bucket, "incoming/quiet.csv", sample_csv(30))
    result = service.score_object(
        ObjectVersion(bucket, "incoming/quiet.csv", version), service.Settings()
    )
    assert result is not None
    assert result.manifest.event_bus is None
    sweep.sweep(bucket, service.Settings(event_bus=bus))  # nothing owed: nothing re-sent
    assert received(queue) == []
    assert markers(s3, bucket) == []


@pytest.mark.slow
def test_killed_right_after_the_commit_the_sweep_sends_exactly_one_event(
    s3: Any, bucket: str, s3_registry: str, sink: tuple[str, str]
) -> None:
    bus, queue = sink
    version = put(s3, bucket, "incoming/crash/c.csv", sample_csv(200))
    env = {"DROPSCORE_EVENT_BUS": bus, "DROPSCORE_FAULT": "committed:manifest.json"}
    killed = run_event(bucket, "incoming/crash/c.csv", version, env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    [(_key, m)] = manifests(s3, bucket).items()
    assert m["status"] == "ok"
    assert m["event_bus"] == bus
    assert received(queue) == []
    assert markers(s3, bucket) == []
    # a redelivered trigger finds the run done: it does not emit (the sweep owns the repair)
    again = run_event(bucket, "incoming/crash/c.csv", version, env={"DROPSCORE_EVENT_BUS": bus})
    assert again.returncode == 0
    assert "already scored" in again.stderr
    assert received(queue) == []
    for _ in range(2):  # the sweep sends it once, and a second sweep finds nothing owed
        assert sweep.sweep(bucket, service.Settings(event_bus=bus)) == 0
    [event] = received(queue)
    assert (event["detail-type"], event["detail"]["run_id"]) == ("Run Completed", m["run_id"])
    assert len(markers(s3, bucket)) == 1
    assert ledger(bucket) == []
