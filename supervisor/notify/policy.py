"""What a channel gets, and when: type filters, a severity floor, quiet hours, coalescing.

Pure functions of their inputs and an explicit ``now`` (epoch seconds); nothing here sleeps,
reads a clock or touches the database. The dispatcher asks :meth:`ChannelPolicy.decide` for
each new event and channel (skip it, send it, or hold it until a time), then asks the
channel's :class:`Coalescer` which of the due deliveries go out now and as what messages.

Defaults, chosen for a demanding user who wants every outcome and no chatter:

- types: the end of a run (``runner.exited``, ``runner.failed``, ``runner.fatal``,
  ``runner.lost``), ``runner.unresponsive``, an agent waiting for the user
  (``runner.needs_input``, ``runner.finished_turn``), provider limits (``runner.paused``,
  ``runner.limit``, ``runner.resume_failed``), a kept worktree, and the budget alarms
  (``budget.*`` but not the ``budget.rollover`` report); not the routine steps (queued,
  starting, running, working, idle, stopping, stopped by the user, backoff before a restart)
  nor ``supervisor.*`` or ``usage.*``.
- minimum severity: ``info`` (a clean exit is info, and is what one waits for).
- quiet hours: none. When set, events below ``error`` are *held* (not dropped) until the quiet
  period ends, then go out, folded into one summary when there are many; ``error`` and
  above go through at once.
- coalescing: at most 5 messages per channel in any 60 s; past that, everything due is
  folded into one summary ("12 runners failed in demo, api").
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from fnmatch import fnmatchcase
from typing import Any
from zoneinfo import ZoneInfo

from supervisor.core import events
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.core.states import RunnerState
from supervisor.notify.channels import SUMMARY_TYPE, Message
from supervisor.usage import periods

SEVERITY_RANK = {"debug": 0, "info": 1, "warning": 2, "error": 3, "critical": 4}
ERROR_RANK = SEVERITY_RANK["error"]

DEFAULT_TYPES = (
    "runner.exited",
    "runner.failed",
    "runner.fatal",
    "runner.lost",
    "runner.unresponsive",
    "runner.needs_input",  # waiting for the user: the reason to have notifications at all
    "runner.finished_turn",  # (interactive runs only: a batch run's end is its exit)
    "runner.paused",  # at a provider limit, with its reset time
    "runner.limit",
    "runner.resume_failed",
    "runner.worktree_kept",
    "plan.threshold",  # a provider plan's 5-hour or 7-day use at a percentage the user set
    "budget.*",
    "!budget.rollover",  # a period's report: the app shows it; not worth a push
)
DEFAULT_MIN_SEVERITY = "info"
DEFAULT_MAX_MESSAGES = 5  # per window, per channel
DEFAULT_WINDOW = 60.0  # seconds
# Seconds a delivery waits for others that follow it (a storm comes within seconds), so that
# they are folded together from the first message on.
DEFAULT_SETTLE = 3.0
DEFAULT_MAX_LISTED = 10  # lines in a summary before "... and N more"

_PATTERN = re.compile(r"!?[A-Za-z0-9_.*?\[\]-]+")
_QUIET = re.compile(r"\s*([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})\s*")


def severity_rank(severity: str) -> int:
    """Order of severities (an unknown one counts as info)."""
    return SEVERITY_RANK.get(severity, SEVERITY_RANK["info"])


def type_matches(patterns: Iterable[str], event_type: str) -> bool:
    """Whether ``event_type`` is selected by glob ``patterns`` (``runner.*``); a pattern
    starting with ``!`` deselects, and the last pattern that matches wins."""
    selected = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if fnmatchcase(event_type, pattern[1:] if negated else pattern):
            selected = not negated
    return selected


# --- quiet hours ------------------------------------------------------------------------------
def _zone(name: str | None) -> ZoneInfo | None:
    """The named zone (None: the system's, looked up when used)."""
    return periods.resolve_zone(name) if name else None


@dataclass(frozen=True)
class QuietHours:
    """A daily quiet period, e.g. 22:00-07:00 (it may cross midnight), in an IANA time zone
    (None: the system's local time), DST included."""

    start: dtime
    end: dtime
    zone: str | None = None

    @classmethod
    def parse(cls, spec: str, zone: str | None = None) -> QuietHours:
        """From ``"HH:MM-HH:MM"``; raises :class:`ApiError` with one sentence."""
        match = _QUIET.fullmatch(spec) if isinstance(spec, str) else None
        values = [int(group) for group in match.groups()] if match else []
        if not match or values[0] > 23 or values[2] > 24 or values[1] > 59 or values[3] > 59:
            raise ApiError(ErrorCode.INVALID, f"Quiet hours {spec!r} must look like 22:00-07:00.")
        start = dtime(values[0], values[1])
        end = dtime(0, 0) if values[2] == 24 else dtime(values[2], values[3])
        if start == end:
            raise ApiError(
                ErrorCode.INVALID, f"Quiet hours {spec!r} start and end at the same time."
            )
        _zone(zone)
        return cls(start, end, zone)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def ends_at(self, now: float) -> float | None:
        """When the quiet period that contains ``now`` ends (epoch seconds), or None when
        ``now`` is not in one."""
        tz = _zone(self.zone)
        local = datetime.fromtimestamp(now, tz)  # naive local time when tz is None
        clock = local.time()
        if self.start < self.end:  # same day, e.g. 13:00-14:00
            inside, end_day = self.start <= clock < self.end, local.date()
        elif clock >= self.start:  # across midnight, before it: ends tomorrow
            inside, end_day = True, local.date() + timedelta(days=1)
        else:
            inside, end_day = clock < self.end, local.date()
        if not inside:
            return None
        # Wall-clock end; .timestamp() applies that day's UTC offset (mktime when naive).
        return max(datetime.combine(end_day, self.end, tzinfo=tz).timestamp(), now)


# --- the policy -------------------------------------------------------------------------------
class Verdict(enum.StrEnum):
    SKIP = "skip"  # the channel does not want this event
    SEND = "send"  # due now
    HOLD = "hold"  # due at ``not_before`` (end of quiet hours)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    not_before: float  # when it may be sent (epoch seconds)
    reason: str = ""


@dataclass(frozen=True)
class ChannelPolicy:
    """Which events a channel gets and when (see the module docstring for the defaults)."""

    types: tuple[str, ...] = DEFAULT_TYPES
    min_severity: str = DEFAULT_MIN_SEVERITY
    quiet_hours: QuietHours | None = None
    max_messages: int = DEFAULT_MAX_MESSAGES
    window: float = DEFAULT_WINDOW
    settle: float = DEFAULT_SETTLE

    def wants(self, event_type: str, severity: str) -> bool:
        return severity_rank(severity) >= severity_rank(self.min_severity) and type_matches(
            self.types, event_type
        )

    def decide(self, event_type: str, severity: str, now: float) -> Decision:
        """Skip, send now, or hold until quiet hours end (errors are never held)."""
        if not self.wants(event_type, severity):
            return Decision(Verdict.SKIP, now, "not selected by this channel's types/severity")
        if self.quiet_hours is not None and severity_rank(severity) < ERROR_RANK:
            end = self.quiet_hours.ends_at(now)
            if end is not None:
                return Decision(Verdict.HOLD, end, f"quiet hours {self.quiet_hours}")
        return Decision(Verdict.SEND, now)

    def coalescer(self) -> Coalescer:
        return Coalescer(self.max_messages, self.window)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> ChannelPolicy:
        """From settings ``{"types": [...], "min_severity", "quiet_hours": "22:00-07:00",
        "time_zone": "Europe/Berlin", "max_messages", "window_s"}``, each optional; raises
        :class:`ApiError` with one sentence per problem."""
        config = config or {}
        problems: list[str] = []
        known = {
            "types", "min_severity", "quiet_hours", "time_zone", "max_messages", "window_s",
            "settle_s",
        }  # fmt: skip
        for key in config:
            if key not in known:
                problems.append(
                    f"Unknown policy setting {key!r} (known: {', '.join(sorted(known))})."
                )
        types = config.get("types", list(DEFAULT_TYPES))
        if not isinstance(types, list | tuple) or not all(isinstance(t, str) for t in types):
            problems.append("The policy's types must be a list of patterns such as 'runner.*'.")
            types = list(DEFAULT_TYPES)
        for pattern in types:
            if not _PATTERN.fullmatch(pattern):
                problems.append(
                    f"The type pattern {pattern!r} may hold only letters, digits, '.', '_', "
                    "'-' and the wildcards * ? [ ] (with a leading ! to exclude)."
                )
        severity = config.get("min_severity", DEFAULT_MIN_SEVERITY)
        if severity not in SEVERITY_RANK:
            problems.append(
                f"The minimum severity {severity!r} must be one of {', '.join(SEVERITY_RANK)}."
            )
        quiet = None
        try:
            zone = config.get("time_zone")
            _zone(zone)
            if config.get("quiet_hours") is not None:
                quiet = QuietHours.parse(config["quiet_hours"], zone)
        except ApiError as exc:
            problems.append(exc.message)
        max_messages = config.get("max_messages", DEFAULT_MAX_MESSAGES)
        if not isinstance(max_messages, int) or isinstance(max_messages, bool) or max_messages < 1:
            problems.append("The policy's max_messages must be a whole number of at least 1.")
        window = config.get("window_s", DEFAULT_WINDOW)
        if (
            not isinstance(window, int | float)
            or isinstance(window, bool)
            or not 1 <= window <= 3600
        ):
            problems.append("The policy's window_s must be between 1 and 3600 seconds.")
        settle = config.get("settle_s", DEFAULT_SETTLE)
        if not isinstance(settle, int | float) or isinstance(settle, bool) or not 0 <= settle <= 60:
            problems.append("The policy's settle_s must be between 0 and 60 seconds.")
        if problems:
            raise ApiError(ErrorCode.INVALID, " ".join(problems))
        return cls(tuple(types), severity, quiet, max_messages, float(window), float(settle))

    def to_config(self) -> dict[str, Any]:
        return {
            "types": list(self.types),
            "min_severity": self.min_severity,
            "quiet_hours": str(self.quiet_hours) if self.quiet_hours else None,
            "time_zone": self.quiet_hours.zone if self.quiet_hours else None,
            "max_messages": self.max_messages,
            "window_s": self.window,
            "settle_s": self.settle,
        }


# --- coalescing -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pending:
    """A delivery of one event to a channel, not yet sent."""

    key: int  # the dispatcher's delivery id (opaque here)
    message: Message
    due: float  # not before (the end of quiet hours, say)


@dataclass(frozen=True)
class Batch:
    """One message to send now, and the deliveries it settles."""

    keys: tuple[int, ...]
    message: Message

    @property
    def is_summary(self) -> bool:
        return self.message.type == SUMMARY_TYPE


@dataclass(frozen=True)
class Plan:
    batches: list[Batch] = field(default_factory=list)  # send now, in this order
    wake_at: float | None = None  # plan again then (something is held or rate-limited)


def _state_phrases() -> dict[str, tuple[str, str]]:
    """runner.<state> -> (singular, plural) predicate, from the event catalogue's titles."""
    phrases = {}
    for state, title in events.STATE_TITLES.items():
        plural = re.sub(r"^was ", "were ", re.sub(r"^is ", "are ", title))
        phrases[events.runner_state_type(RunnerState(state))] = (title, plural)
    for attention, title in events.ATTENTION_TITLES.items():
        plural = re.sub(r"^is ", "are ", re.sub(r"^needs ", "need ", re.sub(r"^finished its ",
                        "finished their ", title)))  # fmt: skip
        phrases[events.attention_type(attention)] = (title, plural)
    phrases[events.RUNNER_UNRESPONSIVE] = ("is unresponsive", "are unresponsive")
    phrases[events.RUNNER_RESPONSIVE] = ("is responsive again", "are responsive again")
    return phrases


_PHRASES = _state_phrases()


def _phrase(event_type: str, count: int) -> str:
    """``12 runners failed``; ``3 budget.exceeded events`` for types without a phrase."""
    if event_type in _PHRASES:
        singular, plural = _PHRASES[event_type]
        return f"{count} runner {singular}" if count == 1 else f"{count} runners {plural}"
    return f"{count} {event_type} event" + ("" if count == 1 else "s")


def _names(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def summarize(messages: Sequence[Message], max_listed: int = DEFAULT_MAX_LISTED) -> Message:
    """One message for several: "12 runners failed in demo, api", most severe type first;
    the body lists the events, most severe first, then oldest first."""
    assert messages, "nothing to summarize"
    counts = Counter(m.type for m in messages)
    worst = {t: max(severity_rank(m.severity) for m in messages if m.type == t) for t in counts}
    order = sorted(counts, key=lambda t: (-worst[t], -counts[t]))  # stable: first seen wins
    parts = [_phrase(t, counts[t]) for t in order[:2]]
    rest = sum(counts[t] for t in order[2:])
    title = ", ".join(parts) + (f" and {rest} other event{'s' * (rest != 1)}" if rest else "")
    projects = [p for p, _ in Counter(m.project for m in messages if m.project).most_common()]
    if projects:
        title += f" in {_names(projects)}"
    listed = sorted(messages, key=lambda m: (-severity_rank(m.severity), m.ts))
    lines = []
    for m in listed[:max_listed]:
        reason = m.body.strip().split("\n", 1)[0] if m.body.strip() else ""
        lines.append(f"- {m.title}" + (f": {reason[:120]}" if reason else ""))
    if len(listed) > max_listed:
        lines.append(f"... and {len(listed) - max_listed} more")
    runners = list(dict.fromkeys(m.runner_id for m in messages if m.runner_id is not None))
    severity = max((m.severity for m in messages), key=severity_rank)
    return Message(
        event_id=None,
        ts=max(m.ts for m in messages),
        type=SUMMARY_TYPE,
        severity=severity,
        title=title,
        body="\n".join(lines),
        runner_id=runners[0] if len(runners) == 1 else None,
        project=projects[0] if len(projects) == 1 else None,
        data={
            "count": len(messages),
            "types": {t: counts[t] for t in order},
            "projects": projects,
            "runner_ids": runners,
        },
        event_ids=tuple(i for m in messages for i in m.event_ids),
    )


@dataclass(frozen=True)
class Coalescer:
    """Folds a storm into one summary, by a rate limit per channel: at most ``max_messages``
    messages in any ``window`` seconds.

    While the channel is under its limit every due delivery goes out on its own, at once. When
    more are due than the limit has room for, all of them go out as one summary (which uses
    one slot), so twelve failures at once make one message, not five and a summary. With no
    room at all, nothing goes out until the oldest recent message leaves the window
    (``Plan.wake_at``); by then everything due is folded. An error may thus wait up to
    ``window`` seconds during a storm, never longer.
    """

    max_messages: int = DEFAULT_MAX_MESSAGES
    window: float = DEFAULT_WINDOW
    max_listed: int = DEFAULT_MAX_LISTED

    def plan(self, pending: Sequence[Pending], sent: Sequence[float], now: float) -> Plan:
        """What to send now, given the channel's undelivered ``pending`` deliveries and the
        times its recent messages were sent (each summary counts once)."""
        due = sorted((p for p in pending if p.due <= now), key=lambda p: (p.message.ts, p.key))
        later = [p.due for p in pending if p.due > now]
        wake_at = min(later) if later else None
        if not due:
            return Plan([], wake_at)
        if len(due) <= self.max_messages - len(sent):  # room even if every one sent is recent
            return Plan([Batch((p.key,), p.message) for p in due], wake_at)
        recent = sorted(t for t in sent if now - self.window < t <= now)
        room = self.max_messages - len(recent)
        if len(due) <= room:
            return Plan([Batch((p.key,), p.message) for p in due], wake_at)
        if room >= 1:
            summary = summarize([p.message for p in due], self.max_listed)
            return Plan([Batch(tuple(p.key for p in due), summary)], wake_at)
        # Full: a slot frees when enough of the recent messages have left the window.
        frees_at = recent[len(recent) - self.max_messages] + self.window
        return Plan([], frees_at if wake_at is None else min(wake_at, frees_at))
