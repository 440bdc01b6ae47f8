"""``make demo``: the whole local stack on one machine, no AWS account.

A moto server (real S3/SQS/EventBridge HTTP APIs) on 127.0.0.1:5055; bucket ``dropscore`` with
versioning and EventBridge notifications; a rule on ``incoming/`` → an SQS queue (+ DLQ)
standing in for the RunTask target; a sample model trained and promoted; ``scorer watch``; a
sweep every few minutes; a local scheduler for jobs (devstack/ticker.py) with one sample job that
fires every minute; the Streamlit UI; a first file dropped and scored; and a bigger file scored
in shards on a local Dask cluster (files over ``DROPSCORE_SHARD_OVER_MB``, default 1 MB, run on
``DROPSCORE_CLUSTER``, default ``local:2``; smaller drops run in one process). Ctrl-C stops
everything it started, the Dask workers of a run included.

It knows no column: the sample data and its target come from ``training.sample_data``, and the
first file's bad rows are made from the trained model's card.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from devstack.provision import (
    DLQ,
    QUEUE,
    RUN_EVENTS_QUEUE,
    event_pattern,
    print_run_events,
    provision,
    provision_run_events,
    publish,
    wait_manifest,
)
from devstack.samples import big_file, first_file
from scorer.layout import ALIASES, INCOMING, MODELS, SCORED, result_folder, run_file

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENDPOINT = os.environ.get("DROPSCORE_S3_ENDPOINT", "http://127.0.0.1:5055")
BUCKET = os.environ.get("DROPSCORE_BUCKET", "dropscore")
UI_PORT = int(os.environ.get("DROPSCORE_UI_PORT", "8501"))
MODEL = os.environ.get("DROPSCORE_MODEL", "claims")
SWEEP_EVERY_S = int(os.environ.get("DROPSCORE_SWEEP_EVERY", "120"))
JOB_POLL_S = float(os.environ.get("DROPSCORE_JOB_POLL", "5"))
SAMPLE_JOB = "demo-every-minute"
# Lower than a deployment would set, so a newcomer sees a sharded run: the demo's big file
# (about 4 MB) is scored in shards on two local Dask workers, small drops in one process.
CLUSTER = os.environ.get("DROPSCORE_CLUSTER", "local:2")
SHARD_OVER_MB = os.environ.get("DROPSCORE_SHARD_OVER_MB", "1")
BIG_ROWS = 100_000
FIRST_KEY = f"{INCOMING}demo/first claims.csv"
# not under incoming/demo/: the sample job scores what is new there, in one process (`jobs run`
# takes no --cluster), and could commit the big file's run before the watcher's sharded one
BIG_KEY = f"{INCOMING}sharded/big claims.csv"
__all__ = ["event_pattern", "main"]  # event_pattern: the bucket rule's pattern, for tests


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

    def stop(self, grace_s: float = 15) -> None:
        """Terminate every child, kill those still there after ``grace_s`` (the watcher lets
        its running events finish), then kill whatever of theirs outlived them."""
        self.stopping.set()
        # Runs start in sessions of their own (the watcher's children) and start Dask workers:
        # noted now, while they are still our descendants, so none outlives a killed parent.
        below = self.descendants()
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + grace_s
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        left = [p for p in below if _alive(p)]
        for p in left:
            p.kill()
        psutil.wait_procs(left, timeout=5)

    def descendants(self) -> list[psutil.Process]:
        found = []
        for _name, proc in self.procs:
            try:
                found += psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
        return found


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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


def main() -> int:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_ENDPOINT_URL"] = ENDPOINT
    os.environ.pop("AWS_PROFILE", None)
    os.environ["DROPSCORE_BUCKET"] = BUCKET
    # read by every `scorer event` and `scorer sweep` the demo starts (the watcher's children too)
    os.environ["DROPSCORE_CLUSTER"] = CLUSTER
    os.environ["DROPSCORE_SHARD_OVER_MB"] = SHARD_OVER_MB
    stack = Stack()

    def on_signal(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    # also when started in the background by a script, where SIGINT arrives ignored
    signal.signal(signal.SIGINT, on_signal)
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

    registry = data / MODELS
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
    version = json.loads((model / ALIASES / "production.json").read_text())["version"]
    card: dict[str, Any] = json.loads((model / str(version) / "card.json").read_text())
    return card


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
    queue_url, dlq_url = provision(BUCKET)
    events_url = provision_run_events()
    threading.Thread(
        target=print_run_events, args=(stack.stopping, events_url), daemon=True
    ).start()
    publish(registry, BUCKET)
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
        f"bucket s3://{BUCKET} (versioned, EventBridge notifications), rule {INCOMING} → "
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

    s3 = boto3.client("s3")
    first = data / "first claims.csv"
    first_file(first, production_card(registry))
    m = drop_and_wait(stack, s3, first, FIRST_KEY, 120)
    if m:
        say(
            f"scored: s3://{BUCKET}/{m['key']}  status={m['status']} rows_in={m['rows_in']} "
            f"scored={m['rows_scored']} rejected={m['rows_rejected']}"
        )
    big = data / "big claims.csv"
    big_file(big, BIG_ROWS)
    m = drop_and_wait(stack, s3, big, BIG_KEY, 300)
    sharded = sharded_line(m, big.stat().st_size, ui_url) if m else None
    if m and sharded:
        say(f"scored: s3://{BUCKET}/{m['key']}  status={m['status']} rows_in={m['rows_in']}")
        say(sharded)
    ui_ok = (ROOT / "ui" / "app.py").exists() and wait_http(f"{ui_url}/_stcore/health", 60)
    if ui_ok:
        warm_up_ui(stack, ui_url)
    banner(ui_url if ui_ok else None, sharded)
    while True:
        for name, proc in stack.procs:
            if proc.poll() is not None and name in ("moto", "watch"):
                say(f"{name} exited with {proc.returncode}; see {stack.logs}/{name}.log")
                return 1
        time.sleep(1)


def drop_and_wait(stack: Stack, s3: Any, path: Path, key: str, seconds: float) -> Any:
    """Upload ``path`` as ``key`` and wait for its manifest (None, said, after ``seconds``)."""
    s3.upload_file(str(path), BUCKET, key)
    say(f"dropped {key} ({path.stat().st_size / 2**20:.1f} MB); waiting for its manifest …")
    m = wait_manifest(s3, BUCKET, f"{SCORED}{result_folder(key)}/", seconds)
    if m is None:
        say(f"no manifest yet for {key}; see {stack.logs}")
    return m


def sharded_line(m: dict[str, Any], size: int, ui_url: str) -> str:
    """How the big file ran and where to see it, as its manifest says (never assumed)."""
    found = run_file(m["key"])
    link = f"{ui_url}/runs?run={urllib.parse.quote(found.folder)}" if found else m["key"]
    mb = f"{size / 2**20:.1f} MB"
    if m.get("shards"):
        how = (
            f"a sharded run: {mb} over --shard-over-mb {SHARD_OVER_MB}, scored in "
            f"{m['shards']} shards on {m['workers']} Dask workers (--cluster {CLUSTER})"
        )
    else:  # e.g. DROPSCORE_SHARD_OVER_MB set above its size: say so, claim nothing
        how = f"not sharded ({mb}; --shard-over-mb {SHARD_OVER_MB}, --cluster {CLUSTER})"
    return f"{BIG_KEY} was {how}; see it at {link}"


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
    cmd += ["--source", f"s3://{BUCKET}/{INCOMING}demo/", "--model", f"{MODEL}:production"]
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


def banner(ui_url: str | None, sharded: str | None) -> None:
    lines = [
        "",
        "dropscore is running locally. Press Ctrl-C to stop everything.",
        f"  S3 endpoint : {ENDPOINT}   (any access key works)",
        f"  bucket      : s3://{BUCKET}",
        f"  UI          : {ui_url or 'not running (see demo-data/logs/ui.log)'}",
        f"  model       : {MODEL}:production in s3://{BUCKET}/{MODELS}",
        f"  sharding    : files over {SHARD_OVER_MB} MB are scored in shards on a local Dask "
        f"cluster ({CLUSTER}); smaller ones in one process. The run page shows which.",
        f"  {sharded or 'the big sample file has no manifest yet (see demo-data/logs)'}",
        "",
        f"Drop a file (results appear under {SCORED} within seconds):",
        f"  aws --endpoint-url {ENDPOINT} s3 cp claims.csv s3://{BUCKET}/{INCOMING}",
        f"  aws --endpoint-url {ENDPOINT} s3 ls --recursive s3://{BUCKET}/{SCORED}",
        "Make a file to drop:",
        "  .venv/bin/python -m training sample-data --rows 1000 --out claims.csv",
        f"Scheduled job '{SAMPLE_JOB}' runs every minute (watch for '[demo] job' lines); add one:",
        f"  .venv/bin/python -m scorer jobs add nightly --bucket {BUCKET} "
        f"--source s3://{BUCKET}/{INCOMING} --model {MODEL}:production "
        '--schedule "rate(1 minute)"',
        f"  .venv/bin/python -m scorer jobs list --bucket {BUCKET}",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
