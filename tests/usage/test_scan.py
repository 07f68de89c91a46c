"""supervisor.usage.scan: incremental reading of growing, truncated and rewritten log files, and
the timestamps ccusage accepts.

Every file is written here in a temp dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from supervisor.usage.scan import FileMark, iter_new, jsonl_files, parse_timestamp, read_new
from tests.usage.lines import (
    TS,
    TS_EPOCH,
    assistant,
    bump_mtime,
    dump,
    lines_bytes,
    parse_claude,
    write_lines,
)

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

