"""Runners: lookups, counts, and the writes of the loop's hot paths.

The few statements on hot paths (a state change, a heartbeat flush) are plain SQL compiled
once: peewee builds a 40-column UPDATE in ~0.5 ms, the cached statement runs in ~25 µs.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import peewee as pw

from supervisor.core.errors import not_found
from supervisor.core.states import ACTIVE_STATES, FINISHED_STATES, RunnerState
from supervisor.storage.models import DB, Project, Runner

RUNNER_COLUMNS = [f for f in Runner._meta.sorted_fields if f.name != "id"]


def runner_by_id(runner_id: int) -> Runner:
    try:
        return Runner.get_by_id(runner_id)
    except pw.DoesNotExist:  # the base of Runner.DoesNotExist, which the stubs lack
        raise not_found(f"Runner {runner_id}") from None


def runners_in(states: Iterable[RunnerState]) -> list[Runner]:
    return list(Runner.select().where(Runner.state.in_(list(states))).order_by(Runner.id))


def finished_runners(project: Project | None = None) -> list[Runner]:
    query = Runner.select().where(Runner.state.in_(list(FINISHED_STATES))).order_by(Runner.id)
    if project is not None:
        query = query.where(Runner.project == project)
    return list(query)


def counts_by_state() -> dict[str, int]:
    rows = Runner.select(Runner.state, pw.fn.COUNT(Runner.id)).group_by(Runner.state).tuples()
    counts = {state.value: 0 for state in RunnerState}
    counts.update(dict(rows))  # type: ignore[arg-type]  # peewee's stub: .tuples() keeps the model as the row type
    return counts


def active_counts_by_project() -> dict[str, int]:
    rows = (
        Project.select(Project.name, pw.fn.COUNT(Runner.id))
        .join(
            Runner,
            pw.JOIN.LEFT_OUTER,
            on=((Runner.project == Project.id) & Runner.state.in_(ACTIVE_STATES)),
        )
        .where(Project.archived == False)  # noqa: E712
        .group_by(Project.name)
        .tuples()
    )
    return dict(rows)  # type: ignore[arg-type]  # peewee's stub: .tuples() keeps the model as the row type


def total_restarts() -> int:
    return Runner.select(pw.fn.COALESCE(pw.fn.SUM(Runner.restarts), 0)).scalar()


@functools.cache
def _update_sql(names: tuple[str, ...]) -> str:
    fields = Runner._meta.fields
    sets = ", ".join(f'"{fields[name].column_name}" = ?' for name in names)
    return f'UPDATE "{Runner._meta.table_name}" SET {sets} WHERE "id" = ?'


def update_runner(runner_id: int, **values: Any) -> None:
    """Write only the given columns of one runner."""
    fields = Runner._meta.fields
    params = [fields[name].db_value(value) for name, value in values.items()]
    DB.execute_sql(_update_sql(tuple(values)), [*params, runner_id])


@functools.cache
def _insert_runner_sql() -> str:
    columns = ", ".join(f'"{f.column_name}"' for f in RUNNER_COLUMNS)
    marks = ", ".join("?" for _ in RUNNER_COLUMNS)
    return f'INSERT INTO "{Runner._meta.table_name}" ({columns}) VALUES ({marks})'


def insert_runner(runner: Runner) -> int:
    """Insert a new runner (defaults applied by the model) and return its id."""
    data = runner.__data__  # raw values: a foreign key is its id here, not a fetched row
    params = [f.db_value(data.get(f.name)) for f in RUNNER_COLUMNS]
    return DB.execute_sql(_insert_runner_sql(), params).lastrowid


def store_heartbeats(batch: dict[int, dict[str, Any]]) -> None:
    """Latest heartbeat fields of many runners in one executemany: a thousand agents' second
    of heartbeats costs a few milliseconds of the loop, not one statement each."""
    DB.cursor().executemany(
        'UPDATE "runner" SET "last_heartbeat" = ?, "cpu_percent" = COALESCE(?, "cpu_percent"), '
        '"rss_bytes" = COALESCE(?, "rss_bytes"), "tokens" = COALESCE(?, "tokens") WHERE "id" = ?',
        [
            (v["last_heartbeat"], v.get("cpu_percent"), v.get("rss_bytes"), v.get("tokens"), rid)
            for rid, v in batch.items()
        ],
    )


def sessions_of_runners_without_one() -> dict[int, str]:
    """runner id -> the agent session the usage import attributed to it, for runners of a
    profile that don't know their session yet (agents that pick their own id, like Codex)."""
    rows = DB.execute_sql(
        'SELECT s."runner_id", s."session_id" FROM "usage_session" s '
        'JOIN "runner" r ON r."id" = s."runner_id" '
        'WHERE r."session_id" IS NULL AND r."profile" IS NOT NULL ORDER BY s."rowid"'
    ).fetchall()
    return {runner_id: session_id for runner_id, session_id in rows}  # the latest one wins
