"""Named queries, one module per domain: callers never build peewee queries or SQL inline.

``from supervisor.storage import queries`` then ``queries.runner_by_id(...)``: every query of
the domain modules below is offered here by its name, so a caller needs no more than that
import and the name says what it does.

- ``projects``: projects and agent profiles
- ``runners``: runner rows, counts, the loop's hot writes (a state change, heartbeats)
- ``events``: the event outbox's rows
- ``settings``: the settings table
- ``usage``: the usage ledger and agent sessions
"""

from supervisor.storage.queries.events import events_since, insert_event, last_events
from supervisor.storage.queries.projects import (
    list_profiles,
    list_projects,
    profile_by_name,
    project_by_name,
    project_containing,
    project_exists,
)
from supervisor.storage.queries.runners import (
    RUNNER_COLUMNS,
    active_counts_by_project,
    counts_by_state,
    finished_runners,
    insert_runner,
    runner_by_id,
    runners_in,
    sessions_of_runners_without_one,
    store_heartbeats,
    total_restarts,
    update_runner,
)
from supervisor.storage.queries.settings import setting_texts
from supervisor.storage.queries.usage import agent_sessions, tokens_by_agent

__all__ = [
    "RUNNER_COLUMNS",
    "active_counts_by_project",
    "agent_sessions",
    "counts_by_state",
    "events_since",
    "finished_runners",
    "insert_event",
    "insert_runner",
    "last_events",
    "list_profiles",
    "list_projects",
    "profile_by_name",
    "project_by_name",
    "project_containing",
    "project_exists",
    "runner_by_id",
    "runners_in",
    "sessions_of_runners_without_one",
    "setting_texts",
    "store_heartbeats",
    "tokens_by_agent",
    "total_restarts",
    "update_runner",
]
