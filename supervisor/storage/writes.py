"""The loop's writes: committed before they are believed, never waited on for long, and the
storage's problems said in one sentence.

Callers change memory only after :meth:`Writes.transaction` has committed, so a refused
write leaves memory as the database has it. The transaction raises :class:`StorageError`
when the storage is in the way:

- another program holds the database's write lock: the loop's own connection waits at most
  :data:`LOOP_BUSY_MS` for it (worker threads keep the store's 5 s), then answers 503
  ``database_locked`` with ``Retry-After``. For :data:`LOCKED_COOLDOWN` seconds after that,
  loop writes are refused without asking SQLite again, so a lock held for seconds costs the
  loop a few milliseconds a second instead of freezing it (``docs/architecture.md`` has the
  measurements behind this design);
- the data folder is full (507 ``storage_full``), read-only or failing (503
  ``storage_failed``). Such a problem is shown in ``status`` while it lasts and reported once,
  as an event written by the first write that succeeds again (a probe tries every second).

Facts observed from the OS that cannot be written when they happen (a runner's exit, a stop
signal already sent, a heartbeat) are kept by their owners and written later; see
``supervisor.runners.exits.Exits.catch_up``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from supervisor.core import events, paths
from supervisor.core.errors import FAILING, FULL, LOCKED, READ_ONLY, ApiError, ErrorCode, problem_of
from supervisor.storage.models import DB

log = logging.getLogger("stratavore.writes")
LOOP_BUSY_MS = 10  # the loop's connection waits this long for another writer's lock
LOCKED_COOLDOWN = 0.25  # seconds after a lock was seen in which loop writes don't try again
RETRY_AFTER_S = 1  # what a refused write's answer tells the client to wait
PROBE_INTERVAL = 1.0  # seconds between tries while the storage refuses writes
CHECKPOINT_EVERY = 500  # loop commits between WAL checkpoints (made by a worker thread)

_CODES = {
    LOCKED: ErrorCode.DATABASE_LOCKED,
    FULL: ErrorCode.STORAGE_FULL,
    READ_ONLY: ErrorCode.STORAGE_FAILED,
    FAILING: ErrorCode.STORAGE_FAILED,
}
_REMEDY = {
    LOCKED: "try again in a moment",
    FULL: "free some space, then try again",
    READ_ONLY: "make it writable, then try again",
    FAILING: "check the disk, then try again",
}


class StorageError(ApiError):
    """A write the storage refused; nothing of it was kept, so it may be made again as it was.
    ``retry_after``: seconds a client should wait before trying again (a lock), else None."""

    def __init__(self, problem: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(_CODES[problem], message)
        self.problem = problem
        self.retry_after = retry_after


class Writes:
    """The gate of the loop's writes and what it knows of the storage's health."""

    def __init__(self, root: Path, clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.db_path = paths.db_path(root)
        self.clock = clock
        self.problem: str | None = None  # FULL, READ_ONLY or FAILING while it lasts
        self.problem_since: float | None = None
        self.locked_since: float | None = None  # when loop writes first found the lock taken
        self._locked_until = 0.0  # monotonic time before which loop writes don't try
        self._workers: list[str] = []  # what this supervisor's worker threads write now
        self._loop: asyncio.AbstractEventLoop | None = None
        self._probe: asyncio.TimerHandle | None = None
        self._commits = 0  # since the last checkpoint
        self._checkpoint: asyncio.Future[None] | None = None

    # --- setup ----------------------------------------------------------------------------
    def attach(self) -> None:
        """Make this thread's connection (the loop's) wait at most :data:`LOOP_BUSY_MS` for
        a lock and leave WAL checkpoints (copying pages into the DB file, and an fsync) to a
        worker thread; remember the loop for the probe and the checkpoints."""
        DB.execute_sql(f"PRAGMA busy_timeout = {LOOP_BUSY_MS}")
        DB.execute_sql("PRAGMA wal_autocheckpoint = 0")
        self._loop = asyncio.get_running_loop()

    def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None

    # --- writing --------------------------------------------------------------------------
    @contextlib.contextmanager
    def worker_writing(self, work: str = "usage import") -> Iterator[None]:
        """A worker thread of this supervisor writes meanwhile (``work``: the usage import,
        the team push; with its own connection): a lock met then is likely its own, and the
        refusal says so."""
        self._workers.append(work)
        try:
            yield
        finally:
            self._workers.remove(work)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (``BEGIN IMMEDIATE``: the lock is taken, or refused, before
        anything is read); raises :class:`StorageError` when the storage refuses it. A
        problem that has cleared is reported by an event in the same transaction."""
        if DB.in_transaction():
            raise RuntimeError("a write of the loop must be its own transaction")
        if time.monotonic() < self._locked_until:
            raise self.error(LOCKED)
        try:
            with DB.atomic(lock_type="IMMEDIATE"):
                self._report_cleared()
                yield
        except Exception as exc:
            refused = self.refused(exc)
            if refused is None:
                raise
            raise refused from exc
        self._writable()

    def refused(self, exc: BaseException) -> StorageError | None:
        """``exc`` as the refusal of a write, in one sentence, noting the problem (for
        ``status``, and its event once it clears); None when it is no storage problem."""
        explained = self.explain(exc)
        if explained is None:
            return None
        problem = explained.problem
        if problem == LOCKED:
            self._locked_until = time.monotonic() + LOCKED_COOLDOWN
            if self.locked_since is None:
                self.locked_since = self.clock()
                log.warning("storage: %s", self.clause(LOCKED))
        elif self.problem != problem:
            self.problem, self.problem_since = problem, self.clock()
            log.warning("storage: %s (%s)", self.clause(problem), exc)
        self._arm_probe()
        return explained

    def explain(self, exc: BaseException) -> StorageError | None:
        """``exc`` as the refusal of a write, in one sentence (noting nothing); None when it
        is no storage problem."""
        problem = problem_of(exc)
        if problem == FAILING:  # SQLite says "disk I/O error" for a full disk at times
            problem = self._folder_problem() or FAILING
        return None if problem is None else self.error(problem)

    def _folder_problem(self) -> str | None:
        """What the data folder's file system says: read-only, full, or nothing wrong."""
        if not hasattr(os, "statvfs"):  # Windows: SQLite's own word stands
            return None
        try:
            fs = os.statvfs(self.root)
        except OSError:
            return None
        if fs.f_flag & os.ST_RDONLY:
            return READ_ONLY
        return FULL if fs.f_bavail == 0 else None

    def error(self, problem: str, message: str | None = None) -> StorageError:
        """The refusal for ``problem``; ``message`` replaces the default sentence."""
        if message is None:
            clause = self.clause(problem)
            message = f"{clause[0].upper()}{clause[1:]}; {_REMEDY[problem]}."
        return StorageError(problem, message, RETRY_AFTER_S if problem == LOCKED else None)

    def clause(self, problem: str) -> str:
        """What is wrong, as a clause: "the data folder /x is full"."""
        if problem == LOCKED and self._workers:
            return f"the database {self.db_path} is busy with this supervisor's {self._work()}"
        if problem == LOCKED:
            return f"the database {self.db_path} is locked by another program"
        if problem == FULL:
            return f"the data folder {self.root} is full"
        if problem == READ_ONLY:
            return f"the data folder {self.root} is read-only"
        return f"the data folder {self.root} cannot be written (disk I/O errors)"

    def _work(self) -> str:
        """What this supervisor's worker threads write now: "usage import", "team push"."""
        return " and ".join(sorted(set(self._workers)))

    # --- health -----------------------------------------------------------------------------
    @property
    def status(self) -> str | None:
        """The storage's problem for ``status`` ("the data folder is full: ..."), or None."""
        if self.problem is not None:
            word = {FULL: "full", READ_ONLY: "read-only"}.get(self.problem, "failing")
            return (
                f"the data folder is {word}: {self.root}, since {_clock(self.problem_since)}; "
                "exits and stops seen meanwhile are kept and written once it can be written"
            )
        if self.locked_since is not None:
            who = (
                f"busy with this supervisor's {self._work()}"
                if self._workers
                else ("locked by another program")
            )
            return (
                f"the database is {who}: {self.db_path}, since {_clock(self.locked_since)}; "
                "commands that write are refused meanwhile"
            )
        return None

    def _report_cleared(self) -> None:
        """Inside a transaction: the event of a problem that cleared (written only if this
        transaction commits, so the problem is reported exactly once)."""
        if self.problem is None:
            return
        now, since = self.clock(), self.problem_since or self.clock()
        word = {FULL: "full", READ_ONLY: "read-only"}.get(self.problem, "failing")
        events.record(
            events.STORAGE_PROBLEM,
            f"the data folder was {word}",
            ts=now,
            severity="error",
            body=(
                f"{self.root} could not be written from {_clock(since)} to {_clock(now)} "
                f"({now - since:.0f} s); commands were refused meanwhile, runners' exits and "
                "stops were kept and are written now"
            ),
            data={"problem": self.problem, "since": since, "until": now, "path": str(self.root)},
        )

    def _writable(self) -> None:
        if self.problem is not None or self.locked_since is not None:
            log.info("storage: writes work again")
        self.problem = self.problem_since = self.locked_since = None
        self._locked_until = 0.0
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY and self._checkpoint is None and self._loop:
            self._commits = 0
            self._checkpoint = self._loop.run_in_executor(None, _checkpoint)
            self._checkpoint.add_done_callback(self._checkpointed)

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self._checkpoint = None
        exc = None if done.cancelled() else done.exception()
        if exc is not None and problem_of(exc) is None:
            log.warning("storage: WAL checkpoint failed: %s", exc)

    def _arm_probe(self) -> None:
        """While writes are refused, try one every second, so the problem clears (and is
        reported) even when nothing else writes."""
        if self._probe is None and self._loop is not None and not self._loop.is_closed():
            self._probe = self._loop.call_later(PROBE_INTERVAL, self._try_probe)

    def _try_probe(self) -> None:
        self._probe = None
        if self.problem is None and self.locked_since is None:
            return
        with contextlib.suppress(StorageError), self.transaction():
            pass


def _checkpoint() -> None:
    """In a worker thread (its own connection): copy the WAL into the DB file, without
    waiting for anyone (PASSIVE), so the WAL does not grow without end."""
    DB.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")


def _clock(ts: float | None) -> str:
    return datetime.fromtimestamp(ts or 0).strftime("%H:%M:%S")
