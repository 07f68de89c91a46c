"""Every OS call the supervisor makes about processes, behind one object.

A runner's root process is a tiny ``/bin/sh`` trampoline that runs the command as its child,
waits, and writes the exit status to a file before exiting with it. It costs about one
millisecond and 1 MB, and it is how an exit status is still known when the runner ended while
the supervisor was down (the supervisor then reads the file instead of ``waitpid``). The
trampoline leads its own session and process group, so a polite signal to the group reaches
the command and its children while the trampoline (which traps the signal) lives on to record
the status. On Windows the root is a small wrapper holding a Job Object instead, with the same
guarantees (:mod:`supervisor.runners.winjob`).

Identity is (pid, create time): a pid alone is never trusted, because pids are reused. Create
times count clock ticks (10 ms on Linux), so a process is told apart from an earlier holder of
its pid that started at least a tick before it.

Signals go only to what is provably a runner's own. A process is signalled by identity (its
create time checked, then psutil refuses if the pid was reused in between). A runner's process
group, whose id is its root's pid, is signalled whole only while it is provably the runner's
(see :meth:`ProcessOps.group_verdict`): the root may have ended long ago, its pid given to a
stranger who leads a group of the same id.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import psutil

from supervisor.agents import commands
from supervisor.core.ownprocess import user_umask
from supervisor.runners import winjob

log = logging.getLogger("stratavore.process")
WINDOWS = os.name == "nt"

# $1 is the exit-status file, $2 the command's umask, $3 the working directory, the rest the
# command. Trapping the signals (rather than ignoring them) keeps the trampoline alive through a
# group signal while the command, which gets the default dispositions back on exec, receives
# it. The status is 128+N when the command died of signal N. The command runs with the user's
# umask (its files are the user's), the status file is written private (umask 077).
TRAMPOLINE = (
    'f=$1; cd -- "$3" || { umask 077; printf "126\\n" > "$f"; exit 126; }; u=$2; shift 3; '
    'trap : HUP INT TERM; umask "$u"; "$@"; rc=$?; umask 077; printf "%d\\n" "$rc" > "$f"; '
    'exit "$rc"'
)
# Windows has no SIGKILL; there psutil answers SIGTERM with TerminateProcess, which is a kill
KILL = signal.SIGTERM if WINDOWS else signal.SIGKILL
PIDFD_SIGNAL_PROCESS_GROUP = 4  # linux/pidfd.h (Linux 6.9): signal the pidfd's process group
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
class Lineage:
    """What proves that a process is one of a runner's: its root (whose pid is the runner's
    process-group id), the descendants seen in the root's tree (at a stop), and a mark every
    process started from the runner inherits in its environment, (variable, SHA-256 hex of its
    value): the runner's own secret token, which no stranger knows."""

    root: Identity
    seen: frozenset[Identity] = frozenset()
    env_mark: tuple[str, str] | None = None


@dataclass(frozen=True)
class GroupVerdict:
    """Whether a runner's process group may be signalled whole; if not, which of its members
    are proven the runner's (signalled one by one), and why the group is refused."""

    whole: bool
    members: tuple[Identity, ...] = ()
    refusal: str | None = None


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
        self.runner_umask = user_umask()

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
            args = [str(exit_file), f"{self.runner_umask:03o}", cwd, *argv]
            try:
                pid = os.posix_spawn(
                    "/bin/sh",
                    ["/bin/sh", "-c", TRAMPOLINE, "stratavore-runner", *args],
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
    def signal_polite(self, lineage: Lineage, group: bool) -> None:
        """SIGTERM to the runner's process group while it is provably the runner's (or to just
        its root); on Windows, the polite stop through the runner's wrapper (CTRL_BREAK to the
        root's group where there is none)."""
        if WINDOWS:
            root = lineage.root
            if self.is_alive(root) and not winjob.polite_stop(root.pid, root.create_time):
                with contextlib.suppress(OSError):  # no wrapper, or it ended meanwhile
                    os.kill(root.pid, signal.CTRL_BREAK_EVENT)
        elif group:
            self._signal_group(lineage, signal.SIGTERM)
        else:
            self.signal_one(lineage.root, signal.SIGTERM)

    def kill(self, idents: list[Identity], group: Lineage | None = None) -> int:
        """SIGKILL the runner's process group while it is provably the runner's (``idents``,
        recorded in its tree, count as proof), then each process of ``idents`` still matching
        its identity; how many of those were alive. The group goes first: killing its leader
        first could free the group's id for a stranger before the group signal. On Windows a
        runner's root (its wrapper) ends its Job Object: the whole tree, status recorded."""
        alive = [ident for ident in idents if self.is_alive(ident)]
        if group is not None and not WINDOWS:
            seen = group.seen.union(idents)
            self._signal_group(Lineage(group.root, seen, group.env_mark), signal.SIGKILL)
        for ident in alive:
            if not (WINDOWS and winjob.terminate(ident.pid, ident.create_time)):
                self.signal_one(ident, KILL)
        return len(alive)

    def signal_one(self, ident: Identity, sig: int) -> bool:
        """Send ``sig`` to the process with this exact identity; whether it was there."""
        try:
            proc = psutil.Process(ident.pid)
            if abs(proc.create_time() - ident.create_time) > CREATE_TIME_TOLERANCE:
                return False
            proc.send_signal(sig)  # psutil refuses if the pid was reused since Process()
        except psutil.Error:
            return False
        return True

    def _signal_group(self, lineage: Lineage, sig: int) -> None:
        if self._signal_group_by_pidfd(lineage.root, sig):
            return
        verdict = self.group_verdict(lineage)
        if verdict.whole:
            with contextlib.suppress(OSError):  # ended meanwhile
                os.killpg(lineage.root.pid, sig)
            return
        for ident in verdict.members:
            self.signal_one(ident, sig)
        if verdict.refusal:
            log.warning("not signalling process group %d: %s", lineage.root.pid, verdict.refusal)

    def _signal_group_by_pidfd(self, root: Identity, sig: int) -> bool:
        """Signal the group of the root itself through a pidfd, where the kernel can (Linux
        6.9+, ``PIDFD_SIGNAL_PROCESS_GROUP``); whether it was sent. The pidfd is opened, then
        the root's identity checked, so it names that exact process: the signal reaches its
        group even if, an instant later, the pid were someone else's."""
        if not hasattr(os, "pidfd_open"):
            return False
        try:
            fd = os.pidfd_open(root.pid)
        except OSError:  # no such process (or no pidfds)
            return False
        try:
            holder = proc_info(root.pid)
            if holder is None or not holder.matches(root):
                return False
            signal.pidfd_send_signal(fd, sig, None, PIDFD_SIGNAL_PROCESS_GROUP)
            return True
        except OSError:  # EINVAL: a kernel without the flag; ESRCH: the root was reaped
            return False
        finally:
            os.close(fd)

    def group_verdict(self, lineage: Lineage) -> GroupVerdict:
        """Whether the process group whose id is the runner's root pid is provably the
        runner's, so that one ``killpg`` may reach all of it.

        - Its leader lives (or is a zombie not yet reaped) with the root's exact identity: the
          group is the root's. A group's id is its leader's pid, and a session leader (the
          trampoline) cannot leave its group.
        - Another process has that pid: the root has ended and its pid was reused, which the
          kernel allows only once no process is left in the root's group (a pid is not handed
          out while it names a live group or session). Nothing of the runner's is in that
          group now: refused.
        - No process has that pid: the group, if any process is left in it, may still be the
          runner's (the root ended, its command's children live on), or a stranger's whose
          leader has ended. Every live member must then be proven the runner's: recorded in
          its tree (``lineage.seen``), carrying the runner's token in its environment, or a
          child of a member proven so. If all are, the group is signalled whole (which also
          reaches a child forked meanwhile); if not, only the proven members are, one by one,
          and the others are named in the refusal.

        What remains is the instant between this check and ``killpg``: for the group to change
        hands in it, all its members would have to end and the kernel hand out that exact pid
        again, which it does only after cycling through every other free pid (or when root
        chooses it, as the test of this does). While the leader lives, Linux 6.9+ closes even
        that instant: the signal goes through a pidfd of the leader (``_signal_group_by_pidfd``)."""
        root = lineage.root
        holder = proc_info(root.pid)
        if holder is not None:
            if holder.matches(root):
                return GroupVerdict(True)
            return GroupVerdict(
                False, refusal=f"pid {root.pid} now belongs to another program (pid reused)"
            )
        members = [(ident, info) for ident, info in self.group_members(root.pid) if not info.zombie]
        proven = {
            ident.pid
            for ident, _ in members
            if ident in lineage.seen or self._marked(ident, lineage)
        }
        grown = True
        while grown:  # children of proven members, and theirs
            grown = False
            for ident, info in members:
                if ident.pid not in proven and info.ppid in proven:
                    proven.add(ident.pid)
                    grown = True
        strangers = [ident.pid for ident, _ in members if ident.pid not in proven]
        if not strangers:
            return GroupVerdict(bool(members))
        names = ", ".join(map(str, strangers))
        return GroupVerdict(
            False,
            tuple(ident for ident, _ in members if ident.pid in proven),
            f"process{'es' if len(strangers) > 1 else ''} {names} in it cannot be proven to be "
            "the runner's (not in its recorded tree, without its token, no proven parent)",
        )

    def _marked(self, ident: Identity, lineage: Lineage) -> bool:
        """``ident`` carries the lineage's environment mark (unreadable: not proven)."""
        if lineage.env_mark is None:
            return False
        name, digest = lineage.env_mark
        try:
            value = self.env_value(ident, name)
        except (OSError, psutil.Error):
            return False
        return value is not None and hashlib.sha256(value.encode()).hexdigest() == digest

    def env_value(self, ident: Identity, name: str) -> str | None:
        """Environment variable ``name`` of the process with this identity, as it was started
        (None when it has none, or the pid changed hands while it was read)."""
        value = psutil.Process(ident.pid).environ().get(name)
        return value if self.is_alive(ident) else None

    def group_members(self, pgid: int) -> list[tuple[Identity, ProcInfo]]:
        """Every process in process group ``pgid`` (zombies too): nothing when ``killpg`` with
        signal 0 finds no one, else from one pass over the process table."""
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except OSError:  # someone else's process is in it: look
            pass
        pids = (
            [int(name) for name in os.listdir("/proc") if name.isdigit()]
            if _PROC_STAT
            else psutil.pids()
        )
        found = []
        for pid in pids:
            info = proc_info(pid)
            if info is not None and info.pgid == pgid:
                found.append((Identity(pid, info.create_time), info))
        return found

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
    pgid: int
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
            pgid=int(fields[2]),
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
                pgid=os.getpgid(pid) if hasattr(os, "getpgid") else pid,
                create_time=proc.create_time(),
                cpu_seconds=times.user + times.system,
                rss_bytes=proc.memory_info().rss,
                stopped=status in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP),
                zombie=status == psutil.STATUS_ZOMBIE,
            )
    except (psutil.Error, OSError):  # OSError: getpgid of a process that ended
        return None


def _children_map() -> defaultdict[int, list[int]]:
    """pid -> child pids, from one pass over the whole process table (any platform)."""
    children: defaultdict[int, list[int]] = defaultdict(list)
    for proc in psutil.process_iter(["ppid"]):
        if proc.info["ppid"] is not None:
            children[proc.info["ppid"]].append(proc.pid)
    return children
