"""Per-runner timestamped, size-rotated logs, without a helper process per runner.

A runner's stdout and stderr go straight (``O_APPEND``) into a raw spool file,
``<run_dir>/output``: no pipe ties the child to the supervisor, so runners survive the
supervisor dying. The supervisor periodically *pumps* every spool: it reads the new bytes,
prefixes each complete line with a UTC timestamp, appends them to ``<run_dir>/runner.log``
(rotated by size like :class:`logging.handlers.RotatingFileHandler`) and, once the spool is
fully consumed and large, truncates it (logrotate's "copytruncate"; because the child's fd is
``O_APPEND`` its next write lands at the new end).

The spool carries no times, so a line's timestamp is the time of the pump that read it, not the
time the child wrote it: it is late by at most one pump interval.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from supervisor.core.paths import private_opener

SPOOL_NAME = "output"
LOG_NAME = "runner.log"

_CHUNK = 1024 * 1024  # spool bytes read per step, to bound memory on a large backlog
_MAX_PARTIAL = 64 * 1024  # a partial line longer than this is written out as a line
# A spool that stayed the same is looked at every 2nd, 4th, then at most every 8th tick, so a
# thousand quiet runners cost ~125 stat calls a second; readers call drain(final=False) first.
_IDLE_STRIDE_MAX = 8
_ID_HEAD = 64  # at most this much of runner.log's first line goes into its file id
_TAIL_BLOCK = 64 * 1024  # bytes read per step when reading a log backwards

log = logging.getLogger(__name__)


@dataclass
class _Spool:
    """Pump state of one runner; ``lock`` keeps two pumps of the same spool apart."""

    run_dir: Path
    read_pos: int  # spool bytes read, including the held partial line
    partial: bytes = b""  # the last line read, still waiting for its newline
    ino: int | None = None  # the spool's inode, to notice it being replaced
    lock: threading.Lock = field(default_factory=threading.Lock)
    idle: int = 0  # consecutive looks that found nothing new
    log_made: bool = False  # runner.log exists (made by the first tick that looks)
    due: int = 0  # the tick at which to look again

    @property
    def offset(self) -> int:
        """Spool bytes fully written to runner.log: where a restarted pump resumes."""
        return self.read_pos - len(self.partial)


class LogPump:
    """Copies runners' spools into timestamped, rotated runner.log files.

    ``tick``/``drain`` may run in a worker thread while ``track``/``untrack`` run in the event
    loop thread: the runner table is guarded by a lock held only to look entries up, and each
    runner's file I/O by that runner's own lock.
    """

    def __init__(
        self,
        max_bytes: int = 10 * 1024 * 1024,
        backups: int = 3,
        spool_truncate_at: int = 1024 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_bytes = max_bytes
        self.backups = backups
        self.spool_truncate_at = spool_truncate_at
        self.clock = clock
        self._lock = threading.Lock()
        self._spools: dict[int, _Spool] = {}
        self._ticks = 0

    def track(self, runner_id: int, run_dir: Path, offset: int = 0) -> None:
        """Pump this runner's spool from byte ``offset`` on.

        ``offset`` is the value persisted from ``tick``/``drain``, so a restarted supervisor
        continues where the previous one stopped. Tracking a runner again replaces its state.
        """
        with self._lock:
            self._spools[runner_id] = _Spool(run_dir, offset)

    def untrack(self, runner_id: int) -> None:
        """Stop pumping this runner's spool (no-op when not tracked)."""
        with self._lock:
            self._spools.pop(runner_id, None)

    def tick(self, now: float | None = None) -> dict[int, int]:
        """Pump every tracked spool that grew; ``{runner_id: offset}`` for changed offsets.

        Costs one ``os.stat`` per runner due for a look (quiet spools are looked at less and
        less often, down to every 8th tick). Only complete lines are
        written; a partial last line is held until its newline arrives (or it exceeds 64 KiB).
        The caller persists the returned offsets (one transaction) to hand them to ``track``
        after a restart.
        """
        stamp = _stamp(self.clock() if now is None else now)
        with self._lock:
            spools = dict(self._spools)
            self._ticks += 1
            tick = self._ticks
        changed: dict[int, int] = {}
        for runner_id, spool in spools.items():
            if spool.due > tick:
                continue
            with spool.lock:
                if not spool.log_made:
                    self._make_log(spool)
                before = spool.offset
                active = self._pump_quietly(spool, stamp, final=False)
                after = spool.offset
                spool.idle = 0 if active else spool.idle + 1
                spool.due = tick + min(2**spool.idle, _IDLE_STRIDE_MAX)
            if after != before:
                changed[runner_id] = after
        with self._lock:  # drop runners untracked or re-tracked meanwhile
            return {r: o for r, o in changed.items() if self._spools.get(r) is spools[r]}

    @staticmethod
    def _make_log(spool: _Spool) -> None:
        """Make runner.log (empty) at the first tick after the runner started, as other
        supervisors make a program's log when they start it: making a file waits on the
        disk's journal (about a millisecond under load here), and a thousand runners
        stopped together would otherwise make theirs at once, for the trampoline's
        'Terminated', while their stops wait for the final drain."""
        try:
            os.close(private_opener(str(spool.run_dir / LOG_NAME), os.O_WRONLY | os.O_CREAT))
        except OSError:  # its run dir is gone, or the disk refuses: the pump says so later
            return
        spool.log_made = True

    def drain(self, runner_id: int, now: float | None = None, final: bool = True) -> int:
        """Pump one runner now and return its offset: the final pump of an ended runner
        (``final``: its partial last line too), or, with ``final=False``, a refresh before its
        log is read. The runner stays tracked. Raises KeyError when it is not tracked.
        """
        stamp = _stamp(self.clock() if now is None else now)
        with self._lock:
            spool = self._spools[runner_id]
        with spool.lock:
            self._pump_quietly(spool, stamp, final=final)
            spool.idle = spool.due = 0
            return spool.offset

    def _pump_quietly(self, spool: _Spool, stamp: bytes, final: bool) -> bool:
        """``_pump``, skipping a runner whose files vanished or fail (one runner never stops
        the others); whether the spool had anything new."""
        try:
            return self._pump(spool, stamp, final)
        except FileNotFoundError:
            return False  # run_dir deleted, or the runner has not started writing yet
        except OSError as exc:
            log.warning("pumping %s failed: %s", spool.run_dir / SPOOL_NAME, exc)
            return False

    def _pump(self, spool: _Spool, stamp: bytes, final: bool) -> bool:
        """Copy what the spool gained into runner.log (``final``: the held partial line too),
        then truncate the spool when it is fully consumed and large; whether it gained any."""
        path = spool.run_dir / SPOOL_NAME
        runner_log = spool.run_dir / LOG_NAME
        st = os.stat(path)  # when nothing changed, the only system call
        if st.st_size < spool.read_pos or spool.ino not in (None, st.st_ino):
            # Truncated or replaced behind our back: start over, keeping the held partial line.
            self._write(runner_log, stamp, [spool.partial] if spool.partial else [])
            spool.read_pos, spool.partial = 0, b""
        spool.ino = st.st_ino
        gained = st.st_size > spool.read_pos
        if gained:
            with open(path, "rb") as f:
                f.seek(spool.read_pos)
                while spool.read_pos < st.st_size:
                    chunk = f.read(min(_CHUNK, st.st_size - spool.read_pos))
                    if not chunk:
                        break
                    *lines, partial = (spool.partial + chunk).split(b"\n")
                    if len(partial) > _MAX_PARTIAL:
                        lines.append(partial)
                        partial = b""
                    self._write(runner_log, stamp, lines)
                    spool.read_pos += len(chunk)
                    spool.partial = partial
        if final and spool.partial:
            self._write(runner_log, stamp, [spool.partial])
            spool.partial = b""
        # copytruncate, only if the child wrote nothing since we read. Bytes it writes between
        # this stat and the truncate are lost (a microsecond window).
        if (
            not spool.partial
            and spool.read_pos >= self.spool_truncate_at
            and os.stat(path).st_size == spool.read_pos
        ):
            os.truncate(path, 0)
            spool.read_pos = 0
        return gained

    def _write(self, runner_log: Path, stamp: bytes, lines: list[bytes]) -> None:
        """Append ``lines`` (newline-less) to runner.log, rotating before a line would push it
        past ``max_bytes``; a line longer than that alone goes into a fresh file."""
        if not lines:
            return
        records = [stamp + _clean(line) + b"\n" for line in lines]
        while True:
            with open(runner_log, "ab", opener=private_opener) as out:
                size = os.fstat(out.fileno()).st_size
                n = 0
                while n < len(records) and (size == 0 or size + len(records[n]) <= self.max_bytes):
                    size += len(records[n])
                    n += 1
                out.write(b"".join(records[:n]))
            records = records[n:]
            if not records:
                return
            self._rotate(runner_log)

    def _rotate(self, runner_log: Path) -> None:
        """runner.log.(n-1) -> .n, ..., runner.log -> .1, keeping ``backups`` old files."""
        for n in range(self.backups - 1, 0, -1):
            older = _backup(runner_log, n)
            if older.exists():
                os.replace(older, _backup(runner_log, n + 1))
        if self.backups > 0:
            os.replace(runner_log, _backup(runner_log, 1))
        else:
            runner_log.unlink()


def read_log(
    run_dir: Path, tail: int | None = 100, offset: int | None = None, file_id: str | None = None
) -> tuple[str, int, str]:
    """Read a runner's log for the API: ``(text, offset, file_id)``.

    With ``offset=None``: the last ``tail`` lines (all of runner.log for ``tail=None``), reaching
    into runner.log.1 when runner.log has fewer. With ``offset`` and ``file_id`` from a previous
    call (following): what runner.log gained since, or all of it when ``file_id`` no longer
    matches (the log rotated). Only complete lines are returned; the returned ``offset`` is the
    byte position in runner.log read up to, and ``file_id`` identifies that file. A missing log
    gives ``("", 0, "")``.
    """
    path = run_dir / LOG_NAME
    try:
        f = open(path, "rb")  # noqa: SIM115 - only the open may report a missing log
    except FileNotFoundError:
        return "", 0, ""
    with f:  # one open file: id, size and text all belong to the same runner.log
        size = os.fstat(f.fileno()).st_size
        current_id = _file_id(f)
        if offset is None and tail is not None:
            lines, end = _tail(f, size, tail)
            if len(lines) < tail:
                lines = _tail_of(_backup(path, 1), tail - len(lines)) + lines
        else:
            start = offset if offset is not None and file_id == current_id else 0
            if start > size:  # cannot happen for the same file; be safe
                start = 0
            f.seek(start)
            data = f.read(size - start)
            data = data[: data.rfind(b"\n") + 1]  # drop a line still being written
            lines, end = [data], start + len(data)
    return b"".join(lines).decode("utf-8", "replace"), end, current_id


def _stamp(now: float) -> bytes:
    """``2026-11-21T21:30:00.123Z `` for ``now`` (UTC, milliseconds)."""
    text = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    return f"{text}Z ".encode()


def _clean(line: bytes) -> bytes:
    """``line`` as valid UTF-8, without the ``\\r`` of a CRLF ending."""
    if line.endswith(b"\r"):
        line = line[:-1]
    return line.decode("utf-8", "replace").encode("utf-8")


def _backup(runner_log: Path, n: int) -> Path:
    return runner_log.with_name(f"{runner_log.name}.{n}")


def _file_id(f: BinaryIO) -> str:
    """Identifies the open runner.log: its inode plus a checksum of the start of its first line
    (timestamp first), which later appends do not change. Not its ctime: on POSIX every write
    changes that; and rotation may hand a deleted backup's inode number to the new file."""
    f.seek(0)
    first_line = f.read(_ID_HEAD).split(b"\n")[0]
    return f"{os.fstat(f.fileno()).st_ino}-{zlib.crc32(first_line):08x}"


def _tail(f: BinaryIO, size: int, n: int) -> tuple[list[bytes], int]:
    """The last ``n`` complete lines of ``f`` (``size`` bytes long) and the offset after them,
    reading backwards only as far as needed."""
    pos, data = size, b""
    while pos > 0 and data.count(b"\n") <= n:
        step = min(_TAIL_BLOCK, pos)
        pos -= step
        f.seek(pos)
        data = f.read(step) + data
    data = data[: data.rfind(b"\n") + 1]  # drop a line still being written
    end = pos + len(data)
    # More than n newlines when pos > 0, so a first line cut at pos is never among the last n.
    lines = [line + b"\n" for line in data.split(b"\n")[:-1]]
    return (lines[-n:] if n else []), end


def _tail_of(path: Path, n: int) -> list[bytes]:
    """The last ``n`` lines of the file at ``path``; none when it is missing."""
    try:
        with open(path, "rb") as f:
            return _tail(f, os.fstat(f.fileno()).st_size, n)[0]
    except FileNotFoundError:
        return []
