"""The main window, through its real widgets: actions, dialogs, the inspector's form.

Builds the chapter's two networks by hand (Dense(4, relu) → Dense(2); and the shared-layer
net), initializes with the MyInit plugin through the Initialize dialog, runs a forward pass and
checks the engine's parameters; undo/redo must restore the exact arrays.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QPalette
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialogButtonBox, QDockWidget, QLineEdit,
                               QMenu, QMessageBox, QWidget)

import app
from app.document.layers import KINDS

ROOT = Path(app.__file__).resolve().parent.parent

DOCKS = ("layersDock", "parametersDock", "inspectorDock", "logDock", "consoleDock")
ACTIONS = ("actionNew", "actionOpen", "actionSave", "actionSaveAs", "actionUndo", "actionRedo",
           "actionRemoveLayer", "actionDuplicateLayer", "actionMoveLayerUp",
           "actionMoveLayerDown", "actionLink", "actionTie", "actionUnlink", "actionInitialize",
           "actionForceReinit", "actionForward", "actionReloadPlugins", "actionPlugins",
           "actionQuit")


# ------------------------------------------------------------------------------ helpers
def act(window, name) -> QAction:
    action = window.findChild(QAction, name)
    assert action is not None, f"no action {name}"
    return action


def trigger(window, name) -> None:
    action = act(window, name)
    assert action.isEnabled(), f"{name} is disabled"
    action.trigger()


def edit_layer(window, qtbot, **values) -> None:
    """Type ``values`` into the Inspector's layer form and click Apply."""
    inspector = window.findChild(QDockWidget, "inspectorDock")
    form = inspector.findChild(QWidget, "layerSettingsForm")
    assert form is not None and form.isVisible()
    for name, value in values.items():
        editor = form.findChild(QWidget, f"setting_{name}")
        if isinstance(editor, QComboBox):
            index = editor.findText(str(value))
            assert index >= 0, (name, value)
            editor.setCurrentIndex(index)
        elif isinstance(editor, QCheckBox):
            if editor.isChecked() != bool(value):
                qtbot.mouseClick(editor, Qt.MouseButton.LeftButton)
        else:
            assert isinstance(editor, QLineEdit), type(editor)
            editor.selectAll()
            qtbot.keyClicks(editor, str(value))
    apply = inspector.findChild(QWidget, "layerApply")
    assert apply.isEnabled()
    qtbot.mouseClick(apply, Qt.MouseButton.LeftButton)


def initialize_with(window, qtbot, name, force=False, **settings):
    """Model > Initialize…: pick ``name``, type its settings, click Initialize."""
    trigger(window, "actionInitialize")
    dialog = window.initialize_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.select(name)
    for key, value in settings.items():
        editor = dialog.findChild(QLineEdit, f"setting_{key}")
        editor.selectAll()
        qtbot.keyClicks(editor, str(value))
    check = dialog.findChild(QCheckBox, "forceReinitCheck")
    if check.isChecked() != force:
        qtbot.mouseClick(check, Qt.MouseButton.LeftButton)
    ok = dialog.findChild(QWidget, "initializeButton")
    assert ok.isEnabled()
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    return dialog


def values(doc) -> dict:
    return {n: (None if p.state != "initialized" else p.data().asnumpy().copy())
            for n, p in doc.params().items()}


def assert_same_values(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if a[k] is None or b[k] is None:
            assert a[k] is None and b[k] is None, k
        else:
            assert np.array_equal(a[k], b[k]), k


def table_text(view) -> list[list[str]]:
    model = view.model()
    return [[str(model.index(r, c).data() or "") for c in range(model.columnCount())]
            for r in range(model.rowCount())]


# ------------------------------------------------------------------------------ structure
def test_docks_actions_and_key_widgets_have_stable_object_names(window):
    assert window.objectName() == "mainWindow"
    assert window.centralWidget().objectName() == "centerTabs"
    assert window.findChild(QWidget, "diagramView") is window.diagram_view
    for name in DOCKS:
        dock = window.findChild(QDockWidget, name)
        assert dock is not None and dock.isVisible(), name
    for name in ACTIONS + tuple(f"actionAdd{k}" for k in KINDS):
        assert window.findChild(QAction, name) is not None, name
    assert window.findChild(QMenu, "menuRecentFiles") is not None
    for name in ("layersList", "parametersTable", "inspectorPanel", "logView", "consoleInput",
                 "consoleOutput"):
        assert window.findChild(QWidget, name) is not None, name
    assert act(window, "actionUndo").shortcut().toString() == "Ctrl+Z"
    assert {s.toString() for s in act(window, "actionRedo").shortcuts()} == {"Ctrl+Shift+Z",
                                                                              "Ctrl+Y"}
    assert act(window, "actionRemoveLayer").shortcut().toString() == "Del"
    assert act(window, "actionForward").shortcut().toString() == "F5"


def test_layer_actions_follow_the_selection(window, workbench):
    for name in ("actionRemoveLayer", "actionDuplicateLayer", "actionMoveLayerUp",
                 "actionMoveLayerDown", "actionLink", "actionTie", "actionUnlink",
                 "actionInitialize", "actionForward"):
        assert not act(window, name).isEnabled(), name
    trigger(window, "actionAddDense")
    trigger(window, "actionAddActivation")
    doc = workbench.doc
    assert [s.kind for s in doc.layers] == ["Dense", "Activation"]
    assert workbench.selected_layer() == doc.layers[1].uid      # the new layer is selected
    assert act(window, "actionRemoveLayer").isEnabled()
    assert act(window, "actionMoveLayerUp").isEnabled()
    assert not act(window, "actionMoveLayerDown").isEnabled()
    assert not act(window, "actionLink").isEnabled()            # Activation has no parameters
    assert not act(window, "actionTie").isEnabled()
    trigger(window, "actionMoveLayerUp")
    assert [s.kind for s in doc.layers] == ["Activation", "Dense"]
    assert not act(window, "actionMoveLayerUp").isEnabled()
    trigger(window, "actionDuplicateLayer")
    assert [s.kind for s in doc.layers] == ["Activation", "Activation", "Dense"]
    trigger(window, "actionRemoveLayer")
    assert [s.kind for s in doc.layers] == ["Activation", "Dense"]
    trigger(window, "actionUndo")
    assert [s.kind for s in doc.layers] == ["Activation", "Activation", "Dense"]


def test_build_chapter_mlp_by_hand_initialize_with_myinit_and_forward(window, workbench,
                                                                      qtbot):
    doc = workbench.doc
    assert doc.layers == []
    trigger(window, "actionAddDense")
    edit_layer(window, qtbot, units=4, activation="relu")
    trigger(window, "actionAddDense")
    edit_layer(window, qtbot, units=2)
    assert [s.label() for s in doc.layers] == ["Dense(4, relu)", "Dense(2)"]
    assert list(doc.params().keys()) == [
        "sequential0_dense0_weight", "sequential0_dense0_bias",
        "sequential0_dense1_weight", "sequential0_dense1_bias"]
    initialize_with(window, qtbot, "myinit", low=5, high=10)
    assert not window.initialize_dialog.isVisible()
    assert doc.global_init.name == "myinit"
    after_init = values(doc)
    assert {p.state for p in doc.params().values()} == {"deferred", "initialized"}

    qtbot.keyClick(window, Qt.Key.Key_F5)                   # Model > Forward
    assert doc.output is not None and doc.output.shape == (3, 2)
    params = doc.params()
    assert params["sequential0_dense0_weight"].shape == (4, 5)
    for name in ("sequential0_dense0_weight", "sequential0_dense1_weight"):
        w = params[name].data().asnumpy()
        assert ((w >= 5) & (w < 10)).all(), name
    for name in ("sequential0_dense0_bias", "sequential0_dense1_bias"):
        assert np.array_equal(params[name].data().asnumpy(), np.zeros(params[name].shape))
    after_forward = values(doc)
    # The Parameters view shows it: every row initialized, the weights from MyInit.
    rows = table_text(window.findChild(QWidget, "parametersTable"))
    assert len(rows) == 4
    assert all(any(cell == "initialized" for cell in row) for row in rows)
    assert any("myinit" in " ".join(row) for row in rows)

    # Undo / redo restore the exact arrays.
    trigger(window, "actionUndo")                           # forward
    assert_same_values(values(doc), after_init)
    trigger(window, "actionUndo")                           # initialize
    assert {p.state for p in doc.params().values()} == {"uninitialized"}
    assert doc.global_init.name == "uniform"
    trigger(window, "actionRedo")
    assert_same_values(values(doc), after_init)
    trigger(window, "actionRedo")
    assert_same_values(values(doc), after_forward)
    np.testing.assert_array_equal(doc.output, doc.net(doc.x).asnumpy())


def test_build_chapter_shared_network_and_link_through_the_dialog(window, workbench, qtbot):
    doc = workbench.doc
    for units, activation in ((4, "relu"), (4, "relu"), (4, "relu"), (2, "none")):
        trigger(window, "actionAddDense")
        edit_layer(window, qtbot, units=units, activation=activation)
    third = doc.layers[2].uid
    workbench.select(("layer", third))
    assert act(window, "actionLink").isEnabled() and act(window, "actionTie").isEnabled()
    trigger(window, "actionLink")
    dialog = window.link_dialog
    targets = dialog.findChild(QWidget, "linkTargetList")
    assert targets.count() == 2                             # the layers above the third
    targets.setCurrentRow(1)
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok),
                     Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert [(ln.src, ln.dst, ln.kind) for ln in doc.links] == [(third, doc.layers[1].uid,
                                                                "share")]
    assert doc.block(third).weight is doc.block(doc.layers[1].uid).weight
    assert len(list(doc.params().keys())) == 6                           # the third layer owns none
    assert act(window, "actionUnlink").isEnabled()

    initialize_with(window, qtbot, "normal", sigma=0.5)
    trigger(window, "actionForward")
    w = doc.block(third).weight.data().asnumpy()
    assert w.shape == (4, 4) and w.std() > 0.1
    np.testing.assert_array_equal(w, doc.params()["sequential0_dense1_weight"].data().asnumpy())

    trigger(window, "actionUnlink")
    assert doc.links == []
    trigger(window, "actionUndo")
    assert len(doc.links) == 1
    np.testing.assert_array_equal(doc.block(third).weight.data().asnumpy(), w)


def test_a_link_whose_shapes_disagree_is_refused_in_place(window, workbench, qtbot):
    doc = workbench.doc
    trigger(window, "actionAddDense")
    edit_layer(window, qtbot, units=4)
    trigger(window, "actionAddDense")
    edit_layer(window, qtbot, units=3)
    steps = workbench.undo_stack.count()
    trigger(window, "actionLink")
    dialog = window.link_dialog
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok),
                     Qt.MouseButton.LeftButton)
    error = dialog.findChild(QWidget, "linkError")
    assert dialog.isVisible() and error.isVisible()
    assert "desired" in error.text() and "shape" in error.text()   # Gluon's words
    assert doc.links == [] and workbench.undo_stack.count() == steps
    assert "Refused" in window.statusBar().currentMessage()
    dialog.reject()


def test_tie_transposed_through_the_dialog(window, workbench, qtbot):
    doc = workbench.doc
    trigger(window, "actionAddDense")
    edit_layer(window, qtbot, units=3, activation="tanh")
    trigger(window, "actionAddDense")
    edit_layer(window, qtbot, units=5)
    trigger(window, "actionTie")
    dialog = window.link_dialog
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok),
                     Qt.MouseButton.LeftButton)
    assert [ln.kind for ln in doc.links] == ["tie"]
    initialize_with(window, qtbot, "xavier")
    trigger(window, "actionForward")
    enc = doc.block(doc.layers[0].uid).weight.data().asnumpy()
    assert enc.shape == (3, 5)
    assert doc.output.shape == (3, 5)


def test_initialize_dialog_keeps_ok_disabled_while_settings_are_invalid(window, workbench,
                                                                        qtbot):
    trigger(window, "actionAddDense")
    trigger(window, "actionInitialize")
    dialog = window.initialize_dialog
    dialog.select("myinit")
    ok = dialog.findChild(QWidget, "initializeButton")
    low = dialog.findChild(QLineEdit, "setting_low")
    assert ok.isEnabled()
    low.selectAll()
    qtbot.keyClicks(low, "abc")
    assert not ok.isEnabled()
    assert low.property("invalid") is True
    low.selectAll()
    qtbot.keyClicks(low, "20")                              # high (10) must be > low
    assert not ok.isEnabled()
    low.selectAll()
    qtbot.keyClicks(low, "1")
    assert ok.isEnabled()
    # A data-dependent initializer says it will calibrate on the input batch.
    dialog.select("lsuv")
    note = dialog.findChild(QWidget, "needsDataNote")
    assert note.isVisible() and "(3, 5)" in note.text()
    assert "uniform" in dialog.findChild(QComboBox, "initializerCombo").itemText(
        dialog.combo.findData("uniform", Qt.ItemDataRole.UserRole + 1)).lower()
    dialog.reject()
    assert workbench.doc.global_init.name == "uniform"      # nothing applied


def test_initialize_twice_logs_gluons_warning_and_force_reinit_replaces(window, workbench,
                                                                       qtbot):
    doc = workbench.doc
    trigger(window, "actionAddDense")
    edit_layer(window, qtbot, in_units=5)
    initialize_with(window, qtbot, "uniform")
    first = values(doc)
    initialize_with(window, qtbot, "uniform")
    assert_same_values(values(doc), first)
    assert any("already initialized" in e.message and e.level == "warning"
               for e in doc.log_entries)
    qtbot.keyClick(window, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier |
                   Qt.KeyboardModifier.ShiftModifier)      # Force Re-initialize
    w0 = doc.params()["sequential0_dense0_weight"].data().asnumpy()
    assert not np.array_equal(w0, first["sequential0_dense0_weight"])
    trigger(window, "actionUndo")
    assert_same_values(values(doc), first)


def test_window_title_shows_the_file_and_a_dirty_marker(window, workbench, qtbot):
    assert window.windowTitle() == "Untitled — ParamLab"
    trigger(window, "actionAddDense")
    assert window.windowTitle() == "Untitled* — ParamLab"
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.windowTitle() == "Untitled — ParamLab"
    assert window.open_path(ROOT / "resources" / "examples" / "chapter_mlp.json")
    assert window.windowTitle() == "chapter_mlp.json — ParamLab"


def test_failures_show_in_the_status_bar(window, workbench):
    trigger(window, "actionAddDense")
    workbench.run("bad", lambda d: d.update_layer(d.layers[0].uid, units=-3))
    assert window.statusBar().currentMessage().startswith("Refused:")
    assert "units" in window.statusBar().currentMessage()


def test_memory_limit_asks_before_allocating(window, workbench):
    doc = workbench.doc
    doc.memory_limit = 64
    window.answers["confirm_large"] = QMessageBox.StandardButton.No
    act(window, "actionAddEmbedding").trigger()
    assert doc.layers == [] and window.asked[-1][0] == "confirm_large"
    window.answers["confirm_large"] = QMessageBox.StandardButton.Yes
    act(window, "actionAddEmbedding").trigger()
    assert [s.kind for s in doc.layers] == ["Embedding"]
    assert doc.memory_limit == 64


def test_dock_layout_and_geometry_persist(make_window, workbench):
    first = make_window()
    first.findChild(QDockWidget, "consoleDock").raise_()
    first.findChild(QDockWidget, "inspectorDock").hide()
    first.resize(first.width(), 577)        # the offscreen screen is 800×600
    size = first.size()
    first.close()
    second = make_window()
    assert not second.findChild(QDockWidget, "inspectorDock").isVisible()
    assert second.findChild(QDockWidget, "layersDock").isVisible()
    assert second.size() == size and second.height() == 577
    second.findChild(QAction, "actionResetLayout").trigger()
    assert second.findChild(QDockWidget, "inspectorDock").isVisible()


def test_view_menu_toggles_each_dock(window):
    menu = window.findChild(QMenu, "menuView")
    titles = [a.text() for a in menu.actions() if a.isCheckable()]
    assert titles == ["Layers", "Inspector", "Parameters", "Log", "Console"]
    toggle = next(a for a in menu.actions() if a.text() == "Parameters")
    toggle.trigger()
    assert not window.findChild(QDockWidget, "parametersDock").isVisible()
    toggle.trigger()
    assert window.findChild(QDockWidget, "parametersDock").isVisible()


def test_dark_and_light_palettes(qapp, monkeypatch):
    from app.ui import style
    follower = style.install(qapp)
    monkeypatch.setenv("PARAMLAB_THEME", "dark")
    follower._on_color_scheme_changed()
    pal = qapp.palette()
    assert style.is_dark(pal)
    assert pal.color(QPalette.ColorRole.WindowText).lightness() > 180
    monkeypatch.setenv("PARAMLAB_THEME", "light")
    follower._on_color_scheme_changed()
    assert not style.is_dark(qapp.palette())


# ------------------------------------------------------------------------------ screenshot
def _png_size(path) -> tuple[int, int]:
    data = open(path, "rb").read(32)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _run_app(tmp_path, *args):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(tmp_path / "d"),
               XDG_CONFIG_HOME=str(tmp_path / "c"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_screenshot_mode_writes_a_png(tmp_path):
    out = tmp_path / "shot.png"
    proc = _run_app(tmp_path, "--screenshot", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 10_000
    assert _png_size(out) == (1400, 900)


@pytest.mark.parametrize("case", ["unwritable", "corrupt"])
def test_screenshot_mode_fails_clearly(tmp_path, case):
    if case == "unwritable":
        args = ["--screenshot", str(tmp_path / "no" / "such" / "dir" / "x.png")]
        expected = "cannot write"
    else:
        bad = tmp_path / "bad.paramlab"
        bad.write_bytes(b"not a zip at all")
        args = [str(bad), "--screenshot", str(tmp_path / "x.png")]
        expected = "Cannot open 'bad.paramlab'"
    proc = _run_app(tmp_path, *args)
    assert proc.returncode == 1
    assert expected in proc.stderr and "Traceback" not in proc.stderr
