"""Hook -> tray latency: how long a Claude Code hook's attention change takes to reach the tray.

One process, as the tray app runs with its supervisor embedded: a ``Supervisor`` (the copied
``supervisor`` package, see ``_common``) on a qasync loop over an offscreen QApplication, a
:class:`desktop.bridge.Bridge` to its API, and a runner registered for a real ``sleep`` child
(POST /api/v1/runners/register). ``--runs`` times, alternately, a ``PreToolUse`` hook (->
working) and a ``Notification`` ``permission_prompt`` hook (-> needs_input) are POSTed as the
runner's own HTTP hook sends them (its token, ``X-Stratavore-Runner``); one sample is the time
from sending the hook to the bridge's ``changed`` signal with a snapshot that shows the new
attention (what the tray icon and menu read). A random pause of up to ``--pause`` s comes
before each hook.

Reference in the same run: the bridge's previous behaviour, a plain poll for news every 2 s
(:class:`PollingBridge`), ``--reference-runs`` times, with a random pause of up to its poll
period before each hook so the hooks fall anywhere in it.

Target: p99 <= 200 ms. Run: ``.venv/bin/python bench/attention.py``; writes
``bench/results/attention.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    REPO,
    SOURCES,
    Table,
    kill_marked,
    machine,
    marked_env,
    percentile,
    sigterm_as_interrupt,
    verdict,
    write_results,
)

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before Qt starts: no window is ever shown
# desktop/ and tests/ from the repo: after _common's ``supervisor`` copy, and before this
# folder, whose desktop.py would shadow the package
sys.path.insert(sys.path.index(str(SOURCES)) + 1, str(REPO))
from desktop import bridge as bridge_module
from desktop.bridge import Bridge, BridgeError
from tests.keyring_backend import keyring_env

TARGET_MS = 200.0
OLD_POLL_S = 2.0  # the bridge's poll period before the long poll
SESSION = "6d1e2a8c-bench-attention"
HOOKS = {  # attention -> the hook that sets it
    "working": {"hook_event_name": "PreToolUse", "tool_name": "Bash"},
    "needs_input": {
        "hook_event_name": "Notification",
        "notification_type": "permission_prompt",
        "message": "Claude needs your permission to use Bash",
    },
}


class PollingBridge(Bridge):
    """The reference: the bridge as it was, asking for news every :data:`OLD_POLL_S` seconds
    and refreshing everything when there is some."""

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                if self.watchers or loop.time() - self._full_at >= bridge_module.FULL_REFRESH_S:
                    await self.refresh()
                else:
                    since = self.snapshot.last_event_id
                    news = await self.read_events(since=since, limit=1)
                    if news:
                        await self.refresh()
            except BridgeError as exc:
                print(f"reference bridge: refresh failed: {exc}", file=sys.stderr)
            await asyncio.sleep(OLD_POLL_S)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=200, help="hooks timed with the long poll")
    p.add_argument("--reference-runs", type=int, default=50, help="hooks timed with the 2 s poll")
    p.add_argument("--pause", type=float, default=0.05, help="max random pause before a hook")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


async def measure(
    bridge: Bridge,
    session: aiohttp.ClientSession,
    url: str,
    registered: dict[str, Any],
    runs: int,
    pause: float,
) -> tuple[list[float], list[float]]:
    """``runs`` hooks, alternating attentions: (hook -> snapshot latencies, hook POST round
    trips), in seconds."""
    runner_id = registered["runner"]["id"]
    headers = {
        "Authorization": f"Bearer {registered['token']}",
        "X-Stratavore-Runner": str(runner_id),
    }
    seen: asyncio.Future[float] | None = None
    wanted = ""

    def changed() -> None:
        runner = next((r for r in bridge.snapshot.runners if r["id"] == runner_id), None)
        if seen is not None and not seen.done() and runner and runner["attention"] == wanted:
            seen.set_result(time.perf_counter())

    bridge.changed.connect(changed)
    latencies, round_trips = [], []
    loop = asyncio.get_running_loop()
    try:
        for i in range(runs):
            wanted = ("needs_input", "working")[i % 2]
            await asyncio.sleep(random.uniform(0, pause))
            seen = loop.create_future()
            sent = time.perf_counter()
            body = {**HOOKS[wanted], "session_id": SESSION}
            async with session.post(url + "/api/v1/hooks", json=body, headers=headers) as answer:
                ack = await answer.json()
                if answer.status != 200 or ack["attention"] != wanted:
                    raise RuntimeError(f"hook refused: HTTP {answer.status}: {ack}")
            round_trips.append(time.perf_counter() - sent)
            latencies.append(await asyncio.wait_for(seen, 30) - sent)
    finally:
        bridge.changed.disconnect(changed)
    return latencies, round_trips


def summary(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "max_ms": round(max(ms), 2),
    }


async def bench(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    from supervisor.core import runtime
    from supervisor.daemon import Supervisor

    supervisor = Supervisor(home, api_port=0, heartbeat_ttl=3600.0)
    await supervisor.start()
    child = subprocess.Popen(["sleep", "3600"], env=marked_env("sleep"))
    token = runtime.admin_token(home) or ""
    admin = {"Authorization": f"Bearer {token}"}
    results: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession(headers=admin) as session:
            folder = home / "projects" / "demo"
            folder.mkdir(parents=True)
            body = {"name": "demo", "path": str(folder)}
            async with session.post(supervisor.url + "/api/v1/projects", json=body) as answer:
                answer.raise_for_status()
            body = {"command": ["sleep"], "pid": child.pid, "cwd": str(folder)}
            async with session.post(
                supervisor.url + "/api/v1/runners/register", json=body
            ) as answer:
                registered = await answer.json()
            cases = [
                ("long poll (GET /events?wait=25)", Bridge, args.runs, args.pause),
                ("reference: poll every 2 s", PollingBridge, args.reference_runs, OLD_POLL_S),
            ]
            for name, kind, runs, pause in cases:
                bridge = kind(supervisor.url, token)
                bridge.start()
                try:
                    await bridge.refresh()
                    latencies, round_trips = await measure(
                        bridge, session, supervisor.url, registered, runs, pause
                    )
                finally:
                    await bridge.close()
                results[name] = {
                    "hook_to_snapshot": summary(latencies),
                    "hook_post_round_trip": summary(round_trips),
                    "pause_max_s": pause,
                }
    finally:
        child.kill()
        child.wait()
        await supervisor.stop(stop_runners=True)
    return results


def table(results: dict[str, Any]) -> Table:
    rows = []
    for name, result in results.items():
        latency, post = result["hook_to_snapshot"], result["hook_post_round_trip"]
        rows.append([
            name, latency["count"], latency["p50_ms"], latency["p95_ms"], latency["p99_ms"],
            latency["max_ms"], post["p50_ms"], verdict(latency["p99_ms"], TARGET_MS),
        ])  # fmt: skip
    return Table(
        "Hook -> tray snapshot latency (ms; target p99 <= 200 ms)",
        ["bridge", "hooks", "p50", "p95", "p99", "max", "hook POST p50", "p99 target"],
        rows,
    )


def main() -> int:
    args = parse_args()
    random.seed(args.seed)
    home = Path(tempfile.mkdtemp(prefix="stratavore-bench-attention-"))
    # nothing of the user's: a fresh data dir, empty agent-log dirs, the tests' file keyring
    os.environ["STRATAVORE_HOME"] = str(home)
    for name in ("CLAUDE_CONFIG_DIR", "CODEX_HOME"):
        os.environ[name] = str(home / name.lower())
    os.environ.update(keyring_env(home / "keyring.json"))

    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with sigterm_as_interrupt():
        try:
            with loop:
                results = loop.run_until_complete(bench(args, home))
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            kill_marked()
            shutil.rmtree(home, ignore_errors=True)
    rendered = table(results)
    print(rendered.render() + "\n")
    info = machine()
    print(f"command: .venv/bin/python {info['argv']}")
    payload = {
        "machine": info,
        "options": vars(args),
        "targets": {"p99_ms": TARGET_MS},
        "results": results,
        "tables": [rendered.render()],
    }
    print(f"wrote {write_results('attention', payload)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
