"""The usage ledger and the agent sessions seen in it."""

from __future__ import annotations

from typing import Any

from supervisor.storage.models import DB


def tokens_by_agent() -> dict[str, int]:
    """Tokens in the usage ledger per agent (summed over its buckets: cheap)."""
    rows = DB.execute_sql(
        "SELECT agent, SUM(input_tokens + output_tokens + cache_creation_tokens "
        '+ cache_read_tokens) FROM "usage_bucket" GROUP BY agent'
    ).fetchall()
    return {agent: int(total or 0) for agent, total in rows}


def agent_sessions(project_id: int | None, limit: int) -> list[tuple[Any, ...]]:
    """Agent sessions, most recently active first: (session id, agent, project id, runner id,
    first ts, last ts, tokens, cost, one of its log files)."""
    where = 'WHERE s."project_id" = ?' if project_id is not None else ""
    params: list[Any] = [project_id] if project_id is not None else []
    return DB.execute_sql(
        'SELECT s."session_id", s."agent", s."project_id", s."runner_id", MIN(u."ts"), '
        'MAX(u."ts"), COALESCE(SUM(u."input_tokens" + u."output_tokens" + '
        'u."cache_creation_tokens" + u."cache_read_tokens"), 0), '
        'COALESCE(SUM(u."cost_usd"), 0), MAX(f."path") '
        'FROM "usage_session" s LEFT JOIN "usage" u ON u."session_id" = s."session_id" '
        'LEFT JOIN "usage_file" f ON f."id" = u."file_id" '
        f'{where} GROUP BY s."session_id" ORDER BY MAX(u."ts") DESC LIMIT ?',
        [*params, limit],
    ).fetchall()
