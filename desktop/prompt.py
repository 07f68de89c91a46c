"""The prompt of a background (batch) run, asked for in a small dialog before the launch."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from desktop.bridge import spawn


class PromptDialog(QDialog):
    """A multi-line prompt and, for a new run, whether it gets its own git worktree.

    ``chosen(prompt, worktree)``: the user confirmed (Cancel emits nothing). The launch button
    stays disabled while the prompt is blank: a batch run without one has nothing to do.
    """

    chosen = Signal(str, bool)

    def __init__(
        self, what: str, worktree: bool | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Stratavore: {what}")
        self.resize(520, 320)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("What should the agent do? It runs in the background.")
        self.worktree = QCheckBox("In a new worktree (its own git branch)")
        self.worktree.setChecked(bool(worktree))
        self.worktree.setVisible(worktree is not None)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.launch_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.launch_button.setText("Launch")
        self.launch_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Prompt for {what}:"))
        layout.addWidget(self.text)
        layout.addWidget(self.worktree)
        layout.addWidget(self.buttons)
        self.text.textChanged.connect(
            lambda: self.launch_button.setEnabled(bool(self.text.toPlainText().strip()))
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.accepted.connect(
            lambda: self.chosen.emit(self.text.toPlainText(), self.worktree.isChecked())
        )


def ask_prompt(
    what: str,
    then: Callable[[str, bool], Coroutine[Any, Any, Any]],
    worktree: bool | None = None,
    parent: QWidget | None = None,
) -> PromptDialog:
    """Show a :class:`PromptDialog` (``worktree``: the checkbox's default; None hides it) that
    runs ``then(prompt, worktree)`` on the loop when confirmed. The caller keeps the dialog
    referenced while it is open."""
    dialog = PromptDialog(what, worktree, parent)
    dialog.chosen.connect(lambda prompt, tree: spawn(then(prompt, tree)))
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog
