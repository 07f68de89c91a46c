"""Storage: pragmas, versioned migrations in one transaction each, backup before migrating.

Old databases are built by the real migrations, stopped at an older schema version
(``init_db(path, schema_version=N)``), never by replacing them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import peewee as pw
import pytest

from supervisor.storage.db import SchemaTooNew, close_db, init_db
from supervisor.storage.migrations import SCHEMA_VERSION
from supervisor.storage.models import DB, MODELS, Profile, Runner, Setting, Usage

OLDER_VERSIONS = range(1, SCHEMA_VERSION)


@pytest.fixture
def db_path(tmp_path: Path):
    path = tmp_path / "stratavore.db"
    yield path
    close_db()


def _read(path: Path, sql: str) -> list[tuple]:
    """Rows of ``sql`` on the file at ``path``, through a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _backups(db_path: Path) -> list[Path]:
    folder = db_path.parent / "backups"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_fresh_db_has_schema_builtin_profiles_and_pragmas(db_path) -> None:
    db = init_db(db_path)
    assert db.execute_sql("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 5000
    names = [p.name for p in Profile.select().order_by(Profile.id)]
    assert names == ["claude", "codex", "aider", "gemini", "shell"]
    assert not (db_path.parent / "backups").exists()  # nothing to back up on a new DB


def test_reopening_does_not_migrate_or_duplicate(db_path) -> None:
    init_db(db_path)
    close_db()
    init_db(db_path)
    assert Profile.select().count() == 5
    assert _backups(db_path) == []


@pytest.mark.parametrize("old", OLDER_VERSIONS)
def test_an_old_db_is_copied_first_then_migrated_to_what_the_models_describe(
    db_path, old
) -> None:
    init_db(db_path, schema_version=old)
    DB.execute_sql("INSERT INTO setting (key, value) VALUES ('api_port', '1234')")
    close_db()

    db = init_db(db_path)
    assert db.execute_sql("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert _columns(db) == _models_columns()
    assert Setting.get_by_id("api_port").value == 1234
    assert Profile.select().count() == 5
    close_db()
    (backup,) = _backups(db_path)
    assert backup.name.endswith(f"-v{old}.db")
    assert _read(backup, "PRAGMA user_version") == [(old,)]
    assert _read(backup, "SELECT value FROM setting") == [("1234",)]


def test_a_migration_that_fails_midway_leaves_schema_and_version_as_they_were(db_path) -> None:
    # A version 4 database that already has one of the columns migration 5 adds last (by
    # hand): that migration's first statements succeed, its last one fails.
    init_db(db_path, schema_version=4)
    DB.execute_sql("ALTER TABLE runner ADD COLUMN extra_args TEXT NOT NULL DEFAULT '[]'")
    close_db()
    with pytest.raises(pw.OperationalError, match="duplicate column name: extra_args"):
        init_db(db_path)
    close_db()
    assert _read(db_path, "PRAGMA user_version") == [(4,)]
    profile_columns = {row[1] for row in _read(db_path, 'PRAGMA table_info("profile")')}
    assert "agent" not in profile_columns  # the migration's first statement, rolled back
    assert [b.name[-6:] for b in _backups(db_path)] == ["-v4.db"]


def test_db_from_a_newer_stratavore_is_refused_in_one_sentence(db_path) -> None:
    init_db(db_path)
    DB.execute_sql("PRAGMA user_version = 99")
    close_db()
    with pytest.raises(SchemaTooNew, match=r"schema version 99, newer than .* upgrade"):
        init_db(db_path)


def test_runner_needs_an_existing_project(db_path) -> None:
    init_db(db_path)
    with pytest.raises(pw.IntegrityError):
        Runner.create(
            project=999, command=["x"], cwd="/", state="queued", created_at=0, token_hash=""
        )


def _columns(db: pw.Database) -> dict[str, list[tuple[str, str, bool]]]:
    """Each table's columns, and the names of all indexes."""
    tables = [r[0] for r in db.execute_sql("SELECT name FROM sqlite_master WHERE type='table'")]
    schema = {
        t: sorted((c[1], c[2], bool(c[3])) for c in db.execute_sql(f'PRAGMA table_info("{t}")'))
        for t in tables
    }
    indexes = db.execute_sql("SELECT name, '', 0 FROM sqlite_master WHERE type='index'")
    schema["indexes"] = sorted(indexes)
    return schema


def _models_columns() -> dict[str, list[tuple[str, str, bool]]]:
    """What the models describe, as :func:`_columns` sees it (built in memory; ``DB`` is
    bound to the open database again afterwards)."""
    bound = DB.obj
    scratch = pw.SqliteDatabase(":memory:")
    DB.initialize(scratch)
    try:
        scratch.create_tables(MODELS)
        return _columns(scratch)
    finally:
        scratch.close()
        DB.initialize(bound)


def test_frozen_migrations_build_exactly_what_the_models_describe(db_path) -> None:
    assert _columns(init_db(db_path)) == _models_columns()


def test_a_version_1_db_is_upgraded_keeping_its_runners(db_path) -> None:
    db = init_db(db_path, schema_version=1)
    assert Profile.select().count() == 0  # built-ins come with the newest schema only
    db.execute_sql("INSERT INTO project (name, path, archived, created_at) VALUES ('p', '/', 0, 0)")
    db.execute_sql(
        "INSERT INTO runner (project_id, command, cwd, env, state, supervised, restart, "
        "expected_exit_codes, start_secs, max_retries, backoff_initial, backoff_max, "
        "early_exits, restarts, stop_force, created_at, unresponsive, token_hash, log_offset) "
        "VALUES (1, '[\"x\"]', '/', '{}', 'exited', 1, 'never', '[0]', 1, 3, 1, 60, 0, 0, 0, "
        "0, 0, '', 0)"
    )
    close_db()
    init_db(db_path)
    runner = Runner.get_by_id(1)
    assert (runner.state, runner.session_id) == ("exited", None)
    assert Usage.select().count() == 0
    assert [b.name[-6:] for b in _backups(db_path)] == ["-v1.db"]


def test_a_schema_version_out_of_range_is_refused(db_path) -> None:
    with pytest.raises(ValueError, match=f"not from 0 to {SCHEMA_VERSION}"):
        init_db(db_path, schema_version=SCHEMA_VERSION + 1)
    assert not db_path.exists()
