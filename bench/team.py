"""The team ledger on a real PostgreSQL: push throughput, the launch-time budget check, reports.

A throwaway cluster (``tests/team/pgcluster.py``: initdb + pg_ctl, loopback, fsync off as in
the tests) holds one team database. ``--machines`` data dirs (members m0, m1, ... with two
machines each) each get ``--rows`` usage rows written through the real ledger (30 days, five
projects, three models, two agents), then join the team.

* push: all machines push at once, each its own process (``stratavore team push``'s
  ``push_now``); rows/s = all rows / (last push done - first process started), and the time
  until the team's daily report (on the server) counts every row. Reference: the same rows
  read from the data dirs and COPYed by one process into a bare table (no keys, no buckets).
* budget check (on machine 0, eight team budgets of every scope, none spent): p50/p99 of
  ``TeamBudgets.check_launch`` warm (cached answer), cold (cache expired, connection kept: one
  query over loopback) and cold with a new connection. Reference: the same spends summed
  from the raw rows instead of the buckets.
* report: ``reports.report`` daily, by nothing/member/project/model (the team's zone: its
  days), and by member in another zone (its 15-minute buckets), ``--report-runs`` each.
  Reference: the same daily-by-member report from the raw rows.

Run: ``.venv/bin/python bench/team.py`` (about 5 minutes with the defaults here); writes
``bench/results/team.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import GIT_STATE, REPO, RESULTS_DIR, SOURCES, latency_ms, ratio

sys.path.insert(1, str(REPO))  # tests.team.pgcluster, tests.keyring_backend

from supervisor.storage import db as store
from tests.keyring_backend import keyring_env
from tests.team.pgcluster import start_cluster

MODELS = ("claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001")
PROJECTS = 5
PASSWORD = "bench-secret"


def timed(call: Callable[[], object], runs: int) -> list[float]:
    """Seconds of each of ``runs`` calls."""
    found = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        found.append(time.perf_counter() - began)
    return found


def child_env(keyring: Path) -> dict[str, str]:
    return {**os.environ, **keyring_env(keyring), "PYTHONPATH": f"{SOURCES}:{REPO}"}


# --- children -----------------------------------------------------------------------------
def make(home: str, index: int, rows: int, url: str) -> None:
    """A data dir with ``rows`` usage rows through the real ledger, joined to the team."""
    from supervisor.storage.models import DB, Project
    from supervisor.storage.queries import rebuild_buckets
    from supervisor.team import membership
    from supervisor.usage.ledger import Attribution, Ledger
    from supervisor.usage.pricing import PriceTable
    from supervisor.usage.records import UsageRow

    store.init_db(Path(home) / "stratavore.db")
    end = time.time()
    step = 30 * 86400 / rows
    with DB.atomic():
        for p in range(PROJECTS):
            Project.create(name=f"p{p}", path=f"{home}/p{p}", created_at=end)
    ledger = Ledger(PriceTable.bundled(), Attribution.load())
    began = time.perf_counter()
    for low in range(0, rows, 10_000):
        batch = [
            UsageRow(
                ts=end - (rows - i) * step,
                agent="claude" if i % 4 else "codex",
                model=MODELS[i % 3],
                input_tokens=100 + i % 50,
                output_tokens=300 + i % 70,
                cache_creation_tokens=i % 200,
                cache_read_tokens=2000 + i % 900,
                key=f"m{index}:{i}",
                source="bench",
                cwd=f"{home}/p{i % PROJECTS}",
            )
            for i in range(low, min(low + 10_000, rows))
        ]
        with DB.atomic():
            rebuild_buckets(ledger.write(batch).span)
    written = time.perf_counter() - began
    membership.join(url, f"m{index // 2}", password=PASSWORD)
    print(json.dumps({"ledger_write_s": round(written, 2)}))


def push(home: str) -> None:
    from supervisor.team import push as team_push

    store.init_db(Path(home) / "stratavore.db")
    began = time.perf_counter()
    result = team_push.push_now()
    print(json.dumps({"rows": result.usage, "push_s": time.perf_counter() - began,
                      "done_at": time.time()}))  # fmt: skip


# --- the run ---------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    from supervisor.team import budgets, membership, reports
    from supervisor.team.budgets import TeamBudgets

    root = Path(tempfile.mkdtemp(prefix="stratavore-bench-team-"))
    root.chmod(0o711)
    cluster = start_cluster(root / "cluster")
    keyring = root / "keyring.json"
    env = child_env(keyring)
    os.environ.update(keyring_env(keyring))
    try:
        url = cluster.create_team("team_bench", PASSWORD)
        homes = [root / f"machine{i}" for i in range(args.machines)]
        made = []
        for low in range(0, args.machines, 2):  # two at a time: two cores
            procs = []
            for i in range(low, min(low + 2, args.machines)):
                homes[i].mkdir()
                procs.append(subprocess.Popen(
                    [sys.executable, __file__, "--child", "make", str(homes[i]), str(i),
                     str(args.rows), url], env=env, stdout=subprocess.PIPE, text=True,
                ))  # fmt: skip
            for proc in procs:
                out, _ = proc.communicate(timeout=1800)
                assert proc.returncode == 0, "making a machine failed"
                made.append(json.loads(out)["ledger_write_s"])
        total = args.machines * args.rows
        print(f"made {args.machines} machines x {args.rows:,} rows", file=sys.stderr)

        watcher = psycopg.connect(cluster.url("team_bench", "team_bench", PASSWORD))
        started = time.time()
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--child", "push", str(h)],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for h in homes
        ]
        complete_at = None
        while complete_at is None:
            (counted,) = watcher.execute(
                "SELECT COALESCE(SUM(responses), 0) FROM stratavore.usage_bucket"
            ).fetchone()
            if counted == total:
                complete_at = time.time()
            else:
                time.sleep(0.1)
        pushes = [json.loads(p.communicate(timeout=1800)[0]) for p in procs]
        assert all(p.returncode == 0 for p in procs)
        assert sum(p["rows"] for p in pushes) == total
        done = max(p["done_at"] for p in pushes)

        # reference: the same rows COPYed by one process into a bare table
        import sqlite3

        watcher.execute("CREATE UNLOGGED TABLE bench_ref (machine int, dedupe bigint, ts float8, "
                        "agent text, model text, project int, i bigint, o bigint, cw bigint, "
                        "cr bigint, cost float8)")  # fmt: skip
        watcher.commit()
        ref_began = time.perf_counter()
        for i, home in enumerate(homes):
            local = sqlite3.connect(home / "stratavore.db")
            with watcher.cursor().copy("COPY bench_ref FROM STDIN") as copy:
                for row in local.execute(
                    "SELECT dedupe, ts, agent, model, project_id, input_tokens, output_tokens, "
                    'cache_creation_tokens, cache_read_tokens, cost_usd FROM "usage"'
                ):
                    copy.write_row((i, *row))
            local.close()
        watcher.commit()
        ref_s = time.perf_counter() - ref_began
        watcher.close()
        push_result = {
            "rows": total,
            "seconds": round(done - started, 2),
            "rows_per_s": round(total / (done - started)),
            "report_complete_s": round(complete_at - started, 2),
            "per_machine_push_s": [round(p["push_s"], 2) for p in pushes],
            "ledger_write_s_per_machine": made,
            "reference_copy_rows_per_s": round(total / ref_s),
        }
        push_result["ratio_to_reference"] = ratio(
            push_result["rows_per_s"], push_result["reference_copy_rows_per_s"]
        )
        print(json.dumps(push_result), file=sys.stderr)

        # budget check on machine 0
        store.init_db(homes[0] / "stratavore.db")
        with membership.connected() as db:
            for scope, period in [("team", "monthly"), ("team", "daily"), ("member:m0", "weekly"),
                                  ("member:m1", "monthly")] + [
                                  (f"team:project:p{p}", "monthly") for p in range(4)]:  # fmt: skip
                budgets.set_budget(db, scope, period, 10**15, 10**9, action="block")
        checks: dict[str, Any] = {}
        with TeamBudgets(ttl=3600) as checker:
            checker.check_launch("p1")
            warm = timed(lambda: checker.check_launch("p1"), args.checks)
        with TeamBudgets(ttl=0) as checker:
            checker.check_launch("p1")  # the connection opened
            cold = timed(lambda: checker.check_launch("p1"), args.checks)

        def fresh_check() -> None:
            with TeamBudgets(ttl=0) as checker:
                checker.check_launch("p1")

        fresh = timed(fresh_check, max(args.checks // 5, 20))
        raw_spend = (
            "SELECT member, SUM(input_tokens + output_tokens + cache_creation_tokens + "
            "cache_read_tokens), SUM(cost_usd) FROM stratavore.usage WHERE ts >= "
            "date_trunc('month', now()) GROUP BY member"
        )
        with membership.connected() as db:
            raw = timed(lambda: db.execute_sql(raw_spend).fetchall(), max(args.checks // 10, 10))
            checks = {"warm": latency_ms(warm), "cold_connection_kept": latency_ms(cold),
                      "cold_new_connection": latency_ms(fresh),
                      "reference_raw_rows_one_budget": latency_ms(raw)}  # fmt: skip
            print(json.dumps(checks), file=sys.stderr)

            report_result: dict[str, Any] = {}
            for by in (None, "member", "project", "model"):
                found = reports.report(db, "daily", by=by)
                assert found["totals"]["responses"] == total
                times = timed(lambda by=by: reports.report(db, "daily", by=by), args.report_runs)
                report_result[by or "total"] = latency_ms(times)
            other = timed(  # a zone other than the team's: from the 15-minute buckets
                lambda: reports.report(db, "daily", by="member", zone="Asia/Kolkata"),
                args.report_runs,
            )
            report_result["member_in_another_zone"] = latency_ms(other)
            raw_report = (
                "SELECT date_trunc('day', ts AT TIME ZONE 'UTC')::date, member, "
                "SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_tokens), "
                "SUM(cache_read_tokens), SUM(cost_usd), COUNT(*) FROM stratavore.usage "
                "GROUP BY 1, 2 ORDER BY 1, 2"
            )
            ref = timed(
                lambda: db.execute_sql(raw_report).fetchall(), max(args.report_runs // 4, 3)
            )
            report_result["reference_raw_rows_by_member"] = latency_ms(ref)
            for table in ("usage_bucket", "usage_day"):
                (count,) = db.execute_sql(f"SELECT count(*) FROM stratavore.{table}").fetchone()
                report_result[f"{table}_rows"] = count
            print(json.dumps(report_result), file=sys.stderr)
        store.close_db()
        return {"push": push_result, "budget_check": checks, "report": report_result}
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--machines", type=int, default=10)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--checks", type=int, default=500)
    parser.add_argument("--report-runs", type=int, default=20)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "make":
            make(rest[0], int(rest[1]), int(rest[2]), rest[3])
        else:
            push(rest[0])
        return
    began = time.time()
    results = run(args)
    results.update(
        command=" ".join(["bench/team.py", *sys.argv[1:]]),
        git=GIT_STATE,
        load_at_start=os.getloadavg()[0],
        seconds=round(time.time() - began),
        machines=args.machines,
        rows_per_machine=args.rows,
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "team.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
