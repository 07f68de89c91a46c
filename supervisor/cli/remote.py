"""The CLI's connection to the supervisor running for the data dir (its loopback HTTP API)."""

from __future__ import annotations

import argparse

from supervisor.api.client import ApiClient
from supervisor.cli.output import fail


def connect(args: argparse.Namespace) -> ApiClient:
    """A client of the running supervisor; NotRunning when there is none."""
    api = ApiClient.discover(timeout=args.timeout)
    api.on_wait = say_waiting
    return api


def say_waiting(message: str, seconds: float) -> None:
    """A request waits for a locked database: say so, as the command seems to hang."""
    fail(f"{message.rstrip('.')}; waiting for it (up to {seconds:g} s)...")
