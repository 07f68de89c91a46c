"""``stratavore-agent [--project NAME] -- CMD ARGS...``: run a command the supervisor tracks.

``stratavore-agent --profile claude [--resume SESSION] [-- ARGS...]`` runs an agent profile
instead: the supervisor answers the registration with the profile's command line (for Claude
Code a session id chosen up front, and the hooks that report "needs input"), and the wrapper
runs that. Without a supervisor, the profile's program runs untracked with ``ARGS``.

The supervisor starts most runners itself. This wrapper covers the rest: a runner started by hand
in any terminal (or by the tray in terminal mode) registers itself, or uses the runner the
supervisor pre-created for it (``STRATAVORE_RUNNER_ID``/``_TOKEN``/``STRATAVORE_API``), spawns
the command as its child, sends heartbeats with the CPU and memory of the child's whole process
tree, reports the exit status at the end and exits with it. When no supervisor answers, the
command runs anyway, untracked: an agent is never blocked by the supervisor being down.

The child stays in the wrapper's process group, so a terminal's Ctrl-C reaches it directly. That
is why the wrapper *ignores* SIGINT instead of forwarding it: forwarding would deliver every
Ctrl-C twice, and Claude Code takes two Ctrl-C as "exit". SIGTERM (the supervisor's stop),
SIGHUP, SIGQUIT, SIGUSR1/2 and SIGWINCH are forwarded to the child.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from supervisor import __version__
from supervisor.agents import commands
from supervisor.api.client import ApiClient, ClientError, NotRunning
from supervisor.core.errors import ApiError

PROG = "stratavore-agent"
USAGE = f"{PROG} [--project NAME] [--profile NAME [--resume SESSION]] -- CMD ARGS..."
DEFAULT_INTERVAL = 10.0
HEARTBEAT_TIMEOUT = 5.0
FINAL_TIMEOUT = 2.0
REGISTER_TIMEOUT = 5.0
# Set for the child to the runner id it reports as: a nested stratavore-agent that inherits the
# runner variables (meant for the agent itself, not for a new wrapper) registers its own runner
# instead of reporting, and finally ending, the outer one.
NESTED_MARKER = "STRATAVORE_AGENT_RUNNER_ID"
FORWARDED = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")


@dataclass
class Attachment:
    """Where to send heartbeats, as whom, and how often."""

    url: str
    token: str
    runner_id: int
    interval: float
    from_env: bool = False  # the URL came from STRATAVORE_API: never re-discover it
    interval_fixed: bool = False  # STRATAVORE_HEARTBEAT_INTERVAL wins over the supervisor's
    command: list[str] | None = None  # what the supervisor said to run (a profile's)


def warn(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Options before the first ``--``; everything after it is the command, verbatim."""
    cut = argv.index("--") if "--" in argv else len(argv)
    own, command = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=USAGE,
        description="Run a command as a runner tracked by the Stratavore supervisor.",
    )
    parser.add_argument(
        "--project",
        metavar="NAME",
        help="project to file the runner under (default: the one holding cwd)",
    )
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="run this agent profile (its session id and hooks); CMD ARGS are extra arguments",
    )
    parser.add_argument(
        "--resume",
        metavar="SESSION",
        help="with --profile: continue this session of the agent",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    opts = parser.parse_args(own)
    if opts.resume and not opts.profile:
        parser.error("--resume needs --profile NAME")
    return opts, command


def _env_interval() -> float | None:
    try:
        return max(0.05, float(os.environ["STRATAVORE_HEARTBEAT_INTERVAL"]))
    except (KeyError, ValueError):
        return None


def attach(
    command: list[str], project: str | None, profile: str | None = None, resume: str | None = None
) -> Attachment | None:
    """The runner to report to: pre-created (env) or newly registered; None when untracked.
    With a profile, the attachment carries the command line the supervisor rendered."""
    env, override = os.environ, _env_interval()
    names = ("STRATAVORE_RUNNER_ID", "STRATAVORE_RUNNER_TOKEN", "STRATAVORE_API")
    if all(env.get(n) for n in names) and env.get(NESTED_MARKER) != env["STRATAVORE_RUNNER_ID"]:
        try:
            runner_id = int(env["STRATAVORE_RUNNER_ID"])
        except ValueError:
            warn("not tracked (STRATAVORE_RUNNER_ID is not a number); running the command anyway")
            return None
        return Attachment(
            env["STRATAVORE_API"].rstrip("/"),
            env["STRATAVORE_RUNNER_TOKEN"],
            runner_id,
            override or DEFAULT_INTERVAL,
            True,
            override is not None,
        )
    body: dict[str, object] = {"command": command, "pid": os.getpid(), "cwd": os.getcwd()}
    if project:
        body["project"] = project
    if profile:
        body["profile"] = profile
    if resume:
        body["resume_session"] = resume
    client = None
    try:
        # a locked database delays the command no longer than an unanswering supervisor
        client = ApiClient.discover(timeout=REGISTER_TIMEOUT, lock_wait=REGISTER_TIMEOUT)
        answer = client.post("/api/v1/runners/register", body)
        return Attachment(
            client.base_url,
            answer["token"],
            int(answer["runner"]["id"]),
            override or float(answer["heartbeat_interval"]),
            interval_fixed=override is not None,
            command=list(answer["command"]),
        )
    except Exception as exc:  # whatever went wrong, the command still runs
        reason = exc.message if isinstance(exc, ClientError) else str(exc)
        warn(f"not tracked ({reason.rstrip('.')}); running the command anyway")
        return None
    finally:
        if client is not None:
            client.session.close()


def send_heartbeat(att: Attachment, body: dict[str, object], timeout: float) -> object:
    """POST one heartbeat; on NotRunning, follow a restarted supervisor to its new URL once."""
    path = f"/api/v1/runners/{att.runner_id}/heartbeat"

    def post(url: str) -> object:
        client = ApiClient(url, att.token, timeout)
        try:
            return client.post(path, body)
        finally:
            client.session.close()

    try:
        return post(att.url)
    except NotRunning:
        if att.from_env:
            raise
        found = ApiClient.discover(timeout=timeout)  # raises NotRunning when none runs
        found.session.close()
        if found.base_url == att.url:
            raise
        att.url = found.base_url
        return post(att.url)


def sample_tree(root_pid: int, cache: dict[int, psutil.Process]) -> tuple[float, int] | None:
    """(CPU percent, RSS bytes) summed over the process and its descendants; None when gone.

    ``cache`` keeps the same psutil.Process objects between calls, so ``cpu_percent(None)``
    measures since the previous sample (a new process reports 0.0 the first time).
    """
    try:
        root = cache.get(root_pid) or psutil.Process(root_pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    kept: dict[int, psutil.Process] = {}
    cpu, rss = 0.0, 0
    for proc in tree:
        known = cache.get(proc.pid)
        proc = known if known is not None and known == proc else proc  # same pid + create time
        try:
            cpu += proc.cpu_percent(None)
            rss += proc.memory_info().rss
        except psutil.Error:
            continue
        kept[proc.pid] = proc
    cache.clear()
    cache.update(kept)
    return round(cpu, 1), rss


def heartbeat_loop(att: Attachment, child_pid: int, stop: threading.Event) -> None:
    """Report the child tree every interval until ``stop``, or until the runner has finished."""
    cache: dict[int, psutil.Process] = {}
    failing = False
    while not stop.is_set():
        body: dict[str, object] = {"state": "running"}
        sample = sample_tree(child_pid, cache)
        if sample is not None:
            body["cpu_percent"], body["rss_bytes"] = sample
        try:
            ack = send_heartbeat(att, body, HEARTBEAT_TIMEOUT)
        except ClientError as exc:
            if exc.code.status == 409:  # the supervisor already considers this runner finished
                return
            if not failing:
                warn(f"heartbeats refused ({exc.message.rstrip('.')}); still retrying")
            failing = True
        except Exception as exc:  # supervisor down or restarting: keep the wrapper alive
            if not failing:
                warn(f"heartbeats failing ({str(exc).rstrip('.')}); still retrying")
            failing = True
        else:
            failing = False
            if not att.interval_fixed and isinstance(ack, dict):
                att.interval = max(0.05, float(ack.get("heartbeat_interval") or att.interval))
        stop.wait(att.interval)


def final_heartbeat(att: Attachment, exit_code: int) -> None:
    """Best effort: tell the supervisor how the command ended."""
    with contextlib.suppress(Exception):
        send_heartbeat(att, {"exit_code": exit_code}, FINAL_TIMEOUT)


def exit_status(returncode: int) -> int:
    """The shell's convention: the exit status, or 128+N for death by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def deliver(child: subprocess.Popen[bytes], signum: int) -> None:
    if sys.platform == "win32":
        child.terminate()  # SIGTERM raised in-process; a console's Ctrl-Break reaches both
    else:
        child.send_signal(signum)  # a no-op once the child has been reaped


def install_signals(get_child: Callable[[], subprocess.Popen[bytes] | None]) -> list[int]:
    """Ignore Ctrl-C (the child gets it from the terminal) and forward the rest to the child.

    Handlers, not SIG_IGN: an ignored disposition would survive exec and the child would never
    see Ctrl-C; a Python handler is reset to the default in the child. A signal already ignored
    when the wrapper started (``nohup``, a background job) is left ignored, for the child too.
    Returns the list where signals that arrive before the child exists are kept, to be
    forwarded once it does.
    """
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        child = get_child()
        if child is None:
            pending.append(signum)
        else:
            deliver(child, signum)

    def ignore(_signum: int, _frame: object) -> None:
        pass

    # Windows: the console sends Ctrl-Break to the child too, like Ctrl-C.
    handlers = {"SIGINT": ignore, "SIGBREAK": ignore, **dict.fromkeys(FORWARDED, forward)}
    for name, handler in handlers.items():
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, handler)
    return pending


def wait(child: subprocess.Popen[bytes]) -> int:
    if sys.platform != "win32":
        return child.wait()
    while True:  # Windows: wake up now and then so Python-level signal handlers can run
        try:
            return child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass


def run(command: list[str], att: Attachment | None) -> int:
    """Spawn ``command`` with the runner env, heartbeat while it runs, report its exit status."""
    env = dict(os.environ)
    if att is not None:
        env.update(
            STRATAVORE_RUNNER_ID=str(att.runner_id),
            STRATAVORE_RUNNER_TOKEN=att.token,
            STRATAVORE_API=att.url,
            **{NESTED_MARKER: str(att.runner_id)},
        )
    holder: list[subprocess.Popen[bytes]] = []
    pending = install_signals(lambda: holder[0] if holder else None)
    try:
        child = subprocess.Popen(commands.popen_args(command), env=env)
    except OSError as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        warn(f"cannot execute '{command[0]}': {exc.strerror or exc}")
        if att is not None:
            final_heartbeat(att, code)
        return code
    holder.append(child)
    for signum in pending:
        deliver(child, signum)
    stop = threading.Event()
    thread = None
    if att is not None:
        thread = threading.Thread(
            target=heartbeat_loop,
            args=(att, child.pid, stop),
            name="stratavore-heartbeat",
            daemon=True,
        )
        thread.start()
    code = exit_status(wait(child))
    stop.set()
    if att is not None:
        if thread is not None:
            thread.join(timeout=1.0)  # let an in-flight "running" heartbeat land first
        final_heartbeat(att, code)
    return code


def resolve(name: str) -> str | None:
    """The program to run: on PATH (on Windows an ``.exe`` before an npm ``.cmd`` shim), or a
    path that exists (so a non-executable file gives 126)."""
    found = commands.find_program([name], os.environ.get("PATH", ""))
    if found is None and (os.sep in name or "/" in name) and os.path.exists(name):
        return name
    return found


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["statusline"]:  # Claude Code's status line (a frozen build has no `python -m`)
        from supervisor.agents import statusline

        return statusline.main()
    opts, command = parse_args(argv)
    if not command and not opts.profile:
        print(f"{PROG}: nothing to run; usage: {USAGE}", file=sys.stderr)
        return 2
    if not opts.profile:
        program = resolve(command[0])
        if program is None:
            warn(f"command '{command[0]}' not found on PATH")
            return 127
        command = [program, *command[1:]]
    try:
        attachment = attach(command, opts.project, opts.profile, opts.resume)
    except KeyboardInterrupt:  # Ctrl-C while registering: nothing has started yet
        return 130
    if attachment is not None and attachment.command:
        command = attachment.command
    elif opts.profile:  # untracked: the profile's own program (its name), as the user typed
        found = resolve(opts.profile)
        if found is None:
            warn(f"command '{opts.profile}' not found on PATH")
            return 127
        command = [found, *command]
    try:
        command = commands.exec_argv(command)
    except ApiError as exc:  # a batch-file shim that can't take this argument safely
        warn(exc.message)
        return 2
    return run(command, attachment)


if __name__ == "__main__":
    raise SystemExit(main())
