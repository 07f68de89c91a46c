"""One table of API error codes, and the exceptions that carry them.

Handlers raise :class:`ApiError` (or a subclass); the API layer turns every one into
``{"error": code, "message": sentence}`` with the table's HTTP status, and the CLI maps the
same codes to its exit statuses. Nothing else decides a status code.
"""

from __future__ import annotations

import enum
import errno
import sqlite3


class ErrorCode(enum.Enum):
    """API error code -> HTTP status."""

    BAD_REQUEST = ("bad_request", 400)  # body is not JSON, unknown query parameter value
    UNAUTHORIZED = ("unauthorized", 401)  # missing or wrong bearer token
    FORBIDDEN = ("forbidden", 403)  # sent by a web page (Origin, Sec-Fetch-Site)
    NOT_FOUND = ("not_found", 404)  # no such project / profile / runner / route
    METHOD_NOT_ALLOWED = ("method_not_allowed", 405)  # the route exists, not with that method
    REQUEST_TIMEOUT = ("request_timeout", 408)  # the body did not arrive in time
    CONFLICT = ("conflict", 409)  # the object is in a state that forbids the request
    ALREADY_EXISTS = ("already_exists", 409)  # a project or profile with that name exists
    CAP_REACHED = ("cap_reached", 409)  # --no-queue launch over a concurrency cap
    BUDGET_SPENT = ("budget_spent", 409)  # a launch that a spent block/stop budget forbids
    TOO_LARGE = ("too_large", 413)  # a body over the limit
    UNSUPPORTED_MEDIA_TYPE = ("unsupported_media_type", 415)  # a body that is not JSON
    MISDIRECTED = ("misdirected", 421)  # a Host that is not the API's (DNS rebinding)
    INVALID = ("invalid", 422)  # well-formed JSON whose fields are wrong
    COMMAND_NOT_FOUND = ("command_not_found", 422)  # launch of a command not on PATH
    HEADERS_TOO_LARGE = ("headers_too_large", 431)  # a request line or header over the limit
    SHUTTING_DOWN = ("shutting_down", 503)  # the supervisor is stopping
    DATABASE_LOCKED = ("database_locked", 503)  # another program holds the DB: retry (Retry-After)
    STORAGE_FULL = ("storage_full", 507)  # the data folder is full: the write was not made
    STORAGE_FAILED = ("storage_failed", 503)  # the data folder is read-only or failing (I/O)
    UNAVAILABLE = ("unavailable", 503)  # an OS service it needs is missing (the keyring)
    OVERLOADED = ("overloaded", 503)  # every connection slot is taken
    INTERNAL = ("internal", 500)  # a bug: logged with its traceback

    def __init__(self, code: str, status: int) -> None:
        self.code = code
        self.status = status

    @classmethod
    def from_code(cls, code: str) -> ErrorCode:
        for member in cls:
            if member.code == code:
                return member
        return cls.INTERNAL


class ApiError(Exception):
    """An error a user can act on, with one sentence that says what and what to do."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(what: str) -> ApiError:
    return ApiError(ErrorCode.NOT_FOUND, f"{what} does not exist.")


class KnownError(Exception):
    """The environment is in the way (port in use, data dir locked, DB too new): shown to the
    user as one sentence, never as a traceback."""


# --- storage problems ------------------------------------------------------------------------
LOCKED, FULL, READ_ONLY, FAILING = "locked", "full", "read_only", "failing"
# SQLite's primary result codes (the low byte of an extended code) and errnos, by problem
_SQLITE_PROBLEMS = {5: LOCKED, 6: LOCKED, 8: READ_ONLY, 10: FAILING, 13: FULL, 14: FAILING}
_OS_PROBLEMS = {errno.ENOSPC: FULL, errno.EDQUOT: FULL, errno.EROFS: READ_ONLY}


def problem_of(exc: BaseException) -> str | None:
    """The storage problem behind ``exc`` (:data:`LOCKED`, :data:`FULL`, ...), else None.

    The chain of exceptions is searched: peewee wraps sqlite3's errors, and when a COMMIT
    fails on a full disk SQLite rolls the transaction back itself, so peewee's own ROLLBACK
    then fails with "no transaction is active", hiding the first error behind it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "sqlite_errorcode", None)
        if isinstance(current, sqlite3.Error) and code is not None:
            if code & 0xFF in _SQLITE_PROBLEMS:
                return _SQLITE_PROBLEMS[code & 0xFF]
        elif isinstance(current, OSError) and current.errno in _OS_PROBLEMS:
            return _OS_PROBLEMS[current.errno]
        current = current.__cause__ or current.__context__
    return None
