"""Simulated members with real supervisors: each a data dir of its own and a ``stratavore
daemon`` on it, usage reported over its API, the ``team`` commands run beside it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Daemon
from tests.team.ledgers import earlier_today


class Member:
    def __init__(
        self,
        root: Path,
        name: str,
        settings: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """Start the member's supervisor; ``settings`` are saved through its API and it is
        started again to take them (they are read at start)."""
        self.root = root
        self.name = name
        root.mkdir()
        self.env = {**os.environ, **(env or {}), "STRATAVORE_HOME": str(root),
                    "PYTHONPATH": str(REPO)}  # fmt: skip
        self.daemon = Daemon(root, ["--sweep-interval", "0.5"], self.env).start()
        if settings:
            for key, value in settings.items():
                self.daemon.api.request("PUT", f"/api/v1/settings/{key}", body={"value": value})
            assert self.daemon.stop() == 0
            self.daemon.start()
        self.sent = 0

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """``stratavore ARGS`` on this member's data dir (``team ...`` for the team's)."""
        return subprocess.run(
            [sys.executable, "-m", "supervisor.cli", *args], input=stdin,
            env=self.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def team(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return self.cli("team", *args, stdin=stdin)

    def join(self, url: str) -> None:
        """Join the team at ``url`` (a ``team_db`` fixture's: its password follows from it)."""
        password = "secret-" + url.rsplit("/team_", 1)[1]
        joined = self.team("join", url, "--as", self.name, stdin=password + "\n")
        assert joined.returncode == 0, joined.stderr

    def use(self, n: int) -> None:
        """``n`` responses reported to the supervisor over its API."""
        records = [
            {"model": "claude-sonnet-4-5-20250929", "input_tokens": 100 + i, "output_tokens": 50,
             "cache_read_tokens": 1000, "agent": "claude", "ts": earlier_today(60),
             "key": f"{self.name}-{self.sent + i}"}
            for i in range(n)
        ]  # fmt: skip
        assert self.daemon.api.post("/api/v1/usage", {"records": records})["written"] == n
        self.sent += n

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the local store beside the running supervisor."""
        db = sqlite3.connect(f"file:{self.root / 'stratavore.db'}?mode=ro", uri=True)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def ledger(self) -> tuple[int, int]:
        """(rows, tokens) of the local ledger."""
        return self.query(
            "SELECT COUNT(*), SUM(input_tokens + output_tokens + cache_creation_tokens "
            '+ cache_read_tokens) FROM "usage"'
        )[0]


@pytest.fixture
def members(tmp_path: Path) -> Iterator[list[Member]]:
    """Two members with their supervisors: alice on her laptop, bob on a build box (stopped,
    with their runners, at teardown)."""
    found: list[Member] = []
    try:
        found.append(Member(tmp_path / "laptop", "alice"))
        found.append(Member(tmp_path / "box", "bob"))
        yield found
    finally:
        for member in found:
            member.daemon.close()
