"""The API's routes by resource, each module declaring its own; ``supervisor.api.app``
assembles them into the one table.

A :class:`Route` is what wires a route, authorises it and documents it: every route declares
its :class:`Audience` where it is declared, never derived from its path.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


class Audience(enum.Enum):
    """Who may call a route: every route declares one where it is registered."""

    OPEN = "open"  # anyone who reaches the port: no token
    ADMIN = "admin"  # the admin token (api-token in the data dir)
    RUNNER = "runner"  # a runner's own token, for that runner only
    RUNNER_OR_ADMIN = "runner_or_admin"  # the admin token, or a runner's own for itself


@dataclass(frozen=True)
class Route:
    """One API route: what wires it, authorises it and documents it. ``handler`` is an
    unbound method of its resource's class (``supervisor.api.app`` binds it to the one
    instance); ``runner_id`` (for the runner audiences) reads from the request the id of the
    runner it speaks for, whose own token it must carry."""

    method: str
    path: str
    handler: Callable[..., Awaitable[Any]]
    summary: str
    audience: Audience
    body: type | None = None
    response: Any = None
    runner_id: Callable[..., Awaitable[int | None]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.audience, Audience):
            raise TypeError(f"{self.method} {self.path}: audience must be an Audience")
        runner = self.audience in (Audience.RUNNER, Audience.RUNNER_OR_ADMIN)
        if runner != (self.runner_id is not None):
            raise TypeError(
                f"{self.method} {self.path}: give runner_id exactly for the runner audiences"
            )


OPEN, ADMIN, RUNNER, RUNNER_OR_ADMIN = (
    Audience.OPEN, Audience.ADMIN, Audience.RUNNER, Audience.RUNNER_OR_ADMIN
)  # fmt: skip
