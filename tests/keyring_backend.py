"""Keyring backends for tests only, so no test ever touches the user's real keyring.

Select one with ``PYTHON_KEYRING_BACKEND`` (the repo root, or ``tests/`` for the short
``keyring_backend.FileBackend`` spelling, on ``PYTHONPATH``):

- :class:`FileBackend` keeps secrets in the JSON file named by ``STRATAVORE_TEST_KEYRING``, so
  a test, its CLI calls and its daemon share one keyring across processes. keyring recommends
  it (priority 1) only while that variable is set; without it the backend is not viable.
- :class:`PlaintextKeyring` looks like keyrings.alt's clear-text backend (priority 0.5, not
  recommended): Stratavore must refuse it.

Use :func:`keyring_env` to build the environment for a child process.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError

ENV_VAR = "STRATAVORE_TEST_KEYRING"
FILE_BACKEND = "tests.keyring_backend.FileBackend"
PLAINTEXT_BACKEND = "tests.keyring_backend.PlaintextKeyring"
FAIL_BACKEND = "keyring.backends.fail.Keyring"


def keyring_env(path: Path, backend: str = FILE_BACKEND) -> dict[str, str]:
    """Environment variables that select ``backend`` over the file at ``path``."""
    return {"PYTHON_KEYRING_BACKEND": backend, ENV_VAR: str(path)}


class FileBackend(KeyringBackend):
    """Secrets in a JSON file ``{service: {username: password}}`` (tests only)."""

    @properties.classproperty
    def priority(cls) -> float:
        if not os.environ.get(ENV_VAR):
            raise RuntimeError(f"{ENV_VAR} is not set")
        return 1

    @staticmethod
    def _path() -> Path:
        return Path(os.environ[ENV_VAR])

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            return json.loads(self._path().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def _write(self, data: dict[str, dict[str, str]]) -> None:
        path = self._path()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(data, file)
            os.replace(tmp, path)  # atomic: another process never reads half a file
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def get_password(self, service: str, username: str) -> str | None:
        return self._read().get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._read()
        data.setdefault(service, {})[username] = password
        self._write(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._read()
        if username not in data.get(service, {}):
            raise PasswordDeleteError("Password not found")
        del data[service][username]
        self._write(data)


class PlaintextKeyring(FileBackend):
    """Like keyrings.alt.file.PlaintextKeyring: works, but keyring does not recommend it."""

    @properties.classproperty
    def priority(cls) -> float:
        return 0.5
