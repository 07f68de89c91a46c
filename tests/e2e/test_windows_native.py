"""The Windows code paths, run by a Windows Python (marked ``windows``; skipped elsewhere).

CI runs them under Wine with the Windows build's embeddable CPython
(tests/windows/test_native_under_wine.py); on a real Windows, ``python -m pytest -m windows``.
Real processes, a real registry, real named pipes: the runner's wrapper and its Job Object
(spawn, exit status, a tree whose middle process already exited, the polite stop), adoption
after a supervisor restart with the exit status kept, ``.exe`` and npm ``.cmd`` lookups, the
Run key, single instance and the data dir.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.agents import commands
from supervisor.runners import winjob
from supervisor.runners.groups import Lineage
from supervisor.runners.process import ProcessOps
from supervisor.runners.procinfo import Identity
from tests.conftest import run_async, wait_for

pytestmark = [
    pytest.mark.windows,
    pytest.mark.skipif(sys.platform != "win32", reason="Windows code paths, on Windows"),
]

PY = sys.executable


def spawn(ops: ProcessOps, tmp_path: Path, argv: list[str]) -> tuple[Identity, Path]:
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    ident = ops.spawn(argv, str(tmp_path), dict(os.environ), run / "output", run / "exit")
    return ident, run


def ended(ops: ProcessOps, ident: Identity, timeout: float = 20) -> int | None:
    return wait_for(lambda: (r := ops.poll(ident))[0] and r, timeout, what="the runner to end")[1]


def test_spawn_runs_the_command_under_the_wrapper_and_keeps_its_exit_status(tmp_path):
    ops = ProcessOps()
    ident, run = spawn(ops, tmp_path, [PY, "-c", "print('hello'); raise SystemExit(7)"])
    assert ended(ops, ident) == 7
    assert ops.read_exit_file(run / "exit") == 7  # what an adopting supervisor reads
    assert "hello" in (run / "output").read_text()


def test_a_program_that_cannot_start_is_status_127(tmp_path):
    ops = ProcessOps()
    ident, run = spawn(ops, tmp_path, [str(tmp_path / "missing.exe")])
    assert ended(ops, ident) == 127
    assert "cannot start" in (run / "output").read_text()


# the command starts a middle process, which starts a grandchild and exits at once
ORPHAN = (
    "import subprocess, sys, time\n"
    "middle = [sys.executable, '-c', 'import subprocess, sys; "
    'p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]); '
    "print(p.pid, flush=True)']\n"
    "subprocess.run(middle)\n"
    "time.sleep(120)\n"
)


def test_stop_ends_a_grandchild_whose_parent_already_exited(tmp_path):
    ops = ProcessOps()
    ident, run = spawn(ops, tmp_path, [PY, "-c", ORPHAN])
    pid = int(wait_for(lambda: (run / "output").read_text().strip(), 20, what="the grandchild"))
    grandchild = psutil.Process(pid)
    # psutil's tree walk cannot see it once its parent is gone
    wait_for(
        lambda: pid not in {p.pid for p in psutil.Process(ident.pid).children(recursive=True)},
        10, what="the middle process to exit",
    )  # fmt: skip
    assert pid in (winjob.job_pids(ident.pid, ident.create_time) or [])
    assert ops.kill([ident, *ops.descendants([ident])[ident]]) >= 1
    wait_for(lambda: not grandchild.is_running(), 10, what="the grandchild to end")
    assert ended(ops, ident) == winjob.TERMINATED


def test_runner_ending_by_itself_takes_its_leftovers_along(tmp_path):
    """The wrapper's handle is the job's last: when it exits, kill-on-close ends what the
    command left behind (as POSIX kills what is left of the process group)."""
    ops = ProcessOps()
    leaves = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(p.pid, flush=True)\n"
    )
    ident, run = spawn(ops, tmp_path, [PY, "-c", leaves])
    assert ended(ops, ident) == 0
    orphan = int((run / "output").read_text().strip())
    wait_for(lambda: not psutil.pid_exists(orphan), 10, what="the leftover to end")


def test_polite_stop_reaches_the_wrapper(tmp_path):
    """The stop event reaches the wrapper, which sends CTRL_BREAK to the command's group (on
    Wine 8 GenerateConsoleCtrlEvent fails on the hidden console: the note says so, and the job
    is terminated at the stop timeout, as here)."""
    ops = ProcessOps()
    waits = "import time; print('ready', flush=True); time.sleep(60)"
    ident, run = spawn(ops, tmp_path, [PY, "-c", waits])
    wait_for(lambda: "ready" in (run / "output").read_text(), 20, what="the command to start")
    ops.signal_polite(Lineage(ident), group=True)
    note = wait_for(
        lambda: next((line for line in (run / "output").read_text().splitlines()
                      if line.startswith("stratavore: stop requested: CTRL_BREAK")), None),
        10, what="the wrapper's note",
    )  # fmt: skip
    if note.endswith("failed"):
        assert ops.kill([ident]) == 1
    assert ended(ops, ident) is not None


@asynccontextmanager
async def supervisor(home: Path) -> AsyncIterator[Any]:
    """An embedded supervisor on ``home`` and an aiohttp session to its API."""
    import aiohttp

    from supervisor.core import runtime
    from supervisor.daemon import Supervisor

    sup = Supervisor(home, api_port=0, start_secs=0.3, stop_timeout=2.0)
    await sup.start()
    headers = {"Authorization": f"Bearer {runtime.admin_token(home)}"}
    try:
        async with aiohttp.ClientSession(sup.url + "/api/v1/", headers=headers) as http:
            yield http
    finally:
        await sup.stop()


async def wait_state(http: Any, runner_id: int, state: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        async with http.get(f"runners/{runner_id}") as response:
            runner = await response.json()
        if runner["state"] == state:
            return runner
        assert time.monotonic() < deadline, runner
        await asyncio.sleep(0.1)


# peewee opens a connection per thread; the embedded supervisor's worker threads leave theirs
# for the garbage collector (not Windows-specific: every in-process Supervisor does).
@pytest.mark.filterwarnings("ignore:unclosed database:ResourceWarning")
def test_adopted_after_a_supervisor_restart_with_exit_statuses(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    marker = tmp_path / "go"
    waits = (
        f"import os, sys, time\nwhile not os.path.exists({str(marker)!r}): time.sleep(0.05)\n"
        "sys.exit(3)"
    )

    async def scenario() -> None:
        async with supervisor(home) as http:
            async with http.post("projects", json={"name": "demo", "path": str(tmp_path)}) as r:
                assert r.status == 201, await r.text()
            ids = []
            for command in ([PY, "-c", waits], [PY, "-c", "import time; time.sleep(120)"]):
                async with http.post("runners", json={"project": "demo", "command": command}) as r:
                    ids.append((await r.json())["id"])
            ends_later, stays = ids
            for runner_id in ids:
                await wait_state(http, runner_id, "running")
        # the supervisor is down: one runner ends with status 3 meanwhile
        marker.write_text("go")
        await asyncio.sleep(2)
        async with supervisor(home) as http:
            finished = await wait_state(http, ends_later, "failed")
            assert finished["exit_code"] == 3  # from the wrapper's exit file
            adopted = await wait_state(http, stays, "running")
            tree = [adopted["pid"], *(p.pid for p in psutil.Process(adopted["pid"]).children(True))]
            async with http.post(f"runners/{stays}/stop", json={}) as r:
                assert r.status == 200
            stopped = await wait_state(http, stays, "stopped")
            assert stopped["exit_code"] is not None
            assert not [pid for pid in tree if psutil.pid_exists(pid)]

    run_async(scenario())
    gc.collect()  # the connections' warnings, here rather than in a later test


def test_exe_found_before_an_npm_cmd_shim_and_a_shim_run_directly(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "agent.exe"
    shutil.copy(shutil.which("where") or r"C:\windows\system32\where.exe", exe)
    (bin_dir / "agent.cmd").write_text('@ECHO off\r\n"%~dp0\\agent.exe" %*\r\n')
    found = commands.resolve(["agent", "--help"], str(tmp_path), str(bin_dir))
    assert found[0].lower() == str(exe).lower()
    # a shim alone: npm's native-exe form is run through its target, not cmd.exe
    exe.rename(bin_dir / "codex.exe")
    (bin_dir / "agent.cmd").unlink()
    shim = (
        "@ECHO off\r\nGOTO start\r\n:find_dp0\r\nSET dp0=%~dp0\r\nEXIT /b\r\n:start\r\n"
        'SETLOCAL\r\nCALL :find_dp0\r\n"%dp0%\\codex.exe"   %*\r\n'
    )
    (bin_dir / "codex.cmd").write_text(shim)
    argv = commands.resolve(["codex", "a&b"], str(tmp_path), str(bin_dir))
    assert Path(argv[0]).name.lower() == "codex.exe" and argv[1:] == ["a&b"]
    done = subprocess.run(commands.popen_args([argv[0], "/?"]), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr  # the shim's target itself runs


def test_run_key_round_trip():
    import winreg

    from desktop import autostart

    def value() -> str | None:
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, autostart.RUN_KEY) as key:
                found, kind = winreg.QueryValueEx(key, autostart.APP_NAME)
        except FileNotFoundError:
            return None
        assert kind == winreg.REG_SZ
        return found

    users = value()  # a real Windows user's own setting is put back afterwards
    command = [r"C:\Program Files\Stratavore\Stratavore.exe", "--dashboard"]
    try:
        autostart.disable()
        assert not autostart.enabled() and value() is None
        autostart.enable(command)
        assert autostart.enabled()
        assert value() == f'"{command[0]}" --dashboard'
        autostart.disable()
        assert not autostart.enabled()
    finally:
        if users is not None:
            with winreg.CreateKey(winreg.HKEY_CURRENT_USER, autostart.RUN_KEY) as key:
                winreg.SetValueEx(key, autostart.APP_NAME, 0, winreg.REG_SZ, users)


def qt_app() -> Any:
    """The QApplication of these tests (Qt options as arguments: Wine does not pass QT_*)."""
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication(["tests", "-platform", "windows"])


def under_wine() -> bool:
    """Whether this Windows is Wine (its ntdll exports wine_get_version)."""
    import ctypes

    return hasattr(ctypes.WinDLL("ntdll"), "wine_get_version")


def test_single_instance_over_a_named_pipe():
    from desktop.instance import SingleInstance

    app = qt_app()
    key = f"stratavore-test-{os.getpid()}"
    first = SingleInstance(key)
    assert first.claim()
    asked: list[bool] = []
    first.activated.connect(lambda: asked.append(True))
    claims = (
        "from PySide6.QtCore import QCoreApplication; app = QCoreApplication([])\n"
        "from desktop.instance import SingleInstance\n"
        f"raise SystemExit(SingleInstance({key!r}).claim())\n"
    )
    repo = str(Path(__file__).resolve().parents[2])
    second = subprocess.Popen([PY, "-c", claims], env={**os.environ, "PYTHONPATH": repo})
    deadline = time.monotonic() + 20
    while second.poll() is None or not asked:
        app.processEvents()
        assert time.monotonic() < deadline, "the second instance did not ask the first"
        time.sleep(0.02)
    assert second.returncode == 0  # claim() was False: another instance runs
    first.close()


def test_data_dir_is_in_localappdata():
    """Where paths.data_dir() puts the data without STRATAVORE_HOME (the known folder, which
    platformdirs asks Windows for, is the one %LOCALAPPDATA% names)."""
    import platformdirs

    from supervisor.core import paths

    local = Path(os.environ["LOCALAPPDATA"])
    assert Path(platformdirs.user_data_dir(paths.APP_NAME, False)) == local / "Stratavore"


def test_notification_is_a_toast_with_the_app_id_or_else_a_tray_balloon():
    from PySide6.QtGui import QColor, QIcon, QPixmap
    from PySide6.QtWidgets import QSystemTrayIcon

    from desktop.icons import APP_NAME, app_icon_file, apply_identity
    from desktop.notifications import Notifier
    from supervisor.core import paths
    from supervisor.notify.channels import Message

    app = qt_app()
    apply_identity(app)  # as the tray app does at start
    pixmap = QPixmap(16, 16)
    pixmap.fill(QColor("green"))
    tray = QSystemTrayIcon(QIcon(pixmap))
    tray.show()
    notifier = Notifier()
    notifier.fallback = tray
    message = Message(None, time.time(), "runner.exited", "info", "demo finished", "exit 0")

    async def notify() -> None:
        notifier.start()
        await notifier.show(message)

    run_async(notify())
    app.processEvents()
    tray.hide()
    import ctypes

    claimed = ctypes.c_wchar_p()
    read = ctypes.windll.shell32.GetCurrentProcessExplicitAppUserModelID(ctypes.byref(claimed))
    wine = under_wine()
    if read == 0 or not wine:  # Wine 8 keeps no process AppUserModelID (E_NOTIMPL)
        assert claimed.value == APP_NAME
    # the app's own icon for the registration, not Python's
    assert app_icon_file(paths.data_dir() / "icons").is_file()
    if notifier.unavailable is None:
        assert notifier.route == "native"
        return
    assert wine, f"no toasts on this Windows: {notifier.unavailable}"
    assert notifier.route == "tray"
    pytest.skip(
        "toast not shown: Wine has no toast service (ToastNotificationManager: "
        f"{notifier.unavailable}); the tray balloon fallback ran instead, as checked"
    )
