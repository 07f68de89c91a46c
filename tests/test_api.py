"""The loopback HTTP API of a real ``stratavore daemon``: bad input to every route, tokens, the
OpenAPI document, /metrics, and the daemon's runtime files.

Most tests share one module-scoped supervisor ("the world") with a fixed cast of projects and
runners; every bad-input test snapshots the SQLite file and the API's listings before and after
its request, so a rejected request that writes anything fails. Tests that need a pristine or
short-lived supervisor use the per-test ``daemon`` fixture.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from supervisor import __version__
from supervisor.api.app import ROUTES
from supervisor.api.routes import Audience
from supervisor.core import paths, runtime
from tests.conftest import REPO, SLEEP, Daemon, api_error

DAEMON_CMD = [sys.executable, "-m", "supervisor.cli", "daemon"]
NOT_A_PID = 2**31 - 1  # above any pid_max, so never a running process


# --- the shared world ----------------------------------------------------------------------------
@dataclass
class World:
    """One supervisor with a fixed cast:

    - ``demo``: ``busy`` (running, supervised), ``agent`` and ``other`` (running, registered,
      with their tokens), ``finished`` (stopped) and ``agent_done`` (registered, exited);
    - ``capped`` (max_runners 1): ``capped_runner`` (running) and ``queued`` (queued);
    - ``old``: archived, no runners.
    """

    daemon: Daemon
    root: Path
    folder: Path
    session: requests.Session
    runners: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.daemon.api.base_url

    @property
    def admin(self) -> str:
        token = self.daemon.api.token
        assert token is not None
        return token

    def id(self, name: str) -> int:
        return self.runners[name]["id"]

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        params: dict[str, str] | None = None,
        token: str | None = "admin",
        auth: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """One real HTTP request; ``token="admin"`` sends the admin token, ``None`` none,
        ``auth`` a whole Authorization header; ``headers`` are sent as given (after those)."""
        sent: dict[str, str] = {}
        if auth is not None:
            sent["Authorization"] = auth
        elif token is not None:
            sent["Authorization"] = f"Bearer {self.admin if token == 'admin' else token}"
        data = raw
        if raw is None and body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        return self.session.request(
            method, self.url + path, data=data, params=params, headers=sent, timeout=10
        )


def _sleeper(root: Path) -> subprocess.Popen[bytes]:
    """A process of our own for stratavore-agent-style registrations (found by the
    leftover-process sweep through its STRATAVORE_HOME)."""
    env = {**os.environ, "STRATAVORE_HOME": str(root)}
    return subprocess.Popen(SLEEP, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("api-home")
    folder = tmp_path_factory.mktemp("api-project")
    env = {**os.environ, "STRATAVORE_HOME": str(root), "PYTHONPATH": str(REPO)}
    # A long TTL: registered runners that never heartbeat must not be flagged (that writes
    # events) while the module runs.
    daemon = Daemon(root, ["--sweep-interval", "0.5", "--heartbeat-ttl", "600"], env)
    session = requests.Session()
    session.trust_env = False
    w = World(daemon, root, folder, session)
    try:
        daemon.start()
        daemon.project("demo", folder)
        daemon.project("capped", folder, max_runners=1)
        daemon.project("old", folder)
        daemon.api.post("/api/v1/projects/old/archive")
        w.runners["busy"] = daemon.launch("demo", SLEEP)
        w.runners["capped_runner"] = daemon.launch("capped", SLEEP)
        w.runners["queued"] = daemon.launch("capped", SLEEP)
        assert w.runners["queued"]["state"] == "queued"
        w.runners["finished"] = daemon.launch("demo", SLEEP)
        for name in ("agent", "other", "agent_done"):
            proc = _sleeper(root)
            w.procs.append(proc)
            answer = daemon.api.post(
                "/api/v1/runners/register",
                {"command": ["agent", name], "pid": proc.pid, "cwd": "/", "project": "demo"},
            )
            w.runners[name], w.tokens[name] = answer["runner"], answer["token"]
        done = w.id("agent_done")
        daemon.api.post(
            f"/api/v1/runners/{done}/heartbeat", {"exit_code": 0}, w.tokens["agent_done"]
        )
        assert daemon.runner(done)["state"] == "exited"
        daemon.wait_state(w.id("finished"), "running")
        daemon.api.post(f"/api/v1/runners/{w.id('finished')}/stop")
        daemon.wait_state(w.id("finished"), "stopped")
        daemon.wait_state(w.id("busy"), "running")
        daemon.wait_state(w.id("capped_runner"), "running")
        yield w
    finally:
        for proc in w.procs:
            proc.kill()
            proc.wait(10)
        daemon.close()
        session.close()


def snapshot(w: World) -> dict[str, Any]:
    """What a rejected request must not change: the DB's rows and the API's listings."""
    db = paths.db_path(w.root)
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        counts = {
            table: con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("project", "profile", "runner", "event", "setting")
        }
        runners = con.execute(
            "SELECT id, state, reason, pid, exit_code, restarts, unresponsive, ended_at, "
            "stop_requested_at FROM runner ORDER BY id"
        ).fetchall()
        projects = con.execute(
            "SELECT id, name, path, archived, max_runners FROM project ORDER BY id"
        ).fetchall()
        profiles = con.execute("SELECT name, command, env FROM profile ORDER BY name").fetchall()
        last_event = con.execute("SELECT MAX(id) FROM event").fetchone()[0]
    keep = ("id", "state", "reason", "pid", "exit_code", "unresponsive", "last_heartbeat")
    api_runners = [{k: r[k] for k in keep} for r in w.daemon.api.get("/api/v1/runners", all=1)]
    return {
        "counts": counts,
        "runners": runners,
        "projects": projects,
        "profiles": profiles,
        "last_event": last_event,
        "api_runners": api_runners,
        "api_projects": w.daemon.api.get("/api/v1/projects", all=1),
        "api_profiles": w.daemon.api.get("/api/v1/profiles"),
        "api_events": w.daemon.api.get("/api/v1/events", since=last_event - 1),
    }


ONE_SENTENCE = re.compile(r"\S[^\n]*\.")


def assert_error(
    response: requests.Response, status: int, code: str, message: str | re.Pattern[str]
) -> str:
    """``response`` is ``{"error": code, "message": ...}`` with ``status``; ``message`` is the
    exact text or a pattern it must match from its start."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message"}, body
    assert body["error"] == code, body
    text = body["message"]
    assert ONE_SENTENCE.fullmatch(text), f"not one sentence: {text!r}"
    if isinstance(message, str):
        assert text == message
    else:
        assert message.match(text), text
    return text


def invalid(field_path: str) -> re.Pattern[str]:
    """msgspec's validation message, as the API wraps it, naming the bad field."""
    return re.compile(rf"Invalid request: .+ - at `{re.escape(field_path)}`\.$")


def invalid_top(what: str) -> re.Pattern[str]:
    return re.compile(rf"Invalid request: .*{re.escape(what)}.*\.$")


# --- bad input to every route --------------------------------------------------------------------
NOT_JSON = b"{not json"
# (case id, method, path template, request kwargs, status, error code, message or pattern)
# Templates: {busy}, {queued}, {finished}, {agent}, {agent_done}: runner ids; {folder}: the
# project folder; {file}: a file inside it.
CASES: list[tuple[str, str, str, dict[str, Any], int, str, str | re.Pattern[str]]] = [
    # health and openapi take no input: only the wrong method
    ("health-post", "POST", "/api/v1/health", {"body": {}}, 405, "method_not_allowed",
     "/api/v1/health does not take POST; use GET, HEAD."),
    ("openapi-delete", "DELETE", "/api/v1/openapi.json", {}, 405, "method_not_allowed",
     "/api/v1/openapi.json does not take DELETE; use GET, HEAD."),
    ("status-post", "POST", "/api/v1/status", {"body": {}}, 405, "method_not_allowed",
     "/api/v1/status does not take POST; use GET, HEAD."),
    ("profiles-put", "PUT", "/api/v1/profiles", {"body": {}}, 405, "method_not_allowed",
     "/api/v1/profiles does not take PUT; use GET, HEAD, POST."),
    ("unknown-route", "GET", "/api/v1/nothing", {}, 404, "not_found",
     "No route GET /api/v1/nothing."),
    # GET /projects
    ("projects-all-bad", "GET", "/api/v1/projects", {"params": {"all": "maybe"}}, 400,
     "bad_request", "Query parameter all must be 1 or 0."),
    # POST /projects
    ("project-malformed", "POST", "/api/v1/projects", {"raw": NOT_JSON}, 400, "bad_request",
     "The request body is not valid JSON."),
    ("project-not-object", "POST", "/api/v1/projects", {"body": ["demo"]}, 422, "invalid",
     invalid_top("Expected `object`, got `array`")),
    ("project-empty-body", "POST", "/api/v1/projects", {"raw": b""}, 422, "invalid",
     invalid_top("missing required field `name`")),
    ("project-unknown-field", "POST", "/api/v1/projects",
     {"body": {"name": "new1", "path": "{folder}", "colour": "red"}}, 422, "invalid",
     invalid_top("unknown field `colour`")),
    ("project-name-type", "POST", "/api/v1/projects",
     {"body": {"name": 7, "path": "{folder}"}}, 422, "invalid", invalid("$.name")),
    ("project-name-space", "POST", "/api/v1/projects",
     {"body": {"name": "my project", "path": "{folder}"}}, 422, "invalid", invalid("$.name")),
    ("project-name-too-long", "POST", "/api/v1/projects",
     {"body": {"name": "a" * 65, "path": "{folder}"}}, 422, "invalid", invalid("$.name")),
    ("project-name-dash", "POST", "/api/v1/projects",
     {"body": {"name": "-x", "path": "{folder}"}}, 422, "invalid", invalid("$.name")),
    ("project-name-empty", "POST", "/api/v1/projects",
     {"body": {"name": "", "path": "{folder}"}}, 422, "invalid", invalid("$.name")),
    ("project-path-missing", "POST", "/api/v1/projects", {"body": {"name": "new1"}}, 422,
     "invalid", invalid_top("missing required field `path`")),
    ("project-path-type", "POST", "/api/v1/projects",
     {"body": {"name": "new1", "path": ["/tmp"]}}, 422, "invalid", invalid("$.path")),
    ("project-path-empty", "POST", "/api/v1/projects",
     {"body": {"name": "new1", "path": ""}}, 422, "invalid", invalid("$.path")),
    ("project-path-relative", "POST", "/api/v1/projects",
     {"body": {"name": "new1", "path": "src/demo"}}, 422, "invalid",
     "Project path must be absolute, got 'src/demo'."),
    ("project-path-absent", "POST", "/api/v1/projects",
     {"body": {"name": "new1", "path": "/nonexistent/stratavore"}}, 422, "invalid",
     "Folder /nonexistent/stratavore does not exist."),
    ("project-path-file", "POST", "/api/v1/projects",
     {"body": {"name": "new1", "path": "{file}"}}, 422, "invalid", "Folder {file} does not exist."),
    ("project-max-runners-zero", "POST", "/api/v1/projects",
     {"body": {"name": "new1", "path": "{folder}", "max_runners": 0}}, 422, "invalid",
     invalid("$.max_runners")),
    ("project-max-runners-type", "POST", "/api/v1/projects",
     {"body": {"name": "new1", "path": "{folder}", "max_runners": "2"}}, 422, "invalid",
     invalid("$.max_runners")),
    ("project-duplicate", "POST", "/api/v1/projects",
     {"body": {"name": "demo", "path": "{folder}"}}, 409, "already_exists",
     "Project 'demo' already exists."),
    ("project-duplicate-archived", "POST", "/api/v1/projects",
     {"body": {"name": "old", "path": "{folder}"}}, 409, "already_exists",
     "Project 'old' already exists."),
    # GET /projects/{name}
    ("project-unknown", "GET", "/api/v1/projects/nosuch", {}, 404, "not_found",
     "Project 'nosuch' does not exist."),
    # POST /projects/{name}/archive
    ("archive-unknown", "POST", "/api/v1/projects/nosuch/archive", {}, 404, "not_found",
     "Project 'nosuch' does not exist."),
    ("archive-active", "POST", "/api/v1/projects/demo/archive", {}, 409, "conflict",
     re.compile(r"Project 'demo' has \d+ active runners; stop them first\.$")),
    # POST /profiles
    ("profile-malformed", "POST", "/api/v1/profiles", {"raw": NOT_JSON}, 400, "bad_request",
     "The request body is not valid JSON."),
    ("profile-unknown-field", "POST", "/api/v1/profiles",
     {"body": {"name": "p1", "command": ["true"], "shell": True}}, 422, "invalid",
     invalid_top("unknown field `shell`")),
    ("profile-command-string", "POST", "/api/v1/profiles",
     {"body": {"name": "p1", "command": "claude -p x"}}, 422, "invalid", invalid("$.command")),
    ("profile-command-empty", "POST", "/api/v1/profiles",
     {"body": {"name": "p1", "command": []}}, 422, "invalid", invalid("$.command")),
    ("profile-command-empty-arg", "POST", "/api/v1/profiles",
     {"body": {"name": "p1", "command": [""]}}, 422, "invalid", invalid("$.command[0]")),
    ("profile-restart-enum", "POST", "/api/v1/profiles",
     {"body": {"name": "p1", "command": ["true"], "restart": "sometimes"}}, 422, "invalid",
     invalid("$.restart")),
    ("profile-exit-codes-type", "POST", "/api/v1/profiles",
     {"body": {"name": "p1", "command": ["true"], "expected_exit_codes": ["0"]}}, 422,
     "invalid", invalid("$.expected_exit_codes[0]")),
    ("profile-env-type", "POST", "/api/v1/profiles",
     {"body": {"name": "p1", "command": ["true"], "env": {"A": 1}}}, 422, "invalid",
     invalid("$.env[...]")),
    ("profile-name-space", "POST", "/api/v1/profiles",
     {"body": {"name": "my profile", "command": ["true"]}}, 422, "invalid", invalid("$.name")),
    ("profile-duplicate-builtin", "POST", "/api/v1/profiles",
     {"body": {"name": "claude", "command": ["true"]}}, 409, "already_exists",
     "Profile 'claude' already exists."),
    # GET /profiles/{name}, DELETE /profiles/{name}
    ("profile-unknown", "GET", "/api/v1/profiles/nosuch", {}, 404, "not_found",
     "Profile 'nosuch' does not exist."),
    ("profile-delete-unknown", "DELETE", "/api/v1/profiles/nosuch", {}, 404, "not_found",
     "Profile 'nosuch' does not exist."),
    ("profile-delete-builtin", "DELETE", "/api/v1/profiles/claude", {}, 409, "conflict",
     "Profile 'claude' is built in; copy it under a new name instead."),
    # GET /runners
    ("runners-unknown-project", "GET", "/api/v1/runners", {"params": {"project": "nosuch"}},
     404, "not_found", "Project 'nosuch' does not exist."),
    ("runners-all-bad", "GET", "/api/v1/runners", {"params": {"all": "2"}}, 400,
     "bad_request", "Query parameter all must be 1 or 0."),
    # POST /runners (launch)
    ("launch-malformed", "POST", "/api/v1/runners", {"raw": NOT_JSON}, 400, "bad_request",
     "The request body is not valid JSON."),
    ("launch-unknown-field", "POST", "/api/v1/runners",
     {"body": {"project": "demo", "command": ["true"], "cwd": "/"}}, 422, "invalid",
     invalid_top("unknown field `cwd`")),
    ("launch-command-string", "POST", "/api/v1/runners",
     {"body": {"project": "demo", "command": "true"}}, 422, "invalid", invalid("$.command")),
    ("launch-project-type", "POST", "/api/v1/runners",
     {"body": {"project": 1, "command": ["true"]}}, 422, "invalid", invalid("$.project")),
    ("launch-project-name", "POST", "/api/v1/runners",
     {"body": {"project": "no such", "command": ["true"]}}, 422, "invalid",
     invalid("$.project")),
    ("launch-no-queue-type", "POST", "/api/v1/runners",
     {"body": {"project": "demo", "command": ["true"], "no_queue": "yes"}}, 422, "invalid",
     invalid("$.no_queue")),
    ("launch-restart-enum", "POST", "/api/v1/runners",
     {"body": {"project": "demo", "command": ["true"], "restart": "sometimes"}}, 422,
     "invalid", invalid("$.restart")),
    ("launch-env-type", "POST", "/api/v1/runners",
     {"body": {"project": "demo", "command": ["true"], "env": ["A=1"]}}, 422, "invalid",
     invalid("$.env")),
    ("launch-nothing", "POST", "/api/v1/runners", {"body": {"project": "demo"}}, 422,
     "invalid", "Give a command to run or a profile to launch."),
    ("launch-empty-command", "POST", "/api/v1/runners",
     {"body": {"project": "demo", "command": []}}, 422, "invalid",
     "Give a command to run or a profile to launch."),
    ("launch-not-on-path", "POST", "/api/v1/runners",
     {"body": {"project": "demo", "command": ["nosuchcmd-xyz", "--flag"]}}, 422,
     "command_not_found",
     re.compile(r"command 'nosuchcmd-xyz' not found on PATH \(searched: /.+\)\.$")),
    ("launch-not-executable", "POST", "/api/v1/runners",
     {"body": {"project": "demo", "command": ["./notes.txt"]}}, 422, "command_not_found",
     "command './notes.txt' is not an executable file (looked at {file})."),
    ("launch-unknown-project", "POST", "/api/v1/runners",
     {"body": {"project": "nosuch", "command": ["true"]}}, 404, "not_found",
     "Project 'nosuch' does not exist."),
    ("launch-unknown-profile", "POST", "/api/v1/runners",
     {"body": {"project": "demo", "profile": "nosuch"}}, 404, "not_found",
     "Profile 'nosuch' does not exist."),
    ("launch-archived", "POST", "/api/v1/runners",
     {"body": {"project": "old", "command": ["true"]}}, 409, "conflict",
     "Project 'old' is archived; launch in another project."),
    ("launch-over-cap", "POST", "/api/v1/runners",
     {"body": {"project": "capped", "command": ["true"], "no_queue": True}}, 409,
     "cap_reached",
     "Project 'capped' already has 1 of 1 runners; stop one or raise the cap "
     "with `stratavore set max_runners_per_project N --project capped`."),
    # POST /runners/stop (many)
    ("stop-many-malformed", "POST", "/api/v1/runners/stop", {"raw": NOT_JSON}, 400,
     "bad_request", "The request body is not valid JSON."),
    ("stop-many-none", "POST", "/api/v1/runners/stop", {"body": {}}, 422, "invalid",
     "Give exactly one of ids, project or all."),
    ("stop-many-two", "POST", "/api/v1/runners/stop",
     {"body": {"project": "demo", "all": True}}, 422, "invalid",
     "Give exactly one of ids, project or all."),
    ("stop-many-unknown-field", "POST", "/api/v1/runners/stop", {"body": {"every": True}},
     422, "invalid", invalid_top("unknown field `every`")),
    ("stop-many-id-type", "POST", "/api/v1/runners/stop", {"body": {"ids": ["1"]}}, 422,
     "invalid", invalid("$.ids[0]")),
    ("stop-many-unknown-id", "POST", "/api/v1/runners/stop", {"body": {"ids": [999]}}, 404,
     "not_found", "Runner 999 does not exist."),
    ("stop-many-unknown-project", "POST", "/api/v1/runners/stop",
     {"body": {"project": "nope"}}, 404, "not_found", "Project 'nope' does not exist."),
    # POST /runners/register
    ("register-malformed", "POST", "/api/v1/runners/register", {"raw": NOT_JSON}, 400,
     "bad_request", "The request body is not valid JSON."),
    ("register-unknown-field", "POST", "/api/v1/runners/register",
     {"body": {"command": ["x"], "pid": "{agent_pid}", "cwd": "{folder}", "env": {}}}, 422,
     "invalid", invalid_top("unknown field `env`")),
    ("register-pid-missing", "POST", "/api/v1/runners/register",
     {"body": {"command": ["x"], "cwd": "{folder}"}}, 422, "invalid",
     invalid_top("missing required field `pid`")),
    ("register-pid-zero", "POST", "/api/v1/runners/register",
     {"body": {"command": ["x"], "pid": 0, "cwd": "{folder}"}}, 422, "invalid",
     invalid("$.pid")),
    ("register-pid-type", "POST", "/api/v1/runners/register",
     {"body": {"command": ["x"], "pid": "1", "cwd": "{folder}"}}, 422, "invalid",
     invalid("$.pid")),
    ("register-command-empty", "POST", "/api/v1/runners/register",
     {"body": {"command": [], "pid": "{agent_pid}", "cwd": "{folder}"}}, 422, "invalid",
     "Give the command to run, or a profile."),
    ("register-cwd-empty", "POST", "/api/v1/runners/register",
     {"body": {"command": ["x"], "pid": "{agent_pid}", "cwd": ""}}, 422, "invalid",
     invalid("$.cwd")),
    ("register-project-name", "POST", "/api/v1/runners/register",
     {"body": {"command": ["x"], "pid": "{agent_pid}", "cwd": "/", "project": "a b"}}, 422,
     "invalid", invalid("$.project")),
    ("register-unknown-project", "POST", "/api/v1/runners/register",
     {"body": {"command": ["x"], "pid": "{agent_pid}", "cwd": "/", "project": "nosuch"}},
     404, "not_found", "Project 'nosuch' does not exist."),
    ("register-no-project-for-cwd", "POST", "/api/v1/runners/register",
     {"body": {"command": ["x"], "pid": "{agent_pid}", "cwd": "/"}}, 422, "invalid",
     "No project contains /; pass --project NAME or create one with "
     "`stratavore new NAME --path DIR`."),
    ("register-init", "POST", "/api/v1/runners/register",
     {"body": {"command": ["x"], "pid": 1, "cwd": "{folder}"}}, 422, "invalid",
     "Process 1 is the supervisor or one of its parents; register the agent's own process."),
    ("register-nul-in-cwd", "POST", "/api/v1/runners/register",
     {"body": {"command": ["x"], "pid": "{agent_pid}", "cwd": "/tmp/a\x00b"}}, 422, "invalid",
     invalid("$.cwd")),
    ("register-pid-huge", "POST", "/api/v1/runners/register",
     {"body": {"command": ["x"], "pid": 10**20, "cwd": "{folder}"}}, 422, "invalid",
     invalid("$.pid")),
    ("register-no-such-pid", "POST", "/api/v1/runners/register",
     {"body": {"command": ["x"], "pid": NOT_A_PID, "cwd": "{folder}"}}, 422, "invalid",
     f"No process with pid {NOT_A_PID} is running."),
    # GET /runners/{id}
    ("runner-id-word", "GET", "/api/v1/runners/abc", {}, 400, "bad_request",
     "Runner id must be a number, got 'abc'."),
    ("runner-id-negative", "GET", "/api/v1/runners/-1", {}, 400, "bad_request",
     "Runner id must be a number, got '-1'."),
    ("runner-id-float", "GET", "/api/v1/runners/1.5", {}, 400, "bad_request",
     "Runner id must be a number, got '1.5'."),
    ("runner-unknown", "GET", "/api/v1/runners/999", {}, 404, "not_found",
     "Runner 999 does not exist."),
    # POST /runners/{id}/stop
    ("stop-id-word", "POST", "/api/v1/runners/abc/stop", {"body": {}}, 400, "bad_request",
     "Runner id must be a number, got 'abc'."),
    ("stop-unknown", "POST", "/api/v1/runners/999/stop", {"body": {}}, 404, "not_found",
     "Runner 999 does not exist."),
    ("stop-finished", "POST", "/api/v1/runners/{finished}/stop", {"body": {}}, 409,
     "conflict", "Runner {finished} is not running (it is stopped)."),
    ("stop-exited-agent", "POST", "/api/v1/runners/{agent_done}/stop", {"body": {}}, 409,
     "conflict", "Runner {agent_done} is not running (it is exited)."),
    ("stop-malformed", "POST", "/api/v1/runners/{busy}/stop", {"raw": NOT_JSON}, 400,
     "bad_request", "The request body is not valid JSON."),
    ("stop-force-type", "POST", "/api/v1/runners/{busy}/stop", {"body": {"force": "yes"}},
     422, "invalid", invalid("$.force")),
    ("stop-unknown-field", "POST", "/api/v1/runners/{busy}/stop",
     {"body": {"force": True, "signal": "KILL"}}, 422, "invalid",
     invalid_top("unknown field `signal`")),
    # POST /runners/{id}/restart
    ("restart-id-word", "POST", "/api/v1/runners/abc/restart", {}, 400, "bad_request",
     "Runner id must be a number, got 'abc'."),
    ("restart-unknown", "POST", "/api/v1/runners/999/restart", {}, 404, "not_found",
     "Runner 999 does not exist."),
    ("restart-queued", "POST", "/api/v1/runners/{queued}/restart", {}, 409, "conflict",
     "Runner {queued} is queued; it starts when a slot frees."),
    ("restart-agent", "POST", "/api/v1/runners/{agent}/restart", {}, 409, "conflict",
     "Runner {agent} was started outside the supervisor (stratavore-agent); restart it "
     "where it runs."),
    # POST /runners/{id}/resume
    ("resume-id-word", "POST", "/api/v1/runners/abc/resume", {"body": {}}, 400, "bad_request",
     "Runner id must be a number, got 'abc'."),
    ("resume-unknown", "POST", "/api/v1/runners/999/resume", {"body": {}}, 404, "not_found",
     "Runner 999 does not exist."),
    ("resume-running", "POST", "/api/v1/runners/{busy}/resume", {"body": {}}, 409, "conflict",
     "Runner {busy} is running; only a paused or finished runner can be resumed."),
    ("resume-no-session", "POST", "/api/v1/runners/{finished}/resume", {"body": {}}, 409,
     "conflict", "Runner {finished} has no agent session to resume (it has no profile); "
     "restart it instead."),
    ("resume-agent", "POST", "/api/v1/runners/{agent}/resume", {"body": {}}, 409, "conflict",
     "Runner {agent} ran in a terminal; resume it in one with `stratavore-agent`."),
    ("resume-mode-word", "POST", "/api/v1/runners/{finished}/resume",
     {"body": {"mode": "later"}}, 422, "invalid", invalid("$.mode")),
    # POST /hooks
    ("hooks-no-runner", "POST", "/api/v1/hooks", {"body": {"hook_event_name": "Stop"}}, 401,
     "unauthorized", "Missing X-Stratavore-Runner header (the runner's id)."),
    # GET /sessions
    ("sessions-limit-word", "GET", "/api/v1/sessions", {"params": {"limit": "x"}}, 400,
     "bad_request", "Query parameter limit must be a whole number >= 1, got 'x'."),
    ("sessions-project-unknown", "GET", "/api/v1/sessions", {"params": {"project": "nope"}},
     404, "not_found", "Project 'nope' does not exist."),
    ("events-wait-word", "GET", "/api/v1/events", {"params": {"wait": "soon"}}, 400,
     "bad_request", "Query parameter wait must be a whole number >= 0, got 'soon'."),
    # GET /runners/{id}/logs
    ("logs-id-word", "GET", "/api/v1/runners/abc/logs", {}, 400, "bad_request",
     "Runner id must be a number, got 'abc'."),
    ("logs-unknown", "GET", "/api/v1/runners/999/logs", {}, 404, "not_found",
     "Runner 999 does not exist."),
    ("logs-tail-negative", "GET", "/api/v1/runners/{busy}/logs", {"params": {"tail": "-1"}},
     400, "bad_request", "Query parameter tail must be a whole number >= 0 or 'all', got '-1'."),
    ("logs-tail-word", "GET", "/api/v1/runners/{busy}/logs", {"params": {"tail": "lots"}},
     400, "bad_request", "Query parameter tail must be a whole number >= 0 or 'all', got 'lots'."),
    ("logs-offset-word", "GET", "/api/v1/runners/{busy}/logs",
     {"params": {"offset": "x", "file_id": "f"}}, 400, "bad_request",
     "Query parameter offset must be a whole number >= 0, got 'x'."),
    ("logs-agent", "GET", "/api/v1/runners/{agent}/logs", {}, 409, "conflict",
     "Runner {agent} runs in its own terminal; its output is there."),
    # GET /runners/{id}/diff, POST .../merge and .../discard (tests/test_api_worktrees.py:
    # the worktree's own refusals)
    ("diff-id-word", "GET", "/api/v1/runners/abc/diff", {}, 400, "bad_request",
     "Runner id must be a number, got 'abc'."),
    ("diff-no-worktree", "GET", "/api/v1/runners/{busy}/diff", {}, 409, "conflict",
     "Runner {busy} has no worktree of its own; launch with --worktree to review an agent's "
     "changes before they reach your branch."),
    ("merge-unknown", "POST", "/api/v1/runners/999/merge", {}, 404, "not_found",
     "Runner 999 does not exist."),
    ("merge-no-worktree", "POST", "/api/v1/runners/{finished}/merge", {}, 409, "conflict",
     "Runner {finished} has no worktree of its own; launch with --worktree to review an agent's "
     "changes before they reach your branch."),
    ("discard-id-word", "POST", "/api/v1/runners/abc/discard", {}, 400, "bad_request",
     "Runner id must be a number, got 'abc'."),
    ("discard-no-worktree", "POST", "/api/v1/runners/{finished}/discard", {}, 409, "conflict",
     "Runner {finished} has no worktree of its own; launch with --worktree to review an agent's "
     "changes before they reach your branch."),
    # POST /runners/{id}/heartbeat
    ("heartbeat-id-word", "POST", "/api/v1/runners/abc/heartbeat",
     {"body": {}, "token": "{agent_token}"}, 400, "bad_request",
     "Runner id must be a number, got 'abc'."),
    # without the runner's own token nothing is revealed, not even whether it exists
    ("heartbeat-unknown", "POST", "/api/v1/runners/999/heartbeat",
     {"body": {}, "token": "{agent_token}"}, 401, "unauthorized", "Wrong token for runner 999."),
    ("heartbeat-malformed", "POST", "/api/v1/runners/{agent}/heartbeat",
     {"raw": NOT_JSON, "token": "{agent_token}"}, 400, "bad_request",
     "The request body is not valid JSON."),
    ("heartbeat-unknown-field", "POST", "/api/v1/runners/{agent}/heartbeat",
     {"body": {"state": "running", "mood": "fine"}, "token": "{agent_token}"}, 422,
     "invalid", invalid_top("unknown field `mood`")),
    ("heartbeat-cpu-negative", "POST", "/api/v1/runners/{agent}/heartbeat",
     {"body": {"cpu_percent": -1}, "token": "{agent_token}"}, 422, "invalid",
     invalid("$.cpu_percent")),
    ("heartbeat-rss-type", "POST", "/api/v1/runners/{agent}/heartbeat",
     {"body": {"rss_bytes": "12M"}, "token": "{agent_token}"}, 422, "invalid",
     invalid("$.rss_bytes")),
    ("heartbeat-state-too-long", "POST", "/api/v1/runners/{agent}/heartbeat",
     {"body": {"state": "r" * 33}, "token": "{agent_token}"}, 422, "invalid",
     invalid("$.state")),
    ("heartbeat-exit-code-type", "POST", "/api/v1/runners/{agent}/heartbeat",
     {"body": {"exit_code": "0"}, "token": "{agent_token}"}, 422, "invalid",
     invalid("$.exit_code")),
    # PATCH /projects/{name}
    ("project-patch-malformed", "PATCH", "/api/v1/projects/demo", {"raw": NOT_JSON}, 400,
     "bad_request", "The request body is not valid JSON."),
    ("project-patch-missing", "PATCH", "/api/v1/projects/demo", {"body": {}}, 422, "invalid",
     invalid_top("missing required field `max_runners`")),
    ("project-patch-zero", "PATCH", "/api/v1/projects/demo", {"body": {"max_runners": 0}},
     422, "invalid", invalid("$.max_runners")),
    ("project-patch-unknown", "PATCH", "/api/v1/projects/nope", {"body": {"max_runners": 2}},
     404, "not_found", "Project 'nope' does not exist."),
    # GET /settings, PUT /settings/{key}
    ("settings-post", "POST", "/api/v1/settings", {"body": {}}, 405, "method_not_allowed",
     "/api/v1/settings does not take POST; use GET, HEAD."),
    ("setting-unknown", "PUT", "/api/v1/settings/colour", {"body": {"value": 1}}, 404,
     "not_found", "There is no setting 'colour'; `stratavore settings` lists them."),
    ("setting-not-whole", "PUT", "/api/v1/settings/max_runners_global",
     {"body": {"value": 1.5}}, 422, "invalid", "Setting max_runners_global takes int values."),
    ("setting-out-of-range", "PUT", "/api/v1/settings/api_port", {"body": {"value": 70000}},
     422, "invalid", "Setting api_port must be from 0 to 65535."),
    ("setting-string", "PUT", "/api/v1/settings/stop_timeout", {"body": {"value": "5s"}},
     422, "invalid", "Setting stop_timeout takes float values."),
    ("setting-bad-zone", "PUT", "/api/v1/settings/timezone", {"body": {"value": "Mars/Base"}},
     422, "invalid",
     "Unknown time zone 'Mars/Base'; use an IANA name such as Europe/Berlin or UTC."),
    ("setting-bad-choice", "PUT", "/api/v1/settings/cost_mode", {"body": {"value": "guess"}},
     422, "invalid", "Setting cost_mode is one of vendor, ccusage."),
    ("setting-missing-value", "PUT", "/api/v1/settings/stop_timeout", {"body": {}}, 422,
     "invalid", invalid_top("missing required field `value`")),
    # GET /events
    ("events-since-word", "GET", "/api/v1/events", {"params": {"since": "abc"}}, 400,
     "bad_request", "Query parameter since must be a whole number >= 0, got 'abc'."),
    ("events-since-negative", "GET", "/api/v1/events", {"params": {"since": "-1"}}, 400,
     "bad_request", "Query parameter since must be a whole number >= 0, got '-1'."),
    ("events-limit-zero", "GET", "/api/v1/events", {"params": {"limit": "0"}}, 400,
     "bad_request", "Query parameter limit must be a whole number >= 1, got '0'."),
    # POST /usage: the admin token, or a runner's own with its id
    ("usage-malformed", "POST", "/api/v1/usage", {"raw": NOT_JSON}, 400, "bad_request",
     "The request body is not valid JSON."),
    ("usage-no-records", "POST", "/api/v1/usage", {"body": {"records": []}}, 422, "invalid",
     invalid("$.records")),
    ("usage-negative", "POST", "/api/v1/usage",
     {"body": {"records": [{"model": "m", "output_tokens": -5}]}}, 422, "invalid",
     invalid("$.records[0].output_tokens")),
    ("usage-unknown-field", "POST", "/api/v1/usage",
     {"body": {"records": [{"model": "m", "tokens": 5}]}}, 422, "invalid",
     invalid_top("unknown field `tokens`")),
    ("usage-unknown-runner", "POST", "/api/v1/usage",
     {"body": {"records": [{"model": "m"}], "runner_id": 999}}, 404, "not_found",
     "Runner 999 does not exist."),
    ("usage-agent-token-no-id", "POST", "/api/v1/usage",
     {"body": {"records": [{"model": "m"}]}, "token": "{agent_token}"}, 401, "unauthorized",
     "Wrong bearer token; send the admin token, or a runner's own with its runner_id."),
    ("usage-agent-token-other-runner", "POST", "/api/v1/usage",
     {"body": {"records": [{"model": "m"}], "runner_id": "{busy}"}, "token": "{agent_token}"},
     401, "unauthorized", "Wrong token for runner {busy}."),
    # POST /usage/import takes no input: only the wrong method
    ("usage-import-get", "GET", "/api/v1/usage/import", {}, 404, "not_found",
     "There is no 'import' report; use one of daily, weekly, monthly, session, blocks."),
    ("usage-import-put", "PUT", "/api/v1/usage/import", {"body": {}}, 405, "method_not_allowed",
     "/api/v1/usage/import does not take PUT; use GET, HEAD, POST."),
    # GET /usage/{report}
    ("usage-report-unknown", "GET", "/api/v1/usage/hourly", {}, 404, "not_found",
     "There is no 'hourly' report; use one of daily, weekly, monthly, session, blocks."),
    ("usage-report-bad-date", "GET", "/api/v1/usage/daily", {"params": {"since": "May 1"}},
     422, "invalid", "since takes a date as YYYY-MM-DD, not 'May 1'."),
    ("usage-report-bad-zone", "GET", "/api/v1/usage/daily", {"params": {"timezone": "Nowhere"}},
     422, "invalid", "Unknown time zone 'Nowhere'; use an IANA name such as Europe/Berlin or UTC."),
    ("usage-report-unknown-param", "GET", "/api/v1/usage/daily", {"params": {"from": "x"}},
     400, "bad_request",
     "Unknown query parameter from; use agent, by_project, mode, project, since, timezone, "
     "until."),
    ("usage-report-unknown-project", "GET", "/api/v1/usage/daily", {"params": {"project": "nope"}},
     404, "not_found", "Project 'nope' does not exist."),
    # GET, PUT /budgets; DELETE /budgets/{scope}/{period}
    ("budgets-post", "POST", "/api/v1/budgets", {"body": {}}, 405, "method_not_allowed",
     "/api/v1/budgets does not take POST; use GET, HEAD, PUT."),
    ("budget-malformed", "PUT", "/api/v1/budgets", {"raw": NOT_JSON}, 400, "bad_request",
     "The request body is not valid JSON."),
    ("budget-bad-period", "PUT", "/api/v1/budgets",
     {"body": {"scope": "global", "period": "hourly", "limit_tokens": 5}}, 422, "invalid",
     invalid("$.period")),
    ("budget-bad-scope", "PUT", "/api/v1/budgets",
     {"body": {"scope": "team:x", "period": "daily", "limit_tokens": 5}}, 422, "invalid",
     "Budget scope 'team:x' is not one of global, project:NAME or agent:NAME."),
    ("budget-no-limit", "PUT", "/api/v1/budgets", {"body": {"scope": "global", "period": "daily"}},
     422, "invalid", "A budget needs a limit: give --tokens N and/or --usd X."),
    ("budget-unknown-project", "PUT", "/api/v1/budgets",
     {"body": {"scope": "project:nope", "period": "daily", "limit_usd": 5}}, 404, "not_found",
     "Project 'nope' does not exist."),
    ("budget-warn-range", "PUT", "/api/v1/budgets",
     {"body": {"scope": "global", "period": "daily", "limit_usd": 5, "warn": [150]}}, 422,
     "invalid", invalid("$.warn[0]")),
    ("budget-rm-missing", "DELETE", "/api/v1/budgets/global/daily", {}, 404, "not_found",
     "There is no daily budget for global; `stratavore budgets` lists them."),
    # /notify: channels, tests, dead letters
    ("channels-post", "POST", "/api/v1/notify/channels", {"body": {}}, 405,
     "method_not_allowed", "/api/v1/notify/channels does not take POST; use GET, HEAD."),
    ("channel-bad-kind", "PUT", "/api/v1/notify/channels/ops", {"body": {"kind": "pager"}},
     422, "invalid", invalid("$.kind")),
    ("channel-bad-name", "PUT", "/api/v1/notify/channels/-ops",
     {"body": {"kind": "webhook", "config": {"url": "http://127.0.0.1:9/x"}}}, 422, "invalid",
     "Channel name '-ops' must be 1-64 letters, digits, '.', '_' or '-', starting with a "
     "letter or digit."),
    ("channel-webhook-no-url", "PUT", "/api/v1/notify/channels/ops",
     {"body": {"kind": "webhook", "config": {}}}, 422, "invalid", re.compile(r".*url.*")),
    ("channel-telegram-no-secret", "PUT", "/api/v1/notify/channels/tg",
     {"body": {"kind": "telegram", "config": {"chat_id": 42}}}, 422, "invalid",
     re.compile(r".*bot token.*")),
    ("channel-bad-policy", "PUT", "/api/v1/notify/channels/ops",
     {"body": {"kind": "webhook", "config": {"url": "http://127.0.0.1:9/x"},
               "policy": {"min_severity": "loud"}}}, 422, "invalid",
     re.compile(r"The minimum severity 'loud' must be one of .*")),
    ("channel-rm-unknown", "DELETE", "/api/v1/notify/channels/nope", {}, 404, "not_found",
     "Channel 'nope' does not exist."),
    ("channel-test-unknown", "POST", "/api/v1/notify/channels/nope/test", {}, 404, "not_found",
     "Channel 'nope' does not exist."),
    ("dead-post", "POST", "/api/v1/notify/dead", {"body": {}}, 405, "method_not_allowed",
     "/api/v1/notify/dead does not take POST; use GET, HEAD."),
    ("dead-retry-word", "POST", "/api/v1/notify/dead/abc/retry", {}, 400, "bad_request",
     "Delivery id must be a number, got 'abc'."),
    ("dead-retry-unknown", "POST", "/api/v1/notify/dead/999/retry", {}, 404, "not_found",
     "Delivery 999 does not exist."),
    # past SQLite's integer range (peewee raised OverflowError: a 500 schemathesis found)
    ("dead-retry-huge", "POST", "/api/v1/notify/dead/999999999999999999999999999999/retry", {},
     404, "not_found", "Delivery 999999999999999999999999999999 does not exist."),
    # /metrics takes no input: only the wrong method
    ("metrics-post", "POST", "/metrics", {"body": {}}, 405, "method_not_allowed",
     "/metrics does not take POST; use GET, HEAD."),
]  # fmt: skip


def fill(value: Any, names: dict[str, Any]) -> Any:
    """``value`` with ``{placeholders}`` replaced (an exact placeholder keeps its type)."""
    if isinstance(value, str):
        for key, new in names.items():
            if value == "{" + key + "}":
                return new
            value = value.replace("{" + key + "}", str(new))
        return value
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    return value


def placeholders(w: World) -> dict[str, Any]:
    notes = w.folder / "notes.txt"
    if not notes.exists():
        notes.write_text("not a program\n")
    names: dict[str, Any] = {name: w.id(name) for name in w.runners}
    names.update(
        folder=str(w.folder),
        file=str(notes),
        agent_pid=w.runners["agent"]["pid"],
        agent_token=w.tokens["agent"],
    )
    return names


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_is_refused_with_one_sentence_and_writes_nothing(
    world, method, path, kwargs, status, code, message
):
    names = placeholders(world)
    kwargs = fill(kwargs, names)
    if isinstance(message, str):
        message = fill(message, names)
    before = snapshot(world)
    response = world.request(method, fill(path, names), **kwargs)
    assert_error(response, status, code, message)
    assert snapshot(world) == before


def test_every_route_has_a_bad_input_case():
    """Each route of api.ROUTES is exercised above: with its own method, or (routes that
    take no input) with a wrong one."""
    uncovered = []
    for route_method, route_path, *_ in ((r.method, r.path) for r in ROUTES):
        template = re.sub(r"\\\{[a-z]+\\\}", "[^/]+", re.escape(route_path))
        if not any(
            re.fullmatch(template, path)
            and (method == route_method.upper() or "does not take" in str(message))
            for _, method, path, _, _, _, message in CASES
        ):
            uncovered.append((route_method, route_path))
    assert uncovered == []


def test_archive_conflict_counts_the_active_runners(world):
    active = world.daemon.api.get("/api/v1/projects/demo")["active_runners"]
    assert active == 3  # busy, agent, other
    response = world.request("POST", "/api/v1/projects/demo/archive")
    assert_error(
        response, 409, "conflict", f"Project 'demo' has {active} active runners; stop them first."
    )


def test_bad_stop_body_does_not_stop_the_runner(world):
    busy = world.id("busy")
    response = world.request("POST", f"/api/v1/runners/{busy}/stop", body={"force": 1})
    assert_error(response, 422, "invalid", invalid("$.force"))
    runner = world.daemon.runner(busy)
    assert runner["state"] == "running"
    assert psutil.Process(runner["pid"]).is_running()


# --- tokens --------------------------------------------------------------------------------------
def route_request(
    w: World, method: str, path: str, name: str | None = None
) -> tuple[str, dict[str, Any]]:
    """A request to ``path`` that would succeed with the admin token (for auth tests); the
    runner routes speak for runner ``agent``. ``name``: the value of every path parameter
    but ids (the suffix hole reached routes whose last one was ``heartbeat``)."""
    agent = str(w.id("agent"))
    template = path
    if name is not None:
        path = re.sub(r"\{(name|key|report|scope|period)\}", name, path)
    concrete = path.replace("{name}", "demo").replace("{key}", "stop_timeout")
    concrete = concrete.replace("{id}/heartbeat", agent + "/heartbeat")
    concrete = concrete.replace("{id}", str(w.id("busy")))
    bodies: dict[str, Any] = {
        "/api/v1/projects": {"name": "authx", "path": str(w.folder)},
        "/api/v1/projects/{name}": {"max_runners": None},
        "/api/v1/profiles": {"name": "authx", "command": ["true"]},
        "/api/v1/runners": {"project": "demo", "command": ["true"]},
        "/api/v1/settings/{key}": {"value": 10.0},
        "/api/v1/budgets": {"scope": "global", "period": "daily", "limit_tokens": 10},
        "/api/v1/notify/channels/{name}": {"kind": "desktop"},
        "/api/v1/runners/register": {
            "command": ["x"],
            "pid": w.runners["agent"]["pid"],
            "cwd": str(w.folder),
        },
        "/api/v1/hooks": {"hook_event_name": "Notification"},
        "/api/v1/usage": {"records": [{"model": "m", "output_tokens": 1}], "runner_id": int(agent)},
    }
    if path == "/api/v1/profiles/{name}":
        concrete = "/api/v1/profiles/claude"
    concrete = concrete.replace("{report}", "daily").replace("{scope}/{period}", "global/daily")
    body = bodies.get(template, {})
    body = body if method in ("post", "put", "patch") else None
    concrete = concrete.replace("dead/" + str(w.id("busy")), "dead/1")
    kwargs: dict[str, Any] = {"body": body} if body is not None else {}
    if concrete == "/api/v1/hooks":
        kwargs["headers"] = {"X-Stratavore-Runner": agent}
    return concrete, kwargs


ADMIN_ROUTES = [(r.method, r.path) for r in ROUTES if r.audience is Audience.ADMIN]


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        pytest.param(None, "Missing bearer token; send 'Authorization: Bearer <token>'.",
                     id="none"),
        pytest.param("Bearer wrong-token", "Wrong bearer token.", id="wrong"),
        pytest.param("Bearer ", "Missing bearer token; send 'Authorization: Bearer <token>'.",
                     id="empty"),
        pytest.param("Basic {admin}", "Missing bearer token; send 'Authorization: Bearer <token>'.",
                     id="basic-scheme"),
        pytest.param("Bearer {agent_token}", "Wrong bearer token.", id="runner-token"),
    ],
)  # fmt: skip
def test_every_admin_route_refuses_a_missing_or_wrong_token(world, auth, message):
    assert len(ADMIN_ROUTES) == 38 and ("get", "/metrics") in ADMIN_ROUTES
    before = snapshot(world)
    for method, path in ADMIN_ROUTES:
        concrete, kwargs = route_request(world, method, path)
        header = fill(auth, {"admin": world.admin, "agent_token": world.tokens["agent"]})
        response = world.request(
            method.upper(), concrete, token=None, auth=header if header is not None else None,
            **kwargs,
        )  # fmt: skip
        assert response.status_code == 401, (method, path, response.text)
        assert response.json() == {"error": "unauthorized", "message": message}, (method, path)
    assert snapshot(world) == before
    assert world.daemon.runner(world.id("busy"))["state"] == "running"


def test_open_routes_need_no_token(world):
    health = world.request("GET", "/api/v1/health", token=None)
    assert health.status_code == 200
    assert health.json() == {"ok": True, "version": __version__}
    doc = world.request("GET", "/api/v1/openapi.json", token=None)
    assert doc.status_code == 200
    assert doc.headers["Content-Type"].startswith("application/json")
    # a wrong token is not looked at either
    assert world.request("GET", "/api/v1/health", token="nonsense").status_code == 200


def test_heartbeat_tokens(world):
    agent, other = world.id("agent"), world.id("other")
    path = f"/api/v1/runners/{agent}/heartbeat"
    last_agent = world.daemon.runner(agent)["last_heartbeat"]
    last_other = world.daemon.runner(other)["last_heartbeat"]
    before = snapshot(world)
    wrong = {
        "other runner's token": world.tokens["other"],
        "admin token": world.admin,
        "made-up token": "x" * 32,
    }
    for token in wrong.values():
        response = world.request("POST", path, body={"cpu_percent": 1.0}, token=token)
        assert_error(response, 401, "unauthorized", f"Wrong token for runner {agent}.")
    response = world.request("POST", path, body={"cpu_percent": 1.0}, token=None)
    assert_error(
        response,
        401,
        "unauthorized",
        "Missing bearer token; send 'Authorization: Bearer <token>'.",
    )
    assert snapshot(world) == before
    assert world.daemon.runner(agent)["last_heartbeat"] == last_agent

    ok = world.request(
        "POST", path, body={"state": "running", "cpu_percent": 2.5, "rss_bytes": 4096, "tokens": 7},
        token=world.tokens["agent"],
    )  # fmt: skip
    assert ok.status_code == 200
    assert ok.json() == {"ok": True, "heartbeat_interval": 10.0}
    runner = world.daemon.runner(agent)
    assert runner["state"] == "running"
    assert runner["last_heartbeat"] not in (None, last_agent)
    assert (runner["cpu_percent"], runner["rss_bytes"], runner["tokens"]) == (2.5, 4096, 7)
    # the other runner got nothing from it
    assert world.daemon.runner(other)["last_heartbeat"] == last_other


def test_heartbeat_to_a_finished_runner_is_a_conflict(world):
    done = world.id("agent_done")
    before = snapshot(world)
    response = world.request(
        "POST", f"/api/v1/runners/{done}/heartbeat", body={"state": "running"},
        token=world.tokens["agent_done"],
    )  # fmt: skip
    assert_error(
        response, 409, "conflict", f"Runner {done} has ended (exited); its heartbeats are refused."
    )
    assert snapshot(world) == before


# --- OpenAPI -------------------------------------------------------------------------------------
def test_openapi_document_lists_every_route(world):
    response = world.request("GET", "/api/v1/openapi.json", token=None)
    doc = json.loads(response.content)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["version"] == __version__
    assert set(doc["paths"]) == {route.path for route in ROUTES}
    statuses = {"200", "400", "401", "403", "404", "405", "408", "409", "413", "415", "421", "422"}
    statuses.add("503")
    for route in ROUTES:
        method, path = route.method, route.path
        op = doc["paths"][path][method]
        assert op["summary"] == route.summary
        assert ("security" in op) == (route.audience is not Audience.OPEN), (method, path)
        assert ("requestBody" in op) == (route.body is not None), (method, path)
        assert set(op["responses"]) == statuses
    schemas = doc["components"]["schemas"]
    for name in ("Runner", "Launch", "Heartbeat", "Error", "ProjectCreate", "Register"):
        assert name in schemas
    assert schemas["Error"]["required"] == ["error", "message"]
    assert schemas["Launch"]["additionalProperties"] is False  # unknown fields are refused
    # every $ref points at a schema that exists
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(doc))
    assert refs and set(refs) <= set(schemas)


# --- /metrics ------------------------------------------------------------------------------------
def metric(text: str, name: str) -> float:
    """The value of the sample line ``name`` (with its labels) in the exposition ``text``."""
    values = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(name + " ")]
    assert len(values) == 1, f"{name} appears {len(values)} times in:\n{text}"
    return float(values[0])


def test_metrics_of_one_runner_then_a_clean_stop(daemon, project_dir, home):
    daemon.project("demo", project_dir)
    daemon.project("empty", project_dir)
    runner = daemon.launch("demo", SLEEP)
    daemon.wait_state(runner["id"], "running")
    text = daemon.api.get("/metrics")
    assert 'stratavore_runners_total{status="running"} 1.0' in text.splitlines()
    for state in ("queued", "starting", "stopped", "exited", "failed", "lost"):
        assert metric(text, f'stratavore_runners_total{{status="{state}"}}') == 0.0
    assert metric(text, 'stratavore_runners_by_project{project="demo"}') == 1.0
    assert metric(text, 'stratavore_runners_by_project{project="empty"}') == 0.0
    uptime = metric(text, "stratavore_daemon_uptime_seconds")
    status = daemon.api.get("/api/v1/status")
    assert 0 < uptime <= status["uptime_s"] + 0.5
    assert metric(text, "stratavore_heartbeat_latency_seconds_count") == 0.0

    sleeper = _sleeper(home)
    try:
        reg = daemon.api.post(
            "/api/v1/runners/register",
            {"command": ["x"], "pid": sleeper.pid, "cwd": str(project_dir), "project": "demo"},
        )
        path = f"/api/v1/runners/{reg['runner']['id']}/heartbeat"
        for i in range(3):
            daemon.api.post(path, {"state": "running", "cpu_percent": float(i)}, reg["token"])
        text = daemon.api.get("/metrics")
        assert metric(text, "stratavore_heartbeat_latency_seconds_count") == 3.0
        assert metric(text, "stratavore_heartbeat_latency_seconds_sum") > 0
        assert metric(text, 'stratavore_runners_total{status="running"}') == 2.0
        assert metric(text, 'stratavore_runners_by_project{project="demo"}') == 2.0
        assert metric(text, "stratavore_daemon_uptime_seconds") > uptime
        record = {"model": "gpt-5", "agent": "codex", "input_tokens": 40, "output_tokens": 2}
        daemon.api.post("/api/v1/usage", {"records": [record]})
        text = daemon.api.get("/metrics")
        assert metric(text, 'stratavore_tokens_used_total{scope="global"}') == 42.0
        assert metric(text, 'stratavore_tokens_used_total{scope="agent:codex"}') == 42.0
        # refused heartbeats are not observed
        error = api_error(lambda: daemon.api.post(path, {"state": "running"}, "bad-token"))
        assert error.message == f"Wrong token for runner {reg['runner']['id']}."
        text = daemon.api.get("/metrics")
        assert metric(text, "stratavore_heartbeat_latency_seconds_count") == 3.0
    finally:
        sleeper.kill()
        sleeper.wait(10)
    # Ctrl-C (SIGINT) is a clean stop: exit status 0, the runtime file removed
    assert (home / "supervisor.json").exists()
    assert daemon.stop() == 0
    assert not (home / "supervisor.json").exists()
    assert runtime.read_runtime(home) is None
    assert (home / "api-token").exists()  # the token outlives the process


# --- runtime files and the daemon process --------------------------------------------------------
def test_runtime_file_and_token_file(world):
    root, daemon = world.root, world.daemon
    info = json.loads((root / "supervisor.json").read_text())
    assert set(info) == {"pid", "create_time", "port", "url", "version"}
    assert info["pid"] == daemon.proc.pid
    assert info["url"] == f"http://127.0.0.1:{info['port']}" == daemon.api.base_url
    assert info["version"] == __version__
    assert abs(info["create_time"] - psutil.Process(daemon.proc.pid).create_time()) < 0.01
    token_file = root / "api-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == world.admin
    assert len(world.admin) >= 32


def daemon_env(home: Path) -> dict[str, str]:
    return {**os.environ, "STRATAVORE_HOME": str(home), "PYTHONPATH": str(REPO)}


def test_second_daemon_on_the_same_data_dir_refuses_to_start(world):
    root, first = world.root, world.daemon
    before = (root / "supervisor.json").read_text()
    second = subprocess.run(
        [*DAEMON_CMD, "--port", "0"],
        env=daemon_env(root),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 1
    assert second.stdout == ""
    assert second.stderr == (
        f"stratavore: A Stratavore supervisor is already running for {root} "
        f"(pid {first.proc.pid}, {first.api.base_url}).\n"
    )
    # the first one is untouched
    assert (root / "supervisor.json").read_text() == before
    assert first.api.get("/api/v1/health")["ok"] is True


@dataclass
class PortInUse:
    root: Path
    port: int
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def port_in_use(tmp_path_factory: pytest.TempPathFactory) -> PortInUse:
    """One ``stratavore daemon --port P`` run while P is held by a listening socket."""
    root = tmp_path_factory.mktemp("port-home")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [*DAEMON_CMD, "--port", str(port)],
            env=daemon_env(root),
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
        )
    return PortInUse(root, port, result)


def test_port_in_use_exits_1_naming_the_port(port_in_use):
    result, port = port_in_use.result, port_in_use.port
    assert result.returncode == 1
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("stratavore: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"stratavore: Port {port} on 127.0.0.1 is not available (")
    assert errors[0].endswith("; pick another with --port (0 chooses a free one).")
    assert "Traceback" not in result.stderr
    assert not (port_in_use.root / "supervisor.json").exists()


def test_port_in_use_prints_only_the_error_and_records_no_stop(port_in_use):
    assert port_in_use.result.stderr.count("\n") == 1, port_in_use.result.stderr
    db = paths.db_path(port_in_use.root)
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        types = [row[0] for row in con.execute("SELECT type FROM event ORDER BY id")]
    assert types == []


# --- regressions: bad input answered with 500 ----------------------------------------------------
def test_superscript_runner_id_is_a_bad_request(world):
    response = world.request("GET", "/api/v1/runners/%C2%B2")
    assert_error(response, 400, "bad_request", "Runner id must be a number, got '²'.")


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/runners/99999999999999999999", None, 404),
        ("/api/v1/events", {"since": "99999999999999999999"}, 400),
        ("/api/v1/events", {"limit": "99999999999999999999"}, 400),
    ],
)
def test_huge_numbers_are_not_internal_errors(world, path, params, status):
    response = world.request("GET", path, params=params)
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"command": ["true"], "env": {"A=B": "1"}}, id="env-name-with-equals"),
        pytest.param({"command": ["true", "a\x00b"]}, id="nul-in-argument"),
    ],
)
def test_launch_that_cannot_be_spawned_writes_no_stuck_runner(world, fields, request):
    project = "spawn-" + request.node.callspec.id
    world.daemon.project(project, world.folder)
    response = world.request("POST", "/api/v1/runners", body={"project": project, **fields})
    states = [r["state"] for r in world.daemon.api.get("/api/v1/runners", project=project)]
    assert response.status_code == 422, response.text  # refused before anything is written
    assert states == []


@pytest.mark.parametrize(
    ("path", "raw", "token"),
    [
        pytest.param("/api/v1/runners", b'{"name": "x",', "admin", id="launch-unknown-field"),
        pytest.param(
            "/api/v1/runners/{agent}/heartbeat", b'{"cpu_percent": -1', "{agent_token}",
            id="heartbeat-negative-cpu",
        ),
    ],
)  # fmt: skip
def test_truncated_json_is_a_bad_request_whatever_its_first_field(world, path, raw, token):
    names = placeholders(world)
    before = snapshot(world)
    response = world.request("POST", fill(path, names), raw=raw, token=fill(token, names))
    assert_error(response, 400, "bad_request", "The request body is not valid JSON.")
    assert snapshot(world) == before


def test_registering_a_process_that_already_is_a_runner_is_a_conflict(world):
    agent = world.runners["agent"]
    before = snapshot(world)
    response = world.request(
        "POST",
        "/api/v1/runners/register",
        body={"command": ["agent", "again"], "pid": agent["pid"], "cwd": "/", "project": "demo"},
    )
    assert_error(
        response, 409, "conflict", f"Process {agent['pid']} is already runner {agent['id']}."
    )
    assert snapshot(world) == before


def test_events_last_gives_the_newest_oldest_first(world):
    everything = world.daemon.api.get("/api/v1/events", limit=1000)
    newest = world.daemon.api.get("/api/v1/events", last=3)
    assert len(everything) > 3
    assert newest == everything[-3:]
