"""Every OS call the supervisor makes about processes, behind one object.

A runner's root process is a tiny ``/bin/sh`` trampoline that runs the command as its child,
waits, and writes the exit status to a file before exiting with it. It costs about one
millisecond and 1 MB, and it is how an exit status is still known when the runner ended while
the supervisor was down (the supervisor then reads the file instead of ``waitpid``). The
trampoline leads its own session and process group, so a polite signal to the group reaches
the command and its children while the trampoline (which traps the signal) lives on to record
the status. On Windows the root is a small wrapper holding a Job Object instead, with the same
guarantees (:mod:`supervisor.winjob`).

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

from supervisor import commands, winjob

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
# Linux lists each task's children in /proc (CONFIG_PROC_CHILDREN): walking a runner's tree
# then costs a few file reads instead of a scan of the whole process table.
# (Not on Windows, where Wine maps /proc to Linux's: there it lists Linux pids, not ours.)
PROC_CHILDREN = not WINDOWS and os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def _proc_children(pid: int) -> list[int]:
    """Direct children of ``pid`` from /proc (all its threads' children)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    children: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                children.extend(int(c) for c in f.read().split())
        except OSError:  # the thread ended meanwhile
            continue
    return children


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
        if exit_file.exists():  # from an earlier run of a restarted runner
            exit_file.unlink()
        if WINDOWS:
            command = commands.popen_args(argv)
            wrapped = [*winjob.wrapper_command(), str(exit_file)]
            wrapped += ["--line", command] if isinstance(command, str) else ["--", *command]
            with open(spool, "ab") as out:
                popen = winjob.RunnerPopen(
                    wrapped,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    # a console of its own, hidden: no window pops up, and the user's Ctrl+C in
                    # the terminal of a `stratavore daemon` does not reach the runners
                    creationflags=winjob.CREATE_NO_WINDOW,
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
        info = proc_info(pid)
        # already gone: still a valid identity for bookkeeping (its end is seen at once)
        return Identity(pid, time.time() if info is None else info.create_time)

    def poll(self, ident: Identity) -> tuple[bool, int | None]:
        """(ended, exit status): the status when this process is our child and we reaped it;
        for a process we did not parent (adopted), only whether it ended: gone, a zombie its
        new parent has not reaped yet, or its pid now another program's."""
        popen = self._popens.get(ident.pid)
        if popen is not None:
            code = popen.poll()
            if code is None:
                return False, None
            del self._popens[ident.pid]
            return True, code
        if WINDOWS:
            return not self.is_alive(ident), None
        try:
            reaped, status = os.waitpid(ident.pid, os.WNOHANG)
        except ChildProcessError:
            return not self.is_alive(ident), None
        if reaped == 0:
            return False, None
        return True, exit_status(os.waitstatus_to_exitcode(status))

    def open_exit_watch(self, ident: Identity) -> int | None:
        """A pidfd that turns readable when this exact process ends (Linux 5.3+), or None."""
        if not hasattr(os, "pidfd_open"):
            return None
        try:
            fd = os.pidfd_open(ident.pid)
        except OSError:
            return None
        if not self.is_alive(ident):  # checked after opening: the fd now pins this process
            os.close(fd)
            return None
        return fd

    # --- identity -------------------------------------------------------------------------
    def create_time(self, pid: int) -> float | None:
        info = proc_info(pid)
        return None if info is None else info.create_time

    def is_alive(self, ident: Identity) -> bool:
        """The process with this exact identity exists and is not a zombie."""
        info = proc_info(ident.pid)
        return info is not None and info.matches(ident) and not info.zombie

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
                if not winjob.polite_stop(ident.pid, ident.create_time):  # no wrapper
                    os.kill(ident.pid, signal.CTRL_BREAK_EVENT)
            elif group:
                os.killpg(ident.pid, signal.SIGTERM)
            else:
                os.kill(ident.pid, signal.SIGTERM)

    def kill(self, idents: list[Identity], group: int | None = None) -> int:
        """SIGKILL each process still matching its identity, and the process group; count."""
        killed = 0
        for ident in idents:
            if WINDOWS and winjob.terminate(ident.pid, ident.create_time):  # a runner's root
                killed += 1
                continue
            if self.is_alive(ident):
                with contextlib.suppress(psutil.Error):
                    psutil.Process(ident.pid).kill()
                    killed += 1
        if group is not None and not WINDOWS:
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGKILL)
        return killed

    # --- trees and sampling -----------------------------------------------------------------
    def _walk(self, roots: list[Identity]) -> dict[Identity, list[tuple[Identity, ProcInfo]]]:
        """Each live root with its descendants (root first), as (identity, info) pairs; a root
        that is gone, a zombie or a reused pid is absent."""
        children = _proc_children if PROC_CHILDREN else _children_map().__getitem__
        result = {}
        for root in roots:
            info = proc_info(root.pid)
            if info is None or not info.matches(root) or info.zombie:
                continue
            tree = [(root, info)]
            stack = list(children(root.pid))
            while stack:
                pid = stack.pop()
                child = proc_info(pid)
                if child is not None:
                    tree.append((Identity(pid, child.create_time), child))
                    stack.extend(children(pid))
            result[root] = tree
        return result

    def descendants(self, roots: list[Identity]) -> dict[Identity, list[Identity]]:
        """Each root's descendants (children, grandchildren, ...); [] for a root that is gone."""
        trees = self._walk(roots)
        return {root: [ident for ident, _ in trees.get(root, [])[1:]] for root in roots}

    def sample(self, roots: list[Identity], now: float | None = None) -> dict[Identity, Sample]:
        """CPU % (since the previous sample of the same process, else since it started) and
        RSS summed over each root's tree. Roots that are gone are absent from the result."""
        now = time.time() if now is None else now
        result: dict[Identity, Sample] = {}
        seen: dict[Identity, tuple[float, float]] = {}
        for root, tree in self._walk(roots).items():
            cpu = 0.0
            for ident, info in tree:
                prev_total, prev_at = self._cpu_prev.get(ident, (0.0, ident.create_time))
                cpu += max(info.cpu_seconds - prev_total, 0.0) / max(now - prev_at, 1e-6) * 100
                seen[ident] = (info.cpu_seconds, now)
            rss = sum(info.rss_bytes for _, info in tree)
            result[root] = Sample(round(cpu, 1), rss, tree[0][1].stopped)
        self._cpu_prev = seen  # processes that are gone are forgotten
        return result


@dataclass(frozen=True)
class ProcInfo:
    """What the supervisor needs to know about one process."""

    ppid: int
    create_time: float
    cpu_seconds: float
    rss_bytes: int
    stopped: bool  # SIGSTOP or traced
    zombie: bool

    def matches(self, ident: Identity) -> bool:
        return abs(self.create_time - ident.create_time) <= CREATE_TIME_TOLERANCE


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_BOOT_TIME = psutil.boot_time()
_PROC_STAT = not WINDOWS and os.path.exists(f"/proc/{os.getpid()}/stat")


def proc_info(pid: int) -> ProcInfo | None:
    """One process's facts: on Linux from one read of /proc/<pid>/stat (create time computed
    exactly as psutil does, so identities agree); elsewhere through psutil."""
    if _PROC_STAT:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
        except OSError:
            return None
        # fields after "(comm)", which may itself contain spaces and parentheses
        fields = data[data.rfind(b")") + 2 :].split()
        state = fields[0]
        return ProcInfo(
            ppid=int(fields[1]),
            create_time=int(fields[19]) / _CLOCK_TICKS + _BOOT_TIME,
            cpu_seconds=(int(fields[11]) + int(fields[12])) / _CLOCK_TICKS,
            rss_bytes=int(fields[21]) * _PAGE_SIZE,
            stopped=state in (b"T", b"t"),
            zombie=state == b"Z",
        )
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            times, status = proc.cpu_times(), proc.status()
            return ProcInfo(
                ppid=proc.ppid(),
                create_time=proc.create_time(),
                cpu_seconds=times.user + times.system,
                rss_bytes=proc.memory_info().rss,
                stopped=status in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP),
                zombie=status == psutil.STATUS_ZOMBIE,
            )
    except psutil.Error:
        return None


def _children_map() -> defaultdict[int, list[int]]:
    """pid -> child pids, from one pass over the whole process table (any platform)."""
    children: defaultdict[int, list[int]] = defaultdict(list)
    for proc in psutil.process_iter(["ppid"]):
        if proc.info["ppid"] is not None:
            children[proc.info["ppid"]].append(proc.pid)
    return children


def raise_fd_limit(wanted: int = 65536) -> None:
    """Raise the soft open-files limit toward the hard one: each runner holds a pidfd, so a
    default soft limit of 1024 would cap the supervisor near a thousand runners."""
    try:
        import resource
    except ImportError:  # Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
