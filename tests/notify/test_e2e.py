"""The outbox end to end: a real supervisor delivering to a real local HTTP sink that plays a
webhook, ntfy and Telegram; retries, dead letters, storms, kill -9, and secrets kept secret."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from supervisor.core import paths
from supervisor.notify.sender import CHANNEL_INFLIGHT
from tests.cli.test_e2e import Cli
from tests.conftest import REPO, Daemon, api_error, wait_for
from tests.keyring_backend import FAIL_BACKEND
from tests.sink import Reply, Sink

QUICK = [sys.executable, "-c", "pass"]
FAILS = [sys.executable, "-c", "import sys; sys.exit(3)"]
SECRET = "hmac-secret-3f9a1c77e2"


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as server:
        yield server


def add_webhook(home: Path, sink: Sink, name: str = "hook", secret: str | None = None) -> str:
    cli = Cli(home)
    argv = ["notify", "add", "webhook", name, "--url", f"{sink.url}/hook"]
    if secret is None:
        return cli.ok(*argv)
    result = subprocess.run(
        cli.argv((*argv, "--secret")), env=cli.env, input=secret + "\n", capture_output=True,
        text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result
    return result.stdout


def delivered_ids(sink: Sink) -> set[int]:
    """Events the sink received whole (a POST cut off by a kill -9 arrives empty)."""
    hooks = [r.json() for r in sink.requests if r.path == "/hook" and r.body]
    return {event_id for body in hooks for event_id in body["event_ids"]}


def test_events_reach_a_signed_webhook_once_each(daemon: Daemon, home, sink, project_dir):
    out = add_webhook(home, sink, secret=SECRET)
    assert out == f"channel hook: webhook to {sink.url}/hook (its secret is in the OS keyring)\n"
    daemon.project("demo", project_dir)
    runner = daemon.launch("demo", QUICK)["id"]
    daemon.wait_state(runner, "exited")
    wait_for(lambda: any(r.json()["type"] == "runner.exited" for r in sink.requests), 10,
             what="the exit to be delivered")  # fmt: skip
    request = next(r for r in sink.requests if r.json()["type"] == "runner.exited")
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Stratavore-Signature"] == f"sha256={expected}"
    assert request.headers["Idempotency-Key"] == request.json()["idempotency_key"]
    assert request.json()["subject"] == {"runner_id": runner, "project": "demo"}
    keys = [r.headers["Idempotency-Key"] for r in sink.requests]
    assert len(keys) == len(set(keys))  # a healthy channel gets each delivery once
    # the secret is in the keyring only: not in the DB, the logs, or any command line
    for path in [paths.db_path(home), *paths.logs_dir(home).iterdir()]:
        for file in path.parent.glob(path.name + "*"):
            assert SECRET.encode() not in file.read_bytes(), file
    for proc in psutil.process_iter(["cmdline"]):
        assert SECRET not in " ".join(proc.info["cmdline"] or [])


def test_failures_are_retried_with_backoff_and_retry_after(daemon, home, sink, project_dir):
    sink.script(Reply(500), Reply(429, headers={"Retry-After": "1"}))
    add_webhook(home, sink)
    daemon.project("demo", project_dir)
    daemon.wait_state(daemon.launch("demo", QUICK)["id"], "exited")  # starting, exited
    wait_for(lambda: len(sink.requests) == 4, 15, what="two failures and two deliveries")
    keys = [r.headers["Idempotency-Key"] for r in sink.requests]
    assert sorted(keys.count(k) for k in set(keys)) == [2, 2]  # each retried under its key
    assert {r.json()["type"] for r in sink.requests} == {"runner.starting", "runner.exited"}
    assert Cli(home).json("events", "dead") == []


def test_a_refused_delivery_is_a_dead_letter_until_retried_by_hand(
    daemon, home, sink, project_dir
):
    sink.script(Reply(400, body={"error": "bad payload"}))
    add_webhook(home, sink)
    cli = Cli(home)
    daemon.project("demo", project_dir)
    daemon.launch("demo", QUICK)
    dead = wait_for(lambda: cli.json("events", "dead"), 10, what="a dead letter")
    assert dead[0]["channel"] == "hook" and "400" in dead[0]["error"]
    assert dead[0]["attempts"] == 1  # a refusal is not retried by itself
    done = cli.ok("events", "retry", str(dead[0]["id"]))
    assert done == f"delivery {dead[0]['id']} is queued again\n"
    wait_for(lambda: cli.json("events", "dead") == [], 10, what="the retry to succeed")
    assert cli.fails("events", "retry", "9999", status=4) == (
        "stratavore: Delivery 9999 does not exist."
    )


def test_a_storm_of_failures_becomes_one_summary_on_telegram(daemon, home, sink, project_dir):
    cli = Cli(home)
    result = subprocess.run(
        cli.argv(("notify", "add", "telegram", "phone", "--chat-id", "4242")),
        env=cli.env, input="123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw\n",
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result
    # point the channel at the sink (a setting of the channel, as a self-hosted Bot API)
    daemon.api.request("PUT", "/api/v1/notify/channels/phone", body={
        "kind": "telegram", "config": {"chat_id": 4242, "api_base": sink.url},
        "secret": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    })  # fmt: skip
    daemon.project("demo", project_dir, max_runners=20)
    ids = [daemon.launch("demo", FAILS)["id"] for _ in range(12)]
    for runner_id in ids:
        daemon.wait_state(runner_id, "failed")
    wait_for(lambda: any("12 runners failed" in r.json()["text"] for r in sink.requests), 70,
             what="the summary")  # fmt: skip
    assert len(sink.requests) <= 6  # at most 5 messages a minute, the rest folded
    assert all("/bot123456789:" in r.path for r in sink.requests)


def test_kill_9_in_a_burst_loses_nothing(daemon_factory, home, sink, project_dir):
    slow = Reply(200, delay=0.05)
    sink.default = slow
    daemon: Daemon = daemon_factory()
    add_webhook(home, sink)
    daemon.project("demo", project_dir, max_runners=40)
    for _ in range(30):
        daemon.launch("demo", QUICK)
    wait_for(lambda: len(sink.requests) >= 10, 20, what="some deliveries")
    daemon.kill()
    sink.default = Reply(200)
    again = daemon_factory()
    wait_for(lambda: again.api.get("/api/v1/runners", all=1) and all(
        r["state"] in ("exited", "lost") for r in again.api.get("/api/v1/runners", all=1)
    ), 20, what="the runners to be finished")  # fmt: skip
    events = again.api.get("/api/v1/events", last=1000)
    wanted = {e["id"] for e in events if e["type"].startswith("runner.")}
    assert len(wanted) >= 60  # 30 runners, each at least starting and exited
    wait_for(lambda: wanted <= delivered_ids(sink), 30, what="every event to be delivered")


def test_notify_channels_rm_and_test(daemon, home, sink) -> None:
    cli = Cli(home)
    add_webhook(home, sink)
    assert cli.json("notify", "channels")[0]["config"] == {"url": f"{sink.url}/hook"}
    assert cli.ok("notify", "test", "hook") == "hook: delivered\n"
    assert sink.last.json()["type"] == "notify.test"
    sink.script(Reply(503))
    result = cli("notify", "test")
    assert result.returncode == 1 and result.stdout.startswith("hook: retry (")
    assert cli.ok("notify", "rm", "hook") == "removed channel hook and its secret\n"
    assert cli.json("notify", "channels") == []
    gone = cli.fails("notify", "rm", "hook", status=4)
    assert gone == "stratavore: Channel 'hook' does not exist."


def test_without_a_keyring_a_secret_is_refused_not_stored(home) -> None:
    env = {**os.environ, "STRATAVORE_HOME": str(home), "PYTHONPATH": str(REPO),
           "PYTHON_KEYRING_BACKEND": FAIL_BACKEND}  # fmt: skip
    daemon = Daemon(home, [], env).start()
    try:
        error = api_error(lambda: daemon.api.request("PUT", "/api/v1/notify/channels/tg", body={
            "kind": "telegram", "config": {"chat_id": 1},
            "secret": "123456789:AAAAAAAAAAAAAAAAAAAAAAAA",
        }))  # fmt: skip
        assert error.code.code == "unavailable"
        assert error.message.startswith("There is no usable keyring")
        assert daemon.api.get("/api/v1/notify/channels") == []
    finally:
        daemon.close()


def test_a_webhook_without_a_secret_works_without_any_keyring(home, sink, project_dir) -> None:
    """A headless server has no keyring: a channel without a secret must not need one."""
    env = {**os.environ, "STRATAVORE_HOME": str(home), "PYTHONPATH": str(REPO),
           "PYTHON_KEYRING_BACKEND": FAIL_BACKEND}  # fmt: skip
    daemon = Daemon(home, [], env).start()
    try:
        daemon.api.request("PUT", "/api/v1/notify/channels/hook", body={
            "kind": "webhook", "config": {"url": f"{sink.url}/hook"}})  # fmt: skip
        daemon.project("demo", project_dir)
        daemon.wait_state(daemon.launch("demo", QUICK)["id"], "exited")
        wait_for(lambda: any(r.json()["type"] == "runner.exited" for r in sink.requests), 10,
                 what="the delivery")  # fmt: skip
    finally:
        daemon.close()


def test_a_slow_channel_does_not_hold_up_another(daemon, home, project_dir) -> None:
    with Sink(Reply(200, delay=3.0)) as slow, Sink() as fast:
        add_webhook(home, slow, name="slow")
        add_webhook(home, fast, name="fast")
        daemon.project("demo", project_dir, max_runners=20)
        for _ in range(10):
            daemon.launch("demo", QUICK)
        wait_for(lambda: len(fast.requests) >= 20, 10, what="the fast channel's deliveries")
        # meanwhile the slow one has at most its own room on the wire (30 are due)
        assert len(slow.requests) <= CHANNEL_INFLIGHT
