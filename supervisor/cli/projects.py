"""``stratavore new``, ``projects`` and ``archive``: the projects runners are launched in."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from supervisor.cli.args import Arguments, Command, add_json
from supervisor.cli.output import ExitStatus, UsageError, print_json, render_table, yes_no
from supervisor.cli.remote import connect


def cmd_new(args: argparse.Namespace) -> int:
    if args.path == "":  # Path("") is the current folder: never take that by accident
        raise UsageError(
            "--path is empty; give the project's folder (leave --path out for the current one)"
        )
    folder = Path(os.getcwd() if args.path is None else args.path).expanduser()
    if not folder.exists():
        raise UsageError(f"folder {args.path} does not exist")
    if not folder.is_dir():
        raise UsageError(f"{args.path} is not a folder")
    body = {"name": args.name, "path": str(folder.resolve()), "max_runners": args.max_runners}
    project = connect(args).post("/api/v1/projects", body)
    print(f"created project {project['name']} at {project['path']}")
    return ExitStatus.OK


def new_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME")
    p.add_argument("--path", metavar="DIR", help="the project's folder (default: current)")
    p.add_argument("--max-runners", type=int, metavar="N", help="cap on concurrent runners")


def cmd_projects(args: argparse.Namespace) -> int:
    projects = connect(args).get("/api/v1/projects", all=1 if args.all else None)
    if args.json:
        print_json(projects)
    elif not projects:
        print("no projects" if args.all else "no projects (use --all to include archived ones)")
    else:
        rows = [
            [p["name"], p["path"], p["active_runners"], yes_no(p["archived"])] for p in projects
        ]
        print(
            render_table(
                ["NAME", "PATH", "ACTIVE", "ARCHIVED"], rows, right={"ACTIVE"}, fit={"PATH"}
            )
        )
    return ExitStatus.OK


def projects_arguments(p: argparse.ArgumentParser) -> None:
    add_json(p)
    p.add_argument("--all", action="store_true", help="include archived projects")


def cmd_archive(args: argparse.Namespace) -> int:
    project = connect(args).post(f"/api/v1/projects/{args.name}/archive")
    print(f"archived project {project['name']}")
    return ExitStatus.OK


def archive_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME")


COMMANDS: dict[str, tuple[Command, Arguments]] = {
    "new": (cmd_new, new_arguments),
    "projects": (cmd_projects, projects_arguments),
    "archive": (cmd_archive, archive_arguments),
}
