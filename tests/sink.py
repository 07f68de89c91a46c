"""A real HTTP server on 127.0.0.1 that records every request and answers from a script.

Channel tests send real requests to it instead of mocking ``requests``::

    with Sink() as sink:
        sink.script(Reply(429, {"Retry-After": "2"}), Reply(500), Reply(200))
        ...  # three POSTs to sink.url get 429, 500, 200; later ones get the default 200
        assert sink.requests[0].headers["Idempotency-Key"] == "..."

A :class:`Reply` with ``delay`` waits before answering (to provoke a client's read timeout);
closing the sink cuts such waits short.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Recorded:
    """One request as the sink received it."""

    method: str
    path: str
    headers: Message  # case-insensitive: headers["idempotency-key"]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | str | dict[str, Any] = b""
    delay: float = 0.0  # seconds to wait before answering

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, dict):
            headers.setdefault("Content-Type", "application/json")
            return json.dumps(self.body).encode(), headers
        if isinstance(self.body, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            return self.body.encode(), headers
        return self.body, headers


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # a client opening many connections at once (the dispatcher: 16 per channel) must not
    # overflow the listen queue (socketserver's default is 5): the kernel drops the SYNs past
    # it and the client tries again only a second later
    request_queue_size = 128

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout test) is expected, not an error


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the test reads sink.requests instead

    def _serve(self) -> None:
        sink = self.server.sink
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = sink._record(Recorded(self.command, self.path, self.headers, body))
        if reply.delay and sink._closing.wait(reply.delay):
            self.close_connection = True
            return
        payload, headers = reply.encoded()
        with contextlib.suppress(OSError):  # the client may have timed out and gone
            self.send_response(reply.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class Sink:
    """The server; use as a context manager (or call :meth:`close`)."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply(200, body={"ok": True})
        self.requests: list[Recorded] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order (then the default)."""
        with self._lock:
            self._replies.extend(replies)

    def _record(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self._replies.popleft() if self._replies else self.default

    @property
    def last(self) -> Recorded:
        with self._lock:
            return self.requests[-1]

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
