"""Local stand-in for EventBridge → Fargate: consume an SQS queue of S3 events and run
``python -m scorer event`` as a subprocess per message, like a task would.

A message is deleted only after a terminal exit (0 or 2); after exit 1 it becomes visible again
and SQS's redrive policy moves it to the dead-letter queue after a few tries. A message that is
not an S3 event at all (poison) goes straight to the DLQ.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
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
    code, tail = run_child(cmd, body.encode(), EVENT_TIMEOUT_S)
    log.info("event finished", extra={"exit": code, "result": tail[:300]})
    return code


def run_child(cmd: list[str], stdin: bytes, timeout: float) -> tuple[int, str]:
    """Run ``cmd`` in its own process group; (exit code, last line of its stderr).

    Its stderr goes to a file, not a pipe: a killed run's leftover descendants (forked
    workers) may still hold it open, and reading a pipe to its end would wait for them. When
    the child has exited (or overrun ``timeout``: exit -9), whatever is left of its group is
    killed, so nothing of a dead run lingers."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a child that exits without reading it
            proc.stdin.write(stdin)
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("event overran its time; killed", extra={"timeout_s": timeout})
            code = -signal.SIGKILL
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        err.seek(max(0, err.seek(0, os.SEEK_END) - 65536))  # the tail is all that is logged
        lines = err.read().decode(errors="replace").strip().splitlines()
    return code, lines[-1] if lines else ""


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
