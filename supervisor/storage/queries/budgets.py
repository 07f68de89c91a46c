"""Budgets, the marks of what was reported for their periods, and the usage of a scope.

A scope is ``global``, ``project:NAME``, ``agent:NAME`` or ``account:DIR``
(``supervisor.usage.budgets``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from supervisor.storage.models import DB, Budget, Project


def all_budgets() -> list[Budget]:
    """Every budget, oldest first (the order the API and ``stratavore budgets`` list them in)."""
    return list(Budget.select().order_by(Budget.id))


def budgets_in_scopes(scopes: Iterable[str]) -> list[Budget]:
    return list(Budget.select().where(Budget.scope.in_(list(scopes))).order_by(Budget.id))


def calendar_budgets() -> list[Budget]:
    """The budgets of daily, weekly and monthly periods (not of 5-hour blocks)."""
    return list(Budget.select().where(Budget.period != "5h"))


def put_budget(
    scope: str,
    period: str,
    limit_tokens: int | None,
    limit_usd: float | None,
    warn: list[float],
    action: str | None,
    now: float,
) -> Budget:
    """Create or change the one budget of (scope, period), in one transaction; an ``action``
    of None keeps the budget's own (``warn`` for a new one)."""
    with DB.atomic():
        budget = Budget.get_or_none(scope=scope, period=period)
        if budget is None:
            budget = Budget(scope=scope, period=period, created_at=now)
        budget.limit_tokens = limit_tokens
        budget.limit_usd = limit_usd
        budget.warn = warn
        budget.action = action or budget.action or "warn"
        budget.save()
    return budget


def delete_budget(scope: str, period: str) -> bool:
    """Remove the budget of (scope, period); whether there was one."""
    return bool(Budget.delete().where(Budget.scope == scope, Budget.period == period).execute())


def mark_budget(budget_id: int, period_start: float, kind: str, now: float) -> bool:
    """Record that ``kind`` was reported for the period; False when it already was."""
    cursor = DB.execute_sql(
        'INSERT OR IGNORE INTO "budget_mark" (budget_id, period_start, kind, ts) '
        "VALUES (?, ?, ?, ?)",
        (budget_id, period_start, kind, now),
    )
    return cursor.rowcount == 1


def _scope_filter(scope: str) -> tuple[str, list[Any]]:
    """SQL conditions (after a WHERE) and arguments that keep the usage of ``scope``."""
    kind, _, name = scope.partition(":")
    if kind == "project":
        project = Project.get_or_none(Project.name == name)
        return " AND COALESCE(project_id, 0) = ?", [project.id if project else -1]
    if kind == "agent":
        return " AND agent = ?", [name]
    if kind == "account":
        return " AND account = ?", [name]
    return "", []


def usage_times(scope: str, since: float, until: float) -> list[float]:
    """The times of the scope's responses in [since, until], in order."""
    where, args = _scope_filter(scope)
    return [
        row[0]
        for row in DB.execute_sql(
            f'SELECT ts FROM "usage" WHERE ts >= ? AND ts <= ?{where} ORDER BY ts',
            [since, until, *args],
        )
    ]


def scope_usage(scope: str, start: float, end: float, exact: bool) -> tuple[int, float]:
    """Tokens and dollars the scope used in [start, end): summed from the rows when
    ``exact``, else from the 15-minute buckets (exact for a window on quarter hours)."""
    where, args = _scope_filter(scope)
    table, column = ("usage", "ts") if exact else ("usage_bucket", "start")
    row = DB.execute_sql(
        "SELECT SUM(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens), "
        f'TOTAL(cost_usd) FROM "{table}" WHERE {column} >= ? AND {column} < ?{where}',
        [start, end, *args],
    ).fetchone()
    return int(row[0] or 0), float(row[1] or 0.0)
