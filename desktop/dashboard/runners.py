"""The Runners tab: the active runners, and what to do with the selected ones."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from desktop import empty
from desktop.bridge import Bridge, Json, spawn
from desktop.dashboard.tables import selected_rows, table_view
from desktop.empty import EmptyState
from desktop.models import RunnersModel


class RunnersTab(QWidget):
    """The active runners; Stop, Restart and Open log act on the selected ones."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.model = RunnersModel(self)
        self.view = table_view(self.model, 0, Qt.SortOrder.AscendingOrder)
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
        return selected_rows(self.view, self.model)

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
