"""``python -m scorer``: score, event, sweep, check, watch. Run with --help for details."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

from scorer import (
    cliutil,
    cluster,
    events,
    fargate,
    interrupt,
    layout,
    logs,
    notify,
    runs,
    service,
    shards,
    storage,
)
from scorer.budget import Limits
from scorer.cli import build_parser
from scorer.errors import BadArgument, Interrupted, ObjectMissing
from scorer.layout import ObjectVersion, RunId
from scorer.registry import Registry


def _rate(text: object) -> float | None:
    value = str(text).strip().lower()
    if value in ("", "off", "none"):
        return None
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise BadArgument(
            f"--max-rejected-rate must be a share between 0 and 1 (e.g. 0.2) or 'off', not '{text}'"
        )
    return rate


def _scale(args: Any) -> shards.Scale | None:
    if not hasattr(args, "cluster"):
        return None
    spec = cluster.parse(args.cluster, timeout=args.cluster_timeout, environ=os.environ)
    return shards.Scale(spec, cluster.shard_bytes(args.shard_over_mb))


def _limits(args: Any) -> Limits:
    return Limits.parse(args.max_input_mb, args.max_decompressed_mb, args.max_cpu_seconds)


def _workers(text: str) -> int | None:
    if text == "auto":
        return None
    if not text.isdigit():
        raise BadArgument(f"--workers must be 'auto' or a number of processes, not '{text}'")
    return int(text)


def _number(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    interrupt.requested.set()  # survives even if the exception below is swallowed by a library
    if interrupt.decided():  # the manifest is being or has been written: finish as it says
        return
    raise Interrupted(f"stopped by signal {signum} before committing; the input stays pending")


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_format)
    # test-only knobs (tests/reliability): smaller multipart parts, a SIGKILL at a named point,
    # and S3's part limits made small enough to reach with megabytes
    storage.configure(
        part_size=_number(os.environ.get("DROPSCORE_PART_SIZE", "")),
        fault=os.environ.get("DROPSCORE_FAULT"),
        max_parts=_number(os.environ.get("DROPSCORE_MAX_PARTS", "")),
        max_part_size=_number(os.environ.get("DROPSCORE_MAX_PART_SIZE", "")),
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    if args.command == "score":
        return _score(args)
    prefixes = layout.Prefixes.from_env(os.environ)  # the UI reads the same variables
    settings = service.Settings(
        registry=args.registry,
        incoming=prefixes.incoming,
        scored=prefixes.scored,
        model=args.model if args.command != "jobs" else service.DEFAULT_MODEL,
        engine=getattr(args, "engine", "auto"),
        max_rejected_rate=_rate(getattr(args, "max_rejected_rate", "off")),
        limits=_limits(args) if hasattr(args, "max_input_mb") else Limits(),
        event_bus=notify.bus_setting(getattr(args, "event_bus", "off")),
        ui_url=str(getattr(args, "ui_url", "")).strip() or None,
        scale=_scale(args),  # issue 14
    )
    if args.command == "event":
        return _event(args, settings)
    if args.command == "sweep":
        from scorer.sweep import sweep

        return sweep(
            args.bucket,
            settings,
            rescore_stale=args.rescore_stale,
            concurrency=max(1, args.concurrency),
            workers=fargate.config_if_present(os.environ),
        )
    if args.command == "check":
        return _check(args, settings)
    if args.command == "jobs":
        return _jobs(args, settings)
    from scorer.watch import watch

    return watch(
        args.queue,
        settings,
        dlq=args.dlq,
        concurrency=max(1, args.concurrency),
        once=args.once,
        raw_keys=args.event_keys == "raw",
    )


def _exit_code(result: runs.RunResult | None) -> int:
    if result is None or result.already_done:
        return 0
    return 2 if result.manifest.status == "failed" else 0


def _summary(result: runs.RunResult, out: str) -> str:
    return f"{runs.summary_line(result)}\nmanifest: {runs.manifest_url(out)}"


def _score(args: Any) -> int:
    workers = _workers(str(args.workers).strip().lower())
    max_rejected_rate = _rate(args.max_rejected_rate)
    registry = Registry(args.registry)
    model = service.load_model(registry, args.model, args.engine)
    try:
        info = storage.head(args.src)
    except ObjectMissing as exc:
        raise BadArgument(f"input '{args.src}' does not exist") from exc
    if storage.is_s3(args.src):
        src = ObjectVersion.of(*storage.split_s3(args.src), info.version_id, info.etag)
        identity = src
    else:
        src = ObjectVersion("", args.src)
        identity = service.local_version(args.src)  # its content stands in for an ETag
    run_id = str(RunId.of(model.card.name, model.card.version, identity))
    progress, close = _progress_bar(info.size)
    try:
        with cluster.run_scope():  # --cluster fargate: the workers live as long as the run
            result = runs.score(
                src,
                args.out,
                model,
                run_id,
                info=info,
                progress=progress,
                workers=workers,
                max_rejected_rate=max_rejected_rate,
                limits=_limits(args),
                scale=_scale(args),  # issue 14
            )
    finally:
        close()
    print(_summary(result, args.out), file=sys.stderr)
    return _exit_code(result)


def _event(args: Any, settings: service.Settings) -> int:
    if args.event is None:
        found = [events.from_environment(os.environ)]
    else:
        text = sys.stdin.read() if args.event == "-" else _read_text(args.event)
        found, skipped = events.parse_records(text)
        for why in skipped:  # one bad record never costs the others their run
            print(f"not scored: {why}", file=sys.stderr)
        if not found:
            raise events.NotAnEvent("; ".join(skipped))
    codes = [_event_one(ref, settings) for ref in found]  # an S3 notification may name several
    return 1 if 1 in codes else max(codes)


def _event_one(ref: ObjectVersion, settings: service.Settings) -> int:
    with cluster.run_scope():  # --cluster fargate: the workers live as long as the run
        result = service.score_object(ref, settings)
    if result is None:
        print(f"ignored: {ref} is not a file under {settings.incoming}", file=sys.stderr)
        return 0
    m = result.manifest
    key = m.input.key or ref.key  # the key found, maybe as the event gave it
    out = layout.output_prefix(ref.bucket, key, m.run_id, settings.incoming, settings.scored)
    print(_summary(result, out), file=sys.stderr)
    return _exit_code(result)


def _check(args: Any, settings: service.Settings) -> int:
    from scorer.check import check

    found = check(args.bucket, settings, all_versions=args.all_versions)
    for violation in found:
        print(violation)
    print(f"check: {len(found)} violation(s) in s3://{args.bucket}", file=sys.stderr)
    return 1 if found else 0


def _jobs(args: Any, settings: service.Settings) -> int:
    import datetime as dt

    from scorer import jobrun, jobs, schedules

    if args.jobs_command == "add":
        mirror = jobs.mirror_from(args)
        spec = jobs.Job(
            name=args.name,
            source=args.source,
            model=args.model,
            schedule=args.schedule,
            timezone=args.timezone,
            mode=args.mode,
        )
        job = jobs.add(args.bucket, spec, settings, mirror, replace_existing=args.replace)
        sched = job.parsed_schedule
        where = (
            f"schedule {mirror.group}/{job.name}"
            if mirror
            else "not mirrored to EventBridge Scheduler (no --scheduler-role-arn): only a local "
            "scheduler (make demo) runs it"
        )
        print(
            f"job {job.name}: {job.mode} {job.source} with {job.model}, {sched.words()}; "
            f"next {sched.next(dt.datetime.now(dt.UTC)).isoformat()}; {where}",
            file=sys.stderr,
        )
        return 0
    if args.jobs_command == "remove":
        jobs.remove(args.bucket, args.name, jobs.mirror_from(args))
        print(f"job {args.name} removed", file=sys.stderr)
        return 0
    if args.jobs_command == "list":
        now = dt.datetime.now(dt.UTC)
        found = jobs.list_jobs(args.bucket)
        for job in found:
            sched = job.parsed_schedule
            print(
                f"{job.name}\t{job.mode}\t{job.schedule}\t{job.timezone}\t{job.model}\t"
                f"{job.source}\tnext {sched.next(now).isoformat()}"
            )
        print(f"{len(found)} job(s) in s3://{args.bucket}/{jobs.PREFIX}", file=sys.stderr)
        return 0
    at = schedules.parse_time(args.at) if args.at else None
    summary, repeated = jobrun.run(
        args.bucket,
        args.name,
        settings,
        at=at,
        concurrency=max(1, args.concurrency),
    )
    if repeated:
        print(f"already ran: {jobrun.summary_line(summary)}", file=sys.stderr)
        return 0
    print(jobrun.summary_line(summary), file=sys.stderr)
    if "event_error" in summary:
        print(f"warning: Job Completed not sent: {summary['event_error']}", file=sys.stderr)
    return 1 if summary["status"] != "complete" else 0


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise BadArgument(f"cannot read event file '{path}': {exc.strerror}") from exc


def _progress_bar(total: int) -> tuple[runs.Progress | None, Any]:
    if not logs.is_terminal():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="B", unit_scale=True, desc="scoring", leave=False)

    def update(bytes_read: int, rows: int) -> None:
        bar.update(bytes_read - bar.n)
        bar.set_postfix(rows=rows)

    return update, bar.close


if __name__ == "__main__":
    sys.exit(cliutil.run(main, parser=build_parser))
