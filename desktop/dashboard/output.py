"""A runner's live output in the window: its log paged through the API (never read from disk
here), ANSI colours rendered, followed as it grows, searchable with Ctrl+F.

The GUI loop must not stall however fast a runner prints: fetched text is queued as lines and
drawn in slices of at most :data:`SLICE_S` seconds by a zero-interval QTimer, so Qt paints,
runs its timers and the asyncio loop between two slices.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections import deque
from typing import Literal

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QHideEvent,
    QKeySequence,
    QShortcut,
    QShowEvent,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.ansi import PLAIN, Style, runs
from desktop.bridge import Bridge, BridgeError, Json, spawn
from desktop.models import FAILURE

POLL_S = 0.5  # how often a shown output asks for more
FIRST_LINES = 2000  # the tail shown first; "Whole log" asks for all of it
MAX_LINES = 200_000  # the oldest lines go past this
TRIM_LINES = 5_000  # ... in cuts of this many at least
SLICE_S = 0.008  # drawing time per slice (Qt then lays the lines out and paints them)
STAMP = len("2026-11-21T21:30:00.123Z ")  # the log pump's time stamp before each line
_minutes: dict[str, str] = {}  # "2026-11-21T21:30" (UTC) -> "22:30" (local)


def local_stamp(line: str) -> tuple[str, str]:
    """A log line's stamp as local 'HH:MM:SS', and its text; ('', line) when unstamped."""
    if len(line) < STAMP or line[STAMP - 2] != "Z" or line[10] != "T":
        return "", line
    minute = line[:16]
    local = _minutes.get(minute)
    if local is None:
        try:
            moment = datetime.datetime.fromisoformat(minute + ":00+00:00").astimezone()
        except ValueError:
            return "", line
        local = _minutes[minute] = moment.strftime("%H:%M")
    return f"{local}:{line[17:19]}", line[STAMP:]


class SearchBar(QWidget):
    """Ctrl+F: find text in the output (Enter: next, Shift+Enter: previous, Escape: close)."""

    def __init__(self, text: QPlainTextEdit, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = text
        self.field = QLineEdit()
        self.field.setPlaceholderText("Find in output")
        self.field.setAccessibleName("Find in output")
        self.previous = QPushButton("Previous")
        self.next = QPushButton("Next")
        self.result = QLabel()
        close = QPushButton("Close")
        close.setAccessibleName("Close the search")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in (self.field, self.previous, self.next, self.result, close):
            row.addWidget(widget)
        self.field.returnPressed.connect(lambda: self.find_match(backward=False))
        self.next.clicked.connect(lambda: self.find_match(backward=False))
        self.previous.clicked.connect(lambda: self.find_match(backward=True))
        close.clicked.connect(self.close_bar)
        QShortcut(QKeySequence("Shift+Return"), self.field, lambda: self.find_match(backward=True))
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.close_bar)
        self.hide()

    def open_bar(self) -> None:
        self.show()
        self.field.setFocus()
        self.field.selectAll()

    def close_bar(self) -> None:
        self.hide()
        self.text.setFocus()

    def find_match(self, backward: bool = False) -> bool:
        """Select the next (or previous) match, wrapping round; whether there is one."""
        pattern = self.field.text()
        if not pattern:
            return False
        flags = QTextDocument.FindFlag.FindBackward if backward else QTextDocument.FindFlag(0)
        found = self.text.find(pattern, flags)
        if not found:
            cursor = self.text.textCursor()
            cursor.movePosition(
                QTextCursor.MoveOperation.End if backward else QTextCursor.MoveOperation.Start
            )
            self.text.setTextCursor(cursor)
            found = self.text.find(pattern, flags)
        self.result.setText("" if found else "not found")
        self.result.setStyleSheet("" if found else f"color: {FAILURE}")
        return found


class OutputView(QWidget):
    """One runner's output, fetched while shown: its last :data:`FIRST_LINES` lines, then
    what it prints, every :data:`POLL_S` seconds. ``Follow`` keeps the newest line in view
    (scrolling up turns it off, scrolling to the end on again)."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setUndoRedoEnabled(False)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setAccessibleName("Runner output")
        self.follow = QCheckBox("Follow")
        self.follow.setChecked(True)
        self.follow.setAccessibleName("Follow the newest output")
        self.whole = QPushButton("Whole log")
        self.whole.setAccessibleName("Load the runner's whole log")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.search = SearchBar(self.text)
        bar = QHBoxLayout()
        bar.addWidget(self.follow)
        bar.addWidget(self.whole)
        bar.addWidget(self.note, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.search)
        layout.addWidget(self.text, 1)
        find = QShortcut(QKeySequence.StandardKey.Find, self, self.search.open_bar)
        find.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.follow.toggled.connect(self._follow_toggled)
        self.text.verticalScrollBar().valueChanged.connect(self._scrolled)
        self.whole.clicked.connect(lambda: self._restart("all"))
        self.runner: Json | None = None
        self._task: asyncio.Task | None = None
        self._pending: deque[str] = deque()
        self._drawing = QTimer(self)  # draws a slice each time Qt's loop comes round
        self._drawing.setInterval(0)
        self._drawing.timeout.connect(self._draw)
        self._style: Style = PLAIN
        self._formats: dict[Style, QTextCharFormat] = {}
        self._stamp_format = QTextCharFormat()
        self._stamp_format.setForeground(QColor("#808080"))
        self._moving = False  # the view scrolls itself: not the user turning Follow off
        self._where: tuple[int, str] | None = None  # (offset, file id) read up to
        self._tail: int | Literal["all"] = FIRST_LINES  # what the first request asks for
        self.max_lines, self.trim_lines = MAX_LINES, TRIM_LINES

    # --- which runner ----------------------------------------------------------------------
    def show_runner(self, runner: Json | None) -> None:
        """Show ``runner``'s output (None: nobody's); the same runner keeps its output."""
        same = runner is not None and self.runner is not None and runner["id"] == self.runner["id"]
        self.runner = runner
        if same:
            return
        self._restart(FIRST_LINES)

    def _restart(self, tail: int | Literal["all"]) -> None:
        self._stop()
        self.text.clear()
        self._pending.clear()
        self._style, self._where = PLAIN, None
        runner = self.runner
        if runner is not None and not runner["supervised"]:
            self.note.setText("It runs in its own terminal: its output is there.")
        else:
            self.note.setText("")
        self._tail = tail
        self._start()

    def _start(self) -> None:
        runner = self.runner
        if runner is None or not runner["supervised"] or not self.isVisible():
            return
        if self._task is None or self._task.done():
            self._task = spawn(self._follow(runner["id"]), self)

    def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._start()
        if self._pending:
            self._drawing.start()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._stop()
        self._drawing.stop()  # what is queued is drawn when shown again

    async def _follow(self, runner_id: int) -> None:
        """Ask for the first lines, then for what follows, while shown."""
        while True:
            try:
                if self._where is None:
                    page = await self.bridge.logs(runner_id, tail=self._tail)
                else:
                    offset, file_id = self._where
                    page = await self.bridge.logs(runner_id, offset=offset, file_id=file_id)
            except BridgeError as exc:
                self.note.setText(exc.message)
            else:
                self._where = (page["offset"], page["file_id"])
                self.feed(page["text"])
            await asyncio.sleep(POLL_S)

    # --- drawing -----------------------------------------------------------------------------
    def feed(self, text: str) -> None:
        """Queue ``text`` (whole lines) to be drawn in slices."""
        if not text:
            return
        self._pending.extend(text.splitlines())
        if self.isVisible():
            self._drawing.start()

    def _draw(self) -> None:
        self.draw_slice()
        if not self._pending:
            self._drawing.stop()

    def draw_slice(self, budget: float = SLICE_S) -> int:
        """Draw queued lines for at most ``budget`` seconds; how many were drawn."""
        deadline = time.perf_counter() + budget
        cursor = QTextCursor(self.text.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.beginEditBlock()
        drawn = 0
        empty = self.text.document().isEmpty()
        while self._pending and (drawn % 16 or time.perf_counter() < deadline):
            line = self._pending.popleft()
            if "\r" in line:  # a progress bar redrawn in place: its last state
                line = line.rsplit("\r", 1)[-1]
            if not empty or drawn:
                cursor.insertBlock()
            stamp, rest = local_stamp(line)
            if stamp:
                cursor.insertText(stamp + " ", self._stamp_format)
            pieces, self._style = runs(rest, self._style)
            for piece, style in pieces:
                cursor.insertText(piece, self._format(style))
            drawn += 1
        cursor.endEditBlock()
        self._trim()
        if self.follow.isChecked():
            self.scroll_to_end()
        return drawn

    def _trim(self) -> None:
        """Once ``trim_lines`` past ``max_lines``, the oldest lines go in one cut.
        Not Qt's own block limit: it removes the oldest line for each line added, 0.3 ms each
        in a long document, which stalls the loop under a fast runner. Cuts of 5,000 lines
        measured best (``bench/output_pane.py``): smaller ones stalled now and then for
        60 ms, larger ones cost more each."""
        document = self.text.document()
        extra = document.blockCount() - self.max_lines
        if extra < self.trim_lines:
            return
        cursor = QTextCursor(document)
        cursor.setPosition(document.findBlockByNumber(extra).position(),
                           QTextCursor.MoveMode.KeepAnchor)  # fmt: skip
        cursor.removeSelectedText()

    def _format(self, style: Style) -> QTextCharFormat:
        fmt = self._formats.get(style)
        if fmt is None:
            fmt = QTextCharFormat()
            fg, bg = (style.bg, style.fg) if style.inverse else (style.fg, style.bg)
            if fg:
                fmt.setForeground(QColor(fg))
            if bg:
                fmt.setBackground(QColor(bg))
            if style.bold:
                fmt.setFontWeight(QFont.Weight.Bold)
            fmt.setFontItalic(style.italic)
            fmt.setFontUnderline(style.underline)
            if style.dim and not fg:
                fmt.setForeground(QColor("#808080"))
            self._formats[style] = fmt
        return fmt

    # --- following ---------------------------------------------------------------------------
    def _follow_toggled(self, on: bool) -> None:
        if on:
            self.scroll_to_end()

    def scroll_to_end(self) -> None:
        bar = self.text.verticalScrollBar()
        self._moving = True
        try:
            bar.setValue(bar.maximum())
        finally:
            self._moving = False

    def _scrolled(self, value: int) -> None:
        if self._moving:
            return
        at_end = value >= self.text.verticalScrollBar().maximum()
        if at_end != self.follow.isChecked():
            self.follow.setChecked(at_end)

    def lines(self) -> list[str]:
        """The lines shown (what a test or a copy sees)."""
        return self.text.toPlainText().splitlines()
