"""Secrets in the OS keyring, through real keyring backends selected by environment (the test
file backend in ``tests/keyring_backend.py``); the user's real keyring is never touched."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import keyring.core
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail
from keyring.compat import properties

from supervisor.core import secrets
from supervisor.core.errors import KnownError
from tests.keyring_backend import (
    FAIL_BACKEND,
    FILE_BACKEND,
    PLAINTEXT_BACKEND,
    FileBackend,
    PlaintextKeyring,
    keyring_env,
)

REPO = Path(__file__).resolve().parents[2]
VALUE = "123456789:AAH-very-secret-token-value-xyz"


@pytest.fixture
def use_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Path]]:
    """Select a keyring backend by name (as PYTHON_KEYRING_BACKEND does for every process);
    returns the path of the test keyring file."""
    path = tmp_path / "keyring.json"

    def select(backend: str) -> Path:
        for name, value in keyring_env(path, backend).items():
            monkeypatch.setenv(name, value)
        keyring.core.init_backend()
        return path

    select(FAIL_BACKEND)  # until a test picks one: never the user's keyring
    yield select
    keyring.set_keyring(fail.Keyring())


@pytest.fixture
def file_keyring(use_backend: Callable[[str], Path]) -> Path:
    return use_backend(FILE_BACKEND)


def test_store_load_delete_round_trip(file_keyring: Path) -> None:
    name = secrets.channel_secret("phone")
    assert name == "channel:phone"
    assert secrets.load_secret(name) is None
    secrets.store_secret(name, VALUE)
    assert secrets.load_secret(name) == VALUE
    assert json.loads(file_keyring.read_text()) == {"stratavore": {"channel:phone": VALUE}}
    secrets.store_secret(name, "replaced")
    assert secrets.load_secret(name) == "replaced"
    secrets.delete_secret(name)
    assert secrets.load_secret(name) is None
    secrets.delete_secret(name)  # deleting a missing secret is not an error


def test_keyring_status_is_none_with_a_usable_backend(file_keyring: Path) -> None:
    assert secrets.keyring_status() is None


def test_refuses_empty_names_and_values(file_keyring: Path) -> None:
    with pytest.raises(ValueError):
        secrets.store_secret("", VALUE)
    with pytest.raises(ValueError):
        secrets.store_secret("channel:x", "")


def test_no_backend_is_one_sentence_and_stores_nothing(
    use_backend: Callable[[str], Path],
) -> None:
    path = use_backend(FAIL_BACKEND)
    status = secrets.keyring_status()
    assert status is not None and status.count(". ") == 0 and status.endswith(".")
    assert status.startswith("There is no usable keyring to keep secrets in: ")
    with pytest.raises(secrets.KeyringUnavailable) as info:
        secrets.store_secret("channel:x", VALUE)
    assert isinstance(info.value, KnownError)
    assert str(info.value) == status
    with pytest.raises(secrets.KeyringUnavailable):
        secrets.load_secret("channel:x")
    with pytest.raises(secrets.KeyringUnavailable):
        secrets.delete_secret("channel:x")
    assert not path.exists()


def test_plaintext_backend_is_refused_and_stores_nothing(
    use_backend: Callable[[str], Path],
) -> None:
    path = use_backend(PLAINTEXT_BACKEND)
    status = secrets.keyring_status()
    assert status == (
        "The keyring backend tests.keyring_backend.PlaintextKeyring would keep secrets in "
        f"clear text, so Stratavore refuses it: {secrets._install_hint()}, and remove it from "
        "PYTHON_KEYRING_BACKEND or keyringrc.cfg."
    )
    with pytest.raises(secrets.KeyringUnavailable, match="clear text"):
        secrets.store_secret("channel:x", VALUE)
    assert not path.exists()


@pytest.mark.parametrize(
    ("platform", "words"),
    [
        ("linux", "install gnome-keyring or KWallet (Secret Service) and run Stratavore in a "),
        ("freebsd14", "gnome-keyring or KWallet"),
        ("darwin", "macOS login Keychain"),
        ("win32", "Windows Credential Manager"),
    ],
)
def test_the_hint_names_what_to_install_per_platform(
    platform: str, words: str, use_backend: Callable[[str], Path], monkeypatch
) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    status = secrets.keyring_status()
    assert status is not None and words in status


def test_a_chain_uses_its_best_secure_member(use_backend: Callable[[str], Path], caplog) -> None:
    path = use_backend(FAIL_BACKEND)  # so asking keyring again finds nothing usable either

    class Chain(chainer.ChainerBackend):
        members: list[KeyringBackend] = []

        @properties.classproperty
        def backends(cls) -> list[KeyringBackend]:
            return cls.members

    try:
        Chain.members = [PlaintextKeyring()]
        keyring.set_keyring(Chain())
        assert secrets.keyring_status() is not None
        Chain.members = [PlaintextKeyring(), FileBackend()]
        keyring.set_keyring(Chain())
        caplog.set_level(logging.INFO, logger="stratavore.secrets")
        secrets.store_secret("channel:x", VALUE)
        assert "stored: secret 'channel:x' in tests.keyring_backend.FileBackend" in caplog.text
        assert secrets.load_secret("channel:x") == VALUE
        assert path.exists()
    finally:
        KeyringBackend._classes.discard(Chain)  # keyring registers every subclass


def test_an_unusable_pick_is_detected_again(use_backend: Callable[[str], Path]) -> None:
    use_backend(FILE_BACKEND)
    keyring.set_keyring(fail.Keyring())  # as if picked before the keyring was available
    secrets.store_secret("channel:x", VALUE)  # asks keyring again: the env names FileBackend
    assert secrets.load_secret("channel:x") == VALUE


def test_secret_values_are_never_logged(file_keyring: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    secrets.store_secret("channel:x", VALUE)
    secrets.load_secret("channel:x")
    secrets.delete_secret("channel:x")
    assert "channel:x" in caplog.text
    assert VALUE not in caplog.text


def _child(code: str, path: Path) -> str:
    env = {**os.environ, **keyring_env(path), "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_processes_share_the_test_keyring(file_keyring: Path) -> None:
    secrets.store_secret("channel:shared", VALUE)
    load = "from supervisor.core import secrets; print(secrets.load_secret('channel:shared'))"
    assert _child(load, file_keyring) == VALUE
    store = "from supervisor.core import secrets; secrets.store_secret('channel:b', 'v2')"
    _child(store, file_keyring)
    assert secrets.load_secret("channel:b") == "v2"


def test_the_short_backend_name_works_with_tests_on_pythonpath(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    env = {
        **os.environ,
        **keyring_env(path, "keyring_backend.FileBackend"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)]),
    }
    code = (
        "from supervisor.core import secrets; secrets.store_secret('channel:c', 'v3'); "
        "print(secrets.keyring_status())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "None"
    assert json.loads(path.read_text()) == {"stratavore": {"channel:c": "v3"}}
