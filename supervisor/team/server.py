"""The team database: connecting to it (libpq's URL, the keyring's password) and its schema.

The connection is peewee's ``PostgresqlDatabase`` on psycopg 3. Everything libpq understands
in the URL applies as libpq applies it (``sslmode``, ``sslrootcert``, ``connect_timeout``,
``target_session_attrs`` ...); the password never comes from the URL we keep (``join`` moves
it to the keyring) but from the keyring at connect time.

The schema lives in the PostgreSQL schema ``stratavore`` and is versioned like the local
store's: ordered migrations of frozen SQL, one transaction each, under an advisory lock so
two members joining at once migrate once. A database written by a newer Stratavore is
refused with one sentence.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import peewee as pw

from supervisor.core.errors import KnownError

try:  # the optional extra `team`: psycopg 3 with its bundled libpq
    import psycopg
    import psycopg.conninfo
except ImportError:  # pragma: no cover - exercised only where the extra is not installed
    psycopg = None  # type: ignore[assignment]

CONNECT_TIMEOUT_S = 5  # libpq's connect_timeout when the URL gives none
STATEMENT_TIMEOUT_MS = 30_000  # a push or a report that takes longer is a stuck server
_MIGRATE_LOCK = 0x5374726174  # pg_advisory_xact_lock key: one migrator at a time


class TeamError(KnownError):
    """Something about the team that a user can act on: one sentence."""


class TeamUnreachable(TeamError):
    """The team database cannot be reached right now (network, server down): try later."""


class TeamAuthFailed(TeamError):
    """The server refused our credentials."""


def require_driver() -> None:
    if psycopg is None:
        raise TeamError(
            "The team ledger needs psycopg 3: install Stratavore with its `team` extra "
            "(pip install 'stratavore[team]')."
        )


def check_url(url: str) -> str:
    """``url`` as a libpq URL (``postgres://`` becomes ``postgresql://``), or one sentence
    saying what is wrong with it."""
    require_driver()
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if not url.startswith("postgresql://"):
        raise TeamError(
            f"'{url}' is not a PostgreSQL URL; give one like postgresql://HOST/DB "
            "(libpq's form, e.g. ?sslmode=verify-full)."
        )
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise TeamError(f"The team URL cannot be read: {_first_line(exc)}.") from None
    if not params.get("dbname"):
        raise TeamError("The team URL names no database; give one like postgresql://HOST/DB.")
    return url


def split_password(url: str) -> tuple[str, str | None]:
    """The URL without its password (what may be kept) and the password, if it had one."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    from urllib.parse import unquote

    host = parts.hostname or ""
    netloc = (parts.username or "") + "@" + (f"[{host}]" if ":" in host else host)
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)), unquote(parts.password)


def describe(url: str) -> str:
    """``user@host:port/db`` for messages (never a password)."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    user = params.get("user")
    return f"{f'{user}@' if user else ''}{host}:{port}/{params.get('dbname')}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__


def explain(exc: BaseException, url: str) -> TeamError:
    """A driver's failure as one sentence: refused credentials, or unreachable."""
    text = str(exc)
    where = describe(url)
    if re.search(r"password authentication failed|no password supplied|"
                 r"certificate authentication failed|role .* does not exist", text):  # fmt: skip
        return TeamAuthFailed(
            f"The team database {where} refused the credentials ({_first_line(exc)}); run "
            "`stratavore team join` again with the right password or certificate."
        )
    detail = _first_line(exc).replace(f'connection to server at "{where}"', "")
    return TeamUnreachable(f"The team database {where} cannot be reached: {detail}.")


@contextlib.contextmanager
def key_files(certificate: str, key: str) -> Iterator[tuple[str, str]]:
    """Paths libpq can read a client certificate and key from (PEM texts from the keyring),
    for as long as a connection is being opened. On Linux they are anonymous memory files
    (``memfd``, seen as /proc/self/fd/N): the key never touches a disk. Elsewhere they are
    0600 files in a 0700 temp dir, removed as soon as the connection is made."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fds = []
        try:
            for name, text in (("stratavore-cert", certificate), ("stratavore-key", key)):
                fd = os.memfd_create(name, os.MFD_CLOEXEC)
                fds.append(fd)
                os.write(fd, text.encode())
                os.fchmod(fd, 0o600)  # libpq refuses a key others could read
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    folder = Path(tempfile.mkdtemp(prefix="stratavore-tls-"))  # 0700
    try:
        paths = []
        for name, text in (("client.crt", certificate), ("client.key", key)):
            path = folder / name
            path.touch(0o600)
            path.write_text(text)
            paths.append(str(path))
        yield paths[0], paths[1]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_client_certificate(certificate: Path, key: Path) -> str:
    """The client certificate and key files as one keyring secret (JSON of both PEM texts),
    or one sentence saying what is wrong with them."""
    texts = []
    for what, path in (("certificate", certificate), ("key", key)):
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise TeamError(f"The client {what} {path} cannot be read ({exc}).") from None
        if "-----BEGIN " not in text:
            raise TeamError(f"The client {what} {path} is not in PEM form (-----BEGIN ...).")
        texts.append(text)
    return json.dumps({"certificate": texts[0], "key": texts[1]})


def open_db(
    url: str, password: str | None = None, client_certificate: str | None = None, **params: Any
) -> pw.PostgresqlDatabase:
    """A connected peewee database on ``url`` (libpq's parameters as given there; a password
    and a client certificate (:func:`read_client_certificate`'s JSON) from the caller, i.e.
    the keyring). Failures are :class:`TeamError` sentences."""
    if client_certificate is not None:
        pair = json.loads(client_certificate)
        with key_files(pair["certificate"], pair["key"]) as (cert, key):
            return open_db(url, password, None, sslcert=cert, sslkey=key, **params)
    url = check_url(url)
    given = psycopg.conninfo.conninfo_to_dict(url)
    options = {"application_name": "stratavore", **params}
    if "connect_timeout" not in given:
        options["connect_timeout"] = CONNECT_TIMEOUT_S
    if password is not None:
        options["password"] = password
    # thread_safe=False: one connection, whichever thread uses it (a pusher serialises them)
    db = pw.PostgresqlDatabase(url, prefer_psycopg3=True, thread_safe=False, **options)
    try:
        db.connect()
        db.execute_sql(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        # JIT compiles a query the planner misjudges as big: 300 ms for a 1 ms budget check
        db.execute_sql("SET jit = off")
    except (pw.DatabaseError, pw.InterfaceError, psycopg.Error) as exc:
        if not db.is_closed():
            db.close()
        raise explain(exc, url) from None
    return db


def known_zone(db: pw.Database, zone: str) -> bool:
    """Whether the server knows time zone ``zone`` (asked directly: the pg_timezone_names
    view reads every zone file, 100 ms)."""
    try:
        with db.atomic():  # a savepoint: a refused zone does not abort the caller's transaction
            db.execute_sql("SELECT now() AT TIME ZONE %s", (zone,))
    except pw.DataError:
        return False
    return True


# --- the schema -------------------------------------------------------------------------------
# Frozen SQL: never edit a released migration, add one.
_V1 = """
CREATE TABLE stratavore.team (id boolean PRIMARY KEY DEFAULT true CHECK (id), zone text NOT NULL DEFAULT 'UTC', created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO stratavore.team DEFAULT VALUES;
CREATE TABLE stratavore.member (name text PRIMARY KEY, joined_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE stratavore.machine (id uuid PRIMARY KEY, member text NOT NULL REFERENCES stratavore.member (name), hostname text NOT NULL, joined_at timestamptz NOT NULL DEFAULT now(), left_at timestamptz, last_push_at timestamptz, pushed_rows bigint NOT NULL DEFAULT 0);
CREATE FUNCTION stratavore.bucket_of(ts timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT to_timestamp(floor(extract(epoch FROM ts) / 900) * 900) $$;
CREATE TABLE stratavore.usage (machine_id uuid NOT NULL, source text NOT NULL, dedupe bigint NOT NULL, member text NOT NULL, ts timestamptz NOT NULL, agent text NOT NULL, model text NOT NULL, project text, input_tokens bigint NOT NULL, output_tokens bigint NOT NULL, cache_creation_tokens bigint NOT NULL, cache_read_tokens bigint NOT NULL, cost_usd double precision, ccusage_cost_usd double precision, session_id text, runner_id bigint, pushed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (machine_id, source, dedupe));
CREATE INDEX usage_ts ON stratavore.usage (ts);
CREATE TABLE stratavore.usage_bucket (start timestamptz NOT NULL, member text NOT NULL, project text NOT NULL, agent text NOT NULL, model text NOT NULL, input_tokens bigint NOT NULL DEFAULT 0, output_tokens bigint NOT NULL DEFAULT 0, cache_creation_tokens bigint NOT NULL DEFAULT 0, cache_read_tokens bigint NOT NULL DEFAULT 0, cost_usd double precision NOT NULL DEFAULT 0, ccusage_cost_usd double precision NOT NULL DEFAULT 0, responses bigint NOT NULL DEFAULT 0, PRIMARY KEY (start, member, project, agent, model));
CREATE INDEX usage_bucket_member ON stratavore.usage_bucket (member, start);
CREATE INDEX usage_bucket_project ON stratavore.usage_bucket (project, start);
CREATE TABLE stratavore.usage_day (day date NOT NULL, member text NOT NULL, project text NOT NULL, agent text NOT NULL, model text NOT NULL, input_tokens bigint NOT NULL DEFAULT 0, output_tokens bigint NOT NULL DEFAULT 0, cache_creation_tokens bigint NOT NULL DEFAULT 0, cache_read_tokens bigint NOT NULL DEFAULT 0, cost_usd double precision NOT NULL DEFAULT 0, ccusage_cost_usd double precision NOT NULL DEFAULT 0, responses bigint NOT NULL DEFAULT 0, PRIMARY KEY (day, member, project, agent, model));
CREATE INDEX usage_day_member ON stratavore.usage_day (member, day);
CREATE INDEX usage_day_project ON stratavore.usage_day (project, day);
CREATE TABLE stratavore.crossing (machine_id uuid NOT NULL, event_id bigint NOT NULL, member text NOT NULL, ts timestamptz NOT NULL, type text NOT NULL, title text NOT NULL, body text NOT NULL, data jsonb NOT NULL, PRIMARY KEY (machine_id, event_id));
CREATE TABLE stratavore.runner (machine_id uuid NOT NULL, runner_id bigint NOT NULL, member text NOT NULL, project text NOT NULL, agent text NOT NULL, state text NOT NULL, created_at timestamptz NOT NULL, started_at timestamptz, ended_at timestamptz, exit_code integer, tokens bigint, cost_usd double precision, PRIMARY KEY (machine_id, runner_id));
CREATE INDEX runner_state ON stratavore.runner (state);
CREATE TABLE stratavore.budget (id serial PRIMARY KEY, scope text NOT NULL, period text NOT NULL, limit_tokens bigint, limit_usd double precision, warn jsonb NOT NULL DEFAULT '[75, 90]', action text NOT NULL DEFAULT 'warn', created_at timestamptz NOT NULL DEFAULT now(), created_by text, UNIQUE (scope, period))
"""  # noqa: E501


def _migration_1(db: pw.Database) -> None:
    """Team, members, machines; the replicated usage ledger, its 15-minute buckets and its
    days in the team's zone; budget crossings and runner summaries; team budgets."""
    for statement in _V1.strip().split(";\n"):
        db.execute_sql(statement)


MIGRATIONS: list[Callable[[pw.Database], None]] = [_migration_1]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: pw.Database) -> int:
    """The team schema's version (0: none yet)."""
    row = db.execute_sql("SELECT to_regclass('stratavore.schema_version') IS NOT NULL").fetchone()
    if not row[0]:
        return 0
    return db.execute_sql("SELECT version FROM stratavore.schema_version").fetchone()[0]


def migrate(db: pw.Database, where: str = "") -> int:
    """Bring the team schema to :data:`SCHEMA_VERSION`; the version it was at."""
    with db.atomic():
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
        db.execute_sql("CREATE SCHEMA IF NOT EXISTS stratavore")
        db.execute_sql(
            "CREATE TABLE IF NOT EXISTS stratavore.schema_version (version integer NOT NULL)"
        )
        found = db.execute_sql("SELECT version FROM stratavore.schema_version").fetchone()
        if found is None:
            db.execute_sql("INSERT INTO stratavore.schema_version VALUES (0)")
        before = found[0] if found else 0
        if before > SCHEMA_VERSION:
            raise TeamError(
                f"The team database {where} has schema version {before}, newer than this "
                f"Stratavore understands ({SCHEMA_VERSION}); upgrade Stratavore."
            )
        for target in range(before, SCHEMA_VERSION):
            with db.atomic():  # a savepoint: the whole run is one transaction under the lock
                MIGRATIONS[target](db)
                db.execute_sql("UPDATE stratavore.schema_version SET version = %s", (target + 1,))
    return before
