"""The API's edge against a real daemon: requests a web browser could make are refused (Host,
Origin, Content-Type), and every request is bounded (body size, JSON nesting, header size,
slow and idle connections, how many at once), with every refusal in the API's JSON error shape
(issues 11 and 19).

Shares the cast of ``tests/test_api.py`` (its ``world`` fixture: one supervisor for this module).
"""

from __future__ import annotations

import re

import pytest

from tests import test_api
from tests.test_api import assert_error, snapshot

world = test_api.world  # the same cast, started once for this module


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
