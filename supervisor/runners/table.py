"""The active runners in memory, and the one way a runner's state changes.

:meth:`RunnerTable.transition` checks the move against the transition table and writes the new
state and its event in one transaction of the write gate
(:class:`~supervisor.storage.writes.Writes`); memory (the row, the live table, the slot
counters, the queue index) changes only once that is committed. When the DB refuses it,
:class:`~supervisor.storage.writes.StorageError` is raised and nothing has changed. Other fields
(samples, log offsets, a new process's identity) go through :meth:`RunnerTable.write_fields`:
what the DB refuses is kept and written later, with the next batch, the runner's next state
change, or the retry a second later (:attr:`RunnerTable.retrying`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from supervisor.agents import limits
from supervisor.core import events
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.core.states import ACTIVE_STATES, SLOT_STATES, RunnerState, check_transition
from supervisor.runners.procinfo import Identity
from supervisor.runners.projects import ProjectBook
from supervisor.runners.tasks import Signal, Tasks
from supervisor.runners.tokens import hash_token
from supervisor.storage import queries
from supervisor.storage.models import Runner
from supervisor.storage.writes import StorageError, Writes

S = RunnerState
RETRY_INTERVAL = 1.0  # seconds between tries to write what the DB refused


@dataclass
class Ended:
    """A runner's process ended (or never started: ``failed`` says why), as first seen."""

    code: int | None
    at: float
    offset: int
    pid: int | None
    failed: str | None = None


@dataclass
class Move:
    """One runner's state change for :meth:`RunnerTable.transition_many`: the new state, the
    reason, when, the event's extra data and other fields of the row written with it."""

    runner: Runner
    new: RunnerState
    reason: str | None
    now: float
    data: dict[str, Any] | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Live:
    """An active runner in memory: its row (the table is the only writer, so the row is
    kept equal to the DB and never re-read on hot paths) and what only the loop needs."""

    row: Runner
    identity: Identity | None = None
    exit_fd: int | None = None  # pidfd that becomes readable when the root process ends
    timer: asyncio.TimerHandle | None = None  # promotion or backoff restart
    # the stop under way, shared by the runners stopped together (it passes over runners
    # that ended meanwhile, so it is not cancelled when one leaves the table)
    stop_task: asyncio.Task[None] | None = None
    stop_tree: list[Identity] = field(default_factory=list)
    killed_at_deadline: bool = False
    restart_after_stop: bool = False
    final_exit_code: int | None = None  # from stratavore-agent's final heartbeat
    hooked: bool = False  # the agent reports its attention through hooks: no heuristic
    idle_after: float | None = None  # the heuristic's quiet time (agents without hooks)
    active_at: float = 0.0  # last output or CPU seen (the heuristic)
    seen_offset: int = -1  # log offset at the last sweep
    limit: limits.LimitHit | None = None  # found when its exit was drained
    limit_checked: bool = False
    # Seen while the DB refused writes, written by Exits.catch_up: a stop signal already sent
    # (force, when), and the end of the runner's process.
    stop_unrecorded: tuple[bool, float] | None = None
    end_unrecorded: Ended | None = None

    @property
    def state(self) -> RunnerState:
        return RunnerState(self.row.state)


@dataclass(eq=False, repr=False)
class RunnerTable:
    """The active runners (each row kept equal to the DB), the slot counters and the queue
    index, and :meth:`transition`, the one way a runner's state changes.

    Signals: :attr:`left` (a runner reached an end state and left the table),
    :attr:`slot_freed` (a transition freed a slot under the caps: the queue starts what
    waits) and :attr:`retrying` (the retry timer: write what the DB refused)."""

    writes: Writes
    projects: ProjectBook
    tasks: Tasks
    live: dict[int, Live] = field(default_factory=dict, init=False)
    # project id -> runners holding a slot
    slots: Counter[int] = field(default_factory=Counter, init=False)
    # queued runners, oldest first
    queued: dict[int, Runner] = field(default_factory=dict, init=False)
    # fields the DB refused, kept to retry
    _unwritten: dict[int, dict[str, Any]] = field(default_factory=dict, init=False)
    _retry_timer: asyncio.TimerHandle | None = field(default=None, init=False)
    _on_busy: Callable[[bool], None] | None = field(default=None, init=False)  # see watch_busy
    _busy: bool = field(default=False, init=False)
    left: Signal[[Live]] = field(default_factory=Signal, init=False)
    slot_freed: Signal[[float]] = field(default_factory=Signal, init=False)
    retrying: Signal[[]] = field(default_factory=Signal, init=False)
    _holding: int = field(default=0, init=False)  # see holding_slots
    _freed_at: float | None = field(default=None, init=False)  # a slot freed while held

    # --- the transition ---------------------------------------------------------------------
    def transition(
        self,
        runner: Runner,
        new: RunnerState,
        reason: str | None,
        now: float,
        data: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        """Change ``runner``'s state and write the event that reports it, in one transaction.
        Memory (the row, the counters, the live table) follows only once it is committed: when
        the DB refuses it, :class:`StorageError` is raised and nothing has changed. Fields of
        the runner kept from refused writes go with it."""
        self.transition_many([Move(runner, new, reason, now, data, fields)])

    def transition_many(self, moves: list[Move]) -> None:
        """:meth:`transition` for many runners in one transaction (a stop of many: one commit
        instead of one each); each runner's change is written with its own event. All or
        nothing: when the DB refuses it, :class:`StorageError` is raised and nothing has
        changed. Slots freed on the way reach the queue once, after the last move."""
        olds = [RunnerState(m.runner.state) if m.runner.state else None for m in moves]
        for move, old in zip(moves, olds, strict=True):
            check_transition(old, move.new)
        kept = [
            self._unwritten.pop(m.runner.id, {}) if m.runner.id is not None else {} for m in moves
        ]
        changes = [self._changes(m, k) for m, k in zip(moves, kept, strict=True)]
        try:
            with self.writes.transaction():
                for move, old, values in zip(moves, olds, changes, strict=True):
                    self._write(move, old, values)
        except StorageError:
            for move, old, k in zip(moves, olds, kept, strict=True):
                if old is None:  # unsaved again: peewee's row has no id until it is inserted
                    move.runner.id = move.runner.state = None  # type: ignore[assignment]
                elif k:
                    self._unwritten[move.runner.id] = k
            raise
        with self.holding_slots():
            for move, old, values in zip(moves, olds, changes, strict=True):
                self._apply(move, old, values)

    @staticmethod
    def _changes(move: Move, kept: dict[str, Any]) -> dict[str, Any]:
        changes = {"state": move.new.value, "reason": move.reason, **move.fields}
        if move.new not in (S.RUNNING, S.STOPPING) and move.runner.attention is not None:
            changes.update(attention=None, attention_at=None)  # only a running agent has one
        return {**kept, **changes}

    def _write(self, move: Move, old: RunnerState | None, changes: dict[str, Any]) -> None:
        """The move's row and its event (inside the caller's transaction)."""
        runner, new = move.runner, move.new
        if runner.id is None:  # a new runner: inserted first, so the event has its id
            for name, value in changes.items():  # not in memory yet: nobody sees it
                setattr(runner, name, value)
            runner.id = queries.insert_runner(runner)
        else:
            queries.update_runner(runner.id, **changes)
        project = self.projects.name_of(runner.project_id)
        events.record(
            events.runner_state_type(new),
            f"runner {runner.id} ({project}) {events.STATE_TITLES[new]}",
            ts=move.now,
            severity=events.SEVERITY_OF_STATE.get(new, "info"),
            runner_id=runner.id,
            project=project,
            body=move.reason or "",
            data={"state": new.value, "previous": old and old.value, **(move.data or {})},
        )

    def _apply(self, move: Move, old: RunnerState | None, changes: dict[str, Any]) -> None:
        """Memory follows a committed move: the row, the counters, the live table."""
        runner, new = move.runner, move.new
        for name, value in changes.items():
            setattr(runner, name, value)
        self._count(runner, old, -1)
        self._count(runner, new, +1)
        live = self.live.get(runner.id)
        if new in ACTIVE_STATES:
            if live is None:
                live = self.live[runner.id] = Live(runner)
                self._note_busy()
            live.row = runner
        elif live is not None:
            self._forget(runner.id)
            self.left.send(live)
        if old in SLOT_STATES and new not in SLOT_STATES:
            self._free_slot(move.now)

    def _free_slot(self, now: float) -> None:
        if self._holding:
            self._freed_at = now
        else:
            self.slot_freed.send(now)

    @contextlib.contextmanager
    def holding_slots(self) -> Iterator[None]:
        """Keep the slots freed meanwhile for what the block does with them (a runner
        restarted after its stop, every runner taken over at start before any queued one
        starts); the queue gets them when the block ends."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
            freed_at = None if self._holding else self._freed_at
            if not self._holding:
                self._freed_at = None
        if freed_at is not None:
            self._free_slot(freed_at)

    def _count(self, runner: Runner, state: RunnerState | None, delta: int) -> None:
        """Keep the slot counters and the queue in step with a state entered or left."""
        if state in SLOT_STATES:
            self.slots[runner.project_id] += delta
        elif state is S.QUEUED:
            if delta > 0:
                self.queued[runner.id] = runner
            else:
                self.queued.pop(runner.id, None)

    def take_over(self, runner: Runner) -> Live:
        """Enter a runner a previous supervisor left active, as the DB has it (reconcile)."""
        live = self.live[runner.id] = Live(runner)
        self._count(runner, RunnerState(runner.state), +1)
        return live

    def _forget(self, runner_id: int) -> None:
        live = self.live.pop(runner_id, None)
        self._note_busy()
        if live and live.timer:
            live.timer.cancel()

    # --- busy or idle -----------------------------------------------------------------------
    def watch_busy(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(True)`` when the first runner becomes active and ``False`` when
        the last one ends (and once now): the supervisor's 1-second jobs (reap, heartbeat
        flush, log pump) run only meanwhile, so an idle supervisor sleeps."""
        self._on_busy, self._busy = callback, bool(self.live)
        callback(self._busy)

    def _note_busy(self) -> None:
        busy = bool(self.live)
        if busy != self._busy:
            self._busy = busy
            if self._on_busy is not None:
                self._on_busy(busy)

    # --- reading ----------------------------------------------------------------------------
    def row(self, runner_id: int) -> Runner:
        """The runner's row: from memory while active, else from the DB (404 if none)."""
        live = self.live.get(runner_id)
        return live.row if live is not None else queries.runner_by_id(runner_id)

    def active_rows(self, project_id: int | None = None) -> list[Runner]:
        return [
            live.row
            for _, live in sorted(self.live.items())
            if project_id is None or live.row.project_id == project_id
        ]

    def active_count(self, project_id: int) -> int:
        return sum(1 for live in self.live.values() if live.row.project_id == project_id)

    def note_tokens(self, tokens: dict[int, int]) -> None:
        """The usage ledger wrote these runners' token totals: their rows follow."""
        for runner_id, total in tokens.items():
            if (live := self.live.get(runner_id)) is not None:
                live.row.tokens = total

    def runner_with_token(self, runner_id: int, token: str) -> Runner:
        """The runner whose own token ``token`` is; 401 otherwise (checked before anything
        about the runner, even whether it exists, is revealed)."""
        live = self.live.get(runner_id)
        try:
            runner = live.row if live is not None else queries.runner_by_id(runner_id)
        except ApiError:
            runner = None
        # a token given to a process just started may not be written yet
        expected = self._unwritten.get(runner_id, {}).get("token_hash") or (
            runner.token_hash if runner is not None else None
        )
        if runner is None or not expected or not hmac.compare_digest(hash_token(token), expected):
            raise ApiError(ErrorCode.UNAUTHORIZED, f"Wrong token for runner {runner_id}.")
        return runner

    # --- fields other than the state ----------------------------------------------------------
    def write_fields(self, batch: dict[int, dict[str, Any]]) -> None:
        """Store non-state fields (samples, log offsets, a new process's identity) of many
        runners at once. What the DB refuses is kept, and written with the next batch or a
        state change of its runner, whichever comes first (newer values win)."""
        for runner_id, values in batch.items():
            self._unwritten.setdefault(runner_id, {}).update(values)
        if not self._unwritten:
            return
        batch, self._unwritten = self._unwritten, {}
        try:
            with self.writes.transaction():
                for runner_id, values in batch.items():
                    queries.update_runner(runner_id, **values)
        except StorageError:
            self._unwritten = batch
            self.retry_later()
            return
        for runner_id, values in batch.items():
            live = self.live.get(runner_id)
            if live is not None:
                for name, value in values.items():
                    setattr(live.row, name, value)

    def retry_later(self) -> None:
        """Try again in a second what the DB refused (:attr:`retrying`)."""
        if self._retry_timer is None and self.tasks.accepting:
            self._retry_timer = self.tasks.loop.call_later(RETRY_INTERVAL, self._retry)

    def _retry(self) -> None:
        self._retry_timer = None
        self.retrying.send()

    def close(self) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
