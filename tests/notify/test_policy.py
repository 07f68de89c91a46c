"""Channel policy: type globs, severity floor, quiet hours (held, errors pass) and the
coalescer that folds a storm into one summary. Pure functions: ``now`` is always given."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from supervisor.core.errors import ApiError
from supervisor.notify.channels import SUMMARY_TYPE, Message
from supervisor.notify.policy import (
    DEFAULT_TYPES,
    Batch,
    ChannelPolicy,
    Coalescer,
    Decision,
    Pending,
    QuietHours,
    Verdict,
    summarize,
    type_matches,
)

BERLIN = ZoneInfo("Europe/Berlin")


def at(*args: int, tz: ZoneInfo = BERLIN) -> float:
    return datetime(*args, tzinfo=tz).timestamp()


def msg(i: int, type: str = "runner.failed", severity: str = "error", **fields) -> Message:
    project = fields.pop("project", "demo")
    return Message(
        event_id=i,
        ts=fields.pop("ts", 1000.0 + i),
        type=type,
        severity=severity,
        title=fields.pop("title", f"runner {i} ({project}) {type.split('.')[-1]}"),
        body=fields.pop("body", ""),
        runner_id=fields.pop("runner_id", i),
        project=project,
        event_ids=(i,),
        **fields,
    )


def pending(i: int, due: float = 0.0, **fields) -> Pending:
    return Pending(key=100 + i, message=msg(i, **fields), due=due)


# --- types and severity -----------------------------------------------------------------------
def test_type_globs_with_exclusions_last_match_wins() -> None:
    patterns = ["runner.*", "!runner.running", "budget.*"]
    assert type_matches(patterns, "runner.failed")
    assert not type_matches(patterns, "runner.running")
    assert type_matches(patterns, "budget.spent")
    assert not type_matches(patterns, "supervisor.started")
    assert type_matches(["!runner.running", "runner.*"], "runner.running")
    assert not type_matches([], "runner.failed")


def test_default_policy_wants_outcomes_not_routine_steps() -> None:
    policy = ChannelPolicy()
    wanted = ["runner.exited", "runner.failed", "runner.fatal", "runner.lost"]
    wanted += ["runner.unresponsive", "budget.threshold", "budget.spent"]
    for event_type in wanted:
        assert policy.wants(event_type, "info"), event_type
    routine = ["runner.queued", "runner.starting", "runner.running", "runner.stopping"]
    routine += ["runner.stopped", "runner.backoff", "runner.responsive", "supervisor.started"]
    routine += ["budget.rollover", "usage.import_problem"]
    for event_type in routine:
        assert not policy.wants(event_type, "error"), event_type


def test_minimum_severity() -> None:
    policy = ChannelPolicy(types=("*",), min_severity="warning")
    assert not policy.wants("runner.exited", "info")
    assert policy.wants("runner.lost", "warning")
    assert policy.wants("runner.failed", "error")
    assert policy.wants("x", "critical")
    assert not policy.wants("x", "debug")


def test_decide_skips_what_the_channel_does_not_want() -> None:
    decision = ChannelPolicy().decide("runner.running", "info", now=5.0)
    assert decision.verdict is Verdict.SKIP


# --- quiet hours ------------------------------------------------------------------------------
NIGHT = ChannelPolicy(quiet_hours=QuietHours.parse("22:00-07:00", "Europe/Berlin"))


def test_quiet_hours_hold_non_errors_until_they_end() -> None:
    now = at(2024, 1, 15, 23, 30)
    decision = NIGHT.decide("runner.exited", "info", now)
    assert decision == Decision(Verdict.HOLD, at(2024, 1, 16, 7, 0), "quiet hours 22:00-07:00")
    after_midnight = NIGHT.decide("runner.lost", "warning", at(2024, 1, 16, 3, 0))
    assert after_midnight.not_before == at(2024, 1, 16, 7, 0)


def test_errors_go_through_quiet_hours() -> None:
    now = at(2024, 1, 15, 23, 30)
    assert NIGHT.decide("runner.failed", "error", now) == Decision(Verdict.SEND, now)
    assert NIGHT.decide("budget.spent", "critical", now).verdict is Verdict.SEND


def test_outside_quiet_hours_everything_is_sent_now() -> None:
    for hour, minute in [(7, 0), (12, 0), (21, 59)]:
        now = at(2024, 1, 15, hour, minute)
        assert NIGHT.decide("runner.exited", "info", now) == Decision(Verdict.SEND, now)


def test_quiet_hours_within_one_day() -> None:
    lunch = QuietHours.parse("12:00-13:30", "UTC")
    assert lunch.ends_at(at(2024, 5, 1, 12, 0, tz=UTC)) == at(2024, 5, 1, 13, 30, tz=UTC)
    assert lunch.ends_at(at(2024, 5, 1, 13, 30, tz=UTC)) is None
    assert lunch.ends_at(at(2024, 5, 1, 11, 59, tz=UTC)) is None


def test_quiet_hours_across_a_dst_change_end_at_local_wall_clock_time() -> None:
    # Europe/Berlin springs forward on 2024-03-31 and falls back on 2024-10-27.
    spring = NIGHT.quiet_hours.ends_at(at(2024, 3, 30, 23, 0))
    assert spring == datetime(2024, 3, 31, 5, 0, tzinfo=UTC).timestamp()  # 07:00 CEST
    autumn = NIGHT.quiet_hours.ends_at(at(2024, 10, 26, 23, 0))
    assert autumn == datetime(2024, 10, 27, 6, 0, tzinfo=UTC).timestamp()  # 07:00 CET


@pytest.fixture
def tokyo_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_quiet_hours_without_a_zone_use_the_system_local_time(tokyo_local_time) -> None:
    quiet = QuietHours.parse("22:00-07:00")
    tokyo = ZoneInfo("Asia/Tokyo")
    assert quiet.ends_at(at(2024, 1, 15, 23, 0, tz=tokyo)) == at(2024, 1, 16, 7, 0, tz=tokyo)
    assert quiet.ends_at(at(2024, 1, 15, 8, 0, tz=tokyo)) is None


@pytest.mark.parametrize(
    ("spec", "zone", "sentence"),
    [
        ("10pm-7am", None, "must look like 22:00-07:00"),
        ("25:00-07:00", None, "must look like 22:00-07:00"),
        ("22:00-22:00", None, "start and end at the same time"),
        ("22:00-07:00", "Mars/Olympus", "Unknown time zone 'Mars/Olympus'"),
    ],
)
def test_quiet_hours_refused_with_a_sentence(spec, zone, sentence) -> None:
    with pytest.raises(ApiError) as info:
        QuietHours.parse(spec, zone)
    assert sentence in info.value.message


def test_quiet_hours_ending_at_24_00() -> None:
    evening = QuietHours.parse("20:00-24:00", "UTC")
    assert str(evening) == "20:00-00:00"
    assert evening.ends_at(at(2024, 5, 1, 21, 0, tz=UTC)) == at(2024, 5, 2, 0, 0, tz=UTC)


# --- settings ---------------------------------------------------------------------------------
def test_policy_from_config_round_trip() -> None:
    config = {
        "types": ["runner.*", "!runner.running"],
        "min_severity": "warning",
        "quiet_hours": "22:30-06:45",
        "time_zone": "America/New_York",
        "max_messages": 3,
        "window_s": 120,
        "settle_s": 0.5,
    }
    policy = ChannelPolicy.from_config(config)
    assert policy.quiet_hours == QuietHours.parse("22:30-06:45", "America/New_York")
    assert policy.to_config() == {**config, "window_s": 120.0}
    assert ChannelPolicy.from_config(None) == ChannelPolicy()
    assert ChannelPolicy().types == DEFAULT_TYPES


def test_policy_from_config_reports_every_problem() -> None:
    with pytest.raises(ApiError) as info:
        ChannelPolicy.from_config(
            {"types": ["runner/*"], "min_severity": "loud", "max_messages": 0, "colour": 1}
        )
    assert info.value.message == (
        "Unknown policy setting 'colour' (known: max_messages, min_severity, quiet_hours, "
        "settle_s, time_zone, types, window_s). The type pattern 'runner/*' may hold only letters, "
        "digits, '.', '_', '-' and the wildcards * ? [ ] (with a leading ! to exclude). The "
        "minimum severity 'loud' must be one of debug, info, warning, error, critical. The "
        "policy's max_messages must be a whole number of at least 1."
    )


# --- coalescing -------------------------------------------------------------------------------
def test_under_the_limit_each_event_goes_out_alone_at_once() -> None:
    items = [pending(i) for i in range(5)]
    plan = Coalescer().plan(items, sent=[], now=2000.0)
    assert plan.batches == [Batch((p.key,), p.message) for p in items]
    assert plan.wake_at is None


def test_a_storm_becomes_one_summary() -> None:
    items = [pending(i, project="demo" if i % 3 else "api") for i in range(12)]
    plan = Coalescer().plan(list(reversed(items)), sent=[], now=2000.0)
    [batch] = plan.batches
    assert batch.is_summary
    assert batch.keys == tuple(p.key for p in items)  # oldest first
    summary = batch.message
    assert summary.title == "12 runners failed in demo, api"
    assert summary.type == SUMMARY_TYPE and summary.severity == "error"
    assert summary.event_ids == tuple(range(12))
    assert summary.data == {
        "count": 12,
        "types": {"runner.failed": 12},
        "projects": ["demo", "api"],
        "runner_ids": list(range(12)),
    }
    lines = summary.body.split("\n")
    assert lines[0] == "- runner 0 (api) failed"
    assert lines[-1] == "... and 2 more" and len(lines) == 11


def test_limit_counts_recent_sends_and_a_full_window_waits() -> None:
    coalescer = Coalescer(max_messages=5, window=60)
    sent = [1000.0, 1010.0, 1020.0, 1030.0, 1040.0]
    plan = coalescer.plan([pending(1)], sent, now=1050.0)
    assert plan.batches == [] and plan.wake_at == 1060.0  # when 1000.0 leaves the window
    # At 1060 one slot is free: the two now due go out as one summary.
    plan = coalescer.plan([pending(1), pending(2)], sent, now=1060.0)
    assert [b.keys for b in plan.batches] == [(101, 102)]
    assert plan.batches[0].message.title == "2 runners failed in demo"
    # Room for exactly as many as are due: sent on their own.
    plan = coalescer.plan([pending(1), pending(2)], sent[2:], now=1060.0)
    assert [b.keys for b in plan.batches] == [(101,), (102,)]


def test_more_due_than_room_folds_everything_due() -> None:
    plan = Coalescer().plan([pending(i) for i in range(3)], [990.0, 995.0, 999.0], now=1000.0)
    assert [b.keys for b in plan.batches] == [(100, 101, 102)]


def test_not_yet_due_deliveries_wait_and_set_the_wake_time() -> None:
    items = [pending(1, due=500.0), pending(2, due=3000.0), pending(3, due=2500.0)]
    plan = Coalescer().plan(items, [], now=1000.0)
    assert [b.keys for b in plan.batches] == [(101,)]
    assert plan.wake_at == 2500.0
    assert Coalescer().plan([pending(1, due=9.0)], [], now=1.0) == type(plan)([], 9.0)


def test_deliveries_held_over_quiet_hours_go_out_as_one_summary_when_they_end() -> None:
    morning = at(2024, 1, 16, 7, 0)
    held = []
    for i, hour in enumerate([22, 23, 23, 0, 1, 2, 4]):
        day = 15 if hour >= 22 else 16
        ts = at(2024, 1, day, hour, 10)
        decision = NIGHT.decide("runner.exited", "info", ts)
        assert decision.verdict is Verdict.HOLD
        held.append(Pending(i, msg(i, "runner.exited", "info", ts=ts), decision.not_before))
    assert Coalescer().plan(held, [], now=morning - 1).batches == []
    [batch] = Coalescer().plan(held, [], now=morning).batches
    assert batch.message.title == "7 runners exited in demo"


def test_summary_of_mixed_types_names_the_most_severe_first() -> None:
    messages = [msg(i, "runner.exited", "info", project="web") for i in range(4)]
    messages += [msg(10 + i, "runner.failed", "error", project="api") for i in range(2)]
    messages += [msg(20, "runner.lost", "warning", project="api", body="vanished\nmore")]
    messages += [msg(21, "budget.spent", "warning", project=None, title="budget exceeded")]
    summary = summarize(messages, max_listed=4)
    assert summary.title == "2 runners failed, 1 runner was lost and 5 other events in web, api"
    assert list(summary.data["types"]) == [
        "runner.failed",
        "runner.lost",
        "budget.spent",
        "runner.exited",
    ]
    assert summary.body.split("\n") == [
        "- runner 10 (api) failed",
        "- runner 11 (api) failed",
        "- runner 20 (api) lost: vanished",
        "- budget exceeded",
        "... and 4 more",
    ]
    assert summary.severity == "error"
    assert summary.project is None and summary.runner_id is None


def test_summary_of_one_project_and_runner_keeps_the_subject() -> None:
    summary = summarize([msg(1, runner_id=4), msg(2, "runner.fatal", runner_id=4)])
    assert (summary.project, summary.runner_id) == ("demo", 4)
    assert summary.title == "1 runner failed, 1 runner gave up restarting in demo"


def test_policy_builds_its_coalescer() -> None:
    policy = ChannelPolicy.from_config({"max_messages": 2, "window_s": 30})
    assert policy.coalescer() == Coalescer(2, 30.0)
