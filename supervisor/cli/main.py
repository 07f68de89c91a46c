"""The ``stratavore`` command line: a thin client of the supervisor's loopback HTTP API.

:func:`main` parses the arguments, runs one command and turns every failure into one line on
stderr (``stratavore: <message>``) and an exit status (:mod:`supervisor.cli.output`); the
command functions do no error handling of their own.

Each command lives in a module of this package that adds its arguments and runs it; this one
knows only the table :data:`COMMANDS` of names, modules and summaries (pip's
``commands_dict``). ``stratavore --help`` lists every command from that table, and a command
imports its own module and no other's, so a start pays only for the command it runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from supervisor import __version__
from supervisor.cli.args import DEFAULT_TIMEOUT_S, Parser, common_options, positive
from supervisor.cli.output import ExitStatus, failed

# name -> (module of supervisor.cli that runs it, summary), in the order of `--help`
COMMANDS: dict[str, tuple[str, str]] = {
    "daemon": ("daemon", "run the supervisor in the foreground"),
    "new": ("projects", "create a project for a folder"),
    "projects": ("projects", "list projects"),
    "archive": ("projects", "archive a project"),
    "launch": ("runners", "launch a runner: a profile and/or a command after --"),
    "runners": ("runners", "list runners"),
    "kill": ("runners", "stop runners and their process trees"),
    "restart": ("runners", "restart a runner"),
    "resume": ("runners", "continue a runner's own agent session (--resume <its id>)"),
    "sessions": ("profiles", "agent sessions: last activity, tokens, resumable"),
    "logs": ("runners", "print a runner's log"),
    "diff": ("worktrees", "a worktree runner's changes against the branch it started from"),
    "merge": ("worktrees", "merge a worktree runner's branch into its base branch"),
    "discard": ("worktrees", "remove a finished runner's worktree and delete its branch"),
    "profiles": ("profiles", "list profiles"),
    "status": ("runners", "show the supervisor's status"),
    "watch": ("runners", "live view of the active runners"),
    "settings": ("settings", "list the supervisor's settings"),
    "set": ("settings", "change a setting, or a project's own cap with --project"),
    "events": ("events", "list events; dead letters; retry one"),
    "notify": ("events", "notification channels: list, add, rm, test"),
    "usage": ("usage", "token usage and cost from the agents' own logs"),
    "budget": ("budgets", "set or remove a budget"),
    "budgets": ("budgets", "list budgets: used, limit, reset, projected exhaustion"),
    "limits": ("limits", "the plans' own limits: 5-hour and 7-day use, per account"),
    "backup": ("backups", "back the database up into the data dir's backups/ now"),
    "restore": ("backups", "list the backups, or put one back in place of the database"),
    "team": ("team", "a team's shared ledger on PostgreSQL, team budgets"),
}


def add_command(name: str, p: argparse.ArgumentParser) -> None:
    """Give the command's parser ``p`` its arguments and the function that runs it, from the
    command's module (imported now)."""
    module = importlib.import_module(f"supervisor.cli.{COMMANDS[name][0]}")
    run_command, arguments = module.COMMANDS[name]
    arguments(p)
    p.set_defaults(func=run_command)


class Commands(argparse._SubParsersAction):  # the class add_subparsers() takes as its action
    """The commands, each one's parser filled in only when argparse has chosen it: the others
    stay a name and a summary, which is all that ``stratavore --help`` lists. A command with
    commands of its own (``team``) subclasses it with its own :meth:`fill`."""

    def fill(self, name: str, p: argparse.ArgumentParser) -> None:
        add_command(name, p)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if values and values[0] in self.choices:
            self.fill(values[0], self.choices[values[0]])
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = Parser(
        prog="stratavore",
        allow_abbrev=False,
        parents=[common],
        description="Supervise AI coding agent processes: launch, watch, stop.",
        epilog="See docs/cli.md for examples and exit statuses.",
    )
    parser.add_argument("--version", action="version", version=f"stratavore {__version__}")
    sub = parser.add_subparsers(
        dest="cmd", required=True, metavar="COMMAND", parser_class=Parser, action=Commands
    )
    for name, (_module, summary) in COMMANDS.items():
        sub.add_parser(
            name, help=summary, description=summary, allow_abbrev=False, parents=[common]
        )
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; everything after the first ``--`` is launch's command, verbatim."""
    argv = list(argv)
    command: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    if command and args.cmd != "launch":
        parser.error(f"{args.cmd} takes no command after --")
    args.command = command or None
    args.timeout = getattr(args, "timeout", DEFAULT_TIMEOUT_S)  # shared action: no default
    return args


def run(args: argparse.Namespace) -> int:
    positive("--timeout", args.timeout)
    return args.func(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status, with any error reported as one line on stderr."""
    try:
        return run(parse_args(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse's --help / --version
        return ExitStatus(exc.code) if isinstance(exc.code, int) else ExitStatus.USAGE
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:  # e.g. `stratavore events | head`: the reader is gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.OK
    except Exception as exc:
        return failed(exc)


if __name__ == "__main__":
    sys.exit(main())
