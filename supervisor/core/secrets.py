"""Secrets (Telegram bot tokens, ntfy access tokens, webhook HMAC keys) in the OS keyring.

A secret is stored only through :mod:`keyring`, under the service ``stratavore`` with a
username such as ``channel:<name>`` (:func:`channel_secret`); it never goes into the
database, the settings or a log line. A backend that would keep it in clear text (keyrings.alt's
``PlaintextKeyring`` and friends, anything keyring itself does not recommend) is refused, as is
having none at all: :class:`KeyringUnavailable` then says, in one sentence, what to install.

Keyring calls can block (an unlock prompt, a slow DBus): call these from a worker thread, never
on the event loop. :mod:`keyring` (with its backends and their dependencies, about a megabyte)
is imported at the first call: a supervisor without channel secrets never needs it.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from supervisor.core.errors import KnownError

if TYPE_CHECKING:
    import keyring.backend

SERVICE = "stratavore"
log = logging.getLogger("stratavore.secrets")


class KeyringUnavailable(KnownError):
    """No usable (secure) keyring backend: the message says what to install."""


def channel_secret(channel: str) -> str:
    """The keyring username that holds the secret of notification channel ``channel``."""
    return f"channel:{channel}"


def _install_hint() -> str:
    """What to install on this platform, as the tail of a sentence."""
    if sys.platform == "darwin":
        return (
            "Stratavore uses the macOS login Keychain, so run it inside your logged-in user "
            "session with the login keychain unlocked"
        )
    if sys.platform == "win32":
        return (
            "Stratavore uses the Windows Credential Manager, so reinstall Stratavore so that "
            "its pywin32-ctypes dependency is present"
        )
    return (
        "install gnome-keyring or KWallet (Secret Service) and run Stratavore in a desktop "
        "session with a running DBus session bus"
    )


def _name(backend: keyring.backend.KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _no_keyring() -> str:
    return f"There is no usable keyring to keep secrets in: {_install_hint()}."


def _refusal(backend: keyring.backend.KeyringBackend) -> str | None:
    """Why ``backend`` must not hold a secret (one sentence), or None when it may."""
    from keyring.backends import fail, null

    if isinstance(backend, fail.Keyring | null.Keyring):
        return _no_keyring()
    module = type(backend).__module__
    try:
        priority = float(type(backend).priority)
    except Exception:  # a backend's priority raises when it is not viable here
        priority = -1.0
    # keyrings.alt holds the clear-text and "encrypted with a typed password" file backends;
    # keyring itself recommends only priority >= 1 (keyring.core.recommended).
    if module.split(".")[:2] == ["keyrings", "alt"] or priority < 1:
        return (
            f"The keyring backend {_name(backend)} would keep secrets in clear text, so "
            f"Stratavore refuses it: {_install_hint()}, and remove it from "
            "PYTHON_KEYRING_BACKEND or keyringrc.cfg."
        )
    return None


def _usable(
    backend: keyring.backend.KeyringBackend,
) -> tuple[keyring.backend.KeyringBackend | None, str | None]:
    """The backend to use for ``backend`` and None, or None and why there is none.

    A chainer (keyring's choice when several backends are viable) writes to the first member
    that accepts a password, which may be a clear-text one; we use its best secure member
    directly instead.
    """
    from keyring.backends import chainer

    if isinstance(backend, chainer.ChainerBackend):
        members = list(backend.backends)
        for member in members:
            if _refusal(member) is None:
                return member, None
        return None, _refusal(members[0]) if members else _no_keyring()
    refusal = _refusal(backend)
    return (None, refusal) if refusal else (backend, None)


def _backend() -> keyring.backend.KeyringBackend:
    """The secure backend to use, or raise :class:`KeyringUnavailable`.

    keyring picks its backend once per process; when that pick is unusable we ask again, so
    a keyring installed or started after Stratavore works without a restart.
    """
    import keyring
    import keyring.core

    chosen, refusal = _usable(keyring.get_keyring())
    if chosen is None:
        keyring.core.init_backend()
        chosen, refusal = _usable(keyring.get_keyring())
    if chosen is None:
        raise KeyringUnavailable(refusal or _no_keyring())
    return chosen


def keyring_status() -> str | None:
    """None when secrets can be stored, else the one sentence that says what to install."""
    try:
        _backend()
    except KeyringUnavailable as exc:
        return str(exc)
    return None


def _failed(verb: str, name: str, exc: Exception) -> KeyringUnavailable:
    # keyring's error texts name the collection or the reason, never the password.
    detail = str(exc).strip().rstrip(".") or type(exc).__name__
    return KeyringUnavailable(
        f"The keyring could not {verb} the secret {name!r} ({detail}); unlock the keyring "
        "and try again."
    )


def store_secret(name: str, value: str) -> None:
    """Store (or replace) secret ``name``; nothing is stored when the keyring is unusable."""
    if not name:
        raise ValueError("a secret needs a name")
    if not value:
        raise ValueError(f"secret {name!r} is empty")
    backend = _backend()
    import keyring.errors

    try:
        backend.set_password(SERVICE, name, value)
    except keyring.errors.NoKeyringError:
        raise KeyringUnavailable(_no_keyring()) from None
    except keyring.errors.KeyringError as exc:
        raise _failed("store", name, exc) from None
    log.info("stored: secret %r in %s", name, _name(backend))


def load_secret(name: str) -> str | None:
    """Secret ``name``, or None when there is none."""
    backend = _backend()
    import keyring.errors

    try:
        return backend.get_password(SERVICE, name)
    except keyring.errors.NoKeyringError:
        raise KeyringUnavailable(_no_keyring()) from None
    except keyring.errors.KeyringError as exc:
        raise _failed("read", name, exc) from None


def delete_secret(name: str) -> None:
    """Delete secret ``name``; deleting one that does not exist is not an error."""
    backend = _backend()
    import keyring.errors

    try:
        if backend.get_password(SERVICE, name) is None:
            return
        backend.delete_password(SERVICE, name)
    except keyring.errors.NoKeyringError:
        raise KeyringUnavailable(_no_keyring()) from None
    except keyring.errors.KeyringError as exc:
        raise _failed("delete", name, exc) from None
    log.info("deleted: secret %r from %s", name, _name(backend))
