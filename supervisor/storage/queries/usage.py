"""The usage ledger: its rows and 15-minute buckets, the agent sessions seen in it, the marks
of the imported log files, and what attribution needs of projects and runners.

The ledger's writes are plain SQL run with ``executemany`` over plain tuples: an import
writes hundreds of thousands of rows, and a statement or an object per row would cost
seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from supervisor.storage.models import DB, Project, Runner, Usage, UsageFile

BUCKET = 900  # seconds a bucket spans; every time zone's midnight is on a quarter hour


def tokens_by_agent() -> dict[str, int]:
    """Tokens in the usage ledger per agent (summed over its buckets: cheap)."""
    rows = DB.execute_sql(
        "SELECT agent, SUM(input_tokens + output_tokens + cache_creation_tokens "
        '+ cache_read_tokens) FROM "usage_bucket" GROUP BY agent'
    ).fetchall()
    return {agent: int(total or 0) for agent, total in rows}


def agent_sessions(project_id: int | None, limit: int) -> list[tuple[Any, ...]]:
    """Agent sessions, most recently active first: (session id, agent, project id, runner id,
    first ts, last ts, tokens, cost, one of its log files)."""
    where = 'WHERE s."project_id" = ?' if project_id is not None else ""
    params: list[Any] = [project_id] if project_id is not None else []
    return DB.execute_sql(
        'SELECT s."session_id", s."agent", s."project_id", s."runner_id", MIN(u."ts"), '
        'MAX(u."ts"), COALESCE(SUM(u."input_tokens" + u."output_tokens" + '
        'u."cache_creation_tokens" + u."cache_read_tokens"), 0), '
        'COALESCE(SUM(u."cost_usd"), 0), MAX(f."path") '
        'FROM "usage_session" s LEFT JOIN "usage" u ON u."session_id" = s."session_id" '
        'LEFT JOIN "usage_file" f ON f."id" = u."file_id" '
        f'{where} GROUP BY s."session_id" ORDER BY MAX(u."ts") DESC LIMIT ?',
        [*params, limit],
    ).fetchall()


# --- attribution: where sessions ran --------------------------------------------------------
def project_folders() -> list[tuple[str, int]]:
    """(folder, id) of every project."""
    query = Project.select(Project.path, Project.id).tuples()
    return list(query)  # type: ignore[arg-type]  # peewee's stub: .tuples() keeps the model as the row type


def project_paths() -> list[str]:
    return [path for (path,) in DB.execute_sql('SELECT path FROM "project"').fetchall()]


def runner_worktrees() -> list[tuple[int, dict[str, Any]]]:
    """(project id, worktree) of every runner that had a git worktree of its own."""
    query = Runner.select(Runner.project, Runner.worktree).where(Runner.worktree.is_null(False))
    return list(query.tuples())  # type: ignore[arg-type]  # peewee's stub: .tuples() keeps the model as the row type


def runner_spans() -> list[tuple[int, int, str | None, float, float | None]]:
    """(runner id, project id, session id, started at, ended at) of every runner that
    started."""
    query = Runner.select(
        Runner.id, Runner.project, Runner.session_id, Runner.started_at, Runner.ended_at
    ).where(Runner.started_at.is_null(False))
    return list(query.tuples())  # type: ignore[arg-type]  # peewee's stub: .tuples() keeps the model as the row type


def runner_commands() -> list[tuple[str, Any, str | None]]:
    """(folder, command line, profile) of every runner, oldest first."""
    cursor = DB.execute_sql('SELECT cwd, command, profile FROM "runner" ORDER BY id')
    decode = Runner.command.python_value
    return [(cwd, decode(command), profile) for cwd, command, profile in cursor.fetchall()]


def unattributed_sessions() -> list[tuple[str, str]]:
    """(session id, folder) of the sessions of no project whose folder is known."""
    return DB.execute_sql(
        'SELECT session_id, cwd FROM "usage_session" WHERE project_id IS NULL AND cwd IS NOT NULL'
    ).fetchall()


def attribute_sessions(moved: list[tuple[int, str]]) -> None:
    """Give sessions, and their rows, to projects: (project id, session id) each."""
    conn = DB.connection()
    conn.executemany('UPDATE "usage_session" SET project_id = ? WHERE session_id = ?', moved)
    conn.executemany('UPDATE "usage" SET project_id = ? WHERE session_id = ?', moved)


# --- the ledger -----------------------------------------------------------------------------
_UPSERT = (
    'INSERT INTO "usage" (ts, agent, model, input_tokens, output_tokens, cache_creation_tokens, '
    "cache_creation_1h_tokens, cache_read_tokens, cost_usd, ccusage_cost_usd, logged_cost, "
    "speed, web_search_requests, project_id, runner_id, session_id, file_id, dedupe, rank, "
    "account) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(dedupe) DO UPDATE SET ts = excluded.ts, agent = excluded.agent, "
    "model = excluded.model, input_tokens = excluded.input_tokens, "
    "output_tokens = excluded.output_tokens, "
    "cache_creation_tokens = excluded.cache_creation_tokens, "
    "cache_creation_1h_tokens = excluded.cache_creation_1h_tokens, "
    "cache_read_tokens = excluded.cache_read_tokens, cost_usd = excluded.cost_usd, "
    "ccusage_cost_usd = excluded.ccusage_cost_usd, logged_cost = excluded.logged_cost, "
    "speed = excluded.speed, web_search_requests = excluded.web_search_requests, "
    "project_id = excluded.project_id, runner_id = excluded.runner_id, "
    "session_id = excluded.session_id, file_id = excluded.file_id, rank = excluded.rank, "
    "account = excluded.account "
    "WHERE excluded.rank > usage.rank"
)
_SESSION_UPSERT = (
    'INSERT INTO "usage_session" (session_id, agent, cwd, project_id, runner_id) '
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET "
    "cwd = COALESCE(excluded.cwd, cwd), project_id = COALESCE(excluded.project_id, project_id), "
    "runner_id = COALESCE(excluded.runner_id, runner_id)"
)


def upsert_usage(rows: list[tuple[Any, ...]]) -> int:
    """Write ledger rows, each a tuple in the column order of ``_UPSERT``: a row whose dedupe
    key is there already replaces it only with a higher rank. How many were written."""
    # rowcount counts this statement's rows only; total_changes would also count rows that
    # triggers write (the team outbox's)
    return DB.connection().executemany(_UPSERT, rows).rowcount


def ledger_is_empty() -> bool:
    return DB.execute_sql('SELECT NOT EXISTS (SELECT 1 FROM "usage")').fetchone()[0] == 1


def drop_lookup_indexes() -> None:
    """Drop the ledger's indexes that only speed up reads (all but the dedupe key's, which
    the upsert needs): a bulk first import writes several times faster without them, and
    building them once at the end costs a fraction of keeping them up to date row by row."""
    for index in Usage._meta.fields_to_index():
        if not index._unique:
            DB.execute_sql(f'DROP INDEX IF EXISTS "{index._name}"')


def ensure_lookup_indexes() -> None:
    """Create the ledger's indexes that are missing (after a bulk import, or one that was
    interrupted before it put them back); a no-op when they are all there."""
    Usage.create_table(safe=True)  # the table is there: this creates what it lacks


def upsert_sessions(rows: list[tuple[str, str, str | None, int | None, int | None]]) -> None:
    """Sessions (id, agent, folder, project id, runner id); what an existing one knows is
    kept where a new row does not know it."""
    DB.connection().executemany(_SESSION_UPSERT, rows)


def rebuild_buckets(span: tuple[int, int] | None = None) -> None:
    """Recompute the buckets from the rows, over ``span`` (bucket starts, inclusive) or all."""
    where = ""
    args: tuple[int, ...] = ()
    if span is not None:
        where, args = " WHERE ts >= ? AND ts < ?", (span[0], span[1] + BUCKET)
        DB.execute_sql(
            'DELETE FROM "usage_bucket" WHERE start >= ? AND start <= ?', (span[0], span[1])
        )
    else:
        DB.execute_sql('DELETE FROM "usage_bucket"')
    DB.execute_sql(
        'INSERT INTO "usage_bucket" (start, agent, model, project_id, account, input_tokens, '
        "output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, ccusage_cost_usd, "
        f"responses) SELECT CAST(ts / {BUCKET} AS INTEGER) * {BUCKET}, agent, model, "
        "COALESCE(project_id, 0), account, SUM(input_tokens), SUM(output_tokens), "
        "SUM(cache_creation_tokens), SUM(cache_read_tokens), TOTAL(cost_usd), "
        "TOTAL(ccusage_cost_usd), COUNT(*) "
        f'FROM "usage"{where} GROUP BY 1, 2, 3, 4, 5',
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


def rows_to_price() -> list[tuple[Any, ...]]:
    """What pricing needs of every ledger row: (id, ts, agent, model, input, output, cache
    write, cache write 1h, cache read, logged cost, speed, web searches, file id)."""
    return DB.execute_sql(
        "SELECT id, ts, agent, model, input_tokens, output_tokens, cache_creation_tokens, "
        "cache_creation_1h_tokens, cache_read_tokens, logged_cost, speed, web_search_requests, "
        'file_id FROM "usage"'
    ).fetchall()


def set_costs(costs: list[tuple[float | None, float | None, int]]) -> None:
    """Both costs of ledger rows: (vendor cost, ccusage cost, row id) each."""
    DB.connection().executemany(
        'UPDATE "usage" SET cost_usd = ?, ccusage_cost_usd = ? WHERE id = ?', costs
    )


def reported_totals(runner_id: int) -> tuple[int, int, int, int, float]:
    """What a runner reported itself (over the API or in heartbeats, not read from a log):
    input, output, cache write and cache read tokens, and its own cost."""
    row = DB.execute_sql(
        "SELECT SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_tokens), "
        'SUM(cache_read_tokens), TOTAL(logged_cost) FROM "usage" '
        "WHERE runner_id = ? AND file_id IS NULL",
        (runner_id,),
    ).fetchone()
    return (int(row[0] or 0), int(row[1] or 0), int(row[2] or 0), int(row[3] or 0), row[4])


def file_paths() -> list[tuple[int, str]]:
    """(id, path) of every imported log file."""
    return DB.execute_sql('SELECT id, path FROM "usage_file"').fetchall()


def set_file_accounts(accounts: list[tuple[str, int]]) -> None:
    """The account of the rows read from each file: (account key, file id) each."""
    DB.connection().executemany('UPDATE "usage" SET account = ? WHERE file_id = ?', accounts)


def accounts_used() -> list[tuple[str, str]]:
    """(agent, account key) of every account the ledger has usage of (from the buckets)."""
    return DB.execute_sql(
        'SELECT DISTINCT agent, account FROM "usage_bucket" WHERE length(account) > 0'
    ).fetchall()


# --- imported log files ---------------------------------------------------------------------
def file_marks() -> dict[str, tuple[Any, ...]]:
    """Every imported file's mark by path, as plain tuples (id, path, size, mtime_ns,
    offset, head, context as JSON text): an import of ten thousand unchanged files decodes
    none of them."""
    return {
        row[1]: row
        for row in DB.execute_sql(
            'SELECT id, path, size, mtime_ns, "offset", head, context FROM "usage_file"'
        )
    }


def add_files(new: list[tuple[str, str]]) -> dict[str, int]:
    """Rows for files seen for the first time, (path, agent) each, in one statement; their
    ids by path."""
    if not new:
        return {}
    with DB.atomic():
        DB.connection().executemany(
            'INSERT OR IGNORE INTO "usage_file" (path, agent, size, mtime_ns, "offset", head, '
            "context, records, skipped) VALUES (?, ?, 0, 0, 0, '', '{}', 0, 0)",
            new,
        )
    paths = {path for path, _ in new}
    return {
        path: file_id
        for file_id, path in DB.execute_sql('SELECT id, path FROM "usage_file"')
        if path in paths
    }


def save_file_mark(
    file_id: int,
    *,
    size: int,
    mtime_ns: int,
    offset: int,
    head: str,
    context: dict[str, Any],
    records: int,
    skipped: int,
    restarted: bool,
    now: float,
) -> None:
    """How far a file was imported, and how many records and skipped lines that added (to
    what it had, or from zero when it was ``restarted``: rewritten)."""
    keep = 0 if restarted else 1
    DB.execute_sql(
        'UPDATE "usage_file" SET size = ?, mtime_ns = ?, "offset" = ?, head = ?, '
        "context = ?, records = records * ? + ?, skipped = skipped * ? + ?, "
        "imported_at = ? WHERE id = ?",
        (
            size, mtime_ns, offset, head, UsageFile.context.db_value(context), keep, records,
            keep, skipped, now, file_id,
        ),
    )  # fmt: skip
