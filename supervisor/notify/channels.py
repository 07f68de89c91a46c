"""Delivery channels: desktop, Telegram, ntfy and webhooks, one attempt at a time.

:func:`send` makes one delivery attempt of a :class:`Message` (built from an event, or a
summary of several) and returns an :class:`Outcome`: delivered, retry (with ``retry_after``
when the server said when) or failed for good, each with a one-sentence reason. It never
sleeps and never retries by itself; the outbox dispatcher owns delivery rows, backoff and dead
letters. It is a coroutine on the supervisor's loop: every remote call goes through the
dispatcher's aiohttp client session (non-blocking, keep-alive) with (connect, read) timeouts,
without following redirects (a redirected POST turns into a GET), and reads at most 64 KiB of
answer; the desktop channel, whose subscriber blocks until the notification is shown, runs in
a worker thread. (aiohttp POSTs about ten times as fast as ``requests`` here; the CLI and
``stratavore-agent`` keep ``requests``.)

Classification: 2xx delivered; 408, 429, 5xx, connection errors and timeouts are retryable;
any other 4xx (and a redirect) fails for good. ``Retry-After`` is honoured in both its forms
(seconds, HTTP-date), and Telegram's ``parameters.retry_after`` too.

Settings (:func:`check_channel`) never hold secrets: a Telegram bot token, an ntfy access
token or a webhook HMAC key is passed to :func:`send` by the caller, who reads it from the OS
keyring (``supervisor.core.secrets``). Reasons and log lines name a host, never a URL path, since
Telegram's path holds the bot token (and some webhook URLs hold one too).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import hashlib
import hmac
import http
import json
import logging
import math
import os
import re
import socket
import ssl
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
import msgspec

from supervisor import __version__
from supervisor.core.errors import ApiError, ErrorCode

log = logging.getLogger("stratavore.notify")

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
MAX_ANSWER_BYTES = 64 * 1024
SUMMARY_TYPE = "notify.summary"  # the type of a message that folds several events
USER_AGENT = f"Stratavore/{__version__}"
SIGNATURE_HEADER = "X-Stratavore-Signature"
_JSON = msgspec.json.Encoder()  # compact, UTF-8 as is: json.dumps(ensure_ascii=False), faster

# ntfy priorities: 1 min, 2 low, 3 default, 4 high, 5 urgent.
NTFY_PRIORITY = {"debug": 2, "info": 3, "warning": 4, "error": 5, "critical": 5}

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


# --- settings ---------------------------------------------------------------------------------
_KNOWN = {
    DESKTOP: (),
    TELEGRAM: ("chat_id", "api_base", "message_thread_id"),
    NTFY: ("topic", "server"),
    WEBHOOK: ("url",),
}
_SECRET_WORDS = ("token", "secret", "password", "key")
_NTFY_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")
_TELEGRAM_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{4,31}")
_TELEGRAM_TOKEN = re.compile(r"[0-9]{3,}:[A-Za-z0-9_-]{20,}")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def _check_url(
    config: Mapping[str, Any], key: str, kind: str, problems: list[str], default: str | None
) -> str | None:
    """The URL setting ``key``, normalized (no trailing slash), or None after a problem."""
    value = config.get(key, default)
    if value is None:
        problems.append(f"A {kind} channel needs a {key} (an https:// URL).")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(f"The {key} of a {kind} channel must be a URL such as https://host/path.")
        return None
    value = value.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        problems.append(f"The {key} {value!r} is not a valid URL.")
        return None
    if parts.scheme not in ("http", "https"):
        problems.append(
            f"The {key} must start with https:// or http://, not {parts.scheme or 'nothing'}."
        )
    elif not parts.hostname:
        problems.append(f"The {key} {value!r} has no host name.")
    elif parts.username is not None or parts.password is not None:
        problems.append(
            f"The {key} must not contain a user name or password: give the channel a secret "
            "instead (it is kept in the OS keyring)."
        )
    elif parts.fragment or _CONTROL.search(value):
        problems.append(f"The {key} must not contain spaces or a #fragment.")
    elif key != "url" and parts.query:
        problems.append(f"The {key} must not have a ?query.")
    else:
        return value.rstrip("/") if key != "url" else value
    return None


def _check_chat_id(value: Any, problems: list[str]) -> int | str | None:
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value != 0:
        return value
    if isinstance(value, str) and _TELEGRAM_USERNAME.fullmatch(value):
        return value
    if value is None:
        problems.append(
            "A telegram channel needs a chat_id (the numeric chat id, or @channelname)."
        )
    else:
        problems.append(f"The chat_id {value!r} is neither a numeric chat id nor an @channelname.")
    return None


def check_channel(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the settings of a channel of ``kind``; the normalized settings, with ``kind``.

    Raises :class:`ApiError` (``INVALID``) whose message has one sentence per problem.
    Settings per kind (secrets never go here):

    - ``desktop``: none.
    - ``telegram``: ``chat_id`` (number or ``@channelname``), ``api_base`` (default
      https://api.telegram.org), ``message_thread_id`` (a forum topic, optional).
    - ``ntfy``: ``topic``, ``server`` (default https://ntfy.sh).
    - ``webhook``: ``url``.
    """
    if kind not in KINDS:
        raise ApiError(
            ErrorCode.INVALID,
            f"Unknown channel kind {kind!r}; use one of {', '.join(KINDS)}.",
        )
    if not isinstance(config, Mapping):
        raise ApiError(ErrorCode.INVALID, "Channel settings must be a JSON object.")
    problems: list[str] = []
    for key in config:
        if key == "kind" and config[key] == kind:
            continue
        if key in _KNOWN[kind]:
            continue
        if any(word in str(key).lower() for word in _SECRET_WORDS):
            problems.append(
                f"The setting {key!r} looks like a secret: give it as the channel's secret "
                "instead, which is kept in the OS keyring and never in settings."
            )
        else:
            known = ", ".join(_KNOWN[kind]) or "none"
            problems.append(f"Unknown setting {key!r} for a {kind} channel (known: {known}).")
    out: dict[str, Any] = {"kind": kind}
    if kind == TELEGRAM:
        out["chat_id"] = _check_chat_id(config.get("chat_id"), problems)
        out["api_base"] = _check_url(config, "api_base", kind, problems, TELEGRAM_API)
        thread = config.get("message_thread_id")
        if thread is not None:
            if isinstance(thread, int) and not isinstance(thread, bool) and thread > 0:
                out["message_thread_id"] = thread
            else:
                problems.append("The message_thread_id must be a positive whole number.")
    elif kind == NTFY:
        topic = config.get("topic")
        if topic is None:
            problems.append("An ntfy channel needs a topic.")
        elif not isinstance(topic, str) or not _NTFY_TOPIC.fullmatch(topic):
            problems.append(
                f"The ntfy topic {topic!r} must be 1 to 64 letters, digits, '-' or '_'."
            )
        else:
            out["topic"] = topic
        out["server"] = _check_url(config, "server", kind, problems, NTFY_SERVER)
    elif kind == WEBHOOK:
        out["url"] = _check_url(config, "url", kind, problems, None)
    if problems:
        raise ApiError(ErrorCode.INVALID, " ".join(problems))
    return out


def check_secret(kind: str, secret: str | None) -> None:
    """Refuse a secret that cannot work for ``kind`` (the message never echoes it)."""
    use = SECRET_USE.get(kind)
    if use is None:
        raise ApiError(ErrorCode.INVALID, f"Unknown channel kind {kind!r}.")
    if not secret:
        if use == "required":
            raise ApiError(
                ErrorCode.INVALID,
                f"A {kind} channel needs its bot token as the secret (from @BotFather); "
                "`stratavore notify add` asks for it.",
            )
        return
    if use == "none":
        raise ApiError(ErrorCode.INVALID, f"A {kind} channel takes no secret.")
    if kind == TELEGRAM and not _TELEGRAM_TOKEN.fullmatch(secret):
        raise ApiError(
            ErrorCode.INVALID,
            "That is not a Telegram bot token (digits, a colon, then letters); copy it from "
            "@BotFather.",
        )
    if _CONTROL.search(secret) or (kind == NTFY and not secret.isascii()):
        raise ApiError(
            ErrorCode.INVALID, "A secret must not contain spaces, control or non-ASCII characters."
        )
    if kind == WEBHOOK and len(secret) < 16:
        raise ApiError(ErrorCode.INVALID, "A webhook signing secret needs at least 16 characters.")


# --- formatting -------------------------------------------------------------------------------
_MARKDOWN_V2_SPECIAL = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


def escape_markdown_v2(text: str) -> str:
    """``text`` escaped for Telegram's MarkdownV2 (every special character gets a ``\\``)."""
    return _MARKDOWN_V2_SPECIAL.sub(r"\\\1", text)


def _cut(text: str, limit: int) -> str:
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


def telegram_text(message: Message) -> str:
    """The MarkdownV2 text: emoji and bold title, then the body (cut to fit 4096 chars)."""
    text = f"{icon(message)[1]} *{escape_markdown_v2(_cut(message.title, 256))}*"
    if message.body:
        text += "\n" + escape_markdown_v2(_cut(message.body, 3500))
    return text


def ntfy_priority(severity: str) -> int:
    """ntfy priority for a severity: info 3 (default), warning 4 (high), error 5 (urgent)."""
    return NTFY_PRIORITY.get(severity, 3)


def _header_text(text: str) -> str:
    """A header value: one line, ASCII as is, else one RFC 2047 encoded word (which ntfy
    decodes; HTTP clients send headers as latin-1 and would garble other characters)."""
    text = " ".join(text.split())
    if text.isascii():
        return text
    return f"=?utf-8?b?{b64encode(text.encode()).decode()}?="


def iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds, as the API writes them."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def webhook_payload(message: Message, idempotency_key: str) -> dict[str, Any]:
    """The JSON object a webhook receives."""
    return {
        "id": message.event_id,
        "event_ids": list(message.event_ids),
        "idempotency_key": idempotency_key,
        "type": message.type,
        "severity": message.severity,
        "title": message.title,
        "body": message.body,
        "ts": iso(message.ts),
        "subject": {"runner_id": message.runner_id, "project": message.project},
        "data": dict(message.data),
    }


def signature(secret: str, body: bytes) -> str:
    """The ``X-Stratavore-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, per RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


# --- the desktop channel ----------------------------------------------------------------------
DesktopCallback = Callable[[Message], None]


class DesktopNotShown(Exception):
    """Raised by a desktop subscriber when its notification was not shown (no notification
    service took it, no fallback showed it): the attempt is retried, with this as its
    reason."""


_desktop_lock = threading.Lock()
_desktop_subscribers: list[DesktopCallback] = []


def subscribe_desktop(callback: DesktopCallback) -> Callable[[], None]:
    """Hand desktop messages to ``callback`` (the tray app); returns the unsubscribe function.

    The callback runs on the dispatcher's thread and returns once the message was shown (it
    may wait a few seconds for the notification service); :class:`DesktopNotShown`, or any
    other exception, makes the attempt retryable.
    """
    with _desktop_lock:
        _desktop_subscribers.append(callback)

    def unsubscribe() -> None:
        with _desktop_lock:
            if callback in _desktop_subscribers:
                _desktop_subscribers.remove(callback)

    return unsubscribe


def desktop_subscribed() -> bool:
    """Whether a desktop notifier (the tray app) is subscribed now."""
    with _desktop_lock:
        return bool(_desktop_subscribers)


def _send_desktop(message: Message) -> Outcome:
    with _desktop_lock:
        subscribers = list(_desktop_subscribers)
    if not subscribers:  # headless: the log is the desktop
        log.info("notify: [%s] %s", message.severity, message.title)
        return Outcome.delivered(reason="logged: no desktop notifier is subscribed")
    for callback in subscribers:
        try:
            callback(message)
        except DesktopNotShown as exc:
            log.warning("notify: desktop notification %r not shown: %s", message.title, exc)
            return Outcome.retry(f"The desktop notification was not shown: {exc}.")
        except Exception as exc:
            log.exception("notify failed: desktop notifier raised on %r", message.title)
            return Outcome.retry(f"The desktop notifier failed ({type(exc).__name__}).")
    return Outcome.delivered()


# --- HTTP -------------------------------------------------------------------------------------
def _where(url: str) -> str:
    """A URL's host (and port), for messages: never its path, which may hold a token."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or url.split("/")[0]


def _cause(exc: BaseException) -> str:
    """The root cause of a connection error in a few words ("Connection refused")."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "os_error", None) or getattr(current, "certificate_error", None)
        if isinstance(inner, BaseException):  # aiohttp's connector errors wrap the OS's
            current = inner
            continue
        if isinstance(current, ssl.SSLError | socket.gaierror) and current.strerror:
            return current.strerror  # their errno is not the C library's
        if isinstance(current, OSError) and current.errno and current.errno > 0:
            return os.strerror(current.errno)  # asyncio's text names the address instead
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        current = current.__cause__ or current.__context__
    return type(exc).__name__


def _clean(text: str, limit: int = 200) -> str:
    """A server's error text, safe for a one-line reason."""
    return _cut(" ".join(text.split()), limit).rstrip(".")


def _json_detail(answer: bytes, key: str) -> str:
    try:
        value = json.loads(answer)
    except ValueError:
        return ""
    found = value.get(key) if isinstance(value, dict) else None
    return _clean(found) if isinstance(found, str) else ""


def _text_detail(answer: bytes) -> str:
    for key in ("error", "message", "detail"):
        if found := _json_detail(answer, key):
            return found
    text = answer.decode("utf-8", "replace")
    if text.lstrip().startswith("<"):  # an HTML error page says nothing useful in one line
        return ""
    return _clean(text.strip().split("\n", 1)[0]) if text.strip() else ""


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


async def _read_answer(response: aiohttp.ClientResponse) -> bytes:
    """At most :data:`MAX_ANSWER_BYTES` of the answer's body (b"" when it breaks off: the
    status line is what counts)."""
    chunks: list[bytes] = []
    size = 0
    try:
        length = response.content_length
        if length is not None and length <= MAX_ANSWER_BYTES:  # the usual, short answer
            return await response.read()
        while size < MAX_ANSWER_BYTES:
            chunk = await response.content.read(MAX_ANSWER_BYTES - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (TimeoutError, aiohttp.ClientError):
        return b""
    return b"".join(chunks)


@functools.lru_cache(maxsize=256)
def _env_proxy(url: str) -> str | None:
    """The proxy the environment names for the URL's scheme (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``ALL_PROXY``) unless ``NO_PROXY`` exempts its host, as ``requests`` chose it; read once
    per URL (aiohttp's ``trust_env`` asks again in a thread for every request)."""
    parts = urlsplit(url)
    if proxy_bypass(parts.hostname or ""):
        return None
    proxies = getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


@functools.lru_cache(maxsize=16)
def _limits(timeout: tuple[float, float]) -> aiohttp.ClientTimeout:
    """aiohttp's form of (connect, read) seconds."""
    return aiohttp.ClientTimeout(total=None, sock_connect=timeout[0], sock_read=timeout[1])


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: tuple[float, float],
    where: str,
) -> _Answer | Outcome:
    """POST once; the answer, or the retry/failure Outcome of a request that got none."""
    headers = {"User-Agent": USER_AGENT, **headers}
    try:
        async with session.post(
            url,
            data=body,
            headers=headers,
            timeout=_limits(timeout),
            allow_redirects=False,
            proxy=_env_proxy(url),
        ) as response:
            answer = await _read_answer(response)
            return _Answer(response.status, response.headers, answer)
    except aiohttp.ConnectionTimeoutError:
        return Outcome.retry(f"Timed out connecting to {where} after {timeout[0]:g} s.")
    except aiohttp.SocketTimeoutError:
        return Outcome.retry(f"{where} did not answer within {timeout[1]:g} s.")
    except aiohttp.ClientSSLError as exc:
        return Outcome.retry(f"The TLS connection to {where} failed ({_cause(exc)}).")
    except aiohttp.ClientConnectionError as exc:
        return Outcome.retry(f"Could not connect to {where} ({_cause(exc)}).")
    except (ValueError, TypeError) as exc:  # bad URL or header (InvalidURL too): a setting
        return Outcome.failed(f"Could not send to {where} ({type(exc).__name__}).")
    except aiohttp.ClientError as exc:  # an answer that is not HTTP: the server's problem
        return Outcome.retry(f"{where} sent an answer that is not HTTP ({type(exc).__name__}).")


def _classify(
    answer: _Answer,
    where: str,
    detail: Callable[[bytes], str],
    retry_after: float | None = None,
) -> Outcome:
    """Delivered (2xx), retry (408, 429, 5xx) or failed (any other status); ``detail`` reads
    the server's words from the answer's body, only for an answer that is not a success."""
    status = answer.status
    if 200 <= status < 300:
        return Outcome.delivered(status)
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "status"
    words = detail(answer.body)
    said = f"{where} answered {status} {phrase}" + (f": {words}" if words else "")
    if status in (408, 429) or 500 <= status < 600:
        header = parse_retry_after(answer.headers.get("Retry-After"), time.time())
        wait = header if header is not None else retry_after
        return Outcome.retry(f"{said}.", wait, status)
    if 300 <= status < 400:
        target = _where(answer.headers.get("Location", "")) or "another address"
        return Outcome.failed(
            f"{where} redirects to {target} ({status}); set the channel to the final URL.", status
        )
    return Outcome.failed(f"{said}.", status)


async def _send_telegram(
    config: Mapping[str, Any],
    secret: str | None,
    message: Message,
    session: aiohttp.ClientSession,
    timeout: tuple[float, float],
) -> Outcome:
    base = config.get("api_base") or TELEGRAM_API
    where = "Telegram" if base == TELEGRAM_API else _where(base)
    if not secret:
        return Outcome.failed("The Telegram channel has no bot token in the keyring.")
    if not _TELEGRAM_TOKEN.fullmatch(secret):  # it goes into the URL path: refuse anything odd
        return Outcome.failed("The Telegram bot token in the keyring is malformed.")
    payload: dict[str, Any] = {
        "chat_id": config["chat_id"],
        "text": telegram_text(message),
        "parse_mode": "MarkdownV2",
        "disable_web_page_preview": True,
    }
    if config.get("message_thread_id"):
        payload["message_thread_id"] = config["message_thread_id"]
    body = json.dumps(payload, ensure_ascii=False).encode()
    answer = await _post(
        session,
        f"{base}/bot{secret}/sendMessage",
        body,
        {"Content-Type": "application/json"},
        timeout,
        where,
    )
    if isinstance(answer, Outcome):
        return answer
    try:
        parsed = json.loads(answer.body)
    except ValueError:
        parsed = None
    parameters = parsed.get("parameters") if isinstance(parsed, dict) else None
    parameters = parameters if isinstance(parameters, dict) else {}
    if isinstance(parameters.get("migrate_to_chat_id"), int):
        return Outcome.failed(
            f"The Telegram group became a supergroup; set chat_id to "
            f"{parameters['migrate_to_chat_id']}.",
            answer.status,
        )
    retry_after = parameters.get("retry_after")
    retry_after = float(retry_after) if isinstance(retry_after, int | float) else None
    described = functools.partial(_json_detail, key="description")
    return _classify(answer, where, described, retry_after)


async def _send_ntfy(
    config: Mapping[str, Any],
    secret: str | None,
    message: Message,
    idempotency_key: str,
    session: aiohttp.ClientSession,
    timeout: tuple[float, float],
) -> Outcome:
    server = config.get("server") or NTFY_SERVER
    tags = [icon(message)[0]]
    if message.project:  # a text tag; ntfy splits tags on commas
        tags.append(message.project.replace(",", " "))
    headers = {
        "Title": _header_text(_cut(message.title, 250)),
        "Priority": str(ntfy_priority(message.severity)),
        "Tags": _header_text(",".join(tags)),
        "Idempotency-Key": idempotency_key,
        "Content-Type": "text/plain; charset=utf-8",
    }
    if secret:
        if not secret.isascii() or _CONTROL.search(secret):  # it goes into a header
            return Outcome.failed("The ntfy access token in the keyring is malformed.")
        headers["Authorization"] = f"Bearer {secret}"
    text = message.body or message.title
    answer = await _post(
        session, f"{server}/{config['topic']}", text.encode(), headers, timeout, _where(server)
    )
    if isinstance(answer, Outcome):
        return answer
    return _classify(answer, _where(server), functools.partial(_json_detail, key="error"))


async def _send_webhook(
    config: Mapping[str, Any],
    secret: str | None,
    message: Message,
    idempotency_key: str,
    session: aiohttp.ClientSession,
    timeout: tuple[float, float],
) -> Outcome:
    url = config["url"]
    body = _JSON.encode(webhook_payload(message, idempotency_key))
    headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    answer = await _post(session, url, body, headers, timeout, _where(url))
    if isinstance(answer, Outcome):
        return answer
    return _classify(answer, _where(url), _text_detail)


async def send(
    channel: Mapping[str, Any],
    secret: str | None,
    message: Message,
    idempotency_key: str,
    session: aiohttp.ClientSession,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    blocking: Executor | None = None,
) -> Outcome:
    """One delivery attempt of ``message`` to ``channel`` (settings from :func:`check_channel`,
    which include ``kind``), on the running loop through ``session``; the desktop channel's
    subscribers, which block, run in ``blocking`` (the loop's default executor when None).

    ``idempotency_key`` must be the same on every attempt of the same message: webhooks and
    ntfy get it as the ``Idempotency-Key`` header (webhooks in the body too). Telegram has no
    such thing, so a retry after a read timeout may show a message twice.
    """
    kind = channel.get("kind")
    if kind == DESKTOP:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(blocking, _send_desktop, message)
    if kind == TELEGRAM:
        return await _send_telegram(channel, secret, message, session, timeout)
    if kind == NTFY:
        return await _send_ntfy(channel, secret, message, idempotency_key, session, timeout)
    if kind == WEBHOOK:
        return await _send_webhook(channel, secret, message, idempotency_key, session, timeout)
    return Outcome.failed(f"Unknown channel kind {kind!r}.")
