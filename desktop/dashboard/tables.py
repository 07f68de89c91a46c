"""The dashboard's tables: a sortable, read-only view of a model, and its selected rows."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from desktop.bridge import Json
from desktop.models import KeyedTableModel, sorted_proxy


def table_view(model: KeyedTableModel, sort_column: int, order: Qt.SortOrder) -> QTableView:
    """A sortable, read-only table of ``model`` (whole rows selected), sorted by
    ``sort_column``; its columns fit the first rows shown, then are the user's."""
    view = QTableView()
    view.setModel(sorted_proxy(model, view))
    view.setSortingEnabled(True)
    view.sortByColumn(sort_column, order)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.verticalHeader().setVisible(False)
    view.horizontalHeader().setStretchLastSection(True)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)

    def fit_once() -> None:
        """Size the columns to the first rows shown; after that they are the user's."""
        view.resizeColumnsToContents()  # by the cells: the header's text may need more
        header = view.horizontalHeader()
        for column in range(model.columnCount()):
            view.setColumnWidth(
                column, max(view.columnWidth(column), header.sectionSizeHint(column))
            )
        model.rowsInserted.disconnect(fit_once)

    model.rowsInserted.connect(fit_once)
    return view


def selected_rows(view: QTableView, model: KeyedTableModel) -> list[Json]:
    """The selected rows' JSON, in the view's order."""
    proxy = view.model()
    rows = sorted(view.selectionModel().selectedRows(), key=lambda index: index.row())
    return [model.row_at(proxy.mapToSource(index).row()) for index in rows]
