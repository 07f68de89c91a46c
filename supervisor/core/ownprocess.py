"""The supervisor's own process: its umask (private files by default, the user's own for
what it runs in the user's folders) and its open-files limit (a pidfd per runner)."""

from __future__ import annotations

import contextlib
import os
import sys

_user_umask: int | None = None  # the umask this process had before restrict_umask()


def restrict_umask() -> None:
    """Make files this process creates private by default (umask 077), as a second guard
    behind the explicit modes of the data dir's files (SQLite's, a library's, a temp file).

    Only for a process that is the supervisor alone (``stratavore daemon``): the umask is
    process-wide and inherited, and an app that embeds the supervisor (the tray) starts
    terminals and other programs for the user. Runners get the previous umask back through the
    trampoline, so the files agents make in the user's projects have the user's usual modes."""
    global _user_umask
    if _user_umask is None:
        _user_umask = os.umask(0o077)


def user_umask() -> int:
    """The umask for what the supervisor runs in the user's own folders (runners, git): the
    one this process had before :func:`restrict_umask`, else its current one."""
    return _user_umask if _user_umask is not None else current_umask()


def current_umask() -> int:
    """This process's umask, read without changing it where the OS tells (Linux 4.7+)."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith("Umask:"))
        return int(line.split()[1], 8)
    mask = os.umask(0o077)  # elsewhere only by setting it: put it straight back
    os.umask(mask)
    return mask


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


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere
    nothing): a start's transient work (reading the database through, the OpenAPI document,
    the worker threads' arenas) leaves about 3 MB that an idle supervisor would keep."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # not in musl
    if trim is not None:
        trim(0)
