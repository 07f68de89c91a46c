"""Storage: pragmas, versioned migrations in one transaction each, backup before migrating."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import peewee as pw
import pytest

from supervisor.storage import db as opening
from supervisor.storage import store


@pytest.fixture
def db_path(tmp_path: Path):
    path = tmp_path / "stratavore.db"
    yield path
    store.close_db()


def test_fresh_db_has_schema_builtin_profiles_and_pragmas(db_path) -> None:
    db = store.init_db(db_path)
    assert db.execute_sql("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 5000
    names = [p.name for p in store.Profile.select().order_by(store.Profile.id)]
    assert names == ["claude", "codex", "aider", "gemini", "shell"]
    assert not (db_path.parent / "backups").exists()  # nothing to back up on a new DB


def test_reopening_does_not_migrate_or_duplicate(db_path) -> None:
    store.init_db(db_path)
    store.close_db()
    store.init_db(db_path)
    assert store.Profile.select().count() == 5


def _add_migration(monkeypatch, migration) -> None:
    monkeypatch.setattr(opening, "MIGRATIONS", [*opening.MIGRATIONS, migration])
    monkeypatch.setattr(opening, "SCHEMA_VERSION", len(opening.MIGRATIONS))


def test_migration_copies_the_db_first_and_runs_in_one_transaction(db_path, monkeypatch):
    store.init_db(db_path)
    store.Setting.create(key="api_port", value=1234)
    store.close_db()

    def add_column(db: pw.Database) -> None:
        db.execute_sql("ALTER TABLE project ADD COLUMN colour TEXT")

    base = opening.SCHEMA_VERSION
    _add_migration(monkeypatch, add_column)
    db = store.init_db(db_path)
    assert db.execute_sql("PRAGMA user_version").fetchone()[0] == base + 1
    backups = list((db_path.parent / "backups").iterdir())
    assert [b.name.endswith(f"-v{base}.db") for b in backups] == [True]
    copy = sqlite3.connect(backups[0])
    try:
        assert copy.execute("PRAGMA user_version").fetchone()[0] == base
        assert copy.execute("SELECT value FROM setting").fetchone()[0] == "1234"
    finally:
        copy.close()


def test_failed_migration_leaves_schema_and_version_untouched(db_path, monkeypatch):
    store.init_db(db_path)
    store.close_db()

    def half_done(db: pw.Database) -> None:
        db.execute_sql("CREATE TABLE scratch (x INTEGER)")
        raise RuntimeError("disk on fire")

    base = opening.SCHEMA_VERSION
    _add_migration(monkeypatch, half_done)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.init_db(db_path)
    store.close_db()
    check = sqlite3.connect(db_path)
    try:
        assert check.execute("PRAGMA user_version").fetchone()[0] == base
        tables = {r[0] for r in check.execute("SELECT name FROM sqlite_master")}
        assert "scratch" not in tables
    finally:
        check.close()


def test_db_from_a_newer_stratavore_is_refused_in_one_sentence(db_path) -> None:
    store.init_db(db_path)
    store.DB.execute_sql("PRAGMA user_version = 99")
    store.close_db()
    with pytest.raises(store.SchemaTooNew, match=r"schema version 99, newer than .* upgrade"):
        store.init_db(db_path)


def test_runner_needs_an_existing_project(db_path) -> None:
    store.init_db(db_path)
    with pytest.raises(pw.IntegrityError):
        store.Runner.create(
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


def test_frozen_migrations_build_exactly_what_the_models_describe(db_path) -> None:
    migrated = _columns(store.init_db(db_path))
    store.close_db()
    scratch = pw.SqliteDatabase(":memory:")
    store.DB.initialize(scratch)
    scratch.create_tables(store.MODELS)
    assert migrated == _columns(scratch)
    scratch.close()


def test_a_version_1_db_is_upgraded_keeping_its_runners(db_path, monkeypatch) -> None:
    with monkeypatch.context() as m:
        m.setattr(opening, "MIGRATIONS", opening.MIGRATIONS[:1])
        m.setattr(opening, "SCHEMA_VERSION", 1)
        db = store.init_db(db_path)
        db.execute_sql(
            "INSERT INTO project (name, path, archived, created_at) VALUES ('p', '/', 0, 0)"
        )
        db.execute_sql(
            "INSERT INTO runner (project_id, command, cwd, env, state, supervised, restart, "
            "expected_exit_codes, start_secs, max_retries, backoff_initial, backoff_max, "
            "early_exits, restarts, stop_force, created_at, unresponsive, token_hash, log_offset) "
            "VALUES (1, '[\"x\"]', '/', '{}', 'exited', 1, 'never', '[0]', 1, 3, 1, 60, 0, 0, 0, "
            "0, 0, '', 0)"
        )
        store.close_db()
    store.init_db(db_path)
    runner = store.Runner.get_by_id(1)
    assert (runner.state, runner.session_id) == ("exited", None)
    assert store.Usage.select().count() == 0
    assert [b.name[-6:] for b in (db_path.parent / "backups").iterdir()] == ["-v1.db"]
