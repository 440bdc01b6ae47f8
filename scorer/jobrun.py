"""One occurrence of a scheduled job (``jobs run NAME [--at T]``): which occurrence it is, its
runs with bounded concurrency, its summary ``jobs/<name>/occurrences/<id>.json``, the ``Job
Completed`` event, and what a job's occurrences cost. The jobs themselves: scorer/jobs.py.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from scorer import cluster, layout, notify, refs, runs, schedules, service, storage
from scorer.errors import DropscoreError, ObjectMissing
from scorer.jobs import PREFIX, Job, Source, read
from scorer.layout import ObjectVersion, RunId

log = logging.getLogger("dropscore.jobs")


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


def occurrence_url(bucket: str, name: str, occurrence: str) -> str:
    return f"s3://{bucket}/{PREFIX}{name}/occurrences/{occurrence}.json"


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
            with cluster.run_scope():  # --cluster fargate: the workers live as long as the run
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
        scale=settings.scale,  # --cluster / --shard-over-mb, as for score, event and sweep
    )
    m = result.manifest
    if not result.already_done:  # a job's runs announce themselves like any other run
        notify.announce(m, out, settings.event_bus, settings.ui_url, settings.scored)
    usd = m.cost.usd if not result.already_done else None
    return RunLine(
        key=key,
        status="skipped" if result.already_done else m.status,
        run_id=run_id,
        folder=folder,
        rows_in=m.rows_in,
        rows_scored=m.rows_scored,
        rows_rejected=m.rows_rejected,
        alerts=[] if result.already_done else [a.to_dict() for a in m.alerts],
        error=m.reason.message if m.status == "failed" and m.reason else "",
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
