"""The usage log readers: incremental file reading, Claude Code and Codex CLI parsers.

Every transcript tree is written here in a temp dir; env and home are always passed
explicitly, so the user's real ~/.claude and ~/.codex are never read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from supervisor.usage import claude, codex
from supervisor.usage.records import UsageRow
from supervisor.usage.scan import FileMark, iter_new, jsonl_files, parse_timestamp, read_new

TS = "2026-03-29T07:00:00.000Z"
TS_EPOCH = 1774767600.0


def dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))  # compact, as both agents write


def write_lines(path: Path, lines: Iterable[dict[str, Any] | str], mode: str = "w") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode, encoding="utf-8") as handle:
        for line in lines:
            handle.write((line if isinstance(line, str) else dump(line)) + "\n")


def keep_best(rows: Iterable[UsageRow]) -> dict[str, UsageRow]:
    """What the ledger keeps: per key, the highest rank (the first one on a tie)."""
    best: dict[str, UsageRow] = {}
    for row in rows:
        if row.key not in best or row.rank > best[row.key].rank:
            best[row.key] = row
    return best


def bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


# --- Claude lines ---------------------------------------------------------------------------


def assistant(
    message_id: str | None = "msg_1",
    request_id: str | None = "req_1",
    output: int = 10,
    *,
    ts: str = TS,
    sidechain: bool = False,
    usage: dict[str, Any] | None = None,
    model: str = "claude-sonnet-4-20250514",
    **extra: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "model": model,
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "hello " * 20}],
        "stop_reason": None,
        "usage": usage
        or {
            "input_tokens": 5,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 1000,
            "output_tokens": output,
            "service_tier": "standard",
        },
    }
    if message_id is not None:
        message["id"] = message_id
    line: dict[str, Any] = {
        "parentUuid": None,
        "isSidechain": sidechain,
        "userType": "external",
        "cwd": "/work/proj",
        "sessionId": "sess-1",
        "version": "2.0.14",
        "message": message,
        "type": "assistant",
        "uuid": "u-1",
        "timestamp": ts,
    }
    if request_id is not None:
        line["requestId"] = request_id
    line.update(extra)
    return line


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


def parse_claude(data: bytes, base: int = 0, source: str = "t.jsonl") -> claude.Parsed:
    return claude.parse(data, base, source, {})


def lines_bytes(*lines: dict[str, Any] | str) -> bytes:
    return "".join((x if isinstance(x, str) else dump(x)) + "\n" for x in lines).encode()


# --- scan: incremental reading --------------------------------------------------------------


def test_partial_last_line_waits_until_completed(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    first = dump(assistant("msg_1")) + "\n"
    second = dump(assistant("msg_2"))
    path.write_bytes((first + second[:50]).encode())
    data, start, restarted, mark = read_new(path, None)  # type: ignore[misc]
    assert (data, start, restarted) == (first.encode(), 0, False)
    assert mark.offset == len(first)

    with path.open("ab") as handle:
        handle.write(second[50:].encode() + b"\n")
    data, start, restarted, mark2 = read_new(path, mark)  # type: ignore[misc]
    assert (data, start, restarted) == ((second + "\n").encode(), len(first), False)
    assert [r.key for r in parse_claude(data, start).rows] == ["claude:msg_2"]
    assert mark2.offset == path.stat().st_size


def test_unchanged_file_is_not_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.jsonl"
    write_lines(path, [assistant()])
    *_, mark = read_new(path, None)  # type: ignore[misc]

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an unchanged file was opened")

    monkeypatch.setattr(Path, "open", refuse)
    assert read_new(path, mark) is None
    assert list(iter_new(path, mark)) == []


def test_unchanged_file_with_pending_partial_line_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(lines_bytes(assistant()) + b'{"half":')
    *_, mark = read_new(path, None)  # type: ignore[misc]
    assert mark.offset < mark.size
    assert read_new(path, mark) is None


def test_truncated_file_is_read_again_from_zero(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_lines(path, [assistant("msg_1"), assistant("msg_2"), assistant("msg_3")])
    *_, mark = read_new(path, None)  # type: ignore[misc]
    mark = FileMark(mark.size, mark.mtime_ns, mark.offset, mark.head, {"kept": 1})
    write_lines(path, [assistant("msg_9")])
    data, start, restarted, new = read_new(path, mark)  # type: ignore[misc]
    assert (start, restarted, new.context) == (0, True, {})
    assert [r.key for r in parse_claude(data).rows] == ["claude:msg_9"]


def test_rewritten_file_of_equal_size_is_read_again_from_zero(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_lines(path, [assistant("msg_1")])
    *_, mark = read_new(path, None)  # type: ignore[misc]
    write_lines(path, [assistant("msg_2")])  # same length, new content
    bump_mtime(path)
    assert path.stat().st_size == mark.size
    data, start, restarted, _ = read_new(path, mark)  # type: ignore[misc]
    assert (start, restarted) == (0, True)
    assert [r.key for r in parse_claude(data).rows] == ["claude:msg_2"]


def test_rewritten_and_grown_file_is_read_again_from_zero(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_lines(path, [assistant("msg_1")])
    *_, mark = read_new(path, None)  # type: ignore[misc]
    write_lines(path, [assistant("msg_7"), assistant("msg_8")])
    data, start, restarted, _ = read_new(path, mark)  # type: ignore[misc]
    assert (start, restarted) == (0, True)
    assert [r.key for r in parse_claude(data).rows] == ["claude:msg_7", "claude:msg_8"]


def test_touched_file_without_new_lines_yields_empty_chunk(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_lines(path, [assistant()])
    *_, mark = read_new(path, None)  # type: ignore[misc]
    bump_mtime(path)
    data, start, restarted, new = read_new(path, mark)  # type: ignore[misc]
    assert (data, start, restarted) == (b"", mark.offset, False)
    assert new.mtime_ns != mark.mtime_ns and new.offset == mark.offset


def test_iter_new_reads_in_blocks_with_progress(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_lines(path, [assistant(f"msg_{i}") for i in range(50)])
    size = path.stat().st_size
    chunks = list(iter_new(path, None, block=1000))  # lines are ~700 bytes
    assert len(chunks) > 10
    assert b"".join(c.data for c in chunks) == path.read_bytes()
    assert all(c.data.endswith(b"\n") for c in chunks)
    assert [c.start for c in chunks[1:]] == [c.end for c in chunks[:-1]]
    assert [c.mark.offset for c in chunks] == [c.end for c in chunks]
    assert chunks[-1].mark.offset == size == chunks[-1].mark.size
    keys = [r.key for c in chunks for r in parse_claude(c.data, c.start).rows]
    assert keys == [f"claude:msg_{i}" for i in range(50)]


def test_line_longer_than_a_block_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    long = assistant("msg_long", content_padding="x" * 5000)
    write_lines(path, [assistant("msg_1"), long, assistant("msg_2")])
    chunks = list(iter_new(path, None, block=512))
    assert b"".join(c.data for c in chunks) == path.read_bytes()
    keys = [r.key for c in chunks for r in parse_claude(c.data, c.start).rows]
    assert keys == ["claude:msg_1", "claude:msg_long", "claude:msg_2"]


def test_whole_json_last_line_without_newline_is_consumed(tmp_path: Path) -> None:
    # ccusage counts a final line that lacks its newline; a JSON object cannot be partial.
    path = tmp_path / "a.jsonl"
    path.write_bytes(lines_bytes(assistant("msg_1")) + dump(assistant("msg_2")).encode())
    data, _, _, mark = read_new(path, None)  # type: ignore[misc]
    assert mark.offset == path.stat().st_size
    assert len(parse_claude(data).rows) == 2
    with path.open("ab") as handle:  # the writer's newline arrives later: an empty line
        handle.write(b"\n" + lines_bytes(assistant("msg_3")))
    data, start, restarted, _ = read_new(path, mark)  # type: ignore[misc]
    assert not restarted
    assert [r.key for r in parse_claude(data, start).rows] == ["claude:msg_3"]


def test_mark_round_trips_through_json(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_lines(path, [assistant()])
    *_, mark = read_new(path, None)  # type: ignore[misc]
    mark.context["total"] = [1, 2, 3, 4, 5]
    again = FileMark.from_json(json.loads(json.dumps(mark.to_json())))
    assert again == mark
    assert read_new(path, again) is None


def test_missing_file_reads_nothing(tmp_path: Path) -> None:
    assert read_new(tmp_path / "gone.jsonl", None) is None


def test_jsonl_files_recurses_without_following_links(tmp_path: Path) -> None:
    write_lines(tmp_path / "p" / "s.jsonl", [])
    write_lines(tmp_path / "p" / "s" / "subagents" / "agent-a.jsonl", [])
    write_lines(tmp_path / "p" / "notes.txt", [])
    (tmp_path / "link").symlink_to(tmp_path / "p")
    assert jsonl_files(tmp_path) == [  # sorted as text, as ccusage does
        tmp_path / "p" / "s.jsonl",
        tmp_path / "p" / "s" / "subagents" / "agent-a.jsonl",
    ]


# --- timestamps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TS, TS_EPOCH),
        ("2026-03-29T07:00:00Z", TS_EPOCH),
        ("2026-03-29T07:00:00.250Z", TS_EPOCH + 0.25),
        ("2026-03-29T09:00:00.000+02:00", TS_EPOCH),
        ("2026-03-29T09:00:00+02:00", TS_EPOCH),
        ("2026-03-29T07:00:00.250123Z", None),  # ccusage takes exactly 3 fraction digits
        ("2026-03-29 07:00:00.000Z", None),
        ("2026-03-29T07:00:00", None),
        ("2026-02-30T07:00:00.000Z", None),
        ("2026-03-29T24:00:00.000Z", None),
        ("2026-W13-7T07:00:00.000Z", None),
        ("", None),
    ],
)
def test_parse_timestamp_takes_ccusage_shapes_only(text: str, expected: float | None) -> None:
    assert parse_timestamp(text) == expected


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
