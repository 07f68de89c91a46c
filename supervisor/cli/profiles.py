"""``stratavore profiles`` (what can be launched) and ``sessions`` (the agents' sessions a
runner can resume)."""

from __future__ import annotations

import argparse
import shlex

from supervisor.cli.args import Arguments, Command, add_json
from supervisor.cli.output import ExitStatus, Json, print_json, render_table, yes_no
from supervisor.cli.remote import connect


def cmd_sessions(args: argparse.Namespace) -> int:
    found = connect(args).get("/api/v1/sessions", project=args.project, limit=args.limit)
    if args.json:
        print_json(found)
    elif not found:
        print("no agent sessions in the usage ledger yet")
    else:
        rows = [
            [
                s["last_activity"][:16].replace("T", " ") if s["last_activity"] else "-",
                s["agent"],
                s["project"] or "-",
                s["runner_id"] or "-",
                f"{s['tokens']:,}",
                f"{s['cost_usd']:.2f}",
                "yes" if s["resumable"] else f"no: {s['why_not']}",
                s["session_id"],
            ]
            for s in found
        ]
        headers = ["LAST (UTC)", "AGENT", "PROJECT", "RUNNER", "TOKENS", "USD", "RESUME", "SESSION"]
        print(render_table(headers, rows, right={"RUNNER", "TOKENS", "USD"}, fit={"RESUME"}))
    return ExitStatus.OK


def sessions_arguments(p: argparse.ArgumentParser) -> None:
    add_json(p)
    p.add_argument("--project", metavar="NAME", help="only this project's")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50)")


def cmd_profiles(args: argparse.Namespace) -> int:
    profiles = connect(args).get("/api/v1/profiles")
    if args.json:
        print_json(profiles)
    else:
        rows = [
            [
                p["name"],
                " or ".join(p["binaries"]) or shlex.join(p["command"]),
                profile_modes(p),
                "hooks" if p["hooks"] else ("heuristic" if p["agent"] else "-"),
                p["account"] or ("default" if p["agent"] in ("claude", "codex") else "-"),
                yes_no(p["builtin"]),
            ]
            for p in profiles
        ]
        headers = ["NAME", "PROGRAM", "MODES", "ATTENTION", "ACCOUNT", "BUILTIN"]
        print(render_table(headers, rows, fit={"PROGRAM", "ACCOUNT"}))
    return ExitStatus.OK


def profile_modes(profile: Json) -> str:
    """``interactive batch resume``: what a profile can do."""
    modes = {
        "interactive": True,
        "batch": profile["batch"],
        "resume": profile["resume"] or profile["resume_batch"],
    }
    return " ".join(mode for mode, there in modes.items() if there)


COMMANDS: dict[str, tuple[Command, Arguments]] = {
    "sessions": (cmd_sessions, sessions_arguments),
    "profiles": (cmd_profiles, add_json),
}
