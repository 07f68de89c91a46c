"""Every OS call the supervisor makes about processes, behind one object.

A runner's root process is a tiny ``/bin/sh`` trampoline that runs the command as its child,
waits, and writes the exit status to a file before exiting with it. It costs about one
millisecond and 1 MB, and it is how an exit status is still known when the runner ended while
the supervisor was down (the supervisor then reads the file instead of ``waitpid``). The
trampoline leads its own session and process group, so a polite signal to the group reaches
the command and its children while the trampoline (which traps the signal) lives on to record
the status. On Windows the root is a small wrapper holding a Job Object instead, with the same
guarantees (:mod:`supervisor.runners.winjob`).

Identity and a process's facts are :mod:`supervisor.runners.procinfo`'s; whether a runner's
process group is provably its own, :mod:`supervisor.runners.groups`'.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import psutil

from supervisor.agents import commands
from supervisor.core.ownprocess import user_umask
from supervisor.runners import winjob
from supervisor.runners.groups import GroupVerdict, Lineage, group_verdict
from supervisor.runners.procinfo import (
    CREATE_TIME_TOLERANCE,
    PROC_CHILDREN,
    PROC_STAT,
    WINDOWS,
    Identity,
    ProcInfo,
    children_map,
    proc_children,
    proc_info,
    process_table,
)

log = logging.getLogger("stratavore.process")

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
# From this many roots on, trees are walked from one scan of the whole process table
WHOLE_TABLE_AT = 16


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
            with open(spool, "ab") as spool_file:
                popen = winjob.RunnerPopen(
                    wrapped,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=spool_file,
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

    def poll(self, ident: Identity, pidfd: int | None = None) -> tuple[bool, int | None]:
        """(ended, exit status): the status when this process is our child and we reaped it;
        for a process we did not parent (adopted), only whether it ended: gone, a zombie its
        new parent has not reaped yet, or its pid now another program's. With ``pidfd`` (its
        exit watch) the wait is for that exact process: by pid, a process that ended unseen
        would have its pid's next holder waited for, even reaped if that is our child too."""
        if pidfd is not None:
            return self._poll_pidfd(ident, pidfd)
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

    def _poll_pidfd(self, ident: Identity, pidfd: int) -> tuple[bool, int | None]:
        try:
            result = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
        except ChildProcessError:  # not our child, or reaped already
            return not self.is_alive(ident), None
        if result is None:
            return False, None
        if result.si_code == os.CLD_EXITED:
            return True, result.si_status
        return True, 128 + result.si_status  # killed (or dumped core): shell convention

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
    def signal_polite(self, lineage: Lineage, group: bool, pidfd: int | None = None) -> None:
        """SIGTERM to the runner's process group while it is provably the runner's (or to just
        its root); on Windows, the polite stop through the runner's wrapper (CTRL_BREAK to the
        root's group where there is none). ``pidfd``: one the caller holds for the root (see
        :meth:`_signal_group_by_pidfd`)."""
        if sys.platform == "win32":  # WINDOWS, spelled so that the type checker knows
            root = lineage.root
            if self.is_alive(root) and not winjob.polite_stop(root.pid, root.create_time):
                with contextlib.suppress(OSError):  # no wrapper, or it ended meanwhile
                    os.kill(root.pid, signal.CTRL_BREAK_EVENT)
        elif group:
            self._signal_group(lineage, signal.SIGTERM, pidfd)
        else:
            self.signal_one(lineage.root, signal.SIGTERM)

    def kill(
        self, idents: list[Identity], group: Lineage | None = None, pidfd: int | None = None
    ) -> int:
        """SIGKILL the runner's process group while it is provably the runner's (``idents``,
        recorded in its tree, count as proof), then each process of ``idents`` still matching
        its identity; how many of those were alive. The group goes first: killing its leader
        first could free the group's id for a stranger before the group signal. On Windows a
        runner's root (its wrapper) ends its Job Object: the whole tree, status recorded."""
        alive = [ident for ident in idents if self.is_alive(ident)]
        if group is not None and not WINDOWS:
            seen = group.seen.union(idents)
            self._signal_group(Lineage(group.root, seen, group.env_mark), signal.SIGKILL, pidfd)
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

    def _signal_group(self, lineage: Lineage, sig: int, pidfd: int | None = None) -> None:
        if self._signal_group_by_pidfd(lineage.root, sig, pidfd):
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

    def _signal_group_by_pidfd(self, root: Identity, sig: int, pidfd: int | None = None) -> bool:
        """Signal the group of the root itself through a pidfd, where the kernel can (Linux
        6.9+, ``PIDFD_SIGNAL_PROCESS_GROUP``); whether it was sent. The pidfd is opened, then
        the root's identity checked, so it names that exact process: the signal reaches its
        group even if, an instant later, the pid were someone else's. A ``pidfd`` the caller
        holds (a copy of the runner's exit watch, opened and checked the same way when the
        root was first watched) saves the open and the identity read; once the root has been
        reaped it signals nothing (ESRCH), and the lineage decides as without pidfds."""
        if pidfd is not None:
            try:
                signal.pidfd_send_signal(pidfd, sig, None, PIDFD_SIGNAL_PROCESS_GROUP)
                return True
            except OSError:
                return False
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
        """Whether the runner's process group may be signalled whole (see
        :func:`supervisor.runners.groups.group_verdict`)."""
        return group_verdict(lineage, lambda ident: self._marked(ident, lineage))

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

    # --- trees and sampling -----------------------------------------------------------------
    def _walk(self, roots: list[Identity]) -> dict[Identity, list[tuple[Identity, ProcInfo]]]:
        """Each live root with its descendants (root first), as (identity, info) pairs; a root
        that is gone, a zombie or a reused pid is absent."""
        if PROC_STAT and len(roots) >= WHOLE_TABLE_AT:  # Windows keeps psutil's ppid map
            return self._walk_table(roots)
        children = proc_children if PROC_CHILDREN else children_map().__getitem__
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

    @staticmethod
    def _walk_table(roots: list[Identity]) -> dict[Identity, list[tuple[Identity, ProcInfo]]]:
        """``_walk`` from one scan of the whole process table: many roots' trees (a stop of
        all, a sample of all) cover most of it, and each process is read once instead of
        its facts and its children apart."""
        table = process_table()
        children: defaultdict[int, list[int]] = defaultdict(list)
        for pid, info in table.items():
            children[info.ppid].append(pid)
        result = {}
        for root in roots:
            held = table.get(root.pid)
            if held is None or not held.matches(root) or held.zombie:
                continue
            tree = [(root, held)]
            stack = list(children.get(root.pid, ()))
            while stack:
                pid = stack.pop()
                tree.append((Identity(pid, table[pid].create_time), table[pid]))
                stack.extend(children.get(pid, ()))
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
