"""Team reports, computed by the team database in SQL: usage per day (week, month) in the
team's zone, optionally by member, project, model or agent. Nothing is pulled to the client
but the answer: the server sums the days it keeps in the team's zone, or, for another zone,
its 15-minute buckets (``date_trunc`` of each bucket's start in that zone; every zone's
midnight is on a quarter hour, so days are exact).

Rows use the local reports' keys (``date``/``week``/``month``, the four token kinds,
``total_tokens``, ``cost_usd``) plus ``group`` and ``responses``; a report has ``totals``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import peewee as pw

from supervisor.team import server
from supervisor.team.server import TeamError
from supervisor.usage.reports import COST_COLUMNS, TOKEN_KEYS

UNITS = {"daily": ("day", "date"), "weekly": ("week", "week"), "monthly": ("month", "month")}
GROUPS = {"member": "member", "project": "NULLIF(project, '')", "model": "model", "agent": "agent"}


def report(
    db: pw.Database,
    kind: str = "daily",
    by: str | None = None,
    since: date | None = None,
    until: date | None = None,
    zone: str | None = None,
    mode: str = "vendor",
) -> dict[str, Any]:
    """The team's usage per period (``since``..``until``, local dates, inclusive), in
    ``zone`` (default: the team's), one row per period and group."""
    if kind not in UNITS:
        raise TeamError(f"Team report '{kind}' is not one of {', '.join(UNITS)}.")
    if by is not None and by not in GROUPS:
        raise TeamError(f"--by takes one of {', '.join(GROUPS)}, not '{by}'.")
    if mode not in COST_COLUMNS:
        raise TeamError(f"Cost mode '{mode}' is not one of {', '.join(COST_COLUMNS)}.")
    unit, label = UNITS[kind]
    team_zone = db.execute_sql("SELECT zone FROM stratavore.team").fetchone()[0]
    if zone is None:
        zone = team_zone
    elif not server.known_zone(db, zone):
        raise TeamError(f"The team database does not know the time zone '{zone}'.")
    group = GROUPS[by] if by else "NULL"
    tokens = ", ".join(f"SUM({k})::bigint" for k in TOKEN_KEYS)
    where, args = ["responses <> 0"], {"zone": zone, "unit": unit, "since": since, "until": until}
    if zone == team_zone:  # the days the server keeps in the team's zone
        table, day = "usage_day", "day"
        where += ["day >= %(since)s"] * (since is not None)
        where += ["day <= %(until)s"] * (until is not None)
    else:  # any other zone: its days from the 15-minute buckets
        table, day = "usage_bucket", "(start AT TIME ZONE %(zone)s)"
        where += ["start >= %(since)s::timestamp AT TIME ZONE %(zone)s"] * (since is not None)
        where += ["start < (%(until)s + 1)::timestamp AT TIME ZONE %(zone)s"] * (until is not None)
    cursor = db.execute_sql(
        f"SELECT date_trunc(%(unit)s, {day})::date AS period, {group} AS grp, {tokens}, "
        f"SUM({COST_COLUMNS[mode]}), SUM(responses)::bigint FROM stratavore.{table} "
        f"WHERE {' AND '.join(where)} GROUP BY 1, 2 ORDER BY 1, 2 NULLS LAST",
        args,
    )
    rows = []
    for period, grp, *sums, cost, responses in cursor:
        row: dict[str, Any] = {label: period.isoformat(), "group": grp}
        row.update(zip(TOKEN_KEYS, (int(s) for s in sums), strict=True))
        row["total_tokens"] = sum(int(s) for s in sums)
        row["cost_usd"] = round(float(cost), 6)
        row["responses"] = int(responses)
        rows.append(row)
    totals = {k: sum(r[k] for r in rows) for k in (*TOKEN_KEYS, "total_tokens", "responses")}
    totals["cost_usd"] = round(sum(r["cost_usd"] for r in rows), 6)
    return {"kind": kind, "by": by, "zone": zone, "mode": mode, "rows": rows, "totals": totals}
