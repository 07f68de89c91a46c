"""Codex CLI's rollout logs: where they live, and how their token counters become rows.

Codex writes one ``rollout-*.jsonl`` per thread. Lines are ``{"timestamp", "type",
"payload"}``; three types matter: ``session_meta`` (the thread's ``id`` and ``cwd``),
``turn_context`` (the ``model`` of the turns that follow) and ``event_msg`` whose payload is
``{"type": "token_count", "info": {"total_token_usage", "last_token_usage"}}`` (``info`` may
be null: a rate-limit-only update).

What we take from ccusage (``rust/crates/ccusage/src/adapter/codex/``): the files (every
``*.jsonl`` under ``sessions/`` and ``archived_sessions/`` of each ``CODEX_HOME``, the active
copy winning; ``paths.rs``), the lenient usage fields and their aliases (``types.rs``), the
model (the event's own, else the last ``turn_context``'s, else ``gpt-5``), cached input
clamped to input, and all-zero deltas dropped (``parser.rs``). Codex's ``input_tokens``
include the cached ones, so a row's ``input_tokens`` is input minus cached and
``cache_read_tokens`` the cached part; ``output_tokens`` already include
``reasoning_output_tokens`` (ccusage bills reasoning as part of output, never on top).

How each response's usage is found: from the cumulative ``total_token_usage``. Codex
re-emits ``token_count`` with an unchanged total (rate-limit and UI refreshes); such an event
is skipped, one that moves the total counts the difference, and ``last_token_usage`` is used
only for a file's first event, when the counter went backwards (a new thread continuing in
the file), or when there is no cumulative total. The ccusage source we read (20.0.11) still
summed ``last_token_usage`` and so over-counted re-emits (its issues #876, #884, #1288); the
ccusage 20.0.24 binary does not, and matched these rows' totals on crafted trees (re-emits,
counter resets, null ``info``, sub-agent and fork replays, the fallback model).

Forks and sub-agents start their file with their own ``session_meta``, then replay the
parent's lines, the parent's ``session_meta`` included, before their own turns. Rows are
keyed by the thread of the latest ``session_meta`` (its "lineage") and the cumulative counter,
``codex:<lineage>:<in>:<cached>:<out>:<reasoning>:<total>``, so a replayed row has the same
key as the parent's original; rows logged under another thread's ``session_meta`` are marked
``sidechain`` so the parent's own copy (and its timestamp) wins the dedupe.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from supervisor.usage.records import UsageRow
from supervisor.usage.scan import Parsed, iso_timestamp, jsonl_files

AGENT = "codex"
FALLBACK_MODEL = "gpt-5"  # ccusage's model for early sessions that never name theirs
_decoder = msgspec.json.Decoder()
_U64_MAX = (1 << 64) - 1

# (input, cached input, output, reasoning output, total), in this order everywhere below.
Counts = tuple[int, int, int, int, int]
_ALIASES = (
    ("input_tokens", "prompt_tokens", "input"),
    ("cached_input_tokens", "cache_read_input_tokens", "cached_tokens"),
    ("output_tokens", "completion_tokens", "output"),
    ("reasoning_output_tokens", "reasoning_tokens"),
)


def codex_homes(env: Mapping[str, str] = os.environ, home: Path | None = None) -> list[Path]:
    """Each directory in ``CODEX_HOME`` (comma-separated, blanks ignored), else ``~/.codex``."""
    home = home if home is not None else Path(env.get("HOME") or Path.home())
    configured = env.get("CODEX_HOME")
    if configured is None:
        return [home / ".codex"]
    homes: list[Path] = []
    for raw in configured.split(","):
        raw = raw.strip()
        if raw:
            path = home if raw == "~" else home / raw[2:] if raw.startswith("~/") else Path(raw)
            if path not in homes:
                homes.append(path)
    return homes


def codex_home(env: Mapping[str, str] = os.environ, home: Path | None = None) -> Path:
    """The first of ``codex_homes``: ``$CODEX_HOME`` or ``~/.codex``."""
    homes = codex_homes(env, home)
    return homes[0] if homes else (home or Path.home()) / ".codex"


def codex_files(homes: list[Path]) -> list[Path]:
    """The rollout files of each home: ``sessions/`` then ``archived_sessions/``; a file in
    both (same relative path) is read from ``sessions/`` only. A home with neither is
    searched itself (``CODEX_HOME`` may point at a sessions directory)."""
    files: list[Path] = []
    seen: set[tuple[Path, Path]] = set()
    for home in homes:
        dirs = [d for d in (home / "sessions", home / "archived_sessions") if d.is_dir()]
        for directory in dirs or [home]:
            for path in jsonl_files(directory):
                relative = (home, path.relative_to(directory))
                if relative not in seen:
                    seen.add(relative)
                    files.append(path)
    return files


def _count(value: Any) -> int | None:
    """A lenient unsigned count, as ccusage reads them: a non-negative integer, or a string
    holding one; anything else (negative, fractional, boolean) is absent."""
    if type(value) is int:
        return value if 0 <= value <= _U64_MAX else None
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            number = int(text)
            return number if number <= _U64_MAX else None
    return None


def usage_counts(value: Any) -> Counts | None:
    """One of Codex's usage objects as ``Counts``, ``None`` when it is not an object."""
    if not isinstance(value, dict):
        return None
    found = []
    for names in _ALIASES:
        number = None
        for name in names:
            number = _count(value.get(name))
            if number is not None:
                break
        found.append(number or 0)
    input_tokens, cached, output, reasoning = found
    total = _count(value.get("total_tokens"))
    if total is None or (total == 0 and input_tokens + output + reasoning > 0):
        total = input_tokens + output + reasoning  # a legacy entry without its own total
    return input_tokens, cached, output, reasoning, total


def _minus(now: Counts, was: list[int]) -> Counts:
    return (now[0] - was[0], now[1] - was[1], now[2] - was[2], now[3] - was[3], now[4] - was[4])


def _model(value: Any) -> str | None:
    """``model``, else ``model_name``, else ``metadata.model``: the first non-blank string."""
    if not isinstance(value, dict):
        return None
    metadata = value.get("metadata")
    for candidate in (
        value.get("model"),
        value.get("model_name"),
        metadata.get("model") if isinstance(metadata, dict) else None,
    ):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return None


def _timestamp(value: Any) -> float | None:
    """An RFC 3339 string (any ISO form as a fallback), or epoch seconds or milliseconds."""
    if isinstance(value, str):
        return iso_timestamp(value)
    if type(value) is int and value >= 0:
        return value / 1000 if value > 10_000_000_000 else float(value)
    return None


def _parent_thread(payload: dict[str, Any]) -> str | None:
    """The thread a new thread continues: a sub-agent's parent or a fork's origin."""
    source = payload.get("source")
    spawn = source.get("subagent") if isinstance(source, dict) else None
    spawn = spawn.get("thread_spawn") if isinstance(spawn, dict) else None
    parent = spawn.get("parent_thread_id") if isinstance(spawn, dict) else None
    if not isinstance(parent, str) or not parent:
        parent = payload.get("forked_from_id")
    return parent if isinstance(parent, str) and parent else None


def parse(chunk: bytes, base_offset: int, source: str, context: dict[str, Any]) -> Parsed:
    """The usage rows in ``chunk`` (complete lines of ``source`` starting at ``base_offset``).

    ``context`` carries the thread across refreshes and is updated in place (all JSON
    values): ``session_id`` and ``lineage`` (see the module doc), ``cwd``, ``model``, and
    ``total``, the last cumulative counter seen.
    """
    parsed = Parsed(context=context)
    pos = 0
    for line in chunk.split(b"\n"):
        start = pos
        pos += len(line) + 1
        if (
            b"token_count" not in line
            and b"turn_context" not in line
            and b"session_meta" not in line
        ):
            continue
        try:
            value = _decoder.decode(line)
        except (msgspec.DecodeError, ValueError):
            parsed.skip(source, base_offset + start, "not valid JSON (a truncated line?)")
            continue
        if not isinstance(value, dict):
            continue
        kind = value.get("type")
        payload = value.get("payload")
        if not isinstance(payload, dict):
            continue
        if kind == "session_meta":
            _session_meta(context, payload)
        elif kind == "turn_context":
            model = _model(payload)
            if model is not None:
                context["model"] = model
            if isinstance(payload.get("cwd"), str):
                context["cwd"] = payload["cwd"]
        elif kind == "event_msg" and payload.get("type") == "token_count":
            row = _token_count(context, value, payload, source)
            if isinstance(row, str):
                parsed.skip(source, base_offset + start, row)
            elif row is not None:
                parsed.rows.append(row)
    return parsed


def _session_meta(context: dict[str, Any], payload: dict[str, Any]) -> None:
    thread = payload.get("id")
    if not isinstance(thread, str) or not thread:
        return
    if "session_id" not in context:  # the file's own thread
        context["session_id"] = thread
        context["lineage"] = _parent_thread(payload) or thread
        if isinstance(payload.get("cwd"), str):
            context["cwd"] = payload["cwd"]
    else:  # an ancestor's line, replayed: what follows is its history
        context["lineage"] = thread


def _token_count(
    context: dict[str, Any], value: dict[str, Any], payload: dict[str, Any], source: str
) -> UsageRow | str | None:
    """The row for one ``token_count`` event, ``None`` when it adds nothing, or why it is
    skipped."""
    raw_ts = value.get("timestamp")
    ts = _timestamp(raw_ts)
    if ts is None:
        return f"timestamp {raw_ts!r} not understood"
    info = payload.get("info")
    if not isinstance(info, dict):
        return None  # a rate-limit-only update
    total = usage_counts(info.get("total_token_usage"))
    last = usage_counts(info.get("last_token_usage"))
    previous = context.get("total")
    if not (isinstance(previous, list) and len(previous) == 5):
        previous = None
    if total is not None:
        context["total"] = list(total)
        if previous is not None and list(total) == previous:
            return None  # a re-emit of the same counter
        if previous is not None and all(
            now >= was for now, was in zip(total, previous, strict=True)
        ):
            delta = _minus(total, previous)
        else:  # the first count in this file, or a counter that started again
            delta = last if last is not None else total
        tail = ":".join(map(str, total))
    elif last is not None:
        delta = last
        tail = f"{raw_ts}:last:" + ":".join(map(str, last))
    else:
        return None
    input_tokens, cached, output, reasoning, _ = delta
    if input_tokens == 0 and cached == 0 and output == 0 and reasoning == 0:
        return None
    model = _model(payload) or _model(info)
    if model is not None:
        context["model"] = model
    elif context.get("model"):
        model = context["model"]
    else:
        model = context["model"] = FALLBACK_MODEL
    session_id = context.get("session_id") or Path(source).stem
    lineage = context.get("lineage") or session_id
    cached = min(cached, input_tokens)
    return UsageRow(
        ts=ts,
        agent=AGENT,
        model=model,
        input_tokens=input_tokens - cached,
        output_tokens=output,  # reasoning tokens are part of output
        cache_creation_tokens=0,  # Codex reports no cache writes
        cache_read_tokens=cached,
        key=f"codex:{lineage}:{tail}",
        source=source,
        session_id=session_id,
        cwd=context.get("cwd"),
        sidechain=lineage != session_id,
    )
