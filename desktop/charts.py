"""The dashboard's usage charts (QtCharts), drawn from the usage reports as the API returns them.

* :class:`DailyChart`: tokens or dollars per day, stacked by project, from
  ``usage/daily?by_project=1``;
* :class:`BurnChart`: today's cumulative tokens against the tightest daily token budget, and
  when the current burn rate would reach it, from ``usage/blocks?since=today``;
* :class:`BlocksChart`: the 5-hour blocks of the last week, the active one highlighted with its
  projection, from ``usage/blocks``.

The dashboard's Usage tab (:mod:`desktop.dashboard.usage`) holds them and fetches the reports.

Speed: a chart takes a whole series of values per call (``QBarSet.append(list)``,
``QLineSeries.replace(list)``), never one point at a time (each such call relayouts the chart),
and keeps its series while the projects stay the same. QtCharts keeps one graphics item per
bar: a year of ten projects by day would be 3,650 of them, half a second to lay out and a few
pixels wide each, so past :data:`DENSE_DAYS` days the daily chart sums each week into one bar
(stacked areas were measured too: filling ten overlapping areas of 365 points costs ~60 ms of
CPU per redraw, bars by week ~10 ms).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from PySide6.QtCharts import (
    QBarSet,
    QCategoryAxis,
    QChart,
    QChartView,
    QDateTimeAxis,
    QLineSeries,
    QStackedBarSeries,
    QValueAxis,
)
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QCursor, QPainter, QPen
from PySide6.QtWidgets import QComboBox, QToolTip, QWidget

from desktop.bridge import Json
from desktop.tray import human_tokens

RANGES = (7, 30, 90, 365)  # days the daily chart can show
DENSE_DAYS = 92  # beyond: a bar per week instead of one per day
BLOCK_DAYS = 7  # the blocks chart shows the last week
OUTSIDE = "(no project)"  # usage not attributed to a project
METRICS = {"tokens": "total_tokens", "cost": "cost_usd"}
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939",
)  # fmt: skip
USED_COLOR = "#1f77b4"
ACTIVE_COLOR = "#ff7f0e"
PROJECTED_COLOR = "#ffd8a8"
LIMIT_COLOR = "#c62828"
_BOTTOM, _LEFT = Qt.AlignmentFlag.AlignBottom, Qt.AlignmentFlag.AlignLeft


def _axes(chart: QChart) -> tuple[QCategoryAxis, QValueAxis]:
    """A category axis of dates at the bottom and a value axis at the left, added to
    ``chart``."""
    x_axis = QCategoryAxis()
    x_axis.setLabelsPosition(QCategoryAxis.AxisLabelsPosition.AxisLabelsPositionOnValue)
    y_axis = QValueAxis()
    y_axis.setLabelFormat("%.3g")
    chart.addAxis(x_axis, _BOTTOM)
    chart.addAxis(y_axis, _LEFT)
    return x_axis, y_axis


# --- data: what to draw, from the report JSON -------------------------------------------------
def range_choice() -> QComboBox:
    """The choice of :data:`RANGES` above a daily chart (30 days first), its data the days."""
    box = QComboBox()
    for days in RANGES:
        box.addItem("1 year" if days == 365 else f"{days} days", days)
    box.setCurrentIndex(1)
    box.setAccessibleName("Range of days")
    return box


def days_back(days: int, today: date | None = None) -> list[date]:
    """The last ``days`` local days, today last."""
    end = today or date.today()
    return [end - timedelta(days=n) for n in range(days - 1, -1, -1)]


@dataclass
class Stack:
    """Per-day values of each project, projects in stacking order (the first at the bottom)."""

    days: list[str]  # YYYY-MM-DD; binned: the first day of each bin
    projects: list[str]
    values: list[list[float]]  # [project][day or bin]
    binned: bool = False

    def peak(self) -> float:
        """The tallest day (or bin)."""
        return max(map(sum, zip(*self.values, strict=True)), default=0.0)

    def by_week(self) -> Stack:
        """Sums of 7 days each from the first day (the last bin: the days so far)."""
        values = [[sum(row[i : i + 7]) for i in range(0, len(row), 7)] for row in self.values]
        return Stack(self.days[::7], self.projects, values, binned=True)


def stack_by_project(rows: Sequence[Json], days: Sequence[str], metric: str) -> Stack:
    """The rows of a ``daily?by_project=1`` report as a :class:`Stack` over ``days`` (days
    without usage are zero); projects by name, usage outside projects on top."""
    key = METRICS[metric]
    at = {day: i for i, day in enumerate(days)}
    width = len(days)
    per: dict[str, list[float]] = {}
    for row in rows:
        i = at.get(row["date"])
        if i is None:
            continue
        name = row["project"] or OUTSIDE
        values = per.get(name)
        if values is None:
            values = per[name] = [0.0] * width
        values[i] += row[key]
    names = sorted(per, key=lambda name: (name == OUTSIDE, name.lower()))
    return Stack(list(days), names, [per[name] for name in names])


def scale_of(peak: float, metric: str) -> tuple[float, str]:
    """A divisor and unit that keep the axis labels short."""
    if metric == "cost":
        return 1.0, "USD"
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if peak >= size:
            return size, f"{unit} tokens"
    return 1.0, "tokens"


def _when(iso: str) -> float:
    """A report timestamp (ISO 8601 with its offset) as epoch seconds."""
    return datetime.datetime.fromisoformat(iso).timestamp()


def _clock(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%H:%M")


def tightest_daily(budgets: Sequence[Json]) -> Json | None:
    """The daily budget with a token limit that is nearest to it, if any."""
    daily = [b for b in budgets if b["period"] == "daily" and b["limit_tokens"]]
    return max(daily, key=lambda b: b["percent"], default=None)


def scope_filter(budget: Json | None) -> dict[str, str]:
    """The report parameters that select a budget's scope (``project:X`` -> ``project=X``)."""
    if budget is None or budget["scope"] == "global":
        return {}
    kind, _, name = budget["scope"].partition(":")
    return {kind: name}


@dataclass
class Burn:
    """Today's cumulative tokens and where the current burn rate takes them.

    Points come from the blocks report of today: the running total is known at each block's
    start and its last response, and the line is straight in between (the blocks report is
    the finest grain the API offers; the daily report has one number per day). The rate of the
    active block, in tokens per minute, extends the line from now: to the limit (the projected
    exhaustion, if it falls before the day ends) or to the end of the day.
    """

    start: float  # the day, epoch seconds
    end: float
    points: list[tuple[float, float]]  # (epoch seconds, tokens so far)
    used: float
    rate: float  # tokens per minute of the active block; 0 when idle
    limit: int | None
    projection: list[tuple[float, float]]
    exhaustion: float | None

    def title(self, budget: Json | None) -> str:
        used = human_tokens(int(self.used))
        if self.limit is None:
            text = f"Today: {used} tokens (no daily token budget)"
        else:
            assert budget is not None
            text = f"Today: {used} of {human_tokens(self.limit)} tokens ({budget['scope']} daily)"
        rate = f"{human_tokens(int(self.rate))} tokens/min"
        if self.limit is not None and self.used >= self.limit:
            return text + ": the limit is reached"
        if self.rate <= 0:
            return text + ": idle"
        if self.exhaustion is not None:
            return text + f"<br>at {rate} the limit is reached at {_clock(self.exhaustion)}"
        if self.limit is not None:
            return text + f"<br>at {rate} the limit holds until the day ends"
        return text + f"<br>burning {rate}"


def burn_today(blocks: Json, budget: Json | None, now: float, start: float, end: float) -> Burn:
    """A :class:`Burn` from a ``blocks?since=today`` report (of the budget's scope)."""
    points = [(start, 0.0)]
    used = rate = 0.0
    for row in blocks["rows"]:
        begin = max(_when(row["block_start"]), start)
        last = min(max(_when(row["last_activity"]), begin), now)
        points.append((begin, used))
        used += row["total_tokens"]
        points.append((last, used))
        if row["active"]:
            rate = float(row["burn_rate_tokens_per_minute"])
    points.append((max(now, points[-1][0]), used))
    limit = budget["limit_tokens"] if budget else None
    projection: list[tuple[float, float]] = []
    exhaustion = None
    if rate > 0 and now < end:
        at_end = used + rate * (end - now) / 60
        if limit is not None and used < limit <= at_end:
            exhaustion = now + (limit - used) / rate * 60
            projection = [(now, used), (exhaustion, float(limit))]
        else:
            projection = [(now, used), (end, at_end)]
    return Burn(start, end, points, used, rate, limit, projection, exhaustion)


def day_bounds(budget: Json | None, now: float) -> tuple[float, float]:
    """Today's start and end: the budget's period if there is one, else local midnights."""
    if budget is not None and budget["period_start"] and budget["resets_at"]:
        return _when(budget["period_start"]), _when(budget["resets_at"])
    today = datetime.date.fromtimestamp(now)
    midnight = datetime.datetime.combine(today, datetime.time())  # naive: local, DST included
    return midnight.timestamp(), (midnight + timedelta(days=1)).timestamp()


# --- drawing ----------------------------------------------------------------------------------
def _color(i: int) -> QColor:
    return QColor(PALETTE[i % len(PALETTE)])


def _label_positions(axis: QCategoryAxis, labels: Sequence[str], most: int = 12) -> None:
    """Put every n-th of ``labels`` (one per index) on ``axis``, at most ``most`` of them."""
    for old in axis.categoriesLabels():
        axis.remove(old)
    step = max(1, -(-len(labels) // most))
    for i in range(0, len(labels), step):
        axis.append(labels[i], i)
    axis.setRange(-0.5, len(labels) - 0.5)


def _nice_top(peak: float) -> float:
    """An upper bound for a value axis a little above ``peak``."""
    return peak * 1.08 if peak > 0 else 1.0


class _ChartView(QChartView):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        chart = QChart()
        chart.legend().setAlignment(_BOTTOM)
        chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        self.setChart(chart)
        self.setMinimumSize(320, 220)


class DailyChart(_ChartView):
    """Tokens or dollars per day (per week past DENSE_DAYS days), stacked by project."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        chart = self.chart()
        self.x_axis, self.y_axis = _axes(chart)
        self.bars: QStackedBarSeries | None = None
        self.bar_sets: list[QBarSet] = []  # in stacking order
        self.shown: Stack | None = None  # as drawn: by day, or by week
        self._projects: tuple[str, ...] | None = None
        self._unit = ""

    def show_stack(self, stack: Stack, metric: str, title: str) -> None:
        """Draw ``stack``, binned by week past DENSE_DAYS days; the bar sets are kept while
        the projects stay the same (a new project rebuilds them)."""
        if len(stack.days) > DENSE_DAYS:
            stack = stack.by_week()
        projects = tuple(stack.projects)
        if projects != self._projects:
            self._rebuild(projects)
        peak = stack.peak()
        scale, self._unit = scale_of(peak, metric)
        for bar_set, values in zip(self.bar_sets, stack.values, strict=True):
            bar_set.remove(0, bar_set.count())
            bar_set.append([v / scale for v in values] if scale != 1.0 else values)
        if self.shown is None or stack.days != self.shown.days:
            labels = [date.fromisoformat(day).strftime("%b %d") for day in stack.days]
            _label_positions(self.x_axis, labels)
        self.shown = stack
        self.y_axis.setRange(0.0, _nice_top(peak / scale))
        self.y_axis.applyNiceNumbers()
        self.y_axis.setTitleText(self._unit)
        self.chart().setTitle(title)

    def _rebuild(self, projects: Sequence[str]) -> None:
        chart = self.chart()
        if self.bars is not None:
            chart.removeSeries(self.bars)
            self.bars.deleteLater()  # and its bar sets
        self.bars = QStackedBarSeries()
        self.bars.setBarWidth(0.8)
        self.bar_sets = []
        for i, name in enumerate(projects):
            bar_set = QBarSet(name)
            bar_set.setColor(_color(i))
            bar_set.setBorderColor(_color(i))
            self.bars.append(bar_set)
            self.bar_sets.append(bar_set)
        self.bars.hovered.connect(self._hovered)
        chart.addSeries(self.bars)
        self.bars.attachAxis(self.x_axis)
        self.bars.attachAxis(self.y_axis)
        self._projects = tuple(projects)

    def _hovered(self, status: bool, index: int, bar_set: QBarSet) -> None:
        if not status or self.shown is None:
            QToolTip.hideText()
            return
        when = self.shown.days[index]
        if self.shown.binned:
            when = f"week of {when}"
        QToolTip.showText(
            QCursor.pos(), f"{bar_set.label()}, {when}: {bar_set.at(index):.3g} {self._unit}"
        )


class BurnChart(_ChartView):
    """Today's cumulative tokens, the tightest daily budget's limit, and the projection."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        chart = self.chart()
        self.used = QLineSeries()
        self.used.setName("used")
        self.used.setPen(QPen(QColor(USED_COLOR), 2))
        self.limit = QLineSeries()
        self.limit.setName("limit")
        self.limit.setPen(QPen(QColor(LIMIT_COLOR), 1.5, Qt.PenStyle.DashLine))
        self.projection = QLineSeries()
        self.projection.setName("at the current rate")
        self.projection.setPen(QPen(QColor(USED_COLOR), 1.5, Qt.PenStyle.DotLine))
        self.x_axis = QDateTimeAxis()
        self.x_axis.setFormat("HH:mm")
        self.y_axis = QValueAxis()
        self.y_axis.setLabelFormat("%.3g")
        chart.addAxis(self.x_axis, _BOTTOM)
        chart.addAxis(self.y_axis, _LEFT)
        for series in (self.used, self.limit, self.projection):
            chart.addSeries(series)
            series.attachAxis(self.x_axis)
            series.attachAxis(self.y_axis)
        self.burn: Burn | None = None

    def show_burn(self, burn: Burn, budget: Json | None) -> None:
        self.burn = burn
        tops = [burn.used, *(y for _, y in burn.projection)]
        if burn.limit is not None:
            tops.append(burn.limit)
        scale, unit = scale_of(max(tops), "tokens")

        def points(pairs: Sequence[tuple[float, float]]) -> list[QPointF]:
            return [QPointF(ts * 1000.0, y / scale) for ts, y in pairs]

        self.used.replace(points(burn.points))
        self.projection.replace(points(burn.projection))
        limit = [] if burn.limit is None else [(burn.start, burn.limit), (burn.end, burn.limit)]
        self.limit.replace(points(limit))
        self.x_axis.setRange(  # PySide6 converts a datetime; the stub lists only QDateTime
            datetime.datetime.fromtimestamp(burn.start),  # type: ignore[arg-type]
            datetime.datetime.fromtimestamp(burn.end),  # type: ignore[arg-type]
        )
        self.y_axis.setRange(0.0, _nice_top(max(tops) / scale))
        self.y_axis.applyNiceNumbers()
        self.y_axis.setTitleText(unit)
        self.chart().setTitle(burn.title(budget))


class BlocksChart(_ChartView):
    """The 5-hour blocks as bars; the active one in its own colour, topped by its projection."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        chart = self.chart()
        self.series = QStackedBarSeries()
        self.series.setBarWidth(0.7)
        self.done = QBarSet("block")
        self.active = QBarSet("active block")
        self.projected = QBarSet("projected")
        for bar_set, color in (
            (self.done, USED_COLOR),
            (self.active, ACTIVE_COLOR),
            (self.projected, PROJECTED_COLOR),
        ):
            bar_set.setColor(QColor(color))
            bar_set.setBorderColor(QColor(color))
            self.series.append(bar_set)
        self.x_axis, self.y_axis = _axes(chart)
        chart.addSeries(self.series)
        self.series.attachAxis(self.x_axis)
        self.series.attachAxis(self.y_axis)

    def show_blocks(self, report: Json) -> None:
        rows = report["rows"]
        peak = max((max(r["total_tokens"], r["projected_total_tokens"]) for r in rows), default=0)
        scale, unit = scale_of(peak, "tokens")
        done, active, projected = [], [], []
        title = f"5-hour blocks, last {BLOCK_DAYS} days"
        for row in rows:
            tokens = row["total_tokens"] / scale
            ahead = max(row["projected_total_tokens"] - row["total_tokens"], 0) / scale
            done.append(0.0 if row["active"] else tokens)
            active.append(tokens if row["active"] else 0.0)
            projected.append(ahead if row["active"] else 0.0)
            if row["active"]:
                title += (
                    f": this block {human_tokens(row['total_tokens'])} tokens, "
                    f"{human_tokens(row['projected_total_tokens'])} projected by "
                    f"{_clock(_when(row['block_end']))}"
                )
        for bar_set, values in (
            (self.done, done),
            (self.active, active),
            (self.projected, projected),
        ):
            bar_set.remove(0, bar_set.count())
            bar_set.append(values)
        labels = [
            datetime.datetime.fromtimestamp(_when(r["block_start"])).strftime("%a %Hh")
            for r in rows
        ]
        _label_positions(self.x_axis, _unique(labels), most=8)
        self.y_axis.setRange(0.0, _nice_top(peak / scale))
        self.y_axis.applyNiceNumbers()
        self.y_axis.setTitleText(unit)
        self.chart().setTitle(title)


def _unique(labels: list[str]) -> list[str]:
    """QCategoryAxis takes each label once: a repeated one gets a zero-width space."""
    seen: set[str] = set()
    out = []
    for label in labels:
        while label in seen:
            label += "\u200b"
        seen.add(label)
        out.append(label)
    return out
