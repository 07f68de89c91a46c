"""Usage per account: two config directories of one agent (work and personal) are read, kept
apart in reports and budgets, and summed in the totals; a v6 database keeps its rows."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from supervisor.storage.db import close_db, init_db
from supervisor.storage.models import DB
from supervisor.usage import periods, reports
from supervisor.usage.importer import run_import
from supervisor.usage.pricing import PriceTable
from tests.cli.test_e2e import Cli
from tests.usage_data import claude_line, utc, write_transcript

PRICES = PriceTable.bundled()


@pytest.fixture
def two_accounts(tmp_path: Path, agent_logs, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Claude Code's personal and work config dirs, both in ``CLAUDE_CONFIG_DIR`` (the
    personal one first: the default of runs without an account of their own)."""
    dirs = {"personal": tmp_path / "claude-personal", "work": tmp_path / "claude-work"}
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f"{dirs['personal']},{dirs['work']}")
    return dirs


def test_daily_by_account_splits_two_accounts_and_the_totals_are_their_sum(
    home, two_accounts
) -> None:
    now = time.time()
    personal_lines = [claude_line(f"p{i}", now - i, output_tokens=100) for i in range(3)]
    write_transcript(two_accounts["personal"], "-p", "s1", personal_lines)
    work_lines = [claude_line(f"w{i}", now - i, output_tokens=1000) for i in range(2)]
    write_transcript(two_accounts["work"], "-w", "s2", work_lines)
    cli = Cli(home)
    assert cli.ok("usage", "import").startswith("imported 5 records from 2 of 2 files")
    plain = cli.json("usage", "daily", "--timezone", "UTC")
    split = cli.json("usage", "daily", "--by", "account", "--timezone", "UTC")
    personal, work = (str(d.resolve()) for d in two_accounts.values())
    got = {(r["account"], r["account_dir"]): r["output_tokens"] for r in split["rows"]}
    # the personal dir is the default account of this environment: the built-in profile's
    assert got == {("claude", personal): 300, ("claude-work", work): 2000}
    assert split["totals"] == plain["totals"]
    assert plain["totals"]["output_tokens"] == 2300
    only = cli.json("usage", "daily", "--account", "claude-work", "--timezone", "UTC")
    assert only["totals"]["output_tokens"] == 2000
    by_dir = cli.json("usage", "daily", "--account", str(two_accounts["work"]))
    assert by_dir["totals"] == only["totals"]
    table = cli.ok("usage", "daily", "--by", "account")
    assert "ACCOUNT" in table and "claude-work" in table
    assert cli.fails("usage", "daily", "--account", "nobody", status=4) == (
        "stratavore: There is no account 'nobody'; give a profile's name or an account "
        "directory (known: claude, claude-work, codex)."
    )
    assert cli.fails("usage", "session", "--by", "account", status=2) == (
        "stratavore: --by makes daily, weekly and monthly reports, not session"
    )


def test_an_account_budget_counts_only_that_accounts_usage(home, two_accounts) -> None:
    now = time.time()
    write_transcript(two_accounts["work"], "-w", "s2", [claude_line("w1", now - 5)])
    write_transcript(two_accounts["personal"], "-p", "s1",
                     [claude_line("p1", now - 5, output_tokens=5000)])  # fmt: skip
    cli = Cli(home)
    cli.ok("usage", "import")
    cli.ok("budget", "set", "account:claude-work", "--period", "daily", "--tokens", "100")
    [budget] = cli.json("budgets")
    assert (budget["scope"], budget["shown_scope"], budget["used_tokens"]) == (
        f"account:{two_accounts['work'].resolve()}", "account:claude-work", 30
    )
    assert "account:claude-work" in cli.ok("budgets")
    assert cli.ok("budget", "rm", "account:claude-work", "--period", "daily").startswith("removed")
    assert cli.json("budgets") == []


def _v6_database(path: Path, file_path: str) -> None:
    """A schema-6 database with a Claude row read from ``file_path``, a Codex row reported
    over the API, a Gemini row, and their buckets."""
    init_db(path, schema_version=6)
    DB.execute_sql(
        "INSERT INTO usage_file (id, path, agent, size, mtime_ns, \"offset\", head, context, "
        "records, skipped) VALUES (1, ?, 'claude', 0, 0, 0, '', '{}', 1, 0)",
        (file_path,),
    )
    ts = utc("2026-11-20 10:00")
    for number, (agent, file_id) in enumerate((("claude", 1), ("codex", None), ("gemini", None))):
        DB.execute_sql(
            "INSERT INTO usage (ts, agent, model, input_tokens, output_tokens, "
            "cache_creation_tokens, cache_creation_1h_tokens, cache_read_tokens, cost_usd, "
            "ccusage_cost_usd, web_search_requests, file_id, dedupe, rank) "
            "VALUES (?, ?, 'm', 10, 20, 0, 0, 0, 0.5, 0.5, 0, ?, ?, 1)",
            (ts + number, agent, file_id, number),
        )
    DB.execute_sql(
        "INSERT INTO usage_bucket (start, agent, model, project_id, input_tokens, output_tokens, "
        "cache_creation_tokens, cache_read_tokens, cost_usd, ccusage_cost_usd, responses) "
        "SELECT CAST(ts / 900 AS INTEGER) * 900, agent, model, 0, SUM(input_tokens), "
        "SUM(output_tokens), 0, 0, TOTAL(cost_usd), TOTAL(ccusage_cost_usd), COUNT(*) "
        "FROM usage GROUP BY 1, 2, 3"
    )
    close_db()


def test_a_v6_database_keeps_every_row_and_they_learn_their_accounts(
    tmp_path, two_accounts, monkeypatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    work = two_accounts["work"]
    transcript = work / "projects" / "-w" / "s.jsonl"
    transcript.parent.mkdir(parents=True)
    path = tmp_path / "stratavore.db"
    _v6_database(path, str(transcript))
    before = sqlite3.connect(path).execute("SELECT id, agent, output_tokens FROM usage").fetchall()

    init_db(path)
    try:
        default = str((tmp_path / "home" / ".claude").resolve())
        codex = str((tmp_path / "home" / ".codex").resolve())
        rows = DB.execute_sql("SELECT id, agent, output_tokens, account FROM usage").fetchall()
        assert [row[:3] for row in rows] == before  # every row kept
        assert [row[3] for row in rows] == [default, codex, ""]  # the default accounts
        buckets = DB.execute_sql("SELECT agent, account FROM usage_bucket ORDER BY agent")
        assert buckets.fetchall() == [("claude", default), ("codex", codex), ("gemini", "")]

        run_import(PRICES)  # the file's rows learn the account of the dir it lies under
        accounts = DB.execute_sql("SELECT agent, account FROM usage ORDER BY id").fetchall()
        assert accounts == [("claude", str(work.resolve())), ("codex", codex), ("gemini", "")]
        query = reports.Query(zone=periods.resolve_zone("UTC"))
        split = reports.report("daily", query, 0, by="account")
        assert {row["account_dir"]: row["output_tokens"] for row in split["rows"]} == {
            str(work.resolve()): 20, codex: 20, None: 20,
        }  # fmt: skip
        assert split["totals"]["output_tokens"] == 60
    finally:
        close_db()
