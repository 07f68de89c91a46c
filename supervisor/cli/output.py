"""What every command shares on the way out: exit statuses, the one-line error, tables,
sizes and durations, JSON, progress.

Exit statuses (:class:`ExitStatus`, also in ``docs/cli.md``):

====  ============  =============================================================
   0  OK            the command did what it was asked
   1  ERROR         unexpected failure (a bug; ``STRATAVORE_DEBUG=1`` shows the traceback)
   2  USAGE         bad arguments, or the API refused the request as invalid (400, 422)
   3  NOT_RUNNING   no supervisor runs for this data dir, or it did not answer
   4  NOT_FOUND     no such project, profile or runner (404)
   5  CONFLICT      state conflict, name already exists, or cap reached (409)
   6  UNAUTHORIZED  the API rejected the admin token (401)
  75  TRY_AGAIN     the data folder is full or read-only, or the database stayed locked by
                    another program (503, 507): what the message says was not recorded
 130  INTERRUPTED   Ctrl-C during a one-shot command (``logs -f`` and ``watch`` exit 0)
====  ============  =============================================================
"""

from __future__ import annotations

import enum
import json
import os
import sys
import time
import traceback
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from supervisor.core.errors import ApiError, ErrorCode, KnownError

Json = dict[str, Any]
WIDTH = 100  # tables are fitted to this many columns


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_RUNNING = 3
    NOT_FOUND = 4
    CONFLICT = 5
    UNAUTHORIZED = 6
    TRY_AGAIN = 75  # sysexits' EX_TEMPFAIL
    INTERRUPTED = 130


# The one place an API error code becomes an exit status.
EXIT_FOR_ERROR: dict[ErrorCode, ExitStatus] = {
    ErrorCode.BAD_REQUEST: ExitStatus.USAGE,
    ErrorCode.INVALID: ExitStatus.USAGE,
    ErrorCode.COMMAND_NOT_FOUND: ExitStatus.USAGE,
    ErrorCode.UNAUTHORIZED: ExitStatus.UNAUTHORIZED,
    ErrorCode.FORBIDDEN: ExitStatus.UNAUTHORIZED,
    ErrorCode.NOT_FOUND: ExitStatus.NOT_FOUND,
    ErrorCode.METHOD_NOT_ALLOWED: ExitStatus.ERROR,  # a client bug, not the user's
    ErrorCode.REQUEST_TIMEOUT: ExitStatus.ERROR,
    ErrorCode.TOO_LARGE: ExitStatus.USAGE,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: ExitStatus.ERROR,  # a client bug
    ErrorCode.MISDIRECTED: ExitStatus.ERROR,  # a client bug
    ErrorCode.HEADERS_TOO_LARGE: ExitStatus.ERROR,
    ErrorCode.CONFLICT: ExitStatus.CONFLICT,
    ErrorCode.ALREADY_EXISTS: ExitStatus.CONFLICT,
    ErrorCode.CAP_REACHED: ExitStatus.CONFLICT,
    ErrorCode.BUDGET_SPENT: ExitStatus.CONFLICT,
    ErrorCode.SHUTTING_DOWN: ExitStatus.NOT_RUNNING,
    ErrorCode.UNAVAILABLE: ExitStatus.ERROR,
    ErrorCode.DATABASE_LOCKED: ExitStatus.TRY_AGAIN,
    ErrorCode.STORAGE_FULL: ExitStatus.TRY_AGAIN,
    ErrorCode.STORAGE_FAILED: ExitStatus.TRY_AGAIN,
    ErrorCode.OVERLOADED: ExitStatus.TRY_AGAIN,
    ErrorCode.INTERNAL: ExitStatus.ERROR,
}


class UsageError(Exception):
    """Arguments the command cannot use; exit status 2."""


# --- errors -----------------------------------------------------------------------------
def fail(message: object) -> None:
    """``message`` as one ``stratavore: ...`` line on stderr."""
    print("stratavore: " + " ".join(str(message).split("\n")), file=sys.stderr)


def failed(exc: Exception) -> ExitStatus:
    """Say what went wrong in one line on stderr; the exit status it means."""
    status, message = judged(exc)
    fail(message)
    return status


def judged(exc: Exception) -> tuple[ExitStatus, str]:
    """The exit status and the sentence of a command's failure."""
    if isinstance(exc, UsageError):
        return ExitStatus.USAGE, str(exc)
    # here, not at the top: only the commands that talk to a supervisor pay for `requests`
    from supervisor.api.client import ClientError, NotRunning

    if isinstance(exc, NotRunning):
        return ExitStatus.NOT_RUNNING, str(exc)
    if isinstance(exc, ClientError | ApiError):  # ApiError: from the commands on the DB
        return EXIT_FOR_ERROR.get(exc.code, ExitStatus.ERROR), exc.message
    if isinstance(exc, KnownError):
        return ExitStatus.ERROR, str(exc)
    if os.environ.get("STRATAVORE_DEBUG") == "1":
        traceback.print_exception(exc)
    from supervisor.cli.database import damaged_database

    damage = damaged_database(exc)
    if damage:
        return ExitStatus.ERROR, damage
    return ExitStatus.ERROR, (
        f"internal error: {type(exc).__name__}: {exc} (this is a bug, please report it; "
        "STRATAVORE_DEBUG=1 shows the traceback)"
    )


# --- formatting -------------------------------------------------------------------------
def human_size(n: float | None) -> str:
    """Bytes as ``512B``, ``1.5K``, ``12.3M`` (powers of 1024); ``-`` when unknown."""
    if n is None:
        return "-"
    if n < 1024:
        return f"{int(n)}B"
    for unit in "KMGTP":
        n /= 1024
        if n < 1023.95 or unit == "P":
            return f"{n:.1f}{unit}"
    raise AssertionError("unreachable")


def human_duration(seconds: float | None) -> str:
    """Seconds as ``42s``, ``3m12s``, ``2h05m``, ``3d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def parse_ts(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def render_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    right: Collection[str] = (),
    fit: Collection[str] = (),
    width: int = WIDTH,
) -> str:
    """Columns two spaces apart; ``right`` ones right-aligned; ``fit`` ones truncated (the
    widest first) until the lines are at most ``width`` long."""
    cells = [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    over = sum(widths) + 2 * (len(widths) - 1) - width
    shrinkable = [i for i, h in enumerate(headers) if h in fit]
    while over > 0 and shrinkable:
        i = max(shrinkable, key=lambda j: widths[j])
        if widths[i] <= max(len(headers[i]), 3):
            break
        widths[i] -= 1
        over -= 1
    for r in cells:
        for i in shrinkable:
            if len(r[i]) > widths[i]:
                r[i] = r[i][: widths[i] - 3] + "..."
    lines = []
    for row in [list(headers), *cells]:
        parts = [
            c.rjust(w) if h in right else c.ljust(w)
            for c, w, h in zip(row, widths, headers, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


class Progress:
    """Progress of long work as a line on stderr, once it runs past a second: redrawn every
    0.2 s on a terminal, a new line every 5 s into a log."""

    def __init__(self, doing: str) -> None:
        self.doing = doing
        self.tty = sys.stderr.isatty()
        self.began = self.shown = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if total and now - self.began > 1.0 and now - self.shown > (0.2 if self.tty else 5.0):
            self.shown = now
            line = f"{self.doing}: {100 * done // total}% "
            line += f"({human_size(done)} of {human_size(total)})"
            end = "" if self.tty else "\n"
            print(("\r" + line) if self.tty else line, end=end, file=sys.stderr)

    def end(self) -> None:
        if self.tty and self.shown > self.began:  # end the progress line
            print(file=sys.stderr)
