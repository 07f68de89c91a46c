"""``stratavore settings`` and ``set``: the supervisor's settings, and a project's own cap."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from supervisor.cli.args import Arguments, Command, add_json
from supervisor.cli.output import ExitStatus, UsageError, print_json, render_table
from supervisor.cli.remote import connect


def cmd_settings(args: argparse.Namespace) -> int:
    settings = connect(args).get("/api/v1/settings")
    if args.json:
        print_json(settings)
    else:
        rows = [
            [
                s["key"],
                s["value"],
                "-" if s["saved"] is None else s["saved"],
                s["default"],
                s["applies"],
            ]
            for s in settings
        ]
        print(render_table(["SETTING", "NOW", "SAVED", "DEFAULT", "APPLIES"], rows))
    return ExitStatus.OK


def cmd_set(args: argparse.Namespace) -> int:
    api = connect(args)
    if args.project:
        if args.key != "max_runners_per_project":
            raise UsageError("--project goes only with max_runners_per_project")
        cap = None if args.value == "default" else whole(args.value, "the cap")
        project = api.request(
            "PATCH", f"/api/v1/projects/{args.project}", body={"max_runners": cap}
        )
        own = project["max_runners"]
        print(f"project {project['name']}: max_runners {own if own else 'follows the setting'}")
        return ExitStatus.OK
    value = setting_value(args.key, args.value)
    setting = api.request("PUT", f"/api/v1/settings/{args.key}", body={"value": value})
    print(f"{setting['key']} = {setting['saved']} (applies {setting['applies']})")
    return ExitStatus.OK


def set_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", metavar="KEY")
    p.add_argument("value", metavar="VALUE", help="a number; with --project also 'default'")
    p.add_argument("--project", metavar="NAME", help="set this project's own runner cap")


def setting_value(key: str, text: str) -> Any:
    """``text`` as JSON (numbers, tables), or as the string it is; NaN and infinities are
    refused here (JSON cannot carry them to the API)."""

    def not_finite(_text: str) -> float:
        raise UsageError(f"Setting {key} takes a finite number, got {text!r}")

    def number(literal: str) -> float:
        value = float(literal)
        return value if math.isfinite(value) else not_finite(literal)

    try:
        return json.loads(text, parse_constant=not_finite, parse_float=number)
    except (ValueError, RecursionError):
        return text  # the API says which type the setting takes


def whole(value: str, what: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise UsageError(f"{what} must be a whole number of at least 1, got {value!r}")
    return int(value)


COMMANDS: dict[str, tuple[Command, Arguments]] = {
    "settings": (cmd_settings, add_json),
    "set": (cmd_set, set_arguments),
}
