"""Calendar periods in the user's time zone, and Claude-style 5-hour blocks.

Days start at local midnight, as the user's wall clock shows it, across DST changes: a day can
last 23 or 25 hours, and where a zone skips midnight the day starts at the first instant that
exists. Everything returns UTC epoch seconds.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tzlocal

from supervisor.core.errors import ApiError, ErrorCode

PERIODS = ("5h", "daily", "weekly", "monthly")
WEEKDAYS = tuple(day.lower() for day in calendar.day_name)  # monday first, as date.weekday()
BLOCK = 5 * 3600
HOUR = 3600
BUCKET_STEP = 900  # offsets change on quarter hours


def resolve_zone(name: str | None = None) -> ZoneInfo:
    """The IANA zone ``name``, or the system's own when empty."""
    if not name:
        return ZoneInfo(tzlocal.get_localzone_name() or "UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(
            ErrorCode.INVALID,
            f"Unknown time zone '{name}'; use an IANA name such as Europe/Berlin or UTC.",
        ) from None


def midnight(day: date, zone: ZoneInfo) -> float:
    """When ``day`` starts in ``zone``; a skipped midnight gives the first instant of the day
    (fold=0 reads a time in a gap with the offset from before the jump)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def day_of(ts: float, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(ts, zone).date()


def period_start_day(period: str, day: date, week_start: int) -> date:
    if period == "daily":
        return day
    if period == "weekly":
        return day - timedelta(days=(day.weekday() - week_start) % 7)
    if period == "monthly":
        return day.replace(day=1)
    raise ValueError(period)


def next_start_day(period: str, first: date) -> date:
    if period == "daily":
        return first + timedelta(days=1)
    if period == "weekly":
        return first + timedelta(days=7)
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def calendar_window(period: str, ts: float, zone: ZoneInfo, week_start: int) -> tuple[float, float]:
    """The daily/weekly/monthly period containing ``ts``: (start, end) in UTC seconds."""
    first = period_start_day(period, day_of(ts, zone), week_start)
    return midnight(first, zone), midnight(next_start_day(period, first), zone)


def floor_hour(ts: float) -> float:
    return ts - ts % HOUR


def blocks(timestamps: list[float]) -> list[tuple[float, float]]:
    """5-hour billing blocks over sorted ``timestamps``, as ccusage draws them: a block starts
    at the hour of its first response and takes every response until 5 h after its start or a
    5-hour silence; (block start, last response) each."""
    found: list[tuple[float, float]] = []
    start: float | None = None
    last = 0.0  # the previous response (read only once a block has started)
    for ts in timestamps:
        if start is None or ts - start >= BLOCK or ts - last >= BLOCK:
            if start is not None:
                found.append((start, last))
            start = floor_hour(ts)
        last = ts
    if start is not None:
        found.append((start, last))
    return found


def offset_at(ts: float, zone: ZoneInfo) -> int:
    """The zone's UTC offset at ``ts``, in seconds."""
    offset = datetime.fromtimestamp(ts, zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def offset_segments(zone: ZoneInfo, low: float, high: float) -> list[tuple[float, int]]:
    """The zone's UTC offsets over [low, high]: ``(from, offset)`` pairs, the first from
    ``low``. Offsets change on quarter hours; looking once a day finds every change (none
    happen twice in a day), then a bisection finds its quarter hour."""
    segments = [(low, offset_at(low, zone))]
    t = low
    while t < high:
        step = min(t + 86400, high)
        after = offset_at(step, zone)
        if after != segments[-1][1]:
            a, b = t, step  # the change is in (a, b]
            while b - a > BUCKET_STEP:
                mid = a + ((b - a) // 2 // BUCKET_STEP) * BUCKET_STEP or a + BUCKET_STEP
                if offset_at(mid, zone) == after:
                    b = mid
                else:
                    a = mid
            segments.append((b, after))
        t = step
    return segments
