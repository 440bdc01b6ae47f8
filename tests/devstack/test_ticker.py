"""The demo's local scheduler (devstack/ticker.py) over jobs stored in a real moto bucket, with
an injected clock: it fires each tick of a job once and never back-fills."""

from __future__ import annotations

import datetime as dt
from typing import Any

from devstack.ticker import Ticker
from tests.scorer.test_jobs import add_job

UTC = dt.UTC


def test_the_local_scheduler_fires_a_rate_job_once_per_tick(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    add_job(bucket, "minutely", f"s3://{bucket}/incoming/", "new", "rate(1 minute)")
    now = [dt.datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)]
    started: list[tuple[str, dt.datetime]] = []
    ticker = Ticker(bucket, lambda name, at: started.append((name, at)), clock=lambda: now[0])
    assert ticker.tick() == []  # first sight: past ticks are not back-filled
    now[0] += dt.timedelta(seconds=20)
    assert ticker.tick() == []  # 12:00:50, same tick
    now[0] += dt.timedelta(seconds=15)
    assert ticker.tick() == [("minutely", dt.datetime(2026, 6, 1, 12, 1, tzinfo=UTC))]
    assert ticker.tick() == []  # polled again within the tick: not twice
    now[0] += dt.timedelta(minutes=1)
    ticker.tick()
    assert [at.strftime("%H:%M") for _, at in started] == ["12:01", "12:02"]
