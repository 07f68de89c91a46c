"""What the OS says about one process: its identity, its facts, its children.

Identity is (pid, create time): a pid alone is never trusted, because pids are reused. Create
times count clock ticks (10 ms on Linux), so a process is told apart from an earlier holder of
its pid that started at least a tick before it.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass

import psutil

WINDOWS = os.name == "nt"
CREATE_TIME_TOLERANCE = 0.01  # psutil's create time is stable to this within one boot
# Linux lists each task's children in /proc (CONFIG_PROC_CHILDREN): walking a runner's tree
# then costs a few file reads instead of a scan of the whole process table.
# (Not on Windows, where Wine maps /proc to Linux's: there it lists Linux pids, not ours.)
PROC_CHILDREN = not WINDOWS and os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_BOOT_TIME = psutil.boot_time()
PROC_STAT = not WINDOWS and os.path.exists(f"/proc/{os.getpid()}/stat")


@dataclass(frozen=True)
class Identity:
    pid: int
    create_time: float


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


def proc_info(pid: int) -> ProcInfo | None:
    """One process's facts: on Linux from one read of /proc/<pid>/stat (create time computed
    exactly as psutil does, so identities agree); elsewhere through psutil."""
    if PROC_STAT:
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


def all_pids() -> list[int]:
    """Every pid there is: /proc's listing where there is one, else psutil's."""
    if PROC_STAT:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    return psutil.pids()


def proc_children(pid: int) -> list[int]:
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


def children_map() -> defaultdict[int, list[int]]:
    """pid -> child pids, from one pass over the whole process table (any platform)."""
    children: defaultdict[int, list[int]] = defaultdict(list)
    for proc in psutil.process_iter(["ppid"]):
        if proc.info["ppid"] is not None:
            children[proc.info["ppid"]].append(proc.pid)
    return children


def process_table() -> dict[int, ProcInfo]:
    """pid -> facts of every process there is, from one pass over the process table."""
    table = {}
    for pid in all_pids():
        info = proc_info(pid)
        if info is not None:
            table[pid] = info
    return table
