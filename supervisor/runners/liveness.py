"""Whether runners are alive and well, and the stale-heartbeat rule.

Heartbeats (authenticated by the runner's own token) are kept in memory and flushed to the DB
in one transaction a second. The sweep (every 30 s, and soon after a runner enters running)
samples CPU/RSS of every runner's whole tree from one process-table pass in a worker thread,
finishes runners whose process is gone, and flags ``unresponsive`` (an event, never a kill)
those silent past the heartbeat TTL (if they ever heartbeat, or were registered by
stratavore-agent) or whose process is stopped (SIGSTOP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from supervisor.api.schemas import Heartbeat
from supervisor.core import events
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.core.settings import LiveSettings
from supervisor.core.states import PROCESS_STATES
from supervisor.runners.attention import AttentionWatch
from supervisor.runners.exits import Exits
from supervisor.runners.heartbeats import HeartbeatBook
from supervisor.runners.process import ProcessOps, Sample
from supervisor.runners.procinfo import Identity
from supervisor.runners.projects import ProjectBook
from supervisor.runners.table import Live, RunnerTable
from supervisor.runners.tasks import Tasks
from supervisor.storage import queries
from supervisor.storage.models import Runner
from supervisor.storage.writes import StorageError, Writes

log = logging.getLogger("stratavore.runners")
FIRST_SAMPLE_DELAY = 0.5  # sample new runners soon, so listings show CPU/RSS before a sweep


@dataclass(eq=False, repr=False)
class Liveness:
    """Heartbeats in and flushed, the sweep, and the unresponsive flag."""

    table: RunnerTable
    heartbeats: HeartbeatBook
    projects: ProjectBook
    ops: ProcessOps
    attention: AttentionWatch
    exits: Exits
    settings: LiveSettings
    writes: Writes
    tasks: Tasks
    clock: Callable[[], float]
    _sample_timer: asyncio.TimerHandle | None = field(default=None, init=False)
    _sweep_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    # --- heartbeats ---------------------------------------------------------------------------
    def heartbeat(
        self, runner_id: int, token: str, beat: Heartbeat, now: float | None = None
    ) -> None:
        now = self.clock() if now is None else now
        runner = self.table.runner_with_token(runner_id, token)
        live = self.table.live.get(runner_id)
        if live is None:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Runner {runner_id} has ended ({runner.state}); its heartbeats are refused.",
            )
        self.heartbeats.record(runner_id, beat, now)
        if live.row.unresponsive:
            self._set_flag(live.row, False, "heartbeat received", now)
        if beat.exit_code is not None and not live.row.supervised:
            live.final_exit_code = beat.exit_code
            self.flush_heartbeats()
            self.exits.on_exit(runner_id, beat.exit_code, now)

    def flush_heartbeats(self) -> int:
        """Write the heartbeats received since the last flush, in one transaction; how many
        runners' (0 when the DB refused them: they are kept for the next flush)."""
        batch = self.heartbeats.take()
        if batch:
            try:
                with self.writes.transaction():
                    queries.store_heartbeats(batch)
            except StorageError:
                self.heartbeats.keep(batch)
                return 0
            for runner_id, values in batch.items():
                if (live := self.table.live.get(runner_id)) is not None:
                    live.row.__data__.update(values)
        return len(batch)

    # --- the sweep ----------------------------------------------------------------------------
    def sample_soon(self) -> None:
        """A runner entered running: sample it soon, so listings show CPU/RSS before the
        next sweep (one sample for all that enter together)."""
        if self._sample_timer is None:
            self._sample_timer = self.tasks.loop.call_later(FIRST_SAMPLE_DELAY, self._first_sample)

    def _first_sample(self) -> None:
        self._sample_timer = None
        self.tasks.background(self.sweep())

    async def sweep(self, now: float | None = None) -> None:
        """Sample CPU/RSS of every runner's tree, finish runners whose process is gone, and flag
        runners silent past the heartbeat TTL (or stopped by a signal) as unresponsive."""
        async with self._sweep_lock:  # the scheduled sweep and a first sample may overlap
            await self._sweep(self.clock() if now is None else now)

    async def _sweep(self, now: float) -> None:
        watched = {
            rid: live.identity
            for rid, live in self.table.live.items()
            if live.identity is not None
            and live.state in PROCESS_STATES
            and live.end_unrecorded is None
        }
        samples: dict[Identity, Sample] = await self.tasks.loop.run_in_executor(
            None, self.ops.sample, list(watched.values()), now
        )
        updates: dict[int, dict[str, Any]] = {}
        for runner_id, ident in watched.items():
            live = self.table.live.get(runner_id)
            if live is None or live.identity != ident:
                continue  # changed while we sampled
            sample = samples.get(ident)
            if sample is None:  # gone, or its pid now belongs to another program
                gone, code = self.ops.poll(ident)
                self.exits.finish_gone(runner_id, code if gone else None, now)
                continue
            updates[runner_id] = {"cpu_percent": sample.cpu_percent, "rss_bytes": sample.rss_bytes}
            self._check_responsive(runner_id, live, sample, now)
            with contextlib.suppress(StorageError):  # not recorded: seen again next sweep
                self.attention.heuristic(live, sample, now)
        self.table.write_fields(updates)

    def _check_responsive(self, runner_id: int, live: Live, sample: Sample, now: float) -> None:
        """The stale-heartbeat rule: silent past the TTL (for runners that heartbeat), or
        stopped by a signal, is unresponsive; a heartbeat or a running process again clears it."""
        ttl = self.settings.current.heartbeat_ttl
        last = self.heartbeats.last_seen.get(runner_id)
        silent_for = None if last is None else now - last
        if silent_for is not None and silent_for > ttl:
            problem = f"no heartbeat for {silent_for:.0f} s (TTL {ttl:g} s)"
        elif sample.stopped:
            problem = "its process is stopped (SIGSTOP or a debugger) and cannot progress"
        else:
            problem = None
        if problem and not live.row.unresponsive:
            self._set_flag(live.row, True, problem, now)
        elif problem is None and live.row.unresponsive and not sample.stopped and last is None:
            self._set_flag(live.row, False, "its process runs again", now)

    def _set_flag(self, runner: Runner, unresponsive: bool, reason: str, now: float) -> None:
        """Flag or clear ``unresponsive`` with its event (not a state change: not killed).
        When the DB refuses it, nothing changes: the next sweep or heartbeat sees it again."""
        project = self.projects.name_of(runner.project_id)
        kind = events.RUNNER_UNRESPONSIVE if unresponsive else events.RUNNER_RESPONSIVE
        word = "unresponsive" if unresponsive else "responsive again"
        try:
            with self.writes.transaction():
                queries.update_runner(runner.id, unresponsive=unresponsive)
                events.record(
                    kind,
                    f"runner {runner.id} ({project}) is {word}",
                    ts=now,
                    severity="warning" if unresponsive else "info",
                    runner_id=runner.id,
                    project=project,
                    body=reason,
                )
        except StorageError:
            return
        runner.unresponsive = unresponsive
        log.info(
            "%s runner %s: %s",
            "unresponsive:" if unresponsive else "responsive:",
            runner.id,
            reason,
        )

    def close(self) -> None:
        if self._sample_timer:
            self._sample_timer.cancel()
