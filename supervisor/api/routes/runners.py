"""The runners' routes: list, launch, register, stop, restart and resume, and what a runner
leaves behind (its agent sessions, its log)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import psutil
from aiohttp import web

from supervisor.agents import profiles, sessions
from supervisor.api import schemas as sc
from supervisor.api.routes import ADMIN, Route
from supervisor.api.schemas import iso
from supervisor.api.wire import decode, flag_param, id_param, int_param, json_response
from supervisor.core import paths
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.runners import logpump
from supervisor.runners.manager import RunnerManager
from supervisor.storage import queries
from supervisor.storage.models import Runner


class Runners:
    """Serves the runners' routes: decodes, calls the manager, shows its runners."""

    def __init__(self, manager: RunnerManager, data_dir: Path) -> None:
        self.manager = manager
        self.runs_dir = str(paths.runs_dir(data_dir))
        me = psutil.Process()
        self.own_line = frozenset([me.pid, *(p.pid for p in me.parents())])

    async def list_runners(self, request: web.Request) -> web.Response:
        name = request.query.get("project")
        project = self.manager.project(name) if name else None
        rows = self.manager.active_rows(project.id if project else None)
        if flag_param(request, "all"):
            rows = sorted(rows + queries.finished_runners(project), key=lambda r: r.id)
        return json_response([self.runner_out(r) for r in rows])

    async def launch(self, request: web.Request) -> web.Response:
        body = await decode(request, sc.Launch)
        return json_response(self.runner_out(await self.manager.launch(body)), 201)

    async def register(self, request: web.Request) -> web.Response:
        body = await decode(request, sc.Register)
        if body.pid in self.own_line:
            # a runner's tree is killed when it is stopped: pid 1's would be every process
            raise ApiError(
                ErrorCode.INVALID,
                f"Process {body.pid} is the supervisor or one of its parents; "
                "register the agent's own process.",
            )
        runner, token = self.manager.register(body)
        return json_response(
            sc.Registered(
                runner=self.runner_out(runner),
                token=token,
                heartbeat_interval=self.manager.settings.heartbeat_interval,
                command=runner.command,
            ),
            201,
        )

    async def get_runner(self, request: web.Request) -> web.Response:
        return json_response(self.runner_out(self.manager.row(id_param(request))))

    async def stop(self, request: web.Request) -> web.Response:
        runner_id = id_param(request)
        body = await decode(request, sc.Stop)
        runner = await self.manager.stop_soon(runner_id, force=body.force)
        return json_response(self.runner_out(runner))

    async def stop_many(self, request: web.Request) -> web.Response:
        body = await decode(request, sc.StopMany)
        if sum((body.ids is not None, body.project is not None, body.all)) != 1:
            raise ApiError(ErrorCode.INVALID, "Give exactly one of ids, project or all.")
        if body.ids is not None:
            ids = [self.manager.row(i).id for i in body.ids]  # 404 for an unknown id
        else:
            project = self.manager.project(body.project) if body.project else None
            ids = [r.id for r in self.manager.active_rows(project.id if project else None)]
        rows = self.manager.stop_many(ids, force=body.force)
        return json_response([self.runner_out(r) for r in rows])

    async def restart(self, request: web.Request) -> web.Response:
        runner_id = id_param(request)
        return json_response(self.runner_out(await self.manager.restart(runner_id)))

    async def resume(self, request: web.Request) -> web.Response:
        runner_id = id_param(request)
        body = await decode(request, sc.Resume)
        runner = await self.manager.resume(runner_id, prompt=body.prompt, mode=body.mode)
        return json_response(self.runner_out(runner))

    async def list_sessions(self, request: web.Request) -> web.Response:
        name = request.query.get("project")
        project = self.manager.project(name) if name else None
        limit = int_param(request, "limit", 100, minimum=1)
        found = await asyncio.get_running_loop().run_in_executor(
            None, sessions.list_sessions, project.id if project else None, limit
        )
        return json_response(found)

    async def logs(self, request: web.Request) -> web.Response:
        runner = queries.runner_by_id(id_param(request))
        if not runner.supervised:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Runner {runner.id} runs in its own terminal; its output is there.",
            )
        tail = (
            None
            if request.query.get("tail") == "all"
            else int_param(request, "tail", 100, other=" or 'all'")
        )
        offset = request.query.get("offset")
        run_dir = self.manager.run_dir(runner.id)
        await self.manager.refresh_log(runner.id)
        text, new_offset, file_id = await request.loop.run_in_executor(
            None,
            logpump.read_log,
            run_dir,
            tail,
            None if offset is None else int_param(request, "offset", 0),
            request.query.get("file_id"),
        )
        return json_response(
            sc.Logs(
                text=text, offset=new_offset, file_id=file_id, path=str(run_dir / logpump.LOG_NAME)
            )
        )

    def runner_out(self, row: Runner) -> sc.Runner:
        """A runner as the API shows it, with its heartbeat's fields not yet written."""
        # The row's raw field values: peewee's descriptors cost more than the rest here, and
        # listing a thousand runners must stay well under 50 ms.
        d = row.__data__
        pending = self.manager.heartbeats.pending.get(d["id"], {})
        return sc.Runner(
            id=d["id"],
            project=self.manager.project_name(d["project"]),
            profile=d.get("profile"),
            command=d["command"],
            cwd=d["cwd"],
            state=d["state"],
            reason=d.get("reason"),
            pid=d.get("pid"),
            exit_code=d.get("exit_code"),
            restart=d["restart"],
            restarts=d["restarts"],
            supervised=d["supervised"],
            unresponsive=bool(d["unresponsive"]),
            queued_at=iso(d.get("queued_at")),
            started_at=iso(d.get("started_at")),
            ended_at=iso(d.get("ended_at")),
            last_heartbeat=iso(pending.get("last_heartbeat", d.get("last_heartbeat"))),
            cpu_percent=pending.get("cpu_percent", d.get("cpu_percent")),
            rss_bytes=pending.get("rss_bytes", d.get("rss_bytes")),
            tokens=pending.get("tokens", d.get("tokens")),
            log_path=f"{self.runs_dir}{os.sep}{d['id']}{os.sep}{logpump.LOG_NAME}"
            if d["supervised"]
            else None,
            mode=d.get("mode") or "command",
            session_id=d.get("session_id"),
            attention=d.get("attention"),
            attention_at=iso(d.get("attention_at")),
            limit_resets_at=iso(d.get("limit_resets_at")),
            resume_on_limit=bool(d.get("resume_on_limit")),
            resumable=bool(d.get("session_id"))
            and profiles.can_resume(self.manager.profile_or_none(d.get("profile"))),
            worktree=tree["path"] if (tree := d.get("worktree")) else None,
            branch=tree["branch"] if tree else None,
        )


# The routes, in two groups: the table (supervisor.api.app) places each where it belongs.
RUNNERS = (
    Route("get", "/api/v1/runners", Runners.list_runners,
          "List runners (?project=NAME, ?all=1 includes finished)", ADMIN,
          response=list[sc.Runner]),
    Route("post", "/api/v1/runners", Runners.launch,
          "Launch a runner (queued when a cap is full)", ADMIN, body=sc.Launch,
          response=sc.Runner),
    Route("post", "/api/v1/runners/stop", Runners.stop_many,
          "Stop many runners at once (ids, a project's, or all)", ADMIN, body=sc.StopMany,
          response=list[sc.Runner]),
    Route("post", "/api/v1/runners/register", Runners.register,
          "Register a process started outside the supervisor", ADMIN, body=sc.Register,
          response=sc.Registered),
    Route("get", "/api/v1/runners/{id}", Runners.get_runner, "Get a runner", ADMIN,
          response=sc.Runner),
    Route("post", "/api/v1/runners/{id}/stop", Runners.stop,
          "Stop a runner and its whole process tree", ADMIN, body=sc.Stop, response=sc.Runner),
    Route("post", "/api/v1/runners/{id}/restart", Runners.restart, "Restart a runner", ADMIN,
          response=sc.Runner),
    Route("post", "/api/v1/runners/{id}/resume", Runners.resume,
          "Continue a runner's own agent session (paused at a limit, or finished)", ADMIN,
          body=sc.Resume, response=sc.Runner),
)  # fmt: skip
SESSIONS_AND_LOGS = (
    Route("get", "/api/v1/sessions", Runners.list_sessions,
          "Agent sessions (?project=NAME) with last activity, tokens and whether resumable",
          ADMIN, response=list[sc.Session]),
    Route("get", "/api/v1/runners/{id}/logs", Runners.logs,
          "Read a runner's log (?tail=LINES or all, or ?offset=N&file_id=F to follow)", ADMIN,
          response=sc.Logs),
)  # fmt: skip
