"""Provider plan limits: the latest use of each window, per account."""

from __future__ import annotations

from supervisor.storage.models import PlanLimit


def plan_limits() -> list[PlanLimit]:
    """Every recorded window, by account then window (the order ``stratavore limits`` shows)."""
    return list(PlanLimit.select().order_by(PlanLimit.account, PlanLimit.window))


def plan_limits_of(account: str) -> list[PlanLimit]:
    return list(PlanLimit.select().where(PlanLimit.account == account))


def put_plan_limit(
    account: str,
    agent: str,
    window: str,
    used_percent: float,
    resets_at: float | None,
    observed_at: float,
    notified: float,
) -> None:
    """Create or replace the one row of (account, window)."""
    PlanLimit.insert(
        account=account, agent=agent, window=window, used_percent=used_percent,
        resets_at=resets_at, observed_at=observed_at, notified=notified,
    ).on_conflict(
        conflict_target=[PlanLimit.account, PlanLimit.window],
        preserve=[PlanLimit.agent, PlanLimit.used_percent, PlanLimit.resets_at,
                  PlanLimit.observed_at, PlanLimit.notified],
    ).execute()  # fmt: skip
