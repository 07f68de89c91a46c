"""The API's edge under abuse: memory with 2,000 idle connections, what the 2,001st gets, a
50 MB body, and how long a client that sends its headers a byte a second is kept.

Measured on a real ``stratavore daemon`` and, side by side, on the reference: a trivial aiohttp
app on ``web.TCPSite`` with aiohttp's defaults (``bench/_reference_server.py``), i.e. what the
API was before its edge was bounded. Memory is the server's RSS (psutil) before and after.

Run: ``.venv/bin/python bench/edge.py`` (``--connections N``, ``--slow`` to also time the
slow client, about 40 s more); writes ``bench/results/edge.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import socket
import subprocess
import time
from typing import Any

import psutil
from _common import (
    BENCH_DIR,
    PYTHON,
    Daemon,
    Table,
    machine,
    marked_env,
    poll_until,
    sigterm_as_interrupt,
    stop_process,
    write_results,
)

MB = 1024 * 1024


def established(pid: int, port: int) -> int:
    connections = psutil.Process(pid).net_connections("tcp")
    return sum(1 for c in connections if c.laddr.port == port and c.status == "ESTABLISHED")


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / MB


def ask(port: int, data: bytes, timeout: float = 10.0) -> tuple[int | str, float]:
    """Send ``data`` on a new connection: the answer's status (or what went wrong), and the
    seconds it took."""
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(data)
            response = http.client.HTTPResponse(sock)
            response.begin()
            response.read()
            status: int | str = response.status
    except OSError as exc:
        status = type(exc).__name__
    return status, time.perf_counter() - started


def idle_connections(pid: int, port: int, count: int, probe: bytes) -> dict[str, Any]:
    """RSS with ``count`` idle connections open, and what one more connection gets."""
    before = rss_mb(pid)
    sockets = []
    try:
        for _ in range(count):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        poll_until(lambda: established(pid, port) >= count, 30, 0.05, "connections accepted")
        time.sleep(1.0)
        during = rss_mb(pid)
        status, seconds = ask(port, probe)
    finally:
        for sock in sockets:
            sock.close()
    return {
        "rss_before_mb": round(before, 1),
        "rss_with_idle_mb": round(during, 1),
        "kb_per_connection": round((during - before) * 1024 / count, 1),
        "next_connection_status": status,
        "next_connection_ms": round(seconds * 1000, 1),
    }


def big_body(pid: int, port: int, head: bytes, size: int) -> dict[str, Any]:
    """Send ``size`` bytes of body after ``head``; the answer, its time, and RSS growth."""
    before = rss_mb(pid)
    started = time.perf_counter()
    status: int | str = "no answer"
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head)
        chunk = b"x" * MB
        with contextlib.suppress(OSError):
            for _ in range(size // MB):
                sock.sendall(chunk)
        with contextlib.suppress(OSError):
            response = http.client.HTTPResponse(sock)
            response.begin()
            response.read()
            status = response.status
    seconds = time.perf_counter() - started
    time.sleep(1.0)
    return {
        "status": status,
        "seconds": round(seconds, 2),
        "rss_growth_mb": round(rss_mb(pid) - before, 1),
    }


def slow_client(port: int, limit: float) -> float | None:
    """Seconds until the server closes a client that sends a valid request head a byte a second
    and never ends it (None: still open after ``limit``)."""
    started = time.monotonic()
    head = iter(f"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode())
    with socket.create_connection(("127.0.0.1", port), timeout=limit + 5) as sock:
        sock.setblocking(False)
        while time.monotonic() - started < limit:
            with contextlib.suppress(BlockingIOError):
                if sock.recv(1024) == b"":
                    return round(time.monotonic() - started, 1)
            try:
                sock.send(bytes([next(head, ord("x"))]))
            except OSError:
                return round(time.monotonic() - started, 1)
            time.sleep(1.0)
    return None


def reference() -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [str(PYTHON), str(BENCH_DIR / "_reference_server.py")],
        stdout=subprocess.PIPE,
        env=marked_env("edge-reference"),
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--slow", action="store_true", help="also time a byte-a-second client")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine(), "connections": args.connections}
    with sigterm_as_interrupt(), Daemon("edge", {}) as daemon:
        ref, ref_port = reference()
        try:
            port = int(daemon.url.rsplit(":", 1)[1])
            servers = {
                "stratavore": (daemon.pid, port, "/api/v1/runners", daemon.token),
                "reference": (ref.pid, ref_port, "/api/v1/runners/1/heartbeat", ""),
            }
            for name, (pid, server_port, path, token) in servers.items():
                host = f"Host: 127.0.0.1:{server_port}\r\n"
                probe = f"GET /api/v1/health HTTP/1.1\r\n{host}\r\n".encode()
                auth = f"Authorization: Bearer {token}\r\n" if token else ""
                head = (
                    f"POST {path} HTTP/1.1\r\n{host}{auth}Content-Type: application/json\r\n"
                    f"Content-Length: {50 * MB}\r\n\r\n"
                ).encode()
                results[name] = {
                    "idle": idle_connections(pid, server_port, args.connections, probe),
                    "body_50mb": big_body(pid, server_port, head, 50 * MB),
                }
                if args.slow:
                    results[name]["slow_client_closed_after_s"] = slow_client(server_port, 40)
        finally:
            stop_process(ref)
    table = Table("The API's edge", ["what", "stratavore", "reference (aiohttp defaults)"], [])
    ours, theirs = results["stratavore"], results["reference"]
    rows = [
        ("RSS idle, MB", "idle", "rss_before_mb"),
        (f"RSS with {args.connections:,} idle connections, MB", "idle", "rss_with_idle_mb"),
        ("per idle connection, KB", "idle", "kb_per_connection"),
        (f"connection {args.connections + 1:,}: answer", "idle", "next_connection_status"),
        (f"connection {args.connections + 1:,}: ms", "idle", "next_connection_ms"),
        ("50 MB body: answer", "body_50mb", "status"),
        ("50 MB body: seconds to the answer", "body_50mb", "seconds"),
        ("50 MB body: RSS growth, MB", "body_50mb", "rss_growth_mb"),
    ]
    for label, group, key in rows:
        table.rows.append([label, ours[group][key], theirs[group][key]])
    if args.slow:
        table.rows.append([
            "byte-a-second client closed after, s",
            ours["slow_client_closed_after_s"],
            theirs["slow_client_closed_after_s"] or "still open at 40 s",
        ])  # fmt: skip
    print(table.render())
    print(f"\nwrote {write_results('edge', results)}")
    print(json.dumps({k: v for k, v in results.items() if k != "machine"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
