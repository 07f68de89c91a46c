"""How a terminal is opened on each platform (``terminal_argv`` with an injected ``which``),
and ``agent_command`` run for real against a supervisor."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.terminal import LINUX_TERMINALS, agent_command, terminal_argv
from tests.conftest import REPO
from tests.desktop.conftest import fake_runs

COMMAND = ["claude", "--model", "sonnet"]
CWD = "/home/u/my project"
AGENT = [sys.executable, "-m", "supervisor.cli.agent"]  # stratavore-agent, run from the sources


def only(*names: str):
    """A ``which`` that finds just ``names``, in /usr/bin."""
    return lambda name: f"/usr/bin/{name}" if name in names else None


def nothing(name: str) -> None:
    return None


# --- Windows -----------------------------------------------------------------------------------
def test_windows_terminal_when_installed() -> None:
    argv = terminal_argv(["C:\\Tools\\my agent.exe", "--x"], "C:\\src\\demo", "win32", only("wt"))
    assert argv == ["wt", "-d", "C:\\src\\demo", "cmd", "/k", '"C:\\Tools\\my agent.exe" --x']


def test_windows_console_without_windows_terminal() -> None:
    argv = terminal_argv(COMMAND, "C:\\src\\demo", "win32", nothing)
    assert argv == ["cmd", "/c", "start", "Stratavore", "/d", "C:\\src\\demo",
                    "cmd", "/k", "claude --model sonnet"]  # fmt: skip


def test_windows_shell_only() -> None:
    assert terminal_argv([], "C:\\src", "win32", nothing)[-2:] == ["/k", "cmd"]


# --- macOS -------------------------------------------------------------------------------------
DO_SCRIPT = 'tell application "Terminal" to do script "'


def applescript_string(script: str) -> str:
    """The text of the string literal that Terminal is told to run, unescaped."""
    assert script.startswith(DO_SCRIPT) and script.endswith('"'), script
    literal = script[len(DO_SCRIPT) : -1]
    out, chars = "", iter(literal)
    for c in chars:
        assert c != '"', f"an unescaped quote ends the string early: {literal}"
        out += next(chars) if c == "\\" else c
    return out


def test_macos_terminal_runs_the_command_in_the_folder() -> None:
    command = ["agent", 'say "hi"', "back\\slash", "$HOME"]
    argv = terminal_argv(command, CWD, "darwin", nothing)
    assert argv[0] == "osascript"
    assert argv[1] == "-e" and argv[3:] == ["-e", 'tell application "Terminal" to activate']
    line = applescript_string(argv[2])
    assert shlex.split(line) == ["cd", CWD, "&&", *command]


def test_macos_shell_only_just_changes_folder() -> None:
    argv = terminal_argv([], CWD, "darwin", nothing)
    assert shlex.split(applescript_string(argv[2])) == ["cd", CWD]


# --- Linux -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "flag"), LINUX_TERMINALS)
def test_linux_each_terminal_gets_its_own_run_flag(name: str, flag: list[str]) -> None:
    assert terminal_argv(COMMAND, CWD, "linux", only(name)) == [f"/usr/bin/{name}", *flag,
                                                                *COMMAND]  # fmt: skip


def test_linux_prefers_the_system_default_terminal() -> None:
    which = only("xterm", "gnome-terminal", "x-terminal-emulator")
    assert terminal_argv(COMMAND, CWD, "linux", which)[:2] == ["/usr/bin/x-terminal-emulator", "-e"]
    assert terminal_argv(COMMAND, CWD, "linux", only("xterm", "konsole"))[0] == "/usr/bin/konsole"


def test_linux_gnome_terminal_takes_the_command_after_double_dash() -> None:
    argv = terminal_argv(COMMAND, CWD, "linux", only("gnome-terminal"))
    assert argv == ["/usr/bin/gnome-terminal", "--", *COMMAND]


def test_linux_shell_only_opens_the_terminal() -> None:
    assert terminal_argv([], CWD, "linux", only("kitty", "xterm")) == ["/usr/bin/kitty"]


def test_linux_without_a_terminal_says_what_to_install() -> None:
    with pytest.raises(FileNotFoundError) as info:
        terminal_argv(COMMAND, CWD, "linux", nothing)
    assert "No terminal emulator found" in str(info.value)
    assert str(info.value).endswith("install one, e.g. xterm.")
    for name, _flag in LINUX_TERMINALS:
        assert name in str(info.value)


def test_other_unixes_are_treated_like_linux() -> None:
    assert terminal_argv(COMMAND, CWD, "freebsd14", only("xterm"))[0] == "/usr/bin/xterm"


# --- agent_command -----------------------------------------------------------------------------
def test_agent_command_wraps_the_command_after_double_dash() -> None:
    argv = agent_command("demo", ["claude", "--", "-x"])
    assert argv == [*AGENT, "--project", "demo", "--", "claude", "--", "-x"]


def test_agent_command_runs_a_profile_for_the_supervisor_to_render() -> None:
    assert agent_command("demo", profile="claude") == [
        *AGENT, "--profile", "claude", "--project", "demo",
    ]  # fmt: skip


def test_agent_command_resumes_a_session_of_a_profile() -> None:
    assert agent_command("demo", profile="claude", resume="5f0c-s1") == [
        *AGENT, "--profile", "claude", "--project", "demo", "--resume", "5f0c-s1",
    ]  # fmt: skip


def test_agent_command_gives_a_profile_extra_arguments_after_double_dash() -> None:
    assert agent_command("demo", ["--model", "opus"], profile="claude") == [
        *AGENT, "--profile", "claude", "--project", "demo", "--", "--model", "opus",
    ]  # fmt: skip


def test_a_resume_in_a_terminal_is_an_argument_list_never_a_shell_string() -> None:
    """A project name with a space and a quote reaches stratavore-agent as one argument."""
    project = "my 'odd' project"
    command = agent_command(project, profile="claude", resume="5f0c-s1")
    argv = terminal_argv(command, CWD, "linux", only("gnome-terminal"))
    assert argv == ["/usr/bin/gnome-terminal", "--", *command]
    script = terminal_argv(command, CWD, "darwin", nothing)[2]
    assert shlex.split(applescript_string(script)) == ["cd", CWD, "&&", *command]


def run_agent(argv: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``argv`` (an :func:`agent_command`) as a terminal runs it, on the test's data dir."""
    env = {**os.environ, "STRATAVORE_HOME": str(home), "PYTHONPATH": str(REPO)}
    for name in ("STRATAVORE_RUNNER_ID", "STRATAVORE_RUNNER_TOKEN", "STRATAVORE_API"):
        env.pop(name, None)  # never report to a runner this test run may itself be
    return subprocess.run(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip


def test_agent_command_of_a_profile_and_its_resume_run_for_real(
    fake_claude, daemon, home, project_dir
) -> None:
    """The fake claude, as the tray's "In a terminal" and "Resume in terminal" start it: the
    supervisor renders its command line (a session id chosen up front, then --resume)."""
    daemon.project("demo", project_dir)
    done = run_agent(agent_command("demo", profile="claude"), home, project_dir)
    assert done.returncode == 0, done.stderr
    [first] = fake_runs(fake_claude)
    session = first["session_id"]
    assert first["argv"][first["argv"].index("--session-id") + 1] == session
    [runner] = daemon.api.get("/api/v1/runners", all=1)
    assert (runner["profile"], runner["supervised"], runner["session_id"]) == (
        "claude", False, session,
    )  # fmt: skip

    done = run_agent(agent_command("demo", profile="claude", resume=session), home, project_dir)
    assert done.returncode == 0, done.stderr
    resumed = fake_runs(fake_claude)[1]
    assert resumed["argv"][resumed["argv"].index("--resume") + 1] == session
    assert resumed["session_id"] == session


def test_agent_command_registers_the_run_with_the_supervisor(daemon, home, project_dir) -> None:
    daemon.project("demo", project_dir)
    command = [sys.executable, "-c", "import sys; print('from the agent'); sys.exit(4)"]
    done = run_agent(agent_command("demo", command), home, project_dir)
    assert (done.returncode, done.stdout) == (4, "from the agent\n"), done.stderr
    runners = daemon.api.get("/api/v1/runners", all=1)
    [runner] = [r for r in runners if r["project"] == "demo"]
    assert runner["command"][1:] == command[1:]
    assert Path(runner["cwd"]) == project_dir
    assert runner["exit_code"] == 4


def test_a_frozen_app_runs_the_bundled_agent_program() -> None:
    argv = agent_command("demo", ["claude"], frozen=True)
    assert os.path.basename(argv[0]).startswith("stratavore-agent")
    assert os.path.dirname(argv[0]) == os.path.dirname(sys.executable)
    assert argv[1:] == ["--project", "demo", "--", "claude"]
    resume = agent_command("demo", profile="claude", resume="5f0c-s1", frozen=True)
    assert resume == [argv[0], "--profile", "claude", "--project", "demo", "--resume", "5f0c-s1"]
