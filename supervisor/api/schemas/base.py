"""What every body of the API shares: the field types and their bounds, :class:`Input` (the
base of request bodies), :class:`Error`, and timestamps as ISO 8601."""

from __future__ import annotations

import time
from typing import Annotated, Literal, overload

from msgspec import Meta, Struct

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
Name = Annotated[
    str,
    Meta(
        pattern=NAME_PATTERN,
        description="1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    ),
]
# What exec can take: no NUL in an argument, no '=' or NUL in an environment name.
Argument = Annotated[str, Meta(pattern=r"^[^\x00]*$")]
Environment = dict[
    Annotated[str, Meta(pattern=r"^[^=\x00]+$", description="a name without '=' or NUL")],
    Argument,
]
RestartPolicyName = Literal["never", "on-failure", "always"]
Mode = Literal["interactive", "batch"]
Template = Annotated[
    list[Annotated[str, Meta(min_length=1, pattern=r"^[^\x00]+$")]],
    Meta(min_length=1, max_length=200),
]
Prompt = Annotated[str, Meta(min_length=1, max_length=200_000, pattern=r"^[^\x00]*$")]
SessionId = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
        description="an agent's session id (a UUID for Claude Code and Codex)",
    ),
]
Timestamp = Annotated[str, Meta(description="ISO 8601 UTC, e.g. 2026-11-21T21:30:00.123Z")]
# Numbers are bounded, so NaN, infinities and values SQLite cannot store (its integers are
# 64-bit) are refused at the edge with a 422 that names the field, never a 500 later.
MAX_INT = 2**63 - 1  # SQLite's largest integer
MAX_CAP = 10_000  # runners at once (also bounds the max_runners_* settings)
MAX_PID = 2**32 - 1  # pids are 32-bit everywhere (Linux caps them at 2**22)
MAX_TOKENS = 10**15  # a token limit or count: far above any real period's use
MAX_USD = 1e9  # a dollar limit or cost
MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z: the last instant ISO 8601 can write
Cap = Annotated[int, Meta(ge=1, le=MAX_CAP)]
ExitCode = Annotated[int, Meta(ge=-(2**31), le=2**32 - 1)]  # Windows: 32-bit codes
Id = Annotated[int, Meta(ge=1, le=MAX_INT)]


@overload
def iso(ts: float) -> str: ...


@overload
def iso(ts: float | None) -> str | None: ...


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with milliseconds (hand-formatted: listings call this
    thousands of times, and strftime is the slow part)."""
    if ts is None:
        return None
    t = time.gmtime(ts)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
        f"{t.tm_sec:02d}.{int(ts % 1 * 1000):03d}Z"
    )


class Input(Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of request bodies: unknown fields are an error, not silently dropped."""


class Error(Struct, kw_only=True):
    error: str
    message: str
