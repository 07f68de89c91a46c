"""The Events and Dead letters tabs: the newest events, and the deliveries that gave up."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from desktop import empty
from desktop.bridge import Bridge, Json, spawn
from desktop.dashboard.tables import selected_rows, table_view
from desktop.empty import EmptyState
from desktop.models import DeadLettersModel, EventsModel

EVENTS_SHOWN = 200


class EventsTab(QWidget):
    """The newest events, newest first: fetched while shown, and followed as they come."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.model = EventsModel(self)
        self.view = table_view(self.model, 0, Qt.SortOrder.DescendingOrder)
        self.view.setAccessibleName("Events")
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
        self.view = table_view(self.model, 0, Qt.SortOrder.DescendingOrder)
        self.view.setAccessibleName("Dead letters")
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
        return selected_rows(self.view, self.model)

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
            spawn(retry(ids), self)
