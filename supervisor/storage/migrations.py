"""Ordered migrations of the schema: frozen SQL, one transaction each.

``MIGRATIONS[i]`` takes the schema from version ``i`` (SQLite's ``user_version``) to ``i + 1``;
:func:`supervisor.storage.db.init_db` runs the ones a database lacks, after backing it up.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import peewee as pw

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


_V7 = """
CREATE TABLE "plan_limit" ("id" INTEGER NOT NULL PRIMARY KEY, "account" TEXT NOT NULL, "agent" VARCHAR(255) NOT NULL, "window" VARCHAR(255) NOT NULL, "used_percent" REAL NOT NULL, "resets_at" REAL, "observed_at" REAL NOT NULL, "notified" REAL NOT NULL);
CREATE UNIQUE INDEX "plan_limit_account_window" ON "plan_limit" ("account", "window")
"""  # noqa: E501


def _migration_7(db: pw.Database) -> None:
    """The latest use of each provider plan window per account (Claude Code's status line,
    Codex's rollouts), and the highest threshold already reported in its period."""
    for statement in _V7.strip().split(";\n"):
        db.execute_sql(statement.rstrip(";"))


_V8 = """
ALTER TABLE "usage" ADD COLUMN "account" VARCHAR(255) NOT NULL DEFAULT '';
ALTER TABLE "usage_bucket" ADD COLUMN "account" VARCHAR(255) NOT NULL DEFAULT '';
DROP INDEX "usage_bucket_start_agent_model_project_id";
CREATE UNIQUE INDEX "usage_bucket_start_agent_model_project_id_account" ON "usage_bucket" ("start", "agent", "model", "project_id", "account");
INSERT OR REPLACE INTO "setting" ("key", "value") SELECT 'usage.reaccount', 'true' WHERE EXISTS (SELECT 1 FROM "usage")
"""  # noqa: E501


def _migration_8(db: pw.Database) -> None:
    """Usage per account (the agent's config directory, ``supervisor.agents.accounts``): the
    rows and buckets learn theirs. Existing Claude and Codex rows get the default account
    (``~/.claude``, ``~/.codex``, resolved as ``accounts.account_key`` does); the next import
    gives the rows read from another config directory theirs (the ``usage.reaccount`` flag:
    which directory a file came from is known above the store)."""
    _run_sql(db, _V8)
    home = Path(os.environ.get("HOME") or Path.home())
    for agent, folder in (("claude", ".claude"), ("codex", ".codex")):
        key = str((home / folder).resolve())
        for table in ("usage", "usage_bucket"):
            db.execute_sql(f'UPDATE "{table}" SET "account" = ? WHERE "agent" = ?', (key, agent))


# Ordered; MIGRATIONS[i] takes the schema from version i to i + 1. Never edit a released one.
MIGRATIONS: list[Callable[[pw.Database], None]] = [
    _migration_1, _migration_2, _migration_3, _migration_4, _migration_5, _migration_6,
    _migration_7, _migration_8,
]  # fmt: skip
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: pw.Database, version: int, target: int = SCHEMA_VERSION) -> None:
    """Take the schema from ``version`` to ``target``, one migration at a time, each with its
    new ``user_version`` in one transaction: a migration that fails leaves the database as the
    one before it left it."""
    for step in range(version, target):
        with db.atomic():
            MIGRATIONS[step](db)
            db.execute_sql(f"PRAGMA user_version = {step + 1}")
