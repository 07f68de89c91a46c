"""The outbox dispatcher: every event to every channel that wants it, at least once.

Events are the outbox (written in the transaction of the change they report). The dispatcher
fans each new event out into one ``delivery`` row per matching channel, in one transaction
with the cursor that says how far it got, then plans what is due (quiet hours, folding a
storm, the rate limit) and hands it to the :class:`~supervisor.notify.sender.Sender` (tasks
on the loop, one aiohttp client session), whose answers a round records in one transaction.
This module is the planning half and the channels' admin; ``sender.py`` the sending half.
A delivery is ``sent`` only
once its channel acknowledged it: after a kill -9, everything unacknowledged is sent again at
the next start, under the same idempotency key. Failures are retried with exponential
backoff (1, 2, 4, … s, capped; a 429's Retry-After is honoured) and, after ``MAX_ATTEMPTS``
or a permanent refusal, the delivery goes to the dead letters, from where a user can retry it.
A delivery whose channel's rules no longer select its event (they were edited since) is
``skipped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import msgspec

from supervisor.api.schemas import NAME_PATTERN
from supervisor.core import events
from supervisor.core.errors import ApiError, ErrorCode, not_found, problem_of
from supervisor.core.secrets import (
    KeyringUnavailable,
    channel_secret,
    delete_secret,
    store_secret,
)
from supervisor.notify import channels
from supervisor.notify.channels import Message, Outcome
from supervisor.notify.policy import ChannelPolicy, Pending, Verdict
from supervisor.notify.sender import CHANNEL_QUEUE, LoadedChannel, Sender, Unit
from supervisor.storage import queries
from supervisor.storage.models import DB, Channel

log = logging.getLogger("stratavore.notify")

FANOUT_BATCH = 5000  # events fanned out per transaction
SEND_BATCH = 5000  # due deliveries a folding channel looks at per round (plain tuples: cheap)
MESSAGE_CACHE = 4096  # events' messages kept (events never change; one per channel to send)
IDLE_WAKE = 30.0  # seconds: a look at the outbox even when nothing pokes
CURSOR = "notify.cursor"  # the last event id fanned out
SKIPPED = "no longer selected by the channel's types or minimum severity"
# Machines, not people, read webhooks: every event, no folding. People get the defaults.
KIND_POLICY = {channels.WEBHOOK: {"types": ["*"], "min_severity": "debug", "max_messages": 100000,
                                  "window_s": 1, "settle_s": 0}}  # fmt: skip


def message_json(message: Message) -> dict[str, Any]:
    return dataclasses.asdict(message)


def message_from_json(data: dict[str, Any]) -> Message:
    return Message(**{**data, "event_ids": tuple(data.get("event_ids") or ())})


# --- channels (called by the API, the CLI through it, and the tray) -------------------------
def channel_out(row: Channel) -> dict[str, Any]:
    settings = {k: v for k, v in row.config.items() if k != "kind"}
    return {
        "name": row.name,
        "kind": row.kind,
        "config": settings,
        "policy": ChannelPolicy.from_config(row.policy).to_config(),
        "enabled": row.enabled,
        "secret": channels.SECRET_USE[row.kind],
    }


def add_channel(
    name: str,
    kind: str,
    config: dict[str, Any],
    rules: dict[str, Any] | None,
    secret: str | None,
    now: float,
) -> Channel:
    """Create (or replace) a channel; its secret goes to the OS keyring or nowhere."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise ApiError(
            ErrorCode.INVALID,
            f"Channel name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
        )
    settings = channels.check_channel(kind, config)
    channels.check_secret(kind, secret)
    rules = {**KIND_POLICY.get(kind, {}), **(rules or {})}
    ChannelPolicy.from_config(rules)  # one sentence per problem
    if secret:
        try:
            store_secret(channel_secret(name), secret)
        except KeyringUnavailable as exc:  # refused, rather than written anywhere else
            raise ApiError(ErrorCode.UNAVAILABLE, str(exc)) from None
    with DB.atomic():
        old = queries.channel_by_name(name)
        # editing without a new secret keeps the one in the keyring (same kind only)
        kept = old is not None and bool(old.has_secret) and old.kind == kind
        return queries.put_channel(name, kind, settings, rules, bool(secret) or kept, now)


def remove_channel(name: str) -> None:
    if not queries.delete_channel(name):
        raise not_found(f"Channel '{name}'")
    with contextlib.suppress(KeyringUnavailable):
        delete_secret(channel_secret(name))


def ensure_desktop_channel(now: float) -> None:
    """Make the desktop channel (named "desktop") unless one exists: embedded in the tray app,
    the supervisor has it from its start, so an event of its first second is delivered too."""
    if not any(row.kind == channels.DESKTOP for row in queries.all_channels()):
        add_channel(channels.DESKTOP, channels.DESKTOP, {}, None, None, now)


def dead_letters(limit: int = 200) -> list[dict[str, Any]]:
    return [
        {
            "id": d.id,
            "event_id": d.event_id,
            "channel": d.name,
            "type": d.type,
            "title": d.title,
            "attempts": d.attempts,
            "error": d.last_error,
        }
        for d in queries.dead_deliveries(limit)
    ]


def retry_dead(delivery_id: int, now: float) -> None:
    """Put a dead delivery back in line (with a fresh count of attempts)."""
    row = queries.delivery_by_id(delivery_id)
    if row is None:
        raise not_found(f"Delivery {delivery_id}")
    if row.state != "dead":
        raise ApiError(
            ErrorCode.CONFLICT, f"Delivery {delivery_id} is {row.state}, not a dead letter."
        )
    queries.requeue_deliveries(row, now)


def _event_messages(event_ids: list[int]) -> dict[int, Message]:
    """The messages of these events, by id, made from plain rows (not models: cheaper)."""
    found: dict[int, Message] = {}
    for row in queries.event_rows_by_ids(event_ids):
        event_id, ts, kind, severity, title, body, runner_id, project, data = row
        found[event_id] = Message(
            event_id, ts, kind, severity, title, body or "", runner_id, project,
            dict(msgspec.json.decode(data) or {}) if data else {}, (event_id,),
        )  # fmt: skip
    return found


# --- the dispatcher -----------------------------------------------------------------------------
class Dispatcher:
    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        timeout: tuple[float, float] = channels.DEFAULT_TIMEOUT,
        desktop_waits: bool = False,
    ) -> None:
        self.clock = clock
        self.timeout = timeout
        # Embedded in the tray app: desktop deliveries wait in the outbox until its notifier
        # subscribes (it pokes then), rather than being logged as a headless supervisor does.
        self.desktop_waits = desktop_waits
        self.sender = Sender(clock, timeout, self.poke)
        self._waker = events.Waker()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._channels: dict[int, LoadedChannel] = {}
        self._signature: tuple[Any, ...] | None = None
        self._cursor: int | None = None  # the last event fanned out
        self._messages: dict[int, Message] = {}  # event id -> message, the newest kept

    # --- running ---------------------------------------------------------------------------
    def start(self) -> None:
        self._wake = self._waker.start()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop sending; what is on its way is dropped unrecorded (sent again at the next
        start, under the same idempotency key)."""
        self._waker.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.sender.close()

    def poke(self) -> None:
        """Something was written to the outbox (or came back from a channel): look soon. On
        the loop's own thread this runs inside the writer's transaction; the look comes after
        its commit."""
        self._waker.poke()

    async def _run(self) -> None:
        assert self._wake is not None
        deferred = False
        while True:
            self._wake.clear()
            now = self.clock()
            try:
                next_due = self.round(now)
                deferred = False
            except Exception as exc:  # looked at again later
                if problem_of(exc) is None:
                    log.exception("notify: dispatch round failed")
                elif not deferred:  # the DB is locked or full: not a bug, said once
                    log.warning("notify: deliveries wait until the database can be written")
                    deferred = True
                next_due = now + 5.0
            timeout = IDLE_WAKE if next_due is None else min(max(next_due - now, 0.0), IDLE_WAKE)
            timer = asyncio.get_running_loop().call_later(timeout, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()

    def round(self, now: float) -> float | None:
        """Record answers, fan out new events, send what is due; when to look again. On the
        loop: the sends are its tasks."""
        self.sender.record_answers()
        self._load_channels()
        more = self._fan_out(now)
        next_due = self._dispatch(now)
        return now if more else next_due

    # --- channels --------------------------------------------------------------------------
    def _load_channels(self) -> None:
        signature = queries.channels_signature()
        if signature == self._signature:
            return
        self._signature = signature
        self._channels = {}
        for row in queries.all_channels():
            try:
                rules = ChannelPolicy.from_config(row.policy)
            except ApiError as exc:  # edited by hand into something invalid
                log.warning("notify: channel %s skipped: %s", row.name, exc.message)
                continue
            self._channels[row.id] = LoadedChannel.of(row, rules)
        self.sender.secrets.clear()

    # --- fan-out ---------------------------------------------------------------------------
    def _fan_out(self, now: float) -> bool:
        """One delivery row per (new event, channel that wants it); whether more events wait.

        The cursor is stored in the transaction that writes the rows. With no channel it only
        moves in memory (no write per event): a channel never gets events from before it was
        made, so a cursor left behind by a crash only costs a rescan."""
        if self._cursor is None:
            self._cursor = queries.setting_value(CURSOR) or 0
        cursor = self._cursor
        wanted = [c for c in self._channels.values() if c.row.enabled]
        if not wanted:
            self._cursor = queries.last_event_id()
            return False
        rows = queries.event_heads_after(cursor, FANOUT_BATCH)
        if not rows:
            return False
        params = [
            (event_id, c.row.id, ts + c.policy.settle, now)
            for event_id, ts, kind, severity in rows
            for c in wanted
            if c.row.created_at <= ts and c.policy.wants(kind, severity)
        ]
        with DB.atomic():
            queries.add_deliveries(params)
            queries.put_setting(CURSOR, rows[-1][0])
        self._cursor = rows[-1][0]
        return len(rows) == FANOUT_BATCH

    # --- sending ---------------------------------------------------------------------------
    def _dispatch(self, now: float) -> float | None:
        """Send what is due, up to each channel's room for messages on their way. A channel
        that folds storms takes, with its first due delivery, the ones due within its settle
        time: a storm is folded from its first message on."""
        lookahead = max((c.policy.settle for c in self._channels.values()), default=0.0)
        rows = self._due(now + lookahead)
        singles: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        batched: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for row in rows:
            if row[0] in self.sender.inflight or row[1] not in self._channels:
                continue
            (batched[row[2]] if row[2] else singles[row[1]]).append(row)
        wake: list[float] = []
        for batch_id, members in batched.items():  # folded before a crash: the same message
            channel = self._channels[members[0][1]]
            batch = queries.delivery_batch(batch_id)
            if (
                batch is not None
                and min(m[4] for m in members) <= now
                and self.sender.room(channel) > 0
            ):
                message = message_from_json(batch.message)
                tries = max(m[3] for m in members)
                ids = [m[0] for m in members]
                self.sender.submit(
                    Unit(channel, ids, message, f"stratavore-batch-{batch_id}", tries), now
                )
        for channel_id, members in singles.items():
            channel = self._channels[channel_id]
            first = min(m[4] for m in members)
            if first > now:
                wake.append(first)
                continue
            until = max(now, first + channel.policy.settle)
            due = [m for m in members if m[4] <= until]
            wake.extend(self._plan(channel, due, now))
        later = queries.next_attempt_after(now + lookahead)
        if later is not None:
            wake.append(later)
        return min(wake, default=None)

    def _due(self, until: float) -> list[tuple[Any, ...]]:
        """The pending deliveries due by ``until`` of the channels that may take more (half
        their queue free), oldest due first: those taken already (still pending), then as many
        as the channels may take (a folding channel: up to :data:`SEND_BATCH`, to fold them
        all): read through the (state, next_attempt_at) index, so a backlog costs what is
        taken, not its length."""
        wanted = {
            channel_id: SEND_BATCH if c.policy.max_messages < SEND_BATCH else self.sender.room(c)
            for channel_id, c in self._channels.items()
            if self.sender.room(c) >= CHANNEL_QUEUE // 2 and not self._waits(c)
        }
        return queries.due_deliveries(
            until, list(wanted), sum(self.sender.rows[c] + n for c, n in wanted.items())
        )

    def _waits(self, channel: LoadedChannel) -> bool:
        """Whether the channel's deliveries wait: the desktop's, until the app subscribes."""
        return (
            self.desktop_waits
            and channel.row.kind == channels.DESKTOP
            and not channels.desktop_subscribed()
        )

    def _messages_of(self, event_ids: list[int]) -> dict[int, Message]:
        """The messages of these events: from the cache, the others read in one query."""
        cache = self._messages
        missing = [i for i in event_ids if i not in cache]
        if missing:
            cache.update(_event_messages(missing))
            while len(cache) > MESSAGE_CACHE:
                del cache[next(iter(cache))]
        return {i: cache[i] for i in event_ids if i in cache}

    def _plan(
        self, channel: LoadedChannel, members: list[tuple[Any, ...]], now: float
    ) -> list[float]:
        """Quiet hours and folding for one channel's due deliveries; when to look again."""
        room = self.sender.room(channel)
        if room <= 0:
            return []  # an answer pokes the dispatcher when a slot frees
        policy = channel.policy
        folds = policy.max_messages < len(members)  # a summary may take them all
        members = members if folds else members[:room]
        events_by_id = self._messages_of([m[5] for m in members])
        if policy.quiet_hours is None and len(members) <= policy.max_messages - len(
            self.sender.sent[channel.row.id]
        ):  # nothing to hold, and room under the rate limit for each on its own
            return self._send_each(channel, members, events_by_id, now)
        pending, held, skipped = [], [], []
        attempts = {}
        for delivery_id, _, _, tries, _, event_id in members:
            message = events_by_id.get(event_id)
            if message is None:
                continue
            decision = policy.decide(message.type, message.severity, now)
            if decision.verdict is Verdict.HOLD:
                held.append((decision.not_before, delivery_id))
            elif decision.verdict is Verdict.SEND:
                pending.append(Pending(delivery_id, message, now))
                attempts[delivery_id] = tries
            else:
                skipped.append(delivery_id)
        if held or skipped:
            with DB.atomic():
                queries.hold_deliveries(held)
                queries.skip_deliveries(skipped, SKIPPED)
        plan = channel.policy.coalescer().plan(pending, list(self.sender.sent[channel.row.id]), now)
        for batch in plan.batches[:room]:
            ids = list(batch.keys)
            if len(ids) == 1:
                key = f"stratavore-delivery-{ids[0]}"
            else:
                summary = message_json(batch.message)
                folded = queries.fold_deliveries(channel.row.id, summary, ids, now)
                key = f"stratavore-batch-{folded}"
            tries = max(attempts[i] for i in ids)
            self.sender.submit(Unit(channel, ids, batch.message, key, tries), now)
        return [plan.wake_at] if plan.wake_at is not None else []

    def _send_each(
        self,
        channel: LoadedChannel,
        members: list[tuple[Any, ...]],
        events_by_id: dict[int, Message],
        now: float,
    ) -> list[float]:
        """Every due delivery on its own, as the coalescer would plan it when no quiet hours
        hold them and the rate limit has room for all (a webhook's, always); no wake-up."""
        skipped = []
        for delivery_id, _, _, tries, _, event_id in members:
            message = events_by_id.get(event_id)
            if message is None:
                continue
            if not channel.wants(message):
                skipped.append(delivery_id)
                continue
            key = f"stratavore-delivery-{delivery_id}"
            self.sender.submit(Unit(channel, [delivery_id], message, key, tries), now)
        if skipped:
            queries.skip_deliveries(skipped, SKIPPED)
        return []

    # --- by hand ---------------------------------------------------------------------------
    async def test(self, name: str) -> Outcome:
        """Send a test message to channel ``name`` now, outside the outbox."""
        row = queries.channel_by_name(name)
        if row is None:
            raise not_found(f"Channel '{name}'")
        now = self.clock()
        message = Message(
            event_id=None, ts=now, type="notify.test", severity="info",
            title=f"Stratavore test message for channel {name}",
            body="If you can read this, the channel works.",
        )  # fmt: skip
        channel = LoadedChannel.of(row, ChannelPolicy.from_config(row.policy))
        unit = Unit(channel, [], message, f"stratavore-test-{int(now * 1000)}", 0)
        self.sender.secrets.pop(row.id, None)
        return await self.sender.send(unit)
