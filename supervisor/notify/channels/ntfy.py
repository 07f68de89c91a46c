"""The ntfy channel: a POST to a topic, title, priority and tags in headers."""

from __future__ import annotations

import functools
from base64 import b64encode
from collections.abc import Mapping
from typing import Any

import aiohttp

from supervisor.notify.channels.base import CONTROL, NTFY_SERVER, Message, Outcome, cut, icon
from supervisor.notify.channels.sending import classify, host_of, json_detail, post

# ntfy priorities: 1 min, 2 low, 3 default, 4 high, 5 urgent.
NTFY_PRIORITY = {"debug": 2, "info": 3, "warning": 4, "error": 5, "critical": 5}


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


async def send_ntfy(
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
        "Title": _header_text(cut(message.title, 250)),
        "Priority": str(ntfy_priority(message.severity)),
        "Tags": _header_text(",".join(tags)),
        "Idempotency-Key": idempotency_key,
        "Content-Type": "text/plain; charset=utf-8",
    }
    if secret:
        if not secret.isascii() or CONTROL.search(secret):  # it goes into a header
            return Outcome.failed("The ntfy access token in the keyring is malformed.")
        headers["Authorization"] = f"Bearer {secret}"
    text = message.body or message.title
    answer = await post(
        session, f"{server}/{config['topic']}", text.encode(), headers, timeout, host_of(server)
    )
    if isinstance(answer, Outcome):
        return answer
    return classify(answer, host_of(server), functools.partial(json_detail, key="error"))
