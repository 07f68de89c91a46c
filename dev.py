#!/usr/bin/env python3
"""The two set-up commands of the README, stdlib only so they run on a fresh machine.

    python3 dev.py run    # install the app (and its desktop extra) into .venv and run it
    python3 dev.py test   # install what the tests need into .venv and run the whole suite

``run`` starts the tray app when a display and the desktop part are available, and otherwise
the headless supervisor (``stratavore daemon``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
# What each command installs: running the app needs the tray app's extra only; pytest, ruff, mypy,
# PyInstaller and schemathesis come with the test extra.
EXTRAS = {"run": "desktop", "test": "test"}


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def ensure_venv(extras: str) -> None:
    if not PYTHON.exists():
        step(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    step(f"installing stratavore[{extras}] into {VENV}")
    subprocess.run(
        [
            PYTHON,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            "-e",
            f"{ROOT}[{extras}]",
        ],
        check=True,
    )


def has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(args: list[str]) -> int:
    ensure_venv(EXTRAS["run"])
    desktop = (
        subprocess.run([PYTHON, "-c", "import desktop.app"], capture_output=True).returncode == 0
    )
    if desktop and has_display():
        return subprocess.call([PYTHON, "-m", "desktop", *args])
    why = "no display" if desktop else "the tray app is not built yet"
    step(f"{why}: running the headless supervisor (stratavore daemon)")
    return subprocess.call([BIN / "stratavore", "daemon", *args])


def system_deps() -> bool:
    """Install the Debian packages the end-to-end tests need, when missing: a virtual display
    (Xvfb), a tray (trayer), a notification server (dunst) on a private DBus, xdotool, xwininfo,
    a font, the xcb libraries Qt's X11 plugin loads, the accessibility bus (at-spi2-core);
    and for the packaging tests makensis,
    Wine (the Windows build is made, installed and run under it), ``file`` (which checks that
    build holds Windows programs only) and gnome-keyring (the frozen selftest's keyring step);
    and PostgreSQL's server, of which the team tests start a throwaway cluster.

    Only on Linux with apt-get, as root or with password-less sudo; otherwise one sentence says
    why, and those tests skip with their reason. True when everything is there.
    """
    if not sys.platform.startswith("linux"):
        return False

    packages = [
        "xvfb", "trayer", "dunst", "dbus", "xdotool", "x11-utils", "fonts-dejavu-core",
        "libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0", "libxkbcommon-x11-0",
        "libxcb-xinerama0", "libxcb-randr0", "libxcb-render-util0", "libxcb-image0",
        "libxcb-shape0", "libegl1", "libgl1", "libfontconfig1", "libdbus-1-3",
        "nsis", "wine", "wine64", "file", "gnome-keyring", "postgresql",
        "at-spi2-core",  # the window's end-to-end test reads the app through its a11y bus
    ]  # fmt: skip
    if not shutil.which("dpkg-query") or not shutil.which("apt-get"):
        step("system packages: not a Debian-like system; end-to-end and packaging tests may skip")
        return False
    listed = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *packages],
        capture_output=True,
        text=True,
    ).stdout
    installed = {line.split()[0] for line in listed.splitlines() if line.split()[1:2] == ["ii"]}
    missing = [p for p in packages if p not in installed]
    if not missing:
        return True
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]  # -n: never ask for a password
    if sudo and not (shutil.which("sudo") and subprocess.run([*sudo, "true"]).returncode == 0):
        step(f"system packages missing ({' '.join(missing)}), and not root nor sudo: "
             "the end-to-end and packaging tests will skip")  # fmt: skip
        return False
    step(f"installing system packages: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:  # a fresh image has no package lists yet
        subprocess.run([*sudo, "apt-get", "update", "-qq"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        step(f"apt-get failed; end-to-end and packaging tests will skip:\n{done.stderr.strip()}")
        return False
    return True


def usage_oracle() -> None:
    """ccusage 20.0.24's native build into bench/.ccusage: the usage tests compare the ledger
    with it (tests/usage/test_ccusage_oracle.py). From npm; without npm those tests skip,
    saying so."""
    if shutil.which("npm") is None:
        step("npm is not on PATH: the ccusage oracle tests will skip")
        return
    step("ccusage (the usage tests' reference) into bench/.ccusage")
    if subprocess.call([PYTHON, ROOT / "bench" / "_ccusage.py"], cwd=ROOT) != 0:
        step("ccusage could not be installed: the ccusage oracle tests will skip")


def test(args: list[str]) -> int:
    ensure_venv(EXTRAS["test"])
    system_deps()  # Xvfb, trayer, dunst, xdotool, Qt's xcb libs, nsis, Wine, keyring, PostgreSQL
    usage_oracle()
    step("ruff")
    sources = ["supervisor", "desktop", "installer", "tests", "bench", "dev.py"]
    lint = subprocess.call([BIN / "ruff", "check", *sources], cwd=ROOT)
    step("mypy")
    types = subprocess.call([PYTHON, "-m", "mypy"], cwd=ROOT)  # supervisor/ and desktop/
    step("pytest")
    tests = subprocess.call([PYTHON, "-m", "pytest", *args], cwd=ROOT)
    return tests or lint or types


def main() -> int:
    commands = {"run": run, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print("usage: python3 dev.py run [daemon args] | test [pytest args]", file=sys.stderr)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
