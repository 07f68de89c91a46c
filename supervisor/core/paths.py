"""Where Stratavore keeps its files, and how they are kept private.

One data dir, from platformdirs or ``STRATAVORE_HOME``. It holds usage, events, project paths,
commands, the runners' output and the admin token, so only its owner may read it: folders are
made 0700 and files 0600 explicitly, never left to the umask, which an embedding app or the
user's shell may have set loose. On Windows the modes mean little; there the data dir lives in
the user's profile (``%LOCALAPPDATA%``), whose ACLs already keep other users out.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import platformdirs

APP_NAME = "Stratavore"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
WINDOWS = os.name == "nt"


def data_dir() -> Path:
    """The data dir (created 0700 if missing): ``$STRATAVORE_HOME`` or the platform's user
    data dir."""
    override = os.environ.get("STRATAVORE_HOME")
    path = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, False))
    return private_dir(path)


def db_path(root: Path) -> Path:
    return root / "stratavore.db"


def backups_dir(root: Path) -> Path:
    return root / "backups"


def runs_dir(root: Path) -> Path:
    """Per-runner folders: output spool, exit-status file and the timestamped log."""
    return root / "runs"


def run_dir(root: Path, runner_id: int) -> Path:
    """One runner's folder under :func:`runs_dir`."""
    return runs_dir(root) / str(runner_id)


def worktrees_dir(root: Path) -> Path:
    """Runners' own git worktrees (opt-in), one folder each."""
    return root / "worktrees"


def logs_dir(root: Path) -> Path:
    return root / "logs"


def runtime_file(root: Path) -> Path:
    """JSON with pid, port and URL of the running supervisor; absent when none runs."""
    return root / "supervisor.json"


def lock_file(root: Path) -> Path:
    return root / "supervisor.lock"


def token_file(root: Path) -> Path:
    """The admin bearer token, mode 0600."""
    return root / "api-token"


def private_dir(path: Path) -> Path:
    """``path`` as a folder, made 0700 when missing (and so are its missing parents: a
    plain ``mkdir(parents=True)`` would make those by the umask)."""
    if not path.is_dir():
        if not path.parent.is_dir():
            private_dir(path.parent)
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            path.mkdir(mode=PRIVATE_DIR)
    return path


def private_opener(path: str, flags: int) -> int:
    """``open(..., opener=private_opener)``: a file it creates is 0600 from its first byte."""
    return os.open(path, flags, PRIVATE_FILE)


def private_file(path: Path, create: bool = True) -> None:
    """Make ``path`` a file only its owner can read: created empty (0600) when missing (with
    ``create``), narrowed to 0600 when an older version or a copy left it looser."""
    if create and not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    elif not WINDOWS:
        _narrow(path, PRIVATE_FILE)


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (a 0600 temp file renamed over it), so a
    reader never sees half of it and no other user ever can."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)  # one left looser by an older version would keep its mode
    with open(tmp, "w", encoding="utf-8", opener=private_opener) as f:
        f.write(text)
    os.replace(tmp, path)


def tighten(root: Path) -> int:
    """Narrow what is loose in the data dir (folders to 0700, files to 0600); how many entries
    changed. Everything this version makes is private from its creation, so only what an older
    version or a loose copy left can be loose, and then its folder is loose too: a folder that
    is already private is not descended into, which keeps a start with thousands of runs fast.
    The runners' worktrees are the user's checkouts (git and the agents set their modes); their
    0700 parent folder keeps them private, and they are not walked."""
    if WINDOWS:
        return 0
    root = root.resolve()  # a data dir reached through a symlink: its target's mode counts
    changed = 0
    stack = [root]
    while stack:
        folder = stack.pop()
        loose = _narrow(folder, PRIVATE_DIR)
        changed += loose
        if (folder != root and not loose) or folder == worktrees_dir(root):
            continue
        with contextlib.suppress(OSError), os.scandir(folder) as entries:  # OSError: gone
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    changed += _narrow(Path(entry.path), PRIVATE_FILE)
    return changed


def _narrow(path: Path, private: int) -> bool:
    """Give ``path`` mode ``private`` if group or others have any bit; whether it did."""
    try:
        if stat.S_IMODE(path.lstat().st_mode) & 0o077:
            path.chmod(private)
            return True
    except OSError:  # gone meanwhile, or not ours to change
        pass
    return False
