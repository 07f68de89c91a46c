"""The tray icon, drawn for each state so it reads at 16 px on light and dark panels."""

from __future__ import annotations

import enum

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPainter, QPalette, QPixmap


class TrayState(enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    ATTENTION = "attention"  # a runner needs the user
    BUDGET = "budget"  # a budget crossed a warning threshold

    @property
    def colour(self) -> QColor:
        return QColor({"idle": "#8a8f98", "running": "#2e9d5b", "attention": "#e08a00",
                       "budget": "#d23c3c"}[self.value])  # fmt: skip


def dark_panel() -> bool:
    """Whether the icon sits on a dark panel: the user's choice in Settings, else the
    desktop's own theme."""
    from desktop.settings import theme

    chosen = theme()
    if chosen != "system":
        return chosen == "dark"
    app = QGuiApplication.instance()
    if app is None:
        return False
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is not None and scheme() != Qt.ColorScheme.Unknown:
        return scheme() == Qt.ColorScheme.Dark
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def tray_icon(state: TrayState, count: int = 0, size: int = 64) -> QIcon:
    """A ring in the state's colour with the number of running runners inside."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    outline = QColor("#f2f2f2") if dark_panel() else QColor("#202020")
    rect = QRectF(size * 0.06, size * 0.06, size * 0.88, size * 0.88)
    painter.setPen(outline)
    painter.setBrush(state.colour)
    painter.drawEllipse(rect)
    if count:
        font = QFont()
        font.setBold(True)
        font.setPixelSize(int(size * (0.55 if count < 10 else 0.42)))
        painter.setFont(font)
        painter.setPen(QColor("white"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(count) if count < 100 else "99+")
    elif state is not TrayState.IDLE:
        painter.setPen(QColor("white"))
        font = QFont()
        font.setBold(True)
        font.setPixelSize(int(size * 0.6))
        painter.setFont(font)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "!")
    painter.end()
    return QIcon(pixmap)
