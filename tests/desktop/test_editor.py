"""Opening a runner's folder, or its worktree, in the user's code editor: the command chosen in
Settings gets the folder as its last argument and is started detached; with no editor chosen
the first well-known one on PATH is used; with none, the pane says so in one sentence. A real
runner against a real supervisor, and a real program standing in for the editor."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from desktop.editor import EDITOR_KEY
from tests.conftest import SLEEP
from tests.desktop import test_dashboard as base
from tests.desktop.test_dashboard import opened_urls, run, until

bridge, dashboard, prefs = base.bridge, base.dashboard, base.prefs


def fake_editor(folder: Path, name: str) -> tuple[Path, Path]:
    """A program named ``name`` in ``folder`` that writes the arguments it got to a file."""
    folder.mkdir(exist_ok=True)
    record = folder / f"{name}.args"
    program = folder / name
    # Written aside and renamed: the test sees the file whole or not at all.
    script = f'printf "%s\\n" "$@" > "{record}.new"\nmv "{record}.new" "{record}"\n'
    program.write_text(f"#!/bin/sh\n{script}")
    program.chmod(0o755)
    return program, record


def shown(daemon, project_dir, qloop, bridge, dashboard) -> Any:
    """A real runner in ``project_dir`` shown in the pane, once its Open button is enabled:
    the pane's details."""
    daemon.project("demo", project_dir)
    runner = daemon.launch("demo", SLEEP)["id"]
    details = dashboard.runners.pane.details

    async def scenario() -> None:
        await bridge.refresh()
        dashboard.show_runner(runner)
        await until(lambda: details.editor.isEnabled(), what="the open button")

    run(qloop, scenario())
    return details


def opened_with(qloop, details: Any, record: Path) -> list[str]:
    """Click Open; the arguments the fake editor got."""
    details.editor.click()
    run(qloop, until(record.exists, what="the editor to start"))
    return record.read_text().splitlines()


def test_open_in_editor_starts_the_chosen_editor_on_the_runners_folder(
    daemon, project_dir, qloop, bridge, dashboard, prefs, tmp_path
):
    program, record = fake_editor(tmp_path / "bin", "my-editor")
    prefs.setValue(EDITOR_KEY, f"{program} --new-window")
    details = shown(daemon, project_dir, qloop, bridge, dashboard)
    assert opened_with(qloop, details, record) == ["--new-window", str(project_dir)]
    assert details.note.text() == ""


def test_without_a_chosen_editor_the_first_known_one_on_path_opens_it(
    daemon, project_dir, qloop, bridge, dashboard, tmp_path, monkeypatch
):
    _program, record = fake_editor(tmp_path / "bin", "zed")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin:/bin")
    details = shown(daemon, project_dir, qloop, bridge, dashboard)
    assert opened_with(qloop, details, record) == [str(project_dir)]


def test_with_no_editor_anywhere_the_pane_says_what_to_do(
    daemon, project_dir, qloop, bridge, dashboard, tmp_path, monkeypatch
):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    details = shown(daemon, project_dir, qloop, bridge, dashboard)
    details.editor.click()
    assert details.note.text() == (
        "No code editor was found on PATH: choose one in Settings, General."
    )


def test_the_open_menu_offers_the_file_manager(daemon, project_dir, qloop, bridge, dashboard):
    details = shown(daemon, project_dir, qloop, bridge, dashboard)
    actions = details.editor.menu().actions()
    assert [a.text() for a in actions] == ["In the code editor", "In the file manager"]
    with opened_urls() as opened:
        actions[1].trigger()
    assert opened == [str(project_dir)]
