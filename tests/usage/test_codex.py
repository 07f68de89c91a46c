"""The Codex CLI parser (supervisor.usage.codex): cumulative counters, models, forks and
sub-agent replays, and where its rollouts are looked for.

Every rollout tree is written here in a temp dir; homes are always passed explicitly, so the
user's real ~/.codex is never read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from supervisor.usage import codex
from supervisor.usage.scan import FileMark, read_new
from tests.usage.lines import (
    TS,
    TS_EPOCH,
    keep_best,
    lines_bytes,
    write_lines,
)

# --- Codex ----------------------------------------------------------------------------------


def meta(thread: str, cwd: str = "/work/cx", **payload: Any) -> dict[str, Any]:
    return {
        "timestamp": TS,
        "type": "session_meta",
        "payload": {"id": thread, "cwd": cwd, "instructions": "be brief", **payload},
    }


def turn(model: str = "gpt-5.2-codex", cwd: str = "/work/cx") -> dict[str, Any]:
    return {"timestamp": TS, "type": "turn_context", "payload": {"model": model, "cwd": cwd}}


def usage(inp: int, cached: int, out: int, reasoning: int = 0) -> dict[str, int]:
    return {
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "output_tokens": out,
        "reasoning_output_tokens": reasoning,
        "total_tokens": inp + out,
    }


def tokens(
    total: dict[str, int] | None, last: dict[str, int] | None = None, ts: str = TS, **info: Any
) -> dict[str, Any]:
    body: dict[str, Any] | None = {"total_token_usage": total, "last_token_usage": last, **info}
    if total is None and last is None and not info:
        body = None
    return {
        "timestamp": ts,
        "type": "event_msg",
        "payload": {"type": "token_count", "info": body, "rate_limits": {"primary": None}},
    }


def parse_codex(lines: list[dict[str, Any]], context: dict[str, Any] | None = None) -> codex.Parsed:
    return codex.parse(
        lines_bytes(*lines), 0, "/x/rollout-1.jsonl", {} if context is None else context
    )


def test_codex_cumulative_counters_with_repeats_count_once() -> None:
    first, second = usage(1000, 200, 50, 10), usage(1600, 900, 80, 12)
    lines = [
        meta("thread-a"),
        turn(),
        tokens(first, first),
        tokens(first, first),  # a re-emit: same cumulative total
        tokens(None),  # info null: a rate-limit update
        tokens(second, usage(600, 700, 30, 2)),
        tokens(second, usage(600, 700, 30, 2)),
    ]
    parsed = parse_codex(lines)
    assert [(r.input_tokens, r.cache_read_tokens, r.output_tokens) for r in parsed.rows] == [
        (800, 200, 50),
        (0, 600, 30),  # cached is clamped to input: 700 > 600
    ]
    assert sum(r.total_tokens for r in parsed.rows) == 1600 + 80
    assert parsed.skipped == 0


def test_codex_cached_input_is_split_from_input() -> None:
    (row,) = parse_codex([meta("t"), turn(), tokens(usage(1000, 750, 40, 25))]).rows
    assert (row.input_tokens, row.cache_read_tokens, row.cache_creation_tokens) == (250, 750, 0)
    assert row.output_tokens == 40  # reasoning is part of output, not added
    assert row.total_tokens == 1040


def test_codex_model_from_turn_context_then_event_then_fallback() -> None:
    rows = parse_codex(
        [
            meta("t"),
            tokens(usage(10, 0, 1)),  # no turn_context yet
            turn("gpt-5.1-codex"),
            tokens(usage(20, 0, 2)),
            tokens(usage(30, 0, 3), model="o3-event"),
            tokens(usage(40, 0, 4)),
            turn("  "),  # blank: keeps the current model
            tokens(usage(50, 0, 5)),
        ]
    ).rows
    assert [r.model for r in rows] == ["gpt-5", "gpt-5.1-codex", "o3-event", "o3-event", "o3-event"]


def test_codex_row_fields_and_key() -> None:
    lines = [meta("thread-a", "/work/a"), turn(cwd="/work/a"), tokens(usage(10, 4, 3, 1))]
    (row,) = parse_codex(lines).rows
    assert (row.agent, row.session_id, row.cwd, row.sidechain, row.ts) == (
        "codex",
        "thread-a",
        "/work/a",
        False,
        TS_EPOCH,
    )
    assert row.key == "codex:thread-a:10:4:3:1:13"
    assert row.source == "/x/rollout-1.jsonl"


def test_codex_lenient_usage_fields_and_legacy_total() -> None:
    legacy = {
        "prompt_tokens": "100",
        "cached_tokens": 40,
        "completion_tokens": 9,
        "total_tokens": 0,
    }
    (row,) = parse_codex([meta("t"), tokens(legacy)]).rows
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (60, 40, 9)
    assert row.key.endswith(":100:40:9:0:109")


def test_codex_last_usage_only_when_there_is_no_cumulative_total() -> None:
    rows = parse_codex(
        [
            meta("t"),
            tokens(None, usage(10, 0, 1)),
            tokens(None, usage(20, 5, 2), ts="2026-03-29T07:00:01.000Z"),
        ]
    ).rows
    assert [(r.input_tokens, r.cache_read_tokens) for r in rows] == [(10, 0), (15, 5)]
    assert len({r.key for r in rows}) == 2


def test_codex_context_carries_across_two_refreshes(tmp_path: Path) -> None:
    path = tmp_path / "sessions" / "2026" / "03" / "29" / "rollout-a.jsonl"
    write_lines(path, [meta("thread-a"), turn("gpt-5.2"), tokens(usage(100, 0, 10))])
    data, start, _, mark = read_new(path, None)  # type: ignore[misc]
    first = codex.parse(data, start, str(path), mark.context).rows
    saved = FileMark.from_json(json.loads(json.dumps(mark.to_json())))  # stored between runs

    write_lines(path, [tokens(usage(100, 0, 10)), tokens(usage(250, 80, 30))], mode="a")
    data, start, restarted, mark2 = read_new(path, saved)  # type: ignore[misc]
    assert not restarted and start == saved.offset
    second = codex.parse(data, start, str(path), mark2.context).rows
    assert [(r.input_tokens + r.cache_read_tokens, r.output_tokens) for r in first + second] == [
        (100, 10),
        (150, 20),
    ]
    assert second[0].model == "gpt-5.2" and second[0].session_id == "thread-a"
    assert mark2.context["total"] == [250, 80, 30, 0, 280]


def test_codex_subagent_replay_dedupes_against_the_parent(tmp_path: Path) -> None:
    t1, t2 = usage(1000, 100, 200), usage(1500, 150, 300)
    parent = [meta("parent-x"), turn(), tokens(t1, t1), tokens(t2, usage(500, 50, 100))]
    later = "2026-03-29T09:00:00.000Z"
    child = [
        meta("child-y", source={"subagent": {"thread_spawn": {"parent_thread_id": "parent-x"}}}),
        meta("parent-x"),
        turn(),
        tokens(t1, t1, ts=later),  # the parent's history, replayed at spawn time
        tokens(t2, usage(500, 50, 100), ts=later),
        tokens(usage(100, 10, 20), usage(100, 10, 20), ts=later),  # its own counter
        tokens(usage(150, 15, 30), usage(50, 5, 10), ts=later),
    ]
    rows = parse_codex(parent).rows + parse_codex(child).rows
    best = keep_best(rows)
    assert len(rows) == 6 and len(best) == 4
    assert sum(r.total_tokens for r in best.values()) == 1500 + 300 + 150 + 30
    parents = [r for r in best.values() if r.session_id == "parent-x"]
    assert len(parents) == 2 and all(r.ts == TS_EPOCH and not r.sidechain for r in parents)
    own = [r for r in best.values() if r.session_id == "child-y"]
    assert [(r.input_tokens + r.cache_read_tokens, r.sidechain) for r in own] == [
        (100, True),
        (50, True),
    ]


def test_codex_forked_file_continues_the_parent_counter() -> None:
    t1 = usage(1000, 0, 100)
    parent = [meta("p"), turn(), tokens(t1, t1)]
    fork = [
        meta("f", forked_from_id="p"),
        meta("p"),
        turn(),
        tokens(t1, t1),
        tokens(usage(1300, 0, 150)),
    ]
    best = keep_best(parse_codex(parent).rows + parse_codex(fork).rows)
    assert sorted(r.total_tokens for r in best.values()) == [350, 1100]


def test_codex_bad_lines_are_skipped() -> None:
    lines = [meta("t"), tokens(usage(10, 0, 1), ts="yesterday")]
    data = lines_bytes(*lines) + b'{"type":"event_msg","payload":{"type":"token_count"\n'
    parsed = codex.parse(data, 0, "/x/r.jsonl", {})
    assert parsed.rows == [] and parsed.skipped == 2
    assert "timestamp 'yesterday'" in parsed.problems[0]


def test_codex_numeric_timestamps() -> None:
    rows = parse_codex(
        [meta("t"), tokens(usage(1, 0, 1), ts=1774767600), tokens(usage(2, 0, 2), ts=1774767600500)]  # type: ignore[arg-type]
    ).rows
    assert [r.ts for r in rows] == [TS_EPOCH, TS_EPOCH + 0.5]


def test_codex_homes_and_files(tmp_path: Path) -> None:
    assert codex.codex_homes({}, home=tmp_path) == [tmp_path / ".codex"]
    assert codex.codex_home({}, home=tmp_path) == tmp_path / ".codex"
    a, b = tmp_path / "a", tmp_path / "b"
    env = {"CODEX_HOME": f" {a} ,,~/b, "}
    assert codex.codex_homes(env, home=tmp_path) == [a, b]
    write_lines(a / "sessions" / "2026" / "03" / "29" / "rollout-1.jsonl", [])
    write_lines(a / "archived_sessions" / "2026" / "03" / "29" / "rollout-1.jsonl", [])
    write_lines(a / "archived_sessions" / "rollout-0.jsonl", [])
    write_lines(a / "history.jsonl", [])  # beside sessions/: not a rollout
    write_lines(b / "rollout-9.jsonl", [])  # a home without sessions/ is searched itself
    assert codex.codex_files(codex.codex_homes(env, home=tmp_path)) == [
        a / "sessions" / "2026" / "03" / "29" / "rollout-1.jsonl",
        a / "archived_sessions" / "rollout-0.jsonl",
        b / "rollout-9.jsonl",
    ]
