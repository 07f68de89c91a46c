"""The settings pages' common part: :class:`Page` (a tab that runs its requests on the loop
and shows their refusals), :class:`FormError`, and the small widgets the pages share."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.bridge import Bridge, BridgeError, Json, spawn


class FormError(Exception):
    """A field the dialog can refuse before asking the supervisor: ``str()`` is the sentence."""


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
        finally:
            self._running -= 1
            if not self._running:
                self.body.setEnabled(True)

    def load(self) -> None:
        """Read what the page shows from the supervisor (on showing the dialog)."""


def line_edit(placeholder: str = "") -> QLineEdit:
    edit = QLineEdit()
    edit.setPlaceholderText(placeholder)
    return edit


def ends(left: QWidget, right: QWidget) -> QHBoxLayout:
    """A row with ``left`` at its start and ``right`` at its end (remove ... save)."""
    row = QHBoxLayout()
    row.addWidget(left)
    row.addStretch(1)
    row.addWidget(right)
    return row


def stack(body: QWidget, first: QWidget, *rest: QWidget | QLayout) -> None:
    """``first`` (a list, taking the spare height) over ``rest``, filling ``body``."""
    layout = QVBoxLayout(body)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(first, 1)
    for part in rest:
        if isinstance(part, QLayout):
            layout.addLayout(part)
        else:
            layout.addWidget(part)


def combo_box(choices: dict[str, str]) -> QComboBox:
    """A combo box of ``{value: label}``; ``currentData()`` is the value."""
    combo = QComboBox()
    for value, label in choices.items():
        combo.addItem(label, value)
    return combo


def choose(combo: QComboBox, value: Any) -> None:
    index = combo.findData(value)
    if index >= 0:
        combo.setCurrentIndex(index)


def fill_list(
    widget: QListWidget, rows: list[Json], label: Callable[[Json], str], select: str | None
) -> None:
    """One item per row, ``label(row)`` its text and the row's name its data; the row named
    ``select`` becomes the current one. Signals are blocked meanwhile: the caller shows the
    selection once the list is complete."""
    widget.blockSignals(True)
    widget.clear()
    for row in rows:
        item = QListWidgetItem(label(row))
        item.setData(Qt.ItemDataRole.UserRole, row["name"])
        widget.addItem(item)
        if row["name"] == select:
            widget.setCurrentItem(item)
    widget.blockSignals(False)


def number_text(value: float | int | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)
