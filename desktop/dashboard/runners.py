"""The Runners page: the runners (active, needing the user, or all, finished ones with their
exit status), what to do with the selected ones, and the selected one's pane beside them."""

from __future__ import annotations

from PySide6.QtCore import (
    QItemSelectionModel,
    QSettings,
    QSortFilterProxyModel,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop import empty
from desktop.bridge import Bridge, BridgeError, Json, needs_user, spawn
from desktop.dashboard.pane import RunnerPane
from desktop.dashboard.tables import selected_rows, table_view
from desktop.empty import EmptyState
from desktop.models import RunnersModel

FINISHED = frozenset({"stopped", "exited", "failed", "fatal", "lost"})
FILTERS = {"active": "Active", "needs": "Needs me", "all": "All (finished too)"}


class RunnersTab(QWidget):
    """The runners behind a filter; Stop, Restart and Open log act on the selected ones, and
    the pane shows the one selected. With the filter on All the page fetches every runner
    while shown (``wants_fetch`` asks the window for :meth:`fetch` when it is chosen)."""

    wants_fetch = Signal()

    def __init__(self, bridge: Bridge, prefs: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.model = RunnersModel(self)
        self.view = table_view(self.model, 0, Qt.SortOrder.AscendingOrder)
        self.view.setAccessibleName("Runners")
        self.empty = EmptyState(self.view, empty.RUNNERS)
        self.filter = QComboBox()
        for key, text in FILTERS.items():
            self.filter.addItem(text, key)
        self.filter.setAccessibleName("Which runners to list")
        self.stop_button = QPushButton("Stop")
        self.restart_button = QPushButton("Restart")
        self.log_button = QPushButton("Open log")
        self.log_button.setAccessibleName("Open the log file in another program")
        buttons = QHBoxLayout()
        for widget in (self.filter, self.stop_button, self.restart_button, self.log_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        self.pane = RunnerPane(bridge, prefs)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        listing = QWidget()
        left = QVBoxLayout(listing)
        left.setContentsMargins(0, 0, 0, 0)
        left.addLayout(buttons)
        left.addWidget(self.view)
        self.split.addWidget(listing)
        self.split.addWidget(self.pane)
        self.split.setStretchFactor(0, 1)
        self.split.setStretchFactor(1, 1)
        QVBoxLayout(self).addWidget(self.split)
        self._everyone: dict[int, Json] = {}  # every runner, as last fetched (filter All)
        # the selected runner after it left the filter (it ended): kept listed, its pane open
        self._kept: Json | None = None
        self.stop_button.clicked.connect(self.stop_selected)
        self.restart_button.clicked.connect(self.restart_selected)
        self.log_button.clicked.connect(self.open_logs)
        self.view.selectionModel().selectionChanged.connect(self._selected)
        self.filter.currentIndexChanged.connect(self._filtered)
        self.view.doubleClicked.connect(lambda _index: self.open_selected())
        for enter in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            opens = QShortcut(QKeySequence(enter), self.view, self.open_selected)
            opens.setContext(Qt.ShortcutContext.WidgetShortcut)
        stops = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.view, self.ask_stop)
        stops.setContext(Qt.ShortcutContext.WidgetShortcut)
        self.confirm: QMessageBox | None = None  # the open "Stop?" question
        self._enable()

    @property
    def chosen(self) -> str:
        """The filter: "active", "needs" or "all"."""
        return str(self.filter.currentData())

    @property
    def fetching(self) -> bool:
        """Whether this page has data to fetch while shown (the finished runners)."""
        return self.chosen == "all"

    def _filtered(self) -> None:
        self._kept = None
        self.view.clearSelection()
        self.update_runners(self.bridge.snapshot.runners)
        if self.fetching:
            self.wants_fetch.emit()

    async def fetch(self) -> None:
        self._everyone = {r["id"]: r for r in await self.bridge.runners(finished=True)}
        self.update_runners(self.bridge.snapshot.runners)

    def update_runners(self, active: list[Json]) -> None:
        """Show the runners the filter lets through: the snapshot's active ones, with the
        finished ones last fetched for All."""
        if self.chosen == "all":
            rows = {**self._everyone, **{r["id"]: r for r in active}}
            shown = [rows[i] for i in sorted(rows)]
        elif self.chosen == "needs":
            shown = [r for r in active if needs_user(r)]
        else:
            shown = list(active)
        ids = {r["id"] for r in shown}
        pane = self.pane.runner
        if pane is not None and pane["id"] not in ids:
            if self._kept is None or self._kept["id"] != pane["id"]:
                self._kept = pane
                spawn(self._refresh_kept(pane["id"]), self)
            shown.append(self._kept)
        self.model.update(shown)
        self._selected()

    async def _refresh_kept(self, runner_id: int) -> None:
        """The kept runner as it is now (it ended: its exit status)."""
        try:
            runner = await self.bridge.runner(runner_id)
        except BridgeError:
            return  # gone: it stays as last seen until another is selected
        if self._kept is not None and self._kept["id"] == runner_id:
            self._kept = runner
            self.update_runners(self.bridge.snapshot.runners)

    def selected(self) -> list[Json]:
        return selected_rows(self.view, self.model)

    def select(self, runner_id: int) -> bool:
        """Select (only) the runner's row and scroll to it; whether it is shown."""
        row = self.model.row_of(runner_id)
        if row is None:
            return False
        proxy = self.view.model()
        assert isinstance(proxy, QSortFilterProxyModel)  # table_view's: see sorted_proxy
        index = proxy.mapFromSource(self.model.index(row, 0))
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

    async def reveal(self, runner_id: int) -> bool:
        """Select the runner, listing all runners first when the filter hides it (a finished
        one); whether it exists."""
        if self.select(runner_id):
            return True
        self.filter.blockSignals(True)
        self.filter.setCurrentIndex(self.filter.findData("all"))
        self.filter.blockSignals(False)
        await self.fetch()
        return self.select(runner_id)

    def _selected(self, *_: object) -> None:
        chosen = self.selected()
        runner = chosen[0] if len(chosen) == 1 else None
        if self._kept is not None and (runner is None or runner["id"] != self._kept["id"]):
            self._kept = None
        self.pane.show_runner(runner)
        self._enable()

    def _enable(self) -> None:
        chosen = self.selected()
        self.stop_button.setEnabled(bool(chosen))
        self.restart_button.setEnabled(bool(chosen))
        self.log_button.setEnabled(any(r["log_path"] for r in chosen))

    def open_selected(self) -> None:
        """Enter: the selected runner's output, with the keyboard in it."""
        if self.pane.runner is not None:
            self.pane.tabs.setCurrentWidget(self.pane.output)
            self.pane.output.text.setFocus()

    def ask_stop(self) -> None:
        """Delete: stop the selected runners once the user confirms."""
        chosen = [r for r in self.selected() if r["state"] not in FINISHED]
        if not chosen:
            return
        what = (
            f"runner #{chosen[0]['id']} ({chosen[0]['project']})"
            if len(chosen) == 1
            else f"{len(chosen)} runners"
        )
        box = QMessageBox(QMessageBox.Icon.Question, "Stop runners", f"Stop {what}?", parent=self)
        box.setInformativeText("Its whole process tree gets the polite signal, then is killed.")
        stop = box.addButton("Stop", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(stop)
        ids = [r["id"] for r in chosen]

        def clicked(button: object) -> None:
            if button is stop:
                self._stop(ids)

        box.buttonClicked.connect(clicked)
        self.confirm = box
        box.open()

    def stop_selected(self) -> None:
        self._stop([r["id"] for r in self.selected()])

    def _stop(self, ids: list[int]) -> None:
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
            spawn(restart(ids), self)

    def open_logs(self) -> None:
        for runner in self.selected():
            if runner["log_path"]:
                QDesktopServices.openUrl(QUrl.fromLocalFile(runner["log_path"]))
