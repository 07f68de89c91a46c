"""The dashboard's Team tab: two simulated members (``stratavore daemon``s on data dirs of their
own) joined to one real PostgreSQL (the session's throwaway cluster), the real bridge to one of
them on a qasync loop, real widgets (offscreen). The tab draws both members' series, their
totals are the API's, and while the server is down it says since when."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import pytest
import qasync
from PySide6.QtCore import QSettings, Qt

from desktop.bridge import Bridge
from desktop.charts import RANGES
from desktop.dashboard import Dashboard
from desktop.dashboard.team import NOT_JOINED
from tests.desktop.test_dashboard import bridge, dashboard, fetched, prefs, run, until
from tests.team.members import Member, members
from tests.team.pgcluster import Cluster

__all__ = ["bridge", "dashboard", "members", "prefs"]  # fixtures shared with their modules


def bar_sets(window: Dashboard) -> dict[str, float]:
    """The Team chart's series as drawn: each label and the sum of its bars."""
    return {
        bar_set.label(): sum(bar_set.at(i) for i in range(bar_set.count()))
        for bar_set in window.team.daily.bar_sets
    }


def test_the_team_tab_stacks_the_teams_daily_cost_by_member_with_the_apis_totals(
    pg: Cluster,
    team_db: str,
    members: list[Member],
    qloop: qasync.QEventLoop,
    prefs: QSettings,
    qtbot: Any,
) -> None:
    alice, bob = members
    for member, responses in ((alice, 30), (bob, 12)):
        member.join(team_db)
        member.use(responses)
        pushed = member.team("push")
        assert pushed.returncode == 0, pushed.stderr
    api = alice.daemon.api
    since = (date.today() - timedelta(days=RANGES[1] - 1)).isoformat()
    report = api.get("/api/v1/team/usage/daily", by="member", since=since)
    per_member = {m: 0.0 for m in ("alice", "bob")}
    for row in report["rows"]:
        per_member[row["group"]] += row["cost_usd"]
    assert all(per_member.values())  # both members have usage on the server

    bridge = Bridge(api.base_url, api.token or "")
    window = Dashboard(bridge, prefs)
    qtbot.addWidget(window)

    async def main() -> None:
        bridge.start()
        await bridge.refresh()
        window.show()
        window.activateWindow()
        await until(window.isActiveWindow, what="the window to be active")
        asked = asyncio.ensure_future(fetched(window, "team"))
        qtbot.keyClick(window, Qt.Key.Key_9, Qt.KeyboardModifier.ControlModifier)  # the page key
        await asked
        assert window.tabs.currentWidget() is window.team
        assert window.tabs.tabText(window.tabs.currentIndex()) == "Team"
        team = window.team
        drawn = bar_sets(window)
        assert list(drawn) == ["alice", "bob"]  # one series per member, stacked
        assert drawn == pytest.approx(per_member)
        total = report["totals"]["cost_usd"]
        assert team.daily.chart().title() == f"Team cost per day by member: ${total:,.2f}"
        assert team.totals.text() == " · ".join(
            f"{name} ${cost:,.2f}"
            for name, cost in sorted(per_member.items(), key=lambda item: -item[1])
        )
        assert team.state.text().startswith("Team ")
        assert "as alice: last synced at " in team.state.text()
        assert "unreachable" not in team.state.text()

        # by model: the same total, one series per model
        asked = asyncio.ensure_future(fetched(window, "team"))
        team.group_choice.setCurrentIndex(team.group_choice.findData("model"))
        await asked
        assert list(bar_sets(window)) == ["claude-sonnet-4-5-20250929"]
        assert sum(bar_sets(window).values()) == pytest.approx(total)

        # tokens: the API's token total, the same series
        team.metric_choice.setCurrentIndex(team.metric_choice.findData("tokens"))
        tokens = report["totals"]["total_tokens"]
        assert team.daily.chart().title().startswith("Team tokens per day by model: ")
        assert team.daily.y_axis.titleText().endswith("tokens")
        assert tokens > 0

    run(qloop, main())

    # the server goes away: a push fails, the tab says since when and keeps the last report
    pg.stop()
    try:
        alice.use(5)
        refused = alice.team("push")
        assert refused.returncode == 1 and "cannot be reached" in refused.stderr

        async def outage() -> None:
            asked = asyncio.ensure_future(fetched(window, "team", timeout=30))
            window.fetch_page(window.team)
            await asked

        run(qloop, outage())
        text = window.team.state.text()
        assert "\nServer unreachable since " in text and "cannot be reached" in text
        assert list(bar_sets(window)) == ["claude-sonnet-4-5-20250929"]  # the last report
    finally:
        pg.start()
        run(qloop, bridge.close())


def test_a_machine_in_no_team_gets_the_command_that_joins_one(
    dashboard: Dashboard, qloop: qasync.QEventLoop
) -> None:
    async def main() -> None:
        asked = asyncio.ensure_future(fetched(dashboard, "team"))
        dashboard.tabs.setCurrentWidget(dashboard.team)
        await asked

    run(qloop, main())
    team = dashboard.team
    assert team.state.text() == NOT_JOINED
    assert "stratavore team join postgresql://HOST/DB --as NAME" in NOT_JOINED
    assert not team.controls.isVisible() and not team.body.isVisible()
