"""The database's tables as peewee models, and ``DB``, the proxy they are bound through.

``DB`` is bound by :func:`supervisor.storage.db.init_db` (tests pass a temp file). The models
describe the schema that the migrations (``supervisor.storage.migrations``) build; callers read
and write through the named queries (``supervisor.storage.queries``).
"""

from __future__ import annotations

import json
from typing import Any

import peewee as pw

DB = pw.DatabaseProxy()


class JSONField(pw.TextField):
    """A JSON value stored as text."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(pw.Model):
    """The models' base. A model's implicit ``id`` and its foreign keys' ``<name>_id``
    accessors, which peewee adds at runtime, are declared as annotations only (no runtime
    effect) so that the type checker knows them."""

    class Meta:
        database = DB
        legacy_table_names = False


class Project(BaseModel):
    id: pw.AutoField[int]
    name = pw.CharField(unique=True)
    path = pw.TextField()
    archived = pw.BooleanField(default=False)
    max_runners = pw.IntegerField(null=True)  # None: the global per-project setting
    created_at = pw.FloatField()


class Profile(BaseModel):
    """How to run an agent (``claude``, ``codex``, ... or the user's own): argument-list
    templates with named placeholders (see ``supervisor.agents.profiles``), never shell strings."""

    id: pw.AutoField[int]
    name = pw.CharField(unique=True)
    command = JSONField()  # interactive (or plain) command line
    description = pw.TextField(default="")
    restart = pw.CharField(default="never")
    expected_exit_codes = JSONField(default=[0])
    env = JSONField(default={})
    builtin = pw.BooleanField(default=False)
    created_at = pw.FloatField()
    agent = pw.CharField(null=True)  # claude | codex | aider | gemini | shell: its integration
    binaries = JSONField(default=[])  # program names tried, in order, for {binary}
    batch = JSONField(null=True)  # non-interactive command line, with {prompt}
    resume = JSONField(null=True)  # continue session {session_id} interactively
    resume_batch = JSONField(null=True)  # ... or non-interactively, with {prompt}
    setup_files = JSONField(default=[])  # copied into a runner's git worktree (.env, ...)
    worktree = pw.BooleanField(default=False)  # runners get their own worktree by default
    resume_on_limit = pw.BooleanField(null=True)  # None: yes for batch runs, no otherwise
    idle_after = pw.FloatField(null=True)  # heuristic idle (agents without hooks); None: 300 s


class Runner(BaseModel):
    id: pw.AutoField[int]
    project_id: int
    project = pw.ForeignKeyField(Project, backref="runners", on_delete="RESTRICT")
    profile = pw.CharField(null=True)
    command = JSONField()  # argument list, never a shell string
    cwd = pw.TextField()
    env = JSONField(default={})  # extra environment from the profile / launch
    state = pw.CharField(index=True)
    reason = pw.TextField(null=True)
    supervised = pw.BooleanField(default=True)  # False: registered by stratavore-agent
    # restart policy, frozen at launch
    restart = pw.CharField(default="never")
    expected_exit_codes = JSONField(default=[0])
    start_secs = pw.FloatField(default=1.0)
    max_retries = pw.IntegerField(default=3)
    backoff_initial = pw.FloatField(default=1.0)
    backoff_max = pw.FloatField(default=60.0)
    early_exits = pw.IntegerField(default=0)  # consecutive exits inside the start window
    restarts = pw.IntegerField(default=0)
    next_start_at = pw.FloatField(null=True)  # when in backoff
    # identity of the runner's root process: (pid, create time), never a bare pid
    pid = pw.IntegerField(null=True)
    create_time = pw.FloatField(null=True)
    exit_code = pw.IntegerField(null=True)  # shell convention: 128+N when killed by signal N
    stop_requested_at = pw.FloatField(null=True)
    stop_force = pw.BooleanField(default=False)
    # times (epoch seconds, UTC)
    created_at = pw.FloatField()
    queued_at = pw.FloatField(null=True)
    started_at = pw.FloatField(null=True)
    ended_at = pw.FloatField(null=True)
    # liveness
    last_heartbeat = pw.FloatField(null=True)
    unresponsive = pw.BooleanField(default=False)
    cpu_percent = pw.FloatField(null=True)
    rss_bytes = pw.IntegerField(null=True)
    tokens = pw.IntegerField(null=True)
    session_id = pw.CharField(null=True, index=True)  # the agent's own session, when known
    token_hash = pw.CharField()  # sha256 of the runner's token; the token itself is not stored
    log_offset = pw.IntegerField(default=0)  # bytes of the output spool already pumped
    mode = pw.CharField(default="command")  # interactive | batch (a profile's) | command
    prompt = pw.TextField(null=True)  # a batch run's prompt
    attention = pw.CharField(null=True)  # states.Attention, while it runs
    attention_at = pw.FloatField(null=True)
    limit_resets_at = pw.FloatField(null=True)  # paused: when the provider's limit resets
    resume_on_limit = pw.BooleanField(default=False)  # resume by itself at the reset
    worktree = JSONField(null=True)  # worktrees.Worktree of a runner with its own checkout
    extra_args = JSONField(default=[])  # the launch's arguments for its profile's {args}


class Event(BaseModel):
    """An event, written in the same transaction as the change it reports (the outbox)."""

    id: pw.AutoField[int]
    ts = pw.FloatField()
    type = pw.CharField(index=True)
    severity = pw.CharField(default="info")
    runner_id = pw.IntegerField(null=True, index=True)
    project = pw.CharField(null=True)
    title = pw.TextField()
    body = pw.TextField(default="")
    data = JSONField(default={})


class Setting(BaseModel):
    key = pw.CharField(primary_key=True)
    value = JSONField()


class UsageFile(BaseModel):
    """How far an agent log file has been imported: a refresh reads only what follows."""

    id: pw.AutoField[int]
    path = pw.TextField(unique=True)
    agent = pw.CharField()
    size = pw.IntegerField(default=0)
    mtime_ns = pw.IntegerField(default=0)
    offset = pw.IntegerField(default=0)  # bytes consumed, always at a line end
    head = pw.CharField(default="")  # hash of the first bytes: a rewritten file is re-read
    context = JSONField(default={})  # parser state carried across refreshes
    records = pw.IntegerField(default=0)
    skipped = pw.IntegerField(default=0)  # malformed lines, counted and passed over
    imported_at = pw.FloatField(null=True)


class Usage(BaseModel):
    """The ledger: one row per counted API response."""

    id: pw.AutoField[int]
    ts = pw.FloatField(index=True)  # UTC epoch seconds
    agent = pw.CharField()
    model = pw.CharField()
    input_tokens = pw.IntegerField()
    output_tokens = pw.IntegerField()
    cache_creation_tokens = pw.IntegerField()
    cache_creation_1h_tokens = pw.IntegerField(default=0)
    cache_read_tokens = pw.IntegerField()
    cost_usd = pw.FloatField(null=True)  # as the vendor bills it; None: no known price
    ccusage_cost_usd = pw.FloatField(null=True)  # as ccusage 20.0.24 works it out
    logged_cost = pw.FloatField(null=True)  # the agent's own figure
    speed = pw.CharField(null=True)
    web_search_requests = pw.IntegerField(default=0)
    project_id = pw.IntegerField(null=True)
    runner_id = pw.IntegerField(null=True, index=True)
    session_id = pw.CharField(null=True, index=True)
    file_id = pw.IntegerField(null=True)  # UsageFile it came from; None: API or heartbeat
    dedupe = pw.IntegerField(unique=True)  # 64-bit hash of the importer's dedupe key
    rank = pw.IntegerField()  # which of several lines of one response is kept
    account = pw.CharField(default="")  # config dir (agents.accounts); "": agent without one


class UsageSession(BaseModel):
    """An agent session seen in the logs: where it ran, so late projects can claim it."""

    session_id = pw.CharField(primary_key=True)
    agent = pw.CharField()
    cwd = pw.TextField(null=True)
    project_id = pw.IntegerField(null=True)
    runner_id = pw.IntegerField(null=True)


class UsageBucket(BaseModel):
    """Ledger totals per 15 minutes: reports and budget windows sum these, not the rows."""

    id: pw.AutoField[int]
    start = pw.IntegerField()  # UTC epoch seconds, a multiple of 900
    agent = pw.CharField()
    model = pw.CharField()
    project_id = pw.IntegerField()  # 0: not attributed to a project
    input_tokens = pw.IntegerField(default=0)
    output_tokens = pw.IntegerField(default=0)
    cache_creation_tokens = pw.IntegerField(default=0)
    cache_read_tokens = pw.IntegerField(default=0)
    cost_usd = pw.FloatField(default=0.0)
    ccusage_cost_usd = pw.FloatField(default=0.0)
    responses = pw.IntegerField(default=0)
    account = pw.CharField(default="")

    class Meta:
        indexes = ((("start", "agent", "model", "project_id", "account"), True),)


class Budget(BaseModel):
    id: pw.AutoField[int]
    scope = pw.CharField()  # "global" | "project:NAME" | "agent:NAME" | "account:DIR"
    period = pw.CharField()  # "5h" | "daily" | "weekly" | "monthly"
    limit_tokens = pw.IntegerField(null=True)
    limit_usd = pw.FloatField(null=True)
    warn = JSONField(default=[75, 90])  # percentages
    action = pw.CharField(default="warn")  # "warn" | "block" | "stop"
    created_at = pw.FloatField()

    class Meta:
        indexes = ((("scope", "period"), True),)  # exactly one budget per (scope, period)


class BudgetMark(BaseModel):
    """What was already reported for a budget's period: each threshold and rollover once."""

    id: pw.AutoField[int]
    budget_id: int
    budget = pw.ForeignKeyField(Budget, on_delete="CASCADE")
    period_start = pw.FloatField()
    kind = pw.CharField()  # "warn:75", "spent", "rollover"
    ts = pw.FloatField()

    class Meta:
        indexes = ((("budget", "period_start", "kind"), True),)


class PlanLimit(BaseModel):
    """The latest use of one window of a provider plan's limits, per account (the agent's
    config folder, ``supervisor.agents.accounts``): what the status line or a rollout said."""

    id: pw.AutoField[int]
    account = pw.TextField()
    agent = pw.CharField()  # "claude" | "codex"
    window = pw.CharField()  # "five_hour" | "seven_day" | "<minutes>m"
    used_percent = pw.FloatField()
    resets_at = pw.FloatField(null=True)  # UTC epoch seconds
    observed_at = pw.FloatField()
    notified = pw.FloatField(default=0)  # the highest threshold reported in this period

    class Meta:
        indexes = ((("account", "window"), True),)


class Channel(BaseModel):
    """Where events are delivered. Its secret (bot token, access token, signing key) is in the
    OS keyring, never here."""

    id: pw.AutoField[int]
    name = pw.CharField(unique=True)
    kind = pw.CharField()  # desktop | telegram | ntfy | webhook
    config = JSONField(default={})
    policy = JSONField(default={})  # which events, quiet hours, coalescing
    enabled = pw.BooleanField(default=True)
    created_at = pw.FloatField()
    updated_at = pw.FloatField()
    has_secret = pw.BooleanField(default=False)  # the keyring holds one: only then is it asked


class DeliveryBatch(BaseModel):
    """A summary message folding several deliveries: stored before its first attempt, so a
    retry sends the very same message under the same idempotency key."""

    id: pw.AutoField[int]
    channel_id: int
    channel = pw.ForeignKeyField(Channel, on_delete="CASCADE")
    message = JSONField()
    created_at = pw.FloatField()


class Delivery(BaseModel):
    """One event to one channel: pending until the channel acknowledged it, or dead."""

    id: pw.AutoField[int]
    event_id: int
    channel_id: int
    batch_id: int | None
    event = pw.ForeignKeyField(Event, on_delete="CASCADE")
    channel = pw.ForeignKeyField(Channel, on_delete="CASCADE")
    state = pw.CharField()  # pending | sent | dead
    attempts = pw.IntegerField(default=0)
    next_attempt_at = pw.FloatField()
    last_error = pw.TextField(null=True)
    batch = pw.ForeignKeyField(DeliveryBatch, null=True, on_delete="SET NULL")
    created_at = pw.FloatField()
    sent_at = pw.FloatField(null=True)

    class Meta:
        indexes = (
            (("event", "channel"), True),
            (("state", "next_attempt_at"), False),
        )


MODELS: list[type[BaseModel]] = [
    Project, Profile, Runner, Event, Setting,
    UsageFile, Usage, UsageSession, UsageBucket, Budget, BudgetMark,
    Channel, DeliveryBatch, Delivery, PlanLimit,
]  # fmt: skip
