"""Finding the program a runner will run, the way the user's own shell would.

A GUI app started from a desktop session gets a minimal PATH (no ``~/.local/bin``, no nvm or
Homebrew dirs), so ``claude`` would not be found. The user's login shell is asked for its PATH
once, and that PATH is searched after the supervisor's own.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from supervisor.errors import ApiError, ErrorCode

LOGIN_SHELL_TIMEOUT = 3.0


@functools.cache
def login_shell_path() -> str:
    """The login shell's PATH, or '' when it can't be had (Windows, no $SHELL, a slow rc)."""
    shell = os.environ.get("SHELL")
    if os.name == "nt" or not shell or os.environ.get("STRATAVORE_NO_LOGIN_PATH"):
        return ""
    try:
        out = subprocess.run(
            [shell, "-l", "-c", 'printf "\\n__PATH__%s" "$PATH"'],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=LOGIN_SHELL_TIMEOUT,
            text=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    # rc files may print banners: take only what follows our marker
    _, _, path = out.rpartition("__PATH__")
    return path.strip()


def search_path(base: str | None = None) -> str:
    """The PATH runners get: the supervisor's own, then the login shell's extra entries."""
    own = (base if base is not None else os.environ.get("PATH", "")).split(os.pathsep)
    extra = [p for p in login_shell_path().split(os.pathsep) if p and p not in own]
    return os.pathsep.join([p for p in own if p] + extra)


def resolve(argv: list[str], cwd: str, path: str) -> list[str]:
    """``argv`` with its program made absolute, or ApiError naming what was searched."""
    program = argv[0]
    if os.sep in program or (os.altsep and os.altsep in program):
        candidate = Path(cwd, program).resolve() if not os.path.isabs(program) else Path(program)
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate), *argv[1:]]
        raise ApiError(
            ErrorCode.COMMAND_NOT_FOUND,
            f"command '{program}' is not an executable file (looked at {candidate}).",
        )
    found = shutil.which(program, path=path)
    if found is None:
        raise ApiError(
            ErrorCode.COMMAND_NOT_FOUND,
            f"command '{program}' not found on PATH (searched: {path or '(empty)'}).",
        )
    return [found, *argv[1:]]


def default_shell() -> str:
    """The user's shell, for the built-in ``shell`` profile's ``{shell}`` placeholder."""
    if os.name == "nt":
        return os.environ.get("COMSPEC", "cmd.exe")
    return os.environ.get("SHELL") or "/bin/sh"
