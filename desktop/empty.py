"""Empty states: a table with no rows says what to do next instead of showing a blank grid."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractItemView, QLabel

# What each of the dashboard's tables says while it is empty.
RUNNERS = ("No runner is active. Launch one from the tray's menu (Quick launch ▸ a project ▸ an "
           "agent), or with `stratavore launch PROJECT --profile claude`.")  # fmt: skip
SESSIONS = ("No agent session yet. They appear once an agent ran in one of your projects: "
            "launch one from the tray, or run `stratavore-agent --profile claude`.")  # fmt: skip
EVENTS = "Nothing has happened yet: runners starting, finishing and needing you show up here."
DEAD_LETTERS = "No failed notifications: every notification was delivered."


class EmptyState(QObject):
    """A centred sentence over ``view``'s viewport, shown while its model has no rows."""

    def __init__(self, view: QAbstractItemView, text: str) -> None:
        super().__init__(view)
        self.view = view
        self.label = QLabel(text, view.viewport())
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setEnabled(False)  # the palette's quieter text colour
        model = view.model()
        for signal in (model.rowsInserted, model.rowsRemoved, model.modelReset,
                       model.layoutChanged):  # fmt: skip
            signal.connect(self.update)
        view.viewport().installEventFilter(self)
        self.update()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def _place(self) -> None:
        area = self.view.viewport().rect().adjusted(24, 24, -24, -24)
        self.label.setGeometry(area)

    def update(self, *_: object) -> None:
        self._place()
        self.label.setVisible(self.view.model().rowCount() == 0)
