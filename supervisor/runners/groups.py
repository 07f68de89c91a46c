"""A runner's process group: who is in it, and whether it is provably the runner's.

Signals go only to what is provably a runner's own. A runner's process group, whose id is its
root's pid, is signalled whole only while it is provably the runner's (:func:`group_verdict`):
the root may have ended long ago, its pid given to a stranger who leads a group of the same
id. :class:`~supervisor.runners.process.ProcessOps` sends the signals; this module judges.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from supervisor.runners.procinfo import Identity, ProcInfo, all_pids, proc_info


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


def group_members(pgid: int) -> list[tuple[Identity, ProcInfo]]:
    """Every process in process group ``pgid`` (zombies too): nothing when ``killpg`` with
    signal 0 finds no one, else from one pass over the process table."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except OSError:  # someone else's process is in it: look
        pass
    found = []
    for pid in all_pids():
        info = proc_info(pid)
        if info is not None and info.pgid == pgid:
            found.append((Identity(pid, info.create_time), info))
    return found


def group_verdict(lineage: Lineage, marked: Callable[[Identity], bool]) -> GroupVerdict:
    """Whether the process group whose id is the runner's root pid is provably the
    runner's, so that one ``killpg`` may reach all of it. ``marked`` says whether a process
    carries the lineage's environment mark.

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
    that instant: the signal goes through a pidfd of the leader
    (``ProcessOps._signal_group_by_pidfd``)."""
    root = lineage.root
    holder = proc_info(root.pid)
    if holder is not None:
        if holder.matches(root):
            return GroupVerdict(True)
        return GroupVerdict(
            False, refusal=f"pid {root.pid} now belongs to another program (pid reused)"
        )
    members = [(ident, info) for ident, info in group_members(root.pid) if not info.zombie]
    proven = {ident.pid for ident, _ in members if ident in lineage.seen or marked(ident)}
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
