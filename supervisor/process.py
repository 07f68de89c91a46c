"""Every OS call the supervisor makes about processes, behind one object.

A runner's root process is a tiny ``/bin/sh`` trampoline that runs the command as its child,
waits, and writes the exit status to a file before exiting with it. It costs about one
millisecond and 1 MB, and it is how an exit status is still known when the runner ended while
the supervisor was down (the supervisor then reads the file instead of ``waitpid``). The
trampoline leads its own session and process group, so a polite signal to the group reaches
the command and its children while the trampoline (which traps the signal) lives on to record
the status. On Windows the command is started directly in a new process group; there an exit
that happens while the supervisor is down is reported as ``lost``.

Identity is (pid, create time): a pid alone is never trusted, because pids are reused.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import psutil

WINDOWS = os.name == "nt"

# $1 is the exit-status file, $2 the working directory, the rest the command. Trapping the
# signals (rather than ignoring them) keeps the trampoline alive through a group signal while
# the command, which gets the default dispositions back on exec, receives it. The status is
# 128+N when the command died of signal N.
TRAMPOLINE = (
    'f=$1; cd -- "$2" || { printf "126\\n" > "$f"; exit 126; }; shift 2; trap : HUP INT TERM; '
    '"$@"; rc=$?; printf "%d\\n" "$rc" > "$f"; exit "$rc"'
)
CREATE_TIME_TOLERANCE = 0.01  # psutil's create time is stable to this within one boot


@dataclass(frozen=True)
class Identity:
    pid: int
    create_time: float


@dataclass(frozen=True)
class Sample:
    """CPU and memory of a runner's whole process tree."""

    cpu_percent: float
    rss_bytes: int
    stopped: bool  # the root is stopped (SIGSTOP / traced): alive but cannot progress


def exit_status(returncode: int) -> int:
    """A Popen return code in shell convention: 128+N for death by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def describe_exit(code: int | None) -> str:
    """A short sentence part: 'exited with status 2', 'was killed by SIGKILL'."""
    if code is None:
        return "ended with an unknown exit status"
    if code > 128 and not WINDOWS:
        try:
            return f"was killed by {signal.Signals(code - 128).name}"
        except ValueError:
            pass
    return f"exited with status {code}"


class ProcessOps:
    """Spawning, signalling, sampling and identifying processes (subclass in tests to inject
    failures)."""

    def __init__(self) -> None:
        self._cpu_prev: dict[Identity, tuple[float, float]] = {}
        self._popens: dict[int, subprocess.Popen[bytes]] = {}  # Windows children only

    # --- spawning -------------------------------------------------------------------------
    def spawn(
        self, argv: list[str], cwd: str, env: dict[str, str], spool: Path, exit_file: Path
    ) -> Identity:
        """Start ``argv`` in its own session, output appended to ``spool``.

        POSIX uses ``posix_spawn`` (vfork speed, and no Popen object that would warn about, or
        reap behind our back, a runner deliberately left running for adoption)."""
        exit_file.unlink(missing_ok=True)
        if WINDOWS:
            with open(spool, "ab") as out:
                popen = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    creationflags=subprocess.CREATE_NEW_PROCESS_GROUP,
                )
            self._popens[popen.pid] = popen
            pid = popen.pid
        else:
            out = os.open(spool, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            try:
                pid = os.posix_spawn(
                    "/bin/sh",
                    ["/bin/sh", "-c", TRAMPOLINE, "stratavore-runner", str(exit_file), cwd, *argv],
                    env,
                    file_actions=[
                        (os.POSIX_SPAWN_DUP2, null, 0),
                        (os.POSIX_SPAWN_DUP2, out, 1),
                        (os.POSIX_SPAWN_DUP2, out, 2),
                    ],
                    setsid=True,
                )
            finally:
                os.close(out)
                os.close(null)
        try:
            created = psutil.Process(pid).create_time()
        except psutil.Error:  # already gone: still a valid identity for bookkeeping
            created = time.time()
        return Identity(pid, created)

    def poll(self, pid: int) -> tuple[bool, int | None]:
        """(ended, exit status): the status when this process is our child and we reaped it;
        for a process we did not parent (adopted), only whether its pid is gone."""
        popen = self._popens.get(pid)
        if popen is not None:
            code = popen.poll()
            if code is None:
                return False, None
            del self._popens[pid]
            return True, code
        if WINDOWS:
            return not psutil.pid_exists(pid), None
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return not psutil.pid_exists(pid), None
        if reaped == 0:
            return False, None
        return True, exit_status(os.waitstatus_to_exitcode(status))

    # --- identity -------------------------------------------------------------------------
    def create_time(self, pid: int) -> float | None:
        try:
            return psutil.Process(pid).create_time()
        except psutil.Error:
            return None

    def is_alive(self, ident: Identity) -> bool:
        """The process with this exact identity exists and is not a zombie."""
        try:
            proc = psutil.Process(ident.pid)
            if abs(proc.create_time() - ident.create_time) > CREATE_TIME_TOLERANCE:
                return False
            return proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    @staticmethod
    def read_exit_file(path: Path) -> int | None:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    # --- signals --------------------------------------------------------------------------
    def signal_polite(self, ident: Identity, group: bool) -> None:
        """SIGTERM to the runner's process group (or just its root), CTRL_BREAK on Windows."""
        with contextlib.suppress(OSError):  # already gone, or not ours any more
            if WINDOWS:
                os.kill(ident.pid, signal.CTRL_BREAK_EVENT)
            elif group:
                os.killpg(ident.pid, signal.SIGTERM)
            else:
                os.kill(ident.pid, signal.SIGTERM)

    def kill(self, idents: list[Identity], group: int | None = None) -> int:
        """SIGKILL each process still matching its identity, and the process group; count."""
        killed = 0
        for ident in idents:
            if self.is_alive(ident):
                with contextlib.suppress(psutil.Error):
                    psutil.Process(ident.pid).kill()
                    killed += 1
        if group is not None and not WINDOWS:
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGKILL)
        return killed

    # --- trees and sampling -----------------------------------------------------------------
    def _snapshot(self) -> dict[int, tuple[int, float, psutil.Process]]:
        """pid -> (ppid, create time, process), one pass over the process table."""
        table = {}
        for proc in psutil.process_iter(["ppid", "create_time"]):
            info = proc.info
            if info["ppid"] is not None and info["create_time"] is not None:
                table[proc.pid] = (info["ppid"], info["create_time"], proc)
        return table

    def descendants(self, roots: list[Identity]) -> dict[Identity, list[Identity]]:
        """Each root's descendants (children, grandchildren, ...), from one process-table
        pass; a root that is gone or reused maps to []."""
        table = self._snapshot()
        children: dict[int, list[int]] = defaultdict(list)
        for pid, (ppid, _, _) in table.items():
            children[ppid].append(pid)
        result: dict[Identity, list[Identity]] = {}
        for root in roots:
            found: list[Identity] = []
            entry = table.get(root.pid)
            if entry and abs(entry[1] - root.create_time) <= CREATE_TIME_TOLERANCE:
                stack = list(children.get(root.pid, ()))
                while stack:
                    pid = stack.pop()
                    found.append(Identity(pid, table[pid][1]))
                    stack.extend(children.get(pid, ()))
            result[root] = found
        return result

    def sample(self, roots: list[Identity], now: float | None = None) -> dict[Identity, Sample]:
        """CPU % (since the previous sample of the same process, else since it started) and
        RSS summed over each root's tree. Roots that are gone are absent from the result."""
        now = time.time() if now is None else now
        trees = self.descendants(roots)
        result: dict[Identity, Sample] = {}
        seen: set[Identity] = set()
        for root, tree in trees.items():
            cpu = 0.0
            rss = 0
            stopped = False
            alive = False
            for ident in (root, *tree):
                try:
                    proc = psutil.Process(ident.pid)
                    with proc.oneshot():
                        times = proc.cpu_times()
                        mem = proc.memory_info().rss
                        status = proc.status()
                except psutil.Error:
                    continue
                if ident == root:
                    alive = status != psutil.STATUS_ZOMBIE
                    stopped = status in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)
                total = times.user + times.system
                prev_total, prev_at = self._cpu_prev.get(ident, (0.0, ident.create_time))
                elapsed = max(now - prev_at, 1e-6)
                cpu += max(total - prev_total, 0.0) / elapsed * 100.0
                rss += mem
                self._cpu_prev[ident] = (total, now)
                seen.add(ident)
            if alive:
                result[root] = Sample(round(cpu, 1), rss, stopped)
        # forget processes that are gone, so the table does not grow without bound
        for ident in [i for i in self._cpu_prev if i not in seen]:
            del self._cpu_prev[ident]
        return result
