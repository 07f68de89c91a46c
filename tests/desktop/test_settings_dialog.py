"""The settings dialog against a real supervisor: a ``stratavore daemon`` child, the real
bridge on a qasync loop, real widgets clicked through pytest-qt (offscreen).

Each test runs as one coroutine on the qasync loop, as the app's slots do: a click spawns the
dialog's request on the running loop, and the test awaits its result by polling, never by a
nested Qt event loop (which would re-enter the running task).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QPushButton

from desktop import autostart
from desktop.bridge import Bridge
from desktop.editor import EDITOR_KEY
from desktop.settings import THEME_KEY, SettingsDialog, theme
from supervisor.core import paths
from tests.conftest import REPO, Daemon
from tests.keyring_backend import FAIL_BACKEND
from tests.sink import Sink

SECRET = "hmac-key-5b1e07c9d4"
TIMEOUT = 15.0


# --- the loop, and waiting on it ---------------------------------------------------------------
@pytest.fixture
def loop(qloop: qasync.QEventLoop) -> qasync.QEventLoop:
    """The shared qasync loop (``tests/desktop/conftest.py``)."""
    return qloop


def run(loop: qasync.QEventLoop, work: Coroutine[Any, Any, Any]) -> Any:
    return loop.run_until_complete(asyncio.wait_for(work, 60))


async def until(predicate: Callable[[], Any], what: str = "condition") -> Any:
    """Await ``predicate`` being truthy while the loop (and Qt) keep running."""
    deadline = time.monotonic() + TIMEOUT
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {TIMEOUT} s waiting for {what}")
        await asyncio.sleep(0.02)
    return value


@contextlib.asynccontextmanager
async def opened(daemon: Daemon, qtbot: Any, tmp_path: Path) -> AsyncIterator[SettingsDialog]:
    """The dialog on a bridge to ``daemon``, shown and loaded; start at login goes to a temp
    XDG_CONFIG_HOME and the preferences to a temp file."""
    bridge = Bridge(daemon.api.base_url, daemon.api.token or "")
    bridge.start()
    prefs = QSettings(str(tmp_path / "prefs.ini"), QSettings.Format.IniFormat)
    login = autostart.Location("linux", tmp_path / "user-home", {"XDG_CONFIG_HOME": str(
        tmp_path / "xdg")})  # fmt: skip
    dialog = SettingsDialog(bridge, prefs=prefs, login=login)
    qtbot.addWidget(dialog)
    try:
        dialog.show()
        await settled(dialog)
        yield dialog
        await settled(dialog)
    finally:
        dialog.close()
        await bridge.close()


async def settled(dialog: SettingsDialog) -> None:
    await until(lambda: not dialog.busy, "the dialog's requests to end")


async def click(dialog: SettingsDialog, button: QPushButton) -> None:
    """Click ``button`` and wait for what it started."""
    assert button.isEnabled(), button.text()
    button.click()
    await settled(dialog)


# --- Notifications -----------------------------------------------------------------------------
def test_add_webhook_with_secret_test_and_remove(loop, daemon, home, qtbot, tmp_path, test_keyring):
    async def scenario() -> None:
        with Sink() as sink:
            async with opened(daemon, qtbot, tmp_path) as dialog:
                page = dialog.channels
                page.new_button.click()
                page.name.setText("hook")
                page.kind.setCurrentIndex(page.kind.findData("webhook"))
                assert page.form.isRowVisible(page.fields["url"])
                assert not page.form.isRowVisible(page.fields["topic"])
                assert page.secret.echoMode() == page.secret.EchoMode.Password
                page.fields["url"].setText(f"{sink.url}/hook")
                page.secret.setText(SECRET)
                await click(dialog, page.save_button)
                assert page.status.text() == "Saved channel hook."
                assert page.secret.text() == ""  # sent once, never kept

                [channel] = daemon.api.get("/api/v1/notify/channels")
                assert channel["name"] == "hook" and channel["kind"] == "webhook"
                assert channel["config"] == {"url": f"{sink.url}/hook"}
                assert channel["policy"]["types"] == ["*"]  # the webhook's own default
                keyring = json.loads(test_keyring.read_text())
                assert keyring == {"stratavore": {"channel:hook": SECRET}}
                for file in home.glob(paths.db_path(home).name + "*"):
                    assert SECRET.encode() not in file.read_bytes(), file
                assert page.selected() == "hook"
                assert page.name.isReadOnly() and page.secret.text() == ""

                await click(dialog, page.test_button)
                assert page.status.text() == "hook: delivered"
                assert sink.last.json()["type"] == "notify.test"
                assert sink.last.headers["X-Stratavore-Signature"].startswith("sha256=")

                await click(dialog, page.remove_button)
                assert page.status.text() == "Removed channel hook and its secret."
                assert daemon.api.get("/api/v1/notify/channels") == []
                assert page.list.count() == 0
                assert json.loads(test_keyring.read_text()) == {"stratavore": {}}

    run(loop, scenario())


def test_a_refused_channel_shows_the_supervisors_sentence(loop, daemon, qtbot, tmp_path):
    async def scenario() -> None:
        async with opened(daemon, qtbot, tmp_path) as dialog:
            page = dialog.channels
            page.name.setText("hook")
            page.kind.setCurrentIndex(page.kind.findData("webhook"))
            page.fields["url"].setText("ftp://example.org/x")
            page.secret.setText(SECRET)
            await click(dialog, page.save_button)
            assert page.status.text() == "The url must start with https:// or http://, not ftp."
            assert page.secret.text() == ""
            assert daemon.api.get("/api/v1/notify/channels") == []

            page.name.setText("")
            await click(dialog, page.save_button)
            assert page.status.text() == "Give the channel a name, e.g. phone."

    run(loop, scenario())


def test_without_a_keyring_the_dialog_shows_the_refusal(loop, home, qtbot, tmp_path):
    env = {**os.environ, "STRATAVORE_HOME": str(home), "PYTHONPATH": str(REPO),
           "PYTHON_KEYRING_BACKEND": FAIL_BACKEND}  # fmt: skip
    daemon = Daemon(home, [], env).start()

    async def scenario() -> None:
        async with opened(daemon, qtbot, tmp_path) as dialog:
            page = dialog.channels
            page.name.setText("phone")
            page.kind.setCurrentIndex(page.kind.findData("telegram"))
            assert page.secret_label.text() == "Bot token"
            page.fields["chat_id"].setText("12345")
            page.secret.setText("123456789:AAAAAAAAAAAAAAAAAAAAAAAA")
            await click(dialog, page.save_button)
            assert page.status.text().startswith("There is no usable keyring")
            assert page.secret.text() == ""
            assert daemon.api.get("/api/v1/notify/channels") == []

    try:
        run(loop, scenario())
    finally:
        daemon.close()


def test_editing_a_channel_keeps_its_secret_and_other_policy(
    loop, daemon, qtbot, tmp_path, test_keyring
):
    daemon.api.request("PUT", "/api/v1/notify/channels/alerts", body={
        "kind": "ntfy", "config": {"topic": "builds"}, "secret": "tk_abc123",
        "policy": {"max_messages": 7},
    })  # fmt: skip

    async def scenario() -> None:
        async with opened(daemon, qtbot, tmp_path) as dialog:
            page = dialog.channels
            page.list.setCurrentRow(0)
            assert page.name.text() == "alerts" and page.name.isReadOnly()
            assert page.fields["topic"].text() == "builds"
            assert page.fields["server"].text() == "https://ntfy.sh"
            assert page.secret.text() == ""  # the secret is never shown
            assert "keep" in page.secret.placeholderText()
            page.quiet.setText("22:00-07:00")
            page.severity.setCurrentIndex(page.severity.findData("warning"))
            await click(dialog, page.save_button)
            assert page.status.text() == "Saved channel alerts."

    run(loop, scenario())
    [channel] = daemon.api.get("/api/v1/notify/channels")
    assert channel["policy"]["quiet_hours"] == "22:00-07:00"
    assert channel["policy"]["min_severity"] == "warning"
    assert channel["policy"]["max_messages"] == 7
    assert json.loads(test_keyring.read_text()) == {"stratavore": {"channel:alerts": "tk_abc123"}}


# --- Intervals ---------------------------------------------------------------------------------
def test_change_an_interval_and_see_a_refusal(loop, daemon, qtbot, tmp_path):
    async def scenario() -> None:
        async with opened(daemon, qtbot, tmp_path) as dialog:
            page = dialog.intervals
            assert "timezone" not in page.spins  # numbers only
            spin = page.spins["heartbeat_interval"]
            assert spin.value() == 10.0
            assert page.hints["heartbeat_interval"].text() == "default 10; applies now"
            assert "applies at next start" in page.hints["api_port"].text()
            spin.setValue(4.5)
            page.spins["max_runners_global"].setValue(12)
            await click(dialog, page.save_button)
            assert page.status.text() == "Saved heartbeat_interval, max_runners_global."

            page.spins["heartbeat_ttl"].setValue(0)
            await click(dialog, page.save_button)
            assert page.status.text() == "Setting heartbeat_ttl must be from 0.1 to 604800."

            page.spins["log_backups"].setValue(5)
            page.spins["heartbeat_ttl"].setValue(40)
            await click(dialog, page.save_button)
            assert page.status.text() == (
                "Saved heartbeat_ttl, log_backups. log_backups applies when the supervisor "
                "next starts."
            )
            assert page.hints["log_backups"].text() == ("default 3; applies at next start (now 3)")
            page.save_button.click()
            await settled(dialog)
            assert page.status.text() == "Nothing changed."

    run(loop, scenario())
    settings = {row["key"]: row for row in daemon.api.get("/api/v1/settings")}
    assert settings["heartbeat_interval"]["value"] == 4.5
    assert settings["max_runners_global"]["value"] == 12
    assert settings["heartbeat_ttl"]["value"] == 40
    assert settings["log_backups"]["saved"] == 5 and settings["log_backups"]["value"] == 3


# --- Budgets -----------------------------------------------------------------------------------
def test_add_change_and_remove_a_budget(loop, daemon, qtbot, tmp_path, project_dir):
    daemon.project("demo", project_dir)

    async def scenario() -> None:
        async with opened(daemon, qtbot, tmp_path) as dialog:
            page = dialog.budgets
            assert [page.scope.itemText(i) for i in range(page.scope.count())] == [
                "global", "project:demo"]  # fmt: skip
            page.scope.setEditText("project:demo")
            page.period.setCurrentIndex(page.period.findData("daily"))
            page.tokens.setText("400,000")
            page.warn.setText("50, 80")
            page.action.setCurrentIndex(page.action.findData("block"))
            await click(dialog, page.save_button)
            assert page.status.text() == "Saved the daily budget of project:demo."
            assert page.table.rowCount() == 1
            assert page.table.item(0, 0).text() == "project:demo"
            assert page.table.item(0, 2).text() == "400000"

            page.select("project:demo", "daily")
            assert page.tokens.text() == "400000" and page.warn.text() == "50, 80"
            page.usd.setText("12.5")
            await click(dialog, page.save_button)

            page.tokens.setText("lots")
            await click(dialog, page.save_button)
            assert page.status.text() == "Tokens must be a whole number, e.g. 400000."

            page.scope.setEditText("project:nope")
            page.tokens.setText("10")
            await click(dialog, page.save_button)
            assert "nope" in page.status.text()  # the supervisor's sentence

            [budget] = daemon.api.get("/api/v1/budgets")
            assert (budget["scope"], budget["period"]) == ("project:demo", "daily")
            assert budget["limit_tokens"] == 400000 and budget["limit_usd"] == 12.5
            assert budget["warn"] == [50, 80] and budget["action"] == "block"

            page.select("project:demo", "daily")
            await click(dialog, page.remove_button)
            assert page.status.text() == "Removed the daily budget of project:demo."
            assert page.table.rowCount() == 0
            assert daemon.api.get("/api/v1/budgets") == []

    run(loop, scenario())


def test_plan_limit_thresholds_are_set_on_the_budgets_page(loop, daemon, qtbot, tmp_path):
    async def scenario() -> None:
        async with opened(daemon, qtbot, tmp_path) as dialog:
            page = dialog.budgets
            assert page.plan_thresholds.text() == "80, 95"
            page.plan_thresholds.setText("50 75, 99")
            await click(dialog, page.plan_save_button)
            assert page.status.text() == "Plan limits notify at 50, 75, 99 %."
            page.plan_thresholds.setText("50, lots")
            await click(dialog, page.plan_save_button)
            assert "like 80,95; 'lots' is not one" in page.status.text()

    run(loop, scenario())
    settings = {row["key"]: row for row in daemon.api.get("/api/v1/settings")}
    assert settings["limit_thresholds"]["value"] == "50,75,99"


# --- Profiles ----------------------------------------------------------------------------------
def test_add_and_delete_a_profile_builtins_read_only(loop, daemon, qtbot, tmp_path):
    async def scenario() -> None:
        async with opened(daemon, qtbot, tmp_path) as dialog:
            page = dialog.profiles
            names = [page.list.item(i).data(Qt.ItemDataRole.UserRole)
                     for i in range(page.list.count())]  # fmt: skip
            assert "shell" in names
            page.list.setCurrentRow(names.index("shell"))
            assert not page.delete_button.isEnabled()  # built in
            assert page.command.toPlainText() == "{shell}\n{args}"  # one argument per line
            assert page.name.text() == ""  # copied under a new name

            page.name.setText("py-slow")
            page.description.setText("a sleeper")
            page.command.setPlainText("python3\n-c\nimport time; time.sleep(1)\n")
            page.batch.setPlainText("python3\n-c\n{prompt}\n")
            page.restart.setCurrentIndex(page.restart.findData("on-failure"))
            page.env.setPlainText("MODE=a b=c\n")
            await click(dialog, page.add_button)
            assert page.status.text() == "Added profile py-slow."
            assert page.selected()["name"] == "py-slow"
            assert page.delete_button.isEnabled()

            created = daemon.api.get("/api/v1/profiles/py-slow")
            assert created["command"] == ["python3", "-c", "import time; time.sleep(1)"]
            assert created["batch"] == ["python3", "-c", "{prompt}"]
            assert created["env"] == {"MODE": "a b=c"} and created["restart"] == "on-failure"
            assert (created["builtin"], created["agent"]) == (False, "shell")  # copied from shell

            page.list.setCurrentRow(names.index("claude"))  # a copy of claude keeps its hooks
            assert page.binaries.text() == "claude" and "{hooks}" in page.command.toPlainText()
            page.name.setText("claude-tree")
            page.setup_files.setText(".env, .env.local")
            page.worktree.setChecked(True)
            await click(dialog, page.add_button)
            copy = daemon.api.get("/api/v1/profiles/claude-tree")
            assert (copy["hooks"], copy["worktree"], copy["setup_files"]) == (
                True, True, [".env", ".env.local"]
            )  # fmt: skip
            assert copy["resume"] == daemon.api.get("/api/v1/profiles/claude")["resume"]
            assert page.account.text() == ""  # the default account

            work = tmp_path / "claude-work"  # a second account: its own config dir
            page.name.setText("claude-work")
            page.account.setText(str(work))
            await click(dialog, page.add_button)
            assert page.status.text().startswith(f"Account directory {work} does not exist;")
            work.mkdir()
            await click(dialog, page.add_button)
            assert page.status.text() == "Added profile claude-work."
            made = daemon.api.get("/api/v1/profiles/claude-work")
            assert made["account"] == str(work.resolve())
            assert (page.account.text(), page.env.toPlainText()) == (str(work.resolve()), "")
            page.list.setCurrentRow(
                [page.list.item(i).data(Qt.ItemDataRole.UserRole)
                 for i in range(page.list.count())].index("py-slow")
            )  # fmt: skip

            await click(dialog, page.add_button)  # the same name again
            assert page.status.text() == "Profile 'py-slow' already exists."

            await click(dialog, page.delete_button)
            assert page.status.text() == "Deleted profile py-slow."
            assert "py-slow" not in {p["name"] for p in daemon.api.get("/api/v1/profiles")}

    run(loop, scenario())


# --- General -----------------------------------------------------------------------------------
def test_start_at_login_and_theme(loop, daemon, qtbot, tmp_path):
    entry = tmp_path / "xdg" / "autostart" / "stratavore.desktop"

    async def scenario() -> None:
        async with opened(daemon, qtbot, tmp_path) as dialog:
            page = dialog.general
            assert not page.at_login.isChecked()
            page.at_login.click()
            assert entry.exists()
            assert "X-GNOME-Autostart-enabled=true" in entry.read_text()
            assert autostart.enabled(page.login)
            assert page.status.text() == "Stratavore starts when you log in."
            page.at_login.click()
            assert not entry.exists()

            chosen: list[str] = []
            dialog.theme_changed.connect(chosen.append)
            page.theme.setCurrentIndex(page.theme.findData("dark"))
            assert chosen == ["dark"]
            assert theme(page.prefs) == "dark"
            assert page.prefs.value(THEME_KEY) == "dark"

    run(loop, scenario())
    reread = QSettings(str(tmp_path / "prefs.ini"), QSettings.Format.IniFormat)
    assert theme(reread) == "dark"


def test_the_code_editor_is_checked_before_it_is_kept(loop, daemon, qtbot, tmp_path):
    editor = tmp_path / "my-editor"
    editor.write_text("#!/bin/sh\n")
    editor.chmod(0o755)

    async def scenario() -> None:
        async with opened(daemon, qtbot, tmp_path) as dialog:
            page = dialog.general
            page.editor.setText("no-such-editor-anywhere --new-window")
            page.editor.editingFinished.emit()
            assert page.status.text() == (
                "'no-such-editor-anywhere' is not a program on PATH: give the editor's full "
                "path or the name of its command-line launcher (for VS Code, 'code')."
            )
            assert page.prefs.value(EDITOR_KEY) is None
            page.editor.setText('"unclosed')
            page.editor.editingFinished.emit()
            assert page.status.text().startswith("The editor command cannot be read (")
            page.editor.setText(f"{editor} --new-window")
            page.editor.editingFinished.emit()
            assert page.status.text() == f"Folders open in {editor} --new-window."
            assert page.prefs.value(EDITOR_KEY) == f"{editor} --new-window"

    run(loop, scenario())
