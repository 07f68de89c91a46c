"""How a request is read and an answer written: bodies decoded within their bounds (size,
time, nesting), query and path parameters, the bearer token, JSON answers and error answers.

Every handler reads its request through these, so a malformed one gets the same sentence
wherever it is sent.
"""

from __future__ import annotations

import asyncio
from itertools import accumulate
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from supervisor.api import schemas as sc
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.storage.writes import StorageError

T = TypeVar("T")
ENCODER = msgspec.json.Encoder()
JSON_HEADERS = {"Content-Type": "application/json"}  # prebuilt: no content-type parsing


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=ENCODER.encode(payload), status=status, headers=JSON_HEADERS)


def error_response(code: ErrorCode, message: str) -> web.Response:
    return json_response(sc.Error(error=code.code, message=message), code.status)


def storage_response(exc: StorageError) -> web.Response:
    """A write the storage refused: its sentence, and when to try again if that helps."""
    response = error_response(exc.code, exc.message)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


NOT_JSON = ApiError(ErrorCode.BAD_REQUEST, "The request body is not valid JSON.")
MAX_ID = 2**63 - 1  # SQLite's integer range
MAX_BODY = 1024 * 1024  # bytes; the largest legitimate body is a 200,000-character prompt
MAX_DEPTH = 64  # levels of [ and { in a body; ours need 4
BODY_TIMEOUT = 30.0  # seconds for a body to arrive once its headers have
BRACKETS = bytes.maketrans(b"{}", b"[]")  # one kind of bracket: [ opens, ] closes
NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
STEP = {ord("["): 1, ord("]"): -1}
TOO_DEEP = b"[" * (MAX_DEPTH + 1)  # a run this long needs no counting


def check_depth(body: bytes) -> None:
    """Refuse a body nested deeper than :data:`MAX_DEPTH` before a decoder recurses into it:
    100,000 levels of ``[`` made msgspec raise RecursionError (issue 19).

    Strings are cut out the way a JSON parser reads them (escaped backslashes, then escaped
    quotes, then every other piece between quotes is a string), so brackets in them do not
    count; for input that is not JSON this may count more than a parser would reach, never
    less. Arrays of flat objects, the common big body, collapse in one C-speed pass first."""
    if len(body.translate(None, NOT_BRACKETS)) <= MAX_DEPTH:
        return
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(body.split(b'"')[::2]).translate(BRACKETS, NOT_BRACKETS)
    collapsed = outside.replace(b"[]", b"")
    levels = int(len(collapsed) < len(outside))  # the innermost level just removed
    if len(collapsed) + levels <= MAX_DEPTH:
        return
    if TOO_DEEP in collapsed or (
        max(accumulate(map(STEP.__getitem__, collapsed))) + levels > MAX_DEPTH
    ):
        raise ApiError(
            ErrorCode.BAD_REQUEST,
            f"The request body nests deeper than {MAX_DEPTH} levels of [ and {{.",
        )


async def read_body(request: web.Request) -> bytes:
    """The request's body, which must arrive within :data:`BODY_TIMEOUT` and stay under
    :data:`MAX_BODY` (a chunked one is counted as it comes). A body that came whole with its
    headers (a heartbeat's, nearly every one) is taken without arming the timer."""
    try:
        if request.content.is_eof():
            return await request.read()
        async with asyncio.timeout(BODY_TIMEOUT):
            return await request.read()
    except TimeoutError:
        raise ApiError(
            ErrorCode.REQUEST_TIMEOUT,
            f"The request body did not arrive within {BODY_TIMEOUT:g} s.",
        ) from None
    except web.HTTPRequestEntityTooLarge:  # a chunked body, stopped at the limit
        raise ApiError(ErrorCode.TOO_LARGE, too_large(None)) from None


def too_large(size: int | None) -> str:
    said = f"is {size} bytes" if size is not None else "goes on past it"
    return f"The request body {said}; the limit is 1 MiB ({MAX_BODY} bytes)."


async def decode(request: web.Request, type_: type[T]) -> T:
    body = await read_body(request) or b"{}"
    check_depth(body)
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        # msgspec validates while parsing, so a truncated body can fail on a field first
        try:
            msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise NOT_JSON from None
        raise ApiError(ErrorCode.INVALID, f"Invalid request: {exc}.") from None
    except msgspec.DecodeError:
        raise NOT_JSON from None


def whole_number(raw: str) -> int | None:
    """``raw`` as a non-negative integer in SQLite's range (ASCII digits only), else None."""
    if not (raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if value <= MAX_ID else None


def int_param(
    request: web.Request, name: str, default: int, minimum: int = 0, other: str = ""
) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = whole_number(raw)
    if value is None or value < minimum:
        raise ApiError(
            ErrorCode.BAD_REQUEST,
            f"Query parameter {name} must be a whole number >= {minimum}{other}, got {raw!r}.",
        )
    return value


def flag_param(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "0").lower()
    if raw not in ("0", "1", "true", "false", ""):
        raise ApiError(ErrorCode.BAD_REQUEST, f"Query parameter {name} must be 1 or 0.")
    return raw in ("1", "true")


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            ErrorCode.UNAUTHORIZED, "Missing bearer token; send 'Authorization: Bearer <token>'."
        )
    return token.strip()


def id_param(request: web.Request, what: str = "Runner") -> int:
    """The id in the request's path: not a number is a 400, a number past SQLite's range a
    404 (nothing has it)."""
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()):
        raise ApiError(ErrorCode.BAD_REQUEST, f"{what} id must be a number, got {raw!r}.")
    value = whole_number(raw)
    if value is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"{what} {raw} does not exist.")
    return value
