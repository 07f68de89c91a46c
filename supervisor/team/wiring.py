"""The team's two pieces of a running supervisor, as the daemon starts them: the OTLP export
of its metrics, and the job that pushes to the team ledger and applies its budgets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from supervisor.core.errors import KnownError
from supervisor.storage.writes import Writes
from supervisor.team import otel
from supervisor.team.service import TeamService

# the supervisor's start says what it exports, under the daemon's name as before
log = logging.getLogger("stratavore.daemon")


async def start_otel(endpoint: str | None, started_at: float) -> otel.OtelExport | None:
    """Export the metrics over OTLP/HTTP when the otel_endpoint setting (``endpoint``) or the
    standard OTEL_EXPORTER_OTLP_* variables ask for it (docs/team.md); without the ``otel``
    extra, a warning says so and the supervisor runs on (None)."""
    if not otel.wanted(endpoint=endpoint):
        return None

    def start() -> otel.OtelExport:  # reads (or makes) the machine id: off the loop
        return otel.OtelExport(endpoint, started_at=started_at)

    try:
        found = await asyncio.get_running_loop().run_in_executor(None, start)
    except KnownError as exc:
        log.warning("otel: not exported: %s", exc)
        return None
    log.info("otel: exporting metrics to %s", endpoint or "the OTEL_EXPORTER_OTLP_* endpoint")
    return found


def add_push_job(
    scheduler: AsyncIOScheduler,
    team: TeamService,
    interval: float,
    writes: Writes,
    stop: Callable[[int], object],
) -> None:
    """The push to the team ledger, and its budgets applied (``stop`` a runner a spent budget
    stops), at once and then every ``interval`` seconds (nothing while in no team)."""

    async def team_push() -> None:
        await team.push_round(writes, stop)

    scheduler.add_job(
        team_push,
        IntervalTrigger(seconds=interval),
        id="team_push",
        next_run_time=datetime.now(UTC),
    )
