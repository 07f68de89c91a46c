"""Budgets: windows, thresholds once per period, rollovers with an injected clock, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.core.errors import ApiError, ErrorCode
from supervisor.storage.db import close_db, init_db
from supervisor.storage.models import Budget, Event, Project
from supervisor.usage import budgets, periods
from supervisor.usage.budgets import Calendar
from tests.usage.test_ledger import add_rows
from tests.usage_data import utc

UTC_CAL = Calendar(periods.resolve_zone("UTC"))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[None]:
    init_db(tmp_path / "stratavore.db")
    Project.create(name="demo", path="/work/demo", created_at=0)
    yield
    close_db()


def events_of(kind: str) -> list[str]:
    return [e.title for e in Event.select().where(Event.type == kind).order_by(Event.id)]


def test_exactly_one_budget_per_scope_and_period(db) -> None:
    budgets.set_budget("global", "daily", 1000, None, None, None, now=0)
    budgets.set_budget("global", "daily", 2000, 5.0, [50], "block", now=0)
    budgets.set_budget("global", "weekly", 9000, None, None, None, now=0)
    rows = [(b.scope, b.period, b.limit_tokens, b.limit_usd, b.warn, b.action)
            for b in Budget.select().order_by(Budget.id)]  # fmt: skip
    assert rows == [
        ("global", "daily", 2000, 5.0, [50], "block"),
        ("global", "weekly", 9000, None, [75, 90], "warn"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("everyone", "daily", 1, None, None, None), "scope 'everyone' is not one of"),
        (("global", "hourly", 1, None, None, None), "period 'hourly' is not one of"),
        (("global", "daily", None, None, None, None), "needs a limit"),
        (("global", "daily", 0, None, None, None), "greater than zero"),
        (("global", "daily", 5, None, [120], None), "between 0 and 100"),
        (("global", "daily", 5, None, None, "explode"), "action 'explode' is not one of"),
        (("project:ghost", "daily", 5, None, None, None), "Project 'ghost' does not exist"),
    ],
)
def test_bad_budgets_are_refused_in_one_sentence(db, args, message) -> None:
    with pytest.raises(ApiError, match=message):
        budgets.set_budget(*args, now=0)
    assert Budget.select().count() == 0


def test_each_threshold_is_reported_once_per_period(db) -> None:
    budgets.set_budget("project:demo", "daily", 1000, None, [50, 90], "warn", now=0)
    now = utc("2026-11-21 12:00")
    add_rows(("2026-11-21 09:00", 600), cwd="/elsewhere")  # not the project's: ignored
    assert budgets.evaluate(now, UTC_CAL) == []
    assert events_of("budget.threshold") == []
    add_rows(("2026-11-21 10:00", 1200), cwd="/work/demo/src")
    budgets.evaluate(now, UTC_CAL)
    budgets.evaluate(now, UTC_CAL)
    assert events_of("budget.threshold") == [
        "budget project:demo daily at 50 %", "budget project:demo daily at 90 %"
    ]  # fmt: skip
    assert events_of("budget.spent") == ["budget project:demo daily is spent"]
    # the next day is a new period: nothing used, nothing reported
    budgets.evaluate(utc("2026-11-22 12:00"), UTC_CAL)
    assert len(events_of("budget.threshold")) == 2


def test_thresholds_crossed_one_at_a_time(db) -> None:
    budgets.set_budget("global", "daily", 1000, None, [75, 90], "warn", now=0)
    now = utc("2026-11-21 12:00")
    add_rows(("2026-11-21 09:00", 800))
    budgets.evaluate(now, UTC_CAL)
    assert events_of("budget.threshold") == ["budget global daily at 75 %"]
    add_rows(("2026-11-21 09:01", 150))
    budgets.evaluate(now, UTC_CAL)
    budgets.evaluate(now, UTC_CAL)
    assert events_of("budget.threshold")[1:] == ["budget global daily at 90 %"]
    assert events_of("budget.spent") == []


def test_a_spent_blocking_budget_refuses_launches_saying_when_it_resets(db) -> None:
    budgets.set_budget("project:demo", "daily", 400_000, None, None, "block", now=0)
    add_rows(("2026-11-21 10:00", 412_300), cwd="/work/demo")
    now = utc("2026-11-21 20:48")
    with pytest.raises(ApiError) as info:
        budgets.check_launch("demo", "claude", now, UTC_CAL)
    assert info.value.code is ErrorCode.BUDGET_SPENT
    assert info.value.message == (
        "budget project:demo daily is spent (412,300 / 400,000 tokens); "
        "resets at 00:00 (in 3 h 12 m)."
    )
    budgets.check_launch("other", "claude", now, UTC_CAL)  # another project: allowed
    budgets.check_launch("demo", "claude", utc("2026-11-22 00:00"), UTC_CAL)  # a new day


def test_warn_budgets_never_refuse_and_agent_budgets_match_the_agent(db) -> None:
    budgets.set_budget("global", "daily", 10, None, None, "warn", now=0)
    budgets.set_budget("agent:codex", "daily", None, 0.000001, None, "block", now=0)
    add_rows(("2026-11-21 10:00", 500))
    now = utc("2026-11-21 12:00")
    budgets.check_launch("demo", "claude", now, UTC_CAL)
    add_rows(("2026-11-21 10:00", 500), agent="codex")
    with pytest.raises(ApiError, match=r"agent:codex daily is spent \(\$0.01 / \$0.00\)"):
        budgets.check_launch("demo", "codex", now, UTC_CAL)


def test_runner_agent_from_profile_or_program() -> None:
    assert budgets.runner_agent("claude", ["/usr/bin/claude"]) == "claude"
    assert budgets.runner_agent("mine", ["/opt/bin/codex", "exec"]) == "codex"
    assert budgets.runner_agent(None, ["/opt/Aider.EXE"]) == "aider"


def test_rollover_summarises_each_ended_period_once_even_after_downtime(db) -> None:
    budgets.set_budget("global", "daily", 1000, None, None, "warn", now=utc("2026-11-18 09:00"))
    add_rows(("2026-11-18 10:00", 300), ("2026-11-19 10:00", 700))
    # the supervisor was off from the 18th until the 20th, 01:00
    assert budgets.rollover(utc("2026-11-20 01:00"), UTC_CAL) == 2
    assert budgets.rollover(utc("2026-11-20 01:00"), UTC_CAL) == 0
    assert events_of("budget.rollover") == [
        "budget global daily: period ended at 30 %", "budget global daily: period ended at 70 %"
    ]  # fmt: skip
    assert budgets.rollover(utc("2026-11-21 00:00:01"), UTC_CAL) == 1


def test_rollover_boundaries_in_the_users_zone(db) -> None:
    budgets.set_budget("global", "weekly", 1000, None, None, "warn", now=0)
    budgets.set_budget("global", "monthly", 1000, None, None, "warn", now=0)
    cal = Calendar(periods.resolve_zone("Europe/Berlin"), week_start=0)
    now = utc("2026-11-21 12:00")
    # Monday 23 Nov, 00:00 Berlin (UTC+1) comes before 1 Dec
    assert budgets.next_boundary(now, cal) == utc("2026-11-22 23:00")


def test_a_five_hour_budget_follows_the_scopes_block(db) -> None:
    budget = budgets.set_budget("global", "5h", 1000, None, None, "block", now=0)
    assert budgets.status(budget, utc("2026-11-21 12:00"), UTC_CAL).start is None
    add_rows(("2026-11-21 10:20", 600), ("2026-11-21 13:00", 500))
    state = budgets.status(budget, utc("2026-11-21 14:00"), UTC_CAL)
    assert (state.start, state.resets_at) == (utc("2026-11-21 10:00"), utc("2026-11-21 15:00"))
    assert state.spent and state.tokens == 1100
    with pytest.raises(ApiError, match=r"resets at 15:00 \(in 1 h\)"):
        budgets.check_launch("demo", "claude", utc("2026-11-21 14:00"), UTC_CAL)
    # after the block the window is empty until the next response
    assert budgets.status(budget, utc("2026-11-21 15:00"), UTC_CAL).start is None


def test_projected_exhaustion_at_the_current_burn_rate(db) -> None:
    budget = budgets.set_budget("global", "daily", 1000, None, None, "warn", now=0)
    add_rows(("2026-11-21 05:00", 250))
    state = budgets.status(budget, utc("2026-11-21 06:00"), UTC_CAL)
    # a quarter used in the first 6 h of the day: all of it by 24:00 exactly, not before
    assert state.projected_exhaustion() is None
    add_rows(("2026-11-21 05:30", 250))
    state = budgets.status(budget, utc("2026-11-21 06:00"), UTC_CAL)
    assert state.projected_exhaustion() == utc("2026-11-21 12:00")
