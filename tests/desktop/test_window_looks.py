"""The window looks like the tray's product and behaves like a desktop app: the tray's state
colours in rows, columns sized to their content, the light or dark palette, size, position,
page and filter remembered, the keyboard (Ctrl+1..N, Enter, Delete with a confirmation, F5),
an accessible name on every control. Real widgets against a real supervisor."""

from __future__ import annotations

import asyncio

from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtGui import QAccessible, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QComboBox,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QTabBar,
)

from desktop.dashboard import Dashboard
from desktop.dashboard.changes import BACKGROUNDS
from desktop.highlight import split_files
from desktop.icons import TrayState
from desktop.settings.prefs import THEME_KEY
from tests.conftest import SLEEP
from tests.desktop import test_dashboard as base
from tests.desktop.test_dashboard import fetched, run, shown_ids, until
from tests.desktop.test_runner_pane import busy_and_failed

bridge, dashboard, prefs = base.bridge, base.dashboard, base.prefs
FETCHING = {2: "sessions", 5: "events", 6: "dead", 7: "usage"}  # pages that fetch when shown
CONTROLS = (QAbstractButton, QComboBox, QLineEdit, QAbstractItemView, QTabBar, QProgressBar,
            QPlainTextEdit)  # fmt: skip


def dot_colour(model, row: int, column: int) -> str:
    icon = model.data(model.index(row, column), Qt.ItemDataRole.DecorationRole)
    image = icon.pixmap(16, 16).toImage()
    return image.pixelColor(8, 8).name()


def test_rows_wear_the_trays_state_colours_and_columns_fit_their_content(
    daemon, project_dir, qloop, bridge, dashboard
):
    busy, failed = busy_and_failed(daemon, project_dir)
    tab = dashboard.runners
    model = tab.model
    state = [c.header for c in model.columns].index("State")

    async def scenario() -> None:
        dashboard.tabs.setCurrentWidget(tab)
        tab.filter.setCurrentIndex(tab.filter.findData("all"))
        await until(lambda: sorted(shown_ids(dashboard)) == [busy, failed], what="both")
        assert dot_colour(model, model.row_of(busy), state) == TrayState.RUNNING.colour.name()
        assert dot_colour(model, model.row_of(failed), state) == TrayState.BUDGET.colour.name()

    run(qloop, scenario())
    header = tab.view.horizontalHeader()
    headers = [c.header for c in model.columns]
    restarts = headers.index("Restarts")  # the last column: it took half the width before
    assert header.sectionSize(restarts) <= header.sectionSizeHint(restarts) + 20
    stretch = headers.index("Profile / command")
    assert header.sectionResizeMode(stretch) == header.ResizeMode.Stretch


def test_size_position_page_and_filter_are_remembered(
    daemon, qloop, bridge, dashboard, prefs, qtbot
):
    dashboard.resize(700, 510)
    dashboard.move(QPoint(40, 30))
    dashboard.tabs.setCurrentIndex(4)
    dashboard.runners.filter.setCurrentIndex(dashboard.runners.filter.findData("needs"))
    size = dashboard.size()
    dashboard.hide()
    again = Dashboard(bridge, prefs)
    qtbot.addWidget(again)
    assert again.size() == size
    assert again.tabs.currentIndex() == 4
    assert again.runners.chosen == "needs"
    reread = QSettings(prefs.fileName(), QSettings.Format.IniFormat)
    assert reread.value("window/page") in (4, "4")


def test_the_keyboard_pages_refresh_open_and_stop_with_a_confirmation(
    daemon, project_dir, qloop, bridge, dashboard, qtbot
):
    daemon.project("demo", project_dir)
    runner = daemon.launch("demo", SLEEP)["id"]
    daemon.wait_state(runner, "running")
    tab = dashboard.runners
    changes: list[int] = []
    bridge.changed.connect(lambda: changes.append(1))

    async def scenario() -> None:
        await bridge.refresh()
        dashboard.activateWindow()
        qtbot.keyClick(dashboard, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
        assert dashboard.tabs.currentWidget() is dashboard.sessions
        qtbot.keyClick(dashboard, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
        assert dashboard.tabs.currentWidget() is dashboard.overview
        before = len(changes)
        waiting = fetched(dashboard, "overview")
        qtbot.keyClick(dashboard, Qt.Key.Key_F5)
        await waiting
        await until(lambda: len(changes) > before, what="the refresh")

        dashboard.show_runner(runner)
        tab.pane.tabs.setCurrentWidget(tab.pane.details)
        tab.view.setFocus()
        qtbot.keyClick(tab.view, Qt.Key.Key_Return)
        assert tab.pane.tabs.currentWidget() is tab.pane.output
        assert tab.pane.output.text.hasFocus()

        tab.view.setFocus()
        qtbot.keyClick(tab.view, Qt.Key.Key_Delete)
        box = tab.confirm
        assert box is not None and box.isVisible()
        assert box.text() == f"Stop runner #{runner} (demo)?"
        box.button(QMessageBox.StandardButton.Cancel).click()
        await until(lambda: not box.isVisible())
        assert daemon.runner(runner)["state"] == "running"
        tab.view.setFocus()
        qtbot.keyClick(tab.view, Qt.Key.Key_Delete)
        stop = next(b for b in tab.confirm.buttons() if b.text() == "Stop")
        stop.click()
        await until(lambda: daemon.runner(runner)["state"] == "stopped", what="the stop")

    run(qloop, scenario())


def test_every_control_has_an_accessible_name(daemon, project_dir, qloop, bridge, dashboard):
    daemon.project("demo", project_dir)
    runner = daemon.launch("demo", SLEEP)["id"]
    daemon.api.request(
        "PUT", "/api/v1/budgets", {"scope": "global", "period": "daily", "limit_tokens": 1000}
    )

    async def scenario() -> None:
        await bridge.refresh()
        dashboard.show_runner(runner)
        await until(lambda: dashboard.runners.pane.runner is not None)

    run(qloop, scenario())
    nameless: set[str] = set()

    async def visit(page: int) -> None:  # a page shown, and what it fetches drawn
        waiting = FETCHING.get(page) and asyncio.ensure_future(fetched(dashboard, FETCHING[page]))
        dashboard.tabs.setCurrentIndex(page)
        if waiting:
            await waiting

    for page in range(dashboard.tabs.count()):  # every page shown in turn
        if page:
            run(qloop, visit(page))
        controls = [w for kind in CONTROLS for w in dashboard.findChildren(kind)]
        assert len(controls) > 30
        for widget in controls:
            if widget.isVisibleTo(dashboard) or isinstance(widget, QAbstractButton):
                face = QAccessible.queryAccessibleInterface(widget)
                if not face.text(QAccessible.Text.Name).strip():
                    nameless.add(f"{type(widget).__name__} {widget.objectName()!r} in "
                                 f"{type(widget.parent()).__name__}")  # fmt: skip
    assert sorted(n for n in nameless if "QScrollBar" not in n) == []


def test_the_palette_follows_the_choice_in_settings(daemon, qloop, bridge, prefs, qtbot):
    prefs.setValue(THEME_KEY, "dark")
    window = Dashboard(bridge, prefs)
    qtbot.addWidget(window)
    window.show()
    assert window.palette().color(QPalette.ColorRole.Window).lightness() < 80
    assert window.overview.palette().color(QPalette.ColorRole.Base).lightness() < 80
    window.hide()
    prefs.setValue(THEME_KEY, "light")
    window.show()
    assert window.palette().color(QPalette.ColorRole.Window).lightness() > 200


def test_a_theme_chosen_in_settings_applies_at_once_diff_colours_included(
    daemon, qloop, bridge, prefs, qtbot
):
    prefs.setValue(THEME_KEY, "dark")
    window = Dashboard(bridge, prefs)
    qtbot.addWidget(window)
    window.show()
    view = window.runners.pane.changes.diff
    view.show_file(split_files("diff --git a/a.py b/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n")[0])
    added = next(b for b in blocks(view) if b.text() == "+x = 2")
    assert added.blockFormat().background().color().name() == BACKGROUNDS["add"][1]
    prefs.setValue(THEME_KEY, "light")
    window.follow_theme()  # what the Settings dialog's theme_changed triggers, while shown
    assert window.palette().color(QPalette.ColorRole.Window).lightness() > 200
    added = next(b for b in blocks(view) if b.text() == "+x = 2")
    assert added.blockFormat().background().color().name() == BACKGROUNDS["add"][0]


def blocks(view: QPlainTextEdit) -> list:
    document = view.document()
    return [document.findBlockByNumber(n) for n in range(document.blockCount())]
