"""The Changes tab of a runner on its own worktree, against a real supervisor on a real git
repository: the files with their counts, a file's diff coloured in its language, Merge into
the branch it started from, a conflict's sentence, Discard after a confirmation."""

from __future__ import annotations

import sys
from pathlib import Path

from pygments.token import Keyword
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QMessageBox

from desktop.dashboard.changes import BACKGROUNDS, summary
from desktop.highlight import kind_of, look, split_files
from tests.conftest import wait_for
from tests.desktop import test_dashboard as base
from tests.desktop.test_dashboard import run, until
from tests.runners import test_worktrees as repos
from tests.runners.test_worktrees import branches, commit_all, git

bridge, dashboard, prefs = base.bridge, base.dashboard, base.prefs
git_env = repos.git_env  # an empty git config: no identity, no user hooks
# Adds a function to app.py and a notes file in its worktree, then waits for input.
AGENT = (
    "import time\n"
    "open('app.py', 'a').write({line!r})\n"
    "open('notes.md', 'w').write('# notes\\n')\n"
    "time.sleep(600)\n"
)


def start(daemon, line: str) -> dict:
    runner = daemon.launch("demo", [sys.executable, "-c", AGENT.format(line=line)],
                           worktree=True)  # fmt: skip
    wait_for(lambda: (Path(runner["worktree"]) / "notes.md").exists(), what="its edits")
    return runner


def block_of(view, text: str):
    document = view.document()
    for number in range(document.blockCount()):
        block = document.findBlockByNumber(number)
        if block.text() == text:
            return block
    raise AssertionError(f"{text!r} not shown")


def test_the_changes_tab_shows_merges_and_discards_a_worktree(
    daemon, project_dir, qloop, bridge, dashboard
):
    git(project_dir, "init", "-q")
    (project_dir / "app.py").write_text("x = 1\n")
    commit_all(project_dir, "first")
    daemon.project("demo", project_dir)
    runner = start(daemon, "def hello():\n    return 'hi'\n")
    pane = dashboard.runners.pane
    view = pane.changes

    async def scenario() -> None:
        await bridge.refresh()
        dashboard.show_runner(runner["id"])
        assert pane.tabs.isTabVisible(2)
        pane.tabs.setCurrentWidget(view)
        await until(lambda: view.changes is not None, what="the changes")
        assert view.summary.text() == (
            f"2 files changed, +3 -0 on {runner['branch']} (from main): uncommitted edits"
        )
        files = [view.list.topLevelItem(i) for i in range(view.list.topLevelItemCount())]
        assert [(f.text(0), f.text(1), f.text(2)) for f in files] == [
            ("app.py", "+2", "-0"), ("notes.md", "+1", "-0"),
        ]  # fmt: skip
        added = block_of(view.diff, "+def hello():")
        assert added.blockFormat().background().color().name() == BACKGROUNDS["add"][0]
        cursor = QTextCursor(added)
        cursor.setPosition(added.position() + 2)  # inside "def"
        keyword = f"#{look(Keyword, False)['color']}"
        assert cursor.charFormat().foreground().color().name() == keyword
        view.list.setCurrentItem(files[1])
        assert block_of(view.diff, "+# notes")
        assert view.open_button.isEnabled()
        assert view.open_button.folder == runner["worktree"]

        assert view.merge_button.text() == "Merge into main"
        assert not view.discard_button.isEnabled()  # it runs
        assert view.discard_button.toolTip() == "Stop the runner first."
        view.merge_button.click()
        await until(lambda: view.note.text().startswith("Merged "), what="the merge")
        assert "into main (fast-forward, now at " in view.note.text()
        assert "def hello():" in (project_dir / "app.py").read_text()
        await until(lambda: view.changes and view.changes["files"] == [], what="no changes")
        assert view.summary.text().startswith("0 files changed, +0 -0 on ")

        daemon.api.post(f"/api/v1/runners/{runner['id']}/stop")
        await until(lambda: view.discard_button.isEnabled(), what="the stop")
        view.discard_button.click()
        view.confirm.button(QMessageBox.StandardButton.Cancel).click()
        assert Path(runner["worktree"]).exists()
        view.discard_button.click()
        discard = next(b for b in view.confirm.buttons() if b.text() == "Discard")
        discard.click()
        await until(lambda: not Path(runner["worktree"]).exists(), what="the discard")
        assert branches(project_dir) == ["main"]
        await until(lambda: view.note.text().startswith("Discarded worktree "))
        await until(lambda: "is gone" in view.summary.text(), what="the gone worktree")

    run(qloop, scenario())


def test_a_conflicting_merge_says_why_in_the_tab(daemon, project_dir, qloop, bridge, dashboard):
    git(project_dir, "init", "-q")
    (project_dir / "app.py").write_text("x = 1\n")
    commit_all(project_dir, "first")
    daemon.project("demo", project_dir)
    first = start(daemon, "y = 2\n")
    second = start(daemon, "y = 3\n")
    daemon.api.post(f"/api/v1/runners/{first['id']}/merge")
    view = dashboard.runners.pane.changes

    async def scenario() -> None:
        await bridge.refresh()
        dashboard.show_runner(second["id"])
        dashboard.runners.pane.tabs.setCurrentWidget(view)
        await until(lambda: view.changes is not None, what="the changes")
        view.merge_button.click()
        await until(lambda: view.note.text(), what="the refusal")
        assert view.note.text().startswith(f"{second['branch'].capitalize()} conflicts with main")
        assert "color" in view.note.styleSheet()

    run(qloop, scenario())


def test_a_diff_split_by_file_and_its_lines_kinds():
    patch = (
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x\n+y\n ctx\n"
        "diff --git a/b.txt b/b.txt\nnew file mode 100644\n"
    )
    files = split_files(patch)
    assert [(f.path, len(f.lines)) for f in files] == [("a.py", 7), ("b.txt", 2)]
    kinds, in_hunk = [], False
    for line in files[0].lines:
        kinds.append(kind_of(line, in_hunk))
        in_hunk = in_hunk or kinds[-1] == "hunk"
    assert kinds == ["meta", "meta", "meta", "hunk", "del", "add", "ctx"]
    changes = {"files": [{"added": None, "deleted": None}], "base_branch": None,
               "branch": "stratavore/x", "commits": 2, "uncommitted": False}  # fmt: skip
    assert summary(changes) == "1 file changed, +0 -0 on stratavore/x: 2 commits"
