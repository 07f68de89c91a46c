"""``stratavore diff``, ``merge`` and ``discard``: review a runner's own worktree (one launched
with ``--worktree``) from a terminal, through the supervisor that made it (the git work is the
supervisor's; the window offers the same three)."""

from __future__ import annotations

import argparse
import sys

from supervisor.cli.args import Arguments, Command, add_json, runner_id
from supervisor.cli.output import ExitStatus, Json, UsageError, print_json, render_table
from supervisor.cli.remote import connect

STATUS_WORDS = {"A": "added", "M": "modified", "D": "deleted", "T": "type changed"}


def cmd_diff(args: argparse.Namespace) -> int:
    rid = runner_id(args.runner)
    changes = connect(args).get(f"/api/v1/runners/{rid}/diff")
    if args.json:
        print_json(changes)
    elif args.stat:
        print(summary(changes))
        if changes["files"]:
            print(file_table(changes["files"]))
    else:
        sys.stdout.write(changes["patch"])
        if changes["truncated"]:
            print(f"(the diff was cut; `git -C {changes['path']} diff {changes['base']}` shows "
                  "all of it)", file=sys.stderr)  # fmt: skip
    return ExitStatus.OK


def summary(changes: Json) -> str:
    """One line: the branch, against what, how many commits, files and lines."""
    files = changes["files"]
    added = sum(f["added"] or 0 for f in files)
    deleted = sum(f["deleted"] or 0 for f in files)
    base = changes["base_branch"] or changes["base"][:12]
    uncommitted = ", uncommitted edits" if changes["uncommitted"] else ""
    return (
        f"runner {changes['runner_id']}: {changes['branch']} against {base}: "
        f"{changes['commits']} commit(s){uncommitted}, {len(files)} file(s), "
        f"+{added} -{deleted}"
    )


def file_table(files: list[Json]) -> str:
    rows = [
        [STATUS_WORDS.get(f["status"], f["status"]), _count(f["added"], "+"),
         _count(f["deleted"], "-"), f["path"]]
        for f in files
    ]  # fmt: skip
    return render_table(["CHANGE", "ADDED", "DELETED", "FILE"], rows, right={"ADDED", "DELETED"})


def _count(lines: int | None, sign: str) -> str:
    return "binary" if lines is None else f"{sign}{lines}"


def diff_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runner", metavar="RUNNER")
    p.add_argument("--stat", action="store_true", help="the files changed and their +/- counts")
    add_json(p)


def cmd_merge(args: argparse.Namespace) -> int:
    rid = runner_id(args.runner)
    merged = connect(args).post(f"/api/v1/runners/{rid}/merge")
    if args.json:
        print_json(merged)
    else:
        print(f"runner {rid}: {merged['message']} ({merged['base_branch']} is now "
              f"{merged['commit'][:12]})")  # fmt: skip
    return ExitStatus.OK


def merge_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runner", metavar="RUNNER")
    add_json(p)


def cmd_discard(args: argparse.Namespace) -> int:
    rid = runner_id(args.runner)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"discard removes runner {rid}'s worktree and deletes its branch; "
                "add --yes to do it without a question"
            )
        answer = input(f"remove runner {rid}'s worktree and delete its branch? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing discarded")
            return ExitStatus.OK
    discarded = connect(args).post(f"/api/v1/runners/{rid}/discard")
    print(f"runner {rid}: {discarded['message']}")
    return ExitStatus.OK


def discard_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runner", metavar="RUNNER")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask first")


COMMANDS: dict[str, tuple[Command, Arguments]] = {
    "diff": (cmd_diff, diff_arguments),
    "merge": (cmd_merge, merge_arguments),
    "discard": (cmd_discard, discard_arguments),
}
