"""Parameter heatmaps: every parameter of two snapshots A and B side by side, with B − A.

A scrollable grid, one row per parameter (a shared parameter appears once, titled with its full
Gluon name and every layer that uses it), filtered by a regex matched like
``collect_params(select)`` (``re.match``). For the pair (A, B) each row shows

    A | B | B − A | grad at B [| its contribution from each use, for a shared parameter]

each an ``ImageItem(axisOrder='row-major')`` with a colour bar on a diverging map centred on 0
(CET-D1). Weights are drawn with rows = output units and columns = inputs
(:func:`~app.document.analysis.display_matrix`); 1-D parameters as a strip. By default A, B and
B − A of a parameter share ONE symmetric scale (levels always set explicitly, from the largest
finite magnitude, so a constant array is never auto-levelled into noise); the gradient and its
per-use contributions share another. "Per-panel scales" gives every heatmap its own.

NaN, +Inf and −Inf are painted by an overlay in their own colours (magenta, black, lime) and
counted in the heatmap's caption and the row title. A matrix with more rows or columns than its
heatmap has device pixels (at most 512) is reduced for display by max-|value| pooling to one
value per pixel — so every extreme, NaN and Inf stays visible — and the factor is shown
("max-|v| pooled 27×27"); zooming in (Ctrl+wheel — a plain wheel scrolls the grid — or
double-click for "zoom to exact values") re-renders the visible region from the original array,
exactly once the region fits. Hovering shows the parameter, the index in the ORIGINAL array
(for a pooled cell: the element that won its block, and the block) and its exact value, and
outlines the same cell in every heatmap of the row. Right-click: Export… (PNG or SVG).

A deferred parameter (shape with an unknown 0) shows a placeholder box with the known
dimensions and ``?`` for the unknown one (``4 × ?``); when a later B has its values, the heatmap
fades in (``fade_ms``; 0 disables the animation).

Speed: rows and their pyqtgraph items are built once and reused; a pair switch only calls
``setImage(..., autoLevels=False, levels=...)`` on the rows on screen (the others are filled when
scrolled to, or by :meth:`HeatmapPanel.flush` before an export; their pyqtgraph items are created
while the application is idle); pooled reductions of the (read-only, shared) snapshot arrays are
cached, so switching between snapshots that share arrays costs little. See
tests/bench/bench_panels.py.

Standalone: ``HeatmapPanel(workbench)`` follows ``history.default_pair()``; connect
``TimelinePanel.pair_changed`` to :meth:`HeatmapPanel.set_pair` to follow the user's choice.
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, QVariantAnimation, Signal
from PySide6.QtGui import QColor, QCursor, QImage, QPalette, QPen
from PySide6.QtWidgets import (QCheckBox, QFrame, QGraphicsGridLayout, QGraphicsRectItem,
                               QHBoxLayout, QLabel, QLineEdit, QMenu, QScrollArea, QSizePolicy,
                               QToolButton, QToolTip, QVBoxLayout, QWidget)

from app.document import analysis
from app.document.model import NET_PREFIX

from .timeline_panel import HistoryLink

__all__ = ["HeatmapPanel", "HeatmapCell", "ParamRow", "pool_display", "format_dims",
           "MAX_CELLS", "NAN_COLOR", "POSINF_COLOR", "NEGINF_COLOR", "COLOR_MAP"]

MAX_CELLS = 512                 # a heatmap never shows more than this many rows / columns
COLOR_MAP = "CET-D1"
NAN_COLOR = QColor("#ff00ff")   # magenta
POSINF_COLOR = QColor("#000000")
NEGINF_COLOR = QColor("#7cff00")  # lime: far from CET-D1's blue, white and red
CELL_W = 262                    # one heatmap with its colour bar
LABEL_H = 36
PLOT_H_2D = 178
PLOT_H_1D = 84
VIEW_W = CELL_W - 94            # the pixels a heatmap's ViewBox gets (the rest: axes, bar)
VIEW_H_2D = PLOT_H_2D - 20
VIEW_H_1D = PLOT_H_1D - 20
EXACT_WINDOW = 64               # "zoom to exact" shows this many rows/columns around the click


# ======================================================================== numerics
_pool_threads: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool_threads
    if _pool_threads is None:
        _pool_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="heatmap-pool")
    return _pool_threads


def _pool_exact(m: np.ndarray, fy: int, fx: int) -> np.ndarray:
    """max-|value| pooling by the definition (zero padding, first maximum wins, NaN first)."""
    rows, cols = m.shape
    ry, rx = math.ceil(rows / fy), math.ceil(cols / fx)
    padded = np.zeros((ry * fy, rx * fx), dtype=m.dtype)
    padded[:rows, :cols] = m
    blocks = padded.reshape(ry, fy, rx, fx).transpose(0, 2, 1, 3).reshape(ry, rx, fy * fx)
    idx = np.argmax(np.abs(blocks), axis=2)
    return np.take_along_axis(blocks, idx[..., None], axis=2)[..., 0]


def _pool_full(v: np.ndarray, fy: int, fx: int) -> np.ndarray:
    """max-|value| of each fy×fx block of ``v`` (shape a multiple of the block): a max and a
    min reduction (NaN propagates, so it wins), the larger magnitude kept with its sign; exact
    ties between +m and −m are resolved like :func:`_pool_exact` (first in the block)."""
    rows, cols = v.shape
    v3 = v.reshape(rows // fy, fy, cols)
    mx = v3.max(axis=1)
    mn = v3.min(axis=1)
    if fx > 1:
        mx4 = mx.reshape(rows // fy, cols // fx, fx)
        mn4 = mn.reshape(rows // fy, cols // fx, fx)
        mx = mx4[..., 0].copy()
        mn = mn4[..., 0].copy()
        for k in range(1, fx):
            np.maximum(mx, mx4[..., k], out=mx)
            np.minimum(mn, mn4[..., k], out=mn)
    amx, amn = np.abs(mx), np.abs(mn)
    out = np.where(amx >= amn, mx, mn)
    ties = np.nonzero((amx == amn) & (mx != mn))
    for i, j in zip(*ties):
        block = v[i * fy:(i + 1) * fy, j * fx:(j + 1) * fx]
        out[i, j] = block.flat[int(np.argmax(np.abs(block)))]
    return out


def pool_display(m: np.ndarray, max_rows: int = MAX_CELLS, max_cols: int = MAX_CELLS):
    """``(pooled, (row_factor, col_factor))``: the same result as
    :func:`app.document.analysis.pool_maxabs`, computed fast enough to redraw a 4096×4096
    matrix at the speed of a plain ``setImage`` (two cores, no padding copy)."""
    rows, cols = m.shape
    fy = max(1, math.ceil(rows / max_rows))
    fx = max(1, math.ceil(cols / max_cols))
    if fy == 1 and fx == 1:
        return m, (1, 1)
    if m.dtype.kind != "f":
        return _pool_exact(m, fy, fx), (fy, fx)
    ry, rx = math.ceil(rows / fy), math.ceil(cols / fx)
    fr, fc = rows // fy, cols // fx         # whole blocks
    out = np.empty((ry, rx), dtype=m.dtype)
    if fr and fc:
        body = m[:fr * fy, :fc * fx]
        if body.size >= 1 << 21 and fr >= 2:
            half = (fr // 2) * fy
            futures = [_executor().submit(_pool_full, body[:half], fy, fx),
                       _executor().submit(_pool_full, body[half:], fy, fx)]
            out[:half // fy, :fc] = futures[0].result()
            out[half // fy:fr, :fc] = futures[1].result()
        else:
            out[:fr, :fc] = _pool_full(body, fy, fx)
    if fc < rx:         # the partial blocks on the right
        out[:, fc:] = _pool_exact(m[:, fc * fx:], fy, fx)
    if fr < ry:         # the partial blocks at the bottom
        out[fr:, :fc] = _pool_exact(m[fr * fy:, :fc * fx], fy, fx)
    return out, (fy, fx)


def _finite_maxabs(a: np.ndarray) -> float:
    """Largest finite magnitude of ``a`` (0.0 when none)."""
    if a.size == 0:
        return 0.0
    if a.dtype.kind != "f":
        return float(np.abs(a).max())
    lo, hi = float(a.min()), float(a.max())      # NaN when there is a NaN
    if math.isfinite(lo) and math.isfinite(hi):
        return max(-lo, hi)
    fin = a[np.isfinite(a)]
    return float(np.abs(fin).max()) if fin.size else 0.0


def _levels(*maxabs: float) -> tuple[float, float]:
    """Symmetric levels like :func:`analysis.symmetric_levels` from precomputed magnitudes."""
    m = max((x for x in maxabs if x is not None), default=0.0)
    if not m > 1e-12:
        m = 1.0
    return -m, m


def locks_aspect(rows: int, cols: int) -> bool:
    """Square cells unless the matrix is a strip or very elongated."""
    return min(rows, cols) > 1 and max(rows / cols, cols / rows) <= 6


def display_caps(shape2d, strip: bool, dpr: float = 1.0, view=None) -> tuple[int, int]:
    """(max rows, max columns) a heatmap of ``shape2d`` can show one value per device pixel:
    pooling to this size keeps every extreme visible on screen (at most :data:`MAX_CELLS`)."""
    rows, cols = shape2d
    vw, vh = view if view is not None else (VIEW_W, VIEW_H_1D if strip else VIEW_H_2D)
    if view is None and locks_aspect(rows, cols):
        s = min(vw / cols, vh / rows)
        pw, ph = cols * s, rows * s
    else:
        pw, ph = vw, vh
    return (max(1, min(MAX_CELLS, math.ceil(ph * dpr))),
            max(1, min(MAX_CELLS, math.ceil(pw * dpr))))


def format_dims(shape) -> str:
    """``4 × ?`` for a shape with an unknown (0) dimension; ``?`` for an unknown shape."""
    if not shape:
        return "?"
    return " × ".join("?" if not d else str(d) for d in shape)


def _fmt(v) -> str:
    """The exact value: the shortest text that reads back as the same number."""
    v = np.asarray(v)[()]
    if isinstance(v, np.floating):
        if np.isnan(v):
            return "NaN"
        if np.isinf(v):
            return "+Inf" if v > 0 else "−Inf"
        return np.format_float_positional(v, unique=True, trim="-") \
            if 1e-4 <= abs(v) < 1e6 or v == 0 else np.format_float_scientific(v, unique=True)
    return str(v)


def _fmt_level(m: float) -> str:
    return f"{m:.3g}"


# ======================================================================== sources
class _Source:
    """The full-resolution 2-D values behind a heatmap (for hover and zoom)."""

    def __init__(self, matrix: np.ndarray, param_shape: tuple):
        self.matrix = matrix
        self.shape = matrix.shape
        self.param_shape = tuple(param_shape)

    def region(self, r0, r1, c0, c1) -> np.ndarray:
        return self.matrix[r0:r1, c0:c1]

    def index_text(self, r: int, c: int) -> str:
        """The index of display cell (r, c) in the original parameter array."""
        ps = self.param_shape
        if len(ps) == 2 and self.shape == ps:
            return f"[{r}, {c}]"
        flat = r * self.shape[1] + c
        if not ps:
            return "[]"
        idx = np.unravel_index(flat, ps)
        return "[" + ", ".join(str(int(i)) for i in idx) + "]"


class _DiffSource(_Source):
    """B − A computed on demand (a large difference is never kept in memory)."""

    def __init__(self, a: np.ndarray, b: np.ndarray, param_shape):
        self.a, self.b = a, b
        self.shape = b.shape
        self.param_shape = tuple(param_shape)

    @property
    def matrix(self):
        return self.region(0, self.shape[0], 0, self.shape[1])

    def region(self, r0, r1, c0, c1):
        with np.errstate(all="ignore"):
            return self.b[r0:r1, c0:c1] - self.a[r0:r1, c0:c1]


@dataclass
class _Prepared:
    """What a heatmap draws: the pooled display matrix and its statistics."""

    source: _Source
    pooled: np.ndarray
    factors: tuple
    maxabs: float
    counts: tuple           # (NaN, +Inf, −Inf) in the original
    zero: bool              # every value is 0


def _prepare(matrix: np.ndarray, source: _Source, caps) -> _Prepared:
    pooled, factors = pool_display(matrix, *caps)
    if pooled.dtype.kind == "f" and not np.isfinite(pooled).all():
        counts = analysis.nonfinite_counts(matrix)
        maxabs = _finite_maxabs(matrix)
    else:
        counts = (0, 0, 0)
        maxabs = _finite_maxabs(pooled)     # the block maxima keep the overall maximum
    return _Prepared(source, pooled, factors, maxabs, counts,
                     maxabs == 0.0 and counts == (0, 0, 0))


class _Cache:
    """Prepared heatmaps of read-only (snapshot) arrays, keyed by the arrays' identity.

    Snapshot arrays are frozen and shared between snapshots, so a pair switch mostly finds its
    reductions here. Entries hold weak references to the arrays they describe."""

    def __init__(self, max_bytes: int = 96 << 20):
        self.max_bytes = max_bytes
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0
        # a training run's worker warms the cache for live frames (warm_frame) while the GUI
        # thread reads it
        self._lock = threading.Lock()

    @staticmethod
    def cacheable(*arrays) -> bool:
        return all(a is not None and not a.flags.writeable for a in arrays)

    def get(self, key, arrays):
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            refs, value, _size = item
            if any(r() is not a for r, a in zip(refs, arrays)):
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key, arrays, value, size: int = 0):
        try:
            refs = tuple(weakref.ref(a) for a in arrays)
        except TypeError:
            return
        with self._lock:
            if key in self._items:
                self._drop(key)
            self._items[key] = (refs, value, size)
            self._bytes += size
            while self._bytes > self.max_bytes and len(self._items) > 1:
                self._drop(next(iter(self._items)))

    def _drop(self, key):
        _refs, _v, size = self._items.pop(key)
        self._bytes -= size

    def clear(self):
        with self._lock:
            self._items.clear()
            self._bytes = 0


_cache = _Cache()


# The cache keeps what was computed (pooled images, statistics) but never the snapshot arrays
# themselves: a snapshot the history drops to keep within its budget must be freed.
def _stored(prep: _Prepared, keep_pooled: bool):
    return (prep.pooled if keep_pooled else None, prep.factors, prep.maxabs, prep.counts,
            prep.zero)


def prepare_array(arr: np.ndarray, caps=(MAX_CELLS, MAX_CELLS)) -> _Prepared:
    """The prepared heatmap of a parameter array pooled to at most ``caps`` (rows, columns);
    cached for read-only arrays."""
    caps = tuple(caps)
    key = ("a", id(arr), caps)
    m = analysis.display_matrix(arr)
    source = _Source(m, arr.shape)
    cacheable = _Cache.cacheable(arr)
    if cacheable:
        hit = _cache.get(key, (arr,))
        if hit is not None:
            pooled, factors, maxabs, counts, zero = hit
            return _Prepared(source, m if pooled is None else pooled, factors, maxabs, counts,
                             zero)
    prep = _prepare(m, source, caps)
    if cacheable:       # an unpooled image is a view of the array: rebuilt, not stored
        _cache.put(key, (arr,), _stored(prep, prep.factors != (1, 1)), _pooled_bytes(prep))
    return prep


def prepare_diff(a: np.ndarray, b: np.ndarray, caps=(MAX_CELLS, MAX_CELLS)) -> _Prepared:
    """The prepared heatmap of ``b - a`` (same shapes)."""
    caps = tuple(caps)
    key = ("d", id(a), id(b), caps)
    ma, mb = analysis.display_matrix(a), analysis.display_matrix(b)
    cacheable = _Cache.cacheable(a, b)
    if cacheable:
        hit = _cache.get(key, (a, b))
        if hit is not None:
            pooled, factors, maxabs, counts, zero = hit
            source = _DiffSource(ma, mb, b.shape) if factors != (1, 1) else \
                _Source(pooled, b.shape)
            return _Prepared(source, pooled, factors, maxabs, counts, zero)
    with np.errstate(all="ignore"):
        d = mb - ma
    if d.shape[0] > caps[0] or d.shape[1] > caps[1]:
        prep = _prepare(d, _DiffSource(ma, mb, b.shape), caps)
    else:
        prep = _prepare(d, _Source(d, b.shape), caps)
    if cacheable:       # the (small) difference is an array of its own: stored
        _cache.put(key, (a, b), _stored(prep, True), prep.pooled.nbytes)
    return prep


def _pooled_bytes(prep: _Prepared) -> int:
    return prep.pooled.nbytes if prep.factors != (1, 1) else 0


def _overlay_rgba(pooled: np.ndarray):
    """An RGBA image marking NaN / ±Inf in their colours (None when all values are finite)."""
    if pooled.dtype.kind != "f" or np.isfinite(pooled).all():
        return None
    ov = np.zeros(pooled.shape + (4,), dtype=np.ubyte)
    for mask, color in ((np.isnan(pooled), NAN_COLOR), (np.isposinf(pooled), POSINF_COLOR),
                        (np.isneginf(pooled), NEGINF_COLOR)):
        ov[mask] = (color.red(), color.green(), color.blue(), 255)
    return ov


def _counts_html(counts, colors: bool = True, compact: bool = False) -> str:
    """``■ 2 NaN · ■ 1 +Inf`` with colour swatches (``compact``: ``■2 NaN ■1 +Inf``)."""
    parts = []
    for n, label, color in zip(counts, ("NaN", "+Inf", "−Inf"),
                               (NAN_COLOR, POSINF_COLOR, NEGINF_COLOR)):
        if n:
            bg = "; background-color:#9aa0a6" if color == POSINF_COLOR else ""
            sw = f"<span style='color:{color.name()}{bg}'>■</span>" if colors else ""
            parts.append(f"{sw}{n} {label}" if compact else f"{sw} {n} {label}".strip())
    return (" " if compact else " · ").join(parts)


# ======================================================================== theme
class _Theme:
    def __init__(self, palette: QPalette):
        from .layers_panel import ui_colors
        self.c = ui_colors(palette)
        self.background = self.c["base"]
        self.text = self.c["text"]
        self.muted = self.c["muted"]
        self.faint = self.c["faint"]
        self.error = self.c["error"]
        self.share = self.c["share"]
        self.deferred = self.c["deferred"]
        self.dark = self.c["dark"]


# ======================================================================== items
class _IndexAxis(pg.AxisItem):
    """Integer index ticks at the centres of the cells (cell i spans [i, i+1])."""

    def __init__(self, orientation, **kw):
        super().__init__(orientation, **kw)
        self.extent = 1

    def setRange(self, mn, mx):  # noqa: N802
        # pyqtgraph regenerates the axis picture on every call; a pair switch re-sends the
        # same range, and axes are most of a repaint: skip when nothing changed.
        if self.picture is not None and list(self.range) == [mn, mx]:
            return
        super().setRange(mn, mx)

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 - Qt/pyqtgraph override
        minVal, maxVal = min(minVal, maxVal), max(minVal, maxVal)
        lo, hi = max(0.0, minVal - 0.5), min(self.extent - 1.0, maxVal - 0.5)
        if hi < lo:
            return []
        levels = super().tickValues(lo, hi, size)
        out = []
        for spacing, values in levels:
            if spacing < 1:
                continue
            vals = [v + 0.5 for v in values if float(v).is_integer() and lo <= v <= hi]
            if vals:
                out.append((spacing, vals))
        if not out:
            out = [(1, [i + 0.5 for i in range(math.ceil(lo), math.floor(hi) + 1)])]
        return out[:2]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        return [str(int(math.floor(v))) for v in values]


class _HeatmapBox(pg.ViewBox):
    """Plain wheel scrolls the grid; Ctrl+wheel zooms; double-click zooms to exact values."""

    def __init__(self, cell, **kw):
        super().__init__(**kw)
        self._cell = weakref.ref(cell)

    def wheelEvent(self, ev, axis=None):  # noqa: N802
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
        else:
            ev.ignore()

    def mouseClickEvent(self, ev):  # noqa: N802
        cell = self._cell()
        if cell is not None and ev.button() == Qt.MouseButton.LeftButton and ev.double():
            ev.accept()
            cell.zoom_exact(self.mapSceneToView(ev.scenePos()))
            return
        if ev.button() == Qt.MouseButton.RightButton:
            ev.ignore()         # the panel's context menu
            return
        super().mouseClickEvent(ev)


_CMAP = None


def colormap():
    """The diverging map (CET-D1), loaded once."""
    global _CMAP
    if _CMAP is None:
        _CMAP = pg.colormap.get(COLOR_MAP)
    return _CMAP


class _Gradient(pg.GraphicsWidget):
    """The colour ramp of a colour bar (high values at the top), framed."""

    def __init__(self, width: int = 12):
        super().__init__()
        lut = colormap().getLookupTable(nPts=256, alpha=True)[::-1].copy()
        self._image = pg.functions.ndarray_to_qimage(lut.reshape(256, 1, 4),
                                                     QImage.Format.Format_RGBA8888).copy()
        self.frame = QColor("#808080")
        self.setFixedWidth(width)

    def paint(self, painter, option, widget=None):
        r = self.boundingRect()
        painter.drawImage(r, self._image)
        painter.setPen(pg.mkPen(self.frame))
        painter.drawRect(r.adjusted(0, 0, -1, -1))


class _ColorBar(pg.GraphicsWidget):
    """A vertical colour bar: the map's ramp and a value axis showing the (explicit) levels.

    A light stand-in for ``pyqtgraph.ColorBarItem``, which is a whole PlotItem (17 ms to
    create; a 40-parameter model has 160 heatmaps)."""

    def __init__(self, width: int = 12):
        super().__init__()
        self.ramp = _Gradient(width)
        self.axis = pg.AxisItem("right")
        self.axis.setWidth(40)
        layout = QGraphicsGridLayout()
        layout.setContentsMargins(6, 0, 0, 0)
        layout.setSpacing(0)
        layout.addItem(self.ramp, 0, 0)
        layout.addItem(self.axis, 0, 1)
        self.setLayout(layout)
        self._levels = (-1.0, 1.0)
        self.axis.setRange(-1.0, 1.0)

    def levels(self) -> tuple:
        return self._levels

    def setLevels(self, levels):  # noqa: N802 - pyqtgraph's name
        self._levels = (float(levels[0]), float(levels[1]))
        self.axis.setRange(*self._levels)

    def show_again(self):
        """Show, re-sizing the axis (pyqtgraph sizes a hidden axis to nothing)."""
        self.show()
        self.axis.setWidth(40)


class _HeatmapPlot(pg.GraphicsWidget):
    """Index axes (left, bottom) around a ViewBox, and a colour bar on the right: what a
    PlotItem with a ColorBarItem shows, at a fraction of their cost to create."""

    def __init__(self, vb, left, bottom, bar):
        super().__init__()
        self.vb, self.left, self.bottom, self.bar = vb, left, bottom, bar
        left.linkToView(vb)
        bottom.linkToView(vb)
        layout = QGraphicsGridLayout()
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addItem(left, 0, 0)
        layout.addItem(vb, 0, 1)
        layout.addItem(bar, 0, 2)
        layout.addItem(bottom, 1, 1)
        self.setLayout(layout)

    def addItem(self, item, ignoreBounds=False):  # noqa: N802, N803 - pyqtgraph's names
        self.vb.addItem(item, ignoreBounds=ignoreBounds)

    def set_axes_visible(self, visible: bool):
        self.left.setVisible(visible)
        self.bottom.setVisible(visible)
        if visible:                     # re-size (a hidden axis was sized to nothing)
            self.left.setWidth(30)
            self.bottom.setHeight(20)


class HeatmapCell:
    """One heatmap in a row: a caption, the plot with the image, the non-finite overlay,
    the zoomed-in detail image, the hover outline, the colour bar and the placeholder."""

    def __init__(self, row: ParamRow, key: str):
        self.row = row
        self.key = key
        theme = row.theme
        self.caption = pg.LabelItem(justify="center")
        self.caption.setMinimumHeight(LABEL_H)
        self.caption.setMaximumHeight(LABEL_H)
        self.axes = {"left": _IndexAxis("left"), "bottom": _IndexAxis("bottom")}
        self.vb = _HeatmapBox(self, enableMenu=False)
        self.vb.invertY(True)
        for ax in self.axes.values():
            ax.setStyle(tickLength=-3, tickTextOffset=2)
            ax.enableAutoSIPrefix(False)
        self.axes["left"].setWidth(30)
        self.axes["bottom"].setHeight(20)
        self.bar = _ColorBar(width=12)
        self.plot = _HeatmapPlot(self.vb, self.axes["left"], self.axes["bottom"], self.bar)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.detail = pg.ImageItem(axisOrder="row-major")
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.detail_overlay = pg.ImageItem(axisOrder="row-major")
        for item in (self.image, self.detail):
            item.setColorMap(colormap())
        for z, item in enumerate((self.image, self.overlay, self.detail, self.detail_overlay)):
            item.setZValue(z)
            self.plot.addItem(item)
        for item in (self.overlay, self.detail, self.detail_overlay):
            item.hide()
        self.outline = QGraphicsRectItem()
        self.outline.setZValue(10)
        self.outline.hide()
        self.plot.addItem(self.outline, ignoreBounds=True)
        self.placeholder_box = QGraphicsRectItem(QRectF(0.06, 0.08, 0.88, 0.84))
        self.placeholder_box.setZValue(5)
        self.placeholder_text = pg.TextItem(anchor=(0.5, 0.5))
        self.placeholder_text.setZValue(6)
        self.plot.addItem(self.placeholder_box, ignoreBounds=True)
        self.plot.addItem(self.placeholder_text, ignoreBounds=True)
        self.placeholder_box.hide()
        self.placeholder_text.hide()
        self._restyle(theme)

        self.prepared: _Prepared | None = None
        self.levels = (-1.0, 1.0)
        self.placeholder = True
        self.title = ""
        self.detail_info = None         # (r0, r1, c0, c1, (fy, fx)) of the detail image
        self._caption_html = None
        self._shape = None              # of what the image shows (kept by release())
        self._opacity = 1.0
        self._anim = None
        self._detail_timer = QTimer(row)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(60)
        self._detail_timer.timeout.connect(self.refresh_detail)
        self.vb.sigRangeChangedManually.connect(lambda *_: self._detail_timer.start())
        self.vb.sigRangeChanged.connect(self._on_range_changed)

    # ----------------------------------------------------------------- look
    def _restyle(self, theme: _Theme):
        font = self.row.panel.font()
        small = pg.QtGui.QFont(font)
        small.setPointSizeF(max(6.5, font.pointSizeF() * 0.78))
        pen = pg.mkPen(theme.faint)
        for ax in (*self.axes.values(), self.bar.axis):
            ax.setPen(pen)
            ax.setTextPen(pg.mkPen(theme.muted))
            ax.setTickFont(small)
        self.placeholder_box.setPen(_dash_pen(theme.deferred))
        fill = QColor(theme.deferred)
        fill.setAlphaF(0.08)
        self.placeholder_box.setBrush(fill)
        self.bar.ramp.frame = QColor(theme.faint)
        outline = QPen(QColor(theme.text), 1.5)
        outline.setCosmetic(True)
        self.outline.setPen(outline)
        self.theme = theme
        self._caption_html = None

    # ----------------------------------------------------------------- content
    def set_caption(self, html: str):
        if html != self._caption_html:
            self._caption_html = html
            self.caption.setText(html, color=self.theme.text.name(), size="8.5pt")

    def show_prepared(self, prep: _Prepared, levels, fade_ms: int = 0):
        """Draw ``prep`` with explicit ``levels``; fade in when it replaces a placeholder."""
        was_placeholder = self.placeholder
        new_shape = prep.source.shape != self._shape
        self._shape = prep.source.shape
        self.prepared = prep
        self.levels = (float(levels[0]), float(levels[1]))
        self.placeholder = False
        rows, cols = prep.source.shape
        if was_placeholder:
            # Show first: pyqtgraph sizes a hidden axis to zero width and keeps it so.
            self.placeholder_box.hide()
            self.placeholder_text.hide()
            self.image.show()
            self.bar.show_again()
            self.plot.set_axes_visible(True)
        self.image.setImage(prep.pooled, autoLevels=False, levels=self.levels)
        if new_shape or was_placeholder:
            self.image.setRect(QRectF(0, 0, cols, rows))
        if tuple(self.bar.levels()) != self.levels:     # (redraws the bar's axis)
            self.bar.setLevels(self.levels)
        self.detail.setLevels(self.levels)
        ov = _overlay_rgba(prep.pooled)
        if ov is None:
            self.overlay.hide()
        else:
            self.overlay.setImage(ov, autoLevels=False, levels=(0, 255))
            self.overlay.setRect(QRectF(0, 0, cols, rows))
            self.overlay.show()
        if (self.axes["left"].extent, self.axes["bottom"].extent) != (rows, cols):
            self.axes["left"].extent, self.axes["bottom"].extent = rows, cols
            for ax in self.axes.values():
                ax.picture = None
                ax.update()
        if new_shape or was_placeholder:
            self.vb.setAspectLocked(locks_aspect(rows, cols), 1.0)
            self.vb.setRange(QRectF(0, 0, cols, rows), padding=0)
            self.detail_info = None
            self.detail.hide()
            self.detail_overlay.hide()
        else:
            self.refresh_detail()
        self.vb.setMouseEnabled(x=True, y=True)
        if was_placeholder and fade_ms > 0 and self.row.isVisible():
            self._fade(fade_ms)
        else:
            self._set_opacity(1.0)

    def release(self):
        """Let go of the full-resolution arrays behind this heatmap (its row is out of view
        and will be refilled before it is seen), so snapshots the history drops are freed."""
        self.prepared = None
        self.detail_info = None

    def show_placeholder(self, big: str, small: str, kind: str = "deferred"):
        """A dashed box with ``big`` (e.g. ``4 × ?``) and an explanation."""
        self.prepared = None
        self._shape = None
        self.placeholder = True
        self.detail_info = None
        if self._anim is not None:
            self._anim.stop()
        for item in (self.image, self.overlay, self.detail, self.detail_overlay, self.outline):
            item.hide()
        self.bar.hide()
        self.plot.set_axes_visible(False)
        t = self.theme
        color = t.deferred if kind == "deferred" else t.muted
        self.placeholder_box.setPen(_dash_pen(color))
        fill = QColor(color)
        fill.setAlphaF(0.08 if kind == "deferred" else 0.04)
        self.placeholder_box.setBrush(fill)
        self.placeholder_box.setVisible(kind != "empty")
        size = "15pt" if len(big) < 14 else "11pt"
        self.placeholder_text.setHtml(
            f"<div style='text-align:center'><span style='font-size:{size}; font-weight:600; "
            f"color:{color.name()}'>{_esc(big)}</span><br><span style='font-size:8pt; "
            f"color:{t.muted.name()}'>{_esc(small)}</span></div>")
        self.placeholder_text.setTextWidth(170)
        self.placeholder_text.setPos(0.5, 0.5)
        self.placeholder_text.show()
        self.vb.setAspectLocked(False)
        self.vb.setRange(QRectF(0, 0, 1, 1), padding=0)
        self.vb.setMouseEnabled(x=False, y=False)
        self._set_opacity(1.0)

    def _set_opacity(self, value: float):
        if value == self._opacity:
            return
        self._opacity = value
        for item in (self.image, self.overlay, self.detail, self.detail_overlay):
            item.setOpacity(value)

    def _fade(self, ms: int):
        if self._anim is None:
            self._anim = QVariantAnimation(self.row)     # dies with the row
            self._anim.valueChanged.connect(lambda v: self._set_opacity(float(v)))
        self._anim.stop()
        self._anim.setDuration(ms)
        self._anim.setStartValue(0.0)
        self._anim.setEndValue(1.0)
        self._set_opacity(0.0)
        self._anim.start()

    # ----------------------------------------------------------------- zoom
    def _on_range_changed(self, *_):
        if self.prepared is not None and self.prepared.factors != (1, 1):
            self._detail_timer.start()

    def view_caps(self) -> tuple[int, int]:
        """One value per device pixel of the ViewBox."""
        size = self.vb.size()
        w, h = size.width(), size.height()
        if w < 8 or h < 8:
            w, h = VIEW_W, VIEW_H_1D if self.row.strip else VIEW_H_2D
        return display_caps((1, 1), False, self.row.panel.devicePixelRatioF(), view=(w, h))

    def visible_region(self):
        """(r0, r1, c0, c1) of the original array in view, or None."""
        if self.prepared is None:
            return None
        rows, cols = self.prepared.source.shape
        vr = self.vb.viewRect()
        r0 = max(0, int(math.floor(vr.top())))
        r1 = min(rows, int(math.ceil(vr.bottom())))
        c0 = max(0, int(math.floor(vr.left())))
        c1 = min(cols, int(math.ceil(vr.right())))
        if r1 <= r0 or c1 <= c0:
            return None
        return r0, r1, c0, c1

    def refresh_detail(self):
        """Re-render the visible region from the original values when zoomed into a pooled
        heatmap (exact once the region fits in 512×512)."""
        self._detail_timer.stop()
        prep = self.prepared
        if prep is None or prep.factors == (1, 1):
            self._hide_detail()
            return
        region = self.visible_region()
        if region is None:
            self._hide_detail()
            return
        r0, r1, c0, c1 = region
        rows, cols = prep.source.shape
        if region == (0, rows, 0, cols):
            self._hide_detail()             # everything in view: the pooled image is it
            return
        caps = self.view_caps()
        want = (max(1, math.ceil((r1 - r0) / caps[0])), max(1, math.ceil((c1 - c0) / caps[1])))
        if want[0] >= prep.factors[0] and want[1] >= prep.factors[1]:
            self._hide_detail()             # not zoomed in far enough to gain anything
            return
        if self.detail_info is not None and self.detail_info[:4] == region:
            return
        pooled, factors = pool_display(np.ascontiguousarray(prep.source.region(r0, r1, c0, c1)),
                                       *caps)
        rect = QRectF(c0, r0, c1 - c0, r1 - r0)
        self.detail.setImage(pooled, autoLevels=False, levels=self.levels)
        self.detail.setRect(rect)
        self.detail.show()
        ov = _overlay_rgba(pooled)
        if ov is None:
            self.detail_overlay.hide()
        else:
            self.detail_overlay.setImage(ov, autoLevels=False, levels=(0, 255))
            self.detail_overlay.setRect(rect)
            self.detail_overlay.show()
        self.detail_info = (r0, r1, c0, c1, factors)
        self.row.refresh_caption(self)

    def _hide_detail(self):
        changed = self.detail_info is not None
        self.detail_info = None
        self.detail.hide()
        self.detail_overlay.hide()
        if changed:
            self.row.refresh_caption(self)

    def zoom_exact(self, view_pos: QPointF | None = None):
        """Zoom to a window small enough for exact values around ``view_pos``; on an exact
        view (or an unpooled heatmap) show everything again."""
        prep = self.prepared
        if prep is None:
            return
        rows, cols = prep.source.shape
        exact = prep.factors == (1, 1) or (self.detail_info is not None and
                                           self.detail_info[4] == (1, 1))
        if exact or view_pos is None:
            self.vb.setRange(QRectF(0, 0, cols, rows), padding=0)
        else:
            half = EXACT_WINDOW / 2
            cy = min(max(view_pos.y(), half), rows - half)
            cx = min(max(view_pos.x(), half), cols - half)
            self.vb.setRange(QRectF(cx - half, cy - half, EXACT_WINDOW, EXACT_WINDOW),
                             padding=0)
        self.refresh_detail()

    # ----------------------------------------------------------------- hover
    def contains_scene(self, scene_pos) -> bool:
        return self.vb.sceneBoundingRect().contains(scene_pos)

    def value_at(self, view_pos: QPointF):
        """(row, col, value, block) for the display cell under ``view_pos``: for a pooled
        heatmap the element of largest magnitude of the block shown there; None outside."""
        prep = self.prepared
        if prep is None:
            return None
        rows, cols = prep.source.shape
        r, c = int(math.floor(view_pos.y())), int(math.floor(view_pos.x()))
        if not (0 <= r < rows and 0 <= c < cols):
            return None
        r0, r1, c0, c1, (fy, fx) = 0, rows, 0, cols, prep.factors
        if self.detail_info is not None:
            dr0, dr1, dc0, dc1, dfac = self.detail_info
            if dr0 <= r < dr1 and dc0 <= c < dc1:       # under the zoomed-in detail image
                r0, r1, c0, c1, (fy, fx) = dr0, dr1, dc0, dc1, dfac
        if (fy, fx) == (1, 1):
            return r, c, prep.source.region(r, r + 1, c, c + 1)[0, 0], None
        br = r0 + ((r - r0) // fy) * fy
        bc = c0 + ((c - c0) // fx) * fx
        br1, bc1 = min(r1, br + fy), min(c1, bc + fx)
        block = prep.source.region(br, br1, bc, bc1)
        k = int(np.argmax(np.abs(block)))
        i, j = divmod(k, block.shape[1])
        return br + i, bc + j, block[i, j], (br, br1 - 1, bc, bc1 - 1)

    def hover_text(self, scene_pos) -> str:
        """What hovering at ``scene_pos`` shows ('' outside the heatmap)."""
        if self.prepared is None or not self.contains_scene(scene_pos):
            return ""
        return self.hover_text_view(self.vb.mapSceneToView(scene_pos))

    def hover_text_view(self, view_pos: QPointF) -> str:
        hit = self.value_at(view_pos)
        if hit is None:
            return ""
        r, c, value, block = hit
        text = f"{self.row.name} · {self.title}  {self.prepared.source.index_text(r, c)} = " \
               f"{_fmt(value)}"
        if block is not None:
            br, br1, bc, bc1 = block
            text += (f"   (largest |value| of rows {br}–{br1}, columns {bc}–{bc1})"
                     if self.prepared.source.shape[0] > 1 else
                     f"   (largest |value| of {bc}–{bc1})")
        return text

    def show_outline(self, r: int | None, c: int | None, fy: int = 1, fx: int = 1):
        if r is None or self.prepared is None:
            self.outline.hide()
            return
        rows, cols = self.prepared.source.shape
        if not (0 <= r < rows and 0 <= c < cols):
            self.outline.hide()
            return
        self.outline.setRect(QRectF(c, r, fx, fy))
        self.outline.show()


def _dash_pen(color: QColor) -> QPen:
    pen = QPen(color, 1.4, Qt.PenStyle.DashLine)
    pen.setCosmetic(True)
    return pen


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ======================================================================== rows
_COLUMN_TITLES = {"A": "A", "B": "B", "D": "B − A", "G": "grad at B"}


class ParamRow(QFrame):
    """One parameter: a title line and a strip of heatmaps."""

    def __init__(self, panel: HeatmapPanel, name: str):
        super().__init__()
        self.panel = panel
        self.name = name
        self.theme = panel.theme
        self.setObjectName("heatmapRow")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.title = QLabel(self)
        self.title.setObjectName("heatmapRowTitle")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.title.setWordWrap(True)
        self.glw = pg.GraphicsLayoutWidget(self)
        self.glw.setObjectName("heatmapRowView")
        self.glw.ci.setContentsMargins(2, 0, 2, 2)
        self.glw.ci.setSpacing(2)
        self.glw.setFrameShape(QFrame.Shape.NoFrame)
        self.glw.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.glw.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.glw.setBackground(self.theme.background)
        self.glw.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 6, 4, 2)
        layout.setSpacing(1)
        layout.addWidget(self.title)
        layout.addWidget(self.glw)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.cells: dict[str, HeatmapCell] = {}
        self.columns: list[str] = []
        self.strip = False
        self.stale = True
        self._hover_key = None
        self._title_html = None
        self._plot_h = None
        self.pending = (None, None, False)
        self._want = ([], False)
        self.shaped = False
        self.contributions, self.users = (), ()

        self.glw.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.glw.customContextMenuRequested.connect(
            lambda pos: panel._show_menu(self.glw.mapToGlobal(pos), self))

    # ----------------------------------------------------------------- layout
    def cell(self, key: str) -> HeatmapCell:
        c = self.cells.get(key)
        if c is None:
            c = self.cells[key] = HeatmapCell(self, key)
        return c

    def set_columns(self, keys: list[str], strip: bool):
        """Size the row for heatmaps ``keys``; the pyqtgraph items (costly to create) are made
        by :meth:`build` when the row is first filled."""
        plot_h = PLOT_H_1D if strip else PLOT_H_2D
        self._want = (list(keys), strip)
        self.glw.setFixedSize(CELL_W * max(1, len(keys)) + 4, LABEL_H + plot_h + 8)
        self._resize()

    def build(self):
        """Lay out the cells :meth:`set_columns` asked for (reusing existing ones)."""
        keys, strip = self._want
        plot_h = PLOT_H_1D if strip else PLOT_H_2D
        if keys == self.columns and plot_h == self._plot_h:
            return
        ci = self.glw.ci
        ci.clear()
        for i, key in enumerate(keys):
            c = self.cell(key)
            ci.addItem(c.caption, row=0, col=i)
            ci.addItem(c.plot, row=1, col=i)
            c.plot.setFixedHeight(plot_h)
            c.plot.setFixedWidth(CELL_W - 6)
        self.columns = list(keys)
        self.strip = strip
        self._plot_h = plot_h

    def set_title(self, html: str):
        if html != self._title_html:
            self._title_html = html
            self.title.setText(html)
            self._resize()

    def _resize(self):
        w = self.glw.width()
        self.title.setFixedWidth(w)
        self.title.setFixedHeight(max(self.title.heightForWidth(w),
                                      self.title.fontMetrics().height() + 2))
        self.setFixedSize(w + 8, self.glw.height() + self.title.height() + 9)

    def refresh_caption(self, cell: HeatmapCell):
        self.panel._caption_for(self, cell)

    def restyle(self, theme: _Theme):
        self.theme = theme
        self.glw.setBackground(theme.background)
        for c in self.cells.values():
            c._restyle(theme)
        self._title_html = None
        self.stale = True

    # ----------------------------------------------------------------- hover
    def _on_mouse_moved(self, scene_pos):
        for key in self.columns:
            c = self.cells[key]
            if c.prepared is not None and c.contains_scene(scene_pos):
                view = c.vb.mapSceneToView(scene_pos)
                text = c.hover_text_view(view)
                hit = c.value_at(view)
                self._outline(hit, c)
                self.panel._show_hover(text)
                if text:
                    QToolTip.showText(QCursor.pos(), text.replace("   (", "\n("), self.glw)
                return
        self._outline(None, None)
        self.panel._show_hover("")

    def _outline(self, hit, source_cell):
        """Outline the same display cell in every heatmap of the row (same coordinates)."""
        for key in self.columns:
            c = self.cells[key]
            if hit is None:
                c.show_outline(None, None)
                continue
            r, col, _v, block = hit
            if block is not None:
                br, br1, bc, bc1 = block
                c.show_outline(br, bc, br1 - br + 1, bc1 - bc + 1)
            else:
                c.show_outline(r, col)

    def leaveEvent(self, event):  # noqa: N802
        self._outline(None, None)
        self.panel._show_hover("")
        super().leaveEvent(event)


# ======================================================================== the panel
class HeatmapPanel(QWidget):
    """The heatmap grid for the pair (A, B); see the module docstring.

    ``set_pair(a, b)`` (snapshots or ids — connect ``TimelinePanel.pair_changed`` to it) picks
    the pair; until it is called the panel follows ``history.default_pair()``."""

    fade_ms = 450               # the fade-in of a heatmap replacing a placeholder; 0 = none
    rendered = Signal()         # after every re-render (tests, benchmarks, export)

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.setObjectName("heatmapPanel")
        self.workbench = workbench
        self.theme = _Theme(self.palette())
        self._link = HistoryLink(workbench, self)
        self._explicit: tuple | None = None        # (a_id, b_id) set by set_pair
        self._live: tuple | None = None            # (A, live frame) during a run
        self._pair = (None, None)
        self._rows: dict[str, ParamRow] = {}
        self._order: list[str] = []
        self._pattern = None
        self._per_panel = False
        # pyqtgraph items take ~25 ms per heatmap to create: rows out of view get theirs while
        # the application is idle, one heatmap per tick, so scrolling to them is instant.
        self._prebuild_timer = QTimer(self)
        self._prebuild_timer.setSingleShot(True)
        self._prebuild_timer.setInterval(0)

        self.filter = QLineEdit(self)
        self.filter.setObjectName("heatmapFilter")
        self.filter.setClearButtonEnabled(True)
        self.filter.setPlaceholderText("Filter by name (regex, as collect_params): "
                                       "e.g. .*weight")
        self.filter.setToolTip("A regular expression matched at the start of each parameter's "
                               "full name, like net.collect_params(select)")
        self.per_panel = QCheckBox("Per-panel scales", self)
        self.per_panel.setObjectName("heatmapPerPanelScale")
        self.per_panel.setToolTip("Give every heatmap its own colour scale. Off: A, B and B − A "
                                  "of a parameter share one symmetric scale, and the gradient "
                                  "and its per-use contributions share another.")
        self.export_button = QToolButton(self)
        self.export_button.setObjectName("heatmapExport")
        self.export_button.setText("Export…")
        self.export_button.setToolTip("Save the heatmaps as PNG or SVG")
        self.pair_label = QLabel(self)
        self.pair_label.setObjectName("heatmapPairLabel")
        self.pair_label.setTextFormat(Qt.TextFormat.RichText)
        self.pair_label.setWordWrap(True)     # long snapshot labels must not widen the window

        self.grid = QWidget()
        self.grid.setObjectName("heatmapGrid")
        self.grid_layout = QVBoxLayout(self.grid)
        self.grid_layout.setContentsMargins(4, 2, 4, 8)
        self.grid_layout.setSpacing(0)
        self.empty_label = QLabel(self.grid)
        self.empty_label.setObjectName("heatmapEmpty")
        self.empty_label.setProperty("role", "hint")
        self.empty_label.setWordWrap(True)
        self.empty_label.setContentsMargins(8, 16, 8, 16)
        self.grid_layout.addWidget(self.empty_label)
        self.grid_layout.addStretch(1)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.scroll = QScrollArea(self)
        self.scroll.setObjectName("heatmapScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(self.grid)
        self.hover_label = QLabel(self)
        self.hover_label.setObjectName("heatmapHover")
        self.hover_label.setProperty("role", "hint")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hover_label.setText(self._HOVER_HINT)
        self.hover_label.setWordWrap(True)
        for label in (self.pair_label, self.hover_label):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.setSpacing(8)
        bar.addWidget(self.filter, 1)
        bar.addWidget(self.per_panel)
        bar.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 4)
        layout.setSpacing(4)
        layout.addLayout(bar)
        layout.addWidget(self.pair_label)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.hover_label)

        self.render_now()

        self._link.changed.connect(self._on_history_changed)
        self.workbench.changed.connect(self._on_workbench_changed)
        self.filter.textChanged.connect(self._on_filter_changed)
        self.per_panel.toggled.connect(self._on_scale_mode_changed)
        self.export_button.clicked.connect(lambda: self.export_dialog())
        self.grid.customContextMenuRequested.connect(
            lambda pos: self._show_menu(self.grid.mapToGlobal(pos), None))
        self.scroll.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self._prebuild_timer.timeout.connect(self._prebuild_step)

    _HOVER_HINT = ("Hover a heatmap for exact values · Ctrl+wheel zooms · double-click: "
                   "zoom to exact values / show all · right-click: Export…")

    # ----------------------------------------------------------------- public
    @property
    def history(self):
        return self.workbench.doc.history

    def set_pair(self, a, b) -> None:
        """Compare snapshots ``a`` and ``b`` (Snapshot objects or ids; None → the default
        pair). The slot for ``TimelinePanel.pair_changed``."""
        a_id, b_id = getattr(a, "id", a), getattr(b, "id", b)
        self._explicit = None if a_id is None or b_id is None else (a_id, b_id)
        if self._live is None:
            self.render_now()

    def pair(self):
        """The (Snapshot A, Snapshot B) on screen."""
        return self._pair

    def show_live(self, a, frame) -> None:
        """Compare snapshot ``a`` with ``frame``, a live copy of the parameters during a
        training run (not in the timeline), until :meth:`end_live`."""
        self._live = (a if a is not None else frame, frame)
        self.render_now()

    def end_live(self) -> None:
        """Back to the timeline's pair after a run."""
        if self._live is not None:
            self._live = None
            self.render_now()

    @property
    def live(self) -> bool:
        return self._live is not None

    def set_filter(self, pattern: str) -> None:
        self.filter.setText(pattern)

    def set_per_panel_scales(self, on: bool) -> None:
        self.per_panel.setChecked(on)

    def set_fade_duration(self, ms: int) -> None:
        self.fade_ms = max(0, int(ms))

    def row(self, name: str) -> ParamRow:
        """The row of parameter ``name``, filled for the current pair."""
        return self._ensure(self._rows[name])

    def rows(self) -> list[ParamRow]:
        return [self._rows[n] for n in self._order]

    def visible_rows(self) -> list[str]:
        return [n for n in self._order if not self._rows[n].isHidden()]

    def cell(self, name: str, column: str) -> HeatmapCell:
        """The heatmap of parameter ``name`` in ``column``: 'A', 'B', 'D' (B − A), 'G' (the
        gradient at B) or 'C0', 'C1'... (each use's contribution to it)."""
        return self._ensure(self._rows[name]).cells[column]

    def hover_text(self, name: str, column: str, scene_pos) -> str:
        """The hover text for ``scene_pos`` (scene coordinates of the row's view)."""
        return self.cell(name, column).hover_text(scene_pos)

    def render_now(self) -> None:
        """Re-render the grid from the history and the chosen pair."""
        a, b = self._resolve_pair()
        self._pair = (a, b)
        self._render(a, b)
        self.rendered.emit()

    # ----------------------------------------------------------------- slots
    def _on_history_changed(self):
        self.render_now()

    def _on_workbench_changed(self, what: str):
        if what == "structure":
            for row in self._rows.values():
                row._title_html = None
            self.render_now()

    def _on_filter_changed(self, text: str):
        text = text.strip()
        error = ""
        if not text:
            self._pattern = None
        else:
            try:
                self._pattern = re.compile(text)
            except re.error as err:
                self._pattern = None
                error = f"not a valid regular expression: {err}"
        self.filter.setProperty("invalid", bool(error))
        self.filter.setToolTip(error or "A regular expression matched at the start of each "
                               "parameter's full name, like net.collect_params(select)")
        if error:
            self.filter.setStyleSheet("QLineEdit { border: 1px solid #d64545; "
                                      "color: #d64545; }")
        else:
            self.filter.setStyleSheet("")
        self._apply_filter()

    def _on_scale_mode_changed(self, on: bool):
        self._per_panel = bool(on)
        for row in self._rows.values():
            row.stale = True
        self._fill_visible()

    def changeEvent(self, event):  # noqa: N802
        if event.type() == event.Type.PaletteChange:
            self.theme = _Theme(self.palette())
            for row in self._rows.values():
                row.restyle(self.theme)
            self.render_now()
        super().changeEvent(event)

    # ----------------------------------------------------------------- pair
    def _resolve_pair(self):
        if self._live is not None:
            return self._live
        history = self.history
        if self._explicit is not None:
            ids = {s.id: s for s in history.snapshots}
            a_id, b_id = self._explicit
            if a_id in ids and b_id in ids:
                return ids[a_id], ids[b_id]
            self._explicit = None           # dropped by the budget: back to the default
        return history.default_pair()

    # ----------------------------------------------------------------- rendering
    def _render(self, a, b):
        if b is None:
            self._set_order([])
            self.pair_label.setText("")
            self._set_empty("No snapshots yet. Initialize the network: its parameters appear "
                            "here, and every operation that changes them is recorded.")
            return
        def tag(s):                 # a live frame (negative id) is not in the timeline
            return f"{'' if s.id < 0 else f'#{s.id} '}{_esc(s.label)}"
        self.pair_label.setText(
            f"<b>A</b> {tag(a)} &nbsp;→&nbsp; <b>B</b> {tag(b)}"
            + ("" if a is not b else " &nbsp;<i>(only one snapshot: B − A is zero)</i>"))
        names = list(b.params) + [n for n in a.params if n not in b.params]
        self._set_order(names)
        any_grad = any(_has_grad(rec) for rec in b.params.values())
        for name in names:
            row = self._rows[name]
            row.stale = True
            row.shaped = False
            row.pending = (a.params.get(name), b.params.get(name), any_grad)
        self._apply_filter()
        for name in names:
            row = self._rows[name]
            if row.stale:
                for cell in row.cells.values():
                    cell.release()
        if not names:
            self._set_empty("The network has no parameters yet: add a layer.")

    def _set_empty(self, text):
        self.empty_label.setText(text)
        self.empty_label.show()

    def _set_order(self, names):
        for gone in [n for n in self._rows if n not in names]:
            row = self._rows.pop(gone)
            self.grid_layout.removeWidget(row)
            row.hide()
            row.setParent(None)
            row.deleteLater()
        for n in names:
            if n not in self._rows:
                row = self._rows[n] = ParamRow(self, n)
                row.hide()
        if names != self._order:
            for n in self._order:
                if n in self._rows:
                    self.grid_layout.removeWidget(self._rows[n])
            for i, n in enumerate(names):
                self.grid_layout.insertWidget(1 + i, self._rows[n], 0,
                                              Qt.AlignmentFlag.AlignLeft)
            self._order = list(names)

    def _apply_filter(self):
        """Show the rows the filter matches (laid out, so the grid has its real height), and
        fill the ones in view."""
        pattern = self._pattern
        shown = 0
        for n in self._order:
            row = self._rows[n]
            visible = pattern is None or pattern.match(n) is not None
            if visible:
                if not row.shaped:
                    self._shape_row(row)
                shown += 1
            row.setVisible(visible)
        if self._order:
            if shown == 0:
                self._set_empty(f"No parameter name matches “{_esc(self.filter.text())}” "
                                f"(matched at the start, like collect_params).")
            else:
                self.empty_label.hide()
        self._fill_visible()
        self._prebuild_timer.start()

    def _fill_visible(self):
        """Fill the stale rows within (or half a screen around) the scrolled-to region: a pair
        switch costs the rows on screen, not the whole model. Scrolling fills the others."""
        top = self.scroll.verticalScrollBar().value()
        height = self.scroll.viewport().height()
        if height < 100 or not self.isVisible():
            height = max(height, 1000)
        lo, hi = top - height // 2, top + height + height // 2
        margins = self.grid_layout.contentsMargins()
        y = margins.top() + (self.empty_label.sizeHint().height()
                             if not self.empty_label.isHidden() else 0)
        for n in self._order:
            row = self._rows[n]
            if row.isHidden():
                continue
            h = row.height()
            if row.stale and y + h >= lo and y <= hi:
                self._fill_row(row)
            y += h + self.grid_layout.spacing()

    def _prebuild_step(self):
        if not self.isVisible():
            return
        for n in self._order:
            row = self._rows[n]
            if row.isHidden():
                continue
            missing = [k for k in row._want[0] if k not in row.cells]
            if missing:
                row.cell(missing[0])
                self._prebuild_timer.start()
                return

    def flush(self) -> None:
        """Fill every row the filter shows (before exporting the whole grid)."""
        for n in self._order:
            row = self._rows[n]
            if not row.isHidden() and row.stale:
                self._fill_row(row)

    def _ensure(self, row: ParamRow) -> ParamRow:
        if not row.shaped:
            self._shape_row(row)
        if row.stale:
            self._fill_row(row)
        return row

    def _on_scrolled(self, *_):
        self._fill_visible()

    def resizeEvent(self, event):  # noqa: N802
        super().resizeEvent(event)
        self._fill_visible()

    def showEvent(self, event):  # noqa: N802
        super().showEvent(event)
        self._fill_visible()

    def _shape_row(self, row: ParamRow):
        """The cheap part: which heatmaps the row has, its title and size."""
        ra, rb, any_grad = row.pending
        rec = rb if rb is not None else ra
        shape = tuple(rec.shape) if rec is not None else ()
        contributions, users = self._contributions(row.name, rb)
        columns = ["A", "B", "D"]
        if any_grad:
            columns.append("G")
            columns += [f"C{i}" for i in range(len(contributions))]
        row.set_columns(columns, len(shape) <= 1)
        row.set_title(self._row_title(row.name, ra, rb, users, counts=not row.stale))
        row.contributions, row.users = contributions, users
        row.shaped = True

    def _fill_row(self, row: ParamRow):
        """The heatmaps of a row for the current pair."""
        if not row.shaped:
            self._shape_row(row)
        ra, rb, any_grad = row.pending
        row.stale = False
        row.build()
        contributions, users = row.contributions, row.users
        a, b = self._pair
        row.set_title(self._row_title(row.name, ra, rb, users))
        fade = self.fade_ms if self.isVisible() else 0

        dpr = self.devicePixelRatioF()
        pa = _prep_record(ra, dpr)
        pb = _prep_record(rb, dpr)
        pd = None
        if pa is not None and pb is not None and ra.data.shape == rb.data.shape:
            pd = prepare_diff(ra.data, rb.data, _caps_for(rb.data.shape, dpr))
        shared = _levels(*(p.maxabs for p in (pa, pb, pd) if p is not None))
        for key, prep, rec_, snap in (("A", pa, ra, a), ("B", pb, rb, b)):
            cell = row.cell(key)
            cell.title = f"{key} #{snap.id}" if snap.id >= 0 else f"{key} live"
            if prep is None:
                self._placeholder(cell, rec_, key)
            else:
                cell.show_prepared(prep, _levels(prep.maxabs) if self._per_panel else shared,
                                   fade_ms=fade)
            self._caption_for(row, cell, snap)
        d = row.cell("D")
        d.title = "B − A"
        if pd is not None:
            d.show_prepared(pd, _levels(pd.maxabs) if self._per_panel else shared, fade_ms=fade)
        elif pa is not None and pb is not None:
            d.show_placeholder("shapes differ", f"A {format_dims(ra.shape)}, "
                               f"B {format_dims(rb.shape)}", kind="muted")
        else:
            missing = "A" if pa is None else "B"
            d.show_placeholder("—", f"{missing} has no values yet", kind="muted")
        self._caption_for(row, d)
        if any_grad:
            g = row.cell("G")
            g.title = "grad at B" + (" = Σ uses" if contributions else "")
            pg_ = None if rb is None or rb.grad is None else \
                prepare_array(rb.grad, _caps_for(rb.grad.shape, dpr))
            pcs = [prepare_array(c, _caps_for(c.shape, dpr)) for c in contributions]
            gshared = _levels(*(p.maxabs for p in [pg_, *pcs] if p is not None))
            if pg_ is None:
                g.show_placeholder("no gradient",
                                   "this parameter has no values in B"
                                   if rb is None or rb.data is None else
                                   "not trained by gradients (grad_req 'null')", kind="muted")
            else:
                g.show_prepared(pg_, _levels(pg_.maxabs) if self._per_panel else gshared,
                                fade_ms=fade)
            self._caption_for(row, g)
            for i, (c, pc) in enumerate(zip(contributions, pcs)):
                cell = row.cell(f"C{i}")
                cell.title = f"from {self._user_title(users[i], short=True)}" \
                    if i < len(users) else f"from use {i + 1}"
                cell.show_prepared(pc, _levels(pc.maxabs) if self._per_panel else gshared,
                                   fade_ms=fade)
                self._caption_for(row, cell)

    def _placeholder(self, cell: HeatmapCell, rec, key):
        if rec is None:
            cell.show_placeholder("not in " + key, "this parameter did not exist then",
                                  kind="muted")
        elif rec.state == "deferred":
            cell.show_placeholder(format_dims(rec.shape),
                                  "deferred: ? is learned at the first forward")
        elif rec.state == "uninitialized":
            cell.show_placeholder(format_dims(rec.shape), "not initialized yet", kind="muted")
        else:
            cell.show_placeholder(format_dims(rec.shape), "no values", kind="muted")

    def _caption_for(self, row: ParamRow, cell: HeatmapCell, snap=None):
        """Caption: the column's title, then the shape / pooling / non-finite counts / scale."""
        t = self.theme
        key = cell.key
        if key in ("A", "B"):
            snap = snap or (self._pair[0] if key == "A" else self._pair[1])
            num = f"#{snap.id} " if snap.id >= 0 else ""      # a live frame has no number
            head = f"<b>{key}</b> <span style='color:{t.muted.name()}'>{num}" \
                   f"{_esc(_short(snap.label, 30))}</span>"
        elif key == "D":
            head = "<b>B − A</b>"
        elif key == "G":
            head = "<b>grad at B</b>" + (" = Σ uses" if "Σ" in cell.title else "")
        else:
            head = f"<b>{_esc(_short(cell.title, 30))}</b>"
        prep = cell.prepared
        parts = []
        if prep is not None:
            rows, cols = prep.source.shape
            fy, fx = prep.factors
            if cell.detail_info is not None:
                dfy, dfx = cell.detail_info[4]
                parts.append("zoomed: exact values" if (dfy, dfx) == (1, 1) else
                             f"zoomed: pooled {dfy}×{dfx}")
            elif (fy, fx) != (1, 1):
                parts.append(f"max-|v| pooled {fy}×{fx}" if rows > 1 else
                             f"max-|v| pooled by {fx}")
            else:
                parts.append(f"{rows}×{cols}" if rows > 1 else f"{cols}")
            counts = _counts_html(prep.counts, compact=True)
            if counts:
                parts[-1] = parts[-1].replace("max-|v| ", "")
                parts.append(f"<span style='color:{t.error.name()}'>{counts}</span>")
            else:
                parts.append(f"±{_fmt_level(cell.levels[1])}" if not prep.zero else "all 0")
        sub = f"<span style='color:{t.muted.name()}; font-size:7.5pt'>" + \
              " · ".join(parts) + "</span>" if parts else ""
        cell.set_caption(head + ("<br>" + sub if sub else ""))

    def _row_title(self, name, ra, rb, users, counts: bool = True) -> str:
        t = self.theme
        rec = rb if rb is not None else ra
        shape = format_dims(rec.shape) if rec is not None else "?"
        dtype = "" if rec is None or rec.data is None else f" · {rec.data.dtype.name}"
        orient = " · rows = outputs, columns = inputs" if rec is not None and \
            len(rec.shape) >= 2 else ""
        html = f"<b>{_esc(name)}</b> &nbsp;<span style='color:{t.muted.name()}'>" \
               f"{shape}{dtype}{orient}</span>"
        if len(users) > 1:
            used = ", ".join(_esc(self._user_title(u)) for u in users)
            html += f"<br><span style='color:{t.share.name()}'>shared by {len(users)} " \
                    f"layers: {used}</span>"
        elif users:
            html += f" &nbsp;<span style='color:{t.muted.name()}'>· " \
                    f"{_esc(self._user_title(users[0]))}</span>"
        warn = []
        for key, r in (("A", ra), ("B", rb)) if counts else ():
            if r is not None and r.data is not None:
                counts = _counts_html(_prep_record(r, self.devicePixelRatioF()).counts,
                                      colors=False)
                if counts:
                    warn.append(f"{key}: {counts}")
        if warn:
            html += f" &nbsp;<span style='color:{t.error.name()}'>⚠ " + "; ".join(warn) + \
                    "</span>"
        return html

    def _user_title(self, uid, short: bool = False) -> str:
        doc = self.workbench.doc
        try:
            block = doc.block(uid).name
            name = block[len(NET_PREFIX):] if block.startswith(NET_PREFIX) else block
            if short:
                return f"{name} (layer {doc.index(uid)})"
            return f"{doc.layer_title(uid)} ({name})"
        except Exception:  # noqa: BLE001 - a layer removed since the snapshot
            return str(uid)

    def _contributions(self, name, rb):
        """(per-use gradients of B's gradient, users): B's own, or those of the backward that
        produced the very same gradient array (a step keeps the gradient)."""
        if rb is None:
            return (), ()
        users = tuple(rb.users)
        if rb.contributions:
            return rb.contributions, users
        if rb.grad is None:
            return (), users
        for snap in reversed(self.history.snapshots):
            rec = snap.params.get(name)
            if rec is not None and rec.grad is rb.grad and rec.contributions:
                return rec.contributions, tuple(rec.users) or users
        return (), users

    # ----------------------------------------------------------------- hover, menu, export
    def _show_hover(self, text: str):
        self.hover_label.setText(text or self._HOVER_HINT)

    def _show_menu(self, global_pos, row: ParamRow | None):
        menu = QMenu(self)
        menu.setObjectName("heatmapMenu")
        act = menu.addAction("Export…")
        act.setObjectName("actionExportHeatmaps")
        act.triggered.connect(lambda: self.export_dialog())
        if row is not None:
            act_row = menu.addAction(f"Export {row.name}…")
            act_row.triggered.connect(lambda: self.export_dialog(row))
            menu.addSeparator()
            reset = menu.addAction("Show all (reset zoom)")
            reset.triggered.connect(lambda: [c.zoom_exact(None) for k, c in row.cells.items()
                                             if k in row.columns])
        menu.popup(global_pos)
        self._menu = menu

    def export_widget(self):
        """The widget an export saves: the whole grid (every visible row)."""
        return self.grid

    def export(self, path, row: ParamRow | None = None) -> None:
        from .export import export_widget
        self.flush()
        export_widget(row if row is not None else self.grid, path)

    def export_dialog(self, row: ParamRow | None = None):
        from .export import export_dialog
        self.flush()
        name = "heatmaps" if row is None else row.name
        return export_dialog(self, row if row is not None else self.grid, name)


# ======================================================================== helpers
def _shape2d(shape) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return 1, int(shape[0])
    return int(shape[0]), int(np.prod(shape[1:]))


def _caps_for(shape, dpr: float):
    return display_caps(_shape2d(shape), len(shape) <= 1, dpr)


def _has_grad(rec) -> bool:
    """Whether ``rec`` has a gradient that is not all zeros (cached per array)."""
    if rec is None or rec.grad is None:
        return False
    g = rec.grad
    key = ("nz", id(g))
    hit = _cache.get(key, (g,)) if _Cache.cacheable(g) else None
    if hit is None:
        hit = bool(np.any(g))
        if _Cache.cacheable(g):
            _cache.put(key, (g,), hit)
    return hit


def warm_frame(base, frame, dpr: float = 1.0) -> None:
    """Compute, on the calling thread, what showing ``frame`` against ``base`` needs (B, B − A,
    the gradient and its non-zero test), so the GUI thread finds it all cached and only draws.
    A training run calls it on its worker for each live frame (Snapshot objects; ``base`` may
    be None)."""
    for name, rb in frame.params.items():
        if rb.data is None:
            continue
        _prep_record(rb, dpr)
        ra = None if base is None else base.params.get(name)
        if ra is not None and ra.data is not None and ra.data.shape == rb.data.shape:
            _prep_record(ra, dpr)
            prepare_diff(ra.data, rb.data, _caps_for(rb.data.shape, dpr))
        if rb.grad is not None:
            _has_grad(rb)
            prepare_array(rb.grad, _caps_for(rb.grad.shape, dpr))


def _prep_record(rec, dpr: float):
    if rec is None or rec.data is None:
        return None
    return prepare_array(rec.data, _caps_for(rec.data.shape, dpr))


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"
