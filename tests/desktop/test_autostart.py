"""Start at login: the XDG entry written and removed for real in a temp XDG_CONFIG_HOME and read
back with configparser, the LaunchAgent plist written in a temp home and parsed, and the
Windows Run key's value built by its pure function (the registry itself is never touched)."""

from __future__ import annotations

import configparser
import plistlib
import sys
from pathlib import Path

import pytest

from desktop import autostart
from desktop.autostart import Location

NASTY = [
    "/opt/Strata vore/bin/python3",
    "-m",
    "desktop",
    'say "hi"',
    "$HOME",
    "back\\slash",
    "100%",
    "`tick`",
    "",
    "semi;colon",
]


def xdg(tmp_path: Path, environ: dict[str, str] | None = None) -> Location:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")} if environ is None else environ
    return Location("linux", tmp_path / "home", env)


def read_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # Desktop Entry keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def parse_exec(value: str) -> list[str]:
    """The argument list a desktop reads from an Exec value, by the Desktop Entry spec: the
    string escapes first, then the quoting rules, then ``%%`` as ``%``."""
    unescaped, chars = "", iter(value)
    for c in chars:
        if c == "\\":
            c = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[next(chars)]
        unescaped += c
    words: list[str] = []
    word: str | None = None
    chars = iter(unescaped)
    for c in chars:
        if c == " ":
            if word is not None:
                words.append(word)
            word = None
        elif c == '"':
            word = word or ""
            for q in chars:
                if q == '"':
                    break
                if q == "\\":
                    q = next(chars)
                    assert q in '"`$\\', f"{q!r} may not be escaped"
                word += q
        else:
            word = (word or "") + c
    if word is not None:
        words.append(word)
    return [w.replace("%%", "%") for w in words]


# --- Linux: XDG autostart --------------------------------------------------------------------
def test_linux_entry_is_written_read_back_and_removed(tmp_path: Path) -> None:
    where = xdg(tmp_path)
    entry = tmp_path / "xdg" / "autostart" / "stratavore.desktop"
    assert where.path == entry
    assert not autostart.enabled(where)
    autostart.enable(NASTY, where)
    assert autostart.enabled(where)
    fields = read_entry(entry)
    assert fields["Type"] == "Application"
    assert fields["Name"] == "Stratavore"
    assert fields["Terminal"] == "false"
    assert fields["X-GNOME-Autostart-enabled"] == "true"
    assert parse_exec(fields["Exec"]) == NASTY
    assert not list(entry.parent.glob("*.tmp"))
    autostart.disable(where)
    assert not entry.exists()
    assert not autostart.enabled(where)
    autostart.disable(where)  # again: nothing to do


def test_linux_enable_replaces_the_entry(tmp_path: Path) -> None:
    where = xdg(tmp_path)
    autostart.enable(["/usr/bin/old"], where)
    autostart.enable(["/usr/bin/new", "--flag"], where)
    assert where.path is not None
    assert parse_exec(read_entry(where.path)["Exec"]) == ["/usr/bin/new", "--flag"]


@pytest.mark.parametrize("environ", [{}, {"XDG_CONFIG_HOME": ""}])
def test_linux_without_xdg_config_home_uses_dot_config(tmp_path: Path, environ) -> None:
    where = xdg(tmp_path, environ)
    autostart.enable(["/usr/bin/stratavore-desktop"], where)
    assert (tmp_path / "home" / ".config" / "autostart" / "stratavore.desktop").is_file()


@pytest.mark.parametrize("line", ["X-GNOME-Autostart-enabled=false", "Hidden=true"])
def test_linux_entry_switched_off_by_the_desktop_is_not_enabled(tmp_path: Path, line) -> None:
    where = xdg(tmp_path)
    autostart.enable(["/usr/bin/stratavore-desktop"], where)
    assert where.path is not None
    text = where.path.read_text().replace("X-GNOME-Autostart-enabled=true", line)
    where.path.write_text(text)
    assert not autostart.enabled(where)
    autostart.enable(["/usr/bin/stratavore-desktop"], where)  # switched on again
    assert autostart.enabled(where)


def test_linux_a_broken_entry_is_not_enabled(tmp_path: Path) -> None:
    where = xdg(tmp_path)
    assert where.path is not None
    where.path.parent.mkdir(parents=True)
    where.path.write_text("not an ini file")
    assert not autostart.enabled(where)


def test_linux_enable_defaults_to_how_the_app_was_started(tmp_path: Path) -> None:
    where = xdg(tmp_path)
    autostart.enable(where=where)
    assert where.path is not None
    assert parse_exec(read_entry(where.path)["Exec"]) == [sys.executable, "-m", "desktop"]


@pytest.mark.parametrize(
    ("command", "line"),
    [
        (["/usr/bin/stratavore-desktop"], "/usr/bin/stratavore-desktop"),
        (["/opt/My Apps/python", "-m", "desktop"], '"/opt/My Apps/python" -m desktop'),
        (["app", 'a"b'], 'app "a\\\\"b"'),  # \" of the quoting rule, its \ escaped as \\
        (["app", "C:\\x"], 'app "C:\\\\\\\\x"'),  # a literal backslash: four in the file
        (["app", "50%"], "app 50%%"),
        (["app", ""], 'app ""'),
    ],
)
def test_exec_line_quotes_by_the_desktop_entry_spec(command, line) -> None:
    assert autostart.exec_line(command) == line
    assert parse_exec(line) == command


# --- macOS: LaunchAgent ----------------------------------------------------------------------
def test_launch_agent_plist() -> None:
    agent = plistlib.loads(autostart.launch_agent(NASTY))
    assert agent == {
        "Label": autostart.LAUNCH_AGENT_LABEL,
        "ProgramArguments": NASTY,
        "RunAtLoad": True,
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",
    }


def test_macos_agent_is_written_in_launch_agents_and_removed(tmp_path: Path) -> None:
    where = Location("darwin", tmp_path / "home", {"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    path = tmp_path / "home" / "Library" / "LaunchAgents" / "io.stratavore.desktop.plist"
    assert where.path == path
    assert not autostart.enabled(where)
    autostart.enable(["/Applications/Stratavore.app/Contents/MacOS/Stratavore"], where)
    assert autostart.enabled(where)
    agent = plistlib.loads(path.read_bytes())
    assert agent["ProgramArguments"] == ["/Applications/Stratavore.app/Contents/MacOS/Stratavore"]
    assert agent["RunAtLoad"] is True
    assert not (tmp_path / "xdg").exists()
    autostart.disable(where)
    assert not path.exists() and not autostart.enabled(where)


# --- Windows: the Run key's value ------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "value"),
    [
        (
            ["C:\\Program Files\\Stratavore\\Stratavore.exe"],
            '"C:\\Program Files\\Stratavore\\Stratavore.exe"',
        ),
        (
            ["C:\\Python311\\pythonw.exe", "-m", "desktop"],
            '"C:\\Python311\\pythonw.exe" -m desktop',
        ),
        (
            ["C:\\App\\s.exe", "--data", "C:\\My Data\\", 'say "hi"'],
            '"C:\\App\\s.exe" --data "C:\\My Data\\\\" "say \\"hi\\""',
        ),
    ],
)
def test_run_key_value_is_a_quoted_command_line(command, value) -> None:
    assert autostart.run_value(command) == value


def test_windows_location_has_no_file() -> None:
    where = Location("win32", Path("C:/Users/u"), {})
    assert where.kind == "windows" and where.path is None


# --- the default command ---------------------------------------------------------------------
def test_default_command_frozen_is_the_executable() -> None:
    assert autostart.default_command(True, "/opt/stratavore/stratavore", {}) == [
        "/opt/stratavore/stratavore"
    ]


def test_default_command_of_an_appimage_is_the_appimage_itself() -> None:
    environ = {"APPIMAGE": "/home/u/Apps/Stratavore.AppImage"}
    assert autostart.default_command(True, "/tmp/.mount_Strat/usr/bin/stratavore", environ) == [
        "/home/u/Apps/Stratavore.AppImage"
    ]


def test_default_command_from_source_runs_the_module() -> None:
    assert autostart.default_command(False, "/usr/bin/python3", {"APPIMAGE": "/x"}) == [
        "/usr/bin/python3", "-m", "desktop"]  # fmt: skip
    assert autostart.default_command(environ={}) == [sys.executable, "-m", "desktop"]


def test_default_command_on_windows_prefers_pythonw(tmp_path: Path) -> None:
    python = tmp_path / "python.exe"
    python.touch()
    assert autostart.default_command(False, str(python), {}) == [str(python), "-m", "desktop"]
    (tmp_path / "pythonw.exe").touch()  # no console window at login
    assert autostart.default_command(False, str(python), {}) == [
        str(tmp_path / "pythonw.exe"), "-m", "desktop"]  # fmt: skip
