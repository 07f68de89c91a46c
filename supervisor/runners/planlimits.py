"""The plan limits a supervisor has seen, per account: each change written with its event,
each threshold the user set reported once per window period, and the exact reset a paused
run waits for."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from supervisor.agents import planlimits
from supervisor.agents.planlimits import Window
from supervisor.api.schemas.base import iso
from supervisor.core import events
from supervisor.core.settings import LiveSettings, thresholds_of
from supervisor.storage import queries
from supervisor.storage.models import PlanLimit
from supervisor.storage.writes import Writes

REFRESH_OBSERVED = 60.0  # an unchanged window's observed_at is written again at most this often


@dataclass(eq=False, repr=False)
class PlanLimitBook:
    """Records what agents report of their plan's limits (``supervisor.agents.planlimits``)."""

    writes: Writes
    settings: LiveSettings
    clock: Callable[[], float]

    def observe(
        self,
        account: str,
        agent: str,
        windows: Sequence[Window],
        runner_id: int | None = None,
        project: str | None = None,
    ) -> int:
        """Record ``windows`` of ``account``: a change and its ``plan.limit`` event, and a
        threshold crossed in the window's period its ``plan.threshold`` event, in one
        transaction. The number of windows that changed."""
        if not windows:
            return 0
        now = self.clock()
        before = {row.window: row for row in queries.plan_limits_of(account)}
        thresholds = thresholds_of(self.settings.current.limit_thresholds)
        changed = 0
        with self.writes.transaction():
            for window in windows:
                old = before.get(window.name)
                notified = 0.0 if old is None or _new_period(old, window, now) else old.notified
                crossed = [t for t in thresholds if notified < t <= window.used_percent]
                same = old is not None and (old.used_percent, old.resets_at) == (
                    window.used_percent, window.resets_at
                )  # fmt: skip
                if same and not crossed and old is not None and old.notified == notified:
                    if now - old.observed_at >= REFRESH_OBSERVED:
                        queries.put_plan_limit(
                            account, agent, window.name, window.used_percent,
                            window.resets_at, now, notified,
                        )  # fmt: skip
                    continue
                notified = max(crossed, default=notified)
                queries.put_plan_limit(
                    account, agent, window.name, window.used_percent, window.resets_at, now,
                    notified,
                )  # fmt: skip
                changed += not same
                self._report(account, agent, window, now, same, notified if crossed else None,
                             runner_id, project)  # fmt: skip
        return changed

    def _report(
        self,
        account: str,
        agent: str,
        window: Window,
        now: float,
        same: bool,
        threshold: float | None,
        runner_id: int | None,
        project: str | None,
    ) -> None:
        """The events of one recorded window: ``plan.limit`` when it changed, and
        ``plan.threshold`` when ``threshold`` was crossed in its period."""
        text = planlimits.describe(
            window.name, window.used_percent, window.resets_at, self.settings.zone, now
        )
        data = {
            "account": account,
            "agent": agent,
            "window": window.name,
            "used_percent": window.used_percent,
            "resets_at": window.resets_at,
        }
        if not same:
            events.record(
                events.PLAN_LIMIT, f"{agent} plan {text}", ts=now, severity="debug",
                runner_id=runner_id, project=project, data=data,
            )  # fmt: skip
        if threshold is not None:
            events.record(
                events.PLAN_THRESHOLD,
                f"{agent} plan at {window.used_percent:.0f} % of its "
                f"{planlimits.label(window.name)} limit",
                ts=now,
                severity="error" if window.used_percent >= 100 else "warning",
                runner_id=runner_id,
                project=project,
                body=f"{text} (account {account}; threshold {threshold:g} %).",
                data={**data, "threshold": threshold},
            )

    def exhausted_reset(self, account: str, now: float) -> float | None:
        """When a spent window of ``account`` resets (the latest, if several are spent), as
        the agent itself last reported it; None when none is known to be spent."""
        resets = [
            row.resets_at
            for row in queries.plan_limits_of(account)
            if row.used_percent >= 100 and row.resets_at is not None and row.resets_at > now
        ]
        return max(resets, default=None)


def _new_period(old: PlanLimit, window: Window, now: float) -> bool:
    """Whether ``window`` belongs to a later period than the one ``old`` recorded: the old
    reset has passed, or the use fell (a window's use only grows within its period)."""
    return (old.resets_at is not None and now >= old.resets_at) or (
        window.used_percent < old.used_percent
    )


def known_limits(zone: tzinfo, now: float) -> list[dict[str, Any]]:
    """Every recorded window as the API and ``stratavore limits`` show it
    (``schemas.PlanLimitOut``), its line in local time in ``zone``."""
    return [
        {
            "account": row.account,
            "agent": row.agent,
            "window": row.window,
            "label": planlimits.label(row.window),
            "used_percent": row.used_percent,
            "resets_at": iso(row.resets_at),
            "observed_at": iso(row.observed_at),
            "text": planlimits.describe(row.window, row.used_percent, row.resets_at, zone, now),
        }
        for row in queries.plan_limits()
    ]
