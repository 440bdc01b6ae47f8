"""Local stand-in for EventBridge → Fargate: consume an SQS queue of S3 events and run
``python -m scorer event`` as a subprocess per message, like a task would.

A message is deleted only after a terminal exit (0 or 2); after exit 1 it becomes visible again
and SQS's redrive policy moves it to the dead-letter queue after a few tries. A message that is
not an S3 event at all (poison) goes straight to the DLQ.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from scorer import events, service, storage
from scorer.errors import DropscoreError

log = logging.getLogger("dropscore.watch")

RETRY_VISIBILITY_S = 20
EVENT_TIMEOUT_S = 3600


def _sqs() -> Any:
    import boto3

    session = boto3.session.Session()
    return session.client("sqs", region_name=session.region_name or "us-east-1")


def handle(body: str, settings: service.Settings) -> int:
    """Run one event in a child process, as the Fargate task would; returns its exit code."""
    cmd = [
        sys.executable,
        "-m",
        "scorer",
        "--log-format",
        "json",
        "event",
        "--event",
        "-",
        "--model",
        settings.model,
        "--engine",
        settings.engine,
    ]
    if settings.registry:
        cmd += ["--registry", settings.registry]
    limits = settings.limits  # the budget ends a poison file in the child, before the timeout
    cmd += ["--max-input-mb", f"{limits.max_input_mb:g}"]
    cmd += ["--max-decompressed-mb", f"{limits.max_decompressed_mb:g}"]
    cmd += ["--max-cpu-seconds", f"{limits.max_cpu_seconds:g}"]
    proc = subprocess.run(cmd, input=body.encode(), capture_output=True, timeout=EVENT_TIMEOUT_S)
    tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
    log.info("event finished", extra={"exit": proc.returncode, "result": tail[0][:300]})
    return proc.returncode


def watch(
    queue_url: str,
    settings: service.Settings,
    *,
    dlq: str | None = None,
    concurrency: int = 2,
    once: bool = False,
) -> int:
    sqs = _sqs()
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("stopping: finishing running events", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running: set[Future[None]] = set()
    lock = threading.Lock()

    def process(msg: dict[str, Any]) -> None:
        try:
            _process(msg)
        except Exception as exc:
            log.error(
                "event handling failed; the message will be retried",
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )

    def _process(msg: dict[str, Any]) -> None:
        body = msg["Body"]
        receipt = msg["ReceiptHandle"]
        try:
            ref = events.parse(body)
        except DropscoreError as exc:
            log.warning("poison message → DLQ", extra={"error": exc.message})
            if dlq:
                sqs.send_message(QueueUrl=dlq, MessageBody=body)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
            return
        code = handle(body, settings)
        if code in (0, 2):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
        else:
            log.warning("event failed; will retry", extra={"object": str(ref), "exit": code})
            try:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=RETRY_VISIBILITY_S
                )
            except Exception:
                log.debug("could not shorten visibility")

    log.info("watching", extra={"queue": queue_url, "concurrency": concurrency})
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        idle_polls = 0
        while not stop.is_set():
            with lock:
                running = {f for f in running if not f.done()}
                free = concurrency - len(running)
            if free <= 0:
                time.sleep(0.2)
                continue
            try:
                with storage.map_storage_errors(queue_url):
                    resp = sqs.receive_message(
                        QueueUrl=queue_url,
                        MaxNumberOfMessages=min(free, 10),
                        WaitTimeSeconds=1 if once else 2,
                        VisibilityTimeout=EVENT_TIMEOUT_S // 6,
                    )
            except DropscoreError as exc:
                log.warning("queue unreachable; retrying", extra={"error": exc.message})
                stop.wait(2)
                continue
            msgs = resp.get("Messages", [])
            if not msgs:
                idle_polls += 1
                if once and idle_polls >= 2 and not running:
                    break
                continue
            idle_polls = 0
            for msg in msgs:
                with lock:
                    running.add(pool.submit(process, msg))
    return 0
