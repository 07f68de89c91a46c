"""Where Linux trays of today are: StatusNotifierItem hosts, watched over DBus.

GNOME (with the AppIndicator extension), KDE Plasma and the wlroots bars (waybar) show tray
icons as StatusNotifierItems over DBus; the XEmbed protocol does not reach them. Qt's
``QSystemTrayIcon`` speaks StatusNotifierItem only if, when the icon object is *made*, the
``org.kde.StatusNotifierWatcher`` service says ``IsStatusNotifierHostRegistered``; an icon
made before the desktop's tray host started (an app started at login, before the panel)
stays an XEmbed icon nobody shows, for good (measured with Qt 6.11). :class:`TrayHosts` says
whether a host is registered now and signals when one appears, so the tray can make its icon
again then. On other systems it never signals.
"""

from __future__ import annotations

import logging
import sys

from PySide6.QtCore import SLOT, QObject, Signal, Slot

log = logging.getLogger("stratavore.desktop")

WATCHER = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
ASK_TIMEOUT_MS = 500  # a local bus answers in a millisecond; a hung watcher must not hang us


class TrayHosts(QObject):
    """The StatusNotifierItem hosts of this session: :meth:`registered` now, and
    :attr:`appeared` when the watcher comes up with a host, or a host registers with it."""

    appeared = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bus = None
        self._service_watcher = None
        if not sys.platform.startswith("linux"):
            return
        from PySide6.QtDBus import QDBusConnection, QDBusServiceWatcher

        bus = QDBusConnection.sessionBus()
        if not bus.isConnected():  # no session bus: no StatusNotifierItem tray either
            return
        self._bus = bus
        self._service_watcher = QDBusServiceWatcher(
            WATCHER, bus, QDBusServiceWatcher.WatchModeFlag.WatchForRegistration, self
        )
        self._service_watcher.serviceRegistered.connect(self._watcher_started)
        # SLOT() gives a str, which the binding takes; the stub wants the slot as bytes
        bus.connect(WATCHER, WATCHER_PATH, WATCHER, "StatusNotifierHostRegistered", self,  # type: ignore[call-overload]
                    SLOT("host_registered()"))  # fmt: skip

    def registered(self) -> bool:
        """Whether a StatusNotifierItem host is registered now (Qt's own test)."""
        if self._bus is None:
            return False
        from PySide6.QtDBus import QDBus, QDBusMessage

        ask = QDBusMessage.createMethodCall(
            WATCHER, WATCHER_PATH, "org.freedesktop.DBus.Properties", "Get"
        )
        ask.setArguments([WATCHER, "IsStatusNotifierHostRegistered"])
        reply = self._bus.call(ask, QDBus.CallMode.Block, ASK_TIMEOUT_MS)
        if reply.type() != QDBusMessage.MessageType.ReplyMessage or not reply.arguments():
            return False
        value = reply.arguments()[0]
        return bool(value.variant() if hasattr(value, "variant") else value)

    def _watcher_started(self, _name: str) -> None:
        if self.registered():
            log.info("desktop: a StatusNotifierItem tray host appeared")
            self.appeared.emit()

    @Slot()
    def host_registered(self) -> None:
        log.info("desktop: a StatusNotifierItem tray host registered")
        self.appeared.emit()
