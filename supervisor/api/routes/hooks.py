"""What a runner sends by itself, with its own token: its Claude Code hooks (which become its
attention state) and its heartbeats."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from supervisor.api import schemas as sc
from supervisor.api.metrics import Metrics
from supervisor.api.routes import RUNNER, Route
from supervisor.api.wire import (
    ENCODER,
    JSON_HEADERS,
    bearer,
    decode,
    id_param,
    json_response,
    whole_number,
)
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.runners.manager import RunnerManager
from supervisor.usage.service import UsageService


class Hooks:
    """Serves the routes a runner calls: hooks and heartbeats, both fast (the agent waits)."""

    def __init__(self, manager: RunnerManager, usage: UsageService, metrics: Metrics) -> None:
        self.manager = manager
        self.usage = usage
        self.metrics = metrics
        self.heartbeat_ack = ENCODER.encode(  # the same answer to every heartbeat
            sc.HeartbeatAck(ok=True, heartbeat_interval=manager.settings.heartbeat_interval)
        )

    async def hook(self, request: web.Request) -> web.Response:
        """Claude Code's HTTP hooks: fast (the agent waits for the answer), and a hook that
        can't be matched to a runner is a 401 that Claude Code treats as non-blocking."""
        token = bearer(request)
        runner_id = await header_runner(request)
        body = await decode(request, sc.HookIn)
        limit = None
        if body.hook_event_name == "Stop" and body.transcript_path:
            runner = self.manager.runner_with_token(runner_id, token)  # before any file
            limit = await asyncio.get_running_loop().run_in_executor(
                None, self.manager.limit_in_transcript, body.transcript_path, runner.started_at
            )
        attention = self.manager.hook(runner_id, token, body, limit=limit)
        return json_response(sc.HookAck(attention=attention))

    async def heartbeat(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        runner_id = id_param(request)
        token = bearer(request)
        body = await decode(request, sc.Heartbeat)
        self.manager.heartbeat(runner_id, token, body)
        if body.usage is not None:
            self.usage.heartbeat_usage(self.manager.row(runner_id), body.usage)
        self.metrics.heartbeat_latency.observe(time.perf_counter() - started)
        return web.Response(body=self.heartbeat_ack, headers=JSON_HEADERS)


async def path_runner(request: web.Request) -> int:
    """The runner a heartbeat speaks for: the id in its path."""
    return id_param(request)


async def header_runner(request: web.Request) -> int:
    """The runner a Claude Code hook speaks for: its ``X-Stratavore-Runner`` header (the
    hooks settings file sends ``$STRATAVORE_RUNNER_ID`` there)."""
    raw = request.headers.get("X-Stratavore-Runner", "")
    runner_id = whole_number(raw)
    if runner_id is None:
        raise ApiError(
            ErrorCode.UNAUTHORIZED, "Missing X-Stratavore-Runner header (the runner's id)."
        )
    return runner_id


# The routes, in two groups: the table (supervisor.api.app) places each where it belongs.
HOOKS = (
    Route("post", "/api/v1/hooks", Hooks.hook,
          "A Claude Code hook of a runner (its token, X-Stratavore-Runner: its id)", RUNNER,
          body=sc.HookIn, response=sc.HookAck, runner_id=header_runner),
)  # fmt: skip
HEARTBEATS = (
    Route("post", "/api/v1/runners/{id}/heartbeat", Hooks.heartbeat,
          "Heartbeat from the runner (its own token)", RUNNER, body=sc.Heartbeat,
          response=sc.HeartbeatAck, runner_id=path_runner),
)  # fmt: skip
