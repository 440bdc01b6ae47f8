"""Scheduled scoring jobs: ``jobs/<name>.json`` in the bucket, mirrored to an EventBridge
Scheduler schedule that starts the scorer task with ``jobs run NAME --at <scheduled time>``.

A job names a source (``s3://BUCKET/PREFIX[/glob]``, possibly another, read-only bucket), a
model reference, a schedule and a mode. ``new`` scores the matching objects the resolved model
version has not scored yet (their usual result folder); ``all`` scores every matching object
once per occurrence, into ``scored/_jobs/<job>/<occurrence>/…``. The occurrence id comes from the
schedule's tick, so the run ids and folders of an occurrence are deterministic and repeating it
is a no-op. Each occurrence ends with a summary ``jobs/<name>/occurrences/<id>.json`` and one
``Job Completed`` event.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from typing import Any

from scorer import layout, notify, refs, runs, schedules, service, storage
from scorer.errors import (
    BadArgument,
    DropscoreError,
    ObjectMissing,
    StorageUnavailable,
    VersionExists,
)
from scorer.layout import ObjectVersion, RunId

log = logging.getLogger("dropscore.jobs")

PREFIX = "jobs/"
MODES = ("new", "all")
_GLOB_CHARS = set("*?[")


class JobNotFound(DropscoreError):
    """No job of that name in the bucket (removed, or never added)."""

    code = "JOB_NOT_FOUND"
    exit_code = 2


class JobExists(DropscoreError):
    """``jobs add`` of a name that is taken, without --replace."""

    code = "JOB_EXISTS"
    exit_code = 2


class JobChanged(DropscoreError):
    """The job was changed or removed by someone else between reading and writing it."""

    code = "JOB_CHANGED"


class JobNotMirrored(DropscoreError):
    """EventBridge Scheduler refused the job's schedule; the job was rolled back."""

    code = "JOB_NOT_MIRRORED"


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


def occurrence_url(bucket: str, name: str, occurrence: str) -> str:
    return f"s3://{bucket}/{PREFIX}{name}/occurrences/{occurrence}.json"


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
    return str(resp.get("ETag", "")).strip('"')


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


# --- one occurrence -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Occurrence:
    """Which occurrence a ``jobs run`` is: a schedule tick, or a manual run of its own."""

    id: str
    scheduled_at: str | None  # the tick (UTC ISO) or None for a manual run


def occurrence_for(job: Job, at: dt.datetime | None, now: dt.datetime) -> Occurrence:
    if at is None:
        return Occurrence(schedules.manual_id(now), None)
    tick = job.parsed_schedule.latest(at)
    return Occurrence(schedules.occurrence_id(tick), tick.isoformat())


@dataclass(slots=True)
class RunLine:
    key: str
    status: str  # ok | partial | failed | skipped (already scored) | error (retryable)
    run_id: str = ""
    folder: str = ""
    rows_in: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    cost_usd: float | None = None  # the run's estimated cost (None: already scored, or local)


def summarise(
    job: Job,
    occ: Occurrence,
    model_ref: str,
    lines: list[RunLine],
    matched: int,
    not_csv: int,
    started: str,
    finished: str,
) -> dict[str, Any]:
    """The occurrence's summary (pure)."""
    count = {s: sum(1 for r in lines if r.status == s) for s in ("ok", "partial", "failed")}
    skipped = sum(1 for r in lines if r.status == "skipped")
    errors = sum(1 for r in lines if r.status == "error")
    alerts = [{"key": r.key, **a} for r in lines for a in r.alerts]
    return {
        "job": job.name,
        "occurrence": occ.id,
        "scheduled_at": occ.scheduled_at,
        "started_at": started,
        "finished_at": finished,
        "status": "incomplete" if errors else "complete",
        "mode": job.mode,
        "source": job.source,
        "model": model_ref,
        "objects_matched": matched,
        "not_csv": not_csv,
        "runs": [asdict(r) for r in lines],
        "totals": {
            **count,
            "skipped": skipped,
            "errors": errors,
            "rows_in": sum(r.rows_in for r in lines),
            "rows_scored": sum(r.rows_scored for r in lines),
            "rows_rejected": sum(r.rows_rejected for r in lines),
            "alerts": len(alerts),
            # the occurrence's runs' estimated cost (runs without a figure count nothing)
            "cost_usd": round(sum(r.cost_usd for r in lines if r.cost_usd is not None), 6),
        },
        "alerts": alerts,
    }


def read_occurrence(bucket: str, name: str, occurrence: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(storage.read_bytes(occurrence_url(bucket, name, occurrence))))
    except ObjectMissing:
        return None


MONTH_COST_LIMIT = 500  # occurrence summaries read to add up a job's month


def month_cost(bucket: str, name: str, month: str) -> tuple[float, int, bool]:
    """A job's estimated cost in ``month`` (``YYYY-MM``, UTC, by occurrence start): (USD,
    occurrences counted, whether only the latest MONTH_COST_LIMIT of them were read)."""
    usd, counted = 0.0, 0
    for occ in reversed(occurrences(bucket, name)):  # newest first
        if counted == MONTH_COST_LIMIT:
            return round(usd, 6), counted, True
        summary = read_occurrence(bucket, name, occ)
        started = str((summary or {}).get("started_at", ""))[:7]
        if started < month:
            break  # older occurrences are all before the month
        if started == month:
            usd += float(summary.get("totals", {}).get("cost_usd") or 0.0)  # type: ignore[union-attr]
            counted += 1
    return round(usd, 6), counted, False


def occurrences(bucket: str, name: str) -> list[str]:
    """Occurrence ids of a job with a summary, oldest first by when it was written."""
    prefix = f"s3://{bucket}/{PREFIX}{name}/occurrences/"
    found = [
        (o.last_modified, o.url[len(prefix) : -len(".json")])
        for o in storage.list_objects(prefix)
        if o.url.endswith(".json")
    ]
    return [occ for _, occ in sorted(found)]


def run(
    bucket: str,
    name: str,
    settings: service.Settings,
    *,
    at: dt.datetime | None = None,
    now: dt.datetime | None = None,
    concurrency: int = 2,
) -> tuple[dict[str, Any], bool]:
    """Run one occurrence; returns (its summary, whether it had already run: a no-op)."""
    job, _ = read(bucket, name)
    now = now or dt.datetime.now(dt.UTC)
    occ = occurrence_for(job, at, now)
    done = read_occurrence(bucket, name, occ.id)
    if done is not None and done.get("status") == "complete":
        return done, True
    source = Source.parse(job.source)
    registry = settings.registry_for(bucket)
    card = registry.resolve(refs.ModelRef.parse(job.model))
    model = registry.load(card, engine=settings.engine)
    started = dt.datetime.now(dt.UTC).isoformat()
    matched = [o for o in storage.list_objects(f"s3://{source.bucket}/{source.prefix}")]
    keys = [storage.split_s3(o.url)[1] for o in matched]
    keys = [k for k in keys if source.matches(k)]
    csvs = [k for k in keys if k.lower().endswith(layout.SUFFIXES)]
    where = f"{job.name}/{occ.id}" if job.mode == "all" else None

    def one(key: str) -> RunLine:
        try:
            return _score_one(source.bucket, key, bucket, where, model, settings)
        except DropscoreError as exc:
            log.warning("run failed; retry the occurrence", extra={"key": key, "code": exc.code})
            return RunLine(key, "error", error=f"{exc.code}: {exc.message}")

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        lines = list(pool.map(one, csvs))
    summary = summarise(
        job,
        occ,
        card.ref,
        lines,
        len(keys),
        len(keys) - len(csvs),
        started,
        dt.datetime.now(dt.UTC).isoformat(),
    )
    # written after the runs: a retry of an incomplete occurrence overwrites it, a complete one
    # is never run again
    storage.write_bytes(
        occurrence_url(bucket, name, occ.id), (json.dumps(summary, indent=2) + "\n").encode()
    )
    if settings.event_bus is None:  # events off
        return summary, False
    try:
        notify.put_event("Job Completed", _event_detail(summary, bucket), settings.event_bus)
    except DropscoreError as exc:  # the runs are committed either way: said, not hidden
        log.warning("Job Completed event not sent", extra={"error": exc.message})
        summary["event_error"] = exc.message
    return summary, False


def _score_one(
    src_bucket: str,
    key: str,
    home: str,
    occurrence: str | None,
    model: Any,
    settings: service.Settings,
) -> RunLine:
    url = f"s3://{src_bucket}/{key}"
    info = storage.head(url)
    src = ObjectVersion.of(src_bucket, key, info.version_id, info.etag)
    run_id = str(RunId.of(model.card.name, model.card.version, src))
    folder = layout.result_folder(
        key, settings.incoming, settings.scored, bucket=src_bucket, home=home, occurrence=occurrence
    )
    out = f"s3://{home}/{settings.scored}{folder}/{run_id}"
    result = runs.score(
        src,
        out,
        model,
        run_id,
        info=info,
        max_rejected_rate=settings.max_rejected_rate,
        limits=settings.limits,
        event_bus=settings.event_bus,
    )
    m = result.manifest
    if not result.already_done:  # a job's runs announce themselves like any other run
        notify.announce(m, out, settings.event_bus, settings.ui_url)
    usd = (m.cost or {}).get("usd") if not result.already_done else None
    return RunLine(
        key=key,
        status="skipped" if result.already_done else m.status,
        run_id=run_id,
        folder=folder,
        rows_in=m.rows_in,
        rows_scored=m.rows_scored,
        rows_rejected=m.rows_rejected,
        alerts=[] if result.already_done else list(m.alerts),
        error=(m.reason or {}).get("message", "") if m.status == "failed" else "",
        cost_usd=float(usd) if usd is not None else None,
    )


def summary_line(summary: dict[str, Any]) -> str:
    t = summary["totals"]
    return (
        f"job {summary['job']} occurrence {summary['occurrence']} ({summary['status']}): "
        f"{summary['objects_matched']} matched, {t['ok']} ok, {t['partial']} partial, "
        f"{t['failed']} failed, {t['skipped']} already scored, {t['errors']} errors; "
        f"rows {t['rows_in']} in, {t['rows_scored']} scored, {t['rows_rejected']} rejected; "
        f"{t['alerts']} alert(s); model {summary['model']}"
    )


# --- events -------------------------------------------------------------------------------------
def _event_detail(summary: dict[str, Any], bucket: str) -> dict[str, Any]:
    return {
        "job": summary["job"],
        "occurrence": summary["occurrence"],
        "status": summary["status"],
        "scheduled_at": summary["scheduled_at"],
        "model": summary["model"],
        "objects_matched": summary["objects_matched"],
        "totals": summary["totals"],
        "alerts": summary["alerts"][:20],  # an event carries at most 256 KB
        "summary": occurrence_url(bucket, summary["job"], summary["occurrence"]),
    }


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
