"""The usage charts drawn from real reports: usage posted to a real supervisor (admin token,
attributed to projects through real runners), fetched by the dashboard through the bridge."""

from __future__ import annotations

import asyncio
import datetime
import random
import time
from datetime import date, timedelta
from typing import Any

import pytest

from desktop.charts import OUTSIDE, DailyChart, scale_of, stack_by_project
from desktop.dashboard import Dashboard
from tests.conftest import SLEEP, Daemon
from tests.desktop import test_dashboard as base
from tests.desktop.test_dashboard import fetched, run

MODEL = "claude-sonnet-4-5-20250929"

# the real-supervisor fixtures of the dashboard tests
bridge = base.bridge
dashboard = base.dashboard
prefs = base.prefs


def post_usage(daemon: Daemon, ts: float, tokens: int, runner_id: int | None = None) -> None:
    body: dict[str, Any] = {
        "records": [{"model": MODEL, "agent": "claude", "output_tokens": tokens, "ts": ts}]
    }
    if runner_id is not None:
        body["runner_id"] = runner_id
    daemon.api.post("/api/v1/usage", body)


def noon(days_ago: int) -> float:
    day = date.today() - timedelta(days=days_ago)
    return datetime.datetime.combine(day, datetime.time(12)).timestamp()


def runner_in(daemon: Daemon, name: str, tmp_path: Any) -> int:
    folder = tmp_path / name
    folder.mkdir()
    daemon.project(name, folder)
    return daemon.launch(name, SLEEP)["id"]


async def show_usage(window: Dashboard) -> None:
    waiting = asyncio.ensure_future(fetched(window, "usage"))
    window.tabs.setCurrentWidget(window.usage)
    await waiting


def bars(chart: DailyChart) -> dict[str, list[float]]:
    return {s.label(): [s.at(i) for i in range(s.count())] for s in chart.bar_sets}


def test_daily_chart_stacks_real_usage_by_project(daemon, tmp_path, qloop, bridge, dashboard):
    alpha, beta = runner_in(daemon, "alpha", tmp_path), runner_in(daemon, "beta", tmp_path)
    post_usage(daemon, noon(2), 600, alpha)
    post_usage(daemon, time.time() - 60, 100, alpha)
    post_usage(daemon, noon(1), 500, beta)
    post_usage(daemon, noon(1), 300)  # outside every project
    chart = dashboard.usage.daily

    async def scenario() -> None:
        await show_usage(dashboard)
        assert dashboard.usage.days == 30 and len(chart.shown.days) == 30
        assert chart.shown.days[-1] == date.today().isoformat()
        zeros = [0.0] * 30
        assert bars(chart) == {
            "alpha": [*zeros[:27], 600.0, 0.0, 100.0],
            "beta": [*zeros[:28], 500.0, 0.0],
            OUTSIDE: [*zeros[:28], 300.0, 0.0],
        }
        assert chart.y_axis.titleText() == "tokens"
        assert chart.chart().title() == "Tokens per day by project: 1.5k tokens"
        sets = list(chart.bar_sets)

        dashboard.usage.metric_choice.setCurrentIndex(1)  # cost: the same report, redrawn
        since = (date.today() - timedelta(days=29)).isoformat()
        report = daemon.api.get("/api/v1/usage/daily", since=since, by_project=1)
        costs = {(r["project"] or OUTSIDE, r["date"]): r["cost_usd"] for r in report["rows"]}
        shown = {
            (name, chart.shown.days[i]): value
            for name, values in bars(chart).items()
            for i, value in enumerate(values)
            if value
        }
        assert shown.keys() == costs.keys()
        assert all(abs(shown[k] - costs[k]) < 1e-9 for k in costs)
        assert chart.y_axis.titleText() == "USD"
        assert chart.bar_sets == sets  # same projects: the bar sets are reused

        waiting = asyncio.ensure_future(fetched(dashboard, "usage"))
        dashboard.usage.range_choice.setCurrentIndex(0)  # 7 days: fetched again
        await waiting
        assert [s.count() for s in chart.bar_sets] == [7, 7, 7]

        waiting = asyncio.ensure_future(fetched(dashboard, "usage"))
        dashboard.usage.range_choice.setCurrentIndex(3)  # a year: by week
        dashboard.usage.metric_choice.setCurrentIndex(0)
        await waiting
        assert chart.shown.binned and len(chart.shown.days) == 53
        assert chart.y_axis.titleText() == "k tokens"  # the week before today: 1.4k tokens
        assert {name: round(sum(values) * 1000) for name, values in bars(chart).items()} == {
            "alpha": 700,
            "beta": 500,
            OUTSIDE: 300,
        }

    run(qloop, scenario())


def test_burn_chart_projects_when_the_tightest_daily_budget_runs_out(
    daemon, tmp_path, qloop, bridge, dashboard
):
    alpha = runner_in(daemon, "alpha", tmp_path)
    now = time.time()
    post_usage(daemon, now - 300, 10_000, alpha)
    post_usage(daemon, now - 60, 10_000, alpha)
    post_usage(daemon, now - 60, 50_000)  # outside the project: not in its budget
    for scope, limit in (("global", 1_000_000), ("project:alpha", 40_000)):
        daemon.api.request(
            "PUT", "/api/v1/budgets", {"scope": scope, "period": "daily", "limit_tokens": limit}
        )
    blocks = daemon.api.get("/api/v1/usage/blocks", since=date.today().isoformat(), project="alpha")
    used = sum(row["total_tokens"] for row in blocks["rows"])
    rate = next(row["burn_rate_tokens_per_minute"] for row in blocks["rows"] if row["active"])
    chart = dashboard.usage.burn

    async def scenario() -> None:
        await bridge.refresh()
        await show_usage(dashboard)
        burn = chart.burn
        assert (burn.used, burn.rate, burn.limit) == (used, rate, 40_000)
        [budget] = [b for b in bridge.snapshot.budgets if b["scope"] == "project:alpha"]
        resets = datetime.datetime.fromisoformat(budget["resets_at"]).timestamp()
        expected = time.time() + (40_000 - used) / rate * 60
        title = chart.chart().title()
        assert title.startswith(f"Today: {used / 1000:.1f}k of 40.0k tokens (project:alpha daily)")
        if expected < resets:  # (not in the last minutes of the day)
            assert abs(burn.exhaustion - expected) < 30
            at = datetime.datetime.fromtimestamp(burn.exhaustion).strftime("%H:%M")
            assert title.endswith(f"the limit is reached at {at}")
            assert chart.projection.at(chart.projection.count() - 1).y() * 1000 == 40_000
        limit = [chart.limit.at(i) for i in range(chart.limit.count())]
        assert [p.y() * 1000 for p in limit] == [40_000, 40_000]
        assert limit[1].x() == resets * 1000
        assert chart.used.at(chart.used.count() - 1).y() * 1000 == used

    run(qloop, scenario())


def test_blocks_chart_highlights_the_active_block_and_its_projection(
    daemon, qloop, bridge, dashboard
):
    post_usage(daemon, noon(2), 1_000)  # a block long over
    post_usage(daemon, time.time() - 60, 500)  # the active one
    since = (date.today() - timedelta(days=6)).isoformat()
    report = daemon.api.get("/api/v1/usage/blocks", since=since)
    old, active = report["rows"]
    assert active["active"] and not old["active"]
    chart = dashboard.usage.blocks

    async def scenario() -> None:
        await show_usage(dashboard)
        peak = max(active["projected_total_tokens"], old["total_tokens"])
        scale = scale_of(peak, "tokens")[0]

        def values(bar_set: Any) -> list[float]:
            return [round(bar_set.at(i) * scale) for i in range(bar_set.count())]

        assert values(chart.done) == [1_000, 0]
        assert values(chart.active) == [0, 500]
        # the projection shrinks as the block's end nears: fetched a moment apart
        ahead = active["projected_total_tokens"] - 500
        assert values(chart.projected) == [0, pytest.approx(ahead, rel=0.02)]
        assert "this block 500 tokens" in chart.chart().title()

    run(qloop, scenario())


def year_report(projects: int, seed: int) -> tuple[dict[str, Any], list[str]]:
    """A daily by-project report of a year, shaped as the API returns it."""
    rng = random.Random(seed)
    days = [(date.today() - timedelta(days=n)).isoformat() for n in range(364, -1, -1)]
    rows = [
        {"date": day, "project": f"p{p:02d}", "total_tokens": rng.randint(0, 5_000_000),
         "cost_usd": rng.random() * 20}
        for day in days
        for p in range(projects)
    ]  # fmt: skip
    return {"rows": rows, "totals": {}}, days


def test_a_year_of_ten_projects_is_drawn_by_week_reusing_its_bar_sets(qtbot):
    chart = DailyChart()
    qtbot.addWidget(chart)
    chart.resize(1000, 600)
    chart.show()
    report, days = year_report(10, seed=1)
    chart.show_stack(stack_by_project(report["rows"], days, "tokens"), "tokens", "a year")
    sets = list(chart.bar_sets)
    assert [s.count() for s in sets] == [53] * 10
    first = sum(r["total_tokens"] for r in report["rows"] if r["project"] == "p00" and
                r["date"] in days[:7])  # fmt: skip
    assert round(sets[0].at(0) * 1e6) == first  # M tokens
    report, days = year_report(10, seed=2)
    chart.show_stack(stack_by_project(report["rows"], days, "tokens"), "tokens", "a year")
    assert chart.bar_sets == sets
    report["rows"].append({**report["rows"][0], "project": "new"})
    chart.show_stack(stack_by_project(report["rows"], days, "tokens"), "tokens", "a year")
    assert len(chart.bar_sets) == 11 and chart.grab().width() == 1000
