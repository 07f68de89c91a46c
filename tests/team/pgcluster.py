"""A throwaway PostgreSQL cluster for tests and benchmarks: ``initdb`` + ``pg_ctl`` on a temp
dir, listening on a free loopback port and a Unix socket inside that dir.

Debian's ``postgresql`` package keeps ``initdb`` and ``pg_ctl`` in
``/usr/lib/postgresql/<major>/bin`` (not on PATH); PostgreSQL refuses to run as root, so when
we are root the cluster runs as the ``postgres`` user the package creates (as CI does). The
superuser ``postgres`` has a password over TCP (scram-sha-256), and ``trust`` on the socket.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "test-superuser-secret"


class ClusterUnavailable(Exception):
    """PostgreSQL's server programs are not installed (or cannot run here): the reason."""


def bin_dir() -> Path:
    """The newest installed major version's server programs."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise ClusterUnavailable(
        "PostgreSQL's server is not installed (Debian's postgresql package; `python3 dev.py "
        "test` installs it)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One cluster in ``root``; :meth:`start` / :meth:`stop` / :meth:`kill` for outage tests."""

    def __init__(self, root: Path) -> None:
        self.bin = bin_dir()
        self.root = root
        self.data = root / "data"
        self.socket_dir = root / "socket"
        self.port = free_port()
        self.log = root / "server.log"
        self.user: str | None = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ClusterUnavailable("running as root without a 'postgres' user") from None
            self.user = "postgres"

    def _run(self, *argv: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {"user": self.user} if self.user else {}
        return subprocess.run(
            [str(a) for a in argv], capture_output=True, text=True, check=check, **kwargs
        )

    def init(self, ssl: tuple[Path, Path] | None = None, client_ca: Path | None = None) -> Cluster:
        """``initdb`` (password auth over TCP), then the settings of a fast test server; with
        ``ssl`` (certificate, key) the server also speaks TLS, and with ``client_ca`` the
        members of the role ``cert_users`` log in over TLS with a client certificate that CA
        signed (their name as its CN), no password."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        pwfile = self.root / "pwfile"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        if self.user:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.socket_dir, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            self.bin / "initdb", "-D", self.data, "-U", SUPERUSER, "--pwfile", pwfile,
            "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        conf = [
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.socket_dir}'",
            "fsync = off",  # a throwaway cluster: crash safety of the OS is not under test
            "synchronous_commit = off",
            "full_page_writes = off",
            "max_connections = 100",
            "shared_buffers = 128MB",
        ]
        if ssl is not None:
            cert, key = ssl
            files = [(cert, "server.crt"), (key, "server.key")]
            if client_ca is not None:
                files.append((client_ca, "client_ca.crt"))
                conf.append("ssl_ca_file = 'client_ca.crt'")
                hba = self.data / "pg_hba.conf"
                rule = "hostssl all +cert_users 127.0.0.1/32 cert\n"
                hba.write_text(rule + hba.read_text())
            for src, name in files:
                target = self.data / name
                shutil.copyfile(src, target)
                os.chmod(target, 0o600)
                if self.user:
                    entry = pwd.getpwnam(self.user)
                    os.chown(target, entry.pw_uid, entry.pw_gid)
            conf += ["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"]
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n".join(conf) + "\n")
        return self

    def start(self) -> Cluster:
        self._run(self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        status = self._run(self.bin / "pg_ctl", "-D", self.data, "status", check=False)
        return status.returncode == 0

    def url(self, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = None,
            **params: str) -> str:  # fmt: skip
        """A libpq URL over TCP to 127.0.0.1 (the password, when given, in the URL)."""
        auth = quote(user) + (":" + quote(password, safe="") if password else "")
        query = "&".join(f"{k}={quote(v, safe='/')}" for k, v in params.items())
        url = f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"
        return url + (f"?{query}" if query else "")

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run ``sql`` as the superuser over the Unix socket; its output (tuples only)."""
        done = self._run(
            self.bin / "psql", "-h", self.socket_dir, "-p", str(self.port), "-U", SUPERUSER,
            "-d", dbname, "-v", "ON_ERROR_STOP=1", "-qAtc", sql, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def create_team(self, dbname: str, member_password: str) -> str:
        """A fresh database owned by a login role of the same name with ``member_password``;
        the URL to join it (without the password)."""
        self.psql(f"CREATE ROLE \"{dbname}\" LOGIN PASSWORD '{member_password}'")
        self.psql(f'CREATE DATABASE "{dbname}" OWNER "{dbname}"')
        return self.url(dbname, user=dbname)

    def destroy(self) -> None:
        if self.data.exists():
            self.stop("immediate")
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)


def start_cluster(
    root: Path, ssl: tuple[Path, Path] | None = None, client_ca: Path | None = None
) -> Cluster:
    """A started cluster in ``root``, or :class:`ClusterUnavailable` with the reason."""
    cluster = Cluster(root)
    try:
        cluster.init(ssl, client_ca).start()
    except subprocess.CalledProcessError as exc:
        raise ClusterUnavailable(
            f"initdb/pg_ctl failed: {(exc.stderr or '').strip()[-300:]}"
        ) from None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(RuntimeError):
            cluster.psql("SELECT 1")
            return cluster
        time.sleep(0.1)
    raise ClusterUnavailable(f"the server did not answer: {cluster.log.read_text()[-300:]}")
