"""The Budgets tab: a bar per budget, coloured by its warning thresholds."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from desktop.bridge import Json
from desktop.dashboard.looks import bold
from desktop.models import local_time

LEVEL_COLORS = {"ok": "#2e7d32", "warn": "#f9a825", "high": "#ef6c00", "spent": "#c62828"}


def budget_level(budget: Json) -> str:
    """'ok', 'warn' (past the first warning), 'high' (past the last) or 'spent'."""
    percent, warn = budget["percent"], sorted(budget["warn"])
    if percent >= 100:
        return "spent"
    if warn and percent >= warn[-1]:
        return "high"
    if warn and percent >= warn[0]:
        return "warn"
    return "ok"


def budget_usage(budget: Json) -> str:
    """'412,300 / 400,000 tokens, $1.20 / $5.00' (the limits it has)."""
    parts = []
    if budget["limit_tokens"]:
        parts.append(f"{budget['used_tokens']:,} / {budget['limit_tokens']:,} tokens")
    if budget["limit_usd"]:
        parts.append(f"${budget['used_usd']:,.2f} / ${budget['limit_usd']:,.2f}")
    return ", ".join(parts)


class BudgetRow(QFrame):
    """One budget: a progress bar coloured by its warning thresholds, and its numbers."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.name = QLabel()
        bold(self.name)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)  # tenths of a percent
        self.usage = QLabel()
        self.resets = QLabel()
        self.exhaustion = QLabel()
        self.level = ""
        grid = QGridLayout(self)
        grid.addWidget(self.name, 0, 0)
        grid.addWidget(self.usage, 0, 1, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.bar, 1, 0, 1, 2)
        grid.addWidget(self.resets, 2, 0)
        grid.addWidget(self.exhaustion, 2, 1, Qt.AlignmentFlag.AlignRight)

    def show_budget(self, budget: Json) -> None:
        percent = budget["percent"]
        scope = budget.get("shown_scope") or budget["scope"]  # an account by its label
        period, action = budget["period"], budget["action"]
        self.name.setText(f"{scope} {period} (at the limit: {action})")
        self.bar.setAccessibleName(f"Budget {scope} {period}")
        self.bar.setValue(round(min(percent, 100.0) * 10))
        self.bar.setFormat(f"{percent:.1f}%")
        self.usage.setText(budget_usage(budget))
        if budget["resets_at"]:
            self.resets.setText(f"resets at {local_time(budget['resets_at'])}")
        else:
            self.resets.setText("no block running")
        exhaustion = budget["projected_exhaustion_at"]
        self.exhaustion.setText(
            f"projected exhaustion: {local_time(exhaustion)}" if exhaustion else ""
        )
        level = budget_level(budget)
        if level != self.level:
            self.level = level
            self.bar.setStyleSheet(
                f"QProgressBar::chunk {{ background-color: {LEVEL_COLORS[level]}; }}"
            )


class BudgetList(QWidget):
    """A :class:`BudgetRow` per budget, kept across refreshes by (scope, period), and a
    sentence saying what to do while there is none."""

    def __init__(self, empty_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows_layout = QVBoxLayout(self)
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.empty = QLabel(empty_text)
        self.empty.setWordWrap(True)
        self.rows_layout.addWidget(self.empty)
        self.rows: dict[tuple[str, str], BudgetRow] = {}

    def update_budgets(self, budgets: list[Json]) -> None:
        wanted = {(b["scope"], b["period"]): b for b in budgets}
        for key in [key for key in self.rows if key not in wanted]:
            gone = self.rows.pop(key)
            self.rows_layout.removeWidget(gone)
            gone.deleteLater()
        for position, (key, budget) in enumerate(wanted.items()):
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = BudgetRow()
                self.rows_layout.insertWidget(position + 1, row)
            row.show_budget(budget)
        self.empty.setVisible(not budgets)


class BudgetsTab(QScrollArea):
    """The Budgets page: every budget's :class:`BudgetRow`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        inner = QWidget()
        layout = QVBoxLayout(inner)
        self.list = BudgetList(
            "No budgets. Set one with `stratavore budget set global --period daily --tokens N`."
        )
        layout.addWidget(self.list)
        layout.addStretch(1)
        self.setWidget(inner)
        self.rows = self.list.rows
        self.empty = self.list.empty

    def update_budgets(self, budgets: list[Json]) -> None:
        self.list.update_budgets(budgets)
