"""The Windows build made on Linux: build time, bundle and installer sizes, and the installed
app's selftest under Wine.

* (1) build: wall time of ``installer/build.py --target windows --compression lzma`` (the
  release setting) with the build cache as it is (run it twice for a warm figure), and, as
  the reference in the same run, the Linux build (``installer/build.py --skip-tests``);
* (2) sizes: the Windows onedir bundle (bytes, files, the biggest parts) and the installer;
* (3) under Wine, in a fresh prefix (installer/wine.py): the silent install's time and the
  installed ``Stratavore.exe --selftest``'s wall time (Wine's own start included).

Run: ``.venv/bin/python bench/windows_build.py``; writes ``bench/results/windows_build.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "installer")]
import wine  # noqa: E402  (installer/wine.py)

BUILD = ROOT / "installer" / "build.py"
RESULTS = ROOT / "bench" / "results" / "windows_build.json"


def timed(command: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    return time.monotonic() - started


def folder_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def main() -> int:
    from supervisor import __version__

    with tempfile.TemporaryDirectory(prefix="stratavore-bench-") as tmp:
        out = Path(tmp)
        build = [sys.executable, str(BUILD), "--skip-tests"]
        windows = timed([*build, "--target", "windows", "--compression", "lzma",
                         "--dist", str(out / "dist"), "--work", str(out / "work")])  # fmt: skip
        linux = timed([*build, "--dist", str(out / "ldist"), "--work", str(out / "lwork")])
        bundle = out / "work" / "bundle" / "Stratavore"
        size, files = folder_size(bundle)
        parts = {
            name: folder_size(bundle / "_internal" / name)[0] for name in ("PySide6", "shiboken6")
        } | {"bin": folder_size(bundle / "bin")[0]}
        setup = out / "dist" / f"Stratavore-Setup-{__version__}.exe"
        with open(ROOT / "installer" / "windows-lock.toml", "rb") as file:
            pin = tomllib.load(file)["wine-fix"]
        fix = wine.apt_download(pin["package"], pin["version"], pin["suite"], pin["sha256"])
        xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x800x24"],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert xvfb.stdout is not None
        display = ":" + xvfb.stdout.readline().strip()
        try:
            prefix = wine.Prefix(out / "prefix", {**os.environ, "DISPLAY": display})
            started = time.monotonic()
            prefix.create(qt=True, fix_deb=fix)
            made = time.monotonic() - started
            started = time.monotonic()
            prefix.run([str(setup), "/S"], check="the installer")
            prefix.wait()
            installed = time.monotonic() - started
            app = prefix.local_appdata / "Programs" / "Stratavore" / "Stratavore.exe"
            started = time.monotonic()
            done = prefix.run([str(app), "--selftest"], timeout=300)
            selftest = time.monotonic() - started
            prefix.kill()
        finally:
            xvfb.terminate()
        result = {
            "windows_build_s": round(windows, 1),
            "linux_build_s": round(linux, 1),
            "ratio_windows_to_linux": round(windows / linux, 2),
            "bundle_mb": round(size / 1e6, 1),
            "bundle_files": files,
            "parts_mb": {k: round(v / 1e6, 1) for k, v in parts.items()},
            "installer_lzma_mb": round(setup.stat().st_size / 1e6, 1),
            "prefix_s": round(made, 1),
            "install_s": round(installed, 1),
            "selftest_s": round(selftest, 1),
            "selftest_ok": done.returncode == 0,
        }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
