"""Scheduled scoring jobs: ``jobs/<name>.json`` in the bucket, mirrored to an EventBridge
Scheduler schedule that starts the scorer task with ``jobs run NAME --at <scheduled time>``.

A job names a source (``s3://BUCKET/PREFIX[/glob]``, possibly another, read-only bucket), a
model reference, a schedule and a mode. ``new`` scores the matching objects the resolved model
version has not scored yet (their usual result folder); ``all`` scores every matching object
once per occurrence, into ``scored/_jobs/<job>/<occurrence>/…``. The occurrence id comes from the
schedule's tick, so the run ids and folders of an occurrence are deterministic and repeating it
is a no-op. Each occurrence ends with a summary ``jobs/<name>/occurrences/<id>.json`` and one
``Job Completed`` event (running an occurrence: scorer/jobrun.py).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import cache
from typing import Any

from scorer import layout, refs, schedules, service, storage
from scorer.errors import (
    BadArgument,
    DropscoreError,
    JobChanged,
    JobExists,
    JobNotFound,
    JobNotMirrored,
    ObjectMissing,
    StorageUnavailable,
    VersionExists,
)

log = logging.getLogger("dropscore.jobs")

PREFIX = "jobs/"
MODES = ("new", "all")
_GLOB_CHARS = set("*?[")


# --- values -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Source:
    """``s3://BUCKET/PREFIX[/glob]``: the objects under PREFIX whose path below it matches the
    glob (``*`` also crosses folders); only .csv and .csv.gz files are scored."""

    bucket: str
    prefix: str
    glob: str = "*"

    @classmethod
    def parse(cls, url: str) -> Source:
        if not url.startswith("s3://"):
            raise BadArgument(f"--source '{url}' is not s3://BUCKET/PREFIX[/glob]")
        bucket, key = storage.split_s3(url)
        head, _, last = key.rpartition("/")
        if _GLOB_CHARS & set(head):
            raise BadArgument(f"--source '{url}': only its last segment may be a glob")
        if _GLOB_CHARS & set(last):
            return cls(bucket, f"{head}/" if head else "", last)
        return cls(bucket, key if not key or key.endswith("/") else f"{key}/")

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" + ("" if self.glob == "*" else self.glob)

    def matches(self, key: str) -> bool:
        rest = key[len(self.prefix) :]
        return (
            key.startswith(self.prefix)
            and bool(rest)
            and not key.endswith("/")
            and fnmatch.fnmatchcase(rest, self.glob)
        )


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    source: str
    model: str
    schedule: str
    timezone: str = "UTC"
    mode: str = "new"
    created_at: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Job:
        raw = json.loads(text)
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})

    @property
    def parsed_schedule(self) -> schedules.Schedule:
        return schedules.parse(self.schedule, self.timezone)


def check(job: Job) -> Job:
    """Every field of a job, validated without I/O; the expression normalised."""
    refs.check_name(job.name, "job name")
    if job.mode not in MODES:
        raise BadArgument(f"--mode '{job.mode}' is not one of: {', '.join(MODES)}")
    sched = schedules.parse(job.schedule, job.timezone)
    Source.parse(job.source)
    refs.ModelRef.parse(job.model)
    return replace(job, schedule=sched.expression, timezone=sched.timezone)


def job_url(bucket: str, name: str) -> str:
    return f"s3://{bucket}/{PREFIX}{name}.json"


# --- the jobs in the bucket ---------------------------------------------------------------------
def read(bucket: str, name: str) -> tuple[Job, str]:
    """The job and the ETag it was read at (for a conditional replace or remove)."""
    refs.check_name(name, "job name")
    url = job_url(bucket, name)
    try:
        info = storage.head(url)
        return Job.from_json(storage.read_bytes(url)), info.etag
    except ObjectMissing as exc:
        raise JobNotFound(f"no job '{name}' in s3://{bucket}/{PREFIX}; see 'jobs list'") from exc


def list_jobs(bucket: str) -> list[Job]:
    out = []
    for obj in storage.list_objects(f"s3://{bucket}/{PREFIX}"):
        rest = storage.split_s3(obj.url)[1][len(PREFIX) :]
        if "/" in rest or not rest.endswith(".json"):
            continue  # occurrences/ and anything not a job
        try:
            out.append(Job.from_json(storage.read_bytes(obj.url)))
        except (ValueError, TypeError, ObjectMissing):
            log.warning("unreadable job skipped", extra={"object": obj.url})
    return sorted(out, key=lambda j: j.name)


def _put(url: str, body: bytes, *, if_match: str | None) -> str:
    """Create-only (``if_match`` None) or replace-if-unchanged; returns the new ETag."""
    bucket, key = storage.split_s3(url)
    cond = {"IfMatch": f'"{if_match}"'} if if_match else {"IfNoneMatch": "*"}
    with storage.map_storage_errors(url):
        resp = storage.s3_client().put_object(Bucket=bucket, Key=key, Body=body, **cond)
    return layout.etag(resp.get("ETag"))


def _delete(url: str, etag: str) -> None:
    bucket, key = storage.split_s3(url)
    with storage.map_storage_errors(url):
        storage.s3_client().delete_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"')


# --- EventBridge Scheduler mirror ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Mirror:
    """Where a job's schedule goes and what it starts (the stack's outputs)."""

    group: str
    role_arn: str
    cluster_arn: str
    task_definition: str  # the scorer family (ARN or family name)
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    container: str = "scorer"
    dead_letter_arn: str = ""


def schedule_target(job: Job, bucket: str, mirror: Mirror) -> dict[str, Any]:
    """The Scheduler target: RunTask of the scorer family with ``jobs run NAME --at <tick>``
    (Scheduler fills in its scheduled time, which makes the occurrence id deterministic)."""
    command = ["jobs", "run", job.name, "--bucket", bucket]
    command += ["--at", "<aws.scheduler.scheduled-time>"]
    target: dict[str, Any] = {
        "Arn": mirror.cluster_arn,
        "RoleArn": mirror.role_arn,
        "EcsParameters": {
            "TaskDefinitionArn": mirror.task_definition,
            "TaskCount": 1,
            "LaunchType": "FARGATE",
            "NetworkConfiguration": {
                "awsvpcConfiguration": {
                    "Subnets": list(mirror.subnets),
                    "SecurityGroups": list(mirror.security_groups),
                    "AssignPublicIp": "DISABLED",
                }
            },
        },
        "Input": json.dumps(
            {"containerOverrides": [{"name": mirror.container, "command": command}]}
        ),
        "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
    }
    if mirror.dead_letter_arn:
        target["DeadLetterConfig"] = {"Arn": mirror.dead_letter_arn}
    return target


@cache
def _client(name: str) -> Any:
    """A boto3 client like storage.s3_client (AWS_ENDPOINT_URL honoured, retries)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    config = Config(retries={"total_max_attempts": 5, "mode": "adaptive"}, connect_timeout=5)
    return session.client(name, region_name=session.region_name or "us-east-1", config=config)


def _scheduler_call(what: str, call: Callable[[], Any]) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise JobNotMirrored(
            f"EventBridge Scheduler refused to {what}: {err.get('Code')} {err.get('Message')}"
        ) from exc
    except BotoCoreError as exc:
        raise JobNotMirrored(f"cannot reach EventBridge Scheduler to {what}: {exc}") from exc


def _mirror_put(job: Job, bucket: str, mirror: Mirror, *, update: bool) -> None:
    sched = _client("scheduler")
    kwargs: dict[str, Any] = {
        "Name": job.name,
        "GroupName": mirror.group,
        "ScheduleExpression": job.schedule,
        "ScheduleExpressionTimezone": job.timezone,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Description": f"dropscore job {job.name}: {job.mode} {job.source} with {job.model}",
        "Target": schedule_target(job, bucket, mirror),
    }
    rate = job.parsed_schedule
    if rate.rate_s:  # Scheduler counts a rate from its start: start it on an aligned tick, so
        # AWS fires when the local scheduler would and "next" on the Schedules page is right
        kwargs["StartDate"] = rate.next(dt.datetime.now(dt.UTC))
    call = sched.update_schedule if update else sched.create_schedule
    what = f"{'update' if update else 'create'} schedule {job.name}"
    _scheduler_call(what, lambda: call(**kwargs))


def _mirror_delete(name: str, mirror: Mirror) -> None:
    from botocore.exceptions import ClientError

    try:
        _client("scheduler").delete_schedule(Name=name, GroupName=mirror.group)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return  # never mirrored (added without a mirror) or already gone
        raise JobNotMirrored(
            f"EventBridge Scheduler refused to delete schedule {name}: "
            f"{exc.response.get('Error', {}).get('Code')}; the job was kept, try again"
        ) from exc


# --- add / remove -------------------------------------------------------------------------------
def add(
    bucket: str,
    job: Job,
    settings: service.Settings,
    mirror: Mirror | None,
    *,
    replace_existing: bool = False,
    now: dt.datetime | None = None,
) -> Job:
    """Validate, claim ``jobs/NAME.json`` (create-only, or If-Match on --replace), then mirror.

    The file is written first because its create-only write is what claims the name between two
    admins; if the schedule then cannot be written, the file is put back as it was (removed, or
    the previous job restored) and JobNotMirrored says so — never a job without its schedule."""
    job = check(job)
    source = Source.parse(job.source)
    settings.registry_for(bucket).resolve(refs.ModelRef.parse(job.model))  # ModelNotFound
    _check_source(source)
    job = replace(job, created_at=(now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"))
    url = job_url(bucket, job.name)
    previous: tuple[Job, str] | None = None
    if replace_existing:
        try:
            previous = read(bucket, job.name)
        except JobNotFound:
            previous = None
    try:
        etag = _put(url, job.to_json().encode(), if_match=previous[1] if previous else None)
    except VersionExists as exc:
        if previous is not None:
            raise JobChanged(
                f"job '{job.name}' was changed by someone else meanwhile; nothing was written. "
                "Check 'jobs list' and run the command again"
            ) from exc
        raise JobExists(
            f"job '{job.name}' already exists; pass --replace to change it, or "
            f"'jobs remove {job.name}' first"
        ) from exc
    except ObjectMissing as exc:  # If-Match on a job removed meanwhile
        raise JobChanged(f"job '{job.name}' was removed meanwhile; nothing was written") from exc
    if mirror is None:
        return job
    try:
        _mirror_put(job, bucket, mirror, update=previous is not None and _has_schedule(job, mirror))
    except JobNotMirrored as exc:
        raise JobNotMirrored(f"{exc.message}; {_rollback(url, etag, previous)}") from exc
    return job


def _has_schedule(job: Job, mirror: Mirror) -> bool:
    from botocore.exceptions import ClientError

    try:
        _client("scheduler").get_schedule(Name=job.name, GroupName=mirror.group)
    except ClientError:
        return False
    return True


def _rollback(url: str, etag: str, previous: tuple[Job, str] | None) -> str:
    try:
        if previous is None:
            _delete(url, etag)
            return "the job was not added"
        _put(url, previous[0].to_json().encode(), if_match=etag)
        return "the job was left as it was before"
    except DropscoreError as exc:
        return f"and undoing the write failed too ({exc.message}): fix it with 'jobs remove'"


def remove(bucket: str, name: str, mirror: Mirror | None) -> Job:
    """Delete the schedule first (nothing fires for a removed job), then the file If-Match."""
    job, etag = read(bucket, name)
    if mirror is not None:
        _mirror_delete(name, mirror)
    try:
        _delete(job_url(bucket, name), etag)
    except VersionExists as exc:
        raise JobChanged(
            f"job '{name}' was changed by someone else meanwhile and was not removed; its "
            "schedule was deleted: run 'jobs add --replace' or 'jobs remove' again"
        ) from exc
    return job


def _check_source(source: Source) -> None:
    """The source bucket answers a listing (reachable, readable with these credentials)."""
    url = f"s3://{source.bucket}/{source.prefix}"
    try:
        with storage.map_storage_errors(url):
            storage.s3_client().list_objects_v2(
                Bucket=source.bucket, Prefix=source.prefix, MaxKeys=1
            )
    except ObjectMissing as exc:
        raise StorageUnavailable(f"source bucket '{source.bucket}' does not exist") from exc


def mirror_from(args: Any) -> Mirror | None:
    """The mirror the CLI was configured with; None when no Scheduler role is given."""
    role = str(getattr(args, "scheduler_role_arn", "") or "").strip()
    if not role:
        return None
    needed = (("--ecs-cluster", args.ecs_cluster), ("--task-definition", args.task_definition))
    missing = [flag for flag, value in needed if not str(value or "").strip()]
    if missing:
        raise BadArgument(
            f"--scheduler-role-arn is set, so the schedule needs {' and '.join(missing)} too"
        )
    return Mirror(
        group=str(args.schedule_group),
        role_arn=role,
        cluster_arn=str(args.ecs_cluster),
        task_definition=str(args.task_definition),
        subnets=_split(args.subnets),
        security_groups=_split(args.security_groups),
        dead_letter_arn=str(args.dead_letter_arn or ""),
    )


def _split(text: object) -> tuple[str, ...]:
    return tuple(s.strip() for s in str(text or "").split(",") if s.strip())
