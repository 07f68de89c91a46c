"""Stratavore's status-line command on its own: it never blocks or breaks Claude Code's status
line (no supervisor, a supervisor that does not answer, a user command that fails), and it
is never chained to itself."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from supervisor.agents import statusline

STATUS = {
    "model": {"display_name": "Opus 4.6"},
    "rate_limits": {"five_hour": {"used_percentage": 63, "resets_at": 1_900_000_000}},
}


def show(status: object, env: dict[str, str], cwd: Path) -> tuple[str, float]:
    """What the command prints for ``status`` on stdin, and how long it took."""
    started = time.monotonic()
    done = subprocess.run(
        statusline.command(), shell=True, input=json.dumps(status).encode(), capture_output=True,
        env={**os.environ, **env}, cwd=cwd, timeout=30, check=True,
    )  # fmt: skip
    return done.stdout.decode(), time.monotonic() - started


def test_without_a_supervisor_it_prints_its_own_line(tmp_path, agent_logs):
    assert show(STATUS, {}, tmp_path)[0].startswith("Opus 4.6 · 5h 63 % ↻ ")
    assert show("not an object", {}, tmp_path)[0] == "Stratavore\n"


def test_a_supervisor_that_does_not_answer_costs_one_short_timeout(tmp_path, agent_logs):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        env = {"STRATAVORE_API": f"http://127.0.0.1:{silent.getsockname()[1]}",
               "STRATAVORE_RUNNER_ID": "1", "STRATAVORE_RUNNER_TOKEN": "t"}  # fmt: skip
        shown, took = show(STATUS, env, tmp_path)
    assert shown.startswith("Opus 4.6 · 5h 63 %")
    assert took < statusline.POST_TIMEOUT + 5  # not Claude Code's own patience


def test_a_failing_user_command_falls_back_and_ours_is_never_chained(tmp_path, agent_logs):
    agent_logs["claude"].mkdir(parents=True)
    settings = agent_logs["claude"] / "settings.json"
    settings.write_text(json.dumps({"statusLine": {"type": "command", "command": "exit 3"}}))
    assert show(STATUS, {}, tmp_path)[0].startswith("Opus 4.6 · ")
    ours = {"statusLine": {"type": "command", "command": statusline.command()}}
    settings.write_text(json.dumps(ours))
    assert show(STATUS, {}, tmp_path)[0].startswith("Opus 4.6 · ")  # and it did not recurse
    assert statusline.is_ours(f"{sys.executable} -m supervisor.agents.statusline")
