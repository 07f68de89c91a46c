"""One supervisor per data dir: the OS lock on ``supervisor.lock``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

from supervisor.core import paths, runtime
from supervisor.core.errors import KnownError


class DataDirLock:
    """One supervisor per data dir: an OS lock on ``supervisor.lock``, released on exit
    (also when the process is killed, as the OS drops the lock)."""

    def __init__(self, root: Path) -> None:
        self.path = paths.lock_file(root)
        self.handle: IO[str] | None = None

    def acquire(self) -> None:
        # held for the supervisor's lifetime
        handle = open(self.path, "a+", opener=paths.private_opener)  # noqa: SIM115
        try:
            if sys.platform == "win32":
                import msvcrt

                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            info = runtime.read_runtime(self.path.parent)
            where = f" (pid {info.pid}, {info.url})" if info else ""
            raise KnownError(
                f"A Stratavore supervisor is already running for {self.path.parent}{where}."
            ) from None
        self.handle = handle

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
