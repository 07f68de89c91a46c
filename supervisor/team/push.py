"""Pushing this machine's ledger to the team database, without loss and without doubles.

One batch: read the oldest outbox rows and the current state of the local rows they name
(:func:`collect`), write them to the team database in one server transaction
(:func:`send`), then drop them from the outbox and move the cursor in one local transaction
(:func:`supervisor.team.local.confirm`). Whatever dies in between (the process, the network,
the server), the outbox still names what was not confirmed, and sending it again is
idempotent: rows are upserted by (machine id, source, dedupe key), and the team's 15-minute
buckets are adjusted by what each upsert changed (the old row's contribution out, the new
one's in), so a row sent twice counts once. Pushes of one machine are serialised on the
server by an advisory lock; different machines never write the same rows.

Network I/O: call :meth:`Pusher.push` from a worker thread (a daemon job, the CLI), never on
the event loop.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import peewee as pw

from supervisor.storage import queries
from supervisor.team import local, membership, server
from supervisor.team.local import Membership
from supervisor.team.server import TeamError
from supervisor.usage.budgets import runner_agent  # the one rule for a runner's agent

log = logging.getLogger("stratavore.team")
BATCH = 5000  # outbox rows per server transaction

_USAGE_COLUMNS = (
    "source", "dedupe", "ts", "agent", "model", "project", "input_tokens", "output_tokens",
    "cache_creation_tokens", "cache_read_tokens", "cost_usd", "ccusage_cost_usd", "session_id",
    "runner_id",
)  # fmt: skip
_TOKENS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
_SUMS = (*_TOKENS, "cost_usd", "ccusage_cost_usd")
_INCOMING = (
    "CREATE TEMP TABLE IF NOT EXISTS team_incoming (source text NOT NULL, dedupe bigint NOT NULL, "
    "ts double precision NOT NULL, agent text NOT NULL, model text NOT NULL, project text, "
    "input_tokens bigint NOT NULL, output_tokens bigint NOT NULL, "
    "cache_creation_tokens bigint NOT NULL, cache_read_tokens bigint NOT NULL, "
    "cost_usd double precision, ccusage_cost_usd double precision, session_id text, "
    "runner_id bigint) ON COMMIT DELETE ROWS"
)
_ADD = ", ".join(f"{c} = r.{c} + excluded.{c}" for c in (*_SUMS, "responses"))
# the rollups: the zone-free 15-minute buckets, and the days in the team's zone
_ROLLUPS = {
    "usage_bucket": ("start", "stratavore.bucket_of({ts})"),
    "usage_day": ("day", "({ts} AT TIME ZONE %(zone)s)::date"),
}


def _rollup_upsert(table: str, select: str) -> str:
    """Add the (period, member, project, agent, model, sums..., responses) rows of ``select``
    to ``table``; rows in key order, so concurrent pushes lock rollup rows in one order."""
    key = f"{_ROLLUPS[table][0]}, member, project, agent, model"
    return (
        f"INSERT INTO stratavore.{table} AS r ({key}, {', '.join(_SUMS)}, responses) {select} "
        f"ORDER BY 1, 2, 3, 4, 5 ON CONFLICT ({key}) DO UPDATE SET {_ADD}"
    )


def _contribution(table: str, replaced: bool) -> str:
    """Into ``table``: the contributions of the rows being replaced, negated (``replaced``),
    or of the incoming rows."""
    if replaced:
        at, sign, ts, member = "u.", "-", "u.ts", "u.member"
        rows = (
            "stratavore.usage u JOIN team_incoming i ON u.machine_id = %(machine)s "
            "AND u.source = i.source AND u.dedupe = i.dedupe"
        )
    else:
        at, sign, ts, member, rows = "", "", "to_timestamp(ts)", "%(member)s", "team_incoming"
    return _rollup_upsert(
        table,
        f"SELECT {_ROLLUPS[table][1].format(ts=ts)}, {member}, COALESCE({at}project, ''), "
        f"{at}agent, {at}model, "
        + ", ".join(f"{sign}SUM({at}{c})" for c in _TOKENS)
        + f", {sign}COALESCE(SUM({at}cost_usd), 0), {sign}COALESCE(SUM({at}ccusage_cost_usd), 0)"
        f", {sign}COUNT(*) FROM {rows} GROUP BY 1, 2, 3, 4, 5",
    )


_UPSERT = (
    "INSERT INTO stratavore.usage (machine_id, source, dedupe, member, ts, agent, model, project, "
    f"{', '.join(_SUMS)}, session_id, runner_id) "
    "SELECT %(machine)s, source, dedupe, %(member)s, to_timestamp(ts), agent, model, project, "
    f"{', '.join(_SUMS)}, session_id, runner_id FROM team_incoming "
    "ON CONFLICT (machine_id, source, dedupe) DO UPDATE SET member = excluded.member, "
    "ts = excluded.ts, agent = excluded.agent, model = excluded.model, "
    "project = excluded.project, "
    + ", ".join(f"{c} = excluded.{c}" for c in _SUMS)
    + ", session_id = excluded.session_id, runner_id = excluded.runner_id, pushed_at = now()"
)
# in one push: both rollups lose what the replaced rows gave them, the rows are upserted,
# and both gain what the new rows give
_APPLY = (
    *(_contribution(t, replaced=True) for t in _ROLLUPS),
    _UPSERT,
    *(_contribution(t, replaced=False) for t in _ROLLUPS),
)


def rebuild_days(db: pw.Database) -> None:
    """Recompute the team-zone days from the buckets (after the team's zone changed); inside
    the transaction that changed it."""
    db.execute_sql("DELETE FROM stratavore.usage_day")
    sums = ", ".join(f"SUM({c})" for c in (*_SUMS, "responses"))
    db.execute_sql(
        f"INSERT INTO stratavore.usage_day (day, member, project, agent, model, "
        f"{', '.join(_SUMS)}, responses) SELECT (b.start AT TIME ZONE t.zone)::date, b.member, "
        f"b.project, b.agent, b.model, {sums} FROM stratavore.usage_bucket b "
        "CROSS JOIN stratavore.team t GROUP BY 1, 2, 3, 4, 5"
    )


@dataclass
class Payload:
    """The current state of what one outbox batch names."""

    last_seq: int
    outbox_rows: int
    usage: list[tuple[Any, ...]] = field(default_factory=list)
    crossings: list[tuple[Any, ...]] = field(default_factory=list)
    runners: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class PushResult:
    usage: int = 0
    crossings: int = 0
    runners: int = 0
    batches: int = 0
    seconds: float = 0.0
    pending: int = 0  # outbox rows still waiting

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def collect(batch: list[tuple[int, str, int]]) -> Payload:
    """Read, from the local store, the current state of the rows an outbox batch names."""
    first, last = batch[0][0], batch[-1][0]
    payload = Payload(last_seq=last, outbox_rows=len(batch))
    span = (first, last)
    payload.usage = queries.team_usage_rows(span)
    payload.crossings = queries.team_crossings(span)
    for rid, project, profile, command, *rest in queries.team_runners(span):
        payload.runners.append((rid, project, runner_agent(profile, json.loads(command)), *rest))
    return payload


def send(db: pw.PostgresqlDatabase, member: Membership, machine: str, payload: Payload) -> None:
    """Write ``payload`` to the team database in one transaction (idempotent)."""
    names = {"machine": machine, "member": member.member}
    with db.atomic():
        db.execute_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (machine,))
        # FOR SHARE: a change of the team's zone (which rebuilds the days) waits for us
        names["zone"] = db.execute_sql("SELECT zone FROM stratavore.team FOR SHARE").fetchone()[0]
        db.execute_sql(
            "INSERT INTO stratavore.member (name) VALUES (%s) ON CONFLICT DO NOTHING",
            (member.member,),
        )
        db.execute_sql(
            "INSERT INTO stratavore.machine (id, member, hostname, last_push_at, pushed_rows) "
            "VALUES (%s, %s, %s, now(), %s) ON CONFLICT (id) DO UPDATE SET "
            "member = excluded.member, last_push_at = now(), left_at = NULL, "
            "pushed_rows = stratavore.machine.pushed_rows + excluded.pushed_rows",
            (machine, member.member, socket.gethostname(), len(payload.usage)),
        )
        if payload.usage:
            db.execute_sql(_INCOMING)
            cursor = db.connection().cursor()
            with cursor.copy(
                f"COPY team_incoming ({', '.join(_USAGE_COLUMNS)}) FROM STDIN"
            ) as copy:
                for row in payload.usage:
                    copy.write_row(row)
            for statement in _APPLY:
                db.execute_sql(statement, names)
        if payload.crossings:
            db.connection().cursor().executemany(
                "INSERT INTO stratavore.crossing (machine_id, event_id, member, ts, type, title, "
                "body, data) VALUES (%s, %s, %s, to_timestamp(%s), %s, %s, %s, %s::jsonb) "
                "ON CONFLICT DO NOTHING",
                [(machine, i, member.member, ts, *rest) for i, ts, *rest in payload.crossings],
            )
        if payload.runners:
            db.connection().cursor().executemany(
                "INSERT INTO stratavore.runner (machine_id, runner_id, member, project, agent, "
                "state, created_at, started_at, ended_at, exit_code, tokens, cost_usd) VALUES "
                "(%s, %s, %s, %s, %s, %s, to_timestamp(%s), to_timestamp(%s), to_timestamp(%s), "
                "%s, %s, %s) ON CONFLICT (machine_id, runner_id) DO UPDATE SET "
                "member = excluded.member, project = excluded.project, agent = excluded.agent, "
                "state = excluded.state, started_at = excluded.started_at, "
                "ended_at = excluded.ended_at, exit_code = excluded.exit_code, "
                "tokens = excluded.tokens, cost_usd = excluded.cost_usd",
                [(machine, row[0], member.member, *row[1:]) for row in payload.runners],
            )


class Pusher:
    """Drains the outbox into the team database, batch by batch; keeps its connection
    between pushes (a daemon job pushes every interval, from whichever worker thread), and
    reconnects after a failure. One push at a time: a second caller waits."""

    def __init__(self, batch: int = BATCH) -> None:
        self.batch = batch
        self.link = membership.Link()
        self._lock = threading.Lock()

    def __enter__(self) -> Pusher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.link.close()

    def push(self, max_batches: int | None = None) -> PushResult:
        """Push everything pending (or ``max_batches`` batches); what went. A failure is a
        :class:`TeamError` sentence, also kept for ``team status``; what was not confirmed
        stays in the outbox for the next push."""
        with self._lock:
            return self._push(max_batches)

    def _push(self, max_batches: int | None) -> PushResult:
        member = membership.require_membership()
        began = time.perf_counter()
        result = PushResult()
        machine = local.machine_id()
        local.ensure_outbox()
        try:
            while max_batches is None or result.batches < max_batches:
                batch = local.next_batch(self.batch)
                if not batch:
                    break
                payload = collect(batch)
                db = self.link.get(member)
                try:
                    send(db, member, machine, payload)
                except (pw.DatabaseError, pw.InterfaceError) as exc:
                    self.link.close()
                    raise server.explain(exc, member.url) from None
                local.confirm(payload.last_seq, len(payload.usage))
                result.usage += len(payload.usage)
                result.crossings += len(payload.crossings)
                result.runners += len(payload.runners)
                result.batches += 1
        except TeamError as exc:
            local.note_error(str(exc))
            raise
        result.seconds = time.perf_counter() - began
        result.pending = local.pending()
        return result


def push_now(batch: int = BATCH) -> PushResult:
    """One push of everything pending on its own connection (the CLI's ``team push``)."""
    with Pusher(batch) as pusher:
        return pusher.push()
