"""The bridge's polling against a real supervisor (a ``stratavore daemon`` child): it waits at
the supervisor for news, a window opening cuts that wait short, and a supervisor gone is
retried at a steady pace, never in a tight loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import qasync

from desktop import bridge as bridge_module
from desktop.bridge import Bridge, BridgeError
from tests.conftest import Daemon


def run(loop: qasync.QEventLoop, work: Coroutine[Any, Any, Any]) -> Any:
    return loop.run_until_complete(asyncio.wait_for(work, 60))


async def until(predicate: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
    return value


def test_a_window_opening_cuts_the_wait_for_news_short(qloop: qasync.QEventLoop, daemon: Daemon):
    bridge = Bridge(daemon.api.base_url, daemon.api.token or "")
    refreshes: list[float] = []
    bridge.changed.connect(lambda: refreshes.append(time.monotonic()))

    async def scenario() -> None:
        bridge.start()
        try:
            await until(lambda: refreshes, "the first refresh")
            await asyncio.sleep(1.0)  # waiting for news now: nothing comes
            assert len(refreshes) == 1
            opened = time.monotonic()
            bridge.watchers += 1  # the dashboard shows live figures
            await until(lambda: len(refreshes) == 2, "a refresh for the window")
            assert refreshes[1] - opened < 1.0  # not at the end of the 25 s wait
            await until(lambda: len(refreshes) == 3, "the next tick's refresh")
            assert refreshes[2] - refreshes[1] >= bridge_module.REFRESH_S * 0.9
            bridge.watchers -= 1
        finally:
            await bridge.close()

    run(qloop, scenario())


def test_a_supervisor_gone_is_retried_every_few_seconds_not_in_a_loop(
    qloop: qasync.QEventLoop, daemon: Daemon, caplog: pytest.LogCaptureFixture
):
    bridge = Bridge(daemon.api.base_url, daemon.api.token or "")
    caplog.set_level(logging.WARNING, logger="stratavore.desktop")

    async def scenario() -> None:
        bridge.start()
        try:
            await bridge.refresh()
            await asyncio.sleep(0.5)  # waiting for news
            daemon.stop()  # answers the waiting request at once, then refuses connections
            await asyncio.sleep(2 * bridge_module.RETRY_S + 0.5)
        finally:
            await bridge.close()

    run(qloop, scenario())
    failures = [r for r in caplog.records if r.getMessage().startswith("desktop: refresh failed")]
    assert 1 <= len(failures) <= 3, [r.getMessage() for r in failures]


def test_an_action_while_the_supervisor_is_gone_is_one_sentence_not_a_crash(
    qloop: qasync.QEventLoop, daemon: Daemon
):
    """A user's action (the tray's Stop) when the supervisor no longer answers: the bridge
    says so in one sentence (``failed``, shown by the tray), and nothing escapes to the
    crash hook."""
    bridge = Bridge(daemon.api.base_url, daemon.api.token or "")
    refusals: list[str] = []
    bridge.failed.connect(refusals.append)

    async def scenario() -> None:
        bridge.start()
        try:
            await bridge.refresh()
            daemon.stop()
            assert await bridge.stop(1) is None
        finally:
            await bridge.close()

    run(qloop, scenario())
    assert len(refusals) == 1
    assert refusals[0].startswith("The supervisor did not answer ("), refusals


def test_a_fetch_while_the_supervisor_is_gone_is_a_bridge_error(
    qloop: qasync.QEventLoop, daemon: Daemon
):
    """What a window fetches fails with BridgeError, the one error type, whatever failed."""
    bridge = Bridge(daemon.api.base_url, daemon.api.token or "")

    async def scenario() -> BridgeError:
        bridge.start()
        try:
            daemon.stop()
            with pytest.raises(BridgeError) as refused:
                await bridge.channels()
            return refused.value
        finally:
            await bridge.close()

    error = run(qloop, scenario())
    assert error.code == bridge_module.NO_ANSWER
    assert error.message.startswith("The supervisor did not answer (")


def test_work_spawned_for_a_widget_is_cancelled_when_the_widget_is_destroyed(
    qloop: qasync.QEventLoop,
):
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication, QLabel

    label = QLabel("before")
    kept = QLabel("before")

    async def answer(widget: QLabel) -> None:
        await asyncio.sleep(0.2)
        widget.setText("after")  # on a deleted widget: RuntimeError, reported by the loop

    owned = bridge_module.spawn(answer(label), label)
    bridge_module.spawn(answer(kept), kept)
    label.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # the label is gone

    async def settle() -> None:
        await asyncio.sleep(0.4)

    qloop.run_until_complete(settle())
    assert owned.cancelled()
    assert kept.text() == "after"
