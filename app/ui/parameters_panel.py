"""The Parameters view: ``net.collect_params()`` as a table.

One row per parameter (each shared parameter once, as Gluon collects it): the full Gluon name,
the shape with its 0s for a dimension not known yet, dtype, state, the *effective* initializer
and where it came from, and the layers that share it. The Initializer cell's tooltip explains
the precedence, which answers "why is my bias still 0 after MyInit?" on screen.
"""

from __future__ import annotations

import re

import numpy as np
from PySide6.QtCore import (QAbstractTableModel, QItemSelectionModel, QModelIndex,
                            QSortFilterProxyModel, Qt)
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QTableView, QVBoxLayout,
                               QWidget)

from app.document import DocumentError

try:
    from app.ui.style import ERROR_COLOR, is_dark
except ImportError:                     # pragma: no cover
    ERROR_COLOR = "#d64545"

    def is_dark(palette=None):
        return False

__all__ = ["ParametersPanel", "ParametersModel", "choice_title", "precedence_text",
           "state_color", "COLUMNS"]

COLUMNS = ("Name", "Shape", "DType", "State", "Initializer", "Source", "Shared by")
NAME, SHAPE, DTYPE, STATE, INIT, SOURCE, SHARED = range(len(COLUMNS))

# Readable on the light and on the dark palette (see app/ui/style.py).
_STATE_COLORS = {
    "initialized": ("#1e7f3c", "#5cc27a"),
    "deferred": ("#a86a00", "#e0a63a"),
    "uninitialized": ("#6b7079", "#9aa0a8"),
}


def state_color(state: str, dark: bool | None = None) -> QColor:  # noqa: FBT001
    """The colour a parameter state is shown in (green, amber, grey)."""
    if dark is None:
        dark = is_dark()
    light_c, dark_c = _STATE_COLORS.get(state, _STATE_COLORS["uninitialized"])
    return QColor(dark_c if dark else light_c)


def choice_title(doc, choice) -> str:
    """``MyInit`` / ``Uniform(scale=0.07)``: the initializer's class (or plugin name) with the
    settings that differ from its defaults."""
    if choice is None:
        return "—"
    info = None
    if doc.host is not None:
        info = doc.host.initializers.get(choice.name)
    if info is None:
        return choice.describe()
    title = info.cls.__name__
    defaults = info.defaults()
    changed = {k: v for k, v in choice.settings.items() if defaults.get(k, object()) != v}
    if changed:
        title += "(" + ", ".join(f"{k}={v!r}" for k, v in changed.items()) + ")"
    return title


def precedence_text(doc, row) -> str:
    """Why ``row``'s parameter gets the initializer it gets, in Gluon's terms."""
    glob = choice_title(doc, doc.global_init)
    try:
        spec = doc.layer(row.owner)
        owner = doc.layer_title(row.owner)
    except DocumentError:
        spec, owner = None, row.owner
    keyword = f"{row.role}_initializer"
    rule = ("Precedence (Gluon's): the parameter's own initializer, then the layer's default "
            f"(such as {keyword}='zeros'), then the layer's choice, then the global one.")
    if row.init_source == "missing":
        return f"{row.missing}\n\n{rule}"
    if row.init_source == "parameter":
        text = (f"{row.init} was chosen for this parameter; a parameter's own initializer wins "
                f"over its layer's default, the layer's choice and the global {glob}.")
    elif row.init_source == "layer default":
        over = f"the global {glob}"
        if spec is not None and spec.init is not None:
            over = f"layer {owner}'s {choice_title(doc, spec.init)} and " + over
        text = f"{keyword}='{row.init}' set by the layer wins over {over}: Gluon's precedence."
    elif row.init_source == "layer":
        text = (f"{row.init} was chosen for layer {owner}; it wins over the global {glob} "
                "because the parameter has no initializer of its own.")
    else:
        text = (f"The global {glob}: neither the parameter nor layer {owner} sets an "
                "initializer of its own.")
    return f"{text}\n\n{rule}"


def _natural_key(text: str):
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text)]


class ParametersModel(QAbstractTableModel):
    """Rows of :meth:`Document.param_rows` for the table."""

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self._wb = workbench
        self._rows = []
        self._order = {}
        self.reload()

    # --------------------------------------------------------------- data
    def reload(self) -> None:
        self.beginResetModel()
        try:
            self._rows = list(self._wb.doc.param_rows())
        except Exception:  # noqa: BLE001 - a half-built document shows an empty table
            self._rows = []
        self._order = {r.name: i for i, r in enumerate(self._rows)}
        self.endResetModel()

    def rows(self):
        return list(self._rows)

    def row_at(self, i: int):
        return self._rows[i]

    def row_of(self, name: str) -> int:
        return self._order.get(name, -1)

    def _shared_by(self, r) -> str:
        if len(r.used_by) < 2:
            return ""
        doc = self._wb.doc
        out = []
        for uid in r.used_by:
            try:
                title = doc.layer_title(uid)
            except DocumentError:
                title = uid
            link = doc.link_of(uid)
            if link is not None and link.kind == "tie" and uid != r.owner:
                title += " (transposed)"
            out.append(title)
        return ", ".join(out)

    def sort_key(self, row: int, column: int):
        r = self._rows[row]
        if column == NAME:
            return (self._order.get(r.name, 0),)
        if column == SHAPE:
            return (int(np.prod(r.shape)) if r.shape else 0, tuple(r.shape or ()))
        if column == STATE:
            return ({"uninitialized": 0, "deferred": 1, "initialized": 2}.get(r.state, 3),)
        if column == SHARED:
            return (-len(r.used_by), self._order.get(r.name, 0))
        return (_natural_key(str(self._text(r, column))), self._order.get(r.name, 0))

    def _text(self, r, column):
        if column == NAME:
            return r.name
        if column == SHAPE:
            return str(tuple(r.shape)) if r.shape is not None else "?"
        if column == DTYPE:
            return r.dtype
        if column == STATE:
            return r.state
        if column == INIT:
            return r.init
        if column == SOURCE:
            return r.init_source
        if column == SHARED:
            return self._shared_by(r)
        return ""

    # --------------------------------------------------------------- Qt overrides
    def rowCount(self, parent=QModelIndex()):  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()):  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                return _HEADER_TIPS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        r = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(r, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col in (INIT, SOURCE):
                return precedence_text(self._wb.doc, r)
            if col == STATE:
                return _STATE_TIPS.get(r.state, r.state)
            if col == SHAPE and r.shape and 0 in tuple(r.shape):
                return ("0 marks a dimension not known yet: Gluon infers it at the first "
                        "forward pass (deferred initialization).")
            if col == SHARED and len(r.used_by) > 1:
                return f"One parameter, used by {len(r.used_by)} layers: {self._shared_by(r)}"
            return self._text(r, col) or None
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == STATE:
                return state_color(r.state)
            if col == SOURCE and r.init_source == "missing":
                return QColor(ERROR_COLOR)
            if col == INIT and r.init_source == "missing":
                return QColor(ERROR_COLOR)
        if role == Qt.ItemDataRole.FontRole:
            if col == STATE or (col == SOURCE and r.init_source == "missing"):
                font = QFont()
                font.setBold(r.state == "initialized" or col == SOURCE)
                return font
            if col in (SHAPE, DTYPE):
                font = QFont("monospace")
                font.setStyleHint(QFont.StyleHint.Monospace)
                return font
        if role == Qt.ItemDataRole.UserRole:
            return r.name
        return None


_HEADER_TIPS = (
    "The parameter's full Gluon name (prefix of its block + role)",
    "Its shape; 0 = a dimension Gluon infers at the first forward pass",
    "Its data type",
    "uninitialized → deferred (initialize called, shape not known yet) → initialized",
    "The initializer that fills (or filled) it",
    "Where that initializer comes from: 'parameter' (explicit), 'layer default' (e.g. "
    "bias_initializer='zeros'), 'layer', 'global', or 'missing' (plugin not available)",
    "The layers that use this one parameter (shared or tied)",
)
_STATE_TIPS = {
    "uninitialized": "No values yet: initialize the network.",
    "deferred": "initialize() was called but the shape is not complete: the first forward "
                "pass infers it and fills the values.",
    "initialized": "Has values.",
}


class _SortProxy(QSortFilterProxyModel):
    def lessThan(self, left, right):  # noqa: N802 - Qt override
        src = self.sourceModel()
        return src.sort_key(left.row(), left.column()) < src.sort_key(right.row(), right.column())


class ParametersPanel(QWidget):
    """The ``collect_params()`` table (``parametersTable``) with a one-line summary."""

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.setObjectName("parametersPanel")
        self._wb = workbench
        self._syncing = False

        self.model = ParametersModel(workbench, self)
        self.proxy = _SortProxy(self)
        self.proxy.setSourceModel(self.model)

        self.summary = QLabel()
        self.summary.setObjectName("parametersSummary")
        self.summary.setProperty("role", "hint")
        self.summary.setWordWrap(True)

        self.table = QTableView()
        self.table.setObjectName("parametersTable")
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(
            self.table.fontMetrics().height() + 10)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.proxy.sort(-1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.summary)
        layout.addWidget(self.table)

        self._refresh()

        workbench.changed.connect(self._on_document_changed)
        workbench.selection_changed.connect(self._on_selection_changed)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        self.table.doubleClicked.connect(self._on_row_double_clicked)

    # --------------------------------------------------------------- public
    def row_names(self) -> list[str]:
        """Parameter names in the order the table shows them."""
        return [self.proxy.index(i, NAME).data(Qt.ItemDataRole.UserRole)
                for i in range(self.proxy.rowCount())]

    def cell(self, name: str, column: str, role=Qt.ItemDataRole.DisplayRole):
        """What the table shows in ``column`` (a header text) for parameter ``name``."""
        row = self.model.row_of(name)
        if row < 0:
            raise KeyError(name)
        src = self.model.index(row, COLUMNS.index(column))
        return self.proxy.mapFromSource(src).data(role)

    def view_row(self, name: str) -> int:
        """The row parameter ``name`` is shown in (after sorting), or -1."""
        row = self.model.row_of(name)
        if row < 0:
            return -1
        return self.proxy.mapFromSource(self.model.index(row, 0)).row()

    # --------------------------------------------------------------- internals
    def _refresh(self) -> None:
        self._syncing = True
        try:
            self.model.reload()
            self._resize_columns()
            self._update_summary()
            self._select_from_workbench()
        finally:
            self._syncing = False

    def _resize_columns(self) -> None:
        fm = self.table.fontMetrics()
        for col in range(len(COLUMNS) - 1):
            self.table.resizeColumnToContents(col)
            width = self.table.columnWidth(col)
            self.table.setColumnWidth(col, min(max(width + 8, fm.horizontalAdvance(
                COLUMNS[col]) + 28), 360))

    def _update_summary(self) -> None:
        rows = self.model.rows()
        if not rows:
            self.summary.setText("No parameters: add a Dense, BatchNorm, LayerNorm or "
                                 "Embedding layer.")
            return
        count = {s: sum(r.state == s for r in rows) for s in ("initialized", "deferred",
                                                              "uninitialized")}
        known = sum(int(np.prod(r.shape)) for r in rows if r.state == "initialized")
        parts = [f"{len(rows)} parameter{'s' if len(rows) != 1 else ''}"]
        parts += [f"{n} {s}" for s, n in count.items() if n]
        text = " · ".join(parts)
        if known:
            text += f" · {known:,} values"
        self.summary.setText(text)

    def _select_from_workbench(self) -> None:
        sel = self._wb.selection
        smodel = self.table.selectionModel()
        if sel and sel[0] == "param":
            row = self.view_row(sel[1])
            if row >= 0:
                smodel.select(self.proxy.index(row, 0),
                              QItemSelectionModel.SelectionFlag.ClearAndSelect |
                              QItemSelectionModel.SelectionFlag.Rows)
                smodel.setCurrentIndex(self.proxy.index(row, 0),
                                       QItemSelectionModel.SelectionFlag.NoUpdate)
                self.table.scrollTo(self.proxy.index(row, 0))
                return
        smodel.clearSelection()

    def _on_document_changed(self, _what: str) -> None:
        self._refresh()

    def _on_selection_changed(self, _selection) -> None:
        self._syncing = True
        try:
            self._select_from_workbench()
        finally:
            self._syncing = False

    def _on_table_selection_changed(self, *_args) -> None:
        if self._syncing:
            return
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self._wb.select(("param", rows[0].data(Qt.ItemDataRole.UserRole)))

    def _on_row_double_clicked(self, index) -> None:
        src = self.proxy.mapToSource(index)
        if src.isValid():
            self._wb.select(("layer", self.model.row_at(src.row()).owner))
