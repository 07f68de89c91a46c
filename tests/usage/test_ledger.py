"""The usage ledger: imports (dedupe, incremental, attribution) and the reports over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from supervisor.core.errors import ApiError
from supervisor.storage.models import DB, Project, Runner, Usage, UsageBucket, UsageFile
from supervisor.storage.queries import rebuild_buckets
from supervisor.usage import importer, periods, reports
from supervisor.usage.importer import run_import
from supervisor.usage.ledger import Attribution, Ledger
from supervisor.usage.pricing import PriceTable
from supervisor.usage.records import UsageRow
from tests.usage_data import SONNET, claude_line, utc, write_transcript

PRICES = PriceTable.bundled()


def do_import(agent_logs: dict[str, Path]) -> Any:
    env = {
        "CLAUDE_CONFIG_DIR": str(agent_logs["claude"]),
        "CODEX_HOME": str(agent_logs["codex"]),
        "GEMINI_CLI_HOME": str(agent_logs["gemini"]),
    }
    return run_import(PRICES, env=env)


def daily(zone: str = "UTC", **fields: Any) -> dict[str, Any]:
    query = reports.Query(zone=periods.resolve_zone(zone), **fields)
    return reports.report("daily", query, now=utc("2026-11-21 12:00"))


def add_rows(*rows: tuple[str, int], agent: str = "claude", **fields: Any) -> None:
    """Ledger rows of ``tokens`` output each at the given UTC times."""
    ledger = Ledger(PRICES, Attribution.load())
    with DB.atomic():
        result = ledger.write([
            UsageRow(
                ts=utc(when), agent=agent, model=SONNET, input_tokens=0, output_tokens=tokens,
                cache_creation_tokens=0, cache_read_tokens=0, key=f"{agent}:{when}:{tokens}",
                source="test", **fields,
            )
            for when, tokens in rows
        ])  # fmt: skip
        rebuild_buckets(result.span)


# --- imports -------------------------------------------------------------------------------------
def test_streaming_snapshots_and_copies_across_roots_count_once(db, agent_logs, monkeypatch):
    second = agent_logs["claude"].parent / "claude-second"
    monkeypatch.setitem(agent_logs, "claude", Path(f"{agent_logs['claude']},{second}"))
    t = utc("2026-11-20 10:00")
    first = [
        claude_line("m1", t, output_tokens=5),  # early snapshot: partial output
        claude_line("m1", t + 1, output_tokens=300),
        claude_line("m2", t + 60, output_tokens=7, sidechain=True, cache_creation=40),
        claude_line("m2", t + 61, output_tokens=1),  # the main-chain line wins, though smaller
    ]
    write_transcript(Path(str(agent_logs["claude"]).split(",")[0]), "-work-demo", "s1", first)
    write_transcript(second, "-work-demo", "s1", [claude_line("m1", t + 1, output_tokens=300)])
    report = do_import(agent_logs)
    assert report.files == 2 and report.skipped == 0
    row = daily()["rows"][0]
    assert (row["date"], row["input_tokens"], row["output_tokens"]) == ("2026-11-20", 20, 301)
    assert row["cache_creation_tokens"] == 0 and row["models"] == [SONNET]
    assert Usage.select().count() == 2


def test_importing_again_changes_nothing_and_reads_nothing(db, agent_logs) -> None:
    t = utc("2026-11-20 10:00")
    write_transcript(
        agent_logs["claude"], "p", "s1", [claude_line(f"m{i}", t + i) for i in range(50)]
    )
    first = do_import(agent_logs)
    assert first.written == 50
    before = daily()
    again = do_import(agent_logs)
    assert (again.written, again.bytes_read, again.files_read) == (0, 0, 0)
    assert daily() == before


def lookup_indexes() -> set[str]:
    return {row[1] for row in DB.execute_sql('PRAGMA index_list("usage")').fetchall()}


def test_a_first_import_builds_the_ledgers_indexes_at_the_end(db, agent_logs) -> None:
    all_indexes = {"usage_ts", "usage_runner_id", "usage_session_id", "usage_dedupe"}
    assert lookup_indexes() == all_indexes
    t = utc("2026-11-20 10:00")
    write_transcript(agent_logs["claude"], "p", "s1", [claude_line("m1", t)])
    assert do_import(agent_logs).written == 1  # into an empty ledger: without them, then built
    assert lookup_indexes() == all_indexes
    # A first import interrupted while they were dropped: the next import builds them.
    DB.execute_sql('DROP INDEX "usage_session_id"')
    write_transcript(agent_logs["claude"], "p", "s1", [claude_line("m2", t + 5)])
    assert do_import(agent_logs).written == 1
    assert lookup_indexes() == all_indexes
    assert daily()["totals"]["output_tokens"] == 40


def test_files_read_by_worker_processes_give_what_reading_here_gives(db, agent_logs) -> None:
    t = utc("2026-11-20 10:00")
    paths = [
        write_transcript(
            agent_logs["claude"], f"p{i % 7}", f"s{i}",
            [claude_line(f"m{i}", t + i), claude_line(f"m{i}", t + i + 1, output_tokens=30)],
        )
        for i in range(600)  # more groups than the workers are given at once
    ]  # fmt: skip
    paths.append(write_transcript(agent_logs["claude"], "p0", "bad", ["{not json"]))
    tasks = [("claude", str(path), None, None) for path in paths]
    here = [importer.read_file(task) for task in tasks]
    with importer._reader(importer.PARALLEL_BYTES) as read:
        there = list(read(tasks))
    assert len(there) == len(tasks)
    for ours, theirs in zip(here, there, strict=True):
        assert [(p.rows, p.skipped, m, r, n) for p, m, r, n in ours] == [
            (p.rows, p.skipped, m, r, n) for p, m, r, n in theirs
        ]
    assert sum(len(p.rows) for chunks in there for p, *_ in chunks) == 1200


def test_a_refresh_reads_only_the_new_bytes(db, agent_logs) -> None:
    t = utc("2026-11-20 10:00")
    path = write_transcript(agent_logs["claude"], "p", "s1", [claude_line("m1", t)])
    do_import(agent_logs)
    size = path.stat().st_size
    write_transcript(agent_logs["claude"], "p", "s1", [claude_line("m2", t + 5)])
    report = do_import(agent_logs)
    assert (report.written, report.bytes_read) == (1, path.stat().st_size - size)
    assert daily()["totals"]["output_tokens"] == 40


def test_a_partial_last_line_waits_for_the_next_refresh(db, agent_logs) -> None:
    t = utc("2026-11-20 10:00")
    path = write_transcript(agent_logs["claude"], "p", "s1", [claude_line("m1", t)])
    whole = claude_line("m2", t + 1, output_tokens=99)
    with path.open("a") as handle:
        handle.write(whole[:40])  # the agent is still writing this line
    report = do_import(agent_logs)
    assert (report.written, report.skipped) == (1, 0)
    with path.open("a") as handle:
        handle.write(whole[40:] + "\n")
    assert do_import(agent_logs).written == 1
    assert daily()["totals"]["output_tokens"] == 119


def test_malformed_lines_are_counted_and_skipped_never_fatal(db, agent_logs) -> None:
    t = utc("2026-11-20 10:00")
    truncated = claude_line("m9", t)[:-30]  # cut off mid-line, then the next line began
    nulls = claude_line("m8", t).replace('"output_tokens":20', '"output_tokens":null')
    lines = [claude_line("m1", t), truncated, "{not json at all", nulls, claude_line("m2", t + 1)]
    write_transcript(agent_logs["claude"], "p", "s1", lines)
    report = do_import(agent_logs)
    assert (report.written, report.skipped) == (2, 2)
    assert "s1.jsonl at byte" in report.problems[0]


def test_a_rewritten_file_is_read_again_without_double_counting(db, agent_logs) -> None:
    t = utc("2026-11-20 10:00")
    path = write_transcript(agent_logs["claude"], "p", "s1", [claude_line("m1", t)])
    do_import(agent_logs)
    path.write_text(claude_line("m1", t) + "\n" + claude_line("m3", t + 9) + "\n")
    do_import(agent_logs)
    assert daily()["totals"]["output_tokens"] == 40
    assert UsageFile.get().records == 2


def test_usage_is_attributed_to_the_deepest_project_and_the_runner_of_the_session(
    db, agent_logs
) -> None:
    outer = Project.create(name="outer", path="/work", created_at=0)
    inner = Project.create(name="inner", path="/work/demo", created_at=0)
    runner = Runner.create(
        project=inner, command=["claude"], cwd="/work/demo", state="exited", created_at=0,
        token_hash="", session_id="s1", started_at=0, ended_at=1,
    )  # fmt: skip
    t = utc("2026-11-20 10:00")
    lines = [
        claude_line("m1", t, cwd="/work/demo/src"),
        claude_line("m2", t, session="s2", cwd="/work/other"),
    ]
    write_transcript(agent_logs["claude"], "p", "s1", lines)
    report = do_import(agent_logs)
    rows = {u.session_id: (u.project_id, u.runner_id) for u in Usage.select()}
    assert rows == {"s1": (inner.id, runner.id), "s2": (outer.id, None)}
    assert report.runner_tokens == {runner.id: 30}
    assert Runner.get_by_id(runner.id).tokens == 30
    assert daily(project="inner")["totals"]["total_tokens"] == 30


def test_a_project_created_later_claims_its_earlier_sessions(db, agent_logs) -> None:
    t = utc("2026-11-20 10:00")
    write_transcript(agent_logs["claude"], "p", "s1", [claude_line("m1", t, cwd="/srv/late")])
    do_import(agent_logs)
    Project.create(name="late", path="/srv/late", created_at=0)
    do_import(agent_logs)
    assert daily(project="late")["totals"]["total_tokens"] == 30
    assert UsageBucket.get().project_id == Project.get(name="late").id


# --- reports -----------------------------------------------------------------------------------
def test_days_follow_the_time_zone_around_midnight(db) -> None:
    add_rows(("2026-11-20 22:30", 1), ("2026-11-20 23:30", 10), ("2026-11-21 00:30", 100))
    assert [(r["date"], r["output_tokens"]) for r in daily("UTC")["rows"]] == [
        ("2026-11-20", 11), ("2026-11-21", 100)
    ]  # fmt: skip
    # Berlin is UTC+1 in November: 23:30 UTC is already the 21st there
    assert [(r["date"], r["output_tokens"]) for r in daily("Europe/Berlin")["rows"]] == [
        ("2026-11-20", 1), ("2026-11-21", 110)
    ]  # fmt: skip
    # Kathmandu is UTC+5:45: buckets of 15 minutes keep its midnight exact
    add_rows(("2026-11-21 18:14", 1000), ("2026-11-21 18:15", 10000))
    tail = daily("Asia/Kathmandu")["rows"][-2:]
    assert [(r["date"], r["output_tokens"]) for r in tail] == [
        ("2026-11-21", 1111), ("2026-11-22", 10000)
    ]  # fmt: skip


def test_days_of_23_and_25_hours_at_dst_changes(db) -> None:
    # New York: clocks spring forward on 2026-03-08 and fall back on 2026-11-01
    add_rows(
        ("2026-03-08 04:59", 1),  # 23:59 EST on the 7th
        ("2026-03-08 05:00", 10),  # 00:00 EST on the 8th
        ("2026-03-09 03:59", 100),  # 23:59 EDT on the 8th: a 23-hour day
        ("2026-11-02 04:59", 1000),  # 23:59 EST on 1 Nov: a 25-hour day began at 04:00 UTC
        ("2026-11-01 04:00", 10000),  # 00:00 EDT on 1 Nov
    )
    rows = {r["date"]: r["output_tokens"] for r in daily("America/New_York")["rows"]}
    assert rows == {"2026-03-07": 1, "2026-03-08": 110, "2026-11-01": 11000}


def test_a_skipped_midnight_starts_the_day_at_its_first_instant() -> None:
    # Sao Paulo skipped 2018-11-04 00:00-00:59: the day began at 01:00 local = 03:00 UTC
    zone = periods.resolve_zone("America/Sao_Paulo")
    assert periods.midnight(periods.day_of(utc("2018-11-04 12:00"), zone), zone) == utc(
        "2018-11-04 03:00"
    )


def test_weeks_start_on_the_configured_day_and_months_by_calendar(db) -> None:
    add_rows(
        ("2026-11-21 12:00", 1),
        ("2026-11-22 12:00", 10),
        ("2026-11-23 12:00", 100),
        ("2026-12-01 12:00", 1000),
    )  # Sat, Sun, Mon; fmt: skip
    zone = periods.resolve_zone("UTC")
    monday = reports.report("weekly", reports.Query(zone=zone), 0)["rows"]
    sunday = reports.report("weekly", reports.Query(zone=zone, week_start=6), 0)["rows"]
    assert [(r["week"], r["output_tokens"]) for r in monday] == [
        ("2026-11-16", 11), ("2026-11-23", 100), ("2026-11-30", 1000)
    ]  # fmt: skip
    assert [(r["week"], r["output_tokens"]) for r in sunday] == [
        ("2026-11-15", 1), ("2026-11-22", 110), ("2026-11-29", 1000)
    ]  # fmt: skip
    monthly = reports.report("monthly", reports.Query(zone=zone), 0)
    assert [(r["month"], r["output_tokens"]) for r in monthly["rows"]] == [
        ("2026-11", 111), ("2026-12", 1000)
    ]  # fmt: skip
    assert monthly["totals"]["output_tokens"] == 1111


def test_since_until_and_agent_filters(db) -> None:
    add_rows(("2026-11-19 12:00", 1), ("2026-11-20 12:00", 10), ("2026-11-21 12:00", 100))
    add_rows(("2026-11-20 13:00", 1000), agent="codex")
    since = reports.parse_day("2026-11-20", "--since")
    until = reports.parse_day("20261120", "--until")
    assert daily(since=since, until=until)["totals"]["output_tokens"] == 1010
    assert daily(agent="codex")["totals"]["output_tokens"] == 1000
    with pytest.raises(ApiError, match="YYYY-MM-DD, not 'yesterday'"):
        reports.parse_day("yesterday", "--since")
    with pytest.raises(ApiError, match="Project 'nope' does not exist"):
        daily(project="nope")


def test_sessions_report_where_when_and_how_much(db) -> None:
    add_rows(("2026-11-20 10:00", 1), ("2026-11-20 11:00", 10), session_id="a")
    add_rows(("2026-11-20 12:00", 100), session_id="b")
    zone = periods.resolve_zone("UTC")
    rows = reports.report("session", reports.Query(zone=zone), 0)["rows"]
    assert [(r["session_id"], r["output_tokens"], r["first_activity"]) for r in rows] == [
        ("a", 11, "2026-11-20T10:00:00+00:00"), ("b", 100, "2026-11-20T12:00:00+00:00")
    ]  # fmt: skip


def test_blocks_of_five_hours_with_burn_rate_and_projection(db) -> None:
    add_rows(("2026-11-21 10:05", 100), ("2026-11-21 12:05", 500), ("2026-11-21 16:10", 60))
    zone = periods.resolve_zone("UTC")
    now = utc("2026-11-21 16:40")
    rows = reports.report("blocks", reports.Query(zone=zone), now)["rows"]
    assert [(r["block_start"], r["output_tokens"], r["active"]) for r in rows] == [
        ("2026-11-21T10:00:00+00:00", 600, False), ("2026-11-21T16:00:00+00:00", 60, True)
    ]  # fmt: skip
    assert rows[0]["burn_rate_tokens_per_minute"] == 5.0  # 600 tokens from 10:05 to 12:05
    # the running block: 60 tokens in its first minute, 260 minutes left at that rate
    assert rows[1]["projected_total_tokens"] == 60 + 60 * 260


def test_an_unknown_report_or_zone_is_one_sentence(db) -> None:
    with pytest.raises(ApiError, match="no 'hourly' report"):
        reports.report("hourly", reports.Query(zone=periods.resolve_zone("UTC")), 0)
    with pytest.raises(ApiError, match="Unknown time zone 'Mars/Olympus'"):
        periods.resolve_zone("Mars/Olympus")


def test_daily_rows_per_project_for_stacked_charts(db) -> None:
    Project.create(name="api", path="/work/api", created_at=0)
    Project.create(name="web", path="/work/web", created_at=0)
    add_rows(("2026-11-20 10:00", 1), cwd="/work/api")
    add_rows(("2026-11-20 11:00", 10), ("2026-11-21 09:00", 100), cwd="/work/web")
    add_rows(("2026-11-21 10:00", 1000), cwd="/tmp/loose")
    zone = periods.resolve_zone("UTC")
    report = reports.report("daily", reports.Query(zone=zone), 0, by="project")
    assert [(r["date"], r["project"], r["output_tokens"]) for r in report["rows"]] == [
        ("2026-11-20", "api", 1), ("2026-11-20", "web", 10),
        ("2026-11-21", None, 1000), ("2026-11-21", "web", 100),
    ]  # fmt: skip
    assert report["totals"]["output_tokens"] == 1111
