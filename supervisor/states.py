"""The runner lifecycle: states, named groups, and the one table of allowed transitions.

::

    queued ──> starting ──> running ──> stopping ──> stopped
                  │  ▲         │
                  │  └ backoff ┘ (restart policy; early exits count toward max_retries)
                  └──> exited | failed | fatal           (lost: vanished while unobserved)

A change of state is only ever made through :func:`check_transition`, and every change is
written together with the event that reports it (see ``supervisor.runners``).
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


S = RunnerState

ACTIVE_STATES = frozenset({S.QUEUED, S.STARTING, S.RUNNING, S.BACKOFF, S.STOPPING})
FINISHED_STATES = frozenset({S.STOPPED, S.EXITED, S.FAILED, S.FATAL, S.LOST})
# States that hold a slot under the concurrency caps (queued waits for one).
SLOT_STATES = frozenset({S.STARTING, S.RUNNING, S.BACKOFF, S.STOPPING})
# States in which a process of the runner should exist.
PROCESS_STATES = frozenset({S.STARTING, S.RUNNING, S.STOPPING})

TRANSITIONS: dict[RunnerState, frozenset[RunnerState]] = {
    S.QUEUED: frozenset({S.STARTING, S.STOPPED}),
    S.STARTING: frozenset({S.RUNNING, S.BACKOFF, S.STOPPING, S.EXITED, S.FAILED, S.FATAL, S.LOST}),
    S.RUNNING: frozenset({S.BACKOFF, S.STOPPING, S.EXITED, S.FAILED, S.LOST}),
    S.BACKOFF: frozenset({S.STARTING, S.STOPPED}),
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
