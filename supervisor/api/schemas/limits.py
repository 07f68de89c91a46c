"""Bodies of provider plan limits: what a Claude Code status line reports, and what is known."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta, Struct

from supervisor.api.schemas.base import Timestamp


class StatusLineIn(Struct, kw_only=True):
    """What Stratavore's status-line command sends of Claude Code's status-line JSON: the
    account (the run's config folder, ``supervisor.agents.accounts``) and ``rate_limits`` as
    Claude Code gave it (null or absent: not known; malformed windows are left out)."""

    account: Annotated[str, Meta(min_length=1, max_length=4096)]
    rate_limits: dict[str, Any] | None = None


class StatusLineAck(Struct, kw_only=True):
    changed: int  # windows whose use changed


class PlanLimitOut(Struct, kw_only=True):
    account: str  # the agent's config folder (CLAUDE_CONFIG_DIR, CODEX_HOME)
    agent: str
    window: str  # five_hour | seven_day | <minutes>m
    label: str  # "5-hour"
    used_percent: float
    resets_at: Timestamp | None
    observed_at: Timestamp
    text: str  # "5-hour: 63 %, resets 23:00" in the supervisor's time zone
