"""What usage reports read: sums of the 15-minute buckets per local day, and of the ledger's
rows per session and in time order for 5-hour blocks.

Reports run over a year of history (a million rows): the sums are made by SQLite, and rows
come back as plain tuples from a cursor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from supervisor.storage.models import DB

# The cost column of each cost mode (pricing.COST_MODES), in the rows and the buckets.
COST_COLUMNS = {"vendor": "cost_usd", "ccusage": "ccusage_cost_usd"}


@dataclass(frozen=True)
class UsageFilter:
    """Which rows (or buckets) a report reads: a time window [low, high), and one project
    (0: usage outside every project), one agent and one account (its key) when given."""

    low: float
    high: float
    project_id: int | None = None
    agent: str | None = None
    account: str | None = None

    def where(self, time_column: str, table: str = "") -> tuple[str, list[Any]]:
        """SQL conditions and arguments for this filter, on the columns of ``table`` (an
        alias) when given."""
        at = f"{table}." if table else ""
        clauses = [f"{at}{time_column} >= ?", f"{at}{time_column} < ?"]
        args: list[Any] = [self.low, self.high]
        if self.project_id is not None:
            clauses.append(f"COALESCE({at}project_id, 0) = ?")
            args.append(self.project_id)
        if self.agent is not None:
            clauses.append(f"{at}agent = ?")
            args.append(self.agent)
        if self.account is not None:
            clauses.append(f"{at}account = ?")
            args.append(self.account)
        return " WHERE " + " AND ".join(clauses), args


def _sums(mode: str, at: str = "") -> str:
    return (
        f"SUM({at}input_tokens), SUM({at}output_tokens), SUM({at}cache_creation_tokens), "
        f"SUM({at}cache_read_tokens), TOTAL({at}{COST_COLUMNS[mode]})"
    )


def bucket_span(only: UsageFilter) -> tuple[int | None, int | None]:
    """The first and last bucket start within the filter (None, None: no usage)."""
    where, args = only.where("start")
    cursor = DB.execute_sql(f'SELECT MIN(start), MAX(start) FROM "usage_bucket"{where}', args)
    return cursor.fetchone()


GROUPS = {"project": "project_id", "account": "account"}  # what a report may have a row per


def day_sums(
    only: UsageFilter, segments: list[tuple[float, int]], mode: str, by: str | None
) -> Iterable[tuple[Any, ...]]:
    """Sums of the buckets per local day and model (and project or account, ``by``): (day
    number since the epoch, model, input, output, cache write, cache read, cost[, project id
    or account key]).

    SQLite finds the day of a bucket itself: ``(start + offset) div 86400`` with the zone's
    offset, which ``segments`` gives as (from, offset) pairs, one per DST period in the
    window; the offset is a CASE over them."""
    where, args = only.where("start")
    offset = " ".join(
        f"WHEN start < {int(nxt)} THEN {off}" for (_, off), (nxt, _) in pairwise(segments)
    )
    offset = f"CASE {offset} ELSE {segments[-1][1]} END" if offset else str(segments[0][1])
    group = f", {GROUPS[by]}" if by is not None else ""
    return DB.execute_sql(
        f"SELECT (start + {offset}) / 86400 AS day, model, {_sums(mode)}{group} "
        f'FROM "usage_bucket"{where} GROUP BY day, model{group}',
        args,
    )


def session_sums(only: UsageFilter, mode: str) -> Iterable[tuple[Any, ...]]:
    """Sums of the rows per agent session and model: (session id, agent, project name, first
    ts, last ts, model, input, output, cache write, cache read, cost)."""
    where, args = only.where("ts", "u")
    return DB.execute_sql(
        f"SELECT u.session_id, u.agent, p.name, MIN(u.ts), MAX(u.ts), u.model, "
        f"{_sums(mode, 'u.')} "
        f'FROM "usage" u LEFT JOIN "project" p ON p.id = u.project_id{where} '
        "AND u.session_id IS NOT NULL GROUP BY u.session_id, u.model",
        args,
    )


def rows_in_order(only: UsageFilter, mode: str) -> list[tuple[Any, ...]]:
    """The rows in time order: (ts, input, output, cache write, cache read, cost, model)."""
    where, args = only.where("ts")
    return DB.execute_sql(
        "SELECT ts, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, "
        f'{COST_COLUMNS[mode]}, model FROM "usage"{where} ORDER BY ts',
        args,
    ).fetchall()
