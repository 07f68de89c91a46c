"""The routes of provider plan limits: what a runner's Claude Code status line reports (its
own token), and the latest use of each window per account."""

from __future__ import annotations

from aiohttp import web

from supervisor.agents import planlimits
from supervisor.api import schemas as sc
from supervisor.api.routes import ADMIN, RUNNER, Route
from supervisor.api.routes.hooks import header_runner
from supervisor.api.wire import bearer, decode, json_response
from supervisor.runners.manager import RunnerManager
from supervisor.runners.planlimits import known_limits


class Limits:
    """Serves the plan-limit routes; :class:`~supervisor.runners.planlimits.PlanLimitBook`
    records them."""

    def __init__(self, manager: RunnerManager) -> None:
        self.manager = manager

    async def statusline(self, request: web.Request) -> web.Response:
        """Claude Code's status line of a runner, through Stratavore's status-line command:
        fast, as the status line waits."""
        runner = self.manager.runner_with_token(await header_runner(request), bearer(request))
        body = await decode(request, sc.StatusLineIn)
        windows = planlimits.from_claude(body.rate_limits)
        project = self.manager.projects.name_of(runner.project_id)
        changed = self.manager.plan_limits.observe(
            body.account, "claude", windows, runner_id=runner.id, project=project
        )
        return json_response(sc.StatusLineAck(changed=changed))

    async def list_limits(self, request: web.Request) -> web.Response:
        return json_response(known_limits(self.manager.config.zone, self.manager.clock()))


ROUTES = (
    Route("post", "/api/v1/statusline", Limits.statusline,
          "A runner's Claude Code status line: its plan's rate limits (its token, "
          "X-Stratavore-Runner: its id)", RUNNER, body=sc.StatusLineIn,
          response=sc.StatusLineAck, runner_id=header_runner),
    Route("get", "/api/v1/limits", Limits.list_limits,
          "Provider plan limits: the latest use of each window per account", ADMIN,
          response=list[sc.PlanLimitOut]),
)  # fmt: skip
