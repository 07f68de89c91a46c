"""Bodies of the notification routes: channels and dead letters."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from supervisor.api.schemas.base import Input


class ChannelSet(Input):
    """A notification channel; ``secret`` (bot token, access token, signing key) goes to the
    OS keyring and is never stored or shown anywhere else."""

    kind: Literal["desktop", "telegram", "ntfy", "webhook"]
    config: dict[str, Any] = {}
    policy: dict[str, Any] | None = None
    secret: Annotated[str, Meta(min_length=1, max_length=4096)] | None = None


class ChannelOut(Struct, kw_only=True):
    name: str
    kind: str
    config: dict[str, Any]
    policy: dict[str, Any]
    enabled: bool
    secret: str  # whether the kind takes one: none | optional | required


class ChannelTest(Struct, kw_only=True):
    result: Literal["delivered", "retry", "failed"]
    reason: str


class DeadLetter(Struct, kw_only=True):
    id: int  # the delivery's id, for retry
    event_id: int
    channel: str
    type: str
    title: str
    attempts: int
    error: str | None
