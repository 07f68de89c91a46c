"""The event catalogue and the one function that writes an event.

Events are the outbox: :func:`record` must be called inside the same ``DB.atomic()`` block as
the state change it reports, so a change is never committed without its event or vice versa.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from supervisor.core.states import Attention, RunnerState
from supervisor.storage import queries

# One type per runner state ("runner.<state>"), plus these.
RUNNER_UNRESPONSIVE = "runner.unresponsive"
RUNNER_RESPONSIVE = "runner.responsive"
SUPERVISOR_STARTED = "supervisor.started"
SUPERVISOR_STOPPED = "supervisor.stopped"
BUDGET_THRESHOLD = "budget.threshold"  # a warn percentage crossed, once per period
BUDGET_SPENT = "budget.spent"  # 100 %, once per period
BUDGET_ROLLOVER = "budget.rollover"  # a period ended: its summary
USAGE_IMPORT_PROBLEM = "usage.import_problem"  # malformed lines, unknown models
RUNNER_LIMIT = "runner.limit"  # a live session hit its provider's usage limit
RUNNER_RESUME_FAILED = "runner.resume_failed"  # a paused runner could not resume at the reset
WORKTREE_KEPT = "runner.worktree_kept"  # a finished runner's worktree holds work: where it is
WORKTREE_MERGED = "runner.worktree_merged"  # the user merged a runner's branch into its base
WORKTREE_DISCARDED = "runner.worktree_discarded"  # the user removed its worktree and branch
STORAGE_PROBLEM = "supervisor.storage_problem"  # the data folder was full or read-only (once)
SETTING_INVALID = "settings.invalid"  # a saved setting cannot be used: its default is, at start
BACKUP_FAILED = "backup.failed"  # a scheduled backup of the database could not be made
PLAN_LIMIT = "plan.limit"  # an account's use of a provider plan window changed
PLAN_THRESHOLD = "plan.threshold"  # a plan window crossed a limit_thresholds percentage, once

STATE_TITLES = {
    RunnerState.QUEUED: "was queued",
    RunnerState.STARTING: "is starting",
    RunnerState.RUNNING: "is running",
    RunnerState.BACKOFF: "is backing off before a restart",
    RunnerState.STOPPING: "is stopping",
    RunnerState.STOPPED: "was stopped",
    RunnerState.EXITED: "exited",
    RunnerState.FAILED: "failed",
    RunnerState.FATAL: "gave up restarting",
    RunnerState.LOST: "was lost",
    RunnerState.PAUSED: "paused at the provider's usage limit",
}
# One type per attention ("runner.<attention>"): runner.needs_input, runner.finished_turn, ...
ATTENTION_TITLES = {
    Attention.WORKING: "is working",
    Attention.NEEDS_INPUT: "needs input",
    Attention.FINISHED_TURN: "finished its turn",
    Attention.IDLE: "is idle",
}
SEVERITY_OF_STATE = {
    RunnerState.FAILED: "error",
    RunnerState.FATAL: "error",
    RunnerState.LOST: "warning",
    RunnerState.BACKOFF: "warning",
    RunnerState.PAUSED: "warning",
}


# Called after each event is written (still inside its transaction, on the writer's thread):
# the dispatcher schedules a look at the outbox, which runs after the commit.
listeners: list[Callable[[], None]] = []


class Waker:
    """An :class:`asyncio.Event` on one loop, set by :meth:`poke` from any thread, and poked
    by every :func:`record` while started: what lets a task sleep until news comes.

    On the loop's own thread a poke comes inside the writer's transaction, and the waiters
    run after its commit anyway. From a worker thread the event is set ``off_loop_delay``
    seconds later (a writer there commits just after recording), or at once with 0."""

    def __init__(self, off_loop_delay: float = 0.0) -> None:
        self.off_loop_delay = off_loop_delay
        self.loop: asyncio.AbstractEventLoop | None = None
        self.event: asyncio.Event | None = None

    def start(self) -> asyncio.Event:
        self.loop, self.event = asyncio.get_running_loop(), asyncio.Event()
        listeners.append(self.poke)
        return self.event

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            listeners.remove(self.poke)

    def poke(self) -> None:
        loop, event = self.loop, self.event
        if loop is None or event is None or loop.is_closed():
            return
        try:
            same = asyncio.get_running_loop() is loop
        except RuntimeError:
            same = False
        if same:
            event.set()
        elif self.off_loop_delay:
            loop.call_soon_threadsafe(loop.call_later, self.off_loop_delay, event.set)
        else:
            loop.call_soon_threadsafe(event.set)


def runner_state_type(state: RunnerState) -> str:
    return f"runner.{state.value}"


def attention_type(attention: Attention) -> str:
    return f"runner.{attention.value}"


def record(
    type: str,
    title: str,
    *,
    ts: float,
    severity: str = "info",
    runner_id: int | None = None,
    project: str | None = None,
    body: str = "",
    data: dict[str, Any] | None = None,
) -> int:
    """Insert one event (call inside the transaction of the change it reports); its id."""
    event_id = queries.insert_event(ts, type, severity, runner_id, project, title, body, data or {})
    for listener in listeners:
        listener()
    return event_id
