"""Delivery channels against a real HTTP sink on 127.0.0.1: what goes on the wire, and how
every kind of answer (or none) is classified."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from supervisor.core import events
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.notify import channels
from supervisor.notify.channels import Message, Outcome, Result, check_channel, send
from supervisor.notify.policy import summarize
from supervisor.storage.db import close_db, init_db
from supervisor.storage.models import DB, Event
from tests.sink import Reply, Sink

TOKEN = "123456789:AAH-fake_token_for_tests_0123456789"
KEY = "idem-42"
FAST = (2.0, 3.0)


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as server:
        yield server


def deliver(
    settings: dict[str, Any],
    secret: str | None,
    msg: Message,
    key: str,
    timeout: tuple[float, float] = channels.DEFAULT_TIMEOUT,
) -> Outcome:
    """One attempt by :func:`channels.send` on a loop of its own, through a fresh client
    session (which, unlike the dispatcher's, ignores proxies from the environment: they must
    not see loopback traffic)."""

    async def attempt() -> Outcome:
        async with aiohttp.ClientSession() as session:
            return await send(settings, secret, msg, key, session, timeout)

    return asyncio.run(attempt())


def message(**fields: Any) -> Message:
    values: dict[str, Any] = {
        "event_id": 42,
        "ts": 1_700_000_000.25,
        "type": "runner.failed",
        "severity": "error",
        "title": "runner 7 (demo) failed",
        "body": "exit status 1",
        "runner_id": 7,
        "project": "demo",
        "data": {"state": "failed", "previous": "running"},
        "event_ids": (42,),
    }
    values.update(fields)
    return Message(**values)


def channel(kind: str, sink: Sink) -> dict[str, Any]:
    settings = {
        "webhook": {"url": f"{sink.url}/hook"},
        "ntfy": {"server": sink.url, "topic": "stratavore-test"},
        "telegram": {"chat_id": 1234, "api_base": sink.url},
    }[kind]
    return check_channel(kind, settings)


def secret_for(kind: str) -> str | None:
    return TOKEN if kind == "telegram" else None


REMOTE = ["webhook", "ntfy", "telegram"]


# --- webhook ----------------------------------------------------------------------------------
def test_webhook_posts_the_event_as_json_with_idempotency_key(sink) -> None:
    outcome = deliver(channel("webhook", sink), None, message(), KEY, FAST)
    assert outcome == Outcome.delivered(200)
    request = sink.last
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == KEY
    assert request.headers["User-Agent"].startswith("Stratavore/")
    assert channels.SIGNATURE_HEADER not in request.headers  # no secret, no signature
    assert request.json() == {
        "id": 42,
        "event_ids": [42],
        "idempotency_key": KEY,
        "type": "runner.failed",
        "severity": "error",
        "title": "runner 7 (demo) failed",
        "body": "exit status 1",
        "ts": "2023-11-14T22:13:20.250Z",
        "subject": {"runner_id": 7, "project": "demo"},
        "data": {"state": "failed", "previous": "running"},
    }


def test_webhook_signature_verifies_with_the_secret_over_the_exact_body(sink) -> None:
    secret = "s3cret-signing-key-0123"
    deliver(channel("webhook", sink), secret, message(title="Ünïcode ✓"), KEY, FAST)
    request = sink.last
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    header = request.headers[channels.SIGNATURE_HEADER]
    assert hmac.compare_digest(header, f"sha256={expected}")
    assert request.json()["title"] == "Ünïcode ✓"
    wrong = hmac.new(b"another-secret-xxxxxxxx", request.body, hashlib.sha256).hexdigest()
    assert header != f"sha256={wrong}"


def test_webhook_redirect_fails_for_good_without_following(sink) -> None:
    sink.script(Reply(302, {"Location": "https://elsewhere.example/hook"}))
    outcome = deliver(channel("webhook", sink), None, message(), KEY, FAST)
    assert outcome.result is Result.FAILED and outcome.status == 302
    assert "elsewhere.example" in outcome.reason
    assert len(sink.requests) == 1  # not followed (a redirected POST becomes a GET)


def test_webhook_error_detail_from_a_json_answer(sink) -> None:
    sink.script(Reply(422, body={"error": "unknown event type"}))
    outcome = deliver(channel("webhook", sink), None, message(), KEY, FAST)
    assert outcome == Outcome.failed(
        f"127.0.0.1:{sink.port} answered 422 Unprocessable Entity: unknown event type.", 422
    )


# --- classification, for every remote kind ----------------------------------------------------
@pytest.mark.parametrize("kind", REMOTE)
def test_success_is_delivered(kind, sink) -> None:
    outcome = deliver(channel(kind, sink), secret_for(kind), message(), KEY, FAST)
    assert outcome.result is Result.DELIVERED and outcome.status == 200
    assert len(sink.requests) == 1


@pytest.mark.parametrize("kind", REMOTE)
def test_429_with_retry_after_seconds_is_retried_then(kind, sink) -> None:
    sink.script(Reply(429, {"Retry-After": "2"}, body={"ok": False, "error_code": 429}))
    outcome = deliver(channel(kind, sink), secret_for(kind), message(), KEY, FAST)
    assert outcome.result is Result.RETRY
    assert outcome.retry_after == 2 and outcome.status == 429
    assert "429 Too Many Requests" in outcome.reason


@pytest.mark.parametrize("kind", REMOTE)
def test_429_with_retry_after_http_date_is_retried_then(kind, sink) -> None:
    sink.script(Reply(429, {"Retry-After": formatdate(time.time() + 120, usegmt=True)}))
    outcome = deliver(channel(kind, sink), secret_for(kind), message(), KEY, FAST)
    assert outcome.result is Result.RETRY
    assert outcome.retry_after is not None and 117 <= outcome.retry_after <= 121


@pytest.mark.parametrize("kind", REMOTE)
@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_5xx_and_408_are_retryable(kind, status, sink) -> None:
    sink.script(Reply(status, body="upstream trouble"))
    outcome = deliver(channel(kind, sink), secret_for(kind), message(), KEY, FAST)
    assert outcome.result is Result.RETRY and outcome.status == status
    assert outcome.retry_after is None


@pytest.mark.parametrize("kind", REMOTE)
@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_other_4xx_fail_for_good_with_one_sentence(kind, status, sink) -> None:
    sink.script(Reply(status, body={"description": "Bad Request: nope", "error": "nope"}))
    outcome = deliver(channel(kind, sink), secret_for(kind), message(), KEY, FAST)
    assert outcome.result is Result.FAILED and outcome.status == status
    assert outcome.reason.endswith(".") and outcome.reason.count(". ") == 0
    assert "nope" in outcome.reason
    assert TOKEN not in outcome.reason and "/bot" not in outcome.reason


@pytest.mark.parametrize("kind", REMOTE)
def test_scripted_429_500_200_with_the_same_idempotency_key(kind, sink) -> None:
    sink.script(Reply(429, {"Retry-After": "1"}), Reply(500))
    results = [
        deliver(channel(kind, sink), secret_for(kind), message(), KEY, FAST).result
        for _ in range(3)
    ]
    assert results == [Result.RETRY, Result.RETRY, Result.DELIVERED]
    if kind != "telegram":  # Telegram has no idempotency key
        assert [r.headers["Idempotency-Key"] for r in sink.requests] == [KEY] * 3
    assert len({r.body for r in sink.requests}) == 1  # the same message each time


@pytest.mark.parametrize("kind", REMOTE)
def test_connection_refused_is_retryable(kind) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = channel(kind, _Closed(port))
    outcome = deliver(settings, secret_for(kind), message(), KEY, FAST)
    assert outcome.result is Result.RETRY and outcome.status is None
    assert outcome.reason == f"Could not connect to 127.0.0.1:{port} (Connection refused)."


class _Closed:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("kind", REMOTE)
def test_read_timeout_is_retryable(kind, sink) -> None:
    sink.script(Reply(200, delay=3))
    started = time.monotonic()
    outcome = deliver(channel(kind, sink), secret_for(kind), message(), KEY, (2.0, 0.3))
    assert time.monotonic() - started < 2
    assert outcome == Outcome.retry(f"127.0.0.1:{sink.port} did not answer within 0.3 s.")


# --- Telegram ---------------------------------------------------------------------------------
def test_telegram_posts_markdown_v2_to_the_bot_path(sink) -> None:
    msg = message(title="runner_1 *bold* [link](x) ~a~ `b` #c +d -e =f |g {h} .i !j \\k")
    deliver(channel("telegram", sink), TOKEN, msg, KEY, FAST)
    request = sink.last
    assert request.path == f"/bot{TOKEN}/sendMessage"
    assert request.headers["Content-Type"] == "application/json"
    payload = request.json()
    assert payload["chat_id"] == 1234
    assert payload["parse_mode"] == "MarkdownV2"
    assert payload["disable_web_page_preview"] is True
    title = r"runner\_1 \*bold\* \[link\]\(x\) \~a\~ \`b\` \#c \+d \-e \=f \|g \{h\} \.i \!j \\k"
    assert payload["text"] == f"\U0001f6a8 *{title}*\nexit status 1"


@pytest.mark.parametrize("title", ["a_b*c[d](e)", "_*[]()", "f(x) = [1, 2].", "*_*_", "\\_"])
def test_telegram_escaping_leaves_no_special_character_unescaped(title) -> None:
    escaped = channels.escape_markdown_v2(title)
    # Reading left to right, every special character is preceded by exactly one backslash.
    i, plain = 0, []
    while i < len(escaped):
        char = escaped[i]
        assert char not in "_*[]()~`>#+-=|{}.!", f"unescaped {char!r} in {escaped!r}"
        if char == "\\":
            plain.append(escaped[i + 1])
            i += 2
        else:
            plain.append(char)
            i += 1
    assert "".join(plain) == title


def test_telegram_retry_after_from_the_json_answer(sink) -> None:
    answer = {"ok": False, "error_code": 429, "parameters": {"retry_after": 7}}
    sink.script(Reply(429, body=answer))
    outcome = deliver(channel("telegram", sink), TOKEN, message(), KEY, FAST)
    assert (outcome.result, outcome.retry_after) == (Result.RETRY, 7)


def test_telegram_supergroup_migration_says_the_new_chat_id(sink) -> None:
    answer = {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": -1001234},
    }
    sink.script(Reply(400, body=answer))
    outcome = deliver(channel("telegram", sink), TOKEN, message(), KEY, FAST)
    assert outcome == Outcome.failed(
        "The Telegram group became a supergroup; set chat_id to -1001234.", 400
    )


def test_telegram_without_a_token_fails_without_a_request(sink) -> None:
    outcome = deliver(channel("telegram", sink), None, message(), KEY, FAST)
    assert outcome.result is Result.FAILED and "bot token" in outcome.reason
    bad = deliver(channel("telegram", sink), "123:abc/../x", message(), KEY, FAST)
    assert bad.result is Result.FAILED and "malformed" in bad.reason
    assert sink.requests == []


def test_telegram_token_never_reaches_the_logs(sink, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    sink.script(Reply(500))
    outcome = deliver(channel("telegram", sink), TOKEN, message(), KEY, FAST)
    assert sink.last.path == f"/bot{TOKEN}/sendMessage"  # the token went out in the path
    assert caplog.records  # the client and the loop logged at DEBUG
    assert TOKEN not in caplog.text
    assert TOKEN not in outcome.reason and str(sink.port) in outcome.reason


def test_telegram_forum_topic(sink) -> None:
    settings = check_channel(
        "telegram", {"chat_id": "-100987", "api_base": sink.url, "message_thread_id": 5}
    )
    deliver(settings, TOKEN, message(), KEY, FAST)
    assert sink.last.json()["chat_id"] == -100987
    assert sink.last.json()["message_thread_id"] == 5


# --- ntfy -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("severity", "priority"), [("debug", "2"), ("info", "3"), ("warning", "4"), ("error", "5")]
)
def test_ntfy_priority_follows_severity(severity, priority, sink) -> None:
    deliver(channel("ntfy", sink), None, message(severity=severity), KEY, FAST)
    assert sink.last.headers["Priority"] == priority


@pytest.mark.parametrize(
    ("event_type", "severity", "tag"),
    [
        ("runner.failed", "error", "rotating_light"),
        ("runner.fatal", "error", "rotating_light"),
        ("runner.lost", "warning", "warning"),
        ("runner.unresponsive", "warning", "warning"),
        ("runner.exited", "info", "white_check_mark"),
        ("budget.spent", "warning", "moneybag"),
        ("something.new", "error", "rotating_light"),  # unknown type: by severity
        ("something.new", "info", "information_source"),
    ],
)
def test_ntfy_tags_follow_type(event_type, severity, tag, sink) -> None:
    msg = message(type=event_type, severity=severity)
    deliver(channel("ntfy", sink), None, msg, KEY, FAST)
    assert sink.last.headers["Tags"] == f"{tag},demo"


def test_ntfy_request_shape(sink) -> None:
    outcome = deliver(channel("ntfy", sink), "tk_access_token", message(), KEY, FAST)
    assert outcome.result is Result.DELIVERED
    request = sink.last
    assert (request.method, request.path) == ("POST", "/stratavore-test")
    assert request.headers["Title"] == "runner 7 (demo) failed"
    assert request.headers["Authorization"] == "Bearer tk_access_token"
    assert request.headers["Idempotency-Key"] == KEY
    assert request.body == b"exit status 1"


def test_ntfy_malformed_token_fails_without_a_request(sink) -> None:
    outcome = deliver(channel("ntfy", sink), "tk_\u00e9t\u00e9", message(), KEY, FAST)
    assert outcome == Outcome.failed("The ntfy access token in the keyring is malformed.")
    assert sink.requests == []


def test_ntfy_without_token_sends_no_authorization_and_title_as_body(sink) -> None:
    deliver(channel("ntfy", sink), None, message(body=""), KEY, FAST)
    assert "Authorization" not in sink.last.headers
    assert sink.last.body == b"runner 7 (demo) failed"


def test_ntfy_non_ascii_title_and_tags_are_rfc2047_encoded(sink) -> None:
    msg = message(title="Läufer 7 (démo) ist ausgefallen ✗", project="démo")
    assert deliver(channel("ntfy", sink), None, msg, KEY, FAST).result is Result.DELIVERED
    headers = sink.last.headers
    assert headers["Title"].isascii()
    assert str(make_header(decode_header(headers["Title"]))) == msg.title
    assert str(make_header(decode_header(headers["Tags"]))) == "rotating_light,démo"


def test_ntfy_summary_uses_the_most_severe_type_for_its_tag(sink) -> None:
    msgs = [message(type="runner.exited", severity="info", event_id=i) for i in range(3)]
    msgs.append(message(type="runner.lost", severity="warning", event_id=9))
    deliver(channel("ntfy", sink), None, summarize(msgs), KEY, FAST)
    assert sink.last.headers["Tags"] == "warning,demo"
    assert sink.last.headers["Priority"] == "4"


# --- desktop ----------------------------------------------------------------------------------
def test_desktop_headless_logs_and_counts_as_delivered(caplog) -> None:
    caplog.set_level(logging.INFO, logger="stratavore.notify")
    outcome = deliver({"kind": "desktop"}, None, message(), KEY, FAST)
    assert outcome.result is Result.DELIVERED
    assert "notify: [error] runner 7 (demo) failed" in caplog.messages


def test_desktop_hands_the_message_to_subscribers() -> None:
    got: list[Message] = []
    unsubscribe = channels.subscribe_desktop(got.append)
    try:
        msg = message()
        assert deliver({"kind": "desktop"}, None, msg, KEY) == Outcome.delivered()
        assert got == [msg]
    finally:
        unsubscribe()
    deliver({"kind": "desktop"}, None, message(), KEY)
    assert len(got) == 1


def test_desktop_subscriber_that_raises_makes_it_retryable(caplog) -> None:
    def broken(msg: Message) -> None:
        raise RuntimeError("no notification daemon")

    unsubscribe = channels.subscribe_desktop(broken)
    try:
        outcome = deliver({"kind": "desktop"}, None, message(), KEY)
    finally:
        unsubscribe()
    assert outcome == Outcome.retry("The desktop notifier failed (RuntimeError).")
    assert "notify failed: desktop notifier raised" in caplog.text


# --- messages from events, Retry-After parsing ------------------------------------------------
def test_message_from_a_stored_event(tmp_path: Path) -> None:
    init_db(tmp_path / "stratavore.db")
    try:
        with DB.atomic():
            event_id = events.record(
                "runner.lost",
                "runner 3 (api) was lost",
                ts=1_700_000_000.0,
                severity="warning",
                runner_id=3,
                project="api",
                body="vanished",
                data={"state": "lost"},
            )
        msg = Message.from_event(Event.get_by_id(event_id))
    finally:
        close_db()
    assert msg == Message(
        event_id, 1_700_000_000.0, "runner.lost", "warning", "runner 3 (api) was lost",
        "vanished", 3, "api", {"state": "lost"}, (event_id,),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        (" 30 ", 30.0),
        ("1.5", 1.5),
        ("-1", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: now
        (formatdate(1_700_000_060, usegmt=True), 60.0),
    ],
)
def test_parse_retry_after(value, expected) -> None:
    assert channels.parse_retry_after(value, now=1_700_000_000) == expected


# --- settings ---------------------------------------------------------------------------------
def invalid(kind: str, settings: Any) -> str:
    with pytest.raises(ApiError) as info:
        check_channel(kind, settings)
    assert info.value.code is ErrorCode.INVALID
    return info.value.message


def test_check_channel_normalizes_and_fills_defaults() -> None:
    assert check_channel("telegram", {"chat_id": "-1001"}) == {
        "kind": "telegram",
        "chat_id": -1001,
        "api_base": "https://api.telegram.org",
    }
    assert check_channel("telegram", {"chat_id": "@my_channel"})["chat_id"] == "@my_channel"
    assert check_channel("ntfy", {"topic": "t-1", "server": "https://ntfy.example/"}) == {
        "kind": "ntfy",
        "topic": "t-1",
        "server": "https://ntfy.example",
    }
    assert check_channel("ntfy", {"topic": "t"})["server"] == "https://ntfy.sh"
    assert check_channel("webhook", {"url": "https://h.example/a?b=1"})["url"] == (
        "https://h.example/a?b=1"
    )
    assert check_channel("desktop", {}) == {"kind": "desktop"}
    settings = check_channel("webhook", {"url": "http://127.0.0.1:9/x"})
    assert check_channel(settings["kind"], settings) == settings  # idempotent


@pytest.mark.parametrize(
    ("kind", "settings", "sentence"),
    [
        ("carrier-pigeon", {}, "Unknown channel kind 'carrier-pigeon'; use one of desktop, "),
        ("webhook", {"url": "ftp://h.example/x"}, "must start with https:// or http://, not ftp"),
        ("webhook", {}, "A webhook channel needs a url"),
        ("webhook", {"url": "https://"}, "has no host name"),
        ("webhook", {"url": "https://u:p@h.example/"}, "must not contain a user name"),
        ("webhook", {"url": "https://h.example:99999/"}, "is not a valid URL"),
        ("telegram", {}, "A telegram channel needs a chat_id"),
        ("telegram", {"chat_id": True}, "neither a numeric chat id nor an @channelname"),
        ("telegram", {"chat_id": 1, "message_thread_id": -2}, "positive whole number"),
        ("ntfy", {}, "An ntfy channel needs a topic."),
        ("ntfy", {"topic": "a/b"}, "must be 1 to 64 letters"),
        ("ntfy", {"topic": "t", "server": "https://h.example/?x=1"}, "must not have a ?query"),
        ("desktop", {"sound": True}, "Unknown setting 'sound' for a desktop channel"),
        ("telegram", {"chat_id": 1, "bot_token": "x"}, "looks like a secret"),
        ("webhook", [], "Channel settings must be a JSON object."),
    ],
)
def test_check_channel_refuses_with_a_sentence(kind, settings, sentence) -> None:
    assert sentence in invalid(kind, settings)


def test_check_channel_reports_every_problem_one_sentence_each() -> None:
    message_text = invalid("telegram", {"api_base": "ftp://x", "colour": "red"})
    assert message_text == (
        "Unknown setting 'colour' for a telegram channel (known: chat_id, api_base, "
        "message_thread_id). A telegram channel needs a chat_id (the numeric chat id, or "
        "@channelname). The api_base must start with https:// or http://, not ftp."
    )


@pytest.mark.parametrize(
    ("kind", "secret", "sentence"),
    [
        ("telegram", "not-a-token", "not a Telegram bot token"),
        ("telegram", None, "needs its bot token as the secret"),
        ("webhook", "short", "at least 16 characters"),
        ("ntfy", "tk with space", "must not contain spaces"),
        ("ntfy", "tk_été", "non-ASCII"),
        ("desktop", "anything", "takes no secret"),
    ],
)
def test_check_secret_refuses_without_echoing_it(kind, secret, sentence) -> None:
    with pytest.raises(ApiError) as info:
        channels.check_secret(kind, secret)
    assert sentence in info.value.message
    assert not secret or secret not in info.value.message


def test_check_secret_accepts_good_ones() -> None:
    channels.check_secret("telegram", TOKEN)
    channels.check_secret("ntfy", None)
    channels.check_secret("ntfy", "tk_abc")
    channels.check_secret("webhook", "0123456789abcdef")
    channels.check_secret("desktop", None)


def test_secrets_never_appear_in_settings_or_payloads(sink) -> None:
    deliver(channel("webhook", sink), "hmac-key-not-in-body-123", message(), KEY, FAST)
    assert b"hmac-key-not-in-body-123" not in sink.last.body
    assert json.dumps(channel("telegram", sink)).find(TOKEN) == -1
