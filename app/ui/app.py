"""Start the window: ``run(argv)`` (or :func:`start` with parsed options) returns an exit code.

Creates the QApplication (organization "ParamLab", application "paramlab", which QSettings
uses), installs the light/dark palette, loads the plugins (``--plugin-dir``,
``PARAMLAB_SAFE_MODE``), opens FILE (by default the chapter's example network), shows the
window, offers to restore a crashed session's autosave and runs the event loop.

``--screenshot OUT.png`` opens the window offscreen at 1400×900, lets it settle, saves
``window.grab()`` to OUT.png and exits 0 (1, with the reason on stderr, when the model cannot be
opened or the PNG cannot be written). It reads and writes no settings and no autosave.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import app as _app_pkg

__all__ = ["run", "start", "DEFAULT_MODEL", "SCREENSHOT_SIZE"]

ROOT = Path(_app_pkg.__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "resources" / "examples" / "chapter_mlp.json"
SCREENSHOT_SIZE = (1400, 900)

# Harmless notices the offscreen platform prints for every top-level window.
_QUIET = ("This plugin does not support propagateSizeHints()",
          "This plugin does not support raise()",
          "This plugin does not support grabbing the keyboard")


def run(argv: Sequence[str] | None = None) -> int:
    """Parse the window's command line (see ``paramlab --help``) and run the window."""
    from app.cli import parse_gui_args
    try:
        options = parse_gui_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    return start(options)


def _no_display() -> bool:
    """On Linux without X11/Wayland (and no QT_QPA_PLATFORM), Qt would abort: say so first."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _message_filter(mode, context, message):
    if any(message.startswith(q) for q in _QUIET):
        return
    sys.stderr.write(message + "\n")


def _application():
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from app import __version__

    app = QApplication.instance()
    if app is None:
        qInstallMessageHandler(_message_filter)
        app = QApplication(["paramlab"])
    app.setOrganizationName("ParamLab")
    app.setApplicationName("paramlab")
    app.setApplicationDisplayName("ParamLab")
    app.setApplicationVersion(__version__)
    from app.ui import style
    style.install(app)
    return app


def start(options) -> int:
    """Run the window with parsed options (``file``, ``plugin_dir``, ``screenshot``)."""
    screenshot = getattr(options, "screenshot", None)
    if screenshot and not os.environ.get("QT_QPA_PLATFORM"):
        # Deterministic pictures, and no window flashing on the user's screen.
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if not screenshot and _no_display():
        print("paramlab: no display to open the window on (DISPLAY and WAYLAND_DISPLAY are "
              "not set). Run it on a desktop, try `paramlab demo` for the headless chapter "
              "walk-through, or `paramlab --screenshot OUT.png` for a picture of the window.",
              file=sys.stderr)
        return 1
    app = _application()

    from app.document import fileformat
    from app.document.fileformat import FileFormatError
    from app.pluginhost import PluginHost
    from app.ui.workbench import Workbench

    host = PluginHost(plugin_dirs=list(getattr(options, "plugin_dir", None) or ()))
    path = getattr(options, "file", None)
    error = None
    doc = None
    try:
        doc = fileformat.load(path or DEFAULT_MODEL, host=host)
    except FileFormatError as err:
        error = str(err)
        if screenshot:
            print(f"paramlab: {error}", file=sys.stderr)
            return 1
        print(f"paramlab: {error}", file=sys.stderr)

    from app.ui.main_window import MainWindow
    workbench = Workbench(host, doc)
    if host.safe_mode:
        workbench.doc.info("safe mode (PARAMLAB_SAFE_MODE): only the built-in initializers "
                           "are loaded")
    if screenshot:
        return _screenshot(app, workbench, screenshot)

    window = MainWindow(workbench)
    if doc is not None and doc.layers:
        workbench.select(("layer", doc.layers[0].uid))
    window.show()
    if path and doc is not None:
        window.add_recent(path)
    window.start_session()
    if error:
        window.tell("error", "Cannot Open", error)
    return app.exec()


def _screenshot(app, workbench, out) -> int:
    from PySide6.QtCore import QTimer

    from app.ui.main_window import MainWindow

    window = MainWindow(workbench, persist=False)
    doc = workbench.doc
    if doc.layers:
        workbench.select(("layer", doc.layers[0].uid))
    window.resize(*SCREENSHOT_SIZE)
    window.show()
    for _ in range(4):
        app.processEvents()
    result = {"code": 1}

    def grab():
        app.processEvents()
        pixmap = window.grab()
        target = Path(out)
        if pixmap.isNull():
            print("paramlab: the window could not be drawn", file=sys.stderr)
        elif not target.parent.is_dir():
            print(f"paramlab: cannot write {out}: folder {target.parent} does not exist",
                  file=sys.stderr)
        elif not pixmap.save(str(target), "PNG"):
            print(f"paramlab: cannot write {out} (permission denied or not a PNG path?)",
                  file=sys.stderr)
        else:
            result["code"] = 0
        window.close()
        app.quit()

    QTimer.singleShot(60, grab)
    app.exec()
    return result["code"]
