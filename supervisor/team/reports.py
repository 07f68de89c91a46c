"""Team reports, computed by the team database in SQL: usage per day (week, month) in the
team's zone, optionally by member, project, model or agent. Nothing is pulled to the client
but the answer: the server sums the days it keeps in the team's zone, or, for another zone,
those days corrected by the 15-minute buckets between the two zones' midnights (every zone's
midnight is on a quarter hour, so days are exact), or, for a zone a day away, all its buckets.

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
# A zone whose midnight is within this of the team's is reported from the team's days, moved
# by the buckets in between (4x faster than summing every bucket for +5:30, 2x for +14:00 over
# 1M rows, docs/benchmarks.md); the band must stay shorter than a day, DST moving it by up to
# two hours. Only zones 20 hours or more apart (Kiribati and Samoa) sum every bucket.
NEAR_S = 20 * 3600
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
    table = day = ""
    if zone == team_zone:  # the days the server keeps in the team's zone
        table, day = "usage_day", "day"
        where += ["day >= %(since)s"] * (since is not None)
        where += ["day <= %(until)s"] * (until is not None)
    elif _near(db, zone, team_zone):  # the team's days, moved by the buckets in between
        args["team"] = team_zone
        cursor = db.execute_sql(_near_sql(group, COST_COLUMNS[mode], since, until), args)
    else:  # any other zone: its days from the 15-minute buckets
        table, day = "usage_bucket", "(start AT TIME ZONE %(zone)s)"
        where += ["start >= %(since)s::timestamp AT TIME ZONE %(zone)s"] * (since is not None)
        where += ["start < (%(until)s + 1)::timestamp AT TIME ZONE %(zone)s"] * (until is not None)
    if table:
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


def _near(db: pw.Database, zone: str, team_zone: str) -> bool:
    """Whether ``zone``'s midnight today is within :data:`NEAR_S` of the team zone's."""
    (shift,) = db.execute_sql(
        "SELECT extract(epoch FROM (current_date::timestamp AT TIME ZONE %s) - "
        "(current_date::timestamp AT TIME ZONE %s))",
        (zone, team_zone),
    ).fetchone()
    return abs(float(shift)) <= NEAR_S


def _near_sql(group: str, cost: str, since: date | None, until: date | None) -> str:
    """A report in a zone near the team's, exact across DST changes: each day the server keeps
    in the team's zone, corrected by the buckets between the two zones' midnights (a band a
    few hours wide, read through the buckets' index on their start), which belong to the day
    before or after in the other zone."""
    columns = (*TOKEN_KEYS, cost, "responses")
    summed = ", ".join(f"SUM({c}) AS {c}" for c in columns)
    plus, minus = ", ".join(columns), ", ".join(f"-{c}" for c in columns)
    out = ", ".join(f"SUM({k})::bigint" for k in TOKEN_KEYS)
    first = "%(since)s::date - 1" if since else "(SELECT min(day) FROM stratavore.usage_day)"
    last = "%(until)s::date + 1" if until else "(SELECT max(day) + 1 FROM stratavore.usage_day)"
    kept = ["true"] + ["day >= %(since)s::date - 1"] * bool(since)
    kept += ["day <= %(until)s::date + 1"] * bool(until)
    periods = (
        ["true"] + ["period >= %(since)s"] * bool(since) + ["period <= %(until)s"] * bool(until)
    )
    return f"""
WITH midnights AS (
  SELECT d::date AS day, d::date::timestamp AT TIME ZONE %(team)s AS t0,
         d::date::timestamp AT TIME ZONE %(zone)s AS z0
  FROM generate_series({first}, {last}, interval '1 day') AS d
), bands AS MATERIALIZED (
  SELECT least(t0, z0) AS lo, greatest(t0, z0) AS hi,
         CASE WHEN z0 < t0 THEN day - 1 ELSE day END AS tday,
         CASE WHEN z0 < t0 THEN day ELSE day - 1 END AS zday
  FROM midnights WHERE t0 <> z0
), moved AS (
  SELECT tday, zday, {group} AS grp, {summed}
  FROM bands JOIN stratavore.usage_bucket ON start >= lo AND start < hi GROUP BY 1, 2, 3
)
SELECT date_trunc(%(unit)s, period)::date, grp, {out}, SUM({cost}), SUM(responses)::bigint
FROM (
  SELECT day AS period, {group} AS grp, {plus} FROM stratavore.usage_day
  WHERE {" AND ".join(kept)}
  UNION ALL SELECT tday, grp, {minus} FROM moved
  UNION ALL SELECT zday, grp, {plus} FROM moved
) AS days WHERE {" AND ".join(periods)}
GROUP BY 1, 2 HAVING SUM(responses) <> 0 ORDER BY 1, 2 NULLS LAST"""
