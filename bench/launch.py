"""Launch, list, stop and idle cost of N runners: Stratavore vs supervisord vs bare Popen.

For each N (``--n 200 1000``), in one run, on the same machine, ``--repeat`` times (medians
reported):

* launch: time from the first launch request until all N ``sleep 600`` are ``running``.
  Stratavore: N concurrent POST /api/v1/runners (``--concurrency`` in flight), then GET
  /api/v1/runners polled until all N are ``running``; with ``start_secs`` 0 (``running`` =
  spawned and alive) and the default 1. supervisord 4.x (one program, ``numprocs=N``,
  autostart): time from starting supervisord until all N are RUNNING, observed two ways,
  because the observer changes the result: by polling ``getAllProcessInfo`` (what
  ``supervisorctl status`` shows; each request wakes supervisord's 1 s select loop, which
  speeds it up at small N, and costs it over a second of its single thread at N=1000) and by
  watching its log file without sending it any request. A bare ``subprocess.Popen`` loop as
  the floor.
* once, with N up and the supervisor settled: GET /api/v1/runners p50/p99 and
  ``stratavore runners --json`` wall time, vs ``getAllProcessInfo`` and ``supervisorctl
  status``; RSS and idle CPU (``--idle-windows`` windows of ``--idle-window`` s) with 0 and N
  runners; stop-all: N concurrent POST /api/v1/runners/{id}/stop until all are ``stopped``,
  and (on the start_secs=1 runners) one bulk POST /api/v1/runners/stop ``{"all": true}``
  (what ``stratavore kill --all`` sends), vs ``supervisorctl stop all``.

Run: ``.venv/bin/python bench/launch.py --n 200 1000``; writes ``bench/results/launch.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import (
    Daemon,
    Table,
    idle_usage,
    kill_marked,
    latency_ms,
    log_times,
    machine,
    marked_env,
    poll_until,
    ratio,
    settle,
    sigterm_as_interrupt,
    timed_runs,
    verdict,
    write_results,
)
from _supervisord import Supervisord, ensure_venv

COMMAND = ["sleep", "600"]
# Targets (lower is better); launch's is "no slower than supervisord" at the same N.
LIST_TARGET_MS = 50.0
STOP_TARGET_S = 2.0
IDLE_CPU_TARGET = 1.0
# Launch variants, in the order each repetition runs them.
VARIANTS = ["popen", "sd0_log", "s0", "sd0_poll", "sd1_log", "s1", "sd1_poll"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=[200, 1000], help="runner counts")
    p.add_argument("--repeat", type=int, default=3, help="launch measurements per variant")
    p.add_argument("--concurrency", type=int, default=32, help="launch/stop requests in flight")
    p.add_argument("--poll-interval", type=float, default=0.02, metavar="S")
    p.add_argument("--list-requests", type=int, default=50, help="GET /api/v1/runners samples")
    p.add_argument("--cli-runs", type=int, default=10, help="runs of each CLI listing")
    p.add_argument("--idle-window", type=float, default=10.0, metavar="S", help="CPU window")
    p.add_argument("--idle-windows", type=int, default=3, help="consecutive CPU windows")
    p.add_argument("--timeout", type=float, default=300.0, metavar="S", help="per wait")
    return p.parse_args()


def since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def time_calls(call: Callable[[], object], count: int) -> dict[str, float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return latency_ms(samples)


# --- Stratavore -------------------------------------------------------------------------------
def stratavore(
    n: int, start_secs: float, args: argparse.Namespace, full: bool, bulk_stop: bool
) -> dict[str, Any]:
    """Launch ``n`` runners; with ``full``, also the idle, listing and stop-all (one request
    per runner) measurements; with ``bulk_stop``, then stop all with one bulk request."""
    settings = {"max_runners_per_project": n, "max_runners_global": n, "start_secs": start_secs}
    out: dict[str, Any] = {}
    with Daemon(f"launch-{n}-{start_secs:g}", settings) as daemon:
        daemon.project("bench")
        if full:
            settle(daemon.pid)
            out["idle_0"] = idle_usage(daemon.pid, args.idle_window, args.idle_windows)
        body = {"project": "bench", "command": COMMAND}
        wall, started = time.time(), time.perf_counter()
        runners = daemon.post_many([("/api/v1/runners", body)] * n, args.concurrency)
        out["all_accepted_s"] = since(started)
        poll_until(
            lambda: daemon.runner_states().count("running") == n,
            args.timeout,
            args.poll_interval,
            f"{n} Stratavore runners running",
        )
        out["launch_s"] = since(started)
        running = log_times(daemon.home / "logs" / "supervisor.log", "success: runner")
        out["launch_log_s"] = round(max(running) - wall, 3)
        if bulk_stop:
            started = time.perf_counter()
            daemon.post("/api/v1/runners/stop", {"all": True})
            out["bulk_stop_answered_s"] = since(started)
            wait_stopped(daemon, n, args)
            out["bulk_stop_all_s"] = since(started)
        if not full:
            return out
        out["settle_s"] = settle(daemon.pid)
        out["idle_n"] = idle_usage(daemon.pid, args.idle_window, args.idle_windows)
        listed = daemon.get("/api/v1/runners")
        assert len(listed) == n
        out["list_api"] = time_calls(lambda: daemon.get("/api/v1/runners"), args.list_requests)
        out["list_cli"] = timed_runs(daemon.cli("runners", "--json"), args.cli_runs, daemon.env)
        started = time.perf_counter()
        stops = [(f"/api/v1/runners/{r['id']}/stop", {}) for r in runners]
        daemon.post_many(stops, args.concurrency)
        out["stop_accepted_s"] = since(started)
        wait_stopped(daemon, n, args)
        out["stop_all_s"] = since(started)
    return out


def wait_stopped(daemon: Daemon, n: int, args: argparse.Namespace) -> None:
    poll_until(
        lambda: daemon.get("/api/v1/status")["runners"]["stopped"] == n,
        args.timeout,
        args.poll_interval,
        f"{n} Stratavore runners stopped",
    )


# --- supervisord ------------------------------------------------------------------------------
def supervisord(
    n: int, startsecs: float, observe: str, args: argparse.Namespace, full: bool
) -> dict[str, Any]:
    """Start supervisord with ``n`` autostarted copies; ``observe`` "poll" (getAllProcessInfo)
    or "log" (its log file only). With ``full``, also the idle, listing and stop measurements."""
    out: dict[str, Any] = {}
    with Supervisord(f"launch-{n}-{startsecs:g}-{observe}", n, startsecs) as sd:
        wall, started = time.time(), time.perf_counter()
        sd.start()
        if observe == "poll":
            sd.wait_all("RUNNING", args.timeout, args.poll_interval)
            out["launch_s"] = since(started)
        else:
            out["launch_s"] = round(max(sd.wait_log(args.timeout, args.poll_interval)) - wall, 3)
        out["launch_log_s"] = round(max(sd.running_times()) - wall, 3)
        states = sd.states() or []
        if states.count("RUNNING") != n:
            raise RuntimeError(f"supervisord: {states.count('RUNNING')} of {n} RUNNING")
        if not full:
            return out
        out["settle_s"] = settle(sd.pid)
        out["idle_n"] = idle_usage(sd.pid, args.idle_window, args.idle_windows)
        out["list_rpc"] = time_calls(sd.rpc.supervisor.getAllProcessInfo, args.list_requests)
        out["list_ctl"] = timed_runs(sd.ctl("status"), args.cli_runs, sd.env)
        started = time.perf_counter()
        subprocess.run(sd.ctl("stop", "all"), env=sd.env, stdout=subprocess.DEVNULL, check=True)
        out["stop_all_s"] = since(started)
        states = sd.states() or []
        if states.count("STOPPED") != n:
            raise RuntimeError(f"supervisorctl stop all: {states.count('STOPPED')} of {n} STOPPED")
    with Supervisord(f"idle-{n}", 0, 0) as empty:
        empty.start()
        poll_until(lambda: empty.states() is not None, args.timeout, args.poll_interval)
        settle(empty.pid)
        out["idle_0"] = idle_usage(empty.pid, args.idle_window, args.idle_windows)
    return out


# --- bare Popen -------------------------------------------------------------------------------
def bare_popen(n: int) -> dict[str, Any]:
    env = marked_env("popen")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        started = time.perf_counter()
        for _ in range(n):
            procs.append(subprocess.Popen(COMMAND, env=env, stdin=subprocess.DEVNULL))
        return {"launch_s": since(started)}
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def run_variant(name: str, n: int, args: argparse.Namespace, full: bool) -> dict[str, Any]:
    """One measurement of variant ``name`` (see VARIANTS), with the 1-minute load average
    before it (other work on the machine shows up there). ``full``: the once-per-N extras (the
    details for start secs 0, the bulk stop for Stratavore's start_secs=1 runners)."""
    load = round(os.getloadavg()[0], 2)
    print(f"N={n}: {name}{' (with details)' if full else ''}, load {load}", file=sys.stderr)
    if name == "popen":
        out = bare_popen(n)
    elif name.startswith("sd"):
        startsecs, observe = int(name[2]), name.split("_")[1]
        out = supervisord(n, startsecs, observe, args, full)
    else:
        start_secs = int(name[1])
        out = stratavore(n, start_secs, args, full and start_secs == 0, full and start_secs == 1)
    return {"loadavg_1m": load, **out}


# --- report -----------------------------------------------------------------------------------
def median_launch(reps: list[dict[str, Any]]) -> float:
    return round(statistics.median(r["launch_s"] for r in reps), 3)


def tables(results: dict[int, dict[str, list[dict[str, Any]]]], repeat: int) -> list[Table]:
    launch, ratios, listing, stop, idle = [], [], [], [], []
    for n, r in results.items():
        m = {name: median_launch(reps) for name, reps in r.items()}
        best0, best1 = min(m["sd0_log"], m["sd0_poll"]), min(m["sd1_log"], m["sd1_poll"])
        launch.append(
            [
                n,
                m["s0"],
                m["s1"],
                m["sd0_log"],
                m["sd0_poll"],
                m["sd1_log"],
                m["sd1_poll"],
                m["popen"],
            ]
        )
        ratios.append(
            [
                n,
                ratio(m["s0"], m["sd0_log"]),
                ratio(m["s0"], m["sd0_poll"]),
                ratio(m["s1"], m["sd1_log"]),
                ratio(m["s1"], m["sd1_poll"]),
                ratio(m["s0"], m["popen"]),
                verdict(m["s0"], best0) + " / " + verdict(m["s1"], best1),
            ]
        )
        s, d = r["s0"][0], r["sd0_log"][0]
        api, cli, rpc, ctl = s["list_api"], s["list_cli"], d["list_rpc"], d["list_ctl"]
        listing.append(
            [
                n,
                api["p50_ms"],
                api["p99_ms"],
                cli["median_ms"],
                rpc["p50_ms"],
                rpc["p99_ms"],
                ctl["median_ms"],
                ratio(api["p50_ms"], rpc["p50_ms"]),
                ratio(cli["median_ms"], ctl["median_ms"]),
                verdict(api["p50_ms"], LIST_TARGET_MS)
                + " / "
                + verdict(api["p99_ms"], LIST_TARGET_MS),
            ]
        )
        bulk = r["s1"][0]
        stop.append(
            [
                n,
                s["stop_accepted_s"],
                s["stop_all_s"],
                bulk["bulk_stop_all_s"],
                d["stop_all_s"],
                ratio(s["stop_all_s"], d["stop_all_s"]),
                ratio(bulk["bulk_stop_all_s"], d["stop_all_s"]),
                verdict(s["stop_all_s"], STOP_TARGET_S)
                + " / "
                + verdict(bulk["bulk_stop_all_s"], STOP_TARGET_S),
            ]
        )
        idle.append(
            [
                n,
                s["idle_0"]["rss_mb"],
                s["idle_n"]["rss_mb"],
                s["idle_0"]["cpu_percent_mean"],
                s["idle_n"]["cpu_percent_min"],
                s["idle_n"]["cpu_percent_mean"],
                s["settle_s"],
                d["idle_0"]["rss_mb"],
                d["idle_n"]["rss_mb"],
                d["idle_0"]["cpu_percent_mean"],
                d["idle_n"]["cpu_percent_min"],
                d["idle_n"]["cpu_percent_mean"],
                d["settle_s"],
                verdict(s["idle_n"]["cpu_percent_min"], IDLE_CPU_TARGET)
                + " / "
                + verdict(s["idle_n"]["cpu_percent_mean"], IDLE_CPU_TARGET),
            ]
        )
    return [
        Table(
            f"Launch: seconds from the first request until all N are running (median of {repeat})",
            [
                "N",
                "Stratavore start_secs=0",
                "Stratavore start_secs=1",
                "supervisord startsecs=0 (log)",
                "supervisord startsecs=0 (polled)",
                "supervisord startsecs=1 (log)",
                "supervisord startsecs=1 (polled)",
                "bare Popen",
            ],
            launch,
        ),
        Table(
            "Launch ratios (Stratavore / other; below 1 is faster)",
            [
                "N",
                "S0 / sd0 (log)",
                "S0 / sd0 (polled)",
                "S1 / sd1 (log)",
                "S1 / sd1 (polled)",
                "S0 / Popen",
                "target <= faster supervisord (start secs 0 / 1)",
            ],
            ratios,
        ),
        Table(
            "Listing N running runners (ms)",
            [
                "N",
                "GET /runners p50",
                "GET /runners p99",
                "`stratavore runners --json` median",
                "getAllProcessInfo p50",
                "getAllProcessInfo p99",
                "`supervisorctl status` median",
                "API / RPC p50",
                "CLI / ctl",
                f"target <= {LIST_TARGET_MS:g} ms (p50 / p99)",
            ],
            listing,
        ),
        Table(
            "Stop all N runners (s)",
            [
                "N",
                "Stratavore, N requests: all answered",
                "Stratavore, N requests: all stopped",
                "Stratavore, 1 bulk request: all stopped",
                "`supervisorctl stop all`",
                "S (N requests) / sd",
                "S (bulk) / sd",
                f"target <= {STOP_TARGET_S:g} s (N requests / bulk)",
            ],
            stop,
        ),
        Table(
            "Supervisor process: RSS (MB), idle CPU (% of one core), settle time after launch (s)",
            [
                "N",
                "S RSS 0",
                "S RSS N",
                "S CPU 0",
                "S CPU N (quietest 10 s)",
                "S CPU N (mean)",
                "S settle",
                "sd RSS 0",
                "sd RSS N",
                "sd CPU 0",
                "sd CPU N (quietest 10 s)",
                "sd CPU N (mean)",
                "sd settle",
                f"target <= {IDLE_CPU_TARGET:g} % (quietest / mean)",
            ],
            idle,
        ),
    ]


def main() -> int:
    args = parse_args()
    version = ensure_venv()
    results: dict[int, dict[str, list[dict[str, Any]]]] = {}
    with sigterm_as_interrupt():
        try:
            for n in args.n:
                results[n] = {name: [] for name in VARIANTS}
                for rep in range(args.repeat):
                    for name in VARIANTS:
                        full = rep == 0 and name in ("s0", "s1", "sd0_log")
                        results[n][name].append(run_variant(name, n, args, full))
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            kill_marked()
    rendered = tables(results, args.repeat)
    for table in rendered:
        print(table.render() + "\n")
    payload = {
        "machine": machine(),
        "supervisord_version": version,
        "options": vars(args),
        "targets": {
            "launch": "<= supervisord at the same N",
            "list_ms": LIST_TARGET_MS,
            "stop_all_s": STOP_TARGET_S,
            "idle_cpu_percent": IDLE_CPU_TARGET,
        },
        "results": {str(n): r for n, r in results.items()},
        "tables": [t.render() for t in rendered],
    }
    print(f"wrote {write_results('launch', payload)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
