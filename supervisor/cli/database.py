"""The data dir's database for the commands that open it themselves, with no supervisor in
between: the usage reports, budgets while no supervisor runs, and backups."""

from __future__ import annotations

import sqlite3
import sys
from typing import TYPE_CHECKING

from supervisor.core.errors import KnownError

if TYPE_CHECKING:
    from supervisor.core.settings import Settings


def open_ledger() -> Settings:
    """Open the data dir's DB for this process; the saved settings."""
    from supervisor.core import paths
    from supervisor.core.settings import load_settings
    from supervisor.storage.db import SchemaTooNew, init_db

    try:
        init_db(paths.db_path(paths.data_dir()))
    except SchemaTooNew as exc:
        raise KnownError(str(exc)) from None
    return load_settings()


def damaged_database(exc: Exception) -> str:
    """One sentence for a database found damaged by a command that reads it directly (usage,
    budgets; the supervisor checks every page at start, these commands only its header)."""
    kinds = tuple(m.DatabaseError for m in (sqlite3, sys.modules.get("peewee")) if m)
    if not isinstance(exc, kinds) or not any(
        words in str(exc) for words in ("malformed", "not a database")
    ):
        return ""
    from supervisor.core import paths
    from supervisor.storage import backups

    root = paths.data_dir()
    return f"The database {paths.db_path(root)} is damaged ({exc}): {backups.way_back(root)}."
