"""The API's listening socket on 127.0.0.1: aiohttp's own HTTP protocol, bounded.

aiohttp's ``RequestHandler`` (one per connection) has the knobs: ``keepalive_timeout`` closes a
connection that has not sent a whole request that long after it connected or was last
answered, which is the header-read timeout for slow clients as well as the idle timeout;
``max_line_size``/``max_field_size``/``max_headers`` bound the request head. It has no cap on
connections and answers the parser's errors (a 1 MB header) in plain text, so
:class:`LoopbackSite` builds the handlers itself: past :data:`MAX_CONNECTIONS` a connection
gets a 503 in the API's JSON error shape and is closed, and :class:`ApiRequestHandler`
answers parser errors in that shape too. Figures: docs/benchmarks.md ("The API's edge").
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from supervisor.api.schemas import Error
from supervisor.api.wire import ENCODER, error_response
from supervisor.core.errors import ErrorCode

log = logging.getLogger("stratavore.api")
MAX_CONNECTIONS = 2000  # open at once; each costs about 10 KB (see docs/benchmarks.md)
HEADER_TIMEOUT = 30.0  # seconds to send a whole request after connecting or the last answer
MAX_LINE = 8190  # bytes in the request line or one header line (aiohttp's default)
MAX_HEADERS = 100
REFUSED_LINGER = 2.0  # seconds a refused connection may take to read its answer
HANDLER_ARGS: dict[str, Any] = {
    "keepalive_timeout": HEADER_TIMEOUT,
    "max_line_size": MAX_LINE,
    "max_field_size": MAX_LINE,
    "max_headers": MAX_HEADERS,
    "access_log": None,
}


class ApiRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, but what its HTTP parser refuses (a header over the
    limit, a malformed request line) is answered in the API's JSON error shape and logged in
    one line: it is the client's mistake, not ours."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # an answer has begun: nothing more can be said
            raise ConnectionError("an answer was already being sent")
        if isinstance(exc, LineTooLong):
            code, text = (
                ErrorCode.HEADERS_TOO_LARGE,
                f"The request line or a header is longer than {MAX_LINE} bytes.",
            )
        elif isinstance(exc, HttpProcessingError):
            code, text = ErrorCode.BAD_REQUEST, "The request is not valid HTTP/1.1."
        else:  # the application's middleware answers its own errors; this is a bug
            log.error("error serving a request", exc_info=exc)
            code, text = ErrorCode.INTERNAL, "Internal error; the supervisor log has the details."
        if code is not ErrorCode.INTERNAL:
            log.info("refused a request: %s (%s)", text, str(exc)[:200])
        response = error_response(code, text)
        response.force_close()
        return response


class Refused(asyncio.Protocol):
    """A connection past the cap: one 503 in the API's JSON error shape, then closed (after
    the client has had :data:`REFUSED_LINGER` seconds to read it)."""

    def __init__(self, answer: bytes, refused: set[Refused]) -> None:
        self.answer = answer
        self.refused = refused
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.refused.add(self)
        transport.write(self.answer)
        if transport.can_write_eof():
            transport.write_eof()  # the answer is whole; unread input must not reset it
        self.timer = asyncio.get_running_loop().call_later(REFUSED_LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        pass  # the request is not read

    def connection_lost(self, exc: Exception | None) -> None:
        self.refused.discard(self)
        if self.timer is not None:
            self.timer.cancel()


def refusal(max_connections: int) -> bytes:
    body = ENCODER.encode(
        Error(
            error=ErrorCode.OVERLOADED.code,
            message=f"The supervisor already has {max_connections} connections open; "
            "try again in a moment.",
        )
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class LoopbackSite(web.BaseSite):
    """The API on 127.0.0.1:``port`` (0: a free one), at most ``max_connections`` at once."""

    def __init__(
        self, runner: web.BaseRunner, port: int, max_connections: int = MAX_CONNECTIONS
    ) -> None:
        super().__init__(runner)
        self.requested_port = port
        self.max_connections = max_connections
        self.refused: set[Refused] = set()
        self.answer = refusal(max_connections)

    @property
    def port(self) -> int:
        """The port it listens on (once started)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    @property
    def name(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        await super().start()
        self._server = await asyncio.get_running_loop().create_server(
            self.connection, "127.0.0.1", self.requested_port, reuse_address=True
        )

    def connection(self) -> asyncio.Protocol:
        """A protocol for a new connection: aiohttp's handler, or a refusal past the cap."""
        server = self._runner.server
        assert server is not None
        if len(server.connections) >= self.max_connections:
            return Refused(self.answer, self.refused)
        return ApiRequestHandler(server, loop=asyncio.get_running_loop(), **HANDLER_ARGS)

    async def stop(self) -> None:
        await super().stop()
        for refused in list(self.refused):
            if refused.transport is not None:
                refused.transport.close()
