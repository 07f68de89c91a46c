"""OpenTelemetry out: the local metrics reach an OTLP/HTTP receiver, configured by the
standard OTEL_EXPORTER_OTLP_* variables or an endpoint from the settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from supervisor.storage.models import DB, Project, Runner
from supervisor.team import local, otel
from tests.team.conftest import Machine
from tests.team.ledgers import OPUS, SONNET, record, rows
from tests.team.otlp_sink import OtlpSink


def _ledger(tmp_path: Path) -> None:
    now = time.time()
    with DB.atomic():
        api = Project.create(name="api", path=str(tmp_path / "api"), created_at=now)
        for state in ("running", "running", "exited"):
            Runner.create(project=api, command=["claude"], cwd=api.path, state=state,
                          created_at=now, token_hash="x", restarts=2)  # fmt: skip
    record(rows(10, now - 3600, cwd=str(tmp_path / "api"), prefix="a"))
    record(rows(4, now - 3600, model=OPUS, prefix="b", agent="codex"))


def test_metrics_reach_the_receiver_by_the_standard_variables(
    machines: Callable[[str], Machine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    machines("laptop")
    _ledger(tmp_path)
    with OtlpSink() as sink:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer team-token")
        assert otel.wanted()
        export = otel.OtelExport()
        try:
            assert export.flush()
        finally:
            export.close()
        headers, _ = sink.requests[-1]
        assert headers["authorization"] == "Bearer team-token"
        points = sink.points()
        resource = sink.resource()
    assert resource["service.name"] == "stratavore"
    assert resource["stratavore.machine_id"] == local.machine_id()
    runners = {a["status"]: v for a, v in points["stratavore.runners"]}
    assert (runners["running"], runners["exited"], runners["queued"]) == (2, 1, 0)
    assert points["stratavore.runners.active"] == [({"project": "api"}, 2)]
    assert points["stratavore.runner.restarts"] == [({}, 6)]
    tokens = {(a["project"], a["model"], a["agent"], a["type"]): v
              for a, v in points["stratavore.tokens"]}  # fmt: skip
    assert tokens[("api", SONNET, "claude", "input")] == 10 * 1000
    assert tokens[("", OPUS, "codex", "cache_read")] == 4 * 2000
    cost = {(a["project"], a["agent"]): v for a, v in points["stratavore.cost"]}
    (local_cost,) = DB.execute_sql('SELECT TOTAL(cost_usd) FROM "usage" WHERE agent = ?',
                                   ("claude",)).fetchone()  # fmt: skip
    assert cost[("api", "claude")] == pytest.approx(local_cost) and local_cost > 0


def test_an_endpoint_from_the_settings_and_the_off_switch(
    machines: Callable[[str], Machine], tmp_path: Path
) -> None:
    machines("laptop")
    assert not otel.wanted({})
    assert otel.wanted({}, endpoint="http://collector:4318")
    assert not otel.wanted({"OTEL_SDK_DISABLED": "true"}, endpoint="http://collector:4318")
    with OtlpSink() as sink:
        export = otel.OtelExport(endpoint=sink.url, interval_s=0.2)
        try:
            deadline = time.monotonic() + 10
            while not sink.requests and time.monotonic() < deadline:  # the periodic export
                time.sleep(0.05)
        finally:
            export.close()
        assert sink.requests, "no periodic export arrived"
        assert "stratavore.uptime" in sink.points()
