"""The Telegram channel: a bot's sendMessage in MarkdownV2."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

import aiohttp

from supervisor.notify.channels.base import TELEGRAM_API, Message, Outcome, cut, icon
from supervisor.notify.channels.sending import classify, host_of, json_detail, post

TELEGRAM_TOKEN = re.compile(r"[0-9]{3,}:[A-Za-z0-9_-]{20,}")
_MARKDOWN_V2_SPECIAL = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


def escape_markdown_v2(text: str) -> str:
    """``text`` escaped for Telegram's MarkdownV2 (every special character gets a ``\\``)."""
    return _MARKDOWN_V2_SPECIAL.sub(r"\\\1", text)


def telegram_text(message: Message) -> str:
    """The MarkdownV2 text: emoji and bold title, then the body (cut to fit 4096 chars)."""
    text = f"{icon(message)[1]} *{escape_markdown_v2(cut(message.title, 256))}*"
    if message.body:
        text += "\n" + escape_markdown_v2(cut(message.body, 3500))
    return text


async def send_telegram(
    config: Mapping[str, Any],
    secret: str | None,
    message: Message,
    session: aiohttp.ClientSession,
    timeout: tuple[float, float],
) -> Outcome:
    base = config.get("api_base") or TELEGRAM_API
    where = "Telegram" if base == TELEGRAM_API else host_of(base)
    if not secret:
        return Outcome.failed("The Telegram channel has no bot token in the keyring.")
    if not TELEGRAM_TOKEN.fullmatch(secret):  # it goes into the URL path: refuse anything odd
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
    answer = await post(
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
    described = functools.partial(json_detail, key="description")
    return classify(answer, where, described, retry_after)
