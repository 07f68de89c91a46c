"""Native notifications for the outbox's desktop channel, with Stratavore's own face.

Shown through the platform's own service by desktop-notifier: freedesktop notifications over
DBus on Linux (the app's name, its icon and the ``desktop-entry`` hint of the installed
``stratavore.desktop``), Windows toasts (under the AppUserModelID ``Stratavore``, the one the
installer gives the Start-menu shortcut; desktop-notifier registers its name and icon), and
Notification Center on macOS (which shows the app bundle's own icon). Notifications about a
runner carry its actions ("Open log", "Resume", "Stop") where the service shows buttons; the
tray carries them out, as from its menu.

**Delivered means shown.** Embedded, the dispatcher hands each desktop delivery to
:meth:`Notifier.deliver` from its worker thread, which waits until the notification service
accepted the notification (or the tray's balloon showed it) and otherwise raises
:class:`~supervisor.notify.channels.DesktopNotShown`, so the outbox retries it as it would a
webhook that did not answer. ``QSystemTrayIcon.showMessage`` counts as shown only where Qt
draws it itself (an XEmbed tray, Windows, macOS): on a StatusNotifierItem tray Qt sends it to
the very notification service that just failed. Attached to a headless supervisor, the tray
follows the events through the bridge instead, and the supervisor logs them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import logging
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from desktop_notifier import Button, DesktopNotifier, Icon, Urgency
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QSystemTrayIcon

from desktop.icons import APP_NAME, DESKTOP_ENTRY, app_icon_file
from supervisor.core import paths
from supervisor.notify.channels import DesktopNotShown, Message

log = logging.getLogger("stratavore.desktop")

URGENCY = {"error": Urgency.Critical, "critical": Urgency.Critical, "warning": Urgency.Normal}
SHOW_TIMEOUT_S = 10.0  # how long a delivery waits for the service's answer before a retry
OPEN_LOG, RESUME, STOP = "Open log", "Resume", "Stop"
# The actions a notification about a runner offers, by event type: what a person does next.
_FINISHED = ("exited", "failed", "fatal", "stopped", "lost", "resume_failed", "worktree_kept")
_ACTIVE = ("needs_input", "finished_turn", "idle", "working", "unresponsive", "backoff",
           "running", "starting", "queued", "responsive")  # fmt: skip
ACTIONS: dict[str, tuple[str, ...]] = {
    **{f"runner.{kind}": (OPEN_LOG,) for kind in _FINISHED},
    **{f"runner.{kind}": (OPEN_LOG, STOP) for kind in _ACTIVE},
    "runner.paused": (RESUME, OPEN_LOG, STOP),
    "runner.limit": (RESUME, OPEN_LOG, STOP),
}


def actions_for(message: Message) -> tuple[str, ...]:
    """The buttons of ``message``'s notification: none unless it is about one runner."""
    if message.runner_id is None:
        return ()
    return ACTIONS.get(message.type, ())


def _native(icon: Path) -> DesktopNotifier:
    """desktop-notifier with the app's name and icon; on Linux, with the ``desktop-entry``
    hint too, which desktop-notifier 6 has no option for: GNOME files notifications under the
    app of that name (its settings, its icon), KDE Plasma under its notification settings."""
    notifier = DesktopNotifier(app_name=APP_NAME, app_icon=Icon(path=icon))
    if sys.platform.startswith("linux"):
        from dbus_fast.signature import Variant
        from desktop_notifier.backends.dbus import DBusDesktopNotifier

        class WithDesktopEntry(DBusDesktopNotifier):
            """The DBus backend, adding the hint to every Notify call it makes."""

            async def _init_dbus(self) -> Any:
                try:
                    interface = await super()._init_dbus()
                except Exception:  # no service yet: its next try makes a new connection
                    if getattr(self, "bus", None) is not None:
                        self.bus.disconnect()
                    raise
                # dbus-fast makes call_<method> from the introspection data, at runtime
                notify = interface.call_notify  # type: ignore[attr-defined]

                async def call_notify(*args: Any) -> int:
                    *head, hints, timeout = args
                    value = (
                        DESKTOP_ENTRY
                        if hints and all(isinstance(v, str) for v in hints.values())
                        else Variant("s", DESKTOP_ENTRY)
                    )  # the server's hint type: a{ss} on old ones, a{sv} by the spec
                    return await notify(*head, {**hints, "desktop-entry": value}, timeout)

                interface.call_notify = call_notify  # type: ignore[attr-defined]
                return interface

        if isinstance(notifier._backend, DBusDesktopNotifier):
            notifier._backend = WithDesktopEntry(APP_NAME, Icon(path=icon))
    return notifier


class Notifier(QObject):
    clicked = Signal(dict)  # the subject of a clicked notification: runner_id, project, type
    action_requested = Signal(str, int)  # a notification's button: (OPEN_LOG|RESUME|STOP, id)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.paused_until: float | None = None
        # The tray's icon, for balloons where the native service fails, and whether Qt
        # draws them itself (set by the tray; not on a StatusNotifierItem tray).
        self.fallback: QSystemTrayIcon | None = None
        self.balloons_are_own = sys.platform != "linux"
        self.shown: list[Message] = []  # what was shown (the tests and the dashboard read it)
        self.route: str | None = None  # how the last one was shown: "native" or "tray"
        self.unavailable: str | None = None  # why there is no native service, if there is none
        self._native: DesktopNotifier | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            self._native = _native(app_icon_file(paths.data_dir() / "icons"))
        except Exception as exc:  # no notification service at all on this desktop (Wine)
            self.unavailable = str(exc)
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
        """The desktop channel's subscriber, called from the dispatcher's worker thread:
        returns once ``message`` was shown (or held back while paused); raises
        :class:`DesktopNotShown` otherwise, and the outbox retries."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise DesktopNotShown("the tray app is not running")
        future = asyncio.run_coroutine_threadsafe(self.present(message), loop)
        try:
            future.result(SHOW_TIMEOUT_S + 5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise DesktopNotShown("the tray app did not answer in time") from None

    async def show(self, message: Message) -> bool:
        """Show ``message`` as :meth:`present` does; whether it was shown (a failure is
        logged): for the events the tray follows from a headless supervisor."""
        try:
            await self.present(message)
        except DesktopNotShown as exc:
            log.warning("desktop: notification %r not shown: %s", message.title, exc)
            return False
        return True

    async def present(self, message: Message) -> None:
        """Show ``message``: natively, else as the tray's balloon; raises
        :class:`DesktopNotShown` when neither showed it."""
        if self.paused:
            log.info("desktop: notification held back (paused): %s", message.title)
            return
        why = "no notification service"
        if self._native is not None:
            why = await self._send_native(message)
            if not why:
                self.shown.append(message)
                self.route = "native"
                return
        fallback = self.fallback
        if (
            fallback is not None
            and fallback.isVisible()
            and self.balloons_are_own
            and QSystemTrayIcon.isSystemTrayAvailable()  # an icon in no tray shows no balloon
        ):
            fallback.showMessage(message.title, message.body or message.title)
            self.shown.append(message)
            self.route = "tray"
            return
        raise DesktopNotShown(why)

    async def _send_native(self, message: Message) -> str:
        """'' once the service accepted the notification, else why it did not."""
        assert self._native is not None
        subject = {"runner_id": message.runner_id, "project": message.project,
                   "type": message.type}  # fmt: skip
        on_clicked: Callable[[], Any] = lambda: self.clicked.emit(subject)  # noqa: E731
        buttons = [
            Button(name, on_pressed=partial(self.action_requested.emit, name, message.runner_id))
            for name in actions_for(message)
        ]
        accepted = asyncio.Event()
        # desktop-notifier logs a failure instead of raising it: its on_dispatched callback,
        # called once the service returned the notification's id, is the proof of showing.
        try:
            await asyncio.wait_for(
                self._native.send(
                    title=message.title,
                    message=message.body or message.title,
                    urgency=URGENCY.get(message.severity, Urgency.Low),
                    buttons=buttons,
                    on_clicked=on_clicked,
                    on_dispatched=accepted.set,
                ),
                SHOW_TIMEOUT_S,
            )
        except TimeoutError:
            return f"the notification service did not answer in {SHOW_TIMEOUT_S:.0f} s"
        except Exception as exc:  # a backend that raises after all
            return f"the notification service failed ({exc})"
        if not accepted.is_set():
            log.warning("desktop: the notification service did not take %r", message.title)
            return "the notification service did not take it"
        return ""
