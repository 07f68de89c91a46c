"""/metrics of a real daemon: runner counts by state and project, uptime, heartbeat latency
and token totals, then a clean stop."""

from __future__ import annotations

from supervisor.core import runtime
from tests.api.world import sleeping_process
from tests.conftest import SLEEP, api_error


def metric(text: str, name: str) -> float:
    """The value of the sample line ``name`` (with its labels) in the exposition ``text``."""
    values = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(name + " ")]
    assert len(values) == 1, f"{name} appears {len(values)} times in:\n{text}"
    return float(values[0])


def test_metrics_of_one_runner_then_a_clean_stop(daemon, project_dir, home):
    daemon.project("demo", project_dir)
    daemon.project("empty", project_dir)
    runner = daemon.launch("demo", SLEEP)
    daemon.wait_state(runner["id"], "running")
    text = daemon.api.get("/metrics")
    assert 'stratavore_runners_total{status="running"} 1.0' in text.splitlines()
    for state in ("queued", "starting", "stopped", "exited", "failed", "lost"):
        assert metric(text, f'stratavore_runners_total{{status="{state}"}}') == 0.0
    assert metric(text, 'stratavore_runners_by_project{project="demo"}') == 1.0
    assert metric(text, 'stratavore_runners_by_project{project="empty"}') == 0.0
    uptime = metric(text, "stratavore_daemon_uptime_seconds")
    status = daemon.api.get("/api/v1/status")
    assert 0 < uptime <= status["uptime_s"] + 0.5
    assert metric(text, "stratavore_heartbeat_latency_seconds_count") == 0.0

    sleeper = sleeping_process(home)
    try:
        reg = daemon.api.post(
            "/api/v1/runners/register",
            {"command": ["x"], "pid": sleeper.pid, "cwd": str(project_dir), "project": "demo"},
        )
        path = f"/api/v1/runners/{reg['runner']['id']}/heartbeat"
        for i in range(3):
            daemon.api.post(path, {"state": "running", "cpu_percent": float(i)}, reg["token"])
        text = daemon.api.get("/metrics")
        assert metric(text, "stratavore_heartbeat_latency_seconds_count") == 3.0
        assert metric(text, "stratavore_heartbeat_latency_seconds_sum") > 0
        assert metric(text, 'stratavore_runners_total{status="running"}') == 2.0
        assert metric(text, 'stratavore_runners_by_project{project="demo"}') == 2.0
        assert metric(text, "stratavore_daemon_uptime_seconds") > uptime
        record = {"model": "gpt-5", "agent": "codex", "input_tokens": 40, "output_tokens": 2}
        daemon.api.post("/api/v1/usage", {"records": [record]})
        text = daemon.api.get("/metrics")
        assert metric(text, 'stratavore_tokens_used_total{scope="global"}') == 42.0
        assert metric(text, 'stratavore_tokens_used_total{scope="agent:codex"}') == 42.0
        # refused heartbeats are not observed
        error = api_error(lambda: daemon.api.post(path, {"state": "running"}, "bad-token"))
        assert error.message == f"Wrong token for runner {reg['runner']['id']}."
        text = daemon.api.get("/metrics")
        assert metric(text, "stratavore_heartbeat_latency_seconds_count") == 3.0
    finally:
        sleeper.kill()
        sleeper.wait(10)
    # Ctrl-C (SIGINT) is a clean stop: exit status 0, the runtime file removed
    assert (home / "supervisor.json").exists()
    assert daemon.stop() == 0
    assert not (home / "supervisor.json").exists()
    assert runtime.read_runtime(home) is None
    assert (home / "api-token").exists()  # the token outlives the process
