"""The Notifications page: the notification channels, and a form to add or change one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QWidget,
)

from desktop.bridge import Bridge, Json
from desktop.settings.page import FormError, Page, choose, combo_box, fill_list, line_edit, stack


@dataclass(frozen=True)
class ChannelField:
    key: str
    label: str
    placeholder: str
    whole: bool = False  # sent as a number when it is one


CHANNEL_KINDS = {"telegram": "Telegram", "ntfy": "ntfy", "webhook": "Webhook",
                 "desktop": "Desktop notifications"}  # fmt: skip
CHANNEL_FIELDS = {
    "telegram": [
        ChannelField("chat_id", "Chat id", "the numeric chat id, or @channelname", whole=True),
        ChannelField("message_thread_id", "Topic id", "optional: a forum topic", whole=True),
        ChannelField("api_base", "API base", "https://api.telegram.org"),
    ],
    "ntfy": [
        ChannelField("topic", "Topic", "letters, digits, '-' and '_'"),
        ChannelField("server", "Server", "https://ntfy.sh"),
    ],
    "webhook": [ChannelField("url", "URL", "https://host/path")],
    "desktop": [],
}
SECRET_LABELS = {"telegram": "Bot token", "ntfy": "Access token", "webhook": "Signing key"}
SECRET_HINTS = {
    "telegram": "required: the bot token from @BotFather",
    "ntfy": "optional: for a protected topic",
    "webhook": "optional: signs each body (HMAC-SHA256)",
}
SEVERITIES = {"": "The channel's default", "debug": "debug", "info": "info",
              "warning": "warning", "error": "error"}  # fmt: skip
MANAGED_POLICY = ("types", "min_severity", "quiet_hours")  # the rest is kept as it was


class ChannelsPage(Page):
    """Channels, and a form to add or change one."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self.channels: dict[str, Json] = {}
        self.editing: str | None = None  # the channel the form shows; None: a new one

        self.list = QListWidget()
        self.list.currentItemChanged.connect(self._selected)
        self.new_button = QPushButton("New channel")
        self.new_button.clicked.connect(self.new_channel)
        self.test_button = QPushButton("Send test")
        self.test_button.clicked.connect(self.test_channel)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_channel)
        actions = QHBoxLayout()
        for button in (self.new_button, self.test_button, self.remove_button):
            actions.addWidget(button)
        actions.addStretch(1)

        self.form_box = QGroupBox("New channel")
        self.form = form = QFormLayout(self.form_box)
        self.name = line_edit("e.g. phone")
        self.kind = combo_box(CHANNEL_KINDS)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        form.addRow("Name", self.name)
        form.addRow("Kind", self.kind)
        self.fields: dict[str, QLineEdit] = {}
        for field in (f for fields in CHANNEL_FIELDS.values() for f in fields):
            if field.key not in self.fields:
                self.fields[field.key] = line_edit(field.placeholder)
                form.addRow(field.label, self.fields[field.key])
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret_label = QLabel("Secret")
        form.addRow(self.secret_label, self.secret)
        self.types = line_edit("the kind's default, e.g. runner.failed, budget.*, !budget.rollover")
        self.severity = combo_box(SEVERITIES)
        self.quiet = line_edit("none, e.g. 22:00-07:00")
        form.addRow("Events", self.types)
        form.addRow("Minimum severity", self.severity)
        form.addRow("Quiet hours", self.quiet)
        note = QLabel("Secrets go to the OS keyring; Stratavore never shows them again.")
        note.setWordWrap(True)
        form.addRow(note)
        self.save_button = QPushButton("Save channel")
        self.save_button.clicked.connect(self.save_channel)
        form.addRow(self.save_button)

        stack(self.body, self.list, actions, self.form_box)
        self._kind_changed()
        self._selected(None)

    # --- showing -------------------------------------------------------------------------
    def load(self) -> None:
        self.start(self._fetch())

    async def _fetch(self, select: str | None = None) -> None:
        rows = await self.bridge.channels()
        self.channels = {row["name"]: row for row in rows}
        select = select or self.editing
        fill_list(self.list, rows, lambda row: f"{row['name']}  ·  {_channel_summary(row)}", select)
        self._selected(self.list.currentItem())

    def selected(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _selected(self, item: QListWidgetItem | None, _previous: Any = None) -> None:
        name = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        self.test_button.setEnabled(name is not None)
        self.remove_button.setEnabled(name is not None)
        if name is not None and name in self.channels:
            self._fill(self.channels[name])

    def new_channel(self) -> None:
        """An empty form for a channel to add."""
        self.list.setCurrentRow(-1)
        self.editing = None
        self.form_box.setTitle("New channel")
        self.name.clear()
        self.name.setReadOnly(False)
        for edit in self.fields.values():
            edit.clear()
        self.types.clear()
        self.quiet.clear()
        choose(self.severity, "")
        self._kind_changed()
        self.name.setFocus()

    def _fill(self, row: Json) -> None:
        self.editing = row["name"]
        self.form_box.setTitle(f"Channel {row['name']}")
        self.name.setText(row["name"])
        self.name.setReadOnly(True)
        choose(self.kind, row["kind"])
        for key, edit in self.fields.items():
            value = row["config"].get(key)
            edit.setText("" if value is None else str(value))
        policy = row["policy"]
        self.types.setText(", ".join(policy.get("types") or []))
        choose(self.severity, policy.get("min_severity") or "")
        self.quiet.setText(policy.get("quiet_hours") or "")
        self.secret.clear()
        self._kind_changed()

    def _kind_changed(self) -> None:
        kind = self.kind.currentData()
        shown = {field.key for field in CHANNEL_FIELDS[kind]}
        for key, edit in self.fields.items():
            self.form.setRowVisible(edit, key in shown)
        self.form.setRowVisible(self.secret, kind in SECRET_LABELS)
        self.secret_label.setText(SECRET_LABELS.get(kind, "Secret"))
        hint = SECRET_HINTS.get(kind, "")
        if self.editing is not None and kind in ("ntfy", "webhook"):
            hint = "leave empty to keep the one in the keyring"
        self.secret.setPlaceholderText(hint)

    # --- acting --------------------------------------------------------------------------
    def save_channel(self) -> None:
        # The secret leaves the field now, whatever the answer: it is sent once, never kept.
        secret = self.secret.text()
        self.secret.clear()
        self.start(self._save(secret or None))

    async def _save(self, secret: str | None) -> None:
        name = self.name.text().strip()
        if not name:
            raise FormError("Give the channel a name, e.g. phone.")
        kind = self.kind.currentData()
        config: Json = {}
        for field in CHANNEL_FIELDS[kind]:
            text = self.fields[field.key].text().strip()
            if text:
                whole = field.whole and re.fullmatch(r"-?[0-9]+", text)
                config[field.key] = int(text) if whole else text
        secret = secret if kind in SECRET_LABELS else None
        await self.bridge.put_channel(name, kind, config, self._policy(name, kind), secret)
        self.say(f"Saved channel {name}.")
        await self._fetch(select=name)

    def _policy(self, name: str, kind: str) -> Json:
        """The policy from the form; other settings of a channel being changed are kept."""
        old = self.channels.get(name)
        policy: Json = {}
        if old is not None and old["kind"] == kind:
            policy = {k: v for k, v in old["policy"].items()
                      if k not in MANAGED_POLICY and v is not None}  # fmt: skip
        types = [t for t in re.split(r"[,\s]+", self.types.text()) if t]
        if types:
            policy["types"] = types
        if self.severity.currentData():
            policy["min_severity"] = self.severity.currentData()
        if self.quiet.text().strip():
            policy["quiet_hours"] = self.quiet.text().strip()
        if "quiet_hours" not in policy:
            policy.pop("time_zone", None)
        return policy

    def test_channel(self) -> None:
        name = self.selected()
        if name is not None:
            self.start(self._test(name))
            self.say(f"Sending a test message to {name}…")

    async def _test(self, name: str) -> None:
        outcome = await self.bridge.test_channel(name)
        reason = f" ({outcome['reason']})" if outcome.get("reason") else ""
        self.say(f"{name}: {outcome['result']}{reason}", error=outcome["result"] != "delivered")

    def remove_channel(self) -> None:
        name = self.selected()
        if name is not None:
            self.start(self._remove(name))

    async def _remove(self, name: str) -> None:
        await self.bridge.remove_channel(name)
        self.say(f"Removed channel {name} and its secret.")
        self.new_channel()
        await self._fetch()


def _channel_summary(row: Json) -> str:
    config = row["config"]
    where = {
        "telegram": f"chat {config.get('chat_id')}",
        "ntfy": f"{config.get('server')}/{config.get('topic')}",
        "webhook": str(config.get("url")),
    }.get(row["kind"], "")
    label = CHANNEL_KINDS.get(row["kind"], row["kind"])
    return f"{label} {where}".strip() + ("" if row.get("enabled", True) else " (disabled)")
