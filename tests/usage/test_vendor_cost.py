"""Both cost modes end to end: what the Claude parser keeps for vendor pricing, two costs per
ledger row, reports in either mode (library, CLI and HTTP API), and the migration that reprices
an older ledger once."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import peewee as pw
import pytest

from supervisor.storage.db import close_db, init_db
from supervisor.storage.models import Setting, Usage, UsageBucket
from supervisor.usage import periods, reports
from supervisor.usage.claude import parse as parse_claude
from supervisor.usage.importer import run_import
from supervisor.usage.pricing import PriceTable
from tests.cli.test_e2e import Cli
from tests.conftest import Daemon
from tests.usage_data import SONNET, claude_line, utc, write_transcript

PRICES = PriceTable.bundled()
M = 1_000_000
T = utc("2026-11-20 10:00")


def long_context_line(message_id: str, ts: float, **extra: Any) -> str:
    """A Sonnet 4.5 response with 150k cache reads + 50,001 input: above 200k as a request,
    below it per token kind."""
    return claude_line(
        message_id, ts, input_tokens=50_001, output_tokens=2000, cache_read=150_000, **extra
    )


VENDOR = (50_001 * 6 + 2000 * 22.5 + 150_000 * 0.6) / M  # every token at the long rates
CCUSAGE = (50_001 * 3 + 2000 * 15 + 150_000 * 0.3) / M  # no kind above 200k: base rates


def daily(mode: str) -> dict[str, Any]:
    query = reports.Query(zone=periods.resolve_zone("UTC"), mode=mode)
    return reports.report("daily", query, now=T)


def with_usage(line: str, usage: str) -> str:
    """``line`` with ``usage`` (raw JSON members) added to its ``message.usage``."""
    return line.replace('"cache_read_input_tokens":', f'{usage},"cache_read_input_tokens":', 1)


# --- what the parser keeps ----------------------------------------------------------------------
def test_claude_web_searches_are_kept_and_odd_shapes_never_refuse_a_line() -> None:
    searched = with_usage(
        claude_line("m1", T), '"server_tool_use":{"web_search_requests":3,"web_fetch_requests":1}'
    )
    none = with_usage(
        claude_line("m2", T), '"server_tool_use":{"web_search_requests":0,"web_fetch_requests":2}'
    )
    odd = [
        with_usage(claude_line("m3", T), '"server_tool_use":null'),
        with_usage(claude_line("m4", T), '"server_tool_use":"many"'),
        with_usage(claude_line("m5", T), '"server_tool_use":{"web_search_requests":-2}'),
        with_usage(claude_line("m6", T), '"server_tool_use":{"web_search_requests":1.5}'),
    ]
    data = "".join(line + "\n" for line in (searched, none, *odd)).encode()
    parsed = parse_claude(data, 0, "/x/s.jsonl", {})
    assert parsed.skipped == 0
    assert [row.web_search_requests for row in parsed.rows] == [3, 0, 0, 0, 0, 0]


# --- two costs per row, reports pick one --------------------------------------------------------
def test_rows_carry_both_costs_and_reports_show_the_one_asked_for(db, agent_logs) -> None:
    search = '"server_tool_use":{"web_search_requests":2}'
    lines = [long_context_line("m1", T), with_usage(claude_line("m2", T + 60), search)]
    write_transcript(agent_logs["claude"], "p", "s1", lines)
    run_import(PRICES, env=os.environ)
    small = (10 * 3 + 20 * 15) / M
    first, second = Usage.select().order_by(Usage.ts)
    assert (first.cost_usd, first.ccusage_cost_usd) == pytest.approx((VENDOR, CCUSAGE), 1e-12)
    assert (second.cost_usd, second.ccusage_cost_usd) == pytest.approx((small + 0.02, small))
    assert second.web_search_requests == 2
    assert daily("vendor")["totals"]["cost_usd"] == pytest.approx(VENDOR + small + 0.02, 1e-6)
    assert daily("ccusage")["totals"]["cost_usd"] == pytest.approx(CCUSAGE + small, 1e-6)
    for kind in ("session", "blocks"):
        query = reports.Query(zone=periods.resolve_zone("UTC"), mode="ccusage")
        got = reports.report(kind, query, now=T)["totals"]["cost_usd"]
        assert got == pytest.approx(CCUSAGE + small, rel=1e-6), kind
    assert daily("vendor")["totals"]["total_tokens"] == daily("ccusage")["totals"]["total_tokens"]


def version_5_db(path: Path) -> pw.SqliteDatabase:
    """A database as Stratavore left it at schema version 5 (its own first five migrations)."""
    return init_db(path, schema_version=5)


def test_a_version_5_ledger_keeps_its_figures_as_ccusage_and_is_repriced_once(
    tmp_path, agent_logs
) -> None:
    path = tmp_path / "stratavore.db"
    old = version_5_db(path)
    old.execute_sql(
        'INSERT INTO "usage" (ts, agent, model, input_tokens, output_tokens, '
        "cache_creation_tokens, cache_creation_1h_tokens, cache_read_tokens, cost_usd, "
        "dedupe, rank) VALUES (?, 'claude', ?, 50001, 2000, 0, 0, 150000, ?, 7, 1)",
        (T, SONNET, CCUSAGE),
    )
    old.execute_sql(
        'INSERT INTO "usage_bucket" (start, agent, model, project_id, input_tokens, '
        "output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, responses) "
        "VALUES (?, 'claude', ?, 0, 50001, 2000, 0, 150000, ?, 1)",
        (T // 900 * 900, SONNET, CCUSAGE),
    )
    old.execute_sql("INSERT INTO setting (key, value) VALUES ('cost_mode', '\"auto\"')")
    close_db()
    init_db(path)
    try:
        (row,) = Usage.select()
        assert (row.cost_usd, row.ccusage_cost_usd) == (CCUSAGE, CCUSAGE)
        assert Setting.get_or_none(Setting.key == "cost_mode") is None  # vendor, the default
        assert Setting.get(Setting.key == "usage.reprice").value is True
        run_import(PRICES, env=os.environ)
        (row,) = Usage.select()
        assert (row.cost_usd, row.ccusage_cost_usd) == pytest.approx((VENDOR, CCUSAGE), 1e-12)
        (bucket,) = UsageBucket.select()
        assert (bucket.cost_usd, bucket.ccusage_cost_usd) == pytest.approx((VENDOR, CCUSAGE))
        assert Setting.get_or_none(Setting.key == "usage.reprice") is None
    finally:
        close_db()


# --- the CLI and the API ------------------------------------------------------------------------
def test_usage_mode_flag_chooses_the_costs(home, agent_logs) -> None:
    write_transcript(agent_logs["claude"], "p", "s1", [long_context_line("m1", T)])
    cli = Cli(home)
    cli.ok("usage", "import")
    costs = {
        mode: cli.json("usage", "daily", "--timezone", "UTC", "--mode", mode)["totals"]["cost_usd"]
        for mode in ("vendor", "ccusage")
    }
    assert costs == pytest.approx({"vendor": VENDOR, "ccusage": CCUSAGE}, rel=1e-6)
    default = cli.json("usage", "daily", "--timezone", "UTC")["totals"]["cost_usd"]
    assert default == pytest.approx(VENDOR, rel=1e-6)
    assert cli.fails("usage", "daily", "--mode", "auto", status=2) == (
        "stratavore: --mode is one of vendor, ccusage, not 'auto'."
    )


def test_the_setting_chooses_reports_costs_and_budgets_stay_in_vendor_dollars(
    daemon_factory, agent_logs, home
) -> None:
    now = time.time()
    write_transcript(agent_logs["claude"], "p", "s1", [long_context_line("m1", now - 60)])
    daemon: Daemon = daemon_factory()
    daemon.api.post("/api/v1/usage/import")
    got = {
        mode: daemon.api.get("/api/v1/usage/daily", mode=mode)["totals"]["cost_usd"]
        for mode in ("vendor", "ccusage")
    }
    assert got == pytest.approx({"vendor": VENDOR, "ccusage": CCUSAGE}, rel=1e-6)
    assert daemon.api.get("/api/v1/usage/daily")["totals"]["cost_usd"] == pytest.approx(VENDOR)
    cli = Cli(home)
    cli.ok("set", "cost_mode", "ccusage")
    assert daemon.api.get("/api/v1/usage/daily")["totals"]["cost_usd"] == pytest.approx(CCUSAGE)
    cost = cli.json("usage", "daily", "--timezone", "UTC")["totals"]["cost_usd"]  # no daemon needed
    assert cost == pytest.approx(CCUSAGE, rel=1e-6)
    cli.ok("budget", "set", "global", "--period", "daily", "--usd", "10")
    [budget] = cli.json("budgets")
    assert budget["used_usd"] == pytest.approx(VENDOR, rel=1e-6)
