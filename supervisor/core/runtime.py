"""The running supervisor's address and admin token, as files in the data dir.

The daemon writes ``supervisor.json`` (pid, process create time, port, URL) once it listens and
removes it on a clean exit; clients trust it only while that exact process (pid + create time)
is alive, so a file left by a killed supervisor is never mistaken for a live one;
:func:`attachable` also asks it whether it serves (the tray app attaches to it then).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from supervisor.core import paths
from supervisor.core.errors import KnownError

log = logging.getLogger("stratavore.runtime")


@dataclass(frozen=True)
class RuntimeInfo:
    pid: int
    create_time: float
    port: int
    url: str
    version: str

    def is_alive(self) -> bool:
        started = _started(self.pid)
        return started is not None and abs(started - self.create_time) < 0.01


def _started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch, as psutil counts it), None when
    there is none. On Linux read from /proc as psutil reads it (its start in clock ticks since
    the boot time of /proc/stat): every CLI start checks this, and importing psutil cost more
    than the check."""
    if sys.platform == "linux":
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            with open("/proc/stat", "rb") as f:
                boot = next(float(line.split()[1]) for line in f if line.startswith(b"btime"))
        except (OSError, StopIteration):
            return None
        ticks = int(stat[stat.rfind(b")") + 2 :].split()[19])  # after "(comm)": field 22
        return ticks / os.sysconf("SC_CLK_TCK") + boot
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def write_runtime(root: Path, info: RuntimeInfo) -> None:
    paths.write_private(paths.runtime_file(root), json.dumps(asdict(info)))


def read_runtime(root: Path) -> RuntimeInfo | None:
    """The live supervisor's info, or None when none runs (stale files are ignored)."""
    try:
        info = RuntimeInfo(**json.loads(paths.runtime_file(root).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return info if info.is_alive() else None


async def attachable(root: Path) -> RuntimeInfo | None:
    """A headless supervisor already serving this data dir, if one answers its health check
    within two seconds (the tray app attaches to it instead of starting a second one)."""
    info = read_runtime(root)
    if info is None:
        return None
    import aiohttp  # here: the CLI reads this module at each start and never probes

    try:
        timeout = aiohttp.ClientTimeout(total=2)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(info.url + "/api/v1/health") as response,
        ):
            return info if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError):
        return None


def remove_runtime(root: Path) -> None:
    paths.runtime_file(root).unlink(missing_ok=True)


MIN_TOKEN_BYTES = 32  # shorter admin tokens can be guessed: the supervisor replaces them
TOKEN_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")


def admin_token(root: Path, create: bool = False) -> str | None:
    """The admin bearer token. With ``create`` (the supervisor, at start) one that is missing,
    not a bearer token's characters, or shorter than 32 bytes is replaced by a new random one
    (0600), with one log line. Clients get None when there is none."""
    path = paths.token_file(root)
    try:
        token = path.read_bytes().strip()
    except FileNotFoundError:
        return _new_token(path) if create else None
    if not set(token) <= TOKEN_BYTES:
        why = "not a bearer token (letters, digits and -._~+/= only)"
    elif len(token) < MIN_TOKEN_BYTES:
        why = f"{len(token)} bytes long, under {MIN_TOKEN_BYTES}"
    else:
        return token.decode()
    if create:
        log.warning("replaced: the admin token in %s (it was %s)", path, why)
        return _new_token(path)
    if not token.isascii():  # cannot go into a header; anything else, the supervisor judges
        raise KnownError(
            f"The admin token in {path} is {why}; restart the supervisor to write a new one."
        )
    return token.decode()


def _new_token(path: Path) -> str:
    """A new random token written to ``path`` (mode 0600, by an atomic rename: a client
    reading meanwhile gets the old token or the new, never half of one)."""
    token = secrets.token_urlsafe(32)
    paths.write_private(path, token)
    return token
