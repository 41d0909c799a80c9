"""The Layers panel: the layer stack as a list, with the gestures that edit it.

Each row shows a layer's index, its label (``Dense(4, relu)``), the Gluon name of its block
(``sequential0_dense0``), its sharing link (``shares dense1's parameters`` / ``tied to
dense0ᵀ``) and the shapes flowing in and out (``(3, 5) → (3, 4)``; a layer that cannot take its
input is flagged in red, the reason in its tooltip).

Every gesture — add, remove, duplicate, move (buttons, Ctrl+Up/Ctrl+Down, drag and drop), link,
tie, unlink — goes through :meth:`Workbench.run` as one undo step; the list only re-renders from
the document when ``workbench.changed`` fires. A gesture the document refuses (a link whose
shapes cannot agree...) shows the document's reason under the list, in red.

:class:`LayerGestures` and :func:`ui_colors` are shared with the diagram view.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QMimeData, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (QAction, QColor, QDrag, QFont, QFontMetricsF, QIcon,
                           QPainter, QPainterPath, QPalette, QPen, QPixmap)
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QHBoxLayout, QLabel,
                               QListWidget, QListWidgetItem, QMenu, QSizePolicy, QStyle,
                               QStyledItemDelegate, QStyleOptionViewItem, QToolButton,
                               QVBoxLayout, QWidget)

from app.document import DocumentError
from app.document import layers as L
from app.document.model import NET_PREFIX

__all__ = ["LayersPanel", "LayerGestures", "ui_colors", "short_name", "link_text",
           "LAYER_MIME"]

LAYER_MIME = "application/x-paramlab-layer"
UID_ROLE = Qt.ItemDataRole.UserRole
INFO_ROLE = Qt.ItemDataRole.UserRole + 1


# ======================================================================== shared helpers
def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def blend(a: QColor, b: QColor, t: float) -> QColor:
    """``a`` moved a fraction ``t`` towards ``b``."""
    return QColor.fromRgbF(a.redF() + (b.redF() - a.redF()) * t,
                           a.greenF() + (b.greenF() - a.greenF()) * t,
                           a.blueF() + (b.blueF() - a.blueF()) * t, 1.0)


def ui_colors(palette: QPalette) -> dict:
    """The colours the layer views use, picked to read on the palette (light or dark)."""
    dark = is_dark(palette)
    base = palette.color(QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorRole.Text)
    return {
        "dark": dark,
        "base": base,
        "window": palette.color(QPalette.ColorRole.Window),
        "text": text,
        "muted": blend(text, base, 0.42),
        "faint": blend(text, base, 0.75),
        "highlight": palette.color(QPalette.ColorRole.Highlight),
        "error": QColor("#ff7070") if dark else QColor("#c62828"),
        "share": QColor("#5eb0ff") if dark else QColor("#1565c0"),
        "tie": QColor("#d48cff") if dark else QColor("#8e24aa"),
        "uninitialized": QColor("#9aa0a6") if dark else QColor("#80868b"),
        "deferred": QColor("#f2b13a") if dark else QColor("#d98b00"),
        "initialized": QColor("#4cc38a") if dark else QColor("#2e8b57"),
        "none": blend(text, base, 0.6),
    }


def short_name(doc, uid: str) -> str:
    """The block's Gluon name without the network prefix: ``dense1``."""
    name = doc.block(uid).name
    return name[len(NET_PREFIX):] if name.startswith(NET_PREFIX) else name


def link_text(doc, uid: str) -> str:
    """How layer ``uid`` is linked, in words: ``shares dense1's parameters``,
    ``tied to dense0ᵀ``, ``parameters used by dense2``; '' when it is not linked."""
    ln = doc.link_of(uid)
    if ln is not None:
        other = short_name(doc, ln.dst)
        return f"shares {other}'s parameters" if ln.kind == "share" else f"tied to {other}ᵀ"
    users = [(short_name(doc, x.src), x.kind) for x in doc.links if x.dst == uid]
    if not users:
        return ""
    shared = [n for n, k in users if k == "share"]
    tied = [n for n, k in users if k == "tie"]
    parts = []
    if shared:
        parts.append("parameters shared by " + ", ".join(shared))
    if tied:
        parts.append("weightᵀ used by " + ", ".join(tied))
    return " · ".join(parts)


class LayerGestures:
    """The layer gestures the list and the diagram both offer; each is one undo step through
    :meth:`Workbench.run` and returns its ``(ok, result_or_message)``."""

    def __init__(self, workbench):
        self.wb = workbench

    @property
    def doc(self):
        return self.wb.doc

    def label(self, uid: str) -> str:
        return self.doc.layer(uid).label()

    def add(self, kind: str, after: str | None = None):
        doc = self.doc
        index = None
        if after is not None:
            try:
                index = doc.index(after) + 1
            except DocumentError:
                index = None
        ok, res = self.wb.run(f"Add {kind}", lambda d: d.add_layer(kind, index=index))
        if ok:
            self.wb.select(("layer", res))
        return ok, res

    def remove(self, uid: str):
        doc = self.doc
        i = doc.index(uid)
        ok, res = self.wb.run(f"Remove {self.label(uid)}", lambda d: d.remove_layer(uid))
        if ok:
            layers = self.doc.layers
            self.wb.select(("layer", layers[min(i, len(layers) - 1)].uid) if layers else None)
        return ok, res

    def duplicate(self, uid: str):
        ok, res = self.wb.run(f"Duplicate {self.label(uid)}",
                              lambda d: d.duplicate_layer(uid))
        if ok:
            self.wb.select(("layer", res))
        return ok, res

    def move(self, uid: str, new_index: int, text: str | None = None):
        """Move ``uid`` to position ``new_index``; nothing (no undo step) when it is there."""
        doc = self.doc
        new_index = max(0, min(int(new_index), len(doc.layers) - 1))
        if new_index == doc.index(uid):
            return True, None
        text = text or f"Move {self.label(uid)} to position {new_index}"
        return self.wb.run(text, lambda d: d.move_layer(uid, new_index))

    def step(self, uid: str, delta: int):
        i = self.doc.index(uid)
        word = "up" if delta < 0 else "down"
        if not 0 <= i + delta < len(self.doc.layers):
            return False, f"{self.label(uid)} is already at the {'top' if delta < 0 else 'bottom'}"
        return self.move(uid, i + delta, f"Move {self.label(uid)} {word}")

    def link(self, src: str, dst: str, kind: str = "share"):
        other = short_name(self.doc, dst)
        text = (f"Share {other}'s parameters with {self.label(src)}" if kind == "share"
                else f"Tie {self.label(src)} to {other}ᵀ")
        return self.wb.run(text, lambda d: d.link(src, dst, kind))

    def unlink(self, src: str):
        return self.wb.run(f"Unlink {self.label(src)}", lambda d: d.unlink(src))

    # ------------------------------------------------------------ candidates
    def share_candidates(self, uid: str) -> list[str]:
        """Layers above ``uid`` whose parameters it could take (same kind, owners only)."""
        doc = self.doc
        spec = doc.layer(uid)
        if not L.kind(spec.kind).shareable:
            return []
        i = doc.index(uid)
        return [s.uid for s in doc.layers[:i]
                if s.kind == spec.kind and doc.link_of(s.uid) is None]

    def tie_candidates(self, uid: str) -> list[str]:
        """Dense layers above a Dense ``uid`` whose weight it could apply transposed."""
        doc = self.doc
        spec = doc.layer(uid)
        if not L.kind(spec.kind).tieable:
            return []
        i = doc.index(uid)
        return [s.uid for s in doc.layers[:i]
                if L.kind(s.kind).tieable and doc.link_of(s.uid) is None]

    def fill_link_menu(self, menu: QMenu, uid: str | None, kind: str, on_result) -> None:
        """Fill ``menu`` with one action per layer ``uid`` can link to (``kind`` 'share' or
        'tie'); triggering one links and passes ``(ok, message)`` to ``on_result``."""
        menu.clear()
        if uid is None:
            menu.setEnabled(False)
            return
        doc = self.doc
        cands = self.share_candidates(uid) if kind == "share" else self.tie_candidates(uid)
        current = doc.link_of(uid)
        for dst in cands:
            act = menu.addAction(f"{doc.layer_title(dst)}   ·   {short_name(doc, dst)}")
            act.setObjectName(f"{kind}With_{dst}")
            act.setCheckable(True)
            act.setChecked(current is not None and current.dst == dst and current.kind == kind)
            act.setData(dst)
            act.triggered.connect(
                lambda _checked=False, d=dst: on_result(self.link(uid, d, kind)))
        if not cands:
            what = ("a layer of the same kind above it" if kind == "share"
                    else "a Dense layer above it")
            none = menu.addAction(f"No {what}")
            none.setEnabled(False)
        menu.setEnabled(True)


# ======================================================================== icons
def glyph_icon(name: str, color: QColor, size: int = 18, disabled: QColor | None = None) -> QIcon:
    """A small line icon drawn with the palette's text colour (no icon theme needed)."""
    icon = QIcon(_glyph_pixmap(name, color, size))
    if disabled is not None:
        icon.addPixmap(_glyph_pixmap(name, disabled, size), QIcon.Mode.Disabled)
    return icon


def _glyph_pixmap(name: str, color: QColor, size: int) -> QPixmap:
    ratio = 2.0
    pm = QPixmap(int(size * ratio), int(size * ratio))
    pm.setDevicePixelRatio(ratio)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(color, 1.7, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
               Qt.PenJoinStyle.RoundJoin)
    p.setPen(pen)
    s = float(size)
    c = s / 2
    if name == "add":
        p.drawLine(QPointF(c, 3.5), QPointF(c, s - 3.5))
        p.drawLine(QPointF(3.5, c), QPointF(s - 3.5, c))
    elif name == "remove":
        # a small bin
        p.drawLine(QPointF(3.5, 5), QPointF(s - 3.5, 5))
        p.drawLine(QPointF(7, 5), QPointF(7.5, 3))
        p.drawLine(QPointF(7.5, 3), QPointF(s - 7.5, 3))
        p.drawLine(QPointF(s - 7.5, 3), QPointF(s - 7, 5))
        path = QPainterPath(QPointF(5, 5))
        path.lineTo(6, s - 2.5)
        path.lineTo(s - 6, s - 2.5)
        path.lineTo(s - 5, 5)
        p.drawPath(path)
        p.drawLine(QPointF(c, 8), QPointF(c, s - 5))
    elif name == "duplicate":
        p.drawRoundedRect(QRectF(3, 6, 9, 9), 1.5, 1.5)
        p.drawRoundedRect(QRectF(6.5, 2.5, 9, 9), 1.5, 1.5)
    elif name in ("up", "down"):
        sign = -1 if name == "up" else 1
        tip = c + sign * 6
        p.drawLine(QPointF(c, c - sign * 6), QPointF(c, tip))
        p.drawLine(QPointF(c - 4.5, tip - sign * 4.5), QPointF(c, tip))
        p.drawLine(QPointF(c + 4.5, tip - sign * 4.5), QPointF(c, tip))
    elif name in ("link", "unlink"):
        p.translate(c, c)
        p.rotate(-45)
        if name == "link":
            p.drawRoundedRect(QRectF(-8.2, -3, 8.6, 6), 3, 3)
            p.drawRoundedRect(QRectF(-0.4, -3, 8.6, 6), 3, 3)
        else:
            p.drawRoundedRect(QRectF(-9.5, -3, 7.0, 6), 3, 3)
            p.drawRoundedRect(QRectF(2.5, -3, 7.0, 6), 3, 3)
            p.resetTransform()
            p.drawLine(QPointF(c - 1.5, c - 1.5), QPointF(c - 4.5, c - 4.5 - 0.5))
            p.drawLine(QPointF(c + 1.5, c + 1.5), QPointF(c + 4.5, c + 4.5 + 0.5))
            p.drawLine(QPointF(c - 5, c + 1), QPointF(c - 7, c + 3))
            p.drawLine(QPointF(c + 5, c - 1), QPointF(c + 7, c - 3))
    p.end()
    return pm


# ======================================================================== the list
class _LayerDelegate(QStyledItemDelegate):
    """Paints a layer row: index, label, shapes; block name and link beneath."""

    PAD = 7

    def __init__(self, panel):
        super().__init__(panel)
        self.panel = panel

    def _fonts(self, option):
        title = QFont(option.font)
        title.setWeight(QFont.Weight.DemiBold)
        small = QFont(option.font)
        small.setPointSizeF(max(7.0, option.font.pointSizeF() * 0.88))
        return title, small

    def sizeHint(self, option, index):
        title, small = self._fonts(option)
        h = QFontMetricsF(title).height() + QFontMetricsF(small).height() + 2 * self.PAD + 3
        return QSize(240, int(h + 0.5))

    def paint(self, painter, option, index):
        info = index.data(INFO_ROLE)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        if not info:
            return
        colors = self.panel.colors
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        text = opt.palette.color(QPalette.ColorRole.HighlightedText if selected
                                 else QPalette.ColorRole.Text)
        base = opt.palette.color(QPalette.ColorRole.Highlight if selected
                                 else QPalette.ColorRole.Base)
        muted = blend(text, base, 0.38)
        title, small = self._fonts(opt)
        fm_t, fm_s = QFontMetricsF(title), QFontMetricsF(small)
        r = QRectF(opt.rect).adjusted(self.PAD + 2, self.PAD, -self.PAD - 2, -self.PAD)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)

        # line 1: index, label ............ shapes
        index_w = fm_s.horizontalAdvance("00") + 8
        line1 = QRectF(r.left(), r.top(), r.width(), fm_t.height())
        painter.setFont(small)
        painter.setPen(muted)
        painter.drawText(QRectF(line1.left(), line1.top(), index_w - 6, line1.height()),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         str(info["index"]))
        shape = info["shape"]
        painter.setFont(small)
        if info["problem"]:
            painter.setPen(text if selected else colors["error"])
            shape_text = "⚠ " + shape
        else:
            painter.setPen(muted)
            shape_text = shape
        shape_w = min(fm_s.horizontalAdvance(shape_text) + 2, r.width() * 0.55)
        painter.drawText(QRectF(line1.right() - shape_w, line1.top(), shape_w, line1.height()),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         fm_s.elidedText(shape_text, Qt.TextElideMode.ElideLeft, shape_w))
        painter.setFont(title)
        painter.setPen(text)
        label_w = line1.width() - index_w - shape_w - 8
        painter.drawText(QRectF(line1.left() + index_w, line1.top(), label_w, line1.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         fm_t.elidedText(info["label"], Qt.TextElideMode.ElideRight, label_w))

        # line 2: block name · link
        line2 = QRectF(r.left() + index_w, line1.bottom() + 3, r.width() - index_w,
                       fm_s.height())
        painter.setFont(small)
        painter.setPen(muted)
        name = info["block"]
        name_w = min(fm_s.horizontalAdvance(name) + 1, line2.width())
        painter.drawText(QRectF(line2.left(), line2.top(), name_w, line2.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         fm_s.elidedText(name, Qt.TextElideMode.ElideRight, name_w))
        if info["link"]:
            color = colors["tie"] if info["link_kind"] == "tie" else colors["share"]
            if selected:
                color = text
            painter.setPen(color)
            rest = QRectF(line2.left() + name_w + 10, line2.top(),
                          max(0.0, line2.width() - name_w - 10), line2.height())
            painter.drawText(rest, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             fm_s.elidedText(info["link"], Qt.TextElideMode.ElideRight,
                                             rest.width()))
        painter.restore()


class _LayerList(QListWidget):
    """The list widget: keys and drops become requests; the panel turns them into gestures
    and the rows come back from the model."""

    step_requested = Signal(int)            # -1 up, +1 down
    remove_requested = Signal()
    drop_requested = Signal(str, int)       # uid, insertion position (before that row)

    _KEYS = {(Qt.Key.Key_Up, True): "up", (Qt.Key.Key_Down, True): "down",
             (Qt.Key.Key_Delete, False): "delete", (Qt.Key.Key_Backspace, False): "delete"}

    def __init__(self, parent=None):
        super().__init__(parent)
        self._drop_pos = None               # insertion position while a drag hovers
        self.setDragEnabled(True)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDropIndicatorShown(False)   # drawn by paintEvent, see below
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformItemSizes(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)

    # ------------------------------------------------------------ keys
    def _key(self, event):
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        return self._KEYS.get((Qt.Key(event.key()), ctrl))

    def event(self, event):
        # Claim our keys before window-wide shortcuts with the same keys can take them.
        if event.type() == QEvent.Type.ShortcutOverride and self._key(event):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event):
        key = self._key(event)
        if key == "up":
            self.step_requested.emit(-1)
        elif key == "down":
            self.step_requested.emit(1)
        elif key == "delete":
            self.remove_requested.emit()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    # ------------------------------------------------------------ drag and drop
    def startDrag(self, supported_actions):
        item = self.currentItem()
        if item is None:
            return
        mime = QMimeData()
        mime.setData(LAYER_MIME, item.data(UID_ROLE).encode())
        drag = QDrag(self)
        drag.setMimeData(mime)
        rect = self.visualItemRect(item)
        drag.setPixmap(self.viewport().grab(rect))
        drag.setHotSpot(self.viewport().mapFromGlobal(self.cursor().pos()) - rect.topLeft())
        drag.exec(Qt.DropAction.MoveAction)
        self._set_drop_pos(None)

    def drop_position(self, pos) -> int:
        """Insertion position (before that row) for a drop at viewport position ``pos``."""
        for row in range(self.count()):
            rect = self.visualItemRect(self.item(row))
            if pos.y() < rect.center().y():
                return row
        return self.count()

    def _set_drop_pos(self, value):
        if value != self._drop_pos:
            self._drop_pos = value
            self.viewport().update()

    def dragEnterEvent(self, event):
        if event.mimeData().hasFormat(LAYER_MIME):
            event.setDropAction(Qt.DropAction.MoveAction)
            event.accept()
            self._set_drop_pos(self.drop_position(event.position().toPoint()))
        else:
            event.ignore()

    dragMoveEvent = dragEnterEvent     # same answer while the drag moves  # noqa: N815

    def dragLeaveEvent(self, event):
        self._set_drop_pos(None)
        event.accept()

    def dropEvent(self, event):
        self._set_drop_pos(None)
        if not event.mimeData().hasFormat(LAYER_MIME):
            event.ignore()
            return
        uid = bytes(event.mimeData().data(LAYER_MIME)).decode()
        event.setDropAction(Qt.DropAction.MoveAction)
        event.accept()
        self.drop_requested.emit(uid, self.drop_position(event.position().toPoint()))

    def paintEvent(self, event):
        super().paintEvent(event)
        if self.count() == 0:
            p = QPainter(self.viewport())
            pal = self.palette()
            p.setPen(blend(pal.color(QPalette.ColorRole.Text),
                           pal.color(QPalette.ColorRole.Base), 0.45))
            p.drawText(self.viewport().rect().adjusted(16, 16, -16, -16),
                       Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       "No layers yet.\nUse Add to put the first one in the stack.")
            p.end()
            return
        if self._drop_pos is None:
            return
        if self._drop_pos < self.count():
            y = self.visualItemRect(self.item(self._drop_pos)).top()
        else:
            y = self.visualItemRect(self.item(self.count() - 1)).bottom() + 1
        p = QPainter(self.viewport())
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(self.palette().color(QPalette.ColorRole.Highlight), 2.5)
        p.setPen(pen)
        w = self.viewport().width()
        p.drawLine(QPointF(6, y), QPointF(w - 6, y))
        p.setBrush(pen.color())
        p.drawEllipse(QPointF(6, y), 3, 3)
        p.end()


class LayersPanel(QWidget):
    """The layer stack as a list, with Add/Remove/Duplicate/Move/Link/Unlink (see module)."""

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.setObjectName("layersPanel")
        self.wb = workbench
        self.gestures = LayerGestures(workbench)
        self.colors = ui_colors(self.palette())
        self._rendering = False

        # ---------------------------------------------------------- tool row
        self.add_menu = QMenu(self)
        self.add_menu.setObjectName("layersAddMenu")
        self.add_menu.setToolTipsVisible(True)
        self.add_actions: dict[str, QAction] = {}
        for name, k in L.KINDS.items():
            act = self.add_menu.addAction(name)
            act.setObjectName(f"layersAdd{name}")
            act.setToolTip(k.description)
            act.setStatusTip(k.description)
            act.setData(name)
            self.add_actions[name] = act

        self.link_menu = QMenu(self)
        self.link_menu.setObjectName("layersLinkMenu")
        self.share_menu = self.link_menu.addMenu("Share parameters with")
        self.share_menu.setObjectName("layersShareMenu")
        self.tie_menu = self.link_menu.addMenu("Tie transposed to")
        self.tie_menu.setObjectName("layersTieMenu")
        self.share_menu.setToolTipsVisible(True)
        self.link_menu.setToolTipsVisible(True)
        self.share_menu.menuAction().setToolTip(
            "Use the parameters of a layer of the same kind above (Gluon params=)")
        self.tie_menu.menuAction().setToolTip(
            "Apply the weight of a Dense layer above, transposed (one parameter, gradients "
            "summed)")

        self.add_button = self._tool_button("layersAddButton", "Add", "add",
                                            "Add a layer after the selected one (or at the end)")
        self.add_button.setMenu(self.add_menu)
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.add_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.remove_button = self._tool_button("layersRemoveButton", "Remove", "remove",
                                               "Remove the selected layer (Delete)")
        self.duplicate_button = self._tool_button("layersDuplicateButton", "Duplicate",
                                                  "duplicate", "Duplicate the selected layer")
        self.up_button = self._tool_button("layersMoveUpButton", "Move up", "up",
                                           "Move the selected layer up (Ctrl+Up)")
        self.down_button = self._tool_button("layersMoveDownButton", "Move down", "down",
                                             "Move the selected layer down (Ctrl+Down)")
        self.link_button = self._tool_button(
            "layersLinkButton", "Link", "link",
            "Share the parameters of a layer above, or tie to a Dense above transposed")
        self.link_button.setMenu(self.link_menu)
        self.link_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.unlink_button = self._tool_button("layersUnlinkButton", "Unlink", "unlink",
                                               "Give the selected layer its own parameters")

        tools = QHBoxLayout()
        tools.setContentsMargins(0, 0, 0, 0)
        tools.setSpacing(2)
        tools.addWidget(self.add_button)
        tools.addWidget(self.remove_button)
        tools.addWidget(self.duplicate_button)
        tools.addSpacing(6)
        tools.addWidget(self.up_button)
        tools.addWidget(self.down_button)
        tools.addSpacing(6)
        tools.addWidget(self.link_button)
        tools.addWidget(self.unlink_button)
        tools.addStretch(1)

        # ---------------------------------------------------------- list + message
        self.list = _LayerList(self)
        self.list.setObjectName("layersList")
        self.list.setItemDelegate(_LayerDelegate(self))
        self.list.setAlternatingRowColors(False)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.message = QLabel(self)
        self.message.setObjectName("layersMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.message.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addLayout(tools)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.message)

        self._apply_palette()
        self._render()

        # ---------------------------------------------------------- connections
        self.add_menu.triggered.connect(self._on_add_triggered)
        self.remove_button.clicked.connect(self._on_remove_clicked)
        self.duplicate_button.clicked.connect(self._on_duplicate_clicked)
        self.up_button.clicked.connect(lambda: self._on_step_requested(-1))
        self.down_button.clicked.connect(lambda: self._on_step_requested(1))
        self.unlink_button.clicked.connect(self._on_unlink_clicked)
        self.list.itemSelectionChanged.connect(self._on_list_selection_changed)
        self.list.step_requested.connect(self._on_step_requested)
        self.list.remove_requested.connect(self._on_remove_clicked)
        self.list.drop_requested.connect(self._on_drop_requested)
        workbench.changed.connect(self._on_workbench_changed)
        workbench.selection_changed.connect(self._on_selection_changed)

    # ================================================================= building
    def _tool_button(self, name, text, glyph, tip):
        b = QToolButton(self)
        b.setObjectName(name)
        b.setText(text)
        b.setToolTip(tip)
        b.setProperty("glyph", glyph)
        b.setAutoRaise(True)
        b.setIconSize(QSize(18, 18))
        b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        return b

    def _apply_palette(self):
        self.colors = ui_colors(self.palette())
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.ButtonText)
        faded = blend(text, pal.color(QPalette.ColorRole.Button), 0.62)
        for b in self.findChildren(QToolButton):
            glyph = b.property("glyph")
            if glyph:
                b.setIcon(glyph_icon(glyph, text, disabled=faded))
        self.message.setStyleSheet(
            f"QLabel#layersMessage {{ color: {self.colors['error'].name()}; "
            f"border: 1px solid {self.colors['error'].name()}; border-radius: 4px; "
            f"padding: 5px 7px; background: "
            f"{blend(self.colors['base'], self.colors['error'], 0.08).name()}; }}")

    def changeEvent(self, event):
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
            self.list.viewport().update()
        super().changeEvent(event)

    # ================================================================= rendering
    def selected_uid(self) -> str | None:
        item = self.list.currentItem()
        if item is None or not item.isSelected():
            return None
        return item.data(UID_ROLE)

    def _render(self):
        """Rebuild the rows from the document."""
        doc = self.wb.doc
        shapes = doc.shapes()
        scroll = self.list.verticalScrollBar().value()
        self._rendering = True
        self.list.blockSignals(True)
        try:
            self.list.clear()
            for i, (spec, (in_shape, out_shape, problem)) in enumerate(zip(doc.layers, shapes)):
                ln = doc.link_of(spec.uid)
                if ln is not None:
                    kind = ln.kind
                else:       # an owner: coloured like the links that use it
                    users = {x.kind for x in doc.links if x.dst == spec.uid}
                    kind = "tie" if users == {"tie"} else ("share" if users else None)
                info = {
                    "uid": spec.uid,
                    "index": i,
                    "label": spec.label(),
                    "block": doc.block(spec.uid).name,
                    "link": link_text(doc, spec.uid),
                    "link_kind": kind,
                    "shape": f"{L.format_shape(in_shape)} → {L.format_shape(out_shape)}",
                    "problem": problem,
                }
                text = f"{i}: {info['label']}  {info['block']}  {info['shape']}"
                if info["link"]:
                    text += f"  ({info['link']})"
                item = QListWidgetItem(text)
                item.setData(UID_ROLE, spec.uid)
                item.setData(INFO_ROLE, info)
                desc = L.kind(spec.kind).description
                if problem:
                    item.setToolTip(f"<b>{info['label']}</b> cannot take its input "
                                    f"{L.format_shape(in_shape)}:<br>{problem}")
                else:
                    tip = f"<b>{info['label']}</b> — {desc}<br>Gluon block: {info['block']}"
                    if info["link"]:
                        tip += f"<br>{info['link']}"
                    item.setToolTip(tip)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable |
                              Qt.ItemFlag.ItemIsDragEnabled)
                self.list.addItem(item)
            self._select_row(self.wb.selected_layer())
        finally:
            self.list.blockSignals(False)
            self._rendering = False
        self.list.verticalScrollBar().setValue(scroll)
        self._update_actions()

    def _row_of(self, uid):
        for row in range(self.list.count()):
            if self.list.item(row).data(UID_ROLE) == uid:
                return row
        return -1

    def _select_row(self, uid):
        row = self._row_of(uid) if uid is not None else -1
        if row < 0:
            self.list.clearSelection()
            self.list.setCurrentRow(-1)
            return
        self.list.setCurrentRow(row)
        self.list.item(row).setSelected(True)
        self.list.scrollToItem(self.list.item(row))

    def _update_actions(self):
        doc = self.wb.doc
        uid = self.selected_uid()
        has = uid is not None
        i = doc.index(uid) if has else -1
        self.remove_button.setEnabled(has)
        self.duplicate_button.setEnabled(has)
        self.up_button.setEnabled(has and i > 0)
        self.down_button.setEnabled(has and i < len(doc.layers) - 1)
        self.unlink_button.setEnabled(has and doc.link_of(uid) is not None)
        linkable = has and bool(self.gestures.share_candidates(uid) or
                                self.gestures.tie_candidates(uid) or
                                L.kind(doc.layer(uid).kind).shareable)
        self.link_button.setEnabled(linkable)
        self.gestures.fill_link_menu(self.share_menu, uid, "share", self._show_result)
        self.gestures.fill_link_menu(self.tie_menu, uid, "tie", self._show_result)
        self.tie_menu.menuAction().setVisible(
            has and L.kind(doc.layer(uid).kind).tieable)

    # ================================================================= messages
    def show_message(self, text: str) -> None:
        """Show why a gesture was refused, under the list (red)."""
        self.message.setText(text)
        self.message.setToolTip(text)
        self.message.show()

    def clear_message(self) -> None:
        self.message.clear()
        self.message.hide()

    def _show_result(self, result):
        ok, res = result
        if ok:
            self.clear_message()
        else:
            self.show_message(res)
        return result

    # ================================================================= slots
    def _on_add_triggered(self, action):
        kind = action.data()
        if kind in L.KINDS:
            self._show_result(self.gestures.add(kind, after=self.selected_uid()))

    def _on_remove_clicked(self):
        uid = self.selected_uid()
        if uid is not None:
            self._show_result(self.gestures.remove(uid))

    def _on_duplicate_clicked(self):
        uid = self.selected_uid()
        if uid is not None:
            self._show_result(self.gestures.duplicate(uid))

    def _on_step_requested(self, delta):
        uid = self.selected_uid()
        if uid is not None:
            self._show_result(self.gestures.step(uid, delta))

    def _on_unlink_clicked(self):
        uid = self.selected_uid()
        if uid is not None:
            self._show_result(self.gestures.unlink(uid))

    def _on_drop_requested(self, uid, position):
        try:
            i = self.wb.doc.index(uid)
        except DocumentError:
            return
        new_index = position if position <= i else position - 1
        self._show_result(self.gestures.move(uid, new_index))

    def _on_list_selection_changed(self):
        if self._rendering:
            return
        uid = self.selected_uid()
        self.wb.select(("layer", uid) if uid is not None else None)
        self._update_actions()

    def _on_selection_changed(self, selection):
        uid = selection[1] if selection and selection[0] == "layer" else None
        if uid == self.selected_uid():
            return
        self.list.blockSignals(True)
        try:
            self._select_row(uid)
        finally:
            self.list.blockSignals(False)
        self._update_actions()

    def _on_workbench_changed(self, what):
        self.clear_message()            # a refusal is stale once the model changed
        self._render()
