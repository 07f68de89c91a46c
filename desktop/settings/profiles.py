"""The Profiles page: the built-in agent profiles, and the user's own added and deleted."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)

from desktop.bridge import Bridge, Json
from desktop.settings.page import (
    FormError,
    Page,
    choose,
    combo_box,
    ends,
    fill_list,
    line_edit,
    stack,
)


def _arguments(placeholder: str, height: int) -> QPlainTextEdit:
    """A box for an argument list, one argument per line."""
    box = QPlainTextEdit()
    box.setPlaceholderText(placeholder)
    box.setMaximumHeight(height)
    return box


def _items(text: str) -> list[str]:
    """``a, b ,c`` as ``["a", "b", "c"]``."""
    return [item.strip() for item in text.split(",") if item.strip()]


RESTARTS = {"never": "Never", "on-failure": "When it fails", "always": "Always"}
# The variables that carry a profile's account (its agent's config directory).
ACCOUNT_VARIABLES = ("CLAUDE_CONFIG_DIR", "CODEX_HOME")


TEMPLATE_HINT = (
    "One argument per line, as the program receives it (no shell quoting). Placeholders: "
    "{binary} the program found from Programs, {prompt}, {session_id}, {hooks} (Claude "
    "Code's hooks), {args} extra arguments, {shell}."
)


class ProfilesPage(Page):
    """Profiles: the built-in ones read-only, the user's own added and deleted here. Adding
    with a profile selected copies it (``copy_of``): the copy keeps what the form does not
    show (its resume templates, its agent), so sessions, hooks and resume still work."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self.profiles: dict[str, Json] = {}
        self.list = QListWidget()
        self.list.currentItemChanged.connect(self._selected)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self.delete)
        self.delete_button.setEnabled(False)

        box = QGroupBox("Add a profile")
        form = QFormLayout(box)
        self.name = line_edit("e.g. claude-fast")
        self.description = line_edit("optional")
        self.command = _arguments("{binary}\n--model\nsonnet", 110)
        self.batch = _arguments("{binary}\n-p\n--\n{prompt}  (optional: runs with a prompt)", 80)
        command_hint = QLabel(TEMPLATE_HINT)
        command_hint.setWordWrap(True)
        self.binaries = line_edit("e.g. claude, or a full path (comma-separated, tried in order)")
        self.setup_files = line_edit("e.g. .env, .env.* (copied into its worktree)")
        self.worktree = QCheckBox("Each run gets its own git worktree and branch")
        self.restart = combo_box(RESTARTS)
        self.account = line_edit(
            "claude/codex: a second account's config dir, e.g. ~/.claude-work (optional)"
        )
        self.env = QPlainTextEdit()
        self.env.setPlaceholderText("NAME=value, one per line (optional)")
        self.env.setMaximumHeight(60)
        form.addRow("Name", self.name)
        form.addRow("Description", self.description)
        form.addRow("Command", self.command)
        form.addRow("With a prompt", self.batch)
        form.addRow("", command_hint)
        form.addRow("Programs", self.binaries)
        form.addRow("Setup files", self.setup_files)
        form.addRow("", self.worktree)
        form.addRow("Restart", self.restart)
        form.addRow("Account", self.account)
        form.addRow("Environment", self.env)
        self.add_button = QPushButton("Add profile")
        self.add_button.clicked.connect(self.add)
        form.addRow(ends(self.delete_button, self.add_button))
        stack(self.body, self.list, box)

    def load(self) -> None:
        self.start(self._fetch())

    async def _fetch(self, select: str | None = None) -> None:
        rows = await self.bridge.profiles()
        self.profiles = {row["name"]: row for row in rows}
        fill_list(self.list, rows, _profile_label, select)
        self._selected(self.list.currentItem())

    def selected(self) -> Json | None:
        item = self.list.currentItem()
        return self.profiles.get(item.data(Qt.ItemDataRole.UserRole)) if item else None

    def _selected(self, item: QListWidgetItem | None, _previous: Any = None) -> None:
        """Show the profile in the form: a built-in one is copied under a new name."""
        profile = self.selected() if item is not None else None
        self.delete_button.setEnabled(profile is not None and not profile["builtin"])
        if profile is None:
            return
        self.name.setText("" if profile["builtin"] else profile["name"])
        self.description.setText(profile["description"])
        self.command.setPlainText("\n".join(profile["command"]))
        self.batch.setPlainText("\n".join(profile["batch"] or []))
        self.binaries.setText(", ".join(profile["binaries"]))
        self.setup_files.setText(", ".join(profile["setup_files"]))
        self.worktree.setChecked(profile["worktree"])
        choose(self.restart, profile["restart"])
        self.account.setText(profile["account"] or "")
        # the account is shown on its own line, not again as the variable that carries it
        env = {k: v for k, v in profile["env"].items()
               if not (k in ACCOUNT_VARIABLES and v == profile["account"])}  # fmt: skip
        self.env.setPlainText("\n".join(f"{k}={v}" for k, v in env.items()))

    def add(self) -> None:
        self.start(self._add())

    async def _add(self) -> None:
        name = self.name.text().strip()
        command = [arg for arg in self.command.toPlainText().splitlines() if arg]
        if not name:
            raise FormError("Give the profile a name, e.g. claude-fast.")
        if not command:
            raise FormError("Give the profile a command: the program, then one argument per line.")
        env = {}
        for line in self.env.toPlainText().splitlines():
            if line.strip():
                key, sep, value = line.partition("=")
                if not sep or not key.strip():
                    raise FormError(f"Environment line {line!r} must look like NAME=value.")
                env[key.strip()] = value
        body = {"name": name, "command": command, "description": self.description.text().strip(),
                "restart": self.restart.currentData(), "env": env,
                "binaries": _items(self.binaries.text()),
                "setup_files": _items(self.setup_files.text()),
                "worktree": self.worktree.isChecked()}  # fmt: skip
        batch = [arg for arg in self.batch.toPlainText().splitlines() if arg]
        if batch:
            body["batch"] = batch
        if self.account.text().strip():
            body["account"] = self.account.text().strip()
        source = self.selected()
        if source is not None:
            body["copy_of"] = source["name"]  # what the form doesn't show comes from there
        await self.bridge.add_profile(**body)
        self.say(f"Added profile {name}.")
        await self._fetch(select=name)

    def delete(self) -> None:
        profile = self.selected()
        if profile is not None and not profile["builtin"]:
            self.start(self._delete(profile["name"]))

    async def _delete(self, name: str) -> None:
        await self.bridge.delete_profile(name)
        self.say(f"Deleted profile {name}.")
        self.name.clear()
        await self._fetch()


def _profile_label(row: Json) -> str:
    marker = "  (built in)" if row["builtin"] else ""
    return f"{row['name']}{marker}  ·  {' '.join(row['command'])}"
