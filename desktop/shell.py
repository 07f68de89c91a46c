"""The running app: the supervisor (embedded, or attached to), the bridge, the tray, the
notifications and the windows, and how they end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMessageBox

from desktop import heap
from desktop.bridge import RETRY_S, Bridge, BridgeError, spawn
from desktop.instance import SingleInstance
from desktop.notifications import Notifier
from desktop.startup import StartupIcon, remember_face
from desktop.tray import Tray, summary, tray_state
from supervisor.core import runtime
from supervisor.daemon import PortInUse, Supervisor
from supervisor.notify import channels
from supervisor.notify.channels import Message
from supervisor.notify.policy import ChannelPolicy

if TYPE_CHECKING:  # imported when first opened (start-up time)
    from desktop.dashboard import Dashboard
    from desktop.settings import SettingsDialog

log = logging.getLogger("stratavore.desktop")
DESKTOP_CHANNEL = "desktop"


class Shell:
    def __init__(
        self,
        root: Path,
        instance: SingleInstance,
        open_dashboard: bool = False,
        startup: StartupIcon | None = None,
    ) -> None:
        self.root = root
        self.startup = startup  # the icon shown while the app starts: the tray takes it over
        if startup is not None:
            startup.quit_action.triggered.connect(lambda: self.quit())
        instance.activated.connect(self._brought_forward)
        self.instance = instance
        self.open_dashboard_at_start = open_dashboard
        self.supervisor: Supervisor | None = None
        self.bridge: Bridge | None = None
        self.notifier = Notifier()
        self.tray: Tray | None = None
        self.dashboard: Dashboard | None = None
        self.settings: SettingsDialog | None = None
        self._done = asyncio.Event()
        self._stop_runners = False
        self._unsubscribe: Callable[[], None] | None = None
        self._channel: asyncio.Task | None = None  # making sure the desktop channel exists
        self._face: tuple[object, ...] | None = None  # the tray's face, as last kept
        self.keep: object = None  # things that must live as long as the app (signal wake-up)

    async def run(self) -> int:
        info = await runtime.attachable(self.root)
        if info is not None:
            log.info("desktop: attached to the supervisor at %s", info.url)
            url, token = info.url, runtime.admin_token(self.root)
        else:
            self.supervisor = await self._embed()
            url, token = self.supervisor.url, runtime.admin_token(self.root)
        assert token is not None
        self.bridge = bridge = Bridge(url, token)
        bridge.start()
        self.notifier.start()
        if self.supervisor is not None:
            # its desktop channel exists since its start; deliveries made before now waited
            self._unsubscribe = channels.subscribe_desktop(self.notifier.deliver)
            assert self.supervisor.dispatcher is not None
            self.supervisor.dispatcher.poke()
        else:
            self._channel = spawn(self._follow_events())
        self.tray = tray = Tray(bridge, self.notifier, startup=self.startup)
        bridge.changed.connect(self._remember_face)
        self.notifier.fallback = tray.icon
        tray.dashboard_requested.connect(self.show_dashboard)
        tray.sessions_requested.connect(self.show_sessions)
        tray.settings_requested.connect(self.show_settings)
        tray.quit_requested.connect(self.ask_quit)
        bridge.failed.connect(lambda text: tray.icon.showMessage("Stratavore", text))
        self.notifier.clicked.connect(self.open_subject)
        if not tray.show():  # the icon shows when a tray appears
            log.warning("desktop: this desktop has no system tray yet; the dashboard stands in")
            self.open_dashboard_at_start = True
        if self.open_dashboard_at_start or self.instance.asked:  # asked while starting
            self.show_dashboard()
        from desktop.welcome import show_if_first_run

        self.welcome = await show_if_first_run(bridge, self.root)
        heap.settle()  # what start-up made lives as long as the app
        await self._done.wait()
        await self.shutdown()
        return 0

    def _remember_face(self) -> None:
        """Keep the tray's face in the data dir when it changed: the next start shows it
        before anything else is ready (:mod:`desktop.startup`)."""
        assert self.bridge is not None
        state, running = tray_state(self.bridge.snapshot)
        face = (state, running, summary(self.bridge.snapshot))
        if face != self._face:
            self._face = face
            remember_face(self.root, *face)

    async def _embed(self) -> Supervisor:
        """The supervisor on this loop, on its configured port or, when another program holds
        that one, on any free port (clients find it through the runtime file either way)."""
        supervisor = Supervisor(self.root, desktop=True)
        try:
            await supervisor.start()
        except PortInUse as exc:
            log.warning("desktop: %s Using a free port instead.", exc)
            supervisor = Supervisor(self.root, desktop=True, api_port=0)
            await supervisor.start()
        return supervisor

    async def _follow_events(self) -> None:
        """Attached to a headless supervisor, which only logs desktop deliveries: make sure a
        desktop channel exists (asking again, 2 s doubling to a minute, while the supervisor
        cannot answer or take it) and show the events its rules select as they come. (An
        embedded supervisor has its channel from its start and hands this app its
        deliveries.)"""
        assert self.bridge is not None
        delay = RETRY_S
        while True:
            try:
                present = await self.bridge.channels()
                desktop = next((c for c in present if c["kind"] == channels.DESKTOP), None)
                if desktop is None:
                    desktop = await self.bridge.put_channel(DESKTOP_CHANNEL, channels.DESKTOP)
                break
            except BridgeError as exc:
                log.warning(
                    "desktop: no desktop channel yet (%s); asking again in %.0f s",
                    exc.message, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
        wanted = ChannelPolicy.from_config(desktop["policy"])

        def follow(events: list[dict]) -> None:
            for event in events:
                if wanted.wants(event["type"], event["severity"]):
                    message = Message(
                        event_id=event["id"], ts=0.0, type=event["type"],
                        severity=event["severity"], title=event["title"], body=event["body"],
                        runner_id=event.get("runner_id"), project=event.get("project"),
                    )  # fmt: skip
                    spawn(self.notifier.show(message))

        self.bridge.events.connect(follow)

    # --- windows ---------------------------------------------------------------------------
    def _brought_forward(self) -> None:
        """Another launch asked for the dashboard: now, or once the app has started."""
        if self.tray is not None:
            self.show_dashboard()

    def show_dashboard(self) -> None:
        from desktop.dashboard import Dashboard

        assert self.bridge is not None
        if self.dashboard is None:
            self.dashboard = Dashboard(self.bridge)
            heap.settle()  # the window lives as long as the app: hidden, never deleted
        self.dashboard.show()
        self.dashboard.raise_()
        self.dashboard.activateWindow()

    def show_sessions(self) -> None:
        self.show_dashboard()
        assert self.dashboard is not None
        self.dashboard.show_sessions()

    def show_settings(self) -> None:
        from desktop.settings import SettingsDialog

        assert self.bridge is not None
        if self.settings is None:
            self.settings = SettingsDialog(self.bridge)
            if self.tray is not None:
                self.settings.theme_changed.connect(lambda _theme: self.tray.update_icon(True))
            self.settings.theme_changed.connect(self._theme_chosen)
        self.settings.show()
        self.settings.raise_()

    def _theme_chosen(self, _theme: str) -> None:
        if self.dashboard is not None:
            self.dashboard.follow_theme()

    def open_subject(self, subject: dict) -> None:
        """A notification was clicked: the runner or budget it is about."""
        self.show_dashboard()
        assert self.dashboard is not None
        if subject.get("runner_id") is not None:
            self.dashboard.show_runner(subject["runner_id"])
        elif str(subject.get("type", "")).startswith("budget."):
            self.dashboard.show_budgets()

    # --- ending ----------------------------------------------------------------------------
    def ask_quit(self) -> None:
        """Quit; with runners active, ask whether to stop them or leave them for adoption."""
        active = len(self.bridge.snapshot.runners) if self.bridge else 0
        if active and self.supervisor is not None:
            box = QMessageBox(QMessageBox.Icon.Question, "Quit Stratavore",
                              f"{active} runners are active.")  # fmt: skip
            box.setInformativeText(
                "Stop them, or leave them running? Stratavore takes them over at its next start."
            )
            stop = box.addButton("Stop runners", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton("Leave running", QMessageBox.ButtonRole.AcceptRole)
            cancel = box.addButton(QMessageBox.StandardButton.Cancel)
            box.exec()
            if box.clickedButton() is cancel:
                return
            self._stop_runners = box.clickedButton() is stop
        self.quit()

    def quit(self, stop_runners: bool | None = None) -> None:
        if stop_runners is not None:
            self._stop_runners = stop_runners
        self._done.set()

    async def shutdown(self) -> None:
        if self._channel is not None:
            self._channel.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.tray is not None:
            self.tray.hide()
        if self.bridge is not None:
            await self.bridge.close()
        if self.supervisor is not None:
            await self.supervisor.stop(stop_runners=self._stop_runners)
        self.instance.close()
