"""The ``world`` fixture: one supervisor with the cast of :class:`tests.api.world.World`, shared
by the tests of a module (each module that asks for it gets its own)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests

from tests.api.world import World, sleeping_process
from tests.conftest import REPO, SLEEP, Daemon


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("api-home")
    folder = tmp_path_factory.mktemp("api-project")
    env = {**os.environ, "STRATAVORE_HOME": str(root), "PYTHONPATH": str(REPO)}
    # A long TTL: registered runners that never heartbeat must not be flagged (that writes
    # events) while the module runs.
    daemon = Daemon(root, ["--sweep-interval", "0.5", "--heartbeat-ttl", "600"], env)
    session = requests.Session()
    session.trust_env = False
    w = World(daemon, root, folder, session)
    try:
        daemon.start()
        daemon.project("demo", folder)
        daemon.project("capped", folder, max_runners=1)
        daemon.project("old", folder)
        daemon.api.post("/api/v1/projects/old/archive")
        w.runners["busy"] = daemon.launch("demo", SLEEP)
        w.runners["capped_runner"] = daemon.launch("capped", SLEEP)
        w.runners["queued"] = daemon.launch("capped", SLEEP)
        assert w.runners["queued"]["state"] == "queued"
        w.runners["finished"] = daemon.launch("demo", SLEEP)
        for name in ("agent", "other", "agent_done"):
            proc = sleeping_process(root)
            w.procs.append(proc)
            answer = daemon.api.post(
                "/api/v1/runners/register",
                {"command": ["agent", name], "pid": proc.pid, "cwd": "/", "project": "demo"},
            )
            w.runners[name], w.tokens[name] = answer["runner"], answer["token"]
        done = w.id("agent_done")
        daemon.api.post(
            f"/api/v1/runners/{done}/heartbeat", {"exit_code": 0}, w.tokens["agent_done"]
        )
        assert daemon.runner(done)["state"] == "exited"
        daemon.wait_state(w.id("finished"), "running")
        daemon.api.post(f"/api/v1/runners/{w.id('finished')}/stop")
        daemon.wait_state(w.id("finished"), "stopped")
        daemon.wait_state(w.id("busy"), "running")
        daemon.wait_state(w.id("capped_runner"), "running")
        yield w
    finally:
        for proc in w.procs:
            proc.kill()
            proc.wait(10)
        daemon.close()
        session.close()
