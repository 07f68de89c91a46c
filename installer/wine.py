"""Wine prefixes for building and testing the Windows build on Linux (stdlib only).

Used by ``installer/build.py --target windows`` (a cached prefix that runs PyInstaller with
the embeddable CPython) and by the tests that install and run the Windows build
(``tests/windows/``). What a prefix needs under Debian's Wine 8, measured in
docs/install.md:

- Windows 10 as the reported version (a new prefix says Windows 7);
- no ``wbemprox`` (WMI): CPython 3.13's ``platform`` queries WMI through ``_wmi.pyd``, which
  calls ``propsys.VariantToString``, unimplemented in Wine 8 and 10, and the process aborts.
  Without WMI the query fails cleanly and ``platform`` falls back to ``ver``;
- no debugger on a crash (``AeDebug``): otherwise a crashing program hangs ~10 minutes in
  ``winedbg --auto`` instead of ending with an exit status;
- for Qt's ``QApplication`` (test prefixes only): Wine 10's ``windows.ui.dll`` (Debian 13's
  ``libwine``, fetched by ``apt-get download`` under a private apt configuration), and a
  TrueType font in ``C:\\windows\\Fonts`` so text is not drawn as boxes.

Windows programs under Wine 8 need pipes for their standard streams (a file or /dev/null
aborts CPython's start), so every run here gets pipes. The prefix's Wine server and services
are started first (:meth:`Prefix.start`), with no such pipe: started by a run, they would
inherit its pipes and hold them open, and reading its output would never end. Each run gets
a session of its own, so that nothing Wine signals reaches the program that started it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

CACHE_ENV = "STRATAVORE_BUILD_CACHE"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian's fonts-dejavu-core
DLL_OVERRIDES = r"HKCU\Software\Wine\DllOverrides"
AEDEBUG = r"HKLM\Software\Microsoft\Windows NT\CurrentVersion\AeDebug"


class WineError(Exception):
    """Wine or a download failed; the message is one sentence."""


def cache_dir() -> Path:
    """Where downloads and prepared Pythons and prefixes are kept between builds:
    ``$STRATAVORE_BUILD_CACHE``, else the user's cache dir (``~/.cache/stratavore-build``,
    ``%LOCALAPPDATA%\\stratavore-build``, ``~/Library/Caches/stratavore-build``)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        path = Path(override)
    elif sys.platform == "win32":
        path = Path(os.environ.get("LOCALAPPDATA") or Path.home()) / "stratavore-build"
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Caches" / "stratavore-build"
    else:
        path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        path = path / "stratavore-build"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def tools() -> tuple[str, str] | None:
    """(wine, wineserver), or None when Wine is not installed."""
    wine = shutil.which("wine") or shutil.which("wine64")
    server = shutil.which("wineserver")
    if wine is None and Path("/usr/lib/wine/wine64").exists():  # Debian's wine64 alone
        wine = "/usr/lib/wine/wine64"
    if server is None and Path("/usr/lib/wine/wineserver").exists():
        server = "/usr/lib/wine/wineserver"
    return (wine, server) if wine and server else None


def apt_download(package: str, version: str, suite: str, sha: str | None = None) -> Path:
    """``package=version`` of Debian ``suite`` as a .deb in the cache, downloaded once by
    ``apt-get download`` under a private apt configuration (its own sources list, state and
    cache under the build cache), so the machine's own apt stays as it is."""
    downloads = cache_dir() / "downloads"
    downloads.mkdir(exist_ok=True)
    name = f"{package}_{version.replace(':', '%3a')}_amd64.deb"
    deb = downloads / name
    if deb.exists() and (sha is None or sha256(deb) == sha):
        return deb
    apt = cache_dir() / "apt"
    for sub in ("etc/sources.list.d", "etc/preferences.d", "state/lists/partial",
                "cache/archives/partial"):  # fmt: skip
        (apt / sub).mkdir(parents=True, exist_ok=True)
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    (apt / "etc" / "sources.list").write_text(
        f"deb [signed-by={keyring}] http://deb.debian.org/debian {suite} main\n"
    )
    options = [
        f"-oDir::Etc={apt / 'etc'}", f"-oDir::Etc::sourcelist={apt / 'etc' / 'sources.list'}",
        f"-oDir::Etc::sourceparts={apt / 'etc' / 'sources.list.d'}",
        f"-oDir::Etc::preferencesparts={apt / 'etc' / 'preferences.d'}",
        f"-oDir::State={apt / 'state'}", f"-oDir::Cache={apt / 'cache'}",
        "-oDir::State::status=/dev/null", "-oAPT::Architecture=amd64",
        "-oAPT::Architectures::=amd64", "-oDebug::NoLocking=1", "-qq",
    ]  # fmt: skip
    if shutil.which("apt-get") is None:
        raise WineError(f"apt-get is needed to download {package} {version} (Debian only)")
    for command in (["update"], ["download", f"{package}={version}"]):
        done = subprocess.run(
            ["apt-get", *options, *command], cwd=downloads, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise WineError(
                f"apt-get {command[0]} of {package} {version} ({suite}) failed: "
                f"{done.stderr.strip().splitlines()[-1:]}"
            )
    if not deb.exists():
        raise WineError(f"apt-get download made no {name}")
    if sha is not None and sha256(deb) != sha:
        deb.unlink()
        raise WineError(f"{name} does not have the SHA256 installer/windows-lock.toml pins")
    return deb


def extract_from_deb(deb: Path, member: str, target: Path) -> None:
    """One file of a .deb (``dpkg-deb --fsys-tarfile``), written to ``target``."""
    done = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True)
    if done.returncode != 0:
        raise WineError(f"dpkg-deb could not read {deb.name}")
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        source = tar.extractfile("./" + member.lstrip("./"))
        if source is None:
            raise WineError(f"{deb.name} has no {member}")
        target.write_bytes(source.read())


def cached_prefix(name: str, qt: bool = False, fix_deb: Path | None = None,
                  env: Mapping[str, str] | None = None) -> Path:  # fmt: skip
    """A prefix prepared once in the build cache (``name-<key>``; the key changes with Wine's
    version, this file and ``fix_deb``), for building in or for tests to copy: a copy is as
    fresh as a new prefix, and takes seconds instead of a minute."""
    found = tools()
    if found is None:
        raise WineError("Wine is not installed (Debian: apt-get install wine wine64)")
    version = subprocess.run([found[0], "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256(version.encode() + Path(__file__).read_bytes())
    if fix_deb is not None:
        key.update(sha256(fix_deb).encode())
    path = cache_dir() / f"{name}-{key.hexdigest()[:12]}"
    if not (path / ".complete").exists():
        for old in cache_dir().glob(f"{name}-*"):  # of earlier versions
            shutil.rmtree(old, ignore_errors=True)
        print(f"    making the Wine prefix {path}", flush=True)
        Prefix(path, env).create(qt=qt, fix_deb=fix_deb)
        (path / ".complete").touch()
    return path


def windows_path(path: Path) -> str:
    """A Linux path as Wine's programs see it: on Z:, or on C: inside a prefix."""
    text = str(path.resolve())
    if "/drive_c/" in text:
        return "C:\\" + text.split("/drive_c/", 1)[1].replace("/", "\\")
    return "Z:" + text.replace("/", "\\")


class Prefix:
    """One 64-bit Wine prefix, and running Windows programs in it with pipes for streams."""

    def __init__(self, path: Path, env: Mapping[str, str] | None = None) -> None:
        found = tools()
        if found is None:
            raise WineError("Wine is not installed (Debian: apt-get install wine wine64)")
        self.wine, self.server = found
        self.path = path
        self.started = False
        self.env = {
            **(os.environ if env is None else env),
            "WINEPREFIX": str(path),
            "WINEARCH": "win64",
            "WINEDEBUG": "-all",
            "WINEDLLOVERRIDES": "mscoree,mshtml=",  # no Mono/Gecko install prompts
        }

    # --- making one ----------------------------------------------------------------------
    def create(self, qt: bool = False, fix_deb: Path | None = None) -> None:
        """A new prefix with the settings above; ``qt``: also a font and, from ``fix_deb``
        (Wine 10's libwine), ``windows.ui.dll`` for QApplication."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.start()  # its wineboot makes the new prefix
        self.run(["winecfg", "-v", "win10"], timeout=120, check="winecfg")
        self.reg_add(DLL_OVERRIDES, "wbemprox", "")  # "": disabled
        self.run(["reg", "delete", AEDEBUG, "/v", "Debugger", "/f"], timeout=60)
        # Wine links Desktop, Documents, ... to the Linux home's folders: real folders instead,
        # so that nothing run in the prefix (or in a copy of it) writes outside it.
        inside = self.path.resolve()
        for link in list((self.drive_c / "users").rglob("*")):
            if link.is_symlink() and not link.resolve().is_relative_to(inside):
                link.unlink()
                link.mkdir()
        if qt:
            fonts = self.drive_c / "windows" / "Fonts"
            fonts.mkdir(parents=True, exist_ok=True)
            if FONT.exists():
                shutil.copy(FONT, fonts / FONT.name)
            if fix_deb is not None:
                dll = self.drive_c / "windows" / "system32" / "windows.ui.dll"
                extract_from_deb(
                    fix_deb, "usr/lib/x86_64-linux-gnu/wine/x86_64-windows/windows.ui.dll", dll
                )
                self.run(["regsvr32", r"C:\windows\system32\windows.ui.dll"], timeout=60)
                self.reg_add(DLL_OVERRIDES, "windows.ui", "native,builtin")
        self.kill()

    @property
    def drive_c(self) -> Path:
        return self.path / "drive_c"

    @property
    def user(self) -> Path:
        """The Windows user's profile folder (``C:\\users\\<name>``)."""
        users = [p for p in (self.drive_c / "users").iterdir() if p.name != "Public"]
        if len(users) != 1:
            raise WineError(f"the prefix has {len(users)} user profiles, not one")
        return users[0]

    @property
    def local_appdata(self) -> Path:
        return self.user / "AppData" / "Local"

    # --- running -------------------------------------------------------------------------
    def start(self) -> None:
        """The prefix's Wine server (persistent until :meth:`kill`) and services, with their
        standard streams on /dev/null; once."""
        if self.started:
            return
        null = subprocess.DEVNULL
        quiet = {"stdin": null, "stdout": null, "stderr": null, "env": self.env}
        # backgrounds itself once listening (or fails: one runs already, which is as good)
        subprocess.run([self.server, "-p"], timeout=60, start_new_session=True, **quiet)
        subprocess.run([self.wine, "wineboot"], timeout=300, start_new_session=True, **quiet)
        self.started = True

    def run(
        self,
        args: Sequence[str],
        timeout: float = 300,
        check: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``wine args...`` to its end, streams piped; ``check``: raise with that name when
        the exit status is not 0."""
        self.start()
        done = subprocess.run(
            [self.wine, *args], input="", capture_output=True, text=True, errors="replace",
            timeout=timeout, env={**self.env, **(env or {})}, start_new_session=True, cwd=cwd,
        )  # fmt: skip
        if check and done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            raise WineError(f"{check} failed under Wine (exit {done.returncode}): {tail}")
        return done

    def popen(self, args: Sequence[str], env: Mapping[str, str] | None = None) -> subprocess.Popen:
        """``wine args...`` started, stdout and stderr merged into one text pipe (stdin a pipe
        too, closed by ``communicate()``)."""
        self.start()
        return subprocess.Popen(
            [self.wine, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace",
            env={**self.env, **(env or {})}, start_new_session=True,
        )  # fmt: skip

    def wait(self, timeout: float = 300) -> None:
        """Until every Windows program in the prefix has ended (Wine's services run on)."""
        deadline = time.monotonic() + timeout
        while self.processes():
            if time.monotonic() > deadline:
                raise WineError(f"programs still run in the prefix after {timeout:g} s")
            time.sleep(0.2)

    def kill(self) -> None:
        """Stop the Wine server (it saves the registry) and everything in the prefix."""
        subprocess.run([self.server, "-k"], env=self.env, timeout=60, capture_output=True)
        subprocess.run([self.server, "-w"], env=self.env, timeout=60, capture_output=True)
        self.started = False

    def reg_add(self, key: str, name: str, data: str) -> None:
        self.run(["reg", "add", key, "/v", name, "/d", data, "/f"], timeout=60, check="reg add")

    def reg_query(self, keys: Sequence[str]) -> dict[str, dict[str, str] | None]:
        """The values of each key (None: no such key), read with ``reg query`` in one start
        of ``cmd`` (each start of Wine costs about a second)."""
        # one word per argument: Wine quotes an argument with spaces, which cmd would not split
        line = [word for key in keys for word in ("&", "reg", "query", key)][1:]
        done = self.run(["cmd", "/c", *line], timeout=120)
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

    def processes(self) -> list[tuple[int, str]]:
        """(Linux pid, command line) of the Windows programs running in this prefix, from
        /proc (every Windows process is a Linux process carrying the prefix in its
        environment), without Wine's own services."""
        marker = f"WINEPREFIX={self.path}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if marker not in (entry / "environ").read_bytes().split(b"\0"):
                    continue
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:  # ended meanwhile, or not ours to read
                continue
            line = " ".join(a.decode(errors="replace") for a in argv if a)
            if re.search(r"\\windows\\system32\\(services|winedevice|explorer|plugplay|svchost|"
                         r"rpcss|conhost)\.exe|wineserver", line, re.IGNORECASE):  # fmt: skip
                continue
            found.append((int(entry.name), line))
        return found
