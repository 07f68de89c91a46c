"""Bodies of the runners routes: launch, stop, register, restart and resume, sessions, logs."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from supervisor.api.schemas.base import (
    MAX_PID,
    Argument,
    Environment,
    Id,
    Input,
    Mode,
    Name,
    Prompt,
    RestartPolicyName,
    SessionId,
    Timestamp,
)


class Launch(Input):
    project: Name
    profile: Name | None = None
    # The command; with a profile, extra arguments for its template's {args}.
    command: list[Argument] | None = None
    restart: RestartPolicyName | None = None
    no_queue: bool = False
    env: Environment = msgspec.field(default_factory=dict)
    mode: Mode | None = None  # with a profile; default: batch with a prompt, else interactive
    prompt: Prompt | None = None
    resume_session: SessionId | None = None  # continue this session of the profile's agent
    worktree: bool | None = None  # its own git worktree; default: the profile's setting
    resume_on_limit: bool | None = None  # default: the profile's (else: batch runs only)


class Resume(Input):
    """Continue a runner's own session (the very one, never "the most recent")."""

    prompt: Prompt | None = None  # batch mode: default "Continue where you left off."
    mode: Mode | None = None  # default: the runner's


class Session(Struct, kw_only=True):
    session_id: str
    agent: str
    project: str | None
    runner_id: int | None
    first_activity: Timestamp | None
    last_activity: Timestamp | None
    tokens: int
    cost_usd: float
    resumable: bool
    why_not: str | None  # why it cannot be resumed


class Stop(Input):
    force: bool = False


class StopMany(Input):
    """Which runners to stop: ``ids``, every active runner of ``project``, or ``all``."""

    ids: list[Id] | None = None
    project: Name | None = None
    all: bool = False
    force: bool = False


class Register(Input):
    """Sent by ``stratavore-agent`` for a process the supervisor did not start. With a
    profile, the supervisor answers with the command line to run (session id, hooks)."""

    command: list[Argument]  # with a profile: extra arguments for its {args}
    pid: Annotated[int, Meta(ge=1, le=MAX_PID, description="a process id")]
    cwd: Annotated[
        str, Meta(min_length=1, max_length=4096, pattern=r"^[^\x00]+$", description="a folder")
    ]
    project: Name | None = None  # default: the project whose folder contains cwd
    profile: Name | None = None
    resume_session: SessionId | None = None


class Runner(Struct, kw_only=True):
    id: int
    project: str
    profile: str | None
    command: list[str]
    cwd: str
    state: str
    reason: str | None
    pid: int | None
    exit_code: int | None
    restart: RestartPolicyName
    restarts: int
    supervised: bool
    unresponsive: bool
    queued_at: Timestamp | None
    started_at: Timestamp | None
    ended_at: Timestamp | None
    last_heartbeat: Timestamp | None
    cpu_percent: float | None
    rss_bytes: int | None
    tokens: int | None
    log_path: str | None
    mode: str
    session_id: str | None
    attention: str | None
    attention_at: Timestamp | None
    limit_resets_at: Timestamp | None  # paused at a provider limit: when it resets
    resume_on_limit: bool
    resumable: bool  # its session can be continued (stratavore resume)
    worktree: str | None  # its own git worktree
    branch: str | None


class Registered(Struct, kw_only=True):
    runner: Runner
    token: str
    heartbeat_interval: float
    command: list[str]  # what to run (the profile's, rendered; else the command sent)


class Logs(Struct, kw_only=True):
    text: str
    offset: int  # pass back as ?offset= to read only what follows
    file_id: str  # changes when the log rotates; pass back as ?file_id=
    path: str
