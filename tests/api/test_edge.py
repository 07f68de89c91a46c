"""The API's edge against a real daemon: requests a web browser could make are refused (Host,
Origin, Content-Type), and every request is bounded (body size, JSON nesting, header size,
slow and idle connections, how many at once), with every refusal in the API's JSON error shape
(issues 11 and 19).

Uses the API tests' cast (the ``world`` fixture of ``tests/api/conftest.py``: one supervisor
for this module).
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import re
import socket
import time
from collections.abc import Iterator

import psutil
import pytest
import requests

from supervisor.api import server
from tests.api.world import World, assert_error, snapshot
from tests.conftest import wait_for


# --- regression: a web page's requests were served --------------------------------------------
def test_text_plain_body_is_refused(world):
    """A browser sends text/plain cross-site without a preflight: such a body is refused."""
    before = snapshot(world)
    response = world.request(
        "POST",
        "/api/v1/projects",
        raw=b'{"name": "plain", "path": "%s"}' % str(world.folder).encode(),
        headers={"Content-Type": "text/plain"},
    )
    assert_error(
        response,
        415,
        "unsupported_media_type",
        "Request bodies must be JSON sent as 'Content-Type: application/json', not 'text/plain'.",
    )
    assert snapshot(world) == before


@pytest.mark.parametrize(
    ("method", "path", "token"),
    [("GET", "/api/v1/health", None), ("GET", "/api/v1/status", "admin")],
)
def test_host_evil_example_is_refused(world, method, path, token):
    """DNS rebinding: a page whose name re-resolves to 127.0.0.1 sends its own name as Host."""
    port = world.url.rsplit(":", 1)[1]
    response = world.request(method, path, token=token, headers={"Host": "evil.example"})
    assert_error(
        response,
        421,
        "misdirected",
        f"This API answers only requests sent to 127.0.0.1:{port}, localhost:{port} or "
        f"[::1]:{port}, not to 'evil.example'.",
    )


def test_origin_evil_example_is_refused(world):
    before = snapshot(world)
    response = world.request(
        "POST",
        "/api/v1/runners",
        body={"project": "demo", "command": ["true"]},
        headers={"Origin": "http://evil.example"},
    )
    assert_error(
        response,
        403,
        "forbidden",
        "Requests from web pages are refused (this one came from http://evil.example).",
    )
    assert snapshot(world) == before


# --- regressions: unbounded requests (issue 19) -------------------------------------------------
DEEP = b"[" * 100_000


@pytest.mark.parametrize(
    "path", ["/api/v1/runners", "/api/v1/projects", "/api/v1/settings/max_runners_global"]
)
def test_deep_json_is_a_bad_request_not_a_recursion_error(world, path):
    before = snapshot(world)
    method = "PUT" if "settings" in path else "POST"
    response = world.request(method, path, raw=DEEP)
    assert_error(
        response, 400, "bad_request", "The request body nests deeper than 64 levels of [ and {."
    )
    assert snapshot(world) == before


def test_body_over_the_limit_is_413_not_400(world):
    before = snapshot(world)
    prompt = "x" * (1024 * 1024)
    response = world.request(
        "POST", "/api/v1/runners", body={"project": "demo", "profile": "claude", "prompt": prompt}
    )
    assert_error(
        response,
        413,
        "too_large",
        re.compile(r"The request body is \d+ bytes; the limit is 1 MiB \(1048576 bytes\)\.$"),
    )
    assert snapshot(world) == before


def test_header_of_a_megabyte_is_answered_in_the_json_error_shape(world):
    response = world.request("GET", "/api/v1/health", headers={"X-Big": "x" * 1024 * 1024})
    assert_error(
        response,
        431,
        "headers_too_large",
        "The request line or a header is longer than 8190 bytes.",
    )


# --- what our own clients send is served --------------------------------------------------------
def port_of(w: World) -> str:
    return w.url.rsplit(":", 1)[1]


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "[::1]", "LOCALHOST"])
def test_every_loopback_name_of_the_api_is_served(world, name):
    response = world.request("GET", "/api/v1/status", headers={"Host": f"{name}:{port_of(world)}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:1", "127.0.0.2:{port}", "evil.example:{port}", ""]
)
def test_any_other_host_is_misdirected(world, host):
    port = port_of(world)
    response = world.request("GET", "/api/v1/health", headers={"Host": host.format(port=port)})
    assert response.status_code == 421, response.text
    assert response.json()["error"] == "misdirected"


def test_the_apis_own_origin_is_served(world):
    own = f"http://127.0.0.1:{port_of(world)}"
    response = world.request("GET", "/api/v1/status", headers={"Origin": own})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Origin": "null"}, "Requests from web pages are refused (this one came from null)."),
        ({"Origin": "http://localhost:1"},
         "Requests from web pages are refused (this one came from http://localhost:1)."),
        ({"Sec-Fetch-Site": "cross-site"},
         "Requests from web pages are refused (this one came from a cross-site page)."),
        ({"Sec-Fetch-Site": "same-site"},
         "Requests from web pages are refused (this one came from a same-site page)."),
    ],
    ids=["sandboxed-page", "other-port", "cross-site", "same-site"],
)  # fmt: skip
def test_requests_from_web_pages_are_forbidden(world, headers, message):
    before = snapshot(world)
    response = world.request("POST", "/api/v1/runners/stop", body={"all": True}, headers=headers)
    assert_error(response, 403, "forbidden", message)
    assert snapshot(world) == before


def test_a_json_body_with_a_utf8_charset_is_served(world):
    finished = world.id("finished")
    response = world.request(
        "POST",
        f"/api/v1/runners/{finished}/stop",
        body={"force": False},
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert_error(  # reached the handler
        response, 409, "conflict", f"Runner {finished} is not running (it is stopped)."
    )


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("application/x-www-form-urlencoded",
         "not 'application/x-www-form-urlencoded'."),
        ("multipart/form-data; boundary=x", "not 'multipart/form-data; boundary=x'."),
        ("application/json; charset=latin-1", "not 'application/json; charset=latin-1'."),
        (None, "not sent without a Content-Type."),
    ],
    ids=["form", "multipart", "latin-1", "none"],
)  # fmt: skip
def test_a_body_that_is_not_json_is_unsupported(world, content_type, message):
    before = snapshot(world)
    body = json.dumps({"name": "formed", "path": str(world.folder)}).encode()
    request = requests.Request(
        "POST", world.url + "/api/v1/projects", data=body,
        headers={"Authorization": f"Bearer {world.admin}"},
    ).prepare()  # fmt: skip
    request.headers.pop("Content-Type", None)
    if content_type is not None:
        request.headers["Content-Type"] = content_type
    response = world.session.send(request, timeout=10)
    assert_error(
        response,
        415,
        "unsupported_media_type",
        "Request bodies must be JSON sent as 'Content-Type: application/json', " + message,
    )
    assert snapshot(world) == before


def test_a_compressed_body_is_unsupported(world):
    response = world.request(
        "POST",
        "/api/v1/projects",
        raw=gzip.compress(b'{"name": "zipped", "path": "/"}'),
        headers={"Content-Encoding": "gzip"},
    )
    assert_error(
        response,
        415,
        "unsupported_media_type",
        "Request bodies must not be compressed (Content-Encoding: gzip).",
    )


def test_a_request_without_a_body_needs_no_content_type(world):
    """The tray's restart and the CLI's bodiless POSTs: any Content-Type, or none, is fine."""
    response = world.request(
        "POST", "/api/v1/usage/import", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200, response.text


def test_no_cors_headers_not_even_to_a_preflight(world):
    origin = {"Origin": f"http://127.0.0.1:{port_of(world)}"}
    preflight = world.session.options(
        world.url + "/api/v1/runners",
        headers={**origin, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 405
    answers = [preflight, world.request("GET", "/api/v1/status", headers=origin)]
    for response in answers:
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]


def test_a_hook_as_nodes_fetch_sends_it_is_served(world):
    """Claude Code runs on Node; its fetch (undici) sends these headers, and no Origin (Node has
    none) — nodejs/undici#1305 shows a captured request."""
    agent = world.id("agent")
    body = json.dumps({"hook_event_name": "PermissionRequest", "tool_name": "Bash"}).encode()
    head = (
        f"POST /api/v1/hooks HTTP/1.1\r\nhost: 127.0.0.1:{port_of(world)}\r\n"
        "connection: keep-alive\r\ncontent-type: application/json\r\naccept: */*\r\n"
        "accept-language: *\r\nsec-fetch-mode: cors\r\nuser-agent: node\r\n"
        "accept-encoding: gzip, deflate\r\n"
        f"authorization: Bearer {world.tokens['agent']}\r\nx-stratavore-runner: {agent}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    status, answer = raw_exchange(world, head.encode() + body)
    assert status == 200, answer
    assert json.loads(answer) == {"attention": "needs_input"}


# --- bounds -------------------------------------------------------------------------------------
def raw_exchange(w: World, data: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send ``data`` as it is on a fresh connection; the answer's status and body."""
    with socket.create_connection(("127.0.0.1", int(port_of(w))), timeout=timeout) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def send_body(w: World, head: str, chunks: Iterator[bytes]) -> tuple[int, bytes]:
    """Send ``head`` then every chunk as fast as the daemon reads them (it may stop reading:
    the answer can come first); the answer's status and body."""
    with socket.create_connection(("127.0.0.1", int(port_of(w))), timeout=30) as sock:
        sock.sendall(head.encode())
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for chunk in chunks:
                sock.sendall(chunk)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


MB = 1024 * 1024
POST_HEAD = "POST /api/v1/runners HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" \
    "Authorization: Bearer {token}\r\nContent-Type: application/json\r\n{length}\r\n"  # fmt: skip


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_50_mb_body_is_413_and_the_daemon_memory_stays_flat(world, framing):
    daemon = psutil.Process(world.daemon.proc.pid)
    before, rss_before = snapshot(world), daemon.memory_info().rss
    piece = b'{"project": "demo", "prompt": "' + b"x" * (MB - 40)
    if framing == "content-length":
        length, chunks = f"Content-Length: {50 * MB}\r\n", (piece for _ in range(50))
    else:
        frame = b"%x\r\n%s\r\n" % (len(piece), piece)
        length, chunks = "Transfer-Encoding: chunked\r\n", (frame for _ in range(50))
    head = POST_HEAD.format(port=port_of(world), token=world.admin, length=length)
    status, body = send_body(world, head, chunks)
    assert status == 413, body
    assert json.loads(body)["error"] == "too_large"
    growth = daemon.memory_info().rss - rss_before
    assert growth < 8 * MB, f"the daemon grew by {growth / MB:.1f} MB"
    assert snapshot(world) == before


@pytest.mark.parametrize(("depth", "status"), [(64, 422), (65, 400)])
def test_nesting_up_to_64_levels_is_decoded(world, depth, status):
    """64 levels reach the fields' validation (422); 65 are refused before decoding (400)."""
    body = b'{"name": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b', "path": "/"}'
    response = world.request("POST", "/api/v1/projects", raw=body)
    assert response.status_code == status, response.text


def established(w: World) -> int:
    """Connections the daemon holds on its port."""
    port = int(port_of(w))
    connections = psutil.Process(w.daemon.proc.pid).net_connections("tcp")
    return sum(1 for c in connections if c.laddr.port == port and c.status == "ESTABLISHED")


def test_the_connection_past_2000_gets_a_503_and_the_rest_are_served(world):
    idle: list[socket.socket] = []
    try:
        for _ in range(server.MAX_CONNECTIONS):
            idle.append(socket.create_connection(("127.0.0.1", int(port_of(world))), timeout=10))
        wait_for(lambda: established(world) >= server.MAX_CONNECTIONS, 20, what="2,000 accepted")
        status, body = raw_exchange(world, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 503
        assert json.loads(body) == {
            "error": "overloaded",
            "message": "The supervisor already has 2000 connections open; try again in a moment.",
        }
    finally:
        for sock in idle[10:]:
            sock.close()
    try:
        wait_for(lambda: established(world) <= 20, 20, what="the idle ones closed")
        assert world.request("GET", "/api/v1/status").status_code == 200
    finally:
        for sock in idle[:10]:
            sock.close()


def test_idle_and_slow_clients_are_cut_off_after_the_header_timeout(world):
    """A connection that sends nothing, and one that sends its headers a byte a second, are
    closed 30 s after they connected; other requests are served meanwhile."""
    port = int(port_of(world))
    idle = socket.create_connection(("127.0.0.1", port), timeout=60)
    slow = socket.create_connection(("127.0.0.1", port), timeout=60)
    started = time.monotonic()
    try:
        slow.setblocking(False)
        trickle = iter(f"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
        closed = None
        while closed is None and time.monotonic() - started < server.HEADER_TIMEOUT + 10:
            with contextlib.suppress(BlockingIOError):
                if slow.recv(1024) == b"":
                    closed = time.monotonic() - started
                    break
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                slow.send(bytes([next(trickle, ord("X"))]))
            assert world.request("GET", "/api/v1/health", token=None).status_code == 200
            time.sleep(1.0)
        assert closed is not None, "the slow client was never cut off"
        assert server.HEADER_TIMEOUT - 1 <= closed <= server.HEADER_TIMEOUT + 3, closed
        idle.settimeout(5)
        assert idle.recv(1024) == b""  # closed too, without an answer
    finally:
        idle.close()
        slow.close()
