"""The webhook channel: a JSON POST, signed with HMAC-SHA256 when the channel has a secret."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec

from supervisor.notify.channels.base import Message, Outcome
from supervisor.notify.channels.sending import classify, host_of, post, text_detail

SIGNATURE_HEADER = "X-Stratavore-Signature"
_JSON = msgspec.json.Encoder()  # compact, UTF-8 as is: json.dumps(ensure_ascii=False), faster


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


async def send_webhook(
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
    answer = await post(session, url, body, headers, timeout, host_of(url))
    if isinstance(answer, Outcome):
        return answer
    return classify(answer, host_of(url), text_detail)
