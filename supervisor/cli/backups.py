"""``stratavore backup`` and ``restore``: the database's backups, made and put back on the data
dir's files (no supervisor needed; restore refuses while one runs)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.cli.args import Arguments, Command, no_arguments
from supervisor.cli.database import open_ledger
from supervisor.cli.output import ExitStatus, Progress, UsageError, human_size, render_table
from supervisor.core.errors import ApiError, ErrorCode, KnownError

if TYPE_CHECKING:
    from supervisor.storage.backups import Backup

CHECK_NOTE_BYTES = 64 * 1024 * 1024  # a backup this big gets a line before its check


def cmd_backup(args: argparse.Namespace) -> int:
    from supervisor.core import paths
    from supervisor.storage import backups

    settings = open_ledger()
    progress = Progress("backing up")
    made = backups.take(
        paths.db_path(paths.data_dir()), "manual", settings.backup_keep, progress=progress
    )
    progress.end()
    took = time.monotonic() - progress.began
    print(f"backed up the database to {made.path} ({human_size(made.size)}, {took:.1f}s)")
    return ExitStatus.OK


def cmd_restore(args: argparse.Namespace) -> int:
    from supervisor.core import paths
    from supervisor.storage import backups

    if args.list == (args.name is not None):
        raise UsageError("restore takes --list, or the NAME of a backup to put back")
    root = paths.data_dir()
    if args.list:
        found = backups.list_backups(root)[::-1]
        if not found:
            print(f"no backups in {paths.backups_dir(root)} (`stratavore backup` makes one)")
            return ExitStatus.OK
        rows = [
            [b.name, datetime.fromtimestamp(b.taken_at).strftime("%Y-%m-%d %H:%M"),
             human_size(b.size), b.kind, b.schema]
            for b in found
        ]  # fmt: skip
        print(render_table(["NAME", "TAKEN", "SIZE", "KIND", "SCHEMA"], rows, right={"SIZE"}))
        return ExitStatus.OK
    return restore(root, backups.find(root, args.name))


def restore_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME", help="the backup to put back")
    p.add_argument("--list", action="store_true", help="list the backups, newest first")


def restore(root: Path, backup: Backup) -> int:
    """Put ``backup`` back while holding the data dir's lock: no supervisor may start on a
    half-restored database, and none may be running on the one replaced."""
    from supervisor.core import paths
    from supervisor.daemon import DataDirLock
    from supervisor.storage import backups
    from supervisor.storage.migrations import SCHEMA_VERSION

    lock = DataDirLock(root)
    try:
        lock.acquire()
    except KnownError as exc:
        raise ApiError(
            ErrorCode.CONFLICT,
            f"{str(exc).rstrip('.')}; stop it first (Ctrl-C, or quit the tray app), then restore.",
        ) from None
    try:
        if backup.size > CHECK_NOTE_BYTES:
            print(f"checking {backup.name} ({human_size(backup.size)})...", file=sys.stderr)
        backups.check_backup(backup, SCHEMA_VERSION)
        db = paths.db_path(root)
        aside = backups.restore(db, backup)
    finally:
        lock.release()
    kept = f"; the database it replaced is kept as {aside}" if aside else ""
    print(f"restored {backup.name} to {db}{kept}")
    return ExitStatus.OK


COMMANDS: dict[str, tuple[Command, Arguments]] = {
    "backup": (cmd_backup, no_arguments),
    "restore": (cmd_restore, restore_arguments),
}
