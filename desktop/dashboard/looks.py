"""How the window looks and what it remembers: the light or dark palette (the system's, or
the one chosen in Settings), and its size, position, page and the runners' filter and split
(this app's preferences, QSettings)."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QLabel, QWidget

from desktop.settings.prefs import theme

GEOMETRY_KEY = "window/geometry"
PAGE_KEY = "window/page"
FILTER_KEY = "runners/filter"
SPLIT_KEY = "runners/split"

_DARK = {
    QPalette.ColorRole.Window: "#2b2d31",
    QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#1e1f22",
    QPalette.ColorRole.AlternateBase: "#26282c",
    QPalette.ColorRole.ToolTipBase: "#2b2d31",
    QPalette.ColorRole.ToolTipText: "#e6e6e6",
    QPalette.ColorRole.PlaceholderText: "#8c8c8c",
    QPalette.ColorRole.Text: "#e6e6e6",
    QPalette.ColorRole.Button: "#35373c",
    QPalette.ColorRole.ButtonText: "#e6e6e6",
    QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.Light: "#45474d",
    QPalette.ColorRole.Midlight: "#3a3c41",
    QPalette.ColorRole.Mid: "#2f3135",
    QPalette.ColorRole.Dark: "#18191b",
    QPalette.ColorRole.Shadow: "#000000",
    QPalette.ColorRole.Highlight: "#3b78c2",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#6aa7ff",
}
_LIGHT = {
    QPalette.ColorRole.Window: "#efefef",
    QPalette.ColorRole.WindowText: "#1b1b1b",
    QPalette.ColorRole.Base: "#ffffff",
    QPalette.ColorRole.AlternateBase: "#f5f5f5",
    QPalette.ColorRole.ToolTipBase: "#ffffdc",
    QPalette.ColorRole.ToolTipText: "#1b1b1b",
    QPalette.ColorRole.PlaceholderText: "#7a7a7a",
    QPalette.ColorRole.Text: "#1b1b1b",
    QPalette.ColorRole.Button: "#efefef",
    QPalette.ColorRole.ButtonText: "#1b1b1b",
    QPalette.ColorRole.BrightText: "#c62828",
    QPalette.ColorRole.Light: "#ffffff",
    QPalette.ColorRole.Midlight: "#e3e3e3",
    QPalette.ColorRole.Mid: "#b8b8b8",
    QPalette.ColorRole.Dark: "#9f9f9f",
    QPalette.ColorRole.Shadow: "#767676",
    QPalette.ColorRole.Highlight: "#308cc6",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#0b62c4",
}


def bold(label: QLabel) -> None:
    """Make ``label``'s text bold with its font, not a style sheet: a widget styled by a sheet
    keeps the palette it was first polished with, so it would miss the window's dark one."""
    font = QFont(label.font())
    font.setBold(True)
    label.setFont(font)


def palette_for(choice: str) -> QPalette:
    """The palette of ``choice`` ("light" or "dark"); for "system", the application's own
    (Qt follows the desktop's light or dark scheme by itself)."""
    if choice not in ("light", "dark"):
        return QGuiApplication.palette()
    palette = QPalette()
    for role, colour in (_DARK if choice == "dark" else _LIGHT).items():
        palette.setColor(role, QColor(colour))
        disabled = QColor(colour)
        if role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                    QPalette.ColorRole.ButtonText):  # fmt: skip
            disabled.setAlpha(110)
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return palette


def apply_theme(window: QWidget, prefs: QSettings) -> str:
    """Give ``window`` the palette the user chose in Settings (light, dark, or the
    system's); the choice."""
    choice = theme(prefs)
    window.setPalette(palette_for(choice))
    return choice


def restore_geometry(window: QWidget, prefs: QSettings) -> bool:
    """The window's last size and position; whether there were any."""
    saved = prefs.value(GEOMETRY_KEY)
    return isinstance(saved, QByteArray | bytes) and window.restoreGeometry(QByteArray(saved))


def saved_int(prefs: QSettings, key: str, default: int) -> int:
    """An integer preference (QSettings gives strings back from INI files)."""
    value = prefs.value(key, default)
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default
