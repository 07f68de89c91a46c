"""The supervisor's own routes: health, the OpenAPI document, status, events (with the feed
that wakes the readers waiting for news) and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import cast

from aiohttp import web

from supervisor import __version__
from supervisor.api import schemas as sc
from supervisor.api.edge import Address
from supervisor.api.metrics import Metrics
from supervisor.api.routes import ADMIN, OPEN, Route
from supervisor.api.schemas import iso
from supervisor.api.schemas.system import Severity
from supervisor.api.wire import JSON_HEADERS, int_param, json_response
from supervisor.core import events
from supervisor.core.states import SLOT_STATES
from supervisor.storage import queries
from supervisor.storage.models import Event
from supervisor.storage.writes import Writes
from supervisor.usage.service import UsageService

MAX_WAIT = 60.0  # seconds a GET /events?wait= may hold its request
OFF_LOOP_COMMIT = 0.05  # an event written by a worker thread is committed just after its poke


class EventFeed:
    """Wakes the readers that wait for news (``GET /events?wait=S``): the tray hears of a
    hook's attention change at once instead of at its next poll, and idles between events."""

    def __init__(self) -> None:
        self._waker = events.Waker(off_loop_delay=OFF_LOOP_COMMIT)
        self.closing = False

    async def start(self, _app: web.Application) -> None:
        self._waker.start()

    async def stop(self, _app: web.Application) -> None:
        """Before the server waits for open requests: the waiting ones answer now."""
        self.closing = True
        self._waker.stop()
        if self._waker.event is not None:
            self._waker.event.set()

    async def wait(self, since: int, limit: int, timeout: float) -> list[Event]:
        """Events after ``since``; if none yet, the first ones written within ``timeout``."""
        loop, news = asyncio.get_running_loop(), self._waker.event
        assert news is not None
        deadline = loop.time() + timeout
        while True:
            news.clear()
            rows = queries.events_since(since, limit)
            left = deadline - loop.time()
            if rows or left <= 0 or self.closing:
                return rows
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(news.wait(), left)


class System:
    """Serves the routes about the supervisor itself, from what it is given."""

    def __init__(
        self,
        address: Address,
        started_at: float,
        data_dir: Path,
        writes: Writes,
        feed: EventFeed,
        metrics: Metrics,
        openapi: bytes,
        usage: UsageService,
    ) -> None:
        self.address = address
        self.started_at = started_at
        self.data_dir = data_dir
        self.writes = writes
        self.feed = feed
        self.metrics = metrics
        self.openapi = openapi  # the encoded document of the whole table
        self.usage = usage

    async def health(self, request: web.Request) -> web.Response:
        return json_response(sc.Health(ok=True, version=__version__))

    async def openapi_json(self, request: web.Request) -> web.Response:
        return web.Response(body=self.openapi, headers=JSON_HEADERS)

    async def status(self, request: web.Request) -> web.Response:
        counts = queries.counts_by_state()
        return json_response(
            sc.Status(
                version=__version__,
                pid=os.getpid(),
                uptime_s=round(time.time() - self.started_at, 3),
                api_url=self.address.url,
                data_dir=str(self.data_dir),
                runners=counts,
                active=sum(counts[state.value] for state in SLOT_STATES),
                queued=counts["queued"],
                projects=len(queries.list_projects()),
                storage=self.writes.status,
                usage_imported_at=iso(self.usage.imported_at),
            )
        )

    async def events(self, request: web.Request) -> web.Response:
        limit = int_param(request, "limit", 100, minimum=1)
        wait = min(float(int_param(request, "wait", 0)), MAX_WAIT)
        if "last" in request.query:
            rows = queries.last_events(int_param(request, "last", 100, minimum=1))
        elif wait > 0:
            rows = await self.feed.wait(int_param(request, "since", 0), limit, wait)
        else:
            rows = queries.events_since(int_param(request, "since", 0), limit)
        return json_response([event_out(e) for e in rows])

    async def metrics_text(self, request: web.Request) -> web.Response:
        body, content_type = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})


def event_out(row: Event) -> sc.Event:
    """An event as the API shows it."""
    return sc.Event(
        id=row.id,
        ts=iso(row.ts),
        type=row.type,
        severity=cast(Severity, row.severity),  # as events.record wrote it
        runner_id=row.runner_id,
        project=row.project,
        title=row.title,
        body=row.body,
        data=row.data,
    )


# The routes, in three groups: the table (supervisor.api.app) places each where it belongs.
HEALTH_AND_STATUS = (
    Route("get", "/api/v1/health", System.health, "Liveness probe", OPEN, response=sc.Health),
    Route("get", "/api/v1/openapi.json", System.openapi_json, "This document", OPEN),
    Route("get", "/api/v1/status", System.status, "Supervisor status and runner counts", ADMIN,
          response=sc.Status),
)  # fmt: skip
EVENTS = (
    Route("get", "/api/v1/events", System.events,
          "Events after ?since=ID (at most ?limit=N, default 100; ?wait=S waits up to S s for "
          "one), or the newest ?last=N", ADMIN, response=list[sc.Event]),
)  # fmt: skip
METRICS = (
    Route("get", "/metrics", System.metrics_text, "Prometheus text exposition", ADMIN),
)  # fmt: skip
