"""The running supervisor's side of the team: one job that pushes, then re-reads the team
budgets, reports their thresholds once per period, and stops the local runners a spent
``stop`` budget stops.

Wiring (``supervisor.daemon``): a job every ``team_push_interval`` seconds awaits
:meth:`TeamService.push_round`, which runs :meth:`TeamService.run_once` in a worker thread
(doing nothing while the data dir is in no team) and then stops each runner of its answer;
a launch guard beside the local budgets' calls :meth:`TeamService.check_launch`, which asks
only what is in memory or last known (``TeamBudgets.check_launch_cached``): never the
network, never blocking the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from supervisor.core import events
from supervisor.core.errors import ApiError
from supervisor.storage import queries
from supervisor.storage.models import DB
from supervisor.team import local
from supervisor.team.budgets import Snapshot, TeamBudgets
from supervisor.team.push import Pusher, PushResult
from supervisor.team.server import TeamError
from supervisor.usage.budgets import when

if TYPE_CHECKING:
    from supervisor.storage.writes import Writes

log = logging.getLogger("stratavore.team")
CLOSE_WAIT_S = 5.0  # a stopping supervisor waits this long for a round under way
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
        self._round: asyncio.Future[TeamRound] | None = None  # the daemon's, under way

    def close(self) -> None:
        self.pusher.close()
        self.budgets.close()

    def check_launch(
        self, project: str, _profile: str | None, _argv: list[str], now: float
    ) -> None:
        """The launch guard: refuse (409 ``budget_spent``, one sentence) a launch in
        ``project`` that a spent team ``block``/``stop`` budget forbids, from the totals in
        memory or last known; never blocks (it runs on the loop)."""
        self.budgets.check_launch_cached(project, now)

    async def push_round(self, writes: Writes, stop: Callable[[int], object]) -> TeamRound:
        """The daemon's job: one round in a worker thread, its local writes (the outbox and
        its cursor, the last known budgets, threshold events) counted by the write gate as
        this supervisor's own (``worker_writing``); then ``stop(runner_id)``, on the loop, for
        each runner a spent ``stop`` budget stops. A team database or a local store that
        refuses is one warning in the log: the next round tries again."""
        loop = asyncio.get_running_loop()
        this_round: asyncio.Future[TeamRound] | None = None
        try:
            with writes.worker_writing("team push"):
                this_round = self._round = loop.run_in_executor(None, self.run_once)
                # Shielded: the job cancelled at shutdown must not cancel the round that
                # aclose() waits for (the worker thread goes on regardless).
                found = await asyncio.shield(this_round)
        except Exception as exc:
            refused = writes.explain(exc)
            if refused is None and not isinstance(exc, TeamError):
                raise
            why = str(exc) if refused is None else refused.message
            log.warning("team: round not finished: %s", why)
            return TeamRound(error=why)
        finally:
            if this_round is None or this_round.done():  # else aclose() waits for it
                self._round = None
        for budget, runner_ids in found.to_stop.items():
            for runner_id in runner_ids:
                try:
                    stop(runner_id)
                except ApiError as exc:  # it ended meanwhile, or its stop waits to be recorded
                    log.info("team: runner %s: %s", runner_id, exc.message)
                    continue
                log.info("stopped: runner %s (team budget %s spent)", runner_id, budget)
        return found

    async def aclose(self) -> None:
        """Wait a little for a round under way, then close the team database connections."""
        if self._round is not None:  # its outcome was the job's to report: only wait
            await asyncio.wait({self._round}, timeout=CLOSE_WAIT_S)
        await asyncio.get_running_loop().run_in_executor(None, self.close)

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
