"""Step preview: what one optimizer step would change, before it changes anything.

:meth:`Document.preview_step` runs the Trainer's step on a copy of the state and puts
everything back; the dialog shows, per parameter, the change ``after − before`` as a heatmap
on a symmetric diverging scale centred on 0 (rows = output units, columns = inputs; 1-D
parameters as a strip; large matrices max-|Δ| pooled), with its largest ``|Δ|``, and the
optimizer, learning rate and batch size the step would use.

**Apply** runs the step through the workbench (one undoable "Step"); the applied values equal
the preview exactly, because both come from the same Trainer state and gradients. **Discard**
closes and changes nothing. Without fresh gradients (no backward since the last step) the
dialog says so and offers **Backward first**.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QLabel, QScrollArea, QStackedWidget, QVBoxLayout)

from app.document import DocumentError, analysis

from .distribution_panel import (_g, export_plot, install_export_action, message_page, plot_colors,
                                 plot_frame)
from .layers_panel import blend

__all__ = ["StepPreviewDialog", "gradient_status", "COLOR_MAP"]

COLOR_MAP = "CET-D1"        # diverging, centred on 0
ROW_HEIGHT = 165
MAX_CELLS = 256             # pooled display size per side


def _short(name: str) -> str:
    from app.document.model import NET_PREFIX
    return name[len(NET_PREFIX):] if name.startswith(NET_PREFIX) else name


def gradient_status(doc):
    """``(status, message)``: can the Trainer step now? ``status`` is 'ok', 'empty',
    'uninitialized', 'deferred' or 'stale'; ``message`` says why not, in words."""
    params = list(doc.params().items())
    if not params:
        return "empty", "This network has no parameters to step."
    states = [p.state for _n, p in params]
    if "uninitialized" in states:
        return "uninitialized", ("The parameters have no values yet: initialize the network "
                                 "and run a backward, then preview the step.")
    if "deferred" in states:
        return "deferred", ("Some parameters still wait for their shape (deferred "
                            "initialization) and have no gradients. A backward runs the forward "
                            "pass that resolves them and computes the gradients.")
    stale = [n for n, p in params if p.grad_req != "null" and
             not getattr(p._data, "_fresh_grad", False)]
    if stale:
        last = doc.history.snapshots[-1].label if doc.history.snapshots else ""
        why = ("the last step used them" if last == "step" else
               "no backward has run since the parameters were last set")
        return "stale", (f"No fresh gradients: {why}. Gluon's Trainer refuses to step on "
                         "gradients a backward has not written since the last step — run a "
                         "backward first.")
    return "ok", ""


class _DeltaImage(pg.ImageItem):
    """A Δ heatmap that tells the exact value under the mouse."""

    def __init__(self, name, before, after, delta, factor):
        super().__init__(axisOrder="row-major")
        self.name = name
        self.before, self.after, self.delta = before, after, delta
        self.factor = factor
        self.setAcceptHoverEvents(True)

    def hoverEvent(self, ev):  # noqa: N802 - pyqtgraph override
        if ev.isExit() or self.image is None:
            self.setToolTip("")
            return
        pos = ev.pos()
        r, c = int(math.floor(pos.y())), int(math.floor(pos.x()))
        rows, cols = self.image.shape[:2]
        if not (0 <= r < rows and 0 <= c < cols):
            self.setToolTip("")
            return
        fy, fx = self.factor
        m = analysis.display_matrix(self.delta)
        if (fy, fx) == (1, 1):
            b = analysis.display_matrix(self.before)[r, c]
            a = analysis.display_matrix(self.after)[r, c]
            idx = f"[{c}]" if self.delta.ndim <= 1 else f"[{r}, {c}]"
            self.setToolTip(f"{self.name}{idx}\nΔ = {m[r, c]:.6g}\n{b:.6g} → {a:.6g}")
        else:
            r0, c0 = r * fy, c * fx
            self.setToolTip(f"{self.name}[{r0}:{r0 + fy}, {c0}:{c0 + fx}] (pooled {fy}×{fx})\n"
                            f"largest |Δ| in the block: {self.image[r, c]:.6g}")


class StepPreviewDialog(QDialog):
    """One optimizer step, previewed as Δ heatmaps; Apply or Discard (``stepPreviewDialog``)."""

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.setObjectName("stepPreviewDialog")
        self.setWindowTitle("Step preview")
        self._wb = workbench
        self._applying = False
        self.applied = False
        self.status = ""
        self.preview: dict | None = None     # name → (before, after)
        self.deltas: dict = {}               # name → after − before
        self.images: dict = {}               # name → _DeltaImage
        self.levels: dict = {}               # name → (-m, m)
        self.colors = plot_colors(self.palette())

        self.header = QLabel("What one optimizer step would change")
        self.header.setObjectName("stepPreviewHeader")
        font = self.header.font()
        font.setPointSizeF(font.pointSizeF() * 1.12)
        font.setWeight(font.Weight.DemiBold)
        self.header.setFont(font)
        self.info = QLabel()
        self.info.setObjectName("stepPreviewInfo")
        self.info.setWordWrap(True)
        self.summary = QLabel()
        self.summary.setObjectName("stepPreviewSummary")
        self.summary.setProperty("role", "hint")
        self.summary.setWordWrap(True)

        # message page
        msg_page, self.message, self.backward_button = message_page(
            "stepPreview", "Backward first",
            "Compute the gradients of sum(output) (one undoable "
                                        "step), then preview the optimizer step")

        # heatmaps
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setObjectName("stepPreviewPlots")
        self.plots.ci.setSpacing(10)
        self.scroll = QScrollArea()
        self.scroll.setObjectName("stepPreviewScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.plot_frame = plot_frame(self.plots)
        self.scroll.setWidget(self.plot_frame)
        self.export_action = install_export_action(self.plots, self, "step-preview",
                                                   self.plot_frame)

        self.stack = QStackedWidget()
        self.stack.addWidget(msg_page)
        self.stack.addWidget(self.scroll)

        self.buttons = QDialogButtonBox()
        self.apply_button = self.buttons.addButton("Apply step",
                                                   QDialogButtonBox.ButtonRole.AcceptRole)
        self.apply_button.setObjectName("stepPreviewApplyButton")
        self.apply_button.setToolTip("Apply exactly this step (one undoable Step)")
        self.discard_button = self.buttons.addButton("Discard",
                                                     QDialogButtonBox.ButtonRole.RejectRole)
        self.discard_button.setObjectName("stepPreviewDiscardButton")
        self.discard_button.setToolTip("Close without changing anything")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(6)
        layout.addWidget(self.header)
        layout.addWidget(self.info)
        layout.addWidget(self.summary)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.buttons)
        self.resize(800, 700)

        self._refresh()

        workbench.changed.connect(self._on_document_changed)
        self.apply_button.clicked.connect(self._on_apply_clicked)
        self.discard_button.clicked.connect(self._on_discard_clicked)
        self.backward_button.clicked.connect(self._on_backward_clicked)

    # --------------------------------------------------------------- public
    def export(self, path) -> Path:
        """All heatmaps as one PNG or SVG (by ``path``'s suffix)."""
        return export_plot(self.plot_frame, path)

    # --------------------------------------------------------------- slots
    def _on_document_changed(self, what: str) -> None:
        if not self._applying and what in ("params", "structure", "document", "inits"):
            self._refresh()

    def _on_apply_clicked(self) -> None:
        if self.preview is None:
            return
        self._applying = True
        try:
            ok, result = self._wb.run("Step", lambda d: d.step())
        finally:
            self._applying = False
        if ok:
            self.applied = True
            self.accept()
        else:
            self._refresh()
            self.summary.setText(f"The step was refused: {result}")

    def _on_discard_clicked(self) -> None:
        self.reject()

    def _on_backward_clicked(self) -> None:
        self._wb.run("Backward", lambda d: d.backward())

    def changeEvent(self, event):  # noqa: N802 - Qt override
        super().changeEvent(event)
        # a closed dialog (kept by its opener) does not recompute a step for a theme change
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "plots") and \
                self.isVisible():
            self._refresh()

    # --------------------------------------------------------------- content
    def _training_text(self, doc) -> str:
        t = dict(doc.training)
        opt = t.pop("optimizer", "sgd")
        lr = t.pop("learning_rate", None)
        bs = t.pop("batch_size", 0)
        x = doc.x
        parts = [f"<b>{html.escape(str(opt))}</b>"]
        if lr is not None:
            parts.append(f"learning rate {lr:g}")
        if bs:
            parts.append(f"batch size {bs}")
        elif x is not None:
            parts.append(f"batch size {int(x.shape[0])} (the input's first dimension)")
        parts += [f"{html.escape(str(k))} {v:g}" if isinstance(v, (int, float))
                  else f"{html.escape(str(k))} {html.escape(str(v))}" for k, v in t.items()]
        return " · ".join(parts) + " — the gradients are divided by the batch size"

    def _refresh(self) -> None:
        self.colors = plot_colors(self.palette())
        doc = self._wb.doc
        self.info.setText(self._training_text(doc))
        self.preview = None
        self.deltas, self.images, self.levels = {}, {}, {}
        self.summary.clear()
        status, why = gradient_status(doc)
        self.status = status
        if status != "ok":
            self._show_message(why, backward=status in ("deferred", "stale"))
            return
        try:
            preview = doc.preview_step()
        except DocumentError as err:
            self._show_message(f"The step cannot be previewed: {err}", backward=False)
            return
        self.preview = preview
        self.deltas = {n: after - before for n, (before, after) in preview.items()}
        self._draw(doc)

    def _show_message(self, text: str, backward: bool) -> None:
        self.message.setText(text)
        self.backward_button.setVisible(backward)
        self.apply_button.setEnabled(False)
        self.stack.setCurrentIndex(0)

    def _draw(self, doc) -> None:
        c = self.colors
        self.apply_button.setEnabled(True)
        self.stack.setCurrentIndex(1)
        self.plots.clear()
        self.plots.setBackground(c["bg"])
        users = {r.name: r.used_by for r in doc.param_rows()}
        names = list(self.deltas)
        maxes = {n: float(np.max(np.abs(d))) if d.size else 0.0 for n, d in self.deltas.items()}
        changed = sum(1 for n in names if maxes[n] > 0)
        if names:
            top = max(names, key=lambda n: maxes[n])
            self.summary.setText(
                f"{len(names)} parameter{'s' if len(names) != 1 else ''}, {changed} would "
                f"change · largest |Δ| = {_g(maxes[top])} in {_short(top)} · colour scale "
                "symmetric around 0 per parameter · hover for exact values")
        cols = 2 if len(names) > 1 else 1
        for i, name in enumerate(names):
            before, after = self.preview[name]
            delta = self.deltas[name]
            m = analysis.display_matrix(delta)
            shown, factor = analysis.pool_maxabs(m, MAX_CELLS, MAX_CELLS)
            levels = analysis.symmetric_levels(shown)
            self.levels[name] = levels
            plot = self.plots.addPlot(row=i // cols, col=i % cols)
            plot.setMenuEnabled(False, True)
            plot.hideButtons()
            for side in ("left", "bottom"):
                plot.hideAxis(side)
            plot.invertY(True)
            plot.setMouseEnabled(x=True, y=True)
            img = _DeltaImage(name, before, after, delta, factor)
            img.setImage(np.asarray(shown, dtype=np.float32), autoLevels=False, levels=levels)
            plot.addItem(img)
            self.images[name] = img
            rows_n, cols_n = shown.shape
            if rows_n <= 48 and cols_n <= 48 and rows_n * cols_n > 1:
                # thin separators, so equal neighbours still read as separate values
                xs, ys = [], []
                for cx in range(1, cols_n):
                    xs += [cx, cx]
                    ys += [0, rows_n]
                for ry in range(1, rows_n):
                    xs += [0, cols_n]
                    ys += [ry, ry]
                sep = QColor(c["bg"])
                sep.setAlphaF(0.55)
                grid = pg.PlotCurveItem(np.array(xs, float), np.array(ys, float),
                                        connect="pairs", pen=pg.mkPen(sep, width=1))
                plot.addItem(grid)
            bar = plot.addColorBar(img, colorMap=COLOR_MAP, values=levels, interactive=False,
                                   width=14, pen=c["muted"])
            bar.axis.setPen(pg.mkPen(c["muted"]))
            bar.axis.setTextPen(pg.mkPen(c["fg"]))
            img.setLevels(levels)
            shape = "×".join(str(d) for d in before.shape) or "scalar"
            extra = ""
            shared = users.get(name, ())
            if len(shared) > 1:
                extra = f" · shared by {len(shared)} layers"
            if factor != (1, 1):
                extra += f" · pooled {factor[0]}×{factor[1]}"
            unchanged = " (unchanged)" if maxes[name] == 0 else ""
            plot.setTitle(f"<span style='color:{c['fg'].name()}'><b>{html.escape(_short(name))}"
                          f"</b> {shape}</span><br><span style='color:{c['muted'].name()}'>max "
                          f"|Δ| {_g(maxes[name])}{unchanged}{extra}</span>", size="9pt")
            plot.setToolTip(name)
            plot.setPreferredHeight(ROW_HEIGHT if delta.ndim > 1 else ROW_HEIGHT * 0.55)
            plot.vb.setBorder(pg.mkPen(blend(c["bg"], c["fg"], 0.25)))
            plot.autoRange(padding=0)
        rows = max(1, math.ceil(len(names) / cols))
        heights = []
        for r in range(rows):
            in_row = names[r * cols:(r + 1) * cols]
            tall = any(self.deltas[n].ndim > 1 for n in in_row)
            h = ROW_HEIGHT if tall else int(ROW_HEIGHT * 0.6)
            self.plots.ci.layout.setRowFixedHeight(r, h)
            heights.append(h)
        self.plots.setMinimumHeight(sum(heights) + 10 * rows + 10)
