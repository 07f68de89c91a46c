"""Recognise that an agent hit its provider's usage limit, and when that limit resets.

Claude Code and Codex CLI stop working when a subscription's 5-hour or weekly allowance is
spent, and say so in their logs and on the terminal. The supervisor reads those words to put
the run into "paused: limit" instead of "exited", and to resume it at the reset. Everything
here is a pure function of its input, except :func:`scan_file_tail`, which reads a file.

What counts as a hit (``tests/test_limits.py`` has a full line of each):

- Claude Code, on the terminal or as an assistant transcript line marked
  ``isApiErrorMessage`` (or ``"error": "rate_limit"``): ``Claude AI usage limit
  reached|<epoch>``, ``5-hour limit reached ∙ resets 11pm``, ``You've hit your limit · resets
  3pm (Europe/Berlin)``, ``Weekly limit reached ∙ resets Nov 25, 4pm``, ``Opus weekly limit
  reached ∙ resets Mon 9am``, ``Claude usage limit reached. Your limit will reset at 11pm
  (America/New_York).``
- Codex CLI: a rollout ``token_count`` whose ``rate_limits`` window is at 100%, and ``You've
  hit your usage limit. ... try again in 2 hours 5 minutes.`` (or ``try again at 3:45 PM``).

Only a message that starts its line (after bullets, box drawing or an ``ERROR:`` prefix)
counts, so an agent's prose that talks about limits is not mistaken for one. A clock time is
read in the zone the message names, else in the caller's, and means its next occurrence after
the message was written: the log line's own ``timestamp`` when it has one, else ``now``, so
re-reading an old line does not push its reset a day later.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_EPOCH_RANGE = (946_684_800, 4_102_444_800)  # 2000 to 2100: anything else is not a reset time

# Terminal control: OSC (window titles, links), CSI (colours, cursor moves), other escapes.
# A TUI places its lines with cursor moves, so a move ends a line; a move right is a space.
_OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
_CSI = re.compile(r"\x1b\[[0-?]*[ -/]*([@-~])")
_ESC = re.compile(r"\x1b[@-Z\\^_]?")

_LEAD = r"[^\w\n]*(?:(?:api )?error:\s*)?"  # "■ ", "  ⎿  ", "ERROR: ", "API Error: "
_PHRASES = {  # tried in this order for an agent we do not know
    "codex": re.compile(_LEAD + r"(?P<words>you['\u2019]ve hit (?:usage )?your usage limit)", re.I),
    "claude": re.compile(
        _LEAD + r"(?P<words>claude (?:ai )?usage limit reached"
        r"|you['\u2019]ve hit your (?:[\w.-]+ ){0,3}?limit\b"
        r"|(?:[\w.-]+ )?(?:5-hour|session|weekly|daily) limit reached"
        r"|(?:[\w.-]+ ){0,2}?limit reached(?=\s*[∙·•|,.-]?\s*resets?\b))",
        re.I,
    ),
}
# Claude Code 1.x and early 2.x: the reset epoch after a bar, in the transcript and as the
# whole output of `claude -p` (also inside its JSON), so it is looked for anywhere in a line.
_CLAUDE_RAW = re.compile(r"(claude ai usage limit reached)\|(\d+)", re.I)

_AFTER = re.compile(r"\b(?:try again|resets?) in\s+((?:\d{1,9}\s*[a-z]+(?:,|\s+and)?\s*)+)", re.I)
_UNIT = re.compile(r"(\d{1,9})\s*([dhms])[a-z]*", re.I)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_WHEN = re.compile(
    r"\b(?:resets?|try again)\s+(?:(?:at|on)\s+)?"
    r"(?:(?P<weekday>mon|tue|wed|thu|fri|sat|sun)(?:day|sday|nesday|rsday|urday)?\.?\b,?\s*)?"
    r"(?:(?P<month>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+"
    r"(?P<day>\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>\d{4})\b)?(?:,|\s+at\b)?\s*)?"
    r"(?:(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<ampm>[ap]\.?m\b\.?)?)?"
    r"(?:\s*\((?P<zone>[A-Za-z][\w+\-/]*)\))?",
    re.I,
)


@dataclass(frozen=True)
class LimitHit:
    """An agent's report that its provider's usage limit was reached, and when it resets."""

    agent: str  # "claude" | "codex"
    resets_at: float | None  # UTC epoch seconds; None when the message gave no reset time
    message: str  # the agent's own words, one line, ANSI stripped, at most 200 chars


def from_claude_line(obj: dict, now: float, zone: tzinfo) -> LimitHit | None:
    """The limit hit that one parsed line of a Claude Code transcript reports, if any: only an
    assistant line marked as an API error (or a rate-limit error) counts."""
    if not isinstance(obj, dict) or obj.get("type") != "assistant":
        return None
    if obj.get("isApiErrorMessage") is not True and obj.get("error") != "rate_limit":
        return None
    message = obj.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return None
    texts = [block.get("text") for block in content if isinstance(block, dict)]
    text = "\n".join(t for t in texts if isinstance(t, str))
    return _find(text, ("claude",), _line_time(obj, now), zone)


def from_codex_line(obj: dict, now: float) -> LimitHit | None:
    """The limit hit that one parsed line of a Codex rollout file reports, if any: a full
    rate-limit window, or a usage-limit error (its clock times are in this machine's zone, as
    Codex writes them)."""
    payload = obj.get("payload") if isinstance(obj, dict) else None
    if not isinstance(payload, dict) or obj.get("type") != "event_msg":
        return None
    written = _line_time(obj, now)
    if payload.get("type") == "token_count":
        return _full_window(payload.get("rate_limits"), written)
    if payload.get("type") == "error" and isinstance(payload.get("message"), str):
        local = datetime.fromtimestamp(written).astimezone().tzinfo or UTC
        return _find(payload["message"], ("codex",), written, local)
    return None


def from_output(agent: str, text: str, now: float, zone: tzinfo) -> LimitHit | None:
    """The last limit message in a chunk of an agent's terminal output (ANSI escapes and
    carriage returns allowed); an agent other than claude or codex is tried as both."""
    if not isinstance(text, str):
        return None
    return _find(text, (agent,) if agent in _PHRASES else tuple(_PHRASES), now, zone)


def scan_file_tail(
    path: Path,
    agent: str,
    now: float,
    zone: tzinfo,
    max_bytes: int = 256 * 1024,
    since: float | None = None,
) -> LimitHit | None:
    """The last limit hit in the final ``max_bytes`` of a file: a ``.jsonl`` agent log read line
    by line, anything else as terminal output. A missing or unreadable file gives None.

    With ``since`` (a run's start), only what was written from then on counts: JSONL lines by
    their ``timestamp``, output lines by the supervisor's log stamp; and a Claude reply after
    the hit means the session went on (the limit is not how the run ended)."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            limit = max(0, max_bytes)
            start = max(0, file.seek(0, 2) - limit)
            file.seek(start)
            data = file.read(limit)
    except OSError:
        return None
    if start:
        data = data.partition(b"\n")[2]  # the first line was cut in two
    text = data.decode("utf-8", "replace")
    if path.suffix != ".jsonl":  # a runner's log: each line after the supervisor's stamp
        lines = text.split("\n")
        if since is not None:
            lines = [line for line in lines if _stamp(line, since) >= since]
        return from_output(agent, "\n".join(_LOG_STAMP.sub("", ln) for ln in lines), now, zone)
    last = None
    for line in text.split("\n"):
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(obj, dict) or (since is not None and _line_time(obj, since) < since):
            continue
        hit = from_claude_line(obj, now, zone) if agent != "codex" else None
        if hit is None and agent != "claude":
            hit = from_codex_line(obj, now)
        if hit is None and since is not None and _a_reply(obj):
            last = None  # the session carried on after the limit
        last = hit or last
    return last


_LOG_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) ")


def _stamp(line: str, default: float) -> float:
    """When the supervisor logged an output line (its ISO stamp prefix), else ``default``."""
    found = _LOG_STAMP.match(line)
    if found is None:
        return default
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(found.group(1).replace("Z", "+00:00")).timestamp()
    return default


def _a_reply(obj: dict) -> bool:
    """A Claude transcript line of a real model reply (not a synthetic API error)."""
    return obj.get("type") == "assistant" and not obj.get("isApiErrorMessage")


def describe_reset(resets_at: float | None, now: float, zone: tzinfo) -> str:
    """When a limit resets, in words for a notification, in local time in ``zone``: "resets
    at 23:00 (in 2 h 5 min)", "resets tomorrow at 09:00 (in 14 h)" or "reset time unknown"."""
    if resets_at is None or _epoch(resets_at) is None:
        return "reset time unknown"
    local = datetime.fromtimestamp(resets_at, zone)
    today = datetime.fromtimestamp(now, zone).date()
    if local.date() == today:
        day = ""
    elif local.date() == today + timedelta(days=1):
        day = "tomorrow "
    else:
        day = f"{_DAYS[local.weekday()].title()} {local.day} {_MONTHS[local.month - 1].title()} "
        if local.year != today.year:
            day += f"{local.year} "
    return f"resets {day}at {local:%H:%M} ({_duration(resets_at - now)})"


def _find(text: str, agents: tuple[str, ...], written: float, zone: tzinfo) -> LimitHit | None:
    """The last line of ``text`` that starts with one of ``agents``' limit messages."""
    text = _OSC.sub("", text)
    text = _CSI.sub(lambda m: "\n" if m[1] in "ABEFGHdf" else " " if m[1] == "C" else "", text)
    lines = _ESC.sub("", text).replace("\r", "\n").split("\n")
    for i in range(len(lines) - 1, -1, -1):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        for agent in agents:
            if hit := _hit(agent, lines[i], following, written, zone):
                return hit
    return None


def _hit(agent: str, line: str, following: str, written: float, zone: tzinfo) -> LimitHit | None:
    """The hit ``line`` reports if it starts with ``agent``'s limit message."""
    if agent == "claude" and (raw := _CLAUDE_RAW.search(line)):
        return LimitHit(agent, _epoch(float(raw[2])), raw[1])
    if not (match := _PHRASES[agent].match(line)):
        return None
    words = line[match.start("words") :]
    resets_at = _reset_time(words, written, zone)
    if resets_at is None and following.strip():  # a long message wrapped by the terminal
        wrapped = f"{words} {following}"
        if (resets_at := _reset_time(wrapped, written, zone)) is not None:
            words = wrapped
    return LimitHit(agent, resets_at, " ".join(words.split())[:200])


def _reset_time(words: str, written: float, zone: tzinfo) -> float | None:
    """The instant a message's "try again in ...", "resets ..." or "try again at ..." names."""
    if after := _AFTER.search(words):
        units = _UNIT.findall(after[1])
        return _epoch(written + sum(int(n) * _UNIT_SECONDS[u.lower()] for n, u in units))
    # The first "reset"/"try again" that names a time: Codex says "Limits reset every 5h and
    # every week. Try again at 3:45 PM."
    for when in _WHEN.finditer(words):
        if (instant := _resolve(when, written, zone)) is not None:
            return instant
    return None


def _resolve(when: re.Match[str], written: float, zone: tzinfo) -> float | None:
    """The next instant after ``written`` that a ``_WHEN`` match names (its date if it has a
    year), in the zone it names or else ``zone``."""
    if when["zone"]:
        with contextlib.suppress(KeyError, ValueError, OSError):  # KeyError: unknown zone
            zone = ZoneInfo(when["zone"])
    hour, minute = int(when["hour"] or 0), int(when["minute"] or 0)
    if when["ampm"]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if when["ampm"][0] in "pP" else 0)
    elif when["hour"] and not when["minute"]:
        return None  # a bare number is not a time
    if not (when["hour"] or when["weekday"] or when["month"]) or hour > 23 or minute > 59:
        return None
    at = time(hour, minute)
    start = datetime.fromtimestamp(written, zone).date()
    if when["month"]:
        month, day = _MONTHS.index(when["month"][:3].lower()) + 1, int(when["day"])
        for year in [int(when["year"])] if when["year"] else [start.year, start.year + 1]:
            with contextlib.suppress(ValueError):  # Feb 30, or Feb 29 in a common year
                instant = _instant(date(year, month, day), at, zone)
                if when["year"] or instant > written:
                    return _epoch(instant)
        return None
    weekday = _DAYS.index(when["weekday"][:3].lower()) if when["weekday"] else None
    for offset in range(8):
        on = start + timedelta(days=offset)
        if weekday in (None, on.weekday()) and (instant := _instant(on, at, zone)) > written:
            return instant
    return None


def _instant(day: date, at: time, zone: tzinfo) -> float:
    """A local wall time as an instant. fold=0 reads a time in a spring-forward gap with the
    offset from before the jump (02:30 becomes 03:30) and an ambiguous one as its first."""
    return datetime.combine(day, at, tzinfo=zone).timestamp()


def _full_window(rate_limits: Any, written: float) -> LimitHit | None:
    """A hit when a Codex rate-limit window is used up; the latest reset of the full ones."""
    full: list[tuple[float | None, Any]] = []
    for window in rate_limits.values() if isinstance(rate_limits, dict) else ():
        used = _number(window.get("used_percent")) if isinstance(window, dict) else None
        if used is None or used < 100:
            continue
        resets_at = _epoch(window.get("resets_at"))
        seconds = _number(window.get("resets_in_seconds"))
        if resets_at is None and seconds is not None:
            resets_at = _epoch(written + seconds)
        full.append((resets_at, window.get("window_minutes")))
    if not full:
        return None
    resets_at, minutes = max(full, key=lambda window: window[0] or 0)
    if minutes == 10080:
        name = "weekly"
    elif isinstance(minutes, int) and minutes > 0:
        name = f"{minutes // 60}-hour" if minutes % 60 == 0 else f"{minutes}-minute"
    else:
        name = "usage"
    return LimitHit("codex", resets_at, f"{name} limit reached (100% used)")


def _line_time(obj: dict, now: float) -> float:
    """When a log line was written: its ISO ``timestamp`` (UTC when it names no offset)."""
    with contextlib.suppress(KeyError, TypeError, ValueError):
        written = datetime.fromisoformat(obj["timestamp"])
        if written.tzinfo is None:
            written = written.replace(tzinfo=UTC)
        return _epoch(written.timestamp()) or now
    return now


def _number(value: Any) -> float | None:
    """A JSON number as a finite float; None for anything else (booleans, strings, 1e999)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    with contextlib.suppress(OverflowError):  # an int too large for a float
        return value if math.isfinite(value := float(value)) else None
    return None


def _epoch(value: Any) -> float | None:
    """``value`` as epoch seconds, or None when it cannot be a reset time."""
    number = _number(value)
    return number if number is not None and _EPOCH_RANGE[0] < number < _EPOCH_RANGE[1] else None


def _duration(seconds: float) -> str:
    """How long until a reset, roughly: "in 2 h 5 min", "in 3 days"."""
    if seconds <= 0:
        return "due now"
    minutes = int(seconds // 60)
    if minutes < 1:
        return "in less than a minute"
    if minutes < 60:
        return f"in {minutes} min"
    if minutes < 48 * 60:
        hours, minutes = divmod(minutes, 60)
        return f"in {hours} h {minutes} min" if minutes else f"in {hours} h"
    return f"in {round(seconds / 86400)} days"
