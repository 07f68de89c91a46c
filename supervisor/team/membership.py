"""Joining a team, leaving it, and its status.

``join`` connects (the password asked only when the server wants one), creates or upgrades
the team schema, registers the member and this machine, and only then stores the password in
the OS keyring and the membership (URL without password, member name) in the local store,
queueing the local history for the first push. ``leave`` pushes what is pending first (or
refuses, unless forced), marks the machine as left on the server, and forgets the password.
Keyring calls can block: call these from a worker thread or the CLI, never on the loop.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import peewee as pw

from supervisor.api.schemas import NAME_PATTERN
from supervisor.core import secrets
from supervisor.team import local, server
from supervisor.team.local import Membership
from supervisor.team.server import TeamAuthFailed, TeamError, TeamUnreachable


def connect(member: Membership | None = None) -> pw.PostgresqlDatabase:
    """A connection to this data dir's team database, with the keyring's password."""
    member = member or require_membership()
    found: dict[str, str | None] = {"password": None, "certificate": None}
    for kind in member.credentials:
        found[kind] = secrets.load_secret(local.secret_name(local.machine_id(), kind))
        if found[kind] is None:
            raise TeamAuthFailed(
                f"The team {kind} is missing from the keyring; run `stratavore team join "
                f"{member.url} --as {member.member}` again."
            )
    return server.open_db(member.url, found["password"], found["certificate"])


@contextlib.contextmanager
def connected() -> Iterator[pw.PostgresqlDatabase]:
    """A connection to this data dir's team database for one piece of work, then closed."""
    db = connect()
    try:
        yield db
    finally:
        db.close()


class Link:
    """A connection to the team database kept between uses (a daemon job's), opened on first
    use and dropped after a failure, so the next use reconnects."""

    def __init__(self) -> None:
        self._db: pw.PostgresqlDatabase | None = None

    def get(self, member: Membership) -> pw.PostgresqlDatabase:
        if self._db is None or self._db.is_closed():
            self._db = connect(member)
        return self._db

    def close(self) -> None:
        if self._db is not None and not self._db.is_closed():
            self._db.close()
        self._db = None


def require_membership() -> Membership:
    found = local.membership()
    if found is None:
        raise TeamError(
            "This data dir is in no team; `stratavore team join postgresql://HOST/DB --as NAME` "
            "joins one."
        )
    return found


def join(
    url: str,
    as_name: str,
    password: str | None = None,
    ask_password: Callable[[], str] | None = None,
    now: float | None = None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
) -> Membership:
    """Join the team at ``url`` as member ``as_name``. A password comes from the URL, from
    ``password``, or, when the server asks for one, from ``ask_password``; a client
    certificate and its key (PEM files, read once: the keyring keeps them) from
    ``client_cert`` and ``client_key``."""
    _check_member_name(as_name)
    url, in_url = server.split_password(server.check_url(url))
    password = password or in_url
    certificate = _client_certificate(client_cert, client_key)
    _refuse_another_team(url, as_name)
    db, password = _open_asking(url, password, certificate, ask_password)
    machine = local.machine_id()
    _register(db, url, as_name, machine)
    kept = {"password": password, "certificate": certificate}
    _keep_credentials(machine, kept)
    member = Membership(
        url=url,
        member=as_name,
        joined_at=time.time() if now is None else now,
        credentials=[kind for kind, value in kept.items() if value],
    )
    local.join(member)
    return member


def _check_member_name(as_name: str) -> None:
    if not re.match(NAME_PATTERN, as_name):
        raise TeamError(
            f"'{as_name}' is not a member name: use letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit)."
        )


def _client_certificate(client_cert: Path | None, client_key: Path | None) -> str | None:
    """The client certificate and its key as one keyring secret, or None when neither is
    given."""
    if (client_cert is None) != (client_key is None):
        raise TeamError(
            "A client certificate needs its key: give both --client-cert and --client-key."
        )
    if client_cert is not None and client_key is not None:
        return server.read_client_certificate(client_cert, client_key)
    return None


def _refuse_another_team(url: str, as_name: str) -> None:
    """A data dir is in one team as one member: joining again is only a repeat of that."""
    current = local.membership()
    if current is not None and (current.url, current.member) != (url, as_name):
        raise TeamError(
            f"This data dir is already in the team {server.describe(current.url)} as "
            f"{current.member}; `stratavore team leave` first."
        )


def _open_asking(
    url: str,
    password: str | None,
    certificate: str | None,
    ask_password: Callable[[], str] | None,
) -> tuple[pw.PostgresqlDatabase, str | None]:
    """The team database and the password it took: asked for only when the server wants one
    and none was given."""
    try:
        return server.open_db(url, password, certificate), password
    except TeamAuthFailed:
        if password is not None or ask_password is None:
            raise
        password = ask_password()
        return server.open_db(url, password, certificate), password


def _register(db: pw.PostgresqlDatabase, url: str, as_name: str, machine: str) -> None:
    """Create or upgrade the team schema, then register the member and this machine (a
    machine that left comes back); the connection is closed after."""
    try:
        server.migrate(db, server.describe(url))
        with db.atomic():
            db.execute_sql(
                "INSERT INTO stratavore.member (name) VALUES (%s) ON CONFLICT DO NOTHING",
                (as_name,),
            )
            db.execute_sql(
                "INSERT INTO stratavore.machine (id, member, hostname) VALUES (%s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET member = excluded.member, "
                "hostname = excluded.hostname, left_at = NULL",
                (machine, as_name, socket.gethostname()),
            )
    except (pw.DatabaseError, pw.InterfaceError) as exc:
        raise server.explain(exc, url) from None
    finally:
        db.close()


def _keep_credentials(machine: str, kept: dict[str, str | None]) -> None:
    """Store each credential given in the keyring; forget one an earlier join left."""
    for kind, value in kept.items():
        name = local.secret_name(machine, kind)
        if value:
            secrets.store_secret(name, value)
        elif secrets.keyring_status() is None:  # one of an earlier join must not linger
            secrets.delete_secret(name)


def leave(force: bool = False, push: Callable[[], Any] | None = None) -> Membership:
    """Leave the team: push what is pending (``push``), mark this machine as left, forget the
    password. Refused while rows are pending and the server is unreachable, unless ``force``."""
    member = require_membership()
    machine = local.machine_id()
    try:
        if push is not None:
            push()
        db = connect(member)
        try:
            db.execute_sql(
                "UPDATE stratavore.machine SET left_at = now() WHERE id = %s", (machine,)
            )
        finally:
            db.close()
    except TeamError as exc:
        waiting = local.pending()
        if not force and (waiting or not isinstance(exc, TeamUnreachable)):
            raise TeamError(
                f"{exc} Nothing was changed: {waiting:,} rows are not pushed yet; try again "
                "when the team database answers, or `stratavore team leave --force` to leave "
                "without them."
            ) from None
    if member.credentials and secrets.keyring_status() is None:
        for kind in member.credentials:
            secrets.delete_secret(local.secret_name(machine, kind))
    local.leave()
    return member


def status(check_server: bool = True) -> dict[str, Any]:
    """This data dir's team membership, its push state and, with ``check_server``, what the
    team database says (reachable, schema version, members and machines)."""
    member = local.membership()
    found: dict[str, Any] = {"joined": member is not None, "machine_id": local.machine_id()}
    if member is None:
        return found
    found.update(
        url=member.url,
        team=server.describe(member.url),
        member=member.member,
        joined_at=member.joined_at,
        pending=local.pending(),
        last_push=local.last_push(),
        last_error=local.last_error(),
    )
    if check_server:
        try:
            db = connect(member)
        except TeamError as exc:
            found["server"] = {"reachable": False, "error": str(exc)}
            return found
        try:
            machines = db.execute_sql(
                "SELECT m.member, m.hostname, m.id::text, extract(epoch FROM m.last_push_at), "
                "m.pushed_rows FROM stratavore.machine m WHERE m.left_at IS NULL "
                "ORDER BY m.member, m.hostname"
            ).fetchall()
            found["server"] = {
                "reachable": True,
                "schema_version": server.schema_version(db),
                "machines": [
                    {
                        "member": m,
                        "hostname": h,
                        "machine_id": i,
                        "last_push_at": float(at) if at is not None else None,
                        "pushed_rows": n,
                    }
                    for m, h, i, at, n in machines
                ],
            }
        finally:
            db.close()
    return found
