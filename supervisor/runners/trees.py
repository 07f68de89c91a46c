"""A runner's process tree, as its stop and its end need it: descendants from one
process-table scan that concurrent requests share, the lineage that proves a process is the
runner's before its group is signalled, and killing what is left."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from supervisor.runners.groups import Lineage
from supervisor.runners.process import ProcessOps
from supervisor.runners.procinfo import Identity
from supervisor.runners.table import Live
from supervisor.runners.tasks import Tasks
from supervisor.runners.tokens import TOKEN_VARIABLE


@dataclass(eq=False, repr=False)
class ProcessTrees:
    """Runners' trees: taken (one shared scan, in a worker thread), proven and killed."""

    ops: ProcessOps
    tasks: Tasks
    _tree_requests: dict[Identity, asyncio.Future[list[Identity]]] = field(
        default_factory=dict, init=False
    )
    _tree_scan: asyncio.Future[None] | None = field(default=None, init=False)

    async def descendants(self, root: Identity) -> list[Identity]:
        """``root``'s descendants; concurrent requests share one process-table scan."""
        loop = self.tasks.loop
        future = self._tree_requests.get(root)
        if future is None:
            future = self._tree_requests[root] = loop.create_future()
            if self._tree_scan is None:
                self._tree_scan = loop.create_future()
                loop.call_soon(self.tasks.soon, self._scan_trees)
        return await future

    async def _scan_trees(self) -> None:
        requests, self._tree_requests = self._tree_requests, {}
        scan, self._tree_scan = self._tree_scan, None
        try:
            trees = await self.tasks.loop.run_in_executor(
                None, self.ops.descendants, list(requests)
            )
            for root, future in requests.items():
                if not future.done():
                    future.set_result(trees.get(root, []))
        except Exception as exc:  # hand the failure to every waiter, not to the loop
            for future in requests.values():
                if not future.done():
                    future.set_exception(exc)
        finally:
            if scan is not None and not scan.done():
                scan.set_result(None)

    def signal_polite(self, live: Live) -> None:
        """The polite signal to the runner's root, and to its group while that is provably
        the runner's (a supervised runner leads its own group)."""
        self.ops.signal_polite(self.lineage(live), group=live.row.supervised)

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
