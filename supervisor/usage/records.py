"""What an importer hands to the ledger: one counted API response."""

from __future__ import annotations

from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

# The ledger keeps, per dedupe key, the line with the highest rank: a main-chain line beats a
# sidechain one, then the larger token total wins (early streaming snapshots undercount output).
MAIN_CHAIN = 1 << 48


@dataclass(slots=True)
class UsageRow:
    ts: float  # UTC epoch seconds
    agent: str  # "claude", "codex", "gemini", "aider", or a generic agent's name
    model: str
    input_tokens: int  # excluding cached input
    output_tokens: int  # including reasoning
    cache_creation_tokens: int  # all cache writes (5 m + 1 h)
    cache_read_tokens: int
    key: str  # unique dedupe key across all files and roots
    source: str  # the file it came from, or "api"/"heartbeat"
    cache_creation_1h_tokens: int = 0  # the part of cache_creation_tokens written for 1 h
    logged_cost: float | None = None  # the agent's own costUSD, when it logs one
    speed: str | None = None  # "fast" for fast-mode responses
    web_search_requests: int = 0  # server-side web searches the response ran (billed apart)
    session_id: str | None = None
    cwd: str | None = None
    sidechain: bool = False
    runner_id: int | None = None  # set when the reporter is known (API, heartbeat)
    account: str | None = None  # its account's key when the reporter knows it; else its file's

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )

    @property
    def rank(self) -> int:
        return (0 if self.sidechain else MAIN_CHAIN) + self.total_tokens

    def __reduce__(self) -> tuple[type[UsageRow], tuple[Any, ...]]:
        # Pickled as the tuple of its fields: a big import's rows go from the process that
        # parses to the one that writes, and this halves what pickling costs them there.
        return UsageRow, _field_values(self)


_field_values = attrgetter(*(f.name for f in fields(UsageRow)))
