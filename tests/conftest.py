"""Shared fixtures: an isolated data dir, and real supervisor daemons as child processes.

Nothing here touches the user's real data dir or agent logs: every test gets its own
``STRATAVORE_HOME``, and the agents' config dirs point into the test's temp dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psutil
import pytest

from supervisor.api.client import ApiClient, ClientError
from supervisor.core import runtime
from supervisor.storage.db import close_db, init_db
from tests.keyring_backend import keyring_env

if TYPE_CHECKING:
    from tests.team.pgcluster import Cluster

REPO = Path(__file__).resolve().parent.parent
FINISHED = {"stopped", "exited", "failed", "fatal", "lost"}
T = TypeVar("T")


@pytest.fixture(autouse=True)
def agent_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Where Claude Code, Codex and Gemini CLI logs are looked for, in this test: its own temp
    dirs (``gemini`` is ``$GEMINI_CLI_HOME``, which holds ``.gemini``)."""
    dirs = {
        "claude": tmp_path / "claude-config",
        "codex": tmp_path / "codex-home",
        "gemini": tmp_path / "gemini-home",
    }
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(dirs["claude"]))
    monkeypatch.setenv("CODEX_HOME", str(dirs["codex"]))
    monkeypatch.setenv("GEMINI_CLI_HOME", str(dirs["gemini"]))
    return dirs


@pytest.fixture(autouse=True)
def test_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A keyring of this test's own (a JSON file, shared with its CLI and daemon children):
    never the user's."""
    path = tmp_path / "keyring.json"
    for name, value in keyring_env(path).items():
        monkeypatch.setenv(name, value)
    return path


@pytest.fixture
def db(tmp_path: Path) -> Iterator[None]:
    """A fresh database in the test's temp dir, bound to the models in this process."""
    init_db(tmp_path / "stratavore.db")
    yield
    close_db()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data dir, set as STRATAVORE_HOME for this process and its children."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("STRATAVORE_HOME", str(root))
    return root


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` for a headless test, failing it on what the loop reports as
    unhandled: a background task's exception nobody retrieved, a callback that raised.
    asyncio only logs those, so a test would pass over a broken background task;
    ``tests/desktop/conftest.py``'s ``qloop`` does the same for the desktop tests (as
    qasync's own tests do)."""
    reported: list[dict[str, Any]] = []

    def new_loop() -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        return loop

    with asyncio.Runner(loop_factory=new_loop) as runner:
        result = runner.run(main)
    gc.collect()  # a task dropped with its exception reports it when it is collected
    if reported:
        context = reported[0]
        raise AssertionError(f"the loop reported: {context['message']}") from context.get(
            "exception"
        )
    return result


class Daemon:
    """A real ``stratavore daemon`` child process on a free loopback port."""

    def __init__(self, root: Path, args: list[str], env: dict[str, str]) -> None:
        self.root = root
        self.args = args
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: ApiClient | None = None
        self.log = root / "daemon-stderr.log"

    def start(self) -> Daemon:
        old = runtime.read_runtime(self.root)
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "supervisor.cli", "daemon", "--port", "0", *self.args],
                env=self.env,
                stdout=err,
                stderr=err,
                cwd=self.root,
            )
        info = wait_for(lambda: self._fresh_info(old), 20, what="daemon to listen")
        self.client = ApiClient(info.url, runtime.admin_token(self.root))
        return self

    def _fresh_info(self, old: runtime.RuntimeInfo | None) -> runtime.RuntimeInfo | None:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"daemon exited early:\n{self.log.read_text()}")
        info = runtime.read_runtime(self.root)
        return info if info is not None and info != old and info.pid == self.proc.pid else None

    @property
    def api(self) -> ApiClient:
        assert self.client is not None
        return self.client

    def stop(self) -> int:
        """Ctrl-C (SIGINT), as a user would; returns the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(15)

    def close(self) -> None:
        """Stop it if it runs, kill every runner process left on its data dir, close the
        client."""
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        _kill_runner_processes(self.root)
        if self.client is not None:
            self.client.session.close()

    def kill(self) -> None:
        """SIGKILL the supervisor itself (its runners live on)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def runner(self, runner_id: int) -> dict[str, Any]:
        return self.api.get(f"/api/v1/runners/{runner_id}")

    def wait_state(
        self, runner_id: int, states: str | set[str], timeout: float = 10.0
    ) -> dict[str, Any]:
        wanted = {states} if isinstance(states, str) else states
        return wait_for(
            lambda: (r := self.runner(runner_id))["state"] in wanted and r,
            timeout,
            what=f"runner {runner_id} to reach {sorted(wanted)}",
        )

    def launch(self, project: str, command: list[str], **fields: Any) -> dict[str, Any]:
        return self.api.post("/api/v1/runners", {"project": project, "command": command, **fields})

    def project(self, name: str, path: Path, **fields: Any) -> dict[str, Any]:
        return self.api.post("/api/v1/projects", {"name": name, "path": str(path), **fields})


@pytest.fixture
def daemon_factory(home: Path) -> Iterator[Callable[..., Daemon]]:
    """Start daemons on ``home``; every one still running is stopped, and every runner
    process they left is killed, at teardown."""
    started: list[Daemon] = []
    env = {**os.environ, "STRATAVORE_HOME": str(home), "PYTHONPATH": str(REPO)}

    def factory(*args: str) -> Daemon:
        daemon = Daemon(home, list(args), env).start()
        started.append(daemon)
        return daemon

    yield factory
    for daemon in started:
        daemon.close()


def _kill_runner_processes(root: Path) -> None:
    """Kill any process a test left behind (identified by its runner environment)."""
    for proc in psutil.process_iter(["environ"]):
        try:
            environ = proc.info["environ"] or {}
        except psutil.Error:
            continue
        if environ.get("STRATAVORE_HOME") == str(root) and proc.pid != os.getpid():
            with contextlib.suppress(psutil.Error):
                proc.kill()


@pytest.fixture
def daemon(daemon_factory: Callable[..., Daemon]) -> Daemon:
    """One running daemon with fast sweeps, for tests that don't care about intervals."""
    return daemon_factory("--sweep-interval", "0.5", "--heartbeat-ttl", "2")


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


def api_error(call: Callable[[], Any]) -> ClientError:
    """The ClientError a call raises (fails the test if it succeeds)."""
    with pytest.raises(ClientError) as info:
        call()
    return info.value


SLEEP = [sys.executable, "-c", "import time; time.sleep(600)"]


# --- the team ledger's PostgreSQL (tests/team/, and the desktop's Team tab) ----------------------
_team_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg() -> Iterator[Cluster]:
    """A PostgreSQL cluster for the whole session (a temp dir outside pytest's own, which is
    private to root: the server runs as ``postgres``); skipped, with the reason, where the
    server cannot be installed or started."""
    from tests.team.pgcluster import ClusterUnavailable, start_cluster

    try:
        cluster = start_cluster(Path(tempfile.mkdtemp(prefix="stratavore-pg-")))
    except ClusterUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for the team tests: {exc}.")
    yield cluster
    cluster.destroy()


@pytest.fixture
def team_db(pg: Cluster) -> str:
    """A fresh, empty team database and its owner role ``team_N`` (password: ``secret-N``);
    the join URL, without the password."""
    n = next(_team_names)
    return pg.create_team(f"team_{n}", f"secret-{n}")
