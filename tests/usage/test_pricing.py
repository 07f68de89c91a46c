"""The bundled price table and row costs in both cost modes, checked against vendor list
prices and ccusage.

Expected costs are worked out by hand from the vendors' published prices per million tokens
(``M``); the ccusage figures were produced by ccusage 20.0.24 ``--mode calculate`` on the same
tokens. Each rule of docs/usage.md's table has a test saying where ``vendor`` and ``ccusage``
differ, and by how much, or that they agree.
"""

from __future__ import annotations

import datetime
import json
from importlib import resources
from typing import Any

import pytest

from supervisor.usage.pricing import COST_MODES, PRICE_KEYS, PriceTable, row_cost, row_costs
from supervisor.usage.records import UsageRow

M = 1_000_000


def doc() -> dict[str, Any]:
    text = resources.files("supervisor.usage").joinpath("prices.json").read_text("utf-8")
    return json.loads(text)


def usage(
    model: str,
    input: int = 0,
    output: int = 0,
    cache_write: int = 0,
    cache_read: int = 0,
    *,
    one_hour: int = 0,
    speed: str | None = None,
    agent: str = "claude",
    logged_cost: float | None = None,
    web_searches: int = 0,
) -> UsageRow:
    return UsageRow(
        ts=0.0,
        agent=agent,
        model=model,
        input_tokens=input,
        output_tokens=output,
        cache_creation_tokens=cache_write,
        cache_read_tokens=cache_read,
        key=f"{model}:{input}:{output}",
        source="test",
        cache_creation_1h_tokens=one_hour,
        logged_cost=logged_cost,
        speed=speed,
        web_search_requests=web_searches,
    )


def both(table: PriceTable, row: UsageRow) -> tuple[float | None, float | None]:
    """A row's computed cost in each mode: (vendor, ccusage)."""
    return table.cost(row, "vendor"), table.cost(row, "ccusage")


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.bundled()


# --- the table itself ----------------------------------------------------------------------


def test_json_records_when_and_where_the_table_was_taken(table):
    data = doc()
    assert datetime.date.fromisoformat(data["taken"]) <= datetime.date.today()
    assert data["source"].startswith("https://github.com/BerriAI/litellm/blob/")
    assert data["source"].endswith("/model_prices_and_context_window.json")
    assert data["commit"] in data["source"]
    assert (table.taken, table.source) == (data["taken"], data["source"])


def test_every_entry_has_known_keys_and_sane_prices():
    for name, entry in doc()["models"].items():
        assert set(entry) <= {*PRICE_KEYS, "litellm_key"}, name
        assert entry["litellm_key"] and {"input", "output"} <= set(entry), name
        prices = {k: v for k, v in entry.items() if k != "litellm_key"}
        assert all(isinstance(v, int | float) and v >= 0 for v in prices.values()), name
        # ccusage prices a 1-hour cache write at 2 x input; the table must agree with it.
        if "cache_write_1h" in entry:
            assert entry["cache_write_1h"] == pytest.approx(2 * entry["input"]), name


@pytest.mark.parametrize(
    "model",
    [
        "claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6", "claude-opus-4-5-20251101",
        "claude-opus-4-1-20250805", "claude-opus-4-20250514", "claude-sonnet-4-6",
        "claude-sonnet-4-5-20250929", "claude-sonnet-4-20250514", "claude-haiku-4-5-20251001",
        "claude-3-7-sonnet-20250219", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet-20240620",
        "claude-3-5-haiku-20241022", "claude-3-opus-20240229", "claude-3-haiku-20240307",
        "gpt-5", "gpt-5-codex", "gpt-5.1", "gpt-5.1-codex", "gpt-5.1-codex-max",
        "gpt-5.1-codex-mini", "gpt-5.2", "gpt-5.2-codex", "gpt-5.3-codex", "gpt-5.4", "gpt-5.5",
        "gpt-5-mini", "gpt-5-nano", "o3", "o4-mini", "gpt-4.1", "codex-mini-latest",
        "gemini-2.5-pro", "gemini-2.5-flash",
    ],
)  # fmt: skip
def test_required_models_are_priced(table, model):
    assert table.lookup(model) is not None


# --- costs of known models -----------------------------------------------------------------


def test_sonnet_4_5_costs_what_ccusage_reports_in_both_modes(table):
    # $3 in, $15 out, $3.75 5-minute write, $0.30 read per M.
    row = usage("claude-sonnet-4-5-20250929", 17, 301, 100, 1000)
    assert both(table, row) == pytest.approx((0.005241, 0.005241), rel=1e-12)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # 1000 in, 2000 out, 5000 cache writes (3000 of them 1 h), 90000 cache reads.
        # Opus 4.1: $15 in, $75 out, $18.75 5m, $30 1h, $1.50 read.
        ("claude-opus-4-1-20250805", (1000 * 15 + 2000 * 75 + 2000 * 18.75 + 3000 * 30
                                      + 90000 * 1.5) / M),
        # Opus 4.6: $5, $25, $6.25, $10, $0.50.
        ("claude-opus-4-6", (1000 * 5 + 2000 * 25 + 2000 * 6.25 + 3000 * 10 + 90000 * 0.5) / M),
        # Haiku 4.5: $1, $5, $1.25, $2, $0.10.
        ("claude-haiku-4-5-20251001", (1000 + 2000 * 5 + 2000 * 1.25 + 3000 * 2
                                       + 90000 * 0.1) / M),
        # Claude 3.5 Haiku: $0.80, $4, $1, 1 h = 2 x input, $0.08.
        ("claude-3-5-haiku-20241022", (1000 * 0.8 + 2000 * 4 + 2000 * 1 + 3000 * 1.6
                                       + 90000 * 0.08) / M),
    ],
)  # fmt: skip
def test_claude_costs_match_list_prices(table, model, expected):
    row = usage(model, 1000, 2000, 5000, 90000, one_hour=3000)
    assert both(table, row) == pytest.approx((expected, expected), rel=1e-12)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # 50000 fresh input, 150000 cached input, 5000 output.
        ("gpt-5-codex", (50000 * 1.25 + 150000 * 0.125 + 5000 * 10) / M),
        ("gpt-5.2-codex", (50000 * 1.75 + 150000 * 0.175 + 5000 * 14) / M),
        ("o3", (50000 * 2 + 150000 * 0.5 + 5000 * 8) / M),
        ("gpt-4.1", (50000 * 2 + 150000 * 0.5 + 5000 * 8) / M),
        ("gemini-2.5-pro", (50000 * 1.25 + 150000 * 0.125 + 5000 * 10) / M),
        ("gemini-2.5-flash", (50000 * 0.3 + 150000 * 0.03 + 5000 * 2.5) / M),
    ],
)
def test_codex_and_gemini_costs_match_list_prices(table, model, expected):
    row = usage(model, 50000, 5000, 0, 150000, agent="codex")
    assert both(table, row) == pytest.approx((expected, expected), rel=1e-12)


def test_a_one_hour_part_larger_than_all_writes_is_capped_at_the_whole(table):
    row = usage("claude-sonnet-4-5", cache_write=1000, one_hour=5000)
    assert both(table, row) == pytest.approx((1000 * 6 / M, 1000 * 6 / M), rel=1e-12)


# --- ccusage: the 200k tier per token kind -------------------------------------------------


def test_ccusage_tier_prices_only_the_tokens_above_200k_of_each_kind(table):
    # Sonnet 4.5 above 200k: $6 in, $22.50 out, $7.50 5m, $12 1h, $0.60 read.
    # 250k input, 1000 output, 300k writes (120k of them 1 h), 400k reads: ccusage says 2.49.
    row = usage("claude-sonnet-4-5-20250929", 250_000, 1000, 300_000, 400_000, one_hour=120_000)
    expected = (
        200_000 * 3 + 50_000 * 6  # input
        + 1000 * 15  # output: below the tier
        + 180_000 * 3.75  # 5-minute writes: below the tier on their own
        + 120_000 * 6  # 1-hour writes
        + 200_000 * 0.3 + 200_000 * 0.6  # reads
    ) / M  # fmt: skip
    assert table.cost(row, "ccusage") == pytest.approx(expected, rel=1e-12)
    assert table.cost(row, "ccusage") == pytest.approx(2.49, rel=1e-12)


@pytest.mark.parametrize(
    ("fresh", "cached", "output", "ccusage"),
    [
        (0, 250_000, 0, 0.0625),  # all of it at the >200k $0.25 per M cached
        (190_000, 0, 20_000, 0.4375),  # the prompt decides: 190k is below, whatever the output
        (201_000, 0, 1000, 0.5175),  # $2.50 in and $15 out for every token
    ],
)
def test_ccusage_prices_gemini_prompts_over_200k_whole(table, fresh, cached, output, ccusage):
    # The figures of the ccusage 20.0.24 binary (`ccusage gemini daily`) on these tokens.
    row = usage("gemini-2.5-pro", fresh, output, 0, cached, agent="gemini")
    assert both(table, row) == pytest.approx((ccusage, ccusage), rel=1e-12)


def test_exactly_200k_tokens_stay_at_the_base_price(table):
    row = usage("claude-sonnet-4-20250514", 200_000)
    assert both(table, row) == pytest.approx((200_000 * 3 / M, 200_000 * 3 / M), rel=1e-12)


def test_a_model_without_a_tier_is_priced_linearly(table):
    row = usage("claude-opus-4-5", 300_000)
    assert both(table, row) == pytest.approx((300_000 * 5 / M, 300_000 * 5 / M), rel=1e-12)


# --- vendor rules, one test each (docs/usage.md "Vendor-exact cost") ------------------------


def test_rule_anthropic_long_context_prices_the_whole_request_past_200k_input(table):
    # Sonnet 4.5: $3 / $15 / $3.75 5m / $6 1h / $0.30 read; past 200k of input side
    # (input + reads + writes) $6 / $22.50 / $7.50 / $12 / $0.60 for every token.
    # 150k reads + 50k writes + 1 input = 200,001: no kind is above 200k on its own.
    row = usage("claude-sonnet-4-5", 1, 2000, 50_000, 150_000, one_hour=20_000)
    vendor, ccusage = both(table, row)
    assert vendor == pytest.approx(
        (1 * 6 + 2000 * 22.5 + 30_000 * 7.5 + 20_000 * 12 + 150_000 * 0.6) / M, rel=1e-12
    )
    assert ccusage == pytest.approx(
        (1 * 3 + 2000 * 15 + 30_000 * 3.75 + 20_000 * 6 + 150_000 * 0.3) / M, rel=1e-12
    )
    under = usage("claude-sonnet-4-5", 0, 2000, 50_000, 150_000, one_hour=20_000)  # 200,000
    assert both(table, under)[0] == pytest.approx(both(table, under)[1], rel=1e-12)


def test_rule_anthropic_long_context_over_ccusages_own_tier_example(table):
    # The ccusage test above (250k in, 1000 out, 300k writes, 120k of them 1 h, 400k reads):
    # every token at the long-context rates.
    row = usage("claude-sonnet-4-5-20250929", 250_000, 1000, 300_000, 400_000, one_hour=120_000)
    expected = (250_000 * 6 + 1000 * 22.5 + 180_000 * 7.5 + 120_000 * 12 + 400_000 * 0.6) / M
    assert table.cost(row, "vendor") == pytest.approx(expected, rel=1e-12)
    assert table.cost(row, "vendor") == pytest.approx(4.5525, rel=1e-12)  # ccusage: 2.49


def test_rule_cache_writes_are_priced_by_duration_in_both_modes(table):
    # Sonnet 4.5: 600 tokens at the 5-minute $3.75 (1.25 x $3), 400 at the 1-hour $6 (2 x).
    row = usage("claude-sonnet-4-5", cache_write=1000, one_hour=400)
    expected = (600 * 3.75 + 400 * 6) / M
    assert both(table, row) == pytest.approx((expected, expected), rel=1e-12)


def test_rule_anthropic_cache_prices_are_the_documented_multiples_of_input():
    # 1.25 x, 2 x and 0.1 x input, except where Anthropic's page lists rounded figures: Claude
    # 3 Haiku's 5-minute write is $0.30 and its read $0.03 per MTok ($0.25 input).
    page = {"claude-3-haiku": {"cache_write_5m": 3e-07, "cache_read": 3e-08}}
    for name, entry in doc()["models"].items():
        if name.startswith("claude-"):
            listed = page.get(name, {})
            for key, multiple in (("cache_write_5m", 1.25), ("cache_read", 0.1)):
                wanted = listed.get(key, multiple * entry["input"])
                assert entry[key] == pytest.approx(wanted, rel=1e-9), (name, key)
            if "cache_write_1h" in entry:
                assert entry["cache_write_1h"] == pytest.approx(2 * entry["input"]), name


def test_rule_fast_mode_below_200k_multiplies_the_whole_cost_in_both_modes(table):
    standard = usage("claude-opus-4-6", 1000, 2000, 5000, 90000, one_hour=3000)
    fast = usage("claude-opus-4-6", 1000, 2000, 5000, 90000, one_hour=3000, speed="fast")
    assert both(table, standard) == pytest.approx((0.1425, 0.1425), rel=1e-12)  # ccusage: 0.1425
    assert both(table, fast) == pytest.approx((0.855, 0.855), rel=1e-12)  # ccusage: 0.855


def test_rule_fast_mode_has_no_long_context_premium():
    # A model with both a 200k tier and fast mode (Sonnet 4.5's tier, a 6x fast price):
    # fast mode prices the whole context at 6 x the standard rates; ccusage multiplies its
    # tiered figure.
    table = PriceTable.bundled({"claude-sonnet-4-5": {"fast_multiplier": 6}})
    row = usage("claude-sonnet-4-5", 250_000, 1000, speed="fast")
    vendor, ccusage = both(table, row)
    assert vendor == pytest.approx(6 * (250_000 * 3 + 1000 * 15) / M, rel=1e-12)
    assert ccusage == pytest.approx(6 * (200_000 * 3 + 50_000 * 6 + 1000 * 15) / M, rel=1e-12)


def test_rule_web_searches_cost_ten_dollars_a_thousand(table):
    plain = usage("claude-sonnet-4-5", 17, 301, 100, 1000)
    searched = usage("claude-sonnet-4-5", 17, 301, 100, 1000, web_searches=3)
    assert both(table, searched) == pytest.approx((0.005241 + 0.03, 0.005241), rel=1e-12)
    assert both(table, plain) == pytest.approx((0.005241, 0.005241), rel=1e-12)


def test_rule_codex_cached_input_is_part_of_input_and_reasoning_part_of_output(table):
    # What the Codex parser makes of input 200k (150k of it cached) and output 5000 (4000 of
    # it reasoning): 50k fresh input, 150k cached reads, 5000 output; both modes agree.
    row = usage("gpt-5-codex", 50_000, 5000, 0, 150_000, agent="codex")
    expected = (50_000 * 1.25 + 150_000 * 0.125 + 5000 * 10) / M
    assert both(table, row) == pytest.approx((expected, expected), rel=1e-12)


def test_rule_openai_long_context_reprices_the_whole_response_past_272k_in_both_modes(table):
    # gpt-5.4: $2.50 in, $0.25 cached, $15 out; past 272k of context $5, $0.50, $22.50.
    at_threshold = usage("gpt-5.4", 22_000, 1000, 0, 250_000, agent="codex")
    below = (22_000 * 2.5 + 250_000 * 0.25 + 1000 * 15) / M
    assert both(table, at_threshold) == pytest.approx((below, below), rel=1e-12)
    past = usage("gpt-5.4", 22_001, 1000, 0, 250_000, agent="codex")
    above = (22_001 * 5 + 250_000 * 0.5 + 1000 * 22.5) / M
    assert both(table, past) == pytest.approx((above, above), rel=1e-12)


def test_rule_gemini_long_prompts_price_the_whole_request_at_the_tier_in_both_modes(table):
    # Gemini 2.5 Pro: $1.25 in, $0.125 cached, $10 out; prompts over 200k: $2.50, $0.25, $15.
    # No kind is above 200k on its own: the prompt (input with cached) is.
    row = usage("gemini-2.5-pro", 60_000, 4000, 0, 150_000, agent="gemini")
    expected = (60_000 * 2.5 + 150_000 * 0.25 + 4000 * 15) / M
    assert both(table, row) == pytest.approx((expected, expected), rel=1e-12)


@pytest.mark.parametrize(
    ("model", "agent", "multiplier"),
    [
        ("claude-opus-4-8", "claude", 2.0),
        ("claude-sonnet-4-5-20250929", "claude", 1.0),  # no fast price: unchanged
        ("gpt-5.5", "codex", 2.5),
        ("gpt-5.3-codex", "codex", 2.0),
        ("gpt-5-codex", "codex", 1.0),  # as ccusage 20.0.24: no multiplier, no change
    ],
)
def test_fast_multiplier_per_model(table, model, agent, multiplier):
    standard = usage(model, 1000, 2000, 0, 9000, agent=agent)
    fast = usage(model, 1000, 2000, 0, 9000, agent=agent, speed="fast")
    for mode in COST_MODES:
        expected = multiplier * table.cost(standard, mode)
        assert table.cost(fast, mode) == pytest.approx(expected, rel=1e-12)


# --- name matching -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("CLAUDE-SONNET-4-5", "claude-sonnet-4-5"),
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("openrouter/anthropic/claude-opus-4.5", "claude-opus-4-5"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
        ("claude-opus-4-1@20250805", "claude-opus-4-1"),
        ("vertex_ai/claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
        ("claude-opus-4-6[1m]", "claude-opus-4-6"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("openai/gpt-5.1-codex", "gpt-5.1-codex"),
        ("o3-2025-04-16", "o3"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("gemini/gemini-2.5-pro", "gemini-2.5-pro"),
    ],
)
def test_dated_and_prefixed_names_find_their_model(table, name, canonical):
    assert table.lookup(name) is not None
    assert table.lookup(name) is table.lookup(canonical)


@pytest.mark.parametrize(
    "name",
    ["claude-opus-4-9", "claude-opus-5", "gpt-5.7", "gpt-5-pro", "<synthetic>", "", "o3-turbo"],
)
def test_unknown_models_are_not_guessed(table, name):
    assert table.lookup(name) is None
    assert table.cost(usage(name, 1000)) is None


def test_a_version_number_is_never_mistaken_for_a_date(table):
    # Anthropic dates have 8 digits; a trailing version is a different model and price.
    assert table.lookup("claude-opus-4-5-20251101").input == 5e-06
    assert table.lookup("claude-opus-4-20250514").input == 1.5e-05
    assert table.lookup("gpt-5.1-codex-mini").input != table.lookup("gpt-5.1-codex").input


def test_lookups_are_cached(table):
    first = table.lookup("us.anthropic.claude-haiku-4-5-20251001-v1:0")
    assert first is table.lookup("us.anthropic.claude-haiku-4-5-20251001-v1:0")
    assert first is table.lookup("claude-haiku-4-5")


def test_rows_without_tokens_cost_nothing_even_for_an_unknown_model(table):
    # Claude Code's "<synthetic>" API-error lines carry a zero usage.
    assert table.cost(usage("<synthetic>")) == 0.0


# --- overrides -----------------------------------------------------------------------------


def test_an_override_replaces_only_the_keys_it_names():
    table = PriceTable.bundled({"claude-sonnet-4-5": {"input": 4e-06}})
    price = table.lookup("claude-sonnet-4-5-20250929")
    assert (price.input, price.output, price.cache_read) == (4e-06, 1.5e-05, 3e-07)
    assert PriceTable.bundled().lookup("claude-sonnet-4-5").input == 3e-06  # no leak


def test_an_override_may_use_any_spelling_of_the_model():
    table = PriceTable.bundled({"claude-opus-4.5": {"fast_multiplier": 3}})
    assert table.lookup("claude-opus-4-5-20251101").fast_multiplier == 3.0


def test_an_override_adds_a_new_model_with_ccusage_defaults():
    table = PriceTable.bundled({"local-coder": {"input": 1e-06, "output": 2e-06}})
    price = table.lookup("local-coder")
    assert price is not None
    assert (price.input, price.output, price.fast_multiplier) == (1e-06, 2e-06, 1.0)
    assert price.cache_write_5m == pytest.approx(1.25e-06, rel=1e-12)
    assert price.cache_write_1h == pytest.approx(2e-06, rel=1e-12)
    assert price.cache_read == pytest.approx(1e-07, rel=1e-12)
    assert price.input_above_200k is None and price.long_context_threshold is None
    row = usage("local-coder", 1000, 100, 0, 1000)
    assert table.cost(row) == pytest.approx((1000 * 1 + 100 * 2 + 1000 * 0.1) / M, rel=1e-12)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"claude-sonnet-4-5": {"inptu": 1e-06}},
         "Price override for model 'claude-sonnet-4-5' has an unknown key 'inptu'; use one of "
         "input, output, cache_write_5m, cache_write_1h, cache_read, input_above_200k, "
         "output_above_200k, cache_write_5m_above_200k, cache_write_1h_above_200k, "
         "cache_read_above_200k, long_context_threshold, fast_multiplier."),
        ({"gpt-5": {"input": -1e-06}},
         "Price override 'input' for model 'gpt-5' must be a number of USD per token, "
         "at least 0, not -1e-06."),
        ({"gpt-5": {"output": "3"}},
         "Price override 'output' for model 'gpt-5' must be a number of USD per token, "
         "at least 0, not '3'."),
        ({"gpt-5": {"cache_read": True}},
         "Price override 'cache_read' for model 'gpt-5' must be a number of USD per token, "
         "at least 0, not True."),
        ({"gpt-5": {"input": float("nan")}},
         "Price override 'input' for model 'gpt-5' must be a number of USD per token, "
         "at least 0, not nan."),
        ({"claude-opus-4-6": {"fast_multiplier": 0}},
         "Price override 'fast_multiplier' for model 'claude-opus-4-6' must be a number "
         "above 0, not 0."),
        ({"gpt-5.4": {"long_context_threshold": 1.5}},
         "Price override 'long_context_threshold' for model 'gpt-5.4' must be a whole number "
         "of tokens above 0, not 1.5."),
        ({"local-coder": {"input": 1e-06}},
         "Price override for new model 'local-coder' needs the key 'output'."),
        ({"gpt-5": 1e-06}, "Price override for model 'gpt-5' must map price keys to numbers."),
    ],
)  # fmt: skip
def test_a_bad_override_is_refused_in_one_sentence(overrides, message):
    with pytest.raises(ValueError) as info:
        PriceTable.bundled(overrides)
    assert str(info.value) == message


# --- cost modes ----------------------------------------------------------------------------


def test_cost_modes_are_vendor_then_ccusage():
    assert COST_MODES == ("vendor", "ccusage")


def test_ccusage_prefers_a_logged_cost_and_vendor_computes_it(table):
    computed = table.cost(usage("claude-sonnet-4-5", 17, 301, 100, 1000))
    logged = usage("claude-sonnet-4-5", 17, 301, 100, 1000, logged_cost=0.5)
    assert row_cost(table, logged, "ccusage") == 0.5  # ccusage --mode auto
    assert row_cost(table, logged, "vendor") == pytest.approx(computed, rel=1e-12)
    bare = usage("claude-sonnet-4-5", 17, 301, 100, 1000)
    assert row_cost(table, bare, "ccusage") == pytest.approx(computed, rel=1e-12)


def test_a_cost_reported_over_the_api_wins_in_both_modes(table):
    for source in ("api", "heartbeat"):
        row = usage("claude-sonnet-4-5", 1_500_000, logged_cost=2.5)
        row.source = source
        assert [row_cost(table, row, mode) for mode in COST_MODES] == [2.5, 2.5]
    unpriced = usage("claude-sonnet-4-5", 1_500_000)
    unpriced.source = "api"
    assert row_cost(table, unpriced, "vendor") == pytest.approx(1_500_000 * 6 / M)


def test_aiders_own_cost_wins_in_both_modes(table):
    row = usage("claude-sonnet-4-5", 12_000, 1200, agent="aider", logged_cost=0.02)
    assert [row_cost(table, row, mode) for mode in COST_MODES] == [0.02, 0.02]
    unpriced = usage("claude-sonnet-4-5", 12_000, 1200, agent="aider")
    assert row_cost(table, unpriced, "vendor") == pytest.approx((36_000 + 18_000) / M)


@pytest.mark.parametrize(
    "row",
    [
        usage("claude-opus-4-6", 1000, 2000, 5000, 90000, one_hour=3000),  # flat
        usage("claude-opus-4-6", 300_000, 2000, speed="fast", web_searches=2),  # flat, searched
        usage("claude-sonnet-4-5", 150_000, 2000, 50_000, 150_000),  # per-kind tier
        usage("gpt-5.4", 300_000, 1000, 0, 250_000, agent="codex", speed="fast"),  # threshold
        usage("gemini-2.5-pro", 210_000, 1000, agent="gemini"),  # threshold
    ],
)
def test_row_costs_prices_once_only_where_both_modes_agree(table, row):
    assert row_costs(table, row) == pytest.approx(both(table, row), rel=1e-12)


def test_an_unknown_model_costs_none_unless_a_cost_was_logged(table):
    bare = usage("claude-opus-9", 1000)
    logged = usage("claude-opus-9", 1000, logged_cost=0.25)
    assert [row_cost(table, bare, mode) for mode in COST_MODES] == [None, None]
    assert [row_cost(table, logged, mode) for mode in COST_MODES] == [0.25, 0.25]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.01])
def test_an_unusable_logged_cost_counts_as_none(table, bad):
    row = usage("claude-sonnet-4-5", 17, 301, 100, 1000, logged_cost=bad)
    assert row_cost(table, row, "ccusage") == pytest.approx(0.005241, rel=1e-12)
    assert row_cost(table, usage("claude-opus-9", 17, logged_cost=bad), "ccusage") is None


def test_an_unknown_mode_is_refused(table):
    with pytest.raises(ValueError, match="Cost mode 'auto' is not one of vendor, ccusage"):
        row_cost(table, usage("gpt-5", 1), "auto")
