"""The outbox dispatcher: deliveries/s, state change to delivery latency, kill -9 durability.

Every event comes from real supervisor activity: quick runners (``/bin/true``, launched with
POST /api/v1/runners, ``start_secs`` 0) each write ``runner.starting``, ``runner.running`` and
``runner.exited`` in the transactions of those changes. Webhook channels (PUT
/api/v1/notify/channels/NAME) all point at one sink, its own process: a minimal asyncio HTTP
server that records, for each POST, the time it fully arrived, the channel (its path), the
``Idempotency-Key`` and the body's ``event_ids``; each daemon's channels have paths of their
own there. Event times come from the database (the API rounds them to the millisecond; the
set of events and their times are checked against GET /api/v1/events).

For each channel count (``--channels 1 4 16``), on a fresh daemon:

* paced: runners launched on a fixed schedule (open loop) for ``--paced-rate`` events/s
  during ``--paced-seconds``; latency = sink receive time minus the event's ``ts``, first
  receipt of each (channel, event), p50/p99.
* burst ("full rate"): about ``--deliveries`` deliveries' worth of runners launched as fast
  as the supervisor takes them. deliveries/s = deliveries / (last receipt - first event);
  drain/s = the deliveries still to go when the last event was written / the time they took
  (the dispatcher alone, nothing else to do); peak = the busiest second. Latency as above.
* backlog ("drain"): the sink holds its answers (it records each POST, answers none) while
  about ``--backlog`` deliveries' worth of runners run and end, so every delivery is written
  and waits in the outbox with only the in-flight ones on their way; then the sink answers
  and deliveries/s = the POSTs received after that / the time until the last. This is the
  dispatcher's own ceiling, which a live burst cannot show when the supervisor writes events
  more slowly than a channel takes them (one channel).
* reference, right after, on the same sink: as many POSTs of the same webhook body from an
  aiohttp client with ``--reference-inflight`` requests in flight (one session, keep-alive),
  the HTTP client's ceiling on this machine; the table divides deliveries/s by it.

Durability (``--rounds``, on a daemon with ``--durability-channels`` channels): the sink
answers each POST after ``--sink-delay`` s; a burst of ``--burst`` quick runners is launched;
once the sink has received a random 20-80 % of the burst's deliveries the supervisor gets
SIGKILL. The database is read as the kill left it (which deliveries were recorded ``sent``),
the supervisor is restarted on the same data dir, and every event up to the newest is waited
for on every channel: lost = (event, channel) pairs never received; duplicates = POSTs that
repeat an idempotency key already received; duplicates of a key recorded ``sent`` before the
kill must be 0 (only unacknowledged deliveries may be sent again).

The daemon needs a keyring even for webhooks without a secret (the dispatcher reads one per
channel, and retries when there is no keyring): it gets the tests' file keyring
(``tests/keyring_backend.py``), never the user's. ``--profile`` samples the daemon with
``py-spy record --gil`` during the burst with the most channels and sums the samples by
dispatcher stage (``--profile FILE`` keeps the raw stacks in FILE).

Run: ``.venv/bin/python bench/outbox.py``; writes ``bench/results/outbox.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import requests
from _common import (
    PYTHON,
    REPO,
    SOURCES,
    VENV_BIN,
    Daemon,
    Table,
    cpu_seconds,
    kill_marked,
    latency_ms,
    machine,
    marked_env,
    paths,
    poll_until,
    ratio,
    sigterm_as_interrupt,
    stop_process,
    verdict,
    write_results,
)

from supervisor.notify import channels as notify_channels

P99_TARGET_MS = 100.0  # healthy channel
PROJECT = "bench"
QUICK_COMMAND = ["/bin/true"]
EVENTS_PER_RUNNER = 3  # starting, running, exited (start_secs 0)
SINK_FLAG = "--sink"
HOOK_PREFIX = "/hook/"
REFERENCE_PATH = "/ref"
RATIO_TARGET = 0.8  # backlog deliveries/s over the aiohttp client's ceiling, same run
KEYRING_BACKEND = "keyring_backend.FileBackend"  # tests/keyring_backend.py
ANSWER_HEAD = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
OK_ANSWER = (ANSWER_HEAD % 11).encode() + b'{"ok":true}'


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--channels", type=int, nargs="+", default=[1, 4, 16], help="webhook counts")
    p.add_argument("--deliveries", type=int, default=1500, help="per burst (runners: /C/3)")
    p.add_argument("--backlog", type=int, default=4500, help="deliveries held in the outbox")
    p.add_argument("--reference-inflight", type=int, default=16, metavar="N")
    p.add_argument("--repeat", type=int, default=3, help="backlog/reference rounds per count")
    p.add_argument("--concurrency", type=int, default=16, help="launch requests in flight")
    p.add_argument("--paced-rate", type=float, default=50.0, metavar="R", help="events/s")
    p.add_argument("--paced-seconds", type=float, default=10.0, metavar="S")
    p.add_argument("--rounds", type=int, default=20, help="kill -9 rounds (0: skip)")
    p.add_argument("--durability-channels", type=int, default=4)
    p.add_argument("--burst", type=int, default=40, help="quick runners per kill -9 round")
    p.add_argument("--sink-delay", type=float, default=0.01, metavar="S", help="kill -9 rounds")
    p.add_argument("--timeout", type=float, default=180.0, metavar="S", help="per wait")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="py-spy the burst with the most channels; its raw stacks go to FILE",
    )
    p.add_argument(SINK_FLAG, action="store_true", help=argparse.SUPPRESS)  # the sink process
    return p.parse_args()


# --- the sink (its own process: ``outbox.py --sink``) -----------------------------------------
class SinkProtocol(asyncio.Protocol):
    """Just enough HTTP/1.1 (keep-alive, Content-Length bodies, no pipelining) to record each
    POST when it has fully arrived: receive time, path, ``Idempotency-Key`` and the body,
    whose ``event_ids`` are read only when the records are fetched (the sink stays fast).

    ``GET /_records?since=N`` answers the records from index N as ``[time, path, key,
    event_ids]``; ``POST /_delay`` with a number of seconds delays every later answer;
    ``POST /_hold`` keeps every later answer until ``POST /_release``, which answers them
    and returns its own time."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.handle(time.time(), head[0].split(" ")[1], headers, body)

    def handle(self, at: float, target: str, headers: dict[str, str], body: bytes) -> None:
        records = self.state["records"]
        if target.startswith("/_records"):
            since = int(target.partition("since=")[2] or 0)
            out = [
                [t, path, key, json.loads(raw).get("event_ids", [])]
                for t, path, key, raw in records[since:]
            ]
            self.answer(json.dumps({"records": out}).encode())
        elif target == "/_delay":
            self.state["delay"] = float(body)
            self.answer(b"{}")
        elif target == "/_hold":
            self.state["held"] = []
            self.answer(b"{}")
        elif target == "/_release":
            held, self.state["held"] = self.state["held"], None
            released = time.time()
            for protocol in held or ():
                protocol.send(OK_ANSWER)
            self.answer(json.dumps({"released": released}).encode())
        else:
            records.append((at, target, headers.get("idempotency-key"), body))
            if self.state["held"] is not None:
                self.state["held"].append(self)
            elif self.state["delay"] > 0:
                asyncio.get_running_loop().call_later(self.state["delay"], self.send, OK_ANSWER)
            else:
                self.send(OK_ANSWER)

    def answer(self, payload: bytes) -> None:
        head = ANSWER_HEAD % len(payload)
        self.send(head.encode() + payload)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve_sink() -> None:
    """Serve on a free loopback port, print it, run until SIGINT/SIGTERM."""
    loop = asyncio.get_running_loop()
    state: dict[str, Any] = {"records": [], "delay": 0.0, "held": None}
    server = await loop.create_server(lambda: SinkProtocol(state), "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


@dataclass
class Sink:
    """The sink process, and what it received so far (fetched incrementally)."""

    proc: subprocess.Popen[bytes]
    url: str
    records: list[tuple[float, str, str | None, list[int]]] = field(default_factory=list)
    # path -> event id -> receive times
    received: dict[str, dict[int, list[float]]] = field(
        default_factory=lambda: collections.defaultdict(dict)
    )
    session: requests.Session = field(default_factory=requests.Session)

    @classmethod
    def start(cls) -> Sink:
        proc = subprocess.Popen(
            [str(PYTHON), __file__, SINK_FLAG], env=marked_env("sink"), stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        sink = cls(proc, f"http://127.0.0.1:{int(proc.stdout.readline())}")
        sink.session.trust_env = False
        return sink

    def fetch(self) -> int:
        """Take the records received since the last fetch; how many there were."""
        answer = self.session.get(f"{self.url}/_records?since={len(self.records)}", timeout=60)
        new = answer.json()["records"]
        for at, path, key, event_ids in new:
            self.records.append((at, path, key, event_ids))
            for event_id in event_ids:
                self.received[path].setdefault(event_id, []).append(at)
        return len(new)

    def set_delay(self, seconds: float) -> None:
        self.session.post(f"{self.url}/_delay", data=str(seconds), timeout=10)

    def hold(self) -> None:
        """Record every later POST but answer none until :meth:`release`."""
        self.session.post(f"{self.url}/_hold", data=b"", timeout=10)

    def release(self) -> float:
        """Answer the held POSTs (and every later one at once); the sink's time of it."""
        return self.session.post(f"{self.url}/_release", data=b"", timeout=10).json()["released"]

    def missing(self, hooks: list[str], event_ids: list[int]) -> int:
        """(channel, event) pairs not received yet."""
        return sum(1 for h in hooks for e in event_ids if e not in self.received[h])

    def wait_all(self, hooks: list[str], event_ids: list[int], timeout: float) -> int:
        """Fetch until every event reached every channel or ``timeout``; pairs missing. Says
        how far it got every 10 s."""
        started = time.monotonic()
        said = started
        while True:
            self.fetch()
            left = self.missing(hooks, event_ids)
            now = time.monotonic()
            if left == 0 or now > started + timeout:
                return left
            if now - said > 10:
                total = len(hooks) * len(event_ids)
                log(f"  {total - left} of {total} deliveries received after {now - started:.0f} s")
                said = now
            time.sleep(0.2)

    def close(self) -> None:
        stop_process(self.proc, signal.SIGTERM, 10)
        self.session.close()


# --- the daemon -----------------------------------------------------------------------------
class OutboxDaemon(Daemon):
    """A bench daemon with the tests' file keyring, empty agent log dirs (no usage import
    of the user's logs), high caps, and helpers for channels, events and kill -9."""

    def __init__(self, label: str) -> None:
        super().__init__(
            label, {"max_runners_per_project": 10000, "max_runners_global": 10000, "start_secs": 0}
        )
        self.env.update(
            {
                "PYTHONPATH": os.pathsep.join([str(SOURCES), str(REPO / "tests")]),
                "PYTHON_KEYRING_BACKEND": KEYRING_BACKEND,
                "STRATAVORE_TEST_KEYRING": str(self.home / "keyring.json"),
                "CLAUDE_CONFIG_DIR": str(self.home / "claude"),
                "CODEX_HOME": str(self.home / "codex"),
            }
        )
        self.db = paths.db_path(self.home)

    def add_webhooks(self, count: int, sink: Sink) -> list[str]:
        """``count`` webhook channels to the sink; their paths there, which name this daemon
        (event ids start at 1 in every daemon)."""
        hooks = []
        for i in range(count):
            name = f"hook{i:02d}"
            path = f"{HOOK_PREFIX}{self.label}/{name}"
            body = {"kind": "webhook", "config": {"url": sink.url + path}}
            answer = self.session.put(
                f"{self.url}/api/v1/notify/channels/{name}", json=body, timeout=30
            )
            if answer.status_code >= 400:
                raise RuntimeError(f"PUT channel {name}: HTTP {answer.status_code}: {answer.text}")
            hooks.append(path)
        return hooks

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the database directly (read-only; WAL lets it run beside the daemon)."""
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def last_event_id(self) -> int:
        return self.query('SELECT COALESCE(MAX(id), 0) FROM "event"')[0][0]

    def events_after(self, first: int) -> dict[int, float]:
        """id -> exact ts of the events after id ``first``, checked against the API's."""
        exact = dict(self.query('SELECT id, ts FROM "event" WHERE id > ? ORDER BY id', first))
        listed: dict[int, float] = {}
        since = first
        while True:
            page = self.get("/api/v1/events", since=since, limit=1000)
            if not page:
                break
            for event in page:
                if event["id"] in exact:  # not one written since
                    listed[event["id"]] = parse_iso(event["ts"])
            since = page[-1]["id"]
        if set(listed) != set(exact) or any(abs(listed[i] - exact[i]) > 0.001 for i in exact):
            raise RuntimeError("GET /api/v1/events and the event table disagree")
        return exact

    def wait_idle(self, timeout: float) -> None:
        """Until no runner is active or queued (every quick runner wrote its exit)."""

        def idle() -> bool:
            status = self.get("/api/v1/status")
            return status["active"] == 0 and status["queued"] == 0

        poll_until(idle, timeout, 0.1, "every quick runner to finish")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def parse_iso(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --- load -----------------------------------------------------------------------------------
async def launch_quick_runners(
    url: str, token: str, count: int, rate: float, concurrency: int
) -> float:
    """Launch ``count`` quick runners: on a fixed schedule of ``rate`` a second (open loop), or
    as fast as ``concurrency`` requests in flight allow (rate 0); the seconds it took."""
    headers = {"Authorization": f"Bearer {token}"}
    body = {"project": PROJECT, "command": QUICK_COMMAND}
    limit = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as session:
        started = time.perf_counter()

        async def one(i: int) -> None:
            if rate > 0:
                await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            async with limit, session.post("/api/v1/runners", json=body) as answer:
                await answer.read()
                if answer.status >= 400:
                    raise RuntimeError(f"launch: HTTP {answer.status}: {await answer.text()}")

        await asyncio.gather(*(one(i) for i in range(count)))
        return time.perf_counter() - started


async def reference_posts(sink: Sink, count: int, body: bytes, inflight: int) -> dict[str, Any]:
    """``count`` POSTs of ``body`` to the sink from one aiohttp client session with
    ``inflight`` requests on their way (keep-alive), each with its own key and its answer
    read: the HTTP client's ceiling, nothing stored."""
    url = sink.url + REFERENCE_PATH
    turns = iter(range(count))
    failures = []
    connector = aiohttp.TCPConnector(limit=inflight)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i in turns:
                headers = {"Content-Type": "application/json", "Idempotency-Key": f"ref-{i}"}
                async with session.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                    if answer.status != 200:
                        failures.append(answer.status)

        started, sink_before = time.perf_counter(), cpu_seconds(sink.proc.pid)
        cpu_before = time.process_time()
        await asyncio.gather(*(worker() for _ in range(inflight)))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        sink_cpu = cpu_seconds(sink.proc.pid) - sink_before
    return {"posts": count, "seconds": round(wall, 3), "per_s": round(count / wall, 1),
            "inflight": inflight, "failures": len(failures),
            "client_cpu_percent": round(cpu / wall * 100, 1),
            "sink_cpu_percent": round(sink_cpu / wall * 100, 1)}  # fmt: skip


def webhook_body(daemon: OutboxDaemon, event_id: int) -> bytes:
    """The body the dispatcher sends for event ``event_id`` (the reference sends the same)."""
    event = next(e for e in daemon.get("/api/v1/events", since=event_id - 1, limit=1))
    message = notify_channels.Message(
        event_id=event["id"], ts=parse_iso(event["ts"]), type=event["type"],
        severity=event["severity"], title=event["title"], body=event["body"],
        runner_id=event["runner_id"], project=event["project"], data=event["data"],
        event_ids=(event["id"],),
    )  # fmt: skip
    payload = notify_channels.webhook_payload(message, f"stratavore-delivery-{event_id}")
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


# --- profile --------------------------------------------------------------------------------
# (file, function) -> stage; a sample counts for the stage of its innermost listed frame
# (function "": any function of that file).
STAGES = [
    (("aiohttp/client", ""), "HTTP: the aiohttp client"),
    (("aiohttp/connector", ""), "HTTP: the aiohttp client"),
    (("aiohttp/http_writer", ""), "HTTP: the aiohttp client"),
    (("aiohttp/payload", ""), "HTTP: the aiohttp client"),
    (("asyncio/selector_events.py", ""), "HTTP: sockets (asyncio transports)"),
    (("notify/channels/", ""), "channels: payload, answer"),
    (("notify/sender.py", "_sender"), "channels: payload, answer"),
    (("notify/sender.py", "record_answers"), "recording answers (UPDATE delivery)"),
    (("notify/outbox.py", "_fan_out"), "fan-out (SELECT event, INSERT delivery)"),
    (("notify/outbox.py", "_load_channels"), "loading channels"),
    (("notify/sender.py", "submit"), "dispatch: submitting to the pool"),
    (("notify/outbox.py", "_plan"), "dispatch: policy, coalescer, messages"),
    (("notify/outbox.py", "_dispatch"), "dispatch query (due deliveries + events)"),
    (("supervisor/core/events.py", "record"), "event writes (INSERT event)"),
    (("supervisor/runners/table.py", "transition"), "runner state changes (UPDATE, commit)"),
    (("supervisor/runners/spawner.py", "spawn"), "spawning runners"),
    (("supervisor/runners/", ""), "runner lifecycle (other)"),
    (("supervisor/api/", ""), "API handlers (other)"),
    (("aiohttp/", ""), "aiohttp (other: parser, streams; the API server)"),
    (("concurrent/futures/thread.py", ""), "thread pool (other)"),
    (("asyncio/", ""), "asyncio loop"),
]


def frame_stage(frame: str) -> str | None:
    """The stage of one py-spy frame, ``Class.function (path/file.py:line)``, or None."""
    name, _, where = frame.partition(" (")
    for (file, func), stage in STAGES:
        if f"{file}" in where and (not func or name == func or name.endswith("." + func)):
            return stage
    return None


def py_spy_start(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    spy = VENV_BIN / "py-spy"
    if not spy.exists():
        return None
    argv = [str(spy), "record", "--pid", str(pid), "--gil", "--nonblocking", "--rate", "200"]
    argv += ["--format", "raw", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def py_spy_stages(out: Path) -> dict[str, Any]:
    """Share of the GIL-holding samples per dispatcher stage, and the top leaf functions."""
    stages: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        leaves[frames[-1]] += count
        found = (frame_stage(frame) for frame in reversed(frames))
        stages[next((stage for stage in found if stage), "other")] += count
    share = {k: round(v / total * 100, 1) for k, v in stages.most_common()} if total else {}
    top = {k: round(v / total * 100, 1) for k, v in leaves.most_common(15)} if total else {}
    return {"samples": total, "stages_percent": share, "top_leaf_percent": top}


# --- measurements -----------------------------------------------------------------------------
def delivery_stats(
    sink: Sink, hooks: list[str], events: dict[int, float], since_record: int
) -> dict[str, Any]:
    """Latency (first receipt - ts), rates and duplicates of the deliveries of ``events``."""
    firsts, latencies = [], []
    for hook in hooks:
        got = sink.received[hook]
        for event_id, ts in events.items():
            if event_id in got:
                first = min(got[event_id])
                firsts.append(first)
                latencies.append(first - ts)
    records = [r for r in sink.records[since_record:] if r[1] in hooks]
    keys = collections.Counter((path, key) for _, path, key, _ in records)
    duplicates = sum(n - 1 for n in keys.values())
    first_ts, last_ts = min(events.values()), max(events.values())
    written_s = last_ts - first_ts
    last = max(firsts)
    after = [t for t in firsts if t > last_ts]
    per_second = collections.Counter(int(t) for t in firsts)
    return {
        "events": len(events),
        "deliveries": len(firsts),
        "missing": len(events) * len(hooks) - len(firsts),
        "duplicates": duplicates,
        "events_per_s": round(len(events) / written_s, 1) if written_s > 0 else None,
        "deliveries_per_s": round(len(firsts) / (last - first_ts), 1),
        "drain_deliveries": len(after),
        "drain_per_s": round(len(after) / (last - last_ts), 1) if len(after) >= 100 else None,
        "peak_per_s": max(per_second.values()),
        "span_s": round(last - first_ts, 3),
        "latency": latency_ms(latencies),
    }


def phase(
    daemon: OutboxDaemon,
    sink: Sink,
    hooks: list[str],
    runners: int,
    rate: float,
    args: argparse.Namespace,
    spy_out: Path | None = None,
) -> dict[str, Any]:
    """Launch ``runners`` quick runners (paced at ``rate``/s, or as fast as possible), wait
    for their events at every channel; rates, latency, CPU, and the profile if asked."""
    sink.fetch()
    first_id, since_record = daemon.last_event_id(), len(sink.records)
    spy = py_spy_start(daemon.pid, spy_out) if spy_out else None
    cpu_before, started = cpu_seconds(daemon.pid), time.perf_counter()
    launch_s = asyncio.run(
        launch_quick_runners(daemon.url, daemon.token, runners, rate, args.concurrency)
    )
    daemon.wait_idle(args.timeout)
    events = daemon.events_after(first_id)
    missing = sink.wait_all(hooks, list(events), args.timeout)
    busy = cpu_seconds(daemon.pid) - cpu_before
    wall = time.perf_counter() - started
    out = {"runners": runners, "launch_s": round(launch_s, 3)}
    if spy is not None:
        stop_process(spy, signal.SIGINT, 30)
    out.update(delivery_stats(sink, hooks, events, since_record))
    out["missing_after_timeout"] = missing
    out["daemon_cpu_percent"] = round(busy / wall * 100, 1)
    if spy_out is not None and spy_out.exists():
        out["profile"] = py_spy_stages(spy_out)
    return out


def backlog_phase(
    daemon: OutboxDaemon,
    sink: Sink,
    hooks: list[str],
    runners: int,
    args: argparse.Namespace,
    spy_out: Path | None = None,
) -> dict[str, Any]:
    """The sink holds its answers while ``runners`` quick runners run and end and every
    delivery of their events is written; then it answers: deliveries/s from then until the
    last one arrived is the dispatcher's own rate, with nothing else for the daemon to do."""
    sink.fetch()
    first_id = daemon.last_event_id()
    sink.hold()
    try:
        asyncio.run(launch_quick_runners(daemon.url, daemon.token, runners, 0.0, args.concurrency))
        daemon.wait_idle(args.timeout)
        events = daemon.events_after(first_id)
        expected = len(events) * len(hooks)
        poll_until(
            lambda: (
                daemon.query('SELECT COUNT(*) FROM "delivery" WHERE event_id > ?', first_id)[0][0]
                >= expected
            ),
            args.timeout,
            0.05,
            "every delivery to be written",
        )
        spy = py_spy_start(daemon.pid, spy_out) if spy_out else None
        cpu_before, sink_before = cpu_seconds(daemon.pid), cpu_seconds(sink.proc.pid)
    finally:
        released = sink.release()
    missing = sink.wait_all(hooks, list(events), args.timeout)
    busy = cpu_seconds(daemon.pid) - cpu_before
    sink_busy = cpu_seconds(sink.proc.pid) - sink_before
    if spy is not None:
        stop_process(spy, signal.SIGINT, 30)
    after = [r[0] for r in sink.records if r[0] >= released and r[1] in hooks]
    span = max(after) - released
    out = {
        "runners": runners,
        "events": len(events),
        "deliveries": expected,
        "held_at_release": expected - len(after),
        "after_release": len(after),
        "seconds": round(span, 3),
        "deliveries_per_s": round(len(after) / span, 1),
        "missing_after_timeout": missing,
        "daemon_cpu_percent": round(busy / span * 100, 1),
        "sink_cpu_percent": round(sink_busy / span * 100, 1),
    }
    if spy_out is not None and spy_out.exists():
        out["profile"] = py_spy_stages(spy_out)
    return out


def per_channel_count(count: int, sink: Sink, args: argparse.Namespace) -> dict[str, Any]:
    """Paced, then burst, then the reference, on a fresh daemon with ``count`` channels."""
    out: dict[str, Any] = {"channels": count}
    with OutboxDaemon(f"outbox-{count}") as daemon:
        daemon.project(PROJECT)
        hooks = daemon.add_webhooks(count, sink)
        log(f"{count} channel(s): warm-up")
        phase(daemon, sink, hooks, 5, 0.0, args)
        paced_runners = round(args.paced_rate * args.paced_seconds / EVENTS_PER_RUNNER)
        log(f"{count} channel(s): paced, {args.paced_rate:g} events/s for {args.paced_seconds:g} s")
        out["paced"] = phase(
            daemon, sink, hooks, paced_runners, args.paced_rate / EVENTS_PER_RUNNER, args
        )
        burst = max(1, round(args.deliveries / count / EVENTS_PER_RUNNER))
        log(f"{count} channel(s): burst of {burst} runners, as fast as possible")
        out["burst"] = phase(daemon, sink, hooks, burst, 0.0, args)
        backlog = max(1, round(args.backlog / count / EVENTS_PER_RUNNER))
        inflight = args.reference_inflight
        out["rounds"] = []
        for n in range(args.repeat):  # interleaved, so that both sides see the same machine
            log(
                f"{count} channel(s), round {n + 1}: backlog of {backlog} runners' events, then "
                f"the sink answers; then the reference, aiohttp with {inflight} in flight"
            )
            profile = args.profile if count == max(args.channels) and n == 0 else None
            drained = backlog_phase(daemon, sink, hooks, backlog, args, profile)
            body = webhook_body(daemon, daemon.last_event_id())
            posts = drained["after_release"]
            ref = asyncio.run(reference_posts(sink, posts, body, inflight))
            share = ratio(drained["deliveries_per_s"], ref["per_s"])
            out["rounds"].append({"backlog": drained, "reference": ref, "ratio": share})
    rounds = out["rounds"]
    out["backlog_per_s"] = statistics.median(r["backlog"]["deliveries_per_s"] for r in rounds)
    out["reference_per_s"] = statistics.median(r["reference"]["per_s"] for r in rounds)
    out["ratio"] = statistics.median(r["ratio"] for r in rounds)
    return out


def generation_baseline(sink: Sink, args: argparse.Namespace) -> dict[str, Any]:
    """The same burst (the one of the first channel count) with no channel: how fast the
    supervisor writes these events when it has nothing to deliver."""
    runners = max(1, round(args.deliveries / args.channels[0] / EVENTS_PER_RUNNER))
    with OutboxDaemon("outbox-0") as daemon:
        daemon.project(PROJECT)
        log(f"no channel: burst of {runners} runners, as fast as possible")
        first_id = daemon.last_event_id()
        launch_s = asyncio.run(
            launch_quick_runners(daemon.url, daemon.token, runners, 0.0, args.concurrency)
        )
        daemon.wait_idle(args.timeout)
        times = sorted(daemon.events_after(first_id).values())
    return {
        "runners": runners,
        "launch_s": round(launch_s, 3),
        "events": len(times),
        "events_per_s": round(len(times) / (times[-1] - times[0]), 1),
    }


def durability(sink: Sink, args: argparse.Namespace) -> dict[str, Any]:
    """``args.rounds`` kills in bursts, each followed by a restart and a count."""
    rng = random.Random(args.seed)
    rounds = []
    with OutboxDaemon("outbox-kill") as daemon:
        daemon.project(PROJECT)
        hooks = daemon.add_webhooks(args.durability_channels, sink)
        sink.set_delay(args.sink_delay)
        try:
            for n in range(args.rounds):
                rounds.append(kill_round(daemon, sink, hooks, rng.uniform(0.2, 0.8), args))
                r = rounds[-1]
                log(
                    f"kill -9 round {n + 1} of {args.rounds}: killed at {r['received_at_kill']} "
                    f"of ~{r['expected']}, lost {r['lost']}, duplicates {r['duplicates']} "
                    f"({r['duplicates_of_acked']} of acknowledged)"
                )
        finally:
            sink.set_delay(0.0)
        dead = daemon.get("/api/v1/notify/dead")
    return {"rounds": rounds, "dead_letters": len(dead), "channels": len(hooks)}


def kill_round(
    daemon: OutboxDaemon, sink: Sink, hooks: list[str], fraction: float, args: argparse.Namespace
) -> dict[str, Any]:
    """One burst, SIGKILL once the sink has ``fraction`` of its deliveries, what the database
    says was acknowledged, restart, wait for every event at every channel; the counts."""
    sink.fetch()
    first_id, since_record = daemon.last_event_id(), len(sink.records)
    expected = args.burst * EVENTS_PER_RUNNER * len(hooks)
    asyncio.run(launch_quick_runners(daemon.url, daemon.token, args.burst, 0.0, args.concurrency))
    target = since_record + round(expected * fraction)
    poll_until(lambda: sink.fetch() >= 0 and len(sink.records) >= target, args.timeout, 0.005)
    daemon.kill9()
    time.sleep(0.05)
    sink.fetch()
    received_at_kill = len(sink.records) - since_record
    recorded = daemon.query("SELECT id, event_id FROM \"delivery\" WHERE state = 'sent'")
    sent = {f"stratavore-delivery-{i}" for i, _ in recorded}
    pending = daemon.query("SELECT COUNT(*) FROM \"delivery\" WHERE state = 'pending'")[0][0]
    before_restart = len(sink.records)
    started = time.perf_counter()
    daemon.start()
    restart_s = time.perf_counter() - started
    daemon.wait_idle(args.timeout)
    events = daemon.events_after(first_id)
    lost = sink.wait_all(hooks, list(events), args.timeout)
    recovered_s = time.perf_counter() - started
    poll_until(  # every answer recorded: the next round starts from a clean outbox
        lambda: not daemon.query("SELECT 1 FROM \"delivery\" WHERE state = 'pending' LIMIT 1"),
        args.timeout,
        0.05,
        "the deliveries to be recorded sent",
    )
    recorded_s = time.perf_counter() - started
    seen = {(path, key) for _, path, key, _ in sink.records[:since_record]}
    duplicates = acked_again = 0
    for i, (_, path, key, _) in enumerate(sink.records[since_record:], since_record):
        if path not in hooks:
            continue
        if (path, key) in seen:
            duplicates += 1
            acked_again += i >= before_restart and key in sent
        seen.add((path, key))
    return {
        "fraction": round(fraction, 2),
        "expected": expected,
        "events": len(events),
        "received_at_kill": received_at_kill,
        "sent_recorded_at_kill": sum(event_id > first_id for _, event_id in recorded),
        "pending_at_kill": pending,
        "lost": lost,
        "duplicates": duplicates,
        "duplicates_of_acked": acked_again,
        "restart_s": round(restart_s, 3),
        "recovered_s": round(recovered_s, 3),
        "all_recorded_s": round(recorded_s, 3),
    }


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- report ---------------------------------------------------------------------------------
def tables(r: dict[str, Any], args: argparse.Namespace) -> list[Table]:
    rows = []
    for c in r["per_channels"]:
        b, rounds = c["burst"], c["rounds"]
        rows.append(
            [
                c["channels"],
                rounds[0]["backlog"]["after_release"],
                c["backlog_per_s"],
                c["reference_per_s"],
                c["ratio"],
                ", ".join(f"{x['ratio']:g}" for x in rounds),
                statistics.median(x["backlog"]["daemon_cpu_percent"] for x in rounds),
                b["events_per_s"],
                b["deliveries_per_s"],
                ratio(b["deliveries_per_s"], c["reference_per_s"]),
                verdict(c["ratio"], RATIO_TARGET, higher_is_better=True),
            ]
        )
    out = [
        Table(
            "Throughput, every event to every webhook channel (one sink process). Backlog: the "
            "outbox full, then the sink answers; burst: quick runners as fast as the supervisor "
            "takes them, delivered as they come (with no channel, the first burst's events are "
            f"written at {r['no_channel']['events_per_s']:,.1f}/s). Reference: the same POSTs "
            f"from an aiohttp client, {args.reference_inflight} in flight, right after each "
            f"backlog; medians of {args.repeat} interleaved rounds",
            [
                "channels",
                "backlog deliveries",
                "backlog deliveries/s",
                "reference POSTs/s",
                "backlog / reference",
                "ratio per round",
                "daemon CPU % (backlog)",
                "burst events/s written",
                "burst deliveries/s",
                "burst / reference",
                f"target backlog >= {RATIO_TARGET:g} x reference",
            ],
            rows,
        )
    ]
    lat = []
    for c in r["per_channels"]:
        for mode, label in (("paced", f"paced {args.paced_rate:g} events/s"), ("burst", "burst")):
            m = c[mode]
            lat.append(
                [
                    c["channels"],
                    label,
                    m["events_per_s"],
                    m["deliveries"],
                    m["latency"]["p50_ms"],
                    m["latency"]["p99_ms"],
                    m["latency"]["max_ms"],
                    m["duplicates"],
                    m["missing"],
                    verdict(m["latency"]["p99_ms"], P99_TARGET_MS),
                ]
            )
    out.append(
        Table(
            "Latency from state change (event ts) to the sink's receipt, first receipt of each "
            "(channel, event)",
            [
                "channels",
                "load",
                "events/s",
                "deliveries",
                "p50 ms",
                "p99 ms",
                "max ms",
                "duplicates",
                "missing",
                f"target p99 <= {P99_TARGET_MS:g} ms",
            ],
            lat,
        )
    )
    if "durability" in r:
        d = r["durability"]
        kills = [
            [
                i + 1,
                k["fraction"],
                k["events"],
                k["received_at_kill"],
                k["sent_recorded_at_kill"],
                k["lost"],
                k["duplicates"],
                k["duplicates_of_acked"],
                k["recovered_s"],
            ]
            for i, k in enumerate(d["rounds"])
        ]
        kills.append(
            [
                "total",
                "-",
                sum(k["events"] for k in d["rounds"]),
                sum(k["received_at_kill"] for k in d["rounds"]),
                "-",
                sum(k["lost"] for k in d["rounds"]),
                sum(k["duplicates"] for k in d["rounds"]),
                sum(k["duplicates_of_acked"] for k in d["rounds"]),
                "-",
            ]
        )
        out.append(
            Table(
                f"Durability: kill -9 mid-burst ({args.burst} quick runners, "
                f"{d['channels']} channels, sink answers after {args.sink_delay * 1000:g} ms), "
                f"restart, wait; {d['dead_letters']} dead letters at the end; target 0 lost",
                [
                    "round",
                    "kill at (share)",
                    "events",
                    "POSTs before kill",
                    "recorded sent at kill",
                    "lost",
                    "duplicates",
                    "dup. of acknowledged",
                    "recovered s",
                ],
                kills,
            )
        )
    profile = next(
        (c["rounds"][0]["backlog"].get("profile") for c in r["per_channels"][::-1]), None
    )
    if profile:
        out.append(
            Table(
                f"Where the daemon's time goes (py-spy --gil, backlog with {max(args.channels)} "
                f"channels, {profile['samples']} samples)",
                ["stage", "% of samples"],
                [[k, v] for k, v in profile["stages_percent"].items()],
            )
        )
    return out


def main() -> int:
    args = parse_args()
    if args.sink:
        asyncio.run(serve_sink())
        return 0
    result: dict[str, Any] = {"per_channels": []}
    with sigterm_as_interrupt():
        sink = Sink.start()
        try:
            result["no_channel"] = generation_baseline(sink, args)
            for count in args.channels:
                result["per_channels"].append(per_channel_count(count, sink, args))
            if args.rounds > 0:
                result["durability"] = durability(sink, args)
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            sink.close()
            kill_marked()
    rendered = tables(result, args)
    for table in rendered:
        print(table.render() + "\n")
    payload = {
        "machine": machine(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "targets": {"backlog_over_reference": RATIO_TARGET, "p99_ms": P99_TARGET_MS},
        "results": result,
        "tables": [t.render() for t in rendered],
    }
    print(f"wrote {write_results('outbox', payload)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
