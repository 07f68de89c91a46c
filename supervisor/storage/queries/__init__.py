"""Named queries, one module per domain: callers never build peewee queries or SQL inline.

``from supervisor.storage import queries`` then ``queries.runner_by_id(...)``: every query of
the domain modules below is offered here by its name, so a caller needs no more than that
import and the name says what it does.

- ``projects``: projects and agent profiles
- ``runners``: runner rows, counts, the loop's hot writes (a state change, heartbeats)
- ``events``: the event outbox's rows
- ``settings``: the settings table
- ``usage``: the usage ledger and agent sessions
- ``budgets``: budgets, their marks, and the usage of a scope
- ``notify``: notification channels and the outbox's deliveries
"""

from supervisor.storage.queries.budgets import (
    all_budgets,
    budgets_in_scopes,
    calendar_budgets,
    delete_budget,
    mark_budget,
    put_budget,
    scope_usage,
    usage_times,
)
from supervisor.storage.queries.events import (
    event_heads_after,
    events_by_ids,
    events_since,
    insert_event,
    last_event_id,
    last_events,
)
from supervisor.storage.queries.notify import (
    DueDelivery,
    add_deliveries,
    all_channels,
    channel_by_name,
    channels_signature,
    dead_deliveries,
    delete_channel,
    delivery_batch,
    delivery_by_id,
    due_deliveries,
    fold_deliveries,
    hold_deliveries,
    next_attempt_after,
    put_channel,
    record_attempt,
    requeue_deliveries,
)
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
from supervisor.storage.queries.settings import (
    delete_setting,
    put_setting,
    setting_texts,
    setting_value,
)
from supervisor.storage.queries.usage import (
    agent_sessions,
    tokens_by_agent,
)

__all__ = [
    "RUNNER_COLUMNS",
    "DueDelivery",
    "active_counts_by_project",
    "add_deliveries",
    "agent_sessions",
    "all_budgets",
    "all_channels",
    "budgets_in_scopes",
    "calendar_budgets",
    "channel_by_name",
    "channels_signature",
    "counts_by_state",
    "dead_deliveries",
    "delete_budget",
    "delete_channel",
    "delete_setting",
    "delivery_batch",
    "delivery_by_id",
    "due_deliveries",
    "event_heads_after",
    "events_by_ids",
    "events_since",
    "finished_runners",
    "fold_deliveries",
    "hold_deliveries",
    "insert_event",
    "insert_runner",
    "last_event_id",
    "last_events",
    "list_profiles",
    "list_projects",
    "mark_budget",
    "next_attempt_after",
    "profile_by_name",
    "project_by_name",
    "project_containing",
    "project_exists",
    "put_budget",
    "put_channel",
    "put_setting",
    "record_attempt",
    "requeue_deliveries",
    "runner_by_id",
    "runners_in",
    "scope_usage",
    "sessions_of_runners_without_one",
    "setting_texts",
    "setting_value",
    "store_heartbeats",
    "tokens_by_agent",
    "total_restarts",
    "update_runner",
    "usage_times",
]
