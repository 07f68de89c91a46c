"""``stratavore limits``: the provider plans' own limits (Claude Code's 5-hour and 7-day
windows, Codex's), as the agents last reported them, per account; from the running
supervisor, or from the database when none runs."""

from __future__ import annotations

import argparse
import time

from supervisor.agents.accounts import shown
from supervisor.api.client import NotRunning
from supervisor.cli.args import Arguments, Command, add_json
from supervisor.cli.database import open_ledger
from supervisor.cli.output import ExitStatus, Json, parse_ts, print_json, render_table
from supervisor.cli.remote import connect


def cmd_limits(args: argparse.Namespace) -> int:
    try:
        found = connect(args).get("/api/v1/limits")
    except NotRunning:
        found = limits_here()
    if args.json:
        print_json(found)
    elif not found:
        print(
            "no plan limits known yet: Claude Code reports them to runs Stratavore launches "
            "(subscriptions only, after a session's first answer), Codex in its logs"
        )
    else:
        print_limits(found)
    return ExitStatus.OK


def limits_here() -> list[Json]:
    """The recorded limits, read here from the database (no supervisor runs)."""
    from supervisor.runners.planlimits import known_limits
    from supervisor.usage import periods

    settings = open_ledger()
    return known_limits(periods.resolve_zone(settings.timezone), time.time())


def print_limits(found: list[Json]) -> None:
    def local(ts: str | None) -> str:
        return parse_ts(ts).astimezone().strftime("%Y-%m-%d %H:%M") if ts else "-"

    rows = [
        [f["agent"], shown(f["account"]), f["label"], f"{f['used_percent']:.0f} %",
         local(f["resets_at"]), local(f["observed_at"])]
        for f in found
    ]  # fmt: skip
    headers = ["AGENT", "ACCOUNT", "WINDOW", "USED", "RESETS", "SEEN"]
    print(render_table(headers, rows, right={"USED"}, fit={"ACCOUNT"}))


COMMANDS: dict[str, tuple[Command, Arguments]] = {"limits": (cmd_limits, add_json)}
