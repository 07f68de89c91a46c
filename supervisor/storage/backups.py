"""The database as a file: refused when damaged or emptied, backed up, and put back.

A supervisor must never take a damaged or emptied database for a new one: it would start with
no projects while runs, backups and tokens of the old one lie around. :func:`check_db` refuses
such a file in one sentence that names it and the way back. Backups are made with SQLite's
online backup API from one read snapshot, so the supervisor goes on writing (WAL) while a copy
is made, and the copy is checked (``PRAGMA quick_check``) before it counts and before older
ones are pruned: a damaged database never pushes the good backups out. :func:`restore` puts a
checked backup in place and keeps the file it replaces.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from supervisor.core import paths
from supervisor.core.errors import ApiError, ErrorCode, KnownError, problem_of

STEP_PAGES = 1024  # pages copied per backup step (4 MiB with 4 KiB pages): progress between
PART = ".part"  # a backup being written; renamed when complete and checked
STALE_PART_S = 86400.0  # a part file this old was left by a killed backup
NAME = re.compile(
    r"stratavore-(?:(?P<stamp>\d{8}-\d{6})(?:\.\d+)?-(?P<kind>[a-z0-9]+)"
    r"|v(?P<legacy>\d+)-\d{8}-\d{6})\.db"
)  # stratavore-20261207-210000-scheduled.db; before 0.2: stratavore-v4-20261207-210000.db
Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


class DamagedDatabase(KnownError):
    """The database file is damaged, emptied or gone: nothing may start on it."""


class Abandoned(Exception):
    """Raised by a backup's progress callback to give the backup up (its part is removed)."""


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int
    taken_at: float  # epoch seconds (the file's mtime)
    kind: str  # scheduled | manual | vN (made before migrating from schema version N)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def schema(self) -> int:
        """The schema version stored in the SQLite header (``PRAGMA user_version``)."""
        with open(self.path, "rb") as f:
            header = f.read(64)
        return int.from_bytes(header[60:64], "big") if len(header) == 64 else 0


def list_backups(root: Path) -> list[Backup]:
    """The backups in ``root``'s ``backups/`` folder, oldest first."""
    found = []
    folder = paths.backups_dir(root)
    if not folder.is_dir():
        return []
    for path in folder.iterdir():
        match = NAME.fullmatch(path.name)
        if match is None:
            continue
        try:
            st = path.stat()
        except FileNotFoundError:  # pruned meanwhile
            continue
        kind = match["kind"] or f"v{match['legacy']}"
        found.append(Backup(path, st.st_size, st.st_mtime, kind))
    return sorted(found, key=lambda b: (b.taken_at, b.name))


# --- checks -------------------------------------------------------------------------------
def problem(path: Path, thorough: bool = True, immutable: bool = False) -> str:
    """What is wrong with the SQLite file at ``path`` ("" when nothing was found): its header
    and schema must be readable; ``thorough`` also runs ``PRAGMA quick_check``, which reads
    every page. ``immutable`` for files nobody writes (backups): no locks, no WAL."""
    uri = path.absolute().as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=rw")
    try:
        con = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a bad header: at once
        if thorough:
            _read_through(path)
            rows = con.execute("PRAGMA quick_check(3)").fetchall()
            if rows != [("ok",)]:
                return _one_line(rows)
    except (OSError, sqlite3.Error) as exc:
        if problem_of(exc) is not None:  # a full, read-only or locked data dir: not damage
            raise
        return str(exc)
    finally:
        con.close()
    return ""


def _one_line(rows: list[tuple[str]]) -> str:
    """quick_check's or integrity_check's findings as one line (they come on several, under
    a '*** in database main ***' heading)."""
    text = " ".join(str(row[0]) for row in rows).replace("*** in database main ***", "")
    return " ".join(text.split())


def _read_through(path: Path) -> None:
    """Read the file once, in order: quick_check then finds its pages in the OS's cache. It
    reads them in b-tree order, which on a cold disk took 18.6 s for 1 GiB here, against
    3.6 s for this read plus 3.3 s for the check (docs/benchmarks.md)."""
    chunk = bytearray(1024 * 1024)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(chunk):
            pass


def check_db(path: Path, thorough: bool = True) -> None:
    """Refuse (:class:`DamagedDatabase`) a database nothing may start on: damaged, or empty or
    missing in a data dir that shows earlier use. A missing file in a new data dir is fine:
    the database is created."""
    root = path.parent
    try:
        size: int | None = path.stat().st_size
    except FileNotFoundError:
        size = None
    if not size:
        trace = earlier_use(root)
        if trace:
            state = "missing" if size is None else "empty (0 bytes)"
            raise DamagedDatabase(
                f"The database {path} is {state} although {root} was used before ({trace}); "
                f"nothing was started: {way_back(root, afresh=True)}."
            )
        return
    detail = problem(path, thorough)
    if detail:
        raise DamagedDatabase(
            f"The database {path} is damaged ({detail}); nothing was started: {way_back(root)}."
        )


def earlier_use(root: Path) -> str:
    """What in ``root`` shows that a supervisor used it before ("" when nothing does)."""
    runs = paths.runs_dir(root)
    if runs.is_dir() and any(runs.iterdir()):
        return "runs/ holds runner folders"
    if list_backups(root):
        return "backups/ holds backups"
    if paths.token_file(root).exists():
        return "it has an api-token"
    return ""


def way_back(root: Path, afresh: bool = False) -> str:
    """How to get a working database again, as the end of a sentence."""
    count = len(list_backups(root))
    if count:
        return (
            f"`stratavore restore --list` shows its {count} backup{'s' * (count != 1)}, "
            "then `stratavore restore NAME` puts one back"
            + (f" (or move {root} aside to start afresh)" if afresh else "")
        )
    if afresh:
        return f"there is no backup, so move {root} aside to start afresh"
    return (
        f"there is no backup in {paths.backups_dir(root)}, so move the file aside to start "
        "with an empty database (the sqlite3 shell's .recover may save some of it)"
    )


# --- backup ---------------------------------------------------------------------------------
def take(
    db_file: Path, kind: str, keep: int | None = None, progress: Progress | None = None
) -> Backup:
    """Copy the database into ``backups/`` (a file of mode 0600) by SQLite's online backup API,
    check the copy, then keep only the newest ``keep`` backups. The supervisor may write all
    the while: the copy is one snapshot of the moment it began."""
    if not db_file.exists() or db_file.stat().st_size == 0:
        raise DamagedDatabase(f"There is no database at {db_file} to back up.")
    folder = paths.backups_dir(db_file.parent)
    folder.mkdir(mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = _unused(lambda n: folder / f"stratavore-{stamp}{n}-{kind}.db", (PART,))
    part = target.with_name(target.name + PART)
    os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        _copy(db_file, part, progress)
        detail = problem(part, thorough=True, immutable=True)
        if detail:
            raise DamagedDatabase(
                f"The database {db_file} is damaged ({detail}); its copy was not kept: "
                f"{way_back(db_file.parent)}."
            )
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    _sync_dir(folder)
    if keep is not None:
        prune(db_file.parent, keep)
    st = target.stat()
    return Backup(target, st.st_size, st.st_mtime, kind)


def _copy(db_file: Path, target: Path, progress: Progress | None) -> None:
    """The backup API, step by step, from one read transaction: a write by the supervisor
    between steps would otherwise restart the copy from its first page (and, under steady
    writes, never let it end)."""
    source = sqlite3.connect(db_file.absolute().as_uri() + "?mode=rw", uri=True)
    try:
        source.execute("BEGIN")
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot
        page = source.execute("PRAGMA page_size").fetchone()[0]
        dest = sqlite3.connect(target)
        try:

            def step(_status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress((total - remaining) * page, total * page)

            source.backup(dest, pages=STEP_PAGES, progress=step)
            # One self-contained file: the copy of a WAL database would itself be in WAL mode.
            dest.execute("PRAGMA journal_mode = DELETE")
        finally:
            dest.close()
    finally:
        source.close()


def _unused(path_for: Callable[[str], Path], suffixes: tuple[str, ...]) -> Path:
    """The first of ``path_for("")``, ``path_for(".2")``, ... that names no file, with or
    without any of ``suffixes`` (".N" sorts after "-", so names stay in time order)."""
    n = 1
    while True:
        path = path_for("" if n == 1 else f".{n}")
        if not any(Path(f"{path}{suffix}").exists() for suffix in ("", *suffixes)):
            return path
        n += 1


def prune(root: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` backups (of every kind), and part files left by a
    killed backup; the paths removed."""
    removed = [b.path for b in list_backups(root)[:-keep]] if keep > 0 else []
    folder = paths.backups_dir(root)
    now = time.time()
    for part in folder.glob("stratavore-*.db" + PART):
        try:
            if now - part.stat().st_mtime > STALE_PART_S:
                removed.append(part)
        except FileNotFoundError:
            continue
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def _sync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows has no directory handles)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- restore --------------------------------------------------------------------------------
def find(root: Path, name: str) -> Backup:
    """The backup called ``name`` in ``root``'s backups (404 when there is none)."""
    for backup in list_backups(root):
        if backup.name == name:
            return backup
    raise ApiError(
        ErrorCode.NOT_FOUND,
        f"There is no backup {name} in {paths.backups_dir(root)}; "
        "`stratavore restore --list` shows them.",
    )


def check_backup(backup: Backup, newest_schema: int) -> None:
    """Refuse (422) a backup that is damaged (``PRAGMA integrity_check``: every page and
    index), not a Stratavore database, or from a newer Stratavore."""
    uri = backup.path.absolute().as_uri() + "?mode=ro&immutable=1"
    detail, tables, version = "", set(), 0
    try:
        con = sqlite3.connect(uri, uri=True)
        try:
            rows = con.execute("PRAGMA integrity_check(3)").fetchall()
            if rows != [("ok",)]:
                detail = _one_line(rows)
            else:
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
                version = con.execute("PRAGMA user_version").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error as exc:
        detail = str(exc)
    if detail:
        raise ApiError(
            ErrorCode.INVALID,
            f"The backup {backup.path} is damaged ({detail}); pick another from "
            "`stratavore restore --list`.",
        )
    if "runner" not in tables or version < 1:
        raise ApiError(ErrorCode.INVALID, f"{backup.path} is not a Stratavore database.")
    if version > newest_schema:
        raise ApiError(
            ErrorCode.INVALID,
            f"The backup {backup.path} has schema version {version}, newer than this "
            f"Stratavore understands ({newest_schema}); upgrade Stratavore to restore it.",
        )


def restore(db_file: Path, backup: Backup) -> Path | None:
    """Put ``backup`` in place of the database (the caller holds the data dir's lock and has
    checked the backup). The files it replaces (the database, its WAL and shared memory) are
    renamed ``stratavore-replaced-<time>.db…`` beside it, never deleted; where they went."""
    root = db_file.parent
    incoming = root / f".{db_file.name}.restoring"
    incoming.unlink(missing_ok=True)
    os.close(os.open(incoming, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        with open(backup.path, "rb") as src, open(incoming, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
            dst.flush()
            os.fsync(dst.fileno())
    except BaseException:
        incoming.unlink(missing_ok=True)
        raise
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = _unused(lambda n: root / f"stratavore-replaced-{stamp}{n}.db", ("-wal", "-shm"))
    moved = None
    # the WAL and shared memory of the old file must never be applied to the restored one
    for suffix in ("", "-wal", "-shm"):
        old = Path(f"{db_file}{suffix}")
        if old.exists():
            os.replace(old, f"{aside}{suffix}")
            moved = moved or aside
    os.replace(incoming, db_file)
    _sync_dir(root)
    return moved
