"""Bodies of what a runner sends by itself: its Claude Code hooks and its heartbeats."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from supervisor.api.schemas.base import MAX_INT, ExitCode, Input
from supervisor.api.schemas.usage import UsageIn


class HookIn(Struct, kw_only=True):
    """A Claude Code hook's input, as its HTTP hook POSTs it (unknown fields are kept out,
    not refused: new versions add some)."""

    hook_event_name: Annotated[str, Meta(min_length=1, max_length=64)]
    session_id: Annotated[str, Meta(max_length=200)] | None = None
    transcript_path: Annotated[str, Meta(max_length=4096)] | None = None
    cwd: Annotated[str, Meta(max_length=4096)] | None = None
    notification_type: Annotated[str, Meta(max_length=64)] | None = None
    message: Annotated[str, Meta(max_length=4000)] | None = None
    source: Annotated[str, Meta(max_length=64)] | None = None
    reason: Annotated[str, Meta(max_length=64)] | None = None
    tool_name: Annotated[str, Meta(max_length=200)] | None = None
    agent_id: Annotated[str, Meta(max_length=200)] | None = None  # set in a sub-agent
    stop_hook_active: bool | None = None


class HookAck(Struct, kw_only=True):
    attention: str | None  # the runner's attention after this hook


class Heartbeat(Input):
    state: Annotated[str, Meta(max_length=32)] | None = None
    cpu_percent: Annotated[float, Meta(ge=0, le=100 * 4096)] | None = None  # 100 per core
    rss_bytes: Annotated[int, Meta(ge=0, le=MAX_INT)] | None = None
    tokens: Annotated[int, Meta(ge=0, le=MAX_INT)] | None = None
    usage: UsageIn | None = None  # cumulative counters since the runner started
    exit_code: ExitCode | None = None  # present only in the final heartbeat


class HeartbeatAck(Struct, kw_only=True):
    ok: bool
    heartbeat_interval: float
