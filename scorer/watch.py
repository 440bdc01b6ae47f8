"""Local stand-in for EventBridge → Fargate: consume an SQS queue of S3 events and run
``python -m scorer event`` as a subprocess per message, like a task would.

A message is deleted only after a terminal exit (0 or 2) for every object it names; after
exit 1 it becomes visible again and SQS's redrive policy moves it to the dead-letter queue after
a few tries. A message that is not an S3 event at all (poison) goes straight to the DLQ. While
a run lasts, the message's visibility is extended, so a long file is never handed out twice.

moto's EventBridge puts keys into events unencoded, where AWS URL-encodes them; the watcher
hands each child the event AWS would have sent (``events.eventbridge_event``), so ``scorer
event`` decodes keys exactly once (``raw_keys`` says which kind the queue carries).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from scorer import events, service, shards, storage
from scorer.errors import DropscoreError

log = logging.getLogger("dropscore.watch")

RETRY_VISIBILITY_S = 20
EVENT_TIMEOUT_S = 3600
#: a received message stays hidden this long, renewed every HEARTBEAT_S while its run lasts
VISIBILITY_S = 600
HEARTBEAT_S = 60


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
    cmd += ["--event-bus", settings.event_bus or "off"]
    if settings.ui_url:
        cmd += ["--ui-url", settings.ui_url]
    if settings.max_rejected_rate is not None:
        cmd += ["--max-rejected-rate", repr(settings.max_rejected_rate)]
    limits = settings.limits  # the budget ends a poison file in the child, before the timeout
    cmd += ["--max-input-mb", f"{limits.max_input_mb:g}"]
    cmd += ["--max-decompressed-mb", f"{limits.max_decompressed_mb:g}"]
    cmd += ["--max-cpu-seconds", f"{limits.max_cpu_seconds:g}"]
    cmd += scale_args(settings.scale)
    code, tail = run_child(cmd, body.encode(), EVENT_TIMEOUT_S)
    log.info("event finished", extra={"exit": code, "result": _result_line(tail)})
    return code


def scale_args(scale: shards.Scale | None) -> list[str]:
    """The child's --cluster, --cluster-timeout and --shard-over-mb: watch's own, as parsed."""
    if scale is None:
        return []
    # bytes / 2**20 is exact in a float, so the child parses back the same shard size
    mb = "off" if scale.shard_bytes is None else repr(scale.shard_bytes / (1024 * 1024))
    spec = scale.cluster
    return ["--cluster", str(spec), "--cluster-timeout", repr(spec.timeout), "--shard-over-mb", mb]


def run_child(cmd: list[str], stdin: bytes, timeout: float) -> tuple[int, str]:
    """Run ``cmd`` in its own process group; (exit code, the tail of its stderr).

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
        tail = err.read().decode(errors="replace")
    return code, tail


def _result_line(stderr: str) -> str:
    """The event's summary (status, counts, warnings, alerts) or its error line."""
    lines = stderr.strip().splitlines() or [""]
    heads = ("ok:", "partial:", "failed:", "already scored:", "ignored:", "error [")
    found = [line for line in lines if line.startswith(heads)]
    return (found or lines)[-1][:1000]


def watch(
    queue_url: str,
    settings: service.Settings,
    *,
    dlq: str | None = None,
    concurrency: int = 2,
    once: bool = False,
    raw_keys: bool = True,
) -> int:
    """``raw_keys``: the queue's events carry keys unencoded (moto's EventBridge); pass False
    for a queue fed by AWS EventBridge, whose keys are URL-encoded."""
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
            found = events.parse_all(body, raw_keys=raw_keys)
        except DropscoreError as exc:
            log.warning("poison message → DLQ", extra={"error": exc.message})
            if dlq:
                sqs.send_message(QueueUrl=dlq, MessageBody=body)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
            return
        # every object of the message (an S3 notification may name several), one task each
        with _keep_hidden(sqs, queue_url, receipt):
            codes = {
                str(ref): handle(json.dumps(events.eventbridge_event(ref)), settings)
                for ref in found
            }
        failed = {ref: code for ref, code in codes.items() if code not in (0, 2)}
        if not failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
        else:
            log.warning("event failed; will retry", extra={"objects": failed})
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
                        VisibilityTimeout=VISIBILITY_S,
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


@contextmanager
def _keep_hidden(sqs: Any, queue_url: str, receipt: str) -> Iterator[None]:
    """Renew the message's visibility while its runs last (a run may take EVENT_TIMEOUT_S):
    otherwise SQS hands it out again mid-run and a long file can end in the DLQ."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_S):
            try:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=VISIBILITY_S
                )
            except Exception as exc:  # the next beat retries; the run itself is unaffected
                log.warning("could not extend visibility", extra={"error": str(exc)})

    thread = threading.Thread(target=beat, name="sqs-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
