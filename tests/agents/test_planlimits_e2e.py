"""A plan's own limits, end to end: a fake ``claude`` launched by a real daemon runs the
status-line command Stratavore injected, with the JSON Claude Code gives it; the supervisor
records the five-hour and seven-day use per account, `stratavore limits` shows it, the user's
own status line still runs, thresholds notify once, and a pause waits for the exact reset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.agents.conftest import World
from tests.conftest import REPO, wait_for
from tests.fake_agents import script
from tests.sink import Sink

RESET = 1_900_000_000  # 2030-03-17T17:46:40Z


def rate_limits(five: float, seven: float = 12, resets_at: float = RESET) -> dict[str, Any]:
    return {"rate_limits": {
        "five_hour": {"used_percentage": five, "resets_at": resets_at},
        "seven_day": {"used_percentage": seven, "resets_at": resets_at + 86400},
    }}  # fmt: skip


def stratavore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor.cli", *args],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60,
    )  # fmt: skip


def launch(world: World, steps: list[list[Any]], shown: Path, **env: str) -> dict[str, Any]:
    env = {"FAKE_AGENT_LOG": str(world.log), "FAKE_AGENT_SCRIPT": script(*steps),
           "FAKE_STATUSLINE_OUT": str(shown), **env}  # fmt: skip
    return world.launch("claude", prompt="work", env=env)


def test_a_run_reports_its_plans_five_hour_use_and_stratavore_limits_shows_it(
    world, tmp_path, agent_logs
):
    shown, go = tmp_path / "shown.txt", tmp_path / "go"
    runner = launch(world, [["statusline", rate_limits(63)], ["wait_file", str(go)]], shown)
    wait_for(lambda: shown.exists(), what="the status line to be shown")
    assert shown.read_text().startswith("claude-sonnet")  # our own line: the model, then
    assert "5h 63 % ↻ " in shown.read_text() and "7d 12 %" in shown.read_text()
    found = world.api.get("/api/v1/limits")
    account = str(agent_logs["claude"].resolve())
    assert [(f["account"], f["window"], f["used_percent"]) for f in found] == [
        (account, "five_hour", 63.0), (account, "seven_day", 12.0),
    ]  # fmt: skip
    assert found[0]["resets_at"] == "2030-03-17T17:46:40.000Z"
    assert found[0]["text"].startswith("5-hour: 63 %, resets ")
    cli = stratavore("limits")
    assert cli.returncode == 0, cli.stderr
    five = next(line for line in cli.stdout.splitlines() if " 5-hour " in line)
    assert five.startswith("claude ") and " 63 % " in five
    as_json = stratavore("limits", "--json")
    assert json.loads(as_json.stdout) == found
    changes = [e for e in world.events(runner["id"]) if e["type"] == "plan.limit"]
    assert [e["data"]["window"] for e in changes] == ["five_hour", "seven_day"]
    go.touch()
    world.daemon.wait_state(runner["id"], "exited")


def test_the_users_own_status_line_still_runs_with_the_same_input(world, tmp_path, agent_logs):
    """The user's statusLine (the project's settings first, then the user's) is chained: it
    gets Claude Code's JSON and its output is what the status line shows."""
    seen = tmp_path / "seen.json"
    mine = tmp_path / "mine.py"
    mine.write_text(
        "import json, sys\n"
        f"data = sys.stdin.read(); open({str(seen)!r}, 'w').write(data)\n"
        "print('mine:', json.loads(data)['rate_limits']['five_hour']['used_percentage'])\n"
    )
    agent_logs["claude"].mkdir(parents=True, exist_ok=True)
    user = {"statusLine": {"type": "command", "command": f"{sys.executable} {mine}"}}
    (agent_logs["claude"] / "settings.json").write_text(json.dumps(user))
    shown = tmp_path / "shown.txt"
    runner = launch(world, [["statusline", rate_limits(70)]], shown)
    world.daemon.wait_state(runner["id"], "exited")
    assert shown.read_text() == "mine: 70\n"
    assert json.loads(seen.read_text())["rate_limits"]["five_hour"]["used_percentage"] == 70
    assert world.api.get("/api/v1/limits")[0]["used_percent"] == 70.0
    project = world.folder / ".claude"
    project.mkdir()
    (project / "settings.json").write_text(json.dumps({"statusLine": {
        "type": "command", "command": "echo project line",
    }}))  # fmt: skip
    again = launch(world, [["statusline", rate_limits(71)]], shown)
    world.daemon.wait_state(again["id"], "exited")
    assert shown.read_text() == "mine: 70\nproject line\n"


def test_thresholds_notify_once_per_window_period(world, tmp_path):
    world.api.request("PUT", "/api/v1/settings/limit_thresholds", body={"value": "50,80"})
    shown = tmp_path / "shown.txt"
    with Sink() as sink:
        world.api.request("PUT", "/api/v1/notify/channels/phone", body={
            "kind": "ntfy", "config": {"topic": "plan", "server": sink.url},
            "policy": {"settle_s": 0},
        })  # fmt: skip
        steps = [["statusline", rate_limits(five, seven=1)] for five in (40, 60, 85, 86, 90)]
        runner = launch(world, steps, shown)
        world.daemon.wait_state(runner["id"], "exited")
        crossings = [e for e in world.events(runner["id"]) if e["type"] == "plan.threshold"]
        assert [(e["data"]["threshold"], e["data"]["used_percent"]) for e in crossings] == [
            (50.0, 60.0), (80.0, 85.0),
        ]  # fmt: skip
        assert crossings[1]["title"] == "claude plan at 85 % of its 5-hour limit"
        sent = wait_for(
            lambda: len(titles := [r.headers.get("Title", "") for r in sink.requests]) >= 2
            and titles,
            timeout=15,
            what="two threshold notifications",
        )
        time.sleep(2)
        plan = [t for t in (r.headers.get("Title", "") for r in sink.requests) if "plan" in t]
        assert len(plan) == 2 and sent[:2] == plan


def test_a_pause_at_the_limit_waits_for_the_exact_reset_the_status_line_gave(world, tmp_path):
    exact = int(time.time()) + 3 * 3600 + 17  # "resets 11pm" names no such instant
    steps = [
        ["statusline", rate_limits(100, resets_at=exact)],
        ["once", str(tmp_path / "m"), [["limit", "5-hour limit reached ∙ resets 11pm"],
                                       ["exit", 1]]],
    ]  # fmt: skip
    runner = launch(world, steps, tmp_path / "shown.txt")
    paused = world.daemon.wait_state(runner["id"], "paused")
    assert paused["limit_resets_at"].startswith(
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(exact))
    )


def test_a_codex_runs_windows_are_recorded_by_their_length_whatever_their_order(
    world, agent_logs
):
    swapped = {
        "primary": {"used_percent": 33.0, "window_minutes": 10080, "resets_at": RESET},
        "secondary": {"used_percent": 81.0, "window_minutes": 300, "resets_at": RESET - 3600},
    }
    go = world.folder / "go"
    steps = [["turn", {"input_tokens": 5, "rate_limits": swapped}], ["wait_file", str(go)]]
    runner = world.launch("codex", steps, prompt="work")
    # a Codex run learns its session id from the usage import, its rollout at its end
    wait_for(lambda: world.api.post("/api/v1/usage/import", {}) and world.daemon.runner(
        runner["id"])["session_id"], what="the run to learn its session")  # fmt: skip
    go.touch()
    world.daemon.wait_state(runner["id"], "exited")
    found = {f["window"]: f for f in world.api.get("/api/v1/limits")}
    assert {w: (f["agent"], f["used_percent"]) for w, f in found.items()} == {
        "five_hour": ("codex", 81.0), "seven_day": ("codex", 33.0),
    }  # fmt: skip
    assert found["five_hour"]["account"] == str(agent_logs["codex"].resolve())
