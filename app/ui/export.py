"""Export any panel to PNG or SVG.

:func:`export_widget` saves a QWidget — a whole panel, a heatmap grid (all of it, also the part
scrolled out of view), a pyqtgraph ``GraphicsLayoutWidget`` — as PNG (``QWidget.grab``, at the
screen's device pixel ratio or ``scale``) or SVG (``QSvgGenerator`` rendering the widget tree, so
text and lines stay vectors and heatmaps are embedded images). :func:`export_item` saves one
pyqtgraph item or scene with pyqtgraph's own ``ImageExporter`` / ``SVGExporter``.
:func:`export_dialog` asks for a file name (PNG or SVG) and exports; the heatmap grid's
"Export…" action and ``paramlab render`` use these.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QPoint, QRect, QRectF, QSize
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

__all__ = ["export_widget", "export_item", "export_dialog", "ExportError", "FORMATS"]

FORMATS = {".png": "PNG image", ".svg": "SVG drawing"}


class ExportError(OSError):
    """The file could not be written; the message says which and why."""


def _format_of(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ExportError(f"cannot export to '{Path(path).name}': choose a .png or .svg file")
    return suffix


def export_widget(widget: QWidget, path, scale: float | None = None,
                  title: str | None = None) -> Path:
    """Save ``widget`` to ``path`` (.png or .svg); returns the path. ``scale`` renders a PNG
    at that many pixels per widget pixel (default: 1, or 2 on a high-DPI screen)."""
    path = Path(path)
    suffix = _format_of(path)
    widget.ensurePolished()
    layout = widget.layout()
    if layout is not None:
        layout.activate()
    size = widget.size()
    if size.isEmpty():
        size = widget.sizeHint().expandedTo(QSize(1, 1))
        widget.resize(size)
    if path.parent and not path.parent.exists():
        raise ExportError(f"cannot write '{path}': the folder {path.parent} does not exist")
    if suffix == ".png":
        if scale is None:
            scale = max(1.0, widget.devicePixelRatioF())
        from PySide6.QtGui import QImage
        image = QImage(int(size.width() * scale), int(size.height() * scale),
                       QImage.Format.Format_ARGB32_Premultiplied)
        image.setDevicePixelRatio(scale)
        image.fill(widget.palette().window().color())
        painter = QPainter(image)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
            widget.render(painter, QPoint(0, 0))
        finally:
            painter.end()
        if not image.save(os.fspath(path), "PNG"):
            raise ExportError(f"cannot write '{path}': saving the PNG failed (is the folder "
                              "writable?)")
        return path
    from PySide6.QtSvg import QSvgGenerator
    gen = QSvgGenerator()
    gen.setFileName(os.fspath(path))
    gen.setSize(size)
    gen.setResolution(96)               # CSS pixels: the drawing's size in mm matches screens
    gen.setViewBox(QRect(0, 0, size.width(), size.height()))
    gen.setTitle(title or widget.windowTitle() or "ParamLab")
    gen.setDescription("Exported from ParamLab")
    painter = QPainter()
    if not painter.begin(gen):
        raise ExportError(f"cannot write '{path}': the SVG file could not be opened")
    try:
        painter.fillRect(QRect(0, 0, size.width(), size.height()), widget.palette().window())
        widget.render(painter, QPoint(0, 0))
    finally:
        painter.end()
    if not path.exists() or path.stat().st_size == 0:
        raise ExportError(f"cannot write '{path}'")
    return path


def export_item(item, path, width: int | None = None) -> Path:
    """Save a pyqtgraph item (PlotItem, GraphicsLayout, ...) with pyqtgraph's exporters; an SVG
    that pyqtgraph's exporter cannot write (it chokes on some items) is drawn by Qt instead."""
    import pyqtgraph.exporters as pgx
    path = Path(path)
    suffix = _format_of(path)
    if suffix == ".png":
        exporter = pgx.ImageExporter(item)
        if width:
            exporter.parameters()["width"] = int(width)
        exporter.export(os.fspath(path))
    else:
        try:
            pgx.SVGExporter(item).export(os.fspath(path))
        except Exception:  # noqa: BLE001 - pyqtgraph's SVG writer is fragile
            _scene_svg(item, path)
    if not path.exists() or path.stat().st_size == 0:
        raise ExportError(f"cannot write '{path}'")
    return path


def _scene_svg(item, path: Path) -> None:
    from PySide6.QtSvg import QSvgGenerator
    scene = item.scene() if hasattr(item, "scene") and callable(item.scene) else item
    rect = item.sceneBoundingRect() if hasattr(item, "sceneBoundingRect") else \
        scene.itemsBoundingRect()
    gen = QSvgGenerator()
    gen.setFileName(os.fspath(path))
    gen.setSize(rect.size().toSize())
    gen.setViewBox(QRect(0, 0, int(rect.width()), int(rect.height())))
    gen.setResolution(96)
    painter = QPainter()
    if not painter.begin(gen):
        raise ExportError(f"cannot write '{path}': the SVG file could not be opened")
    try:
        scene.render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
    finally:
        painter.end()


def export_dialog(parent: QWidget, widget: QWidget, name: str = "panel",
                  directory: str | None = None) -> Path | None:
    """Ask where to save ``widget`` (PNG or SVG) and export it; None when cancelled."""
    start = os.path.join(directory or os.getcwd(), f"{name}.png")
    filters = "PNG image (*.png);;SVG drawing (*.svg)"
    path, chosen = QFileDialog.getSaveFileName(parent, "Export", start, filters)
    if not path:
        return None
    if not Path(path).suffix:
        path += ".svg" if chosen.startswith("SVG") else ".png"
    try:
        return export_widget(widget, path)
    except ExportError as err:
        QMessageBox.warning(parent, "Export failed", str(err))
        return None
