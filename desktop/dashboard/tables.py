"""The dashboard's tables: a sortable, read-only view of a model, and its selected rows."""

from __future__ import annotations

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QHeaderView,
    QStyle,
    QTableView,
)

from desktop.bridge import Json
from desktop.models import KeyedTableModel, sorted_proxy

FIT_ROWS = 50  # rows whose texts size the columns
DOT_ROOM = 22  # a state dot and its spacing before a cell's text


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
    corner = view.findChild(QAbstractButton, "qt_tableview_cornerbutton")
    if corner is not None:  # Qt's select-all corner: unnamed, so screen readers say "button"
        corner.setAccessibleName("Select all rows")
    header = view.horizontalHeader()
    header.setAccessibleName("Columns (click one to sort by it)")
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    headers = [column.header for column in model.columns]
    stretch = headers.index(model.stretch) if model.stretch in headers else len(headers) - 1
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    fit(view, model, stretch)

    def fit_once() -> None:
        """Size the columns to the first rows shown; after that they are the user's."""
        fit(view, model, stretch)
        model.rowsInserted.disconnect(fit_once)

    model.rowsInserted.connect(fit_once)
    return view


def fit(view: QTableView, model: KeyedTableModel, stretch: int) -> None:
    """Each column as wide as its widest text among the first :data:`FIT_ROWS` rows, or its
    header, the ``stretch`` one taking what is left (not the last column, whatever it is: a
    narrow number would get it). Measured from the model's texts, not by Qt's
    ``resizeColumnsToContents``, which asks the model for every cell of every row of a view
    not shown yet: for 1,000 runners, 0.9 s of the window's opening (bench/window.py)."""
    header = view.horizontalHeader()
    font = QFont(view.font())
    font.setBold(True)  # rows that need the user are bold
    metrics = QFontMetrics(font)
    margin = 2 * view.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, view)
    padding = margin + 12
    for column in range(model.columnCount()):
        if column == stretch:
            continue
        texts = model.texts(column, FIT_ROWS)
        widest = max((metrics.horizontalAdvance(text) for text in texts), default=0)
        dot = DOT_ROOM if model.columns[column].icon is not None else 0
        view.setColumnWidth(column, max(widest + padding + dot, header.sectionSizeHint(column)))


def selected_rows(view: QTableView, model: KeyedTableModel) -> list[Json]:
    """The selected rows' JSON, in the view's order."""
    proxy = view.model()
    assert isinstance(proxy, QSortFilterProxyModel)  # table_view's: see sorted_proxy
    rows = sorted(view.selectionModel().selectedRows(), key=lambda index: index.row())
    return [model.row_at(proxy.mapToSource(index).row()) for index in rows]
