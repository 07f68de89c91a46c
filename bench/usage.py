"""Usage import, reports and budget checks: Stratavore vs ccusage on the same generated trees.

For each size (``--lines 100000,1000000``), in one run, on the same machine:

* the tree is generated once by ``usage_gen.py`` (two Claude config roots). Nothing is dropped
  from the page cache: the tree was just written, so both sides read it warm (the generator
  writes it, and the first timed run of either side would warm it anyway);
* side by side, alternating, ``--repeat`` times each (medians reported): our first import into
  a fresh data dir (``stratavore usage import``) then ``stratavore usage daily --json
  --timezone UTC --mode ccusage``, each timed on its own, vs ``ccusage claude daily --json
  --offline --timezone UTC`` (its native binary: ``_ccusage.py``). Both run as child
  processes, timed the same way (wall clock, CPU from ``wait4``, peak RSS sampled over the
  process tree), with an empty ``HOME``;
* the per-day totals (input, output, cache creation, cache read, total) of both daily reports
  are compared: every differing day is listed;
* incremental refresh: ``--grow`` % more lines are generated (new sessions of the last two
  days, with new message ids) and appended to existing session files of the same projects
  (their ``sessionId`` rewritten to the file's), their sub-agent transcripts and a few whole
  sessions landing as new files; then ``usage import`` runs again, ``--repeat`` times, each on
  a fresh copy of the data dir as it was after the first import; totals are compared with
  ccusage again on the grown tree;
* ``usage daily --json`` over the whole ledger: CLI wall time (Python start-up included) and
  the report itself in-process (``reports.report("daily", ...)``, ``--report-calls`` calls);
* a budget check at launch: project X (the tree's busiest project folder) and three ``block``
  budgets with limits far above the usage (global daily tokens, project:X monthly dollars,
  agent:claude weekly tokens); an import attributes the existing sessions to X (re-attribution
  and a rebuild of every bucket, timed too), then ``budgets.check_launch("X", "claude", now)``
  is timed in-process, ``--budget-calls`` calls, ``now`` = the newest response in the ledger
  (so every window holds usage).

Run: ``.venv/bin/python bench/usage.py --lines 100000,1000000``; writes
``bench/results/usage.json``. ``--keep DIR`` keeps the trees and data dirs in DIR.
"""

from __future__ import annotations

import argparse
import json
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
from zoneinfo import ZoneInfo

import _ccusage
import usage_gen
from _ccusage import DayTokens
from _common import (
    MARK,
    PYTHON,
    REPO,
    RUN_ID,
    SOURCES,
    Table,
    kill_marked,
    latency_ms,
    ledger,
    machine,
    ratio,
    sigterm_as_interrupt,
    verdict,
    write_results,
)

from supervisor.storage.models import DB, Project  # the snapshot (_common put it first on sys.path)
from supervisor.usage import budgets, reports
from supervisor.usage.budgets import Calendar

RATIO_TARGET = 1.0  # ours / ccusage, first import + daily report (issue 14)
INCREMENTAL_TARGET_S = 0.1  # in-process (issue 14)
REPORT_TARGET_MS = 100.0
BUDGET_TARGET_MS = 5.0
FIELDS = ("input", "output", "cache_creation", "cache_read", "total")
OUR_KEYS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
UTC = ZoneInfo("UTC")
BUSIEST_CWD = usage_gen.PROJECT_CWDS[0]  # the generator weighs the first project most


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--lines",
        type=lambda text: [int(part) for part in text.split(",") if part.strip()],
        default=[100_000, 1_000_000],
        help="tree sizes in lines, comma-separated (default 100000,1000000)",
    )
    p.add_argument("--repeat", type=int, default=3, help="timed runs of each side")
    p.add_argument("--seed", type=int, default=1, help="usage_gen seed (the growth: seed+1)")
    p.add_argument("--grow", type=float, default=1.0, metavar="PCT", help="lines appended, %%")
    p.add_argument("--cli-runs", type=int, default=5, help="runs of `usage daily --json`")
    p.add_argument("--report-calls", type=int, default=20, help="in-process daily reports")
    p.add_argument("--budget-calls", type=int, default=200, help="in-process launch checks")
    p.add_argument("--keep", type=Path, metavar="DIR", help="keep trees and data dirs here")
    p.add_argument(
        "--reference",
        metavar="REV",
        help="also time the first import + daily report of this git revision's supervisor "
        "package in every round (the code before a change, in the same run)",
    )
    return p.parse_args()


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def load() -> float:
    """The 1-minute load average: other work on the machine shows up here."""
    return round(os.getloadavg()[0], 2)


# --- our side ---------------------------------------------------------------------------------
class Ours:
    """The ``stratavore`` CLI (the copied sources) on one data dir, reading only ``roots``."""

    def __init__(self, home: Path, roots: list[Path], empty: Path, sources: Path = SOURCES) -> None:
        self.home = home
        self.env = {
            "STRATAVORE_HOME": str(home),
            "STRATAVORE_NO_LOGIN_PATH": "1",
            "CLAUDE_CONFIG_DIR": ",".join(str(root) for root in roots),
            "CODEX_HOME": str(empty),
            "PYTHONPATH": str(sources),
            MARK: f"{RUN_ID}/usage",
        }

    def run(self, *args: str) -> tuple[dict[str, float], Any]:
        """Run ``stratavore ARGS``; its timings (as ``_ccusage`` takes ccusage's: same
        clock, same rusage, an empty temp HOME) and its JSON output.

        Peak RSS is sampled, summed over the process and its workers (``_ccusage._PeakRss``).
        """
        argv = [str(PYTHON), "-m", "supervisor.cli", *args]
        wall, cpu, rss, out = _ccusage._run(argv, self.env)
        timing = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "peak_rss_mb": round(rss, 1)}
        return timing, json.loads(out)

    def import_(self) -> tuple[dict[str, float], dict[str, Any]]:
        return self.run("usage", "import", "--json")

    def daily(self) -> tuple[dict[str, float], dict[str, Any]]:
        """The daily report in ccusage's cost mode, so that its costs compare too."""
        return self.run("usage", "daily", "--json", "--timezone", "UTC", "--mode", "ccusage")


def our_days(daily: dict[str, Any]) -> dict[str, DayTokens]:
    days = {}
    for row in daily["rows"]:
        tokens = [row[key] for key in OUR_KEYS]
        days[row["date"]] = DayTokens(*tokens, row["total_tokens"], row["cost_usd"])
    return days


# --- comparison -------------------------------------------------------------------------------
def compare(ours: dict[str, DayTokens], theirs: dict[str, DayTokens]) -> dict[str, Any]:
    """Every day whose token counts differ (a day missing on one side counts as zeros), and
    the largest single difference."""
    zero = DayTokens(0, 0, 0, 0, 0, 0.0)
    differing = []
    largest: dict[str, Any] = {"abs": 0}
    for day in sorted(ours.keys() | theirs.keys()):
        a, b = ours.get(day, zero), theirs.get(day, zero)
        diffs = {f: getattr(a, f) - getattr(b, f) for f in FIELDS if getattr(a, f) != getattr(b, f)}
        if not diffs:
            continue
        differing.append({
            "date": day,
            "missing": "ours" if day not in ours else "ccusage" if day not in theirs else None,
            "ours": {f: getattr(a, f) for f in FIELDS},
            "ccusage": {f: getattr(b, f) for f in FIELDS},
            "ours_minus_ccusage": diffs,
        })  # fmt: skip
        for field, diff in diffs.items():
            if abs(diff) > largest["abs"]:
                base = getattr(b, field)
                largest = {
                    "abs": abs(diff),
                    "date": day,
                    "field": field,
                    "ours_minus_ccusage": diff,
                    "percent_of_ccusage": round(100 * diff / base, 4) if base else None,
                }
    return {
        "days_ours": len(ours),
        "days_ccusage": len(theirs),
        "differing_days": len(differing),
        "largest": largest if differing else None,
        "days": differing,
        "total_tokens_ours": sum(d.total for d in ours.values()),
        "total_tokens_ccusage": sum(d.total for d in theirs.values()),
        "cost_usd_ours": round(sum(d.cost_usd for d in ours.values()), 2),
        "cost_usd_ccusage": round(sum(d.cost_usd for d in theirs.values()), 2),
    }


def print_differences(label: str, diff: dict[str, Any]) -> None:
    say(
        f"{label}: {diff['differing_days']} differing days ({diff['days_ours']} days ours, "
        f"{diff['days_ccusage']} ccusage)"
    )
    for day in diff["days"]:
        say(
            f"  {day['date']}: ours - ccusage = {day['ours_minus_ccusage']}"
            + (f" (missing in {day['missing']})" if day["missing"] else "")
        )


# --- growth -----------------------------------------------------------------------------------
def grow(tree: Path, lines: int, seed: int) -> dict[str, int]:
    """Append about ``lines`` new lines to the tree's first root, as sessions resumed and
    started in the last two days would: most generated sessions are appended to an existing
    session file of their project (their ``sessionId`` rewritten to that file's), the rest,
    and every sub-agent transcript, become new files."""
    scratch = tree / "grow-scratch"
    usage_gen.generate(scratch, lines, seed=seed, roots=1, days=2)
    rng = random.Random(seed)
    projects = tree / "claude" / "projects"
    new_projects = scratch / "claude" / "projects"
    resumable: dict[str, list[Path]] = {}
    for path in sorted(projects.glob("*/*.jsonl")):
        if not path.name.startswith("agent-") and _ends_with_newline(path):
            resumable.setdefault(path.parent.name, []).append(path)
    renamed: dict[str, str] = {}  # generated session id -> the resumed file's
    for path in sorted(new_projects.glob("*/*.jsonl")):
        targets = resumable.get(path.parent.name)
        if not path.name.startswith("agent-") and targets and rng.random() < 0.8:
            target = targets.pop(rng.randrange(len(targets)))  # each file resumed once
            renamed[path.stem] = target.stem
    out = {"lines": 0, "bytes": 0, "files_appended": 0, "files_new": 0}
    for path in sorted(new_projects.rglob("*.jsonl")):
        data = path.read_bytes()
        for new, old in renamed.items():
            if new.encode() in data:
                data = data.replace(
                    f'"sessionId":"{new}"'.encode(), f'"sessionId":"{old}"'.encode()
                )
        target = projects / _renamed(path.relative_to(new_projects), renamed)
        target.parent.mkdir(parents=True, exist_ok=True)
        appended = target.exists()
        with open(target, "ab") as f:
            f.write(data)
        out["files_appended" if appended else "files_new"] += 1
        out["lines"] += data.count(b"\n") + (not data.endswith(b"\n"))
        out["bytes"] += len(data)
    shutil.rmtree(scratch)
    return out


def _renamed(relative: Path, renamed: dict[str, str]) -> Path:
    """``relative`` with its session directory or session file renamed."""
    *folders, name = relative.parts
    stem = name.removesuffix(".jsonl")
    if stem in renamed:
        name = renamed[stem] + ".jsonl"
    return Path(*(renamed.get(folder, folder) for folder in folders), name)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b"\n"


# --- one size ---------------------------------------------------------------------------------
def reference_sources(rev: str) -> Path:
    """The supervisor package of a git revision, extracted to a temp dir and compiled (as the
    run's own snapshot is, so that neither side's first run compiles)."""
    target = Path(tempfile.mkdtemp(prefix="stratavore-bench-usage-ref-"))
    archive = subprocess.run(
        ["git", "archive", rev, "supervisor"], cwd=REPO, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    compiled(target)
    return target


def compiled(sources: Path) -> None:
    subprocess.run([str(PYTHON), "-m", "compileall", "-q", str(sources / "supervisor")], check=True)


def median_of(runs: list[dict[str, float]], key: str) -> float:
    return round(statistics.median(run[key] for run in runs), 3)


def side_by_side(
    work: Path, roots: list[Path], empty: Path, repeat: int, reference: Path | None
) -> tuple[dict[str, Any], Path, dict[str, DayTokens], dict[str, DayTokens]]:
    """``repeat`` rounds of (our import + daily, ccusage daily, and the reference revision's
    import + daily when given), alternating; the results, the last round's data dir, and both
    sides' days of the last round."""
    out: dict[str, Any] = {"ours_import": [], "ours_daily": [], "ccusage": [], "loadavg_1m": []}
    out.update({"ref_import": [], "ref_daily": []})
    home = work
    ours_days: dict[str, DayTokens] = {}
    theirs: dict[str, DayTokens] = {}
    for rep in range(repeat):
        if rep:
            shutil.rmtree(home)
        home = work.parent / f"{work.name}-{rep}"
        ours = Ours(home, roots, empty)
        out["loadavg_1m"].append(load())
        timing, report = ours.import_()
        out["ours_import"].append({**timing, "import_s": report["seconds"], **report})
        say(
            f"  round {rep + 1}: ours import {timing['wall_s']:.2f} s "
            f"({report['written']:,} rows, {report['bytes_read'] / 1e6:,.0f} MB)"
        )
        timing, daily = ours.daily()
        out["ours_daily"].append(timing)
        ours_days = our_days(daily)
        say(f"  round {rep + 1}: ours daily {timing['wall_s']:.2f} s")
        run = _ccusage.claude_daily(roots, "UTC")
        out["ccusage"].append(
            {"wall_s": run.wall_s, "cpu_s": run.cpu_s, "peak_rss_mb": run.max_rss_mb}
        )
        theirs = run.days
        say(f"  round {rep + 1}: ccusage {run.wall_s:.2f} s")
        if reference is not None:
            ref_home = work.parent / f"{work.name}-ref-{rep}"
            ref = Ours(ref_home, roots, empty, reference)
            timing, _ = ref.import_()
            out["ref_import"].append(timing)
            out["ref_daily"].append(ref.daily()[0])
            shutil.rmtree(ref_home)
            say(f"  round {rep + 1}: reference import + daily {timing['wall_s']:.2f} s + "
                f"{out['ref_daily'][-1]['wall_s']:.2f} s")  # fmt: skip
    sums = [
        {"wall_s": round(i["wall_s"] + d["wall_s"], 3), "cpu_s": round(i["cpu_s"] + d["cpu_s"], 3)}
        for i, d in zip(out["ours_import"], out["ours_daily"], strict=True)
    ]
    out["ours_sum"] = sums
    ref_sums = [
        {"wall_s": round(i["wall_s"] + d["wall_s"], 3), "cpu_s": round(i["cpu_s"] + d["cpu_s"], 3)}
        for i, d in zip(out["ref_import"], out["ref_daily"], strict=True)
    ]
    out["median"] = {
        "ours_import_s": median_of(out["ours_import"], "wall_s"),
        "ours_import_in_process_s": median_of(out["ours_import"], "import_s"),
        "ours_daily_s": median_of(out["ours_daily"], "wall_s"),
        "ours_sum_s": median_of(sums, "wall_s"),
        "ccusage_s": median_of(out["ccusage"], "wall_s"),
        "ours_import_cpu_s": median_of(out["ours_import"], "cpu_s"),
        "ours_sum_cpu_s": median_of(sums, "cpu_s"),
        "ccusage_cpu_s": median_of(out["ccusage"], "cpu_s"),
        "ours_import_peak_rss_mb": max(run["peak_rss_mb"] for run in out["ours_import"]),
        "ccusage_peak_rss_mb": max(run["peak_rss_mb"] for run in out["ccusage"]),
        "loadavg_1m": statistics.median(out["loadavg_1m"]),
    }
    if ref_sums:
        out["median"].update({
            "ref_sum_s": median_of(ref_sums, "wall_s"),
            "ref_sum_cpu_s": median_of(ref_sums, "cpu_s"),
            "ref_import_peak_rss_mb": max(run["peak_rss_mb"] for run in out["ref_import"]),
        })  # fmt: skip
    return out, home, ours_days, theirs


def incremental(
    tree: Path, home: Path, roots: list[Path], empty: Path, args: argparse.Namespace, lines: int
) -> tuple[dict[str, Any], Path]:
    """Grow the tree, then import the growth ``repeat`` times, each into a fresh copy of the
    data dir as the first import left it; the results and the last copy."""
    before = home.parent / f"{home.name}-before-growth"
    shutil.copytree(home, before)
    added = grow(tree, max(1, round(lines * args.grow / 100)), args.seed + 1)
    say(
        f"  grew the tree by {added['lines']:,} lines ({added['bytes'] / 1e6:,.1f} MB): "
        f"{added['files_appended']} files appended to, {added['files_new']} new"
    )
    runs = []
    for rep in range(args.repeat):
        shutil.rmtree(home)
        shutil.copytree(before, home)
        timing, report = Ours(home, roots, empty).import_()
        runs.append({**timing, "import_s": report["seconds"], **report})
        say(
            f"  incremental import {rep + 1}: {timing['wall_s']:.3f} s wall, "
            f"{report['seconds']:.3f} s in-process, {report['written']:,} rows from "
            f"{report['files_read']} files"
        )
    shutil.rmtree(before)
    return {
        "added": added,
        "runs": runs,
        "median_wall_s": median_of(runs, "wall_s"),
        "median_import_s": median_of(runs, "import_s"),
    }, home


def report_speed(ours: Ours, args: argparse.Namespace) -> dict[str, Any]:
    """``usage daily --json`` over the whole ledger: CLI wall, and the report in-process."""
    walls = [ours.daily()[0]["wall_s"] for _ in range(args.cli_runs)]
    with ledger(ours.home):
        rows = DB.execute_sql('SELECT COUNT(*) FROM "usage"').fetchone()[0]
        buckets = DB.execute_sql('SELECT COUNT(*) FROM "usage_bucket"').fetchone()[0]
        query = reports.Query(zone=UTC)
        samples = []
        for _ in range(args.report_calls):
            started = time.perf_counter()
            reports.report("daily", query, time.time())
            samples.append(time.perf_counter() - started)
    return {
        "ledger_rows": rows,
        "buckets": buckets,
        "cli_wall_s": walls,
        "cli_median_ms": round(statistics.median(walls) * 1000, 1),
        "in_process": latency_ms(samples),
    }


def budget_speed(ours: Ours, args: argparse.Namespace) -> dict[str, Any]:
    """Project X and three block budgets, an import that attributes X's sessions to it, then
    ``check_launch`` timed in-process."""
    with ledger(ours.home):
        now = DB.execute_sql('SELECT MAX(ts) FROM "usage"').fetchone()[0] + 60
        Project.create(name="X", path=BUSIEST_CWD, created_at=now)
        budgets.set_budget("global", "daily", 10**15, None, None, "block", now)
        budgets.set_budget("project:X", "monthly", None, 10.0**9, None, "block", now)
        budgets.set_budget("agent:claude", "weekly", 10**15, None, None, "block", now)
    timing, report = ours.import_()
    say(
        f"  re-attribution import: {timing['wall_s']:.2f} s wall, {report['seconds']:.2f} s "
        "in-process"
    )
    calendar = Calendar(UTC)
    with ledger(ours.home):
        used = [
            budgets.status(budget, now, calendar).as_json()
            for budget in budgets.applicable("X", "claude")
        ]
        assert len(used) == 3, used
        samples = []
        for _ in range(args.budget_calls):
            started = time.perf_counter()
            budgets.check_launch("X", "claude", now, calendar)
            samples.append(time.perf_counter() - started)
    return {
        "now": now,
        "reattribution_import": {**timing, "import_s": report["seconds"]},
        "budgets": [
            {k: u[k] for k in ("scope", "period", "used_tokens", "used_usd", "percent")}
            for u in used
        ],
        "check_launch": latency_ms(samples),
    }


def one_size(lines: int, base: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"lines": lines}
    tree, empty = base / "tree", base / "empty"
    empty.mkdir(parents=True)
    say(f"{lines:,} lines: generating the tree")
    out["tree"] = usage_gen.generate(tree, lines, seed=args.seed, roots=2)
    roots = [tree / "claude", tree / "claude2"]
    out["tree"]["disk_mb"] = round(sum(p.stat().st_size for p in tree.rglob("*.jsonl")) / 1e6, 1)
    say(f"{lines:,} lines: side by side, {args.repeat} rounds (page cache warm, not dropped)")
    out["first"], home, ours_days, theirs = side_by_side(
        base / "data", roots, empty, args.repeat, args.reference_sources
    )
    out["first"]["compare"] = compare(ours_days, theirs)
    print_differences(f"{lines:,} lines, first import", out["first"]["compare"])

    loads = out["loadavg_1m"] = {"first": out["first"]["median"]["loadavg_1m"]}
    loads["incremental"] = load()
    say(f"{lines:,} lines: incremental refresh (+{args.grow:g} %), load {loads['incremental']}")
    out["incremental"], home = incremental(tree, home, roots, empty, args, lines)
    ours = Ours(home, roots, empty)
    _, daily = ours.daily()
    run = _ccusage.claude_daily(roots, "UTC")
    out["incremental"]["ccusage_grown_s"] = run.wall_s
    out["incremental"]["compare"] = compare(our_days(daily), run.days)
    print_differences(f"{lines:,} lines, after growth", out["incremental"]["compare"])

    loads["report"] = load()
    say(f"{lines:,} lines: daily report over the ledger, load {loads['report']}")
    out["report"] = report_speed(ours, args)
    loads["budget"] = load()
    say(f"{lines:,} lines: budget check at launch, load {loads['budget']}")
    out["budget"] = budget_speed(ours, args)
    return out


# --- report -----------------------------------------------------------------------------------
def largest(diff: dict[str, Any]) -> str:
    top = diff["largest"]
    if top is None:
        return "0"
    return f"{top['ours_minus_ccusage']:+,} {top['field']} on {top['date']}"


def tables(results: list[dict[str, Any]], args: argparse.Namespace) -> list[Table]:
    speed, cpu, totals, grown, report, budget = [], [], [], [], [], []
    for r in results:
        m, t = r["first"]["median"], r["tree"]
        sum_ratio = ratio(m["ours_sum_s"], m["ccusage_s"])
        speed.append([
            f"{r['lines']:,}", t["claude_files"], t["disk_mb"], m["ours_import_s"],
            m["ours_import_in_process_s"], m["ours_daily_s"], m["ours_sum_s"], m["ccusage_s"],
            ratio(m["ours_import_s"], m["ccusage_s"]), sum_ratio, verdict(sum_ratio, RATIO_TARGET),
            m.get("ref_sum_s", "-"),
            ratio(m["ref_sum_s"], m["ccusage_s"]) if "ref_sum_s" in m else "-",
        ])  # fmt: skip
        cpu.append([
            f"{r['lines']:,}", m["ours_import_cpu_s"], m["ours_sum_cpu_s"], m["ccusage_cpu_s"],
            ratio(m["ours_sum_cpu_s"], m["ccusage_cpu_s"]), m["ours_import_peak_rss_mb"],
            m["ccusage_peak_rss_mb"], m["loadavg_1m"],
        ])  # fmt: skip
        first, after = r["first"]["compare"], r["incremental"]["compare"]
        totals.append([
            f"{r['lines']:,}", first["days_ours"], first["days_ccusage"],
            first["differing_days"], largest(first), after["differing_days"], largest(after),
            f"{first['cost_usd_ours']:,.2f} / {first['cost_usd_ccusage']:,.2f}",
        ])  # fmt: skip
        inc = r["incremental"]
        grown.append([
            f"{r['lines']:,}", inc["added"]["lines"], inc["added"]["files_appended"],
            inc["added"]["files_new"], inc["runs"][-1]["written"], inc["median_wall_s"],
            inc["median_import_s"], verdict(inc["median_import_s"], INCREMENTAL_TARGET_S),
        ])  # fmt: skip
        rep = r["report"]
        report.append([
            f"{r['lines']:,}", rep["ledger_rows"], rep["buckets"], rep["cli_median_ms"],
            rep["in_process"]["p50_ms"], rep["in_process"]["p99_ms"],
            verdict(rep["in_process"]["p50_ms"], REPORT_TARGET_MS),
        ])  # fmt: skip
        b = r["budget"]
        budget.append([
            f"{r['lines']:,}", b["check_launch"]["p50_ms"], b["check_launch"]["p99_ms"],
            verdict(b["check_launch"]["p99_ms"], BUDGET_TARGET_MS),
            b["reattribution_import"]["wall_s"],
        ])  # fmt: skip
    n = args.repeat
    return [
        Table(
            f"First import + daily report vs ccusage daily: wall s, median of {n} "
            "(page cache warm)",
            [
                "lines",
                "files",
                "MB",
                "ours import",
                "import in-process",
                "ours daily",
                "ours sum",
                "ccusage",
                "import / ccusage",
                "sum / ccusage",
                f"target sum <= {RATIO_TARGET:g}x",
                f"reference {args.reference or '-'} sum",
                "reference sum / ccusage",
            ],
            speed,
        ),
        Table(
            f"CPU s (user + system, all threads, workers too), median of {n}; peak RSS (MB,"
            " summed over the process and its workers, sampled every 20 ms), the largest",
            [
                "lines",
                "ours import CPU",
                "ours sum CPU",
                "ccusage CPU",
                "CPU sum / ccusage",
                "ours import peak RSS MB",
                "ccusage peak RSS MB",
                "load 1m (median, 2 cores)",
            ],
            cpu,
        ),
        Table(
            "Per-day tokens vs ccusage (input, output, cache creation, cache read, total)",
            [
                "lines",
                "days ours",
                "days ccusage",
                "differing days",
                "largest difference",
                "differing days after growth",
                "largest after growth",
                "cost $ ours / ccusage",
            ],
            totals,
        ),
        Table(
            f"Incremental refresh: +{args.grow:g} % lines, `usage import` (s, median of {n})",
            [
                "lines",
                "lines added",
                "files appended to",
                "new files",
                "rows written",
                "CLI wall",
                "import in-process",
                f"target in-process <= {INCREMENTAL_TARGET_S:g} s",
            ],
            grown,
        ),
        Table(
            "`usage daily --json` over the ledger (ms)",
            [
                "lines",
                "ledger rows",
                "buckets",
                f"CLI wall (median of {args.cli_runs})",
                f"report in-process p50 ({args.report_calls})",
                "in-process p99",
                f"target <= {REPORT_TARGET_MS:g} ms",
            ],
            report,
        ),
        Table(
            f"Budget check at launch, 3 budgets, in-process ({args.budget_calls} calls, ms)",
            [
                "lines",
                "p50",
                "p99",
                f"target p99 <= {BUDGET_TARGET_MS:g} ms",
                "re-attribution import wall s",
            ],
            budget,
        ),
    ]


def main() -> int:
    args = parse_args()
    version = _ccusage.ensure_ccusage()
    compiled(SOURCES)
    args.reference_sources = reference_sources(args.reference) if args.reference else None
    results: list[dict[str, Any]] = []
    with sigterm_as_interrupt():
        try:
            for lines in args.lines:
                if args.keep is not None:
                    base = args.keep / f"usage-{lines}"
                    if base.exists():
                        raise SystemExit(f"{base} exists; --keep needs a fresh place")
                    base.mkdir(parents=True)
                else:
                    base = Path(tempfile.mkdtemp(prefix=f"stratavore-bench-usage-{lines}-"))
                try:
                    results.append(one_size(lines, base, args))
                finally:
                    if args.keep is None:
                        shutil.rmtree(base, ignore_errors=True)
        finally:
            kill_marked()
            if args.reference_sources is not None:
                shutil.rmtree(args.reference_sources, ignore_errors=True)
    rendered = [table.render() for table in tables(results, args)]
    print("\n\n".join(rendered))
    target = write_results(
        "usage",
        {
            "machine": machine(),
            "ccusage": version,
            "page_cache": "warm: nothing dropped; each tree is read right after it is written",
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "sizes": results,
            "tables": rendered,
        },
    )
    print(f"\nwrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
