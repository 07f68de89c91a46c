"""Table models of the dashboard: the API's JSON rows as Qt rows, updated in place.

Every refresh hands a model the whole list again; :class:`KeyedTableModel` diffs it against
what it shows by each row's key, so Qt sees rows inserted, removed or changed, never a reset:
selections and scroll positions survive the refreshes, and a view repaints only the cells
whose text changed. The models format; they decide nothing.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QFont

from desktop.bridge import Json, needs_user
from desktop.icons import TrayState, state_dot
from desktop.tray import activity, human_tokens, reset_time, uptime

SORT_ROLE = Qt.ItemDataRole.UserRole  # a value that sorts right: numbers as numbers
KEY_ROLE = Qt.ItemDataRole.UserRole + 1  # the row's key (a runner's id, an event's id)
ATTENTION = "#c77700"  # unresponsive, backing off, a warning
FAILURE = "#c62828"  # gave up, an error
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
Index = QModelIndex | QPersistentModelIndex


# --- formatting -------------------------------------------------------------------------------
def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def parse_time(text: str | None) -> datetime.datetime | None:
    """An API timestamp (ISO 8601 UTC) as an aware datetime in the local zone."""
    if not text:
        return None
    return datetime.datetime.fromisoformat(text).astimezone()


def local_time(text: str | None, now: float | None = None) -> str:
    """An API timestamp in local time: '14:05:09' today, 'Mon 07 Jul 14:05' otherwise."""
    moment = parse_time(text)
    if moment is None:
        return "-"
    today = datetime.datetime.fromtimestamp(now or time.time()).astimezone().date()
    return moment.strftime("%H:%M:%S" if moment.date() == today else "%a %d %b %H:%M")


def _epoch(text: str | None) -> float:
    moment = parse_time(text)
    return moment.timestamp() if moment is not None else 0.0


# --- the generic keyed model ------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """One column: its header, its text, and optionally a sort value, tooltip and colour."""

    header: str
    text: Callable[[Json], str]
    sort: Callable[[Json], Any] | None = None  # default: the text
    numeric: bool = False  # right-aligned
    tip: Callable[[Json], str | None] | None = None
    color: Callable[[Json], str | None] | None = None  # a colour name, for the text
    icon: Callable[[Json], TrayState | None] | None = None  # a state dot before the text


# text, sort value, tooltip, colour, bold, state dot
Cell = tuple[str, Any, str | None, str | None, bool, TrayState | None]


class KeyedTableModel(QAbstractTableModel):
    """Rows of JSON objects identified by ``key``; :meth:`update` applies a new list as
    inserts, removals and ``dataChanged`` of the changed cells."""

    columns: Sequence[Column] = ()
    stretch = ""  # the header of the column that takes the width left (the longest text)

    def __init__(self, key: Callable[[Json], Hashable], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._key_of = key
        self._keys: list[Hashable] = []
        self._rows: list[Json] = []
        self._cells: list[tuple[Cell, ...]] = []
        self._where: dict[Hashable, int] = {}
        self._minute = 0  # of the last update: texts that depend on the time change by minute
        self._brushes: dict[str, QBrush] = {}
        self._bold = QFont()
        self._bold.setBold(True)

    # --- reading ---------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.columns[section].header
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        cell = self._cells[row][column]
        if role == Qt.ItemDataRole.DisplayRole:
            return cell[0]
        if role == SORT_ROLE:
            return cell[1]
        if role == Qt.ItemDataRole.ToolTipRole:
            return cell[2]
        if role == Qt.ItemDataRole.ForegroundRole and cell[3]:
            brush = self._brushes.get(cell[3])
            if brush is None:
                brush = self._brushes[cell[3]] = QBrush(QColor(cell[3]))
            return brush
        if role == Qt.ItemDataRole.FontRole and cell[4]:
            return self._bold
        if role == Qt.ItemDataRole.DecorationRole and cell[5] is not None:
            return state_dot(cell[5].colour)
        if role == Qt.ItemDataRole.TextAlignmentRole and self.columns[column].numeric:
            return _RIGHT
        if role == KEY_ROLE:
            return self._keys[row]
        return None

    def row_at(self, row: int) -> Json:
        return self._rows[row]

    def row_of(self, key: Hashable) -> int | None:
        return self._where.get(key)

    def keys(self) -> list[Hashable]:
        return list(self._keys)

    def texts(self, column: int, rows: int) -> list[str]:
        """The text of ``column`` in the first ``rows`` rows (to size the column by)."""
        return [cells[column][0] for cells in self._cells[:rows]]

    def strong(self, row: Json) -> bool:
        """Whether the row is shown in bold (it needs the user)."""
        return False

    # --- writing ---------------------------------------------------------------------------------
    def _render(self, row: Json) -> tuple[Cell, ...]:
        cells = []
        bold = self.strong(row)
        for column in self.columns:
            text = column.text(row)
            cells.append((
                text,
                column.sort(row) if column.sort is not None else text,
                column.tip(row) if column.tip is not None else None,
                column.color(row) if column.color is not None else None,
                bold,
                column.icon(row) if column.icon is not None else None,
            ))  # fmt: skip
        return tuple(cells)

    def update(self, rows: Sequence[Json]) -> None:
        """Show ``rows`` (in their order; rows still present keep their relative order)."""
        keys = [self._key_of(row) for row in rows]
        minute = int(time.time() // 60)
        same_minute, self._minute = minute == self._minute, minute
        wanted = set(keys)
        gone = [i for i, key in enumerate(self._keys) if key not in wanted]
        for first, last in reversed(_runs(gone)):
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._keys[first : last + 1], self._rows[first : last + 1]
            del self._cells[first : last + 1]
            self.endRemoveRows()
        kept = set(self._keys)
        if [key for key in keys if key in kept] != self._keys:
            self._reset(rows, keys)  # reordered: rare, and a reset is then the honest signal
            return
        at = 0
        j = 0
        while j < len(rows):
            if at < len(self._keys) and self._keys[at] == keys[j]:
                # an equal row in the same minute shows the same texts: not rendered again
                if not (same_minute and rows[j] == self._rows[at]):
                    self._change(at, rows[j])
                at, j = at + 1, j + 1
                continue
            end = j
            while end < len(rows) and keys[end] not in kept:
                end += 1
            self.beginInsertRows(QModelIndex(), at, at + end - j - 1)
            self._keys[at:at] = keys[j:end]
            self._rows[at:at] = rows[j:end]
            self._cells[at:at] = [self._render(row) for row in rows[j:end]]
            self.endInsertRows()
            at, j = at + end - j, end
        self._where = {key: i for i, key in enumerate(self._keys)}

    def _change(self, at: int, row: Json) -> None:
        self._rows[at] = row
        old, new = self._cells[at], self._render(row)
        if old == new:
            return
        changed = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
        self._cells[at] = new
        self.dataChanged.emit(self.index(at, changed[0]), self.index(at, changed[-1]))

    def _reset(self, rows: Sequence[Json], keys: list[Hashable]) -> None:
        self.beginResetModel()
        self._keys, self._rows = keys, list(rows)
        self._cells = [self._render(row) for row in rows]
        self._where = {key: i for i, key in enumerate(keys)}
        self.endResetModel()


def _runs(indexes: list[int]) -> list[tuple[int, int]]:
    """Ascending indexes as (first, last) runs of consecutive ones."""
    runs: list[tuple[int, int]] = []
    for i in indexes:
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def sorted_proxy(model: KeyedTableModel, parent: QObject | None = None) -> QSortFilterProxyModel:
    """A proxy that sorts ``model`` by its sort values and keeps sorting as rows change."""
    proxy = QSortFilterProxyModel(parent)
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    proxy.setDynamicSortFilter(True)
    proxy.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    return proxy


# --- runners ----------------------------------------------------------------------------------
FAILED_STATES = frozenset({"failed", "fatal", "lost"})


def look(runner: Json) -> TrayState:
    """The tray state whose colour a runner wears in rows and cards: running (green), needs
    the user (orange), failed (red, the tray's alarm colour) or idle (grey: queued, stopped,
    exited)."""
    if runner["state"] in FAILED_STATES:
        return TrayState.BUDGET
    if needs_user(runner):
        return TrayState.ATTENTION
    if runner["state"] in ("starting", "running", "stopping"):
        return TrayState.RUNNING
    return TrayState.IDLE


def _what(runner: Json) -> str:
    # the program's name without pathlib (a thousand rows at each refresh)
    return runner["profile"] or runner["command"][0].replace("\\", "/").rsplit("/", 1)[-1]


def _state(runner: Json) -> str:
    return runner["state"] + (" (unresponsive)" if runner["unresponsive"] else "")


def _state_color(runner: Json) -> str | None:
    if runner["state"] in ("failed", "fatal", "lost"):
        return FAILURE
    if runner["unresponsive"] or runner["state"] == "backoff":
        return ATTENTION
    return None


def _or_minus(value: Any, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


def _attention(runner: Json) -> str:
    """Its agent's attention ("needs input"), or until when it is paused at a limit."""
    if runner["state"] == "paused" and runner["limit_resets_at"]:
        return f"paused until {reset_time(runner['limit_resets_at'])}"
    return activity(runner)


def _attention_tip(runner: Json) -> str | None:
    if runner["state"] == "paused":
        return runner["reason"]
    return f"since {local_time(runner['attention_at'])}" if runner["attention_at"] else None


class RunnersModel(KeyedTableModel):
    """The active runners (``Snapshot.runners``), one row per runner id."""

    stretch = "Profile / command"
    columns = (
        Column("ID", lambda r: str(r["id"]), lambda r: r["id"], numeric=True),
        Column("Project", lambda r: r["project"]),
        Column("Profile / command", _what, tip=lambda r: " ".join(r["command"])),
        Column("State", _state, tip=lambda r: r["reason"], color=_state_color, icon=look),
        Column(
            "Exit",
            lambda r: _or_minus(r["exit_code"]),
            lambda r: r["exit_code"] if r["exit_code"] is not None else -1,
            numeric=True,
            tip=lambda r: r["reason"] if r["ended_at"] else None,
        ),
        Column(
            "Attention",
            _attention,
            tip=_attention_tip,
            color=lambda r: ATTENTION if needs_user(r) and _attention(r) else None,
        ),
        Column("PID", lambda r: _or_minus(r["pid"]), lambda r: r["pid"] or 0, numeric=True),
        Column(
            "CPU %",
            lambda r: _or_minus(r["cpu_percent"], "{:.0f}"),
            lambda r: r["cpu_percent"] if r["cpu_percent"] is not None else -1.0,
            numeric=True,
        ),
        Column(
            "Memory",
            lambda r: human_bytes(r["rss_bytes"]),
            lambda r: r["rss_bytes"] if r["rss_bytes"] is not None else -1,
            numeric=True,
        ),
        # sorted by start time, newest last when ascending: the sort value stays put between
        # refreshes, while the seconds of an uptime would change every one of them
        Column("Uptime", uptime, lambda r: -_epoch(r["started_at"]), numeric=True),
        Column(
            "Tokens", lambda r: human_tokens(r["tokens"]), lambda r: r["tokens"] or 0, numeric=True
        ),
        Column("Restarts", lambda r: str(r["restarts"]), lambda r: r["restarts"], numeric=True),
    )

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(lambda runner: runner["id"], parent)

    def strong(self, row: Json) -> bool:
        return needs_user(row)


# --- projects, events, dead letters -----------------------------------------------------------
class ProjectsModel(KeyedTableModel):
    stretch = "Folder"
    columns = (
        Column("Name", lambda p: p["name"]),
        Column("Folder", lambda p: p["path"]),
        Column(
            "Active runners",
            lambda p: str(p["active_runners"]),
            lambda p: p["active_runners"],
            numeric=True,
        ),
        Column(
            "Runner cap",
            lambda p: str(p["max_runners"]) if p["max_runners"] else "default",
            lambda p: p["max_runners"] or 0,
            numeric=True,
        ),
        Column("Created", lambda p: local_time(p["created_at"]), lambda p: p["created_at"]),
    )

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(lambda project: project["name"], parent)


_SEVERITY_COLORS = {"warning": ATTENTION, "error": FAILURE}


class EventsModel(KeyedTableModel):
    """Events, newest first as given; the body is the title's tooltip."""

    stretch = "Title"
    columns = (
        Column("Time", lambda e: local_time(e["ts"]), lambda e: e["id"]),
        Column(
            "Severity", lambda e: e["severity"], color=lambda e: _SEVERITY_COLORS.get(e["severity"])
        ),
        Column("Type", lambda e: e["type"]),
        Column(
            "Runner",
            lambda e: _or_minus(e["runner_id"], "#{}"),
            lambda e: e["runner_id"] or 0,
            numeric=True,
        ),
        Column("Project", lambda e: e["project"] or ""),
        Column("Title", lambda e: e["title"], tip=lambda e: e["body"] or None),
    )

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(lambda event: event["id"], parent)


class DeadLettersModel(KeyedTableModel):
    """Deliveries that gave up, by delivery id (what a retry takes)."""

    stretch = "Error"
    columns = (
        Column("Delivery", lambda d: str(d["id"]), lambda d: d["id"], numeric=True),
        Column("Event", lambda d: str(d["event_id"]), lambda d: d["event_id"], numeric=True),
        Column("Channel", lambda d: d["channel"]),
        Column("Type", lambda d: d["type"]),
        Column("Title", lambda d: d["title"]),
        Column("Attempts", lambda d: str(d["attempts"]), lambda d: d["attempts"], numeric=True),
        Column(
            "Error", lambda d: d["error"] or "", tip=lambda d: d["error"], color=lambda _d: FAILURE
        ),
    )

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(lambda dead: dead["id"], parent)


# --- sessions ---------------------------------------------------------------------------------
class SessionsModel(KeyedTableModel):
    """Agent sessions (``GET /sessions``), by agent and session id; a session that cannot be
    resumed says why."""

    stretch = "Session"
    columns = (
        Column(
            "Last activity",
            lambda s: local_time(s["last_activity"]),
            lambda s: s["last_activity"] or "",
        ),
        Column("Agent", lambda s: s["agent"]),
        Column("Project", lambda s: s["project"] or "-"),
        Column(
            "Runner",
            lambda s: _or_minus(s["runner_id"], "#{}"),
            lambda s: s["runner_id"] or 0,
            numeric=True,
        ),
        Column("Tokens", lambda s: human_tokens(s["tokens"]), lambda s: s["tokens"], numeric=True),
        Column("Cost", lambda s: f"${s['cost_usd']:,.2f}", lambda s: s["cost_usd"], numeric=True),
        Column(
            "Resumable",
            lambda s: "yes" if s["resumable"] else f"no: {s['why_not']}",
            tip=lambda s: s["why_not"],
        ),
        Column("Session", lambda s: s["session_id"]),
    )

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(lambda session: (session["agent"], session["session_id"]), parent)
