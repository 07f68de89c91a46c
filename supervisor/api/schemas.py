"""Request and response bodies of the HTTP API, and the OpenAPI document built from them.

msgspec validates a body while decoding it (one pass, C speed: heartbeats arrive by the
thousand) and emits JSON Schema for the same structs, so the OpenAPI document cannot drift
from what the server accepts. All fields are snake_case; timestamps are ISO 8601 UTC strings.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from supervisor import __version__

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
Name = Annotated[
    str,
    Meta(
        pattern=NAME_PATTERN,
        description="1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    ),
]
# What exec can take: no NUL in an argument, no '=' or NUL in an environment name.
Argument = Annotated[str, Meta(pattern=r"^[^\x00]*$")]
Command = Annotated[
    list[Annotated[str, Meta(min_length=1, pattern=r"^[^\x00]+$")]], Meta(min_length=1)
]
Environment = dict[
    Annotated[str, Meta(pattern=r"^[^=\x00]+$", description="a name without '=' or NUL")],
    Argument,
]
RestartPolicyName = Literal["never", "on-failure", "always"]
Mode = Literal["interactive", "batch"]
Template = Annotated[
    list[Annotated[str, Meta(min_length=1, pattern=r"^[^\x00]+$")]],
    Meta(min_length=1, max_length=200),
]
Prompt = Annotated[str, Meta(min_length=1, max_length=200_000, pattern=r"^[^\x00]*$")]
SessionId = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
        description="an agent's session id (a UUID for Claude Code and Codex)",
    ),
]
Timestamp = Annotated[str, Meta(description="ISO 8601 UTC, e.g. 2026-11-21T21:30:00.123Z")]
# Numbers are bounded, so NaN, infinities and values SQLite cannot store (its integers are
# 64-bit) are refused at the edge with a 422 that names the field, never a 500 later.
MAX_INT = 2**63 - 1  # SQLite's largest integer
MAX_CAP = 10_000  # runners at once (also bounds the max_runners_* settings)
MAX_PID = 2**32 - 1  # pids are 32-bit everywhere (Linux caps them at 2**22)
MAX_TOKENS = 10**15  # a token limit or count: far above any real period's use
MAX_USD = 1e9  # a dollar limit or cost
MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z: the last instant ISO 8601 can write
Cap = Annotated[int, Meta(ge=1, le=MAX_CAP)]
ExitCode = Annotated[int, Meta(ge=-(2**31), le=2**32 - 1)]  # Windows: 32-bit codes
Id = Annotated[int, Meta(ge=1, le=MAX_INT)]


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with milliseconds (hand-formatted: listings call this
    thousands of times, and strftime is the slow part)."""
    if ts is None:
        return None
    t = time.gmtime(ts)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
        f"{t.tm_sec:02d}.{int(ts % 1 * 1000):03d}Z"
    )


class Input(Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of request bodies: unknown fields are an error, not silently dropped."""


# --- projects ---------------------------------------------------------------------------
class ProjectCreate(Input):
    name: Name
    path: Annotated[str, Meta(min_length=1, description="absolute path of an existing folder")]
    max_runners: Cap | None = None


class ProjectUpdate(Input):
    """A project's own runner cap; null: follow the global max_runners_per_project."""

    max_runners: Cap | None


class Project(Struct, kw_only=True):
    id: int
    name: str
    path: str
    archived: bool
    max_runners: int | None
    active_runners: int
    created_at: Timestamp


# --- profiles ---------------------------------------------------------------------------
class ProfileCreate(Input):
    """A user profile: argument-list templates with placeholders (see supervisor.profiles),
    e.g. a copy of a built-in with ``copy_of`` and the fields to change."""

    name: Name
    copy_of: Name | None = None  # start from this profile's fields
    command: Template | None = None  # interactive; required unless copied
    description: str | None = None
    restart: RestartPolicyName | None = None
    expected_exit_codes: Annotated[list[ExitCode], Meta(max_length=256)] | None = None
    env: Environment | None = None
    agent: Literal["claude", "codex", "aider", "gemini", "shell"] | None = None
    binaries: list[Annotated[str, Meta(min_length=1, max_length=1000)]] | None = None
    batch: Template | None = None
    resume: Template | None = None
    resume_batch: Template | None = None
    setup_files: list[Annotated[str, Meta(min_length=1, max_length=500)]] | None = None
    worktree: bool | None = None
    resume_on_limit: bool | None = None
    idle_after: Annotated[float, Meta(ge=1, le=86_400)] | None = None


class Profile(Struct, kw_only=True):
    name: str
    command: list[str]
    description: str
    restart: RestartPolicyName
    expected_exit_codes: list[int]
    env: dict[str, str]
    builtin: bool
    agent: str | None
    binaries: list[str]
    batch: list[str] | None
    resume: list[str] | None
    resume_batch: list[str] | None
    setup_files: list[str]
    worktree: bool
    resume_on_limit: bool | None
    idle_after: float | None
    hooks: bool  # attention states come from the agent's hooks (else a heuristic)


# --- runners ----------------------------------------------------------------------------
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


class HookIn(Struct, kw_only=True):
    """A Claude Code hook's input, as its HTTP hook POSTs it (unknown fields are kept out,
    not refused: new versions add some)."""

    hook_event_name: Annotated[str, Meta(min_length=1, max_length=64)]
    session_id: Annotated[str, Meta(max_length=200)] | None = None
    transcript_path: Annotated[str, Meta(max_length=4096)] | None = None
    cwd: Annotated[str, Meta(max_length=4096)] | None = None
    notification_type: Annotated[str, Meta(max_length=64)] | None = None
    message: Annotated[str, Meta(max_length=4000)] | None = None
    source: Annotated[str, Meta(max_length=64)] | None = None
    reason: Annotated[str, Meta(max_length=64)] | None = None
    tool_name: Annotated[str, Meta(max_length=200)] | None = None
    agent_id: Annotated[str, Meta(max_length=200)] | None = None  # set in a sub-agent
    stop_hook_active: bool | None = None


class HookAck(Struct, kw_only=True):
    attention: str | None  # the runner's attention after this hook


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


Tokens = Annotated[int, Meta(ge=0, le=10**12)]  # in one response


class UsageIn(Input):
    """Token usage of one API response (POST /usage), or cumulative counters (heartbeat)."""

    model: Annotated[str, Meta(min_length=1, max_length=200)]
    input_tokens: Tokens = 0  # excluding cached input
    output_tokens: Tokens = 0
    cache_creation_tokens: Tokens = 0
    cache_read_tokens: Tokens = 0
    cost_usd: Annotated[float, Meta(ge=0, le=MAX_USD)] | None = None  # the agent's own figure
    agent: Annotated[str, Meta(min_length=1, max_length=64)] | None = None  # default: runner's
    ts: Annotated[float, Meta(ge=0, le=MAX_EPOCH)] | None = None  # UTC epoch s; default: now
    session_id: Annotated[str, Meta(max_length=200)] | None = None
    key: Annotated[str, Meta(min_length=1, max_length=200)] | None = None  # idempotency


class UsageReport(Input):
    """Usage for the ledger: with the admin token, or with a runner's own token and its id."""

    records: Annotated[list[UsageIn], Meta(min_length=1, max_length=10_000)]
    runner_id: Id | None = None


class UsageAck(Struct, kw_only=True):
    written: int  # rows new or improved; a repeated key changes nothing


class UsageImport(Struct, kw_only=True):
    files: int
    files_read: int
    bytes_read: int
    written: int
    skipped: int
    problems: list[str]
    unknown_models: list[str]
    seconds: float


class BudgetSet(Input):
    scope: Annotated[str, Meta(min_length=1, max_length=200)]
    period: Literal["5h", "daily", "weekly", "monthly"]
    limit_tokens: Annotated[int, Meta(ge=1, le=MAX_TOKENS)] | None = None
    limit_usd: Annotated[float, Meta(gt=0, le=MAX_USD)] | None = None
    warn: list[Annotated[float, Meta(gt=0, lt=100)]] | None = None
    action: Literal["warn", "block", "stop"] | None = None


class BudgetStatus(Struct, kw_only=True):
    scope: str
    period: str
    limit_tokens: int | None
    limit_usd: float | None
    warn: list[float]
    action: str
    used_tokens: int
    used_usd: float
    percent: float
    period_start: Timestamp | None  # null: a 5-hour budget between blocks
    resets_at: Timestamp | None
    projected_exhaustion_at: Timestamp | None  # at the period's burn rate, if before reset


class ChannelSet(Input):
    """A notification channel; ``secret`` (bot token, access token, signing key) goes to the
    OS keyring and is never stored or shown anywhere else."""

    kind: Literal["desktop", "telegram", "ntfy", "webhook"]
    config: dict[str, Any] = {}
    policy: dict[str, Any] | None = None
    secret: Annotated[str, Meta(min_length=1, max_length=4096)] | None = None


class ChannelOut(Struct, kw_only=True):
    name: str
    kind: str
    config: dict[str, Any]
    policy: dict[str, Any]
    enabled: bool
    secret: str  # whether the kind takes one: none | optional | required


class ChannelTest(Struct, kw_only=True):
    result: Literal["delivered", "retry", "failed"]
    reason: str


class DeadLetter(Struct, kw_only=True):
    id: int  # the delivery's id, for retry
    event_id: int
    channel: str
    type: str
    title: str
    attempts: int
    error: str | None


class Heartbeat(Input):
    state: Annotated[str, Meta(max_length=32)] | None = None
    cpu_percent: Annotated[float, Meta(ge=0, le=100 * 4096)] | None = None  # 100 per core
    rss_bytes: Annotated[int, Meta(ge=0, le=MAX_INT)] | None = None
    tokens: Annotated[int, Meta(ge=0, le=MAX_INT)] | None = None
    usage: UsageIn | None = None  # cumulative counters since the runner started
    exit_code: ExitCode | None = None  # present only in the final heartbeat


class HeartbeatAck(Struct, kw_only=True):
    ok: bool
    heartbeat_interval: float


class Logs(Struct, kw_only=True):
    text: str
    offset: int  # pass back as ?offset= to read only what follows
    file_id: str  # changes when the log rotates; pass back as ?file_id=
    path: str


# --- events, status ---------------------------------------------------------------------
class Event(Struct, kw_only=True):
    id: int
    ts: Timestamp
    type: str
    severity: Literal["debug", "info", "warning", "error"]
    runner_id: int | None
    project: str | None
    title: str
    body: str
    data: dict[str, Any]


class Status(Struct, kw_only=True):
    version: str
    pid: int
    uptime_s: float
    api_url: str
    data_dir: str
    runners: dict[str, int]  # state -> count, every state present
    active: int
    queued: int
    projects: int
    storage: str | None = None  # the data folder full, read-only or locked: what and since when


class SettingUpdate(Input):
    value: int | float | str | dict[str, dict[str, float]]


class SettingValue(Struct, kw_only=True):
    key: str
    value: int | float | str | dict[str, Any]  # in effect now
    saved: int | float | str | dict[str, Any] | None  # what the next start uses (None: default)
    default: int | float | str | dict[str, Any]
    applies: Literal["now", "at next start"]


class Health(Struct, kw_only=True):
    ok: bool
    version: str


class Error(Struct, kw_only=True):
    error: str
    message: str


# --- OpenAPI ----------------------------------------------------------------------------
class Audience(enum.Enum):
    """Who may call a route: every route declares one where it is registered."""

    OPEN = "open"  # anyone who reaches the port: no token
    ADMIN = "admin"  # the admin token (api-token in the data dir)
    RUNNER = "runner"  # a runner's own token, for that runner only
    RUNNER_OR_ADMIN = "runner_or_admin"  # the admin token, or a runner's own for itself


@dataclass(frozen=True)
class Route:
    """One API route: what wires it, authorises it and documents it. ``handler`` is an
    unbound method of the API; ``runner_id`` (for the runner audiences) reads the id of the
    runner the request speaks for, whose own token it must carry."""

    method: str
    path: str
    handler: Callable[..., Awaitable[Any]]
    summary: str
    audience: Audience
    body: type | None = None
    response: Any = None
    runner_id: Callable[..., Awaitable[int | None]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.audience, Audience):
            raise TypeError(f"{self.method} {self.path}: audience must be an Audience")
        runner = self.audience in (Audience.RUNNER, Audience.RUNNER_OR_ADMIN)
        if runner != (self.runner_id is not None):
            raise TypeError(
                f"{self.method} {self.path}: give runner_id exactly for the runner audiences"
            )


ERROR_STATUSES = {
    400: "Malformed request",
    401: "Missing or wrong bearer token",
    403: "Sent by a web page (an Origin or Sec-Fetch-Site header from another site)",
    404: "No such object",
    405: "The route does not take this method",
    408: "The body did not arrive within 30 s",
    409: "Conflicts with the object's state, an existing name, a cap, or a spent budget",
    413: "The body is larger than 1 MiB",
    415: "The body is not application/json",
    421: "The Host header is not 127.0.0.1, localhost or [::1] with the API's port",
    422: "Invalid fields, or a command not found on PATH",
    503: "Shutting down, or an OS service it needs (the keyring) is missing",
}


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``, schemas generated from the structs."""
    types = [t for r in routes for t in (r.body, r.response) if t is not None] + [Error]
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    schema_of = dict(zip(types, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        method, path, body, response = route.method, route.path, route.body, route.response
        op: dict[str, Any] = {"summary": route.summary, "responses": {}}
        if route.audience is not Audience.OPEN:
            op["security"] = [{"bearer": []}]
        params = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
        if params:
            op["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ]
        if body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of[body]}},
            }
        ok = {"description": "OK"}
        if response is not None:
            ok["content"] = {"application/json": {"schema": schema_of[response]}}
        op["responses"]["200"] = ok
        for status, text in ERROR_STATUSES.items():
            op["responses"][str(status)] = {
                "description": text,
                "content": {"application/json": {"schema": schema_of[Error]}},
            }
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Stratavore supervisor API", "version": __version__},
        "servers": [{"url": "http://127.0.0.1"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
