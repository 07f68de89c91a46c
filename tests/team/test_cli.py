"""``stratavore team ...`` as a user runs it: real CLI processes on a real team database."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

from tests.team.conftest import Machine
from tests.team.ledgers import earlier_today, record, rows
from tests.team.pgcluster import Cluster


def _stratavore(machine: Machine, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor.cli", *args], input=stdin,
        env=machine.env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _cli(machine: Machine, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return _stratavore(machine, "team", *args, stdin=stdin)


def test_join_push_budget_report_and_leave_from_the_command_line(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine]
) -> None:
    laptop = machines("laptop")
    record(rows(30, earlier_today(300), step=10))
    password = "secret-" + team_db.rsplit("/team_", 1)[1]
    wrong = _cli(laptop, "join", team_db, "--as", "alice", stdin="nope\n")
    assert wrong.returncode == 1 and wrong.stderr.startswith("stratavore: The team database ")
    assert "refused the credentials" in wrong.stderr and wrong.stderr.count("\n") == 1
    joined = _cli(laptop, "join", team_db, "--as", "alice", stdin=password + "\n")
    assert joined.returncode == 0, joined.stderr
    assert joined.stdout.splitlines()[1] == "pushed 30 usage rows, 0 runners"
    status = json.loads(_cli(laptop, "status", "--json").stdout)
    assert (status["member"], status["pending"]) == ("alice", 0)
    assert status["server"]["machines"][0]["pushed_rows"] == 30
    assert _cli(laptop, "push").stdout.startswith("pushed 0 usage rows")
    made = _cli(laptop, "budget", "set", "team", "--period", "daily", "--tokens", "1000",
                "--action", "block")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "alice 112,500" in made.stdout and "block" in made.stdout
    report = json.loads(_cli(laptop, "usage", "--by", "member", "--json").stdout)
    assert report["totals"]["responses"] == 30 and report["rows"][0]["group"] == "alice"
    pg.stop()
    try:
        offline = _cli(laptop, "budgets")
        assert offline.returncode == 0, offline.stderr
        assert "team totals as of" in offline.stdout and "cannot be reached" in offline.stdout
        laptop.use()
        record(rows(1, time.time(), prefix="late"))
        refused = _cli(laptop, "leave")
        assert refused.returncode == 1 and "1 rows are not pushed yet" in refused.stderr
    finally:
        pg.start()
    left = _cli(laptop, "leave")
    assert left.returncode == 0, left.stderr
    assert _cli(laptop, "status").stdout.startswith("in no team")
    bad = _cli(laptop, "budget", "set", "team", "--period", "daily", "--tokens", "5")
    assert bad.returncode == 1 and "is in no team" in bad.stderr


def test_usage_and_budgets_take_team_as_the_team_commands_do(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine]
) -> None:
    laptop = machines("laptop")
    record(rows(12, earlier_today(120), step=10))
    password = "secret-" + team_db.rsplit("/team_", 1)[1]
    assert _cli(laptop, "join", team_db, "--as", "alice", stdin=password + "\n").returncode == 0
    made = _cli(laptop, "budget", "set", "member:alice", "--period", "weekly", "--usd", "5")
    assert made.returncode == 0, made.stderr

    by_member = _stratavore(laptop, "usage", "daily", "--team", "--by", "member", "--json")
    assert by_member.returncode == 0, by_member.stderr
    assert json.loads(by_member.stdout) == json.loads(
        _cli(laptop, "usage", "daily", "--by", "member", "--json").stdout
    )
    assert json.loads(by_member.stdout)["rows"][0]["group"] == "alice"
    table = _stratavore(laptop, "usage", "--team", "--by", "model")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:2] == ["DATE", "MODEL"]

    budgets = _stratavore(laptop, "budgets", "--team", "--json")
    assert budgets.returncode == 0, budgets.stderr
    (budget,) = json.loads(budgets.stdout)["budgets"]
    assert (budget["scope"], budget["period"], budget["by_member"][0][0]) == (
        "member:alice", "weekly", "alice",
    )  # fmt: skip
    assert "member:alice" in _stratavore(laptop, "budgets", "--team").stdout

    for wrong, why in (
        (("usage", "session", "--team"), "makes daily, weekly and monthly reports"),
        (("usage", "--team", "--project", "api"), "instead of a filter"),
        (("usage", "--by", "member"), "--by goes with --team"),
    ):
        refused = _stratavore(laptop, *wrong)
        assert refused.returncode == 2 and why in refused.stderr, refused.stderr
