"""``stratavore usage``: token and cost reports, read from the ledger directly (no supervisor
needed), and the import of the agents' logs into it."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from supervisor.cli.args import Arguments, Command, add_json
from supervisor.cli.database import open_ledger
from supervisor.cli.output import (
    ExitStatus,
    Progress,
    UsageError,
    human_size,
    print_json,
    render_table,
)

IMPORT_TIMEOUT_S = 900.0
LOCAL_BY = ("project", "account")  # what this machine's reports have a row per
TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")


def cmd_usage(args: argparse.Namespace) -> int:
    if args.team:
        return team_usage(args)
    if args.by not in (None, *LOCAL_BY):
        raise UsageError("--by goes with --team for member, model and agent rows; this "
                         "machine's reports take --by project or --by account")  # fmt: skip
    if args.by and args.report not in ("daily", "weekly", "monthly"):
        raise UsageError(f"--by makes daily, weekly and monthly reports, not {args.report}")
    _load_peewee_without_postgres()
    if args.report == "import":
        return usage_import(args)
    from supervisor.usage import periods, reports

    settings = open_ledger()
    query = reports.Query(
        zone=periods.resolve_zone(args.timezone or settings.timezone),
        since=reports.parse_day(args.since, "--since") if args.since else None,
        until=reports.parse_day(args.until, "--until") if args.until else None,
        project=args.project,
        agent=args.agent,
        week_start=periods.WEEKDAYS.index(settings.week_start),
        mode=reports.parse_mode(args.mode or settings.cost_mode, "--mode"),
        account=args.account,
    )
    report = reports.report(args.report, query, time.time(), args.by)
    if args.json:
        print_json(report)
        return ExitStatus.OK
    label = {"daily": "date", "weekly": "week", "monthly": "month", "session": "session_id",
             "blocks": "block_start"}[args.report]  # fmt: skip
    if not report["rows"]:
        print("no usage recorded (`stratavore usage import` reads the agents' logs)")
        return ExitStatus.OK
    group = [args.by.upper()] if args.by else []
    rows = [
        [row[label][:19], *([row[args.by] or "-"] if args.by else []),
         *(f"{row[k]:,}" for k in (*TOKEN_COLUMNS, "total_tokens")),
         f"${row['cost_usd']:,.2f}", ", ".join(row["models"])]
        for row in report["rows"]
    ]  # fmt: skip
    totals = report["totals"]
    rows.append(
        ["total", *([""] if args.by else []),
         *(f"{totals[k]:,}" for k in (*TOKEN_COLUMNS, "total_tokens")),
         f"${totals['cost_usd']:,.2f}", ""]
    )  # fmt: skip
    numbers = ["INPUT", "OUTPUT", "CACHE WRITE", "CACHE READ", "TOTAL", "COST"]
    headers = [label.upper().replace("_", " "), *group, *numbers, "MODELS"]
    print(render_table(headers, rows, right=set(numbers), fit={"MODELS"}))
    return ExitStatus.OK


def _load_peewee_without_postgres() -> None:
    """Import peewee without its Postgres driver. peewee imports psycopg whenever it is
    installed (the ``team`` extra), which costs 0.1-0.2 s, the largest part of a report's
    start-up; this machine's reports and imports only open the SQLite ledger, and the
    ``--team`` reports, which need Postgres, never come here."""
    if "peewee" in sys.modules or "psycopg" in sys.modules:
        return
    sys.modules["psycopg"] = None  # type: ignore[assignment]  # makes `import psycopg` fail
    try:
        import peewee  # noqa: F401
    finally:
        del sys.modules["psycopg"]


def team_usage(args: argparse.Namespace) -> int:
    """``usage REPORT --team``: ``team usage REPORT``, summed by the team's database."""
    if args.report not in ("daily", "weekly", "monthly"):
        raise UsageError(f"usage --team makes daily, weekly and monthly reports, not {args.report}")
    if args.project or args.agent or args.account:
        raise UsageError("--team reports take --by project or --by agent instead of a filter")
    if args.by == "account":
        raise UsageError("--team reports have no accounts; --by member, project, model or agent")
    from supervisor.cli.team import cmd_usage as run_team_usage

    return run_team_usage(args)


def usage_arguments(p: argparse.ArgumentParser) -> None:
    add_json(p)
    p.add_argument(
        "report",
        nargs="?",
        default="daily",
        choices=("daily", "weekly", "monthly", "session", "blocks", "import"),
        help="which report (default daily); import reads new log lines now",
    )
    p.add_argument("--since", metavar="DATE", help="from this local date (YYYY-MM-DD)")
    p.add_argument("--until", metavar="DATE", help="to this local date, inclusive")
    p.add_argument("--project", metavar="NAME", help="only this project's usage")
    p.add_argument("--agent", metavar="NAME", help="only this agent's (claude, codex, ...)")
    p.add_argument(
        "--account", metavar="NAME", help="only this account's (a profile's name or config dir)"
    )
    p.add_argument("--timezone", metavar="TZ", help="IANA zone for days (default: settings)")
    p.add_argument(
        "--mode",
        metavar="MODE",
        help="costs as the vendor bills (vendor) or as ccusage 20.0.24 works them out (ccusage);"
        " default: the cost_mode setting",
    )
    p.add_argument("--team", action="store_true", help="the team's usage, summed on its server")
    p.add_argument("--by", choices=("member", "project", "model", "agent", "account"),
                   help="a row per project or account; with --team: per member, project, model "
                   "or agent")  # fmt: skip


def usage_import(args: argparse.Namespace) -> int:
    """Ask the running supervisor to import; without one, import here with progress."""
    from supervisor.api.client import NotRunning  # here: the reports need no HTTP client
    from supervisor.cli.remote import connect

    try:
        client = connect(args)
        client.timeout = max(client.timeout, IMPORT_TIMEOUT_S)  # a first import reads gigabytes
        report = client.request("POST", "/api/v1/usage/import")
    except NotRunning:
        report = import_here()
    if args.json:
        print_json(report)
        return ExitStatus.OK
    print(
        f"imported {report['written']:,} records from {report['files_read']} of "
        f"{report['files']} files ({human_size(report['bytes_read'])}) in "
        f"{report['seconds']:.1f}s"
    )
    if report["skipped"]:
        print(f"skipped {report['skipped']:,} malformed lines, e.g. {report['problems'][0]}")
    if report["unknown_models"]:
        print(f"no price for {', '.join(report['unknown_models'])}: counted at $0")
    return ExitStatus.OK


def import_here() -> dict[str, Any]:
    from supervisor.usage.importer import run_import
    from supervisor.usage.pricing import PriceTable

    settings = open_ledger()
    progress = Progress("importing")
    prices = PriceTable.bundled(settings.price_overrides)
    report = run_import(prices, progress=progress).as_json()
    progress.end()
    return report


COMMANDS: dict[str, tuple[Command, Arguments]] = {"usage": (cmd_usage, usage_arguments)}
