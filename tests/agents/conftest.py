"""The agents' end-to-end world: a daemon whose PATH finds the fake agents (tests/fake_agents.py),
a project folder, and the fakes' log."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import fake_agents
from tests.conftest import Daemon
from tests.fake_agents import script

ATTENTION_TYPES = {"runner.working", "runner.needs_input", "runner.finished_turn", "runner.idle"}
PERMISSION = {
    "notification_type": "permission_prompt",
    "message": "Claude needs your permission to use Bash",
}


class World:
    """A daemon whose PATH finds the fake agents, a project folder, and the fakes' log."""

    def __init__(self, daemon: Daemon, folder: Path, log: Path, logs: dict[str, Path]) -> None:
        self.daemon, self.folder, self.log, self.logs = daemon, folder, log, logs

    @property
    def api(self) -> Any:
        return self.daemon.api

    def launch(self, profile: str, steps: list[list[Any]] | None = None, **fields: Any) -> dict:
        env = {"FAKE_AGENT_LOG": str(self.log)}
        if steps is not None:
            env["FAKE_AGENT_SCRIPT"] = script(*steps)
        body = {"project": "demo", "profile": profile, "env": env, **fields}
        return self.api.post("/api/v1/runners", body)

    def runs(self) -> list[dict[str, Any]]:
        """What the fake agents were started with, in order."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def events(self, runner_id: int, types: set[str] | None = None) -> list[dict[str, Any]]:
        found = self.api.get("/api/v1/events", since=0, limit=1000)
        return [
            e
            for e in found
            if e["runner_id"] == runner_id and (types is None or e["type"] in types)
        ]

    def attention(self, runner_id: int) -> list[str]:
        return [e["type"].removeprefix("runner.") for e in self.events(runner_id, ATTENTION_TYPES)]


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake agents, first on PATH (set before the daemon factory copies the env)."""
    bin_dir = tmp_path / "bin"
    for agent in fake_agents.AGENTS:
        fake_agents.install(bin_dir, agent)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STRATAVORE_NO_LOGIN_PATH", "1")
    return bin_dir


@pytest.fixture
def world(
    fake_bin: Path,
    tmp_path: Path,
    agent_logs: dict[str, Path],
    daemon_factory: Callable[..., Daemon],
) -> World:
    daemon = daemon_factory("--sweep-interval", "0.5")
    folder = tmp_path / "demo"
    folder.mkdir()
    daemon.project("demo", folder)
    return World(daemon, folder, tmp_path / "fake-agents.jsonl", agent_logs)
