"""``make demo``: the whole local stack on one machine, no AWS account.

A moto server (real S3/SQS/EventBridge HTTP APIs) on 127.0.0.1:5055; bucket ``dropscore`` with
versioning and EventBridge notifications; a rule on ``incoming/`` → an SQS queue (+ DLQ)
standing in for the RunTask target; a sample model trained and promoted; ``scorer watch``; a
sweep every few minutes; a local scheduler for jobs (devstack/ticker.py) with one sample job that
fires every minute; the Streamlit UI; and a first file dropped and scored. Ctrl-C stops
everything it started.

It knows no column: the sample data and its target come from ``training.sample_data``, and the
first file's bad rows are made from the trained model's card.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENDPOINT = os.environ.get("DROPSCORE_S3_ENDPOINT", "http://127.0.0.1:5055")
BUCKET = os.environ.get("DROPSCORE_BUCKET", "dropscore")
UI_PORT = int(os.environ.get("DROPSCORE_UI_PORT", "8501"))
MODEL = os.environ.get("DROPSCORE_MODEL", "claims")
SWEEP_EVERY_S = int(os.environ.get("DROPSCORE_SWEEP_EVERY", "120"))
JOB_POLL_S = float(os.environ.get("DROPSCORE_JOB_POLL", "5"))
SAMPLE_JOB = "demo-every-minute"
QUEUE = "dropscore-scorer-events"
DLQ = "dropscore-scorer-dlq"
RUN_EVENTS_QUEUE = "dropscore-run-events"  # what a subscriber (e-mail, Slack) would receive


def say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


class Stack:
    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stopping = threading.Event()
        self.logs = ROOT / "demo-data" / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def start(
        self, name: str, cmd: list[str], quiet: bool = True, ignore_ctrl_c: bool = False
    ) -> subprocess.Popen[bytes]:
        """Start a child in our process group; ``ignore_ctrl_c`` leaves its stopping to us
        (moto must outlive the watcher, or the watcher's last calls fail noisily)."""
        out: Any = open(self.logs / f"{name}.log", "wb") if quiet else None  # noqa: SIM115
        preexec = _ignore_sigint if ignore_ctrl_c else None
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=out,
            stderr=subprocess.STDOUT if quiet else None,
            preexec_fn=preexec,
        )
        self.procs.append((name, proc))
        return proc

    def stop(self) -> None:
        self.stopping.set()
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def wait_http(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 - loopback only
            return True
        except OSError:
            time.sleep(0.3)
    return False


def port_busy(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)  # noqa: S310
        return True
    except OSError:
        return False


def provision() -> tuple[str, str]:
    """Bucket, notifications, rule → queue (+ DLQ). Returns (queue url, dlq url)."""
    import boto3

    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    ev = boto3.client("events")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={
            "VisibilityTimeout": "600",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    ev.put_rule(Name="dropscore-incoming", EventPattern=json.dumps(event_pattern(BUCKET)))
    ev.put_targets(Rule="dropscore-incoming", Targets=[{"Id": "scorer", "Arn": queue_arn}])
    return queue_url, dlq_url


def provision_run_events() -> str:
    """A rule on the local bus routing source ``dropscore`` (run and job events) to a queue the
    demo prints from, as the stack's rule routes them to the alarm topic. Returns its URL."""
    import boto3

    sqs = boto3.client("sqs")
    ev = boto3.client("events")
    url = sqs.create_queue(QueueName=RUN_EVENTS_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    ev.put_rule(Name="dropscore-run-events", EventPattern=json.dumps({"source": ["dropscore"]}))
    ev.put_targets(Rule="dropscore-run-events", Targets=[{"Id": "console", "Arn": arn}])
    return url


def print_run_events(stack: Stack, queue_url: str) -> None:
    """One line per run event as it arrives: type, input, status, counts, alerts."""
    import boto3

    from scorer.notify import one_line

    sqs = boto3.client("sqs")
    while not stack.stopping.is_set():
        try:
            msgs = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=5
            ).get("Messages", [])
        except Exception:  # moto is stopping with the demo; nothing left to print
            return
        for msg in msgs:
            event = json.loads(msg["Body"])
            print(f"[event] {one_line(event['detail-type'], event['detail'])}", flush=True)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=msg["ReceiptHandle"])


def event_pattern(bucket: str) -> dict[str, Any]:
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [bucket]},
            # every object under incoming/: CSVs are scored, other files get a terminal
            # UNSUPPORTED_EXTENSION manifest (wildcards would be case-sensitive: a.CSV lost)
            "object": {"key": [{"prefix": "incoming/"}]},
        },
    }


def first_file(path: Path, card: dict[str, Any]) -> None:
    """Sample rows plus a few bad ones, so the first result shows rejected rows too: a word in
    the card's first number column, a row cut short, ``inf`` in its last number column."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "sample-data",
            "--rows",
            "500",
            "--out",
            str(path),
            "--seed",
            "2026",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    numbers = [f["name"] for f in card["features"] if f["kind"] == "number"]
    with open(path, newline="") as fh:
        header, *rows = list(csv.reader(fh))
    bad = [dict(zip(header, row, strict=True)) for row in rows[:3]]
    if numbers:
        bad[0][numbers[0]] = "abc"  # WRONG_TYPE
        bad[2][numbers[-1]] = "inf"  # NON_FINITE
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    writer.writerow(bad[0].values())
    writer.writerow(list(bad[1].values())[:-2])  # TOO_FEW_FIELDS
    writer.writerow(bad[2].values())
    path.write_text(out.getvalue())


def wait_manifest(s3: Any, prefix: str, seconds: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        resp = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        for obj in resp.get("Contents", []):
            if obj["Key"].endswith("manifest.json"):
                body = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
                return {"key": obj["Key"], **json.loads(body)}
        time.sleep(1)
    return None


def main() -> int:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_ENDPOINT_URL"] = ENDPOINT
    os.environ.pop("AWS_PROFILE", None)
    os.environ["DROPSCORE_BUCKET"] = BUCKET
    stack = Stack()

    def on_signal(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        return run(stack)
    except KeyboardInterrupt:
        say("stopping …")
        return 0
    except Exception as exc:  # never a traceback to a user: one line and the log folder
        if stack.stopping.is_set():
            return 0
        say(f"failed: {type(exc).__name__}: {exc} (logs in {stack.logs})")
        return 1
    finally:
        stack.stop()
        say("stopped everything it started")


def py(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def sample_model(data: Path) -> Path:
    """Train the sample model into a local registry once; later demos reuse it."""
    from training import sample_data

    registry = data / "models"
    if list(registry.glob(f"{MODEL}/*/card.json")):
        say(f"reusing the sample model in {registry} (delete it to retrain)")
        return registry
    train_csv = data / "training.csv"
    subprocess.run(
        py("training", "sample-data", "--rows", "4000", "--out", str(train_csv), "--seed", "1"),
        cwd=ROOT,
        check=True,
    )
    say("training the sample model with PyCaret (lr, lightgbm; about a minute) …")
    subprocess.run(
        py(
            "training",
            "train",
            "--data",
            str(train_csv),
            "--target",
            sample_data.TARGET,
            "--name",
            MODEL,
            "--registry",
            str(registry),
            "--alias",
            "production",
            "--estimators",
            "lr,lightgbm",
        ),
        cwd=ROOT,
        check=True,
    )
    return registry


def production_card(registry: Path) -> dict[str, Any]:
    """The card of the version the local registry's production alias names."""
    model = registry / MODEL
    version = json.loads((model / "aliases" / "production.json").read_text())["version"]
    card: dict[str, Any] = json.loads((model / str(version) / "card.json").read_text())
    return card


def publish(registry: Path) -> None:
    import boto3

    s3 = boto3.client("s3")
    for path in sorted(p for p in registry.rglob("*") if p.is_file()):
        s3.upload_file(str(path), BUCKET, f"models/{path.relative_to(registry).as_posix()}")


def run(stack: Stack) -> int:
    import boto3

    host, port = ENDPOINT.split("//", 1)[1].split(":")
    if port_busy(f"{ENDPOINT}/moto-api/"):
        say(f"something already answers at {ENDPOINT}; stop it (an earlier demo?) and retry")
        return 1
    say(f"starting a local S3/SQS/EventBridge (moto) at {ENDPOINT}")
    stack.start("moto", [str(BIN / "moto_server"), "-H", host, "-p", port], ignore_ctrl_c=True)
    if not wait_http(f"{ENDPOINT}/moto-api/", 30):
        say(f"moto did not start; see {stack.logs / 'moto.log'}")
        return 1
    data = ROOT / "demo-data"
    registry = sample_model(data)
    # The bucket appears only once the model and the watcher are ready, so a file dropped as
    # soon as the bucket answers is scored at once.
    queue_url, dlq_url = provision()
    events_url = provision_run_events()
    threading.Thread(target=print_run_events, args=(stack, events_url), daemon=True).start()
    publish(registry)
    stack.start(
        "watch",
        py(
            "scorer",
            "--log-format",
            "human",
            "watch",
            "--bucket",
            BUCKET,
            "--queue",
            queue_url,
            "--dlq",
            dlq_url,
            "--model",
            MODEL,
        ),
        quiet=False,
    )
    say(
        f"bucket s3://{BUCKET} (versioned, EventBridge notifications), rule incoming/ → "
        f"queue {QUEUE} (+ DLQ {DLQ}), model {MODEL}:production, watcher running; "
        f"run events (source dropscore) → queue {RUN_EVENTS_QUEUE}, printed as [event] lines"
    )
    ui_url = f"http://127.0.0.1:{UI_PORT}"
    if (ROOT / "ui" / "app.py").exists():
        stack.start(
            "ui",
            [
                str(BIN / "streamlit"),
                "run",
                "ui/app.py",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(UI_PORT),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
        )
    threading.Thread(target=sweeper, args=(stack,), daemon=True).start()
    add_sample_job()
    threading.Thread(target=job_clock, args=(stack,), daemon=True).start()

    first = data / "first claims.csv"
    first_file(first, production_card(registry))
    s3 = boto3.client("s3")
    s3.upload_file(str(first), BUCKET, "incoming/demo/first claims.csv")
    say("dropped incoming/demo/first claims.csv; waiting for its manifest …")
    m = wait_manifest(s3, "scored/demo/first claims/", 120)
    if m:
        say(
            f"scored: s3://{BUCKET}/{m['key']}  status={m['status']} rows_in={m['rows_in']} "
            f"scored={m['rows_scored']} rejected={m['rows_rejected']}"
        )
    else:
        say(f"no manifest yet for the first file; see {stack.logs}")
    ui_ok = (ROOT / "ui" / "app.py").exists() and wait_http(f"{ui_url}/_stcore/health", 60)
    if ui_ok:
        warm_up_ui(stack, ui_url)
    banner(ui_url if ui_ok else None)
    while True:
        for name, proc in stack.procs:
            if proc.poll() is not None and name in ("moto", "watch"):
                say(f"{name} exited with {proc.returncode}; see {stack.logs}/{name}.log")
                return 1
        time.sleep(1)


def warm_up_ui(stack: Stack, url: str) -> None:
    """Open the UI once in a headless browser, when there is one, so the first person to open
    it doesn't wait for Streamlit's first-session work (component scan, imports)."""
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser:
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--dump-dom",
            "--virtual-time-budget=20000",
        ]
        stack.start("ui-warmup", [browser, *flags, url])


def sweeper(stack: Stack) -> None:
    while not stack.stopping.wait(SWEEP_EVERY_S):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "scorer",
                "--log-format",
                "human",
                "sweep",
                "--bucket",
                BUCKET,
                "--model",
                MODEL,
            ],
            cwd=ROOT,
            check=False,
        )


def add_sample_job() -> None:
    """One job a newcomer sees fire within a minute or two (it scores what is new under
    incoming/demo/, so after the first file it reports everything as already scored)."""
    cmd = py("scorer", "jobs", "add", SAMPLE_JOB, "--bucket", BUCKET, "--replace")
    cmd += ["--source", f"s3://{BUCKET}/incoming/demo/", "--model", f"{MODEL}:production"]
    cmd += ["--schedule", "rate(1 minute)"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    say(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"jobs add: {done}")


def job_clock(stack: Stack) -> None:
    """The local EventBridge Scheduler: every few seconds, start the occurrences that came due."""
    from devstack.ticker import Ticker

    def start(name: str, at: Any) -> None:
        threading.Thread(target=run_occurrence, args=(name, at), daemon=True).start()

    ticker = Ticker(BUCKET, start)
    while not stack.stopping.wait(JOB_POLL_S):
        ticker.tick()


def run_occurrence(name: str, at: Any) -> None:
    say(f"job {name}: occurrence {at:%Y-%m-%d %H:%M} UTC is due, running it …")
    cmd = py("scorer", "jobs", "run", name, "--bucket", BUCKET, "--at", at.isoformat())
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = done.stderr.strip().splitlines()
    say(f"{lines[-1] if lines else 'no output'} (exit {done.returncode})")


def banner(ui_url: str | None) -> None:
    lines = [
        "",
        "dropscore is running locally. Press Ctrl-C to stop everything.",
        f"  S3 endpoint : {ENDPOINT}   (any access key works)",
        f"  bucket      : s3://{BUCKET}",
        f"  UI          : {ui_url or 'not running (see demo-data/logs/ui.log)'}",
        f"  model       : {MODEL}:production in s3://{BUCKET}/models",
        "",
        "Drop a file (results appear under scored/ within seconds):",
        f"  aws --endpoint-url {ENDPOINT} s3 cp claims.csv s3://{BUCKET}/incoming/",
        f"  aws --endpoint-url {ENDPOINT} s3 ls --recursive s3://{BUCKET}/scored/",
        "Make a file to drop:",
        "  .venv/bin/python -m training sample-data --rows 1000 --out claims.csv",
        f"Scheduled job '{SAMPLE_JOB}' runs every minute (watch for '[demo] job' lines); add one:",
        f"  .venv/bin/python -m scorer jobs add nightly --bucket {BUCKET} "
        f"--source s3://{BUCKET}/incoming/ --model {MODEL}:production "
        '--schedule "rate(1 minute)"',
        f"  .venv/bin/python -m scorer jobs list --bucket {BUCKET}",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
