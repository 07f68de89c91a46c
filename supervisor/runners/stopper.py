"""Stopping runners. Queued, backing-off and paused runners stop at once; a process gets the
polite signal (SIGTERM to its group, CTRL_BREAK on Windows), and at the deadline
(``stop_timeout``) its remembered tree, its current tree and its group are killed. A stop the
DB refuses to record is carried out all the same and recorded once it can be."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from supervisor.core.errors import ApiError, ErrorCode
from supervisor.core.settings import LiveSettings
from supervisor.core.states import FINISHED_STATES, RunnerState
from supervisor.runners.exits import Exits
from supervisor.runners.pausing import Pauses
from supervisor.runners.table import Live, Move, RunnerTable
from supervisor.runners.tasks import Tasks
from supervisor.runners.trees import ProcessTrees
from supervisor.storage.models import Runner
from supervisor.storage.writes import StorageError, Writes

log = logging.getLogger("stratavore.runners")
S = RunnerState
STOP_REASON = "stop requested by user"
BATCH_WINDOW = 0.01  # seconds a stop waits for others to signal them together


def _stop_fields(force: bool, now: float) -> dict[str, Any]:
    """The fields written with a runner's move to stopping."""
    return {"stop_requested_at": now, "stop_force": force}


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
    # stop timeout -> the runners whose stops began in this turn of the loop, and the task
    # that signals them all at its first step
    _batches: dict[float, tuple[list[int], asyncio.Task[None]]] = field(
        default_factory=dict, init=False
    )
    # stops asked for in this turn of the loop (stop_soon): runner id, force, the answer
    _asked: list[tuple[int, bool, asyncio.Future[Runner]]] = field(default_factory=list, init=False)

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
            if force and live.stop_task is not None:  # the deadline now: killed at once
                self._begin([runner_id], 0.0)
            if live.stop_unrecorded is not None:
                live.stop_unrecorded = (live.stop_unrecorded[0] or force, live.stop_unrecorded[1])
                self._stop_recorded_or_say_so(live)
            return runner
        try:
            # STARTING/RUNNING -> STOPPING
            self.table.transition(runner, S.STOPPING, STOP_REASON, now, **_stop_fields(force, now))
        except StorageError:
            live.stop_unrecorded = (force, now)
            self.begin_stop(runner_id, force)
            self._stop_recorded_or_say_so(live)
        self.begin_stop(runner_id, force)
        return runner

    async def stop_soon(self, runner_id: int, force: bool = False) -> Runner:
        """:meth:`stop`, with the other stops asked for in the same turn of the loop (N stop
        requests at once): the starting and running ones among them move to stopping in one
        transaction (each with its event), or each in its own when the DB refuses that."""
        future: asyncio.Future[Runner] = self.tasks.loop.create_future()
        if not self._asked:
            self.tasks.loop.call_soon(self._stop_asked)
        self._asked.append((runner_id, force, future))
        return await future

    def _stop_asked(self) -> None:
        asked, self._asked = self._asked, []
        try:
            self._answer(asked, self.clock())
        except Exception as exc:  # a bug: each asker gets it rather than waiting for ever
            for _, _, future in asked:
                if not future.done():
                    future.set_exception(exc)

    def _answer(self, asked: list[tuple[int, bool, asyncio.Future[Runner]]], now: float) -> None:
        together: dict[int, bool] = {}  # runner id -> force, each once
        for runner_id, force, _ in asked:
            plain = runner_id in self.table.live and self._plain_stop(runner_id)
            if plain and runner_id not in together:
                together[runner_id] = force
        if together and not self._stop_together(together, now):
            together = {}  # each in its own transaction below
        for runner_id, force, future in asked:
            if future.done():  # its request went away
                continue
            if together.pop(runner_id, None) is not None:
                future.set_result(self.table.row(runner_id))
                continue
            try:  # a second ask of the same runner is answered as a stop under way is
                future.set_result(self.stop(runner_id, force, now))
            except Exception as exc:  # the asker's to handle, as from stop()
                future.set_exception(exc)

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
        """Stop several runners; those already finished are left as they are. Queued ones go
        first, so that none of them is started on the way. The running ones go from starting
        or running to stopping in one transaction (each with its event) and are signalled in
        one pass; when the DB refuses that, each is stopped in its own transaction (one
        refused stops none of the others)."""
        now = self.clock() if now is None else now
        rows = [self.table.live[i].row for i in runner_ids if i in self.table.live]
        rows.sort(key=lambda row: row.state != S.QUEUED)
        together = [row for row in rows if self._plain_stop(row.id)]
        plain = {row.id for row in together}
        one_by_one = [row for row in rows if row.id not in plain]
        refused: list[tuple[int, StorageError]] = []
        for row in one_by_one:
            if row.state == S.QUEUED:
                self._stop_one(row, force, now, refused)
        if together and not self._stop_together({row.id: force for row in together}, now):
            one_by_one += together  # each in its own transaction below
        for row in one_by_one:
            if row.state != S.QUEUED:
                self._stop_one(row, force, now, refused)
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

    def _stop_together(self, forces: dict[int, bool], now: float) -> bool:
        """Move these runners (plain stops: runner id -> force) to stopping in one
        transaction, each with its event, and signal them; False, having changed nothing,
        when the DB refuses it."""
        rows = [self.table.live[i].row for i in forces]
        for row in rows:
            self.table.live[row.id].restart_after_stop = False
        try:
            # STARTING/RUNNING -> STOPPING, all in one transaction
            self.table.transition_many(
                [
                    Move(row, S.STOPPING, STOP_REASON, now, None, _stop_fields(forces[row.id], now))
                    for row in rows
                ]
            )
        except StorageError:
            return False
        for force in (False, True):
            if ids := [i for i, f in forces.items() if f is force]:
                self._begin_stops(ids, force)
        return True

    def _plain_stop(self, runner_id: int) -> bool:
        """Starting or running, with nothing kept unwritten: a stop that is one transition."""
        live = self.table.live[runner_id]
        return (
            live.state in (S.STARTING, S.RUNNING)
            and live.stop_unrecorded is None
            and live.end_unrecorded is None
        )

    def _stop_one(
        self, row: Runner, force: bool, now: float, refused: list[tuple[int, StorageError]]
    ) -> None:
        try:
            self.stop(row.id, force, now)
        except StorageError as exc:
            refused.append((row.id, exc))
        except ApiError:  # it ended meanwhile (its end was kept, and written just now)
            pass

    async def stop_everything(self) -> None:
        """Stop every active runner and wait until each has ended (or been killed at the
        stop timeout)."""
        live = self.table.live
        with contextlib.suppress(StorageError):  # the signals are sent all the same
            self.stop_many([rid for rid, one in live.items() if one.state is not S.STOPPING])
        # A batch's task lives until its deadline even when all its runners ended before:
        # wait for each runner to leave the table (or its stop to have run its course).
        loop = self.tasks.loop
        deadline = loop.time() + self.settings.current.stop_timeout + 5.0
        while loop.time() < deadline and any(
            one.stop_task is not None and not one.stop_task.done() for one in live.values()
        ):
            await asyncio.sleep(0.05)

    def begin_stop(self, runner_id: int, force: bool) -> None:
        """Signal a runner that is stopping (its stop is recorded, or kept to be)."""
        self._begin_stops([runner_id], force)

    def _begin_stops(self, runner_ids: list[int], force: bool) -> None:
        """Signal these stopping runners, together with the others whose stops begin in the
        same turn of the loop (N stop requests at once): one worker-thread pass for all."""
        batch = []
        for runner_id in runner_ids:
            live = self.table.live[runner_id]
            if live.timer:
                live.timer.cancel()
            if live.stop_task is not None and not live.stop_task.done():
                continue  # under way: the signal was sent when the stop could not be recorded
            assert live.identity is not None
            batch.append(runner_id)
        if batch:
            self._begin(batch, 0.0 if force else self.settings.current.stop_timeout)

    def _begin(self, runner_ids: list[int], timeout: float) -> None:
        """Add these runners to the batch with this timeout that starts at the loop's next
        turn (made now if there is none yet)."""
        batch = self._batches.get(timeout)
        if batch is None or batch[1].done():  # (done: cancelled before its first step)
            batch = self._batches[timeout] = ([], self.tasks.background(self._stop_trees(timeout)))
        batch[0].extend(runner_ids)
        for runner_id in runner_ids:
            self.table.live[runner_id].stop_task = batch[1]

    async def _stop_trees(self, timeout: float) -> None:
        """Take the batch's trees and send the polite signals (one worker-thread pass for
        all), then, at the deadline, kill what is left of those still stopping (another)."""
        await asyncio.sleep(BATCH_WINDOW)  # stop requests arriving together join the batch
        runner_ids, _ = self._batches.pop(timeout)
        loop = self.tasks.loop
        lives = self._stopping(runner_ids)
        if not lives:
            return
        roots = [live.identity for live in lives if live.identity is not None]
        if len(lives) == 1:
            log.info("stopping: runner %s pid %s", lives[0].row.id, roots[0].pid)
        else:
            log.info("stopping: %d runners", len(lives))
        trees = await loop.run_in_executor(None, self.trees.take, roots)
        lives = self._stopping(runner_ids)  # (ended meanwhile: its end killed what was left)
        for live in lives:
            assert live.identity is not None
            live.stop_tree = trees.get(live.identity, [])
        targets = [self.trees.target(live) for live in lives]
        await loop.run_in_executor(None, self.trees.polite_all, targets)
        await asyncio.sleep(timeout)
        lives = self._stopping(runner_ids)
        if not lives:
            return
        for live in lives:
            live.killed_at_deadline = True
        targets = [self.trees.target(live) for live in lives]
        killed = await loop.run_in_executor(None, self.trees.kill_trees, targets)
        names = f"runner {lives[0].row.id}" if len(lives) == 1 else f"{len(lives)} runners"
        log.info("stopping: %s: killed %d processes at the deadline", names, killed)
        self.exits.reap()

    def _stopping(self, runner_ids: list[int]) -> list[Live]:
        """Those of these runners still active with a process, stopping or stopped unrecorded,
        and still in this batch (a forced stop since, or a runner stopped, restarted and
        stopped again, is another batch's)."""
        task = asyncio.current_task()
        lives = [self.table.live.get(i) for i in runner_ids]
        return [
            live
            for live in lives
            if live is not None
            and live.identity is not None
            and live.stop_task is task
            and (live.state is S.STOPPING or live.stop_unrecorded is not None)
        ]
