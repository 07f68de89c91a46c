"""The tray, in-process and offscreen: its state, tooltip and runner labels for snapshots, and
its menu rebuilt from a real supervisor's snapshot (a ``stratavore daemon`` child, through a
real :class:`Bridge` on a qasync loop) each time it opens, following a hook's attention change
as it happens.

Each scenario runs as one coroutine on the qasync loop, as the app's slots do: a triggered
action spawns its request on the running loop, and the test awaits the outcome by polling the
API, never by a nested Qt event loop.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QMenu

from desktop.bridge import Bridge, Snapshot
from desktop.icons import TrayState
from desktop.notifications import Notifier
from desktop.tray import Tray, human_tokens, runner_label, summary, today_line, tray_state
from tests.conftest import SLEEP, Daemon
from tests.desktop.conftest import Terminals, agent_argv, fake_runs

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
def runner(state: str = "running", unresponsive: bool = False, **fields: Any) -> dict[str, Any]:
    """A runner as ``GET /runners`` lists it (the fields the tray reads)."""
    return {
        "id": 7, "project": "api", "profile": "claude", "command": ["claude"], "cwd": "/src/api",
        "state": state, "reason": None, "unresponsive": unresponsive, "supervised": True,
        "started_at": None, "tokens": 0, "log_path": None, "session_id": "5f0c-s1",
        "attention": None, "attention_at": None, "limit_resets_at": None, "resumable": False,
        **fields,
    }  # fmt: skip


def local_iso(hour: int, days: int = 0) -> str:
    """An API timestamp (UTC) of ``hour``:00 local time, ``days`` from today."""
    day = datetime.date.today() + datetime.timedelta(days=days)
    moment = datetime.datetime.combine(day, datetime.time(hour)).astimezone()
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


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
            Snapshot(runners=[runner("running", attention="needs_input")]),
            (TrayState.ATTENTION, 1),
            id="needs-input-needs-attention",
        ),
        pytest.param(
            Snapshot(runners=[runner("running", attention="finished_turn")]),
            (TrayState.RUNNING, 1),
            id="finished-turn-is-no-alarm",
        ),
        pytest.param(
            Snapshot(runners=[runner("paused", limit_resets_at=local_iso(23))]),
            (TrayState.ATTENTION, 0),
            id="paused-at-a-limit-needs-attention",
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


def test_summary_names_who_needs_the_user_and_why() -> None:
    snapshot = Snapshot(
        runners=[
            runner("running", attention="working"),
            runner("running", project="web", unresponsive=True),
            runner("backoff", project="web"),
            runner("running", attention="needs_input"),
        ],
        budgets=[budget(12.5, [80], "project:api"), budget(42.4, [80])],
        today={"total_tokens": 1_530_000, "cost_usd": 2.5},
    )
    assert summary(snapshot) == (
        "Stratavore\n3 running\nweb: unresponsive\nweb: backing off\napi: needs input\n"
        "Today: 1.5M tokens, $2.50, 42% of global daily"
    )


def test_summary_counts_the_rest_past_three() -> None:
    paused = runner("paused", limit_resets_at=local_iso(23))
    snapshot = Snapshot(runners=[paused, *(runner(attention="needs_input") for _ in range(3))])
    assert summary(snapshot).splitlines()[1:-1] == [
        "3 running",
        "api: paused: limit, resets 23:00",
        "api: needs input",
        "api: needs input",
        "and 1 more",
    ]


def test_a_paused_runner_resetting_another_day_names_the_day() -> None:
    tomorrow = datetime.date.today() + datetime.timedelta(days=1)
    label = runner_label(runner("paused", limit_resets_at=local_iso(9, days=1)))
    assert label == f"#7 api claude — paused: limit, resets {tomorrow:%a} 09:00, -, 0 tokens"


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        pytest.param({"attention": "needs_input"}, "needs input", id="needs-input"),
        pytest.param({"attention": "finished_turn"}, "finished turn", id="finished-turn"),
        pytest.param({"attention": "working"}, "working", id="working"),
        pytest.param({"attention": "idle"}, "idle", id="idle"),
        pytest.param({"attention": None}, "running", id="plain-command"),
        pytest.param({"unresponsive": True}, "running (unresponsive)", id="unresponsive"),
        pytest.param(
            {"state": "paused", "limit_resets_at": local_iso(23)},
            "paused: limit, resets 23:00",
            id="paused",
        ),
        pytest.param({"state": "paused"}, "paused: limit", id="paused-reset-unknown"),
        pytest.param({"state": "stopping", "attention": "working"}, "stopping", id="stopping"),
    ],
)
def test_runner_label_shows_its_attention_or_pause(fields: dict[str, Any], status: str) -> None:
    assert runner_label(runner(**fields)) == f"#7 api claude — {status}, -, 0 tokens"


def test_summary_when_idle_with_no_usage_and_no_budget() -> None:
    assert summary(Snapshot()) == "Stratavore\nidle\nToday: 0 tokens, $0.00"


# --- the menu, from snapshots --------------------------------------------------------------
@pytest.fixture
def offline_tray(qloop: asyncio.AbstractEventLoop, qtbot: Any) -> Iterator[Tray]:
    """A tray over a bridge that never connects: the tests set its snapshot."""
    tray = Tray(Bridge("http://127.0.0.1:9", "token"), Notifier())
    yield tray
    if tray.prompt is not None:
        tray.prompt.close()


def test_runners_menu_offers_resume_for_paused_sessions_and_marks_who_needs_the_user(
    offline_tray: Tray, terminals: Terminals, tmp_path: Path
) -> None:
    resets = local_iso(23)
    offline_tray.bridge.snapshot = Snapshot(runners=[
        runner("paused", id=1, limit_resets_at=resets, resumable=True),
        runner("paused", id=2, limit_resets_at=resets, resumable=True, supervised=False,
               cwd=str(tmp_path), session_id="9a1e-s2"),
        runner("paused", id=3, limit_resets_at=resets),  # no session to resume
        runner("running", id=4, attention="needs_input", resumable=True),
        runner("running", id=5, attention="working"),
    ])  # fmt: skip
    offline_tray.rebuild()
    runners = submenu(offline_tray.menu, "Runners (5)")
    labels = texts(runners)[:-1]
    assert labels == [
        "#1 api claude — paused: limit, resets 23:00, -, 0 tokens",
        "#2 api claude — paused: limit, resets 23:00, -, 0 tokens",
        "#3 api claude — paused: limit, resets 23:00, -, 0 tokens",
        "#4 api claude — needs input, -, 0 tokens",
        "#5 api claude — working, -, 0 tokens",
    ]
    assert [entry(runners, label).font().bold() for label in labels] == [True] * 4 + [False]
    actions = [texts(submenu(runners, label)) for label in labels]
    common = ["Open log", "Open terminal here"]
    assert actions == [
        [*common, "Resume", "Stop", "Restart"],
        [*common, "Resume in terminal", "Stop", "Restart"],
        [*common, "Stop", "Restart"],
        [*common, "Stop", "Restart"],
        [*common, "Stop", "Restart"],
    ]
    entry(submenu(runners, labels[1]), "Resume in terminal").trigger()
    assert terminals.opened(1) == [{
        "cwd": str(tmp_path),
        "command": agent_argv("--profile", "claude", "--project", "api", "--resume", "9a1e-s2"),
    }]  # fmt: skip
    asked: list[bool] = []
    offline_tray.sessions_requested.connect(lambda: asked.append(True))
    entry(offline_tray.menu, "Recent sessions…").trigger()
    assert asked == [True]


def test_quick_launch_runs_profiles_in_a_terminal_or_in_the_background_with_a_prompt(
    offline_tray: Tray, terminals: Terminals, tmp_path: Path
) -> None:
    offline_tray.bridge.snapshot = Snapshot(
        projects=[{"name": "api", "path": str(tmp_path)}],
        profiles=[
            {"name": "claude", "batch": ["{binary}", "-p", "{prompt}"], "worktree": True},
            {"name": "sleeper", "batch": None, "worktree": False},
        ],
    )
    offline_tray.rebuild()
    api = submenu(submenu(offline_tray.menu, "Quick launch"), "api")
    assert texts(api) == ["claude…", "sleeper", "In a terminal"]
    entry(submenu(api, "In a terminal"), "claude").trigger()
    assert terminals.opened(1) == [
        {"cwd": str(tmp_path), "command": agent_argv("--profile", "claude", "--project", "api")}
    ]

    entry(api, "claude…").trigger()
    dialog = offline_tray.prompt
    assert dialog is not None and dialog.isVisible()
    assert dialog.windowTitle() == "Stratavore: claude in api"
    assert dialog.worktree.isChecked()  # the profile's own setting
    assert not dialog.launch_button.isEnabled()  # nothing to do yet
    dialog.text.setPlainText("  \n")
    assert not dialog.launch_button.isEnabled()
    dialog.buttons.rejected.emit()  # Cancel
    assert not dialog.isVisible()


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
            # a profile with a batch mode asks for a prompt first (its "…")
            asking = [p["name"] + ("…" if p["batch"] else "") for p in api.get("/api/v1/profiles")]
            for project in ("alpha", "beta"):
                assert texts(submenu(quick, project)) == [*asking, "In a terminal"]
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


def test_background_launch_runs_the_profiles_batch_mode_with_the_prompt(
    fake_claude: Path, qloop: asyncio.AbstractEventLoop, daemon: Daemon, project_dir: Path
) -> None:
    daemon.project("demo", project_dir)
    prompt = 'Fix the "flaky" test; then run $TESTS\nand report.'

    async def scenario() -> None:
        bridge = Bridge(daemon.api.base_url, daemon.api.token or "")
        bridge.start()
        try:
            await bridge.refresh()
            tray = Tray(bridge, Notifier())
            demo = submenu(submenu(opened(tray), "Quick launch"), "demo")
            entry(demo, "claude…").trigger()
            assert tray.prompt is not None and not tray.prompt.worktree.isChecked()
            tray.prompt.text.setPlainText(prompt)
            tray.prompt.launch_button.click()
            [run] = await until(lambda: fake_runs(fake_claude), "the fake claude to run")
            [launched] = daemon.api.get("/api/v1/runners", all=1)
            assert (launched["profile"], launched["mode"]) == ("claude", "batch")
            assert run["argv"][0] == "-p" and run["argv"][-2:] == ["--", prompt]
            assert run["session_id"] == launched["session_id"]
        finally:
            await bridge.close()

    run(qloop, scenario())


def test_resume_refused_by_the_supervisor_shows_its_sentence(
    qloop: asyncio.AbstractEventLoop, daemon: Daemon, project_dir: Path
) -> None:
    daemon.project("demo", project_dir)
    busy = daemon.launch("demo", SLEEP)["id"]
    daemon.wait_state(busy, "running")

    async def scenario() -> None:
        bridge = Bridge(daemon.api.base_url, daemon.api.token or "")
        bridge.start()
        try:
            await bridge.refresh()
            refusals: list[str] = []
            bridge.failed.connect(refusals.append)
            tray = Tray(bridge, Notifier())
            # the menu as built a moment ago, when it was paused (the scheduler resumed it since)
            [shown] = bridge.snapshot.runners
            bridge.snapshot = Snapshot(runners=[{**shown, "state": "paused", "resumable": True}])
            tray.rebuild()
            runners = submenu(tray.menu, "Runners (1)")
            entry(submenu(runners, texts(runners)[0]), "Resume").trigger()
            await until(lambda: refusals, "the refusal")
            assert refusals == [
                f"Runner {busy} is running; only a paused or finished runner can be resumed."
            ]
        finally:
            await bridge.close()

    run(qloop, scenario())


# --- attention, as hooks report it ------------------------------------------------------------
@pytest.fixture
def sleeper() -> Iterator[int]:
    """A real process for a registered runner to stand for; its pid."""
    child = subprocess.Popen(SLEEP)
    yield child.pid
    child.kill()
    child.wait()


def post_hook(daemon: Daemon, registered: dict[str, Any], event: str, **fields: Any) -> Any:
    """A Claude Code hook as the runner's own HTTP hook sends it; the attention it set."""
    answer = daemon.api.session.post(
        daemon.api.base_url + "/api/v1/hooks",
        json={"hook_event_name": event, "session_id": "0b6f5f5e-hooked", **fields},
        headers={
            "Authorization": f"Bearer {registered['token']}",
            "X-Stratavore-Runner": str(registered["runner"]["id"]),
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["attention"]


def test_a_hooks_attention_change_reaches_the_tray_at_once(
    qloop: asyncio.AbstractEventLoop,
    daemon_factory: Callable[..., Daemon],
    project_dir: Path,
    sleeper: int,
) -> None:
    """Not a timing test: the change must come through the long poll within seconds (the
    bench measures how fast: bench/attention.py)."""
    # a long TTL: a registered runner that never sends a heartbeat is not flagged meanwhile
    daemon = daemon_factory("--sweep-interval", "0.5", "--heartbeat-ttl", "120")
    daemon.project("demo", project_dir)
    registered = daemon.api.post(
        "/api/v1/runners/register",
        {"command": ["sleep"], "pid": sleeper, "cwd": str(project_dir)},
    )
    label = f"#{registered['runner']['id']} demo sleep — "
    permission = {
        "notification_type": "permission_prompt",
        "message": "Claude needs your permission to use Bash",
    }

    async def scenario() -> None:
        bridge = Bridge(daemon.api.base_url, daemon.api.token or "")
        bridge.start()
        try:
            await bridge.refresh()
            tray = Tray(bridge, Notifier())
            assert tray_state(bridge.snapshot) == (TrayState.RUNNING, 1)
            assert texts(submenu(opened(tray), "Runners (1)"))[0].startswith(label + "running,")
            await asyncio.sleep(0.5)  # the bridge waits for news now
            steps = [
                ("Notification", permission, "needs_input", TrayState.ATTENTION, "needs input"),
                ("PreToolUse", {"tool_name": "Bash"}, "working", TrayState.RUNNING, "working"),
            ]
            for event, fields, attention, state, words in steps:
                sent = time.monotonic()
                assert post_hook(daemon, registered, event, **fields) == attention
                await until(lambda s=state: tray_state(bridge.snapshot)[0] is s, attention)
                assert time.monotonic() - sent < 5.0
                if state is TrayState.ATTENTION:
                    assert "\ndemo: needs input\n" in tray.icon.toolTip()
                else:
                    assert "demo:" not in tray.icon.toolTip()
                runners = submenu(opened(tray), "Runners (1)")
                assert texts(runners)[0].startswith(label + words + ",")
        finally:
            await bridge.close()

    run(qloop, scenario())


def test_today_line_names_the_tightest_budget() -> None:
    snapshot = Snapshot(
        budgets=[budget(10, [80], "agent:codex"), budget(64.6, [80], "project:api")],
        today={"total_tokens": 950, "cost_usd": 0.125},
    )
    assert today_line(snapshot) == "Today: 950 tokens, $0.12, 65% of project:api daily"


def test_a_runs_plan_use_reaches_the_tray_within_one_status_line_update(
    fake_claude: Path, qloop: asyncio.AbstractEventLoop, daemon: Daemon, project_dir: Path
) -> None:
    """The fake claude, launched by the real supervisor, runs the status-line command
    Stratavore injected with Claude Code's JSON; the tray's tooltip and menu show the plan's
    five-hour use before the next update (one a second here)."""
    from tests.fake_agents import script

    daemon.project("demo", project_dir)
    shown, go = project_dir / "shown.txt", project_dir / "go"
    resets = int(time.time()) + 2 * 3600
    local = datetime.datetime.fromtimestamp(resets).strftime("%H:%M")

    def update(five: float) -> list[Any]:
        return ["statusline", {"rate_limits": {
            "five_hour": {"used_percentage": five, "resets_at": resets},
            "seven_day": {"used_percentage": 12, "resets_at": resets + 3 * 86400},
        }}]  # fmt: skip

    steps = [update(63), ["sleep", 2], update(64), ["wait_file", str(go)]]
    env = {"FAKE_AGENT_SCRIPT": script(*steps), "FAKE_STATUSLINE_OUT": str(shown)}

    async def scenario() -> None:
        bridge = Bridge(daemon.api.base_url, daemon.api.token or "")
        bridge.start()
        try:
            await bridge.refresh()
            tray = Tray(bridge, Notifier())
            assert "5-hour" not in tray.icon.toolTip()  # unknown: not shown, never 0 %
            await asyncio.sleep(0.5)  # the bridge waits for news now
            daemon.api.post("/api/v1/runners", {"project": "demo", "profile": "claude",
                                                "prompt": "work", "env": env})  # fmt: skip
            await until(lambda: shown.exists(), "the first status-line update")
            # before the second update (a second later) the tray shows the first one
            await until(lambda: "5-hour: 63 %" in tray.icon.toolTip(), "63 % in the tooltip")
            assert len(shown.read_text().splitlines()) == 1
            assert f"\n5-hour: 63 %, resets {local}\n7-day: 12 %, resets " in tray.icon.toolTip()
            assert f"5-hour: 63 %, resets {local}" in texts(opened(tray))
            await until(lambda: "5-hour: 64 %" in tray.icon.toolTip(), "the second update")
        finally:
            go.touch()
            await bridge.close()

    run(qloop, scenario())


def test_plan_lines_name_the_agent_and_account_only_when_there_are_several() -> None:
    from desktop.tray import plan_lines

    home = str(Path.home())

    def found(agent: str, account: str, text: str) -> dict[str, str]:
        return {"agent": agent, "account": account, "text": text}

    one = [found("claude", f"{home}/.claude", "5-hour: 63 %"),
           found("claude", f"{home}/.claude", "7-day: 12 %")]  # fmt: skip
    assert plan_lines(Snapshot(plan_limits=one)) == ["5-hour: 63 %", "7-day: 12 %"]
    agents = [*one, found("codex", f"{home}/.codex", "5-hour: 5 %")]
    assert plan_lines(Snapshot(plan_limits=agents)) == [
        "Claude 5-hour: 63 %", "Claude 7-day: 12 %", "Codex 5-hour: 5 %",
    ]  # fmt: skip
    two = [one[0], found("claude", "/work/claude", "5-hour: 90 %")]
    assert plan_lines(Snapshot(plan_limits=two)) == [
        "Claude (~/.claude) 5-hour: 63 %", "Claude (/work/claude) 5-hour: 90 %",
    ]  # fmt: skip
    assert plan_lines(Snapshot()) == []
