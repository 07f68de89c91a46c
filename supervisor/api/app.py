"""The loopback HTTP API (aiohttp), serving the CLI, stratavore-agent and the tray app.

aiohttp rather than uvicorn+FastAPI: measured here on the same loop, it serves ~3x the
requests per second and does not wake up ten times a second when idle. Bodies are validated by
msgspec structs (``supervisor.api.schemas``), which also generate the OpenAPI document.

One table, :data:`ROUTES`, assembled here from the route modules of each resource
(``supervisor.api.routes``), wires every route, says who may call it (its
:class:`~supervisor.api.routes.Audience`) and generates the OpenAPI document. The edge
(``supervisor.api.edge``) lets in each route's declared audience only and turns errors into
answers.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from types import MethodType

from aiohttp import web

from supervisor.api import schemas as sc
from supervisor.api.edge import Address, Edge
from supervisor.api.metrics import Metrics
from supervisor.api.routes import (
    Route,
    hooks,
    limits,
    notify,
    projects,
    runners,
    system,
    team,
    usage,
    worktrees,
)
from supervisor.api.wire import ENCODER, MAX_BODY
from supervisor.notify.outbox import Dispatcher
from supervisor.runners.manager import RunnerManager
from supervisor.team.service import TeamService
from supervisor.usage.service import UsageService

# Every route, in the OpenAPI document's order. Nothing else adds a route to the application.
ROUTES: tuple[Route, ...] = (
    *system.HEALTH_AND_STATUS,
    *projects.PROJECTS_AND_PROFILES,
    *runners.RUNNERS,
    *hooks.HOOKS,
    *runners.SESSIONS_AND_LOGS,
    *worktrees.ROUTES,
    *hooks.HEARTBEATS,
    *system.EVENTS,
    *projects.SETTINGS,
    *usage.ROUTES,
    *limits.ROUTES,
    *notify.ROUTES,
    *team.ROUTES,
    *system.METRICS,
)

HOT_ROUTES = frozenset(hooks.HEARTBEATS)  # thousands a second: matched first (no overlap)


class Api:
    """The API of one supervisor: each resource's handlers built with what they need, and the
    aiohttp application that serves :data:`ROUTES` behind the edge."""

    def __init__(
        self,
        manager: RunnerManager,
        usage_service: UsageService,
        dispatcher: Dispatcher,
        admin_token: str,
        started_at: float,
        data_dir: Path,
        metrics: Metrics,
        team_service: TeamService,
    ) -> None:
        self.address = Address()
        self.edge = Edge(self.address, admin_token, manager.runner_with_token, manager.writes)
        self.feed = system.EventFeed()
        openapi = ENCODER.encode(sc.openapi_document(ROUTES))
        self.resources = (
            system.System(
                self.address,
                started_at,
                data_dir,
                manager.writes,
                self.feed,
                metrics,
                openapi,
                usage_service,
            ),
            projects.Projects(manager),
            runners.Runners(manager, data_dir),
            hooks.Hooks(manager, usage_service, metrics),
            usage.Usage(manager, usage_service, admin_token),
            notify.Notify(dispatcher, manager.clock),
            team.Team(manager, team_service),
            worktrees.Worktrees(manager),
            limits.Limits(manager),
        )

    @property
    def url(self) -> str:
        """Where the API listens ("" until :meth:`listening`)."""
        return self.address.url

    def app(self) -> web.Application:
        """The aiohttp application with every route of :data:`ROUTES` (GET ones answer HEAD
        too), each remembered with its declaration for the edge."""
        app = web.Application(middlewares=[self.edge.middleware], client_max_size=MAX_BODY)
        app.on_startup.append(self.feed.start)
        app.on_shutdown.append(self.feed.stop)
        # each handler is a method of one resource's class: bound to that resource
        serving = {
            fn: res
            for res in self.resources
            for fn in vars(type(res)).values()
            if inspect.iscoroutinefunction(fn)
        }
        # the hot routes first: aiohttp tries the routes under one path prefix in the order
        # they were added (a heartbeat was tried after six other /runners/{id} patterns)
        for route in sorted(ROUTES, key=lambda r: r not in HOT_ROUTES):
            handler = MethodType(route.handler, serving[route.handler])
            methods = ("HEAD", "GET") if route.method == "get" else (route.method.upper(),)
            for method in methods:
                self.edge.routes[app.router.add_route(method, route.path, handler)] = route
        return app

    def listening(self, port: int) -> None:
        """The API now listens on 127.0.0.1:``port``: the names it may be reached by."""
        self.address.listening(port)
