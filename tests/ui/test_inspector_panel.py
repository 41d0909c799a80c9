"""InspectorPanel: the selected layer's / parameter's / the network's settings, edited through
real widgets; wrong values never reach the document, Apply is one undo step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton

import app
from app.document import fileformat
from app.pluginhost import PluginHost
from app.ui.inspector_panel import InitChoiceEditor, InspectorPanel, parse_shape
from app.ui.settings_form import SettingsForm
from app.ui.workbench import Workbench

ROOT = Path(app.__file__).resolve().parent.parent
EXAMPLES = ROOT / "resources" / "examples"




@pytest.fixture
def plugin_host():
    return PluginHost(plugin_dirs=[ROOT / "plugins"], default_dirs=False, entry_points=False)


def open_example(name, host) -> Workbench:
    return Workbench(host, fileformat.load(EXAMPLES / f"{name}.json", host))


@pytest.fixture
def wb(qapp, plugin_host):
    return open_example("chapter_mlp", plugin_host)


@pytest.fixture
def panel(qtbot, wb):
    p = InspectorPanel(wb)
    qtbot.addWidget(p)
    p.resize(380, 900)
    p.show()
    return p


def type_into(qtbot, editor, text: str) -> None:
    editor.setFocus()
    editor.selectAll()
    qtbot.keyClicks(editor, text)


def click(qtbot, button: QPushButton) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def form(panel, name="layerSettingsForm") -> SettingsForm:
    return panel.findChild(SettingsForm, name)


def button(panel, name) -> QPushButton:
    return panel.findChild(QPushButton, name)


def chooser(panel, name) -> InitChoiceEditor:
    return panel.findChild(InitChoiceEditor, name)


def pick(combo, data) -> None:
    """Choose an entry as a user would (the combo's current index changes)."""
    index = combo.findData(data)
    assert index >= 0, data
    combo.setFocus()
    combo.setCurrentIndex(index)


def row(doc, name):
    return next(r for r in doc.param_rows() if r.name == name)


# ----------------------------------------------------------------- layer settings
def test_nothing_selected_shows_the_network_page(panel, wb):
    assert panel.objectName() == "inspectorPanel"
    assert chooser(panel, "globalInit").combo.currentData() == "uniform"
    assert form(panel, "inputForm").editor("shape").text() == "3, 5"
    assert chooser(panel, "globalInit").form.editor("scale").text() == "0.07"


def test_a_layer_shows_its_title_kind_and_settings(panel, wb):
    wb.select(("layer", "L1"))
    title = panel.findChild(QLabel, "inspectorTitle")
    assert title.text() == "0: Dense(4, relu)"
    assert "Fully connected" in panel.findChild(QLabel, "inspectorSubtitle").text()
    f = form(panel)
    assert f.values() == {"units": 4, "activation": "relu", "use_bias": True, "flatten": True,
                          "in_units": 0}
    assert not button(panel, "layerApply").isEnabled()       # nothing to apply yet
    assert set(r for r in ("weight", "bias") if chooser(panel, f"paramInit_{r}")) == \
        {"weight", "bias"}
    assert chooser(panel, "layerInit").combo.currentText() == "— global —"


@pytest.mark.parametrize("text", ["-3", "abc", "0", "1e400"])
def test_wrong_units_are_red_and_never_applied(qtbot, panel, wb, text):
    wb.select(("layer", "L1"))
    before = wb.doc.to_spec()
    f = form(panel)
    field = f.editor("units")
    type_into(qtbot, field, text)
    assert field.text() == text
    assert field.property("invalid") is True
    assert "Allowed: a whole number in [1, ∞)" in field.toolTip()
    apply = button(panel, "layerApply")
    assert not apply.isEnabled()
    click(qtbot, apply)
    qtbot.keyClick(field, Qt.Key.Key_Return)                  # Enter does not apply either
    assert wb.doc.to_spec() == before
    assert wb.undo_stack.count() == 0
    assert wb.doc.params()["sequential0_dense0_weight"].shape == (4, 0)


def test_apply_rebuilds_the_layer_and_undo_restores(qtbot, panel, wb):
    wb.select(("layer", "L1"))
    type_into(qtbot, form(panel).editor("units"), "8")
    apply = button(panel, "layerApply")
    assert apply.isEnabled()
    click(qtbot, apply)
    doc = wb.doc
    assert doc.layer("L1").settings["units"] == 8
    assert doc.params()["sequential0_dense0_weight"].shape == (8, 0)     # engine net rebuilt
    assert wb.undo_stack.count() == 1
    assert wb.undo_stack.text(0) == "Edit Dense(8, relu)"
    assert panel.findChild(QLabel, "inspectorTitle").text() == "0: Dense(8, relu)"
    assert not button(panel, "layerApply").isEnabled()
    wb.undo_stack.undo()
    assert doc.layer("L1").settings["units"] == 4
    assert doc.params()["sequential0_dense0_weight"].shape == (4, 0)
    assert form(panel).editor("units").text() == "4"                    # the view follows
    wb.undo_stack.redo()
    assert form(panel).editor("units").text() == "8"


def test_apply_keeps_initialized_values_of_other_layers(qtbot, panel, wb):
    wb.run("Initialize", lambda d: d.initialize())
    wb.run("Forward", lambda d: d.forward())
    keep = wb.doc.params()["sequential0_dense1_bias"].data().asnumpy().copy()
    before = {n: p.data().asnumpy().copy() for n, p in wb.doc.params().items()}
    wb.select(("layer", "L2"))
    f = form(panel)
    pick(f.editor("activation"), f.editor("activation").findText("tanh"))
    click(qtbot, button(panel, "layerApply"))
    assert wb.doc.layer("L2").settings["activation"] == "tanh"
    np.testing.assert_array_equal(wb.doc.params()["sequential0_dense1_bias"].data().asnumpy(),
                                  keep)
    wb.undo_stack.undo()
    for n, p in wb.doc.params().items():
        np.testing.assert_array_equal(p.data().asnumpy(), before[n])


def test_revert_drops_pending_edits(qtbot, panel, wb):
    wb.select(("layer", "L1"))
    f = form(panel)
    type_into(qtbot, f.editor("units"), "abc")
    click(qtbot, button(panel, "layerRevert"))
    assert f.editor("units").text() == "4"
    assert f.editor("units").property("invalid") is False
    assert not button(panel, "layerApply").isEnabled()


def test_pending_edits_survive_other_model_changes(qtbot, panel, wb):
    wb.select(("layer", "L1"))
    type_into(qtbot, form(panel).editor("units"), "16")
    wb.run("Initialize", lambda d: d.initialize())                      # re-renders
    assert form(panel).editor("units").text() == "16"
    assert button(panel, "layerApply").isEnabled()


def test_a_refused_update_shows_the_documents_message_in_place(qtbot, plugin_host, qapp):
    wb = open_example("chapter_shared", plugin_host)       # layer 2 shares layer 1's params
    panel = InspectorPanel(wb)
    qtbot.addWidget(panel)
    panel.show()
    wb.select(("layer", "L2"))
    before = wb.doc.to_spec()
    type_into(qtbot, form(panel).editor("units"), "5")
    click(qtbot, button(panel, "layerApply"))
    error = panel.findChild(QLabel, "layerSettingsError")
    assert error.isVisible()
    assert "Cannot retrieve Parameter 'sequential0_dense1_weight'" in error.text()
    assert wb.doc.to_spec() == before
    assert wb.undo_stack.count() == 0
    assert form(panel).editor("units").text() == "5"        # the user's value stays shown
    type_into(qtbot, form(panel).editor("units"), "4")
    assert not error.isVisible()                            # editing again clears it


def test_a_linked_layer_says_where_its_parameters_come_from(qtbot, plugin_host, qapp):
    wb = open_example("chapter_shared", plugin_host)
    panel = InspectorPanel(wb)
    qtbot.addWidget(panel)
    wb.select(("layer", "L3"))
    text = panel.findChild(QLabel, "inspectorLink").text()
    assert "Shares the parameters of 1: Dense(4, relu)" in text
    assert chooser(panel, "paramInit_weight") is None       # it owns no parameter


# ----------------------------------------------------------------- initializer choices
def test_per_parameter_constant_on_the_bias(qtbot, panel, wb):
    wb.select(("layer", "L1"))
    ed = chooser(panel, "paramInit_bias")
    assert ed.combo.currentText() == "— inherit —"
    pick(ed.combo, "constant")
    type_into(qtbot, ed.form.editor("value"), "1")
    click(qtbot, ed.apply_button)
    r = row(wb.doc, "sequential0_dense0_bias")
    assert r.init_source == "parameter"
    assert r.init == "constant(value=1.0)"
    assert wb.undo_stack.count() == 1
    wb.run("Initialize", lambda d: d.initialize())
    np.testing.assert_array_equal(wb.doc.params()["sequential0_dense0_bias"].data().asnumpy(),
                                  np.ones(4, dtype=np.float32))
    # the inspector shows the effective choice after re-rendering
    ed = chooser(panel, "paramInit_bias")
    assert ed.combo.currentData() == "constant"
    assert ed.form.editor("value").text() == "1.0"
    assert "parameter" in panel.findChild(QLabel, "paramInitTitle_bias").text()


def test_myinit_as_the_bias_initializer_gives_uniform_5_to_10(qtbot, panel, wb):
    wb.select(("layer", "L2"))
    ed = chooser(panel, "paramInit_bias")
    pick(ed.combo, "myinit")
    assert ed.form.values() == {"low": 5.0, "high": 10.0}
    click(qtbot, ed.apply_button)
    assert row(wb.doc, "sequential0_dense1_bias").init_source == "parameter"
    wb.run("Initialize", lambda d: d.initialize())
    bias = wb.doc.params()["sequential0_dense1_bias"].data().asnumpy()
    assert ((bias >= 5) & (bias < 10)).all()
    # the other layer's bias keeps Gluon's 'zeros' default
    np.testing.assert_array_equal(wb.doc.params()["sequential0_dense0_bias"].data().asnumpy(),
                                  np.zeros(4, dtype=np.float32))
    wb.undo_stack.undo()                                  # initialize
    wb.undo_stack.undo()                                  # the choice
    assert row(wb.doc, "sequential0_dense1_bias").init_source == "layer default"
    assert chooser(panel, "paramInit_bias").combo.currentText() == "— inherit —"


def test_wrong_initializer_settings_are_not_applied(qtbot, panel, wb):
    wb.select(("layer", "L1"))
    ed = chooser(panel, "paramInit_weight")
    pick(ed.combo, "myinit")
    type_into(qtbot, ed.form.editor("low"), "12")          # MyInit refuses high <= low
    assert not ed.apply_button.isEnabled()
    assert "high (10.0) must be greater than low (12.0)" in ed.form.errors()[""]
    type_into(qtbot, ed.form.editor("high"), "1e400")
    assert ed.form.editor("high").property("invalid") is True
    click(qtbot, ed.apply_button)
    assert wb.doc.layer("L1").param_inits == {}
    assert wb.undo_stack.count() == 0


def test_the_layer_initializer_and_back_to_global(qtbot, panel, wb):
    wb.select(("layer", "L2"))
    ed = chooser(panel, "layerInit")
    assert ed.combo.findData("lsuv") < 0                  # data-dependent: global only
    pick(ed.combo, "ones")
    click(qtbot, ed.apply_button)
    assert wb.doc.layer("L2").init.name == "ones"
    assert row(wb.doc, "sequential0_dense1_weight").init_source == "layer"
    assert row(wb.doc, "sequential0_dense1_bias").init_source == "layer default"
    ed = chooser(panel, "layerInit")
    pick(ed.combo, "__none__")
    click(qtbot, ed.apply_button)
    assert wb.doc.layer("L2").init is None
    assert row(wb.doc, "sequential0_dense1_weight").init_source == "global"
    assert wb.undo_stack.count() == 2


# ----------------------------------------------------------------- parameter page
def test_a_parameter_selection(qtbot, panel, wb):
    wb.run("Initialize", lambda d: d.initialize())
    wb.select(("param", "sequential0_dense0_weight"))
    info = {k: panel.findChild(QLabel, f"paramInfo{k}").text()
            for k in ("Shape", "State", "Initializer", "Source", "UsedBy")}
    assert info["Shape"].startswith("(4, 0)")
    assert "deferred" in info["State"]
    assert info["Initializer"] == "uniform(scale=0.07)"
    assert info["Source"] == "global"
    assert info["UsedBy"] == "0: Dense(4, relu)"
    ed = chooser(panel, "paramInit")
    pick(ed.combo, "zeros")
    click(qtbot, ed.apply_button)
    assert wb.doc.layer("L1").param_inits["weight"].name == "zeros"
    assert panel.findChild(QLabel, "paramInfoSource").text() == "parameter"
    click(qtbot, button(panel, "paramSelectOwner"))
    assert wb.selection == ("layer", "L1")


# ----------------------------------------------------------------- global page
def test_the_global_initializer(qtbot, panel, wb):
    ed = chooser(panel, "globalInit")
    assert ed.combo.findData("__none__") < 0               # there is always a global one
    pick(ed.combo, "myinit")
    click(qtbot, ed.apply_button)
    assert wb.doc.global_init.name == "myinit"
    assert row(wb.doc, "sequential0_dense0_weight").init_source == "global"


@pytest.mark.parametrize(("field", "text", "needle"), [
    ("shape", "3, x", "'x' is not one"),
    ("shape", "3, 0", "≥ 1"),
    ("shape", "", "empty"),
    ("low", "1", "must be greater than low"),
    ("high", "-1", "must be greater than low"),
    ("std", "-1", "[0.0, ∞)"),
    ("seed", "-2", "[0, ∞)"),
])
def test_wrong_input_specs_are_red_and_not_applied(qtbot, panel, wb, field, text, needle):
    f = form(panel, "inputForm")
    if field == "std":
        pick(f.editor("distribution"), f.editor("distribution").findText("normal"))
    before = wb.doc.to_spec()
    type_into(qtbot, f.editor(field), text) if text else f.editor(field).clear()
    assert f.editor(field).property("invalid") is True
    assert needle in f.editor(field).toolTip()
    apply = button(panel, "inputApply")
    assert not apply.isEnabled()
    click(qtbot, apply)
    assert wb.doc.to_spec() == before
    assert wb.undo_stack.count() == 0


def test_input_apply_and_undo(qtbot, panel, wb):
    f = form(panel, "inputForm")
    assert not f.editor("mean").isVisible()                # uniform shows low/high only
    type_into(qtbot, f.editor("shape"), "2, 5")
    pick(f.editor("distribution"), f.editor("distribution").findText("normal"))
    assert f.editor("mean").isVisible() and not f.editor("low").isVisible()
    type_into(qtbot, f.editor("std"), "2")
    click(qtbot, button(panel, "inputApply"))
    doc = wb.doc
    assert doc.input.shape == (2, 5) and doc.input.distribution == "normal"
    assert doc.input.std == 2.0
    assert doc.x.shape == (2, 5)
    wb.undo_stack.undo()
    assert doc.input.shape == (3, 5)
    assert form(panel, "inputForm").editor("shape").text() == "3, 5"


def test_parse_shape():
    assert parse_shape("3, 5") == (3, 5)
    assert parse_shape("(3, 5)") == (3, 5)
    assert parse_shape("7,") == (7,)
    for bad in ("3, x", "3,,5", "", "-1", "2.5"):
        with pytest.raises(ValueError):
            parse_shape(bad)


# ----------------------------------------------------------------- missing plugins
def test_a_missing_plugin_choice_is_shown_with_its_reason(qtbot, tmp_path, plugin_host, qapp):
    spec = json.loads((EXAMPLES / "chapter_mlp.json").read_text())
    spec["global_init"] = {"name": "ghostinit", "settings": {"spread": 2}}
    spec["layers"][0]["param_inits"] = {"bias": {"name": "ghostinit", "settings": {}}}
    path = tmp_path / "ghost.json"
    path.write_text(json.dumps(spec))
    wb = Workbench(plugin_host, fileformat.load(path, plugin_host))
    panel = InspectorPanel(wb)
    qtbot.addWidget(panel)
    panel.show()
    ed = chooser(panel, "globalInit")
    assert ed.combo.currentText() == "⚠ ghostinit (missing)"
    assert ed.combo.property("invalid") is True
    missing = panel.findChild(QLabel, "globalInitMissing")
    assert missing.isVisible()
    assert missing.text() == wb.doc.missing_reason(wb.doc.global_init)
    assert "plugin is missing" in missing.text()
    assert not ed.apply_button.isEnabled()
    # choosing an available initializer fixes it, one undo step
    pick(ed.combo, "xavier")
    click(qtbot, ed.apply_button)
    assert wb.doc.global_init.name == "xavier"
    assert not panel.findChild(QLabel, "globalInitMissing").isVisible()
    # the per-parameter one is shown on the layer's page
    wb.select(("layer", "L1"))
    ed = chooser(panel, "paramInit_bias")
    assert ed.combo.currentText() == "⚠ ghostinit (missing)"
    assert panel.findChild(QLabel, "paramInit_biasMissing").isVisible()


def test_a_plugin_reload_offers_the_new_initializer(qtbot, tmp_path, qapp):
    folder = tmp_path / "plugins"
    folder.mkdir()
    host = PluginHost(plugin_dirs=[ROOT / "plugins", folder], default_dirs=False,
                      entry_points=False)
    wb = open_example("chapter_mlp", host)
    panel = InspectorPanel(wb)
    qtbot.addWidget(panel)
    wb.select(("layer", "L1"))
    assert chooser(panel, "paramInit_bias").combo.findData("halfinit") < 0
    (folder / "half.py").write_text(
        "from app.engine import init\n"
        "from app.pluginhost import hookimpl\n\n\n"
        "class HalfInit(init.Initializer):\n"
        "    def __init__(self, value: float = 0.5):\n"
        "        super().__init__(value=value)\n"
        "        self.value = value\n\n"
        "    def _init_weight(self, name, arr):\n"
        "        arr[:] = self.value\n\n\n"
        "@hookimpl\n"
        "def paramlab_register_initializers(register):\n"
        "    register(HalfInit)\n")
    host.reload()
    wb.doc.changed.emit("inits")                  # what the window's reload does
    ed = chooser(panel, "paramInit_bias")
    pick(ed.combo, "halfinit")
    assert ed.form.values() == {"value": 0.5}
    click(qtbot, ed.apply_button)
    wb.run("Initialize", lambda d: d.initialize())
    np.testing.assert_array_equal(wb.doc.params()["sequential0_dense0_bias"].data().asnumpy(),
                                  np.full(4, 0.5, dtype=np.float32))
