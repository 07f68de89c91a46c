"""The settings dialog: notification channels, the supervisor's intervals and caps, budgets,
profiles, and this app's own preferences (start at login, theme).

Everything the supervisor owns is read and written through the bridge, on the loop: a page's
controls are disabled while its request runs, and a refusal shows the supervisor's own
sentence on that page. A channel's secret is typed into a password field, sent once in the
PUT that creates the channel (the supervisor puts it in the OS keyring) and cleared at once:
the dialog never keeps or shows it. Start at login and the theme are this app's, not the
supervisor's: :mod:`desktop.autostart` and QSettings.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop import autostart
from desktop.bridge import Bridge, BridgeError, Json, spawn

# --- this app's own preferences ------------------------------------------------------------
THEME_KEY = "appearance/theme"
THEMES = {"system": "Follow the system", "light": "Light", "dark": "Dark"}


def preferences() -> QSettings:
    """This app's own preferences (not the supervisor's settings)."""
    return QSettings("Stratavore", "Stratavore")


def theme(prefs: QSettings | None = None) -> str:
    """The icon theme the user chose: ``system``, ``light`` or ``dark``."""
    value = (prefs or preferences()).value(THEME_KEY, "system")
    return value if value in THEMES else "system"


class FormError(Exception):
    """A field the dialog can refuse before asking the supervisor: ``str()`` is the sentence."""


# --- the pages' common part ----------------------------------------------------------------
class Page(QWidget):
    """A tab: its controls in ``body``, a sentence below them in ``status``. :meth:`start`
    runs a coroutine with ``body`` disabled until it ends, and shows a refusal."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.body = QWidget(self)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.body, 1)
        layout.addWidget(self.status)
        self._running = 0

    @property
    def busy(self) -> bool:
        return self._running > 0

    def say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #c0392b;" if error else "")

    def start(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` on the loop; the controls are disabled from now until it ends, and
        the last sentence shown makes way for what this one says."""
        self.say("")
        self._running += 1
        self.body.setEnabled(False)
        spawn(self._settle(work))

    async def _settle(self, work: Coroutine[Any, Any, Any]) -> None:
        try:
            await work
        except BridgeError as exc:
            self.say(exc.message or f"The supervisor refused ({exc.code}).", error=True)
        except FormError as exc:
            self.say(str(exc), error=True)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.say(f"The supervisor did not answer ({exc or type(exc).__name__}).", error=True)
        finally:
            self._running -= 1
            if not self._running:
                self.body.setEnabled(True)

    def load(self) -> None:
        """Read what the page shows from the supervisor (on showing the dialog)."""


def _line(placeholder: str = "") -> QLineEdit:
    edit = QLineEdit()
    edit.setPlaceholderText(placeholder)
    return edit


def _ends(left: QWidget, right: QWidget) -> QHBoxLayout:
    """A row with ``left`` at its start and ``right`` at its end (remove ... save)."""
    row = QHBoxLayout()
    row.addWidget(left)
    row.addStretch(1)
    row.addWidget(right)
    return row


def _stack(body: QWidget, first: QWidget, *rest: QWidget | QLayout) -> None:
    """``first`` (a list, taking the spare height) over ``rest``, filling ``body``."""
    layout = QVBoxLayout(body)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(first, 1)
    for part in rest:
        if isinstance(part, QLayout):
            layout.addLayout(part)
        else:
            layout.addWidget(part)


def _arguments(placeholder: str, height: int) -> QPlainTextEdit:
    """A box for an argument list, one argument per line."""
    box = QPlainTextEdit()
    box.setPlaceholderText(placeholder)
    box.setMaximumHeight(height)
    return box


def _items(text: str) -> list[str]:
    """``a, b ,c`` as ``["a", "b", "c"]``."""
    return [item.strip() for item in text.split(",") if item.strip()]


def _combo(choices: dict[str, str]) -> QComboBox:
    """A combo box of ``{value: label}``; ``currentData()`` is the value."""
    combo = QComboBox()
    for value, label in choices.items():
        combo.addItem(label, value)
    return combo


def _choose(combo: QComboBox, value: Any) -> None:
    index = combo.findData(value)
    if index >= 0:
        combo.setCurrentIndex(index)


def _number(value: float | int | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- Notifications -------------------------------------------------------------------------
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
        self.name = _line("e.g. phone")
        self.kind = _combo(CHANNEL_KINDS)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        form.addRow("Name", self.name)
        form.addRow("Kind", self.kind)
        self.fields: dict[str, QLineEdit] = {}
        for field in (f for fields in CHANNEL_FIELDS.values() for f in fields):
            if field.key not in self.fields:
                self.fields[field.key] = _line(field.placeholder)
                form.addRow(field.label, self.fields[field.key])
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret_label = QLabel("Secret")
        form.addRow(self.secret_label, self.secret)
        self.types = _line("the kind's default, e.g. runner.failed, budget.*, !budget.rollover")
        self.severity = _combo(SEVERITIES)
        self.quiet = _line("none, e.g. 22:00-07:00")
        form.addRow("Events", self.types)
        form.addRow("Minimum severity", self.severity)
        form.addRow("Quiet hours", self.quiet)
        note = QLabel("Secrets go to the OS keyring; Stratavore never shows them again.")
        note.setWordWrap(True)
        form.addRow(note)
        self.save_button = QPushButton("Save channel")
        self.save_button.clicked.connect(self.save_channel)
        form.addRow(self.save_button)

        _stack(self.body, self.list, actions, self.form_box)
        self._kind_changed()
        self._selected(None)

    # --- showing -------------------------------------------------------------------------
    def load(self) -> None:
        self.start(self._fetch())

    async def _fetch(self, select: str | None = None) -> None:
        rows = await self.bridge.request("GET", "/api/v1/notify/channels")
        self.channels = {row["name"]: row for row in rows}
        select = select or self.editing
        self.list.blockSignals(True)
        self.list.clear()
        for row in rows:
            item = QListWidgetItem(f"{row['name']}  ·  {_channel_summary(row)}")
            item.setData(Qt.ItemDataRole.UserRole, row["name"])
            self.list.addItem(item)
            if row["name"] == select:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
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
        _choose(self.severity, "")
        self._kind_changed()
        self.name.setFocus()

    def _fill(self, row: Json) -> None:
        self.editing = row["name"]
        self.form_box.setTitle(f"Channel {row['name']}")
        self.name.setText(row["name"])
        self.name.setReadOnly(True)
        _choose(self.kind, row["kind"])
        for key, edit in self.fields.items():
            value = row["config"].get(key)
            edit.setText("" if value is None else str(value))
        policy = row["policy"]
        self.types.setText(", ".join(policy.get("types") or []))
        _choose(self.severity, policy.get("min_severity") or "")
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
        body: Json = {"kind": kind, "config": config, "policy": self._policy(name, kind)}
        if secret and kind in SECRET_LABELS:
            body["secret"] = secret
        await self.bridge.request("PUT", f"/api/v1/notify/channels/{quote(name)}", body)
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
        outcome = await self.bridge.request(
            "POST", f"/api/v1/notify/channels/{quote(name)}/test", {}
        )
        reason = f" ({outcome['reason']})" if outcome.get("reason") else ""
        self.say(f"{name}: {outcome['result']}{reason}", error=outcome["result"] != "delivered")

    def remove_channel(self) -> None:
        name = self.selected()
        if name is not None:
            self.start(self._remove(name))

    async def _remove(self, name: str) -> None:
        await self.bridge.request("DELETE", f"/api/v1/notify/channels/{quote(name)}")
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


# --- Intervals -----------------------------------------------------------------------------
UNITS = {"log_max_bytes": " bytes", "api_port": ""}
WORDS = {"api": "API", "ttl": "TTL", "secs": "seconds"}


def _label(key: str) -> str:
    words = [WORDS.get(word, word) for word in key.split("_")]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


class SecondsBox(QDoubleSpinBox):
    """A spin box of seconds that shows 2.5, not 2.500."""

    def textFromValue(self, value: float) -> str:
        return self.locale().toString(value, "g", 9)


def _unit(key: str) -> str:
    if key in UNITS:
        return UNITS[key]
    seconds = key.endswith(("_interval", "_ttl", "_timeout", "_secs")) or key.startswith("backoff")
    return " s" if seconds else ""


class IntervalsPage(Page):
    """The supervisor's numeric settings: a spin box each, its default, and when it applies."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self.spins: dict[str, QSpinBox | QDoubleSpinBox] = {}
        self.hints: dict[str, QLabel] = {}
        self.shown: dict[str, int | float] = {}  # what each spin box was loaded with
        self.grid = QFormLayout()
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save)
        self.revert_button = QPushButton("Revert")
        self.revert_button.clicked.connect(self.load)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.grid)
        layout.addStretch(1)
        layout.addLayout(buttons)

    def load(self) -> None:
        self.start(self._fetch())

    async def _fetch(self) -> None:
        rows = await self.bridge.request("GET", "/api/v1/settings")
        for row in rows:
            if _is_number(row["default"]):
                self._show(row)

    def _show(self, row: Json) -> None:
        key = row["key"]
        if key not in self.spins:
            spin: QSpinBox | QDoubleSpinBox
            if isinstance(row["default"], int):
                spin = QSpinBox()
                spin.setRange(0, 2_000_000_000)
            else:
                spin = SecondsBox()
                spin.setDecimals(3)
                spin.setRange(0, 1e9)
            spin.setSuffix(_unit(key))
            spin.setMinimumWidth(150)  # one column, whatever the unit
            spin.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
            spin.setObjectName(key)
            hint = QLabel()
            line = QHBoxLayout()
            line.addWidget(spin)
            line.addWidget(hint, 1)
            self.grid.addRow(_label(key), line)
            self.spins[key], self.hints[key] = spin, hint
        value = row["saved"] if row["saved"] is not None else row["value"]
        self.spins[key].setValue(value)
        self.shown[key] = self.spins[key].value()
        when = "applies now" if row["applies"] == "now" else "applies at next start"
        hint = f"default {_number(row['default'])}; {when}"
        if row["value"] != value:
            hint += f" (now {_number(row['value'])})"
        self.hints[key].setText(hint)

    def changed(self) -> dict[str, int | float]:
        return {key: spin.value() for key, spin in self.spins.items()
                if spin.value() != self.shown.get(key)}  # fmt: skip

    def save(self) -> None:
        self.start(self._save(self.changed()))

    async def _save(self, changes: dict[str, int | float]) -> None:
        if not changes:
            self.say("Nothing changed.")
            return
        later = []
        for key, value in changes.items():  # one by one: a refusal stops at its setting
            row = await self.bridge.request("PUT", f"/api/v1/settings/{key}", {"value": value})
            self._show(row)
            if row["applies"] != "now":
                later.append(key)
        text = f"Saved {', '.join(changes)}."
        if later:
            text += f" {', '.join(later)} applies when the supervisor next starts."
        self.say(text)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- Budgets -------------------------------------------------------------------------------
PERIODS = {"daily": "Daily", "weekly": "Weekly", "monthly": "Monthly", "5h": "5-hour block"}
ACTIONS = {"warn": "Warn only", "block": "Block new launches", "stop": "Block and stop runners"}
BUDGET_COLUMNS = ["Scope", "Period", "Tokens", "USD", "Warn at %", "At 100 %", "Used"]


class BudgetsPage(Page):
    """Budgets and their current use; a form to set or change one."""

    def __init__(self, bridge: Bridge, parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self.budgets: list[Json] = []
        self.table = QTableWidget(0, len(BUDGET_COLUMNS))
        self.table.setHorizontalHeaderLabels(BUDGET_COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.currentCellChanged.connect(self._selected)

        box = QGroupBox("Set a budget")
        form = QFormLayout(box)
        self.scope = QComboBox()
        self.scope.setEditable(True)
        self.scope.lineEdit().setPlaceholderText("global, project:NAME or agent:NAME")
        self.period = _combo(PERIODS)
        self.tokens = _line("no token limit")
        self.usd = _line("no dollar limit")
        self.warn = _line("75, 90")
        self.action = _combo(ACTIONS)
        form.addRow("Scope", self.scope)
        form.addRow("Period", self.period)
        form.addRow("Tokens", self.tokens)
        form.addRow("USD", self.usd)
        form.addRow("Warn at %", self.warn)
        form.addRow("At 100 %", self.action)
        self.save_button = QPushButton("Save budget")
        self.save_button.clicked.connect(self.save)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove)
        self.remove_button.setEnabled(False)
        form.addRow(_ends(self.remove_button, self.save_button))
        _stack(self.body, self.table, box)

    def load(self) -> None:
        self.start(self._fetch())

    async def _fetch(self) -> None:
        budgets, projects = await asyncio.gather(
            self.bridge.request("GET", "/api/v1/budgets"),
            self.bridge.request("GET", "/api/v1/projects"),
        )
        scope = self.scope.currentText() or "global"
        self.scope.clear()
        self.scope.addItems(["global", *(f"project:{p['name']}" for p in projects)])
        self.scope.setEditText(scope)
        self.budgets = budgets
        self.table.blockSignals(True)
        self.table.setRowCount(len(budgets))
        for row, b in enumerate(budgets):
            cells = [
                b["scope"], PERIODS.get(b["period"], b["period"]), _number(b["limit_tokens"]),
                _number(b["limit_usd"]), ", ".join(_number(w) for w in b["warn"]),
                ACTIONS.get(b["action"], b["action"]), f"{b['percent']:.0f} %",
            ]  # fmt: skip
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.clearSelection()
        self.table.setCurrentCell(-1, -1)
        self.table.blockSignals(False)
        self.remove_button.setEnabled(False)

    def _selected(self, row: int, *_: int) -> None:
        self.remove_button.setEnabled(0 <= row < len(self.budgets))
        if not 0 <= row < len(self.budgets):
            return
        b = self.budgets[row]
        self.scope.setEditText(b["scope"])
        _choose(self.period, b["period"])
        self.tokens.setText(_number(b["limit_tokens"]))
        self.usd.setText(_number(b["limit_usd"]))
        self.warn.setText(", ".join(_number(w) for w in b["warn"]))
        _choose(self.action, b["action"])

    def select(self, scope: str, period: str) -> None:
        for row, b in enumerate(self.budgets):
            if (b["scope"], b["period"]) == (scope, period):
                self.table.selectRow(row)
                self.table.setCurrentCell(row, 0)

    def save(self) -> None:
        self.start(self._save())

    async def _save(self) -> None:
        scope = self.scope.currentText().strip()
        body: Json = {
            "scope": scope,
            "period": self.period.currentData(),
            "limit_tokens": _whole(self.tokens.text(), "Tokens"),
            "limit_usd": _amount(self.usd.text(), "USD"),
            "action": self.action.currentData(),
        }
        if self.warn.text().strip():
            body["warn"] = [_amount(w, "Warn at %") for w in re.split(r"[,\s]+", self.warn.text())
                            if w]  # fmt: skip
        await self.bridge.request("PUT", "/api/v1/budgets", body)
        self.say(f"Saved the {body['period']} budget of {scope}.")
        await self._fetch()

    def remove(self) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self.budgets):
            b = self.budgets[row]
            self.start(self._remove(b["scope"], b["period"]))

    async def _remove(self, scope: str, period: str) -> None:
        await self.bridge.request("DELETE", f"/api/v1/budgets/{quote(scope, safe=':')}/{period}")
        self.say(f"Removed the {period} budget of {scope}.")
        await self._fetch()


def _whole(text: str, what: str) -> int | None:
    text = text.strip().replace(",", "").replace("_", "")
    if not text:
        return None
    if not text.isdigit():
        raise FormError(f"{what} must be a whole number, e.g. 400000.")
    return int(text)


def _amount(text: str, what: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise FormError(f"{what} must be a number, e.g. 12.50.") from None


# --- Profiles ------------------------------------------------------------------------------
RESTARTS = {"never": "Never", "on-failure": "When it fails", "always": "Always"}


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
        self.name = _line("e.g. claude-fast")
        self.description = _line("optional")
        self.command = _arguments("{binary}\n--model\nsonnet", 110)
        self.batch = _arguments("{binary}\n-p\n--\n{prompt}  (optional: runs with a prompt)", 80)
        command_hint = QLabel(TEMPLATE_HINT)
        command_hint.setWordWrap(True)
        self.binaries = _line("e.g. claude, or a full path (comma-separated, tried in order)")
        self.setup_files = _line("e.g. .env, .env.* (copied into its worktree)")
        self.worktree = QCheckBox("Each run gets its own git worktree and branch")
        self.restart = _combo(RESTARTS)
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
        form.addRow("Environment", self.env)
        self.add_button = QPushButton("Add profile")
        self.add_button.clicked.connect(self.add)
        form.addRow(_ends(self.delete_button, self.add_button))
        _stack(self.body, self.list, box)

    def load(self) -> None:
        self.start(self._fetch())

    async def _fetch(self, select: str | None = None) -> None:
        rows = await self.bridge.request("GET", "/api/v1/profiles")
        self.profiles = {row["name"]: row for row in rows}
        self.list.blockSignals(True)
        self.list.clear()
        for row in rows:
            marker = "  (built in)" if row["builtin"] else ""
            item = QListWidgetItem(f"{row['name']}{marker}  ·  {' '.join(row['command'])}")
            item.setData(Qt.ItemDataRole.UserRole, row["name"])
            self.list.addItem(item)
            if row["name"] == select:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
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
        _choose(self.restart, profile["restart"])
        self.env.setPlainText("\n".join(f"{k}={v}" for k, v in profile["env"].items()))

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
        source = self.selected()
        if source is not None:
            body["copy_of"] = source["name"]  # what the form doesn't show comes from there
        await self.bridge.request("POST", "/api/v1/profiles", body)
        self.say(f"Added profile {name}.")
        await self._fetch(select=name)

    def delete(self) -> None:
        profile = self.selected()
        if profile is not None and not profile["builtin"]:
            self.start(self._delete(profile["name"]))

    async def _delete(self, name: str) -> None:
        await self.bridge.request("DELETE", f"/api/v1/profiles/{quote(name)}")
        self.say(f"Deleted profile {name}.")
        self.name.clear()
        await self._fetch()


# --- General -------------------------------------------------------------------------------
class GeneralPage(Page):
    """This app's own preferences: start at login, and the theme its icon follows."""

    theme_changed = Signal(str)

    def __init__(
        self,
        bridge: Bridge,
        prefs: QSettings,
        login: autostart.Location | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(bridge, parent)
        self.prefs = prefs
        self.login = login
        self.at_login = QCheckBox("Start Stratavore when I log in")
        self.at_login.toggled.connect(self._login_toggled)
        self.theme = _combo(THEMES)
        self.theme.currentIndexChanged.connect(self._theme_chosen)
        form = QFormLayout(self.body)
        form.addRow(self.at_login)
        form.addRow("Icon theme", self.theme)
        note = QLabel("The tray icon is drawn for a light or a dark panel; the windows follow "
                      "the system's theme.")  # fmt: skip
        note.setWordWrap(True)
        form.addRow(note)

    def load(self) -> None:
        self.at_login.blockSignals(True)
        self.at_login.setChecked(autostart.enabled(self.login))
        self.at_login.blockSignals(False)
        self.theme.blockSignals(True)
        _choose(self.theme, theme(self.prefs))
        self.theme.blockSignals(False)

    def _login_toggled(self, on: bool) -> None:
        try:
            if on:
                autostart.enable(where=self.login)
            else:
                autostart.disable(self.login)
        except OSError as exc:
            self.say(f"Could not change how Stratavore starts: {exc}", error=True)
            self.load()
            return
        self.say("Stratavore starts when you log in." if on else "Stratavore no longer "
                 "starts when you log in.")  # fmt: skip

    def _theme_chosen(self) -> None:
        value = self.theme.currentData()
        self.prefs.setValue(THEME_KEY, value)
        self.prefs.sync()
        self.theme_changed.emit(value)


# --- the dialog ----------------------------------------------------------------------------
class SettingsDialog(QDialog):
    """Stratavore's settings, one tab per subject; each tab reads afresh when shown."""

    theme_changed = Signal(str)  # the icon theme: system | light | dark

    def __init__(
        self,
        bridge: Bridge,
        parent: QWidget | None = None,
        prefs: QSettings | None = None,
        login: autostart.Location | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Stratavore settings")
        self.bridge = bridge
        self.channels = ChannelsPage(bridge)
        self.intervals = IntervalsPage(bridge)
        self.budgets = BudgetsPage(bridge)
        self.profiles = ProfilesPage(bridge)
        self.general = GeneralPage(bridge, prefs if prefs is not None else preferences(), login)
        self.general.theme_changed.connect(self.theme_changed)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.channels, "Notifications")
        self.tabs.addTab(self.intervals, "Intervals")
        self.tabs.addTab(self.budgets, "Budgets")
        self.tabs.addTab(self.profiles, "Profiles")
        self.tabs.addTab(self.general, "General")
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(close)
        self.resize(640, 600)

    @property
    def pages(self) -> list[Page]:
        return [self.channels, self.intervals, self.budgets, self.profiles, self.general]

    @property
    def busy(self) -> bool:
        return any(page.busy for page in self.pages)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        for page in self.pages:
            page.load()
