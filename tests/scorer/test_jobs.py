"""Scheduled jobs over a real moto server: jobs/NAME.json with conditional writes, the
EventBridge Scheduler mirror and its rollback, occurrences of 'new' and 'all' jobs, the
occurrence summary and the Job Completed event (the local scheduler loop: tests/devstack)."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

import boto3
import pytest

from scorer import catalog, cliutil, jobrun, jobs, service
from scorer.__main__ import main
from scorer.check import check
from scorer.layout import ObjectVersion
from tests.scorer.test_s3_runs import manifests, put_sample
from training.sample_data import generate

UTC = dt.UTC
ROLE = "arn:aws:iam::123456789012:role/dropscore-scheduler-jobs"
CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/dropscore"
TASK = "arn:aws:ecs:us-east-1:123456789012:task-definition/dropscore-scorer"


@pytest.fixture(autouse=True)
def _fresh_clients(moto_endpoint: str) -> None:
    jobs._client.cache_clear()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cliutil.run(main, list(args))
    return code, capsys.readouterr().err


def keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


@pytest.fixture
def group(moto_endpoint: str) -> str:
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    boto3.client("scheduler").create_schedule_group(Name=name)
    return name


def mirror_args(group: str) -> list[str]:
    return [
        "--schedule-group",
        group,
        "--scheduler-role-arn",
        ROLE,
        "--ecs-cluster",
        CLUSTER,
        "--task-definition",
        TASK,
        "--subnets",
        "subnet-1,subnet-2",
        "--security-groups",
        "sg-1",
    ]


def test_add_mirrors_the_schedule_list_shows_it_and_remove_deletes_both(
    capsys: pytest.CaptureFixture[str], s3: Any, bucket: str, s3_registry: str, group: str
) -> None:
    code, err = cli(
        capsys,
        *("jobs", "add", "nightly", "--bucket", bucket, "--source", f"s3://{bucket}/incoming/"),
        *("--model", "claims:production", "--schedule", "cron(0 2 * * ? *)"),
        *("--timezone", "Europe/Paris", *mirror_args(group)),
    )
    assert code == 0, err
    assert "at 02:00 Europe/Paris" in err
    stored = json.loads(s3.get_object(Bucket=bucket, Key="jobs/nightly.json")["Body"].read())
    assert stored["schedule"] == "cron(0 2 * * ? *)"
    assert stored["mode"] == "new"
    sched = boto3.client("scheduler").get_schedule(Name="nightly", GroupName=group)
    assert sched["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert sched["ScheduleExpressionTimezone"] == "Europe/Paris"
    target = sched["Target"]
    assert (target["Arn"], target["RoleArn"]) == (CLUSTER, ROLE)
    assert target["EcsParameters"]["TaskDefinitionArn"] == TASK
    override = json.loads(target["Input"])["containerOverrides"][0]
    assert override["name"] == "scorer"
    assert override["command"] == [
        *("jobs", "run", "nightly", "--bucket", bucket),
        *("--at", "<aws.scheduler.scheduled-time>"),
    ]

    code, err = cli(
        capsys,
        *("jobs", "add", "nightly", "--bucket", bucket, "--source", f"s3://{bucket}/incoming/"),
        *("--model", "claims", "--schedule", "rate(1 hour)", *mirror_args(group)),
    )
    assert code == 2
    assert "JOB_EXISTS" in err
    assert "--replace" in err
    code, err = cli(
        capsys,
        *("jobs", "add", "nightly", "--bucket", bucket, "--source", f"s3://{bucket}/incoming/"),
        *("--model", "claims", "--schedule", "rate(1 hour)", "--replace", *mirror_args(group)),
    )
    assert code == 0, err
    sched = boto3.client("scheduler").get_schedule(Name="nightly", GroupName=group)
    assert sched["ScheduleExpression"] == "rate(1 hour)"
    start = sched["StartDate"].astimezone(UTC)
    assert (start.minute, start.second) == (0, 0)  # a rate starts on an aligned tick
    assert start > dt.datetime.now(UTC)

    code = cliutil.run(main, ["jobs", "list", "--bucket", bucket])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("nightly\tnew\trate(1 hour)\tUTC\tclaims\t")

    code, err = cli(capsys, "jobs", "remove", "nightly", "--bucket", bucket, *mirror_args(group))
    assert code == 0, err
    assert keys(s3, bucket, "jobs/") == []
    listed = boto3.client("scheduler").list_schedules(GroupName=group)["Schedules"]
    assert listed == []
    code, err = cli(capsys, "jobs", "remove", "nightly", "--bucket", bucket)
    assert code == 2
    assert "JOB_NOT_FOUND" in err


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["../x", "--schedule", "rate(1 hour)"], "BAD_ARGUMENT"),
        (["ok", "--schedule", "cron(0 2 * * * *)"], "BAD_ARGUMENT"),
        (["ok", "--schedule", "rate(1 hour)", "--timezone", "Paris"], "BAD_ARGUMENT"),
        (["ok", "--schedule", "rate(1 hour)", "--model", "nosuchmodel"], "MODEL_NOT_FOUND"),
        (["ok", "--schedule", "rate(1 hour)", "--source", "s3://no-such-bucket-x/in/"], "STORAGE"),
        (["ok", "--schedule", "rate(1 hour)", "--source", "/local/path"], "BAD_ARGUMENT"),
    ],
    ids=[
        "a name with a path in it",
        "a cron with no '?' day",
        "an unknown time zone",
        "a model the registry lacks",
        "a source bucket that does not exist",
        "a source that is not s3",
    ],
)
def test_add_refuses_bad_input_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
    s3: Any,
    bucket: str,
    s3_registry: str,
    args: list[str],
    code: str,
) -> None:
    base = {"--source": f"s3://{bucket}/incoming/", "--model": "claims"}
    for flag, value in base.items():
        if flag not in args:
            args = [*args, flag, value]
    exit_code, err = cli(capsys, "jobs", "add", *args, "--bucket", bucket)
    assert exit_code != 0
    assert f"[{code}" in err, err
    assert "Traceback" not in err
    assert keys(s3, bucket, "jobs/") == []


def test_a_schedule_scheduler_refuses_leaves_no_half_added_job(
    capsys: pytest.CaptureFixture[str], s3: Any, bucket: str, s3_registry: str, group: str
) -> None:
    add = ["jobs", "add", "j", "--bucket", bucket, "--source", f"s3://{bucket}/incoming/"]
    add += ["--model", "claims", "--schedule", "rate(1 hour)"]
    code, err = cli(capsys, *add, *mirror_args("no-such-group"))
    assert code == 1
    assert "JOB_NOT_MIRRORED" in err
    assert "the job was not added" in err
    assert keys(s3, bucket, "jobs/") == []
    # a replace the Scheduler refuses leaves the previous job exactly as it was
    assert cli(capsys, *add, *mirror_args(group))[0] == 0
    before = s3.get_object(Bucket=bucket, Key="jobs/j.json")["Body"].read()
    swapped = [a if a != "rate(1 hour)" else "rate(5 minutes)" for a in add]
    code, err = cli(capsys, *swapped, "--replace", *mirror_args("no-such-group"))
    assert code == 1
    assert "left as it was before" in err
    assert s3.get_object(Bucket=bucket, Key="jobs/j.json")["Body"].read() == before


def test_a_job_changed_by_another_admin_meanwhile_is_not_removed(
    capsys: pytest.CaptureFixture[str],
    s3: Any,
    bucket: str,
    s3_registry: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add = ["jobs", "add", "j", "--bucket", bucket, "--source", f"s3://{bucket}/incoming/"]
    add += ["--model", "claims", "--schedule", "rate(1 hour)"]
    assert cli(capsys, *add)[0] == 0
    real = jobs._mirror_delete

    def other_admin_replaces_it(name: str, mirror: Any) -> None:
        # between this remove's read and its delete, someone else changes the job
        s3.put_object(Bucket=bucket, Key="jobs/j.json", Body=b'{"name": "j", "changed": 1}')
        real(name, mirror)

    monkeypatch.setattr(jobs, "_mirror_delete", other_admin_replaces_it)
    monkeypatch.setattr(jobs, "mirror_from", lambda _args: jobs.Mirror("g", "r", "c", "t"))
    code, err = cli(capsys, "jobs", "remove", "j", "--bucket", bucket)
    assert code == 1
    assert "JOB_CHANGED" in err
    assert b"changed" in s3.get_object(Bucket=bucket, Key="jobs/j.json")["Body"].read()


def add_job(bucket: str, name: str, source: str, mode: str, schedule: str = "rate(1 hour)") -> None:
    spec = jobs.Job(name, source, "claims:production", schedule, mode=mode)
    jobs.add(bucket, spec, service.Settings(), None)


def test_new_scores_only_what_the_model_version_has_not_scored(
    capsys: pytest.CaptureFixture[str], s3: Any, bucket: str, s3_registry: str
) -> None:
    put_sample(s3, bucket, "incoming/daily/a.csv", rows=40, seed=1)
    put_sample(s3, bucket, "incoming/daily/b.csv", rows=40, seed=2)
    put_sample(s3, bucket, "incoming/other/c.csv", rows=40, seed=3)
    s3.put_object(Bucket=bucket, Key="incoming/daily/notes.txt", Body=b"not data")
    # a.csv was scored by its event already
    ref = ObjectVersion(bucket, "incoming/daily/a.csv")
    head = s3.head_object(Bucket=bucket, Key=ref.key)
    ref = ObjectVersion(bucket, ref.key, head["VersionId"], head["ETag"].strip('"'))
    service.score_object(ref, service.Settings())
    add_job(bucket, "daily", f"s3://{bucket}/incoming/daily/*.csv", "new")

    code, err = cli(capsys, "jobs", "run", "daily", "--bucket", bucket)
    assert code == 0, err
    assert "1 ok" in err
    assert "1 already scored" in err
    found = manifests(s3, bucket)
    assert sorted(k.split("/")[1:3] for k in found) == [["daily", "a"], ["daily", "b"]]
    [occ] = keys(s3, bucket, "jobs/daily/occurrences/")
    summary = json.loads(s3.get_object(Bucket=bucket, Key=occ)["Body"].read())
    assert summary["objects_matched"] == 2
    assert summary["status"] == "complete"
    assert summary["model"] == "claims@1"
    assert summary["totals"]["rows_scored"] > 0
    assert {r["key"]: r["status"] for r in summary["runs"]} == {
        "incoming/daily/a.csv": "skipped",
        "incoming/daily/b.csv": "ok",
    }
    # the checker agrees: no CSV under daily/ is pending (notes.txt is not the job's)
    assert not [
        v
        for v in check(bucket, service.Settings())
        if "daily/" in v.subject and ".csv" in v.subject
    ]


def test_all_rescores_once_per_occurrence_and_a_repeat_is_a_no_op(
    capsys: pytest.CaptureFixture[str], s3: Any, bucket: str, s3_registry: str
) -> None:
    source = f"src-{uuid.uuid4().hex[:8]}"  # another bucket, as a read-only grant would be
    s3.create_bucket(Bucket=source)  # unversioned: run ids come from ETags
    for key, seed in (("exports/x.csv", 5), ("exports/sub/y.csv", 6)):
        body = generate(30, seed).drop(columns=["charges"]).to_csv(index=False).encode()
        s3.put_object(Bucket=source, Key=key, Body=body)
    add_job(bucket, "monthly", f"s3://{source}/exports/", "all", "cron(0 2 1 * ? *)")
    run = ["jobs", "run", "monthly", "--bucket", bucket, "--at"]

    code, err = cli(capsys, *run, "2026-02-01T02:00:00Z")
    assert code == 0, err
    assert "2 ok" in err
    first = run_files(s3, bucket)
    assert len(first) == 4
    assert all(
        k.startswith(f"scored/_jobs/monthly/20260201T0200Z/_sources/{source}/exports/")
        for k in first
    )
    # the same occurrence again (Scheduler retried, a little later in the same tick)
    code, err = cli(capsys, *run, "2026-02-01T02:00:40Z")
    assert code == 0
    assert err.startswith("already ran"), err
    assert run_files(s3, bucket) == first
    # the next occurrence scores everything again, in its own folders
    code, err = cli(capsys, *run, "2026-03-01T02:00:00Z")
    assert code == 0, err
    assert "2 ok" in err
    second = [k for k in run_files(s3, bucket) if k not in first]
    assert len(second) == 4
    assert all("/20260301T0200Z/" in k for k in second)
    assert keys(s3, bucket, "jobs/monthly/occurrences/") == [
        "jobs/monthly/occurrences/20260201T0200Z.json",
        "jobs/monthly/occurrences/20260301T0200Z.json",
    ]
    # the checker and the UI's run listing understand these folders
    assert check(bucket, service.Settings()) == []
    listed = catalog.list_runs(bucket)
    assert len(listed) == 4
    assert {e.path.rel.split("/")[2] for e in listed} == {"20260201T0200Z", "20260301T0200Z"}


def run_files(s3: Any, bucket: str) -> list[str]:
    """Manifests and outputs under scored/ (a run's events.json marker depends on whether the
    session's default bus took its events: see ``own_bus``)."""
    return [k for k in keys(s3, bucket, "scored/") if not k.endswith("/events.json")]


def own_bus(ev: Any) -> str:
    """A bus of the test's own: the session's default bus also carries the rules of the stacks
    the infra tests deploy into the same moto server, whose targets moto may fail to reach."""
    name = f"b-{uuid.uuid4().hex[:8]}"
    ev.create_event_bus(Name=name)
    return name


def drain(sqs: Any, queue: str, expect: int, settle_s: float = 3.0) -> list[dict[str, Any]]:
    """Every message on ``queue``: waits (up to 30 s) for ``expect`` of them, then ``settle_s``
    more for any extra one (a rule delivers a moment after the put)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    quiet_until = None
    while time.monotonic() < deadline:
        msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        got += [json.loads(m["Body"]) for m in msgs]
        for m in msgs:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        if len(got) >= expect and quiet_until is None:
            quiet_until = time.monotonic() + settle_s
        if quiet_until is not None and time.monotonic() >= quiet_until:
            break
    return got


def test_one_job_completed_event_per_occurrence(
    capsys: pytest.CaptureFixture[str], s3: Any, bucket: str, s3_registry: str
) -> None:
    sqs, ev = boto3.client("sqs"), boto3.client("events")
    queue = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule, bus = f"r-{uuid.uuid4().hex[:8]}", own_bus(ev)
    pattern = {"source": ["dropscore"], "detail": {"job": ["ev"]}}
    ev.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern))
    ev.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    put_sample(s3, bucket, "incoming/e/a.csv", rows=20, seed=7)
    add_job(bucket, "ev", f"s3://{bucket}/incoming/e/", "all")
    for at in ("2026-05-01T10:00:00Z", "2026-05-01T10:30:00Z", "2026-05-01T11:00:00Z"):
        run = ("jobs", "run", "ev", "--bucket", bucket, "--at", at, "--event-bus", bus)
        assert cli(capsys, *run)[0] == 0
    got = drain(sqs, queue, expect=2)
    assert sorted(e["detail"]["occurrence"] for e in got) == ["20260501T1000Z", "20260501T1100Z"]
    assert {e["detail-type"] for e in got} == {"Job Completed"}
    assert got[0]["detail"]["totals"]["ok"] == 1


# --- pure: sources and result folders ---------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "key", "matches"),
    [
        ("s3://b/exports/daily/", "exports/daily/a.csv", True),
        ("s3://b/exports/daily", "exports/daily/sub/a.csv", True),
        ("s3://b/exports/daily", "exports/daily-old/a.csv", False),
        ("s3://b/exports/*.csv", "exports/sub/a.csv", True),
        ("s3://b/exports/*.csv", "exports/a.csv.gz", False),
        ("s3://b/exports/2026-??.csv", "exports/2026-01.csv", True),
        ("s3://b/exports/", "exports/folder/", False),
    ],
    ids=[
        "a prefix with a slash",
        "a prefix without one is still a folder",
        "a look-alike folder is not matched",
        "a glob crosses folders",
        "a glob means what it says",
        "? matches one character",
        "a folder marker is not a file",
    ],
)
def test_a_source_matches_what_its_url_says(url: str, key: str, matches: bool) -> None:
    assert jobs.Source.parse(url).matches(key) is matches


def test_a_glob_only_in_the_last_segment() -> None:
    with pytest.raises(jobs.BadArgument, match="last segment"):
        jobs.Source.parse("s3://b/*/daily/a.csv")


def test_job_result_folders_never_meet_an_inputs_own() -> None:
    from scorer.layout import result_folder

    # an input of the bucket under incoming/: its usual folder, in a job or not
    assert result_folder("incoming/a/b.csv", bucket="home", home="home") == "a/b"
    # any other source: under _sources/<bucket>/
    assert result_folder("exports/a.csv", bucket="other", home="home") == "_sources/other/exports/a"
    assert result_folder("exports/a.csv", bucket="home", home="home") == "_sources/home/exports/a"
    # an occurrence of an 'all' job: under _jobs/<job>/<occurrence>/
    assert (
        result_folder("incoming/a/b.csv", bucket="home", home="home", occurrence="m/20260101T0200Z")
        == "_jobs/m/20260101T0200Z/a/b"
    )
    # an input whose own name starts with a reserved folder is hashed, never mixed into them
    for squat in ("incoming/_jobs/m/20260101T0200Z/a/b.csv", "incoming/_sources/other/a.csv"):
        assert result_folder(squat).startswith("_hashed/")
    long = "incoming/" + "x" * 1000 + ".csv"
    assert result_folder(long, occurrence="m/1").startswith("_jobs/m/1/_hashed/")


def test_a_jobs_runs_announce_themselves_like_any_run(
    capsys: pytest.CaptureFixture[str], s3: Any, bucket: str, s3_registry: str
) -> None:
    sqs, ev = boto3.client("sqs"), boto3.client("events")
    queue = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule, bus = f"r-{uuid.uuid4().hex[:8]}", own_bus(ev)
    ev.put_rule(
        Name=rule,
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["dropscore"], "detail-type": ["Run Completed"]}),
    )
    ev.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    put_sample(s3, bucket, "incoming/rj/a.csv", rows=20, seed=8)
    add_job(bucket, "rj", f"s3://{bucket}/incoming/rj/", "all")
    for at in ("2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z", "2026-05-01T11:10:00Z"):
        run = ("jobs", "run", "rj", "--bucket", bucket, "--at", at, "--event-bus", bus)
        assert cli(capsys, *run)[0] == 0
    mine = [e for e in drain(sqs, queue, expect=2) if e["detail"]["input"]["bucket"] == bucket]
    # two occurrences (11:10 repeats 11:00): two runs, each announced once, each with its marker
    assert len(mine) == 2
    assert {e["detail"]["input"]["key"] for e in mine} == {"incoming/rj/a.csv"}
    assert len([k for k in keys(s3, bucket, "scored/_jobs/rj/") if k.endswith("events.json")]) == 2


def test_a_jobs_cost_this_month_adds_up_its_occurrences(s3: Any, bucket: str) -> None:
    def put(occ: str, started: str, usd: float) -> None:
        body = {"occurrence": occ, "started_at": started, "totals": {"cost_usd": usd}}
        s3.put_object(
            Bucket=bucket, Key=f"jobs/m/occurrences/{occ}.json", Body=json.dumps(body).encode()
        )
        time.sleep(1.1)  # listings order occurrences by when they were written (whole seconds)

    put("20261031T2300Z", "2026-10-31T23:00:05+00:00", 5.0)  # last month: not counted
    put("20261101T0000Z", "2026-11-01T00:00:04+00:00", 0.25)
    put("20261102T0000Z", "2026-11-02T00:00:04+00:00", 0.5)
    assert jobrun.month_cost(bucket, "m", "2026-11") == (0.75, 2, False)
    assert jobrun.month_cost(bucket, "m", "2026-10") == (5.0, 1, False)
    assert jobrun.month_cost(bucket, "nobody", "2026-11") == (0.0, 0, False)


def test_a_jobs_big_file_is_sharded_on_the_cluster_with_the_bytes_of_one_process(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    s3: Any,
    bucket: str,
    s3_registry: str,
) -> None:
    """`jobs run` takes --cluster/--shard-over-mb like score, event and sweep (flags or their
    DROPSCORE_* variables): a file above the threshold is scored in shards, same bytes."""
    put_sample(s3, bucket, "incoming/scaled/a.csv", rows=400, seed=8)  # ~20 KB
    add_job(bucket, "scaled", f"s3://{bucket}/incoming/scaled/", "all", "cron(0 2 * * ? *)")
    run = ["jobs", "run", "scaled", "--bucket", bucket, "--event-bus", "off", "--at"]

    code, err = cli(capsys, *run, "2026-02-01T02:00:00Z", "--cluster", "none")
    assert code == 0, err
    monkeypatch.setenv("DROPSCORE_SHARD_OVER_MB", "0.004")  # 4 KB shards, from the environment
    code, err = cli(capsys, *run, "2026-03-01T02:00:00Z", "--cluster", "local:1")
    assert code == 0, err

    found = {k.split("/")[3]: m for k, m in manifests(s3, bucket).items()}
    one, sharded = found["20260201T0200Z"], found["20260301T0200Z"]
    assert "shards" not in one
    assert sharded["shards"] > 1
    for name in ("predictions", "rejected"):
        if name not in one["outputs"]:
            assert name not in sharded["outputs"]
            continue
        a, b = (
            s3.get_object(Bucket=bucket, Key=m["outputs"][name]["key"])["Body"].read()
            for m in (one, sharded)
        )
        assert a == b, name
    assert sharded["rows_scored"] == one["rows_scored"] == 400


def test_jobs_run_refuses_cluster_settings_that_cannot_work(
    capsys: pytest.CaptureFixture[str], bucket: str
) -> None:
    code, err = cli(capsys, "jobs", "run", "any", "--bucket", bucket, "--shard-over-mb", "-1")
    assert code == 2
    assert "error [BAD_ARGUMENT]: --shard-over-mb must be a positive number of MB" in err
