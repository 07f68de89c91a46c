"""The supervisor's own log: a rotating file in the data dir, private from its first byte, and
lifecycle lines on stderr."""

from __future__ import annotations

import io
import logging
import logging.handlers
import sys
from pathlib import Path
from typing import cast

from supervisor.core import paths
from supervisor.core.errors import problem_of

LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3


class PrivateLog(logging.handlers.RotatingFileHandler):
    """The supervisor's log file: 0600 from its first byte (each rotation starts a new file
    through :meth:`_open`, and the umask must not decide its mode). A line it cannot write
    because the data folder is full or read-only is dropped, not followed by a traceback on
    stderr for every line (stderr has the line itself, and ``status`` the problem)."""

    def _open(self) -> io.TextIOWrapper:
        # a text mode (FileHandler's "a"), so open() makes a TextIOWrapper; typeshed cannot
        # tell from a mode held in a variable
        return cast(
            io.TextIOWrapper,
            open(
                self.baseFilename,
                self.mode,
                encoding=self.encoding,
                errors=self.errors,
                opener=paths.private_opener,
            ),
        )

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if exc is None or problem_of(exc) is None:
            super().handleError(record)


def setup_logging(root: Path, verbose: bool = True) -> None:
    """Rotating supervisor log in the data dir, and lifecycle lines on stderr."""
    log_dir = paths.private_dir(paths.logs_dir(root))
    handler = PrivateLog(
        log_dir / "supervisor.log",
        maxBytes=LOG_MAX_BYTES,
        backupCount=LOG_BACKUPS,
        encoding="utf-8",
    )
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(fmt)
    logger = logging.getLogger("stratavore")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    if verbose:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(console)
