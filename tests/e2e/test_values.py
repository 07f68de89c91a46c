"""Absurd values are refused at the edge, in one sentence, by the CLI and the API alike: NaN,
infinities, negatives and numbers out of range for budgets, caps, intervals, ports and the
counters runners report. The limits are schema constraints, so the OpenAPI document states
them. A real supervisor throughout."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import requests

from supervisor.api import schemas as sc
from tests.cli.test_e2e import Cli, one_line_error
from tests.conftest import SLEEP, Daemon

HUGE = 10**30  # more than SQLite's 64-bit integers hold


def put(daemon: Daemon, path: str, raw: str) -> requests.Response:
    """A request with ``raw`` as its JSON body (JSON's own numbers, e.g. 1e30)."""
    return daemon.api.session.put(
        daemon.api.base_url + path,
        data=raw,
        headers={"Authorization": f"Bearer {daemon.api.token}",
                 "Content-Type": "application/json"},
        timeout=10,
    )  # fmt: skip


def refused(response: requests.Response, field: str) -> str:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid"
    assert re.fullmatch(rf"Invalid request: [^\n]+ - at `\$\.{field}`\.", body["message"]), body
    return body["message"]


# --- budgets --------------------------------------------------------------------------------
def test_budget_tokens_1e30_is_refused_in_one_sentence_not_an_internal_error(daemon, home):
    """Was: OverflowError in SQLite, answered "Internal error"."""
    budget = '{"scope": "global", "period": "daily", "limit_tokens": %s}'
    refused(put(daemon, "/api/v1/budgets", budget % HUGE), "limit_tokens")
    refused(put(daemon, "/api/v1/budgets", budget % "1e30"), "limit_tokens")
    cli = Cli(home)
    line = cli.fails("budget", "set", "global", "--period", "daily", "--tokens", HUGE, status=2)
    assert line.startswith("stratavore: Invalid request: Expected `int` <= "), line
    assert line.endswith("- at `$.limit_tokens`."), line
    assert daemon.api.get("/api/v1/budgets") == []


def test_budget_tokens_1e30_without_a_supervisor_is_refused_alike(home):
    cli = Cli(home)
    line = cli.fails("budget", "set", "global", "--period", "daily", "--tokens", HUGE, status=2)
    assert line.startswith("stratavore: Invalid request: Expected `int` <= "), line
    assert cli.json("budgets") == []


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
@pytest.mark.parametrize("running", [True, False], ids=["supervisor", "no-supervisor"])
def test_budget_usd_nan_or_infinite_is_refused_not_stored_as_no_limit(
    daemon_factory, home, value, running
):
    """Was: `--usd nan` stored a budget with no limit (shown as $nan), `inf` was accepted."""
    daemon = daemon_factory() if running else None
    cli = Cli(home)
    line = cli.fails("budget", "set", "global", "--period", "daily", f"--usd={value}", status=2)
    assert line == f"stratavore: --usd takes a finite number, got {value!r}"
    assert cli.json("budgets") == []
    if daemon is not None:
        assert daemon.api.get("/api/v1/budgets") == []


def test_budget_usd_1e308_is_refused(daemon, home):
    budget = '{"scope": "global", "period": "daily", "limit_usd": %s}'
    refused(put(daemon, "/api/v1/budgets", budget % "1e308"), "limit_usd")
    line = Cli(home).fails("budget", "set", "global", "--period", "daily", "--usd", "1e308",
                           status=2)  # fmt: skip
    assert line.startswith("stratavore: Invalid request: Expected `float` <= "), line


# --- settings, intervals, ports, caps -------------------------------------------------------
@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400"])
def test_setting_nan_or_infinite_is_refused_in_one_sentence(daemon, home, value):
    """Was: "The supervisor at … did not answer (Out of range float values are not JSON
    compliant)", exit 3."""
    line = Cli(home).fails("set", "heartbeat_ttl", value, status=2)
    assert line == f"stratavore: Setting heartbeat_ttl takes a finite number, got {value!r}"


@pytest.mark.parametrize(
    ("key", "raw"),
    [("heartbeat_ttl", "1e308"), ("sweep_interval", "-1"), ("max_runners_global", "-5"),
     ("max_runners_per_project", "0"), ("api_port", "65536"), ("backup_keep", "0"),
     ("backup_interval", "1e300"), ("reap_interval", "0.000001")],
)  # fmt: skip
def test_out_of_range_settings_are_refused_by_the_api(daemon, key, raw):
    response = put(daemon, f"/api/v1/settings/{key}", f'{{"value": {raw}}}')
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert re.fullmatch(rf"Setting {key} must be from \S+ to \S+\.", message), message


@pytest.mark.parametrize(
    ("argv", "line"),
    [(["daemon", "--sweep-interval", "1e300"],
      "stratavore: Setting sweep_interval must be from 0.1 to 86400."),
     (["daemon", "--heartbeat-ttl", "nan"],
      "stratavore: --heartbeat-ttl takes a finite number, got 'nan'"),
     (["daemon", "--heartbeat-interval", "-1"],
      "stratavore: Setting heartbeat_interval must be from 0.1 to 86400."),
     (["daemon", "--port", "-1"], "stratavore: --port must be between 0 and 65535, got -1"),
     (["watch", "--interval", "1e300"],
      "stratavore: --interval must be a number greater than 0 and at most 86400, got 1e+300"),
     (["--timeout", "1e300", "status"],
      "stratavore: --timeout must be a number greater than 0 and at most 86400, got 1e+300"),
     (["--timeout", "inf", "status"], "stratavore: --timeout takes a finite number, got 'inf'")],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)  # fmt: skip
def test_absurd_intervals_and_ports_on_the_command_line(daemon, home, argv, line):
    """Was: OverflowError ("internal error") for --timeout and watch --interval 1e300 (with a
    supervisor to talk to), a traceback for --sweep-interval 1e300."""
    assert Cli(home).fails(*argv, status=2) == line


def test_openapi_states_the_limits(daemon):
    doc = daemon.api.get("/api/v1/openapi.json")
    schemas = doc["components"]["schemas"]

    def limits(struct: str, field: str) -> dict[str, float]:
        prop = schemas[struct]["properties"][field]
        options = prop.get("anyOf", [prop])
        [number] = [o for o in options if o.get("type") in ("integer", "number")]
        return {k: v for k, v in number.items() if k not in ("type", "description")}

    assert limits("BudgetSet", "limit_tokens") == {"minimum": 1, "maximum": sc.MAX_TOKENS}
    assert limits("BudgetSet", "limit_usd") == {"exclusiveMinimum": 0, "maximum": sc.MAX_USD}
    assert limits("ProjectCreate", "max_runners") == {"minimum": 1, "maximum": sc.MAX_CAP}
    assert limits("Register", "pid") == {"minimum": 1, "maximum": sc.MAX_PID}
    assert limits("Heartbeat", "rss_bytes")["maximum"] == sc.MAX_INT
    assert json.dumps(doc).count('"maximum"') >= 15


def test_heartbeat_counters_beyond_64_bits_are_refused(daemon, project_dir, home):
    """Counters a runner reports are stored in SQLite integers: a 2**64 RSS would fail the
    one-second flush of every runner's heartbeat."""
    daemon.project("demo", project_dir)
    env = {**os.environ, "STRATAVORE_HOME": str(home)}  # killed at teardown by this marker
    sleeper = subprocess.Popen(SLEEP, env=env)
    try:
        registered = daemon.api.post(
            "/api/v1/runners/register",
            {"command": SLEEP, "pid": sleeper.pid, "cwd": str(project_dir), "project": "demo"},
        )
        rid, token = registered["runner"]["id"], registered["token"]
        response = daemon.api.session.post(
            f"{daemon.api.base_url}/api/v1/runners/{rid}/heartbeat",
            data=json.dumps({"rss_bytes": 2**64}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=10,
        )
        refused(response, "rss_bytes")
    finally:
        sleeper.kill()
        sleeper.wait(10)


# --- smaller ------------------------------------------------------------------------------
def test_new_with_an_empty_path_is_refused(daemon, home, project_dir):
    """Was: `new X --path ""` silently meant the current folder."""
    cli = Cli(home)
    result = cli("new", "demo", "--path", "")
    assert one_line_error(result, 2) == (
        "stratavore: --path is empty; give the project's folder (leave --path out for the "
        "current one)"
    )
    assert daemon.api.get("/api/v1/projects") == []
