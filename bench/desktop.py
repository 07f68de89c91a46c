"""The tray app on a real X desktop: cold start to its tray icon, idle cost, dashboard open time.

One run, one machine, a private desktop as the end-to-end tests build it
(``tests/desktop/conftest.py``): Xvfb, a private DBus session with dunst, and trayer (an XEmbed
tray). Every app gets a fresh temp ``STRATAVORE_HOME`` (its ``api_port`` saved as 0 first),
the test keyring (``tests/keyring_backend.py``), empty agent-log dirs and its own
``XDG_CONFIG_HOME`` (the app's QSettings). The ``supervisor`` and ``desktop`` packages are
copied once at start, and every child imports that copy.

* (1) cold start: wall time from spawning ``python -m desktop`` to its icon embedded in
  trayer's panel and viewable (``xwininfo`` polled every ``--poll-interval``), median of
  ``--runs`` after one unmeasured warm-up (bytecode and page caches). Reference in the same
  run: a minimal PySide6 script that only shows a ``QSystemTrayIcon``. Where the time goes:
  wall time of the imports alone (``python -c "import ..."``), ``python -X importtime`` totals
  by package, the supervisor's ``started:`` log line, and one more cold start under
  ``py-spy record --idle`` (main thread: imports by package, the rest by our function).
* (2) idle: the app's own process (its runners are separate processes, not counted): RSS, USS,
  CPU % of one core over ``--idle-windows`` windows of ``--idle-window`` s after ``--warmup``
  s, wake-ups (context switches) per second and CPU by thread; with 0 runners, with
  ``--runners`` idle ``python -c "time.sleep()"`` runners launched through the API (the
  runner caps raised with PUT /api/v1/settings first), and with the dashboard open as well.
  Reference in the same run: the headless ``stratavore daemon`` with the same runners, also
  while this process polls it as the bridge does (its seven GETs every 2 s: the server side of
  the tray's polling), and the minimal tray script (the floor of any Qt tray icon). Then
  ``py-spy record`` of the idle app for ``--profile-s`` s in each case: which code wakes it.
* (3) dashboard: from asking the running app for its dashboard to the dashboard window
  viewable; asked two ways, alternately: by spawning a second ``python -m desktop
  --dashboard`` (which signals the first instance and exits: what a user does), and by sending
  the bare ``show`` message on the instance socket from here (the app's own part). First open
  (a fresh app each time: the window and ``desktop.dashboard``'s imports are made then) and
  re-open of the same window after closing it with ``WM_DELETE_WINDOW`` (as a window manager's
  close button does); median of ``--dashboard-runs`` each.

Targets: cold start <= 1 s; idle RSS <= 120 MB; idle CPU <= 0.2 % with 0 runners and <= 1 %
with ``--runners``. Run: ``.venv/bin/python bench/desktop.py``; writes
``bench/results/desktop.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import ctypes.util
import datetime
import hashlib
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from _common import (
    PYTHON,
    REPO,
    SOURCES,
    Daemon,
    Table,
    close_db,
    idle_usage,
    init_db,
    kill_marked,
    log_times,
    machine,
    marked_env,
    paths,
    poll_until,
    post_concurrently,
    ratio,
    runtime,
    settings,
    sigterm_as_interrupt,
    verdict,
    write_results,
)

# The tests' helpers for the private desktop (REPO after the snapshot: `supervisor` stays the
# copy). Importing the conftest sets QT_QPA_PLATFORM=offscreen here; children get xcb.
sys.path.append(str(REPO))
from supervisor.api.client import ApiClient  # the snapshot
from tests.desktop.conftest import (
    DBUS_CONFIG,
    DUNSTRC,
    PANEL_HEIGHT,
    RECORD,
    SCREEN,
    TREE_LINE,
    X_TOOLS,
    _end,
    _start,
    x_windows,
)
from tests.keyring_backend import keyring_env


def desktop_digest(root: Path) -> str:
    """A digest of ``root``/desktop/*.py."""
    digest = hashlib.sha256()
    for path in sorted((root / "desktop").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _snapshot_desktop() -> str:
    """Copy ``desktop/`` and the test keyring backend next to _common's ``supervisor`` copy;
    the digest of the desktop sources."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "desktop", SOURCES / "desktop", ignore=ignore)
    shutil.copy(REPO / "tests" / "keyring_backend.py", SOURCES / "keyring_backend.py")
    return desktop_digest(SOURCES)


DESKTOP_DIGEST = _snapshot_desktop()
KEYRING_BACKEND = "keyring_backend.FileBackend"  # from the snapshot dir, for app and daemon
APP_CLASS = "Stratavore"  # WM_CLASS of the app's windows (its application name)
REFERENCE_CLASS = "TrayReference"
REFERENCE = f"""
import sys
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QApplication, QSystemTrayIcon
app = QApplication(sys.argv[:1])
app.setApplicationName("{REFERENCE_CLASS}")
pixmap = QPixmap(32, 32)
pixmap.fill(QColor("#4a90d9"))
icon = QSystemTrayIcon(QIcon(pixmap))
icon.show()
sys.exit(app.exec())
"""
SLEEPER = [str(PYTHON), "-c", "import time; time.sleep(3600)"]
IMPORTS = {  # what a cold start imports before any work, and what the first dashboard adds
    "python -c pass": "pass",
    "import PySide6.QtWidgets": "import PySide6.QtWidgets",
    "import desktop.app, desktop.shell": "import desktop.app, desktop.shell",
    "+ import desktop.dashboard": "import desktop.app, desktop.shell, desktop.dashboard",
}
COLD_TARGET_S = 1.0
RSS_TARGET_MB = 120.0
CPU_TARGET_IDLE = 0.2
CPU_TARGET_RUNNERS = 1.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="measured cold starts of each")
    p.add_argument("--dashboard-runs", type=int, default=3, help="first opens, and re-opens")
    p.add_argument("--runners", type=int, default=200, help="idle runners of the second case")
    p.add_argument("--warmup", type=float, default=5.0, metavar="S", help="excluded after start")
    p.add_argument("--idle-window", type=float, default=10.0, metavar="S", help="CPU window")
    p.add_argument("--idle-windows", type=int, default=3, help="consecutive CPU windows")
    p.add_argument("--profile-s", type=float, default=10.0, metavar="S", help="0: no py-spy")
    p.add_argument("--poll-interval", type=float, default=0.01, metavar="S")
    p.add_argument("--import-runs", type=int, default=5, help="runs of each import timing")
    p.add_argument(
        "--parts",
        default="cold,dashboard,idle",
        help="which parts to run, comma-separated: cold (1), dashboard (3), idle (2)",
    )
    args = p.parse_args()
    args.parts = set(args.parts.split(","))
    if unknown := args.parts - {"cold", "dashboard", "idle"}:
        p.error(f"unknown parts: {', '.join(sorted(unknown))}")
    return args


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def median_of(values: list[float]) -> dict[str, Any]:
    """Median, min and max of seconds, and every value, rounded to the millisecond."""
    return {
        "median_s": round(statistics.median(values), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
        "values_s": [round(v, 3) for v in values],
    }


# --- the private desktop -------------------------------------------------------------------
class Desktop:
    """Xvfb, a DBus session bus with dunst, and trayer, as the conftest's fixtures start them;
    every one marked for :func:`kill_marked`, and ended in reverse order by :meth:`close`."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="stratavore-bench-xdesktop-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.display = ""
        self.dbus_address = ""
        self.panel_id = 0

    def __enter__(self) -> Desktop:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        missing = [name for name in X_TOOLS if shutil.which(name) is None]
        if missing:
            packages = sorted({X_TOOLS[name] for name in missing})
            raise SystemExit(f"missing {', '.join(missing)} (Debian: {' '.join(packages)})")
        self._xvfb()
        self._dbus()
        self._dunst()
        self._trayer()

    def _xvfb(self) -> None:
        read, write = os.pipe()
        argv = ["Xvfb", "-displayfd", str(write), "-screen", "0", SCREEN, "-nolisten", "tcp"]
        self.procs.append(_start(argv, self.dir / "xvfb.log", marked_env("x"), pass_fds=(write,)))
        os.close(write)
        written = b""
        # Up to the newline: Xvfb writes the number and the newline apart (see the conftest).
        while not written.endswith(b"\n") and select.select([read], [], [], 30)[0]:
            chunk = os.read(read, 32)
            if not chunk:
                break
            written += chunk
        os.close(read)
        if not written.strip().isdigit():
            raise RuntimeError(f"Xvfb did not start:\n{(self.dir / 'xvfb.log').read_text()}")
        self.display = f":{written.decode().strip()}"

    def _dbus(self) -> None:
        config = self.dir / "session.conf"
        config.write_text(DBUS_CONFIG)
        argv = ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"]
        proc = _start(argv, self.dir / "dbus.log", marked_env("x"), stdout=subprocess.PIPE)
        self.procs.append(proc)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        self.dbus_address = proc.stdout.readline().decode().strip() if ready else ""
        if not self.dbus_address:
            raise RuntimeError(f"dbus-daemon did not start:\n{(self.dir / 'dbus.log').read_text()}")

    def _dunst(self) -> None:
        record = self.dir / "record-notification"
        record.write_text(f"#!{sys.executable}\n" + RECORD.format(path=str(self.dir / "shown")))
        record.chmod(0o755)
        config = self.dir / "dunstrc"
        # no notification's action is chosen here: dunst's menu command only has to exist
        config.write_text(DUNSTRC.format(offset=PANEL_HEIGHT + 8, script=record, dmenu="/bin/true"))
        env = self.env()
        self.procs.append(_start(["dunst", "-config", str(config)], self.dir / "dunst.log", env))
        poll_until(
            lambda: subprocess.run(["dunstctl", "is-paused"], env=env, capture_output=True)
            .returncode == 0,
            20, 0.1, "dunst to own org.freedesktop.Notifications",
        )  # fmt: skip

    def _trayer(self) -> None:
        argv = [
            "trayer", "--edge", "top", "--align", "left", "--widthtype", "request",
            "--height", str(PANEL_HEIGHT), "--SetDockType", "true", "--transparent", "false",
            "--tint", "0x303030",
        ]  # fmt: skip
        self.procs.append(_start(argv, self.dir / "trayer.log", self.env()))
        panel = poll_until(
            lambda: next((w for w in x_windows(self.display) if w.wm_class == ("panel", "trayer")),
                         None),
            20, 0.1, "trayer's panel",
        )  # fmt: skip
        self.panel_id = panel.id

    def close(self) -> None:
        for proc in reversed(self.procs):
            _end(proc)
        kill_marked("x")
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- what is on the screen -------------------------------------------------------------
    def env(self, label: str = "x", **extra: str) -> dict[str, str]:
        """This run's environment, marked with ``label``, pointed at the private desktop."""
        base = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "XAUTHORITY")}
        return marked_env(label, {
            **base, "DISPLAY": self.display, "DBUS_SESSION_BUS_ADDRESS": self.dbus_address,
            "QT_QPA_PLATFORM": "xcb", **extra,
        })  # fmt: skip

    def xrun(self, *argv: str) -> str:
        env = {"PATH": os.environ["PATH"], "DISPLAY": self.display}
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30).stdout

    def tray_icon(self, wm_class: str) -> int | None:
        """The id of a viewable window of ``wm_class`` inside trayer's panel (embedded), else
        None. One ``xwininfo`` per call until embedded, then one more for the map state."""
        for line in self.xrun("xwininfo", "-tree", "-id", str(self.panel_id)).splitlines():
            match = TREE_LINE.match(line)
            if match and re.findall(r'"([^"]*)"', match.group(3))[-1:] == [wm_class]:
                wid = int(match.group(1), 16)
                return wid if "IsViewable" in self.xrun("xwininfo", "-id", str(wid)) else None
        return None

    def visible(self, wm_class: str) -> set[int]:
        """Ids of the viewable windows of ``wm_class`` (xdotool's ``--onlyvisible``)."""
        out = self.xrun("xdotool", "search", "--onlyvisible", "--class", f"^{wm_class}$")
        return {int(i) for i in out.split()}

    def size(self, wid: int) -> tuple[int, int]:
        info = self.xrun("xwininfo", "-id", str(wid))
        width = re.search(r"Width: (\d+)", info)
        height = re.search(r"Height: (\d+)", info)
        return (int(width.group(1)) if width else 0, int(height.group(1)) if height else 0)

    def close_window(self, wid: int) -> None:
        """Ask a window to close as a window manager's close button does: a WM_DELETE_WINDOW
        client message. (No window manager runs here, and xdotool 3.2016's ``windowclose``
        destroys the window under the client; ``windowunmap`` leaves Qt believing it shown.)"""
        x11 = ctypes.cdll.LoadLibrary(ctypes.util.find_library("X11") or "libX11.so.6")
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XInternAtom.restype = ctypes.c_ulong
        x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        x11.XSendEvent.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.c_int,
            ctypes.c_long,
            ctypes.c_void_p,
        ]
        x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        display = x11.XOpenDisplay(self.display.encode())
        if not display:
            raise RuntimeError(f"cannot open display {self.display}")
        event = _XEvent()
        event.xclient.type = 33  # ClientMessage
        event.xclient.window = wid
        event.xclient.message_type = x11.XInternAtom(display, b"WM_PROTOCOLS", 0)
        event.xclient.format = 32
        event.xclient.data[0] = x11.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
        event.xclient.data[1] = 0  # CurrentTime
        x11.XSendEvent(display, wid, 0, 0, ctypes.byref(event))
        x11.XFlush(display)
        x11.XCloseDisplay(display)


class _XClientMessageEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p), ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong), ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]  # fmt: skip


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _XClientMessageEvent), ("pad", ctypes.c_long * 24)]


# --- the processes measured ----------------------------------------------------------------
class TrayProcess:
    """``python -m desktop`` (or the reference script) on the private desktop; the app on a
    fresh data dir whose ``api_port`` is saved as 0."""

    def __init__(self, desktop: Desktop, label: str, reference: bool = False) -> None:
        self.desktop = desktop
        self.label = label
        self.reference = reference
        self.home = Path(tempfile.mkdtemp(prefix=f"stratavore-bench-{label}-"))
        self.env = desktop.env(
            label=label, STRATAVORE_HOME=str(self.home), PYTHONPATH=str(SOURCES),
            STRATAVORE_NO_LOGIN_PATH="1", XDG_CONFIG_HOME=str(self.home / "config"),
        )  # fmt: skip
        self.wm_class = REFERENCE_CLASS if reference else APP_CLASS
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0  # time.time() at spawn, for the log's timestamps
        self.icon = 0
        self.argv = [str(PYTHON)] + (["-c", REFERENCE] if reference else ["-m", "desktop"])

    def start(self, poll_interval: float) -> float:
        """Spawn it; seconds until its tray icon is embedded and viewable."""
        if not self.reference:
            init_db(paths.db_path(self.home))
            try:
                settings.save_setting("api_port", 0)
            finally:
                close_db()
            (self.home / "welcomed").touch()  # past the first run's welcome window
        with open(self.home / "output.log", "ab") as out:
            self.spawned_at = time.time()
            started = time.perf_counter()
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=out, cwd=self.home
            )
        self.icon = poll_until(self._icon, 60, poll_interval, f"{self.label}'s tray icon")
        return time.perf_counter() - started

    def _icon(self) -> int | None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.label} exited ({self.proc.returncode}):\n{self.logs()}")
        return self.desktop.tray_icon(self.wm_class)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def client(self) -> ApiClient:
        def serving() -> bool:
            info = runtime.read_runtime(self.home)
            return info is not None and info.pid == self.pid

        poll_until(serving, 30, 0.05, "the app's runtime file")
        return ApiClient.discover(self.home)

    def supervisor_started_s(self) -> float | None:
        """Seconds from spawn to the embedded supervisor's ``started:`` log line."""
        stamps = log_times(self.home / "logs" / "supervisor.log", "started: supervisor")
        return round(stamps[0] - self.spawned_at, 3) if stamps else None

    def second_launch(self) -> tuple[subprocess.Popen[str], float]:
        """``python -m desktop --dashboard`` on the same data dir; its perf_counter at spawn."""
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(PYTHON), "-m", "desktop", "--dashboard"], env=self.env, cwd=self.home,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        return proc, started

    def instance_socket(self) -> Path:
        """Where the app's QLocalServer listens (``desktop.instance``): ``$TMPDIR/<key>``."""
        from desktop.app import instance_key  # the snapshot's

        return Path(os.environ.get("TMPDIR", "/tmp")) / instance_key(self.home)

    def send_show(self) -> float:
        """What a second launch sends once it has started (``desktop.instance``), sent from
        here; the perf_counter when sent."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(self.instance_socket()))
            started = time.perf_counter()
            sock.sendall(b"show\n")
        return started

    def logs(self) -> str:
        out = self.home / "output.log"
        log = self.home / "logs" / "supervisor.log"
        return (out.read_text() if out.exists() else "") + (
            log.read_text()[-4000:] if log.exists() else ""
        )

    def close(self) -> None:
        """SIGTERM (the app quits as from its menu), then every process of this label (its
        runners are left running by design) is killed, and the icon has left the tray."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        kill_marked(self.label)
        if self.proc is not None:
            poll_until(lambda: self.desktop.tray_icon(self.wm_class) is None, 20, 0.05,
                       "the icon to leave the tray")  # fmt: skip
        shutil.rmtree(self.home, ignore_errors=True)


# --- (1) cold start ------------------------------------------------------------------------
def cold_starts(desktop: Desktop, args: argparse.Namespace) -> dict[str, Any]:
    """The app and the reference alternately, one unmeasured warm-up each first."""
    walls: dict[str, list[float]] = {"app": [], "reference": []}
    supervisor_up: list[float] = []
    warmup: dict[str, float] = {}
    for n in range(args.runs + 1):
        for kind in ("reference", "app"):
            tray = TrayProcess(desktop, f"cold-{kind}-{n}", reference=kind == "reference")
            try:
                wall = tray.start(args.poll_interval)
                if n == 0:
                    warmup[kind] = round(wall, 3)
                else:
                    walls[kind].append(wall)
                    if kind == "app":  # the supervisor starts after the icon shows
                        supervisor_up.append(
                            poll_until(tray.supervisor_started_s, 30, 0.05, "`started:` logged")
                        )
                say(f"  cold start {kind} #{n}{' (warm-up)' if n == 0 else ''}: {wall:.3f} s")
            finally:
                tray.close()
    out = {kind: median_of(values) for kind, values in walls.items()}
    out["warmup_s"] = warmup
    out["supervisor_started_s"] = median_of(supervisor_up) if supervisor_up else None
    out["ratio"] = ratio(out["app"]["median_s"], out["reference"]["median_s"])
    return out


def import_costs(args: argparse.Namespace) -> dict[str, Any]:
    """Wall time of the imports alone (median), and ``-X importtime`` totals by package."""
    scratch = Path(tempfile.mkdtemp(prefix="stratavore-bench-imports-"))
    env = marked_env("imports", {**os.environ, "PYTHONPATH": str(SOURCES)})
    out: dict[str, Any] = {"wall": {}}
    try:
        walls: dict[str, list[float]] = {label: [] for label in IMPORTS}
        for _ in range(args.import_runs):  # interleaved, so drift hits every variant alike
            for label, code in IMPORTS.items():
                started = time.perf_counter()
                subprocess.run([str(PYTHON), "-c", code], env=env, cwd=scratch, check=True)
                walls[label].append(time.perf_counter() - started)
        out["wall"] = {label: median_of(values) for label, values in walls.items()}
        for label in ("import desktop.app, desktop.shell", "+ import desktop.dashboard"):
            done = subprocess.run(
                [str(PYTHON), "-X", "importtime", "-c", IMPORTS[label]],
                env=env, cwd=scratch, capture_output=True, text=True, check=True,
            )  # fmt: skip
            out.setdefault("importtime", {})[label] = importtime_totals(done.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def importtime_totals(stderr: str) -> dict[str, Any]:
    """``-X importtime`` output: total self time, and self time by top-level package."""
    by_package: collections.Counter[str] = collections.Counter()
    modules = 0
    for line in stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or "self" in parts[0]:
            continue
        modules += 1
        by_package[parts[2].strip().split(".")[0]] += int(parts[0].split(":")[1])
    total = sum(by_package.values())
    return {
        "total_ms": round(total / 1000, 1),
        "modules": modules,
        "by_package_ms": {k: round(v / 1000, 1) for k, v in by_package.most_common(12)},
    }


# --- (2) idle ------------------------------------------------------------------------------
def threads_of(pid: int) -> dict[int, tuple[str, float, int]]:
    """Each thread of ``pid``: its name, CPU seconds and context switches so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        switches = sum(
            int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line
        )
        found[int(task.name)] = (name, (int(stat[11]) + int(stat[12])) / ticks, switches)
    return found


def measure_idle(pid: int, args: argparse.Namespace) -> dict[str, Any]:
    """After ``--warmup`` s: CPU windows and RSS (:func:`idle_usage`), USS, and over the same
    span wake-ups per second and CPU seconds by thread name."""
    time.sleep(args.warmup)
    before, started = threads_of(pid), time.perf_counter()
    usage = idle_usage(pid, args.idle_window, args.idle_windows)
    after, span = threads_of(pid), time.perf_counter() - started
    cpu_by_thread: collections.Counter[str] = collections.Counter()
    switches_by_thread: collections.Counter[str] = collections.Counter()
    for tid, (name, cpu, count) in after.items():
        _, cpu_before, count_before = before.get(tid, (name, 0.0, 0))
        cpu_by_thread[name] += cpu - cpu_before
        switches_by_thread[name] += count - count_before
    memory = psutil.Process(pid).memory_full_info()
    return {
        **usage,
        "uss_mb": round(memory.uss / 2**20, 1),
        "threads": len(after),
        "wakeups_per_s": round(sum(switches_by_thread.values()) / span, 1),
        "wakeups_per_s_by_thread": {
            k: round(v / span, 1) for k, v in switches_by_thread.most_common() if v > 0
        },
        "cpu_s_by_thread": {k: round(v, 2) for k, v in cpu_by_thread.most_common() if v > 0},
    }


def launch_runners(client: ApiClient, home: Path, n: int, timeout: float = 300) -> float:
    """Raise the runner caps to ``n``, make a project and launch ``n`` idle runners through
    the API; seconds until all are ``running``."""
    for key in ("max_runners_per_project", "max_runners_global"):
        client.request("PUT", f"/api/v1/settings/{key}", {"value": n})
    folder = home / "projects" / "bench"
    folder.mkdir(parents=True)
    client.post("/api/v1/projects", {"name": "bench", "path": str(folder)})
    started = time.perf_counter()
    body = {"project": "bench", "command": SLEEPER}
    asyncio.run(
        post_concurrently(client.base_url, client.token or "", [("/api/v1/runners", body)] * n, 16)
    )
    poll_until(
        lambda: [r["state"] for r in client.get("/api/v1/runners")].count("running") == n,
        timeout, 0.2, f"{n} runners running",
    )  # fmt: skip
    return round(time.perf_counter() - started, 2)


PYSPY = PYTHON.parent / "py-spy"
PYSPY_RATE = 1000  # Hz: an idle app is awake ~1 % of the time, 100 Hz would see a few samples
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


def read_stacks(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    """py-spy's raw (collapsed) output: each stack as (function, file) frames, outermost
    first, with its sample count."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if count.isdigit():
            frames = [(m["func"], m["file"]) if (m := FRAME.match(f)) else (f, "")
                      for f in stack.split(";")]  # fmt: skip
            stacks.append((frames, int(count)))
    return stacks


def _ours(file: str) -> bool:
    return file.startswith(("desktop/", "supervisor/"))


def _name(frame: tuple[str, str]) -> str:
    return f"{frame[0]} ({frame[1]})" if frame[1] else frame[0]


def profile(pid: int, seconds: float, label: str) -> dict[str, Any]:
    """``py-spy record`` of a running ``pid`` (idle threads left out, the process not paused):
    where its awake time goes, by our innermost function and by leaf function."""
    out = Path(tempfile.mkdtemp(prefix="stratavore-bench-pyspy-")) / "stacks.txt"
    argv = [
        str(PYSPY), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate",
        str(PYSPY_RATE), "--format", "raw", "--function", "--nonblocking", "--output", str(out),
    ]  # fmt: skip
    done = subprocess.run(argv, env=marked_env(f"pyspy-{label}"), capture_output=True, text=True)
    try:
        if not out.exists():
            return {"error": done.stderr[-500:]}
        stacks = read_stacks(out)
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    ours: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        leaves[_name(frames[-1])] += count
        mine = [f for f in frames if _ours(f[1])]
        ours[_name(mine[-1]) if mine else "(none of ours) " + _name(frames[-1])] += count
    total = sum(count for _, count in stacks)
    return {
        "seconds": seconds,
        "rate_hz": PYSPY_RATE,
        "awake_samples": total,
        "awake_percent": round(total / (seconds * PYSPY_RATE) * 100, 2),
        "by_innermost_function_of_ours": dict(ours.most_common(15)),
        "by_leaf_function": dict(leaves.most_common(15)),
    }


def startup_profile(desktop: Desktop, args: argparse.Namespace) -> dict[str, Any]:
    """One more cold start, under ``py-spy record --idle`` (slower than unobserved), until the
    icon shows: the main thread's samples as imports (by the package whose module body runs)
    and the rest (by our innermost function)."""
    app = TrayProcess(desktop, "startup-profile")
    out = app.home / "stacks.txt"
    app.argv = [
        str(PYSPY), "record", "--idle", "--rate", str(PYSPY_RATE), "--format", "raw",
        "--function", "--nonblocking", "--output", str(out), "--", *app.argv,
    ]  # fmt: skip
    try:
        wall = app.start(args.poll_interval)
        assert app.proc is not None
        app.proc.send_signal(signal.SIGINT)  # py-spy writes its file, and kills the app
        app.proc.wait(30)
        app.instance_socket().unlink(missing_ok=True)  # which the app had no time to remove
        stacks = read_stacks(out)
    finally:
        app.close()
    phases: collections.Counter[str] = collections.Counter()
    entry = ("<module>", "desktop/__main__.py")
    for frames, count in stacks:
        if entry not in frames:
            continue  # another thread, or the interpreter's own start (site, runpy)
        bodies = [file for func, file in frames[frames.index(entry) + 1 :] if func == "<module>"]
        if bodies:
            phases["import " + bodies[-1].split("/")[0].removesuffix(".py")] += count
        else:
            mine = [f for f in frames if _ours(f[1])]
            phases[_name(mine[-1]) if mine else _name(frames[-1])] += count
    total = sum(phases.values())
    imports = sum(v for k, v in phases.items() if k.startswith("import "))
    return {
        "wall_s": round(wall, 3),
        "main_thread_samples": total,
        "imports_percent": round(imports / total * 100, 1) if total else None,
        "top_ms": {k: round(v / PYSPY_RATE * 1000) for k, v in phases.most_common(20)},
    }


def idle_app(desktop: Desktop, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    app = TrayProcess(desktop, "idle-app")
    try:
        app.start(args.poll_interval)
        client = app.client()
        say("idle: app, 0 runners")
        out["runners_0"] = measure_idle(app.pid, args)
        if args.profile_s:
            say(f"  py-spy, {args.profile_s:g} s")
            out["runners_0"]["profile"] = profile(app.pid, args.profile_s, "app-0")
        say(f"idle: app, launching {args.runners} runners")
        out["launch_s"] = launch_runners(client, app.home, args.runners)
        say(f"idle: app, {args.runners} runners")
        out["runners_n"] = measure_idle(app.pid, args)
        if args.profile_s:
            say(f"  py-spy, {args.profile_s:g} s")
            out["runners_n"]["profile"] = profile(app.pid, args.profile_s, "app-n")
        say(f"idle: app, {args.runners} runners, dashboard open")
        second, _ = app.second_launch()
        second.communicate(timeout=60)
        poll_until(lambda: desktop.visible(APP_CLASS) - {app.icon}, 30, 0.05, "the dashboard")
        out["runners_n_dashboard"] = measure_idle(app.pid, args)
        if args.profile_s:
            say(f"  py-spy, {args.profile_s:g} s")
            out["runners_n_dashboard"]["profile"] = profile(app.pid, args.profile_s, "app-d")
        client.session.close()
    finally:
        app.close()
    return out


class BridgePoller:
    """The bridge's refresh (``desktop.bridge.Bridge.refresh``: its seven GETs, every
    ``REFRESH_S``) sent to a daemon from a thread of this process: what serving the tray's
    polling costs a supervisor."""

    def __init__(self, client: ApiClient) -> None:
        from desktop.bridge import REFRESH_S  # the snapshot's

        self.client = client
        self.interval = REFRESH_S
        self.last_event_id = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BridgePoller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            get = self.client.get
            for path in ("status", "runners", "projects", "profiles", "budgets"):
                get(f"/api/v1/{path}")
            get("/api/v1/usage/daily", since=datetime.date.today().isoformat())
            events = get("/api/v1/events", since=self.last_event_id, limit=200)
            self.last_event_id = events[-1]["id"] if events else self.last_event_id


def idle_daemon(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with Daemon("idle", {}) as daemon:
        client = ApiClient(daemon.url, daemon.token)
        say("idle: daemon, 0 runners")
        out["runners_0"] = measure_idle(daemon.pid, args)
        say("idle: daemon, 0 runners, polled as the bridge polls")
        with BridgePoller(ApiClient(daemon.url, daemon.token)):
            out["runners_0_polled"] = measure_idle(daemon.pid, args)
        say(f"idle: daemon, launching {args.runners} runners")
        out["launch_s"] = launch_runners(client, daemon.home, args.runners)
        say(f"idle: daemon, {args.runners} runners")
        out["runners_n"] = measure_idle(daemon.pid, args)
        say(f"idle: daemon, {args.runners} runners, polled as the bridge polls")
        with BridgePoller(ApiClient(daemon.url, daemon.token)):
            out["runners_n_polled"] = measure_idle(daemon.pid, args)
        client.session.close()
    return out


def idle_reference(desktop: Desktop, args: argparse.Namespace) -> dict[str, Any]:
    tray = TrayProcess(desktop, "idle-reference", reference=True)
    try:
        tray.start(args.poll_interval)
        say("idle: minimal tray script")
        return measure_idle(tray.pid, args)
    finally:
        tray.close()


# --- (3) dashboard ---------------------------------------------------------------------------
WAYS = {
    "second_launch": "`python -m desktop --dashboard` spawned",
    "message": "the bare `show` message on the instance socket",
}


def open_dashboard(desktop: Desktop, app: TrayProcess, way: str, interval: float) -> dict[str, Any]:
    """Ask the app for its dashboard (``way``, one of :data:`WAYS`); seconds until a dashboard
    window is viewable, and (a second launch) until that launch has exited."""
    second = None
    if way == "second_launch":
        second, started = app.second_launch()
    else:
        started = app.send_show()

    def window() -> int | None:
        return next(iter(desktop.visible(APP_CLASS) - {app.icon}), None)

    wid = poll_until(window, 60, interval, "the dashboard window")
    opened: dict[str, Any] = {"window": wid, "shown_s": time.perf_counter() - started}
    if second is not None:
        output, _ = second.communicate(timeout=60)
        opened["second_launch_ended_s"] = time.perf_counter() - started
        if second.returncode != 0 or "already running" not in output:
            raise RuntimeError(f"the second launch answered {second.returncode}: {output}")
    width, height = desktop.size(wid)
    if width < 300 or height < 200:
        raise RuntimeError(f"a {width}x{height} window appeared, not the dashboard")
    return opened


def dashboards(desktop: Desktop, args: argparse.Namespace) -> dict[str, Any]:
    """First opens (a fresh app for each, each way alternately), then re-opens of the last
    app's window (closed with WM_DELETE_WINDOW in between), each way alternately."""
    first: dict[str, list[float]] = {way: [] for way in WAYS}
    again: dict[str, list[float]] = {way: [] for way in WAYS}
    ended: list[float] = []
    for n in range(args.dashboard_runs):
        for way in WAYS:
            app = TrayProcess(desktop, f"dashboard-{way}-{n}")
            try:
                app.start(args.poll_interval)
                app.client().session.close()  # its supervisor serves (it starts after the icon)
                time.sleep(2.0)  # the app's start has settled (first refreshes done)
                opened = open_dashboard(desktop, app, way, args.poll_interval)
                first[way].append(opened["shown_s"])
                ended.extend([opened["second_launch_ended_s"]] if way == "second_launch" else [])
                say(f"  dashboard first open #{n + 1}, {way}: {opened['shown_s']:.3f} s")
                if n == args.dashboard_runs - 1 and way == list(WAYS)[-1]:
                    reopen(desktop, app, opened["window"], again, args)
            finally:
                app.close()
    return {
        "first_open": {way: median_of(values) for way, values in first.items()},
        "reopen": {way: median_of(values) for way, values in again.items()},
        "second_launch_ended": median_of(ended),
    }


def reopen(
    desktop: Desktop,
    app: TrayProcess,
    window: int,
    shown: dict[str, list[float]],
    args: argparse.Namespace,
) -> None:
    """Close the dashboard as a window manager would and ask for it again, each way
    ``--dashboard-runs`` times; each time taken is appended to ``shown``."""
    for m in range(args.dashboard_runs):
        for way in WAYS:
            desktop.close_window(window)
            poll_until(lambda w=window: w not in desktop.visible(APP_CLASS), 20, 0.05,
                       "the dashboard to close")  # fmt: skip
            time.sleep(1.0)
            opened = open_dashboard(desktop, app, way, args.poll_interval)
            window = opened["window"]
            shown[way].append(opened["shown_s"])
            say(f"  dashboard re-open #{m + 1}, {way}: {opened['shown_s']:.3f} s")


# --- the run ---------------------------------------------------------------------------------
def main() -> int:
    args = parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="stratavore-bench-desktop-"))
    # Both supervisors, and the reference, see the test keyring and no agent logs of the user.
    os.environ.update({
        **keyring_env(scratch / "keyring.json", KEYRING_BACKEND),
        "CLAUDE_CONFIG_DIR": str(scratch / "claude-config"),
        "CODEX_HOME": str(scratch / "codex-home"),
    })  # fmt: skip
    results: dict[str, Any] = {}
    try:
        with sigterm_as_interrupt(), Desktop() as desktop:
            say(f"private desktop on {desktop.display} (trayer panel {desktop.panel_id:#x})")
            if "cold" in args.parts:
                say(f"(1) cold start, {args.runs} runs each after a warm-up")
                results["cold_start"] = cold_starts(desktop, args)
                if args.profile_s:
                    say("(1) one more cold start under py-spy")
                    results["startup_profile"] = startup_profile(desktop, args)
                say("(1) imports")
                results["imports"] = import_costs(args)
            if "dashboard" in args.parts:
                say(f"(3) dashboard, {args.dashboard_runs} first opens and re-opens")
                results["dashboard"] = dashboards(desktop, args)
            if "idle" in args.parts:
                say("(2) idle")
                results["idle_app"] = idle_app(desktop, args)
                results["idle_reference_tray"] = idle_reference(desktop, args)
        if "idle" in args.parts:
            results["idle_daemon"] = idle_daemon(args)
    finally:
        kill_marked()
        shutil.rmtree(scratch, ignore_errors=True)
    tables = render(results, args)
    print(tables)
    target = write_results("desktop", {
        "machine": {**machine(), "desktop_sources_sha256": DESKTOP_DIGEST,
                    "desktop_changed_during_run": desktop_digest(REPO) != DESKTOP_DIGEST},
        "args": {**vars(args), "parts": sorted(args.parts)},
        "targets": {"cold_start_s": COLD_TARGET_S, "idle_rss_mb": RSS_TARGET_MB,
                    "idle_cpu_percent_0": CPU_TARGET_IDLE,
                    "idle_cpu_percent_n": CPU_TARGET_RUNNERS},
        **results,
        "table": tables,
    })  # fmt: skip
    print(f"\nwrote {target}")
    return 0


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    """The tables of the parts that ran."""
    parts = []
    if "cold_start" in results:
        parts.append(render_cold(results, args))
    if "idle_app" in results:
        parts.append(render_idle(results, args))
    if "dashboard" in results:
        parts.append(render_dashboard(results, args))
    return "\n\n".join(parts)


def render_cold(results: dict[str, Any], args: argparse.Namespace) -> str:
    cold = results["cold_start"]
    app, ref = cold["app"], cold["reference"]
    up = cold["supervisor_started_s"]
    rows = [
        ["python -m desktop", app["median_s"], app["min_s"], app["max_s"],
         cold["warmup_s"].get("app"), cold["ratio"], verdict(app["median_s"], COLD_TARGET_S)],
        ["minimal QSystemTrayIcon script (reference)", ref["median_s"], ref["min_s"],
         ref["max_s"], cold["warmup_s"].get("reference"), 1.0, "-"],
        ["  of which: embedded supervisor `started:` logged", up and up["median_s"], up and
         up["min_s"], up and up["max_s"], None, None, "-"],
    ]  # fmt: skip
    for label, timing in results["imports"]["wall"].items():
        rows.append([f"  `python -c \"{IMPORTS[label]}\"` (no Qt app)", timing["median_s"],
                     timing["min_s"], timing["max_s"], None, None, "-"])  # fmt: skip
    cold_table = Table(
        f"(1) Cold start to tray icon embedded in trayer, median of {args.runs} "
        f"(polled every {args.poll_interval * 1000:g} ms; fresh STRATAVORE_HOME each)",
        ["what", "median s", "min s", "max s", "warm-up run s", "ratio to reference",
         f"target <= {COLD_TARGET_S:g} s"],
        rows,
    )  # fmt: skip
    importtime = results["imports"]["importtime"]["import desktop.app, desktop.shell"]
    packages = ", ".join(f"{k} {v:g}" for k, v in importtime["by_package_ms"].items())
    import_line = (
        f"`-X importtime` of `import desktop.app, desktop.shell`: {importtime['total_ms']:g} ms "
        f"self time over {importtime['modules']} modules; by package (ms): {packages}"
    )

    lines = [import_line]
    if "startup_profile" in results:
        startup = results["startup_profile"]
        top = ", ".join(f"{k} {v}" for k, v in list(startup["top_ms"].items())[:10])
        lines.append(
            f"py-spy of one cold start ({startup['wall_s']:g} s observed): main thread "
            f"{startup['imports_percent']:g} % in imports; top (ms): {top}"
        )
    return "\n\n".join([cold_table.render(), *lines])


def render_idle(results: dict[str, Any], args: argparse.Namespace) -> str:
    idle_rows = []
    n = args.runners
    daemon = results["idle_daemon"]
    cases = [
        ("tray app, 0 runners", results["idle_app"]["runners_0"], daemon["runners_0"],
         CPU_TARGET_IDLE),
        (f"tray app, {n} runners", results["idle_app"]["runners_n"], daemon["runners_n"],
         CPU_TARGET_RUNNERS),
        (f"tray app, {n} runners, dashboard open", results["idle_app"]["runners_n_dashboard"],
         daemon["runners_n"], CPU_TARGET_RUNNERS),
        ("stratavore daemon, 0 runners (reference)", daemon["runners_0"], None, None),
        (f"stratavore daemon, {n} runners (reference)", daemon["runners_n"], None, None),
        ("daemon, 0 runners, polled as the bridge polls", daemon["runners_0_polled"], None,
         None),
        (f"daemon, {n} runners, polled as the bridge polls", daemon["runners_n_polled"], None,
         None),
        ("minimal QSystemTrayIcon script (reference)", results["idle_reference_tray"], None,
         None),
    ]  # fmt: skip
    for label, m, against, cpu_target in cases:
        idle_rows.append([
            label, m["rss_mb"], m["uss_mb"], m["cpu_percent_mean"],
            "/".join(f"{c:g}" for c in m["cpu_percent_windows"]), m["wakeups_per_s"],
            m["threads"], ratio(m["rss_mb"], against and against["rss_mb"]),
            ratio(m["cpu_percent_mean"], against and against["cpu_percent_mean"]),
            verdict(m["rss_mb"], RSS_TARGET_MB) if cpu_target else "-",
            verdict(m["cpu_percent_mean"], cpu_target) if cpu_target else "-",
        ])  # fmt: skip
    idle_table = Table(
        f"(2) Idle, the process itself (runners not counted): {args.idle_windows} x "
        f"{args.idle_window:g} s after {args.warmup:g} s",
        ["process", "RSS MB", "USS MB", "CPU % mean", "CPU % per window", "wake-ups/s",
         "threads", "RSS ratio to daemon", "CPU ratio to daemon",
         f"RSS <= {RSS_TARGET_MB:g} MB", f"CPU <= {CPU_TARGET_IDLE:g} / {CPU_TARGET_RUNNERS:g} %"],
        idle_rows,
    )  # fmt: skip
    return idle_table.render()


def render_dashboard(results: dict[str, Any], args: argparse.Namespace) -> str:
    dash = results["dashboard"]
    dash_rows = []
    for case, label in (
        ("first_open", "first open (a fresh app each time)"),
        ("reopen", "re-open after WM_DELETE_WINDOW"),
    ):
        for way, how in WAYS.items():
            timing = dash[case][way]
            dash_rows.append(
                [f"{label}: {how}", timing["median_s"], timing["min_s"], timing["max_s"]]
            )
    ended = dash["second_launch_ended"]
    dash_rows.append(["first open: the second launch, to its exit", ended["median_s"],
                      ended["min_s"], ended["max_s"]])  # fmt: skip
    dash_table = Table(
        f"(3) Dashboard: from the request to the window viewable, median of {args.dashboard_runs}",
        ["what", "median s", "min s", "max s"],
        dash_rows,
    )
    return dash_table.render()


if __name__ == "__main__":
    sys.exit(main())
