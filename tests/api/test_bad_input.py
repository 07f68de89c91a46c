"""Bad input to every route of a real ``stratavore daemon``'s loopback API: refused with one
sentence in the API's error shape, and nothing written.

The tests share one module-scoped supervisor ("the world", ``tests/api/conftest.py``) with a
fixed cast of projects and runners; every test snapshots the SQLite file and the API's
listings before and after its request, so a rejected request that writes anything fails.
"""

from __future__ import annotations

import re
from typing import Any

import psutil
import pytest

from supervisor.api.app import ROUTES
from tests.api.world import assert_error, fill, invalid, invalid_top, placeholders, snapshot

NOT_A_PID = 2**31 - 1  # above any pid_max, so never a running process


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
    ("profile-account-missing", "POST", "/api/v1/profiles",
     {"body": {"name": "p1", "copy_of": "claude", "account": "/nonexistent/claude-work"}}, 422,
     "invalid", "Account directory /nonexistent/claude-work does not exist; create it (sign in "
     "once with CLAUDE_CONFIG_DIR=/nonexistent/claude-work claude) or give an existing folder."),
    ("profile-account-nul", "POST", "/api/v1/profiles",
     {"body": {"name": "p1", "copy_of": "claude", "account": "/a\x00b"}}, 422, "invalid",
     invalid("$.account")),
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
    # a runner's worktree: GET diff, POST merge and discard
    ("diff-id-word", "GET", "/api/v1/runners/abc/diff", {}, 400, "bad_request",
     "Runner id must be a number, got 'abc'."),
    ("diff-unknown", "GET", "/api/v1/runners/999/diff", {}, 404, "not_found",
     "Runner 999 does not exist."),
    ("diff-no-worktree", "GET", "/api/v1/runners/{finished}/diff", {}, 409, "conflict",
     "Runner {finished} has no worktree of its own; launch with --worktree to review an "
     "agent's changes before they reach your branch."),
    ("merge-unknown", "POST", "/api/v1/runners/999/merge", {}, 404, "not_found",
     "Runner 999 does not exist."),
    ("merge-no-worktree", "POST", "/api/v1/runners/{busy}/merge", {}, 409, "conflict",
     "Runner {busy} has no worktree of its own; launch with --worktree to review an "
     "agent's changes before they reach your branch."),
    ("discard-huge", "POST", "/api/v1/runners/99999999999999999999/discard", {}, 404,
     "not_found", "Runner 99999999999999999999 does not exist."),
    ("discard-no-worktree", "POST", "/api/v1/runners/{finished}/discard", {}, 409,
     "conflict", "Runner {finished} has no worktree of its own; launch with --worktree to "
     "review an agent's changes before they reach your branch."),
    # POST /hooks
    ("hooks-no-runner", "POST", "/api/v1/hooks", {"body": {"hook_event_name": "Stop"}}, 401,
     "unauthorized", "Missing X-Stratavore-Runner header (the runner's id)."),
    # POST /statusline, GET /limits
    ("statusline-no-runner", "POST", "/api/v1/statusline", {"body": {"account": "/a"}}, 401,
     "unauthorized", "Missing X-Stratavore-Runner header (the runner's id)."),
    ("limits-post", "POST", "/api/v1/limits", {"body": {}}, 405, "method_not_allowed",
     "/api/v1/limits does not take POST; use GET, HEAD."),
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
     "Unknown query parameter from; use account, agent, by_account, by_project, mode, project, "
     "since, timezone, until."),
    ("usage-report-unknown-project", "GET", "/api/v1/usage/daily", {"params": {"project": "nope"}},
     404, "not_found", "Project 'nope' does not exist."),
    ("usage-report-unknown-account", "GET", "/api/v1/usage/daily", {"params": {"account": "x"}},
     404, "not_found", "There is no account 'x'; give a profile's name or an account directory "
     "(known: claude, codex)."),
    ("usage-report-by-both", "GET", "/api/v1/usage/daily",
     {"params": {"by_project": "1", "by_account": "1"}}, 422, "invalid",
     "Give by_project or by_account, not both."),
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
     "Budget scope 'team:x' is not one of global, project:NAME, agent:NAME or account:NAME."),
    ("budget-unknown-account", "PUT", "/api/v1/budgets",
     {"body": {"scope": "account:nobody", "period": "daily", "limit_tokens": 5}}, 404,
     "not_found", "There is no account 'nobody'; give a profile's name or an account directory "
     "(known: claude, codex)."),
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
    # the team routes read what this supervisor knows; here it is in no team
    ("team-post", "POST", "/api/v1/team", {"body": {}}, 405, "method_not_allowed",
     "/api/v1/team does not take POST; use GET, HEAD."),
    ("team-budgets-in-no-team", "GET", "/api/v1/team/budgets", {}, 404, "not_found",
     "This data dir is in no team; `stratavore team join postgresql://HOST/DB --as NAME` joins "
     "one."),
    ("team-usage-in-no-team", "GET", "/api/v1/team/usage/daily", {}, 404, "not_found",
     "This data dir is in no team; `stratavore team join postgresql://HOST/DB --as NAME` joins "
     "one."),
    ("team-usage-unknown-report", "GET", "/api/v1/team/usage/session", {}, 404, "not_found",
     "Team report 'session' does not exist; use daily, weekly, monthly."),
    ("team-usage-bad-by", "GET", "/api/v1/team/usage/daily", {"params": {"by": "hostname"}},
     422, "invalid", "by takes one of member, project, model, agent, not 'hostname'."),
    ("team-usage-bad-since", "GET", "/api/v1/team/usage/daily", {"params": {"since": "May"}},
     422, "invalid", "since takes a date as YYYY-MM-DD, not 'May'."),
    ("team-usage-unknown-parameter", "GET", "/api/v1/team/usage/daily",
     {"params": {"project": "api"}}, 400, "bad_request",
     "Unknown query parameter project; use by, mode, since, until."),
    # /metrics takes no input: only the wrong method
    ("metrics-post", "POST", "/metrics", {"body": {}}, 405, "method_not_allowed",
     "/metrics does not take POST; use GET, HEAD."),
]  # fmt: skip



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
