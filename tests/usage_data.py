"""Transcript lines and trees as Claude Code and Codex write them, for the usage tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SONNET = "claude-sonnet-4-5-20250929"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def utc(text: str) -> float:
    """'2026-11-20 23:30' (UTC) as epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def claude_line(
    message_id: str,
    ts: float,
    *,
    request_id: str | None = None,
    input_tokens: int = 10,
    output_tokens: int = 20,
    cache_creation: int = 0,
    cache_read: int = 0,
    sidechain: bool = False,
    session: str = "s1",
    cwd: str = "/work/demo",
    model: str = SONNET,
    **extra: Any,
) -> str:
    line = {
        "type": "assistant",
        "sessionId": session,
        "cwd": cwd,
        "timestamp": iso(ts),
        "requestId": request_id or f"req_{message_id}",
        "isSidechain": sidechain,
        "version": "2.0.30",
        "message": {
            "id": message_id,
            "model": model,
            "role": "assistant",
            "content": [{"type": "text", "text": "done"}],
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": cache_creation,
                "cache_read_input_tokens": cache_read,
            },
        },
        **extra,
    }
    return json.dumps(line, separators=(",", ":"))  # as Claude Code writes them


def write_transcript(root: Path, project: str, session: str, lines: list[str]) -> Path:
    """``lines`` as ``<root>/projects/<project>/<session>.jsonl`` (appended if it exists)."""
    path = root / "projects" / project / f"{session}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write("".join(line + "\n" for line in lines))
    return path
