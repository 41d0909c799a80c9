"""The diagram: the layer stack as boxes top to bottom, shapes on the arrows, links as arcs.

An "Input" box at the top, one box per layer (its label, its Gluon block name in small type, a
parameter summary such as ``W 4×? · b 4`` where ``?`` is a dimension the engine will only learn
at the first forward), an "Output" box at the bottom. Boxes are coloured by the state of their
parameters (uninitialized / deferred — dashed border — / initialized). Arrows carry the shape
flowing along them. A layer that uses another's parameters is joined to it by an arc on the
right ("shares", or "tied ᵀ" in another colour).

Click a box to select its layer; right-click for Remove, Duplicate, Link with…, Tie to…,
Unlink (each one undo step through the workbench). Ctrl+wheel zooms; resizing fits the diagram
to the view. The scene is rebuilt from the document on ``workbench.changed``; selection is
repainted on ``selection_changed``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import (QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath,
                           QPainterPathStroker, QPen, QPolygonF, QTransform)
from PySide6.QtWidgets import (QFrame, QGraphicsItem, QGraphicsScene, QGraphicsView, QLabel,
                               QMenu, QToolTip)

from app.document import layers as L

from .layers_panel import LayerGestures, blend, short_name, ui_colors

__all__ = ["DiagramView", "LayerBox", "TerminalBox", "ArrowItem", "LinkArc",
           "param_summary", "layer_state", "format_dims"]

BOX_W = 300.0
GAP = 42.0              # vertical room for an arrow between two boxes
TERM_W = 220.0
MIN_SCALE, MAX_SCALE = 0.25, 4.0
FIT_MIN, FIT_MAX = 0.7, 1.15

_ROLE_SYMBOL = {"weight": "W", "bias": "b", "gamma": "γ", "beta": "β",
                "running_mean": "μ", "running_var": "σ²"}


# ======================================================================== text helpers
def format_dims(shape) -> str:
    """``4×?`` for a parameter shape with an unknown (0) dimension."""
    if shape is None:
        return "?"
    return "×".join("?" if not d else str(d) for d in shape)


def _params_of(block):
    return [(role, p) for role, p in getattr(block, "_reg_params", {}).items() if p is not None]


def param_summary(doc, uid: str) -> str:
    """``W 4×? · b 4``; a shared layer says whose parameters it uses."""
    block = doc.block(uid)
    params = _params_of(block)
    if not params:
        return "no parameters"
    ln = doc.link_of(uid)
    parts = []
    for role, p in params:
        sym = _ROLE_SYMBOL.get(role, role)
        if ln is not None and ln.kind == "tie" and role == "weight":
            sym = "Wᵀ"
        parts.append(f"{sym} {format_dims(p.shape)}")
    text = " · ".join(parts)
    if ln is not None:
        other = short_name(doc, ln.dst)
        text += f"   ← {other}" if ln.kind == "share" else f"   (W of {other})"
    return text


def layer_state(doc, uid: str) -> str:
    """'none' (no parameters), 'uninitialized', 'deferred' or 'initialized' (the least
    advanced of the layer's parameters)."""
    states = [p.state for _r, p in _params_of(doc.block(uid))]
    if not states:
        return "none"
    for s in ("uninitialized", "deferred"):
        if s in states:
            return s
    return "initialized"


def _elide(fm: QFontMetricsF, text: str, width: float) -> str:
    return fm.elidedText(text, Qt.TextElideMode.ElideRight, width)


# ======================================================================== items
class _Theme:
    """Colours and fonts for one build of the scene."""

    def __init__(self, view):
        self.c = ui_colors(view.palette())
        base = view.font()
        self.title = QFont(base)
        self.title.setPointSizeF(base.pointSizeF() * 1.05)
        self.title.setWeight(QFont.Weight.DemiBold)
        self.body = QFont(base)
        self.small = QFont(base)
        self.small.setPointSizeF(max(7.0, base.pointSizeF() * 0.86))
        self.fm_title = QFontMetricsF(self.title)
        self.fm_body = QFontMetricsF(self.body)
        self.fm_small = QFontMetricsF(self.small)

    def state_color(self, state):
        return self.c.get(state, self.c["none"])

    def fill(self, state):
        c = self.c
        return blend(c["base"], self.state_color(state), 0.22 if c["dark"] else 0.13)


class LayerBox(QGraphicsItem):
    """One layer: label, block name, parameter summary, state colour."""

    def __init__(self, theme, uid, index, title, block_name, param_text, state, problem=""):
        super().__init__()
        self.theme = theme
        self.uid = uid
        self.index = index
        self.title = title
        self.block_name = block_name
        self.param_text = param_text
        self.state = state
        self.problem = problem
        self.selected = False
        t = theme
        self.height = 10 + t.fm_title.height() + 2 + t.fm_small.height() + 4 + \
            t.fm_body.height() + 10
        self.rect = QRectF(0, 0, BOX_W, self.height)
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setData(0, ("layer", uid))
        tip = f"<b>{index}: {title}</b><br>Gluon block: {block_name}<br>{param_text}<br>" \
              f"parameters: {state if state != 'none' else 'none'}"
        if state == "deferred":
            tip += "<br><i>? = shape learned at the first forward pass</i>"
        if problem:
            tip += f"<br><span style='color:{t.c['error'].name()}'>{problem}</span>"
        self.setToolTip(tip)

    @property
    def deferred(self) -> bool:
        return self.state == "deferred"

    def boundingRect(self):
        return self.rect.adjusted(-5, -5, 5, 5)

    def shape(self):
        path = QPainterPath()
        path.addRoundedRect(self.rect, 8, 8)
        return path

    def set_selected(self, selected: bool):
        if selected != self.selected:
            self.selected = selected
            self.update()

    def paint(self, painter, option, widget=None):
        t = self.theme
        c = t.c
        r = self.rect
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        state_col = c["error"] if self.problem else t.state_color(self.state)
        if self.selected:
            glow = QColor(c["highlight"])
            glow.setAlphaF(0.35)
            painter.setPen(QPen(glow, 6))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(r.adjusted(-1.5, -1.5, 1.5, 1.5), 9, 9)
        pen = QPen(c["highlight"] if self.selected else state_col, 2.2 if self.selected else 1.4)
        if self.state == "deferred" and not self.selected:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(t.fill(self.state))
        painter.drawRoundedRect(r, 8, 8)

        # the index badge
        x0 = r.left() + 12
        y = r.top() + 10
        badge = QRectF(x0, y + 1, 22, t.fm_title.height() - 2)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(blend(t.fill(self.state), c["text"], 0.12))
        painter.drawRoundedRect(badge, 4, 4)
        painter.setFont(t.small)
        painter.setPen(c["text"])
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, str(self.index))

        # state chip (right)
        chip = {"uninitialized": "uninitialized", "deferred": "deferred",
                "initialized": "initialized", "none": ""}[self.state]
        if self.problem:
            chip = "shape problem"
        chip_w = t.fm_small.horizontalAdvance(chip) + 14 if chip else 0
        if chip:
            cr = QRectF(r.right() - 12 - chip_w, y + 1, chip_w, t.fm_title.height() - 2)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(state_col)
            painter.drawEllipse(QPointF(cr.left() + 4, cr.center().y()), 3.5, 3.5)
            painter.setFont(t.small)
            painter.setPen(state_col if not c["dark"] else blend(state_col, c["text"], 0.2))
            painter.drawText(cr.adjusted(11, 0, 0, 0),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, chip)

        # title, block name, parameters
        tx = x0 + 30
        tw = r.right() - 12 - tx - chip_w - 6
        painter.setFont(t.title)
        painter.setPen(c["text"])
        painter.drawText(QRectF(tx, y, tw, t.fm_title.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         _elide(t.fm_title, self.title, tw))
        y += t.fm_title.height() + 2
        w = r.right() - 12 - tx
        painter.setFont(t.small)
        painter.setPen(c["muted"])
        painter.drawText(QRectF(tx, y, w, t.fm_small.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         _elide(t.fm_small, self.block_name, w))
        y += t.fm_small.height() + 4
        painter.setFont(t.body)
        text = self.problem if self.problem else self.param_text
        painter.setPen(c["error"] if self.problem else
                       (c["text"] if self.state != "none" else c["muted"]))
        painter.drawText(QRectF(tx, y, w, t.fm_body.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         _elide(t.fm_body, text, w))


class TerminalBox(QGraphicsItem):
    """The Input box (top) or the Output box (bottom): a pill with two lines."""

    def __init__(self, theme, role, text, detail):
        super().__init__()
        self.theme = theme
        self.role = role        # 'input' | 'output'
        self.text = text
        self.detail = detail
        t = theme
        self.height = 8 + t.fm_title.height() + 1 + t.fm_small.height() + 8
        self.width = max(TERM_W, t.fm_title.horizontalAdvance(text) + 44,
                         t.fm_small.horizontalAdvance(detail) + 44)
        self.rect = QRectF(0, 0, self.width, self.height)
        self.setToolTip(f"{text}<br>{detail}")

    def boundingRect(self):
        return self.rect.adjusted(-2, -2, 2, 2)

    def paint(self, painter, option, widget=None):
        t = self.theme
        c = t.c
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(c["muted"], 1.2))
        painter.setBrush(blend(c["base"], c["text"], 0.06))
        painter.drawRoundedRect(self.rect, self.height / 2, self.height / 2)
        y = self.rect.top() + 8
        painter.setFont(t.title)
        painter.setPen(c["text"])
        inner = self.rect.adjusted(16, 0, -16, 0)
        painter.drawText(QRectF(inner.left(), y, inner.width(), t.fm_title.height()),
                         Qt.AlignmentFlag.AlignCenter,
                         _elide(t.fm_title, self.text, inner.width()))
        y += t.fm_title.height() + 1
        painter.setFont(t.small)
        painter.setPen(c["muted"])
        painter.drawText(QRectF(inner.left(), y, inner.width(), t.fm_small.height()),
                         Qt.AlignmentFlag.AlignCenter,
                         _elide(t.fm_small, self.detail, inner.width()))


class ArrowItem(QGraphicsItem):
    """A downward arrow labelled with the shape flowing along it."""

    def __init__(self, theme, x, y0, y1, label, seen, problem=False):
        super().__init__()
        self.theme = theme
        self.x, self.y0, self.y1 = x, y0, y1
        self.label_text = label
        self.seen = seen            # data has flowed along it (a forward ran)
        self.problem = problem
        fm = theme.fm_small
        self._label_rect = QRectF(x + 10, (y0 + y1) / 2 - fm.height() / 2 - 1,
                                  fm.horizontalAdvance(label) + 12, fm.height() + 2)
        if seen:
            self.setToolTip(f"{label}: the shape of the data in the last forward pass")
        else:
            self.setToolTip(f"{label}: the shape inferred from the input; no data has flowed "
                            "yet (run Forward)")

    def boundingRect(self):
        return QRectF(self.x - 7, self.y0, 14, self.y1 - self.y0).united(self._label_rect)

    def paint(self, painter, option, widget=None):
        t = self.theme
        c = t.c
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        col = c["error"] if self.problem else c["muted"]
        pen = QPen(col, 1.5)
        if not self.seen:
            pen.setStyle(Qt.PenStyle.DashLine)
            pen.setDashPattern([3, 2.5])
        painter.setPen(pen)
        tip = QPointF(self.x, self.y1 - 1)
        painter.drawLine(QPointF(self.x, self.y0 + 2), QPointF(self.x, self.y1 - 7))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(col)
        painter.drawPolygon(QPolygonF([tip, QPointF(self.x - 5, self.y1 - 9),
                                       QPointF(self.x + 5, self.y1 - 9)]))
        painter.setFont(t.small)
        painter.setPen(c["error"] if self.problem else c["text"])
        painter.drawText(self._label_rect.adjusted(6, 0, 0, 0),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         self.label_text)


class LinkArc(QGraphicsItem):
    """An arc on the right joining a layer (src) to the one whose parameters it uses (dst)."""

    def __init__(self, theme, src, dst, kind, x, y_dst, y_src, reach, taken=None):
        super().__init__()
        self.theme = theme
        self.src, self.dst, self.kind = src, dst, kind
        self.label_text = "shares" if kind == "share" else "tied ᵀ"
        self.color = theme.c["share"] if kind == "share" else theme.c["tie"]
        self.path = QPainterPath(QPointF(x, y_dst))
        self.path.cubicTo(QPointF(x + reach * 1.33, y_dst), QPointF(x + reach * 1.33, y_src),
                          QPointF(x + 3, y_src))
        self.end = QPointF(x + 1, y_src)
        fm = theme.fm_small
        w = fm.horizontalAdvance(self.label_text) + 12
        h = fm.height() + 2
        # the label sits on the arc, at the apex unless another arc's label is there already
        taken = [] if taken is None else taken
        for t_ in (0.5, 0.38, 0.62, 0.28, 0.72, 0.18, 0.82):
            at = self.path.pointAtPercent(t_)
            rect = QRectF(at.x() - w / 2, at.y() - h / 2, w, h)
            if not any(rect.adjusted(-2, -2, 2, 2).intersects(o) for o in taken):
                break
        self._label_rect = rect
        taken.append(rect)
        self.setZValue(-1)
        self.setToolTip("uses the parameters of the layer above (Gluon params=)"
                        if kind == "share" else
                        "applies the weight of the layer above, transposed (one parameter)")

    def boundingRect(self):
        return self.path.boundingRect().adjusted(-8, -8, 8, 8).united(self._label_rect)

    def shape(self):
        stroker = QPainterPathStroker()
        stroker.setWidth(8)
        path = stroker.createStroke(self.path)
        path.addRect(self._label_rect)
        return path

    def paint(self, painter, option, widget=None):
        t = self.theme
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(self.color, 1.8)
        if self.kind == "tie":
            pen.setStyle(Qt.PenStyle.DashDotLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path)
        # arrowhead into the user (src), pointing left
        e = self.end
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.color)
        painter.drawPolygon(QPolygonF([e, QPointF(e.x() + 9, e.y() - 4.5),
                                       QPointF(e.x() + 9, e.y() + 4.5)]))
        painter.setBrush(t.c["base"])
        painter.setPen(QPen(self.color, 1.1))
        r = self._label_rect
        painter.drawRoundedRect(r, r.height() / 2, r.height() / 2)
        painter.setFont(t.small)
        painter.setPen(self.color)
        painter.drawText(r, Qt.AlignmentFlag.AlignCenter, self.label_text)


class _Legend(QGraphicsItem):
    def __init__(self, theme):
        super().__init__()
        self.theme = theme
        fm = theme.fm_small
        self.entries = [("uninitialized", "state"), ("deferred", "state"),
                        ("initialized", "state"), ("shares", "share"), ("tied ᵀ", "tie")]
        self.width = sum(fm.horizontalAdvance(e) + 32 for e, _k in self.entries)
        self.rect = QRectF(0, 0, self.width, fm.height() + 4)

    def boundingRect(self):
        return self.rect

    def paint(self, painter, option, widget=None):
        t = self.theme
        c = t.c
        fm = t.fm_small
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setFont(t.small)
        x = 0.0
        cy = self.rect.center().y()
        for text, kind in self.entries:
            if kind == "state":
                col = t.state_color(text)
                pen = QPen(col, 1.3)
                if text == "deferred":
                    pen.setStyle(Qt.PenStyle.DashLine)
                painter.setPen(pen)
                painter.setBrush(t.fill(text))
                painter.drawRoundedRect(QRectF(x, cy - 5, 16, 10), 3, 3)
            else:
                col = c[kind]
                pen = QPen(col, 1.8)
                if kind == "tie":
                    pen.setStyle(Qt.PenStyle.DashDotLine)
                painter.setPen(pen)
                painter.drawLine(QPointF(x, cy), QPointF(x + 16, cy))
            painter.setPen(c["muted"])
            painter.drawText(QRectF(x + 21, 0, fm.horizontalAdvance(text) + 4, self.rect.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
            x += fm.horizontalAdvance(text) + 32


# ======================================================================== the view
class DiagramView(QGraphicsView):
    """The layer stack as a diagram (see the module docstring)."""

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.setObjectName("diagramView")
        self.wb = workbench
        self.gestures = LayerGestures(workbench)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing |
                            QPainter.RenderHint.TextAntialiasing)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setMinimumSize(240, 200)
        self.boxes: dict[str, LayerBox] = {}
        self.arrows: list[ArrowItem] = []
        self.arcs: dict[str, LinkArc] = {}
        self.input_box: TerminalBox | None = None
        self.output_box: TerminalBox | None = None
        self.hint_item = None
        self._auto_fit = True
        self._rebuilding = False

        self.message = QLabel(self)
        self.message.setObjectName("diagramMessage")
        self.message.setWordWrap(True)
        self.message.hide()

        self._apply_palette()
        self.rebuild()

        workbench.changed.connect(self._on_workbench_changed)
        workbench.selection_changed.connect(self._on_selection_changed)

    # ================================================================= building
    def _apply_palette(self):
        c = ui_colors(self.palette())
        self.setBackgroundBrush(QBrush(c["base"]))
        self.message.setStyleSheet(
            f"QLabel#diagramMessage {{ color: {c['error'].name()}; "
            f"background: {blend(c['base'], c['error'], 0.10).name()}; "
            f"border: 1px solid {c['error'].name()}; border-radius: 4px; padding: 6px 8px; }}")

    def rebuild(self) -> None:
        """Build the scene from the document."""
        doc = self.wb.doc
        scene = self.scene()
        self._rebuilding = True
        scene.clear()
        self.boxes, self.arrows, self.arcs = {}, [], {}
        self.hint_item = None
        t = _Theme(self)
        self._theme = t
        shapes = doc.shapes()
        seen = doc.output is not None
        cx = BOX_W / 2

        # input
        spec = doc.input
        detail = {"uniform": f"uniform [{spec.low:g}, {spec.high:g})",
                  "normal": f"normal μ={spec.mean:g} σ={spec.std:g}",
                  "constant": f"constant {spec.value:g}",
                  "integers": f"integers [{spec.low:g}, {spec.high:g})"}[spec.distribution]
        self.input_box = TerminalBox(t, "input", f"Input {L.format_shape(spec.shape)}",
                                     f"x: {detail} · seed {spec.seed}")
        self.input_box.setPos(cx - self.input_box.width / 2, 0)
        scene.addItem(self.input_box)
        y = self.input_box.height

        selected = self.wb.selected_layer()
        for i, (layer, (in_shape, out_shape, problem)) in enumerate(zip(doc.layers, shapes)):
            arrow = ArrowItem(t, cx, y, y + GAP, L.format_shape(in_shape), seen,
                              problem=in_shape is None)
            scene.addItem(arrow)
            self.arrows.append(arrow)
            y += GAP
            box = LayerBox(t, layer.uid, i, layer.label(), doc.block(layer.uid).name,
                           param_summary(doc, layer.uid), layer_state(doc, layer.uid), problem)
            box.setPos(0, y)
            box.selected = layer.uid == selected
            scene.addItem(box)
            self.boxes[layer.uid] = box
            y += box.height

        # output
        out_shape = shapes[-1][1] if shapes else tuple(spec.shape)
        arrow = ArrowItem(t, cx, y, y + GAP, L.format_shape(out_shape), seen,
                          problem=out_shape is None)
        scene.addItem(arrow)
        self.arrows.append(arrow)
        y += GAP
        if doc.output is not None:
            out = np.asarray(doc.output)
            detail = (f"computed · values in [{out.min():.2g}, {out.max():.2g}]"
                      if out.size else "computed")
            text = f"Output {L.format_shape(out.shape)}"
        else:
            detail = "not computed yet: run Forward"
            text = f"Output {L.format_shape(out_shape)}"
        self.output_box = TerminalBox(t, "output", text, detail)
        self.output_box.setPos(cx - self.output_box.width / 2, y)
        scene.addItem(self.output_box)
        y += self.output_box.height

        if not doc.layers:
            hint = scene.addSimpleText("No layers yet: add one from the Layers panel", t.body)
            hint.setBrush(t.c["muted"])
            hint.setPos(cx - hint.boundingRect().width() / 2,
                        self.input_box.height + GAP / 2 - hint.boundingRect().height() / 2)
            arrow_item = self.arrows[0]
            arrow_item.hide()
            self.hint_item = hint

        # link arcs, nested so that they do not cross
        self._add_arcs(t, doc)

        legend = _Legend(t)
        legend.setPos(cx - legend.width / 2, y + 16)
        scene.addItem(legend)
        self._legend = legend

        rect = scene.itemsBoundingRect().adjusted(-20, -14, 20, 14)
        scene.setSceneRect(rect)
        self._rebuilding = False
        if self._auto_fit:
            self.fit()

    def _add_arcs(self, t, doc):
        levels: list[list[tuple[float, float]]] = []
        taken: list[QRectF] = []
        links = sorted(doc.links, key=lambda ln: abs(doc.index(ln.src) - doc.index(ln.dst)))
        for ln in links:
            a, b = self.boxes.get(ln.src), self.boxes.get(ln.dst)
            if a is None or b is None:
                continue
            y_src = a.pos().y() + a.height / 2
            y_dst = b.pos().y() + b.height / 2
            lo, hi = min(y_src, y_dst), max(y_src, y_dst)
            level = 0
            while level < len(levels) and any(not (hi < s or lo > e) for s, e in levels[level]):
                level += 1
            if level == len(levels):
                levels.append([])
            levels[level].append((lo - 8, hi + 8))
            arc = LinkArc(t, ln.src, ln.dst, ln.kind, BOX_W, y_dst, y_src, 30 + 26 * level,
                          taken)
            self.scene().addItem(arc)
            self.arcs[ln.src] = arc

    # ================================================================= view helpers
    def box(self, uid: str) -> LayerBox:
        return self.boxes[uid]

    def arrow_labels(self) -> list[str]:
        return [a.label_text for a in self.arrows]

    def fit(self) -> None:
        """Fit the diagram to the view (never blown up past readable, never below ~60%)."""
        rect = self.sceneRect()
        vp = self.viewport().rect()
        if rect.isEmpty() or vp.width() < 10 or vp.height() < 10:
            return
        s = min(vp.width() / rect.width(), vp.height() / rect.height())
        s = max(FIT_MIN, min(FIT_MAX, s))
        if s * rect.width() > vp.width():       # at least the width must fit if it can
            s = max(min(s, vp.width() / rect.width()), 0.45)
        self.setTransform(QTransform.fromScale(s, s))
        self.centerOn(rect.center().x(), rect.top() + vp.height() / (2 * s))
        self._auto_fit = True

    def zoom(self, factor: float) -> None:
        current = self.transform().m11()
        target = max(MIN_SCALE, min(MAX_SCALE, current * factor))
        self.scale(target / current, target / current)
        self._auto_fit = False

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setToolTip(text)
        self._place_message()
        self.message.show()
        self.message.raise_()

    def clear_message(self) -> None:
        self.message.hide()
        self.message.clear()

    def _place_message(self):
        w = max(120, self.viewport().width() - 16)
        self.message.setFixedWidth(w)
        self.message.adjustSize()
        self.message.move(8, self.viewport().height() - self.message.height() - 8)

    def _show_result(self, result):
        ok, res = result
        if ok:
            self.clear_message()
        else:
            self.show_message(res)
            QToolTip.showText(self.mapToGlobal(self.message.geometry().topLeft()), res, self)
        return result

    def _box_at(self, pos) -> LayerBox | None:
        for item in self.items(pos):
            while item is not None and not isinstance(item, LayerBox):
                item = item.parentItem()
            if isinstance(item, LayerBox):
                return item
        return None

    # ================================================================= context menu
    def context_menu_for(self, uid: str) -> QMenu:
        """The menu a right-click on ``uid``'s box shows (also used by tests)."""
        doc = self.wb.doc
        spec = doc.layer(uid)
        menu = QMenu(self)
        menu.setObjectName("diagramContextMenu")
        menu.addSection(doc.layer_title(uid))
        remove = menu.addAction("Remove", lambda: self._show_result(self.gestures.remove(uid)))
        remove.setObjectName("diagramRemove")
        dup = menu.addAction("Duplicate",
                             lambda: self._show_result(self.gestures.duplicate(uid)))
        dup.setObjectName("diagramDuplicate")
        menu.addSeparator()
        share = menu.addMenu("Link with…")
        share.setObjectName("diagramShareMenu")
        self.gestures.fill_link_menu(share, uid, "share", self._show_result)
        share.menuAction().setEnabled(L.kind(spec.kind).shareable)
        tie = menu.addMenu("Tie to…")
        tie.setObjectName("diagramTieMenu")
        self.gestures.fill_link_menu(tie, uid, "tie", self._show_result)
        tie.menuAction().setEnabled(L.kind(spec.kind).tieable)
        unlink = menu.addAction("Unlink", lambda: self._show_result(self.gestures.unlink(uid)))
        unlink.setObjectName("diagramUnlink")
        unlink.setEnabled(doc.link_of(uid) is not None)
        return menu

    def contextMenuEvent(self, event):
        box = self._box_at(event.pos())
        if box is None:
            super().contextMenuEvent(event)
            return
        self.wb.select(("layer", box.uid))
        menu = self.context_menu_for(box.uid)
        self._exec_menu(menu, event.globalPos())
        menu.deleteLater()
        event.accept()

    def _exec_menu(self, menu: QMenu, global_pos) -> None:
        menu.exec(global_pos)

    # ================================================================= events
    def mousePressEvent(self, event):
        self.clear_message()
        if event.button() == Qt.MouseButton.LeftButton:
            box = self._box_at(event.position().toPoint())
            self.wb.select(("layer", box.uid) if box is not None else None)
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event):
        if self._box_at(event.position().toPoint()) is None:
            self.fit()
        super().mouseDoubleClickEvent(event)

    def wheelEvent(self, event):
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            delta = event.angleDelta().y()
            if delta:
                self.zoom(1.15 ** (delta / 120))
            event.accept()
            return
        super().wheelEvent(event)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self.fit()
        if self.message.isVisible():
            self._place_message()

    def changeEvent(self, event):
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.FontChange):
            self._apply_palette()
            if not self._rebuilding:
                self.rebuild()
        super().changeEvent(event)

    # ================================================================= slots
    def _on_workbench_changed(self, what):
        self.clear_message()            # a refusal is stale once the model changed
        if what == "document":
            self._auto_fit = True
        self.rebuild()

    def _on_selection_changed(self, selection):
        uid = selection[1] if selection and selection[0] == "layer" else None
        for key, box in self.boxes.items():
            box.set_selected(key == uid)
        if uid in self.boxes and not self._auto_fit:
            self.ensureVisible(self.boxes[uid], 20, 20)
