"""The pane beside the runners' list against a real supervisor: a real runner's coloured output
as it prints it (paged through the API), follow on and off, Ctrl+F, its details and history,
and the list's filter (active, needs me, all with the finished runners' exit status)."""

from __future__ import annotations

import os
import subprocess
import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from desktop.ansi import BASIC
from desktop.dashboard.output import FIRST_LINES, OutputView, local_stamp
from tests.conftest import SLEEP
from tests.desktop import test_dashboard as base
from tests.desktop.test_dashboard import cell, run, shown_ids, until

bridge, dashboard, prefs = base.bridge, base.dashboard, base.prefs
# Prints a red line and a plain one every 0.2 s, for as long as the test needs.
PRINTER = [
    sys.executable, "-u", "-c",
    "import time\n"
    "for i in range(100000):\n"
    "    print(f'\\x1b[31mred {i}\\x1b[0m plain {i}', flush=True)\n"
    "    time.sleep(0.2)\n",
]  # fmt: skip
FAILING = [sys.executable, "-c", "print('bye'); import sys; sys.exit(3)"]


def colour_at(view, line: int, column: int) -> str:
    block = view.text.document().findBlockByNumber(line)
    cursor = QTextCursor(block)
    cursor.setPosition(block.position() + column + 1)
    return cursor.charFormat().foreground().color().name()


def test_the_pane_shows_a_runners_coloured_output_as_it_prints_it(
    daemon, project_dir, qloop, bridge, dashboard, qtbot
):
    daemon.project("demo", project_dir)
    runner = daemon.launch("demo", PRINTER)["id"]
    daemon.wait_state(runner, "running")
    tab = dashboard.runners
    output = tab.pane.output

    async def scenario() -> None:
        await bridge.refresh()
        dashboard.show_runner(runner)
        assert tab.pane.runner["id"] == runner
        first = await until(lambda: output.lines(), what="the first lines")
        stamp, text = local_stamp(f"2026-01-02T03:04:05.678Z {first[0]}")
        assert first[0].endswith("red 0 plain 0") and first[0][:8].count(":") == 2
        assert colour_at(output, 0, 9) == BASIC[1]  # "red", after "HH:MM:SS "
        assert stamp and text == first[0]
        count = len(first)
        await until(lambda: len(output.lines()) >= count + 3, what="lines printed later")
        numbers = [int(line.rsplit(" ", 1)[1]) for line in output.lines()]
        assert numbers == list(range(len(numbers)))  # in order, none twice

        # follow: the newest line in view; scrolling up turns it off, the end turns it on
        bar = output.text.verticalScrollBar()
        await until(lambda: bar.maximum() > 0, what="a scroll bar")
        assert output.follow.isChecked() and bar.value() == bar.maximum()
        bar.setValue(0)
        assert not output.follow.isChecked()
        await until(lambda: bar.maximum() > 0 and len(output.lines()) > count + 6)
        assert bar.value() == 0
        output.follow.setChecked(True)
        assert bar.value() == bar.maximum()

        # Ctrl+F
        dashboard.activateWindow()
        output.text.setFocus()
        qtbot.keyClick(output.text, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
        assert output.search.isVisible()
        output.search.field.setText("plain 2")
        qtbot.keyClick(output.search.field, Qt.Key.Key_Return)
        assert output.text.textCursor().selectedText() == "plain 2"
        output.search.field.setText("no such text")
        assert not output.search.find_match() and output.search.result.text() == "not found"
        qtbot.keyClick(output.search.field, Qt.Key.Key_Escape)
        assert not output.search.isVisible()

        # the details
        details = tab.pane.details.fields
        assert details["Command"].text() == " ".join(PRINTER)
        assert details["Folder"].text() == str(project_dir)
        assert details["Status"].text() == "running"
        await until(lambda: tab.pane.details.history.count() >= 2, what="its history")
        history = [tab.pane.details.history.item(i).text()
                   for i in range(tab.pane.details.history.count())]  # fmt: skip
        assert any("starting" in line for line in history), history

        # it ends: it stays listed and shown, with its end, until another is selected
        daemon.api.post(f"/api/v1/runners/{runner}/stop")
        await until(lambda: "stopped" in details["Status"].text(), what="the stop")
        assert details["Status"].text().startswith("stopped: stopped by user at ")
        assert shown_ids(dashboard) == [runner] and tab.pane.runner["id"] == runner
        assert cell(tab.model, 0, "State") == "stopped"

    run(qloop, scenario())


def busy_and_failed(daemon, project_dir) -> tuple[int, int]:
    """A project "demo" with a running runner and one that failed (exit status 3)."""
    daemon.project("demo", project_dir)
    busy = daemon.launch("demo", SLEEP)["id"]
    failed = daemon.launch("demo", FAILING)["id"]
    daemon.wait_state(failed, "failed")
    daemon.wait_state(busy, "running")
    return busy, failed


def test_the_filter_lists_active_runners_those_that_need_me_or_all(
    daemon, project_dir, qloop, bridge, dashboard
):
    busy, failed = busy_and_failed(daemon, project_dir)
    stuck = daemon.launch("demo", SLEEP)["id"]
    pid = daemon.wait_state(stuck, "running")["pid"]
    os.kill(pid, 19)  # SIGSTOP: the sweep flags it unresponsive (it needs the user)
    tab = dashboard.runners

    async def scenario() -> None:
        dashboard.tabs.setCurrentWidget(tab)
        await until(lambda: any(r["unresponsive"] for r in bridge.snapshot.runners))
        assert sorted(shown_ids(dashboard)) == [busy, stuck]
        tab.filter.setCurrentIndex(tab.filter.findData("needs"))
        assert shown_ids(dashboard) == [stuck]
        tab.filter.setCurrentIndex(tab.filter.findData("all"))
        await until(lambda: failed in shown_ids(dashboard), what="the failed runner")
        assert sorted(shown_ids(dashboard)) == [busy, failed, stuck]
        row = tab.model.row_of(failed)
        assert cell(tab.model, row, "State") == "failed"
        assert cell(tab.model, row, "Exit") == "3"
        tab.select(failed)
        status = tab.pane.details.fields["Status"].text()
        assert status.startswith("failed: exited with status 3 at ")
        output = tab.pane.output
        await until(lambda: [line[9:] for line in output.lines()] == ["bye"], what="its output")
        tab.filter.setCurrentIndex(tab.filter.findData("active"))
        assert failed not in shown_ids(dashboard)
        assert tab.pane.runner is None and tab.pane.stack.currentIndex() == 0

    try:
        run(qloop, scenario())
    finally:
        os.kill(pid, 18)  # SIGCONT


def test_a_runner_in_its_own_terminal_says_where_its_output_is(
    daemon, project_dir, qloop, bridge, dashboard
):
    daemon.project("demo", project_dir)
    child = subprocess.Popen(SLEEP)
    try:
        registered = daemon.api.post(
            "/api/v1/runners/register",
            {"project": "demo", "pid": child.pid, "command": SLEEP, "cwd": str(project_dir)},
        )["runner"]

        async def scenario() -> None:
            await bridge.refresh()
            dashboard.show_runner(registered["id"])
            output = dashboard.runners.pane.output
            assert output.note.text() == "It runs in its own terminal: its output is there."
            assert output.lines() == []

        run(qloop, scenario())
    finally:
        child.kill()
        child.wait()


def test_the_first_page_of_a_long_log_is_its_tail_and_whole_log_loads_the_rest(
    daemon, project_dir, qloop, bridge, dashboard
):
    lines = FIRST_LINES + 500
    printer = [sys.executable, "-c", f"for i in range({lines}): print('line', i)"]
    daemon.project("demo", project_dir)
    runner = daemon.launch("demo", printer)["id"]
    daemon.wait_state(runner, "exited")
    output = dashboard.runners.pane.output

    async def scenario() -> None:
        logs = f"/api/v1/runners/{runner}/logs"
        await until(lambda: daemon.api.get(logs, tail="all")["text"].count("\n") == lines)
        dashboard.show_runner(runner)
        await until(lambda: len(output.lines()) == FIRST_LINES, what="the tail")
        assert output.lines()[0].endswith(" line 500")
        output.whole.click()
        await until(lambda: len(output.lines()) == lines, what="the whole log")
        assert output.lines()[0].endswith(" line 0")

    run(qloop, scenario())


def test_a_long_output_loses_its_oldest_lines_in_cuts_past_its_limit(qapp):
    view = OutputView(None)  # fed directly: no runner, no supervisor
    view.max_lines, view.trim_lines = 1000, 100
    view.feed("".join(f"line {n}\n" for n in range(1099)))
    while view.draw_slice():
        pass
    assert len(view.lines()) == 1099  # under the limit by less than a cut: kept
    view.feed("line 1099\n")
    view.draw_slice()
    lines = view.lines()
    assert (len(lines), lines[0], lines[-1]) == (1000, "line 100", "line 1099")
