"""The pane beside the runners' list: the selected runner's live output, what it is (command,
profile, folder, exit status, restarts), its session's tokens and cost, its history (the
events about it: states and attention) and, for a runner on its own worktree, its changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.bridge import Bridge, BridgeError, Json, spawn
from desktop.dashboard.changes import ChangesView
from desktop.dashboard.looks import bold
from desktop.dashboard.output import OutputView
from desktop.dashboard.overview import DOT
from desktop.editor import OpenButton
from desktop.icons import state_dot
from desktop.models import FAILURE, local_time, look
from desktop.tray import activity, human_tokens

HISTORY_EVENTS = 2000  # the newest events searched for the runner's history
NOBODY = "Select a runner to see its output, its details and its history."


def exit_status(runner: Json) -> str:
    """'exited with status 3 at 14:02:05', 'running', 'paused: limit, resets 23:00'."""
    state = runner["state"]
    if runner["ended_at"] and state in ("exited", "failed", "fatal", "lost", "stopped"):
        why = runner["reason"] or (
            f"exit status {runner['exit_code']}" if runner["exit_code"] is not None else state
        )
        return f"{state}: {why} at {local_time(runner['ended_at'])}"
    extra = activity(runner)
    return f"{state} ({extra})" if extra and extra != state else state


def history_line(event: Json) -> str:
    return f"{local_time(event['ts'])}  {event['title']}"


class Details(QWidget):
    """What the runner is, its session's use, and its history."""

    def __init__(self, prefs: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        for name in ("Command", "Profile", "Folder", "Branch", "Status", "Restarts", "Session",
                     "Tokens and cost", "Started"):  # fmt: skip
            label = QLabel()
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.fields[name] = label
            form.addRow(f"{name}:", label)
        self.editor = OpenButton(prefs, "the runner's folder")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet(f"color: {FAILURE}")
        self.editor.failed.connect(self.note.setText)
        self.history = QListWidget()
        self.history.setAccessibleName("History: the events about this runner")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        row = QHBoxLayout()
        row.addWidget(self.editor)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addWidget(self.note)
        layout.addWidget(QLabel("History:"))
        layout.addWidget(self.history, 1)

    def show_runner(self, runner: Json) -> None:
        values = {
            "Command": " ".join(runner["command"]),
            "Profile": runner["profile"] or "none (a plain command)",
            "Folder": runner["cwd"],
            "Branch": runner["branch"] or "-",
            "Status": exit_status(runner),
            "Restarts": str(runner["restarts"]),
            "Session": runner["session_id"] or "-",
            "Started": local_time(runner["started_at"]),
        }
        for name, value in values.items():
            self.fields[name].setText(value)
        self.editor.folder = runner["cwd"]
        self.editor.setEnabled(Path(runner["cwd"]).is_dir())
        self.note.clear()

    def show_use(self, runner: Json, session: Json | None) -> None:
        if session is not None:
            text = f"{human_tokens(session['tokens'])} tokens, ${session['cost_usd']:,.2f}"
        elif runner["tokens"]:
            text = f"{human_tokens(runner['tokens'])} tokens (its session is not imported yet)"
        else:
            text = "none recorded yet"
        self.fields["Tokens and cost"].setText(text)

    def show_history(self, events: list[Json]) -> None:
        self.history.clear()
        self.history.addItems([history_line(e) for e in events])
        self.history.scrollToBottom()

    def add_history(self, events: list[Json]) -> None:
        self.history.addItems([history_line(e) for e in events])
        self.history.scrollToBottom()


class RunnerPane(QWidget):
    """The selected runner: a header, then Output and Details tabs; a sentence when none is
    selected."""

    def __init__(self, bridge: Bridge, prefs: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.runner: Json | None = None
        self.dot = QLabel()
        self.title = QLabel()
        bold(self.title)
        self.output = OutputView(bridge)
        self.details = Details(prefs)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.output, "Output")
        self.tabs.addTab(self.details, "Details")
        self.changes = ChangesView(bridge, prefs)
        self.tabs.addTab(self.changes, "Changes")
        self.tabs.setTabVisible(2, False)
        self.tabs.setAccessibleName("The selected runner")
        self.nobody = QLabel(NOBODY)
        self.nobody.setWordWrap(True)
        self.nobody.setEnabled(False)
        self.nobody.setAlignment(Qt.AlignmentFlag.AlignCenter)
        shown = QWidget()
        header = QHBoxLayout()
        header.addWidget(self.dot)
        header.addWidget(self.title, 1)
        inner = QVBoxLayout(shown)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addLayout(header)
        inner.addWidget(self.tabs, 1)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.nobody)
        self.stack.addWidget(shown)
        QVBoxLayout(self).addWidget(self.stack)
        self._details_task: asyncio.Task | None = None
        bridge.events.connect(self._new_events)

    def show_runner(self, runner: Json | None) -> None:
        """Show ``runner`` (None: nobody); the same runner again only updates its fields."""
        before = self.runner
        self.runner = runner
        self.output.show_runner(runner)
        self.stack.setCurrentIndex(0 if runner is None else 1)
        if runner is None:
            return
        self.dot.setPixmap(state_dot(look(runner).colour).pixmap(DOT, self.devicePixelRatioF()))
        what = runner["profile"] or Path(runner["command"][0]).name
        self.title.setText(f"#{runner['id']} {runner['project']} · {what} — {runner['state']}")
        self.details.show_runner(runner)
        self.tabs.setTabVisible(2, bool(runner["worktree"]))
        if runner["worktree"]:
            self.changes.show_runner(runner)
        if before is None or before["id"] != runner["id"] or before["state"] != runner["state"]:
            if self._details_task is not None:
                self._details_task.cancel()
            self._details_task = spawn(self.fetch_details(runner), self)

    async def fetch_details(self, runner: Json) -> None:
        """Its session's tokens and cost, and its history, at once."""
        try:
            sessions, events = await asyncio.gather(
                self.bridge.sessions(runner["project"]),
                self.bridge.read_events(last=HISTORY_EVENTS),
            )
        except BridgeError as exc:
            self.details.fields["Tokens and cost"].setText(exc.message)
            return
        if self.runner is None or self.runner["id"] != runner["id"]:
            return
        mine = [s for s in sessions if s["session_id"] == runner["session_id"]]
        self.details.show_use(runner, mine[0] if mine and runner["session_id"] else None)
        self.details.show_history([e for e in events if e["runner_id"] == runner["id"]])

    def _new_events(self, events: list[Json]) -> None:
        if self.runner is not None:
            mine = [e for e in events if e["runner_id"] == self.runner["id"]]
            if mine:
                self.details.add_history(mine)
