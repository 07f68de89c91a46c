"""The sending half of the outbox: what the dispatcher planned goes out, and the answers come
back as the next state of each delivery.

A channel's messages go out on at most :data:`CHANNEL_INFLIGHT` tasks on the loop, through one
aiohttp client session (non-blocking, keep-alive); what blocks, the keyring and the desktop
subscriber, runs in a small thread pool per channel. Answers are kept until the dispatcher's
next round records them all in one transaction (:meth:`Sender.record_answers`), at most
:data:`RECORD_DELAY` after the first. Failures are retried with exponential backoff (1, 2,
4, … s, capped; a 429's Retry-After is honoured) and, after :data:`MAX_ATTEMPTS` or a
permanent refusal, the delivery is a dead letter.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from supervisor.core.secrets import KeyringUnavailable, channel_secret, load_secret
from supervisor.notify import channels
from supervisor.notify.channels import Message, Outcome, Result
from supervisor.notify.policy import ChannelPolicy
from supervisor.storage import queries
from supervisor.storage.models import DB, Channel

log = logging.getLogger("stratavore.notify")

MAX_ATTEMPTS = 10
BACKOFF_CAP = 300.0  # seconds between attempts, at most
RETRY_AFTER_CAP = 3600.0  # a server asking for longer is asked again after an hour
CHANNEL_WORKERS = 4  # threads per channel for what blocks (keyring, desktop subscriber)
CHANNEL_INFLIGHT = 16  # messages per channel on the wire at once (connections to it)
# Messages per channel taken from the outbox at once: they go out as the wire frees, without
# waiting for a round; the rest wait in the DB. Taken again once half of them are answered, so
# a backlog is read a few hundred rows at a time, not once per answer.
CHANNEL_QUEUE = 256
RECORD_DELAY = 0.01  # seconds: answers are recorded together, at most this long after the first


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: 1, 2, 4, … capped."""
    return min(2.0 ** max(attempts - 1, 0), BACKOFF_CAP)


@dataclass
class LoadedChannel:
    """A channel row with its rules parsed and the settings :func:`channels.send` takes."""

    row: Channel
    policy: ChannelPolicy
    settings: dict[str, Any]  # what channels.send takes, with "kind"
    wanted: dict[tuple[str, str], bool] = field(default_factory=dict)  # (type, severity)

    @classmethod
    def of(cls, row: Channel, policy: ChannelPolicy) -> LoadedChannel:
        return cls(row, policy, {**row.config, "kind": row.kind})

    def wants(self, message: Message) -> bool:
        """Whether the channel's rules select the message (remembered per type and
        severity: the rules are fixed for the life of this object)."""
        key = (message.type, message.severity)
        found = self.wanted.get(key)
        if found is None:
            found = self.wanted[key] = self.policy.wants(*key)
        return found


@dataclass
class Unit:
    """One message on its way: a delivery, or a batch of them folded into a summary."""

    channel: LoadedChannel
    ids: list[int]
    message: Message
    key: str  # idempotency key, the same on every attempt
    attempts: int


class Sender:
    """Sends the units it is given and keeps their answers for :meth:`record_answers`;
    ``poke`` asks the dispatcher for a round (to record them, and to take more)."""

    def __init__(
        self, clock: Callable[[], float], timeout: tuple[float, float], poke: Callable[[], None]
    ) -> None:
        self.clock = clock
        self.timeout = timeout
        self.poke = poke
        self._pools: dict[int, ThreadPoolExecutor] = {}  # one per channel, for what blocks
        self._busy: dict[int, int] = defaultdict(int)  # channel -> messages taken, unanswered
        self.rows: dict[int, int] = defaultdict(int)  # channel -> their deliveries
        self._queues: dict[int, deque[Unit]] = defaultdict(deque)  # channel -> not yet sent
        self._senders: dict[int, int] = defaultdict(int)  # channel -> its sending tasks
        self._record_timer: asyncio.TimerHandle | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # the senders, referenced until they end
        self.secrets: dict[int, str | None] = {}
        self.inflight: set[int] = set()  # delivery ids taken and not yet recorded
        self.sent: dict[int, deque[float]] = defaultdict(lambda: deque(maxlen=1000))
        self.done: deque[tuple[Unit, Outcome, float]] = deque()  # answers not yet recorded

    async def close(self) -> None:
        """Drop what is on its way, unrecorded, and close the session and the pools."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._record_timer is not None:
            self._record_timer.cancel()
        if self._http is not None:
            await self._http.close()
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    def room(self, channel: LoadedChannel) -> int:
        """How many more messages the channel may take now."""
        return CHANNEL_QUEUE - self._busy[channel.row.id]

    def _pool(self, channel_id: int) -> ThreadPoolExecutor:
        pool = self._pools.get(channel_id)
        if pool is None:
            pool = self._pools[channel_id] = ThreadPoolExecutor(
                CHANNEL_WORKERS, thread_name_prefix=f"notify-{channel_id}"
            )
        return pool

    def _session(self) -> aiohttp.ClientSession:
        """The one client session (made on the running loop when first needed): its
        connections are kept alive between deliveries; cookies are not kept. (Proxies from
        the environment are looked up once per host by :func:`channels.send`, not per request
        in a thread as aiohttp's ``trust_env`` does.)"""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),  # bounded per channel: CHANNEL_INFLIGHT
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._http

    def submit(self, unit: Unit, now: float) -> None:
        """Take ``unit``: it goes out on one of its channel's senders, at once if one is free."""
        channel_id = unit.channel.row.id
        self.inflight.update(unit.ids)
        self._busy[channel_id] += 1
        self.rows[channel_id] += len(unit.ids)
        self.sent[channel_id].append(now)
        self._queues[channel_id].append(unit)
        if self._senders[channel_id] < CHANNEL_INFLIGHT:  # else a sender takes it when free
            self._senders[channel_id] += 1
            task = asyncio.get_running_loop().create_task(self._sender(channel_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _sender(self, channel_id: int) -> None:
        """One of a channel's at most :data:`CHANNEL_INFLIGHT` senders: sends what the
        channel has taken, one attempt at a time, until there is nothing left; each answer is
        recorded by a round at most :data:`RECORD_DELAY` later."""
        queue = self._queues[channel_id]
        try:
            while queue:
                unit = queue.popleft()
                try:
                    outcome = await self.send(unit)
                except Exception as exc:  # a bug in a channel: retried, logged with its traceback
                    log.exception("notify: sending to %s failed", unit.channel.row.name)
                    outcome = Outcome.retry(f"internal error: {type(exc).__name__}")
                self.done.append((unit, outcome, self.clock()))
                if self._record_timer is None:
                    loop = asyncio.get_running_loop()
                    self._record_timer = loop.call_later(RECORD_DELAY, self._record_soon)
        finally:
            self._senders[channel_id] -= 1

    def _record_soon(self) -> None:
        self._record_timer = None
        self.poke()

    async def send(self, unit: Unit) -> Outcome:
        """The channel's secret (from the keyring, in a worker thread, once), then one
        attempt."""
        row = unit.channel.row
        if row.id not in self.secrets:  # the keyring only for channels with a secret
            try:
                self.secrets[row.id] = (
                    await asyncio.get_running_loop().run_in_executor(
                        self._pool(row.id), load_secret, channel_secret(row.name)
                    )
                    if row.has_secret
                    else None
                )
            except KeyringUnavailable as exc:
                return Outcome.retry(str(exc))
        return await channels.send(
            unit.channel.settings,
            self.secrets.get(row.id),
            unit.message,
            unit.key,
            self._session(),
            self.timeout,
            self._pool(row.id),
        )

    def record_answers(self) -> None:
        """Every answer since the last round, in one transaction (one statement for all the
        single deliveries)."""
        done = []
        while self.done:
            done.append(self.done.popleft())
        if not done:
            return
        try:
            with DB.atomic():
                queries.record_attempts(
                    [(unit.ids, *self._verdict(unit, outcome, at)) for unit, outcome, at in done]
                )
        except Exception:  # kept for the next round: an answer is never dropped
            self.done.extendleft(reversed(done))
            raise
        for unit, _, _ in done:
            self.inflight.difference_update(unit.ids)
            self._busy[unit.channel.row.id] -= 1
            self.rows[unit.channel.row.id] -= len(unit.ids)

    def _verdict(
        self, unit: Unit, outcome: Outcome, at: float
    ) -> tuple[str, int, float, str | None, float | None]:
        """(state, attempts, next attempt, last error, sent at) after this answer."""
        attempts = unit.attempts + 1
        if outcome.result is Result.DELIVERED:
            return "sent", attempts, at, None, at
        if outcome.result is Result.FAILED or attempts >= MAX_ATTEMPTS:
            log.warning(
                "notify: %s to %s is a dead letter after %d attempts: %s",
                unit.key, unit.channel.row.name, attempts, outcome.reason,
            )  # fmt: skip
            return "dead", attempts, at, outcome.reason, None
        wait = backoff(attempts)
        if outcome.retry_after is not None:
            wait = max(wait, min(outcome.retry_after, RETRY_AFTER_CAP))
        return "pending", attempts, at + wait, outcome.reason, None
