"""Fixtures for the tray app's tests.

Two kinds of tests live here, and they never share a display:

- in-process widget tests run Qt ``offscreen`` (pytest-qt's one ``qapp`` per session) on a
  qasync loop (:func:`qloop`);
- end-to-end tests run ``python -m desktop`` in a separate process on a private X display
  (Xvfb) with a real XEmbed tray (trayer) and a real notification server (dunst) on a private
  DBus session, and drive it with xdotool like a user would. Nothing touches the user's own
  desktop or session bus.

The X tools are Debian packages that ``python3 dev.py test`` installs when missing (as root or
with password-less sudo); when they cannot be installed, the end-to-end tests skip and say why.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, wait_for

# Before pytest-qt creates its one QApplication: the in-process tests never open a real window.
# The end-to-end app gets QT_QPA_PLATFORM=xcb in its own environment.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

SCREEN = "1280x800x24"
PANEL_HEIGHT = 32
# The binaries the end-to-end tests run, and the Debian package of each.
X_TOOLS = {
    "Xvfb": "xvfb",
    "trayer": "trayer",
    "dunst": "dunst",
    "dunstctl": "dunst",
    "dbus-daemon": "dbus",
    "xdotool": "xdotool",
    "xwininfo": "x11-utils",
}
# Run in a child on the test display: takes a screenshot (or, with no path, only proves that
# Qt's xcb plugin loads, which fails when one of its libraries is missing).
GRAB = """
import sys
from PySide6.QtGui import QGuiApplication
app = QGuiApplication(sys.argv[:1])
if len(sys.argv) > 1:
    x, y, w, h = (int(v) for v in sys.argv[2:6]) if len(sys.argv) > 2 else (0, 0, -1, -1)
    image = app.primaryScreen().grabWindow(0, x, y, w, h)
    sys.exit(0 if image.save(sys.argv[1], "PNG") else 1)
"""


# The fixtures of a test that needs more than Python: pytest-qt's one QApplication (which
# ``qloop`` and ``qtbot`` build on), and the X tools every fixture of the private desktop
# (``xvfb``, ``dbus_session``, ``xdesktop``, ``bare_desktop``...) starts from.
GUI_FIXTURES = frozenset({"qapp", "x_tools"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test that uses one of :data:`GUI_FIXTURES`, directly or through another
    fixture, as ``gui``: ``pytest -m "not gui"`` runs the headless suite (qutebrowser's
    conftest does the same with its ``qapp``)."""
    for item in items:
        if GUI_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.gui)


# --- in-process (offscreen) -------------------------------------------------------------
def _test_loop(qapp: Any) -> asyncio.AbstractEventLoop:
    """A qasync loop as the tray app runs one, but for one thing only tests meet. The app runs
    its loop to the end, so Qt steps the loop's tasks (through qasync's timers) only while it
    runs; a test stops it after each step, and Qt still processes events in between (qasync's
    last round after ``run_until_complete``, pytest-qt after each test phase). A background
    task stepped then (the bridge's poll) would fail with "no running event loop": here the
    loop stays set as the running one until the fixture ends."""
    import qasync

    class Loop(qasync.QEventLoop):
        def run_forever(self) -> None:
            try:
                super().run_forever()
            finally:
                asyncio.events._set_running_loop(self)  # qasync unset it

    loop = Loop(qapp)
    asyncio.events._set_running_loop(loop)
    return loop


@pytest.fixture
def qloop(qapp: Any) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync loop over pytest-qt's offscreen ``qapp`` (see :func:`_test_loop`), one that
    keeps running when its last window closes, like the app's (else closing a dialog would
    stop the loop under the test); an error in any background task fails the test at
    teardown."""
    quits = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    loop = _test_loop(qapp)
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    asyncio.set_event_loop(loop)
    yield loop
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    asyncio.events._set_running_loop(None)
    loop.close()
    asyncio.set_event_loop(None)
    qapp.setQuitOnLastWindowClosed(quits)
    if errors:
        context = errors[0]
        raise context.get("exception") or AssertionError(context["message"])


@pytest.fixture
def fake_claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tests/fake_agents``' fake ``claude`` first on PATH, never the real one: request it
    before the daemon (its runners get this PATH). Returns the JSON-lines file each of its
    runs is logged to (argv, cwd, session id)."""
    from tests import fake_agents

    bin_dir = tmp_path / "fake-bin"
    fake_agents.install(bin_dir, "claude")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    runs = tmp_path / "fake-claude-runs.jsonl"
    monkeypatch.setenv("FAKE_AGENT_LOG", str(runs))
    return runs


class Terminals:
    """A fake ``x-terminal-emulator`` first on PATH: ``desktop.terminal`` really finds and
    spawns it, and it records where it was opened and what it was told to run (after ``-e``)
    instead of opening a window."""

    def __init__(self, bin_dir: Path) -> None:
        self.log = bin_dir / "terminals.jsonl"
        program = bin_dir / "x-terminal-emulator"
        program.write_text(
            f"#!{sys.executable} -I\n"
            "import json, os, sys\n"
            f"with open({str(self.log)!r}, 'a') as log:\n"
            "    log.write(json.dumps({'cwd': os.getcwd(), 'command': sys.argv[2:]}) + '\\n')\n"
        )
        program.chmod(0o755)

    def opened(self, count: int) -> list[dict[str, Any]]:
        """The first ``count`` terminals opened (waiting for them: they are processes)."""
        def read() -> list[dict[str, Any]]:
            lines = self.log.read_text().splitlines() if self.log.exists() else []
            return [json.loads(line) for line in lines]

        return wait_for(lambda: len(read()) >= count and read(), what=f"{count} terminals")


@pytest.fixture
def terminals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Terminals:
    bin_dir = tmp_path / "terminal-bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return Terminals(bin_dir)


def agent_argv(*args: str) -> list[str]:
    """``stratavore-agent`` from source with ``args``, as a terminal is told to run it."""
    return [sys.executable, "-m", "supervisor.cli.agent", *args]


def fake_runs(log: Path) -> list[dict[str, Any]]:
    """The runs of :func:`fake_claude` so far."""
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# --- a private X desktop -------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """One X window as ``xwininfo -tree`` lists it; x and y are absolute."""

    id: int
    name: str
    wm_class: tuple[str, ...]
    x: int
    y: int
    width: int
    height: int

    @property
    def centre(self) -> tuple[int, int]:
        return self.x + self.width // 2, self.y + self.height // 2

    def inside(self, other: Window) -> bool:
        return (
            other.x <= self.x
            and other.y <= self.y
            and self.x + self.width <= other.x + other.width
            and self.y + self.height <= other.y + other.height
        )


TREE_LINE = re.compile(
    r"^\s*(0x[0-9a-f]+) (?:\"(.*)\"|\(has no name\)): \((.*)\)\s+"
    r"(\d+)x(\d+)[+-]-?\d+[+-]-?\d+\s+\+(-?\d+)\+(-?\d+)"
)


class Notifications:
    """What dunst showed: its rule runs a script per notification that appends one JSON line
    (app, summary, body, urgency, the icon file it shows, the desktop-entry hint) to a file.
    Its context menu (the notifications' actions) goes to a fake dmenu that picks the line
    :meth:`choose` asked for."""

    def __init__(self, path: Path, env: dict[str, str], choice: Path) -> None:
        self.path = path
        self.env = env
        self.choice = choice

    def choose(self, action: str, summary: str) -> list[str]:
        """Click ``action`` on the shown notification ``summary`` through dunst's context
        menu (``dunstctl context``), as a user picks it; the menu's lines."""
        menu = self.choice.with_suffix(".menu")
        menu.unlink(missing_ok=True)
        self.choice.write_text(f"#{action} ({summary})")
        subprocess.run(["dunstctl", "context"], env=self.env, check=True, timeout=10)
        lines = wait_for(lambda: menu.exists() and menu.read_text(), 10, 0.1, what="dunst's menu")
        return lines.splitlines()

    def all(self) -> list[dict[str, str]]:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def mark(self) -> int:
        """How many were shown so far: pass it to :meth:`wait_for` to see only newer ones."""
        return len(self.all())

    def wait_for(
        self, predicate: Callable[[dict[str, str]], bool], since: int = 0, timeout: float = 20.0
    ) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while not (found := [n for n in self.all()[since:] if predicate(n)]):
            if time.monotonic() > deadline:
                pytest.fail(f"no such notification in {timeout} s; dunst showed {self.all()}")
            time.sleep(0.1)
        return found[0]

    def close_all(self) -> None:
        subprocess.run(["dunstctl", "close-all"], env=self.env, capture_output=True)


@dataclass
class XDesktop:
    """The private desktop: an X display with a tray and a notification server on a session
    bus, and what a test does with it (xdotool, window lookups, screenshots)."""

    display: str
    dbus_address: str
    notifications: Notifications
    panel_id: int  # trayer's panel, where tray icons are embedded

    def env(self, **extra: str) -> dict[str, str]:
        """This process's environment pointed at the private desktop (for the app under test)."""
        env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "XAUTHORITY")}
        return {
            **env,
            "DISPLAY": self.display,
            "DBUS_SESSION_BUS_ADDRESS": self.dbus_address,
            "QT_QPA_PLATFORM": "xcb",
            **extra,
        }

    def run(self, *argv: str, check: bool = True) -> str:
        done = subprocess.run(argv, env=self.env(), capture_output=True, text=True, timeout=30)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def xdotool(self, *args: str) -> str:
        return self.run("xdotool", *args)

    def windows(self) -> list[Window]:
        return x_windows(self.display)

    @property
    def panel(self) -> Window:
        """The tray's panel, as it is now (it grows with each icon embedded)."""
        return next(w for w in self.windows() if w.id == self.panel_id)

    def visible(self, wm_class: str) -> list[Window]:
        """The viewable windows of a class (xdotool's --onlyvisible), with their geometry."""
        out = self.run("xdotool", "search", "--onlyvisible", "--class", wm_class, check=False)
        ids = {int(i) for i in out.split()}
        return [w for w in self.windows() if w.id in ids]

    def tray_icons(self, wm_class: str) -> list[Window]:
        """The visible windows of ``wm_class`` embedded in the tray's panel."""
        panel = self.panel
        return [w for w in self.visible(wm_class) if w.inside(panel)]

    def screenshot(self, path: Path, around: list[Window] | None = None, margin: int = 16) -> Path:
        """The screen as a PNG (Qt grabs it in a child on this display), cut to the windows in
        ``around`` plus a margin when given."""
        region: list[str] = []
        if around:
            left = max(0, min(w.x for w in around) - margin)
            top = max(0, min(w.y for w in around) - margin)
            right = max(w.x + w.width for w in around) + margin
            bottom = max(w.y + w.height for w in around) + margin
            region = [str(left), str(top), str(right - left), str(bottom - top)]
        path.parent.mkdir(parents=True, exist_ok=True)
        self.run(sys.executable, "-c", GRAB, str(path), *region)
        return path


def x_windows(display: str) -> list[Window]:
    """Every window on ``display`` (mapped or not), from ``xwininfo -root -tree``."""
    tree = subprocess.run(
        ["xwininfo", "-root", "-tree"], env={**os.environ, "DISPLAY": display},
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    found = []
    for line in tree.splitlines():
        match = TREE_LINE.match(line)
        if match:
            wid, name, classes, w, h, x, y = match.groups()
            wm_class = tuple(re.findall(r'"([^"]*)"', classes))
            found.append(Window(int(wid, 16), name or "", wm_class, int(x), int(y), int(w), int(h)))
    return found


def _missing_tools() -> list[str]:
    return [name for name in X_TOOLS if shutil.which(name) is None]


def _start(
    argv: list[str], log: Path, env: dict[str, str], stdout: int | None = None, **kwargs: Any
) -> subprocess.Popen:
    """A server of the private desktop, in its own session, its output to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv, env=env, stdout=out if stdout is None else stdout, stderr=out,
            start_new_session=True, **kwargs,
        )  # fmt: skip


def _end(proc: subprocess.Popen) -> None:
    """Politely, then firmly: SIGTERM, a deadline, SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture(scope="session")
def x_tools() -> None:
    """The X tools are installed: installed now when missing (as ``dev.py test`` does), or
    the test skips, naming what is missing."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the tray's end-to-end tests run on Linux with X11 tools only")
    if _missing_tools():
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        from dev import system_deps

        system_deps()
    missing = _missing_tools()
    if missing:
        packages = sorted({X_TOOLS[name] for name in missing})
        pytest.skip(
            f"{', '.join(missing)} not installed and not installable here (Debian packages "
            f"{', '.join(packages)}; `python3 dev.py test` installs them as root or with sudo)"
        )


@pytest.fixture(scope="session")
def x_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the desktop's servers write their output (shown when one fails to start)."""
    return tmp_path_factory.mktemp("xdesktop")


def start_xvfb(log: Path) -> tuple[subprocess.Popen, str]:
    """A virtual X screen on a free display number (``-displayfd``): it and its ``DISPLAY``."""
    read, write = os.pipe()
    argv = ["Xvfb", "-displayfd", str(write), "-screen", "0", SCREEN, "-nolisten", "tcp"]
    proc = _start(argv, log, dict(os.environ), pass_fds=(write,))
    os.close(write)
    written = b""
    # Read up to the newline: Xvfb writes the number and the newline apart, and dies when the
    # pipe is closed in between ("Cannot write display number to fd").
    while not written.endswith(b"\n") and select.select([read], [], [], 30)[0]:
        chunk = os.read(read, 32)
        if not chunk:
            break
        written += chunk
    os.close(read)
    number = written.decode().strip()
    if not number.isdigit():
        _end(proc)
        pytest.fail(f"Xvfb did not start:\n{log.read_text()}")
    return proc, f":{number}"


@pytest.fixture(scope="session")
def xvfb(x_tools: None, x_logs: Path) -> Iterator[str]:
    """A virtual X screen for the session; its ``DISPLAY``."""
    proc, display = start_xvfb(x_logs / "xvfb.log")
    # Qt's xcb plugin needs libraries Qt does not ship: without one, no X test can run.
    check = subprocess.run(
        [sys.executable, "-c", GRAB],
        env={**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"},
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        _end(proc)
        pytest.skip(f"Qt's xcb platform plugin does not load here:\n{check.stderr[-2000:]}")
    yield display
    _end(proc)


# A session bus without service activation: asking for org.freedesktop.Notifications before
# our dunst owns it must not start another dunst (from /usr/share/dbus-1/services, without
# our DISPLAY) that takes the name.
DBUS_CONFIG = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def start_bus(folder: Path) -> tuple[subprocess.Popen, str]:
    """A private DBus session bus (its files in ``folder``): it and its address."""
    config = folder / "session.conf"
    config.write_text(DBUS_CONFIG)
    argv = ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"]
    proc = _start(argv, folder / "dbus.log", dict(os.environ), stdout=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    address = proc.stdout.readline().decode().strip() if ready else ""
    if not address:
        _end(proc)
        pytest.fail(f"dbus-daemon did not start:\n{(folder / 'dbus.log').read_text()}")
    return proc, address


@pytest.fixture(scope="session")
def dbus_session(x_tools: None, x_logs: Path) -> Iterator[str]:
    """A private DBus session bus; its address (``DBUS_SESSION_BUS_ADDRESS``)."""
    proc, address = start_bus(x_logs)
    yield address
    _end(proc)


DUNSTRC = """\
[global]
    monitor = 0
    follow = none
    origin = top-left
    offset = 8x{offset}
    width = 360
    font = DejaVu Sans 10
    frame_width = 1
    show_indicators = no
    idle_threshold = 0
    min_icon_size = 32
    max_icon_size = 48
    dmenu = {dmenu}

[record]
    summary = "*"
    script = {script}
"""
# dunst runs it with: appname summary body icon urgency (and DUNST_* in its environment)
RECORD = """\
import json, os, sys
app, summary, body, icon, urgency = (sys.argv[1:] + [""] * 5)[:5]
with open({path!r}, "a") as out:
    out.write(json.dumps({{"app": app, "summary": summary, "body": body,
                          "urgency": urgency, "icon": os.environ.get("DUNST_ICON_PATH", ""),
                          "desktop_entry": os.environ.get("DUNST_DESKTOP_ENTRY", "")}}) + "\\n")
"""
# dunst's context menu: reads the action lines, answers the first that holds the choice.
DMENU = """\
import sys
from pathlib import Path
lines = sys.stdin.read().splitlines()
choice = Path({choice!r})
choice.with_suffix(".menu").write_text("\\n".join(lines))
wanted = choice.read_text() if choice.exists() else ""
print(next((line for line in lines if wanted and wanted in line), ""))
"""


def start_dunst(display: str, bus: str, folder: Path) -> tuple[subprocess.Popen, Notifications]:
    """dunst, the notification server, on ``bus``; it records what it shows in ``folder``."""
    record = folder / "record-notification"
    record.write_text(f"#!{sys.executable}\n" + RECORD.format(path=str(folder / "shown.jsonl")))
    record.chmod(0o755)
    dmenu = folder / "choose-action"
    dmenu.write_text(f"#!{sys.executable}\n" + DMENU.format(choice=str(folder / "choice")))
    dmenu.chmod(0o755)
    config = folder / "dunstrc"
    config.write_text(DUNSTRC.format(offset=PANEL_HEIGHT + 8, script=record, dmenu=dmenu))
    env = {**os.environ, "DISPLAY": display, "DBUS_SESSION_BUS_ADDRESS": bus}
    proc = _start(["dunst", "-config", str(config)], folder / "dunst.log", env)
    notifications = Notifications(folder / "shown.jsonl", env, folder / "choice")

    def serving() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"dunst exited:\n{(folder / 'dunst.log').read_text()}")
        asked = subprocess.run(["dunstctl", "is-paused"], env=env, capture_output=True)
        return asked.returncode == 0

    wait_for(serving, 20, 0.1, what="dunst to own org.freedesktop.Notifications")
    return proc, notifications


@pytest.fixture(scope="session")
def dunst(xvfb: str, dbus_session: str, x_logs: Path) -> Iterator[Notifications]:
    """dunst on the session's private bus."""
    proc, notifications = start_dunst(xvfb, dbus_session, x_logs)
    yield notifications
    _end(proc)


@pytest.fixture(scope="session")
def trayer(xvfb: str, x_logs: Path) -> Iterator[int]:
    """trayer, an XEmbed system tray, along the top left of the screen; its panel's id."""
    argv = [
        "trayer", "--edge", "top", "--align", "left", "--widthtype", "request",
        "--height", str(PANEL_HEIGHT), "--SetDockType", "true", "--transparent", "false",
        "--tint", "0x303030",
    ]  # fmt: skip
    proc = _start(argv, x_logs / "trayer.log", {**os.environ, "DISPLAY": xvfb})

    def panel() -> Window | None:
        if proc.poll() is not None:
            pytest.fail(f"trayer exited:\n{(x_logs / 'trayer.log').read_text()}")
        return next((w for w in x_windows(xvfb) if w.wm_class == ("panel", "trayer")), None)

    yield wait_for(panel, 20, 0.1, what="trayer's panel").id
    _end(proc)


@pytest.fixture(scope="session")
def xdesktop(xvfb: str, dbus_session: str, dunst: Notifications, trayer: int) -> XDesktop:
    """The whole private desktop; torn down after the last test (servers end in reverse)."""
    return XDesktop(xvfb, dbus_session, dunst, trayer)


@pytest.fixture
def x_screen(xdesktop: XDesktop) -> Iterator[XDesktop]:
    """The desktop for one test: no notification left over from the one before."""
    xdesktop.notifications.close_all()
    yield xdesktop
    xdesktop.notifications.close_all()


class BareDesktop(XDesktop):
    """A desktop of one test's own: an X display and a session bus with no tray and no
    notification server until the test starts them (:meth:`start_dunst`; a
    StatusNotifierItem host: ``tests/desktop/sni_host.py``)."""

    servers: list[subprocess.Popen]
    folder: Path

    def start_dunst(self) -> Notifications:
        proc, self.notifications = start_dunst(self.display, self.dbus_address, self.folder)
        self.servers.append(proc)
        return self.notifications


@pytest.fixture
def bare_desktop(xvfb: str, tmp_path: Path) -> Iterator[BareDesktop]:
    """A :class:`BareDesktop`; its servers end with the test."""
    folder = tmp_path / "bare-desktop"
    folder.mkdir()
    xproc, display = start_xvfb(folder / "xvfb.log")
    bus, address = start_bus(folder)
    desktop = BareDesktop(display, address, Notifications(folder / "shown.jsonl", {}, folder), -1)
    desktop.servers, desktop.folder = [xproc, bus], folder
    yield desktop
    for proc in reversed(desktop.servers):
        _end(proc)
