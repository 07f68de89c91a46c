"""Two real supervisors on different data dirs, joined to one real PostgreSQL: the team's
totals equal the sum of their local ledgers after an outage of the server and a kill -9 of a
supervisor. Usage arrives the supervisors' own way (``POST /api/v1/usage``, written through
their write gate); ``stratavore team push`` runs beside them as a separate process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, Daemon
from tests.team.ledgers import team_totals
from tests.team.pgcluster import Cluster


class Member:
    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        root.mkdir()
        self.env = {**os.environ, "STRATAVORE_HOME": str(root), "PYTHONPATH": str(REPO)}
        self.daemon = Daemon(root, ["--sweep-interval", "0.5"], self.env).start()
        self.sent = 0

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "supervisor.cli", "team", *args], input=stdin,
            env=self.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def use(self, n: int) -> None:
        """``n`` responses reported to the supervisor over its API."""
        records = [
            {"model": "claude-sonnet-4-5-20250929", "input_tokens": 100 + i, "output_tokens": 50,
             "cache_read_tokens": 1000, "agent": "claude", "ts": time.time() - 60,
             "key": f"{self.name}-{self.sent + i}"}
            for i in range(n)
        ]  # fmt: skip
        assert self.daemon.api.post("/api/v1/usage", {"records": records})["written"] == n
        self.sent += n

    def ledger(self) -> tuple[int, int]:
        """(rows, tokens) of the local ledger, read beside the running supervisor."""
        db = sqlite3.connect(f"file:{self.root / 'stratavore.db'}?mode=ro", uri=True)
        try:
            return db.execute(
                "SELECT COUNT(*), SUM(input_tokens + output_tokens + cache_creation_tokens "
                '+ cache_read_tokens) FROM "usage"'
            ).fetchone()
        finally:
            db.close()


@pytest.fixture
def members(tmp_path: Path) -> Iterator[list[Member]]:
    found: list[Member] = []
    try:
        found.append(Member(tmp_path / "laptop", "alice"))
        found.append(Member(tmp_path / "box", "bob"))
        yield found
    finally:
        for member in found:
            member.daemon.close()


def _team_matches(pg: Cluster, dbname: str, members: list[Member]) -> None:
    team = team_totals(pg, dbname)
    rows = sum(m.ledger()[0] for m in members)
    tokens = sum(m.ledger()[1] for m in members)
    assert (team["rows"], team["tokens"], team["responses"], team["day_tokens"]) == (
        rows, tokens, rows, tokens,
    )  # fmt: skip
    for member in members:
        assert team_totals(pg, dbname, member.name)["tokens"] == member.ledger()[1]


def test_two_supervisors_show_the_team_the_sum_of_their_ledgers_after_an_outage_and_a_kill(
    pg: Cluster, team_db: str, members: list[Member]
) -> None:
    dbname = team_db.rsplit("/", 1)[1]
    password = "secret-" + team_db.rsplit("/team_", 1)[1]
    for member in members:
        member.use(200)  # history from before the join
        joined = member.cli("join", team_db, "--as", member.name, stdin=password + "\n")
        assert joined.returncode == 0, joined.stderr
        member.use(100)  # written by the supervisor after the join installed the triggers
        assert member.cli("push").returncode == 0
    _team_matches(pg, dbname, members)

    pg.stop()
    try:
        for member in members:
            member.use(150)
            refused = member.cli("push")
            assert refused.returncode == 1 and "cannot be reached" in refused.stderr
    finally:
        pg.start()
    laptop = members[0]
    laptop.use(70)
    laptop.daemon.kill()  # kill -9 of the supervisor, its rows written and queued
    laptop.daemon.start()
    laptop.use(30)
    for member in members:
        pushed = member.cli("push")
        assert pushed.returncode == 0, pushed.stderr
    _team_matches(pg, dbname, members)
    assert sum(m.ledger()[0] for m in members) == 2 * 450 + 100
