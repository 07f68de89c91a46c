"""Model prices and the cost of one counted response, in two cost modes.

The bundled table, ``prices.json`` (package data next to this module), is a copy of LiteLLM's
``model_prices_and_context_window.json``, the table ccusage prices with; it records the date it
was taken and its source. Every row is priced twice, and the ledger keeps both figures:

``vendor`` (the default) prices as the provider bills (docs/usage.md has the rules, each with
the vendor's page):

* A model with a 200k tier (Anthropic's long context) prices the *whole* request at the tier
  prices once its input side (input, cache reads and cache writes) exceeds 200,000 tokens;
  output included.
* A model with a ``long_context_threshold`` (OpenAI's 272k, Gemini 2.5 Pro's 200k) does the
  same past its threshold.
* Cache writes are priced per duration: the 1-hour part at ``cache_write_1h`` (2 x input),
  the rest at ``cache_write_5m`` (1.25 x input); reads at ``cache_read`` (0.1 x input).
* A fast-mode response (``speed == "fast"``) costs the model's fast multiplier times its
  standard prices, over the full context window (Anthropic has no long-context premium on
  top of fast mode); caching multipliers stack.
* Web search requests (``server_tool_use.web_search_requests``) cost $10 per thousand.
* An agent that logs its own cost from exact tokens while its log keeps only rounded ones
  (Aider, ``OWN_COST_AGENTS``) is priced by its own figure, and so is usage an agent reports
  over the API with a cost (``REPORTED_SOURCES``); Claude Code's logged ``costUSD`` is not.

``ccusage`` reproduces ccusage 20.0.24 (github.com/ccusage/ccusage, ``rust/crates/ccusage/src/
cost.rs`` and ``pricing.rs``; checked against its binary): the 200k tier applies per response
and per token kind (only the tokens of a kind above 200,000 cost the tier price), a
``long_context_threshold`` prices the whole response as in vendor mode, fast mode
multiplies that whole figure, web searches are free, and an agent's logged ``costUSD`` wins
over the computed cost (ccusage's default ``--mode auto``).

A price the table leaves out defaults to what ccusage uses: 5-minute cache write 1.25 x input,
cache read 0.1 x input, 1-hour cache write 2 x input (and 2 x the input tier).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from supervisor.usage.records import UsageRow

COST_MODES = ("vendor", "ccusage")

# Anthropic's web search tool: $10 per 1,000 searches, on top of the tokens
# (platform.claude.com/docs/en/about-claude/pricing, "Web search tool").
WEB_SEARCH_USD = 0.01

# Agents whose own logged cost is priced from exact tokens while their log keeps only rounded
# ones: in vendor mode their figure beats repricing the rounded tokens (docs/usage.md).
OWN_COST_AGENTS = frozenset({"aider"})
# Rows an agent reported itself (POST /usage, heartbeats): a cost it sends is what it was
# billed, with what we cannot see (cache durations, searches, its own rates); vendor mode
# takes it as given.
REPORTED_SOURCES = frozenset({"api", "heartbeat"})

# Tokens of one kind in one response above which a marginal tier price applies (ccusage
# DEFAULT_LONG_CONTEXT_THRESHOLD_TOKENS, for LiteLLM's *_above_200k_tokens prices).
TIER_THRESHOLD = 200_000

# The keys of one model's entry in prices.json and in user overrides: USD per token, except
# fast_multiplier and long_context_threshold (tokens).
PRICE_KEYS = (
    "input",
    "output",
    "cache_write_5m",
    "cache_write_1h",
    "cache_read",
    "input_above_200k",
    "output_above_200k",
    "cache_write_5m_above_200k",
    "cache_write_1h_above_200k",
    "cache_read_above_200k",
    "long_context_threshold",
    "fast_multiplier",
)

# Name spellings that mean the same model (see PriceTable.lookup).
_CONTEXT_TAG = re.compile(r"\[[^\]]*\]$")  # "claude-opus-4-6[1m]"
_BEDROCK_PREFIX = re.compile(r"^(?:[a-z][a-z-]*\.)?anthropic\.")  # "us.anthropic.claude-…"
_DATE_SUFFIX = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")  # "-20250929", "-2025-08-07"
_VERSION_SUFFIX = re.compile(r"-v\d+(?::\d+)?$")  # Bedrock "-v1:0", Vertex "-v2"


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One model's prices in USD per token.

    The ``*_above_200k`` prices are None where the vendor has no tier. Like ccusage, they keep
    LiteLLM's 200k name for OpenAI's long-context prices too, which apply above
    ``long_context_threshold`` tokens instead (see the module docstring).
    """

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    input_above_200k: float | None = None
    output_above_200k: float | None = None
    cache_write_5m_above_200k: float | None = None
    cache_write_1h_above_200k: float | None = None
    cache_read_above_200k: float | None = None
    long_context_threshold: int | None = None
    fast_multiplier: float = 1.0
    _flat: bool = field(init=False, repr=False, compare=False)
    _base: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _long: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pairs = (
            (self.input, self.input_above_200k),
            (self.output, self.output_above_200k),
            (self.cache_write_5m, self.cache_write_5m_above_200k),
            (self.cache_write_1h, self.cache_write_1h_above_200k),
            (self.cache_read, self.cache_read_above_200k),
        )
        object.__setattr__(self, "_flat", all(tier is None for _, tier in pairs))
        object.__setattr__(self, "_base", tuple(base for base, _ in pairs))
        object.__setattr__(
            self, "_long", tuple(base if tier is None else tier for base, tier in pairs)
        )

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> ModelPrice:
        """Build from a table entry (keys of PRICE_KEYS), filling gaps with ccusage's defaults."""
        input_price = float(entry["input"])
        input_tier = entry.get("input_above_200k")
        one_hour_tier = entry.get("cache_write_1h_above_200k")
        if one_hour_tier is None and input_tier is not None:
            one_hour_tier = float(input_tier) * 2
        threshold = entry.get("long_context_threshold")

        def optional(key: str) -> float | None:
            value = entry.get(key)
            return None if value is None else float(value)

        return cls(
            input=input_price,
            output=float(entry["output"]),
            cache_write_5m=float(entry.get("cache_write_5m", input_price * 1.25)),
            cache_write_1h=float(entry.get("cache_write_1h", input_price * 2)),
            cache_read=float(entry.get("cache_read", input_price * 0.1)),
            input_above_200k=optional("input_above_200k"),
            output_above_200k=optional("output_above_200k"),
            cache_write_5m_above_200k=optional("cache_write_5m_above_200k"),
            cache_write_1h_above_200k=None if one_hour_tier is None else float(one_hour_tier),
            cache_read_above_200k=optional("cache_read_above_200k"),
            long_context_threshold=None if threshold is None else int(threshold),
            fast_multiplier=float(entry.get("fast_multiplier", 1.0)),
        )

    def cost(self, row: UsageRow) -> float:
        """The USD cost of one response's tokens at these prices, as the vendor bills it."""
        one_hour, five_minute = _cache_writes(row)
        if self._flat:
            rates = self._base
        else:
            context = row.input_tokens + row.cache_read_tokens + row.cache_creation_tokens
            if self.long_context_threshold is not None:
                threshold = self.long_context_threshold
            elif row.speed == "fast":
                threshold = None  # fast mode has one price across the full context window
            else:
                threshold = TIER_THRESHOLD
            # Past the threshold the whole request is priced at the long-context rates.
            long = threshold is not None and context > threshold
            rates = self._long if long else self._base
        total = _linear(row, five_minute, one_hour, rates)
        if row.speed == "fast":
            total *= self.fast_multiplier
        if row.web_search_requests:
            total += row.web_search_requests * WEB_SEARCH_USD
        return total

    def ccusage_cost(self, row: UsageRow) -> float:
        """The USD cost of one response's tokens at these prices, as ccusage 20.0.24 works it
        out: the 200k tier per token kind, web searches free."""
        one_hour, five_minute = _cache_writes(row)
        if self._flat:
            total = _linear(row, five_minute, one_hour, self._base)
        elif self.long_context_threshold is not None:
            context = row.input_tokens + row.cache_read_tokens + row.cache_creation_tokens
            # OpenAI prices the whole response at the long-context rates past the threshold.
            rates = self._long if context > self.long_context_threshold else self._base
            total = _linear(row, five_minute, one_hour, rates)
        else:
            total = (
                _tiered(row.input_tokens, self.input, self.input_above_200k)
                + _tiered(row.output_tokens, self.output, self.output_above_200k)
                + _tiered(five_minute, self.cache_write_5m, self.cache_write_5m_above_200k)
                + _tiered(one_hour, self.cache_write_1h, self.cache_write_1h_above_200k)
                + _tiered(row.cache_read_tokens, self.cache_read, self.cache_read_above_200k)
            )
        if row.speed == "fast":
            total *= self.fast_multiplier
        return total


def _cache_writes(row: UsageRow) -> tuple[int, int]:
    """A row's 1-hour and 5-minute cache writes (a 1-hour part larger than the whole: the
    whole, all of it 1-hour)."""
    one_hour = row.cache_creation_1h_tokens
    five_minute = row.cache_creation_tokens - one_hour
    if five_minute < 0:
        return row.cache_creation_tokens, 0
    return one_hour, five_minute


class PriceTable:
    """Prices per model name, with the date the table was taken and where it came from."""

    taken: str
    source: str

    def __init__(
        self, entries: Mapping[str, Mapping[str, Any]], *, taken: str, source: str
    ) -> None:
        self.taken = taken
        self.source = source
        self._prices = {name: ModelPrice.from_entry(entry) for name, entry in entries.items()}
        self._by_spelling = {_spelling(name): price for name, price in self._prices.items()}
        self._cache: dict[str, ModelPrice | None] = {}

    @classmethod
    def bundled(cls, overrides: Mapping[str, Mapping[str, float]] | None = None) -> PriceTable:
        """The table shipped with Stratavore, with the user's per-model overrides applied.

        An override names a model (any spelling ``lookup`` accepts, or a new model, which then
        needs at least ``input`` and ``output``) and replaces the given keys of PRICE_KEYS.
        A bad override raises ValueError with one sentence naming the model and the key.
        """
        document = _bundled_document()
        entries = {name: dict(entry) for name, entry in document["models"].items()}
        if overrides:
            _apply_overrides(entries, overrides)
        return cls(entries, taken=document["taken"], source=document["source"])

    def lookup(self, model: str) -> ModelPrice | None:
        """The prices for a model name as agents log it, or None when the table has no such model.

        Like ccusage, a name matches its table entry exactly or after removing what does not
        change the price: a provider path (``anthropic/``, ``openrouter/anthropic/``), a Bedrock
        region and vendor prefix (``us.anthropic.``), a context tag (``[1m]``), a date suffix
        (``-20250929``, ``@20250805``, ``-2025-08-07``) and a Bedrock or Vertex version suffix
        (``-v1:0``); dots and ``@`` count as dashes (``claude-opus-4.5``). A different version
        number never matches (``claude-opus-4-9`` is not ``claude-opus-4``). Results are cached.
        """
        try:
            return self._cache[model]
        except KeyError:
            pass
        price = self._prices.get(model)
        if price is None:
            key = next((c for c in _candidates(model) if c in self._by_spelling), None)
            price = None if key is None else self._by_spelling[key]
        self._cache[model] = price
        return price

    def cost(self, row: UsageRow, mode: str = "vendor") -> float | None:
        """The USD cost of a row's tokens in a cost mode: None if its model is unknown (0 if it
        has no tokens)."""
        try:
            price = self._cache[row.model]
        except KeyError:
            price = self.lookup(row.model)
        if price is None:
            return 0.0 if row.total_tokens == 0 and not row.web_search_requests else None
        return price.cost(row) if mode == "vendor" else price.ccusage_cost(row)


def row_cost(table: PriceTable, row: UsageRow, mode: str) -> float | None:
    """A row's cost in one of COST_MODES, the agent's own logged cost included.

    ``ccusage`` takes the logged cost when there is one, else computes it (ccusage's ``--mode
    auto``). ``vendor`` computes it, except for agents whose own figure is the better one
    (``OWN_COST_AGENTS``, ``REPORTED_SOURCES``); a logged cost stands in for an unknown model
    in both. None only when the model is unknown and there is no usable logged cost.
    """
    if mode not in COST_MODES:
        raise ValueError(f"Cost mode {mode!r} is not one of {', '.join(COST_MODES)}.")
    return row_costs(table, row)[COST_MODES.index(mode)]


def row_costs(table: PriceTable, row: UsageRow) -> tuple[float | None, float | None]:
    """``row_cost`` in each mode, (vendor, ccusage), working out what both share once: the
    two agree for every model without Anthropic's per-kind tier unless the row ran web
    searches or logged its own cost, so most rows are priced once."""
    logged = row.logged_cost
    if logged is not None and not (math.isfinite(logged) and logged >= 0):
        logged = None
    if logged is not None and (row.agent in OWN_COST_AGENTS or row.source in REPORTED_SOURCES):
        return logged, logged
    try:
        price = table._cache[row.model]
    except KeyError:
        price = table.lookup(row.model)
    if price is None:
        nothing = row.total_tokens == 0 and not row.web_search_requests
        return (0.0, 0.0) if nothing else (logged, logged)
    vendor = price.cost(row)
    if logged is not None:
        return vendor, logged
    if row.web_search_requests or not (price._flat or price.long_context_threshold is not None):
        return vendor, price.ccusage_cost(row)
    return vendor, vendor


def _linear(row: UsageRow, five_minute: int, one_hour: int, rates: tuple[float, ...]) -> float:
    input_price, output_price, write_5m, write_1h, read = rates
    return (
        row.input_tokens * input_price
        + row.output_tokens * output_price
        + five_minute * write_5m
        + one_hour * write_1h
        + row.cache_read_tokens * read
    )


def _tiered(tokens: int, base: float, above: float | None) -> float:
    if above is None or tokens <= TIER_THRESHOLD:
        return tokens * base
    return TIER_THRESHOLD * base + (tokens - TIER_THRESHOLD) * above


def _spelling(name: str) -> str:
    """A name without provider, region, context tag and separator differences."""
    name = _CONTEXT_TAG.sub("", name.strip().lower())
    name = _BEDROCK_PREFIX.sub("", name.rsplit("/", 1)[-1])
    return name.replace(".", "-").replace("@", "-")


def _candidates(name: str) -> Iterator[str]:
    """The spellings to try for a name: as is, then without each date or version suffix."""
    name = _spelling(name)
    yield name
    while True:
        shorter = _VERSION_SUFFIX.sub("", _DATE_SUFFIX.sub("", name))
        if shorter == name:
            return
        name = shorter
        yield name


def _apply_overrides(
    entries: dict[str, dict[str, Any]], overrides: Mapping[str, Mapping[str, float]]
) -> None:
    spellings = {_spelling(name): name for name in entries}
    for model, fields in overrides.items():
        if not isinstance(fields, Mapping):
            raise ValueError(f"Price override for model {model!r} must map price keys to numbers.")
        for key, value in fields.items():
            if key not in PRICE_KEYS:
                raise ValueError(
                    f"Price override for model {model!r} has an unknown key {key!r}; "
                    f"use one of {', '.join(PRICE_KEYS)}."
                )
            if not _valid_override(key, value):
                if key == "long_context_threshold":
                    wanted = "a whole number of tokens above 0"
                elif key == "fast_multiplier":
                    wanted = "a number above 0"
                else:
                    wanted = "a number of USD per token, at least 0"
                raise ValueError(
                    f"Price override {key!r} for model {model!r} must be {wanted}, not {value!r}."
                )
        target = model if model in entries else None
        if target is None:
            target = next((spellings[c] for c in _candidates(model) if c in spellings), None)
        if target is None:
            for key in ("input", "output"):
                if key not in fields:
                    raise ValueError(
                        f"Price override for new model {model!r} needs the key {key!r}."
                    )
            entries[model] = dict(fields)
            spellings[_spelling(model)] = model
        else:
            entries[target] = {**entries[target], **fields}


def _valid_override(key: str, value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if key == "long_context_threshold":
        return isinstance(value, int) and value > 0
    if key == "fast_multiplier":
        return math.isfinite(value) and value > 0
    return math.isfinite(value) and value >= 0


@cache
def _bundled_document() -> dict[str, Any]:
    text = resources.files("supervisor.usage").joinpath("prices.json").read_text("utf-8")
    return json.loads(text)
