"""Taking over, at start, the runners a previous supervisor left active: queued ones stay
queued, backoff timers and resume jobs are armed again, runners whose exact process (pid and
create time) still lives are adopted, the others are finished from their exit-status file or
marked ``lost``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from supervisor.agents import profiles
from supervisor.agents.profilebook import ProfileBook
from supervisor.core import paths
from supervisor.core.states import ACTIVE_STATES, RunnerState
from supervisor.runners.exits import Exits
from supervisor.runners.heartbeats import HeartbeatBook
from supervisor.runners.logpump import LogPump
from supervisor.runners.pausing import Pauses
from supervisor.runners.process import ProcessOps
from supervisor.runners.procinfo import Identity
from supervisor.runners.queue import Queue
from supervisor.runners.spawner import EXIT_FILE, Spawner
from supervisor.runners.stopper import Stopper
from supervisor.runners.table import Live, RunnerTable
from supervisor.storage import queries
from supervisor.storage.models import Runner

log = logging.getLogger("stratavore.runners")
S = RunnerState


@dataclass(eq=False, repr=False)
class Reconciler:
    """Adoption at start: every active runner of the DB taken over as what it really is."""

    root: Path
    table: RunnerTable
    heartbeats: HeartbeatBook
    spawner: Spawner
    exits: Exits
    stopper: Stopper
    queue: Queue
    pauses: Pauses
    profiles: ProfileBook
    pump: LogPump
    ops: ProcessOps
    clock: Callable[[], float]

    def reconcile(self, now: float | None = None) -> None:
        """Take over the runners a previous supervisor left: adopt those whose exact process
        (pid + create time) still lives, finish the others from their exit-status file, or
        mark them lost."""
        now = self.clock() if now is None else now
        with self.table.holding_slots():  # no queued runner starts before all are counted
            for runner in queries.runners_in(ACTIVE_STATES):
                self._take_over(runner, now)
        self.queue.dequeue(now)  # caps may have been raised, or slots freed, while it was off

    def _take_over(self, runner: Runner, now: float) -> None:
        state = RunnerState(runner.state)
        live = self.table.take_over(runner)
        if runner.last_heartbeat is not None:
            self.heartbeats.last_seen[runner.id] = runner.last_heartbeat
        if not runner.supervised:
            self.heartbeats.last_seen.setdefault(runner.id, now)
        if state is S.QUEUED:
            return
        if state is S.BACKOFF:
            self.exits.schedule_backoff(runner.id, (runner.next_start_at or now) - now)
            return
        if state is S.PAUSED:
            profile = self.profiles.profile_or_none(runner.profile)
            if runner.resume_on_limit and profiles.can_resume(profile):
                self.pauses.plan_resume(runner)
            return
        ident = None  # pid and create time are written together
        if runner.pid and runner.create_time is not None:
            ident = Identity(runner.pid, runner.create_time)
        if ident is not None and self.ops.is_alive(ident):
            self._adopt(live, ident, now)
            return
        run_dir = paths.run_dir(self.root, runner.id)
        code = (
            self.ops.read_exit_file(run_dir / EXIT_FILE)
            if (runner.supervised and ident is not None)
            else None
        )
        if code is not None:
            self.spawner.watch(live, ident)
            self.pump.track(runner.id, run_dir, runner.log_offset)
            self.exits.on_exit(runner.id, code, now)
            return
        self._lose(runner, ident, now)

    def _adopt(self, live: Live, ident: Identity, now: float) -> None:
        """Its exact process lives: watched, pumped and followed as if never let go."""
        runner, state = live.row, live.state
        self.spawner.adopt(live, ident, now)
        log.info("adopted: runner %s pid %s (%s)", runner.id, ident.pid, state.value)
        if state is S.STOPPING:
            self.stopper.begin_stop(runner.id, bool(runner.stop_force))
        elif state is S.STARTING:
            self.spawner.schedule_promotion(runner, now)

    def _lose(self, runner: Runner, ident: Identity | None, now: float) -> None:
        """Gone, with no exit status recorded: lost (a stop under way ends as stopped)."""
        if ident is None:
            why = "it was never seen running (the supervisor stopped while starting it)"
        elif self.ops.create_time(ident.pid) is not None:
            why = (
                f"process {ident.pid} is now a different program (pid reused) and no "
                "exit status was recorded"
            )
        else:
            why = "it ended while the supervisor was not running, exit status unknown"
        log.warning("lost: runner %s: %s", runner.id, why)
        if runner.state == S.STOPPING:
            self.table.transition(runner, S.STOPPED, f"stopped by user; {why}", now, ended_at=now)
        else:
            self.table.transition(runner, S.LOST, why, now, ended_at=now)
