"""A per-file budget: what one run may spend before its file is refused as a whole.

A file that needs more than the configured CPU time, or is larger (as stored, or once
decompressed) than configured, ends in a terminal ``failed`` manifest (``BUDGET_EXCEEDED``,
``TOO_LARGE``, ``DECOMPRESSION_BOMB``), exit 2: a poison file can never hold a sweep or watch
slot, nor come back forever. The run checks its budget at every read of the source and between
batches.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from scorer.codes import Code
from scorer.errors import BadArgument, FileRefused

MB = 1024 * 1024
# generous: the largest file a task should take (10 GiB as stored, 20 GiB of CSV text) at a few
# MB/s per CPU second, the slowest models' pace; raise them for bigger files or slower models
DEFAULT_MAX_INPUT_MB = 10240.0
DEFAULT_MAX_DECOMPRESSED_MB = 20480.0
DEFAULT_MAX_CPU_SECONDS = 1800.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Configured once (``--max-input-mb``, ``--max-decompressed-mb``, ``--max-cpu-seconds``)."""

    max_input_mb: float = DEFAULT_MAX_INPUT_MB
    max_decompressed_mb: float = DEFAULT_MAX_DECOMPRESSED_MB
    max_cpu_seconds: float = DEFAULT_MAX_CPU_SECONDS

    @property
    def max_input_bytes(self) -> int:
        return int(self.max_input_mb * MB)

    @property
    def max_decompressed_bytes(self) -> int:
        return int(self.max_decompressed_mb * MB)

    @classmethod
    def parse(cls, max_input_mb: str, max_decompressed_mb: str, max_cpu_seconds: str) -> Limits:
        return cls(
            _positive("--max-input-mb", max_input_mb),
            _positive("--max-decompressed-mb", max_decompressed_mb),
            _positive("--max-cpu-seconds", max_cpu_seconds),
        )


def _positive(name: str, text: str | float) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise BadArgument(f"{name} must be a number greater than 0, not '{text}'")
    return value


class Budget:
    """One run's meter against its ``Limits``: CPU time since the run started, bytes read."""

    def __init__(self, limits: Limits, cpu: Callable[[], float] | None = None) -> None:
        self.limits = limits
        self._cpu = cpu or run_cpu_clock()
        self._start = self._cpu()

    @property
    def cpu_seconds(self) -> float:
        return self._cpu() - self._start

    def check_size(self, stored_bytes: int | None) -> None:
        """Refuse a file larger than the limit before reading it (its size as stored)."""
        if stored_bytes is not None and stored_bytes > self.limits.max_input_bytes:
            raise _too_large(stored_bytes, self.limits)

    def check(self, bytes_read: int = 0) -> None:
        """Refuse once the run has read more than the size limit or used more CPU time."""
        if bytes_read > self.limits.max_input_bytes:
            raise _too_large(bytes_read, self.limits)
        used = self.cpu_seconds
        if used > self.limits.max_cpu_seconds:
            raise FileRefused(
                f"scoring this file used more than {self.limits.max_cpu_seconds:g} CPU seconds, "
                f"the per-file budget (after {used:.2f} s); split the file, or raise "
                "--max-cpu-seconds (DROPSCORE_MAX_CPU_SECONDS) and upload it again",
                code=Code.BUDGET_EXCEEDED,
            )


def _too_large(size: int, limits: Limits) -> FileRefused:
    return FileRefused(
        f"the file is larger than {limits.max_input_mb:g} MB ({size / MB:,.1f} MB read so far "
        "or stated), the per-file limit; split it, or raise --max-input-mb "
        "(DROPSCORE_MAX_INPUT_MB) and upload it again",
        code=Code.TOO_LARGE,
    )


def run_cpu_clock() -> Callable[[], float]:
    """CPU seconds of the work of a run started in the calling thread.

    In a process's main thread (``score``, ``event``: one run per process) that is the whole
    process — every thread (Arrow's parser, uploads) and the forked scoring workers. In another
    thread (``sweep``'s pool, the UI) runs share the process, so only the calling thread counts:
    reading, decompressing, validating and predicting all happen there (workers are never
    forked from such a thread).
    """
    if threading.current_thread() is threading.main_thread():
        return lambda: time.process_time() + _children_cpu()
    return time.thread_time


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _children_cpu() -> float:
    """CPU seconds of the live forked children (the scoring workers), from /proc on Linux."""
    total = 0.0
    for child in multiprocessing.active_children():
        try:
            with open(f"/proc/{child.pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile, or no /proc: counted as 0
        total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return total
