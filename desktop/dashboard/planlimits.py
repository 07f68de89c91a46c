"""The plans' own limits on the Overview: a bar per window of each account (Claude Code's
5-hour and 7-day use, Codex's), from the bridge's snapshot."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QLabel, QProgressBar, QWidget

from desktop.bridge import Json
from desktop.dashboard.budgets import LEVEL_COLORS
from supervisor.agents.accounts import shown

NO_PLAN_LIMITS = (
    "No plan limits known yet: Claude Code reports its 5-hour and 7-day use to the runs "
    "Stratavore launches (subscriptions, after a session's first answer), Codex in its logs."
)


def plan_level(used_percent: float) -> str:
    """A window's colour: 'ok', 'warn' (80 %), 'high' (95 %) or 'spent' (100 %)."""
    for level, at in (("spent", 100), ("high", 95), ("warn", 80)):
        if used_percent >= at:
            return level
    return "ok"


def account_name(found: Json) -> str:
    """"Claude ~/.claude": the agent and its config folder, the home folder shortened."""
    return f"{found['agent'].title()} {shown(found['account'])}"


class PlanLimits(QWidget):
    """A row per plan window: the account and window, a bar of its use, and its line
    ("5-hour: 63 %, resets 23:00"); a sentence while none is known."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.empty = QLabel(NO_PLAN_LIMITS)
        self.empty.setWordWrap(True)
        self.grid.addWidget(self.empty, 0, 0, 1, 3)
        self.bars: dict[tuple[str, str], QProgressBar] = {}
        self.lines: dict[tuple[str, str], QLabel] = {}
        self._keys: list[tuple[str, str]] = []

    def show_limits(self, found: list[Json]) -> None:
        keys = [(f["account"], f["window"]) for f in found]
        if keys != self._keys:
            self._lay_out(found)
        for f in found:
            key = (f["account"], f["window"])
            bar = self.bars[key]
            bar.setValue(round(min(f["used_percent"], 100.0) * 10))
            bar.setFormat(f"{f['used_percent']:.0f} %")
            bar.setStyleSheet(
                "QProgressBar::chunk { background-color: "
                f"{LEVEL_COLORS[plan_level(f['used_percent'])]}; }}"
            )
            self.lines[key].setText(f["text"])
        self.empty.setVisible(not found)

    def _lay_out(self, found: list[Json]) -> None:
        """A row per window, in the order given (accounts, then their windows)."""
        for widget in [*self.findChildren(QProgressBar), *self.findChildren(QLabel)]:
            if widget is not self.empty:
                self.grid.removeWidget(widget)
                widget.setParent(None)  # gone from the page now, not at the next event
                widget.deleteLater()
        self.bars, self.lines = {}, {}
        for row, f in enumerate(found, start=1):
            key = (f["account"], f["window"])
            who = QLabel(f"{account_name(f)} · {f['label']}")
            bar = self.bars[key] = QProgressBar()
            bar.setRange(0, 1000)  # tenths of a percent
            bar.setAccessibleName(f"{account_name(f)} {f['label']} limit")
            line = self.lines[key] = QLabel()
            self.grid.addWidget(who, row, 0)
            self.grid.addWidget(bar, row, 1)
            self.grid.addWidget(line, row, 2)
        self._keys = [(f["account"], f["window"]) for f in found]
