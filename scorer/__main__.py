"""``python -m scorer``: score, event, sweep, check, watch. Run with --help for details."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

from scorer import (
    budget,
    cliutil,
    cluster,
    events,
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
from scorer.errors import BadArgument, Interrupted, ObjectMissing
from scorer.layout import ObjectVersion, RunId
from scorer.registry import Registry

ENGINES = ("auto", "plan", "pipeline")
EPILOG = """exit codes: 0 a terminal manifest exists (ok, partial, or already done)
            2 the file was refused as a whole (manifest status 'failed' with a reason code),
              or the command itself was wrong (nothing ran)
            1 anything else; the input stays pending for a retry or the sweep

examples:
  python -m scorer score claims.csv --registry ./models --model claims --out ./scored/claims
  python -m scorer event --event event.json
  python -m scorer sweep --bucket dropscore --rescore-stale
  python -m scorer jobs add nightly --bucket dropscore --source s3://dropscore/incoming/daily/ \
      --model claims:production --schedule "cron(0 2 * * ? *)" --timezone Europe/Paris
"""


def build_parser() -> cliutil.EnvDefaultsParser:
    parser = cliutil.EnvDefaultsParser(
        prog="python -m scorer",
        description="Score CSV files with a model from the dropscore registry.",
        epilog=EPILOG,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "human"),
        default="auto",
        help="log format (auto: human in a terminal, JSON lines otherwise)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("score", help="score one file (local path or s3://…) into a folder")
    p.add_argument("src", help="input CSV or CSV.gz (local path or s3://bucket/key)")
    p.add_argument("--registry", required=True, help="registry URL (directory or s3://…/models)")
    p.add_argument("--model", required=True, help="NAME, NAME@VERSION or NAME:ALIAS")
    p.add_argument("--out", required=True, help="output folder (local or s3://…)")
    _engine_arg(p)
    _budget_args(p)
    p.add_argument(
        "--workers",
        default="auto",
        help="forked scoring processes: 0 scores in this process; auto (default) uses the "
        "idle cores for files of 8 MB or more",
    )
    _gate_arg(p)
    _scale_args(p)  # issue 14

    p = sub.add_parser("event", help="score the object named by an S3 event (the Fargate task)")
    p.add_argument(
        "--event",
        default=None,
        help="event JSON file, or - for stdin "
        "(default: DROPSCORE_BUCKET/DROPSCORE_KEY/DROPSCORE_VERSION_ID)",
    )
    _service_args(p)
    _gate_arg(p)
    _budget_args(p)
    _scale_args(p)  # issue 14

    p = sub.add_parser("sweep", help="score every input that has no terminal manifest yet")
    p.add_argument("--bucket", required=True, help="bucket name")
    p.add_argument(
        "--rescore-stale",
        action="store_true",
        help="also rescore inputs whose manifest is from another model version",
    )
    p.add_argument("--concurrency", type=int, default=2, help="files scored at once (default 2)")
    _service_args(p)
    _gate_arg(p)
    _budget_args(p)
    _scale_args(p)  # issue 14

    p = sub.add_parser(
        "check", help="ledger checker: report every input, run and output that breaks a promise"
    )
    p.add_argument("--bucket", required=True, help="bucket name")
    p.add_argument(
        "--all-versions",
        action="store_true",
        help="also require a manifest for superseded versions of each input",
    )
    _service_args(p)

    p = sub.add_parser(
        "watch",
        help="local stand-in for EventBridge→Fargate: consume an SQS "
        "queue and run 'scorer event' per message",
    )
    p.add_argument("--bucket", required=True, help="bucket name (for defaults)")
    p.add_argument("--queue", required=True, help="SQS queue URL with S3 events")
    p.add_argument("--dlq", default=None, help="dead-letter queue URL for poison messages")
    p.add_argument("--concurrency", type=int, default=2, help="events handled at once")
    p.add_argument("--once", action="store_true", help="stop when the queue is empty")
    p.add_argument(
        "--event-keys",
        choices=("raw", "encoded"),
        default="raw",
        help="how the queue's events carry object keys: 'raw' (default: moto's EventBridge) "
        "or 'encoded' (URL-encoded, as AWS EventBridge sends them)",
    )
    _service_args(p)
    _gate_arg(p)
    _budget_args(p)
    _jobs_parser(sub)
    return parser


def _jobs_parser(sub: Any) -> None:
    p = sub.add_parser("jobs", help="scheduled scoring jobs (EventBridge Scheduler)")
    jobs_sub = p.add_subparsers(dest="jobs_command", required=True)
    add = jobs_sub.add_parser("add", help="add (or --replace) a job and its schedule")
    add.add_argument("name", help="job name: letters, digits, '.', '_', '-' (max 64)")
    add.add_argument("--source", required=True, help="s3://BUCKET/PREFIX[/glob] to score")
    add.add_argument("--model", required=True, help="NAME[:ALIAS] or NAME@VERSION")
    add.add_argument(
        "--schedule",
        required=True,
        help="'cron(MIN HOUR DAY MONTH WEEKDAY YEAR)' or 'rate(N minutes|hours|days)'",
    )
    add.add_argument("--timezone", default="UTC", help="IANA time zone of a cron (default UTC)")
    add.add_argument(
        "--mode",
        choices=("new", "all"),
        default="new",
        help="new: what the resolved model version has not scored yet; all: every matching "
        "object once per occurrence (default new)",
    )
    add.add_argument("--replace", action="store_true", help="replace a job of that name")
    _scheduler_args(add)
    lst = jobs_sub.add_parser("list", help="list the jobs and their next occurrence")
    rm = jobs_sub.add_parser("remove", help="remove a job and its schedule")
    rm.add_argument("name")
    _scheduler_args(rm)
    run = jobs_sub.add_parser("run", help="run one occurrence of a job now")
    run.add_argument("name")
    run.add_argument(
        "--at",
        default=None,
        help="the scheduled time (ISO); the occurrence is the schedule's tick at or before it. "
        "Without it: a manual occurrence of its own",
    )
    run.add_argument("--concurrency", type=int, default=2, help="files scored at once (default 2)")
    run.add_argument(
        "--event-bus",
        default="",
        help="EventBridge bus for Job Completed and the runs' events; default: the account's "
        "default bus; 'off': no events",
    )
    _gate_arg(run)
    _budget_args(run)
    for q in (add, lst, rm, run):
        q.add_argument("--bucket", required=True, help="the dropscore bucket (holds jobs/)")
        q.add_argument("--registry", default=None, help="registry URL (default s3://BUCKET/models)")
    _engine_arg(run)


def _scheduler_args(p: Any) -> None:
    p.add_argument(
        "--schedule-group", default="dropscore-jobs", help="EventBridge Scheduler group of jobs"
    )
    p.add_argument(
        "--scheduler-role-arn",
        default="",
        help="role Scheduler runs the task with; without it the job is not mirrored to "
        "EventBridge Scheduler (only a local scheduler such as make demo's runs it)",
    )
    p.add_argument("--ecs-cluster", default="", help="cluster ARN the scorer task runs on")
    p.add_argument("--task-definition", default="", help="scorer task definition (family or ARN)")
    p.add_argument("--subnets", default="", help="comma-separated subnet ids for the task")
    p.add_argument("--security-groups", default="", help="comma-separated security group ids")
    p.add_argument("--dead-letter-arn", default="", help="SQS queue for schedules that failed")


def _service_args(p: Any) -> None:
    p.add_argument("--registry", default=None, help="registry URL (default s3://BUCKET/models)")
    p.add_argument(
        "--model",
        default=service.DEFAULT_MODEL,
        help="NAME[:ALIAS] or NAME@VERSION (default: claims:production)",
    )
    _engine_arg(p)
    p.add_argument(
        "--event-bus",
        default="",
        help="EventBridge bus for run events (Run Completed/Failed/Alert); default: the "
        "account's default bus; 'off': no events",
    )
    p.add_argument(
        "--ui-url", default="", help="the UI's base URL, for the run-page link in run events"
    )


def _engine_arg(p: Any) -> None:
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="how predictions are computed: 'plan' = the model's exported scoring plan "
        "(numpy, no PyCaret import; verified against the pipeline when published), "
        "'pipeline' = the unpickled PyCaret pipeline, 'auto' (default) = the plan when the "
        "model has one",
    )


def _gate_arg(p: Any) -> None:
    p.add_argument(
        "--max-rejected-rate",
        default="off",
        metavar="R",
        help="a run that rejects more than this share of its rows (0–1, e.g. 0.2) ends "
        "'failed' with TOO_MANY_REJECTED, exit 2; rejected.csv still says why (default: off)",
    )


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


def _budget_args(p: Any) -> None:
    p.add_argument(
        "--max-input-mb",
        default=f"{budget.DEFAULT_MAX_INPUT_MB:g}",
        help="per-file budget: a file larger than this (as stored) is refused as TOO_LARGE "
        "(default %(default)s)",
    )
    p.add_argument(
        "--max-decompressed-mb",
        default=f"{budget.DEFAULT_MAX_DECOMPRESSED_MB:g}",
        help="a gzip file expanding to more than this is refused as DECOMPRESSION_BOMB "
        "(default %(default)s)",
    )
    p.add_argument(
        "--max-cpu-seconds",
        default=f"{budget.DEFAULT_MAX_CPU_SECONDS:g}",
        help="per-file budget: a file needing more CPU time than this is refused as "
        "BUDGET_EXCEEDED (default %(default)s)",
    )


def _scale_args(p: Any) -> None:
    p.add_argument(
        "--cluster",
        default="none",
        help="where a file above --shard-over-mb is scored in shards: none (default), "
        "local[:N] (a local Dask cluster of N processes) or tcp://HOST:PORT (a Dask scheduler)",
    )
    p.add_argument(
        "--shard-over-mb",
        default="off",
        metavar="M",
        help="with --cluster: a file larger than M MB (as stored, not gzip) is split at record "
        "boundaries into shards of about M MB, scored on the cluster into the same outputs "
        "(default: off)",
    )


def _scale(args: Any) -> shards.Scale | None:
    if not hasattr(args, "cluster"):
        return None
    return shards.Scale(cluster.parse(args.cluster), cluster.shard_bytes(args.shard_over_mb))


def _limits(args: Any) -> Limits:
    return Limits.parse(args.max_input_mb, args.max_decompressed_mb, args.max_cpu_seconds)


def _workers(text: str) -> int | None:
    if text == "auto":
        return None
    if not text.isdigit():
        raise BadArgument(f"--workers must be 'auto' or a number of processes, not '{text}'")
    return int(text)


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    interrupt.requested.set()  # survives even if the exception below is swallowed by a library
    if interrupt.decided():  # the manifest is being or has been written: finish as it says
        return
    raise Interrupted(f"stopped by signal {signum} before committing; the input stays pending")


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_format)
    # test-only knobs (tests/reliability): smaller multipart parts and a SIGKILL at a named point
    part_size = os.environ.get("DROPSCORE_PART_SIZE", "")
    storage.configure(
        part_size=int(part_size) if part_size.isdigit() else None,
        fault=os.environ.get("DROPSCORE_FAULT"),
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    if args.command == "score":
        return _score(args)
    settings = service.Settings(
        registry=args.registry,
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
    result = service.score_object(ref, settings)
    if result is None:
        print(f"ignored: {ref} is not a file under {settings.incoming}", file=sys.stderr)
        return 0
    m = result.manifest
    key = str(m.input.get("key") or ref.key)  # the key found, maybe as the event gave it
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
