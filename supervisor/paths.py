"""Where Stratavore keeps its files: one data dir, from platformdirs or ``STRATAVORE_HOME``."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "Stratavore"


def data_dir() -> Path:
    """The data dir (created if missing): ``$STRATAVORE_HOME`` or the platform's user data dir."""
    override = os.environ.get("STRATAVORE_HOME")
    path = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def db_path(root: Path) -> Path:
    return root / "stratavore.db"


def backups_dir(root: Path) -> Path:
    return root / "backups"


def runs_dir(root: Path) -> Path:
    """Per-runner folders: output spool, exit-status file and the timestamped log."""
    return root / "runs"


def worktrees_dir(root: Path) -> Path:
    """Runners' own git worktrees (opt-in), one folder each."""
    return root / "worktrees"


def logs_dir(root: Path) -> Path:
    return root / "logs"


def runtime_file(root: Path) -> Path:
    """JSON with pid, port and URL of the running supervisor; absent when none runs."""
    return root / "supervisor.json"


def lock_file(root: Path) -> Path:
    return root / "supervisor.lock"


def token_file(root: Path) -> Path:
    """The admin bearer token, mode 0600."""
    return root / "api-token"
