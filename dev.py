#!/usr/bin/env python3
"""The two set-up commands of the README, stdlib only so they run on a fresh machine.

    python3 dev.py run    # install into .venv and run Stratavore
    python3 dev.py test   # install what the tests need into .venv and run the whole suite

``run`` starts the tray app when a display and the desktop part are available, and otherwise
the headless supervisor (``stratavore daemon``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


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
    ensure_venv("test")
    desktop = (
        subprocess.run([PYTHON, "-c", "import desktop.app"], capture_output=True).returncode == 0
    )
    if desktop and has_display():
        return subprocess.call([PYTHON, "-m", "desktop", *args])
    why = "no display" if desktop else "the tray app is not built yet"
    step(f"{why}: running the headless supervisor (stratavore daemon)")
    return subprocess.call([BIN / "stratavore", "daemon", *args])


def test(args: list[str]) -> int:
    ensure_venv("test")
    step("ruff")
    sources = [
        p for p in ("supervisor", "desktop", "tests", "bench", "dev.py") if (ROOT / p).exists()
    ]
    lint = subprocess.call([BIN / "ruff", "check", *sources], cwd=ROOT)
    step("pytest")
    tests = subprocess.call([PYTHON, "-m", "pytest", *args], cwd=ROOT)
    return tests or lint


def main() -> int:
    commands = {"run": run, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print("usage: python3 dev.py run [daemon args] | test [pytest args]", file=sys.stderr)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
