"""Finding programs as the user's login shell would."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from supervisor.agents import commands
from supervisor.core.errors import ApiError, ErrorCode


def _executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def fake_login_shell(tmp_path, monkeypatch):
    """A 'login shell' whose PATH has a folder the supervisor's own PATH lacks."""
    extra = tmp_path / "npm-global-bin"
    extra.mkdir()
    _executable(extra / "claude")
    # called as: fakesh -l -c SCRIPT; prints a banner as some rc files do, then runs SCRIPT
    shell = _executable(
        tmp_path / "fakesh",
        f'#!/bin/sh\necho "welcome banner"\nPATH="{extra}:/usr/bin:/bin"\nshift\neval "$2"\n',
    )
    monkeypatch.setenv("SHELL", str(shell))
    monkeypatch.delenv("STRATAVORE_NO_LOGIN_PATH", raising=False)
    commands.login_shell_path.cache_clear()
    yield extra
    commands.login_shell_path.cache_clear()


def test_login_shell_path_is_searched_after_our_own(fake_login_shell) -> None:
    path = commands.search_path("/usr/bin:/bin")
    assert path == f"/usr/bin:/bin:{fake_login_shell}"
    assert commands.resolve(["claude", "-p", "hi"], "/", path) == [
        str(fake_login_shell / "claude"),
        "-p",
        "hi",
    ]


def test_unknown_command_names_what_was_searched() -> None:
    with pytest.raises(ApiError) as info:
        commands.resolve(["no-such-agent"], "/", "/usr/bin:/bin")
    assert info.value.code is ErrorCode.COMMAND_NOT_FOUND
    assert info.value.message == (
        "command 'no-such-agent' not found on PATH (searched: /usr/bin:/bin)."
    )


def test_relative_command_resolves_against_the_project(tmp_path) -> None:
    script = _executable(tmp_path / "run.sh")
    assert commands.resolve(["./run.sh"], str(tmp_path), "") == [str(script)]
    (tmp_path / "data.txt").write_text("x")
    with pytest.raises(ApiError, match="is not an executable file"):
        commands.resolve(["./data.txt"], str(tmp_path), "")


def test_hanging_login_shell_is_given_up_on(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(commands, "LOGIN_SHELL_TIMEOUT", 0.3)
    monkeypatch.setenv("SHELL", str(_executable(tmp_path / "slowsh", "#!/bin/sh\nsleep 5\n")))
    monkeypatch.delenv("STRATAVORE_NO_LOGIN_PATH", raising=False)
    commands.login_shell_path.cache_clear()
    try:
        assert commands.login_shell_path() == ""
    finally:
        commands.login_shell_path.cache_clear()
    assert os.environ["SHELL"].endswith("slowsh")
