"""Distributions: a parameter's values against the density its initializer claims to draw from.

For the parameter picked in the workbench (a parameter, or the first parameter of a selected
layer; the combo picks any other) the panel shows:

- a histogram of its current values (bars from :func:`analysis.histogram`) with the
  initializer's theoretical density drawn over it, scaled to counts (density × n × bin width);
- a goodness-of-fit line, ``KS D = 0.0123, p = 0.81 (n = 1000)``, green / amber / red by the
  p-value (≥ 0.05 / ≥ 1e-3 / below), so a plugin whose draws do not match the density it claims
  stands out at once;
- point masses (zeros, ones, a constant) as a vertical line and how many values match it;
- Orthogonal (no density) by the singular values of its ``(out, rest)`` matrix against the
  constant ``scale`` they should all equal (for a large weight, of a fixed random subset of
  256 rows: any subset of orthonormal rows is orthonormal);
- deferred and uninitialized parameters explained in words, not as an empty plot.

When the values changed since they were drawn (a step, set_data) the panel says the density
describes the initial draw. Everything is rebuilt from the document on ``workbench.changed``
(debounced, and only while visible).

The module also holds the small plot helpers the other analysis panels share: palette-aware
plot colours (:func:`plot_colors`, :func:`style_plot`) and PNG/SVG export
(:func:`export_plot`, :func:`install_export_action`, through :mod:`app.ui.export`).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QAction, QColor, QPalette
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton,
                               QSizePolicy, QStackedWidget, QVBoxLayout, QWidget)

from app.document import analysis
from app.engine import init as engine_init


def message_page(name: str, button_text: str, tooltip: str):
    """A page with a centred, wrapping message and one action button under it (shown instead of
    a plot when there is nothing to draw yet). Returns ``(page, label, button)``."""
    message = QLabel()
    message.setObjectName(name + "Message")
    message.setWordWrap(True)
    message.setAlignment(Qt.AlignmentFlag.AlignCenter)
    message.setMargin(16)
    button = QPushButton(button_text)
    button.setObjectName(name + button_text.split()[0] + "Button")
    button.setToolTip(tooltip)
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.addStretch(1)
    layout.addWidget(message)
    row = QHBoxLayout()
    row.addStretch(1)
    row.addWidget(button)
    row.addStretch(1)
    layout.addLayout(row)
    layout.addStretch(2)
    return page, message, button


from .layers_panel import blend, ui_colors

__all__ = ["DistributionPanel", "plot_colors", "style_plot", "set_axis_label", "export_plot",
           "plot_frame", "LegendLabel",
           "install_export_action", "fit_verdict", "format_p",
           "draw_origin", "KS_MAX_N"]

KS_MAX_N = 1_000_000            # larger parameters are tested on a fixed random subset
ORTHO_MAX_VECTORS = 256         # Orthogonal check: rows (or columns) checked at most
HEADROOM = 1.08                 # room above the tallest bar
DRAW_LABELS = ("initialize", "force re-initialize", "forward: deferred shapes resolved")
RESTORE_LABELS = ("undo", "redo", "load", "restore")


# ======================================================================== shared plot helpers
def plot_colors(palette: QPalette) -> dict:
    """Colours for plots that read on ``palette`` (light or dark)."""
    c = ui_colors(palette)
    dark = c["dark"]
    return {
        "dark": dark,
        "bg": c["base"],
        "fg": c["text"],
        "muted": c["muted"],
        "grid": c["faint"],
        "bars": QColor("#6ea1ff") if dark else QColor("#3b78e7"),
        "curve": QColor("#ff9f43") if dark else QColor("#d9480f"),
        "act": QColor("#6ea1ff") if dark else QColor("#1f63c9"),
        "grad": QColor("#ff9f43") if dark else QColor("#d9480f"),
        "good": QColor("#5cc27a") if dark else QColor("#1e7f3c"),
        "warn": QColor("#e0a63a") if dark else QColor("#a86a00"),
        "bad": QColor("#ff6b6b") if dark else QColor("#c62828"),
    }


def style_plot(plot: pg.PlotItem, colors: dict) -> None:
    """Axes, grid and title of ``plot`` in the palette's colours."""
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(colors["muted"]))
        axis.setTextPen(pg.mkPen(colors["fg"]))
        axis.label.setDefaultTextColor(colors["fg"])
        # Plain numbers on the axes (0.05, not "50 (x0.001)"): no SI prefix range at all.
        axis.setSIPrefixEnableRanges(())
        axis.updateAutoSIPrefix()
    plot.showGrid(x=True, y=True, alpha=0.18)
    plot.titleLabel.setAttr("color", colors["fg"].name())
    plot.titleLabel.item.setDefaultTextColor(colors["fg"])


def set_axis_label(plot: pg.PlotItem, side: str, text: str) -> None:
    """An axis title with plain tick numbers (pyqtgraph's setLabel re-enables SI scaling)."""
    axis = plot.getAxis(side)
    axis.setLabel(text, siPrefixEnableRanges=())
    axis.updateAutoSIPrefix()


_SWATCH = {"bar": "■", "line": "━━", "dash": "╍╍", "dot": "●", "line-dot": "━●━",
           "dash-square": "╍■╍"}


class LegendLabel(QLabel):
    """A legend above the plot (never over the data): coloured swatches and their texts."""

    def __init__(self, object_name: str, parent=None):
        super().__init__(parent)
        self.setObjectName(object_name)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setContentsMargins(4, 0, 4, 0)
        self.entries: list = []

    def set_entries(self, entries) -> None:
        """``entries``: ``(kind, QColor, text)`` with kind in bar, line, dash, dot, line-dot,
        dash-square."""
        self.entries = list(entries)
        parts = [f"<span style='color:{color.name()}; font-weight:bold'>{_SWATCH[kind]}"
                 f"</span>&nbsp;{html.escape(text)}" for kind, color, text in self.entries]
        self.setText("&nbsp;&nbsp;&nbsp; ".join(parts))
        self.setVisible(bool(parts))


def plot_frame(view: pg.GraphicsView, header: QWidget | None = None) -> QWidget:
    """A plain widget holding ``view`` (and a ``header`` such as a :class:`LegendLabel` above
    it): what gets exported (``QWidget.render`` of a frame paints the graphics view inside it;
    a QGraphicsView's own ``render`` has another signature)."""
    frame = QWidget()
    frame.setObjectName(f"{view.objectName() or 'plot'}Frame")
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    if header is not None:
        layout.addWidget(header)
    layout.addWidget(view, 1)
    return frame


def export_plot(widget: QWidget, path) -> Path:
    """Write ``widget`` (a :func:`plot_frame`) to ``path``: PNG, or SVG for ``.svg``.

    Uses the shared :mod:`app.ui.export` (what every panel exports with); without it, a PNG
    from pyqtgraph's ImageExporter or an SVG rendered through QSvgGenerator (pyqtgraph's own
    SVGExporter cannot parse the path data Qt ≥ 6.7 writes, pyqtgraph/pyqtgraph#3485)."""
    try:
        from app.ui import export as shared
    except ImportError:                 # pragma: no cover - the shared module is part of app
        shared = None
    if shared is not None:
        return shared.export_widget(widget, path)
    path = Path(path)
    if path.suffix.lower() == ".svg":
        _export_svg(widget, path)
    elif not widget.grab().save(str(path), "PNG"):
        raise OSError(f"cannot write {path}")
    return path


def _export_svg(view, path: Path) -> None:
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtGui import QPainter
    from PySide6.QtSvg import QSvgGenerator
    size = view.size()
    gen = QSvgGenerator()
    gen.setFileName(str(path))
    gen.setSize(size)
    gen.setViewBox(QRect(0, 0, size.width(), size.height()))
    gen.setTitle("ParamLab plot")
    painter = QPainter()
    if not painter.begin(gen):
        raise OSError(f"cannot write {path}")
    try:
        view.render(painter, QPoint(0, 0))
    finally:
        painter.end()


def install_export_action(view: pg.GraphicsView, owner: QWidget, name: str,
                          target: QWidget) -> QAction:
    """Put "Export…" (PNG or SVG) in the context menu of every plot in ``view``.

    pyqtgraph shows a view box's menu on right-click and appends the scene's actions to it;
    ours replaces pyqtgraph's generic export dialog and saves ``target`` (the plot's
    :func:`plot_frame`) as it is shown."""
    action = QAction("Export…", owner)
    action.setObjectName("actionExportPlot")
    action.setToolTip("Save this plot as a PNG or SVG image")

    def _on_export_triggered():
        try:
            from app.ui import export as shared
        except ImportError:             # pragma: no cover
            shared = None
        if shared is not None:
            shared.export_dialog(owner, target, name)
            return
        path, chosen = QFileDialog.getSaveFileName(
            owner, "Export", f"{name}.png", "PNG image (*.png);;SVG drawing (*.svg)")
        if path:
            p = Path(path)
            if not p.suffix:
                p = p.with_suffix(".svg" if chosen.startswith("SVG") else ".png")
            export_plot(target, p)
    action.triggered.connect(_on_export_triggered)
    view.scene().contextMenu = [action]
    return action


# ======================================================================== text helpers
def format_p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    if p >= 0.995:
        return "1.00"
    if p >= 0.01:
        return f"{p:.2f}"
    if p <= 0.0:
        return "< 1e-300"
    if p < 1e-16:
        return "< 1e-16"
    return f"{p:.1e}".replace("e-0", "e-")


def fit_verdict(p: float) -> str:
    """'good' (p ≥ 0.05), 'warn' (p ≥ 1e-3) or 'bad'."""
    if not np.isfinite(p):
        return "warn"
    if p >= 0.05:
        return "good"
    if p >= 1e-3:
        return "warn"
    return "bad"


def _g(x: float) -> str:
    """A compact number: 0.0402, -1.5e-05, 3.2e+04 → 3.2e4."""
    if x == 0 or not np.isfinite(x):
        return f"{x:g}"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.4g}"
    m, e = f"{x:.2e}".split("e")
    return f"{m}e{int(e)}"


def draw_origin(doc, name: str, values: np.ndarray):
    """Were ``values`` drawn by the initializer as they are now?

    Returns ``(status, detail)``: ``'fresh'`` (equal to the last draw in the snapshot
    history), ``'changed'`` (changed since; ``detail`` lists what changed them) or
    ``'unknown'`` (no draw in the history: loaded from a file, or dropped from the budget)."""
    drawn, after = None, []
    prev = None
    for snap in doc.history.snapshots:
        rec = snap.params.get(name)
        if rec is None:
            prev = None
            continue
        was = prev.data if prev is not None else None
        # a draw: initialize, or the first values of a deferred parameter (the forward, or a
        # backward, that resolved its shape) — not values put back by undo/redo/load
        restored = snap.label.startswith(RESTORE_LABELS)
        if rec.data is not None and (snap.label in DRAW_LABELS[:2] or (
                was is None and prev is not None and prev.state == "deferred" and
                not restored)):
            drawn, after = rec.data, []
        elif drawn is not None and rec.data is not None and rec.data is not was:
            if rec.data is drawn or (rec.data.shape == drawn.shape and
                                     np.array_equal(rec.data, drawn, equal_nan=True)):
                after = []                      # back to the draw (an undo)
            elif not restored and (was is None or not np.array_equal(rec.data, was,
                                                                     equal_nan=True)):
                after.append(snap.label.split(" ")[0])
        prev = rec
    if drawn is None:
        return "unknown", ""
    if drawn.shape == values.shape and np.array_equal(drawn, values, equal_nan=True):
        return "fresh", ""
    steps = after.count("step")
    parts = []
    if steps:
        parts.append(f"{steps} step{'s' if steps != 1 else ''}")
    others = sorted({a for a in after if a != "step"})
    parts += others
    return "changed", ", ".join(parts)


def _param_title(name: str) -> str:
    from app.document.model import NET_PREFIX
    return name[len(NET_PREFIX):] if name.startswith(NET_PREFIX) else name


# ======================================================================== the panel
class RefreshWhenVisible:
    """Mixin for plot panels that redraw (``self._redraw()``) on a debounced single-shot timer
    only while visible: a panel marked ``self._stale`` catches up when shown, and a palette
    change (light ↔ dark) marks it stale. While a training run holds the model (the workbench
    is busy) the panel says it waits, and catches up when the run ends: its values change
    under it, and an analysis must not touch the gradients the run is about to use."""

    WAITING = "Training… this panel updates when the run ends."

    def _init_refresh(self, workbench, interval_ms: int) -> None:
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_timer_timeout)
        workbench.busy_changed.connect(self._on_busy_changed)

    @property
    def pending(self) -> bool:
        return self._timer.isActive() or self._stale

    def flush(self) -> None:
        """Redraw now if a change is pending (tests, screenshots)."""
        if self.pending:
            self._timer.stop()
            self._redraw()

    def _held_by_run(self) -> bool:
        """True (and the waiting message shown) while a run holds the model."""
        if not self._wb.busy:
            return False
        self._stale = True
        self.forward_button.hide()
        self._show_message(self.WAITING)
        return True

    def _on_busy_changed(self, what: str) -> None:
        if not what and self._stale:
            self._timer.start()

    def _on_timer_timeout(self) -> None:
        if self.isVisible():
            self._redraw()

    def showEvent(self, event):  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._stale:
            self._timer.start()

    def changeEvent(self, event):  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._stale = True
            self._timer.start()


class DistributionPanel(RefreshWhenVisible, QWidget):
    """Histogram + theoretical density + KS fit for one parameter (``distributionPanel``)."""

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.setObjectName("distributionPanel")
        self._wb = workbench
        self._name: str | None = None
        self._stale = True
        self.mode = "empty"         # empty | message | histogram | point | orthogonal
        self.values = None          # the values shown (float64, finite)
        self.density = None         # analysis.Density or None
        self.ks = None              # (D, p, n) or None
        self.verdict = None         # 'good' | 'warn' | 'bad' | None
        self.singular_values = None
        self.max_deviation = None
        self.counts = self.edges = None
        self.point_match = None
        self.colors = plot_colors(self.palette())

        # --- header: parameter picker
        self.combo = QComboBox()
        self.combo.setObjectName("distributionParamCombo")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setToolTip("The parameter whose values are shown")
        picker = QHBoxLayout()
        picker.setSpacing(6)
        label = QLabel("Parameter")
        label.setBuddy(self.combo)
        picker.addWidget(label)
        picker.addWidget(self.combo)
        picker.addStretch(1)
        self.combo.setMinimumContentsLength(18)

        self.title = QLabel()
        self.title.setObjectName("distributionTitle")
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.fit_label = QLabel()
        self.fit_label.setObjectName("distributionFit")
        self.fit_label.setWordWrap(True)
        self.fit_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.fit_label.font()
        font.setWeight(font.Weight.DemiBold)
        self.fit_label.setFont(font)
        self.note = QLabel()
        self.note.setObjectName("distributionNote")
        self.note.setProperty("role", "hint")
        self.note.setWordWrap(True)

        # --- body: a message page or the plot
        msg_page, self.message, self.forward_button = message_page(
            "distribution", "Forward first",
            "Run one forward pass: it infers the unknown dimension "
                                       "and draws the values")

        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setObjectName("distributionPlot")
        self.plot_widget.setMinimumHeight(180)
        self.plot_widget.setSizePolicy(QSizePolicy.Policy.Expanding,
                                       QSizePolicy.Policy.Expanding)
        self.plot: pg.PlotItem = self.plot_widget.getPlotItem()
        self.plot.setMenuEnabled(False, True)
        self.plot.hideButtons()
        self.legend = LegendLabel("distributionLegend")
        self.bars: pg.BarGraphItem | None = None
        self.density_curve: pg.PlotDataItem | None = None
        self.point_line: pg.InfiniteLine | None = None
        self.sv_item: pg.ScatterPlotItem | None = None
        self.scale_line: pg.InfiniteLine | None = None
        self.plot_frame = plot_frame(self.plot_widget, self.legend)
        self.export_action = install_export_action(self.plot_widget, self, "distribution",
                                                   self.plot_frame)

        self.stack = QStackedWidget()
        self.stack.addWidget(msg_page)
        self.stack.addWidget(self.plot_frame)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(4)
        layout.addLayout(picker)
        layout.addWidget(self.title)
        layout.addWidget(self.fit_label)
        layout.addWidget(self.note)
        layout.addWidget(self.stack, 1)

        self._init_refresh(workbench, 40)

        self._pick_from_selection(workbench.selection)
        self._render()

        workbench.changed.connect(self._on_document_changed)
        workbench.selection_changed.connect(self._on_selection_changed)
        self.combo.activated.connect(self._on_combo_activated)
        self.forward_button.clicked.connect(self._on_forward_clicked)

    # --------------------------------------------------------------- public
    @property
    def param_name(self) -> str | None:
        return self._name

    def show_param(self, name: str) -> None:
        """Show parameter ``name`` (as if picked in the workbench)."""
        self._wb.select(("param", name))
        if self._name != name:       # the selection already was this parameter
            self._name = name
            self._render()

    def export(self, path) -> Path:
        """The plot as PNG or SVG (by ``path``'s suffix)."""
        return export_plot(self.plot_frame, path)

    # --------------------------------------------------------------- slots
    def _on_document_changed(self, what: str) -> None:
        if what in ("params", "inits", "structure", "document"):
            self._stale = True
            self._timer.start()

    def _on_selection_changed(self, selection) -> None:
        if self._pick_from_selection(selection):
            if self.isVisible():
                self._render()
            else:                       # drawn when shown (a big histogram costs)
                self._stale = True

    def _on_combo_activated(self, index: int) -> None:
        name = self.combo.itemData(index)
        if name:
            self.show_param(name)

    def _on_forward_clicked(self) -> None:
        self._wb.run("Forward", lambda d: d.forward())

    # --------------------------------------------------------------- selection
    def _pick_from_selection(self, selection) -> bool:
        """Follow the workbench selection; True when the shown parameter changed."""
        doc = self._wb.doc
        name = None
        if selection and selection[0] == "param":
            name = selection[1]
        elif selection and selection[0] == "layer":
            try:
                rows = doc.param_rows()
            except Exception:  # noqa: BLE001
                rows = []
            for r in rows:
                if selection[1] in r.used_by:
                    name = r.name
                    break
        if name is None or name == self._name:
            return False
        self._name = name
        return True

    # --------------------------------------------------------------- rendering
    def _render(self) -> None:
        if self._held_by_run():
            return
        self._stale = False
        self.colors = plot_colors(self.palette())
        doc = self._wb.doc
        try:
            rows = doc.param_rows()
        except Exception:  # noqa: BLE001 - a half-built document
            rows = []
        names = [r.name for r in rows]
        if self._name not in names:
            self._name = names[0] if names else None
        self._fill_combo(rows)
        self._reset_plot()
        self.values = self.density = self.ks = self.verdict = None
        self.singular_values = self.max_deviation = None
        self.counts = self.edges = self.point_match = None
        self.forward_button.hide()
        self.title.clear()
        self._set_fit("", None)
        self.note.clear()
        self.note.hide()
        if self._name is None:
            self._show_message("No parameters yet: add a Dense, BatchNorm, LayerNorm or "
                               "Embedding layer to see how its values are distributed.")
            self.mode = "empty"
            return
        row = rows[names.index(self._name)]
        p = doc.params()[self._name]
        shape_text = "(" + ", ".join("?" if not d else str(d) for d in (row.shape or ())) + \
            ("," if row.shape and len(row.shape) == 1 else "") + ")"
        self.title.setText(f"<b>{html.escape(_param_title(row.name))}</b>"
                           f"&nbsp; {shape_text} {html.escape(row.dtype)} · "
                           f"{html.escape(row.init)}")
        self.title.setToolTip(row.name)
        if row.state == "uninitialized":
            self._show_message(
                f"{_param_title(row.name)} has no values yet.\n\nInitialize the network: "
                f"{row.init} will draw them, and its histogram appears here next to the "
                "density it draws from.")
            return
        if row.state == "deferred":
            self._show_message(
                f"{_param_title(row.name)} is waiting for its shape {shape_text}: the "
                "dimension marked ? is only known at the first forward pass (deferred "
                f"initialization). The forward infers it and draws the values with "
                f"{row.init}.")
            self.forward_button.show()
            return
        raw = p.data().asnumpy()
        self._render_values(doc, row, raw)

    def _fill_combo(self, rows) -> None:
        self.combo.blockSignals(True)
        try:
            self.combo.clear()
            for r in rows:
                self.combo.addItem(_param_title(r.name), r.name)
                self.combo.setItemData(self.combo.count() - 1, r.name,
                                       Qt.ItemDataRole.ToolTipRole)
            if self._name is not None:
                self.combo.setCurrentIndex(self.combo.findData(self._name))
            self.combo.setEnabled(bool(rows))
        finally:
            self.combo.blockSignals(False)

    def _redraw(self) -> None:
        self._render()

    def _show_message(self, text: str) -> None:
        self.mode = "message"
        self.message.setText(text)
        self.stack.setCurrentIndex(0)

    def _set_fit(self, text: str, verdict: str | None) -> None:
        self.verdict = verdict
        self.fit_label.setText(text)
        self.fit_label.setVisible(bool(text))
        color = self.colors.get({"good": "good", "warn": "warn", "bad": "bad"}.get(
            verdict or "", ""), None)
        self.fit_label.setStyleSheet("" if color is None else f"color: {color.name()};")
        self.fit_label.setProperty("verdict", verdict or "")

    def _add_note(self, text: str) -> None:
        old = self.note.text()
        self.note.setText(f"{old}\n{text}" if old else text)
        self.note.show()

    def _reset_plot(self) -> None:
        plot = self.plot
        plot.clear()
        self._legend_entries = []
        self.legend.set_entries([])
        self.bars = self.density_curve = self.point_line = None
        self.sv_item = self.scale_line = None
        plot.setLogMode(False, False)
        plot.setTitle(None)
        c = self.colors
        self.plot_widget.setBackground(c["bg"])
        style_plot(plot, c)
        plot.enableAutoRange()

    def _add_legend(self, kind: str, color: QColor, text: str) -> None:
        self._legend_entries.append((kind, color, text))
        self.legend.set_entries(self._legend_entries)

    # --------------------------------------------------------------- the figures
    def _render_values(self, doc, row, raw) -> None:
        self.mode = "histogram"
        self.stack.setCurrentIndex(1)
        arr = np.asarray(raw)
        flat = arr.astype(np.float64).ravel()
        finite = flat[np.isfinite(flat)]
        self.values = finite
        nan, pinf, ninf = analysis.nonfinite_counts(arr)
        if nan or pinf or ninf:
            parts = [f"{k} {lab}" for k, lab in ((nan, "NaN"), (pinf, "+Inf"), (ninf, "−Inf"))
                     if k]
            self._add_note(", ".join(parts) + " not shown in the histogram")
        initializer = doc.initializer_for(row.name)
        origin, detail = draw_origin(doc, row.name, arr)
        if initializer is None:
            self._add_note(row.missing or f"The initializer {row.init} cannot be created, so "
                           "there is no density to compare with.")
        if origin == "changed":
            since = f" ({detail})" if detail else ""
            self._add_note(f"Changed since initialization{since}: the density and the fit "
                           "describe the initial draw, not a bug in the initializer.")
        elif origin == "unknown" and finite.size:
            self._add_note("These values were not drawn in this session (loaded or restored): "
                           f"the density is what {row.init} would draw.")
        if finite.size == 0:
            self._set_fit("No finite values to show.", "bad")
            self._draw_histogram(finite, None)
            return

        if isinstance(initializer, engine_init.Orthogonal):
            self._render_orthogonal(arr, initializer)
            return
        density = None
        if initializer is not None:
            try:
                density = analysis.theoretical_density(initializer, tuple(arr.shape),
                                                       sample=finite)
            except Exception as err:  # noqa: BLE001 - a plugin's density() failed
                self._add_note(f"{type(initializer).__name__}.density failed: "
                               f"{type(err).__name__}: {err}")
                density = None
        self.density = density
        if density is not None and density.point is not None:
            self._render_point(arr, finite, density)
            return
        self._draw_histogram(finite, density)
        if density is None or density.cdf is None:
            if initializer is not None:
                self._set_fit(f"{type(initializer).__name__} does not describe the density it "
                              "draws from, so there is no fit to test (a plugin can add "
                              "density(x, shape)).", None)
            return
        sample = finite
        sampled = ""
        if finite.size > KS_MAX_N:
            rng = np.random.default_rng(0)
            sample = rng.choice(finite, size=KS_MAX_N, replace=False)
            sampled = f" of {finite.size:,}, a fixed random subset"
        d, p = analysis.ks_test(sample, density.cdf)
        self.ks = (d, p, int(sample.size))
        verdict = fit_verdict(p)
        words = {"good": "fits", "warn": "doubtful fit", "bad": "does not fit"}[verdict]
        self._set_fit(f"KS D = {d:.4f}, p = {format_p(p)} (n = {sample.size:,}{sampled}) · "
                      f"{words} {density.label}", verdict)
        self.fit_label.setToolTip(
            "Kolmogorov–Smirnov test of the values against the initializer's distribution: "
            "D is the largest gap between the two cumulative distributions, p the chance of a "
            "gap at least that large if the values really were drawn from it.\n"
            "green p ≥ 0.05 · amber p ≥ 0.001 · red below")
        if density.label.endswith("(plugin density)") and density.support is not None:
            mass = self._plugin_mass(density)
            if mass is not None and mass < 0.5:
                self._add_note(f"The density {type(initializer).__name__} claims puts only "
                               f"{mass:.1%} of its mass where the values are.")

    def _plugin_mass(self, density):
        lo, hi = density.support
        grid = np.linspace(lo, hi, 2001)
        try:
            dens = np.clip(np.nan_to_num(np.asarray(density.pdf(grid), dtype=np.float64)),
                           0, None)
        except Exception:  # noqa: BLE001
            return None
        return float(np.sum((dens[1:] + dens[:-1]) * 0.5 * np.diff(grid)))

    def _bins_for(self, n: int) -> int:
        return int(np.clip(math.ceil(math.sqrt(max(n, 1))), 10, 80))

    def _draw_histogram(self, finite, density, value_range=None, bins=None):
        c = self.colors
        plot = self.plot
        bins = bins or self._bins_for(finite.size)
        counts, edges = analysis.histogram(finite, bins=bins, value_range=value_range)
        self.counts, self.edges = counts, edges
        bar_color = QColor(c["bars"])
        bar_color.setAlphaF(0.55)
        self.bars = pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts,
                                    brush=pg.mkBrush(bar_color),
                                    pen=pg.mkPen(blend(c["bars"], c["bg"], 0.15), width=1))
        plot.addItem(self.bars)
        self._add_legend("bar", c["bars"], f"values (n = {finite.size:,}, {counts.size} bins)")
        set_axis_label(plot, "bottom", "value")
        set_axis_label(plot, "left", "count")
        if density is not None and density.pdf is not None:
            width = float(edges[1] - edges[0])
            lo, hi = float(edges[0]), float(edges[-1])
            if density.support is not None:
                s_lo, s_hi = density.support
                span = hi - lo
                lo = min(lo, s_lo) if s_lo > lo - 2 * span else lo
                hi = max(hi, s_hi) if s_hi < hi + 2 * span else hi
            pad = 0.06 * (hi - lo or 1.0)
            xs = np.linspace(lo - pad, hi + pad, 600)
            if density.support is not None:       # crisp edges for a bounded support
                s_lo, s_hi = density.support
                extra = [s_lo, s_hi, np.nextafter(s_lo, -np.inf), np.nextafter(s_hi, np.inf)]
                xs = np.unique(np.concatenate(
                    [xs, [e for e in extra if lo - pad <= e <= hi + pad]]))
            with np.errstate(all="ignore"):
                ys = np.asarray(density.pdf(xs), dtype=np.float64) * finite.size * width
            ys = np.where(np.isfinite(ys), ys, np.nan)
            self.density_curve = plot.plot(xs, ys, pen=pg.mkPen(c["curve"], width=2.2))
            self._add_legend("line", c["curve"], f"{density.label} × n × bin width")
            self.density_curve.setZValue(5)
            top = max(float(counts.max()) if counts.size else 1.0,
                      float(np.nanmax(ys)) if np.isfinite(ys).any() else 0.0)
            plot.enableAutoRange(x=True)
            plot.setYRange(0, top * HEADROOM or 1.0, padding=0)
        else:
            plot.setYRange(0, (float(counts.max()) if counts.size else 1.0) * HEADROOM or 1.0,
                           padding=0)

    def _render_point(self, arr, finite, density) -> None:
        c = self.colors
        self.mode = "point"
        point = float(density.point)
        target = np.asarray(point, dtype=arr.dtype if arr.dtype.kind == "f" else np.float64)
        flat = np.asarray(arr).ravel()
        match = int(np.count_nonzero(flat == target))
        n = flat.size
        reach = float(np.max(np.abs(finite - point))) if finite.size else 0.0
        r = 0.5 if reach == 0 else reach * 1.15
        self._draw_histogram(finite, None, value_range=(point - r, point + r),
                             bins=11 if reach == 0 else max(11, self._bins_for(n) | 1))
        self.point_line = pg.InfiniteLine(
            pos=point, angle=90, pen=pg.mkPen(c["curve"], width=2.2),
            label=density.label, labelOpts={"position": 0.92, "color": c["curve"],
                                           "fill": pg.mkBrush(c["bg"])})
        self.point_line.setZValue(5)
        self.plot.addItem(self.point_line)
        self._add_legend("line", c["curve"], f"{density.label}: every value at {point:g}")
        if match == n:
            self._set_fit(f"all {n:,} values equal {point:g}: matches {density.label}", "good")
        else:
            off = n - match
            self._set_fit(f"{off:,} of {n:,} values ({off / n:.1%}) differ from {point:g}: "
                          f"does not match {density.label}", "bad")
        self.point_match = (match, n)

    def _render_orthogonal(self, arr, initializer) -> None:
        c = self.colors
        plot = self.plot
        self.mode = "orthogonal"
        m = analysis.display_matrix(np.asarray(arr))
        if arr.ndim == 1:
            m = m.reshape(-1, 1)
        scale = float(initializer.scale)
        if not np.isfinite(m).all():
            self._draw_histogram(self.values, None)
            self._set_fit("Orthogonal: the matrix holds NaN or Inf, so it has no singular "
                          "values to check.", "bad")
            return
        sv, checked, total = analysis.singular_values_sampled(m, ORTHO_MAX_VECTORS)
        side = "rows" if m.shape[0] <= m.shape[1] else "columns"
        self.singular_values = sv
        dev = float(np.max(np.abs(sv - scale))) if sv.size else 0.0
        self.max_deviation = dev
        rel = dev / abs(scale) if scale else dev
        verdict = "good" if rel < 1e-4 else ("warn" if rel < 1e-2 else "bad")
        set_axis_label(plot, "bottom", "index of the singular value")
        set_axis_label(plot, "left", "singular value")
        self.scale_line = pg.InfiniteLine(pos=scale, angle=0,
                                          pen=pg.mkPen(c["curve"], width=2,
                                                       style=Qt.PenStyle.DashLine))
        plot.addItem(self.scale_line)
        self._add_legend("dash", c["curve"], f"expected: every one equals scale = {scale:g}")
        self.sv_item = pg.ScatterPlotItem(np.arange(sv.size), sv, size=7,
                                          brush=pg.mkBrush(c["bars"]),
                                          pen=pg.mkPen(blend(c["bars"], c["fg"], 0.35)))
        self.sv_item.setZValue(5)
        plot.addItem(self.sv_item)
        self._add_legend("dot", c["bars"], f"singular values of the ({m.shape[0]}, "
                                           f"{m.shape[1]}) matrix")
        top = max(scale, float(sv.max()) if sv.size else scale)
        plot.setYRange(0, top * 1.2 or 1.0, padding=0)
        plot.setXRange(-0.5, max(sv.size - 0.5, 0.5), padding=0.02)
        words = {"good": "orthogonal", "warn": "nearly orthogonal",
                 "bad": "not orthogonal"}[verdict]
        sampled = "" if checked == total else \
            f" (a fixed random {checked} of the {total} {side} — any subset of orthonormal " \
            f"{side} is orthonormal)"
        self._set_fit(f"{sv.size} singular values vs scale {scale:g}: max deviation "
                      f"{_g(dev)} · {words}{sampled}", verdict)
        self.fit_label.setToolTip(
            "Orthogonal has no density: its rows (or columns) are orthonormal times scale, so "
            "every singular value of the (out, rest) matrix equals scale.")
