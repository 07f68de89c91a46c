"""Usage and budgets end to end: the CLI with and without a supervisor, and enforcement on
real runners through the HTTP API."""

from __future__ import annotations

import sys
import time

from tests.cli.test_e2e import Cli
from tests.conftest import SLEEP, Daemon, api_error, wait_for
from tests.usage_data import claude_line, write_transcript


def test_usage_reports_and_budgets_work_without_a_supervisor(home, agent_logs) -> None:
    cli = Cli(home)
    now = time.time()
    lines = [claude_line(f"m{i}", now - i, output_tokens=100) for i in range(5)]  # all today
    write_transcript(agent_logs["claude"], "-work-demo", "s1", lines)
    out = cli.ok("usage", "import")
    assert out.startswith("imported 5 records from 1 of 1 files")
    report = cli.json("usage", "daily", "--timezone", "UTC")
    assert report["totals"]["output_tokens"] == 500
    assert report["totals"]["input_tokens"] == 50
    assert cli.json("usage", "import")["written"] == 0  # nothing new
    table = cli.ok("usage", "monthly")
    assert "claude-sonnet-4-5-20250929" in table and "total" in table

    out = cli.ok("budget", "set", "global", "--period", "daily", "--tokens", "1000", "--warn", "50")
    assert "global" in out and "55.0%" in out
    [budget] = cli.json("budgets")
    assert (budget["used_tokens"], budget["limit_tokens"], budget["warn"]) == (550, 1000, [50])
    assert budget["resets_at"] is not None
    assert cli.ok("budget", "rm", "global", "--period", "daily") == (
        "removed the daily budget of global\n"
    )
    assert cli.json("budgets") == []


def test_bad_usage_and_budget_input_is_one_sentence(home) -> None:
    cli = Cli(home)
    assert cli.fails("budget", "set", "team:x", "--period", "daily", "--tokens", "5", status=2) == (
        "stratavore: Budget scope 'team:x' is not one of global, project:NAME, agent:NAME or "
        "account:NAME."
    )
    assert cli.fails("budget", "set", "global", "--period", "daily", status=2) == (
        "stratavore: A budget needs a limit: give --tokens N and/or --usd X."
    )
    assert cli.fails("budget", "rm", "global", "--period", "weekly", status=4) == (
        "stratavore: There is no weekly budget for global; `stratavore budgets` lists them."
    )
    assert "--warn takes percentages" in cli.fails(
        "budget", "set", "global", "--period", "daily", "--tokens", "5", "--warn", "lots",
        status=2,
    )  # fmt: skip
    assert cli.fails("usage", "daily", "--since", "last week", status=2) == (
        "stratavore: --since takes a date as YYYY-MM-DD, not 'last week'."
    )
    assert cli.fails("usage", "daily", "--timezone", "Atlantis", status=2) == (
        "stratavore: Unknown time zone 'Atlantis'; use an IANA name such as Europe/Berlin or UTC."
    )


def test_the_supervisor_imports_at_start_and_on_demand(daemon_factory, agent_logs, home):
    now = time.time()
    write_transcript(agent_logs["claude"], "p", "s1", [claude_line("m1", now - 5)])
    daemon: Daemon = daemon_factory()
    wait_for(
        lambda: daemon.api.get("/api/v1/usage/daily")["totals"]["total_tokens"] == 30,
        10,
        what="the first import",
    )
    write_transcript(agent_logs["claude"], "p", "s1", [claude_line("m2", now - 1)])
    report = Cli(home).json("usage", "import")  # through the supervisor
    assert (report["written"], report["files_read"]) == (1, 1)
    assert daemon.api.get("/api/v1/usage/daily")["totals"]["total_tokens"] == 60


def test_a_spent_stop_budget_stops_its_projects_runners_and_refuses_launches(
    daemon, project_dir, home
) -> None:
    daemon.project("demo", project_dir)
    daemon.project("other", project_dir.parent)
    cli = Cli(home)
    cli.ok("budget", "set", "project:demo", "--period", "daily", "--tokens", "1000",
           "--action", "stop")  # fmt: skip
    runner = daemon.launch("demo", SLEEP)["id"]
    bystander = daemon.launch("other", SLEEP)["id"]
    daemon.wait_state(runner, "running")
    record = {"model": "claude-sonnet-4-5-20250929", "input_tokens": 600, "output_tokens": 500}
    assert daemon.api.post("/api/v1/usage", {"records": [record], "runner_id": runner}) == {
        "written": 1
    }
    stopped = daemon.wait_state(runner, "stopped")
    assert stopped["tokens"] == 1100
    assert daemon.runner(bystander)["state"] == "running"
    events = daemon.api.get("/api/v1/events", last=20)
    assert [e["title"] for e in events if e["type"] == "budget.spent"] == [
        "budget project:demo daily is spent"
    ]
    error = api_error(lambda: daemon.launch("demo", SLEEP))
    assert error.message.startswith(
        "budget project:demo daily is spent (1,100 / 1,000 tokens); resets at 00:00 (in "
    )
    result = cli("launch", "demo", "--", *SLEEP)
    assert result.returncode == 5 and "is spent" in result.stderr


def test_heartbeat_counters_become_ledger_rows_once(daemon, project_dir, tmp_path) -> None:
    daemon.project("demo", project_dir)
    script = tmp_path / "beats.py"
    script.write_text(
        "import os, requests, time\n"
        "url = f\"{os.environ['STRATAVORE_API']}/api/v1/runners/"
        "{os.environ['STRATAVORE_RUNNER_ID']}/heartbeat\"\n"
        "auth = {'Authorization': 'Bearer ' + os.environ['STRATAVORE_RUNNER_TOKEN']}\n"
        "for total in (100, 100, 250):\n"
        "    usage = {'model': 'my-model', 'agent': 'mine', 'output_tokens': total}\n"
        "    requests.post(url, json={'usage': usage}, headers=auth).raise_for_status()\n"
        "time.sleep(60)\n"
    )
    runner = daemon.launch("demo", [sys.executable, str(script)])["id"]
    wait_for(lambda: daemon.runner(runner)["tokens"] == 250, 10, what="heartbeat usage")
    report = daemon.api.get("/api/v1/usage/daily", agent="mine")
    assert report["totals"]["output_tokens"] == 250
    assert report["rows"][0]["models"] == ["my-model"]


def test_usage_posted_twice_with_one_key_counts_once(daemon) -> None:
    record = {"model": "gpt-5", "agent": "codex", "input_tokens": 7, "key": "resp-1"}
    assert daemon.api.post("/api/v1/usage", {"records": [record]}) == {"written": 1}
    assert daemon.api.post("/api/v1/usage", {"records": [record]}) == {"written": 0}
    assert daemon.api.get("/api/v1/usage/daily")["totals"]["input_tokens"] == 7


def test_a_model_without_a_price_is_named_once(daemon_factory, agent_logs, home) -> None:
    now = time.time()
    line = claude_line("m1", now - 9, model="claude-imaginary-9")
    write_transcript(agent_logs["claude"], "p", "s1", [line])
    daemon: Daemon = daemon_factory()
    cli = Cli(home)
    wait_for(lambda: cli.json("usage", "import") is not None, 5, what="an import")
    write_transcript(
        agent_logs["claude"], "p", "s1", [claude_line("m2", now - 1, model="claude-imaginary-9")]
    )
    assert cli.json("usage", "import")["unknown_models"] == ["claude-imaginary-9"]
    problems = [e for e in daemon.api.get("/api/v1/events", last=50)
                if e["type"] == "usage.import_problem"]  # fmt: skip
    assert [e["title"] for e in problems] == [
        "usage import: no price for claude-imaginary-9 (counted at $0)"
    ]
    assert daemon.api.get("/api/v1/usage/daily")["totals"]["cost_usd"] == 0
