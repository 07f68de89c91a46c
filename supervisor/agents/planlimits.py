"""A provider plan's own limits, as the agents report them: the share of each window used and
when it resets.

- Claude Code passes its ``statusLine`` command JSON whose ``rate_limits`` has ``five_hour``
  and ``seven_day``, each with ``used_percentage`` (0-100) and ``resets_at`` (epoch seconds;
  an ISO time is read too), for subscribers after a session's first API response. It is
  optional: absent means unknown, never 0 %.
- Codex CLI writes ``rate_limits`` in its rollouts' ``token_count`` events: ``primary`` and
  ``secondary``, each with ``used_percent``, ``window_minutes`` and ``resets_at`` (or the
  older ``resets_in_seconds``). Which is which is read from ``window_minutes``, never from
  the position (300 is the five-hour window, 10080 the seven-day one).

Pure functions of their input, except :func:`codex_windows_in`, which reads a rollout's end.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

FIVE_HOUR, SEVEN_DAY = "five_hour", "seven_day"
MINUTES = {FIVE_HOUR: 300, SEVEN_DAY: 10080}
LABELS = {FIVE_HOUR: "5-hour", SEVEN_DAY: "7-day"}
_EPOCH_RANGE = (946_684_800, 4_102_444_800)  # 2000 to 2100: anything else is not a reset


@dataclass(frozen=True)
class Window:
    """One limit window's use: its name (``five_hour``, ``seven_day``, or ``<minutes>m``),
    the percentage used, and its reset (UTC epoch seconds, None when not said)."""

    name: str
    used_percent: float
    resets_at: float | None


def window_name(minutes: int) -> str:
    """The window of a Codex ``window_minutes``: five_hour, seven_day, else ``<minutes>m``."""
    for name, length in MINUTES.items():
        if minutes == length:
            return name
    return f"{minutes}m"


def label(name: str) -> str:
    """A window's name for people: "5-hour", "7-day", "90-minute", "2-day"."""
    if name in LABELS:
        return LABELS[name]
    minutes = int(name.rstrip("m")) if name.rstrip("m").isdigit() else 0
    if minutes and minutes % 1440 == 0:
        return f"{minutes // 1440}-day"
    if minutes and minutes % 60 == 0:
        return f"{minutes // 60}-hour"
    return f"{minutes}-minute" if minutes else name


def from_claude(rate_limits: Any) -> list[Window]:
    """The windows of a Claude Code status line's ``rate_limits`` (none when it is absent or
    malformed; a window without a percentage is left out)."""
    found = []
    for name in (FIVE_HOUR, SEVEN_DAY):
        window = rate_limits.get(name) if isinstance(rate_limits, dict) else None
        if not isinstance(window, dict):
            continue
        used = _percent(window.get("used_percentage"))
        if used is not None:
            found.append(Window(name, used, _instant(window.get("resets_at"))))
    return found


def from_codex(rate_limits: Any, written: float) -> list[Window]:
    """The windows of a Codex ``rate_limits`` object, each named by its ``window_minutes``
    (a window without one is left out: its length is unknown); ``written`` is when the line
    was written, what ``resets_in_seconds`` counts from."""
    found: dict[str, Window] = {}
    for window in rate_limits.values() if isinstance(rate_limits, dict) else ():
        if not isinstance(window, dict):
            continue
        minutes, used = window.get("window_minutes"), _percent(window.get("used_percent"))
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
            continue
        if used is None:
            continue
        resets_at = _instant(window.get("resets_at"))
        seconds = _number(window.get("resets_in_seconds"))
        if resets_at is None and seconds is not None:
            resets_at = _instant(written + seconds)
        found[window_name(minutes)] = Window(window_name(minutes), used, resets_at)
    return list(found.values())


def codex_windows_in(path: Path, max_bytes: int = 256 * 1024) -> list[Window]:
    """The windows of the last ``token_count`` event with ``rate_limits`` in the final
    ``max_bytes`` of a Codex rollout (none for a missing or unreadable file)."""
    try:
        with Path(path).open("rb") as file:
            start = max(0, file.seek(0, 2) - max_bytes)
            file.seek(start)
            lines = file.read(max_bytes).split(b"\n")[1 if start else 0 :]
    except OSError:
        return []
    for line in reversed(lines):
        if b'"rate_limits"' not in line:
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        payload = obj.get("payload") if isinstance(obj, dict) else None
        if isinstance(payload, dict) and payload.get("type") == "token_count":
            found = from_codex(payload.get("rate_limits"), _written(obj))
            if found:
                return found
    return []


def _written(obj: dict[str, Any]) -> float:
    """When a rollout line was written (its ISO ``timestamp``; now when it has none)."""
    with contextlib.suppress(KeyError, TypeError, ValueError):
        written = datetime.fromisoformat(str(obj["timestamp"]).replace("Z", "+00:00"))
        return (written if written.tzinfo else written.replace(tzinfo=UTC)).timestamp()
    return datetime.now(UTC).timestamp()


def describe(name: str, used_percent: float, resets_at: float | None, zone: tzinfo,
             now: float) -> str:  # fmt: skip
    """One line for people: "5-hour: 63 %, resets 23:00" (a reset on another day names the
    day: "resets Mon 09:00"; an unknown one is left out). After the reset, until the agent
    reports again, the use is unknown: "5-hour: reset at 23:00 (was 63 %)"."""
    if resets_at is None:
        return f"{label(name)}: {used_percent:.0f} %"
    local, today = datetime.fromtimestamp(resets_at, zone), datetime.fromtimestamp(now, zone)
    day = "" if local.date() == today.date() else f"{local:%a} "
    if resets_at <= now:
        return f"{label(name)}: reset at {day}{local:%H:%M} (was {used_percent:.0f} %)"
    return f"{label(name)}: {used_percent:.0f} %, resets {day}{local:%H:%M}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    with contextlib.suppress(OverflowError):
        return value if math.isfinite(value := float(value)) else None
    return None


def _percent(value: Any) -> float | None:
    """A percentage used, 0 to 100 (a little over 100 is what it says: over the limit)."""
    number = _number(value)
    return number if number is not None and 0 <= number <= 1000 else None


def _instant(value: Any) -> float | None:
    """Epoch seconds (a number, or an ISO 8601 time) as a plausible reset time, else None."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    number = _number(value)
    return number if number is not None and _EPOCH_RANGE[0] < number < _EPOCH_RANGE[1] else None
