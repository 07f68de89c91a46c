"""Stratavore's ``statusLine`` command for the Claude Code runs it launches.

Claude Code runs the command of its ``statusLine`` setting at each status update with JSON on
stdin (``rate_limits.five_hour`` / ``.seven_day``: ``used_percentage``, ``resets_at``, for
subscribers) and shows what it prints. This command posts the rate limits to the supervisor
as the runner (``STRATAVORE_API``, ``STRATAVORE_RUNNER_ID``/``_TOKEN``, which the runner's
environment has), then runs the user's own status line, if their settings have one, with
the same stdin and prints its output; else a short line of its own.

It never blocks or breaks the status line: the post runs beside the user's command with a
short timeout, and every failure is silent. It starts fast: the standard library and
``supervisor.agents.accounts`` only (run as ``python -m supervisor.agents.statusline``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shlex
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from supervisor.agents.accounts import account_key

MODULE = "supervisor.agents.statusline"
POST_TIMEOUT = 1.0  # seconds: a supervisor slower than this misses one update, no more
USER_TIMEOUT = 5.0  # the user's own status-line command
LABELS = {"five_hour": "5h", "seven_day": "7d"}


def command() -> str:
    """The ``statusLine`` command line that runs this module, in the shell's quoting: this
    Python with ``-m``, or in a frozen build ``stratavore-agent statusline`` beside it."""
    if getattr(sys, "frozen", False):
        agent = Path(sys.executable).with_name(
            "stratavore-agent.exe" if os.name == "nt" else "stratavore-agent"
        )
        argv = [str(agent), "statusline"]
    else:
        argv = [sys.executable, "-m", MODULE]
    return subprocess.list2cmdline(argv) if os.name == "nt" else shlex.join(argv)


def is_ours(line: str) -> bool:
    """Whether a status-line command is this one (never chained to itself)."""
    return MODULE in line or "stratavore-agent statusline" in line.replace('"', "")


def post(status: dict[str, Any], env: dict[str, str]) -> None:
    """Send the status line's rate limits to the supervisor as the runner; silent on any
    failure (no supervisor, a refused token, a timeout)."""
    url, runner, token = (env.get(k) for k in (
        "STRATAVORE_API", "STRATAVORE_RUNNER_ID", "STRATAVORE_RUNNER_TOKEN"))  # fmt: skip
    if not (url and runner and token) or not isinstance(status.get("rate_limits"), dict):
        return
    body = json.dumps(
        {"account": account_key("claude", env), "rate_limits": status["rate_limits"]}
    ).encode()
    try:
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port or 80, timeout=POST_TIMEOUT
        )
        try:
            connection.request(
                "POST",
                "/api/v1/statusline",
                body,
                {
                    "Authorization": f"Bearer {token}",
                    "X-Stratavore-Runner": runner,
                    "Content-Type": "application/json",
                },
            )
            connection.getresponse().read()
        finally:
            connection.close()
    except (OSError, ValueError, http.client.HTTPException):
        pass


def user_command(status: dict[str, Any], env: dict[str, str]) -> str | None:
    """The user's own status-line command: from the project's local settings, the project's,
    then the user's (``CLAUDE_CONFIG_DIR`` or ``~/.claude``), the first that has one; None
    when none does (or only this one)."""
    workspace = status.get("workspace")
    project = (workspace.get("project_dir") if isinstance(workspace, dict) else None) or (
        status.get("cwd") or os.getcwd()
    )
    files = (
        Path(str(project), ".claude", "settings.local.json"),
        Path(str(project), ".claude", "settings.json"),
        Path(account_key("claude", env), "settings.json"),
    )
    for path in files:
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        line = settings.get("statusLine") if isinstance(settings, dict) else None
        found = line.get("command") if isinstance(line, dict) else None
        if isinstance(found, str) and found.strip() and not is_ours(found):
            return found
    return None


def run_user(line: str, raw: bytes, status: dict[str, Any]) -> str | None:
    """The output of the user's status-line command run as Claude Code runs it (through the
    shell, the JSON on stdin); None when it fails."""
    cwd = status.get("cwd") if isinstance(status.get("cwd"), str) else None
    try:
        done = subprocess.run(
            line, shell=True, input=raw, capture_output=True, timeout=USER_TIMEOUT,
            cwd=cwd if cwd and os.path.isdir(cwd) else None, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0 and not done.stdout:
        return None
    return done.stdout.decode("utf-8", "replace")


def own_line(status: dict[str, Any]) -> str:
    """A short line of ours: the model and the plan's windows ("Opus 4.6 · 5h 63 % ↻ 23:00 ·
    7d 12 %")."""
    model = status.get("model")
    name = model.get("display_name") if isinstance(model, dict) else None
    parts = [name] if isinstance(name, str) and name else []
    limits = status.get("rate_limits")
    for key, short in LABELS.items():
        window = limits.get(key) if isinstance(limits, dict) else None
        used = window.get("used_percentage") if isinstance(window, dict) else None
        if isinstance(used, int | float) and not isinstance(used, bool):
            part = f"{short} {used:.0f} %"
            resets = window.get("resets_at") if isinstance(window, dict) else None
            if key == "five_hour" and isinstance(resets, int | float):
                with contextlib.suppress(OverflowError, OSError, ValueError):
                    part += f" ↻ {datetime.fromtimestamp(resets):%H:%M}"
            parts.append(part)
    return " · ".join(parts) or "Stratavore"


def main() -> int:
    raw = sys.stdin.buffer.read()
    try:
        status = json.loads(raw)
    except (ValueError, RecursionError):
        status = None
    if not isinstance(status, dict):
        status = {}
    env = dict(os.environ)
    sending = threading.Thread(target=post, args=(status, env), daemon=True)
    sending.start()
    line = user_command(status, env)
    output = run_user(line, raw, status) if line is not None else None
    sending.join(POST_TIMEOUT + 0.5)
    text = output if output is not None else own_line(status) + "\n"
    sys.stdout.buffer.write(text.encode("utf-8", "replace"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
