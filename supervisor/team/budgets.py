"""Team budgets: limits on the whole team's spend, stored in the team database and enforced
on every member's machine.

Scopes: ``team`` (everyone), ``team:project:NAME`` (one project, across everyone) and
``member:NAME`` (one member, across their machines); periods ``daily``, ``weekly``
(from Monday) and ``monthly`` in the team's zone (``stratavore.team.zone``). Actions as for
local budgets: ``warn``, ``block`` (a launch on any member's machine is refused), ``stop``
(also each machine stops its runners of that scope after its next push).

What every budget has used, member by member, is one query over the team's days (its usage
summed per day in the team's zone, of which every period is made: :data:`_STATUS`).
:class:`TeamBudgets` caches its answer for a few seconds and keeps the last one in the local
store: with the team database unreachable, the last known totals apply and the sentences say
since when. Its network calls block: never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import peewee as pw

from supervisor.core.errors import ApiError, ErrorCode
from supervisor.storage import queries
from supervisor.storage.models import DB
from supervisor.team import local, membership, server
from supervisor.team.server import TeamError
from supervisor.usage.budgets import ACTIONS, DEFAULT_WARN, when

PERIODS = {"daily": "day", "weekly": "week", "monthly": "month"}  # -> date_trunc's unit
CACHE_S = 5.0  # a launch within this long of the last answer uses it
LAST_KNOWN = "team.budgets"  # the last answer, for when the team database is unreachable

# Every budget with its current period (in the team's zone; the reset computed on local
# wall-clock time, so a DST change is a day, not 24 h) and what each member used in it.
_STATUS = """
SELECT b.id, b.scope, b.period, b.limit_tokens, b.limit_usd, b.warn, b.action,
       extract(epoch FROM w.start), extract(epoch FROM w.reset), t.zone,
       s.member, COALESCE(s.tokens, 0), COALESCE(s.usd, 0)
FROM stratavore.budget b
CROSS JOIN stratavore.team t
CROSS JOIN LATERAL (
    SELECT date_trunc(u.unit, now() AT TIME ZONE t.zone) AT TIME ZONE t.zone AS start,
           (date_trunc(u.unit, now() AT TIME ZONE t.zone) + ('1 ' || u.unit)::interval)
               AT TIME ZONE t.zone AS reset
    FROM (SELECT CASE b.period WHEN 'daily' THEN 'day' WHEN 'weekly' THEN 'week'
                 ELSE 'month' END AS unit) u
) w
LEFT JOIN LATERAL (
    SELECT d.member,
           SUM(d.input_tokens + d.output_tokens + d.cache_creation_tokens
               + d.cache_read_tokens) AS tokens,
           SUM(d.cost_usd) AS usd
    FROM stratavore.usage_day d
    WHERE d.day >= (w.start AT TIME ZONE t.zone)::date
      AND (b.scope = 'team'
           OR (b.scope LIKE 'team:project:%%' AND d.project = substr(b.scope, 14))
           OR (b.scope LIKE 'member:%%' AND d.member = substr(b.scope, 8)))
    GROUP BY d.member
) s ON true
ORDER BY b.id, s.usd DESC NULLS LAST, s.member
"""


def check_scope(scope: str) -> str:
    kind, _, rest = scope.partition(":")
    if (
        scope == "team"
        or (kind == "member" and rest)
        or (scope.startswith("team:project:") and len(scope) > len("team:project:"))
    ):
        return scope
    raise TeamError(
        f"Team budget scope '{scope}' is not one of team, team:project:NAME or member:NAME."
    )


@dataclass
class TeamBudgetStatus:
    """One team budget in its current period: what it allows, what each member used."""

    id: int
    scope: str
    period: str
    limit_tokens: int | None
    limit_usd: float | None
    warn: list[float]
    action: str
    start: float
    resets_at: float
    zone: str
    by_member: list[tuple[str, int, float]] = field(default_factory=list)  # most spent first

    @property
    def tokens(self) -> int:
        return sum(t for _, t, _ in self.by_member)

    @property
    def usd(self) -> float:
        return sum(u for _, _, u in self.by_member)

    @property
    def percent(self) -> float:
        shares = []
        if self.limit_tokens:
            shares.append(100.0 * self.tokens / self.limit_tokens)
        if self.limit_usd:
            shares.append(100.0 * self.usd / self.limit_usd)
        return max(shares, default=0.0)

    @property
    def spent(self) -> bool:
        return self.percent >= 100.0

    def describe(self) -> str:
        """'$512.40 / $500.00: alice $300.10, bob $212.30' (tokens likewise)."""
        parts, who = [], []
        if self.limit_tokens:
            parts.append(f"{self.tokens:,} / {self.limit_tokens:,} tokens")
        if self.limit_usd:
            parts.append(f"${self.usd:,.2f} / ${self.limit_usd:,.2f}")
        for name, tokens, usd in self.by_member:
            if tokens or usd:
                who.append(f"{name} ${usd:,.2f}" if self.limit_usd else f"{name} {tokens:,}")
        return ", ".join(parts) + (": " + ", ".join(who) if who else "")

    def as_json(self) -> dict[str, Any]:
        return {
            **{
                k: getattr(self, k)
                for k in (
                    "id",
                    "scope",
                    "period",
                    "limit_tokens",
                    "limit_usd",
                    "warn",
                    "action",
                    "start",
                    "resets_at",
                    "zone",
                )
            },
            "by_member": [list(item) for item in self.by_member],
            "used_tokens": self.tokens,
            "used_usd": round(self.usd, 6),
            "percent": round(self.percent, 2),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TeamBudgetStatus:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k != "by_member"}
        return cls(**fields, by_member=[tuple(item) for item in data["by_member"]])


@dataclass
class Snapshot:
    """All team budgets as the team database last answered, and when."""

    budgets: list[TeamBudgetStatus]
    fetched_at: float  # epoch seconds
    stale: str | None = None  # why it is not fresh: the team database's error sentence

    def as_json(self) -> dict[str, Any]:
        return {
            "fetched_at": self.fetched_at,
            "stale": self.stale,
            "budgets": [b.as_json() for b in self.budgets],
        }


def fetch(db: pw.Database, now: float | None = None) -> Snapshot:
    """Every team budget with its current spend, in one query."""
    found: dict[int, TeamBudgetStatus] = {}
    for (bid, scope, period, tokens, usd, warn, action, start, reset, zone, member,
         used_tokens, used_usd) in db.execute_sql(_STATUS):  # fmt: skip
        state = found.get(bid)
        if state is None:
            state = found[bid] = TeamBudgetStatus(
                bid, scope, period, tokens, usd, list(warn), action, float(start),
                float(reset), zone,
            )  # fmt: skip
        if member is not None:
            state.by_member.append((member, int(used_tokens), float(used_usd)))
    return Snapshot(list(found.values()), time.time() if now is None else now)


def set_budget(
    db: pw.Database,
    scope: str,
    period: str,
    limit_tokens: int | None,
    limit_usd: float | None,
    warn: list[float] | None = None,
    action: str | None = None,
    by: str | None = None,
) -> None:
    """Create or change the one team budget of (scope, period)."""
    check_scope(scope)
    if period not in PERIODS:
        raise TeamError(
            f"Team budget period '{period}' is not one of {', '.join(PERIODS)} (5-hour blocks "
            "are each account's own: use a local 5h budget)."
        )
    if limit_tokens is None and limit_usd is None:
        raise TeamError("A team budget needs a limit: give --tokens N and/or --usd X.")
    if any(limit is not None and limit <= 0 for limit in (limit_tokens, limit_usd)):
        raise TeamError("Team budget limits must be greater than zero.")
    thresholds = sorted(set(warn)) if warn is not None else list(DEFAULT_WARN)
    if any(not 0 < t < 100 for t in thresholds):
        raise TeamError("Warn thresholds are percentages between 0 and 100.")
    if action is not None and action not in ACTIONS:
        raise TeamError(f"Budget action '{action}' is not one of {', '.join(ACTIONS)}.")
    db.execute_sql(
        "INSERT INTO stratavore.budget (scope, period, limit_tokens, limit_usd, warn, action, "
        "created_by) VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s) ON CONFLICT (scope, period) "
        "DO UPDATE SET limit_tokens = excluded.limit_tokens, limit_usd = excluded.limit_usd, "
        "warn = excluded.warn, action = COALESCE(%s, stratavore.budget.action)",
        (scope, period, limit_tokens, limit_usd, json.dumps(thresholds), action or "warn", by,
         action),
    )  # fmt: skip


def remove_budget(db: pw.Database, scope: str, period: str) -> None:
    cursor = db.execute_sql(
        "DELETE FROM stratavore.budget WHERE scope = %s AND period = %s", (scope, period)
    )
    if cursor.rowcount == 0:
        raise TeamError(
            f"There is no {period} team budget for {scope}; `stratavore team budgets` lists them."
        )


def set_zone(db: pw.Database, zone: str) -> None:
    """The team's zone for its days, weeks and months (an IANA name both ends know)."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise TeamError(f"'{zone}' is not an IANA time zone (e.g. Europe/Berlin).") from None
    if not server.known_zone(db, zone):
        raise TeamError(f"The team database does not know the time zone '{zone}'.")
    from supervisor.team.push import rebuild_days

    with db.atomic():  # the row lock waits for pushes under way (they read the zone FOR SHARE)
        db.execute_sql("UPDATE stratavore.team SET zone = %s", (zone,))
        rebuild_days(db)


def in_scope(scope: str, project: str, member: str) -> bool:
    """Whether a launch (or a runner) of ``project`` by ``member`` counts against ``scope``."""
    if scope == "team":
        return True
    if scope.startswith("team:project:"):
        return scope[len("team:project:") :] == project
    return scope == f"member:{member}"


def local_runners_in_scope(scope: str, member: str) -> list[int]:
    """This machine's active runners that a spent ``stop`` budget of ``scope`` stops (the
    daemon stops them with ``RunnerManager.stop``), oldest first."""
    return [
        rid for rid, project in queries.active_runner_projects() if in_scope(scope, project, member)
    ]


def _since(ts: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M")


class TeamBudgets:
    """The team budgets as this machine enforces them: cached for :data:`CACHE_S`, refreshed
    after every push, the last answer kept locally for when the server cannot be reached.

    Call :meth:`check_launch` from a worker thread (it may ask the server);
    :meth:`check_launch_cached` never blocks (for a caller on the event loop: the push job's
    refresh keeps its answer at most one push interval old)."""

    def __init__(self, ttl: float = CACHE_S, clock: Any = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._snapshot: Snapshot | None = None
        self._fetched = -float("inf")  # clock() of the last answer
        self.link = membership.Link()
        self._lock = threading.Lock()

    def __enter__(self) -> TeamBudgets:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.link.close()

    def refresh(self) -> Snapshot:
        """Ask the team database now; on failure, the last known answer marked stale."""
        member = membership.require_membership()
        with self._lock:
            try:
                try:
                    snapshot = fetch(self.link.get(member))
                except (pw.DatabaseError, pw.InterfaceError) as exc:
                    self.link.close()
                    raise server.explain(exc, member.url) from None
            except TeamError as exc:
                last = self.known()
                snapshot = Snapshot(last.budgets if last else [], last.fetched_at if last else 0,
                                    str(exc))  # fmt: skip
                self._snapshot, self._fetched = snapshot, self.clock()
                return snapshot
            self._snapshot, self._fetched = snapshot, self.clock()
        with DB.atomic():
            queries.put_setting(LAST_KNOWN, snapshot.as_json())
        return snapshot

    @staticmethod
    def last_known() -> Snapshot | None:
        data = queries.setting_value(LAST_KNOWN)
        if data is None:
            return None
        return Snapshot([TeamBudgetStatus.from_json(b) for b in data["budgets"]],
                        data["fetched_at"], data.get("stale"))  # fmt: skip

    def known(self) -> Snapshot | None:
        """The answer in memory, else the last one kept in the local store (None: never
        any); asks no server."""
        return self._snapshot or self.last_known()

    def snapshot(self) -> Snapshot:
        """The cached answer while it is fresh, else a new one (may block)."""
        if self._snapshot is None or self.clock() - self._fetched > self.ttl:
            return self.refresh()
        return self._snapshot

    def check_launch(self, project: str, now: float | None = None) -> None:
        """Refuse (ApiError BUDGET_SPENT, one sentence) a launch in ``project`` that a spent
        team ``block``/``stop`` budget forbids. Blocks on a cold cache: not on the loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("TeamBudgets.check_launch blocks: call it from a worker thread")
        self._check(self.snapshot(), project, now)

    def check_launch_cached(self, project: str, now: float | None = None) -> None:
        """As :meth:`check_launch`, from what is in memory (or last known): never blocks."""
        snapshot = self.known()
        if snapshot is not None:
            self._check(snapshot, project, now)

    async def check_launch_async(self, project: str, now: float | None = None) -> None:
        """:meth:`check_launch` in a worker thread, for a caller on the event loop."""
        await asyncio.to_thread(self.check_launch, project, now)

    def _check(self, snapshot: Snapshot, project: str, now: float | None) -> None:
        member = local.membership()
        if member is None:
            return
        now = time.time() if now is None else now
        for state in snapshot.budgets:
            if state.action == "warn" or not in_scope(state.scope, project, member.member):
                continue
            if state.resets_at <= now:  # a period that has ended since the answer
                continue
            if state.spent:
                zone = ZoneInfo(state.zone)
                stale = ""
                if snapshot.stale:
                    stale = (
                        f" (team totals as of {_since(snapshot.fetched_at, zone)}: the team "
                        "database cannot be reached)"
                    )
                raise ApiError(
                    ErrorCode.BUDGET_SPENT,
                    f"team budget {state.scope} {state.period} is spent ({state.describe()}); "
                    f"resets at {when(state.resets_at, now, zone)}{stale}.",
                )

    def to_stop(self, snapshot: Snapshot | None = None) -> dict[str, list[int]]:
        """Spent ``stop`` budgets and this machine's active runners each one stops."""
        member = local.membership()
        snapshot = snapshot or self.known()
        if member is None or snapshot is None:
            return {}
        now = time.time()
        found = {}
        for state in snapshot.budgets:
            if state.action == "stop" and state.spent and state.resets_at > now:
                runners = local_runners_in_scope(state.scope, member.member)
                if runners:
                    found[f"{state.scope} {state.period}"] = runners
        return found
