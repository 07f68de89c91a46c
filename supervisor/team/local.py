"""This data dir's side of the team: its machine id, its membership, and the outbox.

The outbox is the transactional-outbox idea of the notifications applied to the ledger:
SQLite triggers add one ``team_outbox`` row (kind, local id) in the very transaction that
inserts or changes a usage row (a better line of a response, a repricing, a late project),
records a budget crossing (``budget.*`` events) or changes a runner's state, tokens or times.
A push sends the current state of what the outbox names and, once the team database has
committed it, deletes those outbox rows and moves the cursor in one local transaction. A row
pushed twice (a kill between the two commits) is stored once: the team ledger is keyed by
(machine id, source, key).

Joining installs the triggers and queues the whole local history; leaving removes them.
If the triggers went missing (a local migration that rebuilt a table drops them), the next
push puts them back and queues everything again: harmless, since pushes are idempotent.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from supervisor.storage import queries
from supervisor.storage.models import DB

MACHINE_ID = "team.machine_id"  # kept across leave/join: the same machine, the same rows
MEMBERSHIP = "team.membership"
CURSOR = "team.cursor"  # the last outbox seq confirmed by the team database
LAST_PUSH = "team.last_push"  # {"at": ts, "rows": n} of the last confirmed push
LAST_ERROR = "team.last_error"  # {"at", "since": ts, "message": sentence} of the last failure


@dataclass(frozen=True)
class Membership:
    """What this data dir keeps about its team (never a password: that is in the keyring)."""

    url: str  # libpq URL without a password
    member: str
    joined_at: float
    credentials: list[str]  # what the keyring holds: "password", "certificate", both, none

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def machine_id() -> str:
    """This data dir's machine id (made once, then stable: it keys every row we push)."""
    found = queries.setting_value(MACHINE_ID)
    if found:
        return found
    with DB.atomic():
        found = queries.setting_value(MACHINE_ID)
        if not found:
            found = str(uuid.uuid4())
            queries.put_setting(MACHINE_ID, found)
    return found


def secret_name(machine: str, kind: str = "password") -> str:
    """The keyring username of this data dir's team password (or, ``kind`` "certificate",
    its client certificate and key)."""
    return f"team:{machine}" + ("" if kind == "password" else f":{kind}")


def membership() -> Membership | None:
    found = queries.setting_value(MEMBERSHIP)
    return Membership(**found) if found else None


def join(member: Membership) -> None:
    """Record the membership, install the outbox and queue the local history, in one
    transaction (a member that re-joins queues everything again: pushes are idempotent)."""
    with DB.atomic():
        queries.put_setting(MEMBERSHIP, member.as_json())
        queries.install_team_outbox(backfill=True)


def leave() -> None:
    """Forget the membership and remove the outbox (the machine id stays)."""
    with DB.atomic():
        queries.remove_team_outbox()
        for key in (MEMBERSHIP, CURSOR, LAST_PUSH, LAST_ERROR):
            queries.delete_setting(key)


def ensure_outbox() -> bool:
    """Put back missing triggers (queueing everything again then); whether any was missing."""
    if queries.team_triggers() >= set(queries.TEAM_TRIGGERS):
        return False
    with DB.atomic():
        queries.install_team_outbox(backfill=True)
    return True


def pending() -> int:
    """Outbox rows not yet confirmed by the team database (0 in no team)."""
    return queries.team_outbox_size()


def next_batch(limit: int) -> list[tuple[int, str, int]]:
    """The oldest ``limit`` outbox rows: (seq, kind, local id)."""
    return queries.team_outbox_batch(limit)


def confirm(last_seq: int, rows: int, now: float | None = None) -> None:
    """The team database committed everything up to ``last_seq``: drop it from the outbox and
    move the cursor, in one local transaction."""
    with DB.atomic():
        queries.drop_team_outbox_until(last_seq)
        queries.put_setting(CURSOR, last_seq)
        queries.put_setting(LAST_PUSH, {"at": time.time() if now is None else now, "rows": rows})
        queries.delete_setting(LAST_ERROR)


def note_error(message: str, now: float | None = None) -> None:
    """Keep the last push's failure, and since when pushes fail (the first failure after the
    last confirmed push): what "server unreachable since …" says."""
    at = time.time() if now is None else now
    since = (last_error() or {}).get("since", at)
    queries.put_setting(LAST_ERROR, {"at": at, "since": since, "message": message})


def last_push() -> dict[str, Any] | None:
    return queries.setting_value(LAST_PUSH)


def last_error() -> dict[str, Any] | None:
    return queries.setting_value(LAST_ERROR)
