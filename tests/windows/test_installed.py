"""The real Windows build, installed with its real installer into a fresh Wine prefix: its
payload holds Windows programs only; the installed tray app's ``--selftest`` passes (its
supervisor stops a runner's whole tree, checked from Linux too); an upgrade keeps the user's
data (a project made by the installed ``stratavore`` CLI and daemon); the uninstaller removes
the program and its registry keys, keeping the data unless told otherwise.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from supervisor import __version__
from tests.windows.conftest import WindowsBuild, wine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

UNINSTALL_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\Stratavore"
RUN_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run"
PREFS_KEY = r"HKCU\Software\Stratavore"
TOAST_KEY = r"HKCU\Software\Classes\AppUserModelId\Stratavore"  # desktop-notifier's
KEYS = (UNINSTALL_KEY, RUN_KEY, PREFS_KEY, TOAST_KEY)


def test_payload_holds_windows_programs_only(windows_build: WindowsBuild) -> None:
    files = sorted(p for p in windows_build.bundle.rglob("*") if p.is_file())
    kinds = {}
    for start in range(0, len(files), 200):  # `file` on every file of the payload
        batch = files[start : start + 200]
        done = subprocess.run(["file", "-b", *map(str, batch)], capture_output=True, text=True)
        kinds |= dict(zip(batch, done.stdout.splitlines(), strict=True))
    elf = [str(p.relative_to(windows_build.bundle)) for p, kind in kinds.items() if "ELF" in kind]
    assert not elf, f"Linux programs in the Windows payload: {elf[:10]}"
    programs = {p: k for p, k in kinds.items() if p.suffix.lower() in (".exe", ".dll", ".pyd")}
    assert len(programs) > 50
    for path, kind in programs.items():
        assert kind.startswith("PE32+ executable") and "x86-64" in kind, (path, kind)
    by_name = {str(p.relative_to(windows_build.bundle)): k for p, k in kinds.items()}
    assert "(GUI)" in by_name["Stratavore.exe"]
    assert "(console)" in by_name["bin/stratavore.exe"]
    assert "(console)" in by_name["bin/stratavore-agent.exe"]


def test_installer_is_a_windows_program(windows_build: WindowsBuild) -> None:
    kind = subprocess.run(["file", "-b", str(windows_build.setup)], capture_output=True,
                          text=True).stdout  # fmt: skip
    assert kind.startswith("PE32+ executable (GUI) x86-64"), kind
    assert b"NullsoftInst" in windows_build.setup.read_bytes()  # NSIS's own header


def version_resource(path: Path) -> dict[str, str]:
    """The StringFileInfo of a PE file's version resource (UTF-16 key, value pairs)."""
    data = path.read_bytes()
    found = {}
    for key in ("FileDescription", "ProductName", "ProductVersion", "OriginalFilename"):
        encoded = key.encode("utf-16-le") + b"\0\0"
        at = data.find(encoded)
        if at < 0:
            continue
        at += len(encoded)
        at += (4 - at % 4) % 4  # values are 32-bit aligned
        end = data.find(b"\0\0", at)
        while (end - at) % 2:
            end = data.find(b"\0\0", end + 1)
        found[key] = data[at:end].decode("utf-16-le")
    return found


def test_programs_carry_icon_and_version(windows_build: WindowsBuild) -> None:
    for exe, name, what in (
        ("Stratavore.exe", "Stratavore.exe", "Stratavore tray app"),
        ("bin/stratavore.exe", "stratavore.exe", "Stratavore command line"),
        ("bin/stratavore-agent.exe", "stratavore-agent.exe", "Stratavore agent wrapper"),
    ):
        path = windows_build.bundle / exe
        assert version_resource(path) == {
            "FileDescription": what, "ProductName": "Stratavore",
            "ProductVersion": __version__, "OriginalFilename": name,
        }  # fmt: skip
        program = path.read_bytes()
        for image in icon_images(ICON):  # each stored as is, an RT_ICON resource
            assert image in program, f"{exe} lacks an image of {ICON.name}"


ICON = Path(__file__).resolve().parents[2] / "resources" / "stratavore.ico"


def icon_images(ico: Path) -> list[bytes]:
    """The images of a .ico file (ICONDIR, then 16-byte entries: size and offset last)."""
    data = ico.read_bytes()
    count = int.from_bytes(data[4:6], "little")
    images = []
    for n in range(count):
        entry = data[6 + 16 * n : 22 + 16 * n]
        size, offset = int.from_bytes(entry[8:12], "little"), int.from_bytes(entry[12:16], "little")
        images.append(data[offset : offset + size])
    return images


def retried(run: Callable[[], subprocess.CompletedProcess[str]], timeout: float = 60):
    """``run()`` again until it exits 0 (a daemon that is still starting), or its last try."""
    deadline = time.monotonic() + timeout
    while (done := run()).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    return done


def windows_dir(path: Path) -> str:
    return wine.windows_path(path)


def test_install_selftest_upgrade_uninstall(
    windows_build: WindowsBuild, prefix: wine.Prefix
) -> None:
    timings: dict[str, float] = {}

    def timed(label: str, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
        started = time.monotonic()
        done = prefix.run(args, timeout=timeout)
        timings[label] = time.monotonic() - started
        return done

    def install(setup: Path, *options: str) -> None:
        done = timed(f"install {setup.name}", [str(setup), "/S", *options])
        assert done.returncode == 0, done.stdout + done.stderr
        prefix.wait()

    local = prefix.local_appdata
    program = local / "Programs" / "Stratavore"
    data = local / "Stratavore"
    start_menu = prefix.user / "AppData/Roaming/Microsoft/Windows/Start Menu/Programs"
    desktop_link = (prefix.user / "Desktop").resolve() / "Stratavore.lnk"
    folder = windows_dir(program)

    # a fresh install, silently, with the defaults (a login entry, no desktop shortcut)
    install(windows_build.setup)
    for name in ("Stratavore.exe", "_internal", "bin/stratavore.exe", "bin/stratavore-agent.exe",
                 "uninstall.exe"):  # fmt: skip
        assert (program / name).exists(), name
    assert (start_menu / "Stratavore.lnk").exists()
    assert not desktop_link.exists()
    registry = prefix.reg_query(KEYS)
    entry = registry[UNINSTALL_KEY]
    assert entry is not None
    assert (entry["DisplayName"], entry["DisplayVersion"]) == ("Stratavore", __version__)
    assert entry["InstallLocation"] == folder
    assert entry["UninstallString"] == f'"{folder}\\uninstall.exe"'
    assert (registry[RUN_KEY] or {}).get("Stratavore") == f'"{folder}\\Stratavore.exe"'

    # the installed tray app's selftest: windowed, so its lines go to %TEMP% on Windows (Wine
    # hands it the standard streams of the Linux side, and there they are)
    done = timed("selftest", [str(program / "Stratavore.exe"), "--selftest"], timeout=180)
    reports = list(prefix.user.glob("**/Temp/stratavore-selftest.txt"))
    text = done.stdout if done.stdout.strip() else "".join(r.read_text() for r in reports)
    lines = text.splitlines()
    assert done.returncode == 0, "\n".join(lines) + done.stdout + done.stderr
    assert lines[0].startswith("Stratavore selftest (frozen, win32, Python 3.13.2)"), lines
    assert any(line.startswith("ok: data dir (") and line.endswith(f"; {windows_dir(data)})")
               for line in lines), lines  # fmt: skip
    tree = next(line for line in lines if line.startswith("ok: supervisor and runner"))
    assert "with a child and a grandchild stopped, none left, exit status" in tree
    assert any(line.startswith("ok: chart ") for line in lines), lines
    assert lines[-1].startswith("selftest passed in "), lines
    # ... and from Linux: no program of the runner's tree is left in the prefix
    left = [line for _, line in prefix.processes() if re.search(r"ping|cmd\.exe", line, re.I)]
    assert not left, left

    # the user's data, made by the installed CLI through its daemon
    cli = str(program / "bin" / "stratavore.exe")
    (prefix.drive_c / "project").mkdir()

    def with_daemon(*args: str) -> subprocess.CompletedProcess[str]:
        """``stratavore ARGS`` answered by a ``stratavore daemon`` started for it."""
        started = time.monotonic()
        daemon = prefix.popen([cli, "daemon", "--port", "0"])
        try:
            return retried(lambda: prefix.run([cli, *args], timeout=60))
        finally:
            daemon.kill()  # as a logout would; the database is SQLite in WAL mode
            log = daemon.communicate(timeout=30)[0]
            prefix.wait()
            timings[f"daemon + {args[0]}"] = time.monotonic() - started
            print(log[-2000:])

    made = with_daemon("new", "demo", "--path", "C:\\project")
    assert made.returncode == 0, made.stdout + made.stderr
    assert (data / "stratavore.db").exists()

    # what the app writes to the registry when it runs: its preferences, its toast identity
    for key, name, value in ((PREFS_KEY, "theme", "dark"), (TOAST_KEY, "DisplayName", "S")):
        prefix.reg_add(key, name, value)

    # an upgrade in place, with options
    (program / "_internal" / "left-by-the-old-version.txt").write_text("stale")
    install(windows_build.newer, "/DESKTOP=1", "/AUTOSTART=0")
    registry = prefix.reg_query(KEYS)
    assert (registry[UNINSTALL_KEY] or {})["DisplayVersion"] == "99.0.0"
    assert not (program / "_internal" / "left-by-the-old-version.txt").exists()
    assert (program / "Stratavore.exe").exists()
    assert desktop_link.exists()
    assert "Stratavore" not in (registry[RUN_KEY] or {})
    assert registry[PREFS_KEY] is not None and registry[TOAST_KEY] is not None
    projects = with_daemon("projects", "--json")
    assert projects.returncode == 0, projects.stdout + projects.stderr
    assert [p["name"] for p in json.loads(projects.stdout)] == ["demo"]

    # a silent uninstall removes the program and its keys, and keeps the data
    done = timed("uninstall", [str(program / "uninstall.exe"), "/S"])
    assert done.returncode == 0
    prefix.wait()  # the uninstaller runs from a copy of itself in %TEMP%, started at once
    assert not program.exists()
    registry = prefix.reg_query(KEYS)
    assert registry[UNINSTALL_KEY] is None
    assert "Stratavore" not in (registry[RUN_KEY] or {})
    assert registry[TOAST_KEY] is None
    assert not (start_menu / "Stratavore.lnk").exists() and not desktop_link.exists()
    assert (data / "stratavore.db").exists()
    assert registry[PREFS_KEY] is not None

    # ... unless told otherwise
    install(windows_build.setup)
    done = timed("uninstall /REMOVEDATA", [str(program / "uninstall.exe"), "/S", "/REMOVEDATA"])
    assert done.returncode == 0
    prefix.wait()
    assert not program.exists() and not data.exists()
    assert prefix.reg_query(KEYS)[PREFS_KEY] is None
    print(", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
