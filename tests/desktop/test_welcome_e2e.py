"""The first run, end to end: with fake claude, codex, gemini and aider on the PATH and the
logs they wrote in three folders (under the CLAUDE_CONFIG_DIR, CODEX_HOME and GEMINI_CLI_HOME
of the test, never the real home), ``python -m desktop`` on a fresh data dir opens the welcome
window; it lists the agents and the folders, one Return adds them as projects and imports
their usage, and it never shows again. Its screenshot is the README's."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests import fake_agents
from tests.conftest import wait_for
from tests.desktop.conftest import XDesktop
from tests.desktop.test_tray_e2e import SCREENSHOTS, TrayApp, tray_icon

pytestmark = pytest.mark.slow
TITLE = "Welcome to Stratavore"


@pytest.fixture
def agents_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The fake agents on PATH, each run once in a folder of its own: folder by agent."""
    bin_dir = tmp_path / "fake-bin"
    for agent in fake_agents.AGENTS:
        fake_agents.install(bin_dir, agent)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for variable, name in (("CLAUDE_CONFIG_DIR", "claude-config"), ("CODEX_HOME", "codex-home"),
                           ("GEMINI_CLI_HOME", "gemini-home")):  # fmt: skip
        monkeypatch.setenv(variable, str(tmp_path / name))
    folders = {}
    for agent, argv in (("claude", ["-p", "hi"]), ("codex", ["exec", "hi"]),
                        ("gemini", ["-p", "hi"])):  # fmt: skip
        folder = folders[agent] = tmp_path / "src" / f"{agent}-project"
        folder.mkdir(parents=True)
        subprocess.run([str(bin_dir / agent), *argv], cwd=folder, check=True,
                       capture_output=True, timeout=30)  # fmt: skip
        time.sleep(0.05)  # distinct times: the most recent folder is listed first
    return folders


def welcome_window(desktop: XDesktop) -> list:
    found = desktop.run("xdotool", "search", "--onlyvisible", "--name", TITLE, check=False)
    ids = {int(i) for i in found.split()}
    return [w for w in desktop.windows() if w.id in ids]


def test_first_run_finds_the_agents_and_their_folders_and_adds_them_in_one_click(
    agents_used: dict[str, Path], x_screen: XDesktop, home: Path
) -> None:
    desktop = x_screen
    app = TrayApp(home, desktop, welcomed=False)
    try:
        app.start()
        tray_icon(desktop, app)
        (window,) = wait_for(lambda: welcome_window(desktop), 30, 0.2, what="the welcome")
        time.sleep(1)  # painted
        desktop.screenshot(SCREENSHOTS / "welcome.png", around=[window], margin=0)

        desktop.xdotool("windowfocus", "--sync", str(window.id))
        desktop.xdotool("key", "Return")  # the default button: add them all, import usage
        projects = wait_for(lambda: len(p := app.api.get("/api/v1/projects")) == 3 and p,
                            30, 0.2, what="three projects")  # fmt: skip
        assert {p["name"]: p["path"] for p in projects} == {
            f"{agent}-project": str(folder) for agent, folder in agents_used.items()
        }
        usage = wait_for(
            lambda: (d := app.api.get("/api/v1/usage/daily"))["totals"]["total_tokens"] and d,
            60, 0.5, what="the agents' past usage imported",
        )  # fmt: skip
        assert usage["totals"]["total_tokens"] > 0
        time.sleep(1.5)  # the bar full, the sentence written
        desktop.screenshot(SCREENSHOTS / "welcome-done.png", around=[window], margin=0)

        desktop.xdotool("key", "Escape")  # closed: the first run is over
        wait_for(lambda: not welcome_window(desktop), 10, 0.2, what="the welcome to close")
        assert (home / "welcomed").exists()
    finally:
        app.close()

    again = TrayApp(home, desktop, welcomed=False)  # the marker stays: no second welcome
    try:
        again.start()
        tray_icon(desktop, again)
        time.sleep(3)
        assert not welcome_window(desktop)
    finally:
        again.close()
