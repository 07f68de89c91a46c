"""Incremental reading of the agents' append-only JSONL logs, safe on files being written.

Between refreshes the importer remembers one ``FileMark`` per file: how far it read, and enough
to notice that the file was truncated or rewritten. ``iter_new`` then hands out only complete
new lines, in large blocks so memory stays bounded on gigabyte logs; a line still being written
waits for the next refresh (a last line that is already a whole JSON object is taken, as
ccusage takes it). The parsers (``claude.py``, ``codex.py``) share ``Parsed``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from supervisor.usage.records import UsageRow

HEAD_BYTES = 4096  # how much of a file's start the head hash covers
BLOCK = 16 << 20  # read size: large blocks keep the per-read cost negligible
MAX_PROBLEMS = 5  # problems kept per parse call; the rest are only counted

_tail_decoder = msgspec.json.Decoder()
_ISO_UTC = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{3}))?(?:Z|([+-])(\d\d):(\d\d))",
    re.ASCII,
)
_EPOCH_DAY = date(1970, 1, 1).toordinal()


def parse_timestamp(text: str) -> float | None:
    """UTC epoch seconds of an RFC 3339 timestamp, accepted exactly as ccusage accepts it.

    ccusage (rust/crates/ccusage/src/date_utils.rs ``parse_ts_timestamp``) takes only
    ``YYYY-MM-DDTHH:MM:SS`` with no or exactly three fraction digits, then ``Z`` or ``+HH:MM``;
    any other shape drops the line. The agents write ``...SS.mmmZ``: that shape goes through
    ``datetime.fromisoformat`` (in C); the rest through the exact rule.
    """
    if (
        len(text) == 24
        and text[23] == "Z"
        and text[19] == "."
        and text[10] == "T"
        and text[4] == "-"
        and text[7] == "-"
        and text[13] == ":"
        and text[16] == ":"
    ):
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            return None
    match = _ISO_UTC.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, millis, sign, off_h, off_m = match.groups()
    if int(hour) > 23 or int(minute) > 59 or int(second) > 59:
        return None
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_DAY
    except ValueError:
        return None
    offset = 0 if sign is None else (int(off_h) * 60 + int(off_m)) * (1 if sign == "+" else -1)
    seconds = days * 86400 + int(hour) * 3600 + int(minute) * 60 + int(second) - offset * 60
    return seconds + (int(millis) / 1000 if millis else 0.0)


def iso_timestamp(text: str) -> float | None:
    """UTC epoch seconds of an ISO 8601 timestamp: ``parse_timestamp``'s shapes, then any form
    ``datetime.fromisoformat`` takes (a time without a zone is UTC); None if neither."""
    text = text.strip()
    ts = parse_timestamp(text)
    if ts is None and text:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ts = moment.timestamp()
    return ts


def head_hash(data: bytes) -> str:
    """A short hash of a file's first bytes, to notice a file rewritten in place."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


@dataclass(frozen=True)
class FileMark:
    """What we remember about one file between refreshes.

    ``offset`` is how many bytes were consumed (the end of the last complete line); ``head`` is
    ``head_hash`` of the first ``min(HEAD_BYTES, offset)`` bytes; ``context`` is the parser's
    state carried to the next refresh (JSON-serialisable; the parsers update it in place).
    """

    size: int
    mtime_ns: int
    offset: int
    head: str
    context: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "offset": self.offset,
            "head": self.head,
            "context": self.context,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileMark:
        return cls(
            size=int(data["size"]),
            mtime_ns=int(data["mtime_ns"]),
            offset=int(data["offset"]),
            head=str(data["head"]),
            context=dict(data.get("context") or {}),
        )


@dataclass(frozen=True)
class Chunk:
    """Complete new lines of one file, and the mark to store once they are processed.

    ``mark.context`` is the dict to hand to the parser: it updates it in place, so storing
    ``mark`` after parsing stores the parser's state too. ``end`` (= ``start + len(data)``)
    against ``mark.size`` is the progress through the file, in bytes.
    """

    data: bytes
    start: int  # file offset of data[0]
    restarted: bool  # the file was truncated or rewritten: reading again from 0
    mark: FileMark

    @property
    def end(self) -> int:
        return self.start + len(self.data)


@dataclass
class Parsed:
    """What a parser made of one chunk: the rows, and the lines it had to skip, with why."""

    rows: list[UsageRow] = field(default_factory=list)
    skipped: int = 0  # malformed, truncated or invalid usage lines
    problems: list[str] = field(default_factory=list)  # the first few, one sentence each
    context: dict[str, Any] = field(default_factory=dict)

    def skip(self, source: str, offset: int, reason: str) -> None:
        """Count one skipped line; keep the first few reasons, located by byte offset."""
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{source} at byte {offset}: {reason}")


def _complete_tail(tail: bytes) -> bool:
    """Whether an unterminated last line is nevertheless a whole JSON object.

    ccusage counts a last line without its newline; a prefix of a JSON object never decodes
    as a whole object, so such a tail is complete and safe to consume (its newline, when it
    comes, reads as an empty line).
    """
    if not tail.rstrip().endswith(b"}"):
        return False
    try:
        return isinstance(_tail_decoder.decode(tail), dict)
    except (msgspec.DecodeError, ValueError):
        return False


def _changed(path: Path, mark: FileMark | None) -> bool:
    """Whether ``path`` exists and its size or mtime differs from ``mark`` (one stat)."""
    try:
        st = path.stat()
    except OSError:
        return False
    return mark is None or st.st_size != mark.size or st.st_mtime_ns != mark.mtime_ns


def iter_new(path: Path, mark: FileMark | None, block: int = BLOCK) -> Iterator[Chunk]:
    """The complete lines appended to ``path`` since ``mark``, in blocks of about ``block``.

    Yields nothing when size and mtime are unchanged (the file is not even opened) or the file
    is gone. A file that shrank below ``mark.offset`` or whose head changed is read again from
    0 with a fresh context, and its first chunk says ``restarted``. A line without its newline
    is not consumed (unless it is a whole JSON object) and waits for the next refresh. Only
    the bytes present when the file was opened are read, so a writer racing us is caught up
    with on the next refresh.
    """
    if not _changed(path, mark):
        return
    try:
        handle = path.open("rb")
    except OSError:
        return
    with handle:
        st = os.fstat(handle.fileno())
        size, mtime_ns = st.st_size, st.st_mtime_ns
        offset, context, restarted = 0, {}, mark is not None
        head, head_len = "", -1  # head_hash of the first head_len bytes
        if mark is not None and size >= mark.offset:
            covered = min(HEAD_BYTES, mark.offset)
            if head_hash(handle.read(covered)) == mark.head:
                offset, context, restarted = mark.offset, mark.context, False
                head, head_len = mark.head, covered
        pos, want, yielded = offset, block, False
        while True:
            # Each block starts at a line start: a partial line is read again with the next
            # block rather than copied into it.
            handle.seek(pos)
            asked = min(want, size - pos)
            data = handle.read(asked) if asked > 0 else b""
            at_end = len(data) < asked or pos + len(data) >= size  # short read: it shrank
            cut = data.rfind(b"\n") + 1
            if at_end and cut < len(data) and _complete_tail(data[cut:]):
                cut = len(data)
            if cut == 0 and not at_end:
                want *= 2  # one line longer than a block: read it whole
                continue
            end = pos + cut
            if cut or (not yielded and at_end):
                if min(HEAD_BYTES, end) != head_len:
                    head_len = min(HEAD_BYTES, end)
                    head = _head_at(handle, head_len)
                consumed = data if cut == len(data) else data[:cut]
                yield Chunk(consumed, pos, restarted, FileMark(size, mtime_ns, end, head, context))
                yielded, restarted = True, False
            if at_end:
                return
            pos, want = end, block


def iter_whole(path: Path, mark: FileMark | None) -> Iterator[Chunk]:
    """A file rewritten whole on every change (a JSON document, not a log): all of it, as one
    chunk, when its size or mtime changed since ``mark``; nothing when unchanged or gone.

    The chunk says ``restarted`` whenever an earlier version was read: its rows are read again
    (their dedupe keys make that harmless) and the file's counts start over.
    """
    if not _changed(path, mark):
        return
    try:
        with path.open("rb") as handle:
            st = os.fstat(handle.fileno())
            data = handle.read()
    except OSError:
        return
    head = head_hash(data[:HEAD_BYTES])
    yield Chunk(data, 0, mark is not None, FileMark(st.st_size, st.st_mtime_ns, len(data), head))


def _head_at(handle: BinaryIO, length: int) -> str:
    """``head_hash`` of the first ``length`` bytes, keeping the read position."""
    here = handle.tell()
    handle.seek(0)
    data = handle.read(length)
    handle.seek(here)
    return head_hash(data)


def read_new(path: Path, mark: FileMark | None) -> tuple[bytes, int, bool, FileMark] | None:
    """All complete new lines at once: ``(chunk, start offset, restarted, new mark)``.

    ``None`` when the file is unchanged (size and mtime equal) or gone. Prefer ``iter_new``
    for large files: this joins its blocks in memory.
    """
    chunks = list(iter_new(path, mark))
    if not chunks:
        return None
    first, last = chunks[0], chunks[-1]
    data = first.data if len(chunks) == 1 else b"".join(c.data for c in chunks)
    return data, first.start, first.restarted, last.mark


def jsonl_files(directory: Path) -> list[Path]:
    """Every ``*.jsonl`` file under ``directory``, recursively, sorted by path.

    Like ccusage, symbolic links are not followed (a link loop cannot hang a scan, and a
    linked copy is not counted twice) and unreadable directories are skipped.
    """
    return [Path(path) for path in _jsonl_paths(directory)]


def _jsonl_paths(directory: Path) -> list[str]:
    """``jsonl_files`` as strings: a refresh lists ten thousand files, and a ``Path`` made,
    sorted and hashed for each costs several times the ``scandir`` itself."""
    found: list[str] = []
    stack = [str(directory)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif (
                            entry.name.endswith(".jsonl")
                            and entry.name != ".jsonl"
                            and entry.is_file(follow_symlinks=False)
                        ):
                            found.append(entry.path)
                    except OSError:
                        continue
        except OSError:
            continue
    found.sort()
    return found


def discover(directories: Iterable[Path]) -> list[Path]:
    """``jsonl_files`` of several directories, each file once, in order."""
    found = itertools.chain.from_iterable(_jsonl_paths(directory) for directory in directories)
    return [Path(path) for path in dict.fromkeys(found)]
