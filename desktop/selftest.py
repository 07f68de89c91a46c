"""``stratavore-desktop --selftest``: prove that this build of the tray app works here.

Meant for a frozen bundle (a missing module, data file, Qt plugin or entry-point metadata
shows up here rather than on a user's machine), and just as valid from source
(``python -m desktop --selftest``). In a few seconds, and without touching the user's data
(a temporary ``STRATAVORE_HOME``, empty agent log folders) it:

1. imports every module of ``supervisor`` and ``desktop`` and what they load lazily: the
   platform's keyring and notification backends, APScheduler's entry points, the time zone
   database, the bundled price table;
2. runs a function in a spawned worker process, as the usage importer does (a frozen entry
   point without ``multiprocessing.freeze_support()`` fails here);
3. finds the data dir the app would use (``%LOCALAPPDATA%\\Stratavore`` on Windows);
4. starts the embedded supervisor on a free port on the qasync loop, and through its HTTP
   API creates a project, launches a runner whose command starts a child that starts a
   grandchild (``sh`` and ``sleep``; ``cmd`` and ``ping`` on Windows), waits for all three,
   stops the runner, checks that none of the three is left and that the exit status was
   recorded, and reads ``/metrics``;
5. draws a QtCharts chart into an image, offscreen;
6. stores, reads and deletes a secret through the configured keyring backend.

Every step prints ``ok: <step> (<time>)``. The exit status is 0 when all passed; otherwise 1,
and the last line is one sentence naming what failed. With no usable keyring the keyring step
fails, unless ``STRATAVORE_SELFTEST_ALLOW_NO_KEYRING=1``, which turns it into
``skipped: keyring (<why>)`` (for CI machines without a desktop session).

The windowed Windows executable has no console: there the lines go to
``%TEMP%\\stratavore-selftest.txt``, and the exit status tells the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import pkgutil
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

ALLOW_NO_KEYRING = "STRATAVORE_SELFTEST_ALLOW_NO_KEYRING"
WAIT = 8.0  # seconds a runner may take to reach a state
SKIP_MODULES = ("__main__", "desktop.selftest")  # __main__ runs the app when imported


class Failed(Exception):
    """A step failed; the message is the one sentence shown to the user."""


class Skipped(Exception):
    """A step that cannot run here and is allowed not to; the message says why."""


def runner_command() -> list[str]:
    """A command present on every machine of this OS that runs quietly for 30 s as a child
    that starts a grandchild: the runner's root, a child and a grandchild."""
    if sys.platform == "win32":
        return ["cmd", "/d", "/c", "cmd", "/d", "/c", "ping", "-n", "30", "127.0.0.1"]
    return ["sh", "-c", "sh -c 'sleep 30'; :"]  # `; :` keeps each sh from exec'ing its child


def process_tree(pid: int) -> list[Any]:
    """The process ``pid`` and its descendants (psutil processes), or [] when it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def alive(process: Any) -> bool:
    """This very psutil process (same pid and start) still runs: not gone, not a zombie (the
    runner's root, our child, may be reaped a moment after it is reported stopped)."""
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def spawned_worker(value: int) -> int:
    """Runs in the spawned process of step 2 (module level, so the child can import it)."""
    return value + 1


# --- the steps ---------------------------------------------------------------------------
def import_everything() -> str:
    import desktop
    import supervisor

    count = 0
    for package in (supervisor, desktop):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.endswith(SKIP_MODULES):
                importlib.import_module(module.name)
                count += 1
    if count < 20:  # pkgutil could not list the frozen modules: the check would prove nothing
        raise Failed(f"only {count} modules of supervisor and desktop could be listed")
    # What libraries look up at run time rather than import at the top.
    backends = {
        "win32": ["keyring.backends.Windows", "desktop_notifier.backends.winrt"],
        "darwin": ["keyring.backends.macOS", "desktop_notifier.backends.macos"],
    }.get(sys.platform, ["keyring.backends.SecretService", "desktop_notifier.backends.dbus"])
    for name in ["qasync", "PySide6.QtCharts", *backends]:
        importlib.import_module(name)
    from importlib.metadata import entry_points

    triggers = {ep.name: ep for ep in entry_points(group="apscheduler.triggers")}
    if not {"date", "interval", "cron"} <= triggers.keys():
        raise Failed("APScheduler's entry points are missing (its metadata was not bundled)")
    triggers["interval"].load()
    import keyring.backend

    if not keyring.backend.get_all_keyring():
        raise Failed("keyring lists no backend at all (its package metadata was not bundled)")
    from supervisor.usage import periods, pricing

    zone = periods.resolve_zone()
    periods.resolve_zone("America/New_York")  # the IANA database itself, not just the local zone
    prices = pricing.PriceTable.bundled()
    return f"{count} modules, time zone {zone.key}, prices of {prices.taken}"


def data_dir() -> str:
    """Where the app keeps its data when no STRATAVORE_HOME says otherwise."""
    from supervisor.core import paths

    saved = os.environ.pop("STRATAVORE_HOME", None)
    try:
        import platformdirs

        path = Path(platformdirs.user_data_dir(paths.APP_NAME, False))
    finally:
        if saved is not None:
            os.environ["STRATAVORE_HOME"] = saved
    if sys.platform == "win32":
        local = Path(os.environ.get("LOCALAPPDATA", "")).resolve()
        if not os.environ.get("LOCALAPPDATA") or path.resolve() != local / paths.APP_NAME:
            raise Failed(f"the data dir would be {path}, not %LOCALAPPDATA%\\{paths.APP_NAME}")
    return str(path)


def spawn_worker() -> str:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        answer = pool.submit(spawned_worker, 41).result(timeout=30)
    if answer != 42:
        raise Failed(f"the spawned worker answered {answer!r} instead of 42")
    return "spawn context"


class _Api:
    """The selftest's calls to the embedded supervisor's API, each checked."""

    def __init__(self, http: Any) -> None:
        self.http = http

    async def call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        async with self.http.request(method, "/api/v1" + path, json=body) as response:
            answer = await response.json()
            if response.status != status:
                raise Failed(
                    f"the API answered {method} {path} with {response.status}: "
                    f"{answer.get('message', answer)}"
                )
            return answer

    async def wait_for(self, runner_id: int, state: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT
        while True:
            runner = await self.call("GET", f"/runners/{runner_id}")
            if runner["state"] == state:
                return runner
            if time.monotonic() > deadline or runner["state"] in ("failed", "fatal"):
                why = f": {runner['reason']}" if runner.get("reason") else ""
                raise Failed(
                    f"the runner {' '.join(runner['command'])!r} did not reach {state} "
                    f"(it is {runner['state']}{why})"
                )
            await asyncio.sleep(0.05)


async def _whole_tree(pid: int) -> list[Any]:
    """The runner's root, child and grandchild, once all three run."""
    deadline = time.monotonic() + WAIT
    while len(tree := process_tree(pid)) < 3:
        if time.monotonic() > deadline:
            raise Failed(f"the runner started {len(tree) - 1} of its 2 descendants")
        await asyncio.sleep(0.05)
    return tree


async def supervise(home: Path) -> str:
    """Step 3, on the running (qasync) loop."""
    import aiohttp

    from supervisor.core import runtime
    from supervisor.daemon import Supervisor

    project = home / "project"
    project.mkdir()
    supervisor = Supervisor(home, api_port=0, start_secs=0.3, stop_timeout=3.0)
    await supervisor.start()
    try:
        headers = {"Authorization": f"Bearer {runtime.admin_token(home)}"}
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(supervisor.url, headers=headers, timeout=timeout) as http:
            api = _Api(http)
            await api.call("GET", "/health")
            await api.call("POST", "/projects", {"name": "selftest", "path": str(project)}, 201)
            launched = await api.call(
                "POST", "/runners", {"project": "selftest", "command": runner_command()}, 201
            )
            running = await api.wait_for(launched["id"], "running")
            tree = await _whole_tree(running["pid"])
            await api.call("POST", f"/runners/{launched['id']}/stop", {})
            stopped = await api.wait_for(launched["id"], "stopped")
            left = [process.pid for process in tree if alive(process)]
            if left:
                raise Failed(f"the stop left {len(left)} of the runner's {len(tree)} processes")
            if stopped.get("exit_code") is None:
                raise Failed("the stopped runner's exit status was not recorded")
            async with http.get("/metrics") as response:
                if response.status != 200 or "stratavore_" not in await response.text():
                    raise Failed("the supervisor's /metrics page has no Stratavore metrics")
    finally:
        await supervisor.stop(stop_runners=True)
    return (
        f"runner pid {running['pid']} with a child and a grandchild stopped, none left, "
        f"exit status {stopped['exit_code']}; API on port {supervisor.port}"
    )


def draw_chart() -> str:
    from PySide6.QtGui import QColor, QImage, QPainter

    from desktop.charts import PALETTE, DailyChart, Stack

    days = [f"2025-01-{day:02d}" for day in range(1, 8)]
    stack = Stack(days, ["alpha", "beta"], [[1e6] * 7, [5e5] * 7])
    chart = DailyChart()
    chart.resize(640, 400)
    chart.show_stack(stack, "tokens", "selftest")
    image = QImage(chart.size(), QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    chart.render(painter)
    painter.end()
    bar = QColor(PALETTE[0]).rgb()
    painted = sum(
        image.pixel(x, y) == bar for x in range(0, image.width(), 4)
        for y in range(0, image.height(), 4)
    )  # fmt: skip
    if painted < 50:
        raise Failed("QtCharts drew no bars into the image (a Qt plugin or library is missing)")
    return f"{image.width()}x{image.height()}, {painted} bar samples"


def keyring_round_trip() -> str:
    from supervisor.core import secrets

    status = secrets.keyring_status()
    if status is not None:
        if os.environ.get(ALLOW_NO_KEYRING) == "1":
            raise Skipped(status.rstrip("."))
        raise Failed(status.rstrip(".") + f" (set {ALLOW_NO_KEYRING}=1 to skip this step)")
    name = f"selftest:{uuid.uuid4().hex}"
    value = uuid.uuid4().hex
    secrets.store_secret(name, value)
    try:
        if secrets.load_secret(name) != value:
            raise Failed("the keyring returned another value than the one stored")
    finally:
        secrets.delete_secret(name)
    if secrets.load_secret(name) is not None:
        raise Failed("the keyring kept a secret after it was deleted")
    import keyring

    return type(keyring.get_keyring()).__module__


# --- running them ---------------------------------------------------------------------------
@contextlib.contextmanager
def isolated() -> Iterator[Path]:
    """A temporary data dir and empty agent log folders, restored afterwards."""
    keys = ("STRATAVORE_HOME", "CLAUDE_CONFIG_DIR", "CODEX_HOME")
    saved = {key: os.environ.get(key) for key in keys}
    root = Path(tempfile.mkdtemp(prefix="stratavore-selftest-"))
    for key, sub in zip(keys, ("home", "claude", "codex"), strict=True):
        (root / sub).mkdir()
        os.environ[key] = str(root / sub)
    try:
        yield root / "home"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        # Windows deletes no open file: the database, which worker threads of the embedded
        # supervisor still hold open, stays in %TEMP% then (as would a failed runner's output).
        shutil.rmtree(root, ignore_errors=True)


def output() -> IO[str]:
    if sys.stdout is not None:
        return sys.stdout
    # A windowed Windows executable has no stdout: write where `type %TEMP%\...` finds it.
    return open(Path(tempfile.gettempdir()) / "stratavore-selftest.txt", "w", encoding="utf-8")


def run() -> int:
    """Run every step; the exit status (0: all passed)."""
    started = time.monotonic()
    out = output()

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    frozen = "frozen" if getattr(sys, "frozen", False) else "from source"
    say(f"Stratavore selftest ({frozen}, {sys.platform}, Python {sys.version.split()[0]})")
    with isolated() as home:
        import qasync
        from PySide6.QtWidgets import QApplication

        from supervisor.core.errors import KnownError

        app = QApplication.instance() or QApplication(sys.argv[:1])
        loop = qasync.QEventLoop(app)
        steps: list[tuple[str, Callable[[], str]]] = [
            ("imports", import_everything),
            ("data dir", data_dir),
            ("spawned process", spawn_worker),
            ("supervisor and runner", lambda: loop.run_until_complete(supervise(home))),
            ("chart", draw_chart),
            ("keyring", keyring_round_trip),
        ]
        try:
            for name, step in steps:
                began = time.monotonic()
                try:
                    detail = step()
                except Skipped as why:
                    say(f"skipped: {name} ({why})")
                    continue
                except Failed as exc:
                    say(f"selftest failed: {name}: {exc}.")
                    return 1
                except KnownError as exc:  # the environment (a locked keyring...): its sentence
                    say(f"selftest failed: {name}: {str(exc).rstrip('.')}.")
                    return 1
                except Exception as exc:  # a bug or a missing piece of the bundle
                    traceback.print_exc(file=out)
                    say(f"selftest failed: {name}: {type(exc).__name__}: {exc}.")
                    return 1
                say(f"ok: {name} ({time.monotonic() - began:.2f} s; {detail})")
        finally:
            loop.close()
    say(f"selftest passed in {time.monotonic() - started:.1f} s")
    return 0
