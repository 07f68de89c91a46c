"""Team budgets on a real team database: a budget spent by one member refuses a launch on
another member's machine, in one sentence; the last known totals apply offline."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from supervisor.core.errors import ApiError, ErrorCode
from supervisor.storage.models import DB, Project, Runner
from supervisor.team import budgets, membership, push
from supervisor.team.budgets import TeamBudgets
from supervisor.team.server import TeamError
from tests.team.conftest import Machine
from tests.team.ledgers import earlier_today, record, rows
from tests.team.pgcluster import Cluster


def _password(team_db: str) -> str:
    return "secret-" + team_db.rsplit("/team_", 1)[1]


class Clock:
    """Monotonic time as a parameter: the cache's age, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _member(machines: Callable[[str], Machine], name: str, team_db: str, who: str,
            tmp_path: Path, spend: int = 0) -> Machine:  # fmt: skip
    """A machine of ``who`` with project 'api' and ``spend`` responses in it, pushed."""
    machine = machines(name)
    folder = tmp_path / f"{name}-api"
    folder.mkdir()
    with DB.atomic():
        Project.create(name="api", path=str(folder), created_at=time.time())
    membership.join(team_db, who, password=_password(team_db))
    if spend:
        record(rows(spend, earlier_today(spend), prefix=name, step=1, cwd=str(folder)))
        push.push_now()
    return machine


def _set(scope: str, period: str = "monthly", **limits: object) -> None:
    with membership.connected() as db:
        budgets.set_budget(db, scope, period, limits.get("tokens"), limits.get("usd"),
                           action=limits.get("action"))  # fmt: skip


def test_a_block_budget_spent_by_alice_refuses_a_launch_on_bobs_machine_in_one_sentence(
    team_db: str, machines: Callable[[str], Machine], tmp_path: Path
) -> None:
    _member(machines, "laptop", team_db, "alice", tmp_path, spend=30)
    _member(machines, "box", team_db, "bob", tmp_path, spend=10)
    _set("team:project:api", usd=0.05, action="block")
    with TeamBudgets() as checker:
        with pytest.raises(ApiError) as refused:
            checker.check_launch("api")
        assert refused.value.code is ErrorCode.BUDGET_SPENT
        sentence = refused.value.message
        assert re.fullmatch(
            r"team budget team:project:api monthly is spent \(\$\d+\.\d\d / \$0\.05: "
            r"alice \$\d+\.\d\d, bob \$\d+\.\d\d\); resets at (\w{3} \d\d \w{3} )?00:00 "
            r"\(in (\d+ d )?(\d+ h )?\d+ m\)\.",
            sentence,
        ), sentence
        checker.check_launch("web")  # another project: not this budget's


def test_member_and_warn_budgets_refuse_only_what_they_cover(
    team_db: str, machines: Callable[[str], Machine], tmp_path: Path
) -> None:
    _member(machines, "laptop", team_db, "alice", tmp_path, spend=20)
    _set("member:alice", "daily", tokens=1000, action="block")
    _set("team", "weekly", tokens=1000, action="warn")
    with TeamBudgets() as checker, pytest.raises(ApiError, match=r"member:alice daily is spent"):
        checker.check_launch("api")
    _member(machines, "box", team_db, "bob", tmp_path)
    with TeamBudgets() as bobs:
        bobs.check_launch("api")  # alice's own budget and a warn budget: bob launches
        (week,) = [b for b in bobs.snapshot().budgets if b.scope == "team"]
        assert week.spent and week.by_member[0][0] == "alice"


def test_answers_are_cached_for_seconds_then_asked_again(
    team_db: str, machines: Callable[[str], Machine], tmp_path: Path
) -> None:
    _member(machines, "laptop", team_db, "alice", tmp_path, spend=10)
    _set("team", "daily", tokens=10, action="block")
    clock = Clock()
    with TeamBudgets(ttl=5.0, clock=clock) as checker:
        with pytest.raises(ApiError):
            checker.check_launch("api")
        with membership.connected() as db:
            budgets.remove_budget(db, "team", "daily")
        clock.now += 4.0
        with pytest.raises(ApiError):  # still the cached answer
            checker.check_launch("api")
        clock.now += 2.0
        checker.check_launch("api")  # asked again: the budget is gone


def test_with_the_server_down_the_last_known_totals_apply_and_say_since_when(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine], tmp_path: Path
) -> None:
    _member(machines, "laptop", team_db, "alice", tmp_path, spend=10)
    _set("team", "monthly", tokens=10, action="stop")
    with TeamBudgets() as first:
        fetched = first.refresh()
    assert fetched.stale is None
    pg.stop()
    try:
        with TeamBudgets() as later:  # a new process: the answer kept locally
            snapshot = later.refresh()
            assert snapshot.stale and "cannot be reached" in snapshot.stale
            assert snapshot.fetched_at == fetched.fetched_at
            with pytest.raises(ApiError) as refused:
                later.check_launch("api")
        zone = ZoneInfo(fetched.budgets[0].zone)
        since = datetime.fromtimestamp(fetched.fetched_at, zone).strftime("%Y-%m-%d %H:%M")
        assert refused.value.message.endswith(
            f"(team totals as of {since}: the team database cannot be reached)."
        )
    finally:
        pg.start()


def test_a_spent_stop_budget_names_this_machines_runners_of_its_scope(
    team_db: str, machines: Callable[[str], Machine], tmp_path: Path
) -> None:
    _member(machines, "laptop", team_db, "alice", tmp_path, spend=10)
    now = time.time()
    with DB.atomic():
        api = Project.get(Project.name == "api")
        web = Project.create(name="web", path=str(tmp_path / "web"), created_at=now)
        made = {
            (project.name, state): Runner.create(
                project=project, command=["claude"], cwd=project.path, state=state,
                created_at=now, token_hash="x",
            ).id
            for project in (api, web)
            for state in ("running", "queued", "exited")
        }  # fmt: skip
    _set("team:project:api", "daily", tokens=10, action="stop")
    with TeamBudgets() as checker:
        to_stop = checker.to_stop(checker.refresh())
    assert to_stop == {"team:project:api daily": [made["api", "running"], made["api", "queued"]]}
    assert budgets.local_runners_in_scope("member:alice", "alice") == [
        made[key] for key in sorted(made, key=made.get) if key[1] != "exited"
    ]
    assert budgets.local_runners_in_scope("member:bob", "alice") == []


def test_the_check_refuses_to_block_the_event_loop(
    team_db: str, machines: Callable[[str], Machine], tmp_path: Path
) -> None:
    _member(machines, "laptop", team_db, "alice", tmp_path, spend=10)
    _set("team", "daily", tokens=10, action="block")

    async def on_the_loop(checker: TeamBudgets) -> None:
        with pytest.raises(RuntimeError, match="worker thread"):
            checker.check_launch("api")
        with pytest.raises(ApiError):
            await checker.check_launch_async("api")
        with pytest.raises(ApiError):
            checker.check_launch_cached("api")  # what the async one fetched: no I/O

    with TeamBudgets() as checker:
        asyncio.run(on_the_loop(checker))


def test_periods_follow_the_teams_zone(
    team_db: str, machines: Callable[[str], Machine], tmp_path: Path
) -> None:
    _member(machines, "laptop", team_db, "alice", tmp_path)
    with membership.connected() as db:
        budgets.set_zone(db, "Pacific/Kiritimati")  # UTC+14: its day is rarely UTC's
        with pytest.raises(TeamError, match="not an IANA time zone"):
            budgets.set_zone(db, "Mars/Olympus")
        budgets.set_budget(db, "team", "daily", 100, None)
        (state,) = budgets.fetch(db).budgets
    zone = ZoneInfo("Pacific/Kiritimati")
    midnight = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    assert (state.start, state.resets_at, state.zone) == (
        midnight.timestamp(), midnight.timestamp() + 86400, "Pacific/Kiritimati",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("scope", "period", "message"),
    [
        ("global", "daily", "is not one of team, team:project:NAME or member:NAME"),
        ("team:project:", "daily", "is not one of team"),
        ("team", "5h", "5-hour blocks are each account's own"),
    ],
)
def test_bad_team_budgets_are_refused_in_one_sentence(
    scope: str, period: str, message: str, team_db: str, machines: Callable[[str], Machine],
    tmp_path: Path,
) -> None:  # fmt: skip
    _member(machines, "laptop", team_db, "alice", tmp_path)
    with pytest.raises(TeamError, match=re.escape(message)):
        _set(scope, period, tokens=5)
