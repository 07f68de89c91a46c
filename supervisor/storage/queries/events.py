"""Events: written in the transaction of the change they report (plain SQL: every state
change writes one), read by id."""

from __future__ import annotations

import json
from typing import Any

from supervisor.storage.models import DB, Event


def insert_event(
    ts: float,
    type: str,
    severity: str,
    runner_id: int | None,
    project: str | None,
    title: str,
    body: str,
    data: dict[str, Any],
) -> int:
    cursor = DB.execute_sql(
        'INSERT INTO "event" ("ts", "type", "severity", "runner_id", "project", "title", '
        '"body", "data") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        (
            ts,
            type,
            severity,
            runner_id,
            project,
            title,
            body,
            json.dumps(data, separators=(",", ":")),
        ),
    )
    return cursor.lastrowid


def events_since(since: int, limit: int) -> list[Event]:
    return list(Event.select().where(Event.id > since).order_by(Event.id).limit(limit))


def last_events(count: int) -> list[Event]:
    """The newest ``count`` events, oldest first."""
    newest = list(Event.select().order_by(Event.id.desc()).limit(count))
    return newest[::-1]
