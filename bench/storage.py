"""The database as a file: backups of a 1M-row ledger, PRAGMA quick_check on a 1 GB database,
and the time to refuse a damaged one, each beside a reference on the same machine.

* A ledger: ``--rows`` usage rows (default 1,000,000: about what a heavy year of Claude Code
  writes) inserted in-process with direct SQL, in a temp data dir, with every index.
* Backup: ``stratavore backup`` (the CLI, a subprocess: Python start-up included) and
  ``backups.take`` in-process (median of ``--repeat``); references: the sqlite3 shell's
  ``.backup`` (the same SQLite API, all in C) and a plain copy of the file. Sizes of the
  database and of the backup (a rollback-journal file, checked with quick_check before it
  counts: that check is part of our time).
* Backup under writes: ``backups.take`` while another connection commits a row every 2 ms
  (a busy supervisor). Ours copies from one read transaction; the reference is the same step
  loop without it, which SQLite restarts from page 1 after every write between steps: its
  page steps and time show what the read transaction saves.
* quick_check: the ledger grown to ``--gib`` (1 GiB), then ``PRAGMA quick_check`` cold (the
  file's pages evicted from the page cache with posix_fadvise, as after a boot) and warm;
  reference: reading the file once, cold.
* Refusal: ``stratavore daemon --port 0`` on that 1 GiB database damaged three ways (garbage
  first page, truncated to half, one page in the middle overwritten), cold cache: wall time
  until it exits with its one sentence; reference: the same daemon on the healthy database,
  until it listens (its start-up runs the same quick_check).

Run: ``.venv/bin/python bench/storage.py``; writes ``bench/results/storage.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _common import (
    PYTHON,
    SOURCES,
    Table,
    kill_marked,
    machine,
    marked_env,
    poll_until,
    ratio,
    runtime,
    sigterm_as_interrupt,
    write_results,
)

from supervisor.core import paths  # the snapshot (_common put it first on sys.path)
from supervisor.storage import backups  # the snapshot (_common put it first on sys.path)
from supervisor.storage.db import close_db, init_db

MODELS = ("claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001")
_INSERT = (
    'INSERT INTO "usage" (ts, agent, model, input_tokens, output_tokens, cache_creation_tokens, '
    "cache_creation_1h_tokens, cache_read_tokens, cost_usd, project_id, runner_id, session_id, "
    "dedupe, rank) VALUES (?, 'claude', ?, ?, ?, ?, 0, ?, ?, NULL, ?, ?, ?, 0)"
)
MiB = 1024 * 1024


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="usage rows of the ledger")
    p.add_argument("--gib", type=float, default=1.0, help="size the ledger grows to for the check")
    p.add_argument("--repeat", type=int, default=3, help="timed runs of each measurement")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def median_s(work: Callable[[], Any], repeat: int) -> float:
    walls = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        walls.append(time.perf_counter() - started)
    return round(statistics.median(walls), 3)


# --- the ledger -------------------------------------------------------------------------------
def add_rows(db: Path, first: int, count: int, rng: random.Random) -> None:
    """``count`` usage rows numbered from ``first``, in transactions of 100,000."""
    start = time.time() - 365 * 86400
    sessions = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(5_000)]

    def rows(lo: int, hi: int) -> Iterator[tuple[Any, ...]]:
        for n in range(lo, hi):
            inp, out = rng.randint(1, 5_000), rng.randint(1, 2_000)
            cache_new, cache_read = rng.randint(0, 20_000), rng.randint(0, 100_000)
            yield (start + rng.random() * 365 * 86400, MODELS[n % 3], inp, out, cache_new,
                   cache_read, (inp * 3 + out * 15) / 1e6, n % 500 or None,
                   sessions[n % len(sessions)], rng.getrandbits(63))  # fmt: skip

    con = sqlite3.connect(db)
    try:
        for lo in range(first, first + count, 100_000):
            with con:
                con.executemany(_INSERT, rows(lo, min(lo + 100_000, first + count)))
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def evict(path: Path) -> None:
    """Drop ``path``'s pages from the page cache (clean ones: it is synced first)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_file(path: Path) -> None:
    with open(path, "rb", buffering=0) as f:
        while f.read(8 * MiB):
            pass


# --- backups ----------------------------------------------------------------------------------
def backup_speed(home: Path, args: argparse.Namespace) -> dict[str, Any]:
    db = paths.db_path(home)
    env = {**marked_env("backup"), "STRATAVORE_HOME": str(home), "PYTHONPATH": str(SOURCES)}
    cli_walls, made = [], None
    for _ in range(args.repeat):
        started = time.perf_counter()
        done = subprocess.run(
            [str(PYTHON), "-m", "supervisor.cli", "backup"], env=env, capture_output=True, text=True
        )
        cli_walls.append(time.perf_counter() - started)
        if done.returncode:
            raise RuntimeError(f"stratavore backup failed: {done.stderr}")
        made = backups.list_backups(home)[-1]
    assert made is not None
    in_process = median_s(lambda: backups.take(db, "manual", keep=2), args.repeat)
    out = home / "reference.db"

    def shell() -> None:
        out.unlink(missing_ok=True)
        subprocess.run(["sqlite3", str(db), f".backup '{out}'"], check=True)

    sqlite_shell = median_s(shell, args.repeat) if shutil.which("sqlite3") else None
    copy = median_s(lambda: shutil.copyfile(db, out), args.repeat)
    out.unlink(missing_ok=True)
    took = round(statistics.median(cli_walls), 3)
    return {
        "rows": args.rows,
        "db_bytes": db.stat().st_size,
        "backup_bytes": made.size,
        "cli_s": took,
        "in_process_s": in_process,
        "sqlite3_shell_backup_s": sqlite_shell,
        "file_copy_s": copy,
        "in_process_vs_shell": ratio(in_process, sqlite_shell),
        "in_process_vs_copy": ratio(in_process, copy),
    }


class GaveUp(Exception):
    """The reference copy ran past its deadline."""


def naive_copy(db: Path, target: Path, deadline_s: float) -> int:
    """The backup API in steps without a read transaction around them; the steps taken. Past
    ``deadline_s`` it gives up (GaveUp), as it may never end under steady writes."""
    steps, began = 0, time.monotonic()

    def count(_status: int, _remaining: int, _total: int) -> None:
        nonlocal steps
        steps += 1
        if time.monotonic() - began > deadline_s:
            raise GaveUp(steps)

    source, dest = sqlite3.connect(db), sqlite3.connect(target)
    try:
        source.backup(dest, pages=backups.STEP_PAGES, progress=count)
    finally:
        dest.close()
        source.close()
    return steps


def under_writes(home: Path) -> dict[str, Any]:
    """Both copies while another connection commits a row every 2 ms."""
    db = paths.db_path(home)
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        con = sqlite3.connect(db, timeout=30)
        try:
            while not stop.is_set():
                with con:
                    con.execute(
                        "INSERT INTO setting (key, value) VALUES ('bench', ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (str(written[0]),),
                    )
                written[0] += 1
                time.sleep(0.002)
        finally:
            con.close()

    pages = db.stat().st_size // 4096
    result: dict[str, Any] = {"pages": pages, "pages_per_step": backups.STEP_PAGES}
    deadline = 60.0
    for name, copy in (
        ("ours", lambda: backups.take(db, "manual", keep=2)),
        ("without_read_transaction", lambda: naive_copy(db, home / "naive.db", deadline)),
    ):
        thread = threading.Thread(target=writer)
        written[0] = 0
        stop.clear()
        thread.start()
        started = time.perf_counter()
        finished = True
        try:
            outcome = copy()
        except GaveUp as exc:
            outcome, finished = exc.args[0], False
        finally:
            took = time.perf_counter() - started
            stop.set()
            thread.join()
        steps = outcome if isinstance(outcome, int) else -(-pages // backups.STEP_PAGES)
        result[name] = {"s": round(took, 3), "steps": steps, "finished": finished,
                        "writes_meanwhile": written[0]}  # fmt: skip
    (home / "naive.db").unlink(missing_ok=True)
    return result


# --- quick_check and refusal ------------------------------------------------------------------
def quick_check(db: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Ours (the file read through once, then PRAGMA quick_check), the pragma alone, and a
    read of the file; cold, and ours warm too."""

    def ours() -> None:
        problem = backups.problem(db, thorough=True)
        assert problem == "", problem

    def pragma_alone() -> None:
        con = sqlite3.connect(db)
        try:
            assert con.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        finally:
            con.close()

    def cold(work: Callable[[], Any]) -> float:
        walls = []
        for _ in range(args.repeat):
            evict(db)
            started = time.perf_counter()
            work()
            walls.append(time.perf_counter() - started)
        return round(statistics.median(walls), 3)

    ours_cold, alone_cold, read_cold = cold(ours), cold(pragma_alone), cold(lambda: read_file(db))
    return {"db_bytes": db.stat().st_size, "cold_s": ours_cold,
            "warm_s": median_s(ours, args.repeat), "pragma_alone_cold_s": alone_cold,
            "read_file_cold_s": read_cold, "cold_vs_read": ratio(ours_cold, read_cold)}  # fmt: skip


def daemon_run(home: Path, until_listening: bool) -> tuple[float, str]:
    """Wall time of ``stratavore daemon`` on ``home`` until it exits (or listens), cold."""
    evict(paths.db_path(home))
    env = {**marked_env("daemon"), "STRATAVORE_HOME": str(home), "PYTHONPATH": str(SOURCES)}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(PYTHON), "-m", "supervisor.cli", "daemon", "--port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if until_listening:
            poll_until(lambda: runtime.read_runtime(home), 120, what="the daemon to listen")
            took = time.perf_counter() - started
            proc.kill()  # its first backup may have begun: not waited for
            proc.wait(30)
            return took, ""
        _, err = proc.communicate(timeout=120)
        took = time.perf_counter() - started
        if proc.returncode != 1:
            raise RuntimeError(f"the daemon was not refused: {err}")
        return took, err.strip()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def refusals(home: Path, args: argparse.Namespace) -> dict[str, Any]:
    db = paths.db_path(home)
    size = db.stat().st_size
    original = home / "healthy.db"
    os.replace(db, original)
    results: dict[str, Any] = {}

    def damaged(name: str, make: Callable[[], None]) -> None:
        walls, line = [], ""
        for _ in range(args.repeat):
            make()
            took, line = daemon_run(home, until_listening=False)
            walls.append(took)
            db.unlink()
        results[name] = {"s": round(statistics.median(walls), 3), "message": line}
        say(f"refused ({name}) in {results[name]['s']} s: {line}")

    def overwrite(offset: int) -> Callable[[], None]:
        def make() -> None:
            shutil.copyfile(original, db)
            with open(db, "r+b") as f:
                f.seek(offset)
                f.write(random.Random(offset).randbytes(4096))

        return make

    def half() -> None:
        shutil.copyfile(original, db)
        os.truncate(db, size // 2)

    damaged("garbage_first_page", overwrite(0))
    damaged("truncated_to_half", half)
    damaged("one_page_in_the_middle", overwrite((size // 2) // 4096 * 4096))
    os.replace(original, db)
    starts = []
    for _ in range(args.repeat):
        took, _ = daemon_run(home, until_listening=True)
        starts.append(took)
        shutil.rmtree(paths.backups_dir(home), ignore_errors=True)
    results["healthy_start_to_listening_s"] = round(statistics.median(starts), 3)
    return results


# --- main -------------------------------------------------------------------------------------
def tables(r: dict[str, Any]) -> list[Table]:
    b, w, q, d = r["backup"], r["under_writes"], r["quick_check"], r["refusal"]
    mb = lambda n: round(n / MiB, 1)  # noqa: E731
    return [
        Table(
            f"Backup of a ledger of {b['rows']:,} usage rows",
            ["what", "seconds", "vs sqlite3 .backup", "vs file copy"],
            [
                ["`stratavore backup` (CLI, wall)", b["cli_s"], None, None],
                ["backups.take in-process (copy + quick_check)", b["in_process_s"],
                 b["in_process_vs_shell"], b["in_process_vs_copy"]],
                ["sqlite3 shell `.backup` (reference)", b["sqlite3_shell_backup_s"], 1.0, None],
                ["file copy (reference)", b["file_copy_s"], None, 1.0],
            ],
        ),
        Table(
            "Sizes",
            ["file", "MiB"],
            [["database", mb(b["db_bytes"])], ["backup", mb(b["backup_bytes"])]],
        ),
        Table(
            f"Backup while a writer commits every 2 ms ({w['pages']:,} pages, "
            f"{w['pages_per_step']} a step)",
            ["copy", "seconds", "steps", "writes meanwhile"],
            [
                ["ours (one read transaction)", w["ours"]["s"], w["ours"]["steps"],
                 w["ours"]["writes_meanwhile"]],
                ["steps without it (reference)" + (
                    "" if w["without_read_transaction"]["finished"] else ": gave up, unfinished"),
                 w["without_read_transaction"]["s"],
                 w["without_read_transaction"]["steps"],
                 w["without_read_transaction"]["writes_meanwhile"]],
            ],
        ),
        Table(
            f"PRAGMA quick_check of a {q['db_bytes'] / 2**30:.2f} GiB database",
            ["what", "seconds"],
            [["ours (read through, then quick_check), cold cache", q["cold_s"]],
             ["ours, warm cache", q["warm_s"]],
             ["PRAGMA quick_check alone, cold (reference)", q["pragma_alone_cold_s"]],
             ["reading the file once, cold (reference)", q["read_file_cold_s"]]],
        ),
        Table(
            "Time to refuse a damaged 1 GiB database (`stratavore daemon`, cold cache)",
            ["damage", "seconds to exit"],
            [["garbage first page", d["garbage_first_page"]["s"]],
             ["truncated to half", d["truncated_to_half"]["s"]],
             ["one page in the middle", d["one_page_in_the_middle"]["s"]],
             ["healthy: start until listening (reference)", d["healthy_start_to_listening_s"]]],
        ),
    ]  # fmt: skip


def main() -> int:
    args = parse_args()
    rng = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="stratavore-bench-storage-"))
    home = base / "home"
    home.mkdir()
    db = paths.db_path(home)
    result: dict[str, Any] = {}
    with sigterm_as_interrupt():
        try:
            init_db(db)
            close_db()
            say(f"writing {args.rows:,} usage rows")
            add_rows(db, 0, args.rows, rng)
            say(f"ledger: {db.stat().st_size / MiB:.0f} MiB; backups")
            result["backup"] = backup_speed(home, args)
            result["under_writes"] = under_writes(home)
            target, rows = int(args.gib * 2**30), args.rows
            while db.stat().st_size < target:
                more = max(100_000, int((target - db.stat().st_size) / db.stat().st_size * rows))
                say(f"growing the ledger by {more:,} rows ({db.stat().st_size / MiB:.0f} MiB)")
                add_rows(db, rows, more, rng)
                rows += more
            result["quick_check"] = {**quick_check(db, args), "rows": rows}
            say(f"quick_check: {result['quick_check']}")
            shutil.rmtree(paths.backups_dir(home))
            result["refusal"] = refusals(home, args)
        finally:
            kill_marked()
            shutil.rmtree(base, ignore_errors=True)
    for table in tables(result):
        print(table.render() + "\n")
    payload = {"machine": machine(), "options": vars(args), "results": result}
    print(f"details: {write_results('storage', payload)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
