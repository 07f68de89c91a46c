"""Checking a channel's settings and secret before they are stored.

Settings never hold secrets: a Telegram bot token, an ntfy access token or a webhook HMAC key
lives in the OS keyring (``supervisor.core.secrets``); :func:`check_secret` refuses one that
cannot work for its kind, without echoing it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from supervisor.core.errors import ApiError, ErrorCode
from supervisor.notify.channels.base import (
    CONTROL,
    DESKTOP,
    KINDS,
    NTFY,
    NTFY_SERVER,
    SECRET_USE,
    TELEGRAM,
    TELEGRAM_API,
    WEBHOOK,
)

_KNOWN = {
    DESKTOP: (),
    TELEGRAM: ("chat_id", "api_base", "message_thread_id"),
    NTFY: ("topic", "server"),
    WEBHOOK: ("url",),
}
_SECRET_WORDS = ("token", "secret", "password", "key")
_NTFY_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")
_TELEGRAM_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{4,31}")
TELEGRAM_TOKEN = re.compile(r"[0-9]{3,}:[A-Za-z0-9_-]{20,}")


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
    elif parts.fragment or CONTROL.search(value):
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
    if kind == TELEGRAM and not TELEGRAM_TOKEN.fullmatch(secret):
        raise ApiError(
            ErrorCode.INVALID,
            "That is not a Telegram bot token (digits, a colon, then letters); copy it from "
            "@BotFather.",
        )
    if CONTROL.search(secret) or (kind == NTFY and not secret.isascii()):
        raise ApiError(
            ErrorCode.INVALID, "A secret must not contain spaces, control or non-ASCII characters."
        )
    if kind == WEBHOOK and len(secret) < 16:
        raise ApiError(ErrorCode.INVALID, "A webhook signing secret needs at least 16 characters.")
