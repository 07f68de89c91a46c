"""The Intervals page: the supervisor's numeric settings, a spin box each."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.bridge import Bridge, Json
from desktop.settings.page import Page, number_text

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
        rows = await self.bridge.settings()
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
        text = f"default {number_text(row['default'])}; {when}"
        if row["value"] != value:
            text += f" (now {number_text(row['value'])})"
        self.hints[key].setText(text)

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
            row = await self.bridge.set_setting(key, value)
            self._show(row)
            if row["applies"] != "now":
                later.append(key)
        text = f"Saved {', '.join(changes)}."
        if later:
            text += f" {', '.join(later)} applies when the supervisor next starts."
        self.say(text)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
