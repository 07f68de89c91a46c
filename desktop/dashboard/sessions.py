"""The Sessions tab: agent sessions, resumed in a terminal or in the background."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop import empty
from desktop.bridge import Bridge, Json
from desktop.dashboard.tables import selected_rows, table_view
from desktop.empty import EmptyState
from desktop.models import SessionsModel
from desktop.prompt import PromptDialog, ask_prompt
from desktop.terminal import run_in_terminal


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
        self.view = table_view(self.model, 0, Qt.SortOrder.DescendingOrder)
        self.empty = EmptyState(self.view, empty.SESSIONS)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.project = QComboBox()
        self.project.addItem("All projects", None)
        self.project.setAccessibleName("Sessions of which project")
        self.view.setAccessibleName("Agent sessions")
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
        chosen = selected_rows(self.view, self.model)
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
