"""The Changes tab of a runner on its own git worktree: the files it changed with their +/-
counts, each file's diff coloured in its language, and what to do with the work: merge it
into the branch it started from, open its folder, or discard it (after a confirmation).

The git work is the supervisor's (``GET /runners/{id}/diff``, ``POST .../merge``,
``.../discard``); this view only shows and asks.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSettings, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QPalette,
    QShowEvent,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.bridge import Bridge, BridgeError, Json, spawn
from desktop.editor import OpenButton
from desktop.highlight import (
    MAX_HIGHLIGHTED,
    FileDiff,
    kind_of,
    lexer_for,
    look,
    split_files,
    tokens,
)
from desktop.models import FAILURE

# Line backgrounds (light, dark): added, deleted, a hunk's header.
BACKGROUNDS = {
    "add": ("#e6ffec", "#12261e"),
    "del": ("#ffebe9", "#25171c"),
    "hunk": ("#ddf4ff", "#121d2f"),
}
ACTIVE = frozenset({"queued", "starting", "running", "backoff", "stopping", "paused"})


def summary(changes: Json) -> str:
    """'3 files changed, +12 -4 on stratavore/api-7 (from main): 1 commit and uncommitted
    edits'."""
    files = changes["files"]
    added = sum(f["added"] or 0 for f in files)
    deleted = sum(f["deleted"] or 0 for f in files)
    count = f"{len(files)} file{'s' if len(files) != 1 else ''} changed, +{added} -{deleted}"
    base = f" (from {changes['base_branch']})" if changes["base_branch"] else ""
    work = []
    if changes["commits"]:
        work.append(f"{changes['commits']} commit{'s' if changes['commits'] != 1 else ''}")
    if changes["uncommitted"]:
        work.append("uncommitted edits")
    what = f": {' and '.join(work)}" if work else ""
    return f"{count} on {changes['branch']}{base}{what}"


class DiffView(QPlainTextEdit):
    """One file's diff: added and deleted lines on green and red, code in its colours."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setUndoRedoEnabled(False)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setAccessibleName("The selected file's changes")
        self._formats: dict[tuple[str, bool], QTextCharFormat] = {}
        self._shown: FileDiff | None = None

    @property
    def dark(self) -> bool:
        return self.palette().color(QPalette.ColorRole.Base).lightness() < 128

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self._shown is not None:
            self.show_file(self._shown)  # the colours are chosen for a light or dark background

    def show_file(self, diff: FileDiff | None) -> None:
        self._shown = diff
        self.clear()
        if diff is None:
            return
        dark = self.dark
        lexer = lexer_for(diff.path)
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()
        in_hunk = False
        for number, line in enumerate(diff.lines):
            kind = kind_of(line, in_hunk)
            in_hunk = in_hunk or kind == "hunk"
            if number:
                cursor.insertBlock()
            block = QTextBlockFormat()
            if kind in BACKGROUNDS:
                block.setBackground(QColor(BACKGROUNDS[kind][dark]))
            cursor.setBlockFormat(block)
            if kind in ("add", "del", "ctx") and number < MAX_HIGHLIGHTED:
                cursor.insertText(line[:1], self._format("", dark))
                for text, token in tokens(lexer, line[1:]):
                    cursor.insertText(text, self._token_format(token, dark))
            else:
                cursor.insertText(line, self._format("meta" if kind == "meta" else "", dark))
        cursor.endEditBlock()
        self.moveCursor(QTextCursor.MoveOperation.Start)

    def _format(self, name: str, dark: bool) -> QTextCharFormat:
        fmt = self._formats.get((name, dark))
        if fmt is None:
            fmt = self._formats[(name, dark)] = QTextCharFormat()
            if name == "meta":
                fmt.setFontWeight(QFont.Weight.Bold)
        return fmt

    def _token_format(self, token: object, dark: bool) -> QTextCharFormat:
        key = (str(token), dark)
        fmt = self._formats.get(key)
        if fmt is None:
            looks = look(token, dark)  # type: ignore[arg-type]
            fmt = self._formats[key] = QTextCharFormat()
            if looks["color"]:
                fmt.setForeground(QColor(f"#{looks['color']}"))
            if looks["bold"]:
                fmt.setFontWeight(QFont.Weight.Bold)
            fmt.setFontItalic(bool(looks["italic"]))
        return fmt


class ChangesView(QWidget):
    """A runner's worktree: what changed; Merge, Open (editor or file manager), Discard."""

    def __init__(self, bridge: Bridge, prefs: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.runner: Json | None = None
        self.changes: Json | None = None
        self.files: dict[str, FileDiff] = {}
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.merge_button = QPushButton("Merge")
        self.open_button = OpenButton(prefs, "the worktree")
        self.discard_button = QPushButton("Discard…")
        self.discard_button.setAccessibleName("Discard the worktree and its branch")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setAccessibleName("Read the changes again")
        self.list = QTreeWidget()
        self.list.setHeaderLabels(["File", "+", "-"])
        self.list.setRootIsDecorated(False)
        self.list.setAccessibleName("Files changed")
        self.diff = DiffView()
        self.confirm: QMessageBox | None = None
        self._stale = False  # another runner was chosen while hidden: fetch when shown
        self._build()

    def _build(self) -> None:
        buttons = QHBoxLayout()
        for button in (self.merge_button, self.open_button, self.discard_button,
                       self.refresh_button):  # fmt: skip
            buttons.addWidget(button)
        buttons.addStretch(1)
        split = QSplitter(Qt.Orientation.Vertical)  # the pane is narrow: the diff gets its width
        split.addWidget(self.list)
        split.addWidget(self.diff)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        layout.addWidget(self.note)
        layout.addWidget(split, 1)
        self.list.currentItemChanged.connect(self._file_chosen)
        self.merge_button.clicked.connect(lambda: spawn(self.merge(), self))
        self.open_button.failed.connect(lambda why: self._say(why, failure=True))
        self.discard_button.clicked.connect(self.ask_discard)
        self.refresh_button.clicked.connect(lambda: spawn(self.fetch(), self))

    def show_runner(self, runner: Json) -> None:
        """Show ``runner``'s worktree: fetched once shown when it is another runner's."""
        same = self.runner is not None and self.runner["id"] == runner["id"]
        self.runner = runner
        self._enable()
        if not same:
            self.changes = None
            self.list.clear()
            self.diff.show_file(None)
            self.summary.setText("Reading the changes…")
            self._say("")
            self._stale = True
        if self._stale and self.isVisible():
            self._stale = False
            spawn(self.fetch(), self)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale and self.runner is not None:
            self._stale = False
            spawn(self.fetch(), self)

    def _enable(self) -> None:
        runner, changes = self.runner, self.changes
        active = runner is not None and runner["state"] in ACTIVE
        self.merge_button.setEnabled(bool(changes and changes["files"]))
        if changes and changes["base_branch"]:
            self.merge_button.setText(f"Merge into {changes['base_branch']}")
        self.discard_button.setEnabled(changes is not None and not active)
        self.discard_button.setToolTip("Stop the runner first." if active else "")
        self.open_button.setEnabled(changes is not None)
        self.open_button.folder = changes["path"] if changes is not None else ""

    def _say(self, text: str, failure: bool = False) -> None:
        self.note.setText(text)
        self.note.setStyleSheet(f"color: {FAILURE}" if failure else "")
        self.note.setVisible(bool(text))

    async def fetch(self) -> None:
        runner = self.runner
        if runner is None:
            return
        try:
            changes = await self.bridge.diff(runner["id"])
        except BridgeError as exc:
            if self.runner is not None and self.runner["id"] == runner["id"]:
                self.changes = None
                self.summary.setText(exc.message)
                self._enable()
            return
        if self.runner is None or self.runner["id"] != runner["id"]:
            return
        self.show_changes(changes)

    def show_changes(self, changes: Json) -> None:
        self.changes = changes
        self.summary.setText(summary(changes))
        if changes["truncated"]:
            self._say("The diff is too long to show whole: the first 4 MiB are shown.")
        self.files = {f.path: f for f in split_files(changes["patch"])}
        current = self.list.currentItem()
        chosen = current.text(0) if current is not None else None
        self.list.clear()
        for change in changes["files"]:
            binary = change["added"] is None
            item = QTreeWidgetItem([
                change["path"],
                "bin" if binary else f"+{change['added']}",
                "" if binary else f"-{change['deleted']}",
            ])  # fmt: skip
            item.setToolTip(0, {"A": "added", "D": "deleted"}.get(change["status"], "modified"))
            self.list.addTopLevelItem(item)
        for column in (0, 1, 2):
            self.list.resizeColumnToContents(column)
        listed = (self.list.topLevelItem(i) for i in range(self.list.topLevelItemCount()))
        items = [entry for entry in listed if entry is not None]
        pick = next((i for i in items if i.text(0) == chosen), items[0] if items else None)
        if pick is not None:
            self.list.setCurrentItem(pick)
        else:
            self.diff.show_file(None)
        self._enable()

    def _file_chosen(self, item: QTreeWidgetItem | None, _previous: object = None) -> None:
        self.diff.show_file(self.files.get(item.text(0)) if item is not None else None)

    async def merge(self) -> None:
        runner = self.runner
        if runner is None:
            return
        self.merge_button.setEnabled(False)
        try:
            merged = await self.bridge.merge(runner["id"])
        except BridgeError as exc:
            self._say(exc.message, failure=True)
        else:
            self._say(merged["message"])
        await self.fetch()
        await self.bridge.refresh_soon()

    def ask_discard(self) -> None:
        """Discard, once the user confirms: the worktree and its branch are deleted."""
        runner, changes = self.runner, self.changes
        if runner is None or changes is None:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Discard the worktree",
                          f"Discard runner #{runner['id']}'s worktree and branch "
                          f"{changes['branch']}?", parent=self)  # fmt: skip
        box.setInformativeText("Its changes are deleted for good; this cannot be undone.")
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(lambda button: button is discard and spawn(self.discard(), self))
        self.confirm = box
        box.open()

    async def discard(self) -> None:
        runner = self.runner
        if runner is None:
            return
        try:
            done = await self.bridge.discard(runner["id"])
        except BridgeError as exc:
            self._say(exc.message, failure=True)
            return
        self._say(done["message"])
        await self.fetch()
        await self.bridge.refresh_soon()
