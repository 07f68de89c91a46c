"""The runners: ``launch``, ``runners``, ``kill``, ``restart``, ``resume``, ``logs``, and the
supervisor's view of them, ``status`` and ``watch``."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import UTC, datetime

from supervisor.cli.args import Arguments, Command, add_json, finite, positive, runner_id
from supervisor.cli.output import (
    WIDTH,
    ExitStatus,
    Json,
    UsageError,
    human_duration,
    human_size,
    parse_ts,
    print_json,
    render_table,
)
from supervisor.cli.remote import connect
from supervisor.core.states import FINISHED_STATES as FINISHED

LOG_POLL_S = 0.5


# --- formatting -------------------------------------------------------------------------
def uptime(runner: Json, now: datetime | None = None) -> str:
    """How long the runner has run: from started_at to ended_at, or to now."""
    if not runner.get("started_at"):
        return "-"
    end = parse_ts(runner["ended_at"]) if runner.get("ended_at") else now or datetime.now(UTC)
    return human_duration((end - parse_ts(runner["started_at"])).total_seconds())


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


# --- commands ---------------------------------------------------------------------------
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


def launch_arguments(p: argparse.ArgumentParser) -> None:
    add_json(p)
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


def runners_arguments(p: argparse.ArgumentParser) -> None:
    add_json(p)
    p.add_argument("project", nargs="?", metavar="PROJECT", help="only this project's")
    p.add_argument("--all", action="store_true", help="include finished runners")


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


def kill_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runners", metavar="RUNNER", nargs="*", help="runner ids")
    p.add_argument("--project", metavar="NAME", help="every active runner of this project")
    p.add_argument("--all", action="store_true", help="every active runner")
    p.add_argument("--force", action="store_true", help="kill at once, without SIGTERM first")


def cmd_restart(args: argparse.Namespace) -> int:
    rid = runner_id(args.runner)
    runner = connect(args).post(f"/api/v1/runners/{rid}/restart")
    new = "" if runner["id"] == rid else f" as runner {runner['id']}"
    print(f"restarted runner {rid}{new} ({runner['state']})")
    return ExitStatus.OK


def restart_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runner", metavar="RUNNER")


def cmd_resume(args: argparse.Namespace) -> int:
    rid = runner_id(args.runner)
    body: Json = {k: getattr(args, k) for k in ("prompt", "mode") if getattr(args, k)}
    runner = connect(args).post(f"/api/v1/runners/{rid}/resume", body)
    print(f"resumed runner {rid}: session {runner['session_id']} ({runner['state']})")
    return ExitStatus.OK


def resume_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runner", metavar="RUNNER")
    p.add_argument("--prompt", metavar="TEXT", help="batch mode: what to say (default: continue)")
    p.add_argument("--mode", choices=["interactive", "batch"], help="default: the runner's")


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


def logs_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runner", metavar="RUNNER")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    p.add_argument(
        "-n", "--lines", type=int, metavar="LINES", help="only the last LINES lines (default: all)"
    )


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


def watch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--interval",
        type=finite("--interval"),
        default=1.0,
        metavar="S",
        help="seconds between refreshes (default 1)",
    )


COMMANDS: dict[str, tuple[Command, Arguments]] = {
    "launch": (cmd_launch, launch_arguments),
    "runners": (cmd_runners, runners_arguments),
    "kill": (cmd_kill, kill_arguments),
    "restart": (cmd_restart, restart_arguments),
    "resume": (cmd_resume, resume_arguments),
    "logs": (cmd_logs, logs_arguments),
    "status": (cmd_status, add_json),
    "watch": (cmd_watch, watch_arguments),
}
