"""The window a person lives in, end to end: ``python -m desktop`` with its supervisor embedded,
on a private X desktop (Xvfb, trayer, dunst), on a real git repository, read and driven through
its accessibility tree (AT-SPI) as a screen reader's user would.

A runner (the fake claude) in its own worktree edits app.py, then waits for the user: the
Overview shows its card; Show output opens its pane, whose output follows what it prints; the
Changes tab shows the edit; Merge puts it on main. A second runner in its own worktree is
stopped and its worktree discarded (confirmed): its folder and branch are gone. Screenshots of
the Overview, the pane and the diff, light and dark, go to ``docs/screenshots/``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import fake_agents
from tests.conftest import REPO, wait_for
from tests.desktop import atspi
from tests.desktop.atspi import Node, Tree, named
from tests.desktop.conftest import Window, XDesktop
from tests.desktop.test_tray_e2e import WM_CLASS, TrayApp
from tests.runners.test_worktrees import IDENTITY

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not atspi.available(), reason="at-spi2-core is not installed"),
]

SCREENSHOTS = REPO / "docs" / "screenshots"
PERMISSION = {"notification_type": "permission_prompt",
              "message": "Claude needs your permission to use Bash"}  # fmt: skip
HELLO = "\n\ndef hello(name):\n    return f'hi {name}'\n"
SCRATCH = "open('notes.md', 'w').write('scratch\\n'); import time; time.sleep(600)"


@pytest.fixture
def a11y(x_screen: XDesktop, tmp_path: Path) -> Iterator[Tree]:
    """An accessibility bus on the desktop's session bus, for this test."""
    launcher = atspi.start_bus(x_screen.env(), tmp_path / "a11y")
    try:
        yield Tree(x_screen.dbus_address)
    finally:
        launcher.terminate()
        launcher.wait(10)


def git(cwd: Path | str, *args: str) -> str:
    done = subprocess.run(["git", *IDENTITY, "-c", "init.defaultBranch=main", *args], cwd=cwd,
                          check=True, capture_output=True, text=True)  # fmt: skip
    return done.stdout


def project(tmp_path: Path) -> Path:
    """A git repository on main: a README and app.py, one commit."""
    repo = tmp_path / "demo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README.md").write_text("# demo\n")
    (repo / "app.py").write_text("print('demo')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def start_app(desktop: XDesktop, home: Path, tmp_path: Path, theme: str) -> TrayApp:
    """The app, its dashboard open, in ``theme``; the fake claude first on its PATH; git with
    no identity (the supervisor commits as 'Stratavore'); its preferences in the temp dir."""
    bin_dir = tmp_path / "fake-bin"
    fake_agents.install(bin_dir, "claude")
    config = tmp_path / "xdg"
    (config / "Stratavore").mkdir(parents=True)
    (config / "Stratavore" / "Stratavore.conf").write_text(f"[appearance]\ntheme={theme}\n")
    (tmp_path / "gitconfig").write_text("")
    app = TrayApp(home, desktop)
    app.env.update(
        PATH=f"{bin_dir}:{app.env['PATH']}", STRATAVORE_NO_LOGIN_PATH="1",
        QT_LINUX_ACCESSIBILITY_ALWAYS_ON="1", XDG_CONFIG_HOME=str(config),
        GIT_CONFIG_GLOBAL=str(tmp_path / "gitconfig"), GIT_CONFIG_NOSYSTEM="1",
    )  # fmt: skip
    return app.start("--dashboard")


class Screen:
    """The app as its accessibility tree shows it, and its window on the screen."""

    def __init__(self, tree: Tree, desktop: XDesktop) -> None:
        self.tree, self.desktop = tree, desktop

    def find(self, role: str, name: str | Callable[[str], bool], what: str = "") -> Node:
        """The first object of ``role`` and ``name`` in the app, waiting for it to appear."""

        def found() -> Node | None:
            return next(named(self.tree.nodes("Stratavore"), role, name), None)

        return wait_for(found, 20, 0.2, what=what or f"a {role} {name!r}")

    def press(self, role: str, name: str | Callable[[str], bool]) -> None:
        self.tree.press(self.find(role, name))

    def text_of(self, name: str) -> str:
        return self.tree.text(self.find("text", name))

    def window(self) -> Window:
        def big() -> list[Window]:
            return [w for w in self.desktop.visible(WM_CLASS) if w.width >= 600]

        (window,) = wait_for(big, 20, 0.1, what="the dashboard window")
        return window

    def shoot(self, name: str) -> None:
        self.desktop.notifications.close_all()  # dunst's bubble would cover the window
        time.sleep(0.8)  # the last change painted
        self.desktop.screenshot(SCREENSHOTS / name, around=[self.window()], margin=0)


def launch(app: TrayApp, **body: Any) -> dict:
    return app.api.post("/api/v1/runners", {"project": "demo", "worktree": True, **body})


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_a_runner_is_seen_waiting_its_output_followed_its_edit_merged_another_discarded(
    theme: str, a11y: Tree, x_screen: XDesktop, home: Path, tmp_path: Path
) -> None:
    repo = project(tmp_path)
    app = start_app(x_screen, home, tmp_path, theme)
    screen = Screen(a11y, x_screen)
    try:
        app.api.post("/api/v1/projects", {"name": "demo", "path": str(repo)})
        go = tmp_path / "go"
        steps = [
            ["print", "\x1b[1;34mreading app.py\x1b[0m"],
            ["append", "app.py", HELLO],
            ["print", "added \x1b[32mhello()\x1b[0m to app.py"],
            ["hook", "Notification", PERMISSION],
            ["print", "\x1b[33mwaiting for permission to run the tests\x1b[0m"],
            ["wait_file", str(go)],
            ["print", "permission granted: running the tests"],
            ["wait_file", str(tmp_path / "never")],
        ]
        shown_before = x_screen.notifications.mark()
        first = launch(app, profile="claude", prompt="add hello()",
                       env={"FAKE_AGENT_SCRIPT": fake_agents.script(*steps)})  # fmt: skip
        rid = first["id"]

        # the Overview: its card, with its one next action
        card = screen.find("panel", lambda n: n.startswith(f"#{rid} demo · claude: Waits for "
                                                           "your input since "))  # fmt: skip
        assert card.name.endswith(".")
        screen.find("push button", f"Show output runner #{rid}")
        x_screen.notifications.wait_for(lambda n: n["summary"] == f"runner {rid} (demo) "
                                        "needs input", since=shown_before)  # fmt: skip
        screen.shoot(f"window-overview-{theme}.png")

        # its pane: the output as printed, then what it prints while the pane is open
        screen.press("push button", f"Show output runner #{rid}")
        shown = wait_for(lambda: "waiting for permission" in (t := screen.text_of(
            "Runner output")) and t, 20, 0.3, what="its output")  # fmt: skip
        lines = [line[9:] for line in shown.splitlines()]  # past the 'HH:MM:SS ' stamps
        assert lines[:3] == ["reading app.py", "added hello() to app.py",
                             "waiting for permission to run the tests"]  # fmt: skip
        assert "permission granted" not in shown
        go.touch()
        wait_for(lambda: "permission granted: running the tests" in screen.text_of("Runner output"),
                 20, 0.3, what="the line printed while the pane is open")  # fmt: skip
        screen.shoot(f"window-runner-pane-{theme}.png")

        # its changes, then the merge
        screen.press("page tab", "Changes")
        summary = screen.find("label", lambda n: n.startswith("1 file changed, "))
        assert summary.name == (  # two blank lines, the def and its return
            f"1 file changed, +4 -0 on {first['branch']} (from main): uncommitted edits"
        )
        diff = wait_for(lambda: "+def hello(name):" in (t := screen.text_of(
            "The selected file's changes")) and t, 20, 0.3, what="the diff")  # fmt: skip
        assert "+    return f'hi {name}'" in diff
        screen.shoot(f"window-diff-{theme}.png")
        screen.press("push button", "Merge into main")
        screen.find("label", lambda n: n.startswith(f"Merged {first['branch']} into main"))
        assert (repo / "app.py").read_text() == "print('demo')\n" + HELLO
        assert git(repo, "log", "-1", "--format=%an", "main") == "Stratavore\n"

        # a second runner's worktree, discarded once it stopped
        second = launch(app, command=[sys.executable, "-c", SCRATCH])
        wait_for(lambda: (Path(second["worktree"]) / "notes.md").exists(), what="its edit")
        screen.press("page tab", lambda n: n.startswith("Runners"))
        table = screen.find("table", "Runners")
        wait_for(lambda: any(n.name == str(second["id"]) for n in named(
            a11y.nodes("Stratavore"), "cell", str(second["id"]))), 20, 0.3)  # fmt: skip
        a11y.select_row(table, 1)  # ids ascending: the second runner's row
        screen.find("label", lambda n: SCRATCH in n, what="its command in its pane")
        screen.press("push button", "Stop")
        screen.press("page tab", "Changes")
        wait_for(lambda: app.api.get(f"/api/v1/runners/{second['id']}")["state"] == "stopped",
                 20, 0.2, what="the stop")  # fmt: skip
        discard = screen.find("push button", "Discard the worktree and its branch")
        wait_for(lambda: "enabled" in a11y.states(discard), 20, 0.3, what="Discard enabled")
        a11y.press(discard)
        screen.press("push button", "Discard")  # the confirmation's
        wait_for(lambda: not Path(second["worktree"]).exists(), 20, 0.2, what="the discard")
        assert second["branch"] not in git(repo, "branch", "--list")
        assert first["branch"] in git(repo, "branch", "--list")  # the merged one is kept
    finally:
        app.close()
