"""The supervisor itself is killed with SIGKILL and started again: runners it left are
adopted or finished with their real exit status, and no event is lost."""

from __future__ import annotations

import os
import signal
import sys
import time

import psutil
import pytest

from tests.conftest import SLEEP, wait_for

PY = sys.executable


def events(daemon) -> list[dict]:
    return daemon.api.get("/api/v1/events", limit=1000)


def test_adoption_after_supervisor_sigkill_loses_no_event(daemon_factory, project_dir, tmp_path):
    first = daemon_factory()
    first.project("demo", project_dir)
    marker = tmp_path / "go"
    alive = first.launch("demo", SLEEP)["id"]
    # ends with status 3 once the marker exists, i.e. while no supervisor is running
    waits = (
        f"import os, sys, time\nwhile not os.path.exists({str(marker)!r}): time.sleep(0.05)\n"
        "sys.exit(3)"
    )
    ends_later = first.launch("demo", [PY, "-c", waits])["id"]
    first.wait_state(alive, "running")
    first.wait_state(ends_later, "running")
    before = events(first)
    old_pids = {r: first.runner(r)["pid"] for r in (alive, ends_later)}

    first.kill()
    marker.write_text("go")
    wait_for(lambda: not psutil.pid_exists(old_pids[ends_later]), what="runner to end")
    assert psutil.pid_exists(old_pids[alive])

    second = daemon_factory()
    adopted = second.runner(alive)
    assert (adopted["state"], adopted["pid"]) == ("running", old_pids[alive])
    finished = second.runner(ends_later)
    assert (finished["state"], finished["exit_code"]) == ("failed", 3)
    assert finished["reason"] == "exited with status 3"

    after = events(second)
    assert after[: len(before)] == before  # nothing written before the kill went missing
    assert [e["id"] for e in after] == list(range(1, len(after) + 1))  # and no gaps
    new = [(e["type"], e["runner_id"]) for e in after[len(before) :]]
    assert new == [("runner.failed", ends_later), ("supervisor.started", None)]

    # the adopted runner is not this supervisor's child, yet it is stopped and seen to end
    second.api.post(f"/api/v1/runners/{alive}/stop")
    stopped = second.wait_state(alive, "stopped")
    assert stopped["exit_code"] == 143
    assert (
        not psutil.pid_exists(old_pids[alive])
        or psutil.Process(old_pids[alive]).status() == psutil.STATUS_ZOMBIE
    )


@pytest.mark.parametrize("victim", ["command", "trampoline"])
def test_sigkilled_adopted_runner_is_failed_within_one_sweep(daemon_factory, project_dir, victim):
    first = daemon_factory()
    first.project("demo", project_dir)
    rid = first.launch("demo", SLEEP)["id"]
    first.wait_state(rid, "running")
    first.kill()
    second = daemon_factory("--sweep-interval", "0.5")
    root = psutil.Process(second.runner(rid)["pid"])
    command = root.children()[0]
    (command if victim == "command" else root).kill()
    started = time.monotonic()
    runner = second.wait_state(rid, "failed", timeout=5)
    assert time.monotonic() - started < 2.0
    if victim == "command":  # the trampoline saw it die and recorded the status
        assert (runner["exit_code"], runner["reason"]) == (137, "was killed by SIGKILL")
    else:  # nobody could see the trampoline's own status; its orphan dies with the group
        assert (runner["exit_code"], runner["reason"]) == (
            None,
            "ended with an unknown exit status",
        )
    psutil.wait_procs([command], timeout=3)
    assert not command.is_running()


def test_runner_left_starting_without_a_pid_is_lost(daemon_factory, project_dir):
    """A runner recorded as starting but never spawned (the supervisor died in between)."""
    first = daemon_factory()
    first.project("demo", project_dir)
    rid = first.launch("demo", SLEEP)["id"]
    first.wait_state(rid, "running")
    first.kill()
    # rewrite the row as the crash would have left it
    from supervisor.core import paths
    from supervisor.storage.db import close_db, init_db
    from supervisor.storage.models import Runner

    init_db(paths.db_path(first.root))
    try:
        pid = Runner.get_by_id(rid).pid
        Runner.update(state="starting", pid=None, create_time=None).where(
            Runner.id == rid
        ).execute()
    finally:
        close_db()
    os.killpg(pid, signal.SIGKILL)  # the whole runner, as if it had never started
    second = daemon_factory()
    runner = second.runner(rid)
    assert runner["state"] == "lost"
    assert runner["reason"] == (
        "it was never seen running (the supervisor stopped while starting it)"
    )
