"""Argument parsing that every command shares: a parser whose errors are one line, the options
all commands take, and the checks of numbers and runner ids."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import NoReturn

from supervisor.cli.output import UsageError

# What each command module's COMMANDS table holds per command name: the function that runs it
# (returning the exit status) and the one that adds its arguments to its parser.
Command = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]
DEFAULT_TIMEOUT_S = 10.0
DAY_S = 86400.0  # the longest interval or timeout the CLI takes


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``stratavore: ...`` line like every other error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def common_options() -> Parser:
    """The options of ``stratavore`` and of every command (a parent parser): ``--timeout``
    goes before or after the command."""
    common = Parser(add_help=False)
    common.add_argument(
        "--timeout",
        type=finite("--timeout"),
        default=argparse.SUPPRESS,
        metavar="S",
        help="seconds to wait for the supervisor's answer (default 10)",
    )
    return common


def add_json(p: argparse.ArgumentParser) -> None:
    """``--json``: the listings and ``launch`` print the API's JSON instead of a table."""
    p.add_argument("--json", action="store_true", help="print the API's JSON unchanged")


def no_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of a command that takes none but the common ones."""


def runner_id(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise UsageError(f"runner id must be a number, got {value!r}")
    return int(value)


def positive(option: str, value: float | None, high: float = DAY_S) -> None:
    if value is not None and not 0 < value <= high:
        raise UsageError(
            f"{option} must be a number greater than 0 and at most {high:g}, got {value:g}"
        )


def finite(option: str) -> Callable[[str], float]:
    """An argparse type: a number, refusing NaN and the infinities (which JSON cannot carry,
    and no limit, interval or timeout means)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"{option} takes a number, got {text!r}") from None
        if not math.isfinite(value):
            raise UsageError(f"{option} takes a finite number, got {text!r}")
        return value

    return parse


def add_budget_options(p: argparse.ArgumentParser, scopes: str, periods: Sequence[str]) -> None:
    """The arguments of ``budget`` (and ``team budget``): set/rm, SCOPE, --period, limits."""
    p.add_argument("action", choices=("set", "rm"))
    p.add_argument("scope", metavar="SCOPE", help=scopes)
    p.add_argument("--period", required=True, choices=periods)
    p.add_argument("--tokens", type=int, metavar="N", help="token limit")
    p.add_argument("--usd", type=finite("--usd"), metavar="X", help="dollar limit")
    p.add_argument("--warn", metavar="PCTS", help="warn at these percentages (default 75,90)")
    p.add_argument(
        "--action",
        dest="budget_action",
        choices=("warn", "block", "stop"),
        help="at 100%%: warn, block new launches, or also stop running runners (default warn)",
    )
