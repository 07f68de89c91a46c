"""Stopping runners. Queued, backing-off and paused runners stop at once; a process gets the
polite signal (SIGTERM to its group, CTRL_BREAK on Windows), and at the deadline
(``stop_timeout``) its remembered tree, its current tree and its group are killed. A stop the
DB refuses to record is carried out all the same and recorded once it can be."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from supervisor.core.errors import ApiError, ErrorCode
from supervisor.core.settings import LiveSettings
from supervisor.core.states import FINISHED_STATES, RunnerState
from supervisor.runners.exits import Exits
from supervisor.runners.pausing import Pauses
from supervisor.runners.table import Live, RunnerTable
from supervisor.runners.tasks import Tasks
from supervisor.runners.trees import ProcessTrees
from supervisor.storage.models import Runner
from supervisor.storage.writes import StorageError, Writes

log = logging.getLogger("stratavore.runners")
S = RunnerState


@dataclass(eq=False, repr=False)
class Stopper:
    """Stops runners, one, several or all, each by the stop policy."""

    table: RunnerTable
    trees: ProcessTrees
    exits: Exits
    pauses: Pauses
    settings: LiveSettings
    writes: Writes
    tasks: Tasks
    clock: Callable[[], float]

    def stop(self, runner_id: int, force: bool = False, now: float | None = None) -> Runner:
        """Stop a runner: queued/backoff end at once; a process gets the polite signal, then
        its whole tree is killed at the deadline (at once with ``force``).

        A stop the DB refuses to record is carried out all the same (the signal is sent) and
        recorded once it can be; :class:`StorageError` says so."""
        now = self.clock() if now is None else now
        runner = self.exits.current(runner_id)
        state = RunnerState(runner.state)
        if state in FINISHED_STATES:
            raise ApiError(
                ErrorCode.CONFLICT, f"Runner {runner_id} is not running (it is {state.value})."
            )
        live = self.table.live[runner_id]
        live.restart_after_stop = False
        if state in (S.QUEUED, S.BACKOFF, S.PAUSED):
            # QUEUED/BACKOFF/PAUSED -> STOPPED (a backoff's slot goes to the queue)
            self.table.transition(runner, S.STOPPED, "stopped by user", now, ended_at=now)
            if state is S.PAUSED:
                self.pauses.unplan_resume(runner_id)
            return runner
        if state is S.STOPPING or live.stop_unrecorded is not None:
            if force and live.stop_task is not None:
                live.stop_task.cancel()
                live.stop_task = self.tasks.background(self._stop_tree(runner_id, 0.0))
            if live.stop_unrecorded is not None:
                live.stop_unrecorded = (live.stop_unrecorded[0] or force, live.stop_unrecorded[1])
                self._stop_recorded_or_say_so(live)
            return runner
        try:
            # STARTING/RUNNING -> STOPPING
            self.table.transition(
                runner,
                S.STOPPING,
                "stop requested by user",
                now,
                stop_requested_at=now,
                stop_force=force,
            )
        except StorageError:
            live.stop_unrecorded = (force, now)
            self.begin_stop(runner_id, force)
            self._stop_recorded_or_say_so(live)
        self.begin_stop(runner_id, force)
        return runner

    def _stop_recorded_or_say_so(self, live: Live) -> None:
        """A stop signal was sent: record the stop now, else say that it was sent and will
        be recorded once the DB can be written (:class:`StorageError`)."""
        try:
            self.exits.catch_up(live)
        except StorageError as exc:
            self.table.retry_later()
            raise self.writes.error(
                exc.problem,
                f"Runner {live.row.id} was sent the stop signal, but "
                f"{self.writes.clause(exc.problem)}: its stop is recorded once it can be "
                "written.",
            ) from None

    def stop_many(
        self, runner_ids: list[int], force: bool = False, now: float | None = None
    ) -> list[Runner]:
        """Stop several runners, each in its own transaction; those already finished are left
        as they are. Queued ones go first, so that none of them is started on the way."""
        now = self.clock() if now is None else now
        rows = [self.table.live[i].row for i in runner_ids if i in self.table.live]
        rows.sort(key=lambda row: row.state != S.QUEUED)
        refused: list[tuple[int, StorageError]] = []
        for row in rows:  # each its own transaction: one refused stops none of the others
            try:
                self.stop(row.id, force, now)
            except StorageError as exc:
                refused.append((row.id, exc))
            except ApiError:  # it ended meanwhile (its end was kept, and written just now)
                continue
        if len(refused) == 1:
            raise refused[0][1]
        if refused:
            problem = refused[0][1].problem
            raise self.writes.error(
                problem,
                f"{len(refused)} of {len(rows)} stops could not be recorded "
                f"({self.writes.clause(problem)}): runners {', '.join(str(i) for i, _ in refused)} "
                "that were running were sent the stop signal, and their stops are recorded once "
                "it can be written.",
            )
        return [self.table.row(i) for i in runner_ids]

    async def stop_everything(self) -> None:
        """Stop every active runner and wait until each has ended (or been killed at the
        stop timeout)."""
        live = self.table.live
        with contextlib.suppress(StorageError):  # the signals are sent all the same
            self.stop_many([rid for rid, one in live.items() if one.state is not S.STOPPING])
        tasks = [one.stop_task for one in live.values() if one.stop_task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.current.stop_timeout + 5.0)

    def begin_stop(self, runner_id: int, force: bool) -> None:
        live = self.table.live[runner_id]
        if live.timer:
            live.timer.cancel()
        if live.stop_task is not None and not live.stop_task.done():
            return  # under way: the signal was sent when the stop could not be recorded
        assert live.identity is not None
        log.info("stopping: runner %s pid %s", runner_id, live.identity.pid)
        timeout = 0.0 if force else self.settings.current.stop_timeout
        live.stop_task = self.tasks.background(self._stop_tree(runner_id, timeout))

    async def _stop_tree(self, runner_id: int, timeout: float) -> None:
        """Remember the tree, send the polite signal, kill what is left at the deadline.

        The tree is taken before the signal: a parent that dies of it at once would otherwise
        orphan children (even ones in their own session) before they could be seen."""
        live = self.table.live.get(runner_id)
        if live is None or live.identity is None:
            return
        root = live.identity
        live.stop_tree = await self.trees.descendants(root)
        self.trees.signal_polite(live)
        await asyncio.sleep(timeout)
        live = self.table.live.get(runner_id)
        if live is None or (live.state is not S.STOPPING and live.stop_unrecorded is None):
            return
        tree = live.stop_tree + await self.trees.descendants(root)
        live.killed_at_deadline = True
        killed = await self.tasks.loop.run_in_executor(
            None, self.trees.kill_all, [root, *tree], live
        )
        log.info("stopping: runner %s killed %d processes at the deadline", runner_id, killed)
        self.exits.reap()
