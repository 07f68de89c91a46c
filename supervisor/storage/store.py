"""Storage: peewee models on one SQLite file, ordered migrations, the DB proxy.

``DB`` is a proxy bound by :func:`init_db` (tests pass a temp file). SQLite runs in WAL mode
with foreign keys on and a busy timeout, so the CLI can read while the supervisor writes.
Each migration runs inside one transaction, and the DB is backed up (``supervisor.storage.backups``)
before an existing database is migrated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peewee as pw

from supervisor.core import paths
from supervisor.storage import backups

DB = pw.DatabaseProxy()


class JSONField(pw.TextField):
    """A JSON value stored as text."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(pw.Model):
    class Meta:
        database = DB
        legacy_table_names = False


class Project(BaseModel):
    name = pw.CharField(unique=True)
    path = pw.TextField()
    archived = pw.BooleanField(default=False)
    max_runners = pw.IntegerField(null=True)  # None: the global per-project setting
    created_at = pw.FloatField()


class Profile(BaseModel):
    """How to run an agent (``claude``, ``codex``, ... or the user's own): argument-list
    templates with named placeholders (see ``supervisor.agents.profiles``), never shell strings."""

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


class UsageSession(BaseModel):
    """An agent session seen in the logs: where it ran, so late projects can claim it."""

    session_id = pw.CharField(primary_key=True)
    agent = pw.CharField()
    cwd = pw.TextField(null=True)
    project_id = pw.IntegerField(null=True)
    runner_id = pw.IntegerField(null=True)


class UsageBucket(BaseModel):
    """Ledger totals per 15 minutes: reports and budget windows sum these, not the rows."""

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

    class Meta:
        indexes = ((("start", "agent", "model", "project_id"), True),)


class Budget(BaseModel):
    scope = pw.CharField()  # "global" | "project:NAME" | "agent:NAME"
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

    budget = pw.ForeignKeyField(Budget, on_delete="CASCADE")
    period_start = pw.FloatField()
    kind = pw.CharField()  # "warn:75", "spent", "rollover"
    ts = pw.FloatField()

    class Meta:
        indexes = ((("budget", "period_start", "kind"), True),)


class Channel(BaseModel):
    """Where events are delivered. Its secret (bot token, access token, signing key) is in the
    OS keyring, never here."""

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

    channel = pw.ForeignKeyField(Channel, on_delete="CASCADE")
    message = JSONField()
    created_at = pw.FloatField()


class Delivery(BaseModel):
    """One event to one channel: pending until the channel acknowledged it, or dead."""

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
    Channel, DeliveryBatch, Delivery,
]  # fmt: skip

BUILTIN_PROFILES: list[dict[str, Any]] = [  # the row each built-in profile is kept equal to
    {
        "name": "claude",
        "description": "Claude Code",
        "agent": "claude",
        "binaries": ["claude"],
        # The session is chosen up front (--session-id), so usage, transcript and runner match;
        # {hooks} is Stratavore's settings file: Claude Code's hooks report to the supervisor.
        "command": ["{binary}", "--session-id", "{session_id}", "--settings", "{hooks}", "{args}"],
        "batch": [
            "{binary}", "-p", "--session-id", "{session_id}", "--settings", "{hooks}", "{args}",
            "--", "{prompt}",
        ],
        "resume": ["{binary}", "--resume", "{session_id}", "--settings", "{hooks}", "{args}"],
        "resume_batch": [
            "{binary}", "-p", "--resume", "{session_id}", "--settings", "{hooks}", "{args}",
            "--", "{prompt}",
        ],
        "setup_files": [".env", ".env.*", ".claude/settings.local.json"],
    },
    {
        "name": "codex",
        "description": "OpenAI Codex CLI",
        "agent": "codex",
        "binaries": ["codex"],
        # Codex picks its own session id: learned from its rollout file once it writes one.
        "command": ["{binary}", "{args}"],
        "batch": ["{binary}", "exec", "{args}", "--", "{prompt}"],
        "resume": ["{binary}", "resume", "{args}", "{session_id}"],
        "resume_batch": ["{binary}", "exec", "{args}", "resume", "{session_id}", "{prompt}"],
        "setup_files": [".env", ".env.*"],
    },
    {
        "name": "aider",
        "description": "Aider (no sessions to resume)",
        "agent": "aider",
        "binaries": ["aider"],
        "command": ["{binary}", "{args}"],
        "batch": ["{binary}", "--yes-always", "{args}", "--message={prompt}"],
        "setup_files": [".env", ".aider.conf.yml"],
    },
    {
        "name": "gemini",
        "description": "Gemini CLI",
        "agent": "gemini",
        "binaries": ["gemini"],
        "command": ["{binary}", "{args}"],
        "batch": ["{binary}", "{args}", "--prompt={prompt}"],
        "resume": ["{binary}", "--resume", "{session_id}", "{args}"],
        "resume_batch": ["{binary}", "--resume", "{session_id}", "{args}", "--prompt={prompt}"],
        "setup_files": [".env"],
    },
    {
        "name": "shell",
        "description": "The user's login shell",
        "agent": "shell",
        "command": ["{shell}", "{args}"],
        "batch": ["{shell}", "{shell_c}", "{prompt}"],
    },
]  # fmt: skip


# Migrations are frozen SQL, never the live models: a model that grows a column must not
# change what an old migration creates.
_V1 = """
CREATE TABLE "event" ("id" INTEGER NOT NULL PRIMARY KEY, "ts" REAL NOT NULL, "type" VARCHAR(255) NOT NULL, "severity" VARCHAR(255) NOT NULL, "runner_id" INTEGER, "project" VARCHAR(255), "title" TEXT NOT NULL, "body" TEXT NOT NULL, "data" TEXT NOT NULL);
CREATE INDEX "event_type" ON "event" ("type");
CREATE INDEX "event_runner_id" ON "event" ("runner_id");
CREATE TABLE "profile" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(255) NOT NULL, "command" TEXT NOT NULL, "description" TEXT NOT NULL, "restart" VARCHAR(255) NOT NULL, "expected_exit_codes" TEXT NOT NULL, "env" TEXT NOT NULL, "builtin" INTEGER NOT NULL, "created_at" REAL NOT NULL);
CREATE UNIQUE INDEX "profile_name" ON "profile" ("name");
CREATE TABLE "project" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(255) NOT NULL, "path" TEXT NOT NULL, "archived" INTEGER NOT NULL, "max_runners" INTEGER, "created_at" REAL NOT NULL);
CREATE UNIQUE INDEX "project_name" ON "project" ("name");
CREATE TABLE "runner" ("id" INTEGER NOT NULL PRIMARY KEY, "project_id" INTEGER NOT NULL, "profile" VARCHAR(255), "command" TEXT NOT NULL, "cwd" TEXT NOT NULL, "env" TEXT NOT NULL, "state" VARCHAR(255) NOT NULL, "reason" TEXT, "supervised" INTEGER NOT NULL, "restart" VARCHAR(255) NOT NULL, "expected_exit_codes" TEXT NOT NULL, "start_secs" REAL NOT NULL, "max_retries" INTEGER NOT NULL, "backoff_initial" REAL NOT NULL, "backoff_max" REAL NOT NULL, "early_exits" INTEGER NOT NULL, "restarts" INTEGER NOT NULL, "next_start_at" REAL, "pid" INTEGER, "create_time" REAL, "exit_code" INTEGER, "stop_requested_at" REAL, "stop_force" INTEGER NOT NULL, "created_at" REAL NOT NULL, "queued_at" REAL, "started_at" REAL, "ended_at" REAL, "last_heartbeat" REAL, "unresponsive" INTEGER NOT NULL, "cpu_percent" REAL, "rss_bytes" INTEGER, "tokens" INTEGER, "token_hash" VARCHAR(255) NOT NULL, "log_offset" INTEGER NOT NULL, FOREIGN KEY ("project_id") REFERENCES "project" ("id") ON DELETE RESTRICT);
CREATE INDEX "runner_project_id" ON "runner" ("project_id");
CREATE INDEX "runner_state" ON "runner" ("state");
CREATE TABLE "setting" ("key" VARCHAR(255) NOT NULL PRIMARY KEY, "value" TEXT NOT NULL);
"""  # noqa: E501

_V2 = """
ALTER TABLE "runner" ADD COLUMN "session_id" VARCHAR(255);
CREATE INDEX "runner_session_id" ON "runner" ("session_id");
CREATE TABLE "usage_file" ("id" INTEGER NOT NULL PRIMARY KEY, "path" TEXT NOT NULL, "agent" VARCHAR(255) NOT NULL, "size" INTEGER NOT NULL, "mtime_ns" INTEGER NOT NULL, "offset" INTEGER NOT NULL, "head" VARCHAR(255) NOT NULL, "context" TEXT NOT NULL, "records" INTEGER NOT NULL, "skipped" INTEGER NOT NULL, "imported_at" REAL);
CREATE UNIQUE INDEX "usage_file_path" ON "usage_file" ("path");
CREATE TABLE "usage" ("id" INTEGER NOT NULL PRIMARY KEY, "ts" REAL NOT NULL, "agent" VARCHAR(255) NOT NULL, "model" VARCHAR(255) NOT NULL, "input_tokens" INTEGER NOT NULL, "output_tokens" INTEGER NOT NULL, "cache_creation_tokens" INTEGER NOT NULL, "cache_creation_1h_tokens" INTEGER NOT NULL, "cache_read_tokens" INTEGER NOT NULL, "cost_usd" REAL, "logged_cost" REAL, "speed" VARCHAR(255), "project_id" INTEGER, "runner_id" INTEGER, "session_id" VARCHAR(255), "file_id" INTEGER, "dedupe" INTEGER NOT NULL, "rank" INTEGER NOT NULL);
CREATE INDEX "usage_ts" ON "usage" ("ts");
CREATE INDEX "usage_runner_id" ON "usage" ("runner_id");
CREATE INDEX "usage_session_id" ON "usage" ("session_id");
CREATE UNIQUE INDEX "usage_dedupe" ON "usage" ("dedupe");
CREATE TABLE "usage_session" ("session_id" VARCHAR(255) NOT NULL PRIMARY KEY, "agent" VARCHAR(255) NOT NULL, "cwd" TEXT, "project_id" INTEGER, "runner_id" INTEGER);
CREATE TABLE "usage_bucket" ("id" INTEGER NOT NULL PRIMARY KEY, "start" INTEGER NOT NULL, "agent" VARCHAR(255) NOT NULL, "model" VARCHAR(255) NOT NULL, "project_id" INTEGER NOT NULL, "input_tokens" INTEGER NOT NULL, "output_tokens" INTEGER NOT NULL, "cache_creation_tokens" INTEGER NOT NULL, "cache_read_tokens" INTEGER NOT NULL, "cost_usd" REAL NOT NULL, "responses" INTEGER NOT NULL);
CREATE UNIQUE INDEX "usage_bucket_start_agent_model_project_id" ON "usage_bucket" ("start", "agent", "model", "project_id");
CREATE TABLE "budget" ("id" INTEGER NOT NULL PRIMARY KEY, "scope" VARCHAR(255) NOT NULL, "period" VARCHAR(255) NOT NULL, "limit_tokens" INTEGER, "limit_usd" REAL, "warn" TEXT NOT NULL, "action" VARCHAR(255) NOT NULL, "created_at" REAL NOT NULL);
CREATE UNIQUE INDEX "budget_scope_period" ON "budget" ("scope", "period");
CREATE TABLE "budget_mark" ("id" INTEGER NOT NULL PRIMARY KEY, "budget_id" INTEGER NOT NULL, "period_start" REAL NOT NULL, "kind" VARCHAR(255) NOT NULL, "ts" REAL NOT NULL, FOREIGN KEY ("budget_id") REFERENCES "budget" ("id") ON DELETE CASCADE);
CREATE INDEX "budget_mark_budget_id" ON "budget_mark" ("budget_id");
CREATE UNIQUE INDEX "budget_mark_budget_id_period_start_kind" ON "budget_mark" ("budget_id", "period_start", "kind");
"""  # noqa: E501

_V3 = """
CREATE TABLE "channel" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(255) NOT NULL, "kind" VARCHAR(255) NOT NULL, "config" TEXT NOT NULL, "policy" TEXT NOT NULL, "enabled" INTEGER NOT NULL, "created_at" REAL NOT NULL, "updated_at" REAL NOT NULL);
CREATE UNIQUE INDEX "channel_name" ON "channel" ("name");
CREATE TABLE "delivery_batch" ("id" INTEGER NOT NULL PRIMARY KEY, "channel_id" INTEGER NOT NULL, "message" TEXT NOT NULL, "created_at" REAL NOT NULL, FOREIGN KEY ("channel_id") REFERENCES "channel" ("id") ON DELETE CASCADE);
CREATE INDEX "delivery_batch_channel_id" ON "delivery_batch" ("channel_id");
CREATE TABLE "delivery" ("id" INTEGER NOT NULL PRIMARY KEY, "event_id" INTEGER NOT NULL, "channel_id" INTEGER NOT NULL, "state" VARCHAR(255) NOT NULL, "attempts" INTEGER NOT NULL, "next_attempt_at" REAL NOT NULL, "last_error" TEXT, "batch_id" INTEGER, "created_at" REAL NOT NULL, "sent_at" REAL, FOREIGN KEY ("event_id") REFERENCES "event" ("id") ON DELETE CASCADE, FOREIGN KEY ("channel_id") REFERENCES "channel" ("id") ON DELETE CASCADE, FOREIGN KEY ("batch_id") REFERENCES "delivery_batch" ("id") ON DELETE SET NULL);
CREATE INDEX "delivery_event_id" ON "delivery" ("event_id");
CREATE INDEX "delivery_channel_id" ON "delivery" ("channel_id");
CREATE INDEX "delivery_batch_id" ON "delivery" ("batch_id");
CREATE UNIQUE INDEX "delivery_event_id_channel_id" ON "delivery" ("event_id", "channel_id");
CREATE INDEX "delivery_state_next_attempt_at" ON "delivery" ("state", "next_attempt_at");
"""  # noqa: E501


def _run_sql(db: pw.Database, script: str) -> None:
    for statement in script.strip().split(";\n"):
        db.execute_sql(statement.rstrip(";"))


def _migration_1(db: pw.Database) -> None:
    """The first schema (the built-in profiles are kept by :func:`sync_builtin_profiles`)."""
    _run_sql(db, _V1)


def _migration_2(db: pw.Database) -> None:
    """The usage ledger, its buckets and file marks, budgets; runners learn their session."""
    _run_sql(db, _V2)


def _migration_3(db: pw.Database) -> None:
    """Notification channels and the delivery of each event to each of them."""
    _run_sql(db, _V3)


def _migration_4(db: pw.Database) -> None:
    """Channels say whether they have a secret: the keyring is asked only then (a headless
    server has none, and a webhook without a secret must work there)."""
    db.execute_sql('ALTER TABLE "channel" ADD COLUMN "has_secret" INTEGER NOT NULL DEFAULT 0')


_V5 = """
ALTER TABLE "profile" ADD COLUMN "agent" VARCHAR(255);
ALTER TABLE "profile" ADD COLUMN "binaries" TEXT NOT NULL DEFAULT '[]';
ALTER TABLE "profile" ADD COLUMN "batch" TEXT;
ALTER TABLE "profile" ADD COLUMN "resume" TEXT;
ALTER TABLE "profile" ADD COLUMN "resume_batch" TEXT;
ALTER TABLE "profile" ADD COLUMN "setup_files" TEXT NOT NULL DEFAULT '[]';
ALTER TABLE "profile" ADD COLUMN "worktree" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "profile" ADD COLUMN "resume_on_limit" INTEGER;
ALTER TABLE "profile" ADD COLUMN "idle_after" REAL;
ALTER TABLE "runner" ADD COLUMN "mode" VARCHAR(255) NOT NULL DEFAULT 'command';
ALTER TABLE "runner" ADD COLUMN "prompt" TEXT;
ALTER TABLE "runner" ADD COLUMN "attention" VARCHAR(255);
ALTER TABLE "runner" ADD COLUMN "attention_at" REAL;
ALTER TABLE "runner" ADD COLUMN "limit_resets_at" REAL;
ALTER TABLE "runner" ADD COLUMN "resume_on_limit" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "runner" ADD COLUMN "worktree" TEXT;
ALTER TABLE "runner" ADD COLUMN "extra_args" TEXT NOT NULL DEFAULT '[]';
"""


def _migration_5(db: pw.Database) -> None:
    """Agent profiles (batch and resume templates, worktrees, limits); runners' mode, prompt,
    attention, limit reset and worktree."""
    _run_sql(db, _V5)


_V6 = """
ALTER TABLE "usage" ADD COLUMN "ccusage_cost_usd" REAL;
ALTER TABLE "usage" ADD COLUMN "web_search_requests" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "usage_bucket" ADD COLUMN "ccusage_cost_usd" REAL NOT NULL DEFAULT 0;
UPDATE "usage" SET "ccusage_cost_usd" = "cost_usd";
UPDATE "usage_bucket" SET "ccusage_cost_usd" = "cost_usd";
DELETE FROM "setting" WHERE "key" = 'cost_mode' AND "value" IN ('"auto"', '"calculate"', '"display"');
INSERT OR REPLACE INTO "setting" ("key", "value") SELECT 'usage.reprice', 'true' WHERE EXISTS (SELECT 1 FROM "usage")
"""  # noqa: E501


def _migration_6(db: pw.Database) -> None:
    """Two costs per ledger row, as the vendor bills (``cost_usd``) and as ccusage does, and
    the web searches vendor prices need. The old figures become the ccusage ones; the next
    import reprices every row (the ``usage.reprice`` flag: pricing lives above the store).
    The old cost modes (auto, calculate, display) are gone: a saved one gives way to the
    new default, vendor."""
    _run_sql(db, _V6)


# Ordered; MIGRATIONS[i] takes the schema from version i to i + 1. Never edit a released one.
MIGRATIONS: list[Callable[[pw.Database], None]] = [
    _migration_1, _migration_2, _migration_3, _migration_4, _migration_5, _migration_6,
]  # fmt: skip
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The DB was written by a newer Stratavore."""


def init_db(path: Path) -> pw.SqliteDatabase:
    """Open (creating or migrating) the database at ``path`` and bind :data:`DB` to it. A file
    that is not a readable database, or one emptied in a used data dir, is refused
    (:class:`backups.DamagedDatabase`) before anything is written; the supervisor runs the
    thorough check (:func:`backups.check_db`) first."""
    paths.private_dir(path.parent)
    backups.check_db(path, thorough=False)
    existed = path.exists() and path.stat().st_size > 0
    # 0600 before SQLite opens it: SQLite gives the WAL and its index the DB file's mode
    for private in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        paths.private_file(private, create=private == path)
    db = pw.SqliteDatabase(
        str(path),
        pragmas={
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": 5000,
            "synchronous": "normal",  # with WAL: durable across app crashes, fast commits
        },
        timeout=5,
    )
    DB.initialize(db)
    db.connect(reuse_if_open=True)
    version = db.execute_sql("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"The database {path} has schema version {version}, newer than this Stratavore "
            f"understands ({SCHEMA_VERSION}); upgrade Stratavore."
        )
    if version < SCHEMA_VERSION and existed:
        backups.take(path, f"v{version}")
    for target in range(version, SCHEMA_VERSION):
        with db.atomic():
            MIGRATIONS[target](db)
            db.execute_sql(f"PRAGMA user_version = {target + 1}")
    sync_builtin_profiles()
    return db


def sync_builtin_profiles(now: float | None = None) -> int:
    """Keep the built-in profiles' rows equal to :data:`BUILTIN_PROFILES` (this version's);
    a no-op write-free check when they are. Users copy a built-in to change it. How many rows
    were written."""
    present = {row[1] for row in DB.execute_sql('PRAGMA table_info("profile")')}
    if present != set(Profile._meta.sorted_field_names):
        return 0  # an older schema, only ever seen when a test stops migrations midway
    columns = [f for f in Profile._meta.sorted_field_names if f not in ("id", "created_at")]
    defaults = {name: Profile._meta.fields[name].default for name in columns}
    existing = {p.name: p for p in Profile.select().where(Profile.builtin)}
    written = 0
    for spec in BUILTIN_PROFILES:
        wanted = {
            name: spec.get(name, default() if callable(default) else default)
            for name, default in defaults.items()
        }
        wanted["builtin"] = True
        row = existing.get(spec["name"])
        if row is not None and all(getattr(row, k) == v for k, v in wanted.items()):
            continue
        with DB.atomic():
            if row is None:
                Profile.create(**wanted, created_at=time.time() if now is None else now)
            else:
                Profile.update(**wanted).where(Profile.id == row.id).execute()
        written += 1
    return written


def close_db() -> None:
    if DB.obj is not None and not DB.is_closed():
        DB.close()
