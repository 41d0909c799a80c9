"""The Log: the engine's warnings and errors in Gluon's words, plugin failures, everything
timestamped.

Shows every entry of ``doc.log_entries`` and each new one from ``workbench.logged``; on a new
document it reloads from that document's entries. Entries with details (a traceback) have a
"Details…" button (or a double-click) that opens them in a dialog. A level filter (info, warning,
error toggles with counts) and Clear (hides what is there now; the document keeps its log).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHBoxLayout,
                               QHeaderView, QLabel, QPlainTextEdit, QPushButton, QStyle,
                               QToolButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

try:
    from app.ui.style import ERROR_COLOR, WARNING_COLOR
except ImportError:                     # pragma: no cover
    ERROR_COLOR, WARNING_COLOR = "#d64545", "#c98a00"

__all__ = ["LogPanel", "LogDetailsDialog", "LEVELS"]

LEVELS = ("info", "warning", "error")
_ICONS = {"info": QStyle.StandardPixmap.SP_MessageBoxInformation,
          "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
          "error": QStyle.StandardPixmap.SP_MessageBoxCritical}
_ENTRY = Qt.ItemDataRole.UserRole


def _timestamp(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


class LogDetailsDialog(QDialog):
    """The full message and details (a traceback) of one log entry."""

    def __init__(self, entry, parent=None):
        super().__init__(parent)
        self.setObjectName("logDetailsDialog")
        self.setWindowTitle(f"{entry.level.capitalize()} at {_timestamp(entry.time)}")
        self.resize(640, 420)
        message = QLabel(entry.message)
        message.setObjectName("logDetailsMessage")
        message.setWordWrap(True)
        message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text = QPlainTextEdit(entry.details)
        self.text.setObjectName("logDetailsText")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.setObjectName("logDetailsCopy")
        layout = QVBoxLayout(self)
        layout.addWidget(message)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        if not entry.details:               # a long message without a traceback
            self.text.hide()
            layout.addStretch(1)
            self.resize(560, 200)
        self._entry = entry
        buttons.rejected.connect(self.reject)
        copy.clicked.connect(self._on_copy_clicked)

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(f"{self._entry.message}\n\n{self._entry.details}")


class LogPanel(QWidget):
    """The log view (``logView``) with level toggles, Details… and Clear."""

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.setObjectName("logPanel")
        self._wb = workbench
        self._cleared_before = None         # entries up to this time are hidden (Clear)
        self._entries: list = []
        self.details_dialog: LogDetailsDialog | None = None

        self.view = QTreeWidget()
        self.view.setObjectName("logView")
        self.view.setColumnCount(2)
        self.view.setHeaderHidden(True)
        self.view.setRootIsDecorated(False)
        # one line per entry (the whole message is its tooltip and in Details…): Qt does not
        # re-measure wrapped rows when the column width changes, and they overlapped
        self.view.setUniformRowHeights(True)
        self.view.setWordWrap(False)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setIconSize(QSize(16, 16))
        header = self.view.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)

        self.filters: dict[str, QToolButton] = {}
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.setSpacing(4)
        for level in LEVELS:
            b = QToolButton()
            b.setObjectName(f"logFilter{level.capitalize()}")
            b.setCheckable(True)
            b.setChecked(True)
            b.setIcon(self._icon(level))
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            b.setToolTip(f"Show {level} entries")
            b.setAutoRaise(True)
            self.filters[level] = b
            bar.addWidget(b)
        bar.addStretch(1)
        self.details_button = QPushButton("Details…")
        self.details_button.setObjectName("logDetails")
        self.details_button.setToolTip("Show the traceback / details of the selected entry")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("logClear")
        self.clear_button.setToolTip("Clear the view (new entries still appear)")
        bar.addWidget(self.details_button)
        bar.addWidget(self.clear_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(bar)
        layout.addWidget(self.view)

        self._reload()

        workbench.logged.connect(self._on_entry_logged)
        workbench.changed.connect(self._on_document_changed)
        for b in self.filters.values():
            b.toggled.connect(self._on_filter_changed)
        self.details_button.clicked.connect(self._on_details_clicked)
        self.clear_button.clicked.connect(self._on_clear_clicked)
        self.view.itemDoubleClicked.connect(self._on_item_double_clicked)
        self.view.currentItemChanged.connect(self._on_current_changed)

    # ----------------------------------------------------------------- public
    def entries(self) -> list:
        """The entries the view holds (after Clear), shown or filtered out."""
        return list(self._entries)

    def visible_messages(self) -> list[str]:
        """The messages shown, top to bottom."""
        out = []
        for i in range(self.view.topLevelItemCount()):
            item = self.view.topLevelItem(i)
            if not item.isHidden():
                out.append(item.data(0, _ENTRY).message)
        return out

    def show_details(self, entry) -> LogDetailsDialog:
        """Open the details dialog for ``entry`` (non-blocking) and return it."""
        if self.details_dialog is not None:
            self.details_dialog.close()
        self.details_dialog = LogDetailsDialog(entry, self)
        self.details_dialog.setModal(False)
        self.details_dialog.show()
        return self.details_dialog

    # ----------------------------------------------------------------- internals
    def _icon(self, level):
        return self.style().standardIcon(_ICONS[level])

    def _reload(self) -> None:
        self.view.clear()
        self._entries = []
        for entry in list(self._wb.doc.log_entries):
            self._append(entry, scroll=False)
        self._update_counts()
        self._update_details_button()
        self.view.scrollToBottom()

    def _append(self, entry, scroll=True) -> None:  # noqa: FBT002
        if self._cleared_before is not None and entry.time <= self._cleared_before:
            return
        self._entries.append(entry)
        item = QTreeWidgetItem([_timestamp(entry.time), entry.message])
        item.setData(0, _ENTRY, entry)
        item.setIcon(0, self._icon(entry.level) if entry.level in _ICONS else self._icon("info"))
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        item.setFont(0, mono)
        item.setForeground(0, self.palette().placeholderText())
        tip = entry.message + ("\n\nDouble-click for details." if entry.details else
                               "\n\nDouble-click to see the whole message.")
        item.setToolTip(1, tip)
        if entry.level == "error":
            item.setForeground(1, QColor(ERROR_COLOR))
        elif entry.level == "warning":
            item.setForeground(1, QColor(WARNING_COLOR))
        if entry.details:
            item.setText(1, entry.message + "   [details…]")
        item.setTextAlignment(0, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        item.setTextAlignment(1, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.view.addTopLevelItem(item)
        item.setHidden(not self.filters[entry.level if entry.level in LEVELS
                                        else "info"].isChecked())
        # Keep the view bounded like the document's log.
        while self.view.topLevelItemCount() > 2000:
            self.view.takeTopLevelItem(0)
            self._entries.pop(0)
        if scroll:
            bar = self.view.verticalScrollBar()
            if bar.value() >= bar.maximum() - 4:
                self.view.scrollToItem(item)

    def _update_counts(self) -> None:
        for level, b in self.filters.items():
            n = sum(1 for e in self._entries if e.level == level)
            b.setText(f"{n}")
            b.setToolTip(f"{'Hide' if b.isChecked() else 'Show'} {level} entries ({n})")

    def _current_entry(self):
        item = self.view.currentItem()
        return None if item is None else item.data(0, _ENTRY)

    def _update_details_button(self) -> None:
        entry = self._current_entry()
        self.details_button.setEnabled(entry is not None)

    def _on_entry_logged(self, entry) -> None:
        self._append(entry)
        self._update_counts()

    def _on_document_changed(self, what: str) -> None:
        if what == "document":
            self._cleared_before = None
            self._reload()

    def _on_filter_changed(self, _checked=None) -> None:
        for i in range(self.view.topLevelItemCount()):
            item = self.view.topLevelItem(i)
            level = item.data(0, _ENTRY).level
            item.setHidden(not self.filters.get(level, self.filters["info"]).isChecked())
        self._update_counts()

    def _on_clear_clicked(self) -> None:
        entries = self._wb.doc.log_entries
        self._cleared_before = entries[-1].time if entries else time.time()
        self.view.clear()
        self._entries = []
        self._update_counts()
        self._update_details_button()

    def _on_details_clicked(self) -> None:
        entry = self._current_entry()
        if entry is not None:
            self.show_details(entry)

    def _on_item_double_clicked(self, item, _column) -> None:
        entry = item.data(0, _ENTRY)
        if entry is not None:
            self.show_details(entry)        # the whole message, and the traceback if any

    def _on_current_changed(self, *_args) -> None:
        self._update_details_button()
