"""Windows program lookup and batch-file launches (npm cmd-shim, BatBadBut / CVE-2024-24576),
run on any OS by asking for ``platform="win32"``."""

from __future__ import annotations

import ntpath
import stat
from pathlib import Path

import pytest

from supervisor.agents import commands
from supervisor.core.errors import ApiError, ErrorCode

# What npm's cmd-shim writes for a bin with a `#!/usr/bin/env node` shebang (lib/index.js)
SHIM_HEAD = (
    "@ECHO off\r\n"
    "GOTO start\r\n"
    ":find_dp0\r\n"
    "SET dp0=%~dp0\r\n"
    "EXIT /b\r\n"
    ":start\r\n"
    "SETLOCAL\r\n"
    "CALL :find_dp0\r\n"
)
SHIM_NODE_PROG = (
    "\r\n"
    'IF EXIST "%dp0%\\node.exe" (\r\n'
    '  SET "_prog=%dp0%\\node.exe"\r\n'
    ") ELSE (\r\n"
    '  SET "_prog=node"\r\n'
    "  SET PATHEXT=%PATHEXT:;.JS;=;%\r\n"
    ")\r\n"
    "\r\n"
)
CLAUDE_SHIM = (
    SHIM_HEAD
    + SHIM_NODE_PROG
    + "endLocal & goto #_undefined_# 2>NUL || title %COMSPEC% & "
    + '"%_prog%"  "%dp0%\\node_modules\\@anthropic-ai\\claude-code\\cli.js" %*\r\n'
)
# ... and for a bin without a shebang: a native executable
NATIVE_SHIM = SHIM_HEAD + '"%dp0%\\node_modules\\@openai\\codex\\bin\\codex.exe"   %*\r\n'
# the format npm wrote before the "Terminate batch job?" fix (npm/cli#969)
OLD_SHIM = (
    "@ECHO off\r\n"
    "SETLOCAL\r\n"
    "CALL :find_dp0\r\n"
    + SHIM_NODE_PROG
    + '"%_prog%"  "%dp0%\\..\\npm-run-all\\bin\\run-s\\index.js" %*\r\n'
    "ENDLOCAL\r\n"
    "EXIT /b %errorlevel%\r\n"
    ":find_dp0\r\n"
    "SET dp0=%~dp0\r\n"
    "EXIT /b\r\n"
)
CLAUDE_JS = "node_modules\\@anthropic-ai\\claude-code\\cli.js"
NASTY_PROMPT = 'fix a & b | c ^ %PATH% "quoted" (x) <y> !z!\nsecond line'


def _write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return path


def _beside(folder: Path, relative: str) -> str:
    r"""What %dp0%\relative means to cmd.exe, by the same rule the module uses."""
    return ntpath.normpath(ntpath.join(str(folder), relative))


def test_npm_shim_runs_its_node_script_without_cmd(tmp_path) -> None:
    shim = _write(tmp_path / "npm" / "claude.cmd", CLAUDE_SHIM)
    # node gets the prompt as a real argument: no cmd.exe, so nothing in it is special
    assert commands.exec_argv([str(shim), "-p", NASTY_PROMPT], platform="win32") == [
        "node",
        _beside(tmp_path / "npm", CLAUDE_JS),
        "-p",
        NASTY_PROMPT,
    ]


def test_npm_shim_prefers_the_node_exe_beside_it(tmp_path) -> None:
    shim = _write(tmp_path / "npm" / "claude.cmd", CLAUDE_SHIM)
    _write(tmp_path / "npm" / "node.exe")
    assert commands.exec_argv([str(shim), "hi"], platform="win32") == [
        _beside(tmp_path / "npm", "node.exe"),
        _beside(tmp_path / "npm", CLAUDE_JS),
        "hi",
    ]


def test_npm_shim_keeps_its_shebang_arguments(tmp_path) -> None:
    text = CLAUDE_SHIM.replace('"%_prog%"  ', '"%_prog%" --expose_gc --no-warnings ')
    shim = _write(tmp_path / "npm" / "claude.cmd", text)
    assert commands.exec_argv([str(shim), "hi"], platform="win32") == [
        "node",
        "--expose_gc",
        "--no-warnings",
        _beside(tmp_path / "npm", CLAUDE_JS),
        "hi",
    ]


def test_old_npm_shim_format_is_understood(tmp_path) -> None:
    shim = _write(tmp_path / "proj" / "node_modules" / ".bin" / "run-s.CMD", OLD_SHIM)
    assert commands.exec_argv([str(shim), "build"], platform="win32") == [
        "node",
        _beside(shim.parent, "..\\npm-run-all\\bin\\run-s\\index.js"),
        "build",
    ]


def test_native_exe_shim_runs_the_exe(tmp_path) -> None:
    shim = _write(tmp_path / "npm" / "codex.cmd", NATIVE_SHIM)
    assert commands.exec_argv([str(shim), "exec", NASTY_PROMPT], platform="win32") == [
        _beside(tmp_path / "npm", "node_modules\\@openai\\codex\\bin\\codex.exe"),
        "exec",
        NASTY_PROMPT,
    ]


def test_plain_batch_file_is_escaped_for_cmd(tmp_path) -> None:
    batch = _write(tmp_path / "My Tools" / "agent.bat", "@echo off\r\nagent-core.exe %*\r\n")
    args = ["-p", "fix a & b | c", "x^y (1) <in> !v!", "C:\\dir\\", ""]
    line = f'"{batch}" ^"-p^" ^"fix a ^& b ^| c^" ^"x^^y ^(1^) ^<in^> ^!v^!^" ^"C:\\dir\\\\^" ^"^"'
    assert commands.exec_argv([str(batch), *args], platform="win32") == [
        "cmd.exe",
        "/d",
        "/v:off",
        "/s",
        "/c",
        f'"{line}"',
    ]


@pytest.mark.parametrize("arg", ["100%", "%PATH%", 'say "hi"', "two\nlines", "cr\rhere"])
def test_batch_file_refuses_what_cmd_cannot_be_told_safely(tmp_path, arg) -> None:
    batch = _write(tmp_path / "agent.cmd", "@echo off\r\nagent-core.exe %*\r\n")
    with pytest.raises(ApiError) as info:
        commands.exec_argv([str(batch), "-p", arg], platform="win32")
    assert info.value.code is ErrorCode.INVALID
    assert info.value.message == (
        "agent is a batch file (.cmd), which cannot receive this argument safely on Windows; "
        "install the agent's native build or remove % / quotes / line breaks from the prompt."
    )


def test_shim_that_sets_variables_is_left_to_cmd(tmp_path) -> None:
    text = CLAUDE_SHIM.replace("CALL :find_dp0\r\n", "CALL :find_dp0\r\n@SET NODE_PATH=lib\r\n")
    shim = _write(tmp_path / "tool.cmd", text)
    assert commands.exec_argv([str(shim), "hi"], platform="win32")[:5] == [
        "cmd.exe",
        "/d",
        "/v:off",
        "/s",
        "/c",
    ]


def test_unreadable_batch_file_goes_through_cmd(tmp_path) -> None:
    missing = str(tmp_path / "gone.cmd")
    assert commands.exec_argv([missing, "hi"], platform="win32")[-1] == f'""{missing}" ^"hi^""'


def test_exec_argv_leaves_everything_else_alone(tmp_path) -> None:
    shim = _write(tmp_path / "claude.cmd", CLAUDE_SHIM)
    assert commands.exec_argv([str(shim), "a & b"], platform="linux") == [str(shim), "a & b"]
    exe = str(tmp_path / "claude.exe")
    assert commands.exec_argv([exe, "a & b"], platform="win32") == [exe, "a & b"]


# --- find_program -----------------------------------------------------------------------


def test_find_program_prefers_exe_over_cmd_and_ignores_the_posix_script(tmp_path) -> None:
    npm = tmp_path / "npm"
    for name in ("claude", "claude.ps1", "claude.cmd", "claude.exe"):
        _write(npm / name)
    assert commands.find_program(["claude"], str(npm), "win32", pathext=".CMD;.EXE") == str(
        npm / "claude.exe"
    )
    (npm / "claude.exe").unlink()
    assert commands.find_program(["claude"], str(npm), "win32") == str(npm / "claude.cmd")
    (npm / "claude.cmd").unlink()
    assert commands.find_program(["claude"], str(npm), "win32") is None


def test_find_program_honours_pathext_and_path_order(tmp_path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _write(first / "claude.cmd")
    _write(first / "tool.js")
    _write(second / "claude.exe")
    path = f'{first};"{second}";'
    # an earlier folder wins over a better extension later on PATH, as on Windows
    assert commands.find_program(["claude"], path, "win32") == str(first / "claude.cmd")
    assert commands.find_program(["claude"], path, "win32", pathext=".EXE") == str(
        second / "claude.exe"
    )
    # .JS is in PATHEXT but CreateProcess can't start it
    assert commands.find_program(["tool"], path, "win32", pathext=".JS;.EXE") is None
    # a name with its extension is taken as it is
    assert commands.find_program(["claude.cmd"], path, "win32") == str(first / "claude.cmd")


def test_find_program_tries_names_in_order(tmp_path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _write(first / "claude.exe")
    _write(second / "claude-code.exe")
    path = f"{first};{second}"
    assert commands.find_program(["claude-code", "claude"], path, "win32") == str(
        second / "claude-code.exe"
    )
    assert commands.find_program(["nope", "claude"], path, "win32") == str(first / "claude.exe")
    assert commands.find_program(["nope"], path, "win32") is None


def test_find_program_on_posix_needs_the_executable_bit(tmp_path) -> None:
    script = _write(tmp_path / "claude", "#!/bin/sh\n")
    _write(tmp_path / "claude.exe")
    assert commands.find_program(["claude.exe", "claude"], str(tmp_path), "linux") is None
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert commands.find_program(["claude"], str(tmp_path), "linux") == str(script)


# --- resolve ----------------------------------------------------------------------------


def test_resolve_on_windows_runs_the_shim_target_with_node_from_path(tmp_path) -> None:
    npm, nodejs = tmp_path / "npm", tmp_path / "nodejs"
    for name in ("claude", "claude.ps1"):
        _write(npm / name)
    _write(npm / "claude.cmd", CLAUDE_SHIM)
    _write(nodejs / "node.cmd")  # a batch "node" must never be picked
    path = f"{npm};{nodejs}"
    with pytest.raises(ApiError) as info:
        commands.resolve(["claude", "-p", "a & b"], str(tmp_path), path, platform="win32")
    assert info.value.code is ErrorCode.COMMAND_NOT_FOUND
    assert info.value.message == f"command 'node' not found on PATH (searched: {path})."
    _write(nodejs / "node.exe")
    assert commands.resolve(["claude", "-p", "a & b"], str(tmp_path), path, platform="win32") == [
        str(nodejs / "node.exe"),
        _beside(npm, CLAUDE_JS),
        "-p",
        "a & b",
    ]


def test_resolve_on_windows_runs_a_plain_batch_file_through_cmd_from_path(tmp_path) -> None:
    tools, system32 = tmp_path / "tools", tmp_path / "System32"
    batch = _write(tools / "agent.bat", "@echo off\r\nagent-core.exe %*\r\n")
    _write(system32 / "cmd.exe")
    path = f"{tools};{system32}"
    assert commands.resolve(["agent", "go"], str(tmp_path), path, platform="win32") == [
        str(system32 / "cmd.exe"),
        "/d",
        "/v:off",
        "/s",
        "/c",
        f'""{batch}" ^"go^""',
    ]


def test_popen_args_hands_a_cmd_line_over_as_one_string() -> None:
    """subprocess.list2cmdline would quote the finished cmd.exe line again."""
    line = ["cmd.exe", "/d", "/v:off", "/s", "/c", '""C:\\a b\\x.bat" ^"hi^""']
    assert commands.popen_args(line) == 'cmd.exe /d /v:off /s /c ""C:\\a b\\x.bat" ^"hi^""'
    assert commands.popen_args(["C:\\node.exe", "cli.js", "a b"]) == [
        "C:\\node.exe", "cli.js", "a b"
    ]  # fmt: skip
