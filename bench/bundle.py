"""The packaged app: build time, bundle and installer sizes, frozen cold start.

One run, one machine (Linux; the bundle is the Linux one):

* (1) build: wall time of ``installer/build.py --skip-tests`` (PyInstaller ``--clean`` and the
  tarball), into a temp dir; or ``--bundle DIR`` to measure a bundle built before (no build).
* (2) sizes: the onedir bundle (bytes on disk, files, the biggest parts), the tarball, and the
  Windows installer compiled by makensis around the bundle with ``--compression`` (default
  lzma, as releases are; its compile time too), when makensis is installed.
* (3) cold start to ``--selftest`` done: wall time of ``stratavore-desktop --selftest``
  (offscreen Qt, keyring step allowed to skip: a keyring's unlock time is not the app's),
  median of ``--runs`` after one unmeasured warm-up (page cache); reference in the same run:
  ``python -m desktop --selftest`` from source.
* (4) cold start to the tray, when Xvfb and trayer are installed: from spawning the frozen
  ``stratavore-desktop`` on a private X display to its icon embedded in trayer's panel and
  viewable (``xwininfo`` polled every 20 ms; a fresh ``STRATAVORE_HOME`` each run, its
  ``api_port`` saved as 0), median of ``--runs`` after a warm-up; reference: ``python -m
  desktop`` from source, alternately.

Target: the frozen selftest done in < 10 s. Run: ``.venv/bin/python bench/bundle.py``;
writes ``bench/results/bundle.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    PYTHON,
    REPO,
    Table,
    close_db,
    init_db,
    machine,
    paths,
    poll_until,
    settings,
    verdict,
    write_results,
)

sys.path.append(str(REPO))  # the tests' private-desktop helpers, as bench/desktop.py uses them
from tests.desktop.conftest import SCREEN, TREE_LINE, _end, _start, x_windows

BUILD = REPO / "installer" / "build.py"
SELFTEST_TARGET_S = 10.0
APP_CLASS = "Stratavore"  # WM_CLASS of the tray icon's window (the application name)
POLL_S = 0.02


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, help="measure this onedir bundle instead of building")
    p.add_argument("--runs", type=int, default=5, help="timed runs of each cold start")
    p.add_argument("--compression", default="lzma", choices=("lzma", "zlib", "none"))
    return p.parse_args()


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def latest(times: dict[str, list[float]]) -> str:
    return ", ".join(f"{kind} {values[-1]:.2f} s" for kind, values in times.items())


def median_s(values: list[float]) -> dict[str, Any]:
    return {
        "median_s": round(statistics.median(values), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
        "values_s": [round(v, 3) for v in values],
    }


# --- (1) and (2) -------------------------------------------------------------------------------
def run_build(what: str, *args: str) -> float:
    """``installer/build.py ARGS``; its wall time, or exit naming ``what`` failed."""
    started = time.monotonic()
    done = subprocess.run(
        [str(PYTHON), str(BUILD), *args], cwd=REPO, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - started


def build(out: Path) -> tuple[Path, Path, float]:
    say("building (installer/build.py --skip-tests)")
    seconds = run_build(
        "build.py", "--skip-tests", "--dist", str(out / "dist"), "--work", str(out / "work")
    )
    tarball = next((out / "dist").glob("Stratavore-*-linux-*.tar.gz"))
    return out / "work" / "bundle" / "Stratavore", tarball, seconds


def disk_size(root: Path) -> tuple[int, int]:
    """Bytes and number of the files under ``root`` (symlinks not followed)."""
    total = count = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
            count += 1
    return total, count


def biggest_parts(bundle: Path) -> dict[str, float]:
    """MB of the main parts of the bundle: Qt's libraries, plugins, translations, ICU, the
    Python runtime, and the rest."""
    internal = bundle / "_internal"
    qt = internal / "PySide6" / "Qt"
    parts = {
        "Qt libraries (without ICU)": [p for p in (qt / "lib").glob("*") if "libicu" not in p.name],
        "ICU (Qt's Unicode data)": list((qt / "lib").glob("libicu*")),
        "Qt plugins": [qt / "plugins"],
        "Qt translations": [qt / "translations"],
        "PySide6 bindings": [p for p in (internal / "PySide6").glob("*.so*")],
        "libpython + stdlib extensions": [*internal.glob("libpython*"), internal / "python3.11"],
        "executables (3)": [p for p in bundle.iterdir() if p.is_file()],
    }
    sizes: dict[str, float] = {}
    counted = 0
    for name, items in parts.items():
        size = sum(disk_size(i)[0] if i.is_dir() else i.stat().st_size for i in items if i.exists())
        sizes[name] = round(size / 1e6, 1)
        counted += size
    sizes["everything else"] = round((disk_size(bundle)[0] - counted) / 1e6, 1)
    return sizes


def installer(bundle: Path, out: Path, compression: str) -> dict[str, Any] | None:
    if shutil.which("makensis") is None:
        say("no makensis: no installer size")
        return None
    say(f"compiling the Windows installer ({compression})")
    seconds = run_build(
        "makensis", "--nsis-only", str(bundle), "--compression", compression,
        "--dist", str(out), "--work", str(out / "work"),
    )  # fmt: skip
    setup = next(out.glob("Stratavore-Setup-*.exe"))
    return {
        "compression": compression,
        "mb": round(setup.stat().st_size / 1e6, 1),
        "compile_s": round(seconds, 1),
    }


# --- (3) ---------------------------------------------------------------------------------------
def selftest_env(home: Path) -> dict[str, str]:
    drop = ("DISPLAY", "WAYLAND_DISPLAY", "PYTHON_KEYRING_BACKEND", "STRATAVORE_HOME")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {
        **env,
        "QT_QPA_PLATFORM": "offscreen",
        "STRATAVORE_SELFTEST_ALLOW_NO_KEYRING": "1",
        "HOME": str(home),
        "PYTHONPATH": str(REPO),
    }


def timed_selftest(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return seconds


def selftests(bundle: Path, runs: int, tmp: Path) -> dict[str, Any]:
    env = selftest_env(tmp)
    kinds = {
        "frozen": [str(bundle / "stratavore-desktop"), "--selftest"],
        "from source": [str(PYTHON), "-m", "desktop", "--selftest"],
    }
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for argv in kinds.values():
        timed_selftest(argv, env)  # warm-up
    for n in range(runs):
        for kind, argv in kinds.items():  # alternately, so both see the same machine
            times[kind].append(timed_selftest(argv, env))
        say(f"selftest run {n + 1}/{runs}: {latest(times)}")
    return {kind: median_s(values) for kind, values in times.items()}


# --- (4) ---------------------------------------------------------------------------------------
class XDesktop:
    """Xvfb and trayer (an XEmbed tray), as the end-to-end tests start them."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp
        self.procs: list[subprocess.Popen] = []
        self.display = ""
        self.panel = 0

    def start(self) -> None:
        read, write = os.pipe()
        argv = ["Xvfb", "-displayfd", str(write), "-screen", "0", SCREEN, "-nolisten", "tcp"]
        self.procs.append(_start(argv, self.dir / "xvfb.log", dict(os.environ), pass_fds=(write,)))
        os.close(write)
        with os.fdopen(read) as pipe:
            self.display = ":" + pipe.readline().strip()
        env = {**os.environ, "DISPLAY": self.display}
        argv = ["trayer", "--edge", "top", "--widthtype", "request", "--height", "32"]
        self.procs.append(_start(argv, self.dir / "trayer.log", env))
        self.panel = poll_until(
            lambda: next(
                (w.id for w in x_windows(self.display) if w.wm_class == ("panel", "trayer")), None
            ),
            20,
            0.1,
            "trayer's panel",
        )

    def close(self) -> None:
        for proc in reversed(self.procs):
            _end(proc)

    def icon_viewable(self, wm_class: str) -> bool:
        env = {"PATH": os.environ["PATH"], "DISPLAY": self.display}

        def xwininfo(*args: str) -> str:
            done = subprocess.run(["xwininfo", *args], env=env, capture_output=True, text=True)
            return done.stdout

        for line in xwininfo("-tree", "-id", str(self.panel)).splitlines():
            match = TREE_LINE.match(line)
            if match and wm_class in match.group(3):
                return "IsViewable" in xwininfo("-id", match.group(1))
        return False


def to_tray(x: XDesktop, argv: list[str], tmp: Path) -> float:
    home = Path(tempfile.mkdtemp(prefix="home-", dir=tmp))
    init_db(paths.db_path(home))
    try:
        settings.save_setting("api_port", 0)  # never the default port another app may hold
    finally:
        close_db()
    drop = ("WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        DISPLAY=x.display,
        QT_QPA_PLATFORM="xcb",
        STRATAVORE_HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        STRATAVORE_NO_LOGIN_PATH="1",
        PYTHONPATH=str(REPO),
    )
    with open(home / "output.log", "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=out, start_new_session=True)

    def up() -> bool:
        if proc.poll() is not None:
            raise SystemExit(f"{argv[0]} exited:\n{(home / 'output.log').read_text()}")
        return x.icon_viewable(APP_CLASS)

    try:
        poll_until(up, 60, POLL_S, "the tray icon")
        return time.perf_counter() - started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the app quits as on logout; nothing else runs
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def tray_starts(bundle: Path, runs: int, tmp: Path) -> dict[str, Any] | None:
    if not (shutil.which("Xvfb") and shutil.which("trayer") and shutil.which("xwininfo")):
        say("no Xvfb, trayer or xwininfo: no cold start to the tray")
        return None
    x = XDesktop(tmp)
    try:
        x.start()
        kinds: dict[str, list[str]] = {
            "frozen": [str(bundle / "stratavore-desktop")],
            "from source": [str(PYTHON), "-m", "desktop"],
        }
        for argv in kinds.values():
            to_tray(x, argv, tmp)  # warm-up
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        for n in range(runs):
            for kind, argv in kinds.items():
                times[kind].append(to_tray(x, argv, tmp))
            say(f"tray run {n + 1}/{runs}: {latest(times)}")
        return {kind: median_s(values) for kind, values in times.items()}
    finally:
        x.close()


# --- the run -----------------------------------------------------------------------------------
def main() -> int:
    args = parse_args()
    if not sys.platform.startswith("linux"):
        raise SystemExit("bench/bundle.py measures the Linux bundle; run it on Linux")
    tmp = Path(tempfile.mkdtemp(prefix="stratavore-bench-bundle-"))
    try:
        results = measure(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(render(results))
    say(f"wrote {write_results('bundle', results)}")
    return 0


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine()}
    if args.bundle:
        bundle, tarball, build_s = args.bundle.resolve(), None, None
    else:
        bundle, tarball, build_s = build(tmp / "build")
    size, files = disk_size(bundle)
    results["build"] = {"seconds": round(build_s, 1) if build_s else None}
    results["sizes"] = {
        "bundle_mb": round(size / 1e6, 1),
        "bundle_files": files,
        "bundle_parts_mb": biggest_parts(bundle),
        "tarball_mb": round(tarball.stat().st_size / 1e6, 1) if tarball else None,
        "installer": installer(bundle, tmp / "nsis", args.compression),
    }
    say("cold starts to --selftest done")
    results["selftest"] = selftests(bundle, args.runs, tmp)
    results["tray"] = tray_starts(bundle, args.runs, tmp)
    return results


def render(results: dict[str, Any]) -> str:
    sizes = results["sizes"]
    setup = sizes["installer"] or {}
    rows: list[list[Any]] = [
        ["build (build.py --skip-tests)", results["build"]["seconds"], "s", "-"],
        ["bundle on disk", sizes["bundle_mb"], f"MB, {sizes['bundle_files']} files", "-"],
        ["tarball (.tar.gz)", sizes["tarball_mb"], "MB", "-"],
        [f"Windows installer ({setup.get('compression', '-')})", setup.get("mb"), "MB", "-"],
        ["makensis compile", setup.get("compile_s"), "s", "-"],
    ]
    labels: dict[str, tuple[str, Callable[[float], str]]] = {
        "selftest": ("--selftest done", lambda v: verdict(v, SELFTEST_TARGET_S)),
        "tray": ("tray icon viewable", lambda v: "-"),
    }
    for key, (label, judge) in labels.items():
        for kind, value in (results[key] or {}).items():
            rows.append(
                [
                    f"cold start to {label}, {kind} (median)",
                    value["median_s"],
                    "s",
                    judge(value["median_s"]),
                ]
            )
    parts = Table(
        "Bundle parts (MB)", ["part", "MB"], [[k, v] for k, v in sizes["bundle_parts_mb"].items()]
    )
    return (
        Table("Packaged app (Linux bundle)", ["measure", "value", "unit", "target"], rows).render()
        + "\n\n"
        + parts.render()
    )


if __name__ == "__main__":
    sys.exit(main())
