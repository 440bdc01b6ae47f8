"""The local stand-in for EventBridge Scheduler (``make demo``): reads ``jobs/*.json`` every few
seconds and starts ``jobs run NAME --at <tick>`` for every tick that came due.

Like Scheduler it never back-fills: a job is first seen at its latest tick, and only ticks after
that fire. The clock and what "start" means are injected, so a test steps time instead of
waiting for it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from scorer import jobs
from scorer.errors import DropscoreError

log = logging.getLogger("dropscore.ticker")


@dataclass(slots=True)
class Ticker:
    bucket: str
    start: Callable[[str, dt.datetime], None]  # runs one occurrence (a subprocess in the demo)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    #: job name → (its schedule as last read, the latest tick already handled)
    seen: dict[str, tuple[tuple[str, str], dt.datetime]] = field(default_factory=dict)

    def tick(self) -> list[tuple[str, dt.datetime]]:
        """Start every occurrence that came due since the last call; returns them."""
        now = self.clock()
        due = []
        try:
            found = jobs.list_jobs(self.bucket)
        except DropscoreError as exc:  # the bucket is unreachable for a moment: try next time
            log.warning("cannot list jobs", extra={"error": exc.message})
            return []
        for job in found:
            try:
                latest = job.parsed_schedule.latest(now)
            except DropscoreError:
                continue  # a job edited by hand into something invalid: never fired
            what = (job.schedule, job.timezone)
            before = self.seen.get(job.name)
            self.seen[job.name] = (what, latest)
            if before is not None and before[0] == what and latest > before[1]:
                due.append((job.name, latest))
        for name in list(self.seen):
            if name not in {j.name for j in found}:
                del self.seen[name]  # removed: a job added again later starts afresh
        for name, at in due:
            self.start(name, at)
        return due
