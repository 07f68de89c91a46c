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


def last_event_id() -> int:
    """The id of the newest event (0: none yet)."""
    return DB.execute_sql('SELECT MAX(id) FROM "event"').fetchone()[0] or 0


def event_heads_after(event_id: int, limit: int) -> list[tuple[int, float, str, str]]:
    """(id, ts, type, severity) of up to ``limit`` events after ``event_id``, oldest first:
    plain tuples, what the outbox's fan-out needs of each."""
    return DB.execute_sql(
        'SELECT id, ts, type, severity FROM "event" WHERE id > ? ORDER BY id LIMIT ?',
        (event_id, limit),
    ).fetchall()


def event_rows_by_ids(event_ids: list[int]) -> list[tuple[Any, ...]]:
    """(id, ts, type, severity, title, body, runner_id, project, data as JSON text) of the
    events with these ids: plain tuples, what the outbox's messages are made of (rows, not
    models: it reads thousands a second), in chunks (SQLite binds at most 999 parameters)."""
    found: list[tuple[Any, ...]] = []
    for chunk in range(0, len(event_ids), 900):
        ids = event_ids[chunk : chunk + 900]
        found.extend(
            DB.execute_sql(
                "SELECT id, ts, type, severity, title, body, runner_id, project, data "
                f'FROM "event" WHERE id IN ({",".join("?" * len(ids))})',
                ids,
            ).fetchall()
        )
    return found
