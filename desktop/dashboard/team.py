"""The Team tab: the team's usage per day stacked by member (or project, or model), the team
budgets with who spent what, and how fresh this machine's view of the team is.

Everything comes from the supervisor's team routes through the bridge (``/team``,
``/team/usage/daily``, ``/team/budgets``): the report is summed by the team database in a
worker thread of the supervisor, never on this GUI thread. A machine in no team gets the
command that joins one.
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.bridge import Bridge, BridgeError, Json
from desktop.charts import DailyChart, days_back, range_choice, stack_by_project
from desktop.dashboard.budgets import BudgetList
from desktop.models import local_time
from desktop.tray import human_tokens

NOT_JOINED = (
    "This machine is in no team. A team shares one ledger on PostgreSQL: every member's usage, "
    "summed per day, and team budgets enforced on every machine. Join one with\n\n"
    "    stratavore team join postgresql://HOST/DB --as NAME\n\n"
    "(docs/team.md explains the set-up)."
)
GROUPS = (("member", "Member"), ("project", "Project"), ("model", "Model"))
NO_GROUP = {"member": "(no member)", "project": "(no project)", "model": "(no model)"}


def freshness(status: Json, problem: str | None = None) -> str:
    """'Team acme as alice: last synced at 14:05:09' and, while pushes fail, since when the
    server is unreachable (``problem``: the report's own refusal, when it had one)."""
    head = f"Team {status['team']} as {status['member']}"
    push, error = status.get("last_push"), status.get("last_error")
    parts = [f"last synced at {local_time(push['at'])}" if push else "not synced yet"]
    if status.get("pending"):
        parts.append(f"{status['pending']:,} changes waiting to be pushed")
    line = f"{head}: {', '.join(parts)}."
    if error:
        since = local_time(error.get("since") or error["at"])
        line += f"\nServer unreachable since {since}: {error['message']}"
    elif problem:
        line += f"\nThe team database did not answer: {problem}"
    return line


def group_totals(report: Json, metric: str) -> list[tuple[str, float]]:
    """Each group's total over the report, largest first."""
    key = "cost_usd" if metric == "cost" else "total_tokens"
    sums: dict[str, float] = {}
    for row in report["rows"]:
        name = row["group"] or NO_GROUP.get(report["by"] or "", "-")
        sums[name] = sums.get(name, 0.0) + row[key]
    return sorted(sums.items(), key=lambda item: (-item[1], item[0]))


def spent_text(value: float, metric: str) -> str:
    return f"${value:,.2f}" if metric == "cost" else f"{human_tokens(int(value))} tokens"


class TeamPanel(QWidget):
    """The Team page. ``wants_fetch`` asks the dashboard for :meth:`fetch` (the range or the
    grouping changed); the metric only redraws the report already fetched."""

    wants_fetch = Signal()

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.joined: bool | None = None  # None: not asked yet
        self.state = QLabel("Asking the supervisor about this machine's team…")
        self.state.setWordWrap(True)
        self.state.setAccessibleName("Team status")
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.range_choice = range_choice()
        self.group_choice = QComboBox()
        self.group_choice.setAccessibleName("Stack by")
        for value, title in GROUPS:
            self.group_choice.addItem(title, value)
        self.metric_choice = QComboBox()
        self.metric_choice.setAccessibleName("Cost or tokens")
        self.metric_choice.addItem("Cost", "cost")
        self.metric_choice.addItem("Tokens", "tokens")
        self.daily = DailyChart()
        self.daily.setAccessibleName("Team usage per day")
        self.totals = QLabel()
        self.totals.setWordWrap(True)
        self.totals.setAccessibleName("Team totals")
        self.budgets = BudgetList(
            "No team budgets. Set one with "
            "`stratavore team budget set team --period monthly --usd 500`."
        )
        self.budgets_state = QLabel("Team budgets")
        self.budgets_state.setWordWrap(True)
        self.budgets_state.setAccessibleName("Team budgets status")
        self.controls = QWidget()
        controls = QHBoxLayout(self.controls)
        controls.setContentsMargins(0, 0, 0, 0)
        for label, box in (("Range:", self.range_choice), ("Stack by:", self.group_choice),
                           ("Show:", self.metric_choice)):  # fmt: skip
            controls.addWidget(QLabel(label))
            controls.addWidget(box)
        controls.addStretch(1)
        self.body = self._body()
        layout = QVBoxLayout(self)
        layout.addWidget(self.state)
        layout.addWidget(self.controls)
        layout.addWidget(self.body, 1)
        self.report: Json | None = None
        self._days: list[str] = []
        self._show_joined(None)
        self.range_choice.currentIndexChanged.connect(lambda _i: self.wants_fetch.emit())
        self.group_choice.currentIndexChanged.connect(lambda _i: self.wants_fetch.emit())
        self.metric_choice.currentIndexChanged.connect(lambda _i: self.redraw())

    def _body(self) -> QSplitter:
        """The chart with its totals above the budgets (scrolled)."""
        chart = QWidget()
        chart_layout = QVBoxLayout(chart)
        chart_layout.setContentsMargins(0, 0, 0, 0)
        chart_layout.addWidget(self.daily, 1)
        chart_layout.addWidget(self.totals)
        inner = QWidget()
        inner_layout = QVBoxLayout(inner)
        inner_layout.addWidget(self.budgets_state)
        inner_layout.addWidget(self.budgets)
        inner_layout.addStretch(1)
        budgets_view = QScrollArea()
        budgets_view.setWidgetResizable(True)
        budgets_view.setWidget(inner)
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(chart)
        body.addWidget(budgets_view)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 2)
        return body

    @property
    def days(self) -> int:
        return int(self.range_choice.currentData())

    @property
    def by(self) -> str:
        return str(self.group_choice.currentData())

    def _show_joined(self, joined: bool | None) -> None:
        self.joined = joined
        self.controls.setVisible(bool(joined))
        self.body.setVisible(bool(joined))

    async def fetch(self) -> None:
        """This machine's team state; joined, the daily report and the team budgets, asked
        at once. A team database that does not answer leaves the last report drawn and says
        so; the supervisor not answering is the window's fetch failure (BridgeError)."""
        status = await self.bridge.team()
        if not status["joined"]:
            self._show_joined(False)
            self.state.setText(NOT_JOINED)
            return
        days = days_back(self.days)
        report, budgets = await asyncio.gather(
            self.bridge.team_usage("daily", since=days[0].isoformat(), by=self.by),
            self.bridge.team_budgets(),
            return_exceptions=True,
        )
        for answer in (report, budgets):
            if isinstance(answer, BaseException) and not isinstance(answer, BridgeError):
                raise answer
        self._show_joined(True)
        problem = report.message if isinstance(report, BridgeError) else None
        self.state.setText(freshness(status, problem))
        if not isinstance(report, BaseException):
            self.show_report(report, [d.isoformat() for d in days])
        if not isinstance(budgets, BaseException):
            self.show_budgets(budgets)

    def show_report(self, report: Json, days: list[str]) -> None:
        self.report, self._days = report, days
        self.redraw()

    def redraw(self) -> None:
        """Draw the report fetched last, in the chosen metric."""
        report = self.report
        if report is None:
            return
        metric = str(self.metric_choice.currentData())
        by = report["by"] or "member"
        rows = [{**row, "project": row["group"] or NO_GROUP.get(by, "-")} for row in report["rows"]]
        stack = stack_by_project(rows, self._days, metric)
        totals = report["totals"]
        whole = totals["cost_usd"] if metric == "cost" else totals["total_tokens"]
        title = f"Team {'cost' if metric == 'cost' else 'tokens'} per day by {by}: "
        self.daily.show_stack(stack, metric, title + spent_text(whole, metric))
        each = group_totals(report, metric)
        self.totals.setText(
            " · ".join(f"{name} {spent_text(value, metric)}" for name, value in each)
            or f"No team usage in the last {self.days} days."
        )

    def show_budgets(self, answer: Json) -> None:
        """The team budgets as the supervisor enforces them, with who spent what."""
        budgets = [{**b, "projected_exhaustion_at": None} for b in answer["budgets"]]
        self.budgets.update_budgets(budgets)
        for budget in answer["budgets"]:
            row = self.budgets.rows[(budget["scope"], budget["period"])]
            row.bar.setAccessibleName(f"Team budget {budget['scope']} {budget['period']}")
            row.exhaustion.setText(
                ", ".join(f"{m['member']} ${m['used_usd']:,.2f}" for m in budget["by_member"])
            )
        if answer["fetched_at"] is None:
            head = "Team budgets: no answer from the team database yet."
        else:
            at = local_time(answer["fetched_at"])
            head = f"Team budgets, as the team database summed them at {at}"
            head += f" (the last known: {answer['stale']})." if answer["stale"] else "."
        self.budgets_state.setText(head)
