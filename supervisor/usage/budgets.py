"""Budgets: limits on tokens and/or dollars per scope and period, and what happens at them.

A scope is ``global``, ``project:NAME``, ``agent:NAME`` or ``account:DIR`` (an account's key,
``supervisor.agents.accounts``: given by its label or directory, kept as the directory); a
period is a calendar ``daily`` / ``weekly`` / ``monthly`` in the user's zone, or ``5h``: the
scope's current 5-hour block, as Claude bills it (it starts with the first response after a
quiet block and resets 5 h later). What a period has used is always summed from the ledger
over its window, so a supervisor that was off over midnight is still right. Thresholds and
rollovers are reported once per period: a ``budget_mark`` row, written in the transaction of
the event that reports it, says so.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from supervisor.agents import accounts
from supervisor.api.schemas import iso
from supervisor.core import events
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.storage import queries
from supervisor.storage.models import DB, Budget
from supervisor.usage import periods
from supervisor.usage.periods import BLOCK, PERIODS

ACTIONS = ("warn", "block", "stop")
DEFAULT_WARN = (75, 90)
ROLLOVER_CATCH_UP = 31  # at most this many missed periods are summarised after downtime
KNOWN_AGENTS = ("claude", "codex", "aider", "gemini")


@dataclass(frozen=True)
class Calendar:
    zone: ZoneInfo
    week_start: int = 0  # 0 = Monday


def check_scope(scope: str, env: Mapping[str, str] | None = None) -> str:
    """The scope as stored: an account named by its label or directory becomes
    ``account:<its key>`` (404 when there is no such account)."""
    kind, _, name = scope.partition(":")
    if kind == "account" and name:
        found = accounts.known(os.environ if env is None else env, queries.accounts_used())
        return f"account:{accounts.find(name, found).key}"
    if scope == "global" or (kind in ("project", "agent") and name):
        return scope
    raise ApiError(
        ErrorCode.INVALID,
        f"Budget scope '{scope}' is not one of global, project:NAME, agent:NAME or "
        "account:NAME.",
    )


def check_period(period: str) -> str:
    if period not in PERIODS:
        raise ApiError(
            ErrorCode.INVALID, f"Budget period '{period}' is not one of {', '.join(PERIODS)}."
        )
    return period


def runner_agent(profile: str | None, command: list[str]) -> str:
    """Which agent a runner is: its built-in profile's, else its program's name."""
    if profile in KNOWN_AGENTS:
        return profile
    program = os.path.basename(command[0]) if command else ""
    return os.path.splitext(program)[0].lower() or (profile or "")


def window(budget: Budget, now: float, cal: Calendar) -> tuple[float, float] | None:
    """The budget's current period as (start, reset), or None for a 5-hour budget whose
    scope is idle (its next block starts with its next response)."""
    if budget.period != "5h":
        return periods.calendar_window(budget.period, now, cal.zone, cal.week_start)
    stamps = queries.usage_times(budget.scope, now - 2 * BLOCK, now)
    # Blocks chain from the last silence of 5 h; two blocks back always reaches one or the
    # start of a block that is over (a block lasts 5 h, so a chain restarts within 10 h).
    found = periods.blocks(stamps)
    if not found:
        return None
    start, last = found[-1]
    if now >= start + BLOCK or now - last >= BLOCK:
        return None
    return start, start + BLOCK


def used(budget: Budget, start: float, end: float) -> tuple[int, float]:
    """Tokens and dollars the budget's scope used in [start, end): a 5-hour window from the
    rows (exact to the second, and small), a calendar one from the buckets (it starts on a
    quarter hour: they are exact)."""
    return queries.scope_usage(budget.scope, start, end, exact=budget.period == "5h")


@dataclass
class Status:
    budget: Budget
    start: float | None  # None: a 5-hour budget between blocks
    resets_at: float | None
    tokens: int
    usd: float
    now: float

    @property
    def percent(self) -> float:
        """The larger of the token and dollar shares of their limits."""
        shares = []
        if self.budget.limit_tokens:
            shares.append(100.0 * self.tokens / self.budget.limit_tokens)
        if self.budget.limit_usd:
            shares.append(100.0 * self.usd / self.budget.limit_usd)
        return max(shares, default=0.0)

    @property
    def spent(self) -> bool:
        return self.percent >= 100.0

    def projected_exhaustion(self) -> float | None:
        """When the limit is reached at the period's average burn rate so far, if before
        the reset."""
        if self.start is None or self.resets_at is None or self.spent:
            return None
        elapsed = self.now - self.start
        share = self.percent / 100.0
        if elapsed <= 0 or share <= 0:
            return None
        at = self.start + elapsed / share
        return at if at < self.resets_at else None

    def describe(self) -> str:
        """'412,300 / 400,000 tokens' and/or '$12.40 / $10.00'."""
        parts = []
        if self.budget.limit_tokens:
            parts.append(f"{self.tokens:,} / {self.budget.limit_tokens:,} tokens")
        if self.budget.limit_usd:
            parts.append(f"${self.usd:,.2f} / ${self.budget.limit_usd:,.2f}")
        return ", ".join(parts)

    def as_json(self) -> dict[str, Any]:
        b = self.budget
        return {
            "scope": b.scope,
            "shown_scope": shown_scope(b.scope),
            "period": b.period,
            "limit_tokens": b.limit_tokens,
            "limit_usd": b.limit_usd,
            "warn": b.warn,
            "action": b.action,
            "used_tokens": self.tokens,
            "used_usd": round(self.usd, 6),
            "percent": round(self.percent, 2),
            "period_start": iso(self.start),
            "resets_at": iso(self.resets_at),
            "projected_exhaustion_at": iso(self.projected_exhaustion()),
        }


def status(budget: Budget, now: float, cal: Calendar) -> Status:
    span = window(budget, now, cal)
    if span is None:
        return Status(budget, None, None, 0, 0.0, now)
    tokens, usd = used(budget, span[0], now + 1)
    return Status(budget, span[0], span[1], tokens, usd, now)


def name(budget: Budget) -> str:
    """'project:demo daily'; an account's budget by the account's label ('account:work')."""
    return f"{shown_scope(budget.scope)} {budget.period}"


def shown_scope(scope: str) -> str:
    """The scope as people know it: an account by its label, else as stored."""
    kind, _, key = scope.partition(":")
    if kind != "account":
        return scope
    for account in accounts.known(os.environ, queries.accounts_used()):
        if account.key == key:
            return f"account:{account.label}"
    return scope


def when(ts: float, now: float, zone: ZoneInfo) -> str:
    """'00:00 (in 3 h 12 m)' — a reset time as the refusal sentence gives it."""
    local = datetime.fromtimestamp(ts, zone)
    fmt = "%H:%M" if ts - now < 86400 else "%a %d %b %H:%M"
    minutes = max(math.ceil((ts - now) / 60), 0)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    left = " ".join(f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    return f"{local.strftime(fmt)} (in {left or '0 m'})"


def applicable(project: str, agent: str, account: str = "") -> list[Budget]:
    """Budgets that a launch of ``agent`` in ``project`` on ``account`` counts against."""
    scopes = ["global", f"project:{project}", f"agent:{agent}"]
    if account:
        scopes.append(f"account:{account}")
    return queries.budgets_in_scopes(scopes)


def check_launch(project: str, agent: str, now: float, cal: Calendar, account: str = "") -> None:
    """Refuse (ApiError BUDGET_SPENT) a launch that a spent block/stop budget forbids."""
    for budget in applicable(project, agent, account):
        if budget.action == "warn":
            continue
        state = status(budget, now, cal)
        if state.spent:
            resets = (
                f"resets at {when(state.resets_at, now, cal.zone)}"
                if state.resets_at is not None
                else "resets 5 h after its block began"
            )
            raise ApiError(
                ErrorCode.BUDGET_SPENT,
                f"budget {name(budget)} is spent ({state.describe()}); {resets}.",
            )


def set_budget(
    scope: str,
    period: str,
    limit_tokens: int | None,
    limit_usd: float | None,
    warn: Iterable[float] | None,
    action: str | None,
    now: float,
    env: Mapping[str, str] | None = None,
) -> Budget:
    """Create or change the one budget of (scope, period); ``env`` is the supervisor's
    environment (which accounts are the default ones)."""
    scope = check_scope(scope, env)
    check_period(period)
    if limit_tokens is None and limit_usd is None:
        raise ApiError(ErrorCode.INVALID, "A budget needs a limit: give --tokens N and/or --usd X.")
    if any(limit is not None and not limit > 0 for limit in (limit_tokens, limit_usd)):  # NaN
        raise ApiError(ErrorCode.INVALID, "Budget limits must be greater than zero.")
    thresholds = sorted(set(warn)) if warn is not None else list(DEFAULT_WARN)
    if any(not 0 < t < 100 for t in thresholds):
        raise ApiError(ErrorCode.INVALID, "Warn thresholds are percentages between 0 and 100.")
    if action is not None and action not in ACTIONS:
        raise ApiError(
            ErrorCode.INVALID, f"Budget action '{action}' is not one of {', '.join(ACTIONS)}."
        )
    if scope.startswith("project:"):
        queries.project_by_name(scope.partition(":")[2])  # 404 when there is none
    warn_at = [int(t) if float(t).is_integer() else t for t in thresholds]
    return queries.put_budget(scope, period, limit_tokens, limit_usd, warn_at, action, now)


def remove_budget(scope: str, period: str, env: Mapping[str, str] | None = None) -> None:
    """Remove the budget of (scope, period); an account's by its label or directory (or by
    its scope exactly as listed, for an account no profile names any more)."""
    if queries.delete_budget(scope, period):
        return
    if not queries.delete_budget(check_scope(scope, env), period):
        raise ApiError(
            ErrorCode.NOT_FOUND,
            f"There is no {period} budget for {scope}; `stratavore budgets` lists them.",
        )


def evaluate(now: float, cal: Calendar) -> list[Status]:
    """Report each threshold a budget's period has crossed, once; the spent budgets whose
    action is ``stop`` (the caller stops their scope's runners)."""
    to_stop = []
    for budget in queries.all_budgets():
        state = status(budget, now, cal)
        if state.start is None:
            continue
        percent = state.percent
        with DB.atomic():
            for threshold in budget.warn:
                kind = f"warn:{threshold:g}"
                if percent >= threshold and queries.mark_budget(budget.id, state.start, kind, now):
                    events.record(
                        events.BUDGET_THRESHOLD,
                        f"budget {name(budget)} at {threshold:g} %",
                        ts=now,
                        severity="warning",
                        body=f"{state.describe()}; resets at "
                        f"{when(state.resets_at or now, now, cal.zone)}.",
                        data={**state.as_json(), "threshold": threshold},
                    )
            if state.spent and queries.mark_budget(budget.id, state.start, "spent", now):
                events.record(
                    events.BUDGET_SPENT,
                    f"budget {name(budget)} is spent",
                    ts=now,
                    severity="error",
                    body=f"{state.describe()}; action {budget.action}; resets at "
                    f"{when(state.resets_at or now, now, cal.zone)}.",
                    data=state.as_json(),
                )
        if state.spent and budget.action == "stop":
            to_stop.append(state)
    return to_stop


def ended_periods(budget: Budget, now: float, cal: Calendar) -> list[tuple[float, float]]:
    """The budget's periods that ended since it was created, newest last (at most
    ROLLOVER_CATCH_UP of them)."""
    found: list[tuple[float, float]] = []
    if budget.period == "5h":
        stamps = queries.usage_times(budget.scope, budget.created_at, now)
        for start, last in periods.blocks(stamps):
            if now >= start + BLOCK or now - last >= BLOCK:
                found.append((start, start + BLOCK))
        return found[-ROLLOVER_CATCH_UP:]
    start, _ = periods.calendar_window(budget.period, now, cal.zone, cal.week_start)
    while len(found) < ROLLOVER_CATCH_UP:
        previous, end = periods.calendar_window(budget.period, start - 1, cal.zone, cal.week_start)
        if end <= budget.created_at:
            break
        found.append((previous, end))
        start = previous
    return found[::-1]


def rollover(now: float, cal: Calendar) -> int:
    """One summary event for each ended period not yet summarised; how many."""
    count = 0
    for budget in queries.all_budgets():
        for start, end in ended_periods(budget, now, cal):
            tokens, usd = used(budget, start, end)
            state = Status(budget, start, end, tokens, usd, end)
            with DB.atomic():
                if not queries.mark_budget(budget.id, start, "rollover", now):
                    continue
                events.record(
                    events.BUDGET_ROLLOVER,
                    f"budget {name(budget)}: period ended at {state.percent:.0f} %",
                    ts=now,
                    body=f"{state.describe()} from {_day(start, cal)} to {_day(end, cal)}; "
                    "a new period has begun.",
                    data=state.as_json(),
                )
                count += 1
    return count


def _day(ts: float, cal: Calendar) -> str:
    return datetime.fromtimestamp(ts, cal.zone).strftime("%Y-%m-%d %H:%M")


def next_boundary(now: float, cal: Calendar) -> float | None:
    """The next moment a calendar budget's period ends (5-hour blocks end with usage, and
    are summarised by the import that follows)."""
    ends = [
        periods.calendar_window(b.period, now, cal.zone, cal.week_start)[1]
        for b in queries.calendar_budgets()
    ]
    return min(ends, default=None)
