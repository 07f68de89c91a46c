"""The Windows build, under Wine: built once per test session by ``installer/build.py --target
windows`` (the pinned embeddable CPython and wheels, from the build cache), and fresh Wine
prefixes prepared as installer/wine.py says, on a virtual X screen (Qt needs one under Wine,
even to draw offscreen).

Skipped, with the reason, where Wine, makensis, Xvfb or dpkg-deb is missing (``python3 dev.py
test`` installs them on Debian). The first run downloads about 250 MB into the build cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor import __version__

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "installer"))
import wine  # noqa: E402  (installer/wine.py)

BUILD = REPO / "installer" / "build.py"
# The test process's own settings (its file keyring, data dir, agent logs) are for Linux
# programs: the Windows ones under test use their own (Credential Manager, %LOCALAPPDATA%).
HOST_ONLY = ("STRATAVORE_", "PYTHON", "CLAUDE_CONFIG_DIR", "CODEX_HOME", "QT_")
NEEDED = {"wine": "wine", "makensis": "nsis", "Xvfb": "xvfb", "dpkg-deb": "dpkg", "file": "file"}


def missing_tools() -> str | None:
    """Why the Windows tests cannot run here, or None."""
    if not sys.platform.startswith("linux"):
        return "runs Windows programs under Wine, on Linux"
    absent = [tool for tool in NEEDED if shutil.which(tool) is None]
    if wine.tools() is None and "wine" not in absent:
        absent.append("wine")
    if absent:
        packages = " ".join(sorted({NEEDED[tool] for tool in absent}))
        return f"{', '.join(absent)} not installed (Debian: apt-get install {packages})"
    return None


@pytest.fixture(scope="session", autouse=True)
def windows_tools() -> None:
    why = missing_tools()
    if why:
        pytest.skip(why)


@dataclass
class WindowsBuild:
    bundle: Path  # the onedir folder: Stratavore.exe, _internal\, bin\
    setup: Path  # the NSIS installer around it
    newer: Path  # the same bundle as version 99.0.0, for the upgrade
    seconds: float  # build.py's time (PyInstaller under Wine and makensis)
    nsis_seconds: float  # the second installer's makensis alone


def run_build(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "STRATAVORE_HOME")}
    done = subprocess.run(
        [sys.executable, str(BUILD), *args], capture_output=True, text=True, timeout=timeout,
        cwd=REPO, env=env,
    )  # fmt: skip
    assert done.returncode == 0, f"build.py failed:\n{done.stdout[-5000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="session")
def windows_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WindowsBuild]:
    """The Windows build and its installers; with ``STRATAVORE_TEST_WINDOWS_BUILD=DIR``, the
    ones an earlier run left in DIR (made there if missing: for working on these tests)."""
    kept = os.environ.get("STRATAVORE_TEST_WINDOWS_BUILD")
    out = Path(kept) if kept else tmp_path_factory.mktemp("windows-build")
    bundle = out / "work" / "bundle" / "Stratavore"
    started = time.monotonic()
    # no compression: a test installer is installed once and thrown away (zlib: +1 min)
    if not (kept and (out / "dist").is_dir()):
        run_build("--target", "windows", "--compression", "none", "--dist", str(out / "dist"),
                  "--work", str(out / "work"))  # fmt: skip
    seconds = time.monotonic() - started
    started = time.monotonic()
    if not (kept and (out / "newer").is_dir()):
        run_build("--nsis-only", str(bundle), "--version", "99.0.0", "--compression", "none",
                  "--dist", str(out / "newer"), "--work", str(out / "work-newer"))  # fmt: skip
    yield WindowsBuild(
        bundle,
        out / "dist" / f"Stratavore-Setup-{__version__}.exe",
        out / "newer" / "Stratavore-Setup-99.0.0.exe",
        seconds,
        time.monotonic() - started,
    )
    if not kept:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """A virtual X screen on a free display number (Xvfb writes it to stdout); its
    ``DISPLAY``."""
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert xvfb.stdout is not None
    number = xvfb.stdout.readline().strip()  # '' when it died
    if not number.isdigit():
        xvfb.kill()
        pytest.fail(f"Xvfb did not start:\n{xvfb.communicate()[1]}")
    yield f":{number}"
    xvfb.terminate()
    xvfb.communicate(timeout=10)


@pytest.fixture(scope="session")
def wine_fix() -> Path:
    """Debian 13's libwine (Wine 10), for windows.ui.dll: downloaded once into the build
    cache, checked by the SHA256 of installer/windows-lock.toml."""
    import tomllib

    with open(REPO / "installer" / "windows-lock.toml", "rb") as file:
        pin = tomllib.load(file)["wine-fix"]
    return wine.apt_download(pin["package"], pin["version"], pin["suite"], pin["sha256"])


@pytest.fixture(scope="session")
def template_prefix(display: str, wine_fix: Path) -> Path:
    """A prefix ready for Qt, prepared once in the build cache, that each test copies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(HOST_ONLY)}
    return wine.cached_prefix(
        "wine-test", qt=True, fix_deb=wine_fix, env=env | {"DISPLAY": display}
    )


@pytest.fixture
def prefix(tmp_path: Path, display: str, template_prefix: Path) -> Iterator[wine.Prefix]:
    """A fresh Wine prefix (a copy of the template), on the virtual screen; removed
    afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(HOST_ONLY)}
    env |= {"DISPLAY": display, "HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    shutil.copytree(template_prefix, tmp_path / "prefix", symlinks=True)
    box = wine.Prefix(tmp_path / "prefix", env)
    yield box
    box.kill()
    shutil.rmtree(tmp_path / "prefix", ignore_errors=True)
