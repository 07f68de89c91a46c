"""The window a person lives in, with a lot in it: its open time with 1,000 runners and a
1M-row usage ledger, and the longest GUI stall while the output pane takes 10,000 lines/s.

One run, one machine, offscreen Qt (``QT_QPA_PLATFORM=offscreen`` unless set), a real
``stratavore daemon`` (``bench/_common.Daemon``, runner caps raised) on a temp data dir whose
ledger got ``--rows`` usage rows first (``bench/chart.py``'s ``fill``: 365 days, ten
projects), then ``--runners`` idle runners launched through the API. This process is the tray
app's side: a qasync loop, the real :class:`desktop.bridge.Bridge` refreshed once (the tray is
up), then:

* (1) open: ``Dashboard(bridge)`` made and shown, until painted (``grab()``): wall time, on
  the Overview (the first page) and on the Runners page (1,000 rows); and until the
  Overview's own fetch is drawn (every runner, the week's usage over the big ledger, the dead
  letters). Median of ``--repeat``, a new window each time. Reference in the same run: a bare
  ``QMainWindow`` with eight empty tabs, shown and painted.
* (2) stall: one more runner prints ``--lines-per-s`` lines a second (ANSI-coloured, 60
  characters) for ``--seconds`` s, selected in the pane, whose output follows it through the
  API. A 5 ms QTimer measures the GUI loop: the longest gap between two ticks minus 5 ms is
  the longest stall (p99 too). Reference in the same run: the same window and runners with
  the pane on an idle runner (what the snapshot's refreshes of 1,000 runners cost alone).
  The garbage collector's full passes meanwhile are counted and timed. As in the app,
  :func:`desktop.heap.settle` freezes what start-up and the window made (``--no-settle``:
  not, for the comparison).

Targets (issue 20): open <= 300 ms once the tray is up; longest stall <= 50 ms at 10,000
lines/s. Run: ``.venv/bin/python bench/window.py``; writes ``bench/results/window.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from _common import REPO, Daemon, Table, ledger, machine, poll_until, verdict, write_results
from chart import fill  # the same 1M-row ledger as the chart's benchmark

# the desktop package, not bench/desktop.py; after the copied supervisor package
sys.path.insert(1, str(REPO))

OPEN_TARGET_MS = 300.0
STALL_TARGET_MS = 50.0
TICK_MS = 5
SLEEP = [sys.executable, "-c", "import time; time.sleep(3600)"]
PRINTER = (
    "import sys, time\n"
    "rate, seconds = {rate}, {seconds}\n"
    "start = time.monotonic()\n"
    "for tick in range(seconds * 10):\n"
    "    sys.stdout.write(''.join(f'\\x1b[32m{{tick}}:{{i:04d}}\\x1b[0m ' + 'x' * 50 + '\\n'\n"
    "                             for i in range(rate // 10)))\n"
    "    sys.stdout.flush()\n"
    "    time.sleep(max(0.0, start + (tick + 1) / 10 - time.monotonic()))\n"
    "time.sleep(3600)\n"
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runners", type=int, default=1000, help="idle runners launched first")
    p.add_argument("--rows", type=int, default=1_000_000, help="usage rows in the ledger")
    p.add_argument("--repeat", type=int, default=5, help="windows opened per measurement")
    p.add_argument("--lines-per-s", type=int, default=10_000, help="the printer's rate")
    p.add_argument("--seconds", type=int, default=10, help="how long it prints")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--no-settle",
        action="store_true",
        help="leave the garbage collector as it was before desktop.heap.settle",
    )
    return p.parse_args()


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class Ticks:
    """A 5 ms QTimer's ticks: the gaps between them are how long the GUI loop was busy."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self.collections: list[float] = []  # the garbage collector's full passes meanwhile
        self._last = 0.0
        self._collecting = 0.0
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

    def _collected(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._collecting = time.perf_counter()
        elif self._collecting:
            self.collections.append(time.perf_counter() - self._collecting)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last:
            self.gaps.append(now - self._last)
            if (now - self._last) * 1000 - TICK_MS > STALL_TARGET_MS:
                lines = self.lines() if self.lines else -1
                stall = round((now - self._last) * 1000 - TICK_MS, 1)
                self.long.append((round(now - self._started, 2), stall, lines))
        self._last = now

    def start(self, lines: Callable[[], int] | None = None) -> None:
        """Measure from now; ``lines`` gives the pane's line count, noted with each long stall."""
        self.gaps, self.collections, self._last = [], [], 0.0
        self.long: list[tuple[float, float, int]] = []  # (s since start, ms, the pane's lines)
        self.lines, self._started = lines, time.perf_counter()
        gc.callbacks.append(self._collected)
        self.timer.start()

    def stop(self) -> dict[str, float]:
        self.timer.stop()
        gc.callbacks.remove(self._collected)
        stalls = sorted(max(0.0, g * 1000 - TICK_MS) for g in self.gaps)
        return {
            "ticks": len(stalls),
            "max_ms": round(stalls[-1], 1),
            "p99_ms": round(stalls[int(len(stalls) * 0.99)], 1),
            "over_50ms": sum(1 for s in stalls if s > STALL_TARGET_MS),
            "full_gcs": len(self.collections),
            "longest_gc_ms": round(max(self.collections, default=0.0) * 1000, 1),
            "long_stalls": self.long,
        }


async def open_times(bridge: Any, page: int, repeat: int) -> dict[str, float]:
    """Median and max ms from ``Dashboard(bridge)`` to the window painted on ``page``, and
    to the Overview's fetch drawn (page 0)."""
    from PySide6.QtCore import QSettings

    from desktop.dashboard import Dashboard

    shown, fetched = [], []
    for _ in range(repeat):
        folder = tempfile.mkdtemp(prefix="stratavore-bench-prefs-")
        prefs = QSettings(str(Path(folder) / "prefs.ini"), QSettings.Format.IniFormat)
        prefs.setValue("window/page", page)
        done = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        window = Dashboard(bridge, prefs)
        window.fetched.connect(lambda name, done=done: done.done() or done.set_result(name))
        window.show()
        window.grab()  # laid out and painted, synchronously (no processEvents in a task)
        shown.append(time.perf_counter() - started)
        if page == 0:
            await asyncio.wait_for(done, 120)
            window.grab()
            fetched.append(time.perf_counter() - started)
        window.close()
        window.deleteLater()
        await asyncio.sleep(0.5)
    result = {"median_ms": _ms(statistics.median(shown)), "max_ms": _ms(max(shown))}
    if fetched:
        result["fetched_median_ms"] = _ms(statistics.median(fetched))
    return result


def bare_open(repeat: int) -> dict[str, float]:
    """The reference: a bare main window with eight empty tabs, shown and painted."""
    from PySide6.QtWidgets import QApplication, QMainWindow, QTabWidget, QWidget

    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        window = QMainWindow()
        tabs = QTabWidget()
        for n in range(8):
            tabs.addTab(QWidget(), f"page {n}")
        window.setCentralWidget(tabs)
        window.resize(1100, 720)
        window.show()
        QApplication.processEvents()  # not in a task: the loop is not running yet
        window.grab()
        times.append(time.perf_counter() - started)
        window.close()
        window.deleteLater()
    return {"median_ms": _ms(statistics.median(times)), "max_ms": _ms(max(times))}


async def stall(
    bridge: Any, runner_id: int, seconds: float, printing: bool, settle: bool
) -> dict[str, Any]:
    """The GUI loop's longest stall over ``seconds`` with the pane on ``runner_id``."""
    from PySide6.QtCore import QSettings

    from desktop import heap
    from desktop.dashboard import Dashboard

    folder = tempfile.mkdtemp(prefix="stratavore-bench-prefs-")
    prefs = QSettings(str(Path(folder) / "prefs.ini"), QSettings.Format.IniFormat)
    window = Dashboard(bridge, prefs)
    if settle:
        heap.settle()  # as the tray app does once its window is built (Shell.show_dashboard)
    window.resize(1400, 900)
    window.show()
    window.show_runner(runner_id)
    output = window.runners.pane.output
    ticks = Ticks()
    await asyncio.sleep(1.0)
    ticks.start(output.text.document().blockCount)
    started = time.perf_counter()
    lines_before = output.text.document().blockCount()
    await asyncio.sleep(seconds)
    result: dict[str, Any] = ticks.stop()
    elapsed = time.perf_counter() - started
    result["lines_shown_per_s"] = round(
        (output.text.document().blockCount() - lines_before) / elapsed
    )
    result["printing"] = printing
    window.close()
    window.deleteLater()
    return result


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


async def measure(daemon: Daemon, args: argparse.Namespace) -> dict[str, Any]:
    from desktop.bridge import Bridge

    bridge = Bridge(daemon.url, daemon.token)
    bridge.start()
    try:
        await bridge.refresh()
        say(f"the tray's snapshot: {len(bridge.snapshot.runners)} active runners")
        if not args.no_settle:
            from desktop import heap

            heap.settle()  # as the tray app does once it has started (Shell.run)
        results: dict[str, Any] = {}
        for page, name in ((0, "overview"), (1, "runners")):
            say(f"opening the window on {name}, {args.repeat} times")
            results[f"open_{name}"] = await open_times(bridge, page, args.repeat)
        idle = bridge.snapshot.runners[0]["id"]
        say(f"stall with the pane on an idle runner, {args.seconds} s")
        settle = not args.no_settle
        results["stall_idle"] = await stall(bridge, idle, args.seconds, False, settle)
        printer = PRINTER.format(rate=args.lines_per_s, seconds=args.seconds + 5)
        runner = daemon.post("/api/v1/runners", {
            "project": "demo", "command": [sys.executable, "-c", printer],
        })["id"]  # fmt: skip
        await bridge.refresh()
        say(f"stall with the pane on a runner printing {args.lines_per_s:,} lines/s")
        results["stall_printing"] = await stall(bridge, runner, args.seconds, True, settle)
        return results
    finally:
        await bridge.close()


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    bare = results["bare"]["median_ms"]
    over, on_runners = results["open_overview"], results["open_runners"]
    opening = Table(
        f"Window open with {args.runners:,} runners and {args.rows:,} usage rows (ms, median "
        f"of {args.repeat})",
        ["what", "painted", "max", "Overview's fetch drawn", "bare window", "target"],
        [
            ["on the Overview", over["median_ms"], over["max_ms"], over["fetched_median_ms"],
             bare, verdict(over["median_ms"], OPEN_TARGET_MS)],
            ["on the Runners page", on_runners["median_ms"], on_runners["max_ms"], "-", bare,
             verdict(on_runners["median_ms"], OPEN_TARGET_MS)],
        ],
    )  # fmt: skip
    idle, busy = results["stall_idle"], results["stall_printing"]
    stalls = Table(
        f"Longest GUI stall over {args.seconds} s (ms; 5 ms timer)",
        ["pane on", "longest", "p99", "stalls > 50 ms", "full GCs (longest ms)",
         "lines shown/s", "target"],
        [
            ["an idle runner (reference)", idle["max_ms"], idle["p99_ms"], idle["over_50ms"],
             f"{idle['full_gcs']} ({idle['longest_gc_ms']})", idle["lines_shown_per_s"], "-"],
            [f"a runner printing {args.lines_per_s:,} lines/s", busy["max_ms"], busy["p99_ms"],
             busy["over_50ms"], f"{busy['full_gcs']} ({busy['longest_gc_ms']})",
             busy["lines_shown_per_s"], verdict(busy["max_ms"], STALL_TARGET_MS)],
        ],
    )  # fmt: skip
    return opening.render() + "\n\n" + stalls.render()


def main() -> int:
    args = parse_args()
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    app.setQuitOnLastWindowClosed(False)  # as the tray app: closing a window ends nothing
    bare = bare_open(args.repeat)  # before the loop runs: it processes Qt's events itself
    caps = {"max_runners_per_project": args.runners + 10,
            "max_runners_global": args.runners + 10}  # fmt: skip
    daemon = Daemon("window", caps)
    say(f"writing {args.rows:,} usage rows")
    with ledger(daemon.home):
        filled = fill(args.rows, time.time(), args.seed)
    with daemon:
        daemon.project("demo")
        say(f"launching {args.runners:,} runners")
        daemon.post_many([("/api/v1/runners", {"project": "demo", "command": SLEEP})]
                         * args.runners, 32)  # fmt: skip
        poll_until(
            lambda: daemon.runner_states().count("running") >= args.runners,
            300, 0.5, "the runners to run",
        )  # fmt: skip
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        with loop:
            results = loop.run_until_complete(measure(daemon, args))
    results["bare"], results["ledger"] = bare, filled
    table = render(results, args)
    print(table)
    target = write_results("window", {"machine": machine(), "args": vars(args), **results,
                                      "table": table})  # fmt: skip
    print(f"\nwrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
