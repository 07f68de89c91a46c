"""The daemon process around the API: its runtime and token files, a second daemon on the same
data dir refused, and a port in use refused in one line."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from supervisor import __version__
from supervisor.core import paths
from tests.conftest import REPO

DAEMON_CMD = [sys.executable, "-m", "supervisor.cli", "daemon"]


def test_runtime_file_and_token_file(world):
    root, daemon = world.root, world.daemon
    info = json.loads((root / "supervisor.json").read_text())
    assert set(info) == {"pid", "create_time", "port", "url", "version"}
    assert info["pid"] == daemon.proc.pid
    assert info["url"] == f"http://127.0.0.1:{info['port']}" == daemon.api.base_url
    assert info["version"] == __version__
    assert abs(info["create_time"] - psutil.Process(daemon.proc.pid).create_time()) < 0.01
    token_file = root / "api-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == world.admin
    assert len(world.admin) >= 32


def daemon_env(home: Path) -> dict[str, str]:
    return {**os.environ, "STRATAVORE_HOME": str(home), "PYTHONPATH": str(REPO)}


def test_second_daemon_on_the_same_data_dir_refuses_to_start(world):
    root, first = world.root, world.daemon
    before = (root / "supervisor.json").read_text()
    second = subprocess.run(
        [*DAEMON_CMD, "--port", "0"],
        env=daemon_env(root),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 1
    assert second.stdout == ""
    assert second.stderr == (
        f"stratavore: A Stratavore supervisor is already running for {root} "
        f"(pid {first.proc.pid}, {first.api.base_url}).\n"
    )
    # the first one is untouched
    assert (root / "supervisor.json").read_text() == before
    assert first.api.get("/api/v1/health")["ok"] is True


@dataclass
class PortInUse:
    root: Path
    port: int
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def port_in_use(tmp_path_factory: pytest.TempPathFactory) -> PortInUse:
    """One ``stratavore daemon --port P`` run while P is held by a listening socket."""
    root = tmp_path_factory.mktemp("port-home")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [*DAEMON_CMD, "--port", str(port)],
            env=daemon_env(root),
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
        )
    return PortInUse(root, port, result)


def test_port_in_use_exits_1_naming_the_port(port_in_use):
    result, port = port_in_use.result, port_in_use.port
    assert result.returncode == 1
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("stratavore: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"stratavore: Port {port} on 127.0.0.1 is not available (")
    assert errors[0].endswith("; pick another with --port (0 chooses a free one).")
    assert "Traceback" not in result.stderr
    assert not (port_in_use.root / "supervisor.json").exists()


def test_port_in_use_prints_only_the_error_and_records_no_stop(port_in_use):
    assert port_in_use.result.stderr.count("\n") == 1, port_in_use.result.stderr
    db = paths.db_path(port_in_use.root)
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        types = [row[0] for row in con.execute("SELECT type FROM event ORDER BY id")]
    assert types == []
