"""The tray icon reads at every panel size and on light and dark panels; the app icon is the one
the installers ship. Offscreen: the pixels themselves are checked, and a sheet of every state
at every size on both panels is saved to ``docs/screenshots/tray-icons.png`` to look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtGui import QColor, QImage, QPainter

from desktop.icons import (
    APP_SIZES,
    TRAY_SIZES,
    TrayState,
    app_icon_file,
    app_icon_png,
    tray_icon,
    tray_pixmap,
)
from tests.conftest import REPO

PANELS = {"light": QColor("#eeeeee"), "dark": QColor("#2b2b2b")}


def luminance(colour: QColor) -> float:
    """Relative luminance (WCAG 2)."""

    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + (
        0.0722 * channel(colour.blueF())
    )


def contrast(a: QColor, b: QColor) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def on_panel(state: TrayState, count: int, size: int, panel: str) -> QImage:
    """The icon as the panel shows it: drawn at its size onto the panel's colour."""
    image = QImage(size, size, QImage.Format.Format_RGB32)
    image.fill(PANELS[panel])
    painter = QPainter(image)
    painter.drawPixmap(0, 0, tray_pixmap(state, count, size, dark=panel == "dark"))
    painter.end()
    return image


@pytest.mark.parametrize("state", list(TrayState))
def test_white_figures_stand_out_on_every_state(state: TrayState) -> None:
    assert contrast(QColor("white"), state.colour) >= 4.5


@pytest.mark.parametrize("panel", list(PANELS))
@pytest.mark.parametrize("size", TRAY_SIZES)
@pytest.mark.parametrize("state", list(TrayState))
def test_the_tray_icon_edge_stands_out_from_the_panel(
    qapp: Any, state: TrayState, size: int, panel: str
) -> None:
    image = on_panel(state, 3, size, panel)
    middle = size // 2
    edge = image.pixelColor(QPoint(0, middle))  # the disk's leftmost pixel, on whole pixels
    assert contrast(edge, PANELS[panel]) >= 3, (edge.name(), panel)
    assert image.pixelColor(QPoint(0, 0)) == PANELS[panel]  # round: the corner is the panel's
    # the face holds the state's colour, left of the digit, inside both rings
    rings = max(1, round(size / 16)) + max(1, round(size / 32))
    face = image.pixelColor(QPoint(rings + max(1, size // 16), middle))
    assert contrast(face, state.colour) < 1.3, (face.name(), state.colour.name())


def test_each_tray_size_is_drawn_for_itself_not_scaled(qapp: Any) -> None:
    icon = tray_icon(TrayState.RUNNING, 2, dark=False)
    assert sorted(s.width() for s in icon.availableSizes()) == sorted(TRAY_SIZES)
    for size in TRAY_SIZES:
        drawn = icon.pixmap(size, size).toImage()
        assert drawn.size().width() == size
        assert drawn == tray_pixmap(TrayState.RUNNING, 2, size, dark=False).toImage()


def test_a_count_too_wide_for_a_small_icon_is_capped(qapp: Any) -> None:
    small = tray_pixmap(TrayState.RUNNING, 12, 16, dark=True).toImage()
    capped = tray_pixmap(TrayState.RUNNING, 9, 16, dark=True).toImage()
    assert small != capped  # "9+", not "12" squeezed, nor "9"
    big = tray_pixmap(TrayState.RUNNING, 12, 48, dark=True).toImage()
    assert big != tray_pixmap(TrayState.RUNNING, 99, 48, dark=True).toImage()


def test_the_sheet_of_tray_icons(qapp: Any) -> None:
    """Every state (idle, 3 running, attention, budget) at every size on both panels."""
    cases = [(TrayState.IDLE, 0), (TrayState.RUNNING, 3), (TrayState.RUNNING, 12),
             (TrayState.ATTENTION, 0), (TrayState.BUDGET, 2)]  # fmt: skip
    gap = 8
    width = sum(TRAY_SIZES) + gap * (len(TRAY_SIZES) + 1)
    row = max(TRAY_SIZES) + gap
    sheet = QImage(width, row * len(cases) * 2 + gap, QImage.Format.Format_RGB32)
    painter = QPainter(sheet)
    for p, panel in enumerate(PANELS):
        painter.fillRect(0, p * row * len(cases), width, row * len(cases) + gap, PANELS[panel])
        for c, (state, count) in enumerate(cases):
            x = gap
            y = (p * len(cases) + c) * row + gap
            for size in TRAY_SIZES:
                painter.drawPixmap(x, y + (row - gap - size) // 2,
                                   tray_pixmap(state, count, size, dark=panel == "dark"))
                x += size + gap
    painter.end()
    out = REPO / "docs" / "screenshots" / "tray-icons.png"
    assert sheet.save(str(out))
    assert QImage(str(out)).size() == sheet.size()


def test_the_installers_icons_are_the_apps_icon(qapp: Any, tmp_path: Path) -> None:
    """resources/ (what the installers ship) holds the icon the app draws for its windows
    and notifications: ``installer/make_icons.py`` draws with ``desktop.icons``."""
    for size in APP_SIZES:
        shipped = QImage(str(REPO / "resources" / f"stratavore-{size}.png"))
        drawn = QImage.fromData(app_icon_png(size))
        assert shipped.convertToFormat(drawn.format()) == drawn, size
    path = app_icon_file(tmp_path / "icons")
    assert path.read_bytes() == app_icon_png(256)
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert app_icon_file(tmp_path / "icons") == path  # unchanged: not written again
