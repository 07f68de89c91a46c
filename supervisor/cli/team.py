"""``stratavore team ...``: join, leave, status, push, team budgets, team usage reports.

These commands open the data dir's database directly (no supervisor needed, like ``usage``)
and talk to the team database (``supervisor/team``) themselves. ``team`` is one command of
:data:`COMMANDS`; its subcommands are the table :data:`SUBCOMMANDS`. A
:class:`~supervisor.team.server.TeamError` is one line and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from supervisor.cli.args import Arguments, Command, Parser, add_budget_options, add_json
from supervisor.cli.database import open_ledger
from supervisor.cli.main import Commands
from supervisor.cli.output import ExitStatus, UsageError, print_json, render_table


def _ask_password() -> str:
    """The team password from a hidden prompt, or the first line of stdin: never argv."""
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("team database password: ")
    else:
        password = sys.stdin.readline()
    password = password.rstrip("\n")
    if not password:
        raise UsageError("the team database wants a password: type it, or pipe it on stdin")
    return password


def _answered(args: argparse.Namespace, found: Any, empty: bool, message: str) -> bool:
    """Print ``found`` as JSON with --json, or ``message`` when there is nothing to show;
    whether that answered the command."""
    if args.json:
        print_json(found)
    elif empty:
        print(message)
    return args.json or empty


def _local(ts: float | None, zone: ZoneInfo | None = None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M")


def cmd_join(args: argparse.Namespace) -> int:
    from supervisor.team import membership, push

    open_ledger()
    member = membership.join(
        args.url, args.as_name, ask_password=_ask_password, client_cert=args.client_cert,
        client_key=args.client_key,
    )  # fmt: skip
    print(f"joined the team {args.url.split('@')[-1]} as {member.member}")
    try:
        result = push.push_now()
        print(f"pushed {result.usage:,} usage rows, {result.runners:,} runners")
    except Exception as exc:  # joined all the same: the daemon pushes later
        print(f"not pushed yet: {exc}")
    return ExitStatus.OK


def cmd_leave(args: argparse.Namespace) -> int:
    from supervisor.team import membership, push

    open_ledger()
    member = membership.leave(force=args.force, push=push.push_now)
    print(f"left the team as {member.member}; its history stays on the team database")
    return ExitStatus.OK


def cmd_status(args: argparse.Namespace) -> int:
    from supervisor.team import membership

    open_ledger()
    found = membership.status()
    joins = "in no team (`stratavore team join postgresql://HOST/DB --as NAME` joins one)"
    if _answered(args, found, not found["joined"], joins):
        return ExitStatus.OK
    last = found["last_push"] or {}
    print(f"team: {found['team']} as {found['member']} (machine {found['machine_id']})")
    print(f"pending: {found['pending']:,} rows; last push: {_local(last.get('at'))}")
    if found["last_error"]:
        error = found["last_error"]
        print(f"last error ({_local(error['at'])}): {error['message']}")
    server = found["server"]
    if not server["reachable"]:
        print(f"server: {server['error']}")
        return ExitStatus.OK
    rows = [
        [m["member"], m["hostname"], _local(m["last_push_at"]), f"{m['pushed_rows']:,}"]
        for m in server["machines"]
    ]
    print(render_table(["MEMBER", "MACHINE", "LAST PUSH", "ROWS"], rows, right={"ROWS"}))
    return ExitStatus.OK


def cmd_push(args: argparse.Namespace) -> int:
    from supervisor.team import push

    open_ledger()
    result = push.push_now()
    if args.json:
        print_json(result.as_json())
    else:
        print(
            f"pushed {result.usage:,} usage rows, {result.crossings:,} budget crossings, "
            f"{result.runners:,} runners in {result.seconds:.1f}s"
        )
    return ExitStatus.OK


def cmd_budget(args: argparse.Namespace) -> int:
    from supervisor.team import budgets, membership

    open_ledger()
    member = membership.require_membership()
    with membership.connected() as db:
        if args.action == "rm":
            budgets.remove_budget(db, args.scope, args.period)
            print(f"removed the {args.period} team budget of {args.scope}")
            return ExitStatus.OK
        try:
            warn = [float(p) for p in args.warn.split(",") if p.strip()] if args.warn else None
        except ValueError:
            raise UsageError(f"--warn takes percentages like 75,90, got {args.warn!r}") from None
        budgets.set_budget(db, args.scope, args.period, args.tokens, args.usd, warn,
                           args.budget_action, by=member.member)  # fmt: skip
    return cmd_budgets(argparse.Namespace(json=False))


def cmd_budgets(args: argparse.Namespace) -> int:
    from supervisor.team.budgets import TeamBudgets

    open_ledger()
    with TeamBudgets() as checker:
        snapshot = checker.refresh()
    if args.json:
        print_json(snapshot.as_json())
        return ExitStatus.OK
    if not snapshot.budgets:
        print("no team budgets (`stratavore team budget set team --period monthly --usd X`)")
    else:
        rows = [
            [b.scope, b.period, b.describe(), f"{b.percent:.1f}%", b.action,
             _local(b.resets_at, ZoneInfo(b.zone))]
            for b in snapshot.budgets
        ]  # fmt: skip
        headers = ["SCOPE", "PERIOD", "USED / LIMIT: WHO", "%", "ACTION", "RESETS"]
        print(render_table(headers, rows, right={"%"}, fit={"USED / LIMIT: WHO"}))
    if snapshot.stale:
        print(f"team totals as of {_local(snapshot.fetched_at)}: {snapshot.stale}")
    return ExitStatus.OK


def cmd_zone(args: argparse.Namespace) -> int:
    from supervisor.team import budgets, membership

    open_ledger()
    with membership.connected() as db:
        budgets.set_zone(db, args.zone)
    print(f"the team's days, weeks and months are now {args.zone}'s")
    return ExitStatus.OK


def cmd_usage(args: argparse.Namespace) -> int:
    from supervisor.team import membership, reports
    from supervisor.usage.reports import TOKEN_KEYS

    def day(text: str | None, option: str) -> date | None:
        try:
            return date.fromisoformat(text) if text else None
        except ValueError:
            raise UsageError(f"{option} takes a date like 2026-05-01, got {text!r}") from None

    mode = args.mode or open_ledger().cost_mode
    with membership.connected() as db:
        found = reports.report(db, args.report, args.by, day(args.since, "--since"),
                               day(args.until, "--until"), args.timezone, mode)  # fmt: skip
    if _answered(args, found, not found["rows"], "no team usage recorded yet"):
        return ExitStatus.OK
    label = reports.UNITS[args.report][1]
    rows = [
        [r[label], *([r["group"] or "-"] if args.by else []),
         *(f"{r[k]:,}" for k in (*TOKEN_KEYS, "total_tokens")), f"${r['cost_usd']:,.2f}"]
        for r in found["rows"]
    ]  # fmt: skip
    totals = found["totals"]
    rows.append(["total", *([""] if args.by else []),
                 *(f"{totals[k]:,}" for k in (*TOKEN_KEYS, "total_tokens")),
                 f"${totals['cost_usd']:,.2f}"])  # fmt: skip
    numbers = ["INPUT", "OUTPUT", "CACHE WRITE", "CACHE READ", "TOTAL", "COST"]
    headers = [label.upper(), *([args.by.upper()] if args.by else []), *numbers]
    print(render_table(headers, rows, right=set(numbers)))
    print(f"(days in {found['zone']})")
    return ExitStatus.OK


def join_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", metavar="URL", help="postgresql://[USER@]HOST[:PORT]/DB[?sslmode=...]")
    p.add_argument("--as", dest="as_name", required=True, metavar="NAME", help="your member name")
    p.add_argument("--client-cert", type=Path, metavar="FILE",
                   help="a TLS client certificate (PEM), kept in the OS keyring")  # fmt: skip
    p.add_argument("--client-key", type=Path, metavar="FILE",
                   help="its private key (PEM), kept in the OS keyring")  # fmt: skip


def leave_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="leave even with rows not pushed")


def budget_arguments(p: argparse.ArgumentParser) -> None:
    add_budget_options(p, "team, team:project:NAME or member:NAME", ("daily", "weekly", "monthly"))


def zone_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("zone", metavar="ZONE", help="an IANA name, e.g. Europe/Berlin")


def usage_arguments(p: argparse.ArgumentParser) -> None:
    add_json(p)
    p.add_argument("report", nargs="?", default="daily", choices=("daily", "weekly", "monthly"))
    p.add_argument("--by", choices=("member", "project", "model", "agent"))
    p.add_argument("--since", metavar="DATE", help="from this date (YYYY-MM-DD)")
    p.add_argument("--until", metavar="DATE", help="to this date, inclusive")
    p.add_argument("--timezone", metavar="TZ", help="IANA zone for days (default: the team's)")
    p.add_argument("--mode", choices=("vendor", "ccusage"),
                   help="costs as the vendor bills or as ccusage works them out; default: the "
                   "cost_mode setting")  # fmt: skip


# name -> (function that runs it, its arguments, summary), in the order of `team --help`
SUBCOMMANDS: dict[str, tuple[Command, Arguments, str]] = {
    "join": (cmd_join, join_arguments,
             "join a team: its PostgreSQL URL (libpq's form) and your name"),
    "leave": (cmd_leave, leave_arguments, "leave the team (pushes what is pending first)"),
    "status": (cmd_status, add_json, "membership, pending rows, the team's machines"),
    "push": (cmd_push, add_json, "push pending rows now (the supervisor does it every 30 s)"),
    "budget": (cmd_budget, budget_arguments, "set or remove a team budget"),
    "budgets": (cmd_budgets, add_json, "team budgets: who spent what, resets"),
    "zone": (cmd_zone, zone_arguments, "set the team's time zone for days, weeks and months"),
    "usage": (cmd_usage, usage_arguments, "the team's usage, summed on the server"),
}  # fmt: skip


def cmd_team(args: argparse.Namespace) -> int:
    return SUBCOMMANDS[args.team_cmd][0](args)


class Subcommands(Commands):
    """As the main parser's commands: a subcommand's arguments are added only once argparse
    has chosen it, so ``team --help`` imports nothing more (``team budget`` takes the
    arguments of ``stratavore budget``: ``args.add_budget_options``)."""

    def fill(self, name: str, p: argparse.ArgumentParser) -> None:
        SUBCOMMANDS[name][1](p)


def team_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(
        dest="team_cmd", required=True, metavar="COMMAND", parser_class=Parser, action=Subcommands
    )
    for name, (_run, _arguments, summary) in SUBCOMMANDS.items():
        sub.add_parser(name, help=summary, description=summary, allow_abbrev=False)


COMMANDS: dict[str, tuple[Command, Arguments]] = {
    "team": (cmd_team, team_arguments),
}
