"""The data folder fills up under a real supervisor (its own 16 MiB tmpfs): nothing it saw is
lost, nothing is half-written, every refusal is one sentence, and the same supervisor serves
again once space is freed, with its records complete and the database intact.

Mounting a tmpfs needs root; CI runs as root, elsewhere these tests are skipped."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.cli.output import ExitStatus
from supervisor.core.errors import ErrorCode
from tests.cli.test_e2e import Cli
from tests.conftest import SLEEP, Daemon, api_error, wait_for
from tests.usage_data import claude_line, write_transcript

PY = sys.executable


class Disk:
    """The tmpfs the data dir lives on: filled to the last byte, and freed."""

    def __init__(self, mount: Path) -> None:
        self.mount = mount
        self.filler = mount / "filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (1 << 20, 1 << 16, 4096, 1):
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * size)
        finally:
            os.close(fd)
        assert os.statvfs(self.mount).f_bavail == 0
        with pytest.raises(OSError) as full:
            (self.mount / "probe").write_bytes(b"x" * 8192)
        assert full.value.errno == errno.ENOSPC

    def free(self) -> None:
        self.filler.unlink()
        (self.mount / "probe").unlink(missing_ok=True)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("the disk-full tests mount a 16 MiB tmpfs, which needs root (CI runs as root)")
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    yield Disk(mount)
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def home(disk: Disk, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data dir, on the small tmpfs (replaces conftest's ``home``)."""
    root = disk.mount / "home"
    root.mkdir()
    monkeypatch.setenv("STRATAVORE_HOME", str(root))
    return root


def rows(home: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the supervisor's database file directly, as another program would."""
    with contextlib.closing(sqlite3.connect(home / "stratavore.db", timeout=5)) as db:
        return db.execute(sql, params).fetchall()


def intact(home: Path) -> bool:
    return rows(home, "PRAGMA integrity_check") == [("ok",)]


def events(daemon: Daemon, **where: Any) -> list[dict[str, Any]]:
    found = daemon.api.get("/api/v1/events", limit=1000)
    return [e for e in found if all(e[k] == v for k, v in where.items())]


def ended(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def start_daemon(home: Path) -> subprocess.CompletedProcess[str]:
    """``stratavore daemon`` where it is expected not to start: its exit status and stderr."""
    return subprocess.run(
        [PY, "-m", "supervisor.cli", "daemon", "--port", "0"],
        env={**os.environ, "STRATAVORE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def cleared(daemon: Daemon, home: Path) -> None:
    """Space is back: the problem is reported once, leaves ``status``, and the DB is whole."""
    wait_for(lambda: daemon.api.get("/api/v1/status")["storage"] is None, what="status to clear")
    [problem] = events(daemon, type="supervisor.storage_problem")
    assert problem["title"] == "the data folder was full"
    assert problem["data"]["problem"] == "full"
    assert intact(home)
    assert daemon.proc is not None and daemon.proc.poll() is None  # the same supervisor


def test_disk_full_keeps_a_runner_exit_and_writes_it_when_space_returns(
    daemon, disk, home, project_dir, tmp_path
):
    daemon.project("demo", project_dir)
    go = tmp_path / "go"
    waits = (
        f"import os, sys, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.05)\n"
        "sys.exit(3)"
    )
    rid = daemon.launch("demo", [PY, "-c", waits])["id"]
    pid = daemon.wait_state(rid, "running")["pid"]
    disk.fill()
    go.write_text("")
    wait_for(lambda: ended(pid), what="the runner to exit")
    time.sleep(1.5)  # seen, and refused by the DB, more than once

    listed = {r["id"]: r for r in daemon.api.get("/api/v1/runners", all=1)}
    assert listed[rid]["state"] == "running"  # memory says what the DB says, nothing vanishes
    assert rows(home, "SELECT state FROM runner WHERE id = ?", rid) == [("running",)]
    status = daemon.api.get("/api/v1/status")["storage"]
    assert status.startswith(f"the data folder is full: {home}, since ")

    disk.free()
    runner = daemon.wait_state(rid, "failed")
    assert (runner["exit_code"], runner["reason"]) == (3, "exited with status 3")
    assert rows(home, "SELECT state, exit_code FROM runner WHERE id = ?", rid) == [("failed", 3)]
    assert [e["type"] for e in events(daemon, runner_id=rid)] == [
        "runner.starting",
        "runner.running",
        "runner.failed",
    ]
    cleared(daemon, home)


def test_disk_full_kill_sends_the_signal_and_records_the_stop_when_space_returns(
    daemon_factory, disk, home, project_dir
):
    daemon = daemon_factory()
    daemon.project("demo", project_dir)
    rid = daemon.launch("demo", SLEEP)["id"]
    pid = daemon.wait_state(rid, "running")["pid"]
    disk.fill()

    killed = Cli(home)("kill", rid)
    assert killed.returncode == ExitStatus.TRY_AGAIN
    assert killed.stderr == (
        f"stratavore: Runner {rid} was sent the stop signal, but the data folder {home} is "
        "full: its stop is recorded once it can be written.\n"
    )
    wait_for(lambda: ended(pid), what="the runner to end on its stop signal")
    assert rows(home, "SELECT state FROM runner WHERE id = ?", rid) == [("running",)]

    disk.free()
    runner = daemon.wait_state(rid, "stopped")
    assert (runner["exit_code"], runner["reason"]) == (143, "stopped by user")
    assert [e["type"] for e in events(daemon, runner_id=rid)] == [
        "runner.starting",
        "runner.running",
        "runner.stopping",
        "runner.stopped",
    ]
    cleared(daemon, home)
    daemon.stop()
    assert daemon_factory().runner(rid)["state"] == "stopped"  # not adopted as running


def test_disk_full_refuses_a_launch_in_one_sentence_and_writes_nothing(
    daemon, disk, home, project_dir
):
    daemon.project("demo", project_dir)
    disk.fill()
    before = rows(home, "SELECT COUNT(*) FROM runner"), sorted((home / "runs").glob("*"))
    refused = api_error(lambda: daemon.launch("demo", SLEEP))
    assert (refused.code, refused.message) == (
        ErrorCode.STORAGE_FULL,
        f"The data folder {home} is full; free some space, then try again.",
    )
    assert (rows(home, "SELECT COUNT(*) FROM runner"), sorted((home / "runs").glob("*"))) == before
    shown = Cli(home)("status")
    assert shown.returncode == 0
    assert f"storage:  the data folder is full: {home}, since " in shown.stdout

    disk.free()
    rid = daemon.launch("demo", SLEEP)["id"]  # the same supervisor, no restart
    daemon.wait_state(rid, "running")
    cleared(daemon, home)


def test_disk_full_keeps_heartbeats_until_the_flush_can_write_them(daemon, disk, home, project_dir):
    daemon.project("demo", project_dir)
    agent = subprocess.Popen(SLEEP)
    try:
        registered = daemon.api.post(
            "/api/v1/runners/register",
            {"pid": agent.pid, "cwd": str(project_dir), "command": ["agent"]},
        )
        rid, token = registered["runner"]["id"], registered["token"]
        disk.fill()
        for tokens in range(1, 6):
            daemon.api.post(f"/api/v1/runners/{rid}/heartbeat", {"tokens": tokens}, token=token)
        time.sleep(1.5)  # the 1-second flush ran and was refused
        assert daemon.runner(rid)["tokens"] == 5  # still in memory
        assert rows(home, "SELECT tokens FROM runner WHERE id = ?", rid) == [(None,)]

        disk.free()  # no heartbeat comes after this: the kept one is written by itself
        wait_for(
            lambda: rows(home, "SELECT tokens FROM runner WHERE id = ?", rid) == [(5,)],
            what="the kept heartbeat to be flushed",
        )
        cleared(daemon, home)
    finally:
        agent.kill()
        agent.wait()


def test_disk_full_refuses_a_usage_import_and_reads_it_all_once_space_returns(
    daemon, disk, home, agent_logs
):
    now = time.time()
    lines = [claude_line(f"m{i}", now - i, output_tokens=100) for i in range(300)]
    transcript = write_transcript(agent_logs["claude"], "-work-demo", "s1", lines)
    disk.fill()
    refused = api_error(lambda: daemon.api.post("/api/v1/usage/import"))
    assert (refused.code, refused.message) == (
        ErrorCode.STORAGE_FULL,
        f"The data folder {home} is full; free some space, then try again.",
    )
    assert rows(home, "SELECT COUNT(*) FROM usage") == [(0,)]  # no batch half-written
    assert rows(home, "SELECT COUNT(*) FROM usage_file") == [(0,)]  # nor its file mark

    disk.free()
    assert daemon.api.post("/api/v1/usage/import")["written"] == 300
    assert rows(home, "SELECT COUNT(*), SUM(output_tokens) FROM usage") == [(300, 30_000)]
    assert rows(home, "SELECT offset FROM usage_file") == [(transcript.stat().st_size,)]
    cleared(daemon, home)


def test_disk_full_delays_an_event_until_it_can_be_written_with_its_change(
    daemon, disk, home, project_dir
):
    daemon.project("demo", project_dir)
    rid = daemon.launch("demo", SLEEP)["id"]
    pid = daemon.wait_state(rid, "running")["pid"]
    disk.fill()
    os.killpg(pid, signal.SIGSTOP)  # the sweep (every 0.5 s) flags it: a change and its event
    try:
        time.sleep(1.5)
        assert daemon.runner(rid)["unresponsive"] is False  # not believed before it is written
        assert rows(home, "SELECT unresponsive FROM runner WHERE id = ?", rid) == [(0,)]
        assert events(daemon, type="runner.unresponsive") == []

        disk.free()
        wait_for(lambda: daemon.runner(rid)["unresponsive"], what="the flag to be written")
        assert rows(home, "SELECT unresponsive FROM runner WHERE id = ?", rid) == [(1,)]
        assert len(events(daemon, type="runner.unresponsive", runner_id=rid)) == 1
        cleared(daemon, home)
    finally:
        os.killpg(pid, signal.SIGCONT)


def test_disk_full_at_start_is_refused_in_one_sentence(daemon_factory, disk, home):
    daemon_factory().stop()
    disk.fill()
    started = start_daemon(home)
    assert started.returncode == 1
    assert started.stderr.splitlines()[-1] == (
        f"stratavore: The supervisor could not start: the data folder {home} is full; free "
        "some space, then try again."
    )
    disk.free()
    assert intact(home)


def test_read_only_data_folder_at_start_is_refused_in_one_sentence(daemon_factory, disk, home):
    daemon_factory().stop()
    subprocess.run(["mount", "-o", "remount,ro", str(disk.mount)], check=True)
    try:
        started = start_daemon(home)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(disk.mount)], check=True)
    assert (started.returncode, started.stderr) == (
        1,
        f"stratavore: The supervisor could not start: the data folder {home} is read-only; "
        "make it writable, then try again.\n",
    )
    assert intact(home)


def test_disk_full_stop_of_several_runners_sends_every_signal(daemon, disk, home, project_dir):
    count = 3
    daemon.project("demo", project_dir)
    ids = [daemon.launch("demo", SLEEP)["id"] for _ in range(count)]
    pids = [daemon.wait_state(rid, "running")["pid"] for rid in ids]
    disk.fill()
    refused = api_error(lambda: daemon.api.post("/api/v1/runners/stop", {"all": True}))
    assert refused.code is ErrorCode.STORAGE_FULL
    assert refused.message.startswith(f"{count} of {count} stops could not be recorded (")
    for pid in pids:
        wait_for(lambda pid=pid: ended(pid), what="every runner to end on its signal")
    disk.free()
    for rid in ids:
        assert daemon.wait_state(rid, "stopped")["exit_code"] == 143
    cleared(daemon, home)
    assert daemon.api.get("/api/v1/runners") == []
