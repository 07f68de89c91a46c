"""Opening a runner's folder in the user's code editor (or its file manager): the command
chosen in Settings, else the first well-known editor found on PATH (VS Code, Cursor, Windsurf,
Zed, Sublime Text…), each of which opens a folder given as its argument. The editor is started
detached: the app never waits on it, and it stays open when the app quits.
"""

from __future__ import annotations

import os
import shlex
import shutil

from PySide6.QtCore import QProcess, QSettings, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

EDITOR_KEY = "tools/editor"
# Editors that open a folder given as their one argument, the most used first.
KNOWN = ("code", "cursor", "windsurf", "zed", "subl", "codium", "idea", "pycharm", "kate")


def split_command(text: str) -> list[str]:
    """``text`` split into a program and its arguments as the platform's shell would."""
    return shlex.split(text, posix=os.name != "nt")


def found_editor() -> str | None:
    """The first well-known editor on PATH, as its full path."""
    return next((path for name in KNOWN if (path := shutil.which(name))), None)


def editor_command(prefs: QSettings) -> list[str] | None:
    """The command that opens a folder: the user's choice, else a well-known editor found."""
    chosen = str(prefs.value(EDITOR_KEY, "") or "").strip()
    if chosen:
        return split_command(chosen)
    found = found_editor()
    return [found] if found else None


def check_editor(text: str) -> str | None:
    """Why ``text`` cannot be the editor command (one sentence), or None when it can."""
    try:
        command = split_command(text)
    except ValueError as exc:
        return f"The editor command cannot be read ({exc}): check its quotes."
    return missing(command)


def missing(command: list[str]) -> str | None:
    """The sentence saying that ``command``'s program is not there, or None when it is."""
    if command and shutil.which(command[0]) is None:
        return (f"{command[0]!r} is not a program on PATH: give the editor's full path or "
                "the name of its command-line launcher (for VS Code, 'code').")  # fmt: skip
    return None


def open_in_editor(folder: str, prefs: QSettings) -> str | None:
    """Open ``folder`` in the editor; None once it started, else the sentence saying why not."""
    command = editor_command(prefs)
    if not command:
        return "No code editor was found on PATH: choose one in Settings, General."
    if (why := missing(command)) is not None:
        return why
    started, _pid = QProcess.startDetached(command[0], [*command[1:], folder])
    return None if started else f"{command[0]!r} could not be started."


class OpenButton(QToolButton):
    """ "Open in editor" for one folder at a time, with "Open in file manager" in its menu (one
    compact control: the pane is narrow). ``failed`` carries the sentence when the editor could
    not be opened."""

    failed = Signal(str)

    def __init__(self, prefs: QSettings, what: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prefs = prefs
        self.folder = ""
        editor = QAction("In the code editor", self)
        editor.triggered.connect(self.open_in_editor)
        files = QAction("In the file manager", self)
        files.triggered.connect(self.open_in_file_manager)
        menu = QMenu(self)
        menu.addActions([editor, files])
        self.setMenu(menu)
        self.setText("Open")
        self.setToolTip("Open in the code editor (the arrow offers the file manager)")
        self.clicked.connect(self.open_in_editor)
        self.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.setAccessibleName(f"Open {what} in the code editor, or in the file manager")

    def open_in_editor(self) -> None:
        if self.folder and (why := open_in_editor(self.folder, self.prefs)) is not None:
            self.failed.emit(why)

    def open_in_file_manager(self) -> None:
        if self.folder:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.folder))
