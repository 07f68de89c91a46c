"""Private files: the data dir holds usage, events, project paths, commands, output and the
admin token, so nothing in it may be readable by other users, whatever the umask.

A real daemon's whole data dir is walked after launches, log rotations, a migration backup, a
usage import and a worktree; an embedded supervisor (the tray's way) is checked under a loose
umask; a data dir left loose by an older version is tightened at start with one log line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest

from supervisor.api.client import ApiClient
from supervisor.core import paths, runtime
from supervisor.core.logfile import LOG_MAX_BYTES, setup_logging
from supervisor.daemon import Supervisor
from supervisor.storage.db import close_db, init_db
from supervisor.storage.migrations import MIGRATIONS
from supervisor.storage.models import Setting
from tests.conftest import run_async, wait_for
from tests.usage_data import claude_line, write_transcript

PY = sys.executable
HARNESS_FILES = {"daemon-stderr.log"}  # written by the test fixture, not by the supervisor
# prints 2,000 lines of 40 bytes: with runner logs of 4 KiB, runner.log rotates many times
CHATTY = [PY, "-c", "for i in range(2000): print(f'line {i:05d} ' + 'x' * 29)"]


def loose(root: Path) -> list[str]:
    """Everything under ``root`` (``root`` too) that a group or other user may read, write or
    enter, as 'path mode' strings. Left out: files the test harness made itself, and what is
    inside a runner's worktree (the user's checkout, with the user's umask; its 0700 parent
    ``worktrees/`` is checked)."""
    found = []
    for entry in [root, *root.rglob("*")]:
        inside_worktree = paths.worktrees_dir(root) in entry.parents
        if entry.name in HARNESS_FILES or entry.is_symlink() or inside_worktree:
            continue
        mode = stat.S_IMODE(entry.lstat().st_mode)
        if mode & 0o077:
            found.append(f"{entry.relative_to(root.parent)} {mode:04o}")
    return found


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The common default umask, 022 (new files 0644), for this test's own process."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_stratavore_db_is_created_0600_not_0644(tmp_path, loose_umask) -> None:
    path = tmp_path / "data" / "stratavore.db"
    init_db(path)
    try:
        Setting.create(key="k", value=1)  # the WAL and its index exist now
        names = sorted(p.name for p in path.parent.iterdir())
        assert names == ["stratavore.db", "stratavore.db-shm", "stratavore.db-wal"]
        assert loose(path.parent) == []
    finally:
        close_db()


def test_migration_backup_is_private_from_its_first_byte(tmp_path, loose_umask) -> None:
    path = tmp_path / "data" / "stratavore.db"
    _old_schema_db(path)
    path.chmod(0o644)  # as an older version left it
    init_db(path)
    close_db()
    backups = list(paths.backups_dir(path.parent).iterdir())
    assert len(backups) == 1
    assert stat.S_IMODE(backups[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.backups_dir(path.parent).stat().st_mode) == 0o700


def _old_schema_db(path: Path) -> None:
    """A database at schema version 1, as the first release wrote it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = pw.SqliteDatabase(str(path))
    db.connect()
    with db.atomic():
        MIGRATIONS[0](db)
        db.execute_sql("PRAGMA user_version = 1")
    db.close()


def _set(db_path: Path, **settings: object) -> None:
    """Settings written into a (possibly old) DB before its supervisor starts."""
    with sqlite3.connect(db_path) as db:
        for key, value in settings.items():
            db.execute("INSERT INTO setting (key, value) VALUES (?, ?)", (key, str(value)))
    db.close()


def _git(cwd: Path, *args: str) -> None:
    identity = ["-c", "user.name=T", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True)


def test_whole_data_dir_of_a_real_daemon_is_private(
    daemon_factory, home, tmp_path, agent_logs, monkeypatch, loose_umask
) -> None:
    # an old-schema DB (migrated, so backed up, at start) whose settings rotate logs early
    _old_schema_db(paths.db_path(home))
    _set(paths.db_path(home), log_max_bytes=4096, log_backups=2)
    # a full supervisor.log: the first line logged rotates it
    log_dir = paths.logs_dir(home)
    log_dir.mkdir(mode=0o700)
    log_file = log_dir / "supervisor.log"
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"x" * LOG_MAX_BYTES)
    os.close(fd)
    # agent logs for the usage import that runs at start
    write_transcript(agent_logs["claude"], "demo", "s1", [claude_line("m1", time.time() - 60)])
    # a git project, for a runner with its own worktree
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    (tmp_path / "gitconfig").write_text("")
    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    (project / "README.md").write_text("hello\n")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "first")

    daemon = daemon_factory("--sweep-interval", "0.5")
    daemon.project("demo", project)
    chatty = daemon.launch("demo", CHATTY)["id"]
    in_tree = daemon.launch("demo", [PY, "-c", "import time; time.sleep(600)"], worktree=True)
    daemon.wait_state(chatty, "exited")
    daemon.wait_state(in_tree["id"], "running")
    wait_for(lambda: daemon.api.get("/api/v1/usage/daily")["rows"], what="the usage import")
    run = paths.runs_dir(home) / str(chatty)
    wait_for(lambda: (run / "runner.log.2").exists(), what="runner.log to rotate twice")
    assert (log_dir / "supervisor.log.1").exists()
    assert len(list(paths.backups_dir(home).iterdir())) == 1
    assert (home / "claude-hooks.json").exists() and paths.worktrees_dir(home).is_dir()
    assert loose(home) == []
    # git wrote the runner's branch into the user's repository with the user's umask (022)
    branch = project / ".git" / "refs" / "heads" / in_tree["branch"]
    assert stat.S_IMODE(branch.stat().st_mode) == 0o644


def test_loose_data_dir_is_tightened_at_start_with_one_log_line(daemon_factory, home) -> None:
    def tightened() -> list[str]:
        log = (paths.logs_dir(home) / "supervisor.log").read_text()
        return [line for line in log.splitlines() if "tightened:" in line]

    daemon_factory().stop()
    before = len(tightened())  # the test's own home folder was made by its umask (0755)
    for entry in [home, *home.rglob("*")]:  # as an older version with umask 022 left it
        entry.chmod(0o755 if entry.is_dir() else 0o644)
    assert loose(home)
    second = daemon_factory()
    assert loose(home) == []
    second.stop()
    daemon_factory().stop()  # nothing left to tighten: no second line
    lines = tightened()[before:]
    assert len(lines) == 1
    assert lines[0].endswith(
        f"tightened: the data dir {home} could be read by other users; "
        "made its folders 0700 and its files 0600"
    )


def test_embedded_supervisor_keeps_files_private_under_a_loose_umask(
    home, project_dir, loose_umask
) -> None:
    """The tray app embeds the supervisor and does not change its process umask (its
    terminals and other children are the user's): every file is made private explicitly."""
    setup_logging(home, verbose=False)
    logger = logging.getLogger("stratavore")
    handlers = list(logger.handlers)

    async def scenario() -> None:
        supervisor = Supervisor(home, api_port=0, log_max_bytes=4096)
        await supervisor.start()
        try:
            client = ApiClient(supervisor.url, runtime.admin_token(home))
            await asyncio.to_thread(
                client.post, "/api/v1/projects", {"name": "demo", "path": str(project_dir)}
            )
            body = {"project": "demo", "command": CHATTY}
            rid = (await asyncio.to_thread(client.post, "/api/v1/runners", body))["id"]
            for _ in range(500):
                runner = await asyncio.to_thread(client.get, f"/api/v1/runners/{rid}")
                if runner["state"] == "exited":
                    break
                await asyncio.sleep(0.02)
            assert runner["state"] == "exited"
            assert (paths.runs_dir(home) / str(rid) / "runner.log.1").exists()
            assert loose(home) == []
            client.session.close()
        finally:
            await supervisor.stop(stop_runners=True)

    try:
        run_async(scenario())
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
    assert loose(home) == []


def test_runners_keep_the_users_umask_for_their_own_files(
    daemon_factory, project_dir, loose_umask
) -> None:
    """The daemon's umask is 077; what an agent writes into the user's project is the user's,
    with the user's umask (022 here: 0644)."""
    daemon = daemon_factory()  # started with this test's umask, 022
    daemon.project("demo", project_dir)
    made = "open('made.txt', 'w').write('x')"
    daemon.wait_state(daemon.launch("demo", [PY, "-c", made])["id"], "exited")
    assert stat.S_IMODE((project_dir / "made.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE(paths.data_dir().stat().st_mode) == 0o700
