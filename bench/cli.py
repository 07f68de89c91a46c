"""CLI start-up: ``stratavore runners --json`` with N runners and ``stratavore --version``, vs
``supervisorctl status`` with N programs and ``supervisorctl version``, on the same machine in
one run.

A daemon with N ``sleep 600`` runners and a supervisord with N programs are started once; the
commands then run in turn (A B C D, A B C D, ...), so a drift of the machine's speed touches
them all alike, and each one's median wall time is reported with the ratio Stratavore /
supervisorctl. ``--baseline REV`` adds the CLI of another revision (``git archive REV
supervisor``) to the turn, against the same daemon: a before/after of the CLI itself.

Run: ``.venv/bin/python bench/cli.py --n 200 --runs 30 [--baseline REV]``; writes
``bench/results/cli.json``.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    VENV_BIN,
    Daemon,
    Table,
    kill_marked,
    machine,
    poll_until,
    ratio,
    sigterm_as_interrupt,
    write_results,
)
from _supervisord import Supervisord, ensure_venv

COMMAND = ["sleep", "600"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200, help="runners (and supervisord programs)")
    p.add_argument("--runs", type=int, default=30, help="timed runs of each command")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs of each command first")
    p.add_argument("--baseline", metavar="REV", help="also time the CLI of this git revision")
    p.add_argument("--timeout", type=float, default=300.0, metavar="S", help="per wait")
    return p.parse_args()


def baseline_sources(rev: str) -> Path:
    """``supervisor/`` of ``rev`` in a temp dir removed at exit."""
    target = Path(tempfile.mkdtemp(prefix="stratavore-bench-baseline-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    archive = subprocess.run(
        ["git", "archive", rev, "supervisor"], cwd=REPO, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def start_both(n: int, timeout: float) -> tuple[Daemon, Supervisord]:
    """A daemon and a supervisord, each with ``n`` sleepers running."""
    daemon = Daemon(f"cli-{n}", {"max_runners_per_project": n, "max_runners_global": n})
    daemon.start()
    daemon.project("bench")
    daemon.post_many([("/api/v1/runners", {"project": "bench", "command": COMMAND})] * n, 32)
    poll_until(
        lambda: daemon.runner_states().count("running") == n, timeout, 0.05, "runners running"
    )
    sd = Supervisord(f"cli-{n}", n, 0)
    sd.start()
    sd.wait_all("RUNNING", timeout, 0.05)
    return daemon, sd


def commands(
    daemon: Daemon, sd: Supervisord, baseline: Path | None
) -> dict[str, tuple[list[str], dict[str, str]]]:
    """name -> (argv, env) of every command timed."""
    stratavore = str(VENV_BIN / "stratavore")
    timed = {
        "runners --json": ([stratavore, "runners", "--json"], daemon.env),
        "--version": ([stratavore, "--version"], daemon.env),
        "supervisorctl status": (sd.ctl("status"), sd.env),
        "supervisorctl version": (sd.ctl("version"), sd.env),
    }
    if baseline is not None:
        env = {**daemon.env, "PYTHONPATH": str(baseline)}
        timed["baseline runners --json"] = ([stratavore, "runners", "--json"], env)
        timed["baseline --version"] = ([stratavore, "--version"], env)
    return timed


def run_once(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 3):  # supervisorctl status: 3 when some are not RUNNING
        raise RuntimeError(f"{argv} failed ({done.returncode}): {done.stderr.decode()}")
    return wall


def time_in_turn(
    timed: dict[str, tuple[list[str], dict[str, str]]], runs: int, warmup: int
) -> dict[str, dict[str, Any]]:
    """Each command run once per turn, ``warmup`` + ``runs`` turns: ms median and spread."""
    walls: dict[str, list[float]] = {name: [] for name in timed}
    for turn in range(warmup + runs):
        for name, (argv, env) in timed.items():
            wall = run_once(argv, env)
            if turn >= warmup:
                walls[name].append(wall * 1000)
    return {
        name: {
            "median_ms": round(statistics.median(w), 1),
            "min_ms": round(min(w), 1),
            "max_ms": round(max(w), 1),
            "runs": len(w),
        }
        for name, w in walls.items()
    }


def table(n: int, results: dict[str, dict[str, Any]]) -> Table:
    def median(name: str) -> float | None:
        return results[name]["median_ms"] if name in results else None

    rows = []
    for ours, theirs in (("runners --json", "supervisorctl status"),
                         ("--version", "supervisorctl version")):  # fmt: skip
        rows.append([
            f"`stratavore {ours}`", median(ours), median(f"baseline {ours}"),
            f"`{theirs}`", median(theirs), ratio(median(ours), median(theirs)),
            ratio(median(f"baseline {ours}"), median(theirs)),
        ])  # fmt: skip
    headers = ["command", "ms", "baseline ms", "peer", "peer ms", "ratio", "baseline ratio"]
    return Table(f"CLI start with {n} runners (median wall ms)", headers, rows)


def main() -> int:
    args = parse_args()
    version = ensure_venv()
    baseline = baseline_sources(args.baseline) if args.baseline else None
    with sigterm_as_interrupt():
        daemon = sd = None
        try:
            daemon, sd = start_both(args.n, args.timeout)
            results = time_in_turn(commands(daemon, sd, baseline), args.runs, args.warmup)
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            for system in (sd, daemon):
                if system is not None:
                    system.close()
            kill_marked()
    rendered = table(args.n, results)
    print(rendered.render() + "\n")
    payload = {
        "machine": machine(),
        "supervisord_version": version,
        "options": vars(args),
        "results": results,
        "tables": [rendered.render()],
    }
    print(f"wrote {write_results('cli', payload)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
