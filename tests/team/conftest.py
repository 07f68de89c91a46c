"""The team ledger's fixtures: local data dirs ("machines") with their own SQLite store (the
throwaway PostgreSQL cluster and the fresh team database per test, ``pg`` and ``team_db``, are
in ``tests/conftest.py``: the desktop's Team tab uses them too)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.storage import db as store
from tests.conftest import REPO


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
