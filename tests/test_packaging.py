"""The packaged app. ``--selftest`` from source, passing and failing honestly (fast); then the
Linux bundle built by ``installer/build.py``: its frozen ``--selftest``, its console tools,
its tarball installing and uninstalling per user, and the Windows installer (compiled by
makensis around that bundle) installing, upgrading in place and uninstalling under Wine,
keeping the user's data unless told to remove it.

The bundle tests need PyInstaller (the ``build`` extra), and the Debian packages ``nsis``,
``wine`` and ``wine64`` for the installer, ``gnome-keyring`` and ``dbus`` (for
``dbus-run-session``) for the frozen selftest's keyring step; each skips with its reason when
its tools are missing (without gnome-keyring the keyring step is allowed to skip). One
bundle is built per module run (about a minute), into a temp dir removed afterwards, as are
the installers and the Wine prefix (together about 2 GB).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor import __version__

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "installer" / "build.py"
UNINSTALL_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\Stratavore"
RUN_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run"
PREFS_KEY = r"HKCU\Software\Stratavore"
TOAST_KEY = r"HKCU\Software\Classes\AppUserModelId\Stratavore"  # desktop-notifier's

PACKAGED = (
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="builds the Linux bundle"),
    pytest.mark.skipif(
        importlib.util.find_spec("PyInstaller") is None,
        reason='PyInstaller is not installed (pip install -e ".[desktop,build]")',
    ),
    pytest.mark.timeout(600),
)


def packaged(test: Callable[..., None]) -> Callable[..., None]:
    """A test of the built bundle: slow (the bundle is built once, in about a minute), Linux
    only, skipped without PyInstaller."""
    for mark in PACKAGED:
        test = mark(test)
    return test


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the test keyring and display of other tests."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHON_KEYRING_BACKEND", "STRATAVORE_TEST_KEYRING", "DISPLAY",
                     "WAYLAND_DISPLAY", "STRATAVORE_HOME")
    }  # fmt: skip
    return {**env, **extra}


def run(command: list[str], timeout: float = 300, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


def selftest_from_source(**env: str) -> subprocess.CompletedProcess[str]:
    """``python -m desktop --selftest`` from this checkout, in the test's environment (its
    file keyring from tests/keyring_backend.py) with ``env`` on top."""
    full = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO), **env}
    full.pop("DISPLAY", None)
    return run([sys.executable, "-m", "desktop", "--selftest"], timeout=60, cwd=REPO, env=full)


def test_selftest_from_source_passes() -> None:
    done = selftest_from_source()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: keyring " in done.stdout and "tests.keyring_backend" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("selftest passed in ")


def test_selftest_without_keyring_fails_with_one_sentence() -> None:
    done = selftest_from_source(PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == (
        "selftest failed: keyring: There is no usable keyring to keep secrets in: install "
        "gnome-keyring or KWallet (Secret Service) and run Stratavore in a desktop session "
        "with a running DBus session bus (set STRATAVORE_SELFTEST_ALLOW_NO_KEYRING=1 to skip "
        "this step)."
    )


def test_selftest_may_skip_the_keyring_when_allowed() -> None:
    done = selftest_from_source(
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        STRATAVORE_SELFTEST_ALLOW_NO_KEYRING="1",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped: keyring (There is no usable keyring" in done.stdout


@dataclass
class Built:
    bundle: Path  # the onedir folder
    tarball: Path
    seconds: float  # how long build.py took


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    out = tmp_path_factory.mktemp("build")
    started = time.monotonic()
    done = run(
        [sys.executable, str(BUILD), "--skip-tests", "--dist", str(out / "dist"),
         "--work", str(out / "work")],
        timeout=540, cwd=REPO, env=clean_env(),
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert done.returncode == 0, f"build.py failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    tarball = out / "dist" / f"Stratavore-{__version__}-linux-x86_64.tar.gz"
    assert tarball.exists(), done.stdout
    assert tarball.name in (out / "dist" / "SHA256SUMS").read_text()
    yield Built(out / "work" / "bundle" / "Stratavore", tarball, seconds)
    shutil.rmtree(out, ignore_errors=True)


@packaged
def test_frozen_selftest(built: Built, tmp_path: Path) -> None:
    exe = built.bundle / "stratavore-desktop"
    env = clean_env(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path))
    keyring_tools = shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")
    if keyring_tools:  # a keyring of its own, unlocked, on a private session bus
        script = (
            "printf selftest | gnome-keyring-daemon --unlock --components=secrets >/dev/null"
            ' && exec "$0" --selftest'
        )
        command = ["dbus-run-session", "--", "sh", "-c", script, str(exe)]
    else:
        env["STRATAVORE_SELFTEST_ALLOW_NO_KEYRING"] = "1"
        command = [str(exe), "--selftest"]
    started = time.monotonic()
    done = run(command, timeout=60, env=env)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Stratavore selftest (frozen, linux")
    for step in ("imports", "spawned process", "supervisor and runner", "chart"):
        assert any(line.startswith(f"ok: {step} ") for line in lines), done.stdout
    keyring = "ok: keyring " if keyring_tools else "skipped: keyring "
    assert any(line.startswith(keyring) for line in lines), done.stdout
    assert lines[-1].startswith("selftest passed")
    assert seconds < 10, f"the frozen selftest took {seconds:.1f} s"
    print(f"build {built.seconds:.0f} s, frozen selftest {seconds:.1f} s")


@packaged
def test_frozen_console_tools(built: Built, tmp_path: Path) -> None:
    version = run([str(built.bundle / "stratavore"), "--version"], timeout=30, env=clean_env())
    assert (version.returncode, version.stdout.strip()) == (0, f"stratavore {__version__}")
    # every command's module is in the bundle, though main.py imports them by name
    home = clean_env(STRATAVORE_HOME=str(tmp_path / "home"))
    status = run([str(built.bundle / "stratavore"), "status"], timeout=30, env=home)
    assert status.returncode == 3 and "No Stratavore supervisor is running" in status.stderr
    listed = run([str(built.bundle / "stratavore"), "restore", "--list"], timeout=30, env=home)
    assert (listed.returncode, listed.stderr) == (0, ""), listed.stdout
    agent = run([str(built.bundle / "stratavore-agent")], timeout=30, env=clean_env())
    assert agent.returncode == 2 and "nothing to run" in agent.stderr


@packaged
def test_tarball_installs_and_uninstalls_per_user(built: Built, tmp_path: Path) -> None:
    with tarfile.open(built.tarball) as tar:
        safe = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}  # 3.11.4+
        tar.extractall(tmp_path / "unpacked", **safe)
    top = tmp_path / "unpacked" / f"Stratavore-{__version__}"
    for name in ("stratavore-desktop", "stratavore", "stratavore-agent", "install.sh",
                 "stratavore.desktop", "icons/hicolor/256x256/apps/stratavore.png"):  # fmt: skip
        assert (top / name).exists(), name
    home = tmp_path / "user"
    data = home / ".local" / "share"
    (data / "Stratavore").mkdir(parents=True)
    (data / "Stratavore" / "stratavore.db").write_text("the user's data")
    env = clean_env(HOME=str(home), PATH=os.environ["PATH"])
    env.pop("XDG_DATA_HOME", None)

    done = run(["sh", str(top / "install.sh")], timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    app = data / "stratavore-app"
    entry = (data / "applications" / "stratavore.desktop").read_text()
    assert f'Exec="{app}/stratavore-desktop"' in entry
    assert (data / "icons" / "hicolor" / "48x48" / "apps" / "stratavore.png").exists()
    linked = run([str(home / ".local" / "bin" / "stratavore"), "--version"], env=env)
    assert linked.stdout.strip() == f"stratavore {__version__}"

    done = run(["sh", str(top / "install.sh"), "--uninstall"], timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not app.exists() and not (home / ".local" / "bin" / "stratavore").exists()
    assert not (data / "applications" / "stratavore.desktop").exists()
    assert (data / "Stratavore" / "stratavore.db").read_text() == "the user's data"
    shutil.rmtree(tmp_path / "unpacked")  # 230 MB; pytest keeps the temp dirs of 3 runs


# --- the Windows installer, under Wine ---------------------------------------------------------
def wine_tools() -> tuple[str, str] | None:
    wine = shutil.which("wine") or shutil.which("wine64")
    server = shutil.which("wineserver")
    if wine is None and Path("/usr/lib/wine/wine64").exists():  # Debian's wine64 alone
        wine = "/usr/lib/wine/wine64"
    if server is None and Path("/usr/lib/wine/wineserver").exists():
        server = "/usr/lib/wine/wineserver"
    return (wine, server) if wine and server else None


class Wine:
    """A throwaway 64-bit Wine prefix with no display. An installer's run waits for Wine to be
    idle: an NSIS uninstaller copies itself to %TEMP%, starts that copy and returns at once."""

    def __init__(self, root: Path, wine: str, server: str) -> None:
        self.wine, self.server = wine, server
        self.home = root / "home"
        self.home.mkdir()
        self.prefix = root / "prefix"
        self.env = clean_env(
            HOME=str(self.home), WINEPREFIX=str(self.prefix), WINEARCH="win64",
            WINEDEBUG="-all", WINEDLLOVERRIDES="mscoree,mshtml=",  # no Mono/Gecko prompts
        )  # fmt: skip
        self.timings: dict[str, float] = {}

    def __call__(
        self, label: str, *args: str, wait: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` under Wine; with ``wait``, also until every process it started ended
        (then the Wine server too, which lingers for 3 s: not worth it for ``reg``)."""
        started = time.monotonic()
        done = run([self.wine, *args], timeout=240, env=self.env)
        if wait:
            run([self.server, "-w"], timeout=240, env=self.env)
        self.timings[label] = self.timings.get(label, 0.0) + time.monotonic() - started
        return done

    def close(self) -> None:
        run([self.server, "-k"], timeout=60, env=self.env)

    @property
    def user(self) -> Path:
        users = [p for p in (self.prefix / "drive_c" / "users").iterdir() if p.name != "Public"]
        assert len(users) == 1, users
        return users[0]

    @property
    def local(self) -> Path:
        return self.user / "AppData" / "Local"

    def registry(self) -> dict[str, dict[str, str] | None]:
        """The values of the keys this test looks at (None: no such key), read with
        ``reg query`` in one start of Wine (each costs seconds)."""
        keys = (UNINSTALL_KEY, RUN_KEY, PREFS_KEY, TOAST_KEY)
        # one word per argument: Wine quotes an argument with spaces, which cmd would not split
        line = [word for key in keys for word in ("&", "reg", "query", key)][1:]
        done = self("reg query", "cmd", "/c", *line, wait=False)
        found: dict[str, dict[str, str]] = {}
        values: dict[str, str] = {}
        for text in done.stdout.splitlines():
            if text.startswith("HKEY_CURRENT_USER\\"):
                values = found.setdefault("HKCU" + text[len("HKEY_CURRENT_USER") :].strip(), {})
                continue
            parts = text.strip().split(None, 2)
            if len(parts) >= 2 and parts[1].startswith("REG_"):
                values[parts[0]] = parts[2] if len(parts) == 3 else ""
        return {key: found.get(key) for key in keys}


@pytest.fixture
def wine(tmp_path: Path) -> Iterator[Wine]:
    tools = wine_tools()
    if tools is None:
        pytest.skip("Wine is not installed (Debian: apt-get install wine wine64)")
    box = Wine(tmp_path, *tools)
    done = box("prefix", "wineboot", "--init")
    assert done.returncode == 0, done.stderr
    yield box
    box.close()
    shutil.rmtree(tmp_path, ignore_errors=True)


def compile_installer(built: Built, out: Path, version: str) -> tuple[Path, float]:
    started = time.monotonic()
    done = run(
        [sys.executable, str(BUILD), "--nsis-only", str(built.bundle), "--version", version,
         "--compression", "none", "--dist", str(out), "--work", str(out / "work")],
        timeout=300, cwd=REPO, env=clean_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return out / f"Stratavore-Setup-{version}.exe", time.monotonic() - started


@packaged
def test_windows_installer_under_wine(built: Built, wine: Wine, tmp_path: Path) -> None:
    if shutil.which("makensis") is None:
        pytest.skip("makensis is not installed (Debian: apt-get install nsis)")
    setup, first = compile_installer(built, tmp_path / "nsis", __version__)
    newer, second = compile_installer(built, tmp_path / "nsis-newer", "99.0.0")
    program = wine.local / "Programs" / "Stratavore"
    data = wine.local / "Stratavore"
    start_menu = wine.user / "AppData/Roaming/Microsoft/Windows/Start Menu/Programs"
    desktop_link = (wine.user / "Desktop").resolve() / "Stratavore.lnk"
    windows_dir = "C:" + str(program).split("drive_c", 1)[1].replace("/", "\\")

    # a fresh install, silently: the defaults (a login entry, no desktop shortcut)
    assert wine("install", str(setup), "/S").returncode == 0
    for name in ("stratavore-desktop", "stratavore", "_internal", "uninstall.exe"):
        assert (program / name).exists(), name
    assert (start_menu / "Stratavore.lnk").exists()
    assert not desktop_link.exists()
    registry = wine.registry()
    entry = registry[UNINSTALL_KEY]
    assert entry is not None
    assert entry["DisplayName"] == "Stratavore"
    assert entry["DisplayVersion"] == __version__
    assert entry["InstallLocation"] == windows_dir
    assert entry["UninstallString"] == f'"{windows_dir}\\uninstall.exe"'
    assert entry["QuietUninstallString"] == f'"{windows_dir}\\uninstall.exe" /S'
    assert entry["NoModify"] == entry["NoRepair"] == "0x1"
    assert (registry[RUN_KEY] or {}).get("Stratavore") == f'"{windows_dir}\\stratavore-desktop.exe"'

    # the user's data, and a file the old version had that the new one does not
    data.mkdir(parents=True, exist_ok=True)
    (data / "stratavore.db").write_text("the user's data")
    # what the app writes to the registry when it runs: its preferences, its toast identity
    values = [("/v", "theme", "/d", "dark"), ("/v", "DisplayName", "/d", "Stratavore")]
    line = [w for key, v in zip((PREFS_KEY, TOAST_KEY), values, strict=True)
            for w in ("&", "reg", "add", key, *v, "/f")][1:]  # fmt: skip
    assert wine("reg add", "cmd", "/c", *line, wait=False).returncode == 0
    (program / "_internal" / "left-by-the-old-version.txt").write_text("stale")

    # an upgrade in place, with options
    assert wine("upgrade", str(newer), "/S", "/DESKTOP=1", "/AUTOSTART=0").returncode == 0
    registry = wine.registry()
    assert (registry[UNINSTALL_KEY] or {})["DisplayVersion"] == "99.0.0"
    assert not (program / "_internal" / "left-by-the-old-version.txt").exists()
    assert (program / "stratavore-desktop").exists()
    assert desktop_link.exists()
    assert "Stratavore" not in (registry[RUN_KEY] or {})
    assert registry[PREFS_KEY] is not None and registry[TOAST_KEY] is not None
    assert (data / "stratavore.db").read_text() == "the user's data"

    # a silent uninstall keeps the data
    assert wine("uninstall", str(program / "uninstall.exe"), "/S").returncode == 0
    assert not program.exists()
    registry = wine.registry()
    assert registry[UNINSTALL_KEY] is None
    assert not (start_menu / "Stratavore.lnk").exists() and not desktop_link.exists()
    assert (data / "stratavore.db").read_text() == "the user's data"
    assert registry[PREFS_KEY] is not None
    assert registry[TOAST_KEY] is None  # not the user's data: the app's registration

    # ... unless told otherwise
    assert wine("install", str(setup), "/S").returncode == 0
    assert wine("uninstall", str(program / "uninstall.exe"), "/S", "/REMOVEDATA").returncode == 0
    assert not program.exists() and not data.exists()
    registry = wine.registry()
    assert registry[PREFS_KEY] is None
    assert "Stratavore" not in (registry[RUN_KEY] or {})

    timings = ", ".join(f"{k} {v:.1f} s" for k, v in wine.timings.items())
    print(f"makensis {first:.1f} s + {second:.1f} s; wine: {timings}")
