"""Import token usage from the agents' own logs into the ledger, incrementally.

Each file's mark (size, mtime, offset, head hash, parser state) is stored with the rows read
from it, in the same transaction, so an import interrupted at any point resumes where it
committed and never counts a line twice. Transactions are kept short (a few tens of
thousands of rows) so the running supervisor's own writes never wait long.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.storage import queries
from supervisor.storage.models import DB, UsageFile
from supervisor.usage import aider, claude, codex, gemini
from supervisor.usage.budgets import runner_agent
from supervisor.usage.ledger import (
    Attribution,
    Ledger,
    WriteResult,
    reattribute,
    reprice,
)
from supervisor.usage.pricing import PriceTable
from supervisor.usage.records import UsageRow
from supervisor.usage.roots import Roots, log_roots, reaccount
from supervisor.usage.scan import Chunk, FileMark, Parsed, iter_new, iter_whole

BATCH_ROWS = 20_000
DIRTY = "usage.dirty_buckets"  # bucket span written but not yet summed (survives a crash)
REPRICE = "usage.reprice"  # set by a migration: every row is priced again at the next import
REACCOUNT = "usage.reaccount"  # set by a migration: rows learn their account at the next import
Progress = Callable[[int, int], None]  # (bytes done, bytes to read)
Parser = Callable[[bytes, int, str, dict[str, Any]], Parsed]
Todo = tuple[str, Path, int | None, FileMark | None, int]  # agent, path, file id, mark, bytes


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


def sources(
    env: Mapping[str, str],
    home: Path | None,
    places: aider.Places | None = None,
    roots: Roots | None = None,
) -> list[tuple[str, Path]]:
    """Every log file of every agent we read, with its agent (the key of its parser). Aider's
    files are only where ``places`` says (its history is a file per project, not a log);
    Claude's and Codex's are under every account's directory (``roots``)."""
    roots = roots if roots is not None else log_roots(env, home)
    found = [("claude", path) for path in claude.claude_files(roots.claude)]
    found += [("codex", path) for path in codex.codex_files(roots.codex)]
    found += [("gemini", path) for path in gemini.gemini_files(gemini.gemini_dir(env, home))]
    found += [("aider", path) for path in (places.files() if places is not None else [])]
    return found


def known_places() -> tuple[list[str], aider.Places]:
    """The folders Stratavore knows (its projects', and where its runners ran), and the
    Aider history files among them with the model each run asked for."""
    projects = queries.project_paths()
    folders = dict.fromkeys(projects)
    runs = []
    for cwd, argv, profile in queries.runner_commands():
        folders.setdefault(cwd)
        if isinstance(argv, list) and runner_agent(profile, argv) == "aider":
            runs.append((cwd, [str(arg) for arg in argv]))
    return list(folders), aider.Places(projects, runs)


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
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
) -> ImportReport:
    """Read what is new in every agent log into the ledger."""
    began = time.perf_counter()
    env = os.environ if env is None else env
    report = ImportReport()
    folders, places = known_places()
    roots = log_roots(env, home)
    files = sources(env, home, places, roots)
    report.files = len(files)
    hints = {"gemini": gemini.Folders(gemini.gemini_dir(env, home), folders).hint,
             "aider": places.hint}  # fmt: skip
    known = queries.file_marks()
    attribution = Attribution.load()
    ledger = Ledger(prices, attribution, roots.account_of)
    _catch_up(prices, attribution, roots)
    todo = _changed(files, known)
    ids = queries.add_files([(str(p), agent) for agent, p, file_id, *_ in todo if file_id is None])
    if todo and queries.ledger_is_empty():
        # A first import: the read-only indexes are built once at the end, not row by row.
        with DB.atomic():
            queries.drop_lookup_indexes()
    try:
        result = _read(todo, ids, hints, ledger, report, progress, clock)
    finally:
        queries.ensure_lookup_indexes()  # also after a first import that was interrupted
    with DB.atomic():
        dirty = queries.setting_value(DIRTY)
        if dirty is not None:
            low, high = dirty
            queries.rebuild_buckets(None if low is None else (low, high))
            queries.delete_setting(DIRTY)
        report.runner_tokens = queries.refresh_runner_tokens(result.runners)
    report.written = result.written
    report.unknown_models = sorted(result.unknown_models)
    report.seconds = time.perf_counter() - began
    return report


def _catch_up(prices: PriceTable, attribution: Attribution, roots: Roots) -> None:
    """Before reading: sessions seen before their project existed go to it, a schema that
    gained a cost mode gets the old rows priced in it, and one that gained accounts gets the
    old rows' accounts (each marks every bucket dirty)."""
    with DB.atomic():
        if queries.setting_value(REACCOUNT) is not None:
            reaccount(roots)
            queries.delete_setting(REACCOUNT)
            _set_dirty((float("-inf"), float("inf")))
        if reattribute(attribution):
            _set_dirty((float("-inf"), float("inf")))
        if queries.setting_value(REPRICE) is not None:
            reprice(prices)
            queries.delete_setting(REPRICE)
            _set_dirty((float("-inf"), float("inf")))


def _changed(files: list[tuple[str, Path]], known: dict[str, tuple[Any, ...]]) -> list[Todo]:
    """The files to read: new ones, and those whose size or mtime changed since their mark.
    The marks are plain tuples, and a parser state is decoded only for a file that changed:
    a refresh of ten thousand unchanged files costs one stat() each."""
    todo = []
    for agent, path in files:
        name = str(path)
        try:
            st = os.stat(name)
        except OSError:
            continue
        row = known.get(name)
        if row is not None and st.st_size == row[2] and st.st_mtime_ns == row[3]:
            continue
        mark = None
        if row is not None:
            context = UsageFile.context.python_value(row[6])
            mark = FileMark(size=row[2], mtime_ns=row[3], offset=row[4], head=row[5],
                            context=context)  # fmt: skip
        todo.append((agent, path, row[0] if row else None, mark,
                     st.st_size - (mark.offset if mark else 0)))  # fmt: skip
    return todo


def _read(
    todo: list[Todo],
    ids: dict[str, int],
    hints: dict[str, Callable[[Path], dict[str, Any] | None]],
    ledger: Ledger,
    report: ImportReport,
    progress: Progress | None,
    clock: Callable[[], float],
) -> WriteResult:
    """Read the files to read (here, or in worker processes for a big import) and write
    their rows with their marks, a transaction per ``BATCH_ROWS`` rows."""
    total = sum(max(pending, 0) for *_, pending in todo)
    done = 0
    result = WriteResult()
    batch = _Batch()
    tasks = [
        (agent, str(path), mark, hints[agent](path) if agent in hints else None)
        for agent, path, _, mark, _ in todo
    ]
    with _reader(total) as read:
        for (_, path, file_id, _, _), chunks in zip(todo, read(tasks), strict=True):
            file_id = file_id if file_id is not None else ids[str(path)]
            read_any = False
            for parsed, mark, restarted, size in chunks:
                report.bytes_read += size
                report.skipped += parsed.skipped
                report.problems.extend(parsed.problems[: max(0, 20 - len(report.problems))])
                batch.add(file_id, parsed, mark, restarted)
                read_any = read_any or bool(size)
                done += size
                if batch.count >= BATCH_ROWS:
                    result.add(_commit(ledger, batch, clock()))
                    batch = _Batch()
                if progress is not None:
                    progress(done, total)
            report.files_read += read_any
    result.add(_commit(ledger, batch, clock()))
    return result


def _set_dirty(span: tuple[float, float]) -> None:
    """Widen the span of buckets to rebuild (in the caller's transaction); None = all."""
    dirty = queries.setting_value(DIRTY)
    low, high = span
    if dirty is not None:
        old_low, old_high = dirty
        if old_low is None:
            return
        low, high = min(low, old_low), max(high, old_high)
    queries.put_setting(DIRTY, [None, None] if low == float("-inf") else [low, high])


def _commit(ledger: Ledger, batch: _Batch, now: float) -> WriteResult:
    """Write a batch's rows and its files' marks in one transaction. The buckets over the
    rows' span are rebuilt once at the end of the import, not per batch."""
    result = WriteResult()
    if not batch.marks:
        return result
    with DB.atomic():
        for rows, file_id in batch.rows:
            result.add(ledger.write(rows, file_id))
        for file_id, (mark, records, skipped, reset) in batch.marks.items():
            queries.save_file_mark(
                file_id, size=mark.size, mtime_ns=mark.mtime_ns, offset=mark.offset,
                head=mark.head, context=mark.context, records=records, skipped=skipped,
                restarted=reset, now=now,
            )  # fmt: skip
        if result.span is not None:
            _set_dirty(result.span)
    return result


PARSERS: dict[str, Parser] = {
    "claude": claude.parse,
    "codex": codex.parse,
    "gemini": gemini.parse,
    "aider": aider.parse,
}
PARALLEL_BYTES = 256 << 20  # from this much new log, files are parsed in worker processes
WORKERS = 2  # they parse while this process writes (writing is about a third of the work)
GROUP_FILES = 32  # files per task sent to a worker
AHEAD_GROUPS = 8  # tasks in flight per worker: what waits for the writer stays bounded
Chunks = list[tuple[Parsed, FileMark, bool, int]]  # per chunk: parsed, mark, restarted, bytes


Task = tuple[str, str, FileMark | None, dict[str, Any] | None]  # agent, path, mark, hint


def read_file(task: Task) -> Chunks:
    """Read and parse what is new in one file (in this process or a worker process).

    ``hint`` is what the importer knows about the file that the file does not say (Gemini's
    project folder, the model of an Aider run): it starts the parser's context. A JSON
    document (Gemini's older recordings) is read whole whenever it changed.
    """
    agent, path, mark, hint = task
    parse = PARSERS[agent]
    reader: Callable[[Path, FileMark | None], Iterator[Chunk]] = (
        iter_whole if path.endswith(".json") else iter_new
    )
    chunks = []
    for chunk in reader(Path(path), mark):
        if hint:
            chunk.mark.context.update(hint)
        parsed = parse(chunk.data, chunk.start, path, chunk.mark.context)
        chunks.append((parsed, chunk.mark, chunk.restarted, len(chunk.data)))
    return chunks


def read_files(tasks: list[Task]) -> list[Chunks]:
    """``read_file`` over a group of files (one round trip to a worker for several files)."""
    return [read_file(task) for task in tasks]


@contextlib.contextmanager
def _reader(pending: int) -> Iterator[Callable[[list[Any]], Iterable[Chunks]]]:
    """How files are read: here, or, for a big import, by worker processes while this one
    writes to the DB (parsing takes about twice as long as writing). The workers are
    spawned, never forked: the supervisor has threads and an open database."""
    if pending < PARALLEL_BYTES or (os.cpu_count() or 1) < 2:
        yield lambda tasks: map(read_file, tasks)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
        yield lambda tasks: _in_order(pool, tasks)


def _in_order(pool: ProcessPoolExecutor, tasks: list[Task]) -> Iterator[Chunks]:
    """The workers' results in the order of ``tasks``, with a bounded number of groups in
    flight (``pool.map`` would queue every result in memory when the writer is slower)."""
    groups = iter([tasks[i : i + GROUP_FILES] for i in range(0, len(tasks), GROUP_FILES)])
    flying: deque[Future[list[Chunks]]] = deque(
        pool.submit(read_files, group) for group in itertools.islice(groups, AHEAD_GROUPS * WORKERS)
    )
    while flying:
        done = flying.popleft().result()
        group = next(groups, None)
        if group is not None:
            flying.append(pool.submit(read_files, group))
        yield from done
