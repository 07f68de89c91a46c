"""Storage: peewee models on one SQLite file, ordered migrations, the DB proxy.

``DB`` is a proxy bound by :func:`init_db` (tests pass a temp file). SQLite runs in WAL mode
with foreign keys on and a busy timeout, so the CLI can read while the supervisor writes.
Each migration runs inside one transaction, and the DB file is copied to ``backups/`` before
an existing database is migrated.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peewee as pw

from supervisor import paths

DB = pw.DatabaseProxy()


class JSONField(pw.TextField):
    """A JSON value stored as text."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(pw.Model):
    class Meta:
        database = DB
        legacy_table_names = False


class Project(BaseModel):
    name = pw.CharField(unique=True)
    path = pw.TextField()
    archived = pw.BooleanField(default=False)
    max_runners = pw.IntegerField(null=True)  # None: the global per-project setting
    created_at = pw.FloatField()


class Profile(BaseModel):
    """A named command template (``claude``, ``codex``, ... or the user's own)."""

    name = pw.CharField(unique=True)
    command = JSONField()
    description = pw.TextField(default="")
    restart = pw.CharField(default="never")
    expected_exit_codes = JSONField(default=[0])
    env = JSONField(default={})
    builtin = pw.BooleanField(default=False)
    created_at = pw.FloatField()


class Runner(BaseModel):
    project = pw.ForeignKeyField(Project, backref="runners", on_delete="RESTRICT")
    profile = pw.CharField(null=True)
    command = JSONField()  # argument list, never a shell string
    cwd = pw.TextField()
    env = JSONField(default={})  # extra environment from the profile / launch
    state = pw.CharField(index=True)
    reason = pw.TextField(null=True)
    supervised = pw.BooleanField(default=True)  # False: registered by stratavore-agent
    # restart policy, frozen at launch
    restart = pw.CharField(default="never")
    expected_exit_codes = JSONField(default=[0])
    start_secs = pw.FloatField(default=1.0)
    max_retries = pw.IntegerField(default=3)
    backoff_initial = pw.FloatField(default=1.0)
    backoff_max = pw.FloatField(default=60.0)
    early_exits = pw.IntegerField(default=0)  # consecutive exits inside the start window
    restarts = pw.IntegerField(default=0)
    next_start_at = pw.FloatField(null=True)  # when in backoff
    # identity of the runner's root process: (pid, create time), never a bare pid
    pid = pw.IntegerField(null=True)
    create_time = pw.FloatField(null=True)
    exit_code = pw.IntegerField(null=True)  # shell convention: 128+N when killed by signal N
    stop_requested_at = pw.FloatField(null=True)
    stop_force = pw.BooleanField(default=False)
    # times (epoch seconds, UTC)
    created_at = pw.FloatField()
    queued_at = pw.FloatField(null=True)
    started_at = pw.FloatField(null=True)
    ended_at = pw.FloatField(null=True)
    # liveness
    last_heartbeat = pw.FloatField(null=True)
    unresponsive = pw.BooleanField(default=False)
    cpu_percent = pw.FloatField(null=True)
    rss_bytes = pw.IntegerField(null=True)
    tokens = pw.IntegerField(null=True)
    token_hash = pw.CharField()  # sha256 of the runner's token; the token itself is not stored
    log_offset = pw.IntegerField(default=0)  # bytes of the output spool already pumped


class Event(BaseModel):
    """An event, written in the same transaction as the change it reports (the outbox)."""

    ts = pw.FloatField()
    type = pw.CharField(index=True)
    severity = pw.CharField(default="info")
    runner_id = pw.IntegerField(null=True, index=True)
    project = pw.CharField(null=True)
    title = pw.TextField()
    body = pw.TextField(default="")
    data = JSONField(default={})


class Setting(BaseModel):
    key = pw.CharField(primary_key=True)
    value = JSONField()


MODELS: list[type[BaseModel]] = [Project, Profile, Runner, Event, Setting]

BUILTIN_PROFILES: list[dict[str, Any]] = [
    {"name": "claude", "command": ["claude"], "description": "Claude Code"},
    {"name": "codex", "command": ["codex"], "description": "OpenAI Codex CLI"},
    {"name": "aider", "command": ["aider"], "description": "Aider"},
    {"name": "gemini", "command": ["gemini"], "description": "Gemini CLI"},
    {"name": "shell", "command": ["{shell}"], "description": "The user's login shell"},
]


def _migration_1(db: pw.Database) -> None:
    """The first schema, with the built-in profiles."""
    db.create_tables(MODELS)
    now = time.time()
    for profile in BUILTIN_PROFILES:
        Profile.create(builtin=True, created_at=now, **profile)


# Ordered; MIGRATIONS[i] takes the schema from version i to i + 1. Never edit a released one.
MIGRATIONS: list[Callable[[pw.Database], None]] = [_migration_1]
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The DB was written by a newer Stratavore."""


def init_db(path: Path) -> pw.SqliteDatabase:
    """Open (creating or migrating) the database at ``path`` and bind :data:`DB` to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists() and path.stat().st_size > 0
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
    if version < SCHEMA_VERSION and existed:
        _backup(db, path, version)
    for target in range(version, SCHEMA_VERSION):
        with db.atomic():
            MIGRATIONS[target](db)
            db.execute_sql(f"PRAGMA user_version = {target + 1}")
    return db


def _backup(db: pw.SqliteDatabase, path: Path, version: int) -> None:
    """Copy the live DB (consistently, through SQLite's backup API) before migrating it."""
    target_dir = paths.backups_dir(path.parent)
    target_dir.mkdir(exist_ok=True)
    target = target_dir / f"{path.stem}-v{version}-{time.strftime('%Y%m%d-%H%M%S')}.db"
    dest = sqlite3.connect(target)
    try:
        db.connection().backup(dest)
    finally:
        dest.close()
    shutil.copymode(path, target)


def close_db() -> None:
    if DB.obj is not None and not DB.is_closed():
        DB.close()
