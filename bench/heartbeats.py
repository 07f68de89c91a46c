"""Heartbeat ingestion: how many POST /api/v1/runners/{id}/heartbeat a second, and how fast.

Registers ``--agents`` simulated agents (POST /api/v1/runners/register, each for a process of
its own: one ``sleep 600`` per agent, since a live process can be registered only once), then
drives heartbeats, each with its agent's own token, as fast as the load generator can for
``--duration`` seconds. The load generator is ``wrk`` (a Lua script rotating through
ids and tokens) or, without it, an aiohttp client; either runs as a separate process pinned to
another core than the server. Reported: throughput, client-side p50/p99, the server-side
``stratavore_heartbeat_latency_seconds`` histogram from /metrics, and the server's CPU.

Then, since latency at saturation is set by the number of connections over the throughput
(Little's law), a second run sends ``--paced-rate`` heartbeats a second on a fixed schedule
(open loop, aiohttp client) and reports latency at that load: 1,000/s is ten times what 1,000
agents send at the default 10 s interval.

The reference, measured the same two ways in the same run: a trivial aiohttp POST handler that
returns ``{"ok":true}`` on the same kind of loop, so the ratio shows Stratavore's own overhead.
Both servers are up together and measured alternately, ``--rounds`` times; the tables show the
medians (every round is in the JSON).

Run: ``.venv/bin/python bench/heartbeats.py --agents 1000 --duration 10``; writes
``bench/results/heartbeats.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    PYTHON,
    Daemon,
    Table,
    cpu_seconds,
    kill_marked,
    machine,
    marked_env,
    ratio,
    sigterm_as_interrupt,
    stop_process,
    verdict,
    write_results,
)

THROUGHPUT_TARGET = 10_000.0
P99_TARGET_MS = 10.0
BODY = '{"state":"running","cpu_percent":1.5,"rss_bytes":123456}'
HISTOGRAM = "stratavore_heartbeat_latency_seconds"
WRK_SCRIPT = """\
local targets = {}
for line in io.lines("%(targets)s") do
  local id, token = line:match("(%%d+) (%%S+)")
  targets[#targets + 1] = {"/api/v1/runners/" .. id .. "/heartbeat", "Bearer " .. token}
end
local body = '%(body)s'
local i = 0

function request()
  i = i + 1
  local t = targets[i %% #targets + 1]
  return wrk.format("POST", t[1], {["Content-Type"] = "application/json",
                                   ["Authorization"] = t[2]}, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%%d,"duration_us":%%d,"errors_status":%%d,"errors_socket":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"p999_us":%%d,"max_us":%%d,"mean_us":%%f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--duration", type=float, default=10.0, metavar="S")
    p.add_argument("--warmup", type=float, default=2.0, metavar="S", help="unmeasured run first")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians shown)")
    p.add_argument(
        "--paced-rate",
        type=float,
        default=1000.0,
        metavar="R",
        help="heartbeats/s of the open-loop latency run (0: skip it)",
    )
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument(
        "--client", choices=["auto", "wrk", "aiohttp"], default="auto", help="load generator"
    )
    p.add_argument(
        "--no-pin", action="store_true", help="do not pin server and client to separate cores"
    )
    return p.parse_args()


# --- load generation --------------------------------------------------------------------------
class LoadGen:
    """Runs the chosen load generator against a URL with a targets file of ``id token``."""

    def __init__(self, args: argparse.Namespace, workdir: Path, targets: Path) -> None:
        self.args = args
        self.kind = args.client
        if self.kind == "auto":
            self.kind = "wrk" if shutil.which("wrk") else "aiohttp"
        self.targets = targets
        self.script = workdir / "heartbeat.lua"
        self.script.write_text(WRK_SCRIPT % {"targets": targets, "body": BODY})
        cores = os.cpu_count() or 1
        self.pin = [] if args.no_pin or cores < 2 else ["taskset", "-c", f"1-{cores - 1}"]

    def warm_up(self, url: str) -> None:
        """An unmeasured run first (connections, caches, the server's first requests)."""
        if self.args.warmup > 0:
            self.run(url, self.args.warmup)

    def run(self, url: str, duration: float, rate: float = 0.0) -> dict[str, Any]:
        """As fast as possible (closed loop), or at ``rate`` a second (open loop, aiohttp)."""
        a = self.args
        if self.kind == "wrk" and rate <= 0:
            argv = ["wrk", f"-t{a.threads}", f"-c{a.connections}", f"-d{max(duration, 1):g}s"]
            argv += ["--timeout", "10s", "-s", str(self.script), url]
        else:
            argv = [str(PYTHON), str(BENCH_DIR / "_loadgen.py"), url, str(self.targets)]
            argv += [f"{duration:g}", str(a.connections), f"{rate:g}"]
        done = subprocess.run(
            self.pin + argv, env=marked_env("loadgen"), capture_output=True, text=True, check=True
        )
        line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
        raw = json.loads(line)
        seconds = raw["duration_us"] / 1e6
        return {
            "requests": raw["requests"],
            "per_second": round(raw["requests"] / seconds, 1),
            "non_2xx": raw["errors_status"],
            "socket_errors": raw.get("errors_socket", 0),
            **{f"{k[:-3]}_ms": round(raw[k] / 1000, 3) for k in raw if k.endswith("_us")},
        }


def measure(
    load: LoadGen, url: str, pid: int, args: argparse.Namespace, metrics: Callable[[], str] | None
) -> dict[str, Any]:
    """The saturating run, then the paced run, against one server; each with the server's CPU
    (% of one core) and, given ``metrics`` (a /metrics scrape), the heartbeat histogram's
    bucket counts over it."""
    out: dict[str, Any] = {}
    for mode, rate in (("max", 0.0), ("paced", args.paced_rate)):
        if mode == "paced" and rate <= 0:
            continue
        before = buckets(metrics()) if metrics else {}
        cpu_before, started = cpu_seconds(pid), time.perf_counter()
        result = load.run(url, args.duration, rate)
        busy = cpu_seconds(pid) - cpu_before
        result["server_cpu_percent"] = round(busy / (time.perf_counter() - started) * 100, 1)
        if metrics:
            after = buckets(metrics())
            result["histogram"] = {k: after[k] - before.get(k, 0.0) for k in after}
        out[mode] = result
    return out


def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per mode, the median of each number over the rounds; histogram counts are summed."""
    out: dict[str, Any] = {}
    for mode in rounds[0]:
        runs = [r[mode] for r in rounds]
        out[mode] = {
            key: statistics.median(run[key] for run in runs)
            for key, value in runs[0].items()
            if isinstance(value, int | float)
        }
        if "histogram" in runs[0]:
            total = {k: sum(run["histogram"][k] for run in runs) for k in runs[0]["histogram"]}
            out[mode]["server_histogram"] = server_histogram(total)
    return out


# --- server-side histogram --------------------------------------------------------------------
def buckets(metrics_text: str) -> dict[str, float]:
    """``le`` -> cumulative count of the heartbeat histogram, plus ``sum`` and ``count``."""
    out: dict[str, float] = {}
    for line in metrics_text.splitlines():
        m = re.match(rf'{HISTOGRAM}_(?:bucket{{le="([^"]+)"}}|(sum|count)) (\S+)', line)
        if m:
            out[m.group(1) or m.group(2)] = float(m.group(3))
    return out


def bucket_bound(q: float, cumulative: list[tuple[float, float]]) -> float | None:
    """Upper bound of the bucket holding the ``q`` quantile (what a histogram can tell)."""
    total = cumulative[-1][1]
    if total == 0:
        return None
    return next(bound for bound, count in cumulative if count >= q * total)


def server_histogram(diff: dict[str, float]) -> dict[str, Any]:
    """Count, exact mean, and the bucket bounds of p50 and p99 of histogram counts."""
    count = diff.get("count", 0.0)
    cumulative = sorted((float(k), v) for k, v in diff.items() if k not in ("sum", "count"))
    p50, p99 = bucket_bound(0.5, cumulative), bucket_bound(0.99, cumulative)
    return {
        "count": int(count),
        "mean_ms": round(diff["sum"] / count * 1000, 4) if count else None,
        "p50_le_ms": None if p50 is None else p50 * 1000,
        "p99_le_ms": None if p99 is None else p99 * 1000,
    }


# --- the two servers --------------------------------------------------------------------------
@contextlib.contextmanager
def reference_server(pin: bool) -> Iterator[tuple[str, int]]:
    argv = [str(PYTHON), str(BENCH_DIR / "_reference_server.py")]
    if pin and shutil.which("taskset"):
        argv = ["taskset", "-c", "0", *argv]
    proc = subprocess.Popen(argv, env=marked_env("reference"), stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        stop_process(proc)


def stratavore(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n = args.agents
    settings = {"max_runners_per_project": n, "max_runners_global": n}
    env = marked_env("agents")
    agents = []
    try:
        for _ in range(n):
            agents.append(subprocess.Popen(["sleep", "600"], env=env, stdin=subprocess.DEVNULL))
        with (
            Daemon("heartbeats", settings, cpus=None if args.no_pin else [0]) as daemon,
            reference_server(not args.no_pin) as (ref_url, ref_pid),
        ):
            folder = daemon.project("agents")
            bodies = [
                {"command": ["agent"], "pid": a.pid, "cwd": str(folder), "project": "agents"}
                for a in agents
            ]
            started = time.perf_counter()
            registered = daemon.post_many(
                [("/api/v1/runners/register", body) for body in bodies], 32
            )
            out["register_s"] = round(time.perf_counter() - started, 3)
            targets = workdir / "targets.txt"
            targets.write_text("".join(f"{r['runner']['id']} {r['token']}\n" for r in registered))
            load = LoadGen(args, workdir, targets)
            out["client"] = load.kind
            load.warm_up(daemon.url)
            load.warm_up(ref_url)
            metrics = functools.partial(daemon.get, "/metrics")
            rounds = []
            for i in range(args.rounds):  # interleaved, so both see the same machine
                print(f"round {i + 1} of {args.rounds}", file=sys.stderr, flush=True)
                rounds.append(
                    {
                        "stratavore": measure(load, daemon.url, daemon.pid, args, metrics),
                        "reference": measure(load, ref_url, ref_pid, args, None),
                    }
                )
            out["rounds"] = rounds
            for server in ("stratavore", "reference"):
                out[server] = medians([r[server] for r in rounds])
            time.sleep(1.5)  # a heartbeat flush
            beats = [r["last_heartbeat"] for r in daemon.get("/api/v1/runners")]
            out["runners_with_heartbeat"] = sum(b is not None for b in beats)
    finally:
        for agent in agents:
            agent.kill()
        for agent in agents:
            agent.wait()
    return out


def client_row(label: str, m: dict[str, Any], verdicts: str = "-") -> list[Any]:
    return [
        label,
        m["per_second"],
        m["p50_ms"],
        m["p99_ms"],
        m["max_ms"],
        m["non_2xx"] + m["socket_errors"],
        m["server_cpu_percent"],
        verdicts,
    ]


def tables(r: dict[str, Any], args: argparse.Namespace) -> list[Table]:
    s, ref = r["stratavore"], r["reference"]
    loads = {
        "max": f"as fast as possible ({r['client']}, {args.connections} connections)",
        "paced": f"paced at {args.paced_rate:g}/s (aiohttp, open loop)",
    }
    rows = []
    for mode, a in s.items():
        b = ref[mode]
        rate_ok = (
            verdict(a["per_second"], THROUGHPUT_TARGET, higher_is_better=True)
            if mode == "max"
            else "-"
        )
        rows.append(
            client_row(
                f"Stratavore, {loads[mode]}",
                a,
                f"{rate_ok} / {verdict(a['p99_ms'], P99_TARGET_MS)}",
            )
        )
        rows.append(client_row(f"reference, {loads[mode]}", b))
        rows.append(
            [
                "Stratavore / reference",
                ratio(a["per_second"], b["per_second"]),
                ratio(a["p50_ms"], b["p50_ms"]),
                ratio(a["p99_ms"], b["p99_ms"]),
                ratio(a["max_ms"], b["max_ms"]),
                "-",
                ratio(a["server_cpu_percent"], b["server_cpu_percent"]),
                "-",
            ]
        )
    server = [
        [
            mode,
            h["count"],
            h["mean_ms"],
            f"<= {h['p50_le_ms']:g}",
            f"<= {h['p99_le_ms']:g}",
        ]
        for mode, h in ((mode, m["server_histogram"]) for mode, m in s.items())
    ]
    return [
        Table(
            f"Heartbeats from {args.agents} agents, client side "
            f"(medians of {args.rounds} interleaved rounds of {args.duration:g} s runs)",
            [
                "server, load",
                "heartbeats/s",
                "p50 ms",
                "p99 ms",
                "max ms",
                "errors",
                "server CPU %",
                f"target >= {THROUGHPUT_TARGET:,.0f}/s / p99 <= {P99_TARGET_MS:g} ms",
            ],
            rows,
        ),
        Table(
            f"Server side: {HISTOGRAM} (handler time) over all rounds; "
            f"registering {args.agents} agents took {r['register_s']} s; "
            f"{r['runners_with_heartbeat']} of {args.agents} runners show a stored heartbeat",
            ["run", "observed", "mean ms", "p50 ms (bucket)", "p99 ms (bucket)"],
            server,
        ),
    ]


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="stratavore-bench-heartbeats-"))
    with sigterm_as_interrupt():
        try:
            result = stratavore(args, workdir)
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            kill_marked()
            shutil.rmtree(workdir, ignore_errors=True)
    rendered = tables(result, args)
    for table in rendered:
        print(table.render() + "\n")
    payload = {
        "machine": machine(),
        "options": vars(args),
        "targets": {"heartbeats_per_s": THROUGHPUT_TARGET, "p99_ms": P99_TARGET_MS},
        "results": result,
        "tables": [t.render() for t in rendered],
    }
    print(f"wrote {write_results('heartbeats', payload)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
