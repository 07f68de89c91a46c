"""The event catalogue and the one function that writes an event.

Events are the outbox: :func:`record` must be called inside the same ``DB.atomic()`` block as
the state change it reports, so a change is never committed without its event or vice versa.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from supervisor import queries
from supervisor.states import Attention, RunnerState

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
