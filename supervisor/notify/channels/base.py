"""What every channel shares: the kinds, a :class:`Message` and the :class:`Outcome` of one
delivery attempt, and the icon a message shows."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

DESKTOP = "desktop"
TELEGRAM = "telegram"
NTFY = "ntfy"
WEBHOOK = "webhook"
KINDS = (DESKTOP, TELEGRAM, NTFY, WEBHOOK)

# Whether a kind needs a secret in the keyring: the bot token; an access token for a
# protected topic; the HMAC key that signs webhook bodies.
SECRET_USE = {DESKTOP: "none", TELEGRAM: "required", NTFY: "optional", WEBHOOK: "optional"}

TELEGRAM_API = "https://api.telegram.org"
NTFY_SERVER = "https://ntfy.sh"
DEFAULT_TIMEOUT = (5.0, 15.0)  # (connect, read) seconds
SUMMARY_TYPE = "notify.summary"  # the type of a message that folds several events

# Event type -> (ntfy tag, i.e. an emoji short code; the same emoji for Telegram).
TYPE_ICONS = {
    "runner.failed": ("rotating_light", "\U0001f6a8"),
    "runner.fatal": ("rotating_light", "\U0001f6a8"),
    "runner.lost": ("warning", "\u26a0\ufe0f"),
    "runner.unresponsive": ("warning", "\u26a0\ufe0f"),
    "runner.backoff": ("repeat", "\U0001f501"),
    "runner.exited": ("white_check_mark", "\u2705"),
    "runner.responsive": ("white_check_mark", "\u2705"),
    "runner.stopped": ("stop_sign", "\U0001f6d1"),
    "runner.stopping": ("stop_sign", "\U0001f6d1"),
    "runner.running": ("arrow_forward", "\u25b6\ufe0f"),
    "runner.starting": ("arrow_forward", "\u25b6\ufe0f"),
    "runner.queued": ("hourglass", "\u231b"),
    "supervisor.started": ("robot", "\U0001f916"),
    "supervisor.stopped": ("robot", "\U0001f916"),
}
PREFIX_ICONS = {"budget.": ("moneybag", "\U0001f4b0")}
SEVERITY_ICONS = {
    "critical": ("rotating_light", "\U0001f6a8"),
    "error": ("rotating_light", "\U0001f6a8"),
    "warning": ("warning", "\u26a0\ufe0f"),
}
DEFAULT_ICON = ("information_source", "\u2139\ufe0f")
CONTROL = re.compile(r"[\x00-\x20\x7f]")  # no place for these in a header, URL or token


# --- messages and outcomes --------------------------------------------------------------------
class EventLike(Protocol):
    """What :meth:`Message.from_event` reads: a ``store.Event`` row has all of it."""

    id: Any
    ts: float
    type: str
    severity: str
    runner_id: int | None
    project: str | None
    title: str
    body: str
    data: Any


@dataclass(frozen=True)
class Message:
    """What a channel delivers: one event, or a summary of several (``type`` is
    :data:`SUMMARY_TYPE`, ``event_id`` None, ``data["types"]`` counts them by type)."""

    event_id: int | None
    ts: float  # epoch seconds
    type: str
    severity: str
    title: str
    body: str = ""
    runner_id: int | None = None
    project: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    event_ids: tuple[int, ...] = ()  # every event this message reports

    @classmethod
    def from_event(cls, event: EventLike) -> Message:
        return cls(
            event_id=event.id,
            ts=event.ts,
            type=event.type,
            severity=event.severity,
            title=event.title,
            body=event.body or "",
            runner_id=event.runner_id,
            project=event.project,
            data=dict(event.data or {}),
            event_ids=(event.id,),
        )

    @property
    def main_type(self) -> str:
        """The type that picks the icon: for a summary, its most severe type."""
        types = self.data.get("types") if self.type == SUMMARY_TYPE else None
        return next(iter(types)) if types else self.type


class Result(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # try again later (at ``retry_after`` seconds from now, if set)
    FAILED = "failed"  # permanently: retrying the same request cannot succeed


@dataclass(frozen=True)
class Outcome:
    """The result of one delivery attempt, with a one-sentence reason unless delivered."""

    result: Result
    reason: str = ""
    retry_after: float | None = None  # seconds, as the server asked (Retry-After)
    status: int | None = None  # the HTTP status, when there was an answer

    @classmethod
    def delivered(cls, status: int | None = None, reason: str = "") -> Outcome:
        return cls(Result.DELIVERED, reason, status=status)

    @classmethod
    def retry(
        cls, reason: str, retry_after: float | None = None, status: int | None = None
    ) -> Outcome:
        return cls(Result.RETRY, reason, retry_after, status)

    @classmethod
    def failed(cls, reason: str, status: int | None = None) -> Outcome:
        return cls(Result.FAILED, reason, status=status)


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def icon(message: Message) -> tuple[str, str]:
    """(ntfy tag / emoji short code, emoji) for ``message``: by type, then severity."""
    kind = message.main_type
    if kind in TYPE_ICONS:
        return TYPE_ICONS[kind]
    for prefix, found in PREFIX_ICONS.items():
        if kind.startswith(prefix):
            return found
    return SEVERITY_ICONS.get(message.severity, DEFAULT_ICON)
