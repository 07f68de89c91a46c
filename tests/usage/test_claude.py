"""The Claude Code parser (supervisor.usage.claude): its roots and files, and which lines count,
as ccusage counts them.

Every transcript tree is written here in a temp dir; env and home are always passed
explicitly, so the user's real ~/.claude is never read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from supervisor.usage import claude
from supervisor.usage.records import UsageRow
from supervisor.usage.scan import read_new
from tests.usage.lines import (
    TS,
    TS_EPOCH,
    assistant,
    dump,
    keep_best,
    lines_bytes,
    parse_claude,
    write_lines,
)


def user_line(text: str = "hi") -> dict[str, Any]:
    return {
        "type": "user",
        "sessionId": "sess-1",
        "cwd": "/work/proj",
        "timestamp": TS,
        "message": {"role": "user", "content": [{"type": "tool_result", "content": text}]},
        # a tool result that holds JSON with a "usage" object: not a usage line
        "toolUseResult": {"stdout": "ok", "usage": {"input_tokens": 1}},
    }



# --- Claude: roots and files ----------------------------------------------------------------


def make_root(path: Path) -> Path:
    (path / "projects").mkdir(parents=True)
    return path


def test_claude_roots_default_to_both_config_dirs(tmp_path: Path) -> None:
    xdg = make_root(tmp_path / ".config" / "claude")
    legacy = make_root(tmp_path / ".claude")
    assert claude.claude_roots({}, home=tmp_path) == [xdg, legacy]
    (tmp_path / "custom").mkdir()
    custom = make_root(tmp_path / "custom" / "claude")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "custom")}
    assert claude.claude_roots(env, home=tmp_path) == [custom, legacy]


def test_claude_roots_only_those_that_exist(tmp_path: Path) -> None:
    legacy = make_root(tmp_path / ".claude")
    (tmp_path / ".config" / "claude").mkdir(parents=True)  # no projects/: not a root
    assert claude.claude_roots({}, home=tmp_path) == [legacy]
    assert claude.claude_roots({}, home=tmp_path / "nobody") == []


def test_claude_config_dir_lists_several_roots(tmp_path: Path) -> None:
    one = make_root(tmp_path / "one")
    two = make_root(tmp_path / "two")
    tilde = make_root(tmp_path / "dot")
    make_root(tmp_path / ".claude")  # ignored when CLAUDE_CONFIG_DIR is set
    env = {"CLAUDE_CONFIG_DIR": f" {one} ,, ,{two}/projects,~/dot,{tmp_path / 'missing'},{one}, "}
    assert claude.claude_roots(env, home=tmp_path) == [one, two, tilde]


def test_claude_files_include_subagent_transcripts(tmp_path: Path) -> None:
    root = make_root(tmp_path / ".claude")
    main = root / "projects" / "-work-proj" / "sess-1.jsonl"
    sub = root / "projects" / "-work-proj" / "sess-1" / "subagents" / "agent-a1.jsonl"
    write_lines(main, [assistant("msg_1")])
    write_lines(sub, [assistant("msg_2", sidechain=True)])
    write_lines(root / "projects" / "-work-proj" / "sess-1" / "tool.json", [])
    write_lines(root / "todos" / "x.jsonl", [])  # outside projects/
    assert claude.claude_files(claude.claude_roots({}, home=tmp_path)) == [main, sub]


# --- Claude: which lines count --------------------------------------------------------------


def test_assistant_line_becomes_a_row() -> None:
    line = assistant(costUSD=0.25)
    (row,) = parse_claude(lines_bytes(line), source="/x/s.jsonl").rows
    assert row == UsageRow(
        ts=TS_EPOCH,
        agent="claude",
        model="claude-sonnet-4-20250514",
        input_tokens=5,
        output_tokens=10,
        cache_creation_tokens=100,
        cache_read_tokens=1000,
        key="claude:msg_1",
        source="/x/s.jsonl",
        logged_cost=0.25,
        session_id="sess-1",
        cwd="/work/proj",
    )


def test_streaming_snapshots_share_a_key_and_the_last_wins() -> None:
    snapshots = [assistant(output=n) for n in (1, 40, 321)]
    rows = parse_claude(lines_bytes(*snapshots)).rows
    assert {r.key for r in rows} == {"claude:msg_1"}
    (best,) = keep_best(rows).values()
    assert best.output_tokens == 321


def test_main_chain_copy_beats_a_bigger_sidechain_copy() -> None:
    main = assistant("msg_p", "req_parent", output=10)
    replay = assistant(
        "msg_p",
        "req_replay",
        sidechain=True,
        usage={"input_tokens": 0, "output_tokens": 10, "cache_read_input_tokens": 50_000},
    )
    own = assistant("msg_side", "req_side", output=30, sidechain=True)
    rows = parse_claude(lines_bytes(replay, main, own)).rows
    assert [r.sidechain for r in rows] == [True, False, True]
    best = keep_best(rows)
    assert sorted(best) == ["claude:msg_p", "claude:msg_side"]
    assert best["claude:msg_p"].sidechain is False
    assert best["claude:msg_p"].cache_read_tokens == 1000


def test_cache_creation_breakdown_splits_one_hour_writes() -> None:
    usage = {
        "input_tokens": 3,
        "output_tokens": 7,
        "cache_creation_input_tokens": 999,  # ignored when the breakdown is there
        "cache_read_input_tokens": 11,
        "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 50},
    }
    (row,) = parse_claude(lines_bytes(assistant(usage=usage))).rows
    assert (row.cache_creation_tokens, row.cache_creation_1h_tokens) == (250, 50)
    assert row.total_tokens == 3 + 7 + 250 + 11


def test_cache_creation_without_breakdown_uses_the_plain_count() -> None:
    usage = {"input_tokens": 3, "output_tokens": 7, "cache_creation_input_tokens": 99}
    (row,) = parse_claude(lines_bytes(assistant(usage=usage))).rows
    assert (row.cache_creation_tokens, row.cache_creation_1h_tokens) == (99, 0)
    assert row.cache_read_tokens == 0


def test_null_cache_creation_breakdown_falls_back() -> None:
    usage = {"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 8}
    usage["cache_creation"] = None
    (row,) = parse_claude(lines_bytes(assistant(usage=usage))).rows
    assert row.cache_creation_tokens == 8


def test_malformed_and_truncated_lines_are_skipped_with_a_reason() -> None:
    good = dump(assistant("msg_1"))
    data = (good[:-30] + "\n" + "{not json" + ' "usage":{' + "\n" + good + "\n").encode()
    parsed = parse_claude(data, base=1000, source="/x/s.jsonl")
    assert [r.key for r in parsed.rows] == ["claude:msg_1"]
    assert parsed.skipped == 2
    assert (
        parsed.problems[0]
        == "/x/s.jsonl at byte 1000: not valid JSON (a truncated or corrupt line)"
    )
    assert parsed.problems[1].startswith(f"/x/s.jsonl at byte {1000 + len(good) - 29}:")


def test_null_fields_ccusage_rejects_skip_the_line() -> None:
    bad_model = assistant("msg_1")
    bad_model["message"]["model"] = None
    bad_cache = assistant("msg_2")
    bad_cache["message"]["usage"]["cache_read_input_tokens"] = None
    bad_request = assistant("msg_3", None, requestId=None)
    null_tokens = assistant("msg_4", usage={"input_tokens": None, "output_tokens": 1})
    fine = assistant("msg_5", content_extra=None)  # other nulls (and null content) are fine
    fine["message"]["content"] = None
    parsed = parse_claude(lines_bytes(bad_model, bad_cache, bad_request, null_tokens, fine))
    assert [r.key for r in parsed.rows] == ["claude:msg_5"]
    assert parsed.skipped == 4
    assert "model is null" in parsed.problems[0]
    assert "cache_read_input_tokens is null" in parsed.problems[1]
    assert "requestId is null" in parsed.problems[2]
    assert "input_tokens" in parsed.problems[3]


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (b'{"a":1,"model":null}', b"model"),
        (b'{"x":{"y":[{"id":null}]}}', b"id"),  # nested: ccusage checks the whole line
        (b'{"id" :null}', b"id"),  # ccusage walks back over anything to the quote
        (b'{"stop_reason":null,"cwd":"/a"}', None),
        (b'{"text":"an id:null here"}', None),
        (b'{"text":"\\"id\\":null"}', None),
        (b'{"xid":null,"idx":null}', None),
        (b"{}", None),
    ],
)
def test_has_null_field_reads_as_ccusage(line: bytes, field: bytes | None) -> None:
    assert claude.has_null_field(line) == field


def test_problems_are_capped_but_all_counted() -> None:
    parsed = parse_claude(lines_bytes(*['{"usage":{' for _ in range(20)]))
    assert parsed.skipped == 20 and len(parsed.problems) == 5


def test_invalid_entries_are_skipped_as_ccusage_does() -> None:
    lines = [
        assistant("msg_1", ts="2026-03-29T07:00:00.123456Z"),
        assistant("msg_2", version="v2"),
        assistant("msg_3", sessionId=""),
        assistant("msg_4", ""),
        assistant("msg_5", model=""),
        assistant("msg_6", usage={"input_tokens": -1, "output_tokens": 1}),
        assistant("msg_7", usage={"input_tokens": 1.5, "output_tokens": 1}),
        assistant("msg_8", usage={"output_tokens": 1}),
        assistant("msg_9", usage={"input_tokens": 1, "output_tokens": 1, "speed": "warp"}),
        assistant("msg_ok", version="1.0.3-beta"),
    ]
    parsed = parse_claude(lines_bytes(*lines))
    assert [r.key for r in parsed.rows] == ["claude:msg_ok"]
    assert parsed.skipped == 9


def test_lines_that_only_mention_usage_are_ignored_silently() -> None:
    spaced = '{"type":"x","note":{"usage":{"a":1}}}'
    parsed = parse_claude(lines_bytes(user_line(), spaced, {"type": "summary"}))
    assert (parsed.rows, parsed.skipped, parsed.problems) == ([], 0, [])


def test_type_is_not_checked_and_synthetic_responses_count() -> None:
    odd = assistant("msg_1", type="something-else")
    synthetic = assistant(
        "msg_2", model="<synthetic>", usage={"input_tokens": 0, "output_tokens": 0}
    )
    rows = parse_claude(lines_bytes(odd, synthetic)).rows
    assert [(r.key, r.model) for r in rows] == [
        ("claude:msg_1", "claude-sonnet-4-20250514"),
        ("claude:msg_2", "<synthetic>"),
    ]


def test_fast_mode_is_recorded() -> None:
    usage = {"input_tokens": 1, "output_tokens": 2, "speed": "fast"}
    standard = {"input_tokens": 1, "output_tokens": 2, "speed": "standard"}
    rows = parse_claude(
        lines_bytes(assistant("m1", usage=usage), assistant("m2", usage=standard))
    ).rows
    assert [r.speed for r in rows] == ["fast", None]


def test_line_without_message_id_gets_a_key_stable_across_reads() -> None:
    data = lines_bytes(assistant("msg_1"), assistant(None), assistant(None))
    first = parse_claude(data, base=500, source="/x/s.jsonl").rows
    again = parse_claude(data, base=500, source="/x/s.jsonl").rows
    second = 500 + len(dump(assistant("msg_1"))) + 1
    third = second + len(dump(assistant(None))) + 1
    assert [r.key for r in first] == [
        "claude:msg_1",
        f"claude:/x/s.jsonl@{second}",  # never merged, even with an identical line
        f"claude:/x/s.jsonl@{third}",
    ]
    assert [r.key for r in again] == [r.key for r in first]


def test_main_chain_line_without_request_id_merges_on_session_and_instant() -> None:
    later = "2026-03-29T07:00:00.001Z"
    lines = [
        assistant("m", None, 10),
        assistant("m", None, 20, ts="2026-03-29T07:00:00Z"),  # the same instant
        assistant("m", None, 30, sessionId="other"),
        assistant("m", None, 40, ts=later),
        assistant("m", "req_1", 50),  # with a request id: not the same entry
    ]
    source = "/h/.claude/projects/-p/sess-1/subagents/agent-1.jsonl"
    keys = [r.key for r in parse_claude(lines_bytes(*lines), source=source).rows]
    assert keys == [
        "claude:m:sess-1:1774767600000",
        "claude:m:sess-1:1774767600000",
        "claude:m:other:1774767600000",
        "claude:m:sess-1:1774767600001",
        "claude:m",
    ]
    no_session = assistant("m", None, 10)
    del no_session["sessionId"]  # the session the path names
    (row,) = parse_claude(lines_bytes(no_session), source=source).rows
    assert (row.key, row.session_id) == ("claude:m:sess-1:1774767600000", None)


@pytest.mark.parametrize(
    ("path", "session"),
    [
        ("/h/.claude/projects/-p/abc.jsonl", "abc"),
        ("/h/.claude/projects/-p/abc/chat.jsonl", "abc"),
        ("/h/.claude/projects/-p/abc/subagents/agent-1.jsonl", "abc"),
        ("/h/.claude/projects/a/b/abc/subagents/agent-1.jsonl", "abc"),
    ],
)
def test_session_of_path_follows_ccusage(path: str, session: str) -> None:
    assert claude.session_of_path(path) == session


def test_subagent_progress_copies_count_under_the_same_key() -> None:
    inner = assistant("msg_sub", "req_sub", output=33, sidechain=True)
    progress = {
        "type": "progress",
        "sessionId": "sess-1",
        "cwd": "/work/proj",
        "timestamp": "2026-03-29T08:00:00.000Z",
        "data": {"type": "agent_progress", "message": inner},
    }
    (row,) = parse_claude(lines_bytes(progress)).rows
    assert (row.key, row.output_tokens, row.sidechain) == ("claude:msg_sub", 33, True)
    assert (row.ts, row.session_id) == (TS_EPOCH, "sess-1")


def test_per_day_totals_follow_ccusage_on_a_tree(tmp_path: Path) -> None:
    root = make_root(tmp_path / "cfg")
    project = root / "projects" / "-work-proj"
    day2 = "2026-03-30T01:00:00.000Z"
    write_lines(
        project / "s1.jsonl",
        [
            user_line(),
            assistant("m1", "r1", output=1),
            assistant("m1", "r1", output=50),  # streaming: only this one counts
            assistant("m2", "r2", output=7, ts=day2),
            "{broken",
        ],
    )
    write_lines(  # the same session copied to a second root (resume): counted once
        make_root(tmp_path / "cfg2") / "projects" / "p" / "s1.jsonl",
        [assistant("m1", "r1", output=50)],
    )
    write_lines(
        project / "s1" / "subagents" / "agent-1.jsonl",
        [assistant("m3", "r3", output=5, sidechain=True)],
    )
    env = {"CLAUDE_CONFIG_DIR": f"{root},{tmp_path / 'cfg2'}"}
    rows = []
    for path in claude.claude_files(claude.claude_roots(env, home=tmp_path)):
        data, start, _, _ = read_new(path, None)  # type: ignore[misc]
        rows += claude.parse(data, start, str(path), {}).rows
    per_day: dict[str, int] = {}
    for row in keep_best(rows).values():
        day = "d2" if row.ts > TS_EPOCH + 3600 else "d1"
        per_day[day] = per_day.get(day, 0) + row.total_tokens
    assert per_day == {"d1": (5 + 100 + 1000) * 2 + 50 + 5, "d2": 5 + 100 + 1000 + 7}


