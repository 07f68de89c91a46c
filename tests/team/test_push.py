"""The push: the team ledger is a replica of each member's, with nothing lost and nothing
counted twice, through outages of the server and kill -9 of the pushing process."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from supervisor.core import events
from supervisor.storage.models import DB, Project, Runner
from supervisor.team import local, membership, push
from supervisor.team.server import TeamUnreachable
from supervisor.usage.pricing import PriceTable
from tests.team.conftest import Machine
from tests.team.ledgers import local_totals, record, rows, team_query, team_totals
from tests.team.pgcluster import Cluster

DAY = 1_790_000_000.0  # a fixed moment (2026-09-21 UTC)


def _password(team_db: str) -> str:
    return "secret-" + team_db.rsplit("/team_", 1)[1]


def _dbname(team_db: str) -> str:
    return team_db.rsplit("/", 1)[1]


def _joined(machines: Callable[[str], Machine], name: str, team_db: str, member: str) -> Machine:
    machine = machines(name)
    membership.join(team_db, member, password=_password(team_db))
    return machine


def _pushed(machines: Callable[[str], Machine], team_db: str, n: int) -> Machine:
    """Alice's laptop, joined, with ``n`` responses already pushed."""
    laptop = _joined(machines, "laptop", team_db, "alice")
    record(rows(n, DAY))
    push.push_now()
    return laptop


def _assert_replica(pg: Cluster, team_db: str, member: str | None = None) -> None:
    """The team holds exactly the bound local ledger (as the member's share), rows and
    buckets alike."""
    count, tokens, cost = local_totals()
    team = team_totals(pg, _dbname(team_db), member)
    assert (team["rows"], team["tokens"], team["responses"], team["bucket_tokens"]) == (
        count, tokens, count, tokens,
    )  # fmt: skip
    assert (team["day_responses"], team["day_tokens"]) == (count, tokens)
    for key in ("cost", "bucket_cost", "day_cost"):
        assert team[key] == pytest.approx(cost)


def test_push_replicates_the_ledger_and_a_second_push_sends_nothing(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine]
) -> None:
    machines("laptop")
    record(rows(300, DAY))  # history from before the join is pushed too
    membership.join(team_db, "alice", password=_password(team_db))
    record(rows(200, DAY + 86400, prefix="after"))
    result = push.push_now(batch=128)
    assert (result.usage, result.batches, result.pending) == (500, 4, 0)
    _assert_replica(pg, team_db, "alice")
    again = push.push_now()
    assert (again.usage, again.batches) == (0, 0)
    _assert_replica(pg, team_db)
    assert local.last_push()["rows"] == 500 - 3 * 128


def test_a_better_line_and_a_repricing_replace_the_team_row_instead_of_adding_one(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine]
) -> None:
    _joined(machines, "laptop", team_db, "alice")
    record(rows(50, DAY, tokens=100))
    push.push_now()
    record(rows(50, DAY, tokens=400))  # the same responses, later snapshots: better lines
    with DB.atomic():  # a new price table reprices every row (an UPDATE of all of them)
        from supervisor.storage.queries import rebuild_buckets
        from supervisor.usage.ledger import reprice

        reprice(PriceTable.bundled({"claude-sonnet-4-5-20250929": {"input": 1e-3, "output": 2e-3}}))
        rebuild_buckets()
    assert push.push_now().usage == 50
    _assert_replica(pg, team_db, "alice")
    assert team_totals(pg, _dbname(team_db))["rows"] == 50


def test_offline_then_back_everything_arrives_once(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine]
) -> None:
    _pushed(machines, team_db, 100)
    pg.stop()
    try:
        record(rows(400, DAY + 3600, prefix="offline"))  # a day of work without the server
        pusher = push.Pusher()
        failures = []
        for _ in range(2):  # the same pusher, as the daemon's job keeps it
            with pytest.raises(TeamUnreachable, match="cannot be reached"):
                pusher.push()
            failures.append(local.last_error())
        assert local.pending() == 400
        status = membership.status()
        assert status["last_error"]["message"].startswith("The team database")
        # "unreachable since" the first failure, not the last
        assert status["last_error"]["since"] == failures[0]["at"] < failures[1]["at"]
        assert status["server"]["reachable"] is False
    finally:
        pg.start()
    with pusher:
        result = pusher.push()
    assert (result.usage, result.pending) == (400, 0)
    _assert_replica(pg, team_db, "alice")
    assert membership.status()["last_error"] is None


def test_kill_between_the_server_commit_and_the_local_confirm_counts_nothing_twice(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine]
) -> None:
    laptop = _joined(machines, "laptop", team_db, "alice")
    record(rows(1000, DAY))
    died = subprocess.run(
        [sys.executable, "-m", "tests.team.push_child", "commit-then-die", "600"],
        env=laptop.env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert died.returncode == -9, died.stderr
    laptop.use()
    assert local.pending() == 1000  # not confirmed locally ...
    assert team_totals(pg, _dbname(team_db))["rows"] == 600  # ... but committed on the server
    assert push.push_now(batch=250).usage == 1000  # the 600 again: upserted, not added
    _assert_replica(pg, team_db, "alice")


def test_kill_9_mid_push_loses_nothing_and_double_counts_nothing(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine]
) -> None:
    laptop = _joined(machines, "laptop", team_db, "alice")
    record(rows(20_000, DAY, step=5))
    rng = random.Random(13)
    kills = interrupted = 0
    for _ in range(4):
        before = local.pending()
        with subprocess.Popen(
            [sys.executable, "-m", "tests.team.push_child", "loop", "500"],
            env=laptop.env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        ) as child:  # fmt: skip
            assert child.stdout is not None and child.stdout.readline() == "pushing\n"
            time.sleep(rng.uniform(0.05, 0.6))
            child.kill()
        kills += child.returncode == -9
        laptop.use()
        interrupted += 0 < local.pending() < before
        record(rows(500, DAY + 200_000 + kills * 10_000, prefix=f"between-{kills}"))
    assert kills == 4
    assert interrupted >= 1  # at least one kill came in the middle of draining the outbox
    push.push_now()
    _assert_replica(pg, team_db, "alice")
    (in_flight,) = team_query(
        pg, _dbname(team_db), "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in "
        "transaction' AND datname = %s", _dbname(team_db),
    )  # fmt: skip
    assert in_flight == (0,)  # the server rolled back what the killed pushers had begun


def test_two_machines_make_team_totals_equal_to_the_sum_of_their_ledgers(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine]
) -> None:
    laptop = _joined(machines, "laptop", team_db, "alice")
    record(rows(300, DAY, prefix="same-keys"))
    alice = local_totals()
    push.push_now()
    _joined(machines, "box", team_db, "bob")
    # the very same dedupe keys on another machine are other responses: both count
    record(rows(200, DAY, prefix="same-keys", tokens=3000))
    bob = local_totals()
    push.push_now()
    team = team_totals(pg, _dbname(team_db))
    assert team["rows"] == alice[0] + bob[0]
    assert team["tokens"] == team["bucket_tokens"] == alice[1] + bob[1]
    assert team_totals(pg, _dbname(team_db), "bob")["tokens"] == bob[1]
    laptop.use()
    _assert_replica(pg, team_db, "alice")


def test_budget_crossings_and_runner_summaries_are_pushed_and_kept_current(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine], tmp_path
) -> None:
    _joined(machines, "laptop", team_db, "alice")
    with DB.atomic():
        project = Project.create(name="api", path=str(tmp_path), created_at=DAY)
        runner = Runner.create(
            project=project, profile="claude", command=["claude"], cwd=str(tmp_path),
            state="running", created_at=DAY, started_at=DAY, token_hash="x",
        )  # fmt: skip
        events.record(events.BUDGET_SPENT, "budget global daily is spent", ts=DAY,
                      severity="error", data={"scope": "global"})  # fmt: skip
        events.record("runner.running", "runner 1 is running", ts=DAY)  # not a crossing
    record(rows(10, DAY, cwd=str(tmp_path)))
    push.push_now()
    dbname = _dbname(team_db)
    assert team_query(
        pg, dbname, "SELECT type, member, data->>'scope' FROM stratavore.crossing"
    ) == [("budget.spent", "alice", "global")]
    assert team_query(pg, dbname, "SELECT project, agent, state FROM stratavore.runner") == [
        ("api", "claude", "running")
    ]
    assert team_query(pg, dbname, "SELECT DISTINCT project FROM stratavore.usage") == [("api",)]
    with DB.atomic():
        Runner.update(state="exited", ended_at=DAY + 60, exit_code=0).where(
            Runner.id == runner.id
        ).execute()
        Runner.update(cpu_percent=3.0).where(Runner.id == runner.id).execute()  # not queued
    assert local.pending() == 1
    assert push.push_now().runners == 1
    assert team_query(pg, dbname, "SELECT state, exit_code FROM stratavore.runner") == [
        ("exited", 0)
    ]


def test_missing_triggers_are_put_back_and_the_history_queued_again(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine]
) -> None:
    _pushed(machines, team_db, 20)
    DB.execute_sql('DROP TRIGGER "team_usage_insert"')  # as a table rebuild would
    record(rows(5, DAY + 9000, prefix="unseen"))
    assert push.push_now().usage == 25  # everything again, idempotently
    _assert_replica(pg, team_db, "alice")


def test_ledger_written_count_is_not_doubled_by_the_team_outbox_triggers(
    team_db: str, machines: Callable[[str], Machine]
) -> None:
    """Regression: the ledger counted its writes with SQLite's total_changes, which includes
    the rows the outbox triggers insert, so a joined machine reported twice the rows written
    (an import's count, POST /usage's ``written``)."""
    _joined(machines, "laptop", team_db, "alice")
    assert record(rows(10, DAY)) == 10
    assert record(rows(10, DAY, tokens=5000)) == 10  # ten better lines replace ten rows
    assert record(rows(10, DAY, tokens=5000)) == 0  # the same lines again: nothing changes
