"""Headless rendering: ``paramlab render FILE -o OUT.png [--init NAME[:key=value,...]]
[--steps N] [--plugin-dir DIR]...``.

Opens FILE, initializes it (with ``--init`` as the global initializer, parsed like the
Initialize dialog's text form by ``PluginHost.parse_spec``), runs one forward pass, then N times
backward + step, and renders the parameter heatmaps comparing A = the snapshot after the first
forward with B = the last snapshot (A | B | B − A | grad at B, as the window's heatmap panel
draws them) to OUT.png — or OUT.svg. For reports and CI: no window is shown, the Qt platform
defaults to ``offscreen``, and the exit code says what happened: 0 written, 1 the file,
initializer, network or output could not be used (one line on stderr saying why), 2 a usage
error. It never prints a traceback.

This module imports no Qt until :func:`render` runs, so ``paramlab --help`` stays light.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["render", "run", "RenderError", "UsageError", "RenderResult"]

_QUIET = ("This plugin does not support", "propagateSizeHints")


class RenderError(Exception):
    """The model, initializer or output could not be used (exit code 1)."""


class UsageError(RenderError):
    """A bad command line (exit code 2)."""


@dataclass
class RenderResult:
    path: Path
    a_label: str
    b_label: str
    n_params: int


def _message_filter(mode, context, message):
    if any(q in message for q in _QUIET):
        return
    sys.stderr.write(message + "\n")


def _application():
    if not os.environ.get("QT_QPA_PLATFORM"):
        # No window is ever shown: render offscreen, with or without a display.
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance()
    if app is None:
        qInstallMessageHandler(_message_filter)
        app = QApplication(["paramlab"])
        app.setApplicationName("paramlab")
        app.setOrganizationName("ParamLab")
        from app.ui import style
        style.install(app)          # (an application that already runs keeps its look)
    return app


def _prepare_document(path, init_spec, steps, plugin_dirs):
    """Load, initialize, forward, N × (backward + step); returns (doc, host, A, B)."""
    from app.document import DocumentError, fileformat
    from app.pluginhost import PluginHost
    from app.pluginhost.settings import SettingsError

    host = PluginHost(plugin_dirs=list(plugin_dirs or ()))
    try:
        doc = fileformat.load(path, host=host)
    except DocumentError as err:
        raise RenderError(str(err)) from None
    except (OSError, ValueError) as err:
        raise RenderError(f"Cannot open '{Path(path).name}': {err}") from None
    if init_spec:
        try:
            name, settings = host.parse_spec(init_spec)
            doc.set_global_init(name, settings)
        except (SettingsError, DocumentError) as err:
            raise RenderError(f"--init {init_spec}: {err}") from None
    if not doc.layers:
        raise RenderError(f"'{Path(path).name}' has no layers: there are no parameters to "
                          "render")
    try:
        doc.initialize()
        # Without steps, compare initialization with the first forward, so deferred
        # parameters are seen resolving ("4 x ?" becomes (4, 5)); with steps, compare the first
        # forward with the last step.
        after_init = doc.history.snapshots[-1]
        doc.forward()
        a = doc.history.snapshots[-1] if steps else after_init
        for _ in range(steps):
            doc.backward()
            doc.step()
    except DocumentError as err:
        raise RenderError(str(err)) from None
    snaps = {s.id for s in doc.history.snapshots}
    if a.id not in snaps:
        raise RenderError("the first snapshot compared was dropped by the snapshot "
                          "memory budget; render fewer steps or a smaller network")
    return doc, host, a, doc.history.snapshots[-1]


def _sheet(workbench, a, b, title_lines):
    """A widget holding a header and the heatmap grid for (a, b), sized to show all of it."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

    from app.ui.heatmap_panel import HeatmapPanel

    panel = HeatmapPanel(workbench)
    panel.set_fade_duration(0)
    panel.set_pair(a, b)
    panel.flush()                   # every row, not only those a screen would show
    grid = panel.scroll.takeWidget()
    sheet = QWidget()
    sheet.setObjectName("renderSheet")
    sheet.setAutoFillBackground(True)
    layout = QVBoxLayout(sheet)
    layout.setContentsMargins(10, 10, 10, 6)
    layout.setSpacing(2)
    head = QLabel("<br>".join(title_lines), sheet)
    head.setTextFormat(Qt.TextFormat.RichText)
    layout.addWidget(head)
    layout.addWidget(grid)
    sheet._panel = panel            # keep the panel (it owns the rows' logic) alive
    sheet.adjustSize()
    grid.adjustSize()
    sheet.resize(sheet.sizeHint())
    layout.activate()
    return sheet


def _html(text) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(path, out, init_spec: str | None = None, steps: int = 0,
           plugin_dirs=()) -> RenderResult:
    """Render FILE's before/after heatmaps to ``out`` (.png or .svg). Raises
    :class:`UsageError` / :class:`RenderError` with a message saying what is wrong."""
    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg"):
        raise UsageError(f"-o {out}: the output must end in .png or .svg")
    if steps < 0:
        raise UsageError(f"--steps must be 0 or more, got {steps}")
    if not out.parent.exists():
        raise RenderError(f"cannot write '{out}': the folder {out.parent} does not exist")
    _application()
    doc, _host, a, b = _prepare_document(path, init_spec, steps, plugin_dirs)

    from app.ui.export import ExportError, export_widget
    from app.ui.workbench import Workbench

    workbench = Workbench(doc.host, doc)
    init = doc.global_init.describe()
    lines = [f"<b style='font-size:12pt'>{_html(Path(path).name)}</b>",
             f"global initializer {_html(init)} · {steps} step{'s' if steps != 1 else ''} "
             f"({_html(doc.training['optimizer'])}, learning rate "
             f"{doc.training['learning_rate']:g}) · "
             f"<b>A</b> #{a.id} {_html(a.label)} → <b>B</b> #{b.id} {_html(b.label)}"]
    sheet = _sheet(workbench, a, b, lines)
    try:
        export_widget(sheet, out, scale=1.0 if out.suffix.lower() == ".png" else None,
                      title=f"ParamLab: {Path(path).name}")
    except ExportError as err:
        raise RenderError(str(err)) from None
    finally:
        sheet.deleteLater()
    return RenderResult(out, f"#{a.id} {a.label}", f"#{b.id} {b.label}", len(b.params))


def run(args) -> int:
    """``paramlab render`` with parsed ``args`` (file, output, init, steps, plugin_dir)."""
    try:
        result = render(args.file, args.output, getattr(args, "init", None),
                        int(getattr(args, "steps", 0) or 0),
                        getattr(args, "plugin_dir", None) or ())
    except UsageError as err:
        print(f"usage: paramlab render FILE -o OUT.png [--init NAME[:key=value,...]] "
              f"[--steps N] [--plugin-dir DIR]\nparamlab render: error: {err}", file=sys.stderr)
        return 2
    except RenderError as err:
        print(f"paramlab render: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - the command line never shows a traceback
        print(f"paramlab render: failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(f"Wrote {result.path} ({result.n_params} parameters; A = {result.a_label}, "
          f"B = {result.b_label})")
    return 0
