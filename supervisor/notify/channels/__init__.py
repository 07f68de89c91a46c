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

One module per kind (``desktop``, ``telegram``, ``ntfy``, ``webhook``: its payload and its
attempt); ``sending`` holds the POST and the classification of answers they share, ``base``
the message and outcome types, ``settings`` the checks of settings and secrets. The names
callers use are importable from this package.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

import aiohttp

from supervisor.notify.channels.base import (
    DEFAULT_ICON,
    DEFAULT_TIMEOUT,
    DESKTOP,
    KINDS,
    NTFY,
    NTFY_SERVER,
    PREFIX_ICONS,
    SECRET_USE,
    SEVERITY_ICONS,
    SUMMARY_TYPE,
    TELEGRAM,
    TELEGRAM_API,
    TYPE_ICONS,
    WEBHOOK,
    EventLike,
    Message,
    Outcome,
    Result,
    icon,
)
from supervisor.notify.channels.desktop import (
    DesktopCallback,
    DesktopNotShown,
    desktop_subscribed,
    send_desktop,
    subscribe_desktop,
)
from supervisor.notify.channels.ntfy import NTFY_PRIORITY, ntfy_priority, send_ntfy
from supervisor.notify.channels.sending import MAX_ANSWER_BYTES, USER_AGENT, parse_retry_after
from supervisor.notify.channels.settings import check_channel, check_secret
from supervisor.notify.channels.telegram import escape_markdown_v2, send_telegram, telegram_text
from supervisor.notify.channels.webhook import (
    SIGNATURE_HEADER,
    iso,
    send_webhook,
    signature,
    webhook_payload,
)

__all__ = [
    "DEFAULT_ICON",
    "DEFAULT_TIMEOUT",
    "DESKTOP",
    "KINDS",
    "MAX_ANSWER_BYTES",
    "NTFY",
    "NTFY_PRIORITY",
    "NTFY_SERVER",
    "PREFIX_ICONS",
    "SECRET_USE",
    "SEVERITY_ICONS",
    "SIGNATURE_HEADER",
    "SUMMARY_TYPE",
    "TELEGRAM",
    "TELEGRAM_API",
    "TYPE_ICONS",
    "USER_AGENT",
    "WEBHOOK",
    "DesktopCallback",
    "DesktopNotShown",
    "EventLike",
    "Message",
    "Outcome",
    "Result",
    "check_channel",
    "check_secret",
    "desktop_subscribed",
    "escape_markdown_v2",
    "icon",
    "iso",
    "ntfy_priority",
    "parse_retry_after",
    "send",
    "signature",
    "subscribe_desktop",
    "telegram_text",
    "webhook_payload",
]


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
        return await loop.run_in_executor(blocking, send_desktop, message)
    if kind == TELEGRAM:
        return await send_telegram(channel, secret, message, session, timeout)
    if kind == NTFY:
        return await send_ntfy(channel, secret, message, idempotency_key, session, timeout)
    if kind == WEBHOOK:
        return await send_webhook(channel, secret, message, idempotency_key, session, timeout)
    return Outcome.failed(f"Unknown channel kind {kind!r}.")
