"""The API while another program holds the database's write lock.

A real daemon with ``--runners`` runners printing ten lines a second (so the log pump writes
their offsets every second) is measured for ``--seconds`` seconds as it is, then for as long
again while another process (this script) holds ``BEGIN EXCLUSIVE`` on its database: one
client calls ``GET /api/v1/health`` back to back (its p50/p99/max), another makes a write
(``POST /api/v1/projects``) every 0.25 s (answers by status, slowest answer).

Variants, each a daemon of its own, measured the same way in the same run:
- ``--busy-ms`` values: the loop connection's busy timeout (``writes.LOOP_BUSY_MS``, patched
  into this run's copy of the sources); the first is the shipped value;
- ``--reference REV``: the supervisor package of a git revision (e.g. the one before the
  write gate, whose loop waited SQLite's 5 s busy timeout).

Run: ``.venv/bin/python bench/db_lock.py --busy-ms 10,0,50 --reference 11f5924``; writes
``bench/results/db_lock.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
from _common import (
    PYTHON,
    REPO,
    SOURCES,
    Daemon,
    Table,
    kill_marked,
    latency_ms,
    machine,
    ratio,
    sigterm_as_interrupt,
    write_results,
)

CHATTY = "import time\nwhile True:\n    print('x' * 60, flush=True)\n    time.sleep(0.1)"


def variant_sources(busy_ms: int | None, reference: str | None) -> Path:
    """A copy of the package: this run's with LOOP_BUSY_MS patched, or a git revision's."""
    target = Path(tempfile.mkdtemp(prefix="stratavore-bench-variant-"))
    if reference is not None:
        archive = subprocess.run(
            ["git", "archive", reference, "supervisor"], cwd=REPO, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
        return target
    shutil.copytree(SOURCES / "supervisor", target / "supervisor")
    writes = target / "supervisor" / "writes.py"
    text, count = re.subn(
        r"^LOOP_BUSY_MS = \d+", f"LOOP_BUSY_MS = {busy_ms}", writes.read_text(), flags=re.M
    )
    assert count == 1, "writes.LOOP_BUSY_MS not found"
    writes.write_text(text)
    return target


class Writer(threading.Thread):
    """A write every 0.25 s; answers by status and their latencies."""

    def __init__(self, daemon: Daemon, tag: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.tag = daemon.url, daemon.token, tag
        self.folder = str(daemon.home)
        self.stop = threading.Event()
        self.statuses: dict[int, int] = {}
        self.latencies: list[float] = []

    def run(self) -> None:
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = f"Bearer {self.token}"
        n = 0
        while not self.stop.wait(0.25):
            n += 1
            body = {"name": f"{self.tag}-{n}", "path": self.folder}
            started = time.perf_counter()
            status = session.post(f"{self.url}/api/v1/projects", json=body, timeout=60).status_code
            self.latencies.append(time.perf_counter() - started)
            self.statuses[status] = self.statuses.get(status, 0) + 1
        session.close()


def hold_lock(db: Path, seconds: float, taken: threading.Event) -> None:
    """This (other) process takes the daemon's database lock and keeps it for ``seconds``."""
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("BEGIN EXCLUSIVE")
        taken.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")


def phase(daemon: Daemon, seconds: float, tag: str) -> dict[str, Any]:
    writer = Writer(daemon, tag)
    writer.start()
    health = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        daemon.session.get(f"{daemon.url}/api/v1/health", timeout=60).raise_for_status()
        health.append(time.perf_counter() - started)
    writer.stop.set()
    writer.join()
    return {
        "health": latency_ms(health),
        "writes": {str(k): v for k, v in sorted(writer.statuses.items())},
        "write_max_ms": round(max(writer.latencies, default=0.0) * 1000, 1),
    }


def measure(label: str, sources: Path, runners: int, seconds: float) -> dict[str, Any]:
    daemon = Daemon(label, {})
    daemon.env["PYTHONPATH"] = str(sources)
    with daemon:
        daemon.project("demo")
        for _ in range(runners):
            daemon.post(
                "/api/v1/runners", {"project": "demo", "command": [str(PYTHON), "-c", CHATTY]}
            )
        time.sleep(2.0)  # started, promoted, pumped
        unlocked = phase(daemon, seconds, "free")
        taken = threading.Event()
        db = daemon.home / "stratavore.db"
        holder = threading.Thread(target=hold_lock, args=(db, seconds + 1.0, taken))
        holder.start()
        taken.wait(30)
        locked = phase(daemon, seconds, "locked")
        holder.join()
    return {"label": label, "unlocked": unlocked, "locked": locked}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runners", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--busy-ms", default="10", help="comma-separated; the first is shipped")
    parser.add_argument("--reference", help="a git revision measured the same way")
    args = parser.parse_args()
    variants: list[tuple[str, int | None, str | None]] = [
        (f"busy {ms} ms" + (" (shipped)" if i == 0 else ""), int(ms), None)
        for i, ms in enumerate(args.busy_ms.split(","))
    ]
    if args.reference:
        variants.append((f"reference {args.reference}", None, args.reference))
    results = []
    with sigterm_as_interrupt():
        try:
            for label, busy_ms, reference in variants:
                sources = variant_sources(busy_ms, reference)
                try:
                    results.append(measure(label, sources, args.runners, args.seconds))
                finally:
                    shutil.rmtree(sources, ignore_errors=True)
                print(f"measured: {label}", file=sys.stderr, flush=True)
        finally:
            kill_marked()
    rows = []
    for r in results:
        free, held = r["unlocked"], r["locked"]
        rows.append(
            [
                r["label"],
                free["health"]["p50_ms"],
                free["health"]["p99_ms"],
                held["health"]["p50_ms"],
                held["health"]["p99_ms"],
                held["health"]["max_ms"],
                ratio(held["health"]["p99_ms"], free["health"]["p99_ms"]),
                held["health"]["count"],
                ", ".join(f"{n}x {s}" for s, n in held["writes"].items()),
                held["write_max_ms"],
            ]
        )
    table = Table(
        f"/health while another program holds the DB lock ({args.runners} runners, "
        f"{args.seconds:g} s each)",
        [
            "variant",
            "free p50 ms",
            "free p99 ms",
            "locked p50 ms",
            "locked p99 ms",
            "locked max ms",
            "p99 locked/free",
            "requests locked",
            "writes locked",
            "slowest write ms",
        ],
        rows,
    )
    print(table.render())
    path = write_results("db_lock", {"machine": machine(), "variants": results})
    print(f"\nresults: {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
