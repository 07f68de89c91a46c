"""The tray app end to end: ``python -m desktop`` in its own process, its supervisor embedded,
on a private X display with a real XEmbed tray (trayer) and a real notification server (dunst)
on a private DBus session, driven with xdotool as a user would.

The icon appears in the tray; a right-click opens the menu; the keyboard walks Quick launch ▸
project ▸ profile and starts a runner; its failure comes back as a desktop notification; Quit
ends the app. Screenshots of the menu, the notification and the dashboard are saved to
``docs/screenshots/`` on the way.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.api.client import ApiClient
from supervisor.core import runtime
from tests.conftest import REPO, SLEEP, _kill_runner_processes, wait_for
from tests.desktop.conftest import Window, XDesktop

pytestmark = pytest.mark.slow

SCREENSHOTS = REPO / "docs" / "screenshots"
WM_CLASS = "Stratavore"  # the class Qt gives the app's windows (its application name)
FAILING = [sys.executable, "-c", "import sys; sys.exit(3)"]
# The embedded supervisor listens on the api_port setting (default 7420): any free port here.
FREE_PORT = (
    "import sys; from pathlib import Path; from supervisor.core import paths, settings; "
    "from supervisor.storage.db import close_db, init_db; "
    "init_db(paths.db_path(Path(sys.argv[1]))); settings.save_setting('api_port', 0); "
    "close_db()"
)


class TrayApp:
    """``python -m desktop`` on the private desktop, on this test's data dir."""

    def __init__(self, home: Path, desktop: XDesktop, welcomed: bool = True) -> None:
        self.home = home
        if welcomed:  # past the first run's welcome window (tests/desktop/test_welcome_e2e.py)
            (home / "welcomed").touch()
        self.desktop = desktop
        self.env = desktop.env(PYTHONPATH=str(REPO))
        self.output = home / "desktop-output.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: ApiClient | None = None

    def start(self, *args: str) -> TrayApp:
        self.spawn(*args)
        wait_for(self._serving, 30, 0.1, what="the app's embedded supervisor to serve")
        self.client = ApiClient.discover(self.home)
        return self

    def spawn(self, *args: str) -> TrayApp:
        """Start the app, without waiting for anything."""
        subprocess.run([sys.executable, "-c", FREE_PORT, str(self.home)], env=self.env, check=True)
        with open(self.output, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "desktop", *args],
                env=self.env, stdout=out, stderr=out, cwd=self.home,
            )  # fmt: skip
        return self

    def _serving(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"the app exited with {self.proc.returncode}:\n{self.logs()}")
        info = runtime.read_runtime(self.home)
        return info is not None and info.pid == self.proc.pid

    @property
    def api(self) -> ApiClient:
        assert self.client is not None
        return self.client

    def logs(self) -> str:
        log = self.home / "logs" / "supervisor.log"
        text = self.output.read_text() if self.output.exists() else ""
        return text + (log.read_text()[-4000:] if log.exists() else "")

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        _kill_runner_processes(self.home)
        if self.client is not None:
            self.client.session.close()


@pytest.fixture
def tray_app(x_screen: XDesktop, home: Path) -> Iterator[Callable[..., TrayApp]]:
    """Start the app on this test's data dir; it and its runners are ended at teardown."""
    started: list[TrayApp] = []

    def start(*args: str) -> TrayApp:
        app = TrayApp(home, x_screen).start(*args)
        started.append(app)
        return app

    yield start
    for app in started:
        app.close()


# --- what a user sees and does -------------------------------------------------------------
def poll(predicate: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """``predicate``'s first truthy value within ``timeout``, else None (no failure)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)
    return value


def tray_icon(desktop: XDesktop, app: TrayApp) -> Window:
    icons = poll(lambda: desktop.tray_icons(WM_CLASS), 20)
    if not icons:
        windows = "\n".join(map(str, desktop.windows()))
        pytest.fail(f"no tray icon in {desktop.panel}; windows:\n{windows}\n{app.logs()}")
    (icon,) = icons
    return icon


def popups(desktop: XDesktop, icon: Window) -> list[Window]:
    """The app's visible windows other than its tray icon: the menu and its open submenus."""
    return [w for w in desktop.visible(WM_CLASS) if w.id != icon.id]


def wait_popups(desktop: XDesktop, icon: Window, count: int, timeout: float) -> list[Window]:
    return poll(lambda: (found := popups(desktop, icon)) and len(found) == count and found, timeout)


def close_menus(desktop: XDesktop, icon: Window) -> None:
    desktop.xdotool("key", "--delay", "50", "Escape", "Escape", "Escape")
    wait_for(lambda: not popups(desktop, icon), 10, 0.1, what="the menus to close")


def open_menu(desktop: XDesktop, icon: Window) -> list[Window]:
    """Right-click the tray icon: the context menu opens.

    A click within the double-click interval of the one before is a double-click to Qt, which
    opens no menu: then click again. (No ``mousemove --sync``: onto the spot where the pointer
    already is, xdotool waits for a motion that never comes.)"""
    x, y = icon.centre
    for _ in range(3):
        desktop.xdotool("mousemove", str(x), str(y), "click", "3")
        menu = wait_popups(desktop, icon, 1, 3)
        if menu:
            return menu
    pytest.fail(f"no menu after right-clicks on the tray icon; visible: {popups(desktop, icon)}")


def open_quick_launch(desktop: XDesktop, icon: Window, timeout: float = 20) -> list[Window]:
    """Right-click, then Down Right Right: Quick launch ▸ its first project ▸ (profiles).

    The menu is rebuilt from the bridge's last refresh, which may not know a project made a
    moment ago; then Quick launch holds only "New project…" and the third menu never opens:
    close and look again after the next refresh."""
    deadline = time.monotonic() + timeout
    while True:
        open_menu(desktop, icon)
        desktop.xdotool("key", "Down", "Right")
        assert wait_popups(desktop, icon, 2, 10), "Quick launch did not open"
        desktop.xdotool("key", "Right")
        menus = wait_popups(desktop, icon, 3, 1.5)
        if menus:
            return menus
        close_menus(desktop, icon)
        if time.monotonic() > deadline:
            pytest.fail("Quick launch never listed the project")
        time.sleep(0.5)


def with_demo_project(
    tray_app: Callable[..., TrayApp], desktop: XDesktop, tmp_path: Path
) -> TrayApp:
    """The app started, its icon in the tray, and a project "demo" in a new folder."""
    app = tray_app()
    tray_icon(desktop, app)
    (tmp_path / "demo").mkdir()
    app.api.post("/api/v1/projects", {"name": "demo", "path": str(tmp_path / "demo")})
    return app


# --- the tests ----------------------------------------------------------------------------
def test_quick_launch_from_the_tray_and_its_failure_as_a_desktop_notification(
    tray_app: Callable[..., TrayApp], x_screen: XDesktop, tmp_path: Path
) -> None:
    desktop = x_screen
    app = tray_app()
    api = app.api
    icon = tray_icon(desktop, app)  # (a) embedded in trayer's panel
    assert icon.wm_class[-1] == WM_CLASS

    api.post("/api/v1/profiles", {"name": "failing", "command": FAILING})
    (tmp_path / "demo").mkdir()
    api.post("/api/v1/projects", {"name": "demo", "path": str(tmp_path / "demo")})
    profiles = [p["name"] for p in api.get("/api/v1/profiles")]
    assert api.get("/api/v1/runners", all=1) == []

    # (b) a right-click opens the menu; (c) the keyboard walks to Quick launch ▸ demo ▸ failing
    menus = open_quick_launch(desktop, icon)
    desktop.xdotool("key", "--delay", "60", *["Down"] * profiles.index("failing"))
    time.sleep(0.3)  # the highlight is painted after the key is handled
    desktop.screenshot(SCREENSHOTS / "tray-menu.png", around=[desktop.panel, *menus])
    shown = desktop.notifications.mark()
    desktop.xdotool("key", "Return")

    (launched,) = wait_for(
        lambda: api.get("/api/v1/runners", all=1), 15, 0.1, what="a runner from Quick launch"
    )
    assert (launched["project"], launched["profile"], launched["command"]) == (
        "demo", "failing", FAILING,
    )  # fmt: skip
    failed = wait_for(
        lambda: (r := api.get(f"/api/v1/runners/{launched['id']}"))["state"] == "failed" and r,
        15, 0.1, what="the runner to fail",
    )  # fmt: skip
    assert failed["reason"] == "exited with status 3"
    wait_for(lambda: not popups(desktop, icon), 10, 0.1, what="the menus to close")

    # (d) the failure, shown by the desktop's notification server
    note = desktop.notifications.wait_for(lambda n: "failed" in n["summary"], since=shown)
    assert note == {
        "app": "Stratavore",
        "summary": f"runner {launched['id']} (demo) failed",
        "body": "exited with status 3",
        "urgency": "CRITICAL",
        "icon": str(app.home / "icons" / "stratavore-256.png"),  # Stratavore's, not Python's
        "desktop_entry": "stratavore",
    }
    bubble = wait_for(lambda: desktop.visible("Dunst"), 10, 0.1, what="dunst's bubble")
    desktop.screenshot(SCREENSHOTS / "notification.png", around=[desktop.panel, *bubble])

    # Quit, the menu's last entry: no runner is active, so the app ends at once.
    open_menu(desktop, icon)
    desktop.xdotool("key", "Up", "Return")
    assert app.proc is not None
    assert app.proc.wait(20) == 0, app.logs()
    assert runtime.read_runtime(app.home) is None
    assert not desktop.tray_icons(WM_CLASS)


def test_a_second_launch_brings_the_dashboard_forward(
    tray_app: Callable[..., TrayApp], x_screen: XDesktop, tmp_path: Path
) -> None:
    desktop = x_screen
    app = tray_app()
    api = app.api
    icon = tray_icon(desktop, app)
    for name in ("api", "web"):
        (tmp_path / name).mkdir()
        api.post("/api/v1/projects", {"name": name, "path": str(tmp_path / name)})
        api.post("/api/v1/runners", {"project": name, "command": SLEEP})

    second = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "desktop", "--dashboard"],
        env=app.env, capture_output=True, text=True, timeout=30, cwd=app.home,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stdout
    # it asked with the standard library alone, before Qt or the supervisor was imported
    imported = {line.rpartition("|")[2].strip() for line in second.stderr.splitlines()}
    assert "desktop.app" in imported
    assert not {"PySide6", "supervisor.daemon", "aiohttp"} & imported

    def dashboard() -> list[Window]:
        return [w for w in popups(desktop, icon) if w.width >= 300 and w.height >= 200]

    (window,) = wait_for(dashboard, 20, 0.1, what="the dashboard window")
    time.sleep(3)  # one refresh of the bridge, and the window painted
    desktop.screenshot(SCREENSHOTS / "dashboard.png", around=[window], margin=0)
    assert app.proc is not None and app.proc.poll() is None


def test_a_launch_while_the_first_still_starts_gets_the_dashboard_once_it_is_up(
    x_screen: XDesktop, home: Path
) -> None:
    desktop = x_screen
    app = TrayApp(home, desktop).spawn()
    try:
        icon = tray_icon(desktop, app)  # shown before the supervisor is started
        second = subprocess.run(
            [sys.executable, "-m", "desktop", "--dashboard"],
            env=app.env, capture_output=True, text=True, timeout=30, cwd=app.home,
        )  # fmt: skip
        assert "already running" in second.stdout
        asked_while_starting = runtime.read_runtime(home) is None
        wait_for(app._serving, 30, 0.1, what="the app's embedded supervisor to serve")

        def dashboard() -> list[Window]:
            return [w for w in popups(desktop, icon) if w.width >= 300 and w.height >= 200]

        wait_for(dashboard, 20, 0.1, what="the dashboard window")
        assert asked_while_starting  # (else this test did not test what it says)
    finally:
        app.close()


def test_an_agent_waiting_for_input_is_one_native_notification(
    tray_app: Callable[..., TrayApp], x_screen: XDesktop, tmp_path: Path
) -> None:
    """Claude Code's hooks, as its HTTP hooks send them with the runner's own token: a burst
    of tool calls, then the same permission prompt twice. dunst shows one "needs input"."""
    desktop = x_screen
    app = with_demo_project(tray_app, desktop, tmp_path)
    api = app.api
    child = subprocess.Popen(SLEEP)
    try:
        answer = api.post("/api/v1/runners/register", {
            "command": ["claude"], "pid": child.pid, "cwd": str(tmp_path / "demo"),
        })  # fmt: skip
        rid, token = answer["runner"]["id"], answer["token"]
        hooks = ApiClient(api.base_url, token)
        hooks.session.headers["X-Stratavore-Runner"] = str(rid)
        shown = desktop.notifications.mark()
        permission = {
            "hook_event_name": "Notification", "notification_type": "permission_prompt",
            "message": "Claude needs your permission to use Bash", "session_id": "s1",
        }  # fmt: skip
        for event in [
            {"hook_event_name": "UserPromptSubmit", "session_id": "s1"},
            *[{"hook_event_name": "PreToolUse", "tool_name": "Read", "session_id": "s1"}] * 10,
            permission,
            permission,
        ]:
            hooks.post("/api/v1/hooks", event)
        note = desktop.notifications.wait_for(lambda n: "needs input" in n["summary"], shown)
        assert note["summary"] == f"runner {rid} (demo) needs input"
        assert note["body"] == "Claude needs your permission to use Bash"
        time.sleep(5)  # longer than the channel's 3 s settle: a duplicate would be shown now
        shown_now = [n["summary"] for n in desktop.notifications.all()[shown:]]
        assert shown_now == [f"runner {rid} (demo) needs input"]
        hooks.session.close()
    finally:
        child.kill()
        child.wait()
