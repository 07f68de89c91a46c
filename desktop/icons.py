"""Stratavore's faces: the application icon (windows, notifications, the installers' files) and
the tray icon, drawn per state and per size so it reads at 16 px on light and dark panels."""

from __future__ import annotations

import enum
import sys
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QGuiApplication,
    QIcon,
    QImage,
    QLinearGradient,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
)

from supervisor.core import paths

APP_NAME = "Stratavore"  # also the AppUserModelID on Windows (installer/stratavore.nsi.in)
# The freedesktop name of the app: its menu entry (installer/linux/stratavore.desktop,
# installed as applications/stratavore.desktop), the themed icon that entry names, and the
# desktop-entry hint of its notifications.
DESKTOP_ENTRY = "stratavore"
# The tray's sizes, each drawn on its own pixel grid: a panel asks for 16, 22 or 24 px (32
# and 48 at 2x), a Windows taskbar for 16, 20, 24 or 32.
TRAY_SIZES = (16, 20, 22, 24, 32, 40, 48, 64)
APP_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

BACKGROUND = ("#2b3140", "#161a22")  # top, bottom of the application icon's rounded square
LAYERS = ("#2e9d5b", "#3fb871", "#8fdcaa")  # its strata, bottom to top (the tray's green)
# Light and dark edges of the tray icon: each state's disk has both, so it stands out from any
# panel, and the one facing the panel is the wider.
EDGE_DARK, EDGE_LIGHT = QColor("#1a1a1a"), QColor("#f5f5f5")


class TrayState(enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    ATTENTION = "attention"  # a runner needs the user
    BUDGET = "budget"  # a budget crossed a warning threshold

    @property
    def colour(self) -> QColor:
        """The disk's fill: dark enough that white digits on it have a 4.5:1 contrast."""
        return QColor({"idle": "#5f6670", "running": "#1e7d45", "attention": "#b05a00",
                       "budget": "#c42b2b"}[self.value])  # fmt: skip


def dark_panel() -> bool:
    """Whether the icon sits on a dark panel: the user's choice in Settings, else the
    desktop's own theme."""
    from desktop.settings.prefs import theme

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


def tray_pixmap(state: TrayState, count: int, size: int, dark: bool) -> QPixmap:
    """The tray icon at exactly ``size`` pixels: a disk in the state's colour with the number
    of running runners (or '!' when something needs the user) in white, ringed by the
    panel's opposite colour and, inside it, a hairline of the other, all on whole pixels."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    outer = max(1, round(size / 16))  # the edge facing the panel: 1 px at 16, 4 px at 64
    inner = max(1, round(size / 32))
    disk = QRectF(0, 0, size, size)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(EDGE_LIGHT if dark else EDGE_DARK)
    painter.drawEllipse(disk)
    painter.setBrush(EDGE_DARK if dark else EDGE_LIGHT)
    painter.drawEllipse(disk.adjusted(outer, outer, -outer, -outer))
    face = disk.adjusted(outer + inner, outer + inner, -outer - inner, -outer - inner)
    painter.setBrush(state.colour)
    painter.drawEllipse(face)
    text = ""
    if count:
        limit = 9 if size < 32 else 99  # two digits are unreadable below 32 px
        text = str(count) if count <= limit else f"{limit}+"
    elif state is not TrayState.IDLE:
        text = "!"
    if text:
        font = QFont()
        font.setBold(True)
        font.setHintingPreference(QFont.HintingPreference.PreferFullHinting)
        font.setPixelSize(max(8, round(face.height() * (0.78 if len(text) == 1 else 0.5))))
        painter.setFont(font)
        painter.setPen(QPen(QColor("white")))
        painter.drawText(face, Qt.AlignmentFlag.AlignCenter, text)
    painter.end()
    return pixmap


def tray_icon(state: TrayState, count: int = 0, dark: bool | None = None) -> QIcon:
    """The tray icon with a pixmap drawn for each of :data:`TRAY_SIZES`, so the panel picks
    one of its own size instead of scaling a large one down into a blur."""
    dark = dark_panel() if dark is None else dark
    icon = QIcon()
    for size in TRAY_SIZES:
        icon.addPixmap(tray_pixmap(state, count, size, dark))
    return icon


DOT_SIZES = (10, 12, 16, 20, 24, 32)  # a row's or a card's state dot, at 1x and 2x
_dots: dict[str, QIcon] = {}


def state_dot(colour: QColor) -> QIcon:
    """A disk of ``colour`` (a runner's row or card, in the tray's colours: see
    :func:`desktop.models.look`), drawn per size like the tray's, so it is crisp at 1x and
    2x."""
    icon = _dots.get(colour.name())
    if icon is None:
        icon = QIcon()
        for size in DOT_SIZES:
            pixmap = QPixmap(size, size)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            inset = max(1.0, size / 8)
            painter.drawEllipse(QRectF(0, 0, size, size).adjusted(inset, inset, -inset, -inset))
            painter.end()
            icon.addPixmap(pixmap)
        _dots[colour.name()] = icon
    return icon


# --- the application icon --------------------------------------------------------------------
def app_icon_image(size: int) -> QImage:
    """The application icon at ``size`` pixels: layered strata in a rounded square."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    # Small sizes get less margin and fewer details, so they stay legible in a taskbar.
    margin = size * (0.02 if size <= 24 else 0.06)
    square = QRectF(margin, margin, size - 2 * margin, size - 2 * margin)
    gradient = QLinearGradient(QPointF(0, square.top()), QPointF(0, square.bottom()))
    gradient.setColorAt(0, QColor(BACKGROUND[0]))
    gradient.setColorAt(1, QColor(BACKGROUND[1]))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(gradient)
    painter.drawRoundedRect(square, square.width() * 0.22, square.width() * 0.22)

    inner = square.adjusted(*(square.width() * f for f in (0.17, 0.2, -0.17, -0.2)))
    band = inner.height() / 3
    for i, color in enumerate(LAYERS):  # three stacked, slightly slanted strata
        top = inner.bottom() - (i + 1) * band
        gap = band * (0.18 if size > 24 else 0.12)
        tilt = band * 0.35
        path = QPainterPath()
        path.moveTo(inner.left(), top + gap + tilt)
        path.lineTo(inner.right(), top + gap)
        path.lineTo(inner.right(), top + band - tilt)
        path.lineTo(inner.left(), top + band)
        path.closeSubpath()
        painter.setBrush(QColor(color))
        painter.drawPath(path)
    painter.end()
    return image


def app_icon_png(size: int) -> bytes:
    """:func:`app_icon_image` as PNG bytes."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    # PySide6's stub wants bytes for the format; the binding takes a str (and refuses bytes)
    if not app_icon_image(size).save(buffer, "PNG"):  # type: ignore[call-overload]
        raise RuntimeError("Qt could not encode a PNG")
    return bytes(data.data())


def app_icon() -> QIcon:
    """The application icon at every size, for windows and dialogs."""
    icon = QIcon()
    for size in APP_SIZES:
        icon.addPixmap(QPixmap.fromImage(app_icon_image(size)))
    return icon


def app_icon_file(folder: Path, size: int = 256) -> Path:
    """The application icon as a PNG file in ``folder`` (written when missing or different):
    what a notification service is given, since the frozen app carries no loose image files
    and a service reads a path, not pixels."""
    path = folder / f"{DESKTOP_ENTRY}-{size}.png"
    data = app_icon_png(size)
    try:
        if path.read_bytes() == data:
            return path
    except OSError:
        pass
    paths.private_dir(folder)  # in the data dir: private like everything there (same user)
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    with open(temporary, "wb", opener=paths.private_opener) as out:
        out.write(data)
    temporary.replace(path)  # a service reading it never sees half a file
    return path


def apply_identity(app: QGuiApplication) -> None:
    """Give the running app its face: the window icon, the desktop entry (Wayland's app id,
    the hint of Qt's own notifications) and, on Windows, the AppUserModelID the installer
    gives the Start-menu shortcut, so the taskbar and toasts show Stratavore, not Python."""
    app.setWindowIcon(app_icon())
    app.setDesktopFileName(DESKTOP_ENTRY)
    if sys.platform == "win32":
        import ctypes

        ctypes.windll.shell32.SetCurrentProcessExplicitAppUserModelID(APP_NAME)
