"""The runner lifecycle: states, named groups, and the one table of allowed transitions.

::

    queued ──> starting ──> running ──> stopping ──> stopped
                  │  ▲         │
                  │  └ backoff ┘ (restart policy; early exits count toward max_retries)
                  │  └ paused ─┘ (the provider's usage limit: resumed at its reset)
                  └──> exited | failed | fatal           (lost: vanished while unobserved)

While a runner runs, agents that report it (Claude Code's hooks) also say what it is doing:
its :class:`Attention`. That is not a lifecycle state and has no transition table: any value
may follow any other, and only a change is reported.

A change of state is only ever made through :func:`check_transition`, and every change is
written together with the event that reports it (see ``supervisor.runners.table``).
"""

from __future__ import annotations

import enum


class RunnerState(enum.StrEnum):
    QUEUED = "queued"  # waiting for a free slot under the concurrency caps
    STARTING = "starting"  # spawned; not yet up for the start-success window
    RUNNING = "running"  # up past the start-success window (or registered by stratavore-agent)
    BACKOFF = "backoff"  # exited; waiting to be restarted by its restart policy
    STOPPING = "stopping"  # polite signal sent; killed with its tree at the deadline
    STOPPED = "stopped"  # stopped by the user
    EXITED = "exited"  # ended with an expected exit code
    FAILED = "failed"  # ended with an unexpected code or killed by a signal
    FATAL = "fatal"  # gave up restarting: exited too quickly too often
    LOST = "lost"  # vanished while the supervisor was not watching; exit status unknown
    PAUSED = "paused"  # ended at the provider's usage limit; resumed at the reset (or by hand)


class Attention(enum.StrEnum):
    """What a running agent is doing, as far as it tells (hooks) or we can tell (heuristic)."""

    WORKING = "working"  # busy with a prompt: nothing to do for the user
    NEEDS_INPUT = "needs_input"  # blocked on the user: a permission prompt or a question
    FINISHED_TURN = "finished_turn"  # answered; waiting for the next prompt
    IDLE = "idle"  # nothing happening for a while (or just started, before any prompt)


S = RunnerState

ACTIVE_STATES = frozenset({S.QUEUED, S.STARTING, S.RUNNING, S.BACKOFF, S.STOPPING, S.PAUSED})
FINISHED_STATES = frozenset({S.STOPPED, S.EXITED, S.FAILED, S.FATAL, S.LOST})
# States that hold a slot under the concurrency caps (queued waits for one).
SLOT_STATES = frozenset({S.STARTING, S.RUNNING, S.BACKOFF, S.STOPPING})
# States in which a process of the runner should exist.
PROCESS_STATES = frozenset({S.STARTING, S.RUNNING, S.STOPPING})

TRANSITIONS: dict[RunnerState, frozenset[RunnerState]] = {
    S.QUEUED: frozenset({S.STARTING, S.STOPPED}),
    S.STARTING: frozenset(
        {S.RUNNING, S.BACKOFF, S.STOPPING, S.EXITED, S.FAILED, S.FATAL, S.LOST, S.PAUSED}
    ),
    S.RUNNING: frozenset({S.BACKOFF, S.STOPPING, S.EXITED, S.FAILED, S.LOST, S.PAUSED}),
    S.BACKOFF: frozenset({S.STARTING, S.STOPPED}),
    # resumed at the reset, or by the user (queued behind a full cap); or stopped
    S.PAUSED: frozenset({S.STARTING, S.QUEUED, S.STOPPED}),
    S.STOPPING: frozenset({S.STOPPED}),
    # A finished runner can be restarted by the user (straight away, or queued behind a cap).
    **{finished: frozenset({S.STARTING, S.QUEUED}) for finished in FINISHED_STATES},
}
INITIAL_STATES = frozenset({S.QUEUED, S.STARTING, S.RUNNING})


class InvalidTransition(Exception):
    """A bug: code asked for a transition the table forbids."""


def check_transition(old: RunnerState | None, new: RunnerState) -> None:
    """Raise :class:`InvalidTransition` unless ``old -> new`` is allowed (None: a new runner)."""
    allowed = INITIAL_STATES if old is None else TRANSITIONS[old]
    if new not in allowed:
        raise InvalidTransition(f"runner cannot go from {old} to {new}")
