"""The dashboard against a real supervisor: a ``stratavore daemon`` child, the real bridge on a
qasync loop (conftest's ``qloop``), real runners, real widgets (offscreen).

Each test drives one coroutine on the loop (:func:`run`): the bridge's requests, the buttons'
spawned actions and the Qt events all proceed while it awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtCore import QObject, QSettings, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices

from desktop.bridge import Bridge
from desktop.dashboard import Dashboard
from desktop.models import ATTENTION, EventsModel, RunnersModel
from tests.conftest import SLEEP, Daemon
from tests.desktop.conftest import agent_argv, fake_runs
from tests.sink import Reply, Sink

QUICK = [sys.executable, "-c", "pass"]


# --- the bridge and the window: shared with test_charts ---------------------------------------
@pytest.fixture
def bridge(daemon: Daemon, qloop: qasync.QEventLoop) -> Iterator[Bridge]:
    """The real bridge to the daemon, started (polling every 2 s) and refreshed once."""
    bridge = Bridge(daemon.api.base_url, daemon.api.token or "")

    async def start() -> None:
        bridge.start()
        await bridge.refresh()

    run(qloop, start())
    yield bridge
    run(qloop, bridge.close())


@pytest.fixture
def prefs(tmp_path: Path) -> QSettings:
    """This app's preferences in a temp file: never the user's."""
    return QSettings(str(tmp_path / "prefs.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def dashboard(bridge: Bridge, prefs: QSettings, qtbot: Any) -> Dashboard:
    window = Dashboard(bridge, prefs)
    qtbot.addWidget(window)
    window.show()
    return window


def run(loop: qasync.QEventLoop, work: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
    """Run ``work`` on the loop (Qt events are processed meanwhile)."""
    return loop.run_until_complete(asyncio.wait_for(work, timeout))


async def until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "it") -> Any:
    """Await ``predicate`` turning truthy while the loop (and Qt) keep running."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
    return value


async def fetched(window: Dashboard, name: str, timeout: float = 15.0) -> None:
    """Await the window's next ``fetched(name)``."""
    done = asyncio.get_running_loop().create_future()

    def seen(which: str) -> None:
        if which == name and not done.done():
            done.set_result(None)

    window.fetched.connect(seen)
    try:
        await asyncio.wait_for(done, timeout)
    finally:
        window.fetched.disconnect(seen)


def shown_ids(window: Dashboard) -> list[int]:
    model = window.runners.model
    return [model.row_at(row)["id"] for row in range(model.rowCount())]


def selected_ids(window: Dashboard) -> list[int]:
    return [runner["id"] for runner in window.runners.selected()]


def cell(model: Any, row: int, column: str) -> str:
    headers = [c.header for c in model.columns]
    return model.data(model.index(row, headers.index(column)))


class Churn:
    """Counts a model's structural signals."""

    def __init__(self, model: Any) -> None:
        self.resets = self.inserted = self.removed = self.changed = 0
        model.modelReset.connect(lambda: self._add("resets"))
        model.rowsInserted.connect(lambda *_: self._add("inserted"))
        model.rowsRemoved.connect(lambda *_: self._add("removed"))
        model.dataChanged.connect(lambda *_: self._add("changed"))

    def _add(self, name: str) -> None:
        setattr(self, name, getattr(self, name) + 1)


# --- runners ----------------------------------------------------------------------------------
def test_runners_table_shows_real_runners_and_the_selection_survives_refreshes(
    daemon, project_dir, qloop, bridge, dashboard
):
    daemon.project("demo", project_dir)
    first, second = (daemon.launch("demo", SLEEP)["id"] for _ in range(2))
    churn = Churn(dashboard.runners.model)

    async def scenario() -> None:
        await until(
            lambda: (
                all(r["state"] == "running" for r in bridge.snapshot.runners)
                and len(bridge.snapshot.runners) == 2
            ),
            what="two running runners",
        )
        assert shown_ids(dashboard) == [first, second]
        row = dashboard.runners.model.row_of(first)
        assert cell(dashboard.runners.model, row, "Project") == "demo"
        assert cell(dashboard.runners.model, row, "State") == "running"
        assert cell(dashboard.runners.model, row, "PID") == str(bridge.snapshot.runners[0]["pid"])
        assert dashboard.tabs.tabText(1) == "Runners (2)"
        dashboard.show_runner(second)
        assert dashboard.tabs.currentWidget() is dashboard.runners
        assert selected_ids(dashboard) == [second]

        third = daemon.launch("demo", SLEEP)["id"]  # a row inserted
        await until(lambda: third in shown_ids(dashboard), what="the third runner")
        daemon.api.post(f"/api/v1/runners/{first}/stop")  # a row removed
        await until(lambda: first not in shown_ids(dashboard), what="the first to go")
        for _ in range(2):
            await bridge.refresh()
        assert selected_ids(dashboard) == [second]
        dashboard.runners.view.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        assert selected_ids(dashboard) == [second]
        proxy = dashboard.runners.view.model()
        assert [proxy.data(proxy.index(r, 0)) for r in range(2)] == [str(third), str(second)]

    run(qloop, scenario())
    assert churn.resets == 0
    assert churn.inserted >= 1 and churn.removed == 1


def test_stop_button_stops_the_selected_real_runner(daemon, project_dir, qloop, bridge, dashboard):
    daemon.project("demo", project_dir)
    keep, doomed = (daemon.launch("demo", SLEEP)["id"] for _ in range(2))
    pid = daemon.wait_state(doomed, "running")["pid"]

    async def scenario() -> None:
        await bridge.refresh()
        dashboard.show_runner(doomed)
        assert dashboard.runners.stop_button.isEnabled()
        dashboard.runners.stop_button.click()
        await until(lambda: daemon.runner(doomed)["state"] == "stopped", what="the stop")
        # the selected runner stays listed with its end while its pane shows it...
        row = dashboard.runners.model.row_of(doomed)
        await until(lambda: cell(dashboard.runners.model, row, "State") == "stopped")
        dashboard.show_runner(keep)  # ...and goes once another is selected
        await until(lambda: shown_ids(dashboard) == [keep], what="its row to go")

    run(qloop, scenario())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert daemon.runner(keep)["state"] == "running"


def test_restart_button_restarts_the_selected_runner(daemon, project_dir, qloop, bridge, dashboard):
    daemon.project("demo", project_dir)
    runner = daemon.launch("demo", SLEEP)["id"]
    before = daemon.wait_state(runner, "running")["pid"]

    async def scenario() -> None:
        await bridge.refresh()
        dashboard.show_runner(runner)
        dashboard.runners.restart_button.click()
        await until(
            lambda: (r := daemon.runner(runner))["state"] == "running" and r["pid"] != before,
            what="a new process",
        )
        await bridge.refresh()
        assert shown_ids(dashboard) == [runner]

    run(qloop, scenario())


class UrlRecorder(QObject):
    """Takes the file URLs the app would open (a QDesktopServices URL handler)."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.opened.append(url.toLocalFile())


@contextlib.contextmanager
def opened_urls() -> Iterator[list[str]]:
    """The files the app asks the desktop to open meanwhile (instead of opening them)."""
    recorder = UrlRecorder()
    QDesktopServices.setUrlHandler("file", recorder, "open")
    try:
        yield recorder.opened
    finally:
        QDesktopServices.unsetUrlHandler("file")


def test_open_log_opens_the_selected_runners_log(daemon, project_dir, qloop, bridge, dashboard):
    daemon.project("demo", project_dir)
    runner = daemon.launch("demo", SLEEP)["id"]
    log_path = daemon.wait_state(runner, "running")["log_path"]

    async def scenario() -> None:
        await bridge.refresh()
        dashboard.show_runner(runner)
        dashboard.runners.log_button.click()

    with opened_urls() as opened:
        run(qloop, scenario())
    assert opened == [log_path]


def test_an_unresponsive_runner_is_flagged_in_its_state(daemon, project_dir, qloop, bridge):
    daemon.project("demo", project_dir)
    runner = daemon.launch("demo", SLEEP)["id"]
    pid = daemon.wait_state(runner, "running")["pid"]
    model = RunnersModel()
    bridge.changed.connect(lambda: model.update(bridge.snapshot.runners))
    os.kill(pid, signal.SIGSTOP)  # the supervisor's sweep sees a stopped process
    try:

        async def scenario() -> None:
            await until(
                lambda: (
                    model.rowCount() == 1 and cell(model, 0, "State") == "running (unresponsive)"
                ),
                what="the flag",
            )

        run(qloop, scenario())
    finally:
        os.kill(pid, signal.SIGCONT)
    colour = model.data(model.index(0, 3), Qt.ItemDataRole.ForegroundRole).color()
    assert colour.name() == ATTENTION


def test_runners_model_updates_200_runners_by_cell_not_by_reset(daemon, project_dir):
    """Two hundred runners as the API lists them (one real runner's JSON, under 200 ids):
    a refresh that changes five of them signals five rows, fast."""
    daemon.project("demo", project_dir)
    runner = daemon.wait_state(daemon.launch("demo", SLEEP)["id"], "running")
    runners = [{**runner, "id": i, "pid": 10_000 + i} for i in range(1, 201)]
    model = RunnersModel()
    churn = Churn(model)
    model.update(runners)
    assert (model.rowCount(), churn.inserted, churn.resets) == (200, 1, 0)
    changed = [dict(r) for r in runners]
    for i in (3, 50, 51, 120, 199):
        changed[i]["tokens"] = 123_456
    started = time.perf_counter()
    model.update(changed)
    elapsed = time.perf_counter() - started
    assert (churn.changed, churn.inserted, churn.removed, churn.resets) == (5, 1, 0, 0)
    assert cell(model, 50, "Tokens") == "123.5k"
    assert elapsed < 0.1, f"an update of 200 runners took {elapsed * 1000:.0f} ms"
    model.update(changed[:100] + changed[150:])  # 50 gone from the middle
    assert (churn.removed, model.rowCount(), model.row_of(151)) == (1, 150, 100)


def test_runners_needing_the_user_stand_out_with_their_attention(daemon, project_dir):
    """A real runner's JSON as paused at a limit, waiting for input, and working."""
    daemon.project("demo", project_dir)
    real = daemon.wait_state(daemon.launch("demo", SLEEP)["id"], "running")
    resets = datetime.datetime.combine(datetime.date.today(), datetime.time(23)).astimezone()
    reason = "limit: 5-hour limit reached ∙ resets 11pm (resets at 23:00; resumes then)"
    rows = [
        {**real, "id": 1, "state": "paused", "reason": reason,
         "limit_resets_at": resets.astimezone(datetime.UTC).isoformat()},
        {**real, "id": 2, "attention": "needs_input", "attention_at": real["started_at"]},
        {**real, "id": 3, "attention": "working", "attention_at": real["started_at"]},
        real,
    ]  # fmt: skip
    model = RunnersModel()
    model.update(rows)
    column = [c.header for c in model.columns].index("Attention")
    shown = [model.index(row, column) for row in range(4)]
    assert [model.data(i) for i in shown] == ["paused until 23:00", "needs input", "working", ""]
    font = Qt.ItemDataRole.FontRole
    assert [bool(model.data(i, font) and model.data(i, font).bold()) for i in shown] == [
        True, True, False, False,
    ]  # fmt: skip
    colours = [model.data(i, Qt.ItemDataRole.ForegroundRole) for i in shown]
    assert [c.color().name() if c else None for c in colours] == [ATTENTION, ATTENTION, None, None]
    assert model.data(shown[0], Qt.ItemDataRole.ToolTipRole) == reason
    assert model.data(shown[1], Qt.ItemDataRole.ToolTipRole).startswith("since ")


def test_keyed_model_inserts_new_rows_where_they_belong():
    events = [
        {"id": i, "ts": "2026-01-02T03:04:05.000Z", "severity": "info", "type": "runner.exited",
         "runner_id": i, "project": "demo", "title": f"event {i}", "body": "", "data": {}}
        for i in range(1, 7)
    ]  # fmt: skip
    model = EventsModel()
    churn = Churn(model)
    model.update(events[3::-1])  # newest first: 4 3 2 1
    model.update(events[:3:-1] + events[3::-1])  # 6 5 on top
    assert model.keys() == [6, 5, 4, 3, 2, 1]
    assert (churn.inserted, churn.resets) == (2, 0)
    model.update(events)  # the order reversed: only a reset can say that
    assert (model.keys(), churn.resets) == ([1, 2, 3, 4, 5, 6], 1)


def test_show_runner_of_a_finished_runner_lists_all_runners_and_selects_it(
    daemon, project_dir, qloop, bridge, dashboard
):
    daemon.project("demo", project_dir)
    runner = daemon.launch("demo", QUICK)["id"]
    daemon.wait_state(runner, "exited")
    run(qloop, bridge.refresh())
    assert runner not in shown_ids(dashboard)  # the filter lists the active ones

    async def scenario() -> None:
        dashboard.show_runner(runner)
        assert dashboard.tabs.currentWidget() is dashboard.runners
        await until(lambda: selected_ids(dashboard) == [runner], what="its selection")
        assert dashboard.runners.chosen == "all"
        row = dashboard.runners.model.row_of(runner)
        assert cell(dashboard.runners.model, row, "Exit") == "0"
        dashboard.show_runner(10_000)
        await until(lambda: dashboard.statusBar().currentMessage(), what="the sentence")
        assert dashboard.statusBar().currentMessage() == "There is no runner #10000."

    run(qloop, scenario())


# --- sessions ---------------------------------------------------------------------------------
def select_session(window: Dashboard, agent: str, session_id: str) -> None:
    tab = window.sessions
    row = tab.model.row_of((agent, session_id))
    assert row is not None, f"{agent} session {session_id} not listed"
    tab.view.selectRow(tab.view.model().mapFromSource(tab.model.index(row, 0)).row())


def test_sessions_tab_lists_sessions_says_why_not_and_resumes_one(
    fake_claude, daemon, project_dir, qloop, bridge, dashboard, terminals
):
    """A real (fake claude) batch run's session, imported from its transcript, and two seeded
    through POST /usage: one whose log is gone, one of an agent no profile can resume."""
    daemon.project("demo", project_dir)
    daemon.project("other", project_dir.parent)
    first = daemon.api.post(
        "/api/v1/runners", {"project": "demo", "profile": "claude", "prompt": "first"}
    )
    session = daemon.wait_state(first["id"], "exited")["session_id"]
    daemon.api.post("/api/v1/usage/import")
    seeded = [
        {"model": "claude-sonnet-4-5", "input_tokens": 1200, "agent": "claude",
         "session_id": "11111111-gone", "ts": time.time() - 3600},
        {"model": "claude-sonnet-4-5", "input_tokens": 30, "agent": "aider",
         "session_id": "aider-1", "ts": time.time() - 7200},
    ]  # fmt: skip
    daemon.api.post("/api/v1/usage", {"records": seeded, "runner_id": first["id"]})
    tab = dashboard.sessions
    model = tab.model

    def resumable(agent: str, session_id: str) -> str:
        return cell(model, model.row_of((agent, session_id)), "Resumable")

    async def scenario() -> None:
        await bridge.refresh()
        waiting = asyncio.ensure_future(fetched(dashboard, "sessions"))
        dashboard.tabs.setCurrentWidget(tab)
        await waiting
        assert sorted(model.keys()) == sorted(
            [("claude", session), ("claude", "11111111-gone"), ("aider", "aider-1")]
        )
        assert resumable("claude", session) == "yes"
        assert resumable("claude", "11111111-gone") == "no: its log is gone"
        assert resumable("aider", "aider-1") == "no: no profile can resume aider sessions"
        row = model.row_of(("claude", session))
        assert cell(model, row, "Project") == "demo"
        assert cell(model, row, "Runner") == f"#{first['id']}"
        assert cell(model, model.row_of(("claude", "11111111-gone")), "Tokens") == "1.2k"

        # the project filter
        assert [tab.project.itemText(i) for i in range(tab.project.count())] == [
            "All projects", "demo", "other",
        ]  # fmt: skip
        waiting = asyncio.ensure_future(fetched(dashboard, "sessions"))
        tab.project.setCurrentIndex(tab.project.findData("other"))
        await waiting
        assert model.rowCount() == 0
        waiting = asyncio.ensure_future(fetched(dashboard, "sessions"))
        tab.project.setCurrentIndex(tab.project.findData("demo"))
        await waiting
        assert model.rowCount() == 3

        select_session(dashboard, "aider", "aider-1")
        assert not tab.terminal_button.isEnabled() and not tab.background_button.isEnabled()
        select_session(dashboard, "claude", session)
        assert tab.terminal_button.isEnabled() and tab.background_button.isEnabled()

        tab.terminal_button.click()
        assert terminals.opened(1) == [{
            "cwd": str(project_dir),
            "command": agent_argv("--profile", "claude", "--project", "demo", "--resume", session),
        }]  # fmt: skip
        tab.background_button.click()
        dialog = tab.prompt
        assert dialog is not None and not dialog.worktree.isVisibleTo(dialog)
        dialog.text.setPlainText("Continue: add the tests.")
        dialog.launch_button.click()
        runs = await until(lambda: len(fake_runs(fake_claude)) == 2 and fake_runs(fake_claude))
        argv = runs[1]["argv"]
        assert argv[argv.index("--resume") + 1] == session
        assert argv[-2:] == ["--", "Continue: add the tests."]
        assert runs[1]["session_id"] == session

    run(qloop, scenario())


# --- budgets ----------------------------------------------------------------------------------
def test_budgets_tab_shows_a_budget_set_through_the_api(daemon, qloop, bridge, dashboard):
    daemon.api.request(
        "PUT",
        "/api/v1/budgets",
        {"scope": "global", "period": "daily", "limit_tokens": 1000, "warn": [50, 80]},
    )
    record = {"model": "claude-sonnet-4-5-20250929", "output_tokens": 600, "ts": time.time() - 5}
    daemon.api.post("/api/v1/usage", {"records": [record]})

    async def scenario() -> None:
        await bridge.refresh()
        dashboard.show_budgets()
        assert dashboard.tabs.currentWidget() is dashboard.budgets
        row = dashboard.budgets.rows[("global", "daily")]
        assert row.bar.text() == "60.0%" and row.bar.value() == 600
        assert row.level == "warn"
        assert row.usage.text() == "600 / 1,000 tokens"
        assert row.name.text() == "global daily (at the limit: warn)"
        assert row.resets.text().startswith("resets at ")
        assert not dashboard.budgets.empty.isVisible()
        daemon.api.post("/api/v1/usage", {"records": [{**record, "output_tokens": 250}]})
        await bridge.refresh()
        assert (row.bar.text(), row.level) == ("85.0%", "high")
        daemon.api.post("/api/v1/usage", {"records": [{**record, "output_tokens": 400}]})
        await bridge.refresh()
        assert (row.bar.text(), row.bar.value(), row.level) == ("125.0%", 1000, "spent")
        daemon.api.request("DELETE", "/api/v1/budgets/global/daily")
        await bridge.refresh()
        assert dashboard.budgets.rows == {} and dashboard.budgets.empty.isVisible()

    run(qloop, scenario())


# --- events and dead letters ------------------------------------------------------------------
def test_events_tab_lists_the_newest_first_and_follows_new_ones(
    daemon, project_dir, qloop, bridge, dashboard
):
    daemon.project("demo", project_dir)
    runner = daemon.launch("demo", SLEEP)["id"]
    daemon.wait_state(runner, "running")
    model = dashboard.events.model

    async def scenario() -> None:
        await bridge.refresh()
        waiting = asyncio.ensure_future(fetched(dashboard, "events"))
        dashboard.tabs.setCurrentWidget(dashboard.events)
        await waiting
        ids = model.keys()
        assert ids == sorted(ids, reverse=True) and len(ids) >= 2
        assert {cell(model, row, "Type") for row in range(model.rowCount())} >= {
            "runner.starting",
            "runner.running",
        }
        daemon.api.post(f"/api/v1/runners/{runner}/stop")
        await until(lambda: cell(model, 0, "Type") == "runner.stopped", what="the stop at the top")
        assert model.keys() == sorted(model.keys(), reverse=True)
        proxy = dashboard.events.view.model()
        assert proxy.data(proxy.index(0, 2)) == "runner.stopped"  # shown newest first too

    run(qloop, scenario())


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as server:
        yield server


def test_dead_letters_tab_retries_a_refused_delivery(
    daemon, project_dir, qloop, bridge, dashboard, sink
):
    sink.script(Reply(400, body={"error": "bad payload"}))
    daemon.api.request(
        "PUT", "/api/v1/notify/channels/hook", {"kind": "webhook", "config": {"url": sink.url}}
    )
    daemon.project("demo", project_dir)
    daemon.launch("demo", QUICK)
    dead = daemon.api.get("/api/v1/notify/dead")
    deadline = time.monotonic() + 15
    while not dead and time.monotonic() < deadline:
        time.sleep(0.1)
        dead = daemon.api.get("/api/v1/notify/dead")
    assert dead, "no dead letter"
    model = dashboard.dead.model

    async def scenario() -> None:
        waiting = asyncio.ensure_future(fetched(dashboard, "dead"))
        dashboard.tabs.setCurrentWidget(dashboard.dead)
        await waiting
        assert model.keys() == [d["id"] for d in dead]
        assert cell(model, 0, "Channel") == "hook" and "400" in cell(model, 0, "Error")
        assert not dashboard.dead.retry_button.isEnabled()
        dashboard.dead.view.selectRow(0)
        dashboard.dead.retry_button.click()
        await until(lambda: daemon.api.get("/api/v1/notify/dead") == [], what="the retry")
        await until(lambda: model.rowCount() == 0, what="the row to go")

    run(qloop, scenario())
    assert len(sink.requests) >= 2


# --- fetching only what is shown --------------------------------------------------------------
def test_tabs_fetch_only_while_shown(daemon, qloop, bridge, dashboard):
    calls: list[str] = []
    dashboard.fetched.connect(calls.append)

    async def scenario() -> None:
        await fetched(dashboard, "overview")  # the first page, shown with the window
        dashboard.tabs.setCurrentWidget(dashboard.runners)
        await asyncio.sleep(0.3)
        assert calls == ["overview"]  # the runners tab fetches nothing
        waiting = asyncio.ensure_future(fetched(dashboard, "usage"))
        dashboard.tabs.setCurrentWidget(dashboard.usage)
        await waiting
        assert dashboard.timer.isActive()
        dashboard.hide()
        assert not dashboard.timer.isActive()
        dashboard.fetch_current()  # what the timer would do: nothing while hidden
        await asyncio.sleep(0.3)

    run(qloop, scenario())
    assert calls == ["overview", "usage"]


def test_a_failed_fetch_is_one_sentence_in_the_status_bar(daemon, qloop, bridge, dashboard):
    failures: list[str] = []
    run(qloop, fetched(dashboard, "overview"))  # the first page's fetch, while it answered
    dashboard.fetch_failed.connect(failures.append)
    daemon.stop()

    async def scenario() -> None:
        dashboard.tabs.setCurrentWidget(dashboard.events)
        await until(lambda: failures, what="the failure")

    run(qloop, scenario())
    assert failures[0].startswith("The supervisor did not answer (")
    assert dashboard.statusBar().currentMessage() == f"Could not load events: {failures[0]}"
