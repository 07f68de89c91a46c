"""The local side of the team ledger (``supervisor/team``): the team outbox, the rows a push
reads, this machine's active runners by project, and the ledger's totals that OTLP exports.

The outbox is made when a data dir joins a team and dropped when it leaves (no local
migration: a data dir in no team carries none of it). SQLite triggers add one
``team_outbox`` row (kind, local id) in the very transaction that inserts or changes a usage
row, records a budget crossing (``budget.*`` events) or changes what a runner's summary
shows. The team database's own queries (PostgreSQL) are in ``supervisor/team/``.
"""

from __future__ import annotations

from typing import Any

from supervisor.core.states import ACTIVE_STATES
from supervisor.storage.models import DB

TEAM_TRIGGERS = {
    "team_usage_insert": 'AFTER INSERT ON "usage" BEGIN '
    "INSERT INTO team_outbox (kind, ref) VALUES ('usage', new.id); END",
    "team_usage_update": 'AFTER UPDATE ON "usage" BEGIN '
    "INSERT INTO team_outbox (kind, ref) VALUES ('usage', new.id); END",
    "team_event_insert": "AFTER INSERT ON \"event\" WHEN new.type LIKE 'budget.%' BEGIN "
    "INSERT INTO team_outbox (kind, ref) VALUES ('event', new.id); END",
    "team_runner_insert": 'AFTER INSERT ON "runner" BEGIN '
    "INSERT INTO team_outbox (kind, ref) VALUES ('runner', new.id); END",
    # heartbeats, samples and log offsets change a runner every second: only what a summary
    # shows queues it
    "team_runner_update": 'AFTER UPDATE ON "runner" WHEN old.state IS NOT new.state OR '
    "old.tokens IS NOT new.tokens OR old.started_at IS NOT new.started_at OR "
    "old.ended_at IS NOT new.ended_at OR old.exit_code IS NOT new.exit_code BEGIN "
    "INSERT INTO team_outbox (kind, ref) VALUES ('runner', new.id); END",
}
_BACKFILL = (
    "INSERT INTO team_outbox (kind, ref) SELECT 'usage', id FROM \"usage\" ORDER BY id",
    "INSERT INTO team_outbox (kind, ref) SELECT 'event', id FROM \"event\" "
    "WHERE type LIKE 'budget.%' ORDER BY id",
    "INSERT INTO team_outbox (kind, ref) SELECT 'runner', id FROM \"runner\" ORDER BY id",
)


def install_team_outbox(backfill: bool) -> None:
    """Create the outbox and its triggers where missing; with ``backfill``, queue the whole
    local history afresh (inside the caller's transaction)."""
    DB.execute_sql(
        "CREATE TABLE IF NOT EXISTS team_outbox ("
        "seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, ref INTEGER NOT NULL)"
    )
    for name, body in TEAM_TRIGGERS.items():
        DB.execute_sql(f'CREATE TRIGGER IF NOT EXISTS "{name}" {body}')
    if backfill:
        DB.execute_sql("DELETE FROM team_outbox")
        for statement in _BACKFILL:
            DB.execute_sql(statement)


def remove_team_outbox() -> None:
    for name in TEAM_TRIGGERS:
        DB.execute_sql(f'DROP TRIGGER IF EXISTS "{name}"')
    DB.execute_sql("DROP TABLE IF EXISTS team_outbox")


def team_triggers() -> set[str]:
    """The names of the team triggers the database has."""
    rows = DB.execute_sql(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'team_%'"
    )
    return {row[0] for row in rows}


def team_outbox_size() -> int:
    """Outbox rows (0 without an outbox: in no team)."""
    if not DB.table_exists("team_outbox"):
        return 0
    return DB.execute_sql("SELECT COUNT(*) FROM team_outbox").fetchone()[0]


def team_outbox_batch(limit: int) -> list[tuple[int, str, int]]:
    """The oldest ``limit`` outbox rows: (seq, kind, local id)."""
    return list(
        DB.execute_sql("SELECT seq, kind, ref FROM team_outbox ORDER BY seq LIMIT ?", (limit,))
    )


def drop_team_outbox_until(last_seq: int) -> None:
    DB.execute_sql("DELETE FROM team_outbox WHERE seq <= ?", (last_seq,))


def team_usage_rows(span: tuple[int, int]) -> list[tuple[Any, ...]]:
    """The current state of the usage rows the outbox names in ``span`` (seqs, inclusive), in
    the order of the team's ``COPY``: source (the agent), dedupe, ts, agent, model, project
    name, the four token kinds, both costs, session id, runner id."""
    return list(
        DB.execute_sql(
            "SELECT u.agent, u.dedupe, u.ts, u.agent, u.model, p.name, u.input_tokens, "
            "u.output_tokens, u.cache_creation_tokens, u.cache_read_tokens, u.cost_usd, "
            'u.ccusage_cost_usd, u.session_id, u.runner_id FROM "usage" u '
            "LEFT JOIN project p ON p.id = u.project_id WHERE u.id IN (SELECT DISTINCT ref "
            "FROM team_outbox WHERE kind = 'usage' AND seq BETWEEN ? AND ?)",
            span,
        )
    )


def team_crossings(span: tuple[int, int]) -> list[tuple[Any, ...]]:
    """The budget events the outbox names in ``span``: (id, ts, type, title, body, data)."""
    return list(
        DB.execute_sql(
            'SELECT e.id, e.ts, e.type, e.title, e.body, e.data FROM "event" e WHERE e.id IN '
            "(SELECT ref FROM team_outbox WHERE kind = 'event' AND seq BETWEEN ? AND ?)",
            span,
        )
    )


def team_runners(span: tuple[int, int]) -> list[tuple[Any, ...]]:
    """The runners the outbox names in ``span``: (id, project, profile, command JSON, state,
    created, started, ended, exit code, tokens, vendor cost of its usage)."""
    return list(
        DB.execute_sql(
            "SELECT r.id, p.name, r.profile, r.command, r.state, r.created_at, r.started_at, "
            'r.ended_at, r.exit_code, r.tokens, (SELECT TOTAL(cost_usd) FROM "usage" '
            'WHERE runner_id = r.id) FROM "runner" r JOIN project p ON p.id = r.project_id '
            "WHERE r.id IN (SELECT ref FROM team_outbox WHERE kind = 'runner' "
            "AND seq BETWEEN ? AND ?)",
            span,
        )
    )


def active_runner_projects() -> list[tuple[int, str]]:
    """This machine's active runners and their projects' names, oldest first."""
    marks = ",".join("?" * len(ACTIVE_STATES))
    return list(
        DB.execute_sql(
            f'SELECT r.id, p.name FROM "runner" r JOIN "project" p ON p.id = r.project_id '
            f"WHERE r.state IN ({marks}) ORDER BY r.id",
            sorted(ACTIVE_STATES),
        )
    )


def usage_by_project_model_agent() -> list[tuple[Any, ...]]:
    """Ledger totals per (project name or '', model, agent), from the buckets: the four token
    kinds and the vendor cost."""
    return list(
        DB.execute_sql(
            "SELECT COALESCE(p.name, ''), b.model, b.agent, SUM(b.input_tokens), "
            "SUM(b.output_tokens), SUM(b.cache_creation_tokens), SUM(b.cache_read_tokens), "
            'TOTAL(b.cost_usd) FROM "usage_bucket" b LEFT JOIN "project" p '
            "ON p.id = b.project_id GROUP BY 1, 2, 3"
        )
    )
