"""Draw Stratavore's application icon and write it to ``resources/``: a PNG per size, a
Windows ``.ico`` and a macOS ``.icns``.

    .venv/bin/python installer/make_icons.py

The icons are drawn with QPainter (PySide6 is already a dependency of the tray app, so no
image library is needed) and committed; the build only reads them. The ICO and ICNS
containers hold PNG-compressed images, which every Windows since Vista and every macOS since
10.7 read, and which keep the files small; both are written here, a few lines each, so the
output does not depend on which Qt image plugins are installed.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)  # 256 is the largest an ICO entry can declare
# ICNS element types holding PNG data, by pixel size (the @2x types reuse the larger PNG).
ICNS_TYPES = (
    (b"icp4", 16), (b"icp5", 32), (b"icp6", 64), (b"ic07", 128), (b"ic08", 256), (b"ic09", 512),
    (b"ic11", 32), (b"ic12", 64), (b"ic13", 256), (b"ic14", 512),
)  # fmt: skip

BACKGROUND = ("#2b3140", "#161a22")  # top, bottom of the rounded square
LAYERS = ("#2e9d5b", "#3fb871", "#8fdcaa")  # the strata, bottom to top (the tray's green)


def draw(size: int) -> bytes:
    """The icon at ``size`` pixels, as PNG bytes: layered strata in a rounded square."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter, QPainterPath

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

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError("Qt could not encode a PNG")
    return bytes(data.data())


def ico(pngs: dict[int, bytes]) -> bytes:
    """An ICO file of PNG entries (ICONDIR, one ICONDIRENTRY per size, then the images)."""
    sizes = [s for s in ICO_SIZES if s in pngs]
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, images = b"", b""
    for s in sizes:
        data = pngs[s]
        side = 0 if s >= 256 else s  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(data), offset)
        images += data
        offset += len(data)
    return header + entries + images


def icns(pngs: dict[int, bytes]) -> bytes:
    """An ICNS file of PNG elements: 'icns', total length, then (type, length, data)."""
    body = b"".join(
        kind + struct.pack(">I", 8 + len(pngs[s])) + pngs[s] for kind, s in ICNS_TYPES if s in pngs
    )
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def write_all(out: Path) -> list[Path]:
    """Draw every size and write the PNGs, the ICO and the ICNS into ``out``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no display needed
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    pngs = {size: draw(size) for size in PNG_SIZES}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for size, data in pngs.items():
        path = out / f"stratavore-{size}.png"
        path.write_bytes(data)
        written.append(path)
    for name, data in (("stratavore.ico", ico(pngs)), ("stratavore.icns", icns(pngs))):
        (out / name).write_bytes(data)
        written.append(out / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESOURCES, help="default: resources/")
    args = parser.parse_args(argv)
    for path in write_all(args.out):
        print(f"{path.stat().st_size:>8,} B  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
