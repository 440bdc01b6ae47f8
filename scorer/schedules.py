"""Schedule expressions of jobs: AWS ``cron(…)`` and ``rate(…)``, their ticks and occurrence ids
(pure: the clock is always an argument).

cron() expressions are parsed and stepped by pyawscron (EventBridge's six-field syntax); rate()
is a number and a unit. Ticks of a rate are aligned to the epoch (a rate(1 hour) job ticks on
the hour) so every process computes the same occurrence for the same moment; EventBridge
Scheduler passes its own scheduled time, which falls in exactly one such window.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scorer.errors import BadArgument

UTC = dt.UTC
_RATE = re.compile(r"^rate\(\s*([0-9]{1,6})\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}
#: occurrence ids: a scheduled tick (to the minute), or a manual run (to the second)
_TICK_ID = "%Y%m%dT%H%MZ"
_MANUAL_ID = "manual-%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A validated expression in a time zone."""

    expression: str  # as EventBridge Scheduler takes it: "cron(0 2 * * ? *)" or "rate(1 hour)"
    timezone: str = "UTC"
    rate_s: int = 0  # rate(): the period in seconds; 0 for cron()

    @property
    def cron(self) -> str:
        m = _CRON.match(self.expression)
        return m.group(1).strip() if m else ""

    def latest(self, at: dt.datetime) -> dt.datetime:
        """The latest tick at or before ``at`` (UTC)."""
        at = _utc(at)
        if self.rate_s:
            seconds = int(at.timestamp()) // self.rate_s * self.rate_s
            return dt.datetime.fromtimestamp(seconds, UTC)
        local = _wall(at + dt.timedelta(minutes=1), self.timezone)
        return _unwall(_aws(self.cron).occurrence(local).prev(), self.timezone)

    def next(self, after: dt.datetime) -> dt.datetime:
        """The first tick strictly after ``after`` (UTC)."""
        after = _utc(after)
        if self.rate_s:
            return self.latest(after) + dt.timedelta(seconds=self.rate_s)
        local = _wall(after, self.timezone)
        return _unwall(_aws(self.cron).occurrence(local).next(), self.timezone)

    def words(self) -> str:
        """The schedule as a person reads it."""
        if self.rate_s:
            n, unit = _RATE.match(self.expression).groups()  # type: ignore[union-attr]
            return f"every {n} {unit}" if int(n) != 1 else f"every {unit.rstrip('s')}"
        minute, hour, dom, month, dow, year = self.cron.split()
        when = (
            f"at {int(hour):02d}:{int(minute):02d}"
            if minute.isdigit() and hour.isdigit()
            else f"minute {minute}, hour {hour}"
        )
        days = []
        if dom not in ("*", "?"):
            days.append(f"day-of-month {dom}")
        if dow not in ("*", "?"):
            days.append(f"weekday {dow}")
        if month != "*":
            days.append(f"month {month}")
        if year != "*":
            days.append(f"year {year}")
        return f"{when} {self.timezone}" + (f" ({', '.join(days)})" if days else ", every day")


def parse(expression: str, timezone: str = "UTC") -> Schedule:
    """A Schedule, or BadArgument saying what EventBridge Scheduler would refuse."""
    text = expression.strip()
    tz = _zone(timezone)
    rate = _RATE.match(text)
    if rate:
        n, unit = int(rate.group(1)), rate.group(2)
        if n < 1:
            raise BadArgument(f"schedule '{text}': the rate must be at least 1 {unit}")
        if (n == 1) != (not unit.endswith("s")):
            raise BadArgument(
                f"schedule '{text}': write 'rate(1 {unit.rstrip('s')})' for one and "
                f"'rate({n} {unit.rstrip('s')}s)' for more (EventBridge refuses the other form)"
            )
        return Schedule(text, tz, rate_s=n * _UNIT_S[unit.rstrip("s")])
    cron = _CRON.match(text)
    if not cron:
        raise BadArgument(
            f"schedule '{text}' is not 'cron(MIN HOUR DAY MONTH WEEKDAY YEAR)' or "
            "'rate(N minutes|hours|days)', e.g. 'cron(0 2 * * ? *)' or 'rate(1 hour)'"
        )
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise BadArgument(
            f"schedule '{text}' has {len(fields)} fields; an AWS cron has six: "
            "minutes hours day-of-month month day-of-week year, e.g. 'cron(0 2 * * ? *)'"
        )
    if (fields[2] == "?") == (fields[4] == "?"):
        raise BadArgument(
            f"schedule '{text}': exactly one of day-of-month and day-of-week must be '?', "
            "e.g. 'cron(0 2 * * ? *)' (every day) or 'cron(0 2 ? * MON *)' (Mondays)"
        )
    schedule = Schedule(f"cron({' '.join(fields)})", tz)
    try:  # the library parses it and finds a tick: an expression that never fires is refused
        _aws(schedule.cron).occurrence(dt.datetime(2026, 1, 1, tzinfo=UTC)).next()
    except Exception as exc:  # pyawscron raises ValueError/IndexError/Exception for bad fields
        raise BadArgument(f"schedule '{text}' is not a valid AWS cron expression: {exc}") from exc
    return schedule


def occurrence_id(tick: dt.datetime) -> str:
    """The id of a scheduled occurrence: its tick in UTC, to the minute."""
    return _utc(tick).strftime(_TICK_ID)


def manual_id(at: dt.datetime) -> str:
    """The id of a run started by hand ('run now'): its own occurrence, to the second."""
    return _utc(at).strftime(_MANUAL_ID)


def parse_time(text: str) -> dt.datetime:
    """An ISO-8601 time (EventBridge Scheduler's <aws.scheduler.scheduled-time>, 'Z' or an
    offset); a time without an offset is UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadArgument(f"--at '{text}' is not an ISO time, e.g. 2026-01-31T02:00:00Z") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadArgument(
            f"time zone '{name}' is unknown; use an IANA name such as UTC or Europe/Paris"
        ) from exc
    return name


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("a schedule needs an aware datetime")
    return value.astimezone(UTC)


def _aws(cron: str) -> Any:
    from pyawscron import AWSCron

    return AWSCron(cron)


# pyawscron steps wall-clock time labelled UTC: a zone's local time goes in, and comes back out
def _wall(at: dt.datetime, tz: str) -> dt.datetime:
    return at.astimezone(ZoneInfo(tz)).replace(tzinfo=UTC)


def _unwall(local: dt.datetime, tz: str) -> dt.datetime:
    return local.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)
