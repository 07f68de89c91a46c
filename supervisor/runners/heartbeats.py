"""Heartbeats in memory: the latest fields per runner until the next flush, and when each
runner was last heard from (the stale-heartbeat rule in :mod:`.liveness` reads it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from supervisor.api.schemas import Heartbeat


@dataclass
class HeartbeatBook:
    """Latest heartbeat fields per runner, flushed to the DB in one transaction a second, so
    ingesting thousands a second costs no write each."""

    pending: dict[int, dict[str, Any]] = field(default_factory=dict)
    last_seen: dict[int, float] = field(default_factory=dict)

    def record(self, runner_id: int, beat: Heartbeat, now: float) -> None:
        fields: dict[str, Any] = {"last_heartbeat": now}
        if beat.cpu_percent is not None:
            fields["cpu_percent"] = beat.cpu_percent
        if beat.rss_bytes is not None:
            fields["rss_bytes"] = beat.rss_bytes
        if beat.tokens is not None:
            fields["tokens"] = beat.tokens
        self.pending.setdefault(runner_id, {}).update(fields)
        self.last_seen[runner_id] = now

    def take(self) -> dict[int, dict[str, Any]]:
        batch, self.pending = self.pending, {}
        return batch

    def keep(self, batch: dict[int, dict[str, Any]]) -> None:
        """Put back a batch the DB refused; fields received since are newer and win."""
        for runner_id, fields in batch.items():
            self.pending[runner_id] = {**fields, **self.pending.get(runner_id, {})}

    def forget(self, runner_id: int) -> None:
        self.pending.pop(runner_id, None)
        self.last_seen.pop(runner_id, None)
