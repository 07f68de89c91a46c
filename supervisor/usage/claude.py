"""Claude Code's transcripts: where they live, and which of their lines count as usage.

The rules are ccusage's, so that per-day token totals match it on the same files (ccusage
``rust/crates/ccusage/src/adapter/claude/``: ``paths.rs`` for the roots, ``daily.rs`` and
``mod.rs`` for the lines, ``types.rs`` for the fields). A line counts when

- it contains ``"usage":{`` (ccusage's byte pre-filter), and
- no field named ``id``, ``cwd``, ``model``, ``speed``, ``costUSD``, ``version``,
  ``sessionId``, ``requestId``, ``isApiErrorMessage``, ``cache_read_input_tokens`` or
  ``cache_creation_input_tokens`` is ``null`` anywhere in it (a textual check, as ccusage's
  ``has_unsupported_null_field``), and
- it decodes as an entry: a top-level ``timestamp`` string and ``message.usage`` with
  unsigned ``input_tokens`` and ``output_tokens``; or else an ``agent_progress`` line that
  carries a sub-agent's response in ``data.message`` (same shape one level down), and
- its timestamp has ccusage's exact shape (``scan.parse_timestamp``), and
- ``version``, when present, starts with ``digits.digits.digit``, and ``sessionId``,
  ``requestId``, ``message.id`` and ``message.model``, when present, are not empty.

The line's ``type`` is not checked, ``<synthetic>`` responses count (their tokens are zero),
and ``costUSD`` is kept as the logged cost. These rules were also checked against the
ccusage 20.0.24 binary (``ccusage claude daily --json``) on crafted trees.

Dedupe keys; the ledger keeps, per key, the best rank (a main-chain copy over a side-chain
one, then the larger token total), as ccusage's ``should_replace_deduped_entry``:

- ``claude:<message.id>`` for a line with a ``requestId`` or on a side chain. This covers
  streaming snapshots, sessions resumed into a new file or copied to a second root, sub-agent
  ``agent_progress`` copies, and ``/btw`` side-chain files that replay a parent's message
  under a new ``requestId`` (ccusage folds a side-chain copy into any entry with the same
  message id, its issue #913). ccusage itself keys main-chain lines on (message id, request
  id); the totals differ only if two main-chain lines share a message id with different
  request ids, and an API message id names one response.
- ``claude:<message.id>:<session>:<ms>`` for a main-chain line without ``requestId``: ccusage
  20.0.24 merges those only when session (``sessionId``, else the one the path names) and
  instant are equal.
- ``claude:<path>@<byte offset>`` for a line without ``message.id``: never merged, as ccusage.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from supervisor.usage.records import UsageRow
from supervisor.usage.scan import Parsed, discover, parse_timestamp

AGENT = "claude"
USAGE_MARKER = b'"usage":{'

# ccusage reads u64; msgspec bounds stop at int64 (SQLite's integer range anyway).
U64 = Annotated[int, msgspec.Meta(ge=0, le=(1 << 63) - 1)]

# Fields ccusage refuses to see null anywhere in a line (mod.rs ``is_unsupported_nullable_field``).
_NON_NULL_FIELDS = frozenset(
    {
        b"id",
        b"cwd",
        b"model",
        b"speed",
        b"costUSD",
        b"version",
        b"sessionId",
        b"requestId",
        b"isApiErrorMessage",
        b"cache_read_input_tokens",
        b"cache_creation_input_tokens",
    }
)
_QUOTED_NON_NULL = tuple(b'"' + name + b'"' for name in _NON_NULL_FIELDS)


class _CacheCreation(msgspec.Struct):
    ephemeral_5m_input_tokens: U64 = 0
    ephemeral_1h_input_tokens: U64 = 0


class _Usage(msgspec.Struct):
    input_tokens: U64
    output_tokens: U64
    cache_creation_input_tokens: U64 = 0
    cache_read_input_tokens: U64 = 0
    speed: Literal["standard", "fast"] | None = None
    cache_creation: _CacheCreation | None = None
    # Kept raw: ccusage ignores this field, so no shape of it may refuse the line, and most
    # lines say 0 searches (decoded only when they might not).
    server_tool_use: msgspec.Raw = msgspec.Raw()


_NO_SEARCHES = b'"web_search_requests":0,'


def _web_searches(server_tool_use: msgspec.Raw) -> int:
    """``server_tool_use.web_search_requests`` when it is a count above 0, else 0."""
    raw = bytes(server_tool_use)
    if b"web_search_requests" not in raw or _NO_SEARCHES in raw:
        return 0
    try:
        value = _any_decoder.decode(raw)
    except _DECODE_ERRORS:
        return 0
    count = value.get("web_search_requests") if isinstance(value, dict) else None
    return count if type(count) is int and count > 0 else 0


# The exact shapes ccusage decodes, tried one after the other on a line the fast shape refused.


class _Message(msgspec.Struct):
    usage: _Usage
    model: str | None = None
    id: str | None = None


class _Direct(msgspec.Struct):
    timestamp: str
    message: _Message
    version: str | None = None
    session_id: str | None = msgspec.field(default=None, name="sessionId")
    cost_usd: float | None = msgspec.field(default=None, name="costUSD")
    request_id: str | None = msgspec.field(default=None, name="requestId")
    is_sidechain: bool | None = msgspec.field(default=None, name="isSidechain")


class _ProgressMessage(msgspec.Struct):
    timestamp: str
    message: _Message
    cost_usd: float | None = msgspec.field(default=None, name="costUSD")
    request_id: str | None = msgspec.field(default=None, name="requestId")
    is_sidechain: bool | None = msgspec.field(default=None, name="isSidechain")


class _ProgressData(msgspec.Struct):
    message: _ProgressMessage


class _Progress(msgspec.Struct):
    data: _ProgressData


# The fast shape: both of the above in one pass, every field optional. A line it decodes
# yields the same entry as the exact shapes; a line it refuses goes to the exact shapes.


class _AnyMessage(msgspec.Struct):
    usage: _Usage | None = None
    model: str | None = None
    id: str | None = None


class _AnyProgressMessage(msgspec.Struct):
    timestamp: str | None = None
    message: _AnyMessage | None = None
    cost_usd: float | None = msgspec.field(default=None, name="costUSD")
    request_id: str | None = msgspec.field(default=None, name="requestId")
    is_sidechain: bool | None = msgspec.field(default=None, name="isSidechain")


class _AnyProgressData(msgspec.Struct):
    message: _AnyProgressMessage | None = None


class _Line(msgspec.Struct):
    timestamp: str | None = None
    message: _AnyMessage | None = None
    version: str | None = None
    session_id: str | None = msgspec.field(default=None, name="sessionId")
    cost_usd: float | None = msgspec.field(default=None, name="costUSD")
    request_id: str | None = msgspec.field(default=None, name="requestId")
    is_sidechain: bool | None = msgspec.field(default=None, name="isSidechain")
    cwd: str | None = None
    data: _AnyProgressData | None = None


_line_decoder = msgspec.json.Decoder(_Line)
_direct_decoder = msgspec.json.Decoder(_Direct)
_progress_decoder = msgspec.json.Decoder(_Progress)
_any_decoder = msgspec.json.Decoder()
_DECODE_ERRORS = (msgspec.DecodeError, ValueError)  # ValueError: invalid UTF-8


def claude_roots(env: Mapping[str, str] = os.environ, home: Path | None = None) -> list[Path]:
    """Claude Code's config directories that hold a ``projects/`` directory.

    ``CLAUDE_CONFIG_DIR`` lists them (comma-separated; blanks ignored; ``~`` expanded; a path
    to the ``projects/`` directory itself means its parent); without it, ``$XDG_CONFIG_HOME/
    claude`` (default ``~/.config/claude``) and ``~/.claude``, as ccusage ``paths.rs``.
    """
    home = home if home is not None else Path(env.get("HOME") or Path.home())
    candidates: list[Path] = []
    configured = env.get("CLAUDE_CONFIG_DIR")
    if configured is not None:
        for raw in configured.split(","):
            raw = raw.strip()
            if not raw:
                continue
            path = _expand_home(raw, home)
            if path.name == "projects" and path.is_dir():
                path = path.parent
            candidates.append(path)
    else:
        xdg = env.get("XDG_CONFIG_HOME")
        candidates = [(Path(xdg) if xdg else home / ".config") / "claude", home / ".claude"]
    roots: list[Path] = []
    for path in candidates:
        if (path / "projects").is_dir() and path not in roots:
            roots.append(path)
    return roots


def _expand_home(raw: str, home: Path) -> Path:
    if raw == "~":
        return home
    if raw.startswith("~/"):
        return home / raw[2:]
    return Path(raw)


def claude_files(roots: list[Path]) -> list[Path]:
    """Every ``*.jsonl`` under each root's ``projects/``, sub-agent transcripts included."""
    return discover(root / "projects" for root in roots)


def session_of_path(source: str) -> str:
    """The session a transcript's path names, as ccusage ``extract_session_parts``:
    ``<project>/<session>.jsonl``, ``<project>/<session>/<file>.jsonl`` or
    ``<project>/<session>/subagents/<file>.jsonl`` under ``projects/``."""
    parts = Path(source).parts
    if "projects" in parts:
        parts = parts[parts.index("projects") + 1 :]
    if len(parts) == 2 and parts[1].endswith(".jsonl") and len(parts[1]) > 6:
        return parts[1][:-6]
    if len(parts) >= 4 and parts[-2] == "subagents":
        return parts[-3]
    return parts[max(len(parts) - 2, 0)] if parts else "unknown"


def has_null_field(line: bytes, at: int = 0) -> bytes | None:
    """The first field ccusage requires non-null that is ``null`` in ``line``, if any.

    Like ccusage, this is textual: the name is the quoted string before ``:null``, wherever
    it is in the line (nested objects included). ``at``: where to start looking.
    """
    at = line.find(b":null", at)
    while at >= 0:
        # Compact JSON (``"name":null``): one C call tests every name.
        if line[at - 1 : at] != b'"' or line.endswith(_QUOTED_NON_NULL, 0, at):
            name_end = line.rfind(b'"', 0, at)
            if name_end > 0:
                name_start = line.rfind(b'"', 0, name_end)
                if name_start >= 0 and line[name_start + 1 : name_end] in _NON_NULL_FIELDS:
                    return line[name_start + 1 : name_end]
        at = line.find(b":null", at + 5)
    return None


_good_versions: set[str] = set()


def _valid_version(version: str) -> bool:
    """ccusage ``is_semver_prefix``: ``digits.digits.digit`` and anything after."""
    if version in _good_versions:
        return True
    parts = version.split(".", 2)
    valid = (
        len(parts) == 3
        and parts[0].isascii()
        and parts[0].isdigit()
        and parts[1].isascii()
        and parts[1].isdigit()
        and parts[2][:1].isascii()
        and parts[2][:1].isdigit()
    )
    if valid and len(_good_versions) < 4096:  # a few versions per install: bounded anyway
        _good_versions.add(version)
    return valid


def _has_usage(value: Any) -> bool:
    """Whether a decoded line has a ``message.usage`` or ``data.message.message.usage``: a
    line without is no usage line, whatever text it contains."""
    if not isinstance(value, dict):
        return False
    message = value.get("message")
    if isinstance(message, dict) and "usage" in message:
        return True
    data = value.get("data")
    inner = data.get("message") if isinstance(data, dict) else None
    message = inner.get("message") if isinstance(inner, dict) else None
    return isinstance(message, dict) and "usage" in message


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _exact(line: bytes) -> tuple[_Line | None, str | None]:
    """The slow path for a line the fast shape refused: ccusage's shapes one by one.

    Returns the entry as a ``_Line``, or the reason it is skipped (``None`` when the line is
    simply not a usage line: the marker was in some text).
    """
    try:
        value = _any_decoder.decode(line)
    except _DECODE_ERRORS:
        return None, "not valid JSON (a truncated or corrupt line)"
    if not _has_usage(value):
        return None, None
    field = has_null_field(line)
    if field is not None:
        return None, f"{field.decode()} is null"
    try:
        direct = _direct_decoder.decode(line)
    except _DECODE_ERRORS as error:
        try:
            progress = _progress_decoder.decode(line).data.message
        except _DECODE_ERRORS:
            return None, f"usage line not in the expected shape ({error})"
        message = _AnyMessage(progress.message.usage, progress.message.model, progress.message.id)
        inner = _AnyProgressMessage(
            progress.timestamp,
            message,
            progress.cost_usd,
            progress.request_id,
            progress.is_sidechain,
        )
        found = _Line(
            session_id=_str_or_none(value.get("sessionId")),
            cwd=_str_or_none(value.get("cwd")),
            data=_AnyProgressData(inner),
        )
        return found, None
    message = _AnyMessage(direct.message.usage, direct.message.model, direct.message.id)
    found = _Line(
        direct.timestamp,
        message,
        direct.version,
        direct.session_id,
        direct.cost_usd,
        direct.request_id,
        direct.is_sidechain,
        _str_or_none(value.get("cwd")),
    )
    return found, None


def parse(chunk: bytes, base_offset: int, source: str, context: dict[str, Any]) -> Parsed:
    """The usage rows in ``chunk`` (complete lines of ``source`` starting at ``base_offset``).

    ``context`` is unused (Claude lines stand alone) and returned as is. A line is found by
    searching for the usage marker (ccusage's byte pre-filter) rather than by splitting every
    line; then decoded (the fast shape, else the exact ones), checked and made a row, each
    step its own function.
    """
    parsed = Parsed(context=context)
    rows = parsed.rows
    path_session = _PathSession(source)
    decode = _line_decoder.decode
    find = chunk.find
    pos = 0
    while (hit := find(USAGE_MARKER, pos)) >= 0:
        start = chunk.rfind(b"\n", 0, hit) + 1
        end = find(b"\n", hit)
        if end < 0:
            end = len(chunk)
        pos = end + 1
        line = chunk[start:end]
        try:
            entry = decode(line)
        except _DECODE_ERRORS:
            found, reason = _exact(line)
            if found is None:
                if reason is not None:
                    parsed.skip(source, base_offset + start, reason)
                continue
            entry = found
        counted = _counted(entry, line)
        if isinstance(counted, str):
            parsed.skip(source, base_offset + start, counted)
        elif counted is not None:
            rows.append(_row(entry, counted, source, base_offset + start, path_session))
    return parsed


# A usage line that counts: (instant, message, usage, the sessionId ccusage checks (a direct
# entry's only), cost, request id, side chain). A plain tuple: a NamedTuple's construction
# costs a Python call per line.
_Counted = tuple[float, _AnyMessage, _Usage, str | None, float | None, str | None, bool | None]


def _counted(entry: _Line, line: bytes) -> _Counted | str | None:
    """What a decoded usage line says, or why ccusage skips it (a null field, a timestamp not
    in its shape, a version that is not x.y.z, an empty id or model), or None when it is no
    usage line (the marker was in some text).

    A direct entry first, as ccusage's untagged enum; else a sub-agent's progress copy, whose
    version and session ccusage does not read."""
    timestamp = entry.timestamp
    message = entry.message
    usage = message.usage if message is not None else None
    if timestamp is not None and message is not None and usage is not None:
        version, checked_session = entry.version, entry.session_id
        cost, request_id, sidechain = entry.cost_usd, entry.request_id, entry.is_sidechain
    else:
        inner = entry.data.message if entry.data is not None else None
        if inner is None or inner.timestamp is None or inner.message is None:
            return None
        timestamp, message = inner.timestamp, inner.message
        usage = message.usage
        if usage is None:
            return None
        version = checked_session = None
        cost, request_id, sidechain = inner.cost_usd, inner.request_id, inner.is_sidechain
    null_at = line.find(b":null")
    if null_at >= 0:
        field = has_null_field(line, null_at)
        if field is not None:
            return f"{field.decode()} is null"
    ts = parse_timestamp(timestamp)
    if ts is None:
        return f"timestamp {timestamp!r} not understood"
    if version is not None and not _valid_version(version):
        return f"version {version!r} is not x.y.z"
    if checked_session == "" or request_id == "" or message.id == "" or message.model == "":
        return "an empty id or model"
    return ts, message, usage, checked_session, cost, request_id, sidechain


class _PathSession:
    """The session one file's path names, worked out once, when a line's key first needs it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.session: str | None = None

    def get(self) -> str:
        if self.session is None:
            self.session = session_of_path(self.source)
        return self.session


def _row(
    entry: _Line, counted: _Counted, source: str, offset: int, path_session: _PathSession
) -> UsageRow:
    """The ledger row of a usage line that counts, with its dedupe key (the module's
    docstring says which)."""
    ts, message, usage, checked_session, cost, request_id, sidechain = counted
    breakdown = usage.cache_creation
    if breakdown is not None:
        one_hour = breakdown.ephemeral_1h_input_tokens
        cache_creation = breakdown.ephemeral_5m_input_tokens + one_hour
    else:
        one_hour = 0
        cache_creation = usage.cache_creation_input_tokens
    message_id = message.id
    if message_id is None:
        key = f"claude:{source}@{offset}"
    elif request_id is not None or sidechain is True:
        key = f"claude:{message_id}"
    else:
        key = f"claude:{message_id}:{checked_session or path_session.get()}:{round(ts * 1000)}"
    # Positional, for speed: keywords cost more than the rest of a line's work.
    # test_assistant_line_becomes_a_row pins this order against records.UsageRow.
    return UsageRow(
        ts,
        AGENT,
        message.model or "",
        usage.input_tokens,
        usage.output_tokens,
        cache_creation,
        usage.cache_read_input_tokens,
        key,
        source,
        one_hour,
        cost,
        "fast" if usage.speed == "fast" else None,
        _web_searches(usage.server_tool_use) if len(usage.server_tool_use) > 4 else 0,
        entry.session_id or None,
        entry.cwd,
        sidechain is True,
    )
