"""The dispatcher's rounds, in-process on a real DB and a real local HTTP sink."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.core import events
from supervisor.notify.outbox import Dispatcher, add_channel
from supervisor.notify.sender import CHANNEL_INFLIGHT, CHANNEL_QUEUE, backoff
from supervisor.storage.db import close_db, init_db
from supervisor.storage.models import DB, Delivery
from tests.sink import Reply, Sink


@pytest.fixture
def db(tmp_path: Path) -> Iterator[None]:
    init_db(tmp_path / "stratavore.db")
    yield
    close_db()


def test_backoff_doubles_from_one_second_and_is_capped() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4, 10, 30)] == [1, 2, 4, 8, 300, 300]


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the loop run until ``condition`` holds (10 s at most)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def record_events(count: int) -> None:
    with DB.atomic():
        for i in range(count):
            events.record("runner.exited", f"runner {i} exited", ts=1.0)


def test_one_round_takes_every_due_delivery_and_the_wire_refills_without_another(db) -> None:
    async def scenario(sink: Sink) -> None:
        dispatcher = Dispatcher()
        try:
            dispatcher.round(now=10.0)
            # all 40 taken at once, not one per round; 16 on the wire while none is answered
            assert Delivery.select().count() == 40
            assert len(dispatcher.sender.inflight) == 40
            await until(lambda: len(sink.requests) >= CHANNEL_INFLIGHT, "the first POSTs")
            await asyncio.sleep(0.2)
            assert len(sink.requests) == CHANNEL_INFLIGHT
            # each answer frees a slot for the next, with no round in between
            await until(lambda: len(sink.requests) == 40, "every POST")
            await until(lambda: len(dispatcher.sender.done) == 40, "every answer")
            dispatcher.round(now=11.0)  # records them in one go
            sent = Delivery.select().where(Delivery.state == "sent").count()
            assert sent == 40
            assert not dispatcher.sender.inflight
        finally:
            await dispatcher.stop()

    with Sink(Reply(200, delay=1.0)) as sink:
        add_channel("hook", "webhook", {"url": f"{sink.url}/hook"}, None, None, now=0)
        record_events(40)
        asyncio.run(scenario(sink))


def test_a_round_takes_at_most_the_channels_queue(db) -> None:
    async def scenario() -> None:
        dispatcher = Dispatcher()
        try:
            dispatcher.round(now=10.0)
            assert len(dispatcher.sender.inflight) == CHANNEL_QUEUE  # the rest wait in the DB
            await until(lambda: len(dispatcher.sender.done) == CHANNEL_QUEUE, "their answers")
            dispatcher.round(now=11.0)
            assert len(dispatcher.sender.inflight) == CHANNEL_QUEUE // 2  # the rest, taken at once
        finally:
            await dispatcher.stop()

    with Sink() as sink:
        add_channel("hook", "webhook", {"url": f"{sink.url}/hook"}, None, None, now=0)
        record_events(CHANNEL_QUEUE + CHANNEL_QUEUE // 2)
        asyncio.run(scenario())


def test_a_delivery_the_channel_no_longer_wants_is_skipped_not_read_again(db) -> None:
    async def scenario() -> None:
        dispatcher = Dispatcher()
        try:
            dispatcher.round(now=10.0)
            assert not dispatcher.sender.inflight
        finally:
            await dispatcher.stop()

    with Sink() as sink:
        add_channel("hook", "webhook", {"url": f"{sink.url}/hook"}, None, None, now=0)
        record_events(3)
        dispatcher = Dispatcher()
        dispatcher._load_channels()
        dispatcher._fan_out(now=5.0)  # three deliveries written, then the rules change
        rules = {"types": ["runner.failed"]}
        add_channel("hook", "webhook", {"url": f"{sink.url}/hook"}, rules, None, now=6)
        asyncio.run(scenario())
        states = [d.state for d in Delivery.select()]
        assert states == ["skipped"] * 3  # before: pending for ever, read at every round
        assert sink.requests == []
