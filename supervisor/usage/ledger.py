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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from supervisor.storage import queries
from supervisor.storage.queries.usage import BUCKET
from supervisor.usage.pricing import PriceTable, row_costs
from supervisor.usage.records import UsageRow

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
        folders = [(_norm(path), project_id) for path, project_id in queries.project_folders()]
        # a runner's own git worktree (under the data dir) belongs to the runner's project
        folders += [(_norm(tree["path"]), pid) for pid, tree in queries.runner_worktrees()]
        projects = sorted(folders, key=lambda item: len(item[0]), reverse=True)
        found = cls(projects=projects)
        for runner_id, project_id, session_id, started, ended in queries.runner_spans():
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


class Ledger:
    """Writes rows with one price table and attribution (load them once per import); each row
    is priced in both cost modes."""

    def __init__(
        self,
        prices: PriceTable,
        attribution: Attribution,
        account_of: Callable[[str], str] = lambda _source: "",
    ) -> None:
        self.prices = prices
        self.attribution = attribution
        self.account_of = account_of  # a log file's account (``roots.Roots.account_of``)
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
                row.account if row.account is not None else self.account_of(row.source),
            ))  # fmt: skip
            if low is None or row.ts < low:
                low = row.ts
            if high is None or row.ts > high:
                high = row.ts
        result.written = queries.upsert_usage(params)
        queries.upsert_sessions(
            [(sid, agent, cwd, pid, rid) for sid, (agent, cwd, pid, rid) in sessions.items()]
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


def reattribute(attribution: Attribution) -> bool:
    """Give sessions seen before their project existed to it; whether anything moved (then
    the caller rebuilds all buckets)."""
    moved = []
    for session_id, cwd in queries.unattributed_sessions():
        project_id = attribution.project_for(cwd)
        if project_id is not None:
            moved.append((project_id, session_id))
    if not moved:
        return False
    queries.attribute_sessions(moved)
    return True


def reprice(prices: PriceTable) -> int:
    """Price every row again in both cost modes from what it stored (call inside a
    transaction, then rebuild all buckets); how many rows. Used once after the schema gained
    the vendor cost, and whenever the prices of past rows must follow a new table."""
    updates = []
    for (row_id, ts, agent, model, tokens_in, tokens_out, writes, writes_1h, reads, logged,
         speed, searches, file_id) in queries.rows_to_price():  # fmt: skip
        row = UsageRow(
            ts, agent, model, tokens_in, tokens_out, writes, reads, "",
            "api" if file_id is None else "",  # no file: reported over the API or a heartbeat
            cache_creation_1h_tokens=writes_1h, logged_cost=logged, speed=speed,
            web_search_requests=searches,
        )  # fmt: skip
        updates.append((*row_costs(prices, row), row_id))
    queries.set_costs(updates)
    return len(updates)
