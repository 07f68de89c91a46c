"""Usage reports from the ledger: daily, weekly, monthly, per session, and 5-hour blocks.

Calendar reports sum the 15-minute buckets (a year of history is a few tens of thousands of
rows), grouped by local day in the requested zone. Sessions and blocks read the rows.
JSON rows use ccusage-like keys in snake case (``date``/``week``/``month``/``session_id``/
``block_start``, the four token kinds, ``total_tokens``, ``cost_usd``, ``models``) and a
report carries a ``totals`` object.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from supervisor.agents import accounts
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.storage import queries
from supervisor.storage.queries.reports import COST_COLUMNS, UsageFilter
from supervisor.usage import periods
from supervisor.usage.periods import BLOCK

KINDS = ("daily", "weekly", "monthly", "session", "blocks")
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
TOKEN_KEYS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")


@dataclass(frozen=True)
class Query:
    zone: ZoneInfo
    since: date | None = None  # local dates, inclusive
    until: date | None = None
    project: str | None = None
    agent: str | None = None
    week_start: int = 0  # 0 = Monday
    mode: str = "vendor"  # which cost: one of pricing.COST_MODES
    account: str | None = None  # an account's label or directory (agents.accounts)

    def window(self) -> tuple[float, float]:
        low = periods.midnight(self.since, self.zone) if self.since else float("-inf")
        high = (
            periods.midnight(self.until + timedelta(days=1), self.zone)
            if self.until
            else float("inf")
        )
        return low, high

    def rows(self) -> UsageFilter:
        """Which rows (or buckets) this query reads (404 for a project there is none of)."""
        low, high = self.window()
        project = queries.project_by_name(self.project) if self.project is not None else None
        account = None
        if self.account is not None:
            known = accounts.known(os.environ, queries.accounts_used())
            account = accounts.find(self.account, known).key
        return UsageFilter(low, high, project.id if project else None, self.agent, account)


def parse_mode(text: str, flag: str) -> str:
    """A --mode value: one of the cost modes."""
    if text not in COST_COLUMNS:
        raise ApiError(
            ErrorCode.INVALID, f"{flag} is one of {', '.join(COST_COLUMNS)}, not '{text}'."
        )
    return text


def parse_day(text: str, flag: str) -> date:
    """A --since/--until value: YYYY-MM-DD or YYYYMMDD."""
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ApiError(ErrorCode.INVALID, f"{flag} takes a date as YYYY-MM-DD, not '{text}'.")


class _Total:
    __slots__ = ("cost", "first", "last", "models", "tokens")

    def __init__(self) -> None:
        self.tokens = [0, 0, 0, 0]
        self.cost = 0.0
        self.models: set[str] = set()
        self.first = self.last = 0.0

    def add(self, row: Sequence[Any], model: str | None) -> None:
        tokens = self.tokens
        for i in range(4):
            tokens[i] += row[i] or 0
        self.cost += row[4] or 0.0
        if model is not None:
            self.models.add(model)

    def as_json(self) -> dict[str, Any]:
        fields: dict[str, Any] = dict(zip(TOKEN_KEYS, self.tokens, strict=True))
        fields["total_tokens"] = sum(self.tokens)
        fields["cost_usd"] = round(self.cost, 6)
        fields["models"] = sorted(self.models)
        return fields


def _report(label: str, groups: dict[Any, _Total], extra: Callable[[Any, _Total], dict]) -> dict:
    totals = _Total()
    rows = []
    for key in sorted(groups, key=_sort_key):
        group = groups[key]
        rows.append({label: key, **group.as_json(), **extra(key, group)})
        totals.add((*group.tokens, group.cost), None)
    total = totals.as_json()
    del total["models"]
    return {"rows": rows, "totals": total}


def _sort_key(key: Any) -> Any:
    """Group keys sort by period, then project name (usage outside projects first)."""
    return (key[0], key[1] or "") if isinstance(key, tuple) else key


def calendar_report(kind: str, query: Query, by: str | None = None) -> dict[str, Any]:
    """``daily`` | ``weekly`` | ``monthly`` rows keyed ``date`` | ``week`` (its first day) |
    ``month`` (YYYY-MM), in ``query.zone``; ``by`` ``project``: one row per period and project
    (``project`` is null for usage outside every project); ``account``: one per period and
    account (``account`` its label, ``account_dir`` its directory; both null for agents
    without accounts).

    SQLite sums the buckets per local day itself: the day of a bucket is ``(start + offset)
    div 86400`` with the zone's offset, which changes only at DST transitions, so the offset
    is a CASE over the few transitions in the window, and Python only sees one row per day
    and model."""
    only = query.rows()
    low, high = queries.bucket_span(only)
    if low is None or high is None:
        return _report("date", {}, lambda _key, _group: {})
    segments = periods.offset_segments(query.zone, low, high)
    cursor = queries.day_sums(only, segments, query.mode, by)
    names: dict[Any, str | None] = {}
    if by == "project":
        names = {p.id: p.name for p in queries.list_projects(include_archived=True)}
    elif by == "account":
        names = _account_labels()
    label = {"daily": "date", "weekly": "week", "monthly": "month"}[kind]
    keys: dict[int, str] = {}
    groups: dict[Any, _Total] = {}
    for number, model, *sums in cursor:
        key = keys.get(number)
        if key is None:
            day = date.fromordinal(EPOCH_ORDINAL + number)
            if kind == "daily":
                key = day.isoformat()
            elif kind == "weekly":
                key = periods.period_start_day("weekly", day, query.week_start).isoformat()
            else:
                key = day.strftime("%Y-%m")
            keys[number] = key
        if by is None:
            group_key: Any = key
        else:  # a project by its name (it is known by it); an account by its key
            group = sums.pop()
            group_key = (key, names.get(group) if by == "project" else group)
        total = groups.get(group_key)
        if total is None:
            groups[group_key] = total = _Total()
        total.add(sums, model)
    if by is None:
        return _report(label, groups, lambda _key, _group: {})

    def extra(key: tuple[str, Any], _group: _Total) -> dict[str, Any]:
        if by == "project":
            return {label: key[0], "project": key[1]}
        return {label: key[0], "account": names.get(key[1]), "account_dir": key[1] or None}

    report = _report("key", groups, extra)
    for row in report["rows"]:
        del row["key"]
    return report


def _account_labels() -> dict[Any, str | None]:
    """Each account's label by its key (none for usage of agents without accounts)."""
    found = accounts.known(os.environ, queries.accounts_used())
    return {"": None, **{account.key: account.label for account in found}}


def _local(ts: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, zone).isoformat(timespec="seconds")


def session_report(query: Query) -> dict[str, Any]:
    """One row per agent session: where it ran, when, and what it used."""
    cursor = queries.session_sums(query.rows(), query.mode)
    groups: dict[str, _Total] = {}
    about: dict[str, tuple[str, str | None]] = {}
    for session_id, agent, project, first, last, model, *sums in cursor:
        group = groups.get(session_id)
        if group is None:
            groups[session_id] = group = _Total()
            group.first, group.last = first, last
            about[session_id] = (agent, project)
        group.first, group.last = min(group.first, first), max(group.last, last)
        group.add(sums, model)

    def extra(session_id: str, group: _Total) -> dict[str, Any]:
        agent, project = about[session_id]
        return {
            "agent": agent,
            "project": project,
            "first_activity": _local(group.first, query.zone),
            "last_activity": _local(group.last, query.zone),
        }

    report = _report("session_id", groups, extra)
    report["rows"].sort(key=lambda row: row["last_activity"])
    return report


def block_report(query: Query, now: float) -> dict[str, Any]:
    """5-hour billing blocks, with burn rate and projection for the one still running."""
    rows = queries.rows_in_order(query.rows(), query.mode)
    out = []
    totals = _Total()
    spans = periods.blocks([row[0] for row in rows])
    i = 0
    for start, last in spans:
        block = _Total()
        while i < len(rows) and rows[i][0] <= last:
            block.add(rows[i][1:6], rows[i][6])
            i += 1
        totals.add((*block.tokens, block.cost), None)
        fields = block.as_json()
        active = now < start + BLOCK and now - last < BLOCK
        first_ts = max(start, _first_in(rows, start))
        minutes = max((last - first_ts) / 60, 1.0)
        burn = fields["total_tokens"] / minutes
        cost_rate = block.cost / minutes
        remaining = max(start + BLOCK - now, 0.0) / 60 if active else 0.0
        out.append({
            "block_start": _local(start, query.zone),
            "block_end": _local(start + BLOCK, query.zone),
            "last_activity": _local(last, query.zone),
            "active": active,
            **fields,
            "burn_rate_tokens_per_minute": round(burn, 1),
            "cost_per_hour_usd": round(cost_rate * 60, 6),
            "projected_total_tokens": round(fields["total_tokens"] + burn * remaining),
            "projected_cost_usd": round(block.cost + cost_rate * remaining, 6),
        })  # fmt: skip
    total = totals.as_json()
    del total["models"]
    return {"rows": out, "totals": total}


def _first_in(rows: list[tuple[Any, ...]], start: float) -> float:
    """The first response at or after ``start`` (rows sorted by time)."""
    low, high = 0, len(rows)
    while low < high:
        mid = (low + high) // 2
        if rows[mid][0] < start:
            low = mid + 1
        else:
            high = mid
    return rows[low][0] if low < len(rows) else start


def report(kind: str, query: Query, now: float, by: str | None = None) -> dict[str, Any]:
    if kind in ("daily", "weekly", "monthly"):
        return calendar_report(kind, query, by)
    if kind == "session":
        return session_report(query)
    if kind == "blocks":
        return block_report(query, now)
    raise ApiError(
        ErrorCode.NOT_FOUND, f"There is no '{kind}' report; use one of {', '.join(KINDS)}."
    )
