"""Plan limits as the agents report them: Claude Code's status-line ``rate_limits``, Codex's
windows by their length, the account a run uses, and the line people read."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from supervisor.agents import planlimits
from supervisor.agents.planlimits import Window

BERLIN = ZoneInfo("Europe/Berlin")


def test_claude_status_line_windows_read_epoch_and_iso_resets():
    found = planlimits.from_claude({
        "five_hour": {"used_percentage": 63, "resets_at": 1_900_000_000},
        "seven_day": {"used_percentage": 12.5, "resets_at": "2030-03-17T17:46:40Z"},
    })  # fmt: skip
    assert found == [
        Window("five_hour", 63.0, 1_900_000_000.0),
        Window("seven_day", 12.5, 1_900_000_000.0),
    ]


def test_claude_status_line_without_rate_limits_is_unknown_not_zero():
    assert planlimits.from_claude(None) == []
    assert planlimits.from_claude({"five_hour": {"resets_at": 1_900_000_000}}) == []
    assert planlimits.from_claude({"five_hour": {"used_percentage": True}}) == []
    bad_reset = planlimits.from_claude({"five_hour": {"used_percentage": 5, "resets_at": 7}})
    assert bad_reset == [Window("five_hour", 5.0, None)]


def test_codex_windows_are_classified_by_their_minutes_not_their_position():
    swapped = {
        "primary": {"used_percent": 40.0, "window_minutes": 10080, "resets_at": 1_900_000_000},
        "secondary": {"used_percent": 90.0, "window_minutes": 300, "resets_in_seconds": 600},
    }
    found = {w.name: w for w in planlimits.from_codex(swapped, written=1_800_000_000)}
    assert found == {
        "seven_day": Window("seven_day", 40.0, 1_900_000_000.0),
        "five_hour": Window("five_hour", 90.0, 1_800_000_600.0),
    }


def test_codex_windows_of_other_lengths_are_named_by_minutes():
    found = planlimits.from_codex(
        {"primary": {"used_percent": 3, "window_minutes": 90},
         "secondary": {"used_percent": 3}},  # no length: left out
        written=1_800_000_000,
    )  # fmt: skip
    assert found == [Window("90m", 3.0, None)]
    assert [planlimits.label(n) for n in ("90m", "2880m", "120m")] == [
        "90-minute", "2-day", "2-hour",
    ]  # fmt: skip


def test_the_line_names_the_reset_in_local_time_and_the_day_when_not_today():
    now = datetime(2026, 12, 8, 18, 0, tzinfo=BERLIN).timestamp()
    tonight = datetime(2026, 12, 8, 23, 0, tzinfo=BERLIN).timestamp()
    monday = datetime(2026, 12, 14, 9, 0, tzinfo=BERLIN).timestamp()
    assert planlimits.describe("five_hour", 63.4, tonight, BERLIN, now) == (
        "5-hour: 63 %, resets 23:00"
    )
    assert planlimits.describe("seven_day", 12, monday, BERLIN, now) == (
        "7-day: 12 %, resets Mon 09:00"
    )
    assert planlimits.describe("five_hour", 63, None, BERLIN, now) == "5-hour: 63 %"
    past = datetime(2026, 12, 8, 17, 0, tzinfo=BERLIN).timestamp()
    assert planlimits.describe("five_hour", 63, past, BERLIN, now) == (
        "5-hour: reset at 17:00 (was 63 %)"
    )
