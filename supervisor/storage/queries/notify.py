"""Notification channels and the outbox's deliveries.

The dispatcher's statements are plain SQL over plain tuples: a round looks at thousands of
due deliveries on the loop, and ORM objects for each would cost it milliseconds.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from supervisor.storage.models import DB, Channel, Delivery, DeliveryBatch, Event

# A due delivery as the dispatcher reads it.
DueDelivery = tuple[int, int, int | None, int, float, int]  # id, channel, batch, tries, due, event


# --- channels -------------------------------------------------------------------------------
def channel_by_name(name: str) -> Channel | None:
    return Channel.get_or_none(Channel.name == name)


def all_channels() -> list[Channel]:
    return list(Channel.select())


def list_channels() -> list[Channel]:
    """Every notification channel, by name (the order the API lists them in)."""
    return list(Channel.select().order_by(Channel.name))


def channels_signature() -> tuple[Any, ...]:
    """Changes whenever a channel is added, edited or removed: the dispatcher reloads them
    only then."""
    return DB.execute_sql('SELECT COUNT(*), MAX(updated_at), MAX(id) FROM "channel"').fetchone()


def put_channel(
    name: str,
    kind: str,
    config: dict[str, Any],
    policy: dict[str, Any],
    has_secret: bool,
    now: float,
) -> Channel:
    """Create channel ``name`` or change it (keeping its id, creation time and whether it is
    enabled)."""
    row = Channel.get_or_none(Channel.name == name)
    if row is None:
        row = Channel(name=name, created_at=now)
    row.kind, row.config, row.policy, row.has_secret, row.updated_at = (
        kind, config, policy, has_secret, now,
    )  # fmt: skip
    row.save()
    return row


def delete_channel(name: str) -> bool:
    """Remove channel ``name`` with its deliveries; whether there was one."""
    return bool(Channel.delete().where(Channel.name == name).execute())


# --- deliveries -----------------------------------------------------------------------------
def add_deliveries(rows: list[tuple[int, int, float, float]]) -> None:
    """Pending deliveries (event id, channel id, first attempt at, created at), in one
    statement; one that exists already is left as it is."""
    DB.connection().executemany(
        'INSERT OR IGNORE INTO "delivery" (event_id, channel_id, state, attempts, '
        "next_attempt_at, created_at) VALUES (?, ?, 'pending', 0, ?, ?)",
        rows,
    )


def due_deliveries(until: float, channel_ids: Collection[int], limit: int) -> list[DueDelivery]:
    """Up to ``limit`` pending deliveries of channels ``channel_ids`` due by ``until``, oldest
    due first. The index on (state, next_attempt_at) yields them in that order, so a backlog
    costs what is taken, not its length; ``+channel_id`` keeps SQLite off the channel index
    (every delivery ever)."""
    if not channel_ids:
        return []
    marks = ",".join("?" * len(channel_ids))
    return DB.execute_sql(
        "SELECT id, channel_id, batch_id, attempts, next_attempt_at, event_id "
        "FROM \"delivery\" WHERE state = 'pending' AND next_attempt_at <= ? "
        f"AND +channel_id IN ({marks}) ORDER BY next_attempt_at, id LIMIT ?",
        (until, *channel_ids, limit),
    ).fetchall()


def next_attempt_after(moment: float) -> float | None:
    """When the first pending delivery due after ``moment`` is due."""
    return DB.execute_sql(
        "SELECT MIN(next_attempt_at) FROM \"delivery\" WHERE state = 'pending' "
        "AND next_attempt_at > ?",
        (moment,),
    ).fetchone()[0]


def hold_deliveries(held: list[tuple[float, int]]) -> None:
    """Put deliveries off: (not before, delivery id) each."""
    DB.connection().executemany('UPDATE "delivery" SET next_attempt_at = ? WHERE id = ?', held)


def skip_deliveries(delivery_ids: list[int], reason: str) -> None:
    """Deliveries their channel no longer wants (its rules changed since they were written):
    ``skipped`` with ``reason``, so that they are not read again at every round."""
    DB.connection().executemany(
        "UPDATE \"delivery\" SET state = 'skipped', last_error = ? WHERE id = ?",
        [(reason, delivery_id) for delivery_id in delivery_ids],
    )


def fold_deliveries(channel_id: int, message: dict[str, Any], ids: list[int], now: float) -> int:
    """Store the summary ``message`` of deliveries ``ids`` as one batch, in one transaction;
    its id."""
    with DB.atomic():
        folded = DeliveryBatch.create(channel=channel_id, message=message, created_at=now)
        Delivery.update(batch=folded.id).where(Delivery.id.in_(ids)).execute()
    return folded.id


def delivery_batch(batch_id: int) -> DeliveryBatch | None:
    return DeliveryBatch.get_or_none(DeliveryBatch.id == batch_id)


# An answer as the dispatcher records it: delivery ids (one message), then state, attempts,
# next attempt at, last error, sent at.
Attempt = tuple[list[int], str, int, float, "str | None", "float | None"]
_RECORD = (
    'UPDATE "delivery" SET state = ?, attempts = ?, next_attempt_at = ?, last_error = ?, '
    "sent_at = ?"
)


def record_attempts(answers: list[Attempt]) -> None:
    """The outcomes of a round's attempts: one statement for all the single deliveries, one per
    folded batch (the caller draws the transaction around them)."""
    singles = []
    for ids, *values in answers:
        if len(ids) == 1:
            singles.append((*values, ids[0]))
            continue
        marks = ",".join("?" * len(ids))
        DB.execute_sql(f"{_RECORD} WHERE id IN ({marks})", (*values, *ids))
    DB.connection().executemany(f"{_RECORD} WHERE id = ?", singles)


# --- dead letters ---------------------------------------------------------------------------
def dead_deliveries(limit: int) -> list[Any]:
    """The newest dead letters, each with its channel's ``name`` and its event's ``type``
    and ``title``."""
    return list(
        Delivery.select(Delivery, Channel.name, Event.type, Event.title)
        .join(Channel)
        .switch(Delivery)
        .join(Event)
        .where(Delivery.state == "dead")
        .order_by(Delivery.id.desc())
        .limit(limit)
        .objects()
    )


def delivery_by_id(delivery_id: int) -> Delivery | None:
    return Delivery.get_or_none(Delivery.id == delivery_id)


def requeue_deliveries(delivery: Delivery, now: float) -> None:
    """Put ``delivery`` back in line with a fresh count of attempts, and the others of its
    batch with it (their summary is sent again as one message)."""
    same = Delivery.batch == delivery.batch_id if delivery.batch_id else Delivery.id == delivery.id
    Delivery.update(state="pending", attempts=0, next_attempt_at=now, last_error=None).where(
        same
    ).execute()
