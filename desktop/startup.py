"""The tray icon at once: shown with the face the last run left in the data dir before the
supervisor and the rest of the app are imported and started (:func:`desktop.app.main`), then
handed to the tray (:class:`desktop.tray.Tray`), which keeps the very same icon.

It imports Qt's widgets, the icons and the StatusNotifierItem hosts only: nothing of the
supervisor, no HTTP client.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from desktop.icons import TrayState, tray_icon
from desktop.sni import TrayHosts
from supervisor.core import paths

FACE_FILE = "tray-face.json"  # in the data dir: the icon's last state, count and tooltip
STARTING = "Stratavore is starting…"


def last_face(root: Path) -> tuple[TrayState, int, str]:
    """The state, running count and tooltip the tray showed last (idle when none was kept,
    or the file is not what :func:`remember_face` writes)."""
    try:
        saved = json.loads((root / FACE_FILE).read_text(encoding="utf-8"))
        return TrayState(saved["state"]), int(saved["running"]), str(saved["tip"])
    except (OSError, ValueError, KeyError, TypeError):
        return TrayState.IDLE, 0, "Stratavore"


def remember_face(root: Path, state: TrayState, running: int, tip: str) -> None:
    """Keep what the tray shows for the next start's first moment."""
    face = {"state": state.value, "running": running, "tip": tip}
    paths.write_private(root / FACE_FILE, json.dumps(face))


class StartupIcon:
    """The icon while the app starts: the last face, with a menu that says Stratavore is
    starting and offers Quit (whoever runs the app connects :attr:`quit_action`)."""

    def __init__(self, root: Path) -> None:
        state, running, tip = last_face(root)
        self.hosts = TrayHosts()
        # Qt makes a StatusNotifierItem or an XEmbed icon depending on the hosts as the icon
        # object is made: the tray remembers which (desktop.sni)
        self.on_sni = self.hosts.registered()
        self.menu = QMenu()
        self.menu.addAction(STARTING).setEnabled(False)
        self.quit_action = self.menu.addAction("Quit Stratavore")
        self.icon = QSystemTrayIcon()
        self.icon.setIcon(tray_icon(state, running))
        self.icon.setToolTip(f"{tip}\n{STARTING}")
        self.icon.setContextMenu(self.menu)
        self.icon.show()
