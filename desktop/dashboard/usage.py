"""The Usage tab: the range and metric selectors over the charts of :mod:`desktop.charts`,
and the fetch of the reports they draw."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from desktop.bridge import Bridge, Json
from desktop.charts import (
    BLOCK_DAYS,
    BlocksChart,
    BurnChart,
    DailyChart,
    burn_today,
    day_bounds,
    days_back,
    range_choice,
    scope_filter,
    stack_by_project,
    tightest_daily,
)
from desktop.tray import human_tokens


class UsagePanel(QWidget):
    """The Usage tab: a range and metric selector over the three charts.

    ``wants_fetch`` asks the dashboard for :meth:`fetch` (the range changed); the metric only
    redraws the report already fetched.
    """

    wants_fetch = Signal()

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.range_choice = range_choice()
        self.metric_choice = QComboBox()
        self.metric_choice.setAccessibleName("Tokens or cost")
        self.metric_choice.addItem("Tokens", "tokens")
        self.metric_choice.addItem("Cost", "cost")
        self.daily = DailyChart()
        self.burn = BurnChart()
        self.blocks = BlocksChart()
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Range:"))
        controls.addWidget(self.range_choice)
        controls.addWidget(QLabel("Show:"))
        controls.addWidget(self.metric_choice)
        controls.addStretch(1)
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(self.burn)
        lower.addWidget(self.blocks)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.daily)
        split.addWidget(lower)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(split, 1)
        self._daily_report: Json | None = None
        self._days: list[str] = []
        self.range_choice.currentIndexChanged.connect(lambda _i: self.wants_fetch.emit())
        self.metric_choice.currentIndexChanged.connect(lambda _i: self.redraw_daily())

    @property
    def days(self) -> int:
        return int(self.range_choice.currentData())

    async def fetch(self) -> None:
        """Fetch the three reports at once, then draw them."""
        days = days_back(self.days)
        today = days[-1]
        budget = tightest_daily(self.bridge.snapshot.budgets)
        daily, today_blocks, week_blocks = await asyncio.gather(
            self.bridge.usage("daily", since=days[0].isoformat(), by_project=1),
            self.bridge.usage("blocks", since=today.isoformat(), **scope_filter(budget)),
            self.bridge.usage("blocks", since=(today - timedelta(days=BLOCK_DAYS - 1)).isoformat()),
        )
        self.show_reports(daily, [d.isoformat() for d in days], today_blocks, week_blocks, budget)

    def show_reports(
        self,
        daily: Json,
        days: list[str],
        today_blocks: Json,
        week_blocks: Json,
        budget: Json | None,
        now: float | None = None,
    ) -> None:
        now = time.time() if now is None else now
        self.show_daily(daily, days)
        start, end = day_bounds(budget, now)
        self.burn.show_burn(burn_today(today_blocks, budget, now, start, end), budget)
        self.blocks.show_blocks(week_blocks)

    def show_daily(self, report: Json, days: list[str]) -> None:
        self._daily_report, self._days = report, days
        self.redraw_daily()

    def redraw_daily(self) -> None:
        if self._daily_report is None:
            return
        metric = self.metric_choice.currentData()
        stack = stack_by_project(self._daily_report["rows"], self._days, metric)
        totals = self._daily_report["totals"]
        spent = (
            f"${totals['cost_usd']:,.2f}"
            if metric == "cost"
            else f"{human_tokens(totals['total_tokens'])} tokens"
        )
        title = f"{'Cost' if metric == 'cost' else 'Tokens'} per day by project: {spent}"
        self.daily.show_stack(stack, metric, title)
