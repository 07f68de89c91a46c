"""The dashboard's daily usage chart over a big ledger: the report, then the chart drawn from it.

One run, one machine, offscreen Qt (``QT_QPA_PLATFORM=offscreen`` unless set):

* two ledgers in temp data dirs, written in-process with direct SQL into ``usage`` (then
  ``rebuild_buckets()``): ``--rows`` rows (default 1,000,000) and ``--small-rows`` (1,000),
  both spread over the last 365 days, ten projects (5 % of the rows outside any project),
  three models;
* (a) the report: ``reports.report("daily", ..., by_project=True)`` in-process, for the
  dashboard's 90-day and 1-year ranges, median of ``--repeat`` calls; and the time to decode
  its JSON body (what the bridge does with the API's answer);
* (b) the chart: :class:`desktop.charts.DailyChart` (1000 x 600) drawn from that report JSON:
  ``stack_by_project`` + ``show_stack`` + ``processEvents()`` + ``grab()`` (a full paint).
  *first draw*: a new chart each time (series created); *redraw*: the same chart again,
  tokens and cost alternating (series reused, values replaced): the 10-second refresh.
  Median of ``--repeat``, wall and CPU time of this process;
* reference, in the same run: the same chart from an empty report and from the small ledger's.

Target: drawing the chart from the report over the big ledger takes <= 100 ms (first draw
and redraw, wall). Run: ``.venv/bin/python bench/chart.py``; writes ``bench/results/chart.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from _common import Table, ledger, machine, verdict, write_results

from supervisor.storage.models import DB, Project  # the snapshot (_common put it first on sys.path)
from supervisor.storage.queries import rebuild_buckets
from supervisor.usage import reports

TARGET_MS = 100.0
RANGES = (90, 365)
PROJECTS = 10
MODELS = {  # $ per million input / output tokens: enough for a plausible cost column
    "claude-sonnet-4-5-20250929": (3.0, 15.0),
    "claude-opus-4-1-20250805": (15.0, 75.0),
    "claude-haiku-4-5-20251001": (1.0, 5.0),
}
UTC = ZoneInfo("UTC")
_INSERT = (
    'INSERT INTO "usage" (ts, agent, model, input_tokens, output_tokens, cache_creation_tokens, '
    "cache_creation_1h_tokens, cache_read_tokens, cost_usd, project_id, dedupe, rank) "
    "VALUES (?, 'claude', ?, ?, ?, ?, 0, ?, ?, ?, ?, 0)"
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="usage rows of the big ledger")
    p.add_argument("--small-rows", type=int, default=1_000, help="rows of the reference ledger")
    p.add_argument("--repeat", type=int, default=10, help="timed runs of each measurement")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- the ledgers -------------------------------------------------------------------------------
def fill(rows: int, now: float, seed: int) -> dict[str, Any]:
    """``rows`` usage rows over the 365 days before ``now``, then every bucket rebuilt."""
    rng = random.Random(seed)
    ids = [
        Project.create(name=f"project-{i:02d}", path=f"/work/project-{i:02d}", created_at=now).id
        for i in range(PROJECTS)
    ]
    models = list(MODELS)
    start = now - 365 * 86400

    def generate() -> Iterator[tuple[Any, ...]]:
        for n in range(rows):
            model = models[n % 3]
            inp, out = rng.randint(1, 5_000), rng.randint(1, 2_000)
            cache_new, cache_read = rng.randint(0, 20_000), rng.randint(0, 100_000)
            price_in, price_out = MODELS[model]
            cost = (
                inp + cache_new * 1.25 + cache_read * 0.1
            ) * price_in / 1e6 + out * price_out / 1e6
            project = ids[n % PROJECTS] if rng.random() >= 0.05 else None
            yield (start + rng.random() * 365 * 86400, model, inp, out, cache_new, cache_read,
                   cost, project, n)  # fmt: skip

    started = time.perf_counter()
    with DB.atomic():
        DB.connection().executemany(_INSERT, generate())
    inserted = time.perf_counter() - started
    started = time.perf_counter()
    with DB.atomic():
        rebuild_buckets()
    rebuilt = time.perf_counter() - started
    buckets = DB.execute_sql('SELECT COUNT(*) FROM "usage_bucket"').fetchone()[0]
    return {"rows": rows, "insert_s": round(inserted, 2), "rebuild_s": round(rebuilt, 2),
            "buckets": buckets}  # fmt: skip


def days_of(days: int, today: date) -> list[str]:
    return [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def timed(work: Callable[[], Any], repeat: int) -> dict[str, float]:
    """Median wall and CPU milliseconds of ``work``."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return {
        "wall_ms": round(statistics.median(walls) * 1000, 2),
        "cpu_ms": round(statistics.median(cpus) * 1000, 2),
        "max_wall_ms": round(max(walls) * 1000, 2),
    }


def report_of(home: Path, days: list[str], now: float, repeat: int) -> tuple[dict, dict]:
    """The daily by-project report over ``days``, and its timings."""
    query = reports.Query(zone=UTC, since=date.fromisoformat(days[0]))
    with ledger(home):
        result = reports.report("daily", query, now, by="project")
        timing = timed(lambda: reports.report("daily", query, now, by="project"), repeat)
    body = json.dumps(result).encode()
    timing["decode"] = timed(lambda: json.loads(body), repeat)
    timing["json_kb"] = round(len(body) / 1024, 1)
    timing["report_rows"] = len(result["rows"])
    return result, timing


# --- the chart ---------------------------------------------------------------------------------
class Charts:
    """Times :class:`DailyChart` drawn from report JSON."""

    def __init__(self) -> None:
        from PySide6.QtWidgets import QApplication

        self.app = QApplication.instance() or QApplication([])

    def new_chart(self) -> Any:
        from desktop.charts import DailyChart

        chart = DailyChart()
        chart.resize(1000, 600)
        chart.show()
        self.app.processEvents()
        return chart

    def draw(self, chart: Any, report: dict, days: list[str], metric: str) -> None:
        from desktop.charts import stack_by_project

        chart.show_stack(stack_by_project(report["rows"], days, metric), metric, "bench")
        self.app.processEvents()
        chart.grab()

    def first_draw(self, report: dict, days: list[str], repeat: int) -> dict[str, float]:
        walls, cpus = [], []
        for _ in range(repeat):
            chart = self.new_chart()
            wall, cpu = time.perf_counter(), time.process_time()
            self.draw(chart, report, days, "tokens")
            cpus.append(time.process_time() - cpu)
            walls.append(time.perf_counter() - wall)
            chart.close()
            chart.deleteLater()
            self.app.processEvents()
        return {
            "wall_ms": round(statistics.median(walls) * 1000, 2),
            "cpu_ms": round(statistics.median(cpus) * 1000, 2),
            "max_wall_ms": round(max(walls) * 1000, 2),
        }

    def redraw(self, report: dict, days: list[str], repeat: int) -> dict[str, float]:
        chart = self.new_chart()
        self.draw(chart, report, days, "tokens")
        metrics = iter(["cost", "tokens"] * repeat)
        timing = timed(lambda: self.draw(chart, report, days, next(metrics)), repeat)
        timing["bars"] = sum(s.count() for s in chart.bar_sets)
        chart.close()
        chart.deleteLater()
        return timing


# --- the run -----------------------------------------------------------------------------------
def main() -> int:
    args = parse_args()
    now = time.time()
    today = date.fromtimestamp(now)
    base = Path(tempfile.mkdtemp(prefix="stratavore-bench-chart-"))
    results: dict[str, Any] = {"ledgers": {}, "ranges": {}}
    try:
        homes = {"big": base / "big", "small": base / "small"}
        for label, rows in (("big", args.rows), ("small", args.small_rows)):
            say(f"writing {rows:,} usage rows ({label})")
            with ledger(homes[label]):
                results["ledgers"][label] = fill(rows, now, args.seed)
            say(f"  {results['ledgers'][label]}")
        charts = Charts()
        for span in RANGES:
            days = days_of(span, today)
            cases: dict[str, Any] = {}
            reports_by_case = {"empty": {"rows": [], "totals": {}}}
            for label in ("small", "big"):
                say(f"{span} days: report over the {label} ledger")
                report, timing = report_of(homes[label], days, now, args.repeat)
                reports_by_case[label] = report
                cases[label] = {"report": timing}
            cases["empty"] = {}
            for label, report in reports_by_case.items():
                say(f"{span} days: chart from the {label} report")
                cases[label]["first_draw"] = charts.first_draw(report, days, args.repeat)
                cases[label]["redraw"] = charts.redraw(report, days, args.repeat)
            results["ranges"][str(span)] = cases
    finally:
        shutil.rmtree(base, ignore_errors=True)
    table = render(results, args)
    print(table)
    target = write_results(
        "chart",
        {"machine": machine(), "args": vars(args), "target_ms": TARGET_MS, **results,
         "table": table},
    )  # fmt: skip
    print(f"\nwrote {target}")
    return 0


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    rows = []
    for span, cases in results["ranges"].items():
        for label in ("empty", "small", "big"):
            case = cases[label]
            report = case.get("report")
            first, again = case["first_draw"], case["redraw"]
            big = label == "big"
            rows.append([
                "1 year (by week)" if span == "365" else f"{span} days",
                f"{results['ledgers'][label]['rows']:,} rows"
                if label in results["ledgers"] else "empty report",
                report["report_rows"] if report else 0,
                again["bars"],
                report["wall_ms"] if report else None,
                report["decode"]["wall_ms"] if report else None,
                f"{first['wall_ms']} ({first['cpu_ms']})",
                f"{again['wall_ms']} ({again['cpu_ms']})",
                verdict(max(first["wall_ms"], again["wall_ms"]), TARGET_MS) if big else "-",
            ])  # fmt: skip
    headers = [
        "range",
        "ledger",
        "report rows",
        "bars",
        "(a) report ms",
        "decode JSON ms",
        "(b) first draw ms wall (cpu)",
        "(b) redraw ms wall (cpu)",
        f"target <= {TARGET_MS:g} ms",
    ]
    title = (
        f"Daily chart by project from report JSON, median of {args.repeat} "
        "(draw = stack + show_stack + processEvents + grab, 1000x600 offscreen)"
    )
    return Table(title, headers, rows).render()


if __name__ == "__main__":
    sys.exit(main())
