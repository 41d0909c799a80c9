"""Signal propagation: how the current input's signal grows or fades through the stack.

For the document's input ``x``, layer by layer: the mean and standard deviation of each layer's
output (forward, in prediction mode) and of the gradient of ``sum(output)`` with respect to it
(backward), from :func:`analysis.signal_propagation`. The top plot shows the standard
deviations on a log scale, the bottom one the means (activations on the left axis, gradients on
the right). A one-line verdict says whether the activations explode, vanish or stay within 10×
from the first layer to the last — the chapter's MyInit in [5, 10) explodes, Xavier does not —
and how the gradients behave on the way back.

It needs materialized parameters: while they are deferred it explains why and offers
"Forward first". The computation is redone on 'params' / 'structure' / 'input' changes,
debounced so a burst of changes computes once, and only while the panel is visible.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QCursor, QFontMetrics
from PySide6.QtWidgets import (QLabel, QStackedWidget, QToolTip,
                               QVBoxLayout, QWidget)

from app.document import analysis

from .distribution_panel import (LegendLabel, RefreshWhenVisible, export_plot,
                                 install_export_action, message_page, plot_colors, plot_frame,
                                 set_axis_label, style_plot)

__all__ = ["SignalPanel", "signal_verdict", "format_factor", "GROWTH_LIMIT"]

GROWTH_LIMIT = 10.0         # "healthy" while the last layer's std is within 10× of the first's


def format_factor(r: float) -> str:
    """1.2e3 for 1234.5, 3.4 for 3.4; no '+' or leading zeros in the exponent."""
    if not np.isfinite(r):
        return "∞"
    if r >= 1000 or (0 < r < 1e-3):
        m, e = f"{r:.1e}".split("e")
        return f"{m}e{int(e)}"
    return f"{r:.3g}"


def signal_verdict(signals, limit: float = GROWTH_LIMIT):
    """``(kind, text)`` for the activations: kind is 'exploding', 'vanishing', 'healthy',
    'dead' (all zero) or 'single' (one layer, nothing to compare)."""
    if not signals:
        return "single", "No layers."
    first, last = signals[0], signals[-1]
    n = len(signals) - 1
    bad = next((s for s in signals if not (np.isfinite(s.act_std) and
                                           np.isfinite(s.act_mean))), None)
    if bad is not None:
        return "exploding", (f"activations overflow to Inf/NaN by layer {bad.index}: "
                             "exploding")
    if n == 0:
        return "single", (f"one layer: activation std {first.act_std:.3g} "
                          "(add layers to compare)")
    if first.act_std == 0:
        if all(s.act_std == 0 for s in signals):
            return "dead", f"activations are constant from layer 0 to {n} (std 0): no signal"
        return "exploding", f"activations are constant at layer 0 but spread by layer {n}"
    r = last.act_std / first.act_std
    if r > limit:
        return "exploding", f"activations grow {format_factor(r)}× from layer 0 to {n}: exploding"
    if r == 0:
        return "vanishing", f"activations collapse to 0 by layer {n}: vanishing"
    if r < 1.0 / limit:
        return "vanishing", (f"activations shrink {format_factor(1.0 / r)}× from layer 0 to "
                             f"{n}: vanishing")
    return "healthy", (f"activations stay within {limit:g}× from layer 0 to {n} "
                       f"({format_factor(r)}×): healthy")


def gradient_summary(signals, limit: float = GROWTH_LIMIT) -> str:
    """How the gradient's size (root mean square) changes from the last layer back to the first."""
    if len(signals) < 2:
        return ""
    rms = [math.hypot(s.grad_mean, s.grad_std) for s in signals]
    first, last = rms[0], rms[-1]
    n = len(signals) - 1
    if not all(np.isfinite(rms)):
        return "gradients overflow to Inf/NaN on the way back"
    if last == 0:
        return ""
    if first == 0:
        return "gradients vanish completely before layer 0"
    r = first / last
    if r > limit:
        return f"gradients grow {format_factor(r)}× from layer {n} back to 0"
    if r < 1.0 / limit:
        return f"gradients shrink {format_factor(1.0 / r)}× from layer {n} back to 0"
    return f"gradients stay within {limit:g}× from layer {n} back to 0"


class SignalPanel(RefreshWhenVisible, QWidget):
    """Per-layer mean/std of activations and gradients for the current input (``signalPanel``)."""

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.setObjectName("signalPanel")
        self._wb = workbench
        self._stale = True
        self.signals: list | None = None
        self.kind: str | None = None        # exploding | vanishing | healthy | dead | single
        self.state = "empty"                # empty | message | plot
        self.colors = plot_colors(self.palette())

        self.input_label = QLabel()
        self.input_label.setObjectName("signalInput")
        self.input_label.setProperty("role", "hint")
        self.input_label.setWordWrap(True)
        self.verdict_label = QLabel()
        self.verdict_label.setObjectName("signalVerdict")
        self.verdict_label.setWordWrap(True)
        font = self.verdict_label.font()
        font.setWeight(font.Weight.DemiBold)
        self.verdict_label.setFont(font)
        self.gradient_label = QLabel()
        self.gradient_label.setObjectName("signalGradients")
        self.gradient_label.setWordWrap(True)

        # message page
        msg_page, self.message, self.forward_button = message_page(
            "signal", "Forward first",
            "Run one forward pass: it infers the unknown dimensions "
                                       "and draws the deferred parameters")

        # plots: std (log) on top, means below, x linked
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setObjectName("signalPlot")
        self.plots.setMinimumHeight(260)
        self.plots.ci.setSpacing(4)
        self.std_plot: pg.PlotItem = self.plots.addPlot(row=0, col=0)
        self.mean_plot: pg.PlotItem = self.plots.addPlot(row=1, col=0)
        self.plots.ci.layout.setRowStretchFactor(0, 3)
        self.plots.ci.layout.setRowStretchFactor(1, 2)
        for plot in (self.std_plot, self.mean_plot):
            plot.setMenuEnabled(False, True)
            plot.hideButtons()
        self.mean_plot.setXLink(self.std_plot)
        self.std_plot.setLogMode(False, True)
        # Equal axis widths on both plots, so a layer sits at the same x in each.
        self.std_plot.showAxis("right")
        self.std_plot.getAxis("right").setStyle(showValues=False)
        for plot in (self.std_plot, self.mean_plot):
            plot.getAxis("left").setWidth(68)
            plot.getAxis("right").setWidth(64)
            plot.getAxis("bottom").setStyle(hideOverlappingLabels=False)
        self.grad_view = pg.ViewBox()
        self.grad_view.setMenuEnabled(False)
        self.mean_plot.showAxis("right")
        self.mean_plot.scene().addItem(self.grad_view)
        self.mean_plot.getAxis("right").linkToView(self.grad_view)
        self.grad_view.setXLink(self.mean_plot)
        self.legend = LegendLabel("signalLegend")
        self.curves: dict = {}
        self._ticks = None
        self.plot_frame = plot_frame(self.plots, self.legend)
        self.export_action = install_export_action(self.plots, self, "signal", self.plot_frame)

        self.stack = QStackedWidget()
        self.stack.addWidget(msg_page)
        self.stack.addWidget(self.plot_frame)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(4)
        layout.addWidget(self.input_label)
        layout.addWidget(self.verdict_label)
        layout.addWidget(self.gradient_label)
        layout.addWidget(self.stack, 1)

        self._init_refresh(workbench, 60)

        self._recompute()

        workbench.changed.connect(self._on_document_changed)
        self.forward_button.clicked.connect(self._on_forward_clicked)
        self.mean_plot.vb.sigResized.connect(self._on_mean_view_resized)
        self.plots.scene().sigMouseMoved.connect(self._on_mouse_moved)

    # --------------------------------------------------------------- public
    def verdict(self) -> str:
        return self.verdict_label.text()

    def export(self, path) -> Path:
        """Both plots as one PNG or SVG (by ``path``'s suffix)."""
        return export_plot(self.plot_frame, path)

    # --------------------------------------------------------------- slots
    def _on_document_changed(self, what: str) -> None:
        if what in ("params", "structure", "input", "document"):
            self._stale = True
            self._timer.start()

    def _on_forward_clicked(self) -> None:
        self._wb.run("Forward", lambda d: d.forward())

    def _on_mean_view_resized(self) -> None:
        self.grad_view.setGeometry(self.mean_plot.vb.sceneBoundingRect())
        self.grad_view.linkedViewChanged(self.mean_plot.vb, self.grad_view.XAxis)
        self._update_ticks()

    def _update_ticks(self) -> None:
        """Tick labels as long as the layer columns allow: '0: Dense(32, relu)', '0 Dense'
        or '0'."""
        if not self.signals:
            return
        n = len(self.signals)
        axis = self.mean_plot.getAxis("bottom")
        fm = QFontMetrics(axis.style.get("tickFont") or self.font())
        column = self.mean_plot.vb.width() / max(n, 1) - 24
        candidates = [[s.title for s in self.signals],
                      [s.title.split("(")[0] for s in self.signals],
                      [str(s.index) for s in self.signals]]
        labels = candidates[-1]
        for cand in candidates:
            if max(fm.horizontalAdvance(t) for t in cand) <= column:
                labels = cand
                break
        ticks = [(float(i), t) for i, t in enumerate(labels)]
        if ticks != self._ticks:
            self._ticks = ticks
            self.std_plot.getAxis("bottom").setTicks([ticks, []])
            self.std_plot.getAxis("bottom").setStyle(showValues=False)
            axis.setTicks([ticks, []])

    def _on_mouse_moved(self, pos: QPointF) -> None:
        if not self.signals or self.state != "plot":
            return
        for plot in (self.std_plot, self.mean_plot):
            if plot.vb.sceneBoundingRect().contains(pos):
                x = plot.vb.mapSceneToView(pos).x()
                i = int(round(x))
                if 0 <= i < len(self.signals) and abs(x - i) < 0.45:
                    s = self.signals[i]
                    QToolTip.showText(
                        QCursor.pos(),
                        f"<b>{s.title}</b><br>activations: mean {s.act_mean:.4g}, std "
                        f"{s.act_std:.4g}<br>gradients: mean {s.grad_mean:.4g}, std "
                        f"{s.grad_std:.4g}" + ("<br><i>a std of 0 has no place on the log "
                                               "scale: not drawn</i>"
                                               if s.grad_std == 0 or s.act_std == 0 else ""),
                        self.plots)
                    return
        QToolTip.hideText()

    # --------------------------------------------------------------- computing
    def _recompute(self) -> None:
        if self._held_by_run():
            return
        self._stale = False
        self.colors = plot_colors(self.palette())
        doc = self._wb.doc
        self.signals = None
        self.kind = None
        self.forward_button.hide()
        self.verdict_label.clear()
        self.verdict_label.setStyleSheet("")
        self.gradient_label.clear()
        self.gradient_label.hide()
        self.input_label.setText(self._input_text(doc))
        if not doc.layers:
            self._show_message("No layers yet: add some to see how a signal travels through "
                               "them.")
            return
        states = [p.state for p in doc.params().values()]
        if "uninitialized" in states:
            self._show_message("The parameters have no values yet: initialize the network, "
                               "then this panel shows how the input's signal grows or fades "
                               "from layer to layer.")
            return
        if "deferred" in states:
            self._show_message("Some parameters wait for the first forward pass to learn their "
                               "shape (deferred initialization), so the signal cannot be "
                               "measured yet. Run a forward first: it infers the shapes and "
                               "draws the values.")
            self.forward_button.show()
            return
        titles = [doc.layer_title(spec.uid) for spec in doc.layers]
        try:
            with np.errstate(all="ignore"):
                signals = analysis.signal_propagation(doc.net, doc.x, titles)
        except Exception as err:  # noqa: BLE001 - e.g. a shape the stack cannot take
            self._show_message(f"The signal cannot be propagated through this stack: {err}")
            return
        self.signals = signals
        self._draw(signals)

    def _input_text(self, doc) -> str:
        spec = doc.input
        shape = "(" + ", ".join(str(d) for d in spec.shape) + ")"
        dist = {"uniform": f"uniform in [{spec.low:g}, {spec.high:g})",
                "normal": f"normal, mean {spec.mean:g}, std {spec.std:g}",
                "constant": f"constant {spec.value:g}",
                "integers": f"integers in [{spec.low:g}, {spec.high:g})"}[spec.distribution]
        return (f"Input x {shape}, {dist}, seed {spec.seed} · forward in prediction mode, "
                "backward of sum(output)")

    def _redraw(self) -> None:
        self._recompute()

    def _show_message(self, text: str) -> None:
        self.state = "message"
        self.message.setText(text)
        self.stack.setCurrentIndex(0)

    # --------------------------------------------------------------- drawing
    def _draw(self, signals) -> None:
        c = self.colors
        self.state = "plot"
        self.stack.setCurrentIndex(1)
        kind, text = signal_verdict(signals)
        self.kind = kind
        color = {"exploding": c["bad"], "vanishing": c["warn"], "dead": c["bad"],
                 "healthy": c["good"]}.get(kind)
        self.verdict_label.setText(text)
        self.verdict_label.setStyleSheet("" if color is None else f"color: {color.name()};")
        self.verdict_label.setProperty("verdict", kind)
        grad = gradient_summary(signals)
        if grad:
            self.gradient_label.setText(grad[0].upper() + grad[1:] + ".")
            self.gradient_label.show()

        self.plots.setBackground(c["bg"])
        for plot in (self.std_plot, self.mean_plot):
            plot.clear()
            style_plot(plot, c)
        self.grad_view.clear()
        self.legend.set_entries([("line-dot", c["act"], "activations (forward)"),
                                 ("dash-square", c["grad"], "gradients (backward)")])

        xs = np.arange(len(signals), dtype=float)
        act_std = np.array([s.act_std for s in signals], dtype=float)
        grad_std = np.array([s.grad_std for s in signals], dtype=float)
        act_mean = np.array([s.act_mean for s in signals], dtype=float)
        grad_mean = np.array([s.grad_mean for s in signals], dtype=float)

        def positive(a):
            return np.where(np.isfinite(a) & (a > 0), a, np.nan)

        def series(a):
            """(x, y) without an all-NaN series (nothing to draw; pyqtgraph warns on it)."""
            return (xs, a) if np.isfinite(a).any() else (xs[:0], a[:0])

        act_pen = pg.mkPen(c["act"], width=2.2)
        grad_pen = pg.mkPen(c["grad"], width=2.2, style=Qt.PenStyle.DashLine)
        sym = {"symbolSize": 8, "connect": "finite"}
        self.curves = {
            "act_std": self.std_plot.plot(*series(positive(act_std)), pen=act_pen,
                                          symbol="o", symbolBrush=c["act"],
                                          symbolPen=c["act"], **sym),
            "grad_std": self.std_plot.plot(*series(positive(grad_std)), pen=grad_pen,
                                           symbol="s", symbolBrush=c["grad"],
                                           symbolPen=c["grad"], **sym),
        }
        act_mean_item = pg.PlotDataItem(*series(np.where(np.isfinite(act_mean), act_mean,
                                                         np.nan)),
                                        pen=act_pen, symbol="o", symbolBrush=c["act"],
                                        symbolPen=c["act"], **sym)
        grad_mean_item = pg.PlotDataItem(*series(np.where(np.isfinite(grad_mean), grad_mean,
                                                          np.nan)),
                                         pen=grad_pen, symbol="s", symbolBrush=c["grad"],
                                         symbolPen=c["grad"], **sym)
        self.mean_plot.addItem(act_mean_item)
        self.grad_view.addItem(grad_mean_item)
        self.curves["act_mean"] = act_mean_item
        self.curves["grad_mean"] = grad_mean_item

        set_axis_label(self.std_plot, "left", "std (log scale)")
        set_axis_label(self.mean_plot, "left", "activation mean")
        set_axis_label(self.mean_plot, "right", "gradient mean")
        self.mean_plot.getAxis("left").setTextPen(pg.mkPen(c["act"]))
        self.mean_plot.getAxis("left").label.setDefaultTextColor(c["act"])
        self.mean_plot.getAxis("right").setTextPen(pg.mkPen(c["grad"]))
        self.mean_plot.getAxis("right").label.setDefaultTextColor(c["grad"])

        # layers on x, labelled with their titles (shortened to fit)
        n = len(signals)
        self._update_ticks()
        set_axis_label(self.mean_plot, "bottom", "layer (output of)")
        self.std_plot.setXRange(-0.5, n - 0.5, padding=0.02)

        # y ranges: the std plot from its data
        finite = np.concatenate([positive(act_std), positive(grad_std)])
        finite = finite[np.isfinite(finite)]
        if finite.size:
            lo, hi = math.log10(finite.min()), math.log10(finite.max())
            if hi - lo < 2.0:                 # at least two decades: readable log ticks
                mid = 0.5 * (lo + hi)
                lo, hi = mid - 1.0, mid + 1.0
            span = hi - lo
            self.std_plot.setYRange(lo - 0.08 * span, hi + 0.08 * span, padding=0)
        self.mean_plot.enableAutoRange(y=True)
        self.grad_view.enableAutoRange(y=True)
        self._on_mean_view_resized()
