"""supervisor.agents.limits: the agents' own limit messages, read from log lines and terminal
output.

Every expected instant is built here with ``datetime(..., tzinfo=ZoneInfo(...))``, never with
the module's own arithmetic. ``NOW`` is Saturday 22 November 2025, 19:30 in Berlin.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from supervisor.agents.limits import (
    LimitHit,
    describe_reset,
    from_claude_line,
    from_codex_line,
    from_output,
    scan_file_tail,
)

BERLIN = ZoneInfo("Europe/Berlin")
KATHMANDU = ZoneInfo("Asia/Kathmandu")  # +05:45
NEW_YORK = ZoneInfo("America/New_York")


def at(zone: ZoneInfo, *fields: int) -> float:
    """A wall-clock time in ``zone`` as epoch seconds."""
    return datetime(*fields, tzinfo=zone).timestamp()


def iso(epoch: float) -> str:
    """An epoch as the agents write timestamps: UTC with milliseconds and a Z."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


NOW = at(BERLIN, 2025, 11, 22, 19, 30)


def claude_line(text: str, written: float | None = NOW, **fields: Any) -> dict:
    """A Claude Code transcript line as 2.0.x writes an API error: a synthetic assistant
    message with zero usage and the error text as its only block."""
    line = {
        "parentUuid": "6f1c2b7e-7c1d-4b55-9b0e-2a8b1f0c9d11",
        "isSidechain": False,
        "userType": "external",
        "cwd": "/home/dev/shop",
        "sessionId": "0c3f5a9e-1d2b-4c8a-a0f1-77e2d9b4c310",
        "version": "2.0.50",
        "gitBranch": "main",
        "type": "assistant",
        "uuid": "b2e0a6d4-58c3-4f7e-9a61-3d0c8e5f2a47",
        "message": {
            "id": "5e8b1c0a-9d3f-4e27-b6a4-c1f0d2e3a987",
            "container": None,
            "model": "<synthetic>",
            "role": "assistant",
            "stop_reason": "stop_sequence",
            "stop_sequence": "",
            "type": "message",
            "usage": {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
                "service_tier": None,
            },
            "content": [{"type": "text", "text": text}],
        },
        "isApiErrorMessage": True,
    }
    if written is not None:
        line["timestamp"] = iso(written)
    line.update(fields)
    return line


def codex_line(payload: dict, written: float | None = NOW) -> dict:
    """A Codex rollout line: an ``event_msg`` with ``payload``."""
    line: dict[str, Any] = {"type": "event_msg", "payload": payload}
    if written is not None:
        line["timestamp"] = iso(written)
    return line


def token_count(primary: dict, secondary: dict) -> dict:
    return {
        "type": "token_count",
        "info": {
            "total_token_usage": {
                "input_tokens": 812345,
                "cached_input_tokens": 700032,
                "output_tokens": 20345,
                "reasoning_output_tokens": 9024,
                "total_tokens": 832690,
            },
            "last_token_usage": {
                "input_tokens": 40211,
                "cached_input_tokens": 39936,
                "output_tokens": 412,
                "reasoning_output_tokens": 128,
                "total_tokens": 40623,
            },
            "model_context_window": 272000,
        },
        "rate_limits": {"primary": primary, "secondary": secondary},
    }


# --- Claude Code transcript lines --------------------------------------------------------


def test_claude_epoch_after_bar_is_the_reset() -> None:
    hit = from_claude_line(claude_line("Claude AI usage limit reached|1763812800"), NOW, BERLIN)
    assert hit == LimitHit("claude", 1763812800.0, "Claude AI usage limit reached")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 19:30 in Berlin when written: 11pm is tonight.
        ("5-hour limit reached ∙ resets 11pm", at(BERLIN, 2025, 11, 22, 23, 0)),
        ("5-hour limit reached ∙ resets 11:30pm", at(BERLIN, 2025, 11, 22, 23, 30)),
        # 3pm has passed in Berlin: tomorrow.
        ("You've hit your limit · resets 3pm (Europe/Berlin)", at(BERLIN, 2025, 11, 23, 15, 0)),
        ("You've hit your session limit · resets 12:50am (America/Los_Angeles)",
         at(ZoneInfo("America/Los_Angeles"), 2025, 11, 23, 0, 50)),
        ("Weekly limit reached ∙ resets Nov 25, 4pm", at(BERLIN, 2025, 11, 25, 16, 0)),
        ("You've hit your weekly limit · resets Nov 27 at 9pm (America/New_York)",
         at(NEW_YORK, 2025, 11, 27, 21, 0)),
        # Saturday evening: the next Monday.
        ("Opus weekly limit reached ∙ resets Mon 9am", at(BERLIN, 2025, 11, 24, 9, 0)),
        ("Claude usage limit reached. Your limit will reset at 11pm (America/New_York).",
         at(NEW_YORK, 2025, 11, 22, 23, 0)),
        ("Limit reached · resets 11:30am (Asia/Kathmandu) · /upgrade to Max or turn on "
         "/extra-usage", at(KATHMANDU, 2025, 11, 23, 11, 30)),
    ],
)  # fmt: skip
def test_claude_reset_wordings(text: str, expected: float) -> None:
    hit = from_claude_line(claude_line(text), NOW, BERLIN)
    assert hit == LimitHit("claude", expected, text)


def test_claude_clock_time_in_the_callers_zone() -> None:
    # 19:30 in Berlin is 00:15 the next day in Kathmandu: 11:30pm is that evening.
    hit = from_claude_line(claude_line("5-hour limit reached ∙ resets 11:30pm"), NOW, KATHMANDU)
    assert hit is not None
    assert hit.resets_at == at(KATHMANDU, 2025, 11, 23, 23, 30)


def test_claude_clock_time_is_strictly_after_the_line() -> None:
    written = at(BERLIN, 2025, 11, 22, 23, 0)
    hit = from_claude_line(claude_line("5-hour limit reached ∙ resets 11pm", written), NOW, BERLIN)
    assert hit is not None
    assert hit.resets_at == at(BERLIN, 2025, 11, 23, 23, 0)


def test_claude_clock_time_counts_from_the_line_not_from_now() -> None:
    # Read again at 23:30, the line written at 19:30 still means 23:00 that day.
    line = claude_line("5-hour limit reached ∙ resets 11pm")
    hit = from_claude_line(line, at(BERLIN, 2025, 11, 22, 23, 30), BERLIN)
    assert hit is not None
    assert hit.resets_at == at(BERLIN, 2025, 11, 22, 23, 0)


def test_claude_line_without_timestamp_counts_from_now() -> None:
    now = at(BERLIN, 2025, 11, 22, 23, 30)
    hit = from_claude_line(claude_line("5-hour limit reached ∙ resets 11pm", None), now, BERLIN)
    assert hit is not None
    assert hit.resets_at == at(BERLIN, 2025, 11, 23, 23, 0)


def test_claude_weekday_already_past_today_is_next_week() -> None:
    written = at(BERLIN, 2025, 11, 24, 10, 0)  # Monday 10:00
    line = claude_line("Opus weekly limit reached ∙ resets Mon 9am", written)
    hit = from_claude_line(line, written, BERLIN)
    assert hit is not None
    assert hit.resets_at == at(BERLIN, 2025, 12, 1, 9, 0)


def test_claude_date_already_past_is_next_year() -> None:
    written = at(BERLIN, 2025, 12, 1, 12, 0)
    line = claude_line("Weekly limit reached ∙ resets Nov 25, 4pm", written)
    hit = from_claude_line(line, written, BERLIN)
    assert hit is not None
    assert hit.resets_at == at(BERLIN, 2026, 11, 25, 16, 0)


def test_claude_reset_across_spring_forward() -> None:
    # Saturday 29 March 2025, 23:30 CET; Berlin moves to CEST at 02:00 that night.
    written = at(BERLIN, 2025, 3, 29, 23, 30)
    hit = from_claude_line(claude_line("5-hour limit reached ∙ resets 9am", written), NOW, BERLIN)
    assert hit is not None
    assert hit.resets_at == datetime(2025, 3, 30, 7, 0, tzinfo=UTC).timestamp()


def test_claude_reset_in_the_spring_forward_gap() -> None:
    # 02:30 does not exist on 30 March 2025 in Berlin; read with the offset before the jump
    # (+01:00), it is 01:30 UTC, shown as 03:30 CEST.
    written = at(BERLIN, 2025, 3, 30, 0, 30)
    line = claude_line("5-hour limit reached ∙ resets 2:30am", written)
    hit = from_claude_line(line, NOW, BERLIN)
    assert hit is not None
    assert hit.resets_at == datetime(2025, 3, 30, 1, 30, tzinfo=UTC).timestamp()
    assert hit.resets_at == at(BERLIN, 2025, 3, 30, 3, 30)
    assert hit.resets_at > written


def test_claude_unknown_zone_name_falls_back_to_callers_zone() -> None:
    line = claude_line("You've hit your limit · resets 11pm (Mars/Olympus_Mons)")
    hit = from_claude_line(line, NOW, BERLIN)
    assert hit is not None
    assert hit.resets_at == at(BERLIN, 2025, 11, 22, 23, 0)


def test_claude_rate_limit_error_field_counts_too() -> None:
    line = claude_line("You've hit your limit · resets 11pm", isApiErrorMessage=False)
    line["error"] = "rate_limit"
    hit = from_claude_line(line, NOW, BERLIN)
    assert hit is not None
    assert hit.resets_at == at(BERLIN, 2025, 11, 22, 23, 0)


def test_claude_limit_without_reset_time() -> None:
    hit = from_claude_line(claude_line("Claude usage limit reached."), NOW, BERLIN)
    assert hit == LimitHit("claude", None, "Claude usage limit reached.")


def test_claude_bad_epoch_is_a_hit_without_reset_time() -> None:
    line = claude_line("Claude AI usage limit reached|99999999999999")
    assert from_claude_line(line, NOW, BERLIN) == LimitHit(
        "claude", None, "Claude AI usage limit reached"
    )


def test_claude_non_error_assistant_line_is_not_a_hit() -> None:
    line = claude_line("5-hour limit reached ∙ resets 11pm")
    del line["isApiErrorMessage"]
    assert from_claude_line(line, NOW, BERLIN) is None


def test_claude_other_api_error_is_not_a_hit() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    text = f"API Error: 529 {json.dumps(error)}"
    assert from_claude_line(claude_line(text), NOW, BERLIN) is None


def test_claude_user_line_quoting_the_words_is_not_a_hit() -> None:
    line = claude_line("why do I keep getting 'Claude AI usage limit reached|1763812800'?")
    line["type"] = "user"
    line["message"] = {"role": "user", "content": "Claude usage limit reached. what now?"}
    assert from_claude_line(line, NOW, BERLIN) is None


def test_claude_warning_before_the_limit_is_not_a_hit() -> None:
    line = claude_line("Approaching Opus usage limit · resets Mon 9am")
    assert from_claude_line(line, NOW, BERLIN) is None


@pytest.mark.parametrize(
    "line",
    [
        None,
        [],
        "Claude AI usage limit reached|1763812800",
        {},
        {"type": "assistant", "isApiErrorMessage": True},
        {"type": "assistant", "isApiErrorMessage": True, "message": "limit reached"},
        {"type": "assistant", "isApiErrorMessage": True, "message": {"content": "5-hour limit"}},
        {"type": "assistant", "isApiErrorMessage": True, "message": {"content": [1, None, []]}},
        {"type": "assistant", "isApiErrorMessage": True, "message": {"content": [{"text": 7}]}},
        claude_line("Weekly limit reached ∙ resets Feb 30, 4pm", timestamp=12),
    ],
)
def test_claude_garbage_never_raises(line: Any) -> None:
    hit = from_claude_line(line, NOW, BERLIN)
    assert hit is None or hit.resets_at is None


# --- Codex rollout lines ------------------------------------------------------------------


def test_codex_full_primary_window() -> None:
    line = codex_line(
        token_count(
            {"used_percent": 100.0, "window_minutes": 300, "resets_at": 1763852400},
            {"used_percent": 41.0, "window_minutes": 10080, "resets_at": 1764000000},
        )
    )
    assert from_codex_line(line, NOW) == LimitHit(
        "codex", 1763852400.0, "5-hour limit reached (100% used)"
    )


def test_codex_two_full_windows_wait_for_the_later_reset() -> None:
    line = codex_line(
        token_count(
            {"used_percent": 100.0, "window_minutes": 300, "resets_at": 1763852400},
            {"used_percent": 100.0, "window_minutes": 10080, "resets_at": 1764000000},
        )
    )
    assert from_codex_line(line, NOW) == LimitHit(
        "codex", 1764000000.0, "weekly limit reached (100% used)"
    )


def test_codex_resets_in_seconds_counts_from_the_line() -> None:
    written = NOW - 600
    line = codex_line(
        token_count(
            {"used_percent": 100.0, "window_minutes": 300, "resets_in_seconds": 7500},
            {"used_percent": 12.0, "window_minutes": 10080, "resets_in_seconds": 400000},
        ),
        written,
    )
    hit = from_codex_line(line, NOW)
    assert hit is not None
    assert hit.resets_at == written + 7500


def test_codex_resets_in_seconds_without_timestamp_counts_from_now() -> None:
    payload = token_count({"used_percent": 100, "resets_in_seconds": 60}, {})
    hit = from_codex_line(codex_line(payload, None), NOW)
    assert hit == LimitHit("codex", NOW + 60, "usage limit reached (100% used)")


def test_codex_windows_below_full_are_not_a_hit() -> None:
    line = codex_line(
        token_count(
            {"used_percent": 99.9, "window_minutes": 300, "resets_at": 1763852400},
            {"used_percent": 41.0, "window_minutes": 10080, "resets_at": 1764000000},
        )
    )
    assert from_codex_line(line, NOW) is None


def test_codex_usage_limit_error_counts_from_the_line() -> None:
    written = NOW - 60
    message = (
        "You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing) "
        "or try again in 2 hours 5 minutes."
    )
    hit = from_codex_line(codex_line({"type": "error", "message": message}, written), NOW)
    assert hit == LimitHit("codex", written + 7500, message)


@pytest.fixture
def kathmandu_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This machine's local zone set to Kathmandu for one test (Codex writes clock times in
    the machine's zone)."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is POSIX only")
    monkeypatch.setenv("TZ", "Asia/Kathmandu")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("kathmandu_local_time")
def test_codex_error_clock_time_is_in_the_machines_zone() -> None:
    written = at(KATHMANDU, 2025, 11, 23, 10, 0)
    message = "You've hit your usage limit. Try again at 3:45 PM."
    hit = from_codex_line(codex_line({"type": "error", "message": message}, written), NOW)
    assert hit is not None
    assert hit.resets_at == at(KATHMANDU, 2025, 11, 23, 15, 45)


@pytest.mark.parametrize(
    "line",
    [
        None,
        "event_msg",
        {},
        {"type": "event_msg"},
        {"type": "event_msg", "payload": {"type": "token_count", "info": None}},
        {"type": "event_msg", "payload": {"type": "token_count", "rate_limits": None}},
        {"type": "event_msg", "payload": {"type": "token_count", "rate_limits": [100]}},
        codex_line(token_count({"used_percent": "100"}, {"used_percent": True})),
        codex_line(token_count({"used_percent": float("nan")}, {"used_percent": None})),
        codex_line(token_count({"used_percent": 10**400}, {"used_percent": -(10**400)})),
        {"type": "event_msg", "payload": {"type": "error", "message": None}},
        {"type": "event_msg", "payload": {"type": "error", "message": "stream disconnected"}},
        {"type": "response_item", "payload": {"type": "message", "content": "usage limit"}},
    ],
)
def test_codex_garbage_is_not_a_hit(line: Any) -> None:
    assert from_codex_line(line, NOW) is None


@pytest.mark.parametrize(
    "window",
    [
        {"used_percent": 100, "resets_at": "tomorrow"},
        {"used_percent": 100, "resets_at": 1763852400000},  # milliseconds
        {"used_percent": 100, "resets_at": -5},
        {"used_percent": 100, "resets_in_seconds": float("inf")},
        {"used_percent": 100, "resets_in_seconds": 1e300},
        {"used_percent": 100, "resets_in_seconds": 10**400},
        {"used_percent": 100, "resets_at": 10**400},
    ],
)
def test_codex_bad_reset_is_a_hit_without_reset_time(window: dict) -> None:
    hit = from_codex_line(codex_line(token_count(window, {})), NOW)
    assert hit is not None
    assert hit.resets_at is None


def test_codex_bad_timestamp_counts_from_now() -> None:
    line = codex_line(token_count({"used_percent": 100, "resets_in_seconds": 60}, {}))
    line["timestamp"] = "yesterday"
    hit = from_codex_line(line, NOW)
    assert hit is not None
    assert hit.resets_at == NOW + 60


# --- Terminal output ----------------------------------------------------------------------


def test_output_claude_tui_with_ansi_and_carriage_returns() -> None:
    chunk = (
        "\x1b]0;✳ Refactor checkout\x07"
        "\x1b[2K\x1b[1A\x1b[2K\x1b[G● Updating tests for the cart total…\r\n"
        "\x1b[38;5;246m  ⎿  \x1b[39m\x1b[31m5-hour limit reached ∙ resets 11pm\x1b[39m\r\n"
        "\x1b[2m     /upgrade to increase your usage limit.\x1b[22m\r\n"
        "\r\x1b[2K> \x1b[7m \x1b[27m"
    )
    hit = from_output("claude", chunk, NOW, BERLIN)
    assert hit == LimitHit(
        "claude", at(BERLIN, 2025, 11, 22, 23, 0), "5-hour limit reached ∙ resets 11pm"
    )


def test_output_lines_placed_with_cursor_moves() -> None:
    chunk = "\x1b[12;1H\x1b[1m■\x1b[22m\x1b[1CYou've hit your usage limit.\x1b[13;3H> "
    hit = from_output("codex", chunk, NOW, BERLIN)
    assert hit == LimitHit("codex", None, "You've hit your usage limit.")


def test_output_claude_print_mode_raw_epoch() -> None:
    hit = from_output("claude", "Claude AI usage limit reached|1763812800\n", NOW, BERLIN)
    assert hit == LimitHit("claude", 1763812800.0, "Claude AI usage limit reached")


def test_output_claude_raw_epoch_inside_stream_json() -> None:
    event = {
        "type": "result",
        "subtype": "success",
        "is_error": True,
        "result": "Claude AI usage limit reached|1763812800",
        "session_id": "0c3f5a9e",
    }
    hit = from_output("claude", json.dumps(event), NOW, BERLIN)
    assert hit is not None
    assert hit.resets_at == 1763812800.0


def test_output_last_message_wins() -> None:
    chunk = (
        "⎿  5-hour limit reached ∙ resets 11pm\n"
        "> continue\n"
        "⎿  Weekly limit reached ∙ resets Nov 25, 4pm\n"
        "> \n"
    )
    hit = from_output("claude", chunk, NOW, BERLIN)
    assert hit is not None
    assert hit.resets_at == at(BERLIN, 2025, 11, 25, 16, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("■ You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing) "
         "or try again in 2 hours 5 minutes.", NOW + 2 * 3600 + 5 * 60),
        ("■ You've hit your usage limit. Try again in 45 minutes.", NOW + 45 * 60),
        ("ERROR: You've hit your usage limit. Limits reset every 5h and every week. "
         "Try again in 4 days 3 hours.", NOW + 4 * 86400 + 3 * 3600),
        ("■ You\u2019ve hit your usage limit. Visit https://chatgpt.com/codex/settings/usage to "
         "purchase more credits or try again at 3:45 PM.", at(KATHMANDU, 2025, 11, 23, 15, 45)),
        ("ERROR: You've hit your usage limit. Limits reset every 5h and every week. "
         "Try again at 15:45.",
         at(KATHMANDU, 2025, 11, 23, 15, 45)),
        ("■ You've hit your usage limit. Upgrade to Plus to continue using Codex "
         "(https://chatgpt.com/explore/plus), or try again at Nov 25th, 2025 3:45 PM.",
         at(KATHMANDU, 2025, 11, 25, 15, 45)),
        ("■ You've hit your usage limit. Try again later.", None),
    ],
)  # fmt: skip
def test_output_codex_wordings(text: str, expected: float | None) -> None:
    # NOW is 00:15 on Sunday in Kathmandu.
    hit = from_output("codex", f"\x1b[31m{text}\x1b[0m\r\n", NOW, KATHMANDU)
    assert hit == LimitHit("codex", expected, text.removeprefix("■ ").removeprefix("ERROR: "))


def test_output_codex_message_wrapped_by_the_terminal() -> None:
    chunk = (
        "■ You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing)"
        " or try again in 2\n"
        "hours 5 minutes.\n"
        "\n"
        "\u203a Explain this codebase\n"
    )
    hit = from_output("codex", chunk, NOW, BERLIN)
    assert hit is not None
    assert hit.resets_at == NOW + 7500
    assert hit.message.endswith("or try again in 2 hours 5 minutes.")


@pytest.mark.parametrize(
    ("text", "agent"),
    [
        ("■ You've hit your usage limit. Try again in 45 minutes.", "codex"),
        ("⎿  5-hour limit reached ∙ resets 11pm", "claude"),
        ("Claude AI usage limit reached|1763812800", "claude"),
    ],
)
def test_output_unknown_agent_tries_both(text: str, agent: str) -> None:
    hit = from_output("aider", text, NOW, BERLIN)
    assert hit is not None
    assert hit.agent == agent


@pytest.mark.parametrize("agent", ["claude", "codex", "aider"])
@pytest.mark.parametrize(
    "text",
    [
        "● Good: we reached the limit of the loop, so the retry stops there.",
        "  ⎿  Updated src/api/rate_limit.py: rate limit handling code now backs off",
        "RecursionError: maximum recursion depth exceeded; recursion limit reached",
        "Recursion limit reached",
        "  ⎿  Approaching usage limit · resets at 11pm",
        "You've used 90% of your weekly limit · resets Mon 9am",
        '● The agent prints "Claude usage limit reached" when the plan runs out.',
        "⚠ Heads up, you've used over 90% of your 5h limit. Run /status for a breakdown.",
        "",
        "\x1b[31m\x1b[0m\r\r\n",
    ],
)
def test_output_ordinary_text_is_not_a_hit(agent: str, text: str) -> None:
    assert from_output(agent, text, NOW, BERLIN) is None


def test_output_odd_input_never_raises() -> None:
    assert from_output("claude", None, NOW, BERLIN) is None  # type: ignore[arg-type]
    assert from_output("claude", "\x1b", NOW, BERLIN) is None
    assert from_output("claude", "5-hour limit reached ∙ resets 99pm", NOW, BERLIN) == LimitHit(
        "claude", None, "5-hour limit reached ∙ resets 99pm"
    )


# --- Files ----------------------------------------------------------------------------------


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return path


def test_scan_claude_transcript_limit_line_is_last(tmp_path: Path) -> None:
    user = claude_line("", NOW - 300, type="user", isApiErrorMessage=False)
    user["message"] = {"role": "user", "content": "Claude AI usage limit reached|1700000000?"}
    answer = claude_line("Claude AI usage limit reached|1700000000", NOW - 200)
    del answer["isApiErrorMessage"]  # the model quoting the words is not a limit
    path = write_jsonl(
        tmp_path / "projects" / "-home-dev-shop" / "0c3f5a9e.jsonl",
        [
            {"type": "summary", "summary": "Cart totals", "leafUuid": "b2e0a6d4"},
            user,
            answer,
            claude_line("Claude AI usage limit reached|1763812800", NOW - 100),
            '{"type":"assistant","message":',  # a line still being written
            claude_line("5-hour limit reached ∙ resets 11pm", NOW),
        ],
    )
    hit = scan_file_tail(path, "claude", NOW, BERLIN)
    assert hit == LimitHit(
        "claude", at(BERLIN, 2025, 11, 22, 23, 0), "5-hour limit reached ∙ resets 11pm"
    )


def test_scan_codex_rollout(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "sessions" / "2025" / "11" / "22" / "rollout-2025-11-22T19-00-00-0199.jsonl",
        [
            {"timestamp": iso(NOW - 900), "type": "session_meta",
             "payload": {"id": "0199", "cwd": "/home/dev/shop"}},
            {"timestamp": iso(NOW - 900), "type": "turn_context",
             "payload": {"model": "gpt-5-codex"}},
            codex_line(token_count({"used_percent": 100, "resets_at": 1763852400}, {}), NOW - 60),
            codex_line({"type": "agent_message", "message": "You've hit your usage limit."}),
        ],
    )  # fmt: skip
    hit = scan_file_tail(path, "codex", NOW, BERLIN)
    assert hit is not None
    assert hit.resets_at == 1763852400.0


def test_scan_reads_only_the_tail(tmp_path: Path) -> None:
    early = claude_line("Claude AI usage limit reached|1763812800", NOW - 3600)
    filler = claude_line("x" * 1000, NOW - 1800, isApiErrorMessage=False)
    path = write_jsonl(tmp_path / "big.jsonl", [early] + [filler] * 600)
    assert path.stat().st_size > 600_000
    assert scan_file_tail(path, "claude", NOW, BERLIN) is None
    assert scan_file_tail(path, "claude", NOW, BERLIN, max_bytes=10**7) is not None


def test_scan_tail_cut_inside_a_line_skips_that_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "cut.jsonl", [claude_line("5-hour limit reached ∙ resets 11pm")])
    size = path.stat().st_size
    assert scan_file_tail(path, "claude", NOW, BERLIN, max_bytes=size) is not None
    assert scan_file_tail(path, "claude", NOW, BERLIN, max_bytes=size - 1) is None


def test_scan_output_log(tmp_path: Path) -> None:
    path = tmp_path / "run-17.log"
    filler = "\x1b[2m  ⎿  Read 120 lines\x1b[22m\r\n" * 20_000
    path.write_bytes(
        (filler + "■ You've hit your usage limit. Try again in 45 minutes.\r\n").encode()
        + b"\xff\xfe broken utf-8\r\n"
    )
    hit = scan_file_tail(path, "codex", NOW, BERLIN)
    message = "You've hit your usage limit. Try again in 45 minutes."
    assert hit == LimitHit("codex", NOW + 45 * 60, message)


def test_scan_unknown_agent_reads_both_log_kinds(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            claude_line("5-hour limit reached ∙ resets 11pm"),
            codex_line(token_count({"used_percent": 100, "resets_at": 1763852400}, {})),
        ],
    )
    hit = scan_file_tail(path, "other", NOW, BERLIN)
    assert hit is not None
    assert hit.agent == "codex"


def test_scan_missing_or_unreadable_file(tmp_path: Path) -> None:
    assert scan_file_tail(tmp_path / "nope.jsonl", "claude", NOW, BERLIN) is None
    assert scan_file_tail(tmp_path, "claude", NOW, BERLIN) is None  # a directory
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    assert scan_file_tail(empty, "claude", NOW, BERLIN) is None


# --- describe_reset -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resets_at", "expected"),
    [
        (NOW + 2 * 3600 + 5 * 60, "resets at 21:35 (in 2 h 5 min)"),
        (at(BERLIN, 2025, 11, 22, 23, 0), "resets at 23:00 (in 3 h 30 min)"),
        (at(BERLIN, 2025, 11, 23, 9, 30), "resets tomorrow at 09:30 (in 14 h)"),
        (at(BERLIN, 2025, 11, 25, 16, 0), "resets Tue 25 Nov at 16:00 (in 3 days)"),
        (at(BERLIN, 2026, 1, 2, 8, 0), "resets Fri 2 Jan 2026 at 08:00 (in 41 days)"),
        (NOW + 20 * 60, "resets at 19:50 (in 20 min)"),
        (NOW + 30, "resets at 19:30 (in less than a minute)"),
        (NOW - 600, "resets at 19:20 (due now)"),
        (None, "reset time unknown"),
        (float("nan"), "reset time unknown"),
    ],
)
def test_describe_reset(resets_at: float | None, expected: str) -> None:
    assert describe_reset(resets_at, NOW, BERLIN) == expected


def test_describe_reset_in_another_zone() -> None:
    # 23:00 in Berlin is 03:45 the next morning in Kathmandu.
    resets_at = at(BERLIN, 2025, 11, 22, 23, 0)
    assert describe_reset(resets_at, NOW, KATHMANDU) == "resets at 03:45 (in 3 h 30 min)"


def test_scan_file_tail_since_a_run_started_ignores_earlier_lines_and_log_stamps(tmp_path):
    """A runner's log carries every run's output, each line after the supervisor's stamp: a
    resumed run must not be paused again by the limit its previous run hit."""
    log = tmp_path / "runner.log"
    log.write_text(
        "2026-11-22T10:00:00.000Z You've hit your usage limit. Try again in 45 minutes.\n"
        "2026-11-22T11:00:00.000Z ok: done\n"
    )
    at = datetime(2026, 11, 22, 10, 30, tzinfo=UTC).timestamp()
    zone = ZoneInfo("UTC")
    assert scan_file_tail(log, "codex", at, zone, since=at) is None
    hit = scan_file_tail(log, "codex", at, zone, since=at - 3600)
    assert hit is not None and hit.message.startswith("You've hit your usage limit.")


def test_scan_file_tail_since_drops_a_limit_the_session_carried_on_after(tmp_path):
    transcript = tmp_path / "s.jsonl"
    text = {"type": "text", "text": "Claude AI usage limit reached|1795000000"}
    error = {
        "type": "assistant", "isApiErrorMessage": True, "timestamp": "2026-11-22T10:00:00Z",
        "message": {"content": [text]},
    }  # fmt: skip
    reply = {"type": "assistant", "timestamp": "2026-11-22T10:05:00Z", "message": {"content": []}}
    transcript.write_text(json.dumps(error) + "\n" + json.dumps(reply) + "\n")
    zone, since = ZoneInfo("UTC"), datetime(2026, 11, 22, 9, tzinfo=UTC).timestamp()
    assert scan_file_tail(transcript, "claude", since, zone, since=since) is None
    assert scan_file_tail(transcript, "claude", since, zone).resets_at == 1795000000
