"""Unit tests of the ``stratavore`` CLI: parsing, formatting, exit statuses.

The commands talk over real HTTP to :class:`StubApi`, a local server that answers from a table
what a test sets and records what it was sent (the data dir's ``supervisor.json`` and
``api-token`` point the CLI at it), so a test can set any answer, error or failure of the
supervisor; ``daemon`` is run for real."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import psutil
import pytest

from supervisor import __version__
from supervisor.cli import output
from supervisor.cli.main import main, parse_args
from supervisor.cli.output import ExitStatus
from supervisor.cli.runners import runners_table, uptime
from supervisor.core import paths, runtime
from supervisor.core.errors import ErrorCode
from tests.conftest import REPO, wait_for


@pytest.fixture(autouse=True)
def home(home, monkeypatch):
    """Every test on a data dir of its own (never the real one), without the debug switch."""
    monkeypatch.delenv("STRATAVORE_DEBUG", raising=False)
    return home


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def runner(**fields: Any) -> dict[str, Any]:
    base = {
        "id": 1, "project": "demo", "profile": None, "command": ["sleep", "9"], "cwd": "/tmp",
        "state": "running", "reason": None, "pid": 4242, "exit_code": None, "restart": "never",
        "restarts": 0, "supervised": True, "unresponsive": False, "queued_at": None,
        "started_at": iso(datetime.now(UTC) - timedelta(seconds=192)), "ended_at": None,
        "last_heartbeat": None, "cpu_percent": 3.14159, "rss_bytes": 12_900_000, "tokens": None,
        "log_path": None,
    }  # fmt: skip
    return base | fields


@dataclass
class Refuse:
    """An answer: the API's error ``code`` with ``message``, as the supervisor sends it."""

    code: ErrorCode
    message: str


class HangUp:
    """An answer: the connection is closed without a response."""


class StubApi:
    """A real HTTP server on 127.0.0.1 standing in for the supervisor: it answers each
    (method, path) from :attr:`answers` (a JSON value, a callable given what was sent, a
    :class:`Refuse` or :class:`HangUp`) and records every request in :attr:`calls` as
    (method, path, query parameters or JSON body). It refuses a request without the data
    dir's admin token, as the supervisor does."""

    def __init__(self, root: Path) -> None:
        self.answers: dict[tuple[str, str], Any] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self.times: list[tuple[str, float]] = []  # (path, monotonic time) of each request
        self.token = secrets.token_urlsafe(32)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        paths.private_dir(root)
        paths.write_private(paths.token_file(root), self.token)
        me = psutil.Process()  # alive for as long as the test: a running supervisor
        info = runtime.RuntimeInfo(
            me.pid, me.create_time(), self.server.server_port, self.url, __version__
        )
        runtime.write_runtime(root, info)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.serve(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest shows what the test asserts

        return Handler

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length)
        sent = (
            dict(parse_qsl(url.query)) if request.command == "GET" else json.loads(body or "null")
        )
        self.calls.append((request.command, url.path, sent))
        self.times.append((url.path, time.monotonic()))
        answer = self.answers.get((request.command, url.path), Refuse(ErrorCode.NOT_FOUND, "?"))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            answer = Refuse(ErrorCode.UNAUTHORIZED, "Wrong bearer token.")
        if isinstance(answer, HangUp):
            request.close_connection = True
            return
        if callable(answer):
            answer = answer(sent)
        status = 200
        if isinstance(answer, Refuse):
            status, answer = answer.code.status, {"error": answer.code.code,
                                                  "message": answer.message}  # fmt: skip
        payload = json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def __enter__(self) -> StubApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def api(home: Path) -> Iterator[StubApi]:
    with StubApi(home) as stub:
        yield stub


def cli_process(home: Path, *argv: str) -> subprocess.Popen[str]:
    """``stratavore ARGV`` as a child process on ``home``, for what needs a real Ctrl-C."""
    env = {**os.environ, "STRATAVORE_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "supervisor.cli", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def interrupt(proc: subprocess.Popen[str], once: Callable[[], bool]) -> tuple[int, str, str]:
    """Ctrl-C (SIGINT) to ``proc`` once ``once()`` holds; its exit status, stdout, stderr."""
    try:
        wait_for(once, 20, what="the command to get that far")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


# --- parsing ----------------------------------------------------------------------------
def test_split_at_first_double_dash_keeps_the_command_verbatim():
    args = parse_args(["launch", "demo", "--json", "--", "sh", "-c", "x --json", "--", "-v"])
    assert args.command == ["sh", "-c", "x --json", "--", "-v"]
    assert args.json and args.project == "demo" and args.profile is None


def test_options_after_double_dash_are_not_parsed():
    args = parse_args(["launch", "demo", "--", "--profile", "x", "--no-queue"])
    assert args.profile is None and not args.no_queue
    assert args.command == ["--profile", "x", "--no-queue"]


def test_launch_without_profile_or_command_is_a_usage_error(api, capsys):
    assert main(["launch", "demo"]) == ExitStatus.USAGE
    assert main(["launch", "demo", "--"]) == ExitStatus.USAGE
    err = capsys.readouterr().err.splitlines()
    assert err == ["stratavore: launch needs --profile NAME or a command after --"] * 2
    assert api.calls == []


def test_double_dash_on_other_commands_is_a_usage_error(capsys):
    assert main(["runners", "--", "x"]) == ExitStatus.USAGE
    assert "takes no command after --" in capsys.readouterr().err


def test_timeout_before_or_after_the_command():
    assert parse_args(["runners"]).timeout == 10.0
    assert parse_args(["--timeout", "3", "runners"]).timeout == 3.0
    assert parse_args(["runners", "--timeout", "4"]).timeout == 4.0


def test_argparse_errors_and_help_return_instead_of_exiting(capsys):
    assert main([]) == ExitStatus.USAGE
    assert main(["nope"]) == ExitStatus.USAGE
    assert main(["--help"]) == ExitStatus.OK
    assert "launch" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["kill", "x"], ["restart", "1.5"], ["logs", "abc", "-f"]])
def test_invalid_runner_id_is_a_usage_error(argv, api, capsys):
    assert main(argv) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert err == f"stratavore: runner id must be a number, got {argv[1]!r}\n"
    assert api.calls == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["daemon", "--port", "70000"], "--port must be between 0 and 65535, got 70000"),
        (["daemon", "--heartbeat-ttl", "0"], "Setting heartbeat_ttl must be from 0.1 to 604800."),
        (
            ["daemon", "--sweep-interval", "nan"],
            "--sweep-interval takes a finite number, got 'nan'",
        ),
        (["watch", "--interval", "-1"], "--interval must be a number greater than 0 and at most"),
        (["--timeout", "0", "status"], "--timeout must be a number greater than 0 and at most"),
    ],
)
def test_invalid_numbers_are_one_line_usage_errors(argv, message, capsys):
    assert main(argv) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"stratavore: {message}") and err.count("\n") == 1


def test_daemon_runs_with_its_options(daemon_factory):
    """``daemon --port 0 --heartbeat-interval 2.5``: any free port, that interval for this run,
    the other settings as saved (here: their defaults)."""
    daemon = daemon_factory("--heartbeat-interval", "2.5")  # the fixture adds --port 0
    info = runtime.read_runtime(daemon.root)
    settings = {s["key"]: s for s in daemon.api.get("/api/v1/settings")}
    assert info is not None and info.port not in (0, settings["api_port"]["value"])
    assert (settings["heartbeat_interval"]["value"], settings["heartbeat_interval"]["saved"]) == (
        2.5, None,
    )  # fmt: skip
    for key in ("heartbeat_ttl", "sweep_interval"):
        assert settings[key]["value"] == settings[key]["default"], key


LOADED = """
import sys
from supervisor.cli.main import COMMANDS, main
status = main(sys.argv[1:])
modules = {module for module, _summary in COMMANDS.values()}
print(sorted(m for m in modules if f"supervisor.cli.{m}" in sys.modules), "requests" in sys.modules)
"""


@pytest.mark.parametrize(
    ("argv", "modules", "http"),
    [(["--version"], [], False), (["--help"], [], False), (["daemon", "--help"], ["daemon"], False),
     (["usage", "--help"], ["usage"], False), (["runners", "--help"], ["runners"], False),
     (["--timeout", "3", "budgets", "--help"], ["budgets"], False),
     (["nope"], [], False), (["kill", "x"], ["runners"], False),
     (["team", "--help"], ["team"], False), (["team", "usage", "--help"], ["team"], False)],
)  # fmt: skip
def test_a_command_imports_its_own_module_and_no_other(argv, modules, http):
    """pip's ``commands_dict``: a start pays only for the command it runs (``--version`` and
    the list of commands import none); the HTTP client (``requests``) is imported on first
    use, so help and refused arguments never load it."""
    done = subprocess.run(
        [sys.executable, "-c", LOADED, *argv], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.splitlines()[-1] == f"{modules} {http}", done.stderr


# --- formatting -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "text"),
    [(None, "-"), (0, "0B"), (512, "512B"), (1536, "1.5K"), (12_900_000, "12.3M"),
     (1024**2 - 1, "1.0M"), (3 * 1024**3, "3.0G")],
)  # fmt: skip
def test_human_size(n, text):
    assert output.human_size(n) == text


@pytest.mark.parametrize(
    ("s", "text"),
    [(None, "-"), (-3, "0s"), (0, "0s"), (42.9, "42s"), (192, "3m12s"), (3600, "1h00m"),
     (7500, "2h05m"), (3 * 86400 + 4 * 3600, "3d04h")],
)  # fmt: skip
def test_human_duration(s, text):
    assert output.human_duration(s) == text


def test_uptime_runs_to_ended_at_or_now():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    done = runner(started_at=iso(start), ended_at=iso(start + timedelta(seconds=7500)))
    assert uptime(done) == "2h05m"
    assert uptime(runner(started_at=iso(start)), now=start + timedelta(seconds=5)) == "5s"
    assert uptime(runner(started_at=None)) == "-"


def test_table_columns_are_aligned():
    text = output.render_table(
        ["ID", "NAME", "N"], [[1, "a", 10], [200, "longer", None]], right={"ID", "N"}
    )
    assert text.splitlines() == [
        " ID  NAME     N",
        "  1  a       10",
        "200  longer   -",
    ]


def test_table_fit_columns_shrink_widest_first():
    rows = [["c" * 80, "r" * 60]]
    lines = output.render_table(["CMD", "REASON"], rows, fit={"CMD", "REASON"}).splitlines()
    assert [len(line) for line in lines] == [57, 100]
    assert lines[1] == "c" * 46 + "...  " + "r" * 46 + "..."


def test_table_fit_column_is_truncated_to_the_width():
    rows = [["x", "y" * 200, "end"]]
    lines = output.render_table(["A", "LONG", "Z"], rows, fit={"LONG"}, width=40).splitlines()
    assert all(len(line) <= 40 for line in lines)
    assert lines[1].endswith("...  end")


def test_runners_table():
    rows = [
        runner(unresponsive=True, command=["sh", "-c", "echo " + "z" * 200]),
        runner(id=12, state="exited", pid=None, cpu_percent=None, rss_bytes=None,
               exit_code=0, reason="exited with status 0"),
    ]  # fmt: skip
    lines = runners_table(rows, reasons=True).splitlines()
    assert lines[0].split() == [
        "ID", "PROJECT", "STATE", "PID", "CPU%", "RSS", "UPTIME", "EXIT", "COMMAND", "REASON",
    ]  # fmt: skip
    assert all(len(line) <= output.WIDTH for line in lines)
    assert "running (unresponsive)" in lines[1]
    assert " 3.1 " in lines[1] and " 12.3M " in lines[1] and " 3m1" in lines[1]
    assert "sh -c 'echo" in lines[1] and lines[1].endswith("...")
    assert lines[2].endswith("sleep 9         exited with...")
    # Every header starts where its column starts (left) or ends where it ends (right).
    assert lines[1].index("demo") == lines[0].index("PROJECT")
    assert lines[2].index("12") + 2 == lines[0].index("ID") + 2
    assert "REASON" not in runners_table(rows)


# --- commands against the stub API ------------------------------------------------------
def test_launch_sends_the_command_and_prints_only_the_id(api, capsys):
    api.answers[("POST", "/api/v1/runners")] = lambda body: runner(id=7)
    assert main(["launch", "demo", "--restart", "on-failure", "--", "sh", "-c", "x"]) == 0
    assert api.calls[0][2] == {
        "project": "demo", "no_queue": False, "command": ["sh", "-c", "x"],
        "restart": "on-failure",
    }  # fmt: skip
    assert capsys.readouterr() == ("7\n", "")


def test_launch_queued_prints_a_hint_on_stderr(api, capsys):
    api.answers[("POST", "/api/v1/runners")] = runner(id=8, state="queued", pid=None)
    assert main(["launch", "demo", "--profile", "claude", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["id"] == 8 and out.endswith("}\n") and '\n  "id": 8' in out
    assert err.startswith("runner 8 is queued: ") and err.count("\n") == 1
    assert api.calls[0][2] == {"project": "demo", "no_queue": False, "profile": "claude"}


def test_new_checks_the_folder_and_sends_an_absolute_path(api, tmp_path, monkeypatch, capsys):
    assert main(["new", "p", "--path", str(tmp_path / "nope")]) == ExitStatus.USAGE
    assert capsys.readouterr().err == f"stratavore: folder {tmp_path / 'nope'} does not exist\n"
    api.answers[("POST", "/api/v1/projects")] = lambda body: body
    monkeypatch.chdir(tmp_path)
    assert main(["new", "p", "--max-runners", "2"]) == 0
    assert api.calls[-1][2] == {"name": "p", "path": str(tmp_path.resolve()), "max_runners": 2}
    assert capsys.readouterr().out == f"created project p at {tmp_path.resolve()}\n"


def test_runners_empty_and_json(api, capsys):
    api.answers[("GET", "/api/v1/runners")] = []
    assert main(["runners"]) == 0
    assert main(["runners", "demo", "--all"]) == 0
    assert main(["runners", "--json"]) == 0
    assert capsys.readouterr().out == (
        "no active runners (use --all to include finished ones)\nno runners\n[]\n"
    )
    assert api.calls[1][2] == {"project": "demo", "all": "1"}


@pytest.mark.parametrize(
    ("code", "status"),
    [(ErrorCode.NOT_FOUND, 4), (ErrorCode.CONFLICT, 5), (ErrorCode.CAP_REACHED, 5),
     (ErrorCode.ALREADY_EXISTS, 5), (ErrorCode.UNAUTHORIZED, 6), (ErrorCode.INVALID, 2),
     (ErrorCode.BAD_REQUEST, 2), (ErrorCode.COMMAND_NOT_FOUND, 2), (ErrorCode.INTERNAL, 1)],
)  # fmt: skip
def test_api_errors_map_to_exit_statuses(code, status, api, capsys):
    api.answers[("POST", "/api/v1/runners/9/stop")] = Refuse(code, "Runner 9 is busy.")
    assert main(["kill", "9", "--force"]) == status
    assert capsys.readouterr() == ("", "stratavore: Runner 9 is busy.\n")
    assert api.calls[0][2] == {"force": True}


def test_a_message_of_several_lines_is_said_in_one(api, capsys):
    api.answers[("GET", "/api/v1/status")] = Refuse(ErrorCode.CONFLICT, "one\ntwo\n three")
    assert main(["status"]) == ExitStatus.CONFLICT
    assert capsys.readouterr().err == "stratavore: one two  three\n"


def test_every_error_code_has_an_exit_status():
    assert set(output.EXIT_FOR_ERROR) == set(ErrorCode)


def test_unexpected_exception_is_one_line_without_debug(api, capsys, monkeypatch):
    """An answer the CLI cannot read (a status without its fields) is a bug: one line that
    says so, and the traceback with STRATAVORE_DEBUG=1."""
    api.answers[("GET", "/api/v1/status")] = {"pid": 1}
    assert main(["status"]) == ExitStatus.ERROR
    err = capsys.readouterr().err
    assert err.startswith("stratavore: internal error: KeyError: 'version'") and "report" in err
    assert err.count("\n") == 1
    monkeypatch.setenv("STRATAVORE_DEBUG", "1")
    assert main(["status"]) == ExitStatus.ERROR
    assert "Traceback" in capsys.readouterr().err


def test_logs_follow_stops_once_the_runner_finished(api, capsys):
    chunks = iter(["a\n", "b\n", "", "c\n", ""])
    states = iter(["running", "running", "running", "exited", "exited"])
    api.answers[("GET", "/api/v1/runners/3/logs")] = lambda p: {
        "text": next(chunks), "offset": len(api.calls), "file_id": "f1", "path": "/x",
    }  # fmt: skip
    api.answers[("GET", "/api/v1/runners/3")] = lambda p: runner(id=3, state=next(states))
    assert main(["logs", "3", "-f", "-n", "5"]) == 0
    assert capsys.readouterr().out == "a\nb\nc\n"
    log_calls = [c[2] for c in api.calls if c[1].endswith("/logs")]
    assert log_calls[0] == {"tail": "5"}
    assert log_calls[1] == {"offset": "1", "file_id": "f1"}


def test_logs_follow_ctrl_c_exits_0(api, home):
    texts = iter(["x\n"])
    api.answers[("GET", "/api/v1/runners/3/logs")] = lambda p: {
        "text": next(texts, ""), "offset": 2, "file_id": "f", "path": "/x",
    }  # fmt: skip
    api.answers[("GET", "/api/v1/runners/3")] = runner(id=3)
    following = cli_process(home, "logs", "3", "-f")
    polled = lambda: sum(c[1] == "/api/v1/runners/3" for c in api.calls) >= 1  # noqa: E731
    assert interrupt(following, polled) == (0, "x\n", "")


def test_watch_prints_frames_until_ctrl_c(api, home):
    status = {"version": "0.1.0", "active": 1, "queued": 0, "projects": 1, "uptime_s": 61.0}
    api.answers[("GET", "/api/v1/status")] = status
    api.answers[("GET", "/api/v1/runners")] = [runner()]
    watching = cli_process(home, "watch", "--interval", "0.25")
    frames = lambda: [t for path, t in api.times if path == "/api/v1/status"]  # noqa: E731
    code, out, err = interrupt(watching, lambda: len(frames()) >= 3)
    assert (code, err) == (0, "")
    assert "\x1b[" not in out  # not a TTY: separators, no escape codes
    shown = out.count("-" * output.WIDTH)
    assert shown >= 2 and out.count("1 active, 0 queued") == shown
    assert out.count(runners_table([runner()]).splitlines()[0]) == shown
    asked = frames()
    assert all(later - earlier >= 0.25 for earlier, later in itertools.pairwise(asked))


def test_status_text_shows_only_nonzero_counts(api, capsys):
    api.answers[("GET", "/api/v1/status")] = {
        "version": "0.1.0", "pid": 99, "uptime_s": 192.0, "api_url": "http://127.0.0.1:1",
        "data_dir": "/d", "runners": {"running": 2, "queued": 0, "exited": 1}, "active": 2,
        "queued": 0, "projects": 3,
    }  # fmt: skip
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "2 running, 1 exited" in out and "queued" not in out and "3m12s" in out


def test_budgets_asks_the_running_supervisor_not_its_database(api, home, capsys):
    """Was: `budgets` read the data dir's database behind the API's back even while a
    supervisor ran (here it would list none: the stub keeps its budgets to itself)."""
    spent = {
        "scope": "project:demo", "period": "daily", "limit_tokens": 1000, "limit_usd": None,
        "warn": [75.0, 90.0], "action": "block", "used_tokens": 1200, "used_usd": 0.5,
        "percent": 120.0, "period_start": "2026-12-07T00:00:00Z",
        "resets_at": "2026-12-08T00:00:00Z", "projected_exhaustion_at": None,
    }  # fmt: skip
    api.answers[("GET", "/api/v1/budgets")] = [spent]
    assert main(["budgets", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [spent]
    assert main(["budgets"]) == 0
    [head, row] = capsys.readouterr().out.splitlines()
    assert head.split()[:4] == ["SCOPE", "PERIOD", "USED", "/"]
    assert row.startswith("project:demo  daily   1,200 / 1,000 tok  120.0%  block")
    assert [c[:2] for c in api.calls] == [("GET", "/api/v1/budgets")] * 2
    assert not paths.db_path(home).exists()


# --- no supervisor ----------------------------------------------------------------------
def test_no_supervisor_running_exits_3_with_one_line(capsys):
    assert main(["runners"]) == ExitStatus.NOT_RUNNING
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.endswith("\n")
    assert err.startswith("stratavore: ") and "stratavore daemon" in err


def test_stale_runtime_file_is_not_a_running_supervisor(home, capsys):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    info = {"pid": proc.pid, "create_time": 1.0e9, "port": 1, "url": "http://127.0.0.1:1",
            "version": "0.1.0"}  # fmt: skip
    paths.runtime_file(paths.data_dir()).write_text(json.dumps(info))
    assert main(["status"]) == ExitStatus.NOT_RUNNING
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "stratavore daemon" in err


def test_connection_failure_is_not_running(api, capsys):
    """The supervisor's port takes the connection and closes it without an answer."""
    api.answers[("GET", "/api/v1/events")] = HangUp()
    assert main(["events"]) == ExitStatus.NOT_RUNNING
    err = capsys.readouterr().err
    assert err.startswith(f"stratavore: The supervisor at {api.url} did not answer (")
    assert len(err.splitlines()) == 1
