"""The dispatcher's rounds, in-process on a real DB and a real local HTTP sink."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.core import events
from supervisor.notify.outbox import CHANNEL_INFLIGHT, Dispatcher, add_channel, backoff
from supervisor.storage.db import close_db, init_db
from supervisor.storage.models import DB, Delivery
from tests.conftest import wait_for
from tests.sink import Reply, Sink


@pytest.fixture
def db(tmp_path: Path) -> Iterator[None]:
    init_db(tmp_path / "stratavore.db")
    yield
    close_db()


def test_backoff_doubles_from_one_second_and_is_capped() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4, 10, 30)] == [1, 2, 4, 8, 300, 300]


def test_one_round_sends_every_due_delivery_up_to_the_channels_room(db) -> None:
    with Sink(Reply(200, delay=0.5)) as sink:
        add_channel("hook", "webhook", {"url": f"{sink.url}/hook"}, None, None, now=0)
        with DB.atomic():
            for i in range(40):
                events.record("runner.exited", f"runner {i} exited", ts=1.0)
        dispatcher = Dispatcher()
        try:
            dispatcher.round(now=10.0)
            # all at once, not one per round: as many as the channel may have on their way
            wait_for(lambda: len(sink.requests) >= 4, 5, what="the first POSTs")
            assert Delivery.select().count() == 40
            assert len(dispatcher._inflight) == CHANNEL_INFLIGHT
            wait_for(lambda: len(dispatcher._done) == CHANNEL_INFLIGHT, 10, what="answers")
            dispatcher.round(now=11.0)  # records them, sends the next ones
            sent = Delivery.select().where(Delivery.state == "sent").count()
            assert sent == CHANNEL_INFLIGHT
            assert len(dispatcher._inflight) == CHANNEL_INFLIGHT
        finally:
            asyncio.run(dispatcher.stop())
