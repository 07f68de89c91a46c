"""Where a runner's end is noticed, recorded, and followed by the restart policy.

An end is noticed by the pidfd watch, the reap poll, the sweep or stratavore-agent's final
heartbeat; what is left of the runner's process group is killed; the end is recorded once, or
kept (:attr:`~supervisor.runners.table.Live.end_unrecorded`) until the DB takes it and then
recorded as it happened (:meth:`Exits.catch_up`).

The restart policy (supervisord's, with PM2's exponential backoff): an exit inside the start
window (``start_secs``) is a quick exit; after ``max_retries`` quick exits in a row the runner
is ``fatal`` ("gave up: exited too quickly 4 times in a row"); delays grow x1.5 per quick exit
from ``backoff_initial``, capped at ``backoff_max``; a run that lasted restarts after
``backoff_initial``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from supervisor.agents.profilebook import ProfileBook
from supervisor.core import paths
from supervisor.core.settings import LiveSettings
from supervisor.core.states import RunnerState
from supervisor.runners.logpump import LogPump
from supervisor.runners.pausing import Pauses
from supervisor.runners.process import ProcessOps, describe_exit
from supervisor.runners.queue import Queue
from supervisor.runners.spawner import EXIT_FILE, Spawner
from supervisor.runners.table import RETRY_INTERVAL, Ended, Live, Move, RunnerTable
from supervisor.runners.tasks import Tasks
from supervisor.runners.trees import ProcessTrees, StopTarget
from supervisor.storage.models import Runner
from supervisor.storage.writes import StorageError

log = logging.getLogger("stratavore.runners")
S = RunnerState
BACKOFF_FACTOR = 1.5  # PM2's exp_backoff_restart_delay growth
DRAIN_THREADS = 4  # worker threads that drain the logs of the ends seen together


def backoff_delay(early_exits: int, initial: float, maximum: float) -> float:
    """Delay before restart number ``early_exits`` (0 for a run that lasted):
    initial x 1.5^(n-1), capped."""
    return round(min(maximum, initial * BACKOFF_FACTOR ** max(early_exits - 1, 0)), 3)


@dataclass(eq=False, repr=False)
class Exits:
    """Runners' ends: noticed, recorded (or kept until the DB takes them), and followed by
    the restart policy."""

    root: Path
    table: RunnerTable
    ops: ProcessOps
    pump: LogPump
    spawner: Spawner
    queue: Queue
    trees: ProcessTrees
    pauses: Pauses
    profiles: ProfileBook
    settings: LiveSettings
    tasks: Tasks
    clock: Callable[[], float]
    # runners whose pidfd fired, finished on the next turn
    _exits: set[int] = field(default_factory=set, init=False)

    # --- noticing an end ----------------------------------------------------------------------
    def exit_seen(self, runner_id: int) -> None:
        """A watched root ended. Exits that arrive together (a stop-all) are finished in one
        turn of the loop, their logs drained in one worker-thread call."""
        if not self._exits and self.tasks.accepting:
            self.tasks.loop.call_soon(self.tasks.soon, self._finish_exits)
        self._exits.add(runner_id)

    async def _finish_exits(self) -> None:
        batch, self._exits = self._exits, set()
        ended = []
        for runner_id in sorted(batch):
            live = self.table.live.get(runner_id)
            if live is not None and live.identity is not None:
                gone, code = self.ops.poll(live.identity, live.exit_fd)
                if gone:
                    ended.append((live, code))
                elif live.exit_fd is not None:  # not expected after the pidfd fired: watch on
                    self.spawner.rewatch(live)
        # Their last output goes into the logs, and what is left of their trees is ended, in
        # one worker-thread call (file I/O and /proc stay off the loop).
        ending = [(live.row.id, self._leftovers(live)) for live, _ in ended]
        # In a few threads at once: a log's first line creates its file, which waits on the
        # disk's journal (the thread lets the others run meanwhile).
        loop, step = self.tasks.loop, max(1, -(-len(ending) // DRAIN_THREADS))
        try:
            parts = await asyncio.gather(
                *(
                    loop.run_in_executor(None, self._drain_and_end, ending[i : i + step])
                    for i in range(0, len(ending), step)
                )
            )
        except RuntimeError:  # the loop is closing and its executor is gone: these runners
            return  # are finished by the reconcile of the next start, from their exit files
        drained = {rid: offset for part in parts for rid, offset in part.items()}
        now = self.clock()
        seen = []
        for live, code in ended:
            if live.row.id in drained:
                code = self._code(live, code)
                if self._end_seen(live.row.id, code, now, drained[live.row.id]):
                    seen.append(live)
        self.record_ends(seen)

    def _leftovers(self, live: Live) -> StopTarget | None:
        """What of an ended runner's tree is to be killed: a stopping one's remembered tree
        and group, a supervised one's group (its command's children, now unwatched)."""
        stopping = live.state is S.STOPPING or live.stop_unrecorded is not None
        if not (stopping or live.row.supervised) or live.identity is None:
            return None
        target = self.trees.target(live, pidfd=False)  # its root was reaped: no pidfd
        return target if stopping else replace(target, seen=())

    def _drain_and_end(self, ending: list[tuple[int, StopTarget | None]]) -> dict[int, int]:
        """Pump the last output of ended runners and kill what is left of their trees (a
        worker thread); look in the logs of those not stopping for a provider's usage limit.
        The log offsets by runner id (those tracked)."""
        now = self.clock()
        offsets = {}
        leftovers = [target for _, target in ending if target is not None]
        if leftovers:
            self.trees.kill_trees(leftovers, rescan=False)
        for runner_id, _ in ending:
            live = self.table.live.get(runner_id)
            if live is None:
                continue
            try:
                offsets[runner_id] = self.pump.drain(runner_id)
            except KeyError:  # not tracked: nothing to drain
                offsets[runner_id] = live.row.log_offset
            if live.state is not S.STOPPING:  # a stop is recorded as one whatever the log says
                live.limit, live.limit_checked = self.pauses.find_limit(live.row, now), True
        return offsets

    def reap(self, now: float | None = None) -> int:
        """Notice runners whose process ended without a pidfd watching them; how many."""
        now = self.clock() if now is None else now
        ended = []
        for runner_id, live in list(self.table.live.items()):
            if live.identity is not None and live.exit_fd is None and live.end_unrecorded is None:
                gone, code = self.ops.poll(live.identity)
                if gone:
                    ended.append((runner_id, code))
        for runner_id, code in ended:
            self.finish_gone(runner_id, code, now)
        return len(ended)

    def finish_gone(self, runner_id: int, code: int | None, now: float) -> None:
        """The runner's root is gone; ``code`` is known only when we reaped it ourselves.
        Otherwise it comes from the trampoline's file or stratavore-agent's final heartbeat."""
        live = self.table.live.get(runner_id)
        if live is not None:
            self.on_exit(runner_id, self._code(live, code), now)

    def _code(self, live: Live, code: int | None) -> int | None:
        if code is None and live.row.supervised:
            return self.ops.read_exit_file(paths.run_dir(self.root, live.row.id) / EXIT_FILE)
        return live.final_exit_code if code is None else code

    def on_exit(self, runner_id: int, code: int | None, now: float) -> None:
        """The runner's root process ended with ``code`` (None: unknown): what is left of it
        is ended, once, and its end recorded, or kept until the DB takes it."""
        live = self._end_seen(runner_id, code, now)
        if live is not None:
            self.record_end_or_keep(live)

    def _end_seen(
        self, runner_id: int, code: int | None, now: float, drained: int | None = None
    ) -> Live | None:
        """Keep the runner's end to be recorded (``live.end_unrecorded``), after its log's
        final pump and ending what is left of its tree, unless ``drained`` says both were
        done already (the log's offset then); the runner, or None when its end is no news."""
        live = self.table.live.get(runner_id)
        if (
            live is None
            or live.state not in (S.STARTING, S.RUNNING, S.STOPPING)
            or live.end_unrecorded is not None
        ):
            return None
        runner = live.row
        stopping = live.state is S.STOPPING or live.stop_unrecorded is not None
        if not stopping:  # a stop's end is in the line of its batch (record_ends)
            log.info("exited: runner %s %s", runner_id, describe_exit(code))
        if drained is not None:
            offset = drained
        else:
            offset = self.pump.drain(runner_id) if runner.supervised else runner.log_offset
            if not stopping and live.row.supervised:
                # What is left of the runner's process group has nobody watching it any more
                # (e.g. the command's children after the trampoline was killed): end it too.
                self.trees.kill_all([], live)
            if stopping:
                self.trees.kill_all(live.stop_tree, live)  # what remains of its tree and group
        pid = live.identity.pid if live.identity is not None else runner.pid
        live.end_unrecorded = Ended(code, now, offset, pid)
        return live

    # --- recording it -------------------------------------------------------------------------
    def record_ends(self, lives: list[Live]) -> None:
        """Record these runners' ends: the stops among them (stopping -> stopped, no restart
        asked) in one transaction and one log line, the others each as
        :meth:`record_end_or_keep` does (and the stops too, when the DB refuses the batch)."""
        stops = [
            live
            for live in lives
            if live.state is S.STOPPING
            and live.stop_unrecorded is None
            and not live.restart_after_stop
            and live.end_unrecorded is not None
            and live.end_unrecorded.failed is None
        ]
        if len(stops) > 1:
            try:
                # STOPPING -> STOPPED, all in one transaction
                self.table.transition_many([self._stopped(live) for live in stops])
            except StorageError:
                pass  # one by one below: each kept until the DB takes it
            else:
                for live in stops:
                    live.end_unrecorded = None
                self._log_stopped(stops)
        for live in lives:
            if live.end_unrecorded is not None:
                self.record_end_or_keep(live)

    def _log_stopped(self, stops: list[Live]) -> None:
        """One line for the batch; the runners killed at the deadline by name."""
        killed = [live.row.id for live in stops if live.killed_at_deadline]
        log.info(
            "stopped: %d runners%s",
            len(stops),
            f" ({len(killed)} killed after the stop timeout: {', '.join(map(str, killed))})"
            if killed
            else "",
        )

    def record_end_or_keep(self, live: Live) -> None:
        """Record what happened to the runner, or keep it and try again soon."""
        try:
            self.catch_up(live)
        except StorageError as exc:
            log.warning(
                "unrecorded: runner %s ended; kept until it can be written (%s)",
                live.row.id,
                exc.message,
            )
            self.table.retry_later()

    def _record_end(self, live: Live) -> None:
        """Write the runner's end (``live.end_unrecorded``) and what follows from it: stopped
        (and restarted if asked), paused at a limit, exited, failed, fatal or backing off.
        Raises :class:`StorageError`, having changed nothing, while the DB refuses it."""
        end = live.end_unrecorded
        assert end is not None
        runner, now = live.row, end.at
        if end.failed is not None:
            # STARTING -> FAILED: its process could not be started
            self.table.transition(runner, S.FAILED, end.failed, now, ended_at=now)
            live.end_unrecorded = None
            return
        if live.state is S.STOPPING:
            self._record_stopped(live)
            return
        if not live.limit_checked:
            live.limit, live.limit_checked = self.pauses.find_limit(runner, now), True
        if live.limit is not None:
            self.pauses.pause(runner, live.limit, end.code, now, end.offset)
            self.spawner.unwatch(live)
            return
        self._follow_policy(live, end)

    @staticmethod
    def _ended(end: Ended) -> dict[str, object]:
        return {"exit_code": end.code, "ended_at": end.at, "log_offset": end.offset, "pid": end.pid}

    def _stopped(self, live: Live) -> Move:
        """A stopping runner's move to stopped, its process having ended."""
        end = live.end_unrecorded
        assert end is not None
        why = "stopped by user" + (
            f" (killed after the {self.settings.current.stop_timeout:g} s stop timeout)"
            if live.killed_at_deadline
            else ""
        )
        return Move(live.row, S.STOPPED, why, end.at, {"exit_code": end.code}, self._ended(end))

    def _record_stopped(self, live: Live) -> None:
        runner, restart = live.row, live.restart_after_stop
        with self.table.holding_slots():  # a restart asked for takes the freed slot first
            # STOPPING -> STOPPED
            self.table.transition_many([self._stopped(live)])
            live.end_unrecorded = None
            log.info("stopped: runner %s (%s)", runner.id, runner.reason)
            if restart:
                try:
                    self.queue.start_again(runner, self.clock(), "restarted by user")
                except StorageError as exc:
                    log.warning("restart: runner %s stopped, not started again: %s", runner.id, exc)

    def _follow_policy(self, live: Live, end: Ended) -> None:
        """The restart policy: exited or failed for good, given up (fatal), or backing off."""
        runner, code, now = live.row, end.code, end.at
        how = describe_exit(code)
        data = {"exit_code": code}
        expected = code is not None and code in runner.expected_exit_codes
        outcome = S.EXITED if expected else S.FAILED
        wants_restart = runner.supervised and (
            runner.restart == "always" or (runner.restart == "on-failure" and not expected)
        )
        if not wants_restart:
            if not runner.supervised and code is None:
                how = "disappeared without reporting an exit status"
            # STARTING/RUNNING -> EXITED/FAILED
            self.table.transition(runner, outcome, how, now, data=data, **self._ended(end))
            live.end_unrecorded = None
            return
        early = live.state is S.STARTING
        early_exits = runner.early_exits + 1 if early else 0
        if early and early_exits > runner.max_retries:
            why = f"gave up: exited too quickly {early_exits} times in a row (last: {how})"
            # STARTING -> FATAL
            self.table.transition(
                runner, S.FATAL, why, now, data=data, early_exits=early_exits, **self._ended(end)
            )
            live.end_unrecorded = None
            log.warning("gave up: runner %s exited too quickly %d times", runner.id, early_exits)
            return
        self._back_off(live, end, early_exits, how)

    def _back_off(self, live: Live, end: Ended, early_exits: int, how: str) -> None:
        runner, code, now = live.row, end.code, end.at
        delay = backoff_delay(early_exits, runner.backoff_initial, runner.backoff_max)
        why = f"{how}; restarting in {delay:g} s"
        if live.state is S.STARTING:
            why += f" (quick exit {early_exits} of {runner.max_retries} allowed)"
        # STARTING/RUNNING -> BACKOFF
        self.table.transition(
            runner,
            S.BACKOFF,
            why,
            now,
            data={"exit_code": code, "delay": delay},
            early_exits=early_exits,
            next_start_at=now + delay,
            exit_code=code,
            pid=None,
            create_time=None,
        )
        live.end_unrecorded = None
        log.info("backoff: runner %s %s", runner.id, why)
        self.schedule_backoff(runner.id, now + delay - self.clock())

    # --- backing off --------------------------------------------------------------------------
    def schedule_backoff(self, runner_id: int, delay: float) -> None:
        live = self.table.live[runner_id]
        self.spawner.unwatch(live)
        live.timer = self.tasks.loop.call_later(
            max(delay, 0), self._restart_from_backoff, runner_id
        )

    def _restart_from_backoff(self, runner_id: int) -> None:
        """The backoff timer: start the runner again (in a second, if the DB refuses it)."""
        live = self.table.live.get(runner_id)
        if live is None or live.state is not S.BACKOFF:
            return
        try:
            self.start_from_backoff(live.row)
        except StorageError:
            live.timer = self.tasks.loop.call_later(
                RETRY_INTERVAL, self._restart_from_backoff, runner_id
            )

    def start_from_backoff(self, runner: Runner) -> None:
        now = self.clock()
        # BACKOFF -> STARTING
        self.table.transition(
            runner,
            S.STARTING,
            f"restart {runner.restarts + 1}",
            now,
            restarts=runner.restarts + 1,
            started_at=now,
            next_start_at=None,
            exit_code=None,
            **self.profiles.fresh_session(runner),
        )
        self.spawner.spawn(runner, now)

    # --- what the DB refused ------------------------------------------------------------------
    def current(self, runner_id: int) -> Runner:
        """The runner's row, after writing what was kept of it (so a command acts on what
        really happened); :class:`StorageError` while the DB refuses that."""
        live = self.table.live.get(runner_id)
        if live is not None and live.end_unrecorded is not None:
            self.catch_up(live)
        return self.table.row(runner_id)

    def catch_up(self, live: Live) -> None:
        """Write what was seen of this runner while the DB refused writes, in the order it
        happened: the stop signal sent, then the end of its process. Raises
        :class:`StorageError` while the DB still refuses them."""
        if live.stop_unrecorded is not None:
            force, at = live.stop_unrecorded
            # STARTING/RUNNING -> STOPPING (its signal went out at the time)
            self.table.transition(
                live.row,
                S.STOPPING,
                "stop requested by user",
                at,
                stop_requested_at=at,
                stop_force=force,
            )
            live.stop_unrecorded = None
        if live.end_unrecorded is not None:
            self._record_end(live)

    def retry_unwritten(self) -> None:
        """Write what the DB refused, oldest first, until it refuses again (then a second
        later once more); then start what waits in the queue."""
        self.table.write_fields({})
        for live in list(self.table.live.values()):
            if live.stop_unrecorded is not None or live.end_unrecorded is not None:
                try:
                    self.catch_up(live)
                except StorageError:
                    self.table.retry_later()
                    return
        self.queue.dequeue(self.clock())
