"""The running supervisor's side of the team: one job that pushes, then re-reads the team
budgets, reports their thresholds once per period, and says which local runners a spent
``stop`` budget stops.

Wiring (after the restructuring): the daemon schedules :meth:`TeamService.run_once` every
``interval`` seconds in a worker thread (``loop.run_in_executor``) and stops each runner id
of its answer with ``RunnerManager.stop``; the launch guard (``UsageService.check_launch``)
calls ``service.budgets.check_launch_cached(project)``, which never blocks the loop.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from supervisor.core import events
from supervisor.storage import queries
from supervisor.storage.models import DB
from supervisor.team import local
from supervisor.team.budgets import Snapshot, TeamBudgets
from supervisor.team.push import Pusher, PushResult
from supervisor.team.server import TeamError
from supervisor.usage.budgets import when

log = logging.getLogger("stratavore.team")
PUSH_INTERVAL_S = 30.0  # a stop budget stops every machine's runners within about this long
MARKS = "team.budget_marks"  # thresholds already reported, per budget and period


@dataclass
class TeamRound:
    """What one round did: the push (or why it failed), the budgets, what to stop."""

    push: PushResult | None = None
    error: str | None = None
    snapshot: Snapshot | None = None
    to_stop: dict[str, list[int]] = field(default_factory=dict)
    reported: list[str] = field(default_factory=list)  # thresholds reported as events

    def as_json(self) -> dict[str, Any]:
        return {
            "push": self.push.as_json() if self.push else None,
            "error": self.error,
            "budgets": self.snapshot.as_json() if self.snapshot else None,
            "to_stop": self.to_stop,
            "reported": self.reported,
        }


class TeamService:
    """The push and the team budgets of one data dir (a supervisor's, or a test's)."""

    def __init__(self, batch: int | None = None, ttl: float | None = None) -> None:
        self.pusher = Pusher(batch) if batch else Pusher()
        self.budgets = TeamBudgets(ttl) if ttl is not None else TeamBudgets()

    def close(self) -> None:
        self.pusher.close()
        self.budgets.close()

    def run_once(self, now: float | None = None) -> TeamRound:
        """Push, then read the team budgets (the last known ones if the server is away).
        Blocks on the network: call it from a worker thread."""
        found = TeamRound()
        if local.membership() is None:
            return found
        try:
            found.push = self.pusher.push()
        except TeamError as exc:
            found.error = str(exc)
            log.warning("team: not pushed: %s", exc)
        found.snapshot = self.budgets.refresh()
        found.reported = self._report(found.snapshot, time.time() if now is None else now)
        found.to_stop = self.budgets.to_stop(found.snapshot)
        return found

    def _report(self, snapshot: Snapshot, now: float) -> list[str]:
        """One event per team budget threshold (and 100 %) per period, on this machine."""
        marks = set(queries.setting_value(MARKS) or ())
        current = {f"{b.id}:{b.start:.0f}" for b in snapshot.budgets}
        reported = []
        with DB.atomic():
            for state in snapshot.budgets:
                if state.resets_at <= now:
                    continue
                zone = ZoneInfo(state.zone)
                name = f"team budget {state.scope} {state.period}"
                crossed = [t for t in state.warn if state.percent >= t]
                kinds = [(f"warn:{t:g}", t) for t in crossed]
                if state.spent:
                    kinds.append(("spent", 100))
                for kind, threshold in kinds:
                    mark = f"{state.id}:{state.start:.0f}:{kind}"
                    if mark in marks:
                        continue
                    marks.add(mark)
                    spent = kind == "spent"
                    events.record(
                        events.BUDGET_SPENT if spent else events.BUDGET_THRESHOLD,
                        f"{name} is spent" if spent else f"{name} at {threshold:g} %",
                        ts=now,
                        severity="error" if spent else "warning",
                        body=f"{state.describe()}; action {state.action}; resets at "
                        f"{when(state.resets_at, now, zone)}.",
                        data={**state.as_json(), "team": True, "threshold": threshold},
                    )
                    reported.append(mark)
            # marks of ended periods are dropped: the next period reports afresh
            kept = sorted(m for m in marks if ":".join(m.split(":")[:2]) in current)
            queries.put_setting(MARKS, kept)
        return reported
