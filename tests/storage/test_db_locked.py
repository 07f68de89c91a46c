"""Another program holds the database's write lock for 10 s under a real supervisor: the API
keeps answering from memory in milliseconds, a write is refused at once with 503 and
Retry-After (one sentence), the CLI waits and says so, and what the supervisor saw meanwhile
(a runner's exit) is written once the lock is gone."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.cli.test_e2e import Cli
from tests.conftest import Daemon, wait_for

PY = sys.executable
HOLD = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


def hold_lock(home: Path, seconds: float) -> subprocess.Popen[str]:
    """Another program: takes the database's write lock and keeps it for ``seconds``."""
    holder = subprocess.Popen(
        [PY, "-c", HOLD, str(home / "stratavore.db"), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def timed(session: requests.Session, method: str, url: str, **kw: object) -> float:
    started = time.perf_counter()
    session.request(method, url, timeout=30, **kw)
    return time.perf_counter() - started


def test_locked_database_never_freezes_the_api_and_refuses_writes_with_503(
    daemon: Daemon, home: Path, project_dir: Path, tmp_path: Path
) -> None:
    daemon.project("demo", project_dir)
    chatty = "import time\nwhile True:\n    print('x', flush=True)\n    time.sleep(0.1)"
    daemon.wait_state(daemon.launch("demo", [PY, "-c", chatty])["id"], "running")  # log pump
    go = tmp_path / "go"
    waits = f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.05)"
    ender = daemon.launch("demo", [PY, "-c", waits])["id"]
    daemon.wait_state(ender, "running")
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {daemon.api.token}"
    base = daemon.api.base_url

    holder = hold_lock(home, 10.0)
    locked_at = time.monotonic()
    try:
        started = time.perf_counter()
        refused = session.post(
            f"{base}/api/v1/runners", json={"project": "demo", "command": [PY, "-c", "pass"]}
        )
        assert time.perf_counter() - started < 1.0  # refused at once, not after 5 s
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert refused.json() == {
            "error": "database_locked",
            "message": f"The database {home / 'stratavore.db'} is locked by another program; "
            "try again in a moment.",
        }
        cli = Cli(home)
        waiting = subprocess.Popen(
            cli.argv(("launch", "demo", "--", *[PY, "-c", "print('late')"])),
            env=cli.env,
            cwd=home,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        go.write_text("")  # runner `ender` exits while nothing can be written
        status = session.get(f"{base}/api/v1/status").json()["storage"]
        assert status.startswith(f"the database is locked by another program: {home}")

        health, listing = [], []
        while time.monotonic() - locked_at < 8.0:
            health.append(timed(session, "GET", f"{base}/api/v1/health"))
            listing.append(timed(session, "GET", f"{base}/api/v1/runners"))
        # before: every request waited for SQLite's 5 s busy timeout on the loop
        assert max(health) < 0.5 and statistics.median(health) < 0.05, sorted(health)[-5:]
        assert max(listing) < 0.5, sorted(listing)[-5:]
    finally:
        holder.wait(20)
        holder.stdout.close()
        session.close()

    out, err = waiting.communicate(timeout=40)
    assert waiting.returncode == 0, err
    assert err == (
        f"stratavore: The database {home / 'stratavore.db'} is locked by another program; try "
        "again in a moment; waiting for it (up to 30 s)...\n"
    )
    daemon.wait_state(int(out), {"running", "exited"})
    assert daemon.wait_state(ender, "exited")["exit_code"] == 0  # seen under the lock, kept
    wait_for(lambda: daemon.api.get("/api/v1/status")["storage"] is None, what="status to clear")
