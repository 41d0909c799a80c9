"""Plugins dialog and plugin gestures: a failing plugin shows in the dialog and the Log while
everything else works; reload after fixing it; New Plugin writes the template; the folder opens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QInputDialog, QLineEdit, QWidget

from app.document import Document
from app.ui.workbench import Workbench

BROKEN = '''"""A plugin with a syntax error."""
from app.engine import init
from app.pluginhost import hookimpl

class Twice(init.Initializer):
    """Every weight is 2."""
    def _init_weight(self, name, arr)
        arr[:] = 2.0
'''

FIXED = BROKEN.replace("def _init_weight(self, name, arr)",
                       "def _init_weight(self, name, arr):") + '''

@hookimpl
def paramlab_register_initializers(register):
    register(Twice, name="twice", label="Twice", category="Test plugins")
'''

GOOD = '''"""A working plugin beside the broken one."""
from typing import Annotated
from app.engine import init
from app.pluginhost import hookimpl

class Fill(init.Initializer):
    """Every weight is `value`."""
    def __init__(self, value: Annotated[float, init.Range(-5.0, 5.0)] = 0.5):
        super().__init__(value=value)
        self.value = value
    def _init_weight(self, name, arr):
        arr[:] = self.value

@hookimpl
def paramlab_register_initializers(register):
    register(Fill, name="fill", label="Fill", category="Test plugins")
'''


def plugin_window(make_window, make_host, tmp_path):
    folder = tmp_path / "myplugins"
    folder.mkdir()
    (folder / "broken.py").write_text(BROKEN)
    (folder / "good.py").write_text(GOOD)
    host = make_host(folder)
    wb = Workbench(host, Document(host=host))
    return make_window(wb), wb, folder


def log_text(window) -> str:
    view = window.findChild(QWidget, "logView")
    if hasattr(view, "toPlainText"):
        return view.toPlainText()
    model = view.model()
    return "\n".join(str(model.index(r, c).data() or "") for r in range(model.rowCount())
                     for c in range(model.columnCount()))


def test_a_failing_plugin_shows_in_the_dialog_and_the_log_while_the_rest_works(
        make_window, make_host, tmp_path, qtbot):
    window, wb, folder = plugin_window(make_window, make_host, tmp_path)
    errors = [e for e in wb.doc.log_entries if e.level == "error"]
    assert len(errors) == 1 and "broken.py" in errors[0].message
    assert "syntax error" in errors[0].message and "SyntaxError" in errors[0].details
    assert "broken.py" in log_text(window)

    window.findChild(QAction, "actionPlugins").trigger()
    dialog = window.plugins_dialog
    assert dialog.objectName() == "pluginsDialog" and dialog.isVisible()
    inits = dialog.findChild(QWidget, "initializersTree")
    names = [inits.topLevelItem(i).text(1) for i in range(inits.topLevelItemCount())]
    assert {"uniform", "xavier", "myinit", "kaiming", "lsuv", "fill"} <= set(names)
    assert "twice" not in names
    row = inits.topLevelItem(names.index("fill"))
    assert row.text(3).endswith("good.py")                  # origin
    assert "value: float = 0.5" in row.text(4)              # settings
    failures = dialog.findChild(QWidget, "failuresTree")
    assert failures.topLevelItemCount() == 1
    item = failures.topLevelItem(0)
    assert item.text(0).endswith("broken.py") and item.text(1) == "syntax error"
    assert "line 7" in item.text(2)
    failures.setCurrentItem(item)
    button = dialog.findChild(QWidget, "showTracebackButton")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    trace = dialog.traceback_dialog.findChild(QWidget, "tracebackView")
    assert dialog.traceback_dialog.isVisible() and "SyntaxError" in trace.toPlainText()

    # Everything else works: initialize with the good plugin through the Initialize dialog.
    wb.run("Add", lambda d: d.add_layer("Dense", {"units": 3, "in_units": 2}))
    window.findChild(QAction, "actionInitialize").trigger()
    init_dialog = window.initialize_dialog
    init_dialog.select("fill")
    value = init_dialog.findChild(QLineEdit, "setting_value")
    value.selectAll()
    qtbot.keyClicks(value, "1.5")
    qtbot.mouseClick(init_dialog.findChild(QWidget, "initializeButton"),
                     Qt.MouseButton.LeftButton)
    w = wb.doc.params()["sequential0_dense0_weight"].data().asnumpy()
    assert np.all(w == 1.5)


def test_reload_after_fixing_the_plugin(make_window, make_host, tmp_path, qtbot):
    window, wb, folder = plugin_window(make_window, make_host, tmp_path)
    wb.doc.load_spec({**wb.doc.to_spec(), "global_init": {"name": "twice", "settings": {}}})
    wb.run("Add", lambda d: d.add_layer("Dense", {"units": 2, "in_units": 2}))
    assert wb.doc.param_rows()[0].init_source == "missing"
    window.findChild(QAction, "actionPlugins").trigger()
    dialog = window.plugins_dialog
    (folder / "broken.py").write_text(FIXED)
    qtbot.mouseClick(dialog.findChild(QWidget, "reloadButton"), Qt.MouseButton.LeftButton)
    failures = dialog.findChild(QWidget, "failuresTree")
    assert failures.topLevelItemCount() == 0
    assert "no plugin failed" in dialog.findChild(QWidget, "failuresTitle").text()
    inits = dialog.findChild(QWidget, "initializersTree")
    names = [inits.topLevelItem(i).text(1) for i in range(inits.topLevelItemCount())]
    assert "twice" in names
    # The document re-emitted 'inits': the missing choice is resolved everywhere.
    assert wb.doc.param_rows()[0].init_source == "global"
    assert any("plugins reloaded" in e.message for e in wb.doc.log_entries)
    assert wb.run("Init", lambda d: d.initialize())[0]
    assert np.all(wb.doc.params()["sequential0_dense0_weight"].data().asnumpy() == 2.0)

    # Breaking it again and pressing F6 (in the dialog) logs the failure again, as an error.
    (folder / "broken.py").write_text(BROKEN)
    n_errors = sum(e.level == "error" for e in wb.doc.log_entries)
    with qtbot.waitActive(dialog):
        dialog.activateWindow()
    qtbot.keyClick(dialog, Qt.Key.Key_F6)
    assert sum(e.level == "error" for e in wb.doc.log_entries) == n_errors + 1
    assert failures.topLevelItemCount() == 1
    assert "1 failure" in window.statusBar().currentMessage()


def test_new_plugin_writes_the_template_and_refuses_an_existing_file(window, tmp_path, qtbot):
    told = []
    window.tell = lambda level, title, text: told.append((level, text))
    window.findChild(QAction, "actionPlugins").trigger()
    dialog = window.plugins_dialog
    qtbot.mouseClick(dialog.findChild(QWidget, "newPluginButton"), Qt.MouseButton.LeftButton)
    ask = dialog.findChild(QInputDialog, "newPluginDialog")
    assert ask is not None and ask.isVisible()
    line = ask.findChild(QLineEdit)
    qtbot.keyClicks(line, "my scaled init")
    qtbot.keyClick(line, Qt.Key.Key_Return)
    path = tmp_path / "xdg-data" / "paramlab" / "plugins" / "my_scaled_init.py"
    assert path.exists()
    text = path.read_text()
    assert "class MyScaledInit(init.Initializer)" in text
    assert told[-1][0] == "info" and str(path) in told[-1][1]
    compile(text, str(path), "exec")

    path.write_text("# my edits\n")
    ask = window.new_plugin()                               # Plugins > New Plugin…
    line = ask.findChild(QLineEdit)
    qtbot.keyClicks(line, "my scaled init")
    qtbot.keyClick(line, Qt.Key.Key_Return)
    assert told[-1][0] == "warning" and "already exists" in told[-1][1]
    assert path.read_text() == "# my edits\n"


def test_open_plugin_folder_creates_it_and_asks_the_desktop(window, tmp_path, monkeypatch, qtbot):
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    window.findChild(QAction, "actionPlugins").trigger()
    qtbot.mouseClick(window.plugins_dialog.findChild(QWidget, "openFolderButton"),
                     Qt.MouseButton.LeftButton)
    folder = tmp_path / "xdg-data" / "paramlab" / "plugins"
    assert folder.is_dir()
    assert [Path(u.toLocalFile()) for u in opened] == [folder]
    window.findChild(QAction, "actionOpenPluginFolder").trigger()
    assert len(opened) == 2
