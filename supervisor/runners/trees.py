"""A runner's process tree, as its stop and its end need it: the trees of a batch of runners
from one process-table scan, the polite signal to each in the same worker-thread pass, the
lineage that proves a process is the runner's before its group is signalled, and killing what
is left."""

from __future__ import annotations

import os
from dataclasses import dataclass

from supervisor.runners.groups import Lineage
from supervisor.runners.process import ProcessOps
from supervisor.runners.procinfo import Identity
from supervisor.runners.table import Live
from supervisor.runners.tokens import TOKEN_VARIABLE


@dataclass(frozen=True)
class StopTarget:
    """One runner's tree as a worker thread signals it: its root, whether it leads its own
    group (supervised), its token's mark, the tree remembered at its stop, and a pidfd of
    the root the worker owns (None: opened and checked per signal, or not at all)."""

    runner_id: int
    root: Identity
    group: bool
    mark: tuple[str, str]
    seen: tuple[Identity, ...]
    pidfd: int | None


def _close(targets: list[StopTarget]) -> None:
    for t in targets:
        if t.pidfd is not None:
            os.close(t.pidfd)


@dataclass(eq=False, repr=False)
class ProcessTrees:
    """Runners' trees: taken (one scan for a batch, in a worker thread), proven and killed."""

    ops: ProcessOps

    @staticmethod
    def target(live: Live, pidfd: bool = True) -> StopTarget:
        """What a worker thread needs to signal this runner's tree (taken on the loop, where
        ``live`` changes): with ``pidfd``, a copy of its exit watch's pidfd, which the worker
        closes, so the loop closing the watch meanwhile never hands the number to another."""
        assert live.identity is not None
        fd = live.exit_fd
        return StopTarget(
            live.row.id,
            live.identity,
            live.row.supervised,
            (TOKEN_VARIABLE, live.row.token_hash),
            tuple(live.stop_tree),
            os.dup(fd) if pidfd and fd is not None else None,
        )

    def take(self, roots: list[Identity]) -> dict[Identity, list[Identity]]:
        """Each root's descendants, from one process-table scan for a batch (a worker
        thread). A stop takes them before its signals: a parent that dies of one at once would
        otherwise orphan children (even ones in their own session) before they could be
        seen; and the loop keeps them before any end the signals cause is finished there."""
        return self.ops.descendants(roots)

    def polite_all(self, targets: list[StopTarget]) -> None:
        """The polite signal to each target (a worker thread), its tree taken (``seen``)."""
        try:
            for t in targets:
                self.ops.signal_polite(Lineage(t.root, frozenset(t.seen), t.mark), t.group, t.pidfd)
        finally:
            _close(targets)

    def kill_trees(self, targets: list[StopTarget], rescan: bool = True) -> int:
        """SIGKILL what is left of each target's tree and group (a worker thread): its root,
        the tree remembered at the stop and, with ``rescan``, its tree now (one scan for
        all); how many processes were alive."""
        try:
            now = self.ops.descendants([t.root for t in targets]) if rescan else {}
            killed = 0
            for t in targets:
                idents = [t.root, *t.seen, *now.get(t.root, [])] if rescan else list(t.seen)
                group = Lineage(t.root, frozenset(t.seen), t.mark) if t.group else None
                killed += self.ops.kill(list(dict.fromkeys(idents)), group, t.pidfd)
            return killed
        finally:
            _close(targets)

    def kill_all(self, idents: list[Identity], live: Live) -> int:
        group = self.lineage(live) if live.row.supervised and live.identity else None
        return self.ops.kill(list(dict.fromkeys(idents)), group)

    @staticmethod
    def lineage(live: Live) -> Lineage:
        """What proves a process is this runner's before its group is signalled: its root,
        the tree taken at the stop, and its token in the environment (see ProcessOps)."""
        assert live.identity is not None
        mark = (TOKEN_VARIABLE, live.row.token_hash)
        return Lineage(live.identity, frozenset(live.stop_tree), mark)
