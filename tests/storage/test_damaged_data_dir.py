"""A damaged data dir is never mistaken for a new one: damaged or emptied databases are
refused at start in one sentence, backups are made and put back, and files the supervisor
owns that cannot be read are recreated. Real daemons on real files throughout."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from supervisor.cli.output import human_size
from supervisor.core import paths
from tests.cli.test_e2e import Cli, one_line_error
from tests.conftest import REPO, SLEEP, Daemon, wait_for

START_TIMEOUT = 20.0


def refused_start(home: Path) -> subprocess.CompletedProcess[str]:
    """``stratavore daemon`` on ``home``, which must exit by itself (a supervisor that starts
    instead is stopped, and the test fails)."""
    env = {**os.environ, "STRATAVORE_HOME": str(home), "PYTHONPATH": str(REPO)}
    env.pop("STRATAVORE_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor.cli", "daemon", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
        pytest.fail(f"the supervisor started on a data dir it must refuse:\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def used_data_dir(daemon_factory: Callable[..., Daemon], project_dir: Path) -> Daemon:
    """A data dir with a project and a finished runner (so ``runs/`` holds its folder),
    its supervisor stopped."""
    daemon = daemon_factory()
    daemon.project("demo", project_dir)
    rid = daemon.launch("demo", [sys.executable, "-c", "print('hi')"])["id"]
    daemon.wait_state(rid, "exited")
    assert daemon.stop() == 0
    assert any(paths.runs_dir(daemon.root).iterdir())
    return daemon


def damage_first_page(db: Path) -> None:
    with open(db, "r+b") as f:
        f.write(os.urandom(4096))


def truncate_to_half(db: Path) -> None:
    os.truncate(db, db.stat().st_size // 2)


def empty(db: Path) -> None:
    os.truncate(db, 0)


def no_wal(db: Path) -> None:
    """Fold the WAL into the main file, so damage to the file is all there is."""
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def backups(home: Path) -> list[Path]:
    """The backup files, oldest first by their names (which sort in time order)."""
    return sorted(paths.backups_dir(home).glob("stratavore-*.db"))


# --- what was seen: damaged and emptied databases ----------------------------------------
@pytest.mark.parametrize(
    ("damage", "what"),
    [(damage_first_page, "damaged"), (truncate_to_half, "damaged"),
     (empty, "empty (0 bytes)")],
    ids=["garbage-first-page", "truncated-to-half", "emptied-to-0-bytes"],
)  # fmt: skip
def test_a_damaged_or_emptied_db_is_refused_naming_the_file_and_the_way_back(
    daemon_factory, project_dir, home, damage, what
):
    """Was: "internal error: DatabaseError … (this is a bug…)" naming no file, and a 0-byte
    DB started an empty supervisor (all projects gone, runs/ left)."""
    used_data_dir(daemon_factory, project_dir)
    db = paths.db_path(home)
    no_wal(db)
    damage(db)
    size = db.stat().st_size

    result = refused_start(home)
    assert result.returncode == 1, result
    assert result.stdout == ""
    [line] = result.stderr.splitlines()  # one sentence, no traceback
    assert line.startswith(f"stratavore: The database {db} is {what}"), line
    assert "`stratavore restore --list`" in line and "`stratavore restore NAME`" in line, line
    assert "Traceback" not in result.stderr and "internal error" not in line
    # nothing was started, and nothing written over the evidence
    assert db.stat().st_size == size
    assert not paths.runtime_file(home).exists()


def test_a_missing_db_in_a_used_data_dir_is_refused(daemon_factory, project_dir, home):
    used_data_dir(daemon_factory, project_dir)
    db = paths.db_path(home)
    for file in home.glob(db.name + "*"):
        file.unlink()
    result = refused_start(home)
    line = one_line_error(result, 1)
    assert line.startswith(f"stratavore: The database {db} is missing although {home} was used")
    assert "`stratavore restore NAME`" in line
    assert not db.exists()


def test_a_db_damaged_past_its_header_is_named_by_the_commands_that_read_it(daemon_factory, home):
    """`budgets` reads the DB itself and checks only its header: damage found later is the
    same one sentence, not "internal error: DatabaseError"."""
    cli = Cli(home)
    daemon = daemon_factory()
    cli.ok("budget", "set", "global", "--period", "daily", "--tokens", "1000")
    daemon.stop()
    db = paths.db_path(home)
    no_wal(db)
    con = sqlite3.connect(db)
    try:
        [(page,)] = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'budget'")
        [(size,)] = con.execute("PRAGMA page_size")
    finally:
        con.close()
    with open(db, "r+b") as f:
        f.seek((page - 1) * size)
        f.write(os.urandom(size))
    line = cli.fails("budgets", status=1)
    assert line.startswith(f"stratavore: The database {db} is damaged ("), line
    assert "`stratavore restore NAME` puts one back." in line


def test_a_new_data_dir_starts_fresh(daemon_factory, home):
    (home / "logs").mkdir()  # what logging makes before the DB: not a trace of earlier use
    daemon = daemon_factory()
    assert daemon.api.get("/api/v1/projects") == []
    assert paths.db_path(home).stat().st_size > 0


# --- backups --------------------------------------------------------------------------------
def test_no_backup_existed_unless_a_migration_ran(daemon_factory, project_dir, home):
    """Was: a data dir had no backup at all until a migration ran. Now a scheduled backup is
    made at the first start (then every backup_interval), 0600 in backups/."""
    daemon = daemon_factory()
    daemon.project("demo", project_dir)
    [first] = wait_for(lambda: backups(home), what="the scheduled backup")
    assert first.name.endswith("-scheduled.db")
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert not list(paths.backups_dir(home).glob("*.part"))
    check = sqlite3.connect(f"file:{first}?mode=ro", uri=True)
    try:
        assert check.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        assert check.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one file
    finally:
        check.close()


def test_backup_now_prints_the_file_and_size_and_keeps_the_count(daemon_factory, home):
    daemon = daemon_factory()
    wait_for(lambda: backups(home), what="the scheduled backup")
    cli = Cli(home)
    cli.ok("set", "backup_keep", "2")
    outs = [cli.ok("backup") for _ in range(3)]
    for out in outs:
        assert out.startswith("backed up the database to ")
    made = outs[-1].split(" to ", 1)[1].split(" (")[0]
    assert Path(made).exists() and Path(made).parent == paths.backups_dir(home)
    assert f"({human_size(Path(made).stat().st_size)}, " in outs[-1]
    kept = backups(home)
    assert len(kept) == 2 and kept[-1] == Path(made)
    assert all(stat.S_IMODE(b.stat().st_mode) == 0o600 for b in kept)
    daemon.stop()


def test_restore_refuses_while_running_checks_the_backup_and_keeps_the_damaged_db_aside(
    daemon_factory, project_dir, home
):
    daemon = daemon_factory()
    daemon.project("demo", project_dir)
    cli = Cli(home)
    name = Path(cli.ok("backup").split(" to ", 1)[1].split(" (")[0]).name
    listing = cli.ok("restore", "--list")
    assert name in listing and "manual" in listing

    refused = cli.fails("restore", name, status=5)
    assert refused.startswith(
        f"stratavore: A Stratavore supervisor is already running for {home} (pid "
    )
    assert refused.endswith("; stop it first (Ctrl-C, or quit the tray app), then restore.")

    daemon.stop()
    db = paths.db_path(home)
    no_wal(db)
    damage_first_page(db)
    damaged = db.read_bytes()
    one_line_error(refused_start(home), 1)

    # a damaged backup is refused before anything is touched
    bad = paths.backups_dir(home) / "stratavore-20000101-000000-manual.db"
    bad.write_bytes(damaged)
    assert cli.fails("restore", bad.name, status=2).startswith(
        f"stratavore: The backup {bad} is damaged"
    )
    assert db.read_bytes() == damaged
    assert cli.fails("restore", "nope.db", status=4).startswith(
        "stratavore: There is no backup nope.db in "
    )

    out = cli.ok("restore", name)
    assert out.startswith(f"restored {name} to {db}; the database it replaced is kept as ")
    aside = Path(out.rsplit(" kept as ", 1)[1].strip())
    assert aside.parent == home and aside.read_bytes() == damaged
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    again = daemon_factory()
    assert [p["name"] for p in again.api.get("/api/v1/projects")] == ["demo"]


# --- files the supervisor owns that cannot be read ------------------------------------------
def test_non_utf8_hooks_file_is_written_again(daemon_factory, home):
    """Was: UnicodeDecodeError at start (after events were already written)."""
    daemon_factory().stop()
    hooks = home / "claude-hooks.json"
    hooks.write_bytes(b"\xff\xfe not json \x80")
    daemon = daemon_factory()
    settings = json.loads(hooks.read_text())
    assert settings["hooks"] and daemon.api.base_url in hooks.read_text()


@pytest.mark.parametrize(
    "content", [b"\xff\xfe\x80 not text", b"x", b"short-but-printable-31-bytes-xx"],
    ids=["non-utf8", "one-character", "31-bytes"],
)  # fmt: skip
def test_unreadable_or_short_admin_token_is_replaced(daemon_factory, home, content):
    """Was: UnicodeDecodeError for non-UTF-8 bytes; a 1-character token was accepted."""
    daemon_factory().stop()
    token_file = paths.token_file(home)
    token_file.write_bytes(content)
    daemon = daemon_factory()
    token = token_file.read_text()
    assert len(token.encode()) >= 32 and token.encode() != content
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert daemon.api.get("/api/v1/status")["pid"] == daemon.proc.pid  # the new one works
    log = daemon.log.read_text()
    assert log.count(f"replaced: the admin token in {token_file}") == 1, log


def write_setting(home: Path, key: str, raw: str) -> None:
    """Store ``raw`` as the setting's text, as a damaged or hand-edited DB would hold it."""
    con = sqlite3.connect(paths.db_path(home))
    try:
        con.execute('INSERT OR REPLACE INTO setting ("key", "value") VALUES (?, ?)', (key, raw))
        con.commit()
    finally:
        con.close()


def test_stored_setting_that_is_not_json_is_reported_by_name(daemon_factory, home):
    """Was: JSONDecodeError at start, naming no setting."""
    daemon_factory().stop()
    write_setting(home, "stop_timeout", "{not json")
    daemon = daemon_factory()
    [event] = [e for e in daemon.api.get("/api/v1/events") if e["type"] == "settings.invalid"]
    assert "stop_timeout" in event["title"] and event["severity"] == "warning"
    assert event["data"] == {"key": "stop_timeout"}
    [row] = [s for s in daemon.api.get("/api/v1/settings") if s["key"] == "stop_timeout"]
    assert row["value"] == 10.0  # the default is used
    assert "ignored: the saved setting stop_timeout" in daemon.log.read_text()


def test_stored_max_runners_global_minus_5_no_longer_queues_every_launch(
    daemon_factory, project_dir, home
):
    """Was: stored settings were not checked on load, and -5 queued every launch for ever."""
    daemon_factory().stop()
    write_setting(home, "max_runners_global", "-5")
    daemon = daemon_factory()
    daemon.project("demo", project_dir)
    rid = daemon.launch("demo", SLEEP)["id"]
    daemon.wait_state(rid, "running")
    [event] = [e for e in daemon.api.get("/api/v1/events") if e["type"] == "settings.invalid"]
    assert event["title"] == "setting max_runners_global is invalid: the default is used"
    assert "-5" in event["body"] and "from 1 to" in event["body"]


# --- smaller ------------------------------------------------------------------------------
def test_supervisor_stopped_counts_the_runner_left_for_adoption(daemon_factory, project_dir):
    """Was: "0 runners left running for adoption" when one was left."""
    daemon = daemon_factory()
    daemon.project("demo", project_dir)
    daemon.wait_state(daemon.launch("demo", SLEEP)["id"], "running")
    assert daemon.stop() == 0
    con = sqlite3.connect(paths.db_path(daemon.root))
    try:
        [(body,)] = con.execute(
            "SELECT body FROM event WHERE type = 'supervisor.stopped'"
        ).fetchall()
    finally:
        con.close()
    assert body == "1 runner left running for adoption at next start"
    assert "stopped: supervisor (1 runner left running)" in daemon.log.read_text()
