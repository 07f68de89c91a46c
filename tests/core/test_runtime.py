"""The runtime file's probe (``runtime.attachable``): whether a supervisor already serves a data
dir, so that the tray app attaches to it instead of starting a second one."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from supervisor.core import runtime
from tests.conftest import Daemon, run_async


def claim_runtime(root: Path, port: int) -> runtime.RuntimeInfo:
    """A runtime file naming this (live) test process as the supervisor on ``port``."""
    me = psutil.Process()
    info = runtime.RuntimeInfo(me.pid, me.create_time(), port, f"http://127.0.0.1:{port}", "0")
    runtime.write_runtime(root, info)
    assert runtime.read_runtime(root) == info  # the file is believed: only the probe says no
    return info


@pytest.fixture
def stranger() -> Iterator[int]:
    """An HTTP server on a loopback port that is no supervisor: it answers every GET with
    501 (the standard library's handler has no ``do_GET``); its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_attachable_is_the_supervisor_that_serves_the_data_dir(daemon: Daemon, home: Path):
    info = run_async(runtime.attachable(home))
    assert info is not None
    assert (info.pid, info.url) == (daemon.proc.pid, daemon.api.base_url)


def test_attachable_is_none_without_a_runtime_file(home: Path):
    assert run_async(runtime.attachable(home)) is None


def test_attachable_is_none_after_the_supervisor_was_killed(daemon: Daemon, home: Path):
    daemon.kill()  # its runtime file stays behind, naming a process that is gone
    assert (home / "supervisor.json").exists()
    assert run_async(runtime.attachable(home)) is None


def test_attachable_is_none_when_nothing_listens_on_its_port(home: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    claim_runtime(home, port)  # closed again: the connection is refused
    assert run_async(runtime.attachable(home)) is None


def test_attachable_is_none_when_its_port_answers_but_not_healthy(home: Path, stranger: int):
    claim_runtime(home, stranger)
    assert run_async(runtime.attachable(home)) is None


@pytest.mark.skipif(sys.platform != "linux", reason="elsewhere the check goes through psutil")
def test_the_clis_check_of_a_live_supervisor_does_not_import_psutil(daemon: Daemon, home: Path):
    """Every CLI start reads the runtime file and checks that its process lives; importing
    psutil for that cost more than the check (issue 15: the CLI imports what it needs)."""
    code = (
        "import sys; from pathlib import Path; from supervisor.core import runtime; "
        "info = runtime.read_runtime(Path(sys.argv[1])); "
        "print(info is not None and info.pid, 'psutil' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(home)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(daemon.proc.pid), "False"]
