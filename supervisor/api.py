"""The loopback HTTP API (aiohttp), serving the CLI, stratavore-agent and the tray app.

aiohttp rather than uvicorn+FastAPI: measured here on the same loop, it serves ~3x the
requests per second and does not wake up ten times a second when idle. Bodies are validated by
msgspec structs (``supervisor.schemas``), which also generate the OpenAPI document.

Error handling lives in one middleware: :class:`ApiError` becomes its table status with a
one-sentence message; any other exception is logged with its traceback and answered with a
generic 500, never escaping the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from supervisor import __version__, events, logpump, paths, profiles, queries, sessions
from supervisor import schemas as sc
from supervisor.errors import ApiError, ErrorCode
from supervisor.metrics import Metrics
from supervisor.notify import outbox
from supervisor.notify.outbox import Dispatcher
from supervisor.runners import RunnerManager
from supervisor.schemas import iso
from supervisor.settings import LIVE, Settings, saved_settings
from supervisor.states import SLOT_STATES
from supervisor.store import Event, Profile, Project, Runner
from supervisor.usage import budgets, periods, reports
from supervisor.usage.service import UsageService

log = logging.getLogger("stratavore.api")
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/api/v1/health", "/api/v1/openapi.json"})
# The handler checks the token: the admin's or a runner's own (hooks: the runner's only).
RUNNER_PATHS = frozenset({"/api/v1/usage", "/api/v1/hooks"})
ENCODER = msgspec.json.Encoder()
JSON_HEADERS = {"Content-Type": "application/json"}  # prebuilt: no content-type parsing


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=ENCODER.encode(payload), status=status, headers=JSON_HEADERS)


def error_response(code: ErrorCode, message: str) -> web.Response:
    return json_response(sc.Error(error=code.code, message=message), code.status)


NOT_JSON = ApiError(ErrorCode.BAD_REQUEST, "The request body is not valid JSON.")
MAX_ID = 2**63 - 1  # SQLite's integer range


async def decode(request: web.Request, type_: type[T]) -> T:
    body = await request.read() or b"{}"
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        # msgspec validates while parsing, so a truncated body can fail on a field first
        try:
            msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise NOT_JSON from None
        raise ApiError(ErrorCode.INVALID, f"Invalid request: {exc}.") from None
    except msgspec.DecodeError:
        raise NOT_JSON from None


def whole_number(raw: str) -> int | None:
    """``raw`` as a non-negative integer in SQLite's range (ASCII digits only), else None."""
    if not (raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if value <= MAX_ID else None


def int_param(
    request: web.Request, name: str, default: int, minimum: int = 0, other: str = ""
) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = whole_number(raw)
    if value is None or value < minimum:
        raise ApiError(
            ErrorCode.BAD_REQUEST,
            f"Query parameter {name} must be a whole number >= {minimum}{other}, got {raw!r}.",
        )
    return value


def flag_param(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "0").lower()
    if raw not in ("0", "1", "true", "false", ""):
        raise ApiError(ErrorCode.BAD_REQUEST, f"Query parameter {name} must be 1 or 0.")
    return raw in ("1", "true")


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            ErrorCode.UNAUTHORIZED, "Missing bearer token; send 'Authorization: Bearer <token>'."
        )
    return token.strip()


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


class Api:
    """Routes and serialisation; the behaviour lives in :class:`RunnerManager` and queries."""

    def __init__(
        self,
        manager: RunnerManager,
        usage: UsageService,
        dispatcher: Dispatcher,
        admin_token: str,
        started_at: float,
        data_dir: Path,
        metrics: Metrics,
    ) -> None:
        self.manager = manager
        self.usage = usage
        self.dispatcher = dispatcher
        self.admin_token = admin_token
        self.started_at = started_at
        self.data_dir = data_dir
        self.metrics = metrics
        self.url = ""
        self.openapi = ENCODER.encode(sc.openapi_document())
        self.runs_dir = str(paths.runs_dir(data_dir))
        self.feed = EventFeed()
        self.heartbeat_ack = ENCODER.encode(  # the same answer to every heartbeat
            sc.HeartbeatAck(ok=True, heartbeat_interval=manager.settings.heartbeat_interval)
        )

    # --- app --------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware], client_max_size=1024 * 1024)
        app.on_startup.append(self.feed.start)
        app.on_shutdown.append(self.feed.stop)
        r = app.router
        r.add_get("/api/v1/health", self.health)
        r.add_get("/api/v1/openapi.json", self.openapi_json)
        r.add_get("/api/v1/status", self.status)
        r.add_get("/api/v1/projects", self.list_projects)
        r.add_post("/api/v1/projects", self.create_project)
        r.add_get("/api/v1/projects/{name}", self.get_project)
        r.add_patch("/api/v1/projects/{name}", self.update_project)
        r.add_post("/api/v1/projects/{name}/archive", self.archive_project)
        r.add_get("/api/v1/profiles", self.list_profiles)
        r.add_post("/api/v1/profiles", self.create_profile)
        r.add_get("/api/v1/profiles/{name}", self.get_profile)
        r.add_delete("/api/v1/profiles/{name}", self.delete_profile)
        r.add_get("/api/v1/runners", self.list_runners)
        r.add_post("/api/v1/runners", self.launch)
        r.add_post("/api/v1/runners/register", self.register)
        r.add_post("/api/v1/runners/stop", self.stop_many)
        r.add_get("/api/v1/runners/{id}", self.get_runner)
        r.add_post("/api/v1/runners/{id}/stop", self.stop)
        r.add_post("/api/v1/runners/{id}/restart", self.restart)
        r.add_post("/api/v1/runners/{id}/resume", self.resume)
        r.add_post("/api/v1/hooks", self.hook)
        r.add_get("/api/v1/sessions", self.list_sessions)
        r.add_get("/api/v1/runners/{id}/logs", self.logs)
        r.add_post("/api/v1/runners/{id}/heartbeat", self.heartbeat)
        r.add_get("/api/v1/events", self.events)
        r.add_get("/api/v1/settings", self.list_settings)
        r.add_put("/api/v1/settings/{key}", self.put_setting)
        r.add_post("/api/v1/usage", self.post_usage)
        r.add_post("/api/v1/usage/import", self.import_usage)
        r.add_get("/api/v1/usage/{report}", self.usage_report)
        r.add_get("/api/v1/budgets", self.list_budgets)
        r.add_put("/api/v1/budgets", self.put_budget)
        r.add_delete("/api/v1/budgets/{scope}/{period}", self.delete_budget)
        r.add_get("/api/v1/notify/channels", self.list_channels)
        r.add_put("/api/v1/notify/channels/{name}", self.put_channel)
        r.add_delete("/api/v1/notify/channels/{name}", self.delete_channel)
        r.add_post("/api/v1/notify/channels/{name}/test", self.test_channel)
        r.add_get("/api/v1/notify/dead", self.list_dead)
        r.add_post("/api/v1/notify/dead/{id}/retry", self.retry_dead)
        r.add_get("/metrics", self.metrics_text)
        return app

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if (
                request.path not in OPEN_PATHS
                and request.path not in RUNNER_PATHS
                and not (request.path.endswith("/heartbeat"))
            ):
                token = bearer(request)
                if not hmac.compare_digest(token, self.admin_token):
                    raise ApiError(ErrorCode.UNAUTHORIZED, "Wrong bearer token.")
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.code, exc.message)
        except web.HTTPMethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.allowed_methods))
            return error_response(
                ErrorCode.METHOD_NOT_ALLOWED,
                f"{request.path} does not take {request.method}; use {allowed}.",
            )
        except web.HTTPException as exc:  # aiohttp's own 404 for unknown routes
            if exc.status == 404:
                return error_response(
                    ErrorCode.NOT_FOUND, f"No route {request.method} {request.path}."
                )
            return error_response(ErrorCode.BAD_REQUEST, f"{exc.reason}.")
        except Exception:
            log.exception("internal error serving %s %s", request.method, request.path)
            return error_response(
                ErrorCode.INTERNAL, "Internal error; the supervisor log has the details."
            )

    # --- serialisation ------------------------------------------------------------------------
    def runner_out(self, row: Runner) -> sc.Runner:
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

    @staticmethod
    def project_out(row: Project, active: int) -> sc.Project:
        return sc.Project(
            id=row.id,
            name=row.name,
            path=row.path,
            archived=row.archived,
            max_runners=row.max_runners,
            active_runners=active,
            created_at=iso(row.created_at),
        )

    @staticmethod
    def profile_out(row: Profile) -> sc.Profile:
        return sc.Profile(
            name=row.name,
            command=row.command,
            description=row.description,
            restart=row.restart,
            expected_exit_codes=row.expected_exit_codes,
            env=row.env,
            builtin=row.builtin,
            agent=row.agent,
            binaries=row.binaries or [],
            batch=row.batch,
            resume=row.resume,
            resume_batch=row.resume_batch,
            setup_files=row.setup_files or [],
            worktree=bool(row.worktree),
            resume_on_limit=row.resume_on_limit,
            idle_after=row.idle_after,
            hooks=profiles.has_hooks(row),
        )

    @staticmethod
    def event_out(row: Event) -> sc.Event:
        return sc.Event(
            id=row.id,
            ts=iso(row.ts),
            type=row.type,
            severity=row.severity,
            runner_id=row.runner_id,
            project=row.project,
            title=row.title,
            body=row.body,
            data=row.data,
        )

    def runner_param(self, request: web.Request) -> int:
        raw = request.match_info["id"]
        if not (raw.isascii() and raw.isdigit()):
            raise ApiError(ErrorCode.BAD_REQUEST, f"Runner id must be a number, got {raw!r}.")
        value = whole_number(raw)
        if value is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"Runner {raw} does not exist.")
        return value

    # --- handlers -----------------------------------------------------------------------------
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
                api_url=self.url,
                data_dir=str(self.data_dir),
                runners=counts,
                active=sum(counts[state.value] for state in SLOT_STATES),
                queued=counts["queued"],
                projects=len(queries.list_projects()),
            )
        )

    async def list_projects(self, request: web.Request) -> web.Response:
        active = queries.active_counts_by_project()
        rows = queries.list_projects(flag_param(request, "all"))
        return json_response([self.project_out(p, active.get(p.name, 0)) for p in rows])

    async def create_project(self, request: web.Request) -> web.Response:
        row = self.manager.create_project(await decode(request, sc.ProjectCreate))
        return json_response(self.project_out(row, 0), 201)

    async def get_project(self, request: web.Request) -> web.Response:
        row = self.manager.project(request.match_info["name"])
        return json_response(self.project_out(row, self.manager.active_count(row.id)))

    async def update_project(self, request: web.Request) -> web.Response:
        body = await decode(request, sc.ProjectUpdate)
        row = self.manager.set_project_cap(request.match_info["name"], body.max_runners)
        return json_response(self.project_out(row, self.manager.active_count(row.id)))

    def setting_out(self, key: str, saved: dict[str, Any]) -> sc.SettingValue:
        return sc.SettingValue(
            key=key,
            value=getattr(self.manager.settings, key),
            saved=saved.get(key),
            default=getattr(Settings(), key),
            applies="now" if key in LIVE else "at next start",
        )

    async def list_settings(self, request: web.Request) -> web.Response:
        saved = saved_settings()
        return json_response([self.setting_out(f.name, saved) for f in fields(Settings)])

    async def put_setting(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        body = await decode(request, sc.SettingUpdate)
        self.manager.set_setting(key, body.value)
        return json_response(self.setting_out(key, saved_settings()))

    async def archive_project(self, request: web.Request) -> web.Response:
        row = self.manager.archive_project(request.match_info["name"])
        return json_response(self.project_out(row, 0))

    async def list_profiles(self, request: web.Request) -> web.Response:
        return json_response([self.profile_out(p) for p in queries.list_profiles()])

    async def create_profile(self, request: web.Request) -> web.Response:
        body = await decode(request, sc.ProfileCreate)
        if Profile.select().where(Profile.name == body.name).exists():
            raise ApiError(ErrorCode.ALREADY_EXISTS, f"Profile '{body.name}' already exists.")
        fields = profiles.profile_fields(body)
        row = Profile.create(**fields, name=body.name, builtin=False, created_at=time.time())
        self.manager.forget_profile(body.name)
        return json_response(self.profile_out(row), 201)

    async def get_profile(self, request: web.Request) -> web.Response:
        return json_response(self.profile_out(queries.profile_by_name(request.match_info["name"])))

    async def delete_profile(self, request: web.Request) -> web.Response:
        row = queries.profile_by_name(request.match_info["name"])
        if row.builtin:
            raise ApiError(
                ErrorCode.CONFLICT,
                f"Profile '{row.name}' is built in; copy it under a new name instead.",
            )
        row.delete_instance()
        self.manager.forget_profile(row.name)
        return json_response(self.profile_out(row))

    async def list_runners(self, request: web.Request) -> web.Response:
        name = request.query.get("project")
        project = self.manager.project(name) if name else None
        rows = self.manager.active_rows(project.id if project else None)
        if flag_param(request, "all"):
            rows = sorted(rows + queries.finished_runners(project), key=lambda r: r.id)
        return json_response([self.runner_out(r) for r in rows])

    async def launch(self, request: web.Request) -> web.Response:
        body = await decode(request, sc.Launch)
        tree = await self.manager.make_worktree(body)
        try:
            runner = self.manager.launch(body, worktree=tree)
        except ApiError:
            if tree is not None:
                await self.manager.discard_worktree(tree)
            raise
        return json_response(self.runner_out(runner), 201)

    async def register(self, request: web.Request) -> web.Response:
        body = await decode(request, sc.Register)
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
        return json_response(self.runner_out(self.manager.row(self.runner_param(request))))

    async def stop(self, request: web.Request) -> web.Response:
        runner_id = self.runner_param(request)
        body = await decode(request, sc.Stop)
        return json_response(self.runner_out(self.manager.stop(runner_id, force=body.force)))

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
        runner_id = self.runner_param(request)
        await self.manager.ensure_worktree(runner_id)
        return json_response(self.runner_out(self.manager.restart(runner_id)))

    async def resume(self, request: web.Request) -> web.Response:
        runner_id = self.runner_param(request)
        body = await decode(request, sc.Resume)
        row = self.manager.row(runner_id)
        if row.session_id is None and row.profile is not None:
            await self.usage.import_now()  # a Codex run learns its session id from its log
        await self.manager.ensure_worktree(runner_id)
        runner = self.manager.resume(runner_id, prompt=body.prompt, mode=body.mode)
        return json_response(self.runner_out(runner))

    async def hook(self, request: web.Request) -> web.Response:
        """Claude Code's HTTP hooks: fast (the agent waits for the answer), and a hook that
        can't be matched to a runner is a 401 that Claude Code treats as non-blocking."""
        token = bearer(request)
        raw = request.headers.get("X-Stratavore-Runner", "")
        runner_id = whole_number(raw) if raw.isascii() and raw.isdigit() else None
        if runner_id is None:
            raise ApiError(
                ErrorCode.UNAUTHORIZED, "Missing X-Stratavore-Runner header (the runner's id)."
            )
        body = await decode(request, sc.HookIn)
        limit = None
        if body.hook_event_name == "Stop" and body.transcript_path:
            runner = self.manager.runner_with_token(runner_id, token)  # before any file
            limit = await asyncio.get_running_loop().run_in_executor(
                None, self.manager.limit_in_transcript, body.transcript_path, runner.started_at
            )
        attention = self.manager.hook(runner_id, token, body, limit=limit)
        return json_response(sc.HookAck(attention=attention))

    async def list_sessions(self, request: web.Request) -> web.Response:
        name = request.query.get("project")
        project = self.manager.project(name) if name else None
        limit = int_param(request, "limit", 100, minimum=1)
        found = await asyncio.get_running_loop().run_in_executor(
            None, sessions.list_sessions, project.id if project else None, limit
        )
        return json_response(found)

    async def logs(self, request: web.Request) -> web.Response:
        runner = queries.runner_by_id(self.runner_param(request))
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

    async def heartbeat(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        runner_id = self.runner_param(request)
        token = bearer(request)
        body = await decode(request, sc.Heartbeat)
        self.manager.heartbeat(runner_id, token, body)
        if body.usage is not None:
            self.usage.heartbeat_usage(self.manager.row(runner_id), body.usage)
        self.metrics.heartbeat_latency.observe(time.perf_counter() - started)
        return web.Response(body=self.heartbeat_ack, headers=JSON_HEADERS)

    async def events(self, request: web.Request) -> web.Response:
        limit = int_param(request, "limit", 100, minimum=1)
        wait = min(float(int_param(request, "wait", 0)), MAX_WAIT)
        if "last" in request.query:
            rows = queries.last_events(int_param(request, "last", 100, minimum=1))
        elif wait > 0:
            rows = await self.feed.wait(int_param(request, "since", 0), limit, wait)
        else:
            rows = queries.events_since(int_param(request, "since", 0), limit)
        return json_response([self.event_out(e) for e in rows])

    # --- usage and budgets ---------------------------------------------------------------------
    async def post_usage(self, request: web.Request) -> web.Response:
        token = bearer(request)
        body = await decode(request, sc.UsageReport)
        runner = None
        if hmac.compare_digest(token, self.admin_token):
            if body.runner_id is not None:
                runner = self.manager.row(body.runner_id)
        elif body.runner_id is not None:
            runner = self.manager.runner_with_token(body.runner_id, token)
        else:
            raise ApiError(
                ErrorCode.UNAUTHORIZED,
                "Wrong bearer token; send the admin token, or a runner's own with its runner_id.",
            )
        written = self.usage.record(self.usage.rows_from_api(body.records, runner))
        return json_response(sc.UsageAck(written=written))

    async def import_usage(self, request: web.Request) -> web.Response:
        report = await self.usage.import_now()
        return json_response(report.as_json())

    async def usage_report(self, request: web.Request) -> web.Response:
        kind = request.match_info["report"]
        q = request.query
        allowed = {"since", "until", "project", "agent", "timezone", "by_project", "mode"}
        unknown = sorted(set(q) - allowed)
        if unknown:
            raise ApiError(
                ErrorCode.BAD_REQUEST,
                f"Unknown query parameter {unknown[0]}; use {', '.join(sorted(allowed))}.",
            )
        settings = self.manager.settings
        query = reports.Query(
            zone=periods.resolve_zone(q.get("timezone") or settings.timezone),
            since=reports.parse_day(q["since"], "since") if "since" in q else None,
            until=reports.parse_day(q["until"], "until") if "until" in q else None,
            project=q.get("project"),
            agent=q.get("agent"),
            week_start=periods.WEEKDAYS.index(settings.week_start),
            mode=reports.parse_mode(q.get("mode") or settings.cost_mode, "mode"),
        )
        by_project = flag_param(request, "by_project")
        return json_response(reports.report(kind, query, self.manager.clock(), by_project))

    async def list_budgets(self, request: web.Request) -> web.Response:
        now, cal = self.manager.clock(), self.usage.calendar
        return json_response(
            [budgets.status(b, now, cal).as_json() for b in budgets.Budget.select()]
        )

    async def put_budget(self, request: web.Request) -> web.Response:
        body = await decode(request, sc.BudgetSet)
        now = self.manager.clock()
        budget = budgets.set_budget(
            body.scope, body.period, body.limit_tokens, body.limit_usd, body.warn, body.action, now
        )
        self.usage.enforce()
        return json_response(budgets.status(budget, now, self.usage.calendar).as_json())

    async def delete_budget(self, request: web.Request) -> web.Response:
        budgets.remove_budget(request.match_info["scope"], request.match_info["period"])
        return web.Response(status=204)

    # --- notifications ---------------------------------------------------------------------
    async def list_channels(self, request: web.Request) -> web.Response:
        rows = outbox.Channel.select().order_by(outbox.Channel.name)
        return json_response([outbox.channel_out(row) for row in rows])

    async def put_channel(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await decode(request, sc.ChannelSet)
        loop = asyncio.get_running_loop()
        # the keyring may block (a DBus call, an unlock prompt): off the loop
        row = await loop.run_in_executor(
            None,
            lambda: outbox.add_channel(
                name, body.kind, body.config, body.policy, body.secret, self.manager.clock()
            ),
        )
        self.dispatcher.poke()
        return json_response(outbox.channel_out(row))

    async def delete_channel(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        await asyncio.get_running_loop().run_in_executor(None, outbox.remove_channel, name)
        return web.Response(status=204)

    async def test_channel(self, request: web.Request) -> web.Response:
        outcome = await self.dispatcher.test(request.match_info["name"])
        return json_response(sc.ChannelTest(result=outcome.result.value, reason=outcome.reason))

    async def list_dead(self, request: web.Request) -> web.Response:
        return json_response(outbox.dead_letters())

    async def retry_dead(self, request: web.Request) -> web.Response:
        raw = request.match_info["id"]
        if not (raw.isascii() and raw.isdigit()):
            raise ApiError(ErrorCode.BAD_REQUEST, f"Delivery id must be a number, got {raw!r}.")
        outbox.retry_dead(int(raw), self.manager.clock())
        self.dispatcher.poke()
        return web.Response(status=204)

    async def metrics_text(self, request: web.Request) -> web.Response:
        body, content_type = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})
