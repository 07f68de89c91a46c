"""Agent sessions: where their logs are, whether a run ended at a usage limit, and the list
of sessions per project with what they cost and whether they can be resumed.

A session is the agent's own conversation (Claude Code's ``sessionId``, Codex's thread id,
Gemini CLI's ``sessionId``). The usage import learns every session from the logs
(``usage_session``); runners know theirs up front (Claude Code) or from that import (Codex,
Gemini CLI).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import tzinfo
from pathlib import Path

from supervisor.agents import limits
from supervisor.api import schemas
from supervisor.storage import queries
from supervisor.storage.models import Profile
from supervisor.usage import gemini
from supervisor.usage.roots import log_roots

LIMIT_AGENTS = frozenset({"claude", "codex"})  # agents whose limit messages we recognise
LOG_AGENTS = frozenset({"claude", "codex", "gemini"})  # agents whose session logs we read


def session_file(agent: str, session_id: str) -> Path | None:
    """The agent's own log of ``session_id`` (a Claude transcript, a Codex rollout, a Gemini
    chat recording), in any account's config directory (a profile's own, too)."""
    if agent == "claude":
        for root in log_roots(os.environ, None).claude:
            for path in (root / "projects").glob(f"*/{session_id}.jsonl"):
                return path
    elif agent == "codex":
        for home in log_roots(os.environ, None).codex:
            for folder in ("sessions", "archived_sessions"):
                for path in (home / folder).glob(f"**/rollout-*-{session_id}.jsonl"):
                    return path
    elif agent == "gemini":
        # gemini-cli names a recording after the first 8 characters of its session id
        tmp = gemini.gemini_dir() / "tmp"
        for path in sorted(tmp.glob(f"*/chats/session-*-{session_id[:8]}.json*")):
            return path
    return None


def find_limit(
    agent: str,
    session_id: str | None,
    output_log: Path | None,
    since: float,
    now: float,
    zone: tzinfo,
) -> limits.LimitHit | None:
    """A usage limit the run hit, from the session's log or the run's own output (what the
    agent printed last), if said after ``since`` (the run's start: an old limit in a resumed
    session's transcript is not this run's)."""
    places: list[Path] = []
    if session_id and agent in LOG_AGENTS and (found := session_file(agent, session_id)):
        places.append(found)
    if output_log is not None:
        places.append(output_log)
    for path in places:
        hit = limits.scan_file_tail(path, agent, now, zone, since=since)
        if hit is not None:
            return hit
    return None


def resumable(
    agent: str, session_id: str, log_path: str | None, profiles: Iterable[Profile]
) -> str | None:
    """None when the session can be resumed, else why not (in a few words)."""
    if not any(p.agent == agent and (p.resume or p.resume_batch) for p in profiles):
        return f"no profile can resume {agent} sessions"
    there = bool(log_path and os.path.exists(log_path))
    if agent in LOG_AGENTS and not there and session_file(agent, session_id) is None:
        return "its log is gone"
    return None


def list_sessions(project_id: int | None, limit: int = 100) -> list[schemas.Session]:
    """Sessions of one project (or all), most recently active first."""
    profiles = queries.list_profiles()
    names = {p.id: p.name for p in queries.list_projects(include_archived=True)}
    out = []
    for sid, agent, pid, rid, first, last, tokens, cost, path in queries.agent_sessions(
        project_id, limit
    ):
        why = resumable(agent, sid, path, profiles)
        out.append(
            schemas.Session(
                session_id=sid,
                agent=agent,
                project=names.get(pid),
                runner_id=rid,
                first_activity=schemas.iso(first),
                last_activity=schemas.iso(last),
                tokens=int(tokens),
                cost_usd=round(float(cost), 6),
                resumable=why is None,
                why_not=why,
            )
        )
    return out
