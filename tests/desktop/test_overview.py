"""The Overview page against a real supervisor: the runners that need the user as cards with
their one next action (a fake claude waiting for a permission, a command that failed), today's
spend and budget, the last seven days, the supervisor's health, and what it says when empty.
"""

from __future__ import annotations

import asyncio
import datetime
import sys
import time
from pathlib import Path

from PySide6.QtWidgets import QProgressBar

from desktop.dashboard.overview import (
    NO_BUDGET,
    NO_USAGE,
    NOTHING_NEEDED,
    OPEN_TERMINAL,
    RESTART,
    RESUME,
    SHOW_OUTPUT,
    OverviewPage,
    need_of,
    needing,
)
from desktop.models import local_time, parse_time
from tests.conftest import SLEEP
from tests.desktop import test_dashboard as base
from tests.desktop.test_dashboard import fetched, run, until
from tests.fake_agents import script

# the real-supervisor fixtures of the dashboard tests
bridge, dashboard, prefs = base.bridge, base.dashboard, base.prefs
FAILING = [sys.executable, "-c", "import sys; sys.exit(3)"]
PERMISSION = {
    "notification_type": "permission_prompt",
    "message": "Claude needs your permission to use Bash",
}


def card_texts(page: OverviewPage) -> list[tuple[str, str, str]]:
    return [(c.title.text(), c.sentence.text(), c.action.text()) for c in page.cards.shown()]


def starts(daemon, runner_id: int) -> int:
    events = daemon.api.get("/api/v1/events", since=0, limit=1000)
    return sum(1 for e in events if e["runner_id"] == runner_id and e["type"] == "runner.starting")


def test_overview_shows_a_card_per_runner_that_needs_the_user_with_its_next_action(
    fake_claude, daemon, project_dir, tmp_path, qloop, bridge, dashboard, prefs
):
    daemon.project("demo", project_dir)
    go = tmp_path / "go"
    steps = [["hook", "Notification", PERMISSION], ["wait_file", str(go)]]
    waiting = daemon.api.post("/api/v1/runners", {
        "project": "demo", "profile": "claude", "prompt": "fix it",
        "env": {"FAKE_AGENT_SCRIPT": script(*steps)},
    })["id"]  # fmt: skip
    failed = daemon.launch("demo", FAILING)["id"]
    daemon.launch("demo", SLEEP)  # busy, needs nothing: no card
    daemon.wait_state(failed, "failed")
    page = dashboard.overview

    async def scenario() -> None:
        await until(
            lambda: daemon.runner(waiting)["attention"] == "needs_input", what="needs input"
        )
        await bridge.refresh()
        await fetched(dashboard, "overview")
        assert dashboard.tabs.currentWidget() is page  # the first page
        texts = card_texts(page)
        python = Path(sys.executable).name
        assert [t[0] for t in texts] == [f"#{waiting} demo · claude", f"#{failed} demo · {python}"]
        assert texts[0][1].startswith("Waits for your input since ")
        assert texts[0][2] == SHOW_OUTPUT  # supervised: its output, not a terminal
        assert texts[1][1].startswith("Failed at ") and "exited with status 3" in texts[1][1]
        assert texts[1][2] == RESTART
        assert dashboard.tabs.tabText(0) == "Overview (2)"
        assert page.needs_box.title() == "Needs you (2)"
        first, second = page.cards.shown()
        assert first.action.accessibleName() == f"Show output runner #{waiting}"
        assert not first.dismiss.isVisibleTo(page) and second.dismiss.isVisibleTo(page)

        second.action.click()  # Restart: it starts again (and fails again)
        await until(lambda: starts(daemon, failed) == 2, what="the restart")
        first.action.click()  # Show output: the runner's row, selected
        assert dashboard.tabs.currentWidget() is dashboard.runners
        assert [r["id"] for r in dashboard.runners.selected()] == [waiting]

        dashboard.tabs.setCurrentWidget(page)
        await until(lambda: daemon.runner(failed)["state"] == "failed", what="the second failure")
        for _ in range(10):  # a fetch under way may have begun before it failed again
            if len(page.cards.shown()) == 2:
                break
            drawn = asyncio.ensure_future(fetched(dashboard, "overview"))
            dashboard.fetch_current()
            await drawn
        page.cards.shown()[1].dismiss.click()
        assert [t[0] for t in card_texts(page)] == [f"#{waiting} demo · claude"]
        assert dashboard.tabs.tabText(0) == "Overview (1)"

        again = OverviewPage(bridge, prefs)  # the dismissal is remembered
        await again.fetch()
        assert len(again.cards.shown()) == 1
        go.touch()
        await until(lambda: daemon.runner(waiting)["state"] == "exited", what="claude to finish")
        await bridge.refresh()
        assert page.cards.shown() == [] and page.cards.empty.isVisibleTo(page)
        assert dashboard.tabs.tabText(0) == "Overview"

    run(qloop, scenario())


def test_overview_shows_todays_spend_budgets_the_week_and_the_supervisors_health(
    daemon, qloop, bridge, dashboard
):
    daemon.api.request(
        "PUT", "/api/v1/budgets",
        {"scope": "global", "period": "daily", "limit_tokens": 1000, "warn": [50, 80]},
    )  # fmt: skip
    record = {"model": "claude-sonnet-4-5-20250929", "output_tokens": 600, "ts": time.time() - 5}
    yesterday = {**record, "output_tokens": 300, "ts": time.time() - 86_400}
    daemon.api.post("/api/v1/usage", {"records": [record, yesterday]})
    asked = time.time()
    daemon.api.post("/api/v1/usage/import")
    page = dashboard.overview

    async def scenario() -> None:
        await bridge.refresh()
        await fetched(dashboard, "overview")
        cost = bridge.snapshot.today["cost_usd"]
        assert cost > 0
        assert page.spend.text() == f"${cost:,.2f} today · 600 tokens"
        row = page.budgets.rows[("global", "daily")]
        assert row.bar.text() == "60.0%" and row.level == "warn"
        assert not page.budgets.empty.isVisibleTo(page)
        assert page.week.isVisibleTo(page) and not page.week_empty.isVisibleTo(page)
        assert page.week.chart().title().endswith(" and 900 tokens")
        shown = page.week.shown
        assert shown is not None and len(shown.days) == 7
        assert sum(shown.values[0][-2:]) > 0 and sum(shown.values[0][:-2]) == 0
        health = page.health
        assert health.api.text().startswith("Supervisor: up (version ")
        imported = bridge.snapshot.status["usage_imported_at"]
        assert parse_time(imported).timestamp() >= asked
        assert health.imported.text() == f"Last usage import: {local_time(imported)}"
        assert health.dead.text() == "Dead letters: none, every notification was delivered"
        assert not health.dead_button.isVisibleTo(page)

        daemon.stop()
        failures: list[str] = []
        dashboard.fetch_failed.connect(failures.append)
        dashboard.fetch_current()
        await until(lambda: failures, what="the failed fetch")
        assert health.api.text().startswith("Supervisor: not answering. The supervisor did not")

    run(qloop, scenario())


def test_an_empty_overview_says_what_to_do_next(daemon, qloop, bridge, dashboard):
    page = dashboard.overview

    async def scenario() -> None:
        await fetched(dashboard, "overview")
        assert page.cards.empty.text() == NOTHING_NEEDED and page.cards.empty.isVisibleTo(page)
        assert page.budgets.empty.text() == NO_BUDGET and page.budgets.empty.isVisibleTo(page)
        assert page.week_empty.text() == NO_USAGE and page.week_empty.isVisibleTo(page)
        assert not page.week.isVisibleTo(page)
        assert page.spend.text() == "$0.00 today · 0 tokens"

    run(qloop, scenario())


def test_each_need_has_its_one_action(daemon, project_dir, tmp_path):
    """A real runner's JSON as paused at a limit, backing off, unresponsive, waiting in the
    user's terminal, and failed long ago (no card) or dismissed (no card)."""
    daemon.project("demo", project_dir)
    real = daemon.wait_state(daemon.launch("demo", SLEEP)["id"], "running")
    resets = datetime.datetime.combine(datetime.date.today(), datetime.time(23)).astimezone()
    paused = {**real, "state": "paused", "resumable": True,
              "limit_resets_at": resets.astimezone(datetime.UTC).isoformat()}  # fmt: skip
    need = need_of(paused)
    assert (need.kind, need.action) == ("limit", RESUME)
    assert need.sentence == "Paused at its provider's usage limit; the limit resets at 23:00."
    assert need_of({**paused, "resumable": False}).action == SHOW_OUTPUT
    backoff = need_of({**real, "state": "backoff", "reason": "exited with status 1"})
    assert backoff.sentence == "Exited (exited with status 1); it is restarted by its policy."
    assert need_of({**real, "unresponsive": True}).kind == "unresponsive"
    in_terminal = {**real, "attention": "needs_input", "supervised": False, "attention_at": None}
    assert need_of(in_terminal).action == OPEN_TERMINAL
    assert need_of(real) is None
    now = time.time()
    ended = datetime.datetime.fromtimestamp(now - 3600, datetime.UTC).isoformat()
    old = datetime.datetime.fromtimestamp(now - 2 * 86_400, datetime.UTC).isoformat()
    failed = [
        {**real, "id": 7, "state": "failed", "ended_at": ended, "reason": "was killed by SIGKILL"},
        {**real, "id": 8, "state": "fatal", "ended_at": ended, "reason": "gave up: exited too "
         "quickly 4 times in a row"},
        {**real, "id": 9, "state": "failed", "ended_at": old, "reason": "exited with status 1"},
        {**real, "id": 10, "state": "lost", "ended_at": ended, "reason": None},
    ]  # fmt: skip
    cards = needing([in_terminal], failed, {10}, now)
    assert [(r["id"], n.kind) for r, n in cards] == [(real["id"], "input"), (7, "failed"),
                                                      (8, "failed")]  # fmt: skip
    assert cards[2][1].sentence.startswith("Gave up at ")
    assert cards[2][1].sentence.endswith(": gave up: exited too quickly 4 times in a row.")


def test_the_plan_limits_strip_shows_a_bar_per_window_of_each_account(qapp) -> None:
    from desktop.dashboard.planlimits import NO_PLAN_LIMITS, PlanLimits

    home = str(Path.home())

    def window(account: str, agent: str, name: str, label: str, used: float) -> dict:
        text = f"{label}: {used:.0f} %, resets 23:00"
        return {"account": account, "agent": agent, "window": name, "label": label,
                "used_percent": used, "text": text}  # fmt: skip

    strip = PlanLimits()
    strip.show_limits([])
    assert not strip.empty.isHidden() and strip.empty.text() == NO_PLAN_LIMITS
    found = [
        window(f"{home}/.claude", "claude", "five_hour", "5-hour", 63),
        window(f"{home}/.claude", "claude", "seven_day", "7-day", 12),
        window("/work/codex", "codex", "five_hour", "5-hour", 97.5),
    ]
    strip.show_limits(found)
    assert strip.empty.isHidden()
    bars = list(strip.bars.values())
    assert [b.accessibleName() for b in bars] == [
        "Claude ~/.claude 5-hour limit", "Claude ~/.claude 7-day limit",
        "Codex /work/codex 5-hour limit",
    ]  # fmt: skip
    assert [(b.value(), b.format()) for b in bars] == [(630, "63 %"), (120, "12 %"),
                                                       (975, "98 %")]  # fmt: skip
    assert [line.text() for line in strip.lines.values()] == [
        "5-hour: 63 %, resets 23:00", "7-day: 12 %, resets 23:00", "5-hour: 98 %, resets 23:00",
    ]  # fmt: skip
    strip.show_limits([window(f"{home}/.claude", "claude", "five_hour", "5-hour", 64), *found[1:]])
    assert list(strip.bars.values()) == bars and bars[0].value() == 640  # the same rows, updated
    strip.show_limits(found[:1])
    assert len(strip.bars) == 1 and len(strip.findChildren(QProgressBar)) == 1
