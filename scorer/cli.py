"""The ``python -m scorer`` command line: its commands, flags, help texts and environment
variables (each ``--flag`` also reads ``DROPSCORE_FLAG``). ``scorer.__main__`` runs them."""

from __future__ import annotations

from typing import Any

from scorer import budget, cliutil, service

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
    _scale_args(p)  # handed to each event's child
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
    _scale_args(run)
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
        "local[:N] (a local Dask cluster of N processes), tcp://HOST:PORT (a Dask scheduler) "
        "or fargate[:N] (N Dask worker tasks on Fargate for the run, at most the stack's "
        "DROPSCORE_MAX_WORKERS; in the stack's scorer and sweep tasks)",
    )
    p.add_argument(
        "--cluster-timeout",
        default="30",
        metavar="S",
        help="seconds to reach the Dask scheduler of --cluster tcp://… (default %(default)s)",
    )
    p.add_argument(
        "--shard-over-mb",
        default="off",
        metavar="M",
        help="with --cluster: a file larger than M MB (as stored, not gzip) is split at record "
        "boundaries into shards of about M MB, scored on the cluster into the same outputs "
        "(default: off)",
    )
