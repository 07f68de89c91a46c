"""LogPump: spool -> timestamped, rotated runner.log, and read_log for the API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from supervisor.runners.logpump import LOG_NAME, SPOOL_NAME, LogPump, read_log

T0 = 1795296600.123  # 2026-11-21T21:30:00.123Z
S0 = "2026-11-21T21:30:00.123Z"
S1 = "2026-11-21T21:30:01.123Z"
RECORD = len(f"{S0} line-00\n")  # 33 bytes: one record of the rotation tests


def spool_write(run_dir: Path, data: bytes) -> None:
    with open(run_dir / SPOOL_NAME, "ab") as f:
        f.write(data)


def log_text(run_dir: Path, name: str = LOG_NAME) -> str:
    return (run_dir / name).read_bytes().decode("utf-8")  # no newline translation


def numbered(count: int, start: int = 0) -> bytes:
    return b"".join(b"line-%02d\n" % i for i in range(start, start + count))


def stamped(stamp: str, *lines: str) -> str:
    return "".join(f"{stamp} {line}\n" for line in lines)


def test_lines_get_the_pump_time_in_utc(tmp_path: Path) -> None:
    pump = LogPump()
    pump.track(1, tmp_path)
    data = b"hello\nCRLF line\r\nbad \xff byte\n\n"
    spool_write(tmp_path, data)

    assert pump.tick(now=T0) == {1: len(data)}
    assert log_text(tmp_path) == stamped(S0, "hello", "CRLF line", "bad \ufffd byte", "")


def test_clock_gives_the_time_when_now_is_not_passed(tmp_path: Path) -> None:
    pump = LogPump(clock=lambda: T0)
    pump.track(1, tmp_path)
    spool_write(tmp_path, b"a\n")
    pump.tick()
    assert log_text(tmp_path) == stamped(S0, "a")


def test_partial_line_waits_for_its_newline_and_is_written_once(tmp_path: Path) -> None:
    pump = LogPump()
    pump.track(1, tmp_path)
    spool_write(tmp_path, b"first\nsec")

    assert pump.tick(now=T0) == {1: 6}
    assert log_text(tmp_path) == stamped(S0, "first")
    spool_write(tmp_path, b"ond")
    assert pump.tick(now=T0) == {}  # still no newline: the offset did not move
    spool_write(tmp_path, b"\n")
    assert pump.tick(now=T0 + 1) == {1: 13}
    assert pump.tick(now=T0 + 2) == {}
    assert log_text(tmp_path) == stamped(S0, "first") + stamped(S1, "second")


def test_partial_line_over_64_kib_is_written_as_a_line(tmp_path: Path) -> None:
    pump = LogPump()
    pump.track(1, tmp_path)
    spool_write(tmp_path, b"x" * (64 * 1024))
    assert pump.tick(now=T0) == {}  # exactly 64 KiB is still held
    spool_write(tmp_path, b"x")
    assert pump.tick(now=T0) == {1: 64 * 1024 + 1}
    spool_write(tmp_path, b"rest\n")
    pump.tick(now=T0)
    assert log_text(tmp_path) == stamped(S0, "x" * (64 * 1024 + 1), "rest")


def test_drain_writes_the_partial_line(tmp_path: Path) -> None:
    pump = LogPump()
    pump.track(1, tmp_path)
    spool_write(tmp_path, b"one\ntwo")

    assert pump.tick(now=T0) == {1: 4}
    assert pump.drain(1, now=T0 + 1) == 7  # nothing new in the spool, but "two" was held
    assert pump.drain(1, now=T0 + 2) == 7  # nothing left: nothing written twice
    assert log_text(tmp_path) == stamped(S0, "one") + stamped(S1, "two")
    assert pump.tick(now=T0) == {}  # still tracked, nothing new


def test_rotation_keeps_exactly_backups_files_holding_the_newest_lines(tmp_path: Path) -> None:
    pump = LogPump(max_bytes=3 * RECORD, backups=3)
    pump.track(1, tmp_path)
    spool_write(tmp_path, numbered(20))
    pump.tick(now=T0)

    names = ["runner.log.3", "runner.log.2", "runner.log.1", LOG_NAME]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([SPOOL_NAME, *names])
    # 20 lines, 3 per file: 7 files; the 4 kept hold lines 9..19.
    assert [log_text(tmp_path, n) for n in names] == [
        stamped(S0, "line-09", "line-10", "line-11"),
        stamped(S0, "line-12", "line-13", "line-14"),
        stamped(S0, "line-15", "line-16", "line-17"),
        stamped(S0, "line-18", "line-19"),
    ]


def test_rotation_across_pumps_preserves_all_content_in_order(tmp_path: Path) -> None:
    pump = LogPump(max_bytes=3 * RECORD + 10, backups=10)
    pump.track(1, tmp_path)
    for i in range(20):
        spool_write(tmp_path, numbered(1, start=i))
        pump.tick(now=T0)

    names = [f"runner.log.{n}" for n in range(6, 0, -1)] + [LOG_NAME]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([SPOOL_NAME, *names])
    assert all((tmp_path / n).stat().st_size <= 3 * RECORD + 10 for n in names)
    assert "".join(log_text(tmp_path, n) for n in names) == stamped(
        S0, *(f"line-{i:02d}" for i in range(20))
    )


def test_line_longer_than_max_bytes_goes_alone_into_a_fresh_file(tmp_path: Path) -> None:
    pump = LogPump(max_bytes=50, backups=5)
    pump.track(1, tmp_path)
    spool_write(tmp_path, b"a\n" + b"X" * 100 + b"\nb\n")
    pump.tick(now=T0)

    assert log_text(tmp_path, "runner.log.2") == stamped(S0, "a")
    assert log_text(tmp_path, "runner.log.1") == stamped(S0, "X" * 100)
    assert log_text(tmp_path) == stamped(S0, "b")


def wait_for_size(path: Path, size: int) -> None:
    deadline = time.monotonic() + 30
    while path.stat().st_size < size:
        assert time.monotonic() < deadline, f"{path} never reached {size} bytes"
        time.sleep(0.01)


def test_child_keeps_appending_after_the_spool_is_truncated(tmp_path: Path) -> None:
    child = (
        "import sys\n"
        "for i in range(100): print(f'first {i}', flush=True)\n"
        "sys.stdin.readline()\n"
        "for i in range(50): print(f'second {i}', flush=True)\n"
    )
    first = "".join(f"first {i}\n" for i in range(100)).encode()
    second = "".join(f"second {i}\n" for i in range(50)).encode()
    spool = tmp_path / SPOOL_NAME
    pump = LogPump(spool_truncate_at=len(first))
    pump.track(1, tmp_path)
    with open(spool, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", child],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_size(spool, len(first))
        assert pump.tick(now=T0) == {}  # consumed and truncated: back to offset 0
        assert spool.stat().st_size == 0

        proc.communicate(b"go\n", timeout=30)
        # O_APPEND: the child's next writes landed at the new end, not after a hole.
        assert spool.read_bytes() == second
        assert pump.tick(now=T0 + 1) == {1: len(second)}  # below the threshold: kept
    finally:
        proc.kill()
        proc.wait()

    expected = stamped(S0, *(f"first {i}" for i in range(100)))
    expected += stamped(S1, *(f"second {i}" for i in range(50)))
    assert log_text(tmp_path) == expected


def test_spool_is_not_truncated_while_a_partial_line_is_held(tmp_path: Path) -> None:
    pump = LogPump(spool_truncate_at=10)
    pump.track(1, tmp_path)
    spool_write(tmp_path, b"0123456789\npart")

    assert pump.tick(now=T0) == {1: 11}
    assert (tmp_path / SPOOL_NAME).stat().st_size == 15
    spool_write(tmp_path, b"ial\n")
    assert pump.tick(now=T0) == {1: 0}
    assert (tmp_path / SPOOL_NAME).stat().st_size == 0
    assert log_text(tmp_path) == stamped(S0, "0123456789", "partial")


def test_spool_that_grew_since_it_was_read_is_not_truncated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / SPOOL_NAME
    pump = LogPump(spool_truncate_at=4)
    pump.track(1, tmp_path)
    spool_write(tmp_path, b"one\n")
    real_stat = os.stat
    spool_stats = 0

    def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        nonlocal spool_stats
        if Path(str(path)) == spool:
            spool_stats += 1
            if spool_stats == 2:  # the re-stat before truncating: the child wrote just now
                spool_write(tmp_path, b"two\n")
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    assert pump.tick(now=T0) == {1: 4}
    assert spool.read_bytes() == b"one\ntwo\n"
    assert pump.tick(now=T0 + 1) == {1: 0}
    assert spool.read_bytes() == b""
    assert log_text(tmp_path) == stamped(S0, "one") + stamped(S1, "two")


def test_restart_from_the_persisted_offset_duplicates_nothing(tmp_path: Path) -> None:
    first = LogPump()
    first.track(1, tmp_path)
    spool_write(tmp_path, b"a\nb\npar")
    offset = first.tick(now=T0)[1]
    assert offset == 4  # the held partial line is not counted: a restart re-reads it

    spool_write(tmp_path, b"tial\nc\n")
    second = LogPump()
    second.track(1, tmp_path, offset=offset)
    assert second.tick(now=T0 + 1) == {1: 14}
    assert log_text(tmp_path) == stamped(S0, "a", "b") + stamped(S1, "partial", "c")


def test_shrunk_spool_is_read_from_the_start(tmp_path: Path) -> None:
    pump = LogPump()
    pump.track(1, tmp_path)
    spool_write(tmp_path, b"old one\nold two\n")
    pump.tick(now=T0)
    (tmp_path / SPOOL_NAME).write_bytes(b"new\n")

    assert pump.tick(now=T0 + 1) == {1: 4}
    assert log_text(tmp_path) == stamped(S0, "old one", "old two") + stamped(S1, "new")


def test_persisted_offset_beyond_the_spool_restarts_at_zero(tmp_path: Path) -> None:
    spool_write(tmp_path, b"fresh\n")
    pump = LogPump()
    pump.track(1, tmp_path, offset=1000)
    assert pump.tick(now=T0) == {1: 6}
    assert log_text(tmp_path) == stamped(S0, "fresh")


def test_replaced_spool_is_read_from_the_start(tmp_path: Path) -> None:
    pump = LogPump()
    pump.track(1, tmp_path)
    spool_write(tmp_path, b"old\n")
    pump.tick(now=T0)
    replacement = tmp_path / "new-output"
    replacement.write_bytes(b"new one\nnew two\n")  # longer than the offset: not a shrink
    os.replace(replacement, tmp_path / SPOOL_NAME)

    assert pump.tick(now=T0 + 1) == {1: 16}
    assert log_text(tmp_path) == stamped(S0, "old") + stamped(S1, "new one", "new two")


def test_tick_returns_only_changed_offsets(tmp_path: Path) -> None:
    dirs = [tmp_path / str(i) for i in range(3)]
    pump = LogPump()
    for i, d in enumerate(dirs):
        d.mkdir()
        spool_write(d, b"start\n")
        pump.track(i, d)
    assert pump.tick(now=T0) == {0: 6, 1: 6, 2: 6}
    assert pump.tick(now=T0) == {}

    spool_write(dirs[1], b"more\n")
    assert pump.tick(now=T0) == {}  # quiet for one look: not due again until two ticks on
    assert pump.tick(now=T0) == {1: 11}
    pump.untrack(2)
    spool_write(dirs[2], b"unwatched\n")
    assert pump.tick(now=T0) == {}
    assert log_text(dirs[2]) == stamped(S0, "start")


def count_stats(monkeypatch: pytest.MonkeyPatch, hook: Callable[[Path], None]) -> list[Path]:
    """Route os.stat through ``hook``; the list of paths stat'ed."""
    real_stat, seen = os.stat, []

    def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        seen.append(Path(str(path)))
        hook(seen[-1])
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    return seen


def test_tick_without_news_costs_one_stat_per_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pump = LogPump(spool_truncate_at=1)
    for i in range(3):
        (tmp_path / str(i)).mkdir()
        spool_write(tmp_path / str(i), b"held partial line" if i else b"line\n")
        pump.track(i, tmp_path / str(i))
    pump.tick(now=T0)
    seen = count_stats(monkeypatch, lambda path: None)

    assert pump.tick(now=T0) == {}
    assert sorted(seen) == [tmp_path / str(i) / SPOOL_NAME for i in range(3)]


def test_runner_untracked_during_its_pump_is_not_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pump = LogPump()
    for i in range(2):
        (tmp_path / str(i)).mkdir()
        spool_write(tmp_path / str(i), b"x\n")
        pump.track(i, tmp_path / str(i))
    count_stats(monkeypatch, lambda path: pump.untrack(1) if path.parent.name == "1" else None)

    assert pump.tick(now=T0) == {0: 2}


def test_vanished_or_missing_files_do_not_raise(tmp_path: Path) -> None:
    gone, empty = tmp_path / "gone", tmp_path / "empty"
    gone.mkdir()
    empty.mkdir()  # runner not started writing: no spool yet
    pump = LogPump()
    pump.track(1, gone)
    pump.track(2, empty)
    spool_write(gone, b"x\n")
    assert pump.tick(now=T0) == {1: 2}

    shutil.rmtree(gone)
    assert pump.tick(now=T0) == {}
    assert pump.drain(1, now=T0) == 2
    assert pump.drain(2, now=T0) == 0


def test_read_log_of_a_missing_log(tmp_path: Path) -> None:
    assert read_log(tmp_path) == ("", 0, "")
    assert read_log(tmp_path, offset=10, file_id="x") == ("", 0, "")


def rotated_log(run_dir: Path) -> LogPump:
    """runner.log.2: lines 0-2, runner.log.1: lines 3-5, runner.log: line 6."""
    pump = LogPump(max_bytes=3 * RECORD, backups=3)
    pump.track(1, run_dir)
    spool_write(run_dir, numbered(7))
    pump.tick(now=T0)
    return pump


def test_read_log_tail_reaches_into_the_previous_file(tmp_path: Path) -> None:
    rotated_log(tmp_path)
    size = (tmp_path / LOG_NAME).stat().st_size

    text, offset, file_id = read_log(tmp_path, tail=3)
    assert text == stamped(S0, "line-04", "line-05", "line-06")
    assert (offset, file_id) == (size, read_log(tmp_path, tail=1)[2])
    assert file_id
    assert read_log(tmp_path, tail=100)[0] == stamped(S0, *(f"line-0{i}" for i in range(3, 7)))
    assert read_log(tmp_path, tail=1)[0] == stamped(S0, "line-06")
    assert read_log(tmp_path, tail=0) == ("", size, file_id)
    assert read_log(tmp_path, tail=None)[0] == stamped(S0, "line-06")


def test_read_log_tail_of_a_long_file(tmp_path: Path) -> None:
    pump = LogPump()
    pump.track(1, tmp_path)
    spool_write(tmp_path, b"".join(b"%05d %s\n" % (i, b"y" * 100) for i in range(3000)))
    pump.tick(now=T0)

    text, offset, _ = read_log(tmp_path, tail=700)  # more than one 64 KiB block back
    assert text == stamped(S0, *(f"{i:05d} {'y' * 100}" for i in range(2300, 3000)))
    assert offset == (tmp_path / LOG_NAME).stat().st_size


def test_read_log_follows_with_offset_and_file_id(tmp_path: Path) -> None:
    pump = LogPump()
    pump.track(1, tmp_path)
    spool_write(tmp_path, b"a\n")
    pump.tick(now=T0)
    _, offset, file_id = read_log(tmp_path)

    spool_write(tmp_path, b"b\nc\n")
    pump.tick(now=T0 + 1)
    text, offset2, file_id2 = read_log(tmp_path, offset=offset, file_id=file_id)
    assert text == stamped(S1, "b", "c")
    assert file_id2 == file_id
    assert offset2 == (tmp_path / LOG_NAME).stat().st_size
    assert read_log(tmp_path, offset=offset2, file_id=file_id) == ("", offset2, file_id)


def test_read_log_notices_rotation_through_the_file_id(tmp_path: Path) -> None:
    pump = LogPump(max_bytes=3 * RECORD, backups=1)
    pump.track(1, tmp_path)
    spool_write(tmp_path, numbered(2))
    pump.tick(now=T0)
    _, offset, file_id = read_log(tmp_path)

    spool_write(tmp_path, numbered(3, start=2))  # line-02 fills the file, 03-04 start a new one
    pump.tick(now=T0 + 1)
    text, offset2, file_id2 = read_log(tmp_path, offset=offset, file_id=file_id)
    assert text == stamped(S1, "line-03", "line-04")
    assert offset2 == 2 * RECORD
    assert file_id2 != file_id


def test_read_log_returns_only_complete_lines(tmp_path: Path) -> None:
    (tmp_path / LOG_NAME).write_bytes(b"done\nbeing writ")
    text, offset, file_id = read_log(tmp_path)
    assert (text, offset) == ("done\n", 5)
    assert read_log(tmp_path, offset=0, file_id=file_id)[:2] == ("done\n", 5)
    assert read_log(tmp_path, offset=5, file_id=file_id)[:2] == ("", 5)


def test_quiet_spools_are_looked_at_less_often_and_a_refresh_resets_that(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pump = LogPump()
    pump.track(1, tmp_path)
    spool_write(tmp_path, b"start\n")
    stats = count_stats(monkeypatch, lambda path: None)
    looked_at = []
    for tick in range(1, 26):
        before = len(stats)
        pump.tick(now=T0)
        if len(stats) > before:
            looked_at.append(tick)
    assert looked_at == [1, 2, 4, 8, 16, 24]
    spool_write(tmp_path, b"fresh\n")
    assert pump.drain(1, now=T0 + 1, final=False) == 12  # a reader refreshes it at once
    assert log_text(tmp_path) == stamped(S0, "start") + stamped(S1, "fresh")
