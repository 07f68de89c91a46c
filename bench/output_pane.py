"""The output pane at its line limit: the window's ``OutputView`` fed directly (no daemon, no
HTTP) at ``--lines-per-s`` for ``--seconds``, starting ``--below`` lines under its limit, so
most of the run is spent trimming. A 5 ms QTimer measures the GUI loop's stalls.

Three ways, each in its own process, in turns (``--rounds``), so they share the machine's load:

* ``cuts``: the pane as shipped (no block limit; the oldest lines go in cuts of
  ``TRIM_LINES`` once that far past ``MAX_LINES``);
* ``qt-limit``: Qt's own ``setMaximumBlockCount(MAX_LINES)`` (what the pane did before);
* ``no-limit``: nothing trimmed (the reference: what drawing alone costs).

Target (issue 20): longest stall <= 50 ms at 10,000 lines/s. Run:
``.venv/bin/python bench/output_pane.py``; writes ``bench/results/output_pane.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _common import REPO, Table, machine, write_results

MODES = ("cuts", "qt-limit", "no-limit")
TICK_MS = 5


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines-per-s", type=int, default=10_000)
    p.add_argument("--seconds", type=int, default=12)
    p.add_argument("--below", type=int, default=5_000, help="lines under the limit at start")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one measurement (child)
    return p.parse_args()


def one(args: argparse.Namespace) -> dict[str, float]:
    """One measurement in this process: the stalls while the pane is fed."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(REPO))
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from desktop.dashboard.output import MAX_LINES, OutputView

    view = OutputView(None)  # type: ignore[arg-type]  # fed directly: no bridge needed
    if args.mode != "cuts":
        view.max_lines = 10**12  # never cut
    if args.mode == "qt-limit":
        view.text.setMaximumBlockCount(MAX_LINES)
    view.resize(900, 700)
    view.show()
    view.feed("".join(f"before {n} " + "x" * 50 + "\n" for n in range(MAX_LINES - args.below)))
    while view.draw_slice(1.0):
        pass
    half = args.lines_per_s // 2
    fed, gaps, last = [0], [], [0.0]
    started = time.perf_counter()

    def feed() -> None:
        view.feed("".join(f"2026-12-08T02:30:00.{n % 1000:03d}Z \x1b[32m{fed[0]}:{n:04d}\x1b[0m "
                          + "x" * 50 + "\n" for n in range(half)))  # fmt: skip
        fed[0] += 1
        if time.perf_counter() - started > args.seconds:
            app.quit()

    def tick() -> None:
        now = time.perf_counter()
        if last[0]:
            gaps.append(max(0.0, (now - last[0]) * 1000 - TICK_MS))
        last[0] = now

    feeding, ticking = QTimer(), QTimer()
    feeding.setInterval(500)
    feeding.timeout.connect(feed)
    ticking.setInterval(TICK_MS)
    ticking.timeout.connect(tick)
    feeding.start()
    ticking.start()
    app.exec()
    gaps.sort()
    return {
        "max_ms": round(gaps[-1], 1),
        "p99_ms": round(gaps[int(len(gaps) * 0.99)], 1),
        "over_50ms": sum(1 for g in gaps if g > 50),
        "behind_lines": len(view._pending),
        "lines": view.text.document().blockCount(),
    }


def main() -> int:
    args = parse_args()
    if args.mode:
        print(json.dumps(one(args)))
        return 0
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for round_ in range(args.rounds):
        for mode in MODES:
            child = [sys.executable, __file__, "--mode", mode, "--seconds", str(args.seconds),
                     "--lines-per-s", str(args.lines_per_s),
                     "--below", str(args.below)]  # fmt: skip
            done = subprocess.run(child, capture_output=True, text=True, check=True)
            runs[mode].append(json.loads(done.stdout.splitlines()[-1]))
            print(f"round {round_ + 1} {mode}: {runs[mode][-1]}", file=sys.stderr, flush=True)
    rows = []
    for mode in MODES:
        got = runs[mode]
        rows.append([
            mode, statistics.median(r["max_ms"] for r in got),
            statistics.median(r["p99_ms"] for r in got),
            statistics.median(r["over_50ms"] for r in got),
            statistics.median(r["behind_lines"] for r in got),
            "<= 50" if mode == "cuts" else "-",
        ])  # fmt: skip
    table = Table(
        f"Output pane at its limit: {args.lines_per_s:,} lines/s for {args.seconds} s from "
        f"{args.below:,} lines under it (medians of {args.rounds} rounds; ms)",
        ["way", "longest stall", "p99", "stalls > 50 ms", "lines behind at the end", "target"],
        rows,
    ).render()
    print(table)
    target = write_results("output_pane", {"machine": machine(), "args": vars(args),
                                           "runs": runs, "table": table})  # fmt: skip
    print(f"\nwrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
