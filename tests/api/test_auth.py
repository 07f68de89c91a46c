"""Who may call what: every route of the API declares its audience, and a real daemon lets in
that audience and nobody else (issue 11).

Tokens: every admin route refuses a missing or wrong one with the exact message, and a runner's
heartbeat takes only that runner's token.

Uses the API tests' cast (the ``world`` fixture of ``tests/api/conftest.py``: one supervisor for
this module, with the registered runners ``agent`` and ``other`` and their tokens).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Any

import pytest

from supervisor import __version__
from supervisor.api import routes
from supervisor.api.app import ROUTES
from supervisor.api.routes import Audience, Route
from supervisor.core.states import RunnerState
from tests.api.world import World, assert_error, fill, snapshot
from tests.conftest import wait_for

MISSING = "Missing bearer token; send 'Authorization: Bearer <token>'."
WEBHOOK = {"kind": "webhook", "config": {"url": "http://127.0.0.1:9/stolen"}}


# --- tokens --------------------------------------------------------------------------------------
def route_request(
    w: World, method: str, path: str, name: str | None = None
) -> tuple[str, dict[str, Any]]:
    """A request to ``path`` that would succeed with the admin token (for auth tests); the
    runner routes speak for runner ``agent``. ``name``: the value of every path parameter
    but ids (the suffix hole reached routes whose last one was ``heartbeat``)."""
    agent = str(w.id("agent"))
    template = path
    if name is not None:
        path = re.sub(r"\{(name|key|report|scope|period)\}", name, path)
    concrete = path.replace("{name}", "demo").replace("{key}", "stop_timeout")
    concrete = concrete.replace("{id}/heartbeat", agent + "/heartbeat")
    concrete = concrete.replace("{id}", str(w.id("busy")))
    bodies: dict[str, Any] = {
        "/api/v1/projects": {"name": "authx", "path": str(w.folder)},
        "/api/v1/projects/{name}": {"max_runners": None},
        "/api/v1/profiles": {"name": "authx", "command": ["true"]},
        "/api/v1/runners": {"project": "demo", "command": ["true"]},
        "/api/v1/settings/{key}": {"value": 10.0},
        "/api/v1/budgets": {"scope": "global", "period": "daily", "limit_tokens": 10},
        "/api/v1/notify/channels/{name}": {"kind": "desktop"},
        "/api/v1/runners/register": {
            "command": ["x"],
            "pid": w.runners["agent"]["pid"],
            "cwd": str(w.folder),
        },
        "/api/v1/hooks": {"hook_event_name": "Notification"},
        "/api/v1/statusline": {"account": "/home/x/.claude", "rate_limits": None},
        "/api/v1/usage": {"records": [{"model": "m", "output_tokens": 1}], "runner_id": int(agent)},
    }
    if path == "/api/v1/profiles/{name}":
        concrete = "/api/v1/profiles/claude"
    concrete = concrete.replace("{report}", "daily").replace("{scope}/{period}", "global/daily")
    body = bodies.get(template, {})
    body = body if method in ("post", "put", "patch") else None
    concrete = concrete.replace("dead/" + str(w.id("busy")), "dead/1")
    kwargs: dict[str, Any] = {"body": body} if body is not None else {}
    if concrete in ("/api/v1/hooks", "/api/v1/statusline"):
        kwargs["headers"] = {"X-Stratavore-Runner": agent}
    return concrete, kwargs


ADMIN_ROUTES = [(r.method, r.path) for r in ROUTES if r.audience is Audience.ADMIN]


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        pytest.param(None, "Missing bearer token; send 'Authorization: Bearer <token>'.",
                     id="none"),
        pytest.param("Bearer wrong-token", "Wrong bearer token.", id="wrong"),
        pytest.param("Bearer ", "Missing bearer token; send 'Authorization: Bearer <token>'.",
                     id="empty"),
        pytest.param("Basic {admin}", "Missing bearer token; send 'Authorization: Bearer <token>'.",
                     id="basic-scheme"),
        pytest.param("Bearer {agent_token}", "Wrong bearer token.", id="runner-token"),
    ],
)  # fmt: skip
def test_every_admin_route_refuses_a_missing_or_wrong_token(world, auth, message):
    assert len(ADMIN_ROUTES) == 42 and ("get", "/metrics") in ADMIN_ROUTES
    before = snapshot(world)
    for method, path in ADMIN_ROUTES:
        concrete, kwargs = route_request(world, method, path)
        header = fill(auth, {"admin": world.admin, "agent_token": world.tokens["agent"]})
        response = world.request(
            method.upper(), concrete, token=None, auth=header if header is not None else None,
            **kwargs,
        )  # fmt: skip
        assert response.status_code == 401, (method, path, response.text)
        assert response.json() == {"error": "unauthorized", "message": message}, (method, path)
    assert snapshot(world) == before
    assert world.daemon.runner(world.id("busy"))["state"] == "running"


def test_open_routes_need_no_token(world):
    health = world.request("GET", "/api/v1/health", token=None)
    assert health.status_code == 200
    assert health.json() == {"ok": True, "version": __version__}
    doc = world.request("GET", "/api/v1/openapi.json", token=None)
    assert doc.status_code == 200
    assert doc.headers["Content-Type"].startswith("application/json")
    # a wrong token is not looked at either
    assert world.request("GET", "/api/v1/health", token="nonsense").status_code == 200


def test_heartbeat_tokens(world):
    agent, other = world.id("agent"), world.id("other")
    path = f"/api/v1/runners/{agent}/heartbeat"
    last_agent = world.daemon.runner(agent)["last_heartbeat"]
    last_other = world.daemon.runner(other)["last_heartbeat"]
    before = snapshot(world)
    wrong = {
        "other runner's token": world.tokens["other"],
        "admin token": world.admin,
        "made-up token": "x" * 32,
    }
    for token in wrong.values():
        response = world.request("POST", path, body={"cpu_percent": 1.0}, token=token)
        assert_error(response, 401, "unauthorized", f"Wrong token for runner {agent}.")
    response = world.request("POST", path, body={"cpu_percent": 1.0}, token=None)
    assert_error(
        response,
        401,
        "unauthorized",
        "Missing bearer token; send 'Authorization: Bearer <token>'.",
    )
    assert snapshot(world) == before
    assert world.daemon.runner(agent)["last_heartbeat"] == last_agent

    ok = world.request(
        "POST", path, body={"state": "running", "cpu_percent": 2.5, "rss_bytes": 4096, "tokens": 7},
        token=world.tokens["agent"],
    )  # fmt: skip
    assert ok.status_code == 200
    assert ok.json() == {"ok": True, "heartbeat_interval": 10.0}
    runner = world.daemon.runner(agent)
    assert runner["state"] == "running"
    assert runner["last_heartbeat"] not in (None, last_agent)
    assert (runner["cpu_percent"], runner["rss_bytes"], runner["tokens"]) == (2.5, 4096, 7)
    # the other runner got nothing from it
    assert world.daemon.runner(other)["last_heartbeat"] == last_other


def test_heartbeat_to_a_finished_runner_is_a_conflict(world):
    done = world.id("agent_done")
    before = snapshot(world)
    response = world.request(
        "POST", f"/api/v1/runners/{done}/heartbeat", body={"state": "running"},
        token=world.tokens["agent_done"],
    )  # fmt: skip
    assert_error(
        response, 409, "conflict", f"Runner {done} has ended (exited); its heartbeats are refused."
    )
    assert snapshot(world) == before


# --- regression: any path ending in /heartbeat skipped the admin token ---------------------------
@pytest.fixture(scope="module")
def named_heartbeat(world: World) -> None:
    """A project and a user profile named ``heartbeat``: what the suffix hole reached."""
    world.daemon.project("heartbeat", world.folder)
    world.daemon.api.post("/api/v1/profiles", {"name": "heartbeat", "command": ["true"]})


SUFFIX_HOLE = [
    ("PUT", "/api/v1/notify/channels/heartbeat", WEBHOOK),
    ("DELETE", "/api/v1/notify/channels/heartbeat", None),
    ("PATCH", "/api/v1/projects/heartbeat", {"max_runners": 3}),
    ("GET", "/api/v1/projects/heartbeat", None),
    ("PUT", "/api/v1/settings/heartbeat", {"value": 1}),
    ("GET", "/api/v1/profiles/heartbeat", None),
    ("DELETE", "/api/v1/profiles/heartbeat", None),
    ("GET", "/api/v1/usage/heartbeat", None),
    ("DELETE", "/api/v1/budgets/global/heartbeat", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), SUFFIX_HOLE, ids=[f"{m} {p}" for m, p, _ in SUFFIX_HOLE]
)
def test_heartbeat_suffix_does_not_skip_the_admin_token(world, named_heartbeat, method, path, body):
    before = snapshot(world)
    response = world.request(method, path, body=body, token=None)
    assert response.status_code == 401, response.text
    assert response.json() == {"error": "unauthorized", "message": MISSING}
    assert snapshot(world) == before
    assert world.daemon.api.get("/api/v1/notify/channels") == []
    assert world.daemon.api.get("/api/v1/projects/heartbeat")["max_runners"] is None
    assert world.daemon.api.get("/api/v1/profiles/heartbeat")["command"] == ["true"]


def test_heartbeat_suffix_with_a_text_plain_body_creates_no_channel(world):
    """What a web page could send cross-site without a preflight."""
    response = world.session.put(
        world.url + "/api/v1/notify/channels/heartbeat",
        data=b'{"kind":"webhook","config":{"url":"http://127.0.0.1:9/stolen"}}',
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    assert response.status_code in (401, 415), response.text
    assert world.daemon.api.get("/api/v1/notify/channels") == []


# --- every route lets in its declared audience, and nobody else ----------------------------------
def declared() -> dict[tuple[str, str], Audience]:
    return {(route.method, route.path): route.audience for route in ROUTES}


# who sends the request -> the audiences that may make it
CALLERS: dict[str, set[Audience]] = {
    "no token": {Audience.OPEN},
    "a wrong token": {Audience.OPEN},
    "another runner's token": {Audience.OPEN},
    "the runner's own token": {Audience.OPEN, Audience.RUNNER, Audience.RUNNER_OR_ADMIN},
    "the admin token": {Audience.OPEN, Audience.ADMIN, Audience.RUNNER_OR_ADMIN},
}


def auth_for(w: World, caller: str) -> str | None:
    """The Authorization header ``caller`` sends; the runner routes speak for ``agent``."""
    token = {
        "no token": None,
        "a wrong token": "x" * 43,
        "another runner's token": w.tokens["other"],
        "the runner's own token": w.tokens["agent"],
        "the admin token": w.admin,
    }[caller]
    return None if token is None else f"Bearer {token}"


# states a runner leaves by itself, writing its next state and event
MOVING = {RunnerState.STARTING, RunnerState.BACKOFF, RunnerState.STOPPING}


def at_rest(w: World) -> None:
    """Wait until no runner is in a state it leaves by itself (the previous case's restart
    is still starting): then only a refused request could change the snapshot."""
    wait_for(
        lambda: all(r["state"] not in MOVING for r in w.daemon.api.get("/api/v1/runners", all=1)),
        what="every runner to come to rest",
    )


def served_operations(w: World) -> list[tuple[str, str]]:
    """Every (method, path) of the served OpenAPI document, GET ones also as HEAD."""
    doc = w.request("GET", "/api/v1/openapi.json", token=None).json()
    operations = [(m, p) for p, ops in doc["paths"].items() for m in ops]
    return operations + [("head", p) for m, p in operations if m == "get"]


def test_the_served_document_lists_exactly_the_declared_routes(world):
    doc = world.request("GET", "/api/v1/openapi.json", token=None).json()
    served = {(m, p): "security" in op for p, ops in doc["paths"].items() for m, op in ops.items()}
    assert served == {key: aud is not Audience.OPEN for key, aud in declared().items()}


@pytest.mark.parametrize("name", [None, "heartbeat"], ids=["names", "named-heartbeat"])
def test_every_route_lets_in_its_declared_audience_and_nobody_else(world, named_heartbeat, name):
    """Every operation of the served document, sent by each caller; ``named-heartbeat``:
    every path parameter but ids is ``heartbeat`` (the suffix hole)."""
    audiences = declared()
    at_rest(world)
    refused_before = snapshot(world)
    let_in: list[tuple[str, str, str, dict[str, Any]]] = []
    for method, path in served_operations(world):
        audience = audiences[("get" if method == "head" else method, path)]
        concrete, kwargs = route_request(world, "get" if method == "head" else method, path, name)
        for caller, allowed in CALLERS.items():
            if audience in allowed:
                let_in.append((method, concrete, caller, kwargs))
                continue
            response = world.request(
                method.upper(), concrete, token=None, auth=auth_for(world, caller), **kwargs
            )
            assert response.status_code == 401, (method, path, caller, response.text)
            if method != "head":
                assert response.json()["error"] == "unauthorized", (method, path, caller)
    assert snapshot(world) == refused_before  # nothing refused wrote anything
    for method, concrete, caller, kwargs in let_in:
        response = world.request(
            method.upper(), concrete, token=None, auth=auth_for(world, caller), **kwargs
        )
        assert response.status_code not in (401, 403) and response.status_code < 500, (
            method, concrete, caller, response.text
        )  # fmt: skip


def test_a_route_cannot_be_declared_without_an_audience():
    async def handler(api: Any, request: Any) -> Any:
        raise AssertionError("never called")

    with pytest.raises(TypeError):
        Route("get", "/api/v1/new", handler, "A new route")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="audience must be an Audience"):
        Route("get", "/api/v1/new", handler, "A new route", "admin")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="give runner_id exactly for the runner audiences"):
        Route("post", "/api/v1/new", handler, "A new route", Audience.RUNNER)


def test_every_route_a_resource_module_declares_is_in_the_table_once():
    """A route declared in a module of supervisor.api.routes but left out of the table would
    not be served (nor documented): the table holds each declared route exactly once."""
    declared = [
        route
        for module in pkgutil.iter_modules(routes.__path__, routes.__name__ + ".")
        for group in vars(importlib.import_module(module.name)).values()
        if isinstance(group, tuple) and group and all(isinstance(r, Route) for r in group)
        for route in group
    ]

    def key(route: Route) -> tuple[str, str]:
        return (route.method, route.path)

    assert sorted(map(key, ROUTES)) == sorted(map(key, declared))
