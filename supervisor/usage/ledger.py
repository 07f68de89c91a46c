"""The usage ledger: rows in, deduplicated, priced, attributed, and summed into buckets.

Several lines can describe one API response (streaming snapshots, copies in a second config
root, a sidechain copy). Each carries the importer's dedupe key; the ledger keeps one row per
key, the one with the highest rank, and SQLite's upsert decides that in the same statement
that writes the row. Reports and budget windows read 15-minute buckets instead of the rows;
after each write the buckets of the time range it touched are rebuilt from the rows.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from supervisor.storage.models import DB, Project, Runner
from supervisor.usage.pricing import PriceTable, row_costs
from supervisor.usage.records import UsageRow

BUCKET = 900  # seconds; every time zone's midnight is on a quarter hour
_SIGN = 1 << 63


def dedupe_hash(key: str) -> int:
    """A signed 64-bit hash of a dedupe key (an index of integers is far cheaper than text;
    a collision among ten million keys has odds of about 1 in 300,000)."""
    value = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
    return value - (1 << 64) if value >= _SIGN else value


def bucket_of(ts: float) -> int:
    return int(ts // BUCKET) * BUCKET


def _norm(path: str) -> str:
    return os.path.normcase(os.path.normpath(path))


@dataclass
class Attribution:
    """Which project and runner a session's usage belongs to.

    A session belongs to the project whose path contains its cwd (the deepest such project),
    and to the runner that recorded the same session id; failing that, to the one runner of
    that project whose lifetime contains the response (none when several overlap: a guess
    would bill the wrong runner).
    """

    projects: list[tuple[str, int]] = field(default_factory=list)  # deepest path first
    by_session: dict[str, int] = field(default_factory=dict)
    windows: dict[int, list[tuple[float, float, int]]] = field(default_factory=dict)

    @classmethod
    def load(cls) -> Attribution:
        folders = [(_norm(p.path), p.id) for p in Project.select(Project.id, Project.path)]
        # a runner's own git worktree (under the data dir) belongs to the runner's project
        worktrees = Runner.select(Runner.project, Runner.worktree).where(
            Runner.worktree.is_null(False)
        )
        folders += [(_norm(tree["path"]), project_id) for project_id, tree in worktrees.tuples()]
        projects = sorted(folders, key=lambda item: len(item[0]), reverse=True)
        found = cls(projects=projects)
        query = Runner.select(
            Runner.id, Runner.project, Runner.session_id, Runner.started_at, Runner.ended_at
        ).where(Runner.started_at.is_null(False))
        for runner in query.tuples():
            runner_id, project_id, session_id, started, ended = runner
            if session_id:
                found.by_session[session_id] = runner_id
            span = (started, ended if ended is not None else float("inf"), runner_id)
            found.windows.setdefault(project_id, []).append(span)
        return found

    def project_for(self, cwd: str | None) -> int | None:
        if not cwd:
            return None
        where = _norm(cwd)
        for path, project_id in self.projects:
            if where == path or where.startswith(path.rstrip(os.sep) + os.sep):
                return project_id
        return None

    def runner_for(self, session_id: str | None, project_id: int | None, ts: float) -> int | None:
        if session_id and session_id in self.by_session:
            return self.by_session[session_id]
        if project_id is None:
            return None
        hits = [rid for start, end, rid in self.windows.get(project_id, ()) if start <= ts <= end]
        return hits[0] if len(hits) == 1 else None


@dataclass
class WriteResult:
    written: int = 0  # rows inserted or replaced by a better line of the same response
    unknown_models: set[str] = field(default_factory=set)
    runners: set[int] = field(default_factory=set)  # whose token totals changed
    span: tuple[int, int] | None = None  # bucket range touched

    def add(self, other: WriteResult) -> None:
        self.written += other.written
        self.unknown_models |= other.unknown_models
        self.runners |= other.runners
        if other.span is not None:
            low, high = other.span if self.span is None else self.span
            self.span = (min(low, other.span[0]), max(high, other.span[1]))


_UPSERT = (
    'INSERT INTO "usage" (ts, agent, model, input_tokens, output_tokens, cache_creation_tokens, '
    "cache_creation_1h_tokens, cache_read_tokens, cost_usd, ccusage_cost_usd, logged_cost, "
    "speed, web_search_requests, project_id, runner_id, session_id, file_id, dedupe, rank) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(dedupe) DO UPDATE SET ts = excluded.ts, agent = excluded.agent, "
    "model = excluded.model, input_tokens = excluded.input_tokens, "
    "output_tokens = excluded.output_tokens, "
    "cache_creation_tokens = excluded.cache_creation_tokens, "
    "cache_creation_1h_tokens = excluded.cache_creation_1h_tokens, "
    "cache_read_tokens = excluded.cache_read_tokens, cost_usd = excluded.cost_usd, "
    "ccusage_cost_usd = excluded.ccusage_cost_usd, logged_cost = excluded.logged_cost, "
    "speed = excluded.speed, web_search_requests = excluded.web_search_requests, "
    "project_id = excluded.project_id, runner_id = excluded.runner_id, "
    "session_id = excluded.session_id, file_id = excluded.file_id, rank = excluded.rank "
    "WHERE excluded.rank > usage.rank"
)
_SESSION_UPSERT = (
    'INSERT INTO "usage_session" (session_id, agent, cwd, project_id, runner_id) '
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET "
    "cwd = COALESCE(excluded.cwd, cwd), project_id = COALESCE(excluded.project_id, project_id), "
    "runner_id = COALESCE(excluded.runner_id, runner_id)"
)


class Ledger:
    """Writes rows with one price table and attribution (load them once per import); each row
    is priced in both cost modes."""

    def __init__(self, prices: PriceTable, attribution: Attribution) -> None:
        self.prices = prices
        self.attribution = attribution
        self._projects: dict[str | None, int | None] = {}  # by cwd

    def write(self, rows: Sequence[UsageRow], file_id: int | None = None) -> WriteResult:
        """Upsert ``rows`` (call inside a transaction); the caller rebuilds buckets over
        ``result.span`` once its transaction has all the rows it will write."""
        result = WriteResult()
        if not rows:
            return result
        # One row per key before SQLite sees them (snapshots of one response come together):
        # the highest rank, the first on a tie, as the upsert itself would keep.
        best: dict[str, UsageRow] = {}
        for row in rows:
            kept = best.get(row.key)
            if kept is None or row.rank > kept.rank:
                best[row.key] = row
        rows = list(best.values())
        params = []
        sessions = {}
        runners = result.runners
        unknown = result.unknown_models
        low = high = None
        for row in rows:
            project_id = self._project(row)
            runner_id = row.runner_id
            if runner_id is None:
                runner_id = self.attribution.runner_for(row.session_id, project_id, row.ts)
            if runner_id is not None:
                runners.add(runner_id)
            cost, ccusage_cost = row_costs(self.prices, row)
            if cost is None:
                unknown.add(row.model)
            if row.session_id is not None and row.session_id not in sessions:
                sessions[row.session_id] = (row.agent, row.cwd, project_id, runner_id)
            params.append((
                row.ts, row.agent, row.model, row.input_tokens, row.output_tokens,
                row.cache_creation_tokens, row.cache_creation_1h_tokens, row.cache_read_tokens,
                cost, ccusage_cost, row.logged_cost, row.speed,
                row.web_search_requests, project_id, runner_id, row.session_id, file_id,
                dedupe_hash(row.key), row.rank,
            ))  # fmt: skip
            if low is None or row.ts < low:
                low = row.ts
            if high is None or row.ts > high:
                high = row.ts
        conn = DB.connection()
        before = conn.total_changes
        conn.executemany(_UPSERT, params)
        result.written = conn.total_changes - before
        conn.executemany(
            _SESSION_UPSERT,
            [(sid, agent, cwd, pid, rid) for sid, (agent, cwd, pid, rid) in sessions.items()],
        )
        assert low is not None and high is not None
        # A replaced line sits seconds from the one replacing it: one bucket either side
        # covers where the old row was counted.
        result.span = (bucket_of(low) - BUCKET, bucket_of(high) + BUCKET)
        return result

    def _project(self, row: UsageRow) -> int | None:
        if row.cwd not in self._projects:
            self._projects[row.cwd] = self.attribution.project_for(row.cwd)
        return self._projects[row.cwd]


def rebuild_buckets(span: tuple[int, int] | None = None) -> None:
    """Recompute the buckets from the rows, over ``span`` (bucket starts, inclusive) or all."""
    where, args = "", ()
    if span is not None:
        where, args = " WHERE ts >= ? AND ts < ?", (span[0], span[1] + BUCKET)
        DB.execute_sql(
            'DELETE FROM "usage_bucket" WHERE start >= ? AND start <= ?', (span[0], span[1])
        )
    else:
        DB.execute_sql('DELETE FROM "usage_bucket"')
    DB.execute_sql(
        'INSERT INTO "usage_bucket" (start, agent, model, project_id, input_tokens, '
        "output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, ccusage_cost_usd, "
        f"responses) SELECT CAST(ts / {BUCKET} AS INTEGER) * {BUCKET}, agent, model, "
        "COALESCE(project_id, 0), SUM(input_tokens), SUM(output_tokens), "
        "SUM(cache_creation_tokens), SUM(cache_read_tokens), TOTAL(cost_usd), "
        "TOTAL(ccusage_cost_usd), COUNT(*) "
        f'FROM "usage"{where} GROUP BY 1, 2, 3, 4',
        args,
    )


def refresh_runner_tokens(runner_ids: Iterable[int]) -> dict[int, int]:
    """Set each runner's token total from the ledger; the new totals."""
    ids = sorted(runner_ids)
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    totals = dict(
        DB.execute_sql(
            "SELECT runner_id, SUM(input_tokens + output_tokens + cache_creation_tokens "
            f'+ cache_read_tokens) FROM "usage" WHERE runner_id IN ({marks}) GROUP BY runner_id',
            ids,
        ).fetchall()
    )
    DB.connection().executemany(
        'UPDATE "runner" SET tokens = ? WHERE id = ?', [(totals.get(i, 0), i) for i in ids]
    )
    return {i: totals.get(i, 0) for i in ids}


def reattribute(attribution: Attribution) -> bool:
    """Give sessions seen before their project existed to it; whether anything moved (then
    the caller rebuilds all buckets)."""
    moved = []
    for session_id, cwd in DB.execute_sql(
        'SELECT session_id, cwd FROM "usage_session" WHERE project_id IS NULL AND cwd IS NOT NULL'
    ).fetchall():
        project_id = attribution.project_for(cwd)
        if project_id is not None:
            moved.append((project_id, session_id))
    if not moved:
        return False
    conn = DB.connection()
    conn.executemany('UPDATE "usage_session" SET project_id = ? WHERE session_id = ?', moved)
    conn.executemany('UPDATE "usage" SET project_id = ? WHERE session_id = ?', moved)
    return True


def reprice(prices: PriceTable) -> int:
    """Price every row again in both cost modes from what it stored (call inside a
    transaction, then rebuild all buckets); how many rows. Used once after the schema gained
    the vendor cost, and whenever the prices of past rows must follow a new table."""
    cursor = DB.execute_sql(
        "SELECT id, ts, agent, model, input_tokens, output_tokens, cache_creation_tokens, "
        "cache_creation_1h_tokens, cache_read_tokens, logged_cost, speed, web_search_requests, "
        'file_id FROM "usage"'
    )
    updates = []
    for (row_id, ts, agent, model, tokens_in, tokens_out, writes, writes_1h, reads, logged,
         speed, searches, file_id) in cursor.fetchall():  # fmt: skip
        row = UsageRow(
            ts, agent, model, tokens_in, tokens_out, writes, reads, "",
            "api" if file_id is None else "",  # no file: reported over the API or a heartbeat
            cache_creation_1h_tokens=writes_1h, logged_cost=logged, speed=speed,
            web_search_requests=searches,
        )  # fmt: skip
        updates.append((*row_costs(prices, row), row_id))
    DB.connection().executemany(
        'UPDATE "usage" SET cost_usd = ?, ccusage_cost_usd = ? WHERE id = ?', updates
    )
    return len(updates)
