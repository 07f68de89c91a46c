"""``stratavore-agent`` as a subprocess against a live supervisor: registration, heartbeats, exit
codes, signals, an agent stopped with SIGSTOP, a wrapper that dies, and no supervisor at all."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import REPO, SLEEP, Daemon, wait_for

SCRIPT = Path(sys.executable).with_name("stratavore-agent")
AGENT = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "supervisor.cli.agent"]
SWEEP, TTL = 0.3, 1.0
# waits for the file named by argv[1] to appear, then exits with status argv[2]
EXIT_WHEN_TOLD = (
    "import os, sys, time\n"
    "while not os.path.exists(sys.argv[1]):\n"
    "    time.sleep(0.02)\n"
    "sys.exit(int(sys.argv[2]))"
)
UNTRACKED_ENV = (
    "STRATAVORE_RUNNER_ID",
    "STRATAVORE_RUNNER_TOKEN",
    "STRATAVORE_API",
    "STRATAVORE_AGENT_RUNNER_ID",
)


def agent_env(root: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "STRATAVORE_HOME": str(root),
        "PYTHONPATH": str(REPO),
        "STRATAVORE_HEARTBEAT_INTERVAL": "0.2",
    }
    for name in UNTRACKED_ENV:  # never report to a runner this test run may itself be
        env.pop(name, None)
    return env


@contextlib.contextmanager
def agent(root: Path, *args: str, cwd: Path | None = None) -> Iterator[subprocess.Popen[str]]:
    """``stratavore-agent ARGS`` running; killed and reaped on the way out if still alive."""
    proc = subprocess.Popen(
        [*AGENT, *args],
        env=agent_env(root),
        cwd=cwd or root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:  # the test failed half-way: kill the child first
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(proc.pid).children(recursive=True):
                    child.kill()
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        try:
            proc.communicate(timeout=10)
        finally:  # a leftover child may still hold the pipes: close them anyway
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            proc.wait(10)


def finish(proc: subprocess.Popen[str], timeout: float = 15) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


# --- one supervisor for the module, with a short TTL and fast sweeps -----------------------
@dataclass
class Sup:
    daemon: Daemon
    root: Path

    def by_pid(self, pid: int) -> dict[str, Any] | None:
        found = [r for r in self.daemon.api.get("/api/v1/runners", all=1) if r["pid"] == pid]
        assert len(found) <= 1
        return found[0] if found else None

    def registered(self, proc: subprocess.Popen[str]) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            assert proc.poll() is None, proc.communicate()
            return self.by_pid(proc.pid)

        return wait_for(check, what=f"stratavore-agent {proc.pid} to register")

    def beating(self, runner_id: int) -> dict[str, Any]:
        """The runner once its heartbeats arrive and it is not flagged."""
        return wait_for(
            lambda: (
                (r := self.daemon.runner(runner_id))["last_heartbeat"]
                and not r["unresponsive"]
                and r
            ),
            what=f"heartbeats from runner {runner_id}",
        )

    def last_event_id(self) -> int:
        return max(e["id"] for e in self.daemon.api.get("/api/v1/events", limit=100_000))

    def events(self, runner_id: int, since: int) -> list[dict[str, Any]]:
        events = self.daemon.api.get("/api/v1/events", since=since, limit=100_000)
        return [e for e in events if e["runner_id"] == runner_id]


@pytest.fixture(scope="module")
def sup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sup]:
    root = tmp_path_factory.mktemp("agent-home")
    env = {**os.environ, "STRATAVORE_HOME": str(root), "PYTHONPATH": str(REPO)}
    daemon = Daemon(root, ["--sweep-interval", str(SWEEP), "--heartbeat-ttl", str(TTL)], env)
    try:
        daemon.start()
        yield Sup(daemon, root)
    finally:
        daemon.close()


@pytest.fixture
def project(sup: Sup, project_dir: Path, request: pytest.FixtureRequest) -> str:
    """A project of this test's own, on its own folder."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:60].strip("-")
    sup.daemon.project(name, project_dir)
    return name


# --- registration, heartbeats, exit codes -------------------------------------------------
def test_registers_heartbeats_and_reports_exit_code(sup, project, tmp_path):
    flag = tmp_path / "exit-now"
    command = [sys.executable, "-c", EXIT_WHEN_TOLD, str(flag), "3"]
    with agent(sup.root, "--project", project, "--", *command) as proc:
        runner = sup.registered(proc)
        assert runner["supervised"] is False
        assert (runner["project"], runner["state"], runner["command"]) == (
            project, "running", command
        )  # fmt: skip
        assert runner["reason"] == "registered by stratavore-agent"
        assert runner["cwd"] == str(sup.root)
        assert runner["log_path"] is None
        # the CLI lists it with the wrapper's pid
        listed = subprocess.run(
            [sys.executable, "-m", "supervisor.cli", "runners", project, "--json"],
            env=agent_env(sup.root),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (listed.returncode, listed.stderr) == (0, "")
        [shown] = json.loads(listed.stdout)
        assert (shown["id"], shown["pid"], shown["supervised"]) == (runner["id"], proc.pid, False)

        first = sup.beating(runner["id"])["last_heartbeat"]
        moved = wait_for(
            lambda: (r := sup.daemon.runner(runner["id"]))["last_heartbeat"] > first and r,
            what="a later heartbeat",
        )
        assert moved["cpu_percent"] is not None and moved["cpu_percent"] >= 0
        assert moved["rss_bytes"] is not None and moved["rss_bytes"] > 1_000_000
        assert moved["state"] == "running"

        flag.touch()
        code, out, err = finish(proc)
    assert (code, out, err) == (3, "", "")
    # the final heartbeat was sent before the wrapper exited: no waiting for a sweep
    ended = sup.daemon.runner(runner["id"])
    assert (ended["state"], ended["exit_code"]) == ("failed", 3)
    assert ended["reason"] == "exited with status 3"
    assert ended["ended_at"] is not None
    types = [e["type"] for e in sup.events(runner["id"], 0)]
    assert types == ["runner.running", "runner.failed"]


def test_exit_0_and_project_from_cwd(sup, project, project_dir):
    inside = project_dir / "src" / "pkg"
    inside.mkdir(parents=True)
    command = [sys.executable, "-c", "print('hello from the agent')"]
    with agent(sup.root, "--", *command, cwd=inside) as proc:
        code, out, err = finish(proc)
        pid = proc.pid
    assert (code, out, err) == (0, "hello from the agent\n", "")
    runner = sup.by_pid(pid)
    assert runner is not None
    assert (runner["project"], runner["cwd"], runner["supervised"]) == (
        project, str(inside), False
    )  # fmt: skip
    assert (runner["state"], runner["exit_code"], runner["reason"]) == (
        "exited", 0, "exited with status 0"
    )  # fmt: skip


# --- SIGSTOP: flagged, not killed ----------------------------------------------------------
def test_stopped_agent_is_flagged_unresponsive_and_not_killed(sup, project):
    with agent(sup.root, "--project", project, "--", *SLEEP) as proc:
        rid = sup.registered(proc)["id"]
        sup.beating(rid)
        wrapper = psutil.Process(proc.pid)
        child = wait_for(wrapper.children, what="the agent's child")[0]
        mark = sup.last_event_id()

        os.kill(proc.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        flagged = wait_for(
            lambda: (r := sup.daemon.runner(rid))["unresponsive"] and r,
            timeout=TTL + 2 * SWEEP + 1.5,
            what="the runner to be flagged unresponsive",
        )
        assert flagged["state"] == "running"
        [event] = sup.events(rid, mark)
        assert (event["type"], event["severity"]) == ("runner.unresponsive", "warning")
        assert event["title"] == f"runner {rid} ({project}) is unresponsive"
        assert re.fullmatch(
            r"its process is stopped \(SIGSTOP or a debugger\) and cannot progress"
            r"|no heartbeat for \d+ s \(TTL 1 s\)",
            event["body"],
        ), event["body"]
        # Flagged only: through sweeps well past the TTL it stays running, and alive.
        while time.monotonic() < stopped_at + TTL + 3 * SWEEP:
            runner = sup.daemon.runner(rid)
            assert (runner["state"], runner["unresponsive"]) == ("running", True)
            assert wrapper.status() == psutil.STATUS_STOPPED
            assert child.is_running()
            time.sleep(SWEEP / 3)
        assert [e["type"] for e in sup.events(rid, mark)] == ["runner.unresponsive"]

        os.kill(proc.pid, signal.SIGCONT)
        resumed = wait_for(
            lambda: not (r := sup.daemon.runner(rid))["unresponsive"] and r,
            what="the flag to clear",
        )
        assert resumed["state"] == "running"
        assert resumed["last_heartbeat"] > flagged["last_heartbeat"]
        events = sup.events(rid, mark)
        assert [e["type"] for e in events] == ["runner.unresponsive", "runner.responsive"]
        assert events[1]["body"] == "heartbeat received"
        assert events[1]["title"] == f"runner {rid} ({project}) is responsive again"

        # SIGTERM to the wrapper goes to its child, which dies of it: 143, failed
        proc.send_signal(signal.SIGTERM)
        code, out, err = finish(proc)
    assert (code, out, err) == (143, "", "")
    assert not child.is_running()
    ended = sup.daemon.runner(rid)
    assert (ended["state"], ended["exit_code"], ended["reason"]) == (
        "failed", 143, "was killed by SIGTERM"
    )  # fmt: skip


# --- stopping and losing an agent ------------------------------------------------------------
def test_kill_forwards_sigterm_to_the_child(sup, project):
    with agent(sup.root, "--project", project, "--", *SLEEP) as proc:
        rid = sup.registered(proc)["id"]
        child = wait_for(psutil.Process(proc.pid).children, what="the agent's child")[0]
        assert child.cmdline() == SLEEP
        killed = subprocess.run(
            [sys.executable, "-m", "supervisor.cli", "kill", str(rid)],
            env=agent_env(sup.root),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (killed.returncode, killed.stdout, killed.stderr) == (
            0, f"stopping runner {rid}\n", ""
        )  # fmt: skip
        code, out, err = finish(proc)
    assert (code, out, err) == (143, "", "")
    child.wait(5)  # gone (psutil raises TimeoutExpired otherwise)
    ended = sup.daemon.runner(rid)
    assert (ended["state"], ended["exit_code"], ended["reason"]) == (
        "stopped", 143, "stopped by user"
    )  # fmt: skip
    types = [e["type"] for e in sup.events(rid, 0)]
    assert types == ["runner.running", "runner.stopping", "runner.stopped"]


def test_sigkilled_wrapper_is_failed_within_a_sweep(sup, project):
    with agent(sup.root, "--project", project, "--", *SLEEP) as proc:
        rid = sup.registered(proc)["id"]
        sup.beating(rid)
        child = wait_for(psutil.Process(proc.pid).children, what="the agent's child")[0]
        proc.kill()  # no final heartbeat
        proc.wait(10)  # (its orphaned child still holds the output pipes)
        try:
            ended = sup.daemon.wait_state(rid, "failed", timeout=2 * SWEEP + 1.5)
        finally:
            child.kill()  # the orphan would otherwise sleep on
            child.wait(5)
        assert finish(proc) == (-signal.SIGKILL, "", "")
    assert ended["exit_code"] is None
    assert ended["reason"] == "disappeared without reporting an exit status"
    assert ended["ended_at"] is not None


# --- untracked runs ---------------------------------------------------------------------------
def test_no_supervisor_runs_the_command_untracked(home):
    command = [sys.executable, "-c", "import sys; print('ran'); sys.exit(5)"]
    with agent(home, "--project", "demo", "--", *command) as proc:
        code, out, err = finish(proc)
    assert (code, out) == (5, "ran\n")
    assert err == (
        f"stratavore-agent: not tracked (No Stratavore supervisor is running for {home}; "
        "start one with `stratavore daemon`); running the command anyway\n"
    )


def test_refused_registration_runs_the_command_untracked(sup):
    before = sup.daemon.api.get("/api/v1/runners", all=1)
    command = [sys.executable, "-c", "import sys; print('ran'); sys.exit(4)"]
    with agent(sup.root, "--project", "nosuch", "--", *command) as proc:
        code, out, err = finish(proc)
    assert (code, out) == (4, "ran\n")
    assert err == (
        "stratavore-agent: not tracked (Project 'nosuch' does not exist); "
        "running the command anyway\n"
    )
    assert sup.daemon.api.get("/api/v1/runners", all=1) == before


def test_usage_errors_register_nothing(sup, project):
    before = sup.daemon.api.get("/api/v1/runners", all=1)
    with agent(sup.root, "--project", project, "--", "nosuchcmd-xyz", "-v") as proc:
        assert finish(proc) == (
            127, "", "stratavore-agent: command 'nosuchcmd-xyz' not found on PATH\n"
        )  # fmt: skip
    with agent(sup.root, "--project", project) as proc:
        assert finish(proc) == (
            2, "", "stratavore-agent: nothing to run; usage: stratavore-agent [--project NAME] "
            "[--profile NAME [--resume SESSION]] -- CMD ARGS...\n",
        )  # fmt: skip
    assert sup.daemon.api.get("/api/v1/runners", all=1) == before
