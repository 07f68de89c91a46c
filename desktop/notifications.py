"""Native notifications for the outbox's desktop channel.

Shown through the platform's own service by desktop-notifier (freedesktop notifications over
DBus, Windows toasts, Notification Center). ``QSystemTrayIcon.showMessage`` is only the
fallback: with an XEmbed tray on Linux it draws a Qt balloon, not a system notification.

On Windows a toast carries the app's name and icon when it comes from the app's
AppUserModelID (:data:`APP_ID`): the installer's Start-menu shortcut bears that ID, the tray
app claims it at start (:func:`claim_app_id`), and desktop-notifier registers it with our
icon. Where there is no toast service (Wine), the tray's balloon is what runs.
Embedded, the dispatcher hands desktop deliveries to :meth:`Notifier.deliver` (from its worker
thread); attached to a headless supervisor, the tray follows the events through the bridge.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from desktop_notifier import DesktopNotifier, Icon, Urgency
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QSystemTrayIcon

from desktop.bridge import spawn
from supervisor.notify.channels import Message

log = logging.getLogger("stratavore.desktop")

URGENCY = {"error": Urgency.Critical, "critical": Urgency.Critical, "warning": Urgency.Normal}
APP_ID = "Stratavore"  # Windows' AppUserModelID, also on the Start-menu shortcut (installer)
ICON_FILE = "stratavore-256.png"  # in resources/ (the frozen bundle has a copy)


def app_icon() -> Icon | None:
    """The app's icon as a file, for the notification service; None if it is not there."""
    base = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent.parent))
    path = base / "resources" / ICON_FILE
    return Icon(path=path) if path.is_file() else None


def claim_app_id() -> None:
    """On Windows, make :data:`APP_ID` this process's AppUserModelID, so its toasts and
    taskbar entry are the app's (the shortcut's name and icon), not python.exe's."""
    if sys.platform == "win32":
        import ctypes

        ctypes.windll.shell32.SetCurrentProcessExplicitAppUserModelID(APP_ID)


class Notifier(QObject):
    clicked = Signal(dict)  # the subject of a clicked notification: runner_id, project, type

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.paused_until: float | None = None
        self.fallback: QSystemTrayIcon | None = None
        self.shown: list[Message] = []  # what was shown (the tests and the dashboard read it)
        self.unavailable: str | None = None  # why there are no native notifications here
        self.route: str | None = None  # how the last one went out: "native" or "tray"
        self._native: DesktopNotifier | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        claim_app_id()
        try:
            self._native = DesktopNotifier(app_name=APP_ID, app_icon=app_icon())
        except Exception as exc:  # no notification service at all on this desktop
            self.unavailable = f"{type(exc).__name__}: {exc}"
            log.warning("desktop: native notifications unavailable (%s); using the tray", exc)

    # --- pausing ---------------------------------------------------------------------------
    def pause(self, seconds: float) -> None:
        self.paused_until = time.time() + seconds

    def pause_until_tomorrow(self) -> None:
        tomorrow = datetime.datetime.combine(
            datetime.date.today() + datetime.timedelta(days=1), datetime.time(8, 0)
        )
        self.paused_until = tomorrow.timestamp()

    def resume(self) -> None:
        self.paused_until = None

    @property
    def paused(self) -> bool:
        if self.paused_until is not None and time.time() >= self.paused_until:
            self.paused_until = None
        return self.paused_until is not None

    # --- showing ---------------------------------------------------------------------------
    def deliver(self, message: Message) -> None:
        """The desktop channel's subscriber: called from the dispatcher's worker thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError("the tray app is not running")  # the delivery is retried
        loop.call_soon_threadsafe(lambda: spawn(self.show(message)))

    async def show(self, message: Message) -> None:
        if self.paused:
            log.info("desktop: notification held back (paused): %s", message.title)
            return
        self.shown.append(message)
        subject = {"runner_id": message.runner_id, "project": message.project,
                   "type": message.type}  # fmt: skip
        on_clicked: Callable[[], Any] = lambda: self.clicked.emit(subject)  # noqa: E731
        if self._native is not None:
            try:
                await self._native.send(
                    title=message.title,
                    message=message.body or message.title,
                    urgency=URGENCY.get(message.severity, Urgency.Low),
                    on_clicked=on_clicked,
                )
                self.route = "native"
                return
            except Exception as exc:  # the service went away: the tray's balloon instead
                log.warning("desktop: native notification failed (%s); using the tray", exc)
        if self.fallback is not None:
            self.fallback.showMessage(message.title, message.body or message.title)
            self.route = "tray"
