"""An empty table says what to do next, and the sentence goes once a row comes (offscreen)."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QTableView

from desktop import empty
from desktop.empty import EmptyState


def test_an_empty_table_says_what_to_do_next_until_a_row_comes(qapp: Any) -> None:
    model = QStandardItemModel(0, 2)
    view = QTableView()
    view.setModel(model)
    view.resize(600, 300)
    view.show()
    state = EmptyState(view, empty.RUNNERS)
    assert state.label.isVisible()
    assert "Quick launch" in state.label.text() and "stratavore launch" in state.label.text()
    assert view.viewport().rect().contains(state.label.geometry())

    model.appendRow([QStandardItem("7"), QStandardItem("api")])
    assert not state.label.isVisible()
    model.removeRows(0, 1)
    assert state.label.isVisible()
    view.close()


def test_every_empty_state_names_a_next_step() -> None:
    for text in (empty.RUNNERS, empty.SESSIONS, empty.EVENTS, empty.DEAD_LETTERS):
        assert text.endswith(".") and len(text) < 200
