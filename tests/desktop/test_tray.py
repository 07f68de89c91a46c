"""The tray, in-process and offscreen: its state and tooltip for snapshots, and its menu
rebuilt from a real supervisor's snapshot (a ``stratavore daemon`` child, through a real
:class:`Bridge` on a qasync loop) each time it opens.

Each scenario runs as one coroutine on the qasync loop, as the app's slots do: a triggered
action spawns its request on the running loop, and the test awaits the outcome by polling the
API, never by a nested Qt event loop.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QMenu

from desktop.bridge import Bridge, Snapshot
from desktop.icons import TrayState
from desktop.notifications import Notifier
from desktop.tray import Tray, human_tokens, summary, today_line, tray_state
from tests.conftest import SLEEP, Daemon

TIMEOUT = 15.0


def run(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, Any]) -> Any:
    return loop.run_until_complete(asyncio.wait_for(work, 60))


async def until(predicate: Callable[[], Any], what: str) -> Any:
    """Await ``predicate`` being truthy while the loop (and Qt) keep running."""
    deadline = time.monotonic() + TIMEOUT
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {TIMEOUT} s waiting for {what}")
        await asyncio.sleep(0.05)
    return value


def texts(menu: QMenu) -> list[str]:
    """The menu's entries as the user reads them (separators left out)."""
    return [a.text() for a in menu.actions() if not a.isSeparator()]


def entry(menu: QMenu, text: str) -> Any:
    found = [a for a in menu.actions() if a.text() == text]
    assert len(found) == 1, f"{text!r} not once in {texts(menu)}"
    return found[0]


def submenu(menu: QMenu, text: str) -> QMenu:
    sub = entry(menu, text).menu()
    assert sub is not None, f"{text!r} has no submenu"
    return sub


def opened(tray: Tray) -> QMenu:
    """Open the tray's menu as a click does (``aboutToShow`` rebuilds it), then close it."""
    tray.menu.popup(QPoint(0, 0))
    tray.menu.hide()
    return tray.menu


# --- state and tooltip, from snapshots ----------------------------------------------------
def runner(state: str, unresponsive: bool = False) -> dict[str, Any]:
    return {"state": state, "unresponsive": unresponsive}


def budget(percent: float, warn: list[float], scope: str = "global") -> dict[str, Any]:
    return {"scope": scope, "period": "daily", "percent": percent, "warn": warn}


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(Snapshot(), (TrayState.IDLE, 0), id="empty"),
        pytest.param(Snapshot(runners=[runner("queued")]), (TrayState.IDLE, 0), id="queued"),
        pytest.param(
            Snapshot(runners=[runner("starting"), runner("running"), runner("stopping")]),
            (TrayState.RUNNING, 2),
            id="starting-counts-as-running",
        ),
        pytest.param(
            Snapshot(runners=[runner("running"), runner("backoff")]),
            (TrayState.ATTENTION, 1),
            id="backoff-needs-attention",
        ),
        pytest.param(
            Snapshot(runners=[runner("running", unresponsive=True)]),
            (TrayState.ATTENTION, 1),
            id="unresponsive-needs-attention",
        ),
        pytest.param(
            Snapshot(budgets=[budget(79.9, [80, 95])]), (TrayState.IDLE, 0), id="below-warn"
        ),
        pytest.param(
            Snapshot(runners=[runner("backoff")], budgets=[budget(80, [80, 95])]),
            (TrayState.BUDGET, 0),
            id="budget-beats-attention",
        ),
        pytest.param(Snapshot(budgets=[budget(99, [])]), (TrayState.IDLE, 0), id="no-warn-99"),
        pytest.param(Snapshot(budgets=[budget(100, [])]), (TrayState.BUDGET, 0), id="no-warn-100"),
    ],
)
def test_tray_state(snapshot: Snapshot, expected: tuple[TrayState, int]) -> None:
    assert tray_state(snapshot) == expected


def test_summary_says_what_runs_what_needs_the_user_and_todays_spend() -> None:
    snapshot = Snapshot(
        runners=[runner("running"), runner("running", unresponsive=True), runner("backoff")],
        budgets=[budget(12.5, [80], "project:api"), budget(42.4, [80])],
        today={"total_tokens": 1_530_000, "cost_usd": 2.5},
    )
    assert summary(snapshot) == (
        "Stratavore\n2 running\n2 need attention\nToday: 1.5M tokens, $2.50, 42% of global daily"
    )


def test_summary_when_idle_with_no_usage_and_no_budget() -> None:
    assert summary(Snapshot()) == "Stratavore\nidle\nToday: 0 tokens, $0.00"


@pytest.mark.parametrize(
    ("tokens", "text"),
    [(None, "0"), (0, "0"), (999, "999"), (1000, "1.0k"), (2_345_678, "2.3M"), (7e9, "7.0G")],
)
def test_human_tokens(tokens: int | None, text: str) -> None:
    assert human_tokens(tokens) == text


# --- the menu, from a real supervisor ------------------------------------------------------
def test_menu_rebuilt_from_a_real_supervisor_and_a_profile_action_launches(
    qloop: asyncio.AbstractEventLoop, daemon: Daemon, qtbot: Any, tmp_path: Path
) -> None:
    api = daemon.api
    for name in ("alpha", "beta"):
        (tmp_path / name).mkdir()

    async def scenario() -> None:
        bridge = Bridge(api.base_url, api.token or "")
        bridge.start()
        try:
            await bridge.refresh()
            notifier = Notifier()
            tray = Tray(bridge, notifier)
            menu = opened(tray)
            assert texts(submenu(menu, "Quick launch")) == ["New project…"]
            assert not entry(menu, "Runners (0)").isEnabled()
            assert "Today: 0 tokens, $0.00" in texts(menu)

            # What the user set up elsewhere (the CLI, the dashboard): seen at the next opening.
            api.post("/api/v1/profiles", {"name": "sleeper", "command": SLEEP})
            daemon.project("alpha", tmp_path / "alpha")
            daemon.project("beta", tmp_path / "beta")
            sleeping = daemon.launch("beta", SLEEP)
            daemon.wait_state(sleeping["id"], "running")
            usage = {"model": "claude-sonnet-4-5", "input_tokens": 1_500_000, "cost_usd": 2.5}
            api.post("/api/v1/usage", {"records": [usage]})
            api.request("PUT", "/api/v1/budgets", {"scope": "global", "period": "daily",
                                                   "limit_usd": 10.0})  # fmt: skip
            await bridge.refresh()
            assert texts(submenu(menu, "Quick launch")) == ["New project…"]  # not yet opened

            menu = opened(tray)
            profiles = [p["name"] for p in api.get("/api/v1/profiles")]
            assert "sleeper" in profiles
            quick = submenu(menu, "Quick launch")
            # projects with active runners first, then by name
            assert texts(quick) == ["beta", "alpha", "New project…"]
            for project in ("alpha", "beta"):
                assert texts(submenu(quick, project)) == [*profiles, "In a terminal"]
                assert texts(submenu(submenu(quick, project), "In a terminal")) == profiles

            runners = submenu(menu, "Runners (1)")
            assert runners.isEnabled()
            label, stop_all = texts(runners)
            assert re.fullmatch(rf"#{sleeping['id']} beta python — running, \d+m, 0 tokens", label)
            assert stop_all == "Stop all"
            assert texts(submenu(runners, label)) == ["Open log", "Open terminal here", "Stop",
                                                      "Restart"]  # fmt: skip
            assert "Today: 1.5M tokens, $2.50, 25% of global daily" in texts(menu)
            assert tray.icon.toolTip() == (
                "Stratavore\n1 running\nToday: 1.5M tokens, $2.50, 25% of global daily"
            )

            # Quick launch ▸ alpha ▸ sleeper starts a real runner.
            entry(submenu(quick, "alpha"), "sleeper").trigger()
            launched = await until(
                lambda: api.get("/api/v1/runners", project="alpha"), "a runner in alpha"
            )
            assert [(r["project"], r["profile"]) for r in launched] == [("alpha", "sleeper")]
            await until(lambda: len(bridge.snapshot.runners) == 2, "the bridge to see it")
            menu = opened(tray)
            assert texts(submenu(menu, "Runners (2)"))[-1] == "Stop all"
            assert tray.icon.toolTip().startswith("Stratavore\n2 running\n")

            # Pausing notifications shows in the menu the next time it opens.
            entry(submenu(menu, "Pause notifications"), "For 1 hour").trigger()
            assert notifier.paused
            menu = opened(tray)
            (paused,) = [t for t in texts(menu) if t.startswith("Notifications paused until ")]
            assert texts(submenu(menu, paused)) == ["Resume now", "For 1 hour", "Until tomorrow"]

            # Runners ▸ Stop all stops them through the API.
            entry(submenu(menu, "Runners (2)"), "Stop all").trigger()
            await until(lambda: api.get("/api/v1/runners") == [], "every runner to stop")
            await until(lambda: not bridge.snapshot.runners, "the bridge to see them stopped")
            menu = opened(tray)
            assert not entry(menu, "Runners (0)").isEnabled()
            assert tray_state(bridge.snapshot) == (TrayState.IDLE, 0)
        finally:
            await bridge.close()

    run(qloop, scenario())


def test_today_line_names_the_tightest_budget() -> None:
    snapshot = Snapshot(
        budgets=[budget(10, [80], "agent:codex"), budget(64.6, [80], "project:api")],
        today={"total_tokens": 950, "cost_usd": 0.125},
    )
    assert today_line(snapshot) == "Today: 950 tokens, $0.12, 65% of project:api daily"
