"""Claude Code and Codex CLI log lines, written and parsed the way the usage parser and scan
tests need them (compact JSON, as both agents write)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from supervisor.usage import claude
from supervisor.usage.records import UsageRow

TS = "2026-03-29T07:00:00.000Z"
TS_EPOCH = 1774767600.0


def dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))  # compact, as both agents write


def write_lines(path: Path, lines: Iterable[dict[str, Any] | str], mode: str = "w") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode, encoding="utf-8") as handle:
        for line in lines:
            handle.write((line if isinstance(line, str) else dump(line)) + "\n")


def keep_best(rows: Iterable[UsageRow]) -> dict[str, UsageRow]:
    """What the ledger keeps: per key, the highest rank (the first one on a tie)."""
    best: dict[str, UsageRow] = {}
    for row in rows:
        if row.key not in best or row.rank > best[row.key].rank:
            best[row.key] = row
    return best


def bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))



def assistant(
    message_id: str | None = "msg_1",
    request_id: str | None = "req_1",
    output: int = 10,
    *,
    ts: str = TS,
    sidechain: bool = False,
    usage: dict[str, Any] | None = None,
    model: str = "claude-sonnet-4-20250514",
    **extra: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "model": model,
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "hello " * 20}],
        "stop_reason": None,
        "usage": usage
        or {
            "input_tokens": 5,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 1000,
            "output_tokens": output,
            "service_tier": "standard",
        },
    }
    if message_id is not None:
        message["id"] = message_id
    line: dict[str, Any] = {
        "parentUuid": None,
        "isSidechain": sidechain,
        "userType": "external",
        "cwd": "/work/proj",
        "sessionId": "sess-1",
        "version": "2.0.14",
        "message": message,
        "type": "assistant",
        "uuid": "u-1",
        "timestamp": ts,
    }
    if request_id is not None:
        line["requestId"] = request_id
    line.update(extra)
    return line



def parse_claude(data: bytes, base: int = 0, source: str = "t.jsonl") -> claude.Parsed:
    return claude.parse(data, base, source, {})


def lines_bytes(*lines: dict[str, Any] | str) -> bytes:
    return "".join((x if isinstance(x, str) else dump(x)) + "\n" for x in lines).encode()

