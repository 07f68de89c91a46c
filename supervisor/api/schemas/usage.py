"""Bodies of the usage and budgets routes."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from supervisor.api.schemas.base import MAX_EPOCH, MAX_TOKENS, MAX_USD, Id, Input, Timestamp

Tokens = Annotated[int, Meta(ge=0, le=10**12)]  # in one response


class UsageIn(Input):
    """Token usage of one API response (POST /usage), or cumulative counters (heartbeat)."""

    model: Annotated[str, Meta(min_length=1, max_length=200)]
    input_tokens: Tokens = 0  # excluding cached input
    output_tokens: Tokens = 0
    cache_creation_tokens: Tokens = 0
    cache_read_tokens: Tokens = 0
    cost_usd: Annotated[float, Meta(ge=0, le=MAX_USD)] | None = None  # the agent's own figure
    agent: Annotated[str, Meta(min_length=1, max_length=64)] | None = None  # default: runner's
    ts: Annotated[float, Meta(ge=0, le=MAX_EPOCH)] | None = None  # UTC epoch s; default: now
    session_id: Annotated[str, Meta(max_length=200)] | None = None
    key: Annotated[str, Meta(min_length=1, max_length=200)] | None = None  # idempotency


class UsageReport(Input):
    """Usage for the ledger: with the admin token, or with a runner's own token and its id."""

    records: Annotated[list[UsageIn], Meta(min_length=1, max_length=10_000)]
    runner_id: Id | None = None


class UsageAck(Struct, kw_only=True):
    written: int  # rows new or improved; a repeated key changes nothing


class UsageImport(Struct, kw_only=True):
    files: int
    files_read: int
    bytes_read: int
    written: int
    skipped: int
    problems: list[str]
    unknown_models: list[str]
    seconds: float


class BudgetSet(Input):
    scope: Annotated[str, Meta(min_length=1, max_length=200)]
    period: Literal["5h", "daily", "weekly", "monthly"]
    limit_tokens: Annotated[int, Meta(ge=1, le=MAX_TOKENS)] | None = None
    limit_usd: Annotated[float, Meta(gt=0, le=MAX_USD)] | None = None
    warn: list[Annotated[float, Meta(gt=0, lt=100)]] | None = None
    action: Literal["warn", "block", "stop"] | None = None


class BudgetSpend(Struct, kw_only=True):
    """A budget's rule and what its period has used: the first fields of a local budget's
    status and of a team budget's, in this order on the wire."""

    scope: str
    shown_scope: str  # the scope as people know it: an account by its label (account:work)
    period: str
    limit_tokens: int | None
    limit_usd: float | None
    warn: list[float]
    action: str
    used_tokens: int
    used_usd: float
    percent: float


class BudgetStatus(BudgetSpend, kw_only=True):
    period_start: Timestamp | None  # null: a 5-hour budget between blocks
    resets_at: Timestamp | None
    projected_exhaustion_at: Timestamp | None  # at the period's burn rate, if before reset
