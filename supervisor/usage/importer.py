"""Import token usage from the agents' own logs into the ledger, incrementally.

Each file's mark (size, mtime, offset, head hash, parser state) is stored with the rows read
from it, in the same transaction, so an import interrupted at any point resumes where it
committed and never counts a line twice. Transactions are kept short (a few tens of
thousands of rows) so the running supervisor's own writes never wait long.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.store import DB, Setting, UsageFile
from supervisor.usage import claude, codex
from supervisor.usage.ledger import (
    Attribution,
    Ledger,
    WriteResult,
    reattribute,
    rebuild_buckets,
    refresh_runner_tokens,
)
from supervisor.usage.pricing import PriceTable
from supervisor.usage.records import UsageRow
from supervisor.usage.scan import FileMark, Parsed, iter_new

BATCH_ROWS = 20_000
DIRTY = "usage.dirty_buckets"  # bucket span written but not yet summed (survives a crash)
Progress = Callable[[int, int], None]  # (bytes done, bytes to read)
Parser = Callable[[bytes, int, str, dict[str, Any]], Parsed]


@dataclass
class ImportReport:
    files: int = 0  # files looked at
    files_read: int = 0  # files that had new lines
    bytes_read: int = 0
    written: int = 0  # ledger rows inserted or replaced
    skipped: int = 0  # malformed lines passed over
    problems: list[str] = field(default_factory=list)
    unknown_models: list[str] = field(default_factory=list)
    runner_tokens: dict[int, int] = field(default_factory=dict)  # new totals of runners
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "files_read": self.files_read,
            "bytes_read": self.bytes_read,
            "written": self.written,
            "skipped": self.skipped,
            "problems": self.problems,
            "unknown_models": self.unknown_models,
            "seconds": round(self.seconds, 3),
        }


def sources(env: Mapping[str, str], home: Path | None) -> list[tuple[str, Path, Parser]]:
    """Every log file of every agent we read, with its agent and parser."""
    found: list[tuple[str, Path, Parser]] = []
    claude_files = claude.claude_files(claude.claude_roots(env, home))
    codex_files = codex.codex_files(codex.codex_homes(env, home))
    found += [("claude", path, claude.parse) for path in claude_files]
    found += [("codex", path, codex.parse) for path in codex_files]
    return found


class _Batch:
    """Rows and file marks waiting for one transaction."""

    def __init__(self) -> None:
        self.rows: list[tuple[list[UsageRow], int]] = []
        self.count = 0
        # file id -> mark, rows, skipped, whether its counts start again (file rewritten)
        self.marks: dict[int, tuple[FileMark, int, int, bool]] = {}

    def add(self, file_id: int, parsed: Parsed, mark: FileMark, restarted: bool) -> None:
        if parsed.rows:
            self.rows.append((parsed.rows, file_id))
            self.count += len(parsed.rows)
        _, rows, skipped, reset = self.marks.get(file_id, (mark, 0, 0, False))
        self.marks[file_id] = (
            mark,
            rows + len(parsed.rows),
            skipped + parsed.skipped,
            reset or restarted,
        )


def run_import(
    prices: PriceTable,
    cost_mode: str,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
) -> ImportReport:
    """Read what is new in every agent log into the ledger."""
    began = time.perf_counter()
    env = os.environ if env is None else env
    report = ImportReport()
    files = sources(env, home)
    report.files = len(files)
    known = {row.path: row for row in UsageFile.select()}
    attribution = Attribution.load()
    ledger = Ledger(prices, cost_mode, attribution)
    with DB.atomic():
        if reattribute(attribution):
            _set_dirty((float("-inf"), float("inf")))
    todo = []
    for agent, path, parse in files:
        row = known.get(str(path))
        mark = FileMark.from_json(_mark_json(row)) if row is not None else None
        try:
            size = path.stat().st_size
        except OSError:
            continue
        if mark is not None and size == mark.size and _mtime(path) == mark.mtime_ns:
            continue
        todo.append((agent, path, parse, row, mark, size - (mark.offset if mark else 0)))
    total = sum(max(pending, 0) for *_, pending in todo)
    done = 0
    result = WriteResult()
    batch = _Batch()
    for agent, path, parse, row, mark, _pending in todo:
        if row is None:
            row = UsageFile.create(path=str(path), agent=agent)
        read_any = False
        for chunk in iter_new(path, mark):
            parsed = parse(chunk.data, chunk.start, str(path), chunk.mark.context)
            report.bytes_read += len(chunk.data)
            report.skipped += parsed.skipped
            report.problems.extend(parsed.problems[: max(0, 20 - len(report.problems))])
            batch.add(row.id, parsed, chunk.mark, chunk.restarted)
            read_any = read_any or bool(chunk.data)
            done += len(chunk.data)
            if batch.count >= BATCH_ROWS:
                result.add(_commit(ledger, batch, clock()))
                batch = _Batch()
            if progress is not None:
                progress(done, total)
        report.files_read += read_any
    result.add(_commit(ledger, batch, clock()))
    with DB.atomic():
        dirty = Setting.get_or_none(Setting.key == DIRTY)
        if dirty is not None:
            low, high = dirty.value
            rebuild_buckets(None if low is None else (low, high))
            dirty.delete_instance()
        report.runner_tokens = refresh_runner_tokens(result.runners)
    report.written = result.written
    report.unknown_models = sorted(result.unknown_models)
    report.seconds = time.perf_counter() - began
    return report


def _set_dirty(span: tuple[float, float]) -> None:
    """Widen the span of buckets to rebuild (in the caller's transaction); None = all."""
    dirty = Setting.get_or_none(Setting.key == DIRTY)
    low, high = span
    if dirty is not None:
        old_low, old_high = dirty.value
        if old_low is None:
            return
        low, high = min(low, old_low), max(high, old_high)
    value = [None, None] if low == float("-inf") else [low, high]
    Setting.insert(key=DIRTY, value=value).on_conflict_replace().execute()


def _commit(ledger: Ledger, batch: _Batch, now: float) -> WriteResult:
    """Write a batch's rows and its files' marks in one transaction. The buckets over the
    rows' span are rebuilt once at the end of the import, not per batch."""
    result = WriteResult()
    if not batch.marks:
        return result
    with DB.atomic():
        for rows, file_id in batch.rows:
            result.add(ledger.write(rows, file_id))
        for file_id, (mark, rows, skipped, reset) in batch.marks.items():
            keep = 0 if reset else 1
            DB.execute_sql(
                'UPDATE "usage_file" SET size = ?, mtime_ns = ?, "offset" = ?, head = ?, '
                "context = ?, records = records * ? + ?, skipped = skipped * ? + ?, "
                "imported_at = ? WHERE id = ?",
                (
                    mark.size, mark.mtime_ns, mark.offset, mark.head,
                    UsageFile.context.db_value(mark.context), keep, rows, keep, skipped, now,
                    file_id,
                ),
            )  # fmt: skip
        if result.span is not None:
            _set_dirty(result.span)
    return result


def _mark_json(row: UsageFile) -> dict[str, Any]:
    return {
        "size": row.size,
        "mtime_ns": row.mtime_ns,
        "offset": row.offset,
        "head": row.head,
        "context": row.context,
    }


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1
