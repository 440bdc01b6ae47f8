"""Schedule expressions of jobs (pure): what EventBridge Scheduler would refuse is refused here
first, and ticks/occurrence ids are the same whoever computes them."""

from __future__ import annotations

import datetime as dt

import pytest

from scorer import schedules
from scorer.errors import BadArgument

UTC = dt.UTC


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 2 * *)",  # five fields: a Unix cron, not an AWS one
        "cron(0 2 * * * *)",  # neither day field is '?'
        "cron(0 2 ? * ? *)",  # both are
        "cron(75 2 * * ? *)",  # minute out of range
        "cron(a b c d e f)",
        "rate(0 minutes)",
        "rate(5 minute)",  # EventBridge wants the plural for more than one
        "rate(1 minutes)",
        "rate(1 week)",
        "every day at 2",
        "",
    ],
    ids=lambda e: e or "empty",
)
def test_a_bad_expression_is_refused_with_an_example(expression: str) -> None:
    with pytest.raises(BadArgument, match=r"cron|rate"):
        schedules.parse(expression)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(BadArgument, match="time zone 'Mars/Base'"):
        schedules.parse("rate(1 hour)", "Mars/Base")


def test_a_rate_ticks_on_epoch_aligned_boundaries() -> None:
    every_minute = schedules.parse("rate(1 minute)")
    at = dt.datetime(2026, 3, 1, 10, 7, 42, tzinfo=UTC)
    assert every_minute.latest(at) == dt.datetime(2026, 3, 1, 10, 7, tzinfo=UTC)
    assert every_minute.next(at) == dt.datetime(2026, 3, 1, 10, 8, tzinfo=UTC)
    two_hours = schedules.parse("rate(2 hours)")
    assert two_hours.latest(at) == dt.datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert two_hours.words() == "every 2 hours"
    assert every_minute.words() == "every minute"


def test_a_cron_tick_is_in_the_jobs_time_zone() -> None:
    nightly = schedules.parse("cron(0 2 * * ? *)", "Europe/Paris")
    # 02:00 in Paris is 01:00 UTC in winter, 00:00 UTC in summer
    winter = dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    summer = dt.datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
    assert nightly.latest(winter) == dt.datetime(2026, 1, 15, 1, 0, tzinfo=UTC)
    assert nightly.next(winter) == dt.datetime(2026, 1, 16, 1, 0, tzinfo=UTC)
    assert nightly.latest(summer) == dt.datetime(2026, 7, 15, 0, 0, tzinfo=UTC)
    assert nightly.words() == "at 02:00 Europe/Paris, every day"


def test_the_scheduled_time_and_any_time_in_its_tick_give_one_occurrence() -> None:
    nightly = schedules.parse("cron(0 2 * * ? *)")
    tick = dt.datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
    ids = {
        schedules.occurrence_id(nightly.latest(tick + dt.timedelta(seconds=s)))
        for s in (0, 1, 59, 3600)
    }
    assert ids == {"20260115T0200Z"}
    assert schedules.parse_time("2026-01-15T02:00:00Z") == tick
    assert schedules.parse_time("2026-01-15T03:00:00+01:00") == tick
    with pytest.raises(BadArgument, match="--at"):
        schedules.parse_time("yesterday")
