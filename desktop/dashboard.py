"""The dashboard window: runners, agent sessions, projects, budgets, events, dead letters and
usage charts.

It shows what the bridge's snapshot and the API return and acts only through the bridge. The
snapshot tabs (runners, projects, budgets) follow ``Bridge.changed``; the others fetch their
data when they are shown and every :data:`FETCH_INTERVAL_MS` while they stay visible, on the
loop: nothing here waits on the network in the GUI thread.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop import empty
from desktop.bridge import Bridge, BridgeError, Json, spawn
from desktop.charts import UsagePanel
from desktop.empty import EmptyState
from desktop.models import (
    DeadLettersModel,
    EventsModel,
    KeyedTableModel,
    ProjectsModel,
    RunnersModel,
    SessionsModel,
    local_time,
    sorted_proxy,
)
from desktop.prompt import PromptDialog, ask_prompt
from desktop.terminal import run_in_terminal

log = logging.getLogger("stratavore.desktop")
FETCH_INTERVAL_MS = 10_000  # how often a visible fetching tab asks again
EVENTS_SHOWN = 200
LEVEL_COLORS = {"ok": "#2e7d32", "warn": "#f9a825", "high": "#ef6c00", "spent": "#c62828"}


def _table(model: KeyedTableModel, sort_column: int, order: Qt.SortOrder) -> QTableView:
    view = QTableView()
    view.setModel(sorted_proxy(model, view))
    view.setSortingEnabled(True)
    view.sortByColumn(sort_column, order)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.verticalHeader().setVisible(False)
    view.horizontalHeader().setStretchLastSection(True)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)

    def fit_once() -> None:
        """Size the columns to the first rows shown; after that they are the user's."""
        view.resizeColumnsToContents()  # by the cells: the header's text may need more
        header = view.horizontalHeader()
        for column in range(model.columnCount()):
            view.setColumnWidth(
                column, max(view.columnWidth(column), header.sectionSizeHint(column))
            )
        model.rowsInserted.disconnect(fit_once)

    model.rowsInserted.connect(fit_once)
    return view


def _selected(view: QTableView, model: KeyedTableModel) -> list[Json]:
    """The selected rows' JSON, in the view's order."""
    proxy = view.model()
    rows = sorted(view.selectionModel().selectedRows(), key=lambda index: index.row())
    return [model.row_at(proxy.mapToSource(index).row()) for index in rows]


# --- runners ----------------------------------------------------------------------------------
class RunnersTab(QWidget):
    """The active runners; Stop, Restart and Open log act on the selected ones."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.model = RunnersModel(self)
        self.view = _table(self.model, 0, Qt.SortOrder.AscendingOrder)
        self.empty = EmptyState(self.view, empty.RUNNERS)
        self.stop_button = QPushButton("Stop")
        self.restart_button = QPushButton("Restart")
        self.log_button = QPushButton("Open log")
        buttons = QHBoxLayout()
        for button in (self.stop_button, self.restart_button, self.log_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.view)
        self.stop_button.clicked.connect(self.stop_selected)
        self.restart_button.clicked.connect(self.restart_selected)
        self.log_button.clicked.connect(self.open_logs)
        self.view.selectionModel().selectionChanged.connect(self._enable)
        self.view.doubleClicked.connect(lambda _index: self.open_logs())
        self._enable()

    def update_runners(self, runners: list[Json]) -> None:
        self.model.update(runners)
        self._enable()

    def selected(self) -> list[Json]:
        return _selected(self.view, self.model)

    def select(self, runner_id: int) -> bool:
        """Select (only) the runner's row and scroll to it; whether it is shown."""
        row = self.model.row_of(runner_id)
        if row is None:
            return False
        index = self.view.model().mapFromSource(self.model.index(row, 0))
        self.view.selectionModel().select(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.NoUpdate
        )
        self.view.scrollTo(index)
        return True

    def _enable(self) -> None:
        chosen = self.selected()
        self.stop_button.setEnabled(bool(chosen))
        self.restart_button.setEnabled(bool(chosen))
        self.log_button.setEnabled(any(r["log_path"] for r in chosen))

    def stop_selected(self) -> None:
        ids = [r["id"] for r in self.selected()]
        if len(ids) == 1:
            spawn(self.bridge.stop(ids[0]))
        elif ids:
            spawn(self.bridge.stop_many(ids))

    def restart_selected(self) -> None:
        async def restart(ids: list[int]) -> None:
            for runner_id in ids:
                await self.bridge.restart(runner_id)

        ids = [r["id"] for r in self.selected()]
        if ids:
            spawn(restart(ids))

    def open_logs(self) -> None:
        for runner in self.selected():
            if runner["log_path"]:
                QDesktopServices.openUrl(QUrl.fromLocalFile(runner["log_path"]))


# --- sessions ---------------------------------------------------------------------------------
class SessionsTab(QWidget):
    """Agent sessions, most recently active first, of one project or all; the selected one is
    resumed in a terminal (``stratavore-agent --resume``) or in the background with a prompt.

    ``wants_fetch`` asks the dashboard for :meth:`fetch` (the project filter changed).
    """

    wants_fetch = Signal()

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.model = SessionsModel(self)
        self.view = _table(self.model, 0, Qt.SortOrder.DescendingOrder)
        self.empty = EmptyState(self.view, empty.SESSIONS)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.project = QComboBox()
        self.project.addItem("All projects", None)
        self.terminal_button = QPushButton("Resume in terminal")
        self.background_button = QPushButton("Resume in background…")
        self.prompt: PromptDialog | None = None  # the open prompt of a background resume
        buttons = QHBoxLayout()
        buttons.addWidget(self.project)
        buttons.addWidget(self.terminal_button)
        buttons.addWidget(self.background_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.view)
        self.project.currentIndexChanged.connect(lambda _i: self.wants_fetch.emit())
        self.terminal_button.clicked.connect(self.resume_in_terminal)
        self.background_button.clicked.connect(self.resume_in_background)
        self.view.selectionModel().selectionChanged.connect(self._enable)
        self._enable()

    def update_projects(self, projects: list[Json]) -> None:
        """The filter's choices: every project (the one chosen stays chosen while it exists)."""
        names = [p["name"] for p in projects]
        if names == [self.project.itemData(i) for i in range(1, self.project.count())]:
            return
        chosen = self.project.currentData()
        self.project.blockSignals(True)
        self.project.clear()
        self.project.addItem("All projects", None)
        for name in names:
            self.project.addItem(name, name)
        self.project.setCurrentIndex(max(0, self.project.findData(chosen)))
        self.project.blockSignals(False)
        if self.project.currentData() != chosen:
            self.wants_fetch.emit()

    async def fetch(self) -> None:
        self.model.update(await self.bridge.sessions(self.project.currentData()))
        self._enable()

    def selected(self) -> Json | None:
        chosen = _selected(self.view, self.model)
        return chosen[0] if chosen else None

    def plan(self, template: str) -> tuple[Json, Json, Json] | None:
        """(session, its project, a profile of its agent with ``template``: "resume" or
        "resume_batch") for the selected session, or None when it cannot be resumed so."""
        session = self.selected()
        if session is None or not session["resumable"]:
            return None
        snapshot = self.bridge.snapshot
        project = next((p for p in snapshot.projects if p["name"] == session["project"]), None)
        profile = next(
            (f for f in snapshot.profiles if f["agent"] == session["agent"] and f[template]),
            None,
        )
        return None if project is None or profile is None else (session, project, profile)

    def _enable(self) -> None:
        self.terminal_button.setEnabled(self.plan("resume") is not None)
        self.background_button.setEnabled(self.plan("resume_batch") is not None)

    def resume_in_terminal(self) -> None:
        plan = self.plan("resume")
        if plan is not None:
            session, project, profile = plan
            run_in_terminal(
                project["name"], project["path"], profile=profile["name"],
                resume=session["session_id"],
            )  # fmt: skip

    def resume_in_background(self) -> None:
        plan = self.plan("resume_batch")
        if plan is None:
            return
        session, project, profile = plan

        async def launch(prompt: str, _worktree: bool) -> None:
            await self.bridge.launch(
                project["name"], profile["name"], mode="batch", prompt=prompt,
                resume_session=session["session_id"],
            )  # fmt: skip

        what = f"{profile['name']} session {session['session_id'][:8]} in {project['name']}"
        self.prompt = ask_prompt(what, launch, parent=self)


# --- budgets ----------------------------------------------------------------------------------
def budget_level(budget: Json) -> str:
    """'ok', 'warn' (past the first warning), 'high' (past the last) or 'spent'."""
    percent, warn = budget["percent"], sorted(budget["warn"])
    if percent >= 100:
        return "spent"
    if warn and percent >= warn[-1]:
        return "high"
    if warn and percent >= warn[0]:
        return "warn"
    return "ok"


def budget_usage(budget: Json) -> str:
    """'412,300 / 400,000 tokens, $1.20 / $5.00' (the limits it has)."""
    parts = []
    if budget["limit_tokens"]:
        parts.append(f"{budget['used_tokens']:,} / {budget['limit_tokens']:,} tokens")
    if budget["limit_usd"]:
        parts.append(f"${budget['used_usd']:,.2f} / ${budget['limit_usd']:,.2f}")
    return ", ".join(parts)


class BudgetRow(QFrame):
    """One budget: a progress bar coloured by its warning thresholds, and its numbers."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.name = QLabel()
        self.name.setStyleSheet("font-weight: bold")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)  # tenths of a percent
        self.usage = QLabel()
        self.resets = QLabel()
        self.exhaustion = QLabel()
        self.level = ""
        grid = QGridLayout(self)
        grid.addWidget(self.name, 0, 0)
        grid.addWidget(self.usage, 0, 1, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.bar, 1, 0, 1, 2)
        grid.addWidget(self.resets, 2, 0)
        grid.addWidget(self.exhaustion, 2, 1, Qt.AlignmentFlag.AlignRight)

    def show_budget(self, budget: Json) -> None:
        percent = budget["percent"]
        scope, period, action = budget["scope"], budget["period"], budget["action"]
        self.name.setText(f"{scope} {period} (at the limit: {action})")
        self.bar.setValue(round(min(percent, 100.0) * 10))
        self.bar.setFormat(f"{percent:.1f}%")
        self.usage.setText(budget_usage(budget))
        if budget["resets_at"]:
            self.resets.setText(f"resets at {local_time(budget['resets_at'])}")
        else:
            self.resets.setText("no block running")
        exhaustion = budget["projected_exhaustion_at"]
        self.exhaustion.setText(
            f"projected exhaustion: {local_time(exhaustion)}" if exhaustion else ""
        )
        level = budget_level(budget)
        if level != self.level:
            self.level = level
            self.bar.setStyleSheet(
                f"QProgressBar::chunk {{ background-color: {LEVEL_COLORS[level]}; }}"
            )


class BudgetsTab(QScrollArea):
    """A :class:`BudgetRow` per budget, kept across refreshes by (scope, period)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        inner = QWidget()
        self.rows_layout = QVBoxLayout(inner)
        self.empty = QLabel(
            "No budgets. Set one with `stratavore budget set global --period daily --tokens N`."
        )
        self.rows_layout.addWidget(self.empty)
        self.rows_layout.addStretch(1)
        self.setWidget(inner)
        self.rows: dict[tuple[str, str], BudgetRow] = {}

    def update_budgets(self, budgets: list[Json]) -> None:
        wanted = {(b["scope"], b["period"]): b for b in budgets}
        for key in [key for key in self.rows if key not in wanted]:
            row = self.rows.pop(key)
            self.rows_layout.removeWidget(row)
            row.deleteLater()
        for position, (key, budget) in enumerate(wanted.items()):
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = BudgetRow()
                self.rows_layout.insertWidget(position + 1, row)
            row.show_budget(budget)
        self.empty.setVisible(not budgets)


# --- events and dead letters ------------------------------------------------------------------
class EventsTab(QWidget):
    """The newest events, newest first: fetched while shown, and followed as they come."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.model = EventsModel(self)
        self.view = _table(self.model, 0, Qt.SortOrder.DescendingOrder)
        self.empty = EmptyState(self.view, empty.EVENTS)
        QVBoxLayout(self).addWidget(self.view)
        self._events: dict[int, Json] = {}

    async def fetch(self) -> None:
        events = await self.bridge.read_events(last=EVENTS_SHOWN)
        self._events = {}
        self.add(events)

    def add(self, events: list[Json]) -> None:
        for event in events:
            self._events[event["id"]] = event
        newest = sorted(self._events, reverse=True)[:EVENTS_SHOWN]
        self._events = {event_id: self._events[event_id] for event_id in newest}
        self.model.update(list(self._events.values()))


class DeadLettersTab(QWidget):
    """Deliveries that gave up; Retry queues the selected ones again."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.model = DeadLettersModel(self)
        self.view = _table(self.model, 0, Qt.SortOrder.DescendingOrder)
        self.empty = EmptyState(self.view, empty.DEAD_LETTERS)
        self.retry_button = QPushButton("Retry")
        self.retry_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.retry_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.view)
        self.retry_button.clicked.connect(self.retry_selected)
        self.view.selectionModel().selectionChanged.connect(
            lambda *_: self.retry_button.setEnabled(bool(self.selected()))
        )

    def selected(self) -> list[Json]:
        return _selected(self.view, self.model)

    async def fetch(self) -> None:
        self.model.update(await self.bridge.dead_letters())
        self.retry_button.setEnabled(bool(self.selected()))

    def retry_selected(self) -> None:
        async def retry(ids: list[int]) -> None:
            for delivery_id in ids:
                await self.bridge.retry_dead_letter(delivery_id)
            await self.fetch()

        ids = [d["id"] for d in self.selected()]
        if ids:
            spawn(retry(ids))


# --- the window -------------------------------------------------------------------------------
class Dashboard(QMainWindow):
    """The main window.

    ``fetched(str)``: a fetching tab (``"sessions"``, ``"events"``, ``"dead"``, ``"usage"``)
    has drawn what it fetched. ``fetch_failed(str)``: a fetch failed; the sentence (also in
    the status bar).
    """

    fetched = Signal(str)
    fetch_failed = Signal(str)

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.setWindowTitle("Stratavore")
        self.resize(1100, 720)
        self.runners = RunnersTab(bridge)
        self.sessions = SessionsTab(bridge)
        self.projects = ProjectsModel(self)
        self.projects_view = _table(self.projects, 0, Qt.SortOrder.AscendingOrder)
        self.budgets = BudgetsTab()
        self.events = EventsTab(bridge)
        self.dead = DeadLettersTab(bridge)
        self.usage = UsagePanel(bridge)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.runners, "Runners")
        self.tabs.addTab(self.sessions, "Sessions")
        self.tabs.addTab(self.projects_view, "Projects")
        self.tabs.addTab(self.budgets, "Budgets")
        self.tabs.addTab(self.events, "Events")
        self.tabs.addTab(self.dead, "Dead letters")
        self.tabs.addTab(self.usage, "Usage")
        self.setCentralWidget(self.tabs)
        self._names: dict[QWidget, str] = {self.events: "events", self.dead: "dead"}
        self._names.update({self.usage: "usage", self.sessions: "sessions"})
        self._busy: set[QWidget] = set()
        self._again: set[QWidget] = set()
        self.timer = QTimer(self)
        self.timer.setInterval(FETCH_INTERVAL_MS)
        self.timer.timeout.connect(self.fetch_current)
        self.tabs.currentChanged.connect(lambda _i: self.fetch_current())
        self.usage.wants_fetch.connect(lambda: self.fetch_page(self.usage))
        self.sessions.wants_fetch.connect(lambda: self.fetch_page(self.sessions))
        bridge.changed.connect(self.show_snapshot)
        bridge.events.connect(self.events.add)
        bridge.failed.connect(lambda text: self.statusBar().showMessage(text, 10_000))
        self.show_snapshot()

    # --- what the snapshot holds ---------------------------------------------------------------
    def show_snapshot(self) -> None:
        snapshot = self.bridge.snapshot
        self.runners.update_runners(snapshot.runners)
        self.sessions.update_projects(snapshot.projects)
        self.projects.update(snapshot.projects)
        self.budgets.update_budgets(snapshot.budgets)
        self.tabs.setTabText(0, f"Runners ({len(snapshot.runners)})")

    def show_runner(self, runner_id: int) -> None:
        """Switch to the runners and select this one (a notification about it was clicked)."""
        self.tabs.setCurrentWidget(self.runners)
        if not self.runners.select(runner_id):
            self.statusBar().showMessage(f"Runner #{runner_id} is no longer active.", 10_000)

    def show_budgets(self) -> None:
        self.tabs.setCurrentWidget(self.budgets)

    def show_sessions(self) -> None:
        self.tabs.setCurrentWidget(self.sessions)

    # --- what is fetched -----------------------------------------------------------------------
    def fetch_current(self) -> None:
        """Fetch the current tab's data if it has any to fetch and the window is shown."""
        if self.isVisible() and self.tabs.currentWidget() in self._names:
            self.fetch_page(self.tabs.currentWidget())

    def fetch_page(self, page: QWidget) -> None:
        """Fetch ``page``'s data; one fetch at a time per page, a request made meanwhile
        (the range changed) runs when the one under way ends."""
        if page in self._busy:
            self._again.add(page)
            return
        self._busy.add(page)
        spawn(self._fetch(page))

    async def _fetch(self, page: Any) -> None:
        name = self._names[page]
        try:
            while True:
                self._again.discard(page)
                await page.fetch()
                if page not in self._again:
                    break
        except BridgeError as exc:
            self._fetch_failed(name, exc.message)
        else:
            self.fetched.emit(name)
        finally:
            self._busy.discard(page)

    def _fetch_failed(self, name: str, text: str) -> None:
        log.warning("desktop: fetching %s failed: %s", name, text)
        self.statusBar().showMessage(f"Could not load {name}: {text}", 10_000)
        self.fetch_failed.emit(text)

    # --- visibility ----------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self.timer.isActive():
            self.bridge.watchers += 1  # live CPU, memory, uptime: a full refresh each tick
        self.timer.start()
        self.fetch_current()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        if self.timer.isActive():
            self.bridge.watchers -= 1
        self.timer.stop()
