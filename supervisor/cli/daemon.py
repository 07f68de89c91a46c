"""``stratavore daemon``: run the supervisor in the foreground (this module imports no HTTP
client: the daemon does not need one)."""

from __future__ import annotations

import argparse

from supervisor.cli.args import Arguments, Command, finite
from supervisor.cli.output import UsageError


def cmd_daemon(args: argparse.Namespace) -> int:
    if args.port is not None and not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    from supervisor.core.settings import check_setting
    from supervisor.daemon import run_daemon  # lazily: the CLI works without the daemon deps

    for option in ("heartbeat_interval", "heartbeat_ttl", "sweep_interval"):
        if getattr(args, option) is not None:
            check_setting(option, getattr(args, option))  # the settings' own bounds

    return run_daemon(
        port=args.port,
        heartbeat_interval=args.heartbeat_interval,
        heartbeat_ttl=args.heartbeat_ttl,
        sweep_interval=args.sweep_interval,
    )


def daemon_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, help="API port on 127.0.0.1 (0: any free port)")
    for option in ("--heartbeat-interval", "--heartbeat-ttl", "--sweep-interval"):
        p.add_argument(
            option, type=finite(option), metavar="S", help="seconds (default: from settings)"
        )


COMMANDS: dict[str, tuple[Command, Arguments]] = {"daemon": (cmd_daemon, daemon_arguments)}
