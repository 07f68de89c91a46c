"""Runs in the platform's terminal: the user talks to the agent, and ``stratavore-agent``
registers the run with the supervisor and sends its heartbeats."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

# Linux terminals, in order of preference, and how each is told to run a command.
LINUX_TERMINALS: list[tuple[str, list[str]]] = [
    ("x-terminal-emulator", ["-e"]),
    ("gnome-terminal", ["--"]),
    ("konsole", ["-e"]),
    ("xfce4-terminal", ["-x"]),
    ("kitty", []),
    ("alacritty", ["-e"]),
    ("xterm", ["-e"]),
]


def agent_command(
    project: str,
    command: Sequence[str] = (),
    *,
    profile: str | None = None,
    resume: str | None = None,
    frozen: bool = getattr(sys, "frozen", False),
) -> list[str]:
    """``stratavore-agent`` for ``project``: running ``profile`` (the supervisor renders its
    command line, with the session id and Claude's hooks), continuing its session ``resume``,
    or wrapping ``command`` (with a profile: extra arguments for it). The program beside this
    one in a frozen bundle (there ``sys.executable`` is the tray app; on Windows in its
    ``bin`` folder), else this Python's module."""
    if frozen:
        folder = os.path.dirname(sys.executable)
        if os.name == "nt":
            agent = [os.path.join(folder, "bin", "stratavore-agent.exe")]
        else:
            agent = [os.path.join(folder, "stratavore-agent")]
    else:
        agent = [sys.executable, "-m", "supervisor.cli.agent"]
    argv = agent
    for flag, value in (("--profile", profile), ("--project", project), ("--resume", resume)):
        if value:
            argv += [flag, value]
    return [*argv, "--", *command] if command else argv


def terminal_argv(
    command: Sequence[str],
    cwd: str,
    platform: str = sys.platform,
    which: Callable[[str], str | None] = shutil.which,
) -> list[str]:
    """The command line that opens a terminal in ``cwd`` running ``command``; an empty
    ``command`` opens the user's shell there."""
    if platform == "win32":
        inner = subprocess.list2cmdline(command) if command else "cmd"
        if which("wt"):
            return ["wt", "-d", cwd, "cmd", "/k", inner]
        return ["cmd", "/c", "start", "Stratavore", "/d", cwd, "cmd", "/k", inner]
    if platform == "darwin":
        line = f"cd {shlex.quote(cwd)}" + (f" && {shlex.join(command)}" if command else "")
        script = f'tell application "Terminal" to do script {_applescript(line)}'
        return ["osascript", "-e", script, "-e", 'tell application "Terminal" to activate']
    for name, run_flag in LINUX_TERMINALS:
        path = which(name)
        if path:
            return [path, *run_flag, *command] if command else [path]
    raise FileNotFoundError(
        "No terminal emulator found (looked for "
        + ", ".join(name for name, _ in LINUX_TERMINALS)
        + "); install one, e.g. xterm."
    )


def _applescript(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _spawn(argv: list[str], cwd: str) -> None:
    """Start the terminal, detached from the app; a thread waits for it, so it is reaped
    when the user closes it (no zombie per terminal opened, no Popen dropped while running)."""
    terminal = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=os.name != "nt",
    )
    threading.Thread(target=terminal.wait, name="terminal-reaper", daemon=True).start()


def run_in_terminal(
    project: str,
    cwd: str,
    command: Sequence[str] = (),
    *,
    profile: str | None = None,
    resume: str | None = None,
) -> None:
    """Open a terminal in ``cwd`` running ``stratavore-agent`` (see :func:`agent_command`)."""
    _spawn(terminal_argv(agent_command(project, command, profile=profile, resume=resume), cwd), cwd)


def open_terminal(cwd: str) -> None:
    """Open a terminal (the user's shell) in ``cwd``."""
    _spawn(terminal_argv([], cwd), cwd)
