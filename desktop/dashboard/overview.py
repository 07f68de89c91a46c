"""The Overview page, the window's first: what needs the user now (a card per runner with its
one next action), today's spend against each budget, the plans' own limits, the last seven
days, and the supervisor's health.

The active runners come from the bridge's snapshot (live); what the snapshot lacks is fetched
while the page is shown: the runners that failed lately, the week's usage, the dead letters.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from PySide6.QtCore import QSettings, QSize, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from desktop.bridge import Bridge, BridgeError, Json, Snapshot, spawn
from desktop.charts import DailyChart, days_back, stack_by_project
from desktop.dashboard.budgets import BudgetList
from desktop.dashboard.looks import bold
from desktop.dashboard.planlimits import PlanLimits
from desktop.icons import state_dot
from desktop.models import FAILED_STATES, FAILURE, local_time, look, parse_time
from desktop.terminal import open_terminal
from desktop.tray import human_tokens, reset_time

WEEK = 7
DOT = QSize(12, 12)  # a card's state dot (drawn for the screen's scale: crisp at 2x)
FAILED_WITHIN_S = 24 * 3600  # a failed runner's card stays this long, or until dismissed
DISMISSED_KEY = "overview/dismissed"  # the failed runners' cards the user put away
DISMISSED_KEPT = 200
OPEN_TERMINAL, RESUME, RESTART, SHOW_OUTPUT = "Open terminal", "Resume", "Restart", "Show output"
# The order of the cards: what blocks an agent first.
KINDS = ("input", "limit", "failed", "backoff", "unresponsive")

NOTHING_NEEDED = (
    "Nothing needs you. Runners that wait for your input, are paused at a provider's limit or "
    "failed show up here, each with what to do next."
)
NO_BUDGET = (
    "No budget set: add one in Settings ▸ Budgets to see today's share of it here and be "
    "warned before it runs out."
)
NO_USAGE = (
    "No usage in the last 7 days. It is read from the agents' own logs every minute: launch "
    "an agent from the tray's Quick launch to see it here."
)


@dataclass(frozen=True)
class Need:
    """Why a runner needs the user (``kind``, one of :data:`KINDS`), in a sentence, and the
    one thing to do about it (the card's button)."""

    kind: str
    sentence: str
    action: str


def need_of(runner: Json) -> Need | None:
    """What a runner needs from the user, or None when it needs nothing."""
    state = runner["state"]
    if state == "paused":
        resets = runner["limit_resets_at"]
        when = f"; the limit resets at {reset_time(resets)}" if resets else ""
        action = RESUME if runner["resumable"] else SHOW_OUTPUT
        return Need("limit", f"Paused at its provider's usage limit{when}.", action)
    if state in FAILED_STATES:
        return Need("failed", failure(runner), RESTART)
    if state == "running" and runner["attention"] == "needs_input":
        since = f" since {local_time(runner['attention_at'])}" if runner["attention_at"] else ""
        # a run in the user's own terminal is answered there; a supervised one shows its output
        action = SHOW_OUTPUT if runner["supervised"] else OPEN_TERMINAL
        return Need("input", f"Waits for your input{since}.", action)
    if state == "backoff":
        why = f" ({runner['reason']})" if runner["reason"] else ""
        return Need("backoff", f"Exited{why}; it is restarted by its policy.", SHOW_OUTPUT)
    if runner["unresponsive"]:
        sentence = "Unresponsive: no heartbeat in time, or its process is stopped."
        return Need("unresponsive", sentence, SHOW_OUTPUT)
    return None


def failure(runner: Json) -> str:
    """A failed runner's end in a sentence: 'Failed at 14:02: exited with status 3.'"""
    ended = local_time(runner["ended_at"])
    if runner["state"] == "lost":
        return f"Lost at {ended}: it ended while no supervisor was watching."
    why = runner["reason"] or (
        f"exited with status {runner['exit_code']}" if runner["exit_code"] is not None else ""
    )
    verb = "Gave up" if runner["state"] == "fatal" else "Failed"
    return f"{verb} at {ended}" + (f": {why}." if why else ".")


def needing(
    active: list[Json], everyone: list[Json], dismissed: set[int], now: float
) -> list[tuple[Json, Need]]:
    """The cards: the active runners that need the user, then those that failed within
    :data:`FAILED_WITHIN_S` and were not dismissed, by kind (what blocks first), then id."""
    shown = {r["id"]: r for r in active}
    for runner in everyone:
        ended = parse_time(runner["ended_at"])
        recent = ended is not None and now - ended.timestamp() < FAILED_WITHIN_S
        if runner["state"] in FAILED_STATES and recent and runner["id"] not in dismissed:
            shown.setdefault(runner["id"], runner)
    cards = [(r, need) for r in shown.values() if (need := need_of(r)) is not None]
    return sorted(cards, key=lambda card: (KINDS.index(card[1].kind), card[0]["id"]))


def title_of(runner: Json) -> str:
    what = runner["profile"] or runner["command"][0].rsplit("/", 1)[-1]
    return f"#{runner['id']} {runner['project']} · {what}"


class RunnerCard(QFrame):
    """One runner that needs the user: its state dot, name, why, and its one next action.
    ``acted(action, runner_id)``: a button was pressed (the action's text, or "Dismiss")."""

    acted = Signal(str, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.runner_id = 0
        self.dot = QLabel()
        self.title = QLabel()
        bold(self.title)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sentence = QLabel()
        self.sentence.setWordWrap(True)
        self.action = QPushButton()
        self.dismiss = QPushButton("Dismiss")
        self.dismiss.setFlat(True)
        grid = QGridLayout(self)
        grid.addWidget(self.dot, 0, 0)
        grid.addWidget(self.title, 0, 1)
        grid.addWidget(self.sentence, 1, 1)
        grid.addWidget(self.action, 0, 2, 2, 1, Qt.AlignmentFlag.AlignVCenter)
        grid.addWidget(self.dismiss, 0, 3, 2, 1, Qt.AlignmentFlag.AlignVCenter)
        grid.setColumnStretch(1, 1)
        self.action.clicked.connect(lambda: self.acted.emit(self.action.text(), self.runner_id))
        self.dismiss.clicked.connect(lambda: self.acted.emit("Dismiss", self.runner_id))

    def show_need(self, runner: Json, need: Need) -> None:
        self.runner_id = runner["id"]
        self.dot.setPixmap(state_dot(look(runner).colour).pixmap(DOT, self.devicePixelRatioF()))
        self.title.setText(title_of(runner))
        self.sentence.setText(need.sentence)
        self.action.setText(need.action)
        self.dismiss.setVisible(need.kind == "failed")
        name = title_of(runner)
        self.setAccessibleName(f"{name}: {need.sentence}")
        self.action.setAccessibleName(f"{need.action} runner #{runner['id']}")
        self.dismiss.setAccessibleName(f"Dismiss runner #{runner['id']}")


class Cards(QWidget):
    """The runners that need the user as :class:`RunnerCard`s, reused across refreshes."""

    acted = Signal(str, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.empty = QLabel(NOTHING_NEEDED)
        self.empty.setWordWrap(True)
        self.empty.setEnabled(False)
        self.box.addWidget(self.empty)
        self.cards: list[RunnerCard] = []

    def show_cards(self, cards: list[tuple[Json, Need]]) -> None:
        while len(self.cards) < len(cards):
            card = RunnerCard()
            card.acted.connect(self.acted)
            self.cards.append(card)
            self.box.addWidget(card)
        for card, (runner, need) in zip(self.cards, cards, strict=False):
            card.show_need(runner, need)
        for i, card in enumerate(self.cards):
            card.setVisible(i < len(cards))
        self.empty.setVisible(not cards)

    def shown(self) -> list[RunnerCard]:
        return [card for card in self.cards if not card.isHidden()]


class Health(QWidget):
    """The supervisor's health: the API, the last usage import, storage, dead letters.
    ``open_dead`` asks for the Dead letters page."""

    open_dead = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.api = QLabel("Supervisor: not asked yet")
        self.imported = QLabel()
        self.storage = QLabel()
        self.storage.setStyleSheet(f"color: {FAILURE}")
        self.storage.setWordWrap(True)
        self.dead = QLabel()
        self.dead_button = QPushButton("Show dead letters")
        self.dead_button.setAccessibleName("Show the notifications that could not be delivered")
        self.dead_button.clicked.connect(self.open_dead)
        dead = QHBoxLayout()
        dead.addWidget(self.dead)
        dead.addWidget(self.dead_button)
        dead.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for label in (self.api, self.imported, self.storage):
            layout.addWidget(label)
        layout.addLayout(dead)
        self.show_dead(None)

    def show_status(self, status: Json) -> None:
        if not status:
            return
        self.api.setText(
            f"Supervisor: up (version {status['version']}, {status['active']} active, "
            f"{status['queued']} queued) at {status['api_url']}"
        )
        imported = status.get("usage_imported_at")
        self.imported.setText(
            f"Last usage import: {local_time(imported)}"
            if imported
            else "Last usage import: none yet since the supervisor started"
        )
        self.storage.setText(f"Storage: {status['storage']}" if status.get("storage") else "")
        self.storage.setVisible(bool(status.get("storage")))

    def show_down(self, sentence: str) -> None:
        self.api.setText(f"Supervisor: not answering. {sentence}")

    def show_dead(self, count: int | None) -> None:
        if count is None:
            self.dead.setText("Dead letters: not asked yet")
        elif count:
            self.dead.setText(f"Dead letters: {count} notifications could not be delivered")
        else:
            self.dead.setText("Dead letters: none, every notification was delivered")
        self.dead_button.setVisible(bool(count))


def _section(page: QVBoxLayout, title: str, *widgets: QWidget) -> QGroupBox:
    """A titled group of ``widgets`` added to ``page``."""
    box = QGroupBox(title)
    box.setAccessibleName(title)
    layout = QVBoxLayout(box)
    for widget in widgets:
        layout.addWidget(widget)
    page.addWidget(box)
    return box


class OverviewPage(QScrollArea):
    """The first page. ``open_runner(id)``: show a runner's pane (its output);
    ``open_page(name)``: another page ("dead", "budgets"); ``counted(n)``: the cards shown
    were drawn again (``n`` of them)."""

    open_runner = Signal(int)
    open_page = Signal(str)
    counted = Signal(int)

    def __init__(self, bridge: Bridge, prefs: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.prefs = prefs
        self.setWidgetResizable(True)
        self.cards = Cards()
        self.spend = QLabel()
        font = QFont(self.spend.font())
        font.setPointSizeF(font.pointSizeF() * 1.6)
        self.spend.setFont(font)
        self.budgets = BudgetList(NO_BUDGET)
        self.plan_limits = PlanLimits()
        self.week = DailyChart()
        self.week.setFixedHeight(260)
        self.week_empty = QLabel(NO_USAGE)
        self.week_empty.setWordWrap(True)
        self.week_empty.setEnabled(False)
        self.health = Health()
        inner = QWidget()
        layout = QVBoxLayout(inner)
        self.needs_box = _section(layout, "Needs you", self.cards)
        _section(layout, "Today", self.spend, self.budgets)
        _section(layout, "Plan limits", self.plan_limits)
        _section(layout, "Last 7 days", self.week, self.week_empty)
        _section(layout, "Supervisor", self.health)
        layout.addStretch(1)
        self.setWidget(inner)
        self._everyone: list[Json] = []
        self.cards.acted.connect(self.act)
        self.health.open_dead.connect(lambda: self.open_page.emit("dead"))
        self.week.hide()

    @property
    def dismissed(self) -> set[int]:
        text = str(self.prefs.value(DISMISSED_KEY, "") or "")
        return {int(part) for part in text.split(",") if part.isdigit()}

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self.show_cards(snapshot)
        today = snapshot.today
        self.spend.setText(
            f"${today.get('cost_usd', 0):,.2f} today · "
            f"{human_tokens(today.get('total_tokens'))} tokens"
        )
        self.budgets.update_budgets(snapshot.budgets)
        self.plan_limits.show_limits(snapshot.plan_limits)
        self.health.show_status(snapshot.status)

    def show_cards(self, snapshot: Snapshot | None = None) -> None:
        snapshot = snapshot or self.bridge.snapshot
        cards = needing(snapshot.runners, self._everyone, self.dismissed, time.time())
        self.cards.show_cards(cards)
        self.needs_box.setTitle(f"Needs you ({len(cards)})" if cards else "Needs you")
        self.counted.emit(len(cards))

    @property
    def count(self) -> int:
        """How many cards are shown (the page's tab says it)."""
        return len(self.cards.shown())

    async def fetch(self) -> None:
        """Every runner (for those that failed lately), the week's usage and the dead letters,
        at once; the supervisor's sentence in the health section when it does not answer."""
        days = days_back(WEEK)
        try:
            everyone, week, dead = await asyncio.gather(
                self.bridge.runners(finished=True),
                self.bridge.usage("daily", since=days[0].isoformat(), by_project=1),
                self.bridge.dead_letters(),
            )
        except BridgeError as exc:
            self.health.show_down(exc.message)
            raise
        self._everyone = everyone
        self.show_cards()
        self.health.show_status(self.bridge.snapshot.status)
        self.health.show_dead(len(dead))
        self.show_week(week, [d.isoformat() for d in days])

    def show_week(self, report: Json, days: list[str]) -> None:
        totals = report["totals"]
        used = bool(totals.get("total_tokens") or totals.get("cost_usd"))
        self.week.setVisible(used)
        self.week_empty.setVisible(not used)
        if not used:
            return
        metric = "cost" if totals.get("cost_usd") else "tokens"
        title = f"${totals['cost_usd']:,.2f} and {human_tokens(totals['total_tokens'])} tokens"
        self.week.show_stack(stack_by_project(report["rows"], days, metric), metric, title)

    def act(self, action: str, runner_id: int) -> None:
        """A card's button."""
        if action == "Dismiss":
            kept = sorted(self.dismissed | {runner_id})[-DISMISSED_KEPT:]
            self.prefs.setValue(DISMISSED_KEY, ",".join(map(str, kept)))
            self.show_cards()
        elif action == RESUME:
            spawn(self.bridge.resume(runner_id))
        elif action == RESTART:
            spawn(self.bridge.restart(runner_id))
        elif action == OPEN_TERMINAL:
            runner = next((r for r in self.bridge.snapshot.runners if r["id"] == runner_id), None)
            if runner is not None:
                open_terminal(runner["cwd"])
        else:
            self.open_runner.emit(runner_id)
