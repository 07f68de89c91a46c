"""The team ledger's fixtures: one throwaway PostgreSQL cluster per test session, a fresh
team database per test, and local data dirs ("machines") with their own SQLite store."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.storage import db as store
from tests.conftest import REPO
from tests.team.pgcluster import Cluster, ClusterUnavailable, start_cluster

_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg() -> Iterator[Cluster]:
    """A PostgreSQL cluster for the whole session (a temp dir outside pytest's own, which is
    private to root: the server runs as ``postgres``); skipped, with the reason, where the
    server cannot be installed or started."""
    try:
        cluster = start_cluster(Path(tempfile.mkdtemp(prefix="stratavore-pg-")))
    except ClusterUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for the team tests: {exc}.")
    yield cluster
    cluster.destroy()


@pytest.fixture
def team_db(pg: Cluster) -> str:
    """A fresh, empty team database and its owner role ``team_N`` (password: ``secret-N``);
    the join URL, without the password."""
    n = next(_names)
    return pg.create_team(f"team_{n}", f"secret-{n}")


class Machine:
    """A simulated member machine: its own data dir with a real local store. The store's DB
    proxy is process-wide, so :meth:`use` binds it to this machine's file (tests switch
    between machines explicitly)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.db_path = home / "stratavore.db"

    def use(self) -> Machine:
        store.close_db()
        store.init_db(self.db_path)
        return self

    def env(self) -> dict[str, str]:
        """The environment of a child process working on this machine's data dir."""
        return {**os.environ, "STRATAVORE_HOME": str(self.home), "PYTHONPATH": str(REPO)}


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[Callable[[str], Machine]]:
    """Make machines by name (each a data dir under the test's temp dir); the store is closed
    at teardown."""

    def make(name: str) -> Machine:
        home = tmp_path / name
        home.mkdir()
        return Machine(home).use()

    yield make
    store.close_db()
