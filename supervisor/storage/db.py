"""Opening the database: pragmas, migrations (backed up first), the built-in profiles.

``init_db`` binds :data:`supervisor.storage.models.DB` to one SQLite file, in WAL mode with
foreign keys on and a busy timeout, so the CLI can read while the supervisor writes. Each
migration runs inside one transaction, and the DB is backed up (``supervisor.storage.backups``)
before an existing database is migrated.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import peewee as pw

from supervisor.core import paths
from supervisor.storage import backups
from supervisor.storage.migrations import SCHEMA_VERSION, migrate
from supervisor.storage.models import DB, Profile

BUILTIN_PROFILES: list[dict[str, Any]] = [  # the row each built-in profile is kept equal to
    {
        "name": "claude",
        "description": "Claude Code",
        "agent": "claude",
        "binaries": ["claude"],
        # The session is chosen up front (--session-id), so usage, transcript and runner match;
        # {hooks} is Stratavore's settings file: Claude Code's hooks report to the supervisor.
        "command": ["{binary}", "--session-id", "{session_id}", "--settings", "{hooks}", "{args}"],
        "batch": [
            "{binary}", "-p", "--session-id", "{session_id}", "--settings", "{hooks}", "{args}",
            "--", "{prompt}",
        ],
        "resume": ["{binary}", "--resume", "{session_id}", "--settings", "{hooks}", "{args}"],
        "resume_batch": [
            "{binary}", "-p", "--resume", "{session_id}", "--settings", "{hooks}", "{args}",
            "--", "{prompt}",
        ],
        "setup_files": [".env", ".env.*", ".claude/settings.local.json"],
    },
    {
        "name": "codex",
        "description": "OpenAI Codex CLI",
        "agent": "codex",
        "binaries": ["codex"],
        # Codex picks its own session id: learned from its rollout file once it writes one.
        "command": ["{binary}", "{args}"],
        "batch": ["{binary}", "exec", "{args}", "--", "{prompt}"],
        "resume": ["{binary}", "resume", "{args}", "{session_id}"],
        "resume_batch": ["{binary}", "exec", "{args}", "resume", "{session_id}", "{prompt}"],
        "setup_files": [".env", ".env.*"],
    },
    {
        "name": "aider",
        "description": "Aider (no sessions to resume)",
        "agent": "aider",
        "binaries": ["aider"],
        "command": ["{binary}", "{args}"],
        "batch": ["{binary}", "--yes-always", "{args}", "--message={prompt}"],
        "setup_files": [".env", ".aider.conf.yml"],
    },
    {
        "name": "gemini",
        "description": "Gemini CLI",
        "agent": "gemini",
        "binaries": ["gemini"],
        "command": ["{binary}", "{args}"],
        "batch": ["{binary}", "{args}", "--prompt={prompt}"],
        "resume": ["{binary}", "--resume", "{session_id}", "{args}"],
        "resume_batch": ["{binary}", "--resume", "{session_id}", "{args}", "--prompt={prompt}"],
        "setup_files": [".env"],
    },
    {
        "name": "shell",
        "description": "The user's login shell",
        "agent": "shell",
        "command": ["{shell}", "{args}"],
        "batch": ["{shell}", "{shell_c}", "{prompt}"],
    },
]  # fmt: skip


class SchemaTooNew(Exception):
    """The DB was written by a newer Stratavore."""


def init_db(path: Path, schema_version: int = SCHEMA_VERSION) -> pw.SqliteDatabase:
    """Open (creating or migrating) the database at ``path`` and bind :data:`DB` to it. A file
    that is not a readable database, or one emptied in a used data dir, is refused
    (:class:`backups.DamagedDatabase`) before anything is written; the supervisor runs the
    thorough check (:func:`backups.check_db`) first.

    ``schema_version`` stops the migrations there: the file is then as an older Stratavore
    left it (tests build old databases with it); only the newest schema gets the built-in
    profiles, which follow the models."""
    if not 0 <= schema_version <= SCHEMA_VERSION:
        raise ValueError(f"schema_version {schema_version} is not from 0 to {SCHEMA_VERSION}")
    paths.private_dir(path.parent)
    backups.check_db(path, thorough=False)
    existed = path.exists() and path.stat().st_size > 0
    # 0600 before SQLite opens it: SQLite gives the WAL and its index the DB file's mode
    for private in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        paths.private_file(private, create=private == path)
    db = pw.SqliteDatabase(
        str(path),
        pragmas={
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": 5000,
            "synchronous": "normal",  # with WAL: durable across app crashes, fast commits
        },
        timeout=5,
    )
    DB.initialize(db)
    db.connect(reuse_if_open=True)
    version = db.execute_sql("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"The database {path} has schema version {version}, newer than this Stratavore "
            f"understands ({SCHEMA_VERSION}); upgrade Stratavore."
        )
    if version < schema_version and existed:
        backups.take(path, f"v{version}")
    migrate(db, version, schema_version)
    if max(version, schema_version) == SCHEMA_VERSION:
        sync_builtin_profiles()
    return db


def sync_builtin_profiles(now: float | None = None) -> int:
    """Keep the built-in profiles' rows equal to :data:`BUILTIN_PROFILES` (this version's);
    a no-op write-free check when they are. Users copy a built-in to change it. How many rows
    were written."""
    columns = [f for f in Profile._meta.sorted_field_names if f not in ("id", "created_at")]
    defaults = {name: Profile._meta.fields[name].default for name in columns}
    existing = {p.name: p for p in Profile.select().where(Profile.builtin)}
    written = 0
    for spec in BUILTIN_PROFILES:
        wanted = {
            name: spec.get(name, default() if callable(default) else default)
            for name, default in defaults.items()
        }
        wanted["builtin"] = True
        row = existing.get(spec["name"])
        if row is not None and all(getattr(row, k) == v for k, v in wanted.items()):
            continue
        with DB.atomic():
            if row is None:
                Profile.create(**wanted, created_at=time.time() if now is None else now)
            else:
                Profile.update(**wanted).where(Profile.id == row.id).execute()
        written += 1
    return written


def close_db() -> None:
    if DB.obj is not None and not DB.is_closed():
        DB.close()
