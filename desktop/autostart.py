"""Start the tray app when the user logs in: a value under the Run key on Windows, a
LaunchAgent on macOS, an XDG autostart entry on Linux and the other free desktops.

Qt-free: plain files and the registry. Where the entry goes (platform, home folder,
environment) is a :class:`Location`, so tests write into a temp dir, never the real home.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import plistlib
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "Stratavore"  # the Run key's value name, the entry's Name
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"  # under HKEY_CURRENT_USER
LAUNCH_AGENT_LABEL = "io.stratavore.desktop"
DESKTOP_FILE = "stratavore.desktop"

# Characters that make the Desktop Entry spec quote an Exec argument ("Reserved characters").
_EXEC_RESERVED = frozenset(" \t\n\"'\\><~|&;$*?#()`")
_EXEC_ESCAPED = re.compile(r'(["`$\\])')  # escaped with a backslash inside the quotes


@dataclass(frozen=True)
class Location:
    """Where the login entry lives: ``platform`` as in ``sys.platform``, the user's ``home``
    and the ``environ`` that may move it (``XDG_CONFIG_HOME``)."""

    platform: str
    home: Path
    environ: Mapping[str, str]

    @classmethod
    def current(cls) -> Location:
        return cls(sys.platform, Path.home(), os.environ)

    @property
    def kind(self) -> str:
        """``windows``, ``macos`` or ``xdg`` (everything else follows the XDG spec)."""
        if self.platform == "win32":
            return "windows"
        return "macos" if self.platform == "darwin" else "xdg"

    @property
    def path(self) -> Path | None:
        """The file that starts the app (None on Windows: a registry value)."""
        if self.kind == "macos":
            return self.home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"
        if self.kind == "xdg":
            # The spec: an unset or empty XDG_CONFIG_HOME means ~/.config.
            config = self.environ.get("XDG_CONFIG_HOME") or str(self.home / ".config")
            return Path(config) / "autostart" / DESKTOP_FILE
        return None


def default_command(
    frozen: bool | None = None,
    executable: str = sys.executable,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """How this app was started, to start it the same way at login: the frozen executable
    (an AppImage's own path rather than its temporary mount), else this Python with
    ``-m desktop`` (``pythonw`` on Windows, so no console window opens)."""
    environ = os.environ if environ is None else environ
    if getattr(sys, "frozen", False) if frozen is None else frozen:
        return [environ.get("APPIMAGE") or executable]
    program = Path(executable)
    if program.name.lower() == "python.exe" and (program.parent / "pythonw.exe").exists():
        program = program.parent / "pythonw.exe"
    return [str(program), "-m", "desktop"]


# --- the entries, as pure functions ----------------------------------------------------------
def run_value(command: Sequence[str]) -> str:
    """The Run key's value: a command line as CreateProcess parses it, the program always
    quoted (a Windows path cannot contain a double quote)."""
    program, *args = command
    return f'"{program}"' + (f" {subprocess.list2cmdline(args)}" if args else "")


def launch_agent(command: Sequence[str]) -> bytes:
    """The LaunchAgent plist that runs ``command`` when the user logs in."""
    return plistlib.dumps(
        {
            "Label": LAUNCH_AGENT_LABEL,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "ProcessType": "Interactive",
            "LimitLoadToSessionType": "Aqua",  # the GUI session, not an ssh login
        }
    )


def exec_line(command: Sequence[str]) -> str:
    """``command`` as a Desktop Entry ``Exec`` value: arguments quoted by the spec's rules,
    ``%`` doubled (it starts a field code), then the string escapes of every value."""
    words = []
    for argument in command:
        argument = argument.replace("%", "%%")
        if argument and not _EXEC_RESERVED.intersection(argument):
            words.append(argument)
        else:
            words.append('"' + _EXEC_ESCAPED.sub(r"\\\1", argument) + '"')
    line = " ".join(words)
    # The general string escapes apply first when the value is read, so a backslash of the
    # quoting rule is written as two ("\\\\" for a literal backslash inside quotes).
    for raw, escaped in (("\\", "\\\\"), ("\n", "\\n"), ("\t", "\\t"), ("\r", "\\r")):
        line = line.replace(raw, escaped)
    return line


def desktop_entry(command: Sequence[str]) -> str:
    """The XDG autostart entry that runs ``command``."""
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        f"Name={APP_NAME}\n"
        "Comment=Supervises your AI coding agents\n"
        f"Exec={exec_line(command)}\n"
        "Terminal=false\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


# --- the three platforms -------------------------------------------------------------------
def enabled(where: Location | None = None) -> bool:
    """Whether the app starts at login."""
    where = where or Location.current()
    if where.kind == "windows":
        if sys.platform != "win32":  # (so the type checker reads the rest as Windows code)
            raise OSError("The Run key is in the Windows registry.")
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
                winreg.QueryValueEx(key, APP_NAME)
        except FileNotFoundError:
            return False
        return True
    path = where.path
    assert path is not None
    if where.kind == "macos":
        return path.exists()
    try:
        entry = _read_entry(path)
    except (OSError, configparser.Error):
        return False
    # A user may switch it off in their desktop's settings without deleting the file.
    return (
        entry.get("Hidden", "false").strip() != "true"
        and entry.get("X-GNOME-Autostart-enabled", "true").strip() != "false"
    )


def enable(command: Sequence[str] | None = None, where: Location | None = None) -> None:
    """Start ``command`` (default: :func:`default_command`) at login; raises OSError."""
    where = where or Location.current()
    command = list(command) if command else default_command(environ=where.environ)
    if where.kind == "windows":
        if sys.platform != "win32":  # (so the type checker reads the rest as Windows code)
            raise OSError("The Run key is in the Windows registry.")
        import winreg

        with winreg.CreateKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
            winreg.SetValueEx(key, APP_NAME, 0, winreg.REG_SZ, run_value(command))
        return
    path = where.path
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    if where.kind == "macos":
        _write_atomic(path, launch_agent(command))
    else:
        _write_atomic(path, desktop_entry(command).encode("utf-8"))


def disable(where: Location | None = None) -> None:
    """Do not start at login any more (nothing to do if it did not); raises OSError."""
    where = where or Location.current()
    if where.kind == "windows":
        if sys.platform != "win32":  # (so the type checker reads the rest as Windows code)
            raise OSError("The Run key is in the Windows registry.")
        import winreg

        access = winreg.KEY_SET_VALUE
        with (
            contextlib.suppress(FileNotFoundError),
            winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, access) as key,
        ):
            winreg.DeleteValue(key, APP_NAME)
        return
    path = where.path
    assert path is not None
    path.unlink(missing_ok=True)


def _read_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    # keys are case-sensitive (configparser's documented way; typeshed has it as a method)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` in one step: a desktop session reading it never sees half a file."""
    temp = path.with_name(path.name + ".tmp")
    temp.write_bytes(data)
    os.replace(temp, path)
