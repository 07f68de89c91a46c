"""Bodies of the supervisor's own routes: health, status, events."""

from __future__ import annotations

from typing import Any, Literal

from msgspec import Struct

from supervisor.api.schemas.base import Timestamp

Severity = Literal["debug", "info", "warning", "error"]


class Event(Struct, kw_only=True):
    id: int
    ts: Timestamp
    type: str
    severity: Severity
    runner_id: int | None
    project: str | None
    title: str
    body: str
    data: dict[str, Any]


class Status(Struct, kw_only=True):
    version: str
    pid: int
    uptime_s: float
    api_url: str
    data_dir: str
    runners: dict[str, int]  # state -> count, every state present
    active: int
    queued: int
    projects: int
    storage: str | None = None  # the data folder full, read-only or locked: what and since when
    usage_imported_at: Timestamp | None = None  # the last import of the agents' logs ended


class Health(Struct, kw_only=True):
    ok: bool
    version: str
