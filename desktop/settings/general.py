"""The General page: this app's own preferences (start at login, the theme, the code editor)."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QCheckBox, QFormLayout, QLabel, QLineEdit, QWidget

from desktop import autostart
from desktop.bridge import Bridge
from desktop.editor import EDITOR_KEY, check_editor, found_editor
from desktop.settings.page import Page, choose, combo_box
from desktop.settings.prefs import THEME_KEY, THEMES, theme


class GeneralPage(Page):
    """This app's own preferences: start at login, the light or dark theme of its icon and
    windows, and the code editor that opens a runner's folder."""

    theme_changed = Signal(str)

    def __init__(
        self,
        bridge: Bridge,
        prefs: QSettings,
        login: autostart.Location | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(bridge, parent)
        self.prefs = prefs
        self.login = login
        self.at_login = QCheckBox("Start Stratavore when I log in")
        self.at_login.toggled.connect(self._login_toggled)
        self.theme = combo_box(THEMES)
        self.theme.currentIndexChanged.connect(self._theme_chosen)
        form = QFormLayout(self.body)
        form.addRow(self.at_login)
        self.editor = QLineEdit()
        self.editor.setAccessibleName("The command that opens a folder in your code editor")
        self.editor.editingFinished.connect(self._editor_chosen)
        form.addRow("Theme", self.theme)
        note = QLabel("The tray icon is drawn for a light or a dark panel, and the windows take "
                      "the same look; \"Follow the system\" uses the desktop's own.")  # fmt: skip
        note.setWordWrap(True)
        form.addRow(note)
        form.addRow("Code editor", self.editor)

    def load(self) -> None:
        self.at_login.blockSignals(True)
        self.at_login.setChecked(autostart.enabled(self.login))
        self.at_login.blockSignals(False)
        self.theme.blockSignals(True)
        choose(self.theme, theme(self.prefs))
        self.theme.blockSignals(False)
        self.editor.setText(str(self.prefs.value(EDITOR_KEY, "") or ""))
        found = found_editor()
        hint = f"{found} (found on PATH)" if found else "none found on PATH: code, zed, subl…"
        self.editor.setPlaceholderText(hint)

    def _login_toggled(self, on: bool) -> None:
        try:
            if on:
                autostart.enable(where=self.login)
            else:
                autostart.disable(self.login)
        except OSError as exc:
            self.say(f"Could not change how Stratavore starts: {exc}", error=True)
            self.load()
            return
        self.say("Stratavore starts when you log in." if on else "Stratavore no longer "
                 "starts when you log in.")  # fmt: skip

    def _theme_chosen(self) -> None:
        value = self.theme.currentData()
        self.prefs.setValue(THEME_KEY, value)
        self.prefs.sync()
        self.theme_changed.emit(value)

    def _editor_chosen(self) -> None:
        text = self.editor.text().strip()
        if text == str(self.prefs.value(EDITOR_KEY, "") or ""):
            return
        if text and (why := check_editor(text)) is not None:
            self.say(why, error=True)
            return
        self.prefs.setValue(EDITOR_KEY, text)
        self.prefs.sync()
        self.say(
            f"Folders open in {text}." if text else "Folders open in the editor found on PATH."
        )
