"""The team in the running supervisor: it pushes by itself every ``team_push_interval``, a
spent team ``block`` budget refuses a launch on another member's machine (and still does,
from the last known totals, while the team database is down), a spent ``stop`` budget stops
another member's runners within one push, and OpenTelemetry export starts and stops with the
supervisor. Real daemons on separate data dirs, one real PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.api.client import ClientError
from supervisor.core.errors import ErrorCode
from tests.conftest import wait_for
from tests.team.ledgers import team_totals
from tests.team.members import Member
from tests.team.otlp_sink import OtlpSink
from tests.team.pgcluster import Cluster

FAST = {"team_push_interval": 1}


@pytest.fixture
def members(tmp_path: Path) -> Iterator[list[Member]]:
    """alice (a laptop) and bob (a build box), each supervisor pushing every second."""
    found: list[Member] = []
    try:
        found.append(Member(tmp_path / "laptop", "alice", FAST))
        found.append(Member(tmp_path / "box", "bob", FAST))
        yield found
    finally:
        for member in found:
            member.daemon.close()


def _team_rows(pg: Cluster, team_db: str, member: str) -> int:
    return team_totals(pg, team_db.rsplit("/", 1)[1], member)["rows"]


def _last_known_spent(member: Member) -> bool:
    """Whether the member's supervisor has seen a spent team budget (its last answer is
    kept in the local store after every round)."""
    found = member.query("SELECT value FROM setting WHERE key = 'team.budgets'")
    return bool(found) and any(b["percent"] >= 100 for b in json.loads(found[0][0])["budgets"])


def _launch_refusal(member: Member, project: str) -> ClientError | None:
    """The refusal of a launch in ``project`` (None: it was launched, and is stopped)."""
    try:
        runner = member.daemon.launch(project, ["sleep", "30"])
    except ClientError as exc:
        return exc
    member.daemon.api.post(f"/api/v1/runners/{runner['id']}/stop")
    return None


def _joined_with_a_budget(
    members: list[Member], team_db: str, tmp_path: Path, *budget: str
) -> None:
    """Both members in the team, bob with a project api, alice's team budget ``budget``."""
    for member in members:
        member.join(team_db)
    (tmp_path / "api").mkdir()
    members[1].daemon.project("api", tmp_path / "api")
    made = members[0].team("budget", "set", *budget, "--period", "daily", "--usd", "0.01")
    assert made.returncode == 0, made.stderr


def test_the_supervisor_pushes_by_itself_every_interval(
    pg: Cluster, team_db: str, members: list[Member]
) -> None:
    alice = members[0]
    outside_status = alice.daemon.api.get("/api/v1/team")
    assert (outside_status["joined"], outside_status["push_interval"]) == (False, 1.0)
    assert outside_status["member"] is None and outside_status["pending"] == 0
    with pytest.raises(ClientError) as outside:
        alice.daemon.api.get("/api/v1/team/budgets")
    assert outside.value.code == ErrorCode.NOT_FOUND and "is in no team" in outside.value.message
    alice.use(30)
    alice.join(team_db)  # the join pushes the history once
    assert _team_rows(pg, team_db, "alice") == 30
    alice.use(20)  # nobody runs `team push` now
    wait_for(lambda: _team_rows(pg, team_db, "alice") == 50, 15, what="the supervisor's push")
    status = json.loads(alice.team("status", "--json").stdout)
    assert status["pending"] == 0 and status["last_push"]["rows"] > 0
    served = alice.daemon.api.get("/api/v1/team")  # the same, from the supervisor
    assert (served["joined"], served["member"], served["machine_id"], served["pending"]) == (
        True, "alice", status["machine_id"], 0,
    )  # fmt: skip
    assert served["last_push"]["at"].endswith("Z") and served["last_error"] is None


def test_a_team_block_budget_spent_by_alice_refuses_a_launch_on_bobs_machine(
    pg: Cluster, team_db: str, members: list[Member], tmp_path: Path
) -> None:
    alice, bob = members
    _joined_with_a_budget(members, team_db, tmp_path, "team", "--action", "block")
    assert _launch_refusal(bob, "api") is None  # nothing spent yet

    alice.use(20)  # about $0.027, pushed by alice's supervisor, seen by bob's
    wait_for(lambda: _last_known_spent(bob), 20, what="bob's supervisor to see the spend")
    refused = _launch_refusal(bob, "api")
    assert refused is not None and refused.code == ErrorCode.BUDGET_SPENT
    assert re.fullmatch(
        r"team budget team daily is spent \(\$0\.0\d / \$0\.01: alice \$0\.0\d\); resets at "
        r".+\.",
        refused.message,
    ), refused.message
    (budget,) = bob.daemon.api.get("/api/v1/team/budgets")["budgets"]
    assert (budget["scope"], budget["action"], budget["by_member"][0]["member"]) == (
        "team", "block", "alice",
    )  # fmt: skip
    assert budget["percent"] >= 100 and budget["resets_at"].endswith("Z")

    pg.stop()  # the last known totals still apply, and the sentence says since when
    try:
        stale = wait_for(
            lambda: (e := _launch_refusal(bob, "api")) and "cannot be reached" in e.message and e,
            20,
            what="bob's supervisor to notice the team database is down",
        )
    finally:
        pg.start()
    assert stale.code == ErrorCode.BUDGET_SPENT
    assert "cannot be reached" in bob.daemon.api.get("/api/v1/team/budgets")["stale"]
    assert re.search(r"\(team totals as of \d{4}-\d\d-\d\d \d\d:\d\d: the team database cannot "
                     r"be reached\)\.$", stale.message), stale.message  # fmt: skip


def test_a_team_stop_budget_stops_bobs_runners_within_one_push(
    pg: Cluster, team_db: str, members: list[Member], tmp_path: Path
) -> None:
    alice, bob = members
    _joined_with_a_budget(members, team_db, tmp_path, "team:project:api", "--action", "stop")
    runner = bob.daemon.launch("api", ["sleep", "60"])
    bob.daemon.wait_state(runner["id"], "running")

    alice.use(20)  # alice's usage belongs to no project: the budget is not spent
    wait_for(lambda: _team_rows(pg, team_db, "alice") == 20, 15, what="alice's push")
    assert bob.daemon.runner(runner["id"])["state"] == "running"
    # bob's, reported for his runner (so in its folder: project api), counts against it
    records = [{"model": "claude-sonnet-4-5-20250929", "input_tokens": 1000,
                "output_tokens": 500, "key": f"run-{i}"} for i in range(20)]  # fmt: skip
    bob.daemon.api.post("/api/v1/usage", {"records": records, "runner_id": runner["id"]})
    bob.daemon.wait_state(runner["id"], "stopped", timeout=20)
    events = bob.daemon.api.get("/api/v1/events", since=0, limit=500)
    spent = [e for e in events if e["type"] == "budget.spent"]
    assert [e["title"] for e in spent] == ["team budget team:project:api daily is spent"]
    assert spent[0]["data"]["team"] is True


def test_otel_export_starts_and_stops_with_the_supervisor(tmp_path: Path) -> None:
    """With the otel_endpoint setting the supervisor starts an exporter; stopping it makes
    the last export (the interval is a minute: no periodic one comes meanwhile)."""
    with OtlpSink() as sink:
        member = Member(tmp_path / "laptop", "alice", {"otel_endpoint": sink.url},
                        env={"OTEL_METRIC_EXPORT_INTERVAL": "60000"})  # fmt: skip
        try:
            assert "otel: exporting metrics to " + sink.url in member.daemon.log.read_text()
            assert sink.requests == []
            assert member.daemon.stop() == 0
        finally:
            member.daemon.close()
        assert len(sink.requests) == 1
        assert sink.points()["stratavore.runners"]
        assert sink.resource()["service.name"] == "stratavore"


def test_a_supervisor_stopped_during_a_team_round_exits_cleanly(tmp_path):
    """Regression: the scheduler's shutdown cancelled the push job, which cancelled the round
    that stop() then waited for, so a supervisor stopped during a round exited with a
    CancelledError traceback and status 1 (about one stop in ten right after a start)."""
    for n in range(15):
        member = Member(tmp_path / f"m{n}", "alice", FAST)  # starts, stops, starts again
        assert member.daemon.stop() == 0
        member.daemon.close()
