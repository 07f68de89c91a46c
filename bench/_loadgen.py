"""Heartbeat load generator with aiohttp, run as its own process.

``_loadgen.py URL TARGETS DURATION CONNECTIONS [RATE]``: POST heartbeats for ``DURATION``
seconds over at most ``CONNECTIONS`` keep-alive connections, rotating through the
``id token`` lines of ``TARGETS``, and print one JSON line in the shape the wrk script prints.

* Without ``RATE`` (closed loop, for machines without ``wrk``): each connection sends its next
  request as soon as the previous answer arrives. A Python client saturates its own core well
  before a fast server: read its throughput as a floor.
* With ``RATE`` (open loop): requests are sent on a fixed schedule of ``RATE`` a second
  whatever the answers do, and each latency counts from the request's scheduled time, so a
  stalled server shows up in full (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from itertools import count
from typing import Any

import aiohttp

BODY = b'{"state":"running","cpu_percent":1.5,"rss_bytes":123456}'


class Client:
    def __init__(self, session: aiohttp.ClientSession, targets: list[tuple[str, str]]) -> None:
        self.session = session
        self.targets = targets
        self.turn = count()
        self.latencies: list[float] = []
        self.bad = 0

    async def beat(self, since: float | None = None) -> None:
        """One heartbeat; its latency counts from ``since`` (default: now)."""
        runner_id, token = self.targets[next(self.turn) % len(self.targets)]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        started = time.perf_counter() if since is None else since
        async with self.session.post(
            f"/api/v1/runners/{runner_id}/heartbeat", data=BODY, headers=headers
        ) as response:
            await response.read()
            self.bad += response.status >= 300
        self.latencies.append(time.perf_counter() - started)


async def closed_loop(client: Client, duration: float, conns: int) -> None:
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            await client.beat()

    await asyncio.gather(*(worker() for _ in range(conns)))


async def open_loop(client: Client, duration: float, rate: float) -> None:
    start = time.perf_counter()
    tasks = []
    for i in range(int(duration * rate)):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(client.beat(since=scheduled)))
    await asyncio.gather(*tasks)


async def run(
    url: str, targets: list[tuple[str, str]], duration: float, conns: int, rate: float
) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=conns)
    async with aiohttp.ClientSession(url, connector=connector) as session:
        client = Client(session, targets)
        started = time.perf_counter()
        if rate > 0:
            await open_loop(client, duration, rate)
        else:
            await closed_loop(client, duration, conns)
        elapsed = time.perf_counter() - started
    latencies = sorted(client.latencies)

    def pct(q: float) -> int:
        return round(latencies[min(int(len(latencies) * q / 100), len(latencies) - 1)] * 1e6)

    return {
        "requests": len(latencies),
        "duration_us": round(elapsed * 1e6),
        "errors_status": client.bad,
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "p999_us": pct(99.9),
        "max_us": round(latencies[-1] * 1e6),
        "mean_us": sum(latencies) / len(latencies) * 1e6,
    }


def main() -> None:
    url, targets_file, duration, conns = sys.argv[1:5]
    rate = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    with open(targets_file) as f:
        targets = [(a, b) for a, b in (line.split() for line in f if line.strip())]
    print(json.dumps(asyncio.run(run(url, targets, float(duration), int(conns), rate))))


if __name__ == "__main__":
    main()
