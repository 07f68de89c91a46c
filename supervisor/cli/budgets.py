"""``stratavore budget`` and ``budgets``: limits on tokens and dollars, set and listed through
the running supervisor, or on the database directly when none runs."""

from __future__ import annotations

import argparse
import math
import time
from typing import Any
from urllib.parse import quote

from supervisor.api.client import NotRunning
from supervisor.cli.args import Arguments, Command, add_budget_options, add_json
from supervisor.cli.database import open_ledger
from supervisor.cli.output import (
    ExitStatus,
    Json,
    UsageError,
    parse_ts,
    print_json,
    render_table,
)
from supervisor.cli.remote import connect


def budget_calendar() -> Any:
    from supervisor.usage.service import calendar_of

    return calendar_of(open_ledger())


def cmd_budget(args: argparse.Namespace) -> int:
    from supervisor.usage import budgets

    if args.action == "rm":
        if args.tokens is not None or args.usd is not None or args.warn or args.budget_action:
            raise UsageError("budget rm takes only SCOPE and --period")
        try:
            scope = quote(args.scope, safe=":")  # an account's directory has slashes
            connect(args).request("DELETE", f"/api/v1/budgets/{scope}/{args.period}")
        except NotRunning:
            open_ledger()
            budgets.remove_budget(args.scope, args.period)
        print(f"removed the {args.period} budget of {args.scope}")
        return ExitStatus.OK
    warn = None
    if args.warn is not None:
        try:
            warn = [float(part) for part in args.warn.split(",") if part.strip()]
        except ValueError:
            warn = None
        if warn is None or not all(map(math.isfinite, warn)):
            raise UsageError(f"--warn takes percentages like 75,90, got {args.warn!r}")
    body = {"scope": args.scope, "period": args.period, "limit_tokens": args.tokens,
            "limit_usd": args.usd, "warn": warn, "action": args.budget_action}  # fmt: skip
    try:
        state = connect(args).request("PUT", "/api/v1/budgets", body=body)
    except NotRunning:
        from supervisor.api.schemas import BudgetSet

        checked(body, BudgetSet)  # the API's own checks, here where there is no API
        open_ledger()
        budget = budgets.set_budget(**{**body, "now": time.time()})
        state = budgets.status(budget, time.time(), budget_calendar()).as_json()
    print_budgets([state])
    return ExitStatus.OK


def budget_arguments(p: argparse.ArgumentParser) -> None:
    add_budget_options(
        p, "global, project:NAME, agent:NAME or account:NAME (a profile or config dir)",
        ("5h", "daily", "weekly", "monthly"),
    )


def checked(body: Json, struct: type) -> None:
    """Refuse ``body`` as the API would: by the request schema ``struct`` (its limits)."""
    import msgspec

    try:
        msgspec.convert(body, struct)
    except msgspec.ValidationError as exc:
        raise UsageError(f"Invalid request: {exc}.") from None


def cmd_budgets(args: argparse.Namespace) -> int:
    if args.team:  # the team's, from its database (`team budgets`)
        from supervisor.cli.team import cmd_budgets as team_budgets

        return team_budgets(args)
    try:
        states = connect(args).get("/api/v1/budgets")
    except NotRunning:  # as `budget set` does without a supervisor: the database itself
        states = budget_states_here()
    if args.json:
        print_json(states)
    elif not states:
        print("no budgets (`stratavore budget set global --period daily --tokens N` adds one)")
    else:
        print_budgets(states)
    return ExitStatus.OK


def budgets_arguments(p: argparse.ArgumentParser) -> None:
    add_json(p)
    p.add_argument("--team", action="store_true", help="the team's budgets: who spent what")


def budget_states_here() -> list[Json]:
    """Every budget's state, worked out here from the database (no supervisor runs)."""
    from supervisor.storage import queries
    from supervisor.usage import budgets

    cal = budget_calendar()
    now = time.time()
    return [budgets.status(b, now, cal).as_json() for b in queries.all_budgets()]


def print_budgets(states: list[dict[str, Any]]) -> None:
    def limit(state: dict[str, Any]) -> str:
        parts = []
        if state["limit_tokens"]:
            parts.append(f"{state['used_tokens']:,} / {state['limit_tokens']:,} tok")
        if state["limit_usd"]:
            parts.append(f"${state['used_usd']:,.2f} / ${state['limit_usd']:,.2f}")
        return ", ".join(parts)

    def local(ts: str | None) -> str:
        return parse_ts(ts).astimezone().strftime("%Y-%m-%d %H:%M") if ts else "-"

    rows = [
        # shown_scope: an account by its label (a supervisor older than accounts has none)
        [s.get("shown_scope") or s["scope"], s["period"], limit(s), f"{s['percent']:.1f}%",
         s["action"], local(s["resets_at"]), local(s["projected_exhaustion_at"])]
        for s in states
    ]  # fmt: skip
    headers = ["SCOPE", "PERIOD", "USED / LIMIT", "%", "ACTION", "RESETS", "EXHAUSTED AT"]
    print(render_table(headers, rows, right={"%"}, fit={"SCOPE"}))


COMMANDS: dict[str, tuple[Command, Arguments]] = {
    "budget": (cmd_budget, budget_arguments),
    "budgets": (cmd_budgets, budgets_arguments),
}
