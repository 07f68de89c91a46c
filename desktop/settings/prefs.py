"""This app's own preferences (QSettings), not the supervisor's settings: the icon theme.

Read by the tray's icons too (:mod:`desktop.icons`), so it imports no widget.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings

THEME_KEY = "appearance/theme"
THEMES = {"system": "Follow the system", "light": "Light", "dark": "Dark"}


def preferences() -> QSettings:
    """This app's own preferences (not the supervisor's settings)."""
    return QSettings("Stratavore", "Stratavore")


def theme(prefs: QSettings | None = None) -> str:
    """The icon theme the user chose: ``system``, ``light`` or ``dark``."""
    value = (prefs or preferences()).value(THEME_KEY, "system")
    return value if value in THEMES else "system"
