"""The snapshot timeline: every labelled snapshot of the document, and the A/B pair to compare.

One row per snapshot of ``workbench.doc.history`` (oldest first): two radio columns **A**
(before) and **B** (after) — click a row's ○ in a column to use it — then its number, the
operation that recorded it, the time and the memory it holds of its own (arrays it does not
share with the snapshot before it). By default the pair is the last two snapshots and follows
the history ("Follow latest" is checked); picking A or B by hand pins the choice until "Follow
latest" is checked again, or a pinned snapshot is dropped.
Double-clicking a row compares it with the snapshot before it; with a row selected, the keys A
and B pick it.

Below the list: the memory the history holds against its budget, the budget itself (MiB, applied
with ``history.set_budget`` when the spin box is committed) and, when the budget made the history
drop its oldest snapshots, how many.

``pair_changed(a_id, b_id)`` (ids, or None when there is no snapshot) is emitted whenever the pair
changes; :meth:`pair` returns the two :class:`~app.document.snapshots.Snapshot` objects.
Connect it to a heatmap with ``timeline.pair_changed.connect(heatmap.set_pair)``.

:class:`HistoryLink` is the small adapter both parameter panels use to follow the current
document's history across New/Open (the history's plain-Python signal is isolated so a failing
view never breaks a document operation).
"""

from __future__ import annotations

import time

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (QAbstractItemView, QSizePolicy, QCheckBox, QHBoxLayout, QHeaderView, QLabel,
                               QProgressBar, QSpinBox, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

__all__ = ["TimelinePanel", "HistoryLink", "format_bytes", "MIB"]

MIB = 1 << 20
BUDGET_MIN_MIB = 1
BUDGET_MAX_MIB = 1 << 20        # 1 TiB


def format_bytes(n: int) -> str:
    """``512 B``, ``3.4 KiB``, ``12.0 MiB``, ``1.00 GiB``."""
    n = int(n)
    if n < 1024:
        return f"{n} B"
    if n < MIB:
        return f"{n / 1024:.1f} KiB"
    if n < 1 << 30:
        return f"{n / MIB:.1f} MiB"
    return f"{n / (1 << 30):.2f} GiB"


def _mib_text(n: int) -> str:
    mib = n / MIB
    return f"{mib:.0f} MiB" if mib >= 10 or float(mib).is_integer() else f"{mib:.1f} MiB"


class HistoryLink(QObject):
    """Follows ``workbench.doc.history`` (re-subscribing when the document is replaced) and
    re-emits its plain-Python ``changed`` as a Qt signal."""

    changed = Signal()

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.workbench = workbench
        self._history = None
        self._subscribe()
        workbench.changed.connect(self._on_workbench_changed)
        history_ref = self._unsubscribe
        self.destroyed.connect(lambda *_: history_ref())

    @property
    def history(self):
        return self.workbench.doc.history

    def _subscribe(self):
        self._unsubscribe()
        self._history = self.workbench.doc.history
        self._history.changed.connect(self._on_history_changed)

    def _unsubscribe(self):
        if self._history is not None:
            self._history.changed.disconnect(self._on_history_changed)
            self._history = None

    def _on_workbench_changed(self, what: str):
        if what == "document" or self.workbench.doc.history is not self._history:
            self._subscribe()
            self.changed.emit()

    def _on_history_changed(self):
        # Called from inside a document operation: never let a view's trouble escape into it.
        if not shiboken6.isValid(self):
            if self._history is not None:
                self._history.changed.disconnect(self._on_history_changed)
            return
        self.changed.emit()


class TimelinePanel(QWidget):
    """The snapshots of the current document with the A/B pair picker (see the module doc)."""

    pair_changed = Signal(object, object)

    COL_A, COL_B, COL_ID, COL_LABEL, COL_TIME, COL_MEM = range(6)

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.setObjectName("timelinePanel")
        self.workbench = workbench
        self._link = HistoryLink(workbench, self)
        self._pinned = False
        self._pair_ids: tuple = (None, None)
        self._rows: dict[int, QTreeWidgetItem] = {}
        self._updating = False

        self.list = QTreeWidget(self)
        self.list.setObjectName("timelineList")
        self.list.setColumnCount(6)
        self.list.setHeaderLabels(["A", "B", "#", "Operation", "Time", "Memory"])
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setAlternatingRowColors(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.list.header()
        header.setStretchLastSection(False)
        for col in (self.COL_A, self.COL_B, self.COL_ID, self.COL_TIME, self.COL_MEM):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(self.COL_LABEL, QHeaderView.ResizeMode.Stretch)
        self.list.headerItem().setToolTip(self.COL_A, "A: the snapshot before (compared from); "
                                          "click a row's ○ (or press A) to pick it")
        self.list.headerItem().setToolTip(self.COL_B, "B: the snapshot after (compared to); "
                                          "click a row's ○ (or press B) to pick it")
        for col in (self.COL_A, self.COL_B):
            self.list.headerItem().setTextAlignment(col, Qt.AlignmentFlag.AlignCenter)
        self.list.installEventFilter(self)
        self.list.headerItem().setToolTip(
            self.COL_MEM, "memory this snapshot holds of its own (arrays that changed since "
                          "the snapshot before it; unchanged arrays are shared)")

        self.pair_label = QLabel(self)
        self.pair_label.setObjectName("timelinePair")
        self.pair_label.setTextFormat(Qt.TextFormat.RichText)
        self.follow = QCheckBox("Follow latest", self)
        self.follow.setObjectName("timelineFollow")
        self.follow.setChecked(True)
        self.follow.setToolTip("Compare the last two snapshots, and move on with every new one. "
                               "Picking A or B by hand unchecks this.")

        self.memory_bar = QProgressBar(self)
        self.memory_bar.setObjectName("timelineMemoryBar")
        self.memory_bar.setRange(0, 1000)
        self.memory_bar.setTextVisible(False)
        self.memory_bar.setMaximumHeight(8)
        self.memory_label = QLabel(self)
        self.memory_label.setObjectName("timelineMemory")
        self.budget = QSpinBox(self)
        self.budget.setObjectName("timelineBudget")
        self.budget.setRange(BUDGET_MIN_MIB, BUDGET_MAX_MIB)
        self.budget.setSuffix(" MiB")
        self.budget.setKeyboardTracking(False)      # apply on Enter / focus out / arrows
        self.budget.setAccelerated(True)
        self.budget.setToolTip("Memory the snapshots may hold. When a new snapshot would "
                               "exceed it, the oldest snapshots are dropped.")
        self.dropped_label = QLabel(self)
        self.dropped_label.setObjectName("timelineDropped")
        self.dropped_label.setProperty("role", "warning")
        self.dropped_label.setWordWrap(True)
        self.empty_label = QLabel("No snapshots yet. Initialize the network, run a forward "
                                  "pass or a step: each one is recorded here.", self)
        self.empty_label.setObjectName("timelineEmpty")
        self.empty_label.setProperty("role", "hint")
        self.empty_label.setWordWrap(True)

        self.pair_label.setWordWrap(True)      # long snapshot labels must not widen the dock
        self.pair_label.setSizePolicy(QSizePolicy.Policy.Ignored,
                                      QSizePolicy.Policy.Preferred)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.pair_label, 1)
        top.addWidget(self.follow)
        self.memory_label.setWordWrap(True)
        self.memory_label.setSizePolicy(QSizePolicy.Policy.Ignored,
                                        QSizePolicy.Policy.Preferred)
        budget_row = QHBoxLayout()
        budget_row.setContentsMargins(0, 0, 0, 0)
        budget_row.addWidget(self.memory_label, 1)
        budget_label = QLabel("Budget:", self)
        budget_label.setBuddy(self.budget)
        budget_row.addWidget(budget_label)
        budget_row.addWidget(self.budget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(5)
        layout.addLayout(top)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.memory_bar)
        layout.addLayout(budget_row)
        layout.addWidget(self.dropped_label)

        self._rebuild()

        self._link.changed.connect(self._on_history_changed)
        self.list.itemClicked.connect(self._on_item_clicked)
        self.follow.toggled.connect(self._on_follow_changed)
        self.budget.valueChanged.connect(self._on_budget_changed)
        self.list.itemDoubleClicked.connect(self._on_item_activated)

    # ----------------------------------------------------------------- public
    @property
    def history(self):
        return self.workbench.doc.history

    def pair(self):
        """(Snapshot A, Snapshot B), or (None, None) when there is no snapshot."""
        a_id, b_id = self._pair_ids
        if a_id is None or b_id is None:
            return None, None
        return self.history.get(a_id), self.history.get(b_id)

    def pair_ids(self) -> tuple:
        return self._pair_ids

    def is_pinned(self) -> bool:
        return self._pinned

    def set_pair(self, a, b, pin: bool = True) -> None:
        """Choose A and B (snapshots or ids); ``pin`` stops following new snapshots."""
        a_id = getattr(a, "id", a)
        b_id = getattr(b, "id", b)
        ids = {s.id for s in self.history.snapshots}
        if a_id not in ids or b_id not in ids:
            raise KeyError(f"no snapshot {a_id if a_id not in ids else b_id} in the history")
        self._pinned = pin
        self._set_follow_box(not pin)
        self._apply_pair((a_id, b_id))

    def memory_summary(self) -> str:
        """``Snapshots: 12.0 MiB of 1024 MiB`` (for a status bar)."""
        h = self.history
        return f"Snapshots: {format_bytes(h.nbytes())} of {_mib_text(h.budget)}"

    def follow_latest(self) -> None:
        """Unpin: compare the last two snapshots from now on."""
        self.follow.setChecked(True)

    # ----------------------------------------------------------------- slots
    def _on_history_changed(self):
        self._rebuild()

    def pick(self, which: str, snap_id: int) -> None:
        """The user's pick of ``which`` ('A' or 'B'): pins the pair."""
        if snap_id not in self._rows:
            return
        a, b = self._pair_ids
        self._pin_and_apply((snap_id, b) if which == "A" else (a, snap_id))

    def _on_item_clicked(self, item, column: int):
        if column in (self.COL_A, self.COL_B):
            self.pick("A" if column == self.COL_A else "B",
                      item.data(self.COL_ID, Qt.ItemDataRole.UserRole))

    def eventFilter(self, obj, event):  # noqa: N802
        if obj is self.list and event.type() == event.Type.KeyPress and \
                event.key() in (Qt.Key.Key_A, Qt.Key.Key_B) and self.list.currentItem():
            snap_id = self.list.currentItem().data(self.COL_ID, Qt.ItemDataRole.UserRole)
            self.pick("A" if event.key() == Qt.Key.Key_A else "B", snap_id)
            return True
        return super().eventFilter(obj, event)

    def _on_follow_changed(self, checked: bool):
        if self._updating:
            return
        self._pinned = not checked
        if checked:
            self._apply_pair(self._default_ids())

    def _on_budget_changed(self, mib: int):
        if self._updating:
            return
        self.history.set_budget(int(mib) * MIB)     # emits changed → _rebuild

    def _on_item_activated(self, item, _column=0):
        snap_id = item.data(self.COL_ID, Qt.ItemDataRole.UserRole)
        ids = [s.id for s in self.history.snapshots]
        if snap_id not in ids:
            return
        i = ids.index(snap_id)
        self._pin_and_apply((ids[max(0, i - 1)], snap_id))

    def changeEvent(self, event):  # noqa: N802
        if event.type() == event.Type.PaletteChange:
            self._rebuild()
        super().changeEvent(event)

    def cell_rect(self, snap_id: int, column: int):
        """The viewport rectangle of a snapshot's cell (tests, scripts)."""
        item = self._rows[snap_id]
        rect = self.list.visualItemRect(item)
        header = self.list.header()
        rect.setLeft(header.sectionViewportPosition(column))
        rect.setWidth(header.sectionSize(column))
        return rect

    # ----------------------------------------------------------------- internals
    def _pin_and_apply(self, ids):
        self._pinned = True
        self._set_follow_box(False)
        self._apply_pair(ids)

    def _set_follow_box(self, checked: bool):
        self._updating = True
        try:
            self.follow.setChecked(checked)
        finally:
            self._updating = False

    def _default_ids(self):
        a, b = self.history.default_pair()
        return (None if a is None else a.id, None if b is None else b.id)

    def _rebuild(self):
        """Re-render the list and the memory figures from the history."""
        history = self.history
        snaps = list(history.snapshots)
        ids = {s.id for s in snaps}
        if self._pinned and all(i in ids for i in self._pair_ids):
            pair = self._pair_ids
        else:
            if self._pinned:
                self._pinned = False        # a pinned snapshot was dropped: follow again
            pair = self._default_ids()
        self._updating = True
        try:
            self.follow.setChecked(not self._pinned)
            self.list.clear()
            self._rows.clear()
            prev = None
            for snap in snaps:
                item = QTreeWidgetItem(self.list)
                item.setText(self.COL_ID, str(snap.id))
                item.setData(self.COL_ID, Qt.ItemDataRole.UserRole, snap.id)
                item.setTextAlignment(self.COL_ID, Qt.AlignmentFlag.AlignRight |
                                      Qt.AlignmentFlag.AlignVCenter)
                item.setText(self.COL_LABEL, snap.label)
                item.setToolTip(self.COL_LABEL, f"#{snap.id} {snap.label}")
                item.setText(self.COL_TIME, time.strftime("%H:%M:%S", time.localtime(snap.time)))
                item.setToolTip(self.COL_TIME, time.strftime("%Y-%m-%d %H:%M:%S",
                                                             time.localtime(snap.time)))
                own = snap.nbytes_own(prev)
                has_arrays = any(r.data is not None or r.grad is not None
                                 for r in snap.params.values())
                item.setText(self.COL_MEM, format_bytes(own) if own else
                             ("shared" if has_arrays else "—"))
                item.setTextAlignment(self.COL_MEM, Qt.AlignmentFlag.AlignRight |
                                      Qt.AlignmentFlag.AlignVCenter)
                for col, letter in ((self.COL_A, "A"), (self.COL_B, "B")):
                    item.setTextAlignment(col, Qt.AlignmentFlag.AlignCenter)
                    item.setToolTip(col, f"use #{snap.id} {snap.label} as {letter}")
                self._rows[snap.id] = item
                prev = snap
            self.empty_label.setVisible(not snaps)
            self.list.setVisible(bool(snaps))
            used, budget = history.nbytes(), history.budget
            self.budget.setValue(max(BUDGET_MIN_MIB, min(BUDGET_MAX_MIB, round(budget / MIB))))
            self.memory_bar.setValue(int(1000 * min(1.0, used / budget)) if budget else 0)
            self.memory_label.setText(
                f"Memory in use: {format_bytes(used)} of {_mib_text(budget)} "
                f"({len(snaps)} snapshot{'s' if len(snaps) != 1 else ''})")
            self.memory_label.setToolTip("arrays shared between snapshots are counted once")
            if history.dropped:
                n = history.dropped
                self.dropped_label.setText(
                    f"{n} older snapshot{'s' if n != 1 else ''} dropped to stay within the "
                    f"budget ({_mib_text(budget)}).")
                self.dropped_label.show()
            else:
                self.dropped_label.hide()
        finally:
            self._updating = False
        self._apply_pair(pair, force_buttons=True)

    def _apply_pair(self, ids, force_buttons: bool = False):
        ids = tuple(ids)
        changed = ids != self._pair_ids
        self._pair_ids = ids
        if changed or force_buttons:
            self._updating = True
            try:
                pal = self.list.palette()
                on = pal.color(QPalette.ColorRole.Highlight)
                off = pal.color(QPalette.ColorRole.PlaceholderText)
                for snap_id, item in self._rows.items():
                    font = item.font(self.COL_LABEL)
                    font.setBold(snap_id in ids)
                    for col in (self.COL_ID, self.COL_LABEL):
                        item.setFont(col, font)
                    for col, chosen in ((self.COL_A, snap_id == ids[0]),
                                        (self.COL_B, snap_id == ids[1])):
                        item.setText(col, "●" if chosen else "○")
                        item.setForeground(col, on if chosen else off)
                        item.setData(col, Qt.ItemDataRole.AccessibleTextRole,
                                     "chosen" if chosen else "not chosen")
                if ids[1] in self._rows:
                    self.list.scrollToItem(self._rows[ids[1]])
            finally:
                self._updating = False
            self._show_pair_label()
        if changed:
            self.pair_changed.emit(*ids)

    def _show_pair_label(self):
        a_id, b_id = self._pair_ids
        if a_id is None:
            self.pair_label.setText("<i>nothing to compare yet</i>")
            return
        try:
            a, b = self.history.get(a_id), self.history.get(b_id)
        except KeyError:
            return
        self.pair_label.setText(f"Comparing <b>A</b> #{a.id} {_esc(a.label)} &nbsp;→&nbsp; "
                                f"<b>B</b> #{b.id} {_esc(b.label)}")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
