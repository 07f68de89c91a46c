"""The API's edge: what every request passes before its handler runs, and what becomes of its
errors after.

One middleware, for every request: refuses what a web browser could send (a foreign ``Host``
or ``Origin``, a body that is not JSON, see docs/security.md), lets in the matched route's
declared audience only (read from the route aiohttp matched, never from the path's text), and
turns errors into answers: :class:`ApiError` becomes its table status with a one-sentence
message; any other exception is logged with its traceback and answered with a generic 500,
never escaping the handler.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from supervisor.api.routes import Audience, Route
from supervisor.api.wire import MAX_BODY, bearer, error_response, storage_response, too_large
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.storage.writes import StorageError, Writes

log = logging.getLogger("stratavore.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class Address:
    """Where the API listens, known once its socket is bound: its URL and the Host headers it
    answers."""

    def __init__(self) -> None:
        self.url = ""
        self.hosts: frozenset[str] = frozenset()

    def listening(self, port: int) -> None:
        """The API now listens on 127.0.0.1:``port``: the names it may be reached by."""
        self.url = f"http://127.0.0.1:{port}"
        self.hosts = frozenset(f"{host}:{port}" for host in LOOPBACK_NAMES)


class Edge:
    """The middleware: browser requests refused, the declared audience let in, errors turned
    into answers. ``routes`` maps each route aiohttp wired to its declaration;
    ``runner_with_token`` checks a runner's own token (401 otherwise)."""

    def __init__(
        self,
        address: Address,
        admin_token: str,
        runner_with_token: Callable[[int, str], Any],
        writes: Writes,
    ) -> None:
        self.address = address
        self.admin_token = admin_token
        self.runner_with_token = runner_with_token
        self.writes = writes
        self.routes: dict[web.AbstractRoute, Route] = {}  # aiohttp's route -> its declaration

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
            if (refused := self.writes.refused(exc)) is not None:
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
        if host not in self.address.hosts:
            port = self.address.url.rsplit(":", 1)[1]
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
        runner_id = await route.runner_id(request)
        if runner_id is None:
            raise ApiError(
                ErrorCode.UNAUTHORIZED,
                "Wrong bearer token; send the admin token, or a runner's own with its runner_id.",
            )
        self.runner_with_token(runner_id, token)
