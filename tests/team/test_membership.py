"""Joining a team, leaving it, its status: on a real PostgreSQL server, with the password in
the (test) keyring and never in the local store or any other file."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.team import local, membership, server
from supervisor.team.server import TeamAuthFailed, TeamError, TeamUnreachable
from tests.team.conftest import Machine
from tests.team.pgcluster import Cluster, ClusterUnavailable, free_port, start_cluster


def _password(team_db: str) -> str:
    return "secret-" + team_db.rsplit("/team_", 1)[1]


def _files_mention(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_join_creates_the_schema_and_keeps_the_password_only_in_the_keyring(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine], test_keyring: Path
) -> None:
    laptop = machines("laptop")
    asked = []
    member = membership.join(
        team_db, "alice", ask_password=lambda: asked.append(1) or _password(team_db)
    )
    assert asked == [1]  # asked because the server wanted one
    assert member.url == team_db and member.credentials == ["password"]
    dbname = team_db.rsplit("/", 1)[1]
    assert pg.psql("SELECT version FROM stratavore.schema_version", dbname) == str(
        server.SCHEMA_VERSION
    )
    assert pg.psql("SELECT member FROM stratavore.machine", dbname) == "alice"
    stored = json.loads(test_keyring.read_text())["stratavore"]
    assert stored == {f"team:{local.machine_id()}": _password(team_db)}
    assert _files_mention(laptop.home, _password(team_db)) == []
    status = membership.status()
    assert status["joined"] and status["member"] == "alice"
    assert status["server"]["reachable"] and status["server"]["schema_version"] == 1
    assert [m["member"] for m in status["server"]["machines"]] == ["alice"]


def test_a_password_in_the_url_goes_to_the_keyring_not_the_store(
    team_db: str, machines: Callable[[str], Machine], test_keyring: Path
) -> None:
    laptop = machines("laptop")
    with_password = team_db.replace("@", f":{_password(team_db)}@")
    member = membership.join(with_password, "alice")
    assert member.url == team_db
    assert _password(team_db) in test_keyring.read_text()
    assert _files_mention(laptop.home, _password(team_db)) == []


def test_join_with_a_wrong_password_is_refused_and_records_nothing(
    team_db: str, machines: Callable[[str], Machine], test_keyring: Path
) -> None:
    machines("laptop")
    with pytest.raises(TeamAuthFailed, match=r"refused the credentials .*team join"):
        membership.join(team_db, "alice", password="wrong")
    assert local.membership() is None
    assert not test_keyring.exists() or "team:" not in test_keyring.read_text()


def test_join_of_an_unreachable_server_says_so_in_one_sentence(
    machines: Callable[[str], Machine],
) -> None:
    machines("laptop")
    url = f"postgresql://alice@127.0.0.1:{free_port()}/team?connect_timeout=2"
    with pytest.raises(TeamUnreachable) as caught:
        membership.join(url, "alice", password="x")
    assert str(caught.value).startswith("The team database alice@127.0.0.1:")
    assert "cannot be reached" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://h/db", "is not a PostgreSQL URL"),
        ("postgresql://h/db?bogus=1", "cannot be read: invalid URI query parameter"),
        ("postgresql://h", "names no database"),
    ],
)
def test_join_refuses_a_bad_url(url: str, message: str, machines: Callable[[str], Machine]) -> None:
    machines("laptop")
    with pytest.raises(TeamError, match=message):
        membership.join(url, "alice")


def test_join_refuses_a_bad_member_name(team_db: str, machines: Callable[[str], Machine]) -> None:
    machines("laptop")
    with pytest.raises(TeamError, match="is not a member name"):
        membership.join(team_db, "al ice", password=_password(team_db))


def test_machine_id_is_stable_per_data_dir_across_leave_and_join(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine], test_keyring: Path
) -> None:
    laptop, box = machines("laptop"), machines("box")
    laptop.use()
    first = local.machine_id()
    membership.join(team_db, "alice", password=_password(team_db))
    membership.leave()
    assert local.membership() is None
    assert "team:" not in json.loads(test_keyring.read_text()).get("stratavore", {}).__repr__()
    membership.join(team_db, "alice", password=_password(team_db))
    assert local.machine_id() == first
    box.use()
    assert local.machine_id() != first
    dbname = team_db.rsplit("/", 1)[1]
    assert pg.psql("SELECT count(*) FROM stratavore.machine", dbname) == "1"


def test_join_of_another_team_needs_leave_first(
    team_db: str, machines: Callable[[str], Machine]
) -> None:
    machines("laptop")
    membership.join(team_db, "alice", password=_password(team_db))
    with pytest.raises(
        TeamError, match=r"already in the team .* as alice; `stratavore team leave`"
    ):
        membership.join(team_db, "bob", password=_password(team_db))


def test_a_team_schema_newer_than_this_stratavore_is_refused(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine]
) -> None:
    machines("laptop")
    membership.join(team_db, "alice", password=_password(team_db))
    dbname = team_db.rsplit("/", 1)[1]
    pg.psql("UPDATE stratavore.schema_version SET version = 99", dbname)
    db = membership.connect()
    try:
        with pytest.raises(TeamError, match=r"schema version 99, newer than .* upgrade Stratavore"):
            server.migrate(db, dbname)
    finally:
        db.close()


def test_leave_while_the_server_is_down_is_refused_with_rows_pending(
    pg: Cluster, team_db: str, machines: Callable[[str], Machine]
) -> None:
    machines("laptop")
    membership.join(team_db, "alice", password=_password(team_db))
    from supervisor.storage.models import DB

    DB.execute_sql("INSERT INTO team_outbox (kind, ref) VALUES ('usage', 1)")
    pg.stop()
    try:
        with pytest.raises(TeamError, match=r"1 rows are not pushed yet.*--force"):
            membership.leave()
        assert local.membership() is not None
        assert membership.status()["server"]["reachable"] is False
        membership.leave(force=True)
        assert local.membership() is None
    finally:
        pg.start()


# --- TLS, as libpq does it ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_pg() -> Iterator[tuple[Cluster, Path]]:
    """A second cluster that speaks TLS with a self-signed certificate for 127.0.0.1; the
    certificate (the CA a client must trust)."""
    root = Path(tempfile.mkdtemp(prefix="stratavore-pgtls-"))
    root.chmod(0o711)  # the server (user postgres) reaches its cluster dir inside
    cert, key = root / "ca.crt", root / "ca.key"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, check=False,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip("openssl could not make a test certificate.")
    try:  # the self-signed certificate is also the CA of the client certificates
        cluster = start_cluster(root / "cluster", ssl=(cert, key), client_ca=cert)
    except ClusterUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for the TLS tests: {exc}.")
    cluster.psql("CREATE ROLE cert_users")
    yield cluster, cert
    cluster.destroy()
    shutil.rmtree(root, ignore_errors=True)


def _client_certificate(ca: Path, folder: Path, user: str) -> tuple[Path, Path]:
    """A client certificate for ``user`` signed by the TLS cluster's CA, and its key."""
    key, csr, cert = folder / f"{user}.key", folder / f"{user}.csr", folder / f"{user}.crt"
    subprocess.run(
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={user}",
         "-keyout", str(key), "-out", str(csr)], capture_output=True, check=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca),
         "-CAkey", str(ca.with_suffix(".key")), "-CAcreateserial", "-days", "1",
         "-out", str(cert)], capture_output=True, check=True,
    )  # fmt: skip
    return cert, key


def test_tls_settings_in_the_url_apply_as_libpq_applies_them(
    tls_pg: tuple[Cluster, Path], pg: Cluster, machines: Callable[[str], Machine], tmp_path: Path
) -> None:
    cluster, ca = tls_pg
    machines("laptop")
    url = cluster.create_team("team_tls", "tls-secret")
    verified = f"{url}?sslmode=verify-full&sslrootcert={ca}"
    membership.join(verified, "alice", password="tls-secret")
    db = membership.connect()
    try:
        assert db.execute_sql(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()[0]
    finally:
        db.close()
    membership.leave()
    other_ca = tmp_path / "other.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=other", "-keyout", str(tmp_path / "other.key"), "-out", str(other_ca)],
        capture_output=True, check=True,
    )  # fmt: skip
    with pytest.raises(TeamUnreachable, match="certificate verify failed"):
        membership.join(
            f"{url}?sslmode=verify-full&sslrootcert={other_ca}", "alice", password="tls-secret"
        )
    plain = pg.url("postgres", password=None, sslmode="require")
    with pytest.raises(TeamUnreachable, match="does not support SSL"):
        membership.join(plain, "alice", password="x")


def test_a_client_certificate_lives_in_the_keyring_and_reaches_libpq_from_memory(
    tls_pg: tuple[Cluster, Path], machines: Callable[[str], Machine], tmp_path: Path,
    test_keyring: Path,
) -> None:  # fmt: skip
    cluster, ca = tls_pg
    laptop = machines("laptop")
    cluster.psql("CREATE ROLE cert_alice LOGIN IN ROLE cert_users")
    cluster.psql("CREATE DATABASE team_certs OWNER cert_alice")
    cert, key = _client_certificate(ca, tmp_path, "cert_alice")
    url = cluster.url("team_certs", user="cert_alice", sslmode="verify-full", sslrootcert=str(ca))
    with pytest.raises(TeamError, match="needs its key"):
        membership.join(url, "alice", client_cert=cert)
    member = membership.join(url, "alice", client_cert=cert, client_key=key)
    assert member.credentials == ["certificate"]
    key_text = key.read_text()
    for path in (cert, key):  # the keyring keeps them: the files may go
        path.unlink()
    stored = json.loads(test_keyring.read_text())["stratavore"]
    assert json.loads(stored[f"team:{local.machine_id()}:certificate"])["key"] == key_text
    assert _files_mention(laptop.home, key_text.splitlines()[1]) == []
    with membership.connected() as db:
        (dn,) = db.execute_sql(
            "SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()
    assert dn == "/CN=cert_alice"
    membership.leave()
    assert "certificate" not in test_keyring.read_text()
