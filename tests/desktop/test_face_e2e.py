"""The tray app's face on real desktops, end to end (``python -m desktop`` in its own process):

- a notification under dunst carries Stratavore's name, its icon and the desktop-entry hint,
  and its "Stop" button, clicked through dunst's menu, stops the runner;
- delivered means shown: with no notification service and no tray, the desktop delivery is
  retried, and shown once a service starts;
- the StatusNotifierItem tray of today's Linux desktops: a host on the session bus sees the
  item and reads its menu over DBus (com.canonical.dbusmenu), whether the host was there
  before the app or starts after it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from desktop.icons import TrayState
from desktop.startup import last_face, remember_face
from supervisor.core import paths, runtime
from tests import fake_agents
from tests.conftest import SLEEP, Daemon, wait_for
from tests.desktop.conftest import BareDesktop, XDesktop
from tests.desktop.sni_host import StatusNotifierHost
from tests.desktop.test_tray_e2e import SCREENSHOTS, TrayApp, tray_app, with_demo_project

pytestmark = pytest.mark.slow
__all__ = ["tray_app"]  # the fixture, shared with the tray's other end-to-end tests

PERMISSION = {
    "notification_type": "permission_prompt",
    "message": "Claude needs your permission to use Bash",
}


@pytest.fixture
def agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake ``claude`` first on the PATH the app (and its runners) get."""
    bin_dir = tmp_path / "fake-bin"
    fake_agents.install(bin_dir, "claude")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def deliveries(home: Path) -> list[dict[str, Any]]:
    """The outbox's delivery rows of the desktop channel, read from the app's database."""
    with sqlite3.connect(f"file:{paths.db_path(home)}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT d.state, d.attempts, d.last_error, e.type, e.title FROM delivery d "
            "JOIN channel c ON c.id = d.channel_id JOIN event e ON e.id = d.event_id "
            "WHERE c.kind = 'desktop' ORDER BY d.id"
        ).fetchall()
    return [dict(row) for row in rows]


def test_a_notification_shows_stratavores_face_and_its_stop_button_stops_the_runner(
    agents: Path, tray_app: Callable[..., TrayApp], x_screen: XDesktop, tmp_path: Path
) -> None:
    desktop = x_screen
    app = with_demo_project(tray_app, desktop, tmp_path)
    api = app.api
    shown = desktop.notifications.mark()
    runner = api.post("/api/v1/runners", {
        "project": "demo", "profile": "claude", "prompt": "fix it",
        "env": {"FAKE_AGENT_SCRIPT": fake_agents.script(
            ["hook", "Notification", PERMISSION], ["sleep", 120])},
    })  # fmt: skip
    summary = f"runner {runner['id']} (demo) needs input"
    note = desktop.notifications.wait_for(lambda n: n["summary"] == summary, since=shown)
    assert note == {
        "app": "Stratavore",
        "summary": summary,
        "body": "Claude needs your permission to use Bash",
        "urgency": "NORMAL",
        "icon": str(app.home / "icons" / "stratavore-256.png"),
        "desktop_entry": "stratavore",  # installer/linux/stratavore.desktop
    }
    bubble = wait_for(lambda: desktop.visible("Dunst"), 10, 0.1, what="dunst's bubble")
    time.sleep(0.5)  # painted
    desktop.screenshot(SCREENSHOTS / "notification-needs-input.png", around=bubble)

    menu = desktop.notifications.choose("Stop", summary)
    # the body's click ("#", no name), then the runner's actions
    assert sorted(line.split(" (")[0] for line in menu if summary in line) == [
        "#", "#Open log", "#Stop",
    ]  # fmt: skip
    stopped = wait_for(
        lambda: (r := api.get(f"/api/v1/runners/{runner['id']}"))["state"] == "stopped" and r,
        20, 0.2, what="the runner stopped by the notification's button",
    )  # fmt: skip
    assert stopped["reason"]


def test_an_event_in_the_apps_first_second_is_a_desktop_notification(
    daemon_factory: Callable[..., Daemon],
    tray_app: Callable[..., TrayApp],
    x_screen: XDesktop,
    tmp_path: Path,
) -> None:
    """A runner left running by a killed headless supervisor ends while none runs: the app's
    embedded supervisor records it lost while it starts, before the tray icon shows and
    before the app's notifier is ready. That event reaches the desktop all the same."""
    desktop = x_screen
    (tmp_path / "demo").mkdir()
    headless = daemon_factory()
    headless.project("demo", tmp_path / "demo")
    rid = headless.launch("demo", SLEEP)["id"]
    pid = headless.wait_state(rid, "running")["pid"]
    headless.kill()
    os.killpg(pid, signal.SIGKILL)  # it ends while no supervisor runs
    psutil.wait_procs([psutil.Process(pid)], timeout=5)

    shown = desktop.notifications.mark()
    app = tray_app()
    lost = app.api.get(f"/api/v1/runners/{rid}")
    assert lost["state"] == "lost"  # recorded by the start, before the icon or the notifier
    note = desktop.notifications.wait_for(
        lambda n: n["summary"].startswith(f"runner {rid} "), since=shown
    )
    assert (note["app"], note["summary"]) == ("Stratavore", f"runner {rid} (demo) was lost")
    sent = [("runner.lost", "sent")]
    wait_for(
        lambda: [(d["type"], d["state"]) for d in deliveries(app.home)] == sent,
        10, 0.2, what="the lost runner's desktop delivery recorded as sent",
    )  # fmt: skip


@pytest.fixture
def bare_app(bare_desktop: BareDesktop, home: Path) -> Iterator[TrayApp]:
    """The app on a desktop with no tray and no notification server (yet)."""
    app = TrayApp(home, bare_desktop)
    yield app.start()
    app.close()


def test_a_desktop_notification_nobody_showed_is_retried_until_a_service_shows_it(
    bare_desktop: BareDesktop, bare_app: TrayApp, tmp_path: Path
) -> None:
    api = bare_app.api
    (tmp_path / "demo").mkdir()
    api.post("/api/v1/projects", {"name": "demo", "path": str(tmp_path / "demo")})
    # the embedded supervisor made it at its start
    assert [c["kind"] for c in api.get("/api/v1/notify/channels")] == ["desktop"]
    answer = api.post("/api/v1/notify/channels/desktop/test", {})
    assert answer == {
        "result": "retry",
        "reason": "The desktop notification was not shown: the notification service did not "
        "take it.",
    }

    failing = [sys.executable, "-c", "import sys; sys.exit(3)"]
    runner = api.post("/api/v1/runners", {"project": "demo", "command": failing})
    title = f"runner {runner['id']} (demo) failed"

    def retried() -> dict[str, Any] | None:
        row = next((d for d in deliveries(bare_app.home) if d["title"] == title), None)
        return row if row and row["attempts"] >= 2 else None

    row = wait_for(retried, 30, 0.2, what="a second attempt of the desktop delivery")
    assert (row["state"], row["last_error"]) == (
        "pending",
        "The desktop notification was not shown: the notification service did not take it.",
    )

    notifications = bare_desktop.start_dunst()  # the service comes: the next retry shows it
    note = notifications.wait_for(lambda n: n["summary"] == title, timeout=40)
    assert (note["app"], note["body"]) == ("Stratavore", "exited with status 3")
    wait_for(
        lambda: next(d for d in deliveries(bare_app.home) if d["title"] == title)["state"]
        == "sent",
        10, 0.2, what="the delivery recorded as sent",
    )  # fmt: skip


def tooltip(host: StatusNotifierHost, service: str) -> list[str]:
    """The item's tooltip, line by line (Qt puts it all in the title)."""
    tip = host.properties(service)["ToolTip"]  # (icon name, pixmaps, title, text)
    return [line for line in (tip[2] + "\n" + tip[3]).split("\n") if line]


def test_the_icon_shows_the_last_runs_face_at_once_then_the_live_one(
    bare_desktop: BareDesktop, home: Path
) -> None:
    host = StatusNotifierHost(bare_desktop.dbus_address)
    remember_face(home, TrayState.ATTENTION, 3, "Stratavore\n3 running\napi: needs input")
    app = TrayApp(home, bare_desktop)
    try:
        host.start()
        app.spawn()
        (service,) = wait_for(lambda: host.items, 20, 0.05, what="the app's item to register")
        # before the supervisor serves: the face the last run left, and that it starts
        assert runtime.read_runtime(home) is None
        assert tooltip(host, service) == [
            "Stratavore", "3 running", "api: needs input", "Stratavore is starting…",
        ]  # fmt: skip
        wait_for(lambda: tooltip(host, service)[:2] == ["Stratavore", "idle"], 30, 0.1,
                 what="the running app's tooltip")  # fmt: skip
        assert last_face(home)[:2] == (TrayState.IDLE, 0)  # kept for the next start
    finally:
        app.close()
        host.stop()


@pytest.mark.parametrize("host_first", [True, False], ids=["host-before-app", "host-after-app"])
def test_the_tray_icon_is_a_status_notifier_item_with_its_menu_on_dbus(
    bare_desktop: BareDesktop, home: Path, host_first: bool
) -> None:
    host = StatusNotifierHost(bare_desktop.dbus_address)
    app = TrayApp(home, bare_desktop)
    try:
        if host_first:
            host.start()
        app.start()
        if not host_first:
            time.sleep(2)  # the app is up, with no tray to show its icon in
            assert host.items == []
            host.start()  # the panel starts after the app, as at a login
        (service,) = wait_for(lambda: host.items, 20, 0.1, what="the app's item to register")
        # the icon shows "starting" until the supervisor's first snapshot reaches the tray
        wait_for(lambda: tooltip(host, service)[:2] == ["Stratavore", "idle"], 20, 0.1,
                 what="the running app's tooltip")  # fmt: skip
        item = host.properties(service)
        assert (item["Status"], item["Category"]) == ("Active", "ApplicationStatus")
        sizes = {(w, h) for w, h, _ in item["IconPixmap"]}
        assert {(16, 16), (22, 22), (24, 24), (32, 32)} <= sizes  # each drawn, none scaled

        host.about_to_show(service, 0)
        menu = host.menu(service)
        assert menu.labels()[:3] == ["Quick launch", "Runners (0)", "Recent sessions…"]
        assert menu.labels()[-3:] == ["Open dashboard", "Settings…", "Quit Stratavore"]
        assert not menu.find("Runners (0)").enabled

        host.click(service, menu.find("Quit Stratavore").id)  # no runner: it ends at once
        assert app.proc is not None
        assert app.proc.wait(20) == 0, app.logs()
    finally:
        app.close()
        host.stop()
