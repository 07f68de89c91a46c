"""The settings dialog: one tab per page."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTabWidget, QVBoxLayout, QWidget

from desktop import autostart
from desktop.bridge import Bridge
from desktop.settings.budgets import BudgetsPage
from desktop.settings.channels import ChannelsPage
from desktop.settings.general import GeneralPage
from desktop.settings.intervals import IntervalsPage
from desktop.settings.page import Page
from desktop.settings.prefs import preferences
from desktop.settings.profiles import ProfilesPage


class SettingsDialog(QDialog):
    """Stratavore's settings, one tab per subject; each tab reads afresh when shown."""

    theme_changed = Signal(str)  # the icon theme: system | light | dark

    def __init__(
        self,
        bridge: Bridge,
        parent: QWidget | None = None,
        prefs: QSettings | None = None,
        login: autostart.Location | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Stratavore settings")
        self.bridge = bridge
        self.channels = ChannelsPage(bridge)
        self.intervals = IntervalsPage(bridge)
        self.budgets = BudgetsPage(bridge)
        self.profiles = ProfilesPage(bridge)
        self.general = GeneralPage(bridge, prefs if prefs is not None else preferences(), login)
        self.general.theme_changed.connect(self.theme_changed)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.channels, "Notifications")
        self.tabs.addTab(self.intervals, "Intervals")
        self.tabs.addTab(self.budgets, "Budgets")
        self.tabs.addTab(self.profiles, "Profiles")
        self.tabs.addTab(self.general, "General")
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(close)
        self.resize(640, 600)

    @property
    def pages(self) -> list[Page]:
        return [self.channels, self.intervals, self.budgets, self.profiles, self.general]

    @property
    def busy(self) -> bool:
        return any(page.busy for page in self.pages)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        for page in self.pages:
            page.load()
