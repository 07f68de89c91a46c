"""Local ledgers written through the real ledger code, and the totals the tests compare."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from supervisor.storage.models import DB
from supervisor.storage.queries import rebuild_buckets
from supervisor.usage.ledger import Attribution, Ledger
from supervisor.usage.pricing import PriceTable
from supervisor.usage.records import UsageRow
from tests.team.pgcluster import SUPERUSER_PASSWORD, Cluster

SONNET = "claude-sonnet-4-5-20250929"
OPUS = "claude-opus-4-1-20250805"


def rows(
    n: int,
    start: float,
    *,
    prefix: str = "k",
    step: float = 60.0,
    model: str = SONNET,
    cwd: str | None = None,
    tokens: int = 1000,
    agent: str = "claude",
) -> list[UsageRow]:
    """``n`` responses a minute apart (each its own dedupe key)."""
    return [
        UsageRow(
            ts=start + i * step,
            agent=agent,
            model=model,
            input_tokens=tokens,
            output_tokens=tokens // 2,
            cache_creation_tokens=tokens // 4,
            cache_read_tokens=tokens * 2,
            key=f"{agent}:{prefix}:{i}",
            source="test",
            cwd=cwd,
        )
        for i in range(n)
    ]


def earlier_today(span: float) -> float:
    """A start for rows spread over ``span`` seconds that all fall between today's midnight
    (UTC: the test teams' zone) and now, whenever the test runs: daily budgets and reports
    count them. In the first seconds after midnight it waits until there is room."""
    since_midnight = time.time() % 86400
    if since_midnight < span + 2:
        time.sleep(span + 2 - since_midnight)
    now = time.time()
    return now - min(3600.0, now % 86400 - 1)


def record(batch: list[UsageRow]) -> int:
    """Write ``batch`` to the bound local store as an import does; rows written."""
    ledger = Ledger(PriceTable.bundled(), Attribution.load())
    with DB.atomic():
        result = ledger.write(batch)
        rebuild_buckets(result.span)
    return result.written


def local_totals() -> tuple[int, int, float]:
    """(rows, tokens, vendor cost) of the bound local ledger."""
    count, tokens, cost = DB.execute_sql(
        "SELECT COUNT(*), COALESCE(SUM(input_tokens + output_tokens + cache_creation_tokens "
        '+ cache_read_tokens), 0), TOTAL(cost_usd) FROM "usage"'
    ).fetchone()
    return count, tokens, cost


def team_query(pg: Cluster, dbname: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg.url(dbname, password=SUPERUSER_PASSWORD)) as conn:
        return conn.execute(sql, args).fetchall()


def team_totals(pg: Cluster, dbname: str, member: str | None = None) -> dict[str, Any]:
    """What the team database holds: from its rows, its buckets and its days (which must
    agree)."""
    where = "WHERE member = %s" if member else ""
    args = (member,) if member else ()
    tokens = "SUM(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens)"
    (count, row_tokens, row_cost), = team_query(
        pg, dbname, f"SELECT COUNT(*), COALESCE({tokens}, 0), COALESCE(SUM(cost_usd), 0) "
        f"FROM stratavore.usage {where}", *args,
    )  # fmt: skip
    (responses, bucket_tokens, bucket_cost), = team_query(
        pg, dbname, f"SELECT COALESCE(SUM(responses), 0), COALESCE({tokens}, 0), "
        f"COALESCE(SUM(cost_usd), 0) FROM stratavore.usage_bucket {where}", *args,
    )  # fmt: skip
    (day_responses, day_tokens, day_cost), = team_query(
        pg, dbname, f"SELECT COALESCE(SUM(responses), 0), COALESCE({tokens}, 0), "
        f"COALESCE(SUM(cost_usd), 0) FROM stratavore.usage_day {where}", *args,
    )  # fmt: skip
    return {
        "rows": count, "tokens": row_tokens, "cost": row_cost, "responses": responses,
        "bucket_tokens": bucket_tokens, "bucket_cost": bucket_cost,
        "day_responses": day_responses, "day_tokens": day_tokens, "day_cost": day_cost,
    }  # fmt: skip
