"""The Budgets page: budgets and their current use, and a form to set or change one."""

from __future__ import annotations

import asyncio
import re

from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from desktop.bridge import Bridge, Json
from desktop.settings.page import (
    FormError,
    Page,
    choose,
    combo_box,
    ends,
    line_edit,
    number_text,
    stack,
)

PERIODS = {"daily": "Daily", "weekly": "Weekly", "monthly": "Monthly", "5h": "5-hour block"}
ACTIONS = {"warn": "Warn only", "block": "Block new launches", "stop": "Block and stop runners"}
THRESHOLDS = "limit_thresholds"  # the setting of plan-limit percentages that notify
BUDGET_COLUMNS = ["Scope", "Period", "Tokens", "USD", "Warn at %", "At 100 %", "Used"]


class BudgetsPage(Page):
    """Budgets and their current use; a form to set or change one."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self.budgets: list[Json] = []
        self.table = QTableWidget(0, len(BUDGET_COLUMNS))
        self.table.setHorizontalHeaderLabels(BUDGET_COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.currentCellChanged.connect(self._selected)

        box = QGroupBox("Set a budget")
        form = QFormLayout(box)
        self.scope = QComboBox()
        self.scope.setEditable(True)
        scope_text = self.scope.lineEdit()
        assert scope_text is not None  # an editable combo box has one
        scope_text.setPlaceholderText("global, project:NAME or agent:NAME")
        self.period = combo_box(PERIODS)
        self.tokens = line_edit("no token limit")
        self.usd = line_edit("no dollar limit")
        self.warn = line_edit("75, 90")
        self.action = combo_box(ACTIONS)
        form.addRow("Scope", self.scope)
        form.addRow("Period", self.period)
        form.addRow("Tokens", self.tokens)
        form.addRow("USD", self.usd)
        form.addRow("Warn at %", self.warn)
        form.addRow("At 100 %", self.action)
        self.save_button = QPushButton("Save budget")
        self.save_button.clicked.connect(self.save)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove)
        self.remove_button.setEnabled(False)
        form.addRow(ends(self.remove_button, self.save_button))
        plan = QGroupBox("Plan limits (the 5-hour and 7-day windows of your subscription)")
        plan_form = QFormLayout(plan)
        self.plan_thresholds = line_edit("80, 95")
        self.plan_save_button = QPushButton("Save")
        self.plan_save_button.clicked.connect(lambda: self.start(self._save_thresholds()))
        plan_form.addRow("Notify at %", self.plan_thresholds)
        plan_form.addRow(ends(QWidget(), self.plan_save_button))
        stack(self.body, self.table, box, plan)

    def load(self) -> None:
        self.start(self._fetch())

    async def _fetch(self) -> None:
        budgets, projects, settings = await asyncio.gather(
            self.bridge.budgets(),
            self.bridge.projects(),
            self.bridge.settings(),
        )
        thresholds = next((s["value"] for s in settings if s["key"] == THRESHOLDS), "")
        self.plan_thresholds.setText(", ".join(filter(None, thresholds.split(","))))
        scope = self.scope.currentText() or "global"
        self.scope.clear()
        self.scope.addItems(["global", *(f"project:{p['name']}" for p in projects)])
        self.scope.setEditText(scope)
        self.budgets = budgets
        self.table.blockSignals(True)
        self.table.setRowCount(len(budgets))
        for row, b in enumerate(budgets):
            cells = [
                b.get("shown_scope") or b["scope"], PERIODS.get(b["period"], b["period"]),
                number_text(b["limit_tokens"]),
                number_text(b["limit_usd"]), ", ".join(number_text(w) for w in b["warn"]),
                ACTIONS.get(b["action"], b["action"]), f"{b['percent']:.0f} %",
            ]  # fmt: skip
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.clearSelection()
        self.table.setCurrentCell(-1, -1)
        self.table.blockSignals(False)
        self.remove_button.setEnabled(False)

    def _selected(self, row: int, *_: int) -> None:
        self.remove_button.setEnabled(0 <= row < len(self.budgets))
        if not 0 <= row < len(self.budgets):
            return
        b = self.budgets[row]
        self.scope.setEditText(b["scope"])
        choose(self.period, b["period"])
        self.tokens.setText(number_text(b["limit_tokens"]))
        self.usd.setText(number_text(b["limit_usd"]))
        self.warn.setText(", ".join(number_text(w) for w in b["warn"]))
        choose(self.action, b["action"])

    def select(self, scope: str, period: str) -> None:
        for row, b in enumerate(self.budgets):
            if (b["scope"], b["period"]) == (scope, period):
                self.table.selectRow(row)
                self.table.setCurrentCell(row, 0)

    def save(self) -> None:
        self.start(self._save())

    async def _save(self) -> None:
        scope, period = self.scope.currentText().strip(), self.period.currentData()
        tokens = _whole(self.tokens.text(), "Tokens")
        usd = _amount(self.usd.text(), "USD")
        warn = None
        if self.warn.text().strip():
            split = re.split(r"[,\s]+", self.warn.text())
            warn = [a for w in split if w and (a := _amount(w, "Warn at %")) is not None]
        await self.bridge.set_budget(scope, period, tokens, usd, self.action.currentData(), warn)
        self.say(f"Saved the {period} budget of {scope}.")
        await self._fetch()

    async def _save_thresholds(self) -> None:
        """The plan-limit percentages that notify (the supervisor checks them)."""
        text = ",".join(part for part in re.split(r"[,\s]+", self.plan_thresholds.text()) if part)
        await self.bridge.set_setting(THRESHOLDS, text)
        self.say(f"Plan limits notify at {text.replace(',', ', ')} %.")

    def remove(self) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self.budgets):
            b = self.budgets[row]
            self.start(self._remove(b["scope"], b["period"]))

    async def _remove(self, scope: str, period: str) -> None:
        await self.bridge.remove_budget(scope, period)
        self.say(f"Removed the {period} budget of {scope}.")
        await self._fetch()


def _whole(text: str, what: str) -> int | None:
    text = text.strip().replace(",", "").replace("_", "")
    if not text:
        return None
    if not text.isdigit():
        raise FormError(f"{what} must be a whole number, e.g. 400000.")
    return int(text)


def _amount(text: str, what: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise FormError(f"{what} must be a number, e.g. 12.50.") from None
