"""Signals only to what is ours: a runner's process group is signalled only while it is
provably the runner's, never after its id went to another program.

The stale-group reproduction (issue 11): a runner ends by itself while no supervisor runs, so
its exit file exists and its pid, which is also its process-group id, is free. A stranger is
then given that very pid as a session leader (as root, by writing pid-1 to
``/proc/sys/kernel/ns_last_pid``). At the next start the exit file is read and the runner
finished: the old group must not be killed, as it is the stranger's now.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from supervisor.runners.groups import Lineage
from supervisor.runners.process import ProcessOps
from supervisor.runners.procinfo import Identity
from supervisor.runners.tokens import TOKEN_VARIABLE
from tests.conftest import wait_for

PY = sys.executable
NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")
needs_root = pytest.mark.skipif(
    os.name == "nt" or os.geteuid() != 0 or not os.access(NS_LAST_PID, os.W_OK),
    reason="choosing the next pid (writing /proc/sys/kernel/ns_last_pid) needs root on Linux",
)


def waits_for(marker: Path, then: str = "") -> list[str]:
    """A command that runs until ``marker`` exists, then runs ``then`` and exits 0."""
    code = (
        f"import os, subprocess, time\nwhile not os.path.exists({str(marker)!r}): "
        f"time.sleep(0.05)\n{then}"
    )
    return [PY, "-c", code]


def start_at_pid(pid: int, argv: list[str]) -> subprocess.Popen[bytes]:
    """``argv`` started as a new session leader with exactly ``pid``: a stranger that now owns
    the process-group id ``pid``. Retried, as another process on the machine may take the pid
    between the write and the fork (often, while other test suites run on the machine: so for
    up to 20 s rather than a number of tries)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        NS_LAST_PID.write_text(str(pid - 1))
        proc = subprocess.Popen(argv, start_new_session=True)
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    pytest.fail(f"could not start a process with pid {pid}")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@needs_root
@pytest.mark.parametrize("stranger", ["leader", "orphan"])
def test_reconcile_never_kills_a_stranger_given_the_old_group_id(
    daemon_factory, project_dir, tmp_path, stranger
) -> None:
    """``leader``: the stranger leads group ``pid``. ``orphan``: the stranger's leader has
    exited and only its child is left in group ``pid``: no process has that pid, yet the group
    is not ours."""
    first = daemon_factory()
    first.project("demo", project_dir)
    marker = tmp_path / "go"
    rid = first.launch("demo", waits_for(marker))["id"]
    pid = first.wait_state(rid, "running")["pid"]
    first.stop()  # runners are left running for adoption
    marker.write_text("go")  # the run ends by itself while no supervisor runs
    wait_for(lambda: not psutil.pid_exists(pid), what="the runner's pid to be free")
    assert (first.root / "runs" / str(rid) / "exit").read_text() == "0\n"

    child_file = tmp_path / "stranger-child"
    if stranger == "leader":
        impostor = start_at_pid(pid, ["sleep", "600"])
        victim = pid
    else:
        impostor = start_at_pid(pid, ["sh", "-c", f'sleep 600 & echo $! > "{child_file}"'])
        impostor.wait()
        victim = int(wait_for(lambda: child_file.exists() and child_file.read_text().strip()))
        assert os.getpgid(victim) == pid and not psutil.pid_exists(pid)
    try:
        second = daemon_factory()
        runner = second.wait_state(rid, "exited")
        assert (runner["exit_code"], runner["reason"]) == (0, "exited with status 0")
        time.sleep(0.3)  # a SIGKILL would have landed by now
        assert alive(victim), "the supervisor killed a stranger's process"
        log = (second.root / "logs" / "supervisor.log").read_text()
        assert f"not signalling process group {pid}:" in log
    finally:
        os.killpg(pid, signal.SIGKILL)
        impostor.wait()


@pytest.mark.parametrize("supervisor", ["running", "down"])
def test_grandchild_outliving_its_runners_root_is_killed(
    daemon_factory, project_dir, tmp_path, supervisor
) -> None:
    """The runner's command starts a grandchild and exits: the root (the trampoline) is gone,
    the grandchild lives on in the runner's group. It is ours, so it is killed, whether the
    supervisor sees the exit or finds it at its next start."""
    marker = tmp_path / "go"
    pid_file = tmp_path / "grandchild"
    spawn = (
        f"p = subprocess.Popen(['sleep', '600'])\nopen({str(pid_file)!r}, 'w').write(str(p.pid))"
    )
    first = daemon_factory()
    first.project("demo", project_dir)
    rid = first.launch("demo", waits_for(marker, spawn))["id"]
    first.wait_state(rid, "running")
    bystander = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        if supervisor == "down":
            first.stop()
        marker.write_text("go")
        grandchild = int(wait_for(lambda: pid_file.exists() and pid_file.read_text()))
        daemon = first if supervisor == "running" else daemon_factory()
        runner = daemon.wait_state(rid, "exited")
        assert runner["exit_code"] == 0
        wait_for(lambda: not alive(grandchild), 5, what="the grandchild to be killed")
        assert alive(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait()


# --- ProcessOps itself, with real processes ---------------------------------------------------
TOKEN = "s3cret-runner-token"
MARK = (TOKEN_VARIABLE, hashlib.sha256(TOKEN.encode()).hexdigest())


def spawn_group(tmp_path: Path, script: str, env: dict[str, str] | None = None) -> Identity:
    """``sh -c script`` behind the trampoline, as a runner is: the root leads a new group."""
    environ = {**os.environ, **(env or {})}
    return ProcessOps().spawn(
        ["sh", "-c", script], str(tmp_path), environ, tmp_path / "output", tmp_path / "exit"
    )


def members(pgid: int) -> list[int]:
    """Live processes in group ``pgid``."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
    return found


def end_root(root: Identity) -> None:
    """The root (our child here) killed and reaped: its group lives on without a leader."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(root.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(root.pid, 0)


posix_only = pytest.mark.skipif(os.name == "nt", reason="process groups are POSIX")


@posix_only
def test_leaderless_group_member_with_the_token_is_killed_one_without_is_spared(tmp_path):
    """The root is gone; two processes of the command are left in its group. One carries the
    runner's token; the other was started with an empty environment and its parent has
    ended, so nothing proves it is the runner's: it is spared (and named in the log), and the
    group is not signalled whole."""
    script = "sleep 600 & env -i sleep 600 & wait"
    root = spawn_group(tmp_path, script, {MARK[0]: TOKEN})
    wait_for(lambda: len(members(root.pid)) == 4, what="the command and its two children")
    command = psutil.Process(root.pid).children()[0]
    marked = next(c.pid for c in command.children() if MARK[0] in c.environ())
    bare = next(c.pid for c in command.children() if c.pid != marked)
    end_root(root)
    command.kill()  # the shell between them too: both sleeps are orphans now
    wait_for(lambda: len(members(root.pid)) == 2, what="only the two sleeps to be left")
    ProcessOps().kill([], Lineage(root, env_mark=MARK))
    wait_for(lambda: not alive(marked), 3, what="the member with the token to die")
    time.sleep(0.2)
    assert alive(bare)
    os.kill(bare, signal.SIGKILL)


@posix_only
def test_leaderless_group_is_killed_whole_when_its_members_are_proven(tmp_path) -> None:
    """Without any token: the command was recorded in the runner's tree (at a stop), and its
    children are proven by their proven parent; the group is signalled whole."""
    root = spawn_group(tmp_path, "sleep 600 & sleep 600 & wait")
    wait_for(lambda: len(members(root.pid)) == 4, what="the command and its two children")
    command = ProcessOps().descendants([root])[root][0]
    end_root(root)
    ProcessOps().kill([], Lineage(root, seen=frozenset({command})))
    wait_for(lambda: members(root.pid) == [], 3, what="the whole group to die")


@posix_only
def test_unreadable_environment_proves_nothing(tmp_path, caplog) -> None:
    """An OS call that fails (reading another process's environment) leaves the member
    unproven: it is not signalled, and the refusal is logged."""

    class NoEnviron(ProcessOps):
        def env_value(self, ident: Identity, name: str) -> str | None:
            raise PermissionError(13, "Permission denied")

    root = spawn_group(tmp_path, "exec sleep 600", {MARK[0]: TOKEN})
    wait_for(lambda: len(members(root.pid)) == 2, what="the command to start")
    command = next(p for p in members(root.pid) if p != root.pid)
    end_root(root)
    with caplog.at_level(logging.WARNING, "stratavore.process"):
        NoEnviron().kill([], Lineage(root, env_mark=MARK))
    time.sleep(0.2)
    assert alive(command)
    assert f"not signalling process group {root.pid}: process {command} in it" in caplog.text
    ProcessOps().kill([], Lineage(root, env_mark=MARK))  # readable: proven, killed
    wait_for(lambda: not alive(command), 3, what="the command to die")


@needs_root
def test_stop_signals_spare_a_stranger_holding_the_old_pid(tmp_path) -> None:
    """The stop path (SIGTERM to the group or the root, SIGKILL at the deadline) for a root
    that has ended and whose pid now leads a stranger's group."""
    root = spawn_group(tmp_path, "exit 0")
    end_root(root)
    time.sleep(0.05)  # create times count clock ticks (10 ms): the stranger starts ticks later
    impostor = start_at_pid(root.pid, ["sleep", "600"])
    try:
        ops, lineage = ProcessOps(), Lineage(root, env_mark=MARK)
        ops.signal_polite(lineage, group=True)
        ops.signal_polite(lineage, group=False)
        assert ops.kill([root], lineage) == 0
        time.sleep(0.2)
        assert alive(impostor.pid)
    finally:
        impostor.kill()
        impostor.wait()


@posix_only
def test_group_of_a_live_root_gets_the_signals_whole(tmp_path) -> None:
    """The leader lives with the root's identity: the polite signal and the kill at the
    deadline reach the whole group, as before."""
    root = spawn_group(tmp_path, "trap '' TERM; sleep 600 & wait")  # sleep inherits the ignore
    wait_for(lambda: len(members(root.pid)) == 3, what="the command and its child")
    ops, lineage = ProcessOps(), Lineage(root)
    ops.signal_polite(lineage, group=True)
    time.sleep(0.2)
    assert len(members(root.pid)) == 3  # all three ignore or trap SIGTERM
    assert ops.kill([root], lineage) == 1
    wait_for(lambda: members(root.pid) == [], 3, what="the group to die")
    end_root(root)
