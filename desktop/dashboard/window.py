"""The dashboard window: the tabs, what the snapshot shows, and what is fetched while shown."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import QMainWindow, QTabWidget, QWidget

from desktop.bridge import Bridge, BridgeError, spawn
from desktop.dashboard.budgets import BudgetsTab
from desktop.dashboard.events import DeadLettersTab, EventsTab
from desktop.dashboard.looks import (
    FILTER_KEY,
    GEOMETRY_KEY,
    PAGE_KEY,
    SPLIT_KEY,
    apply_theme,
    restore_geometry,
    saved_int,
)
from desktop.dashboard.overview import OverviewPage
from desktop.dashboard.runners import RunnersTab
from desktop.dashboard.sessions import SessionsTab
from desktop.dashboard.tables import table_view
from desktop.dashboard.team import TeamPanel
from desktop.dashboard.usage import UsagePanel
from desktop.models import ProjectsModel
from desktop.settings.prefs import preferences

log = logging.getLogger("stratavore.desktop")
FETCH_INTERVAL_MS = 10_000  # how often a visible fetching tab asks again
# The pages in order (Ctrl+1..9): the window's attribute and the tab's title.
PAGES = (
    ("overview", "Overview"),
    ("runners", "Runners"),
    ("sessions", "Sessions"),
    ("projects_view", "Projects"),
    ("budgets", "Budgets"),
    ("events", "Events"),
    ("dead", "Dead letters"),
    ("usage", "Usage"),
    ("team", "Team"),
)


class Dashboard(QMainWindow):
    """The main window.

    ``fetched(str)``: a fetching tab (``"overview"``, ``"sessions"``, ``"events"``,
    ``"dead"``, ``"usage"``, ``"team"``) has drawn what it fetched. ``fetch_failed(str)``: a fetch
    failed; the sentence (also in the status bar).
    """

    fetched = Signal(str)
    fetch_failed = Signal(str)

    def __init__(
        self, bridge: Bridge, prefs: QSettings | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.prefs = prefs if prefs is not None else preferences()
        self.setWindowTitle("Stratavore")
        self.setAccessibleName("Stratavore")
        self.overview = OverviewPage(bridge, self.prefs)
        self.runners = RunnersTab(bridge, self.prefs)
        self.sessions = SessionsTab(bridge)
        self.projects = ProjectsModel(self)
        self.projects_view = table_view(self.projects, 0, Qt.SortOrder.AscendingOrder)
        self.projects_view.setAccessibleName("Projects")
        self.budgets = BudgetsTab()
        self.events = EventsTab(bridge)
        self.dead = DeadLettersTab(bridge)
        self.usage = UsagePanel(bridge)
        self.team = TeamPanel(bridge)
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Pages")
        for page, title in PAGES:
            self.tabs.addTab(getattr(self, page), title)
        self.setCentralWidget(self.tabs)
        self._names: dict[QWidget, str] = {self.events: "events", self.dead: "dead"}
        self._names.update({self.overview: "overview", self.runners: "runners"})
        self._names.update({self.usage: "usage", self.sessions: "sessions"})
        self._names[self.team] = "team"
        self._busy: set[QWidget] = set()
        self._again: set[QWidget] = set()
        self.timer = QTimer(self)
        self.timer.setInterval(FETCH_INTERVAL_MS)
        apply_theme(self, self.prefs)  # before the first show polishes the widgets
        self._restore()
        self._connect()
        self._keys()
        self.show_snapshot()

    def _connect(self) -> None:
        bridge = self.bridge
        self.timer.timeout.connect(self.fetch_current)
        self.tabs.currentChanged.connect(self._page_changed)
        self.usage.wants_fetch.connect(lambda: self.fetch_page(self.usage))
        self.team.wants_fetch.connect(lambda: self.fetch_page(self.team))
        self.sessions.wants_fetch.connect(lambda: self.fetch_page(self.sessions))
        self.runners.wants_fetch.connect(lambda: self.fetch_page(self.runners))
        self.runners.filter.currentIndexChanged.connect(
            lambda _i: self.prefs.setValue(FILTER_KEY, self.runners.chosen)
        )
        self.runners.split.splitterMoved.connect(
            lambda *_: self.prefs.setValue(SPLIT_KEY, self.runners.split.saveState())
        )
        self.overview.open_runner.connect(self.show_runner)
        self.overview.open_page.connect(self.show_page)
        self.overview.counted.connect(lambda _n: self.show_counts())
        bridge.changed.connect(self.show_snapshot)
        bridge.events.connect(self.events.add)
        bridge.failed.connect(lambda text: self.statusBar().showMessage(text, 10_000))

    def _keys(self) -> None:
        """Ctrl+1..N: the pages; F5: refresh now."""
        for i in range(self.tabs.count()):
            key = QShortcut(QKeySequence(f"Ctrl+{i + 1}"), self)
            key.activated.connect(lambda i=i: self.tabs.setCurrentIndex(i))
        QShortcut(QKeySequence(Qt.Key.Key_F5), self).activated.connect(self.refresh)

    def _restore(self) -> None:
        """The size, position, page, filter and split the user left the window with."""
        if not restore_geometry(self, self.prefs):
            self.resize(1100, 720)
        self.tabs.setCurrentIndex(saved_int(self.prefs, PAGE_KEY, 0))
        chosen = self.runners.filter.findData(self.prefs.value(FILTER_KEY, "active"))
        self.runners.filter.setCurrentIndex(max(0, chosen))
        split = self.prefs.value(SPLIT_KEY)
        if isinstance(split, QByteArray | bytes):
            self.runners.split.restoreState(QByteArray(split))

    def _page_changed(self, index: int) -> None:
        self.prefs.setValue(PAGE_KEY, index)
        self.fetch_current()

    def refresh(self) -> None:
        """F5: the snapshot and the current page's data, now."""
        spawn(self.bridge.refresh_soon())
        self.fetch_current()

    # --- what the snapshot holds ---------------------------------------------------------------
    def show_snapshot(self) -> None:
        snapshot = self.bridge.snapshot
        self.runners.update_runners(snapshot.runners)
        self.sessions.update_projects(snapshot.projects)
        self.projects.update(snapshot.projects)
        self.budgets.update_budgets(snapshot.budgets)
        self.overview.show_snapshot(snapshot)
        self.show_counts()

    def show_counts(self) -> None:
        """The tabs say how many: cards that need the user, active runners."""
        needs = self.overview.count
        self.tabs.setTabText(0, f"Overview ({needs})" if needs else "Overview")
        self.tabs.setTabText(1, f"Runners ({len(self.bridge.snapshot.runners)})")

    def show_runner(self, runner_id: int) -> None:
        """Switch to the runners and select this one, its pane beside (a notification or a
        card about it was clicked); a finished one is listed with all the others."""
        self.tabs.setCurrentWidget(self.runners)

        async def reveal() -> None:
            try:
                found = await self.runners.reveal(runner_id)
            except BridgeError as exc:
                self._fetch_failed("runners", exc.message)
                return
            if not found:
                self.statusBar().showMessage(f"There is no runner #{runner_id}.", 10_000)

        if not self.runners.select(runner_id):
            spawn(reveal(), self)

    def show_budgets(self) -> None:
        self.tabs.setCurrentWidget(self.budgets)

    def show_page(self, name: str) -> None:
        """Switch to a page by its fetch name ("dead", "events"...) or "budgets"."""
        pages = {name: page for page, name in self._names.items()}
        self.tabs.setCurrentWidget(self.budgets if name == "budgets" else pages[name])

    def show_sessions(self) -> None:
        self.tabs.setCurrentWidget(self.sessions)

    # --- what is fetched -----------------------------------------------------------------------
    def fetch_current(self) -> None:
        """Fetch the current tab's data if it has any to fetch and the window is shown."""
        page = self.tabs.currentWidget()
        if self.isVisible() and page in self._names and getattr(page, "fetching", True):
            self.fetch_page(page)

    def fetch_page(self, page: QWidget) -> None:
        """Fetch ``page``'s data; one fetch at a time per page, a request made meanwhile
        (the range changed) runs when the one under way ends."""
        if page in self._busy:
            self._again.add(page)
            return
        self._busy.add(page)
        spawn(self._fetch(page), self)

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
    def follow_theme(self) -> None:
        """Take the palette chosen in Settings now (it is also read each time the window shows)."""
        apply_theme(self, self.prefs)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.follow_theme()
        if not self.timer.isActive():
            self.bridge.watchers += 1  # live CPU, memory, uptime: a full refresh each tick
        self.timer.start()
        self.fetch_current()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.prefs.setValue(GEOMETRY_KEY, self.saveGeometry())
        if self.timer.isActive():
            self.bridge.watchers -= 1
        self.timer.stop()
