"""Build Stratavore for this platform: the one build entry of Linux, macOS and Windows.

    python installer/build.py                    # tests, bundle, selftest, package, SHA256
    python installer/build.py --skip-tests --version 0.2.0
    python installer/build.py --nsis-only PAYLOAD_DIR   # just the Windows installer

Run it with the Python that has Stratavore and its build tools installed
(``pip install -e .[desktop,build]``; ``build.ps1`` does that on Windows). In order it:

1. checks that PyInstaller, PySide6 and the other run-time packages import;
2. runs the test suite (``--skip-tests``: no);
3. freezes the three executables into one folder with ``installer/stratavore.spec``;
4. runs the frozen tray app's ``--selftest`` (skipped with the tests);
5. packages the folder: on Linux a tarball (and an AppImage when ``appimagetool`` is on the
   PATH), on macOS ``Stratavore.app`` in a dmg, on Windows the NSIS installer;
6. prints the SHA256 of each artifact and writes them to ``dist/SHA256SUMS``.

``--nsis-only`` compiles the installer around an existing folder on any OS with ``makensis``
(the packaging test does so on Linux, around the Linux bundle, and installs it under Wine).
The exit status is 0 on success; otherwise the last line says what failed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = ROOT / "installer"
RESOURCES = ROOT / "resources"
SPEC = INSTALLER / "stratavore.spec"
NSIS_TEMPLATE = INSTALLER / "stratavore.nsi.in"
NAME = "Stratavore"
GUI_EXE = "stratavore-desktop"
VERSION_FORMAT = re.compile(r"\d+(\.\d+){0,3}([.+-][0-9A-Za-z.]+)?")  # safe in names and NSIS
# makensis' compression per --compression: LZMA for releases (a third of zlib's size), the
# other two for test builds that are installed once and thrown away.
COMPRESSION = {
    "lzma": "SetCompressor /SOLID lzma",
    "zlib": "SetCompressor zlib",
    "none": "SetCompress off",
}
# PyInstaller lines worth showing as progress (its whole log goes to a file).
PROGRESS = re.compile(
    r"INFO: (Analyzing (/|[A-Z]:\\).*\.py$|Looking for dynamic|Building (EXE|"
    r"COLLECT|BUNDLE) .*completed|Build complete)|WARNING|ERROR"
)
# Windows-only DLLs that Linux and macOS builds report missing, every time.
EXPECTED_WARNINGS = re.compile(r"Library (shell32|ole32|user32|kernel32) required via ctypes")


class BuildError(Exception):
    """A step failed; the message is the one sentence shown."""


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def package_version() -> str:
    text = (ROOT / "supervisor" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "(.+)"', text, re.M)
    if found is None:
        raise BuildError("supervisor/__init__.py has no __version__")
    return found.group(1)


def machine() -> str:
    arch = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}.get(arch, arch)


# --- steps -----------------------------------------------------------------------------------
def check_dependencies() -> None:
    """Everything the bundle is made of must import in this Python."""
    missing = []
    versions = []
    for module in (
        "PyInstaller",
        "PySide6",
        "qasync",
        "desktop_notifier",
        "keyring",
        "apscheduler",
        "aiohttp",
        "tzlocal",
        "supervisor",
        "desktop",
    ):
        try:
            imported = importlib.import_module(module)
        except ImportError:
            missing.append(module)
            continue
        version = getattr(imported, "__version__", None)
        if version and module in ("PyInstaller", "PySide6", "apscheduler", "keyring"):
            versions.append(f"{module} {version}")
    if missing:
        raise BuildError(
            f"{', '.join(missing)} cannot be imported by {sys.executable}; install the build "
            f'dependencies there with: pip install -e "{ROOT}[desktop,build]"'
        )
    print(f"    Python {platform.python_version()}, {', '.join(versions)}")


def run_tests() -> None:
    # The packaging test builds the bundle itself: not from inside a build.
    command = [sys.executable, "-m", "pytest", "-q", "--ignore=tests/test_packaging.py"]
    if subprocess.run(command, cwd=ROOT).returncode != 0:
        raise BuildError("the tests failed (use --skip-tests to build anyway)")


def freeze(version: str, work: Path, verbose: bool) -> Path:
    """Run PyInstaller; the bundle folder (``Stratavore.app`` on macOS)."""
    dist = work / "bundle"
    log_path = work / "pyinstaller.log"
    work.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--distpath",
        str(dist),
        "--workpath",
        str(work / "pyinstaller"),
        str(SPEC),
    ]
    env = {**os.environ, "STRATAVORE_VERSION": version, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    with (
        open(log_path, "w", encoding="utf-8") as log,
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            line = line.rstrip()
            if verbose or (PROGRESS.search(line) and not EXPECTED_WARNINGS.search(line)):
                shown = re.sub(r"^\d+ (INFO: )?", "", line)
                print(f"    [{time.monotonic() - started:5.0f} s] {shown}", flush=True)
    if process.returncode != 0:
        raise BuildError(f"PyInstaller failed (exit status {process.returncode}); see {log_path}")
    bundle = dist / (f"{NAME}.app" if sys.platform == "darwin" else NAME)
    if not bundle.is_dir():
        raise BuildError(f"PyInstaller made no {bundle}")
    return bundle


def gui_executable(bundle: Path) -> Path:
    if sys.platform == "darwin":
        return bundle / "Contents" / "MacOS" / GUI_EXE
    return bundle / (GUI_EXE + (".exe" if sys.platform == "win32" else ""))


def selftest(bundle: Path) -> None:
    """The frozen tray app's ``--selftest``, its lines shown here."""
    exe = gui_executable(bundle)
    report = Path(tempfile.gettempdir()) / "stratavore-selftest.txt"
    report.unlink(missing_ok=True)
    done = subprocess.run([str(exe), "--selftest"], capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    if not output.strip() and report.exists():  # the windowed Windows exe writes a file
        output = report.read_text(encoding="utf-8")
    for line in output.strip().splitlines():
        print(f"    {line}")
    if done.returncode != 0:
        raise BuildError(f"the frozen app's selftest failed (exit status {done.returncode})")


def package_linux(bundle: Path, version: str, dist: Path, work: Path) -> list[Path]:
    """A tarball of the bundle with a menu entry, icons and install.sh; an AppImage too
    when appimagetool is available."""
    top = f"{NAME}-{version}"
    tarball = dist / f"{NAME}-{version}-linux-{machine()}.tar.gz"
    extras = {
        "stratavore.desktop": INSTALLER / "linux" / "stratavore.desktop",
        "install.sh": INSTALLER / "linux" / "install.sh",
    }
    for png in sorted(RESOURCES.glob("stratavore-*.png")):
        size = png.stem.rsplit("-", 1)[1]
        extras[f"icons/hicolor/{size}x{size}/apps/stratavore.png"] = png

    def normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    # Level 6: nearly level 9's size in half its time, on a folder of shared libraries.
    with tarfile.open(tarball, "w:gz", compresslevel=6) as tar:
        for path in sorted(bundle.iterdir()):
            tar.add(path, f"{top}/{path.name}", filter=normalized)
        for name, source in extras.items():
            tar.add(source, f"{top}/{name}", filter=normalized)
    artifacts = [tarball]
    tool = shutil.which("appimagetool")
    if tool:
        artifacts.append(appimage(tool, bundle, version, dist, work))
    else:
        print("    (no appimagetool on the PATH: no AppImage; the tarball is the package)")
    return artifacts


def appimage(tool: str, bundle: Path, version: str, dist: Path, work: Path) -> Path:
    appdir = work / "AppDir"
    shutil.rmtree(appdir, ignore_errors=True)
    shutil.copytree(bundle, appdir, symlinks=True)
    shutil.copy(INSTALLER / "linux" / "stratavore.desktop", appdir / "stratavore.desktop")
    shutil.copy(RESOURCES / "stratavore-256.png", appdir / "stratavore.png")
    (appdir / ".DirIcon").symlink_to("stratavore.png")
    (appdir / "AppRun").symlink_to(GUI_EXE)
    out = dist / f"{NAME}-{version}-{machine()}.AppImage"
    env = {**os.environ, "ARCH": machine()}
    # --appimage-extract-and-run: works where FUSE is not available (containers, CI).
    done = subprocess.run([tool, "--appimage-extract-and-run", str(appdir), str(out)], env=env)
    if done.returncode != 0:
        raise BuildError(f"appimagetool failed (exit status {done.returncode})")
    return out


def package_macos(app: Path, version: str, dist: Path, work: Path) -> list[Path]:
    """``Stratavore.app`` in a compressed dmg, next to a link to /Applications."""
    staging = work / "dmg"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copytree(app, staging / app.name, symlinks=True)
    (staging / "Applications").symlink_to("/Applications")
    out = dist / f"{NAME}-{version}-macos-{machine()}.dmg"
    out.unlink(missing_ok=True)
    command = [
        "hdiutil",
        "create",
        "-volname",
        f"{NAME} {version}",
        "-srcfolder",
        str(staging),
        "-fs",
        "HFS+",
        "-format",
        "UDZO",
        "-ov",
        str(out),
    ]
    if subprocess.run(command).returncode != 0:
        raise BuildError("hdiutil could not create the dmg")
    return [out]


def find_makensis() -> str:
    found = shutil.which("makensis")
    if found:
        return found
    for base in (os.environ.get("PROGRAMFILES(X86)"), os.environ.get("PROGRAMFILES")):
        if base and (Path(base) / "NSIS" / "makensis.exe").exists():
            return str(Path(base) / "NSIS" / "makensis.exe")
    raise BuildError(
        "makensis (NSIS 3) was not found: install it (Windows: winget install NSIS.NSIS; "
        "Debian/Ubuntu: apt-get install nsis) or put it on the PATH"
    )


def version4(version: str) -> str:
    """The four numbers of a Windows version resource: 0.2.0-rc1 -> 0.2.0.0."""
    numbers = [int(n) for n in re.findall(r"\d+", version.split("-")[0].split("+")[0])][:4]
    return ".".join(map(str, numbers + [0] * (4 - len(numbers))))


def nsis_script(payload: Path, version: str, out: Path, compression: str) -> str:
    """The installer script: the template with this build's values."""

    def nsis_path(path: Path) -> str:
        return str(path).replace("$", "$$")

    removals = []  # what this payload installs, removed before an upgrade and on uninstall
    for entry in sorted(payload.iterdir()):
        name = entry.name.replace("$", "$$")
        if entry.is_dir() and not entry.is_symlink():
            removals.append(f'  RMDir /r "$INSTDIR\\{name}"')
        else:
            removals.append(f'  Delete "$INSTDIR\\{name}"')
    values = {
        "@NAME@": NAME,
        "@VERSION@": version,
        "@VERSION4@": version4(version),
        "@COMPRESSION@": COMPRESSION[compression],
        "@OUTFILE@": nsis_path(out),
        "@ICON@": nsis_path(RESOURCES / "stratavore.ico"),
        "@PAYLOAD_GLOB@": nsis_path(payload) + os.sep + "*",
        "@REMOVE_PAYLOAD@": "\n".join(removals),
    }
    script = NSIS_TEMPLATE.read_text(encoding="utf-8")
    for key, value in values.items():
        script = script.replace(key, value)
    left = re.findall(r"@[A-Z0-9_]+@", script)
    if left:
        raise BuildError(f"{NSIS_TEMPLATE.name} has values build.py does not fill: {left}")
    return script


def package_windows(
    payload: Path, version: str, dist: Path, work: Path, compression: str
) -> list[Path]:
    """The NSIS installer around ``payload`` (a folder holding what goes into the program
    folder); works on any OS that has makensis."""
    if not payload.is_dir() or not any(payload.iterdir()):
        raise BuildError(f"the payload folder {payload} is missing or empty")
    makensis = find_makensis()
    out = dist / f"{NAME}-Setup-{version}.exe"
    script = work / "nsis" / "stratavore.nsi"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(
        nsis_script(payload.resolve(), version, out.resolve(), compression), encoding="utf-8"
    )
    started = time.monotonic()
    done = subprocess.run([makensis, "-V2", "-WX", str(script)], capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout + done.stderr)
        raise BuildError(f"makensis failed on {script} (exit status {done.returncode})")
    print(f"    makensis: {out.name} in {time.monotonic() - started:.1f} s ({compression})")
    return [out]


def sign(paths: Sequence[Path], cert: Path) -> None:
    """Authenticode-sign ``paths`` with signtool (Windows SDK) and a timestamp; the PFX's
    password, if any, comes from STRATAVORE_SIGN_PASSWORD."""
    signtool = shutil.which("signtool")
    if signtool is None:
        raise BuildError("signtool (Windows SDK) is not on the PATH; it is needed to sign")
    command = [
        signtool,
        "sign",
        "/f",
        str(cert),
        "/fd",
        "sha256",
        "/tr",
        "http://timestamp.digicert.com",
        "/td",
        "sha256",
    ]
    password = os.environ.get("STRATAVORE_SIGN_PASSWORD")
    if password:
        command += ["/p", password]
    if subprocess.run([*command, *map(str, paths)]).returncode != 0:
        raise BuildError(f"signtool could not sign {', '.join(p.name for p in paths)}")


def checksums(artifacts: Sequence[Path], dist: Path) -> None:
    lines = []
    for path in artifacts:
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
        size = path.stat().st_size / 1e6
        print(f"    {digest.hexdigest()}  {path.name}  ({size:.1f} MB)")
        lines.append(f"{digest.hexdigest()}  {path.name}\n")
    (dist / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")


# --- main ------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", help="version of the artifacts (default: the package's)")
    parser.add_argument(
        "--skip-tests",
        action="store_true",
        help="neither the test suite nor the frozen app's selftest",
    )
    parser.add_argument(
        "--nsis-only",
        type=Path,
        metavar="PAYLOAD_DIR",
        help="only compile the Windows installer around this folder",
    )
    parser.add_argument(
        "--compression",
        choices=sorted(COMPRESSION),
        default="lzma",
        help="of the Windows installer (default: lzma)",
    )
    parser.add_argument(
        "--dist", type=Path, default=ROOT / "dist", help="where the artifacts go (default: dist/)"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "build",
        help="PyInstaller's work folder and the bundle (default: build/)",
    )
    parser.add_argument(
        "--sign-cert",
        type=Path,
        metavar="PFX",
        help="Windows: sign the executables and the installer with signtool",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="all of PyInstaller's log")
    args = parser.parse_args(argv)
    args.version = args.version or package_version()
    if not VERSION_FORMAT.fullmatch(args.version):
        parser.error(f"--version {args.version!r} is not like 1.2.3 or 1.2.3-rc1")
    return args


def build(args: argparse.Namespace) -> list[Path]:
    dist, work = args.dist.resolve(), args.work.resolve()
    dist.mkdir(parents=True, exist_ok=True)
    if args.nsis_only:
        step(f"Windows installer {args.version} around {args.nsis_only}")
        return package_windows(args.nsis_only, args.version, dist, work, args.compression)
    total = 6 - 2 * args.skip_tests
    number = iter(range(1, total + 1))
    step(f"[{next(number)}/{total}] dependencies")
    check_dependencies()
    if not args.skip_tests:
        step(f"[{next(number)}/{total}] tests")
        run_tests()
    step(f"[{next(number)}/{total}] PyInstaller: {NAME} {args.version} for {sys.platform}")
    started = time.monotonic()
    bundle = freeze(args.version, work, args.verbose)
    print(f"    {bundle} in {time.monotonic() - started:.0f} s")
    if args.sign_cert and sys.platform == "win32":
        sign(sorted(bundle.glob("*.exe")), args.sign_cert)
    if not args.skip_tests:
        step(f"[{next(number)}/{total}] selftest of the frozen app")
        selftest(bundle)
    step(f"[{next(number)}/{total}] package")
    if sys.platform == "win32":
        artifacts = package_windows(bundle, args.version, dist, work, args.compression)
        if args.sign_cert:
            sign(artifacts, args.sign_cert)
    elif sys.platform == "darwin":
        artifacts = package_macos(bundle, args.version, dist, work)
    else:
        artifacts = package_linux(bundle, args.version, dist, work)
    return artifacts


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        artifacts = build(args)
    except BuildError as exc:
        print(f"build.py: {exc}.", file=sys.stderr)
        return 1
    step(f"SHA256 (built in {time.monotonic() - started:.0f} s)")
    checksums(artifacts, args.dist.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
