"""The running supervisor's address and admin token, as files in the data dir.

The daemon writes ``supervisor.json`` (pid, process create time, port, URL) once it listens and
removes it on a clean exit; clients trust it only while that exact process (pid + create time)
is alive, so a file left by a killed supervisor is never mistaken for a live one.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from supervisor import paths


@dataclass(frozen=True)
class RuntimeInfo:
    pid: int
    create_time: float
    port: int
    url: str
    version: str

    def is_alive(self) -> bool:
        try:
            return abs(psutil.Process(self.pid).create_time() - self.create_time) < 0.01
        except psutil.Error:
            return False


def write_runtime(root: Path, info: RuntimeInfo) -> None:
    paths.write_private(paths.runtime_file(root), json.dumps(asdict(info)))


def read_runtime(root: Path) -> RuntimeInfo | None:
    """The live supervisor's info, or None when none runs (stale files are ignored)."""
    try:
        info = RuntimeInfo(**json.loads(paths.runtime_file(root).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return info if info.is_alive() else None


def remove_runtime(root: Path) -> None:
    paths.runtime_file(root).unlink(missing_ok=True)


def admin_token(root: Path, create: bool = False) -> str | None:
    """The admin bearer token; with ``create``, made (0600, random) when missing."""
    path = paths.token_file(root)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        if not create:
            return None
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    return token
