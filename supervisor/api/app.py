"""The loopback HTTP API (aiohttp), serving the CLI, stratavore-agent and the tray app.

aiohttp rather than uvicorn+FastAPI: measured here on the same loop, it serves ~3x the
requests per second and does not wake up ten times a second when idle. Bodies are validated by
msgspec structs (``supervisor.api.schemas``), which also generate the OpenAPI document.

One table, :data:`ROUTES`, wires every route, says who may call it (its
:class:`~supervisor.api.schemas.Audience`) and generates the OpenAPI document. One middleware then,
for every request: refuses what a web browser could send (a foreign ``Host`` or ``Origin``, a
body that is not JSON, see docs/security.md), lets in the matched route's declared audience
only (read from the route aiohttp matched, never from the path's text), and turns errors into
answers: :class:`ApiError` becomes its table status with a one-sentence message; any other
exception is logged with its traceback and answered with a generic 500, never escaping the
handler.
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
from itertools import accumulate
from pathlib import Path
from types import MethodType
from typing import Any, TypeVar

import msgspec
import psutil
from aiohttp import web

from supervisor import __version__
from supervisor.agents import profiles, sessions
from supervisor.api import schemas as sc
from supervisor.api.metrics import Metrics
from supervisor.api.schemas import Audience, Route, iso
from supervisor.core import events, paths
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.core.settings import LIVE, Settings, saved_settings
from supervisor.core.states import SLOT_STATES
from supervisor.notify import outbox
from supervisor.notify.outbox import Dispatcher
from supervisor.runners import logpump
from supervisor.runners.manager import RunnerManager
from supervisor.storage import queries
from supervisor.storage.store import Event, Profile, Project, Runner
from supervisor.storage.writes import StorageError
from supervisor.usage import budgets, periods, reports
from supervisor.usage.service import UsageService

log = logging.getLogger("stratavore.api")
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ENCODER = msgspec.json.Encoder()
JSON_HEADERS = {"Content-Type": "application/json"}  # prebuilt: no content-type parsing


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=ENCODER.encode(payload), status=status, headers=JSON_HEADERS)


def error_response(code: ErrorCode, message: str) -> web.Response:
    return json_response(sc.Error(error=code.code, message=message), code.status)


def storage_response(exc: StorageError) -> web.Response:
    """A write the storage refused: its sentence, and when to try again if that helps."""
    response = error_response(exc.code, exc.message)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


NOT_JSON = ApiError(ErrorCode.BAD_REQUEST, "The request body is not valid JSON.")
MAX_ID = 2**63 - 1  # SQLite's integer range
MAX_BODY = 1024 * 1024  # bytes; the largest legitimate body is a 200,000-character prompt
MAX_DEPTH = 64  # levels of [ and { in a body; ours need 4
BODY_TIMEOUT = 30.0  # seconds for a body to arrive once its headers have
BRACKETS = bytes.maketrans(b"{}", b"[]")  # one kind of bracket: [ opens, ] closes
NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
STEP = {ord("["): 1, ord("]"): -1}
TOO_DEEP = b"[" * (MAX_DEPTH + 1)  # a run this long needs no counting


def check_depth(body: bytes) -> None:
    """Refuse a body nested deeper than :data:`MAX_DEPTH` before a decoder recurses into it:
    100,000 levels of ``[`` made msgspec raise RecursionError (issue 19).

    Strings are cut out the way a JSON parser reads them (escaped backslashes, then escaped
    quotes, then every other piece between quotes is a string), so brackets in them do not
    count; for input that is not JSON this may count more than a parser would reach, never
    less. Arrays of flat objects, the common big body, collapse in one C-speed pass first."""
    if len(body.translate(None, NOT_BRACKETS)) <= MAX_DEPTH:
        return
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(body.split(b'"')[::2]).translate(BRACKETS, NOT_BRACKETS)
    collapsed = outside.replace(b"[]", b"")
    levels = int(len(collapsed) < len(outside))  # the innermost level just removed
    if len(collapsed) + levels <= MAX_DEPTH:
        return
    if TOO_DEEP in collapsed or (
        max(accumulate(map(STEP.__getitem__, collapsed))) + levels > MAX_DEPTH
    ):
        raise ApiError(
            ErrorCode.BAD_REQUEST,
            f"The request body nests deeper than {MAX_DEPTH} levels of [ and {{.",
        )


async def read_body(request: web.Request) -> bytes:
    """The request's body, which must arrive within :data:`BODY_TIMEOUT` and stay under
    :data:`MAX_BODY` (a chunked one is counted as it comes)."""
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            return await request.read()
    except TimeoutError:
        raise ApiError(
            ErrorCode.REQUEST_TIMEOUT,
            f"The request body did not arrive within {BODY_TIMEOUT:g} s.",
        ) from None
    except web.HTTPRequestEntityTooLarge:  # a chunked body, stopped at the limit
        raise ApiError(ErrorCode.TOO_LARGE, too_large(None)) from None


def too_large(size: int | None) -> str:
    said = f"is {size} bytes" if size is not None else "goes on past it"
    return f"The request body {said}; the limit is 1 MiB ({MAX_BODY} bytes)."


async def decode(request: web.Request, type_: type[T]) -> T:
    body = await read_body(request) or b"{}"
    check_depth(body)
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


class RunnerClaim(msgspec.Struct):
    """The one field of a usage report that says which runner it speaks for (the rest of
    the body is skipped: the handler decodes it whole)."""

    runner_id: int | None = None


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            ErrorCode.UNAUTHORIZED, "Missing bearer token; send 'Authorization: Bearer <token>'."
        )
    return token.strip()


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
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
        self.hosts: frozenset[str] = frozenset()  # Host headers it answers; see listening()
        self.routes: dict[web.AbstractRoute, Route] = {}  # aiohttp's route -> its declaration
        me = psutil.Process()
        self.own_line = frozenset([me.pid, *(p.pid for p in me.parents())])
        self.openapi = ENCODER.encode(sc.openapi_document(ROUTES))
        self.runs_dir = str(paths.runs_dir(data_dir))
        self.feed = EventFeed()
        self.heartbeat_ack = ENCODER.encode(  # the same answer to every heartbeat
            sc.HeartbeatAck(ok=True, heartbeat_interval=manager.settings.heartbeat_interval)
        )

    # --- app --------------------------------------------------------------------------------
    def app(self) -> web.Application:
        """The aiohttp application with every route of :data:`ROUTES` (GET ones answer HEAD
        too), each remembered with its declaration for the middleware."""
        app = web.Application(middlewares=[self.middleware], client_max_size=MAX_BODY)
        app.on_startup.append(self.feed.start)
        app.on_shutdown.append(self.feed.stop)
        for route in ROUTES:
            handler = MethodType(route.handler, self)
            methods = ("HEAD", "GET") if route.method == "get" else (route.method.upper(),)
            for method in methods:
                self.routes[app.router.add_route(method, route.path, handler)] = route
        return app

    def listening(self, port: int) -> None:
        """The API now listens on 127.0.0.1:``port``: the names it may be reached by."""
        self.url = f"http://127.0.0.1:{port}"
        self.hosts = frozenset(f"{host}:{port}" for host in LOOPBACK_NAMES)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            self.refuse_browsers(request)
            route = self.routes.get(request.match_info.route)
            if route is not None:
                await self.authorize(route, request)
            elif request.match_info.http_exception is None:  # wired outside ROUTES
                raise RuntimeError(f"route {request.method} {request.path} has no audience")
            return await handler(request)
        except StorageError as exc:  # the DB locked by another program, or the disk full
            return storage_response(exc)
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
        except Exception as exc:
            if (refused := self.manager.writes.refused(exc)) is not None:
                return storage_response(refused)
            log.exception("internal error serving %s %s", request.method, request.path)
            return error_response(
                ErrorCode.INTERNAL, "Internal error; the supervisor log has the details."
            )

    def refuse_browsers(self, request: web.Request) -> None:
        """What a web page could make a browser send is refused before any route sees it:
        a Host that is not ours (DNS rebinding: 421), a request from a page of another origin
        or site (403), a body that is not plain JSON (a cross-site form or text/plain needs no
        preflight: 415), or one over the size limit (413)."""
        hosts = request.headers.getall("Host", ())
        host = hosts[0].lower() if len(hosts) == 1 else ""
        if host not in self.hosts:
            port = self.url.rsplit(":", 1)[1]
            sent = f"not to {', '.join(map(repr, hosts))}" if hosts else "with no Host header"
            raise ApiError(
                ErrorCode.MISDIRECTED,
                f"This API answers only requests sent to 127.0.0.1:{port}, localhost:{port} or "
                f"[::1]:{port}, {sent}.",
            )
        for origin in request.headers.getall("Origin", ()):
            if origin.lower() != f"http://{host}":
                raise ApiError(
                    ErrorCode.FORBIDDEN,
                    f"Requests from web pages are refused (this one came from {origin}).",
                )
        site = request.headers.get("Sec-Fetch-Site", "").lower()
        if site in ("cross-site", "same-site"):
            raise ApiError(
                ErrorCode.FORBIDDEN,
                f"Requests from web pages are refused (this one came from a {site} page).",
            )
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise ApiError(ErrorCode.TOO_LARGE, too_large(request.content_length))
        if not request.body_exists:
            return
        encoding = request.headers.get("Content-Encoding", "identity").lower()
        if encoding != "identity":
            raise ApiError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                f"Request bodies must not be compressed (Content-Encoding: {encoding}).",
            )
        sent_type = request.headers.get("Content-Type")
        if request.content_type != "application/json" or request.charset not in (None, "utf-8"):
            what = repr(sent_type) if sent_type is not None else "sent without a Content-Type"
            raise ApiError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                f"Request bodies must be JSON sent as 'Content-Type: application/json', "
                f"not {what}.",
            )

    async def authorize(self, route: Route, request: web.Request) -> None:
        """Let in the route's declared audience and nobody else (401): the admin token for
        admin routes; for runner routes the token of the very runner the request speaks for
        (its id read by the route's ``runner_id``)."""
        if route.audience is Audience.OPEN:
            return
        token = bearer(request)
        admin = hmac.compare_digest(token.encode(), self.admin_token.encode())
        if route.audience is Audience.ADMIN:
            if not admin:
                raise ApiError(ErrorCode.UNAUTHORIZED, "Wrong bearer token.")
            return
        if admin and route.audience is Audience.RUNNER_OR_ADMIN:
            return
        assert route.runner_id is not None  # Route checks it for the runner audiences
        runner_id = await route.runner_id(self, request)
        if runner_id is None:
            raise ApiError(
                ErrorCode.UNAUTHORIZED,
                "Wrong bearer token; send the admin token, or a runner's own with its runner_id.",
            )
        self.manager.runner_with_token(runner_id, token)

    async def path_runner(self, request: web.Request) -> int:
        """The runner a heartbeat speaks for: the id in its path."""
        return self.runner_param(request)

    async def header_runner(self, request: web.Request) -> int:
        """The runner a Claude Code hook speaks for: its ``X-Stratavore-Runner`` header (the
        hooks settings file sends ``$STRATAVORE_RUNNER_ID`` there)."""
        raw = request.headers.get("X-Stratavore-Runner", "")
        runner_id = whole_number(raw)
        if runner_id is None:
            raise ApiError(
                ErrorCode.UNAUTHORIZED, "Missing X-Stratavore-Runner header (the runner's id)."
            )
        return runner_id

    async def body_runner(self, request: web.Request) -> int | None:
        """The runner a usage report speaks for: its ``runner_id`` (None: none named)."""
        return (await decode(request, RunnerClaim)).runner_id

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
                storage=self.manager.writes.status,
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
        return json_response(self.runner_out(await self.manager.restart(runner_id)))

    async def resume(self, request: web.Request) -> web.Response:
        runner_id = self.runner_param(request)
        body = await decode(request, sc.Resume)
        runner = await self.manager.resume(runner_id, prompt=body.prompt, mode=body.mode)
        return json_response(self.runner_out(runner))

    async def hook(self, request: web.Request) -> web.Response:
        """Claude Code's HTTP hooks: fast (the agent waits for the answer), and a hook that
        can't be matched to a runner is a 401 that Claude Code treats as non-blocking."""
        token = bearer(request)
        runner_id = await self.header_runner(request)
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
        if hmac.compare_digest(token.encode(), self.admin_token.encode()):
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


OPEN, ADMIN, RUNNER, RUNNER_OR_ADMIN = (
    Audience.OPEN, Audience.ADMIN, Audience.RUNNER, Audience.RUNNER_OR_ADMIN
)  # fmt: skip
# Every route, in the OpenAPI document's order: (method, path, handler, summary, audience,
# request body, response). Nothing else adds a route to the application.
ROUTES: tuple[Route, ...] = (
    Route("get", "/api/v1/health", Api.health, "Liveness probe", OPEN, response=sc.Health),
    Route("get", "/api/v1/openapi.json", Api.openapi_json, "This document", OPEN),
    Route("get", "/api/v1/status", Api.status, "Supervisor status and runner counts", ADMIN,
          response=sc.Status),
    Route("get", "/api/v1/projects", Api.list_projects,
          "List projects (?all=1 includes archived)", ADMIN, response=list[sc.Project]),
    Route("post", "/api/v1/projects", Api.create_project, "Create a project", ADMIN,
          body=sc.ProjectCreate, response=sc.Project),
    Route("get", "/api/v1/projects/{name}", Api.get_project, "Get a project", ADMIN,
          response=sc.Project),
    Route("patch", "/api/v1/projects/{name}", Api.update_project,
          "Change a project's own runner cap", ADMIN, body=sc.ProjectUpdate,
          response=sc.Project),
    Route("post", "/api/v1/projects/{name}/archive", Api.archive_project, "Archive a project",
          ADMIN, response=sc.Project),
    Route("get", "/api/v1/profiles", Api.list_profiles, "List profiles", ADMIN,
          response=list[sc.Profile]),
    Route("post", "/api/v1/profiles", Api.create_profile, "Create a user profile", ADMIN,
          body=sc.ProfileCreate, response=sc.Profile),
    Route("get", "/api/v1/profiles/{name}", Api.get_profile, "Get a profile", ADMIN,
          response=sc.Profile),
    Route("delete", "/api/v1/profiles/{name}", Api.delete_profile, "Delete a user profile",
          ADMIN, response=sc.Profile),
    Route("get", "/api/v1/runners", Api.list_runners,
          "List runners (?project=NAME, ?all=1 includes finished)", ADMIN,
          response=list[sc.Runner]),
    Route("post", "/api/v1/runners", Api.launch, "Launch a runner (queued when a cap is full)",
          ADMIN, body=sc.Launch, response=sc.Runner),
    Route("post", "/api/v1/runners/stop", Api.stop_many,
          "Stop many runners at once (ids, a project's, or all)", ADMIN, body=sc.StopMany,
          response=list[sc.Runner]),
    Route("post", "/api/v1/runners/register", Api.register,
          "Register a process started outside the supervisor", ADMIN, body=sc.Register,
          response=sc.Registered),
    Route("get", "/api/v1/runners/{id}", Api.get_runner, "Get a runner", ADMIN,
          response=sc.Runner),
    Route("post", "/api/v1/runners/{id}/stop", Api.stop,
          "Stop a runner and its whole process tree", ADMIN, body=sc.Stop, response=sc.Runner),
    Route("post", "/api/v1/runners/{id}/restart", Api.restart, "Restart a runner", ADMIN,
          response=sc.Runner),
    Route("post", "/api/v1/runners/{id}/resume", Api.resume,
          "Continue a runner's own agent session (paused at a limit, or finished)", ADMIN,
          body=sc.Resume, response=sc.Runner),
    Route("post", "/api/v1/hooks", Api.hook,
          "A Claude Code hook of a runner (its token, X-Stratavore-Runner: its id)", RUNNER,
          body=sc.HookIn, response=sc.HookAck, runner_id=Api.header_runner),
    Route("get", "/api/v1/sessions", Api.list_sessions,
          "Agent sessions (?project=NAME) with last activity, tokens and whether resumable",
          ADMIN, response=list[sc.Session]),
    Route("get", "/api/v1/runners/{id}/logs", Api.logs,
          "Read a runner's log (?tail=LINES or all, or ?offset=N&file_id=F to follow)", ADMIN,
          response=sc.Logs),
    Route("post", "/api/v1/runners/{id}/heartbeat", Api.heartbeat,
          "Heartbeat from the runner (its own token)", RUNNER, body=sc.Heartbeat,
          response=sc.HeartbeatAck, runner_id=Api.path_runner),
    Route("get", "/api/v1/events", Api.events,
          "Events after ?since=ID (at most ?limit=N, default 100; ?wait=S waits up to S s for "
          "one), or the newest ?last=N", ADMIN, response=list[sc.Event]),
    Route("get", "/api/v1/settings", Api.list_settings, "Settings and their defaults", ADMIN,
          response=list[sc.SettingValue]),
    Route("put", "/api/v1/settings/{key}", Api.put_setting, "Change a setting", ADMIN,
          body=sc.SettingUpdate, response=sc.SettingValue),
    Route("post", "/api/v1/usage", Api.post_usage,
          "Record token usage (admin token, or a runner's token with runner_id)",
          RUNNER_OR_ADMIN, body=sc.UsageReport, response=sc.UsageAck,
          runner_id=Api.body_runner),
    Route("post", "/api/v1/usage/import", Api.import_usage,
          "Import new usage from the agents' logs now", ADMIN, response=sc.UsageImport),
    Route("get", "/api/v1/usage/{report}", Api.usage_report,
          "Usage report: daily|weekly|monthly|session|blocks (?since, ?until as YYYY-MM-DD, "
          "?project, ?agent, ?timezone, ?by_project=1 for a row per project, ?mode=vendor|ccusage "
          "for the costs; default: the cost_mode setting)", ADMIN),
    Route("get", "/api/v1/budgets", Api.list_budgets, "Budgets with their current periods",
          ADMIN, response=list[sc.BudgetStatus]),
    Route("put", "/api/v1/budgets", Api.put_budget,
          "Create or change the budget of a scope and period", ADMIN, body=sc.BudgetSet,
          response=sc.BudgetStatus),
    Route("delete", "/api/v1/budgets/{scope}/{period}", Api.delete_budget, "Remove a budget",
          ADMIN),
    Route("get", "/api/v1/notify/channels", Api.list_channels, "Notification channels", ADMIN,
          response=list[sc.ChannelOut]),
    Route("put", "/api/v1/notify/channels/{name}", Api.put_channel,
          "Create or replace a channel", ADMIN, body=sc.ChannelSet, response=sc.ChannelOut),
    Route("delete", "/api/v1/notify/channels/{name}", Api.delete_channel,
          "Remove a channel and its secret", ADMIN),
    Route("post", "/api/v1/notify/channels/{name}/test", Api.test_channel,
          "Send a test message now", ADMIN, response=sc.ChannelTest),
    Route("get", "/api/v1/notify/dead", Api.list_dead, "Dead letters: deliveries that gave up",
          ADMIN, response=list[sc.DeadLetter]),
    Route("post", "/api/v1/notify/dead/{id}/retry", Api.retry_dead, "Retry a dead letter",
          ADMIN),
    Route("get", "/metrics", Api.metrics_text, "Prometheus text exposition", ADMIN),
)  # fmt: skip
