"""Draw Stratavore's application icon and write it to ``resources/``: a PNG per size, a
Windows ``.ico`` and a macOS ``.icns``.

    .venv/bin/python installer/make_icons.py

The icons are drawn with QPainter by ``desktop.icons`` (the tray app draws the same icon for
its windows and notifications; PySide6 is already its dependency, so no image library is
needed) and committed; the build only reads them. The ICO and ICNS containers hold
PNG-compressed images, which every Windows since Vista and every macOS since 10.7 read, and
which keep the files small; both are written here, a few lines each, so the output does not
depend on which Qt image plugins are installed.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)  # 256 is the largest an ICO entry can declare
# ICNS element types holding PNG data, by pixel size (the @2x types reuse the larger PNG).
ICNS_TYPES = (
    (b"icp4", 16), (b"icp5", 32), (b"icp6", 64), (b"ic07", 128), (b"ic08", 256), (b"ic09", 512),
    (b"ic11", 32), (b"ic12", 64), (b"ic13", 256), (b"ic14", 512),
)  # fmt: skip


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
    if str(ROOT) not in sys.path:  # run as a script from a checkout
        sys.path.insert(0, str(ROOT))
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    from desktop.icons import app_icon_png

    pngs = {size: app_icon_png(size) for size in PNG_SIZES}
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
