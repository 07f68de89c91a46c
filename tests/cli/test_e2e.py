"""The ``stratavore`` CLI as a subprocess against a live supervisor: the README's first session,
caps, logs, restart, listings, and the exit status and one-line error of every bad input."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor import __version__
from tests.conftest import REPO, SLEEP, Daemon, wait_for

STATES = ["queued", "starting", "running", "backoff", "stopping"]
STATES += ["stopped", "exited", "failed", "fatal", "lost", "paused"]
RUNNER_FIELDS = {
    "id", "project", "state", "pid", "exit_code", "reason", "started_at", "ended_at",
    "last_heartbeat", "cpu_percent", "rss_bytes",
}  # fmt: skip
STAMPED = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (.*)")
# prints "line 1".."line 5" over about a second, then exits 0
FIVE_LINES = (
    "import time\nfor i in range(1, 6):\n    print(f'line {i}', flush=True)\n    time.sleep(0.2)"
)


class Cli:
    """Runs ``python -m supervisor.cli`` on one data dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "STRATAVORE_HOME": str(root), "PYTHONPATH": str(REPO)}
        self.env.pop("STRATAVORE_DEBUG", None)

    def argv(self, args: tuple[object, ...]) -> list[str]:
        return [sys.executable, "-m", "supervisor.cli", *map(str, args)]

    def __call__(self, *args: object, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(args),
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def many(self, *argvs: tuple[object, ...]) -> list[subprocess.CompletedProcess[str]]:
        """Run independent commands at the same time (read-only ones: order does not matter)."""
        procs = [
            subprocess.Popen(
                self.argv(args),
                env=self.env,
                cwd=self.root,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args in argvs
        ]
        results = []
        try:
            for args, proc in zip(argvs, procs, strict=True):
                out, err = proc.communicate(timeout=60)
                results.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        return results

    def ok(self, *args: object) -> str:
        return ok(self(*args))

    def json(self, *args: object) -> Any:
        return as_json(self(*args, "--json"))

    def fails(self, *args: object, status: int) -> str:
        """The one stderr line of a command that must fail with ``status``."""
        return one_line_error(self(*args), status)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """stdout of a command that must have succeeded quietly."""
    assert (result.returncode, result.stderr) == (0, ""), result
    return result.stdout


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    out = ok(result)
    value = json.loads(out)
    assert out == json.dumps(value, indent=2) + "\n"  # the API's JSON, indented by 2
    return value


def one_line_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    """The one stderr line (without its newline) of a command that failed with ``status``."""
    assert result.returncode == status, result
    assert result.stdout == "", result
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    assert result.stderr.startswith("stratavore: "), result.stderr
    return result.stderr[:-1]


def table(text: str) -> list[list[str]]:
    """A table's lines split on whitespace (every cell but the last has no spaces)."""
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines), text
    return [line.split() for line in lines]


RUNNERS_HEADER = ["ID", "PROJECT", "STATE", "PID", "CPU%", "RSS", "UPTIME", "EXIT", "COMMAND"]


# --- the README's first session ---------------------------------------------------------
def test_readme_first_session(daemon, home, project_dir):
    cli = Cli(home)
    assert cli.ok("new", "demo", "--path", project_dir) == (
        f"created project demo at {project_dir.resolve()}\n"
    )
    command = [sys.executable, "-c", "import time; time.sleep(600)"]
    out = cli.ok("launch", "demo", "--", *command)
    assert re.fullmatch(r"[0-9]+\n", out), out  # only the id
    rid = int(out)

    # `runners`: running, and once a sweep sampled it, CPU% and RSS filled in
    runner = wait_for(
        lambda: (r := daemon.runner(rid))["state"] == "running" and r["rss_bytes"] and r,
        what="the runner to run and be sampled",
    )
    plain_runners, json_runners, json_status, plain_status = cli.many(
        ("runners",), ("runners", "--json"), ("status", "--json"), ("status",)
    )
    rows = table(ok(plain_runners))
    assert rows[0] == RUNNERS_HEADER
    assert len(rows) == 2
    row = rows[1]
    assert row[:4] == [str(rid), "demo", "running", str(runner["pid"])]
    assert re.fullmatch(r"[0-9]+\.[0-9]", row[4]), row
    assert re.fullmatch(r"[0-9]+(\.[0-9])?[BKMGT]", row[5]) and row[5] != "0B", row
    assert re.fullmatch(r"[0-9]+s|[0-9]+m[0-9]{2}s", row[6]), row
    assert row[7] == "-"
    shown = " ".join(row[8:])
    assert shlex.join(command).startswith(shown.removesuffix("...")), shown

    listed = as_json(json_runners)
    assert len(listed) == 1
    obj = listed[0]
    assert set(obj) >= RUNNER_FIELDS
    assert (obj["id"], obj["project"], obj["state"], obj["pid"]) == (
        rid, "demo", "running", runner["pid"]
    )  # fmt: skip
    assert (obj["exit_code"], obj["reason"], obj["ended_at"]) == (None, None, None)
    assert obj["last_heartbeat"] is None  # a supervised runner does not heartbeat
    assert obj["command"] == command
    assert isinstance(obj["cpu_percent"], float) and obj["cpu_percent"] >= 0
    assert isinstance(obj["rss_bytes"], int) and obj["rss_bytes"] > 0
    datetime.fromisoformat(obj["started_at"])

    status = as_json(json_status)
    assert status["version"] == __version__
    assert status["api_url"] == daemon.api.base_url
    assert status["pid"] == daemon.proc.pid
    assert status["data_dir"] == str(home)
    assert 0 < status["uptime_s"] < 600
    assert status["runners"] == {s: int(s == "running") for s in STATES}
    assert (status["active"], status["queued"], status["projects"]) == (1, 0, 1)
    plain = ok(plain_status).splitlines()
    assert plain[0] == f"version:  {__version__}"
    assert "runners:  1 running" in plain

    # `kill`: SIGTERM to the group; the runner ends stopped with 143
    assert cli.ok("kill", rid) == f"stopping runner {rid}\n"
    daemon.wait_state(rid, "stopped")
    event_ids = [e["id"] for e in daemon.api.get("/api/v1/events")]
    active, everything, everything_json, events_json, since_json, events_plain = cli.many(
        ("runners",),
        ("runners", "--all"),
        ("runners", "--all", "--json"),
        ("events", "--json"),
        ("events", "--since", event_ids[-2], "--json"),
        ("events",),
    )
    assert ok(active) == "no active runners (use --all to include finished ones)\n"
    finished = as_json(everything_json)
    assert len(finished) == 1
    assert (finished[0]["id"], finished[0]["state"], finished[0]["exit_code"]) == (
        rid, "stopped", 143
    )  # fmt: skip
    assert finished[0]["reason"] == "stopped by user"
    assert finished[0]["ended_at"] is not None
    rows = table(ok(everything))
    assert rows[0] == [*RUNNERS_HEADER, "REASON"]
    assert rows[1][:3] == [str(rid), "demo", "stopped"]
    assert rows[1][7] == "143"
    assert " ".join(rows[1][-3:]) == "stopped by user"
    wait_for(lambda: not psutil.pid_exists(runner["pid"]), what="the runner's process to go")

    # `events`: what happened to it, in order
    events = as_json(events_json)
    assert events[0]["type"] == "supervisor.started"
    ids = [e["id"] for e in events]
    assert ids == event_ids  # in order, each once
    mine = [(e["type"], e["title"]) for e in events if e["runner_id"] == rid]
    assert mine == [
        ("runner.starting", f"runner {rid} (demo) is starting"),
        ("runner.running", f"runner {rid} (demo) is running"),
        ("runner.stopping", f"runner {rid} (demo) is stopping"),
        ("runner.stopped", f"runner {rid} (demo) was stopped"),
    ]
    assert [e["id"] for e in as_json(since_json)] == [ids[-1]]
    rows = table(ok(events_plain))
    assert rows[0] == ["ID", "TIME", "SEVERITY", "TYPE", "TITLE"]
    assert [r[4] for r in rows[1:]] == [e["type"] for e in events]


# --- a shared supervisor for the rest -----------------------------------------------------
@dataclass
class Live:
    daemon: Daemon
    root: Path
    folder: Path
    cli: Cli
    finished: int  # a runner that exited 0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("cli-home")
    folder = tmp_path_factory.mktemp("cli-project")
    env = {**os.environ, "STRATAVORE_HOME": str(root), "PYTHONPATH": str(REPO)}
    daemon = Daemon(root, ["--sweep-interval", "0.5", "--heartbeat-ttl", "600"], env)
    try:
        daemon.start()
        daemon.project("demo", folder)
        finished = daemon.launch("demo", [sys.executable, "-c", ""])["id"]
        daemon.wait_state(finished, "exited")
        yield Live(daemon, root, folder, Cli(root), finished)
    finally:
        daemon.close()


def test_profiles_lists_the_builtins(live):
    profiles = live.cli.json("profiles")
    assert [p["name"] for p in profiles] == ["aider", "claude", "codex", "gemini", "shell"]
    assert all(p["builtin"] for p in profiles)
    assert {p["name"]: p["binaries"] for p in profiles} == {
        "aider": ["aider"], "claude": ["claude"], "codex": ["codex"], "gemini": ["gemini"],
        "shell": [],
    }  # fmt: skip
    claude = next(p for p in profiles if p["name"] == "claude")
    assert claude["command"] == [
        "{binary}", "--session-id", "{session_id}", "--settings", "{hooks}", "{args}"
    ]  # fmt: skip
    assert claude["hooks"] and claude["resume"] and claude["batch"]
    assert [p["name"] for p in profiles if p["resume"]] == ["claude", "codex", "gemini"]
    rows = table(live.cli.ok("profiles"))
    assert rows[0] == ["NAME", "PROGRAM", "MODES", "ATTENTION", "ACCOUNT", "BUILTIN"]
    assert rows[1] == ["aider", "aider", "interactive", "batch", "heuristic", "-", "yes"]
    assert rows[2] == ["claude", "claude", "interactive", "batch", "resume", "hooks", "default",
                       "yes"]  # fmt: skip


def test_launch_over_the_cap(live):
    cli = live.cli
    assert cli.ok("new", "capped", "--path", live.folder, "--max-runners", "1") == (
        f"created project capped at {live.folder.resolve()}\n"
    )
    assert live.daemon.api.get("/api/v1/projects/capped")["max_runners"] == 1
    first = live.daemon.launch("capped", SLEEP)["id"]
    cap = (
        "Project 'capped' already has 1 of 1 runners; stop one or raise the cap "
        "with `stratavore set max_runners_per_project N --project capped`."
    )
    assert cli.fails("launch", "capped", "--no-queue", "--", *SLEEP, status=5) == (
        "stratavore: " + cap
    )
    assert [r["id"] for r in live.daemon.api.get("/api/v1/runners", project="capped", all=1)] == [
        first
    ]

    # without --no-queue it is queued: the id on stdout, the reason on stderr
    result = cli("launch", "capped", "--", *SLEEP)
    assert result.returncode == 0
    queued = int(result.stdout)
    assert result.stdout == f"{queued}\n"
    assert result.stderr.startswith(f"runner {queued} is queued: {cap.rstrip('.')}; ")
    assert result.stderr.endswith("it starts when a slot frees up\n")
    assert result.stderr.count("\n") == 1
    assert live.daemon.runner(queued)["state"] == "queued"
    assert cli.fails("restart", queued, status=5) == (
        f"stratavore: Runner {queued} is queued; it starts when a slot frees."
    )
    # killing a queued runner ends it at once, and kill says so
    assert cli.ok("kill", queued) == f"runner {queued} is stopped\n"
    live.daemon.api.post(f"/api/v1/runners/{first}/stop")
    live.daemon.wait_state(first, "stopped")


def stamped_lines(text: str) -> list[tuple[datetime, str]]:
    out = []
    for line in text.splitlines():
        match = STAMPED.fullmatch(line)
        assert match, f"not a timestamped line: {line!r}"
        out.append((datetime.fromisoformat(match[1]), match[2]))
    return out


def test_logs_and_logs_follow(live):
    cli = live.cli
    live.daemon.project("logs", live.folder)
    rid = int(cli.ok("launch", "logs", "--", sys.executable, "-c", FIVE_LINES))
    follower = subprocess.Popen(
        cli.argv(("logs", rid, "-f")),
        env=cli.env,
        cwd=live.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = follower.communicate(timeout=30)  # it must stop by itself
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert (follower.returncode, err) == (0, "")
    lines = stamped_lines(out)
    assert [text for _, text in lines] == [f"line {i}" for i in range(1, 6)]
    stamps = [ts for ts, _ in lines]
    assert stamps == sorted(stamps)
    runner = live.daemon.runner(rid)
    assert (runner["state"], runner["exit_code"]) == ("exited", 0)
    started = datetime.fromisoformat(runner["started_at"])
    ended = datetime.fromisoformat(runner["ended_at"])
    assert started <= stamps[0] and stamps[-1] <= ended + timedelta(seconds=2)

    whole, last_two, none = cli.many(
        ("logs", rid), ("logs", rid, "-n", "2"), ("logs", rid, "-n", "0")
    )
    assert ok(whole) == out
    assert ok(last_two) == "".join(out.splitlines(keepends=True)[-2:])
    assert ok(none) == ""


def test_logs_without_n_prints_the_whole_log(live):
    live.daemon.project("long", live.folder)
    script = "for i in range(1, 151): print(f'line {i}')"
    rid = int(live.cli.ok("launch", "long", "--", sys.executable, "-c", script))
    live.daemon.wait_state(rid, "exited")
    lines = stamped_lines(live.cli.ok("logs", rid))
    assert [text for _, text in lines] == [f"line {i}" for i in range(1, 151)]


def test_restart_gives_a_new_process(live):
    cli = live.cli
    live.daemon.project("again", live.folder)
    rid = int(cli.ok("launch", "again", "--", *SLEEP))
    old = live.daemon.wait_state(rid, "running")["pid"]
    # a running runner is stopped, then started again by the supervisor
    assert cli.ok("restart", rid) == f"restarted runner {rid} (stopping)\n"
    new = wait_for(
        lambda: (r := live.daemon.runner(rid))["state"] == "running" and r["pid"] != old and r,
        what="the runner to run again",
    )
    assert new["restarts"] == 1
    assert psutil.Process(new["pid"]).is_running()
    assert not psutil.pid_exists(old)
    # a finished runner starts again at once
    assert cli.ok("kill", rid) == f"stopping runner {rid}\n"
    live.daemon.wait_state(rid, "stopped")
    assert cli.ok("restart", rid) == f"restarted runner {rid} (starting)\n"
    third = live.daemon.runner(rid)
    assert third["pid"] not in (None, old, new["pid"])
    assert third["restarts"] == 2
    live.daemon.api.post(f"/api/v1/runners/{rid}/stop")
    live.daemon.wait_state(rid, "stopped")
    events = [
        e["type"]
        for e in live.daemon.api.get("/api/v1/events", limit=10_000)
        if e["runner_id"] == rid
    ]
    cycle = ["runner.starting", "runner.running", "runner.stopping", "runner.stopped"]
    stopped_while_starting = ["runner.starting", "runner.stopping", "runner.stopped"]
    # (the last start may or may not have outlived the 1 s start window before the stop)
    assert events in (cycle * 3, cycle * 2 + stopped_while_starting)


# --- bad input: documented exit status, one line on stderr ----------------------------------
# (argv, exit status, the stderr line; a trailing "*": its start); {finished}, {folder} and
# {file} are filled in
BAD = [
    (["kill", "abc"], 2, "stratavore: runner id must be a number, got 'abc'"),
    (["kill", "999"], 4, "stratavore: Runner 999 does not exist."),
    (["kill", "{finished}"], 5, "stratavore: Runner {finished} is not running (it is exited)."),
    (["restart", "999"], 4, "stratavore: Runner 999 does not exist."),
    (["logs", "999"], 4, "stratavore: Runner 999 does not exist."),
    (["logs", "{finished}", "-n", "-1"], 2, "stratavore: -n must be 0 or more, got -1"),
    (["new", "demo", "--path", "{folder}"], 5, "stratavore: Project 'demo' already exists."),
    (["new", "x", "--path", "/nonexistent"], 2, "stratavore: folder /nonexistent does not exist"),
    (["new", "x", "--path", "{file}"], 2, "stratavore: {file} is not a folder"),
    (["new", "my project", "--path", "{folder}"], 2,
     "stratavore: Invalid request: Expected `str` matching regex *"),
    (["archive", "nosuch"], 4, "stratavore: Project 'nosuch' does not exist."),
    (["runners", "nosuch"], 4, "stratavore: Project 'nosuch' does not exist."),
    (["launch", "nosuchproject", "--", "true"], 4,
     "stratavore: Project 'nosuchproject' does not exist."),
    (["launch", "demo", "--", "nosuchcmd-xyz"], 2,
     "stratavore: command 'nosuchcmd-xyz' not found on PATH (searched: *"),
    (["launch", "demo"], 2, "stratavore: launch needs --profile NAME or a command after --"),
    (["launch", "demo", "--profile", "nosuch"], 4, "stratavore: Profile 'nosuch' does not exist."),
    (["events", "--since", "-1"], 2,
     "stratavore: Query parameter since must be a whole number >= 0, got '-1'."),
    (["--timeout", "0", "status"], 2,
     "stratavore: --timeout must be a number greater than 0 and at most 86400, got 0"),
    (["watch", "--interval", "0"], 2,
     "stratavore: --interval must be a number greater than 0 and at most 86400, got 0"),
]  # fmt: skip


ARGPARSE_ERRORS = [
    ["kill"],
    ["logs", "1", "-n", "abc"],
    ["runners", "--", "x"],
    ["profiles", "extra"],
    ["nosuchcommand"],
]


def fill(live: Live, text: str) -> str:
    return (
        text.replace("{finished}", str(live.finished))
        .replace("{folder}", str(live.folder))
        .replace("{file}", str(live.folder / "notes.txt"))
    )


@dataclass
class BadRuns:
    results: dict[tuple[str, ...], subprocess.CompletedProcess[str]]
    before: Any
    after: Any


@pytest.fixture(scope="module")
def bad_runs(live: Live) -> BadRuns:
    """Every bad command line of this module, run at the same time (none may change anything),
    with the supervisor's projects and runners before and after."""
    (live.folder / "notes.txt").write_text("not a folder\n")

    def state() -> Any:
        projects = live.daemon.api.get("/api/v1/projects", all=1)
        runners = live.daemon.api.get("/api/v1/runners", all=1)
        return projects, [(r["id"], r["state"], r["exit_code"]) for r in runners]

    argvs = [tuple(fill(live, a) for a in argv) for argv, _, _ in BAD]
    argvs += [tuple(argv) for argv in ARGPARSE_ERRORS]
    before = state()
    results = dict(zip(argvs, live.cli.many(*argvs), strict=True))
    return BadRuns(results, before, state())


def test_bad_input_changes_nothing(bad_runs):
    assert bad_runs.after == bad_runs.before


@pytest.mark.parametrize(
    ("argv", "status", "line"), [pytest.param(*case, id=" ".join(case[0])) for case in BAD]
)
def test_bad_input_exit_status_and_one_line(live, bad_runs, argv, status, line):
    result = bad_runs.results[tuple(fill(live, a) for a in argv)]
    got = one_line_error(result, status)
    expected = fill(live, line)
    if expected.endswith("*"):
        assert got.startswith(expected[:-1]) and got.endswith("."), got
    else:
        assert got == expected


@pytest.mark.parametrize("argv", ARGPARSE_ERRORS, ids=" ".join)
def test_argument_errors_exit_2(bad_runs, argv):
    result = bad_runs.results[tuple(argv)]
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("stratavore: ")


@pytest.mark.parametrize("argv", ARGPARSE_ERRORS, ids=" ".join)
def test_argument_errors_are_one_line(bad_runs, argv):
    one_line_error(bad_runs.results[tuple(argv)], 2)


def test_wrong_admin_token_exits_6(live, tmp_path):
    """A data dir whose api-token is not the supervisor's (copied runtime file)."""
    fake = tmp_path / "fake-home"
    fake.mkdir()
    (fake / "supervisor.json").write_text((live.root / "supervisor.json").read_text())
    (fake / "api-token").write_text("not-the-token")
    assert Cli(fake).fails("status", status=6) == "stratavore: Wrong bearer token."


# --- no supervisor ----------------------------------------------------------------------------
def test_no_supervisor_exits_3(home):
    cli = Cli(home)
    message = (
        f"stratavore: No Stratavore supervisor is running for {home}; "
        "start one with `stratavore daemon`."
    )
    argvs = [("runners",), ("status", "--json"), ("kill", "1"), ("launch", "demo", "--", "true")]
    port = ("daemon", "--port", "70000")  # argument checks come first
    *results, bad_port = cli.many(*argvs, port)
    for argv, result in zip(argvs, results, strict=True):
        assert one_line_error(result, 3) == message, argv
    assert one_line_error(bad_port, 2) == (
        "stratavore: --port must be between 0 and 65535, got 70000"
    )
    assert not (home / "supervisor.json").exists()


def fake_runtime(root: Path, url: str, pid: int) -> None:
    """A runtime file for a supervisor at ``url`` whose process is ``pid``."""
    created = psutil.Process(pid).create_time() if psutil.pid_exists(pid) else 0.0
    info = {"pid": pid, "create_time": created, "port": 1, "url": url, "version": __version__}
    (root / "supervisor.json").write_text(json.dumps(info))
    (root / "api-token").write_text("token")


def test_supervisor_that_does_not_answer_exits_3(home):
    """The runtime file names a live process, but its port refuses connections, or accepts
    them and never answers."""
    cli = Cli(home)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        fake_runtime(home, silent_url, os.getpid())
        timed_out = cli("--timeout", "0.5", "status")
    fake_runtime(home, refused_url, os.getpid())
    refused = cli("runners")
    assert one_line_error(timed_out, 3).startswith(
        f"stratavore: The supervisor at {silent_url} did not answer ("
    )
    assert one_line_error(refused, 3).startswith(
        f"stratavore: The supervisor at {refused_url} did not answer ("
    )


def test_stale_runtime_file_of_a_dead_supervisor_exits_3(home):
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait(10)
    fake_runtime(home, "http://127.0.0.1:1", gone.pid)
    assert Cli(home).fails("runners", status=3) == (
        f"stratavore: No Stratavore supervisor is running for {home}; "
        "start one with `stratavore daemon`."
    )


def test_kill_all_of_a_project_stops_only_that_project(daemon, project_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    daemon.project("demo", project_dir)
    daemon.project("other", other)
    env = {**os.environ, "STRATAVORE_HOME": str(daemon.root), "PYTHONPATH": str(REPO)}
    demo = [daemon.launch("demo", SLEEP)["id"] for _ in range(3)]
    keep = daemon.launch("other", SLEEP)["id"]
    result = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "kill", "--all", "--project", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "".join(f"stopping runner {i}\n" for i in demo)
    for runner_id in demo:
        assert daemon.wait_state(runner_id, "stopped")["exit_code"] == 143
    assert daemon.runner(keep)["state"] in ("starting", "running")
    result = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "kill", "--all"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.stdout == f"stopping runner {keep}\n"
    assert daemon.wait_state(keep, "stopped")["reason"] == "stopped by user"


def test_raising_a_cap_with_set_starts_the_queued_runner(daemon, project_dir):
    env = {**os.environ, "STRATAVORE_HOME": str(daemon.root), "PYTHONPATH": str(REPO)}

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "supervisor.cli", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    daemon.project("demo", project_dir, max_runners=1)
    daemon.launch("demo", SLEEP)
    queued = daemon.launch("demo", SLEEP)["id"]
    assert daemon.runner(queued)["state"] == "queued"
    result = cli("set", "max_runners_per_project", "2", "--project", "demo")
    assert (result.returncode, result.stdout) == (0, "project demo: max_runners 2\n")
    daemon.wait_state(queued, {"starting", "running"})

    result = cli("set", "max_runners_global", "30")
    assert result.stdout == "max_runners_global = 30 (applies now)\n"
    result = cli("set", "sweep_interval", "10")
    assert result.stdout == "sweep_interval = 10.0 (applies at next start)\n"
    settings = {s["key"]: s for s in json.loads(cli("settings", "--json").stdout)}
    assert settings["max_runners_global"]["value"] == 30
    assert settings["sweep_interval"]["saved"] == 10.0
    assert settings["sweep_interval"]["value"] == 0.5  # the daemon's --sweep-interval, for now
    assert settings["sweep_interval"]["default"] == 30.0
    assert settings["stop_timeout"]["saved"] is None

    bad = cli("set", "max_runners_global", "many")
    assert (bad.returncode, bad.stderr) == (
        2,
        "stratavore: Setting max_runners_global takes int values.\n",
    )
    bad = cli("set", "stop_timeout", "5", "--project", "demo")
    assert (bad.returncode, bad.stderr) == (
        2,
        "stratavore: --project goes only with max_runners_per_project\n",
    )
