"""The ``stratavore`` command line: a thin client of the supervisor's loopback HTTP API.

:func:`main` parses the arguments, runs one command and turns every failure into one line on
stderr (``stratavore: <message>``) and an exit status; the command functions do no error
handling of their own. Exit statuses (:class:`ExitStatus`, also in ``docs/cli.md``):

====  ============  =============================================================
   0  OK            the command did what it was asked
   1  ERROR         unexpected failure (a bug; ``STRATAVORE_DEBUG=1`` shows the traceback)
   2  USAGE         bad arguments, or the API refused the request as invalid (400, 422)
   3  NOT_RUNNING   no supervisor runs for this data dir, or it did not answer
   4  NOT_FOUND     no such project, profile or runner (404)
   5  CONFLICT      state conflict, name already exists, or cap reached (409)
   6  UNAUTHORIZED  the API rejected the admin token (401)
  75  TRY_AGAIN     the data folder is full or read-only, or the database stayed locked by
                    another program (503, 507): what the message says was not recorded
 130  INTERRUPTED   Ctrl-C during a one-shot command (``logs -f`` and ``watch`` exit 0)
====  ============  =============================================================
"""

from __future__ import annotations

import argparse
import enum
import json
import math
import os
import shlex
import sqlite3
import sys
import time
import traceback
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from supervisor import __version__
from supervisor.api.client import ApiClient, ClientError, NotRunning
from supervisor.core.errors import ApiError, ErrorCode, KnownError
from supervisor.core.states import FINISHED_STATES as FINISHED

if TYPE_CHECKING:
    from supervisor.storage.backups import Backup

Json = dict[str, Any]
WIDTH = 100  # tables are fitted to this many columns
LOG_POLL_S = 0.5
DEFAULT_TIMEOUT_S = 10.0
DAY_S = 86400.0  # the longest interval or timeout the CLI takes


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_RUNNING = 3
    NOT_FOUND = 4
    CONFLICT = 5
    UNAUTHORIZED = 6
    TRY_AGAIN = 75  # sysexits' EX_TEMPFAIL
    INTERRUPTED = 130


# The one place an API error code becomes an exit status.
EXIT_FOR_ERROR: dict[ErrorCode, ExitStatus] = {
    ErrorCode.BAD_REQUEST: ExitStatus.USAGE,
    ErrorCode.INVALID: ExitStatus.USAGE,
    ErrorCode.COMMAND_NOT_FOUND: ExitStatus.USAGE,
    ErrorCode.UNAUTHORIZED: ExitStatus.UNAUTHORIZED,
    ErrorCode.FORBIDDEN: ExitStatus.UNAUTHORIZED,
    ErrorCode.NOT_FOUND: ExitStatus.NOT_FOUND,
    ErrorCode.METHOD_NOT_ALLOWED: ExitStatus.ERROR,  # a client bug, not the user's
    ErrorCode.REQUEST_TIMEOUT: ExitStatus.ERROR,
    ErrorCode.TOO_LARGE: ExitStatus.USAGE,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: ExitStatus.ERROR,  # a client bug
    ErrorCode.MISDIRECTED: ExitStatus.ERROR,  # a client bug
    ErrorCode.HEADERS_TOO_LARGE: ExitStatus.ERROR,
    ErrorCode.CONFLICT: ExitStatus.CONFLICT,
    ErrorCode.ALREADY_EXISTS: ExitStatus.CONFLICT,
    ErrorCode.CAP_REACHED: ExitStatus.CONFLICT,
    ErrorCode.BUDGET_SPENT: ExitStatus.CONFLICT,
    ErrorCode.SHUTTING_DOWN: ExitStatus.NOT_RUNNING,
    ErrorCode.UNAVAILABLE: ExitStatus.ERROR,
    ErrorCode.DATABASE_LOCKED: ExitStatus.TRY_AGAIN,
    ErrorCode.STORAGE_FULL: ExitStatus.TRY_AGAIN,
    ErrorCode.STORAGE_FAILED: ExitStatus.TRY_AGAIN,
    ErrorCode.OVERLOADED: ExitStatus.TRY_AGAIN,
    ErrorCode.INTERNAL: ExitStatus.ERROR,
}


class UsageError(Exception):
    """Arguments the command cannot use; exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``stratavore: ...`` line like every other error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# --- formatting -------------------------------------------------------------------------
def human_size(n: float | None) -> str:
    """Bytes as ``512B``, ``1.5K``, ``12.3M`` (powers of 1024); ``-`` when unknown."""
    if n is None:
        return "-"
    if n < 1024:
        return f"{int(n)}B"
    for unit in "KMGTP":
        n /= 1024
        if n < 1023.95 or unit == "P":
            return f"{n:.1f}{unit}"
    raise AssertionError("unreachable")


def human_duration(seconds: float | None) -> str:
    """Seconds as ``42s``, ``3m12s``, ``2h05m``, ``3d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def parse_ts(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def uptime(runner: Json, now: datetime | None = None) -> str:
    """How long the runner has run: from started_at to ended_at, or to now."""
    if not runner.get("started_at"):
        return "-"
    end = parse_ts(runner["ended_at"]) if runner.get("ended_at") else now or datetime.now(UTC)
    return human_duration((end - parse_ts(runner["started_at"])).total_seconds())


def render_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    right: Collection[str] = (),
    fit: Collection[str] = (),
    width: int = WIDTH,
) -> str:
    """Columns two spaces apart; ``right`` ones right-aligned; ``fit`` ones truncated (the
    widest first) until the lines are at most ``width`` long."""
    cells = [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    over = sum(widths) + 2 * (len(widths) - 1) - width
    shrinkable = [i for i, h in enumerate(headers) if h in fit]
    while over > 0 and shrinkable:
        i = max(shrinkable, key=lambda j: widths[j])
        if widths[i] <= max(len(headers[i]), 3):
            break
        widths[i] -= 1
        over -= 1
    for r in cells:
        for i in shrinkable:
            if len(r[i]) > widths[i]:
                r[i] = r[i][: widths[i] - 3] + "..."
    lines = []
    for row in [list(headers), *cells]:
        parts = [
            c.rjust(w) if h in right else c.ljust(w)
            for c, w, h in zip(row, widths, headers, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def runners_table(runners: list[Json], *, reasons: bool = False) -> str:
    """The runners table of ``runners`` and ``watch``."""
    now = datetime.now(UTC)
    headers = ["ID", "PROJECT", "STATE", "PID", "CPU%", "RSS", "UPTIME", "EXIT", "COMMAND"]
    rows = []
    for r in runners:
        cpu = r.get("cpu_percent")
        row = [
            r["id"],
            r["project"],
            state_label(r),
            r.get("pid"),
            None if cpu is None else f"{cpu:.1f}",
            human_size(r.get("rss_bytes")),
            uptime(r, now),
            r.get("exit_code"),
            shlex.join(r["command"]),
        ]
        if reasons:
            row.append((r.get("reason") or "") if r["state"] in FINISHED else "")
        rows.append(row)
    right = {"ID", "PID", "CPU%", "RSS", "UPTIME", "EXIT"}
    return render_table(
        headers + ["REASON"] * reasons, rows, right=right, fit={"COMMAND", "REASON"}
    )


def state_label(runner: Json) -> str:
    """``running``, ``running: needs input``, ``paused: limit until 23:00``, ..."""
    label = runner["state"]
    if runner.get("attention") and runner["state"] == "running":
        label += ": " + runner["attention"].replace("_", " ")
    if runner["state"] == "paused" and runner.get("limit_resets_at"):
        reset = datetime.fromisoformat(runner["limit_resets_at"].replace("Z", "+00:00"))
        label += f": limit until {reset.astimezone():%a %H:%M}"
    return label + (" (unresponsive)" if runner.get("unresponsive") else "")


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def runner_id(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise UsageError(f"runner id must be a number, got {value!r}")
    return int(value)


def positive(option: str, value: float | None, high: float = DAY_S) -> None:
    if value is not None and not 0 < value <= high:
        raise UsageError(
            f"{option} must be a number greater than 0 and at most {high:g}, got {value:g}"
        )


def finite(option: str) -> Callable[[str], float]:
    """An argparse type: a number, refusing NaN and the infinities (which JSON cannot carry,
    and no limit, interval or timeout means)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"{option} takes a number, got {text!r}") from None
        if not math.isfinite(value):
            raise UsageError(f"{option} takes a finite number, got {text!r}")
        return value

    return parse


class Progress:
    """Progress of long work as a line on stderr, once it runs past a second: redrawn every
    0.2 s on a terminal, a new line every 5 s into a log."""

    def __init__(self, doing: str) -> None:
        self.doing = doing
        self.tty = sys.stderr.isatty()
        self.began = self.shown = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if total and now - self.began > 1.0 and now - self.shown > (0.2 if self.tty else 5.0):
            self.shown = now
            line = f"{self.doing}: {100 * done // total}% "
            line += f"({human_size(done)} of {human_size(total)})"
            end = "" if self.tty else "\n"
            print(("\r" + line) if self.tty else line, end=end, file=sys.stderr)

    def end(self) -> None:
        if self.tty and self.shown > self.began:  # end the progress line
            print(file=sys.stderr)


def connect(args: argparse.Namespace) -> ApiClient:
    api = ApiClient.discover(timeout=args.timeout)
    api.on_wait = say_waiting
    return api


def say_waiting(message: str, seconds: float) -> None:
    """A request waits for a locked database: say so, as the command seems to hang."""
    fail(f"{message.rstrip('.')}; waiting for it (up to {seconds:g} s)...")


# --- commands ---------------------------------------------------------------------------
def cmd_daemon(args: argparse.Namespace) -> int:
    if args.port is not None and not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    from supervisor.core.settings import check_setting
    from supervisor.daemon import run_daemon  # lazily: the CLI works without the daemon deps

    for option in ("heartbeat_interval", "heartbeat_ttl", "sweep_interval"):
        if getattr(args, option) is not None:
            check_setting(option, getattr(args, option))  # the settings' own bounds

    return run_daemon(
        port=args.port,
        heartbeat_interval=args.heartbeat_interval,
        heartbeat_ttl=args.heartbeat_ttl,
        sweep_interval=args.sweep_interval,
    )


def cmd_new(args: argparse.Namespace) -> int:
    if args.path == "":  # Path("") is the current folder: never take that by accident
        raise UsageError(
            "--path is empty; give the project's folder (leave --path out for the current one)"
        )
    folder = Path(os.getcwd() if args.path is None else args.path).expanduser()
    if not folder.exists():
        raise UsageError(f"folder {args.path} does not exist")
    if not folder.is_dir():
        raise UsageError(f"{args.path} is not a folder")
    body = {"name": args.name, "path": str(folder.resolve()), "max_runners": args.max_runners}
    project = connect(args).post("/api/v1/projects", body)
    print(f"created project {project['name']} at {project['path']}")
    return ExitStatus.OK


def cmd_projects(args: argparse.Namespace) -> int:
    projects = connect(args).get("/api/v1/projects", all=1 if args.all else None)
    if args.json:
        print_json(projects)
    elif not projects:
        print("no projects" if args.all else "no projects (use --all to include archived ones)")
    else:
        rows = [
            [p["name"], p["path"], p["active_runners"], yes_no(p["archived"])] for p in projects
        ]
        print(
            render_table(
                ["NAME", "PATH", "ACTIVE", "ARCHIVED"], rows, right={"ACTIVE"}, fit={"PATH"}
            )
        )
    return ExitStatus.OK


def cmd_archive(args: argparse.Namespace) -> int:
    project = connect(args).post(f"/api/v1/projects/{args.name}/archive")
    print(f"archived project {project['name']}")
    return ExitStatus.OK


def cmd_launch(args: argparse.Namespace) -> int:
    if not args.profile and not args.command:
        raise UsageError("launch needs --profile NAME or a command after --")
    body: Json = {"project": args.project, "no_queue": args.no_queue}
    for key in ("profile", "command", "restart", "mode", "prompt", "resume_session"):
        if getattr(args, key):
            body[key] = getattr(args, key)
    for key in ("worktree", "resume_on_limit"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    runner = connect(args).post("/api/v1/runners", body)
    if args.json:
        print_json(runner)
    else:
        print(runner["id"])
    if runner["state"] == "queued":
        why = (runner.get("reason") or f"project {runner['project']} is at its cap").rstrip(".")
        print(
            f"runner {runner['id']} is queued: {why}; it starts when a slot frees up",
            file=sys.stderr,
        )
    return ExitStatus.OK


def cmd_runners(args: argparse.Namespace) -> int:
    runners = connect(args).get(
        "/api/v1/runners", project=args.project, all=1 if args.all else None
    )
    if args.json:
        print_json(runners)
    elif not runners:
        print(
            "no runners" if args.all else "no active runners (use --all to include finished ones)"
        )
    else:
        print(runners_table(runners, reasons=args.all))
    return ExitStatus.OK


def cmd_kill(args: argparse.Namespace) -> int:
    if bool(args.runners) + bool(args.project or args.all) != 1:
        raise UsageError("give runner ids, or --project NAME, or --all (not both)")
    ids = [runner_id(r) for r in args.runners]
    api = connect(args)
    if len(ids) == 1:  # one runner: a finished one is an error, as for every single-runner call
        runners = [api.post(f"/api/v1/runners/{ids[0]}/stop", {"force": args.force})]
    else:
        which = {"ids": ids} if ids else {"project": args.project} if args.project else {}
        runners = api.post("/api/v1/runners/stop", {**which, "all": not which, "force": args.force})
    for runner in runners:
        if runner["state"] in FINISHED:
            print(f"runner {runner['id']} is {runner['state']}")
        else:
            print(f"stopping runner {runner['id']}")
    return ExitStatus.OK


def cmd_restart(args: argparse.Namespace) -> int:
    rid = runner_id(args.runner)
    runner = connect(args).post(f"/api/v1/runners/{rid}/restart")
    new = "" if runner["id"] == rid else f" as runner {runner['id']}"
    print(f"restarted runner {rid}{new} ({runner['state']})")
    return ExitStatus.OK


def cmd_resume(args: argparse.Namespace) -> int:
    rid = runner_id(args.runner)
    body: Json = {k: getattr(args, k) for k in ("prompt", "mode") if getattr(args, k)}
    runner = connect(args).post(f"/api/v1/runners/{rid}/resume", body)
    print(f"resumed runner {rid}: session {runner['session_id']} ({runner['state']})")
    return ExitStatus.OK


def cmd_sessions(args: argparse.Namespace) -> int:
    found = connect(args).get("/api/v1/sessions", project=args.project, limit=args.limit)
    if args.json:
        print_json(found)
    elif not found:
        print("no agent sessions in the usage ledger yet")
    else:
        rows = [
            [
                s["last_activity"][:16].replace("T", " ") if s["last_activity"] else "-",
                s["agent"],
                s["project"] or "-",
                s["runner_id"] or "-",
                f"{s['tokens']:,}",
                f"{s['cost_usd']:.2f}",
                "yes" if s["resumable"] else f"no: {s['why_not']}",
                s["session_id"],
            ]
            for s in found
        ]
        headers = ["LAST (UTC)", "AGENT", "PROJECT", "RUNNER", "TOKENS", "USD", "RESUME", "SESSION"]
        print(render_table(headers, rows, right={"RUNNER", "TOKENS", "USD"}, fit={"RESUME"}))
    return ExitStatus.OK


def cmd_logs(args: argparse.Namespace) -> int:
    rid = runner_id(args.runner)
    if args.lines is not None and args.lines < 0:
        raise UsageError(f"-n must be 0 or more, got {args.lines}")
    api = connect(args)
    path = f"/api/v1/runners/{rid}/logs"
    logs = api.get(path, tail="all" if args.lines is None else args.lines)
    sys.stdout.write(logs["text"])
    sys.stdout.flush()
    if not args.follow:
        return ExitStatus.OK
    try:
        while True:
            time.sleep(LOG_POLL_S)
            # State first, then text: whatever was written before it finished is still read.
            finished = api.get(f"/api/v1/runners/{rid}")["state"] in FINISHED
            logs = api.get(path, offset=logs["offset"], file_id=logs["file_id"])
            sys.stdout.write(logs["text"])
            sys.stdout.flush()
            if finished and not logs["text"]:
                return ExitStatus.OK
    except KeyboardInterrupt:  # Ctrl-C is how one stops following
        return ExitStatus.OK


def cmd_profiles(args: argparse.Namespace) -> int:
    profiles = connect(args).get("/api/v1/profiles")
    if args.json:
        print_json(profiles)
    else:
        rows = [
            [
                p["name"],
                " or ".join(p["binaries"]) or shlex.join(p["command"]),
                profile_modes(p),
                "hooks" if p["hooks"] else ("heuristic" if p["agent"] else "-"),
                yes_no(p["builtin"]),
            ]
            for p in profiles
        ]
        headers = ["NAME", "PROGRAM", "MODES", "ATTENTION", "BUILTIN"]
        print(render_table(headers, rows, fit={"PROGRAM"}))
    return ExitStatus.OK


def profile_modes(profile: Json) -> str:
    """``interactive batch resume``: what a profile can do."""
    modes = {
        "interactive": True,
        "batch": profile["batch"],
        "resume": profile["resume"] or profile["resume_batch"],
    }
    return " ".join(mode for mode, there in modes.items() if there)


def cmd_settings(args: argparse.Namespace) -> int:
    settings = connect(args).get("/api/v1/settings")
    if args.json:
        print_json(settings)
    else:
        rows = [
            [
                s["key"],
                s["value"],
                "-" if s["saved"] is None else s["saved"],
                s["default"],
                s["applies"],
            ]
            for s in settings
        ]
        print(render_table(["SETTING", "NOW", "SAVED", "DEFAULT", "APPLIES"], rows))
    return ExitStatus.OK


def cmd_set(args: argparse.Namespace) -> int:
    api = connect(args)
    if args.project:
        if args.key != "max_runners_per_project":
            raise UsageError("--project goes only with max_runners_per_project")
        cap = None if args.value == "default" else whole(args.value, "the cap")
        project = api.request(
            "PATCH", f"/api/v1/projects/{args.project}", body={"max_runners": cap}
        )
        own = project["max_runners"]
        print(f"project {project['name']}: max_runners {own if own else 'follows the setting'}")
        return ExitStatus.OK
    value = setting_value(args.key, args.value)
    setting = api.request("PUT", f"/api/v1/settings/{args.key}", body={"value": value})
    print(f"{setting['key']} = {setting['saved']} (applies {setting['applies']})")
    return ExitStatus.OK


def setting_value(key: str, text: str) -> Any:
    """``text`` as JSON (numbers, tables), or as the string it is; NaN and infinities are
    refused here (JSON cannot carry them to the API)."""

    def not_finite(_text: str) -> float:
        raise UsageError(f"Setting {key} takes a finite number, got {text!r}")

    def number(literal: str) -> float:
        value = float(literal)
        return value if math.isfinite(value) else not_finite(literal)

    try:
        return json.loads(text, parse_constant=not_finite, parse_float=number)
    except (ValueError, RecursionError):
        return text  # the API says which type the setting takes


def whole(value: str, what: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise UsageError(f"{what} must be a whole number of at least 1, got {value!r}")
    return int(value)


def state_counts(status: Json) -> str:
    counts = [f"{n} {state}" for state, n in status["runners"].items() if n]
    return ", ".join(counts) or "none"


def cmd_status(args: argparse.Namespace) -> int:
    status = connect(args).get("/api/v1/status")
    if args.json:
        print_json(status)
        return ExitStatus.OK
    fields = [
        ("version", status["version"]),
        ("pid", status["pid"]),
        ("api", status["api_url"]),
        ("uptime", human_duration(status["uptime_s"])),
        ("data dir", status["data_dir"]),
        ("runners", state_counts(status)),
        ("projects", status["projects"]),
    ]
    if status.get("storage"):
        fields.append(("storage", status["storage"]))
    for label, value in fields:
        print(f"{label + ':':<10}{value}")
    return ExitStatus.OK


def cmd_watch(args: argparse.Namespace) -> int:
    positive("--interval", args.interval)
    api = connect(args)
    tty = sys.stdout.isatty()
    try:
        while True:
            status = api.get("/api/v1/status")
            runners = api.get("/api/v1/runners")
            head = (
                f"stratavore {status['version']}  |  {status['active']} active, "
                f"{status['queued']} queued  |  {status['projects']} projects  |  "
                f"up {human_duration(status['uptime_s'])}  |  {time.strftime('%H:%M:%S')}"
            )
            body = runners_table(runners) if runners else "no active runners"
            sys.stdout.write(
                ("\x1b[H\x1b[2J" if tty else "-" * WIDTH + "\n") + f"{head}\n\n{body}\n"
            )
            sys.stdout.flush()
            time.sleep(args.interval)
    except KeyboardInterrupt:  # Ctrl-C is how one stops watching
        return ExitStatus.OK


def cmd_events(args: argparse.Namespace) -> int:
    api = connect(args)
    if args.action == "dead":
        return print_dead(api.get("/api/v1/notify/dead"), args.json)
    if args.action == "retry":
        if args.id is None:
            raise UsageError(
                "events retry takes the ID of a dead letter (`events dead` lists them)"
            )
        api.request("POST", f"/api/v1/notify/dead/{args.id}/retry")
        print(f"delivery {args.id} is queued again")
        return ExitStatus.OK
    if args.id is not None:
        raise UsageError(f"unexpected argument {args.id} (did you mean `events retry {args.id}`?)")
    if args.since is None:
        events = api.get("/api/v1/events", last=args.last)
    else:
        events = api.get("/api/v1/events", since=args.since, limit=args.last)
    if args.json and not args.follow:
        print_json(events)
        return ExitStatus.OK
    print_events(events, args.json)
    while args.follow:
        time.sleep(FOLLOW_INTERVAL_S)
        since = events[-1]["id"] if events else (args.since or 0)
        new = api.get("/api/v1/events", since=since, limit=1000)
        if new:
            print_events(new, args.json, header=False)
            events = new
    return ExitStatus.OK


def print_events(events: list[Json], as_json: bool, header: bool = True) -> None:
    if as_json:  # following: one object per line, so a reader can stream them
        for event in events:
            print(json.dumps(event), flush=True)
        return
    if not events:
        if header:
            print("no events", flush=True)
        return
    rows = [
        [
            e["id"],
            parse_ts(e["ts"]).astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            e["severity"],
            e["type"],
            e["title"],
        ]
        for e in events
    ]
    table = render_table(
        ["ID", "TIME", "SEVERITY", "TYPE", "TITLE"], rows, right={"ID"}, fit={"TITLE"}
    )
    print(table if header else "\n".join(table.splitlines()[1:]), flush=True)


def print_dead(dead: list[Json], as_json: bool) -> int:
    if as_json:
        print_json(dead)
    elif not dead:
        print("no dead letters")
    else:
        rows = [[d["id"], d["channel"], d["event_id"], d["attempts"], d["title"], d["error"]]
                for d in dead]  # fmt: skip
        headers = ["ID", "CHANNEL", "EVENT", "TRIES", "TITLE", "ERROR"]
        print(render_table(headers, rows, right={"ID", "EVENT", "TRIES"}, fit={"TITLE", "ERROR"}))
    return ExitStatus.OK


# --- notifications ----------------------------------------------------------------------
def cmd_notify(args: argparse.Namespace) -> int:
    api = connect(args)
    if args.action == "channels":
        channels = api.get("/api/v1/notify/channels")
        if args.json:
            print_json(channels)
        elif not channels:
            print("no channels (`stratavore notify add webhook NAME --url URL` adds one)")
        else:
            rows = [[c["name"], c["kind"], channel_target(c), ", ".join(c["policy"]["types"])]
                    for c in channels]  # fmt: skip
            print(render_table(["NAME", "KIND", "TARGET", "EVENTS"], rows, fit={"EVENTS"}))
        return ExitStatus.OK
    if args.action == "add":
        return notify_add(api, args)
    names = args.names
    if args.action == "rm":
        if len(names) != 1:
            raise UsageError("notify rm takes one channel NAME")
        api.request("DELETE", f"/api/v1/notify/channels/{names[0]}")
        print(f"removed channel {names[0]} and its secret")
        return ExitStatus.OK
    # test: the named channels, or all of them
    names = names or [c["name"] for c in api.get("/api/v1/notify/channels")]
    if not names:
        raise UsageError("there are no channels to test; `stratavore notify add` adds one")
    worst = ExitStatus.OK
    for name in names:
        result = api.post(f"/api/v1/notify/channels/{name}/test")
        print(
            f"{name}: {result['result']}" + (f" ({result['reason']})" if result["reason"] else "")
        )
        if result["result"] != "delivered":
            worst = ExitStatus.ERROR
    return worst


def channel_target(channel: Json) -> str:
    config = channel["config"]
    if channel["kind"] == "telegram":
        return f"chat {config.get('chat_id')}"
    if channel["kind"] == "ntfy":
        return f"{config.get('server', 'https://ntfy.sh')}/{config.get('topic')}"
    return str(config.get("url", "-"))


def notify_add(api: ApiClient, args: argparse.Namespace) -> int:
    """``notify add KIND NAME [settings]``; a secret comes from a prompt or stdin only."""
    if len(args.names) != 2:
        raise UsageError("notify add takes KIND and NAME, e.g. `notify add webhook ops --url URL`")
    kind, name = args.names
    config = {key: value for key, value in (
        ("chat_id", args.chat_id), ("server", args.server), ("topic", args.topic),
        ("url", args.url),
    ) if value is not None}  # fmt: skip
    rules: dict[str, Any] = {}
    if args.events:
        rules["types"] = [t.strip() for t in args.events.split(",") if t.strip()]
    if args.min_severity:
        rules["min_severity"] = args.min_severity
    if args.quiet_hours:
        rules["quiet_hours"] = args.quiet_hours
    secret = read_secret(kind) if kind == "telegram" or args.secret else None
    body = {"kind": kind, "config": config, "policy": rules or None, "secret": secret}
    channel = api.request("PUT", f"/api/v1/notify/channels/{name}", body=body)
    stored = " (its secret is in the OS keyring)" if secret else ""
    print(f"channel {channel['name']}: {channel['kind']} to {channel_target(channel)}{stored}")
    return ExitStatus.OK


def read_secret(kind: str) -> str:
    """The channel's secret from a hidden prompt, or the first line of stdin: never argv."""
    what = "bot token" if kind == "telegram" else "secret"
    if sys.stdin.isatty():
        import getpass

        secret = getpass.getpass(f"{kind} {what}: ")
    else:
        secret = sys.stdin.readline()
    secret = secret.strip()
    if not secret:
        raise UsageError(f"no {what} given (type it at the prompt, or pipe it on stdin)")
    return secret


# --- usage and budgets (these open the ledger directly: no supervisor needed) ------------
IMPORT_TIMEOUT_S = 900.0
FOLLOW_INTERVAL_S = 1.0
TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")


def open_ledger() -> Any:
    """Open the data dir's DB for the usage commands; the saved settings."""
    from supervisor.core import paths
    from supervisor.core.settings import load_settings
    from supervisor.storage import store

    try:
        store.init_db(paths.db_path(paths.data_dir()))
    except store.SchemaTooNew as exc:
        raise KnownError(str(exc)) from None
    return load_settings()


def cmd_usage(args: argparse.Namespace) -> int:
    if args.report == "import":
        return usage_import(args)
    from supervisor.usage import periods, reports

    settings = open_ledger()
    query = reports.Query(
        zone=periods.resolve_zone(args.timezone or settings.timezone),
        since=reports.parse_day(args.since, "--since") if args.since else None,
        until=reports.parse_day(args.until, "--until") if args.until else None,
        project=args.project,
        agent=args.agent,
        week_start=periods.WEEKDAYS.index(settings.week_start),
        mode=reports.parse_mode(args.mode or settings.cost_mode, "--mode"),
    )
    report = reports.report(args.report, query, time.time())
    if args.json:
        print_json(report)
        return ExitStatus.OK
    label = {"daily": "date", "weekly": "week", "monthly": "month", "session": "session_id",
             "blocks": "block_start"}[args.report]  # fmt: skip
    if not report["rows"]:
        print("no usage recorded (`stratavore usage import` reads the agents' logs)")
        return ExitStatus.OK
    rows = [
        [row[label][:19], *(f"{row[k]:,}" for k in (*TOKEN_COLUMNS, "total_tokens")),
         f"${row['cost_usd']:,.2f}", ", ".join(row["models"])]
        for row in report["rows"]
    ]  # fmt: skip
    totals = report["totals"]
    rows.append(
        ["total", *(f"{totals[k]:,}" for k in (*TOKEN_COLUMNS, "total_tokens")),
         f"${totals['cost_usd']:,.2f}", ""]
    )  # fmt: skip
    headers = [label.upper().replace("_", " "), "INPUT", "OUTPUT", "CACHE WRITE", "CACHE READ",
               "TOTAL", "COST", "MODELS"]  # fmt: skip
    print(render_table(headers, rows, right=set(headers[1:7]), fit={"MODELS"}))
    return ExitStatus.OK


def usage_import(args: argparse.Namespace) -> int:
    """Ask the running supervisor to import; without one, import here with progress."""
    try:
        client = connect(args)
        client.timeout = max(client.timeout, IMPORT_TIMEOUT_S)  # a first import reads gigabytes
        report = client.request("POST", "/api/v1/usage/import")
    except NotRunning:
        report = import_here()
    if args.json:
        print_json(report)
        return ExitStatus.OK
    print(
        f"imported {report['written']:,} records from {report['files_read']} of "
        f"{report['files']} files ({human_size(report['bytes_read'])}) in "
        f"{report['seconds']:.1f}s"
    )
    if report["skipped"]:
        print(f"skipped {report['skipped']:,} malformed lines, e.g. {report['problems'][0]}")
    if report["unknown_models"]:
        print(f"no price for {', '.join(report['unknown_models'])}: counted at $0")
    return ExitStatus.OK


def import_here() -> dict[str, Any]:
    from supervisor.usage.importer import run_import
    from supervisor.usage.pricing import PriceTable

    settings = open_ledger()
    progress = Progress("importing")
    prices = PriceTable.bundled(settings.price_overrides)
    report = run_import(prices, progress=progress).as_json()
    progress.end()
    return report


def cmd_budget(args: argparse.Namespace) -> int:
    from supervisor.usage import budgets

    if args.action == "rm":
        if args.tokens is not None or args.usd is not None or args.warn or args.budget_action:
            raise UsageError("budget rm takes only SCOPE and --period")
        try:
            connect(args).request("DELETE", f"/api/v1/budgets/{args.scope}/{args.period}")
        except NotRunning:
            open_ledger()
            budgets.remove_budget(args.scope, args.period)
        print(f"removed the {args.period} budget of {args.scope}")
        return ExitStatus.OK
    warn = None
    if args.warn is not None:
        try:
            warn = [float(part) for part in args.warn.split(",") if part.strip()]
        except ValueError:
            warn = None
        if warn is None or not all(map(math.isfinite, warn)):
            raise UsageError(f"--warn takes percentages like 75,90, got {args.warn!r}")
    body = {"scope": args.scope, "period": args.period, "limit_tokens": args.tokens,
            "limit_usd": args.usd, "warn": warn, "action": args.budget_action}  # fmt: skip
    try:
        state = connect(args).request("PUT", "/api/v1/budgets", body=body)
    except NotRunning:
        from supervisor.api.schemas import BudgetSet

        checked(body, BudgetSet)  # the API's own checks, here where there is no API
        open_ledger()
        budget = budgets.set_budget(**{**body, "now": time.time()})
        state = budgets.status(budget, time.time(), budget_calendar()).as_json()
    print_budgets([state])
    return ExitStatus.OK


def checked(body: Json, struct: type) -> None:
    """Refuse ``body`` as the API would: by the request schema ``struct`` (its limits)."""
    import msgspec

    try:
        msgspec.convert(body, struct)
    except msgspec.ValidationError as exc:
        raise UsageError(f"Invalid request: {exc}.") from None


# --- backups (these work on the data dir's files: no supervisor needed) ---------------------
CHECK_NOTE_BYTES = 64 * 1024 * 1024  # a backup this big gets a line before its check


def cmd_backup(args: argparse.Namespace) -> int:
    from supervisor.core import paths
    from supervisor.storage import backups

    settings = open_ledger()
    progress = Progress("backing up")
    made = backups.take(
        paths.db_path(paths.data_dir()), "manual", settings.backup_keep, progress=progress
    )
    progress.end()
    took = time.monotonic() - progress.began
    print(f"backed up the database to {made.path} ({human_size(made.size)}, {took:.1f}s)")
    return ExitStatus.OK


def cmd_restore(args: argparse.Namespace) -> int:
    from supervisor.core import paths
    from supervisor.storage import backups

    if args.list == (args.name is not None):
        raise UsageError("restore takes --list, or the NAME of a backup to put back")
    root = paths.data_dir()
    if args.list:
        found = backups.list_backups(root)[::-1]
        if not found:
            print(f"no backups in {paths.backups_dir(root)} (`stratavore backup` makes one)")
            return ExitStatus.OK
        rows = [
            [b.name, datetime.fromtimestamp(b.taken_at).strftime("%Y-%m-%d %H:%M"),
             human_size(b.size), b.kind, b.schema]
            for b in found
        ]  # fmt: skip
        print(render_table(["NAME", "TAKEN", "SIZE", "KIND", "SCHEMA"], rows, right={"SIZE"}))
        return ExitStatus.OK
    return restore(root, backups.find(root, args.name))


def restore(root: Path, backup: Backup) -> int:
    """Put ``backup`` back while holding the data dir's lock: no supervisor may start on a
    half-restored database, and none may be running on the one replaced."""
    from supervisor.core import paths
    from supervisor.daemon import DataDirLock
    from supervisor.storage import backups, store

    lock = DataDirLock(root)
    try:
        lock.acquire()
    except KnownError as exc:
        raise ApiError(
            ErrorCode.CONFLICT,
            f"{str(exc).rstrip('.')}; stop it first (Ctrl-C, or quit the tray app), then restore.",
        ) from None
    try:
        if backup.size > CHECK_NOTE_BYTES:
            print(f"checking {backup.name} ({human_size(backup.size)})...", file=sys.stderr)
        backups.check_backup(backup, store.SCHEMA_VERSION)
        db = paths.db_path(root)
        aside = backups.restore(db, backup)
    finally:
        lock.release()
    kept = f"; the database it replaced is kept as {aside}" if aside else ""
    print(f"restored {backup.name} to {db}{kept}")
    return ExitStatus.OK


def budget_calendar() -> Any:
    from supervisor.usage.service import calendar_of

    return calendar_of(open_ledger())


def cmd_budgets(args: argparse.Namespace) -> int:
    from supervisor.storage.store import Budget
    from supervisor.usage import budgets

    cal = budget_calendar()
    now = time.time()
    states = [budgets.status(b, now, cal).as_json() for b in Budget.select().order_by(Budget.id)]
    if args.json:
        print_json(states)
    elif not states:
        print("no budgets (`stratavore budget set global --period daily --tokens N` adds one)")
    else:
        print_budgets(states)
    return ExitStatus.OK


def print_budgets(states: list[dict[str, Any]]) -> None:
    def limit(state: dict[str, Any]) -> str:
        parts = []
        if state["limit_tokens"]:
            parts.append(f"{state['used_tokens']:,} / {state['limit_tokens']:,} tok")
        if state["limit_usd"]:
            parts.append(f"${state['used_usd']:,.2f} / ${state['limit_usd']:,.2f}")
        return ", ".join(parts)

    def local(ts: str | None) -> str:
        return parse_ts(ts).astimezone().strftime("%Y-%m-%d %H:%M") if ts else "-"

    rows = [
        [s["scope"], s["period"], limit(s), f"{s['percent']:.1f}%", s["action"],
         local(s["resets_at"]), local(s["projected_exhaustion_at"])]
        for s in states
    ]  # fmt: skip
    headers = ["SCOPE", "PERIOD", "USED / LIMIT", "%", "ACTION", "RESETS", "EXHAUSTED AT"]
    print(render_table(headers, rows, right={"%"}, fit={"SCOPE"}))


# --- parsing and main -------------------------------------------------------------------
Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--timeout",
        type=finite("--timeout"),
        default=argparse.SUPPRESS,
        metavar="S",
        help="seconds to wait for the supervisor's answer (default 10)",
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print the API's JSON unchanged")

    parser = Parser(
        prog="stratavore",
        allow_abbrev=False,
        parents=[common],
        description="Supervise AI coding agent processes: launch, watch, stop.",
        epilog="See docs/cli.md for examples and exit statuses.",
    )
    parser.add_argument("--version", action="version", version=f"stratavore {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=Parser)

    def add(
        name: str, func: Command, text: str, *parents: argparse.ArgumentParser
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=text, description=text, allow_abbrev=False, parents=[common, *parents]
        )
        p.set_defaults(func=func)
        return p

    p = add("daemon", cmd_daemon, "run the supervisor in the foreground")
    p.add_argument("--port", type=int, help="API port on 127.0.0.1 (0: any free port)")
    for option in ("--heartbeat-interval", "--heartbeat-ttl", "--sweep-interval"):
        p.add_argument(
            option, type=finite(option), metavar="S", help="seconds (default: from settings)"
        )

    p = add("new", cmd_new, "create a project for a folder")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--path", metavar="DIR", help="the project's folder (default: current)")
    p.add_argument("--max-runners", type=int, metavar="N", help="cap on concurrent runners")

    p = add("projects", cmd_projects, "list projects", as_json)
    p.add_argument("--all", action="store_true", help="include archived projects")

    p = add("archive", cmd_archive, "archive a project")
    p.add_argument("name", metavar="NAME")

    p = add("launch", cmd_launch, "launch a runner: a profile and/or a command after --", as_json)
    p.add_argument("project", metavar="PROJECT")
    p.add_argument(
        "--profile", metavar="NAME", help="profile to run (a command is then extra arguments)"
    )
    p.add_argument("--restart", choices=["never", "on-failure", "always"])
    p.add_argument(
        "--no-queue",
        action="store_true",
        help="fail instead of queueing when the project is at its cap",
    )
    p.add_argument(
        "--prompt", metavar="TEXT", help="run the profile in batch mode with this prompt"
    )
    p.add_argument(
        "--mode",
        choices=["interactive", "batch"],
        help="the profile's command line to use (default: batch with --prompt, else interactive)",
    )
    p.add_argument(
        "--resume-session",
        metavar="SESSION",
        help="continue this session of the profile's agent (see `stratavore sessions`)",
    )
    p.add_argument(
        "--worktree",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run in a new git worktree and branch under the data dir (default: the profile's)",
    )
    p.add_argument(
        "--resume-on-limit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="resume by itself when a provider's usage limit resets (default: batch runs)",
    )

    p = add("runners", cmd_runners, "list runners", as_json)
    p.add_argument("project", nargs="?", metavar="PROJECT", help="only this project's")
    p.add_argument("--all", action="store_true", help="include finished runners")

    p = add("kill", cmd_kill, "stop runners and their process trees")
    p.add_argument("runners", metavar="RUNNER", nargs="*", help="runner ids")
    p.add_argument("--project", metavar="NAME", help="every active runner of this project")
    p.add_argument("--all", action="store_true", help="every active runner")
    p.add_argument("--force", action="store_true", help="kill at once, without SIGTERM first")

    p = add("restart", cmd_restart, "restart a runner")
    p.add_argument("runner", metavar="RUNNER")

    p = add("resume", cmd_resume, "continue a runner's own agent session (--resume <its id>)")
    p.add_argument("runner", metavar="RUNNER")
    p.add_argument("--prompt", metavar="TEXT", help="batch mode: what to say (default: continue)")
    p.add_argument("--mode", choices=["interactive", "batch"], help="default: the runner's")

    p = add("sessions", cmd_sessions, "agent sessions: last activity, tokens, resumable", as_json)
    p.add_argument("--project", metavar="NAME", help="only this project's")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50)")

    p = add("logs", cmd_logs, "print a runner's log")
    p.add_argument("runner", metavar="RUNNER")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    p.add_argument(
        "-n", "--lines", type=int, metavar="LINES", help="only the last LINES lines (default: all)"
    )

    add("profiles", cmd_profiles, "list profiles", as_json)
    add("status", cmd_status, "show the supervisor's status", as_json)

    p = add("watch", cmd_watch, "live view of the active runners")
    p.add_argument(
        "--interval",
        type=finite("--interval"),
        default=1.0,
        metavar="S",
        help="seconds between refreshes (default 1)",
    )

    p = add("settings", cmd_settings, "list the supervisor's settings", as_json)

    p = add("set", cmd_set, "change a setting, or a project's own cap with --project")
    p.add_argument("key", metavar="KEY")
    p.add_argument("value", metavar="VALUE", help="a number; with --project also 'default'")
    p.add_argument("--project", metavar="NAME", help="set this project's own runner cap")

    p = add("events", cmd_events, "list events; dead letters; retry one", as_json)
    p.add_argument(
        "action",
        nargs="?",
        choices=("list", "dead", "retry"),
        default="list",
        help="list (default), dead: deliveries that gave up, retry ID: try one again",
    )
    p.add_argument("id", nargs="?", type=int, metavar="ID", help="the dead letter to retry")
    p.add_argument("--since", type=int, metavar="ID", help="only events after this id")
    p.add_argument(
        "--last", type=int, default=100, metavar="N", help="at most N events (default 100)"
    )
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events")

    p = add("notify", cmd_notify, "notification channels: list, add, rm, test", as_json)
    p.add_argument("action", choices=("channels", "add", "rm", "test"))
    p.add_argument("names", nargs="*", metavar="ARG", help="add: KIND NAME; rm, test: NAME")
    p.add_argument("--chat-id", metavar="ID", help="telegram: the chat to post to")
    p.add_argument("--server", metavar="URL", help="ntfy: the server (default https://ntfy.sh)")
    p.add_argument("--topic", metavar="TOPIC", help="ntfy: the topic")
    p.add_argument("--url", metavar="URL", help="webhook: where to POST")
    p.add_argument(
        "--secret",
        action="store_true",
        help="ntfy/webhook: read an access token / signing secret from a prompt or stdin",
    )
    p.add_argument("--events", metavar="TYPES", help="event types, e.g. 'runner.failed,budget.*'")
    p.add_argument("--min-severity", choices=("debug", "info", "warning", "error", "critical"))
    p.add_argument("--quiet-hours", metavar="HH:MM-HH:MM", help="hold non-errors in these hours")

    p = add("usage", cmd_usage, "token usage and cost from the agents' own logs", as_json)
    p.add_argument(
        "report",
        nargs="?",
        default="daily",
        choices=("daily", "weekly", "monthly", "session", "blocks", "import"),
        help="which report (default daily); import reads new log lines now",
    )
    p.add_argument("--since", metavar="DATE", help="from this local date (YYYY-MM-DD)")
    p.add_argument("--until", metavar="DATE", help="to this local date, inclusive")
    p.add_argument("--project", metavar="NAME", help="only this project's usage")
    p.add_argument("--agent", metavar="NAME", help="only this agent's (claude, codex, ...)")
    p.add_argument("--timezone", metavar="TZ", help="IANA zone for days (default: settings)")
    p.add_argument(
        "--mode",
        metavar="MODE",
        help="costs as the vendor bills (vendor) or as ccusage 20.0.24 works them out (ccusage);"
        " default: the cost_mode setting",
    )

    p = add("budget", cmd_budget, "set or remove a budget")
    p.add_argument("action", choices=("set", "rm"))
    p.add_argument("scope", metavar="SCOPE", help="global, project:NAME or agent:NAME")
    p.add_argument("--period", required=True, choices=("5h", "daily", "weekly", "monthly"))
    p.add_argument("--tokens", type=int, metavar="N", help="token limit")
    p.add_argument("--usd", type=finite("--usd"), metavar="X", help="dollar limit")
    p.add_argument("--warn", metavar="PCTS", help="warn at these percentages (default 75,90)")
    p.add_argument(
        "--action",
        dest="budget_action",
        choices=("warn", "block", "stop"),
        help="at 100%%: warn, block new launches, or also stop running runners (default warn)",
    )

    add("budgets", cmd_budgets, "list budgets: used, limit, reset, projected exhaustion", as_json)

    add("backup", cmd_backup, "back the database up into the data dir's backups/ now")
    p = add("restore", cmd_restore, "list the backups, or put one back in place of the database")
    p.add_argument("name", nargs="?", metavar="NAME", help="the backup to put back")
    p.add_argument("--list", action="store_true", help="list the backups, newest first")
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; everything after the first ``--`` is launch's command, verbatim."""
    argv = list(argv)
    command: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    if command and args.cmd != "launch":
        parser.error(f"{args.cmd} takes no command after --")
    args.command = command or None
    args.timeout = getattr(args, "timeout", DEFAULT_TIMEOUT_S)  # shared action: no default
    return args


def run(args: argparse.Namespace) -> int:
    positive("--timeout", args.timeout)
    return args.func(args)


def fail(message: object) -> None:
    print("stratavore: " + " ".join(str(message).split("\n")), file=sys.stderr)


def damaged_database(exc: Exception) -> str:
    """One sentence for a database found damaged by a command that reads it directly (usage,
    budgets; the supervisor checks every page at start, these commands only its header)."""
    kinds = tuple(m.DatabaseError for m in (sqlite3, sys.modules.get("peewee")) if m)
    if not isinstance(exc, kinds) or not any(
        words in str(exc) for words in ("malformed", "not a database")
    ):
        return ""
    from supervisor.core import paths
    from supervisor.storage import backups

    root = paths.data_dir()
    return f"The database {paths.db_path(root)} is damaged ({exc}): {backups.way_back(root)}."


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status, with any error reported as one line on stderr."""
    try:
        return run(parse_args(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse's --help / --version
        return ExitStatus(exc.code) if isinstance(exc.code, int) else ExitStatus.USAGE
    except UsageError as exc:
        fail(exc)
        return ExitStatus.USAGE
    except NotRunning as exc:
        fail(exc)
        return ExitStatus.NOT_RUNNING
    except ClientError as exc:
        fail(exc.message)
        return EXIT_FOR_ERROR.get(exc.code, ExitStatus.ERROR)
    except ApiError as exc:  # from the commands that work on the DB directly
        fail(exc.message)
        return EXIT_FOR_ERROR.get(exc.code, ExitStatus.ERROR)
    except KnownError as exc:
        fail(exc)
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:  # e.g. `stratavore events | head`: the reader is gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.OK
    except Exception as exc:
        if os.environ.get("STRATAVORE_DEBUG") == "1":
            traceback.print_exc()
        damage = damaged_database(exc)
        if damage:
            fail(damage)
            return ExitStatus.ERROR
        fail(
            f"internal error: {type(exc).__name__}: {exc} (this is a bug, please report it; "
            "STRATAVORE_DEBUG=1 shows the traceback)"
        )
        return ExitStatus.ERROR


if __name__ == "__main__":
    sys.exit(main())
