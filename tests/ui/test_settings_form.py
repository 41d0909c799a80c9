"""SettingsForm: one editor per Setting; a wrong value is shown in place (red, with a tooltip
saying what is allowed) and never handed out."""

from __future__ import annotations

import typing

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit

from app.document.layers import KINDS
from app.engine.initializer import Range
from app.pluginhost.settings import Setting, SettingsError
from app.ui.settings_form import SettingsForm


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("PARAMLAB_PLUGIN_PATH", raising=False)


@pytest.fixture
def dense_form(qtbot):
    form = SettingsForm(KINDS["Dense"].settings, owner="layer Dense")
    qtbot.addWidget(form)
    form.show()
    return form


def type_into(qtbot, editor: QLineEdit, text: str) -> None:
    """Replace the field's text by typing, as a user would (select all, type)."""
    editor.setFocus()
    editor.selectAll()
    if text:
        qtbot.keyClicks(editor, text)
    else:
        qtbot.keyClick(editor, Qt.Key.Key_Delete)


def is_red(widget) -> bool:
    return widget.property("invalid") is True


def test_editors_follow_the_setting_types(dense_form):
    assert isinstance(dense_form.editor("units"), QLineEdit)
    assert isinstance(dense_form.editor("in_units"), QLineEdit)
    assert isinstance(dense_form.editor("activation"), QComboBox)
    assert isinstance(dense_form.editor("use_bias"), QCheckBox)
    combo = dense_form.editor("activation")
    assert [combo.itemText(i) for i in range(combo.count())] == \
        ["none", "relu", "sigmoid", "tanh", "softrelu", "softsign"]
    assert dense_form.values() == {"units": 4, "activation": "none", "use_bias": True,
                                   "flatten": True, "in_units": 0}
    assert dense_form.is_valid() and dense_form.errors() == {}
    assert not dense_form.modified


def test_tooltips_show_the_doc_and_what_is_allowed(dense_form):
    tip = dense_form.editor("in_units").toolTip()
    assert "deferred initialization" in tip           # the setting's doc
    assert "Allowed: a whole number in [0, ∞)" in tip
    assert "Default: 0" in tip
    assert "Allowed: one of 'none', 'relu'" in dense_form.editor("activation").toolTip()


@pytest.mark.parametrize(("text", "needle"), [
    ("-3", "must be a whole number in [1, ∞), got -3"),
    ("abc", "must be a whole number, got 'abc'"),
    ("2.5", "must be a whole number, got '2.5'"),
    ("", "is empty"),
])
def test_a_wrong_int_stays_in_its_field_red_with_a_tooltip(qtbot, dense_form, text, needle):
    edited = []
    dense_form.edited.connect(lambda: edited.append(1))
    field = dense_form.editor("units")
    type_into(qtbot, field, text)
    assert field.text() == text                      # shown in place, not corrected
    assert is_red(field)
    assert needle in field.toolTip()
    assert "Allowed: a whole number in [1, ∞)" in field.toolTip()
    assert not dense_form.is_valid()
    assert needle in dense_form.errors()["units"]
    with pytest.raises(SettingsError, match="units"):
        dense_form.values()
    assert edited                                    # every keystroke is announced
    # the other fields stay normal
    assert not is_red(dense_form.editor("in_units"))
    # the message is also visible under the form
    label = dense_form.findChild(QLabel, "settingsFormError")
    assert label.isVisible() and needle in label.text()


def test_fixing_the_value_clears_the_red(qtbot, dense_form):
    field = dense_form.editor("units")
    type_into(qtbot, field, "abc")
    assert is_red(field)
    type_into(qtbot, field, "8")
    assert not is_red(field)
    assert "Allowed:" in field.toolTip() and "got" not in field.toolTip()
    assert dense_form.values()["units"] == 8
    assert isinstance(dense_form.values()["units"], int)
    assert dense_form.modified
    assert not dense_form.findChild(QLabel, "settingsFormError").isVisible()


def test_a_float_out_of_range_or_overflowing(qtbot):
    form = SettingsForm([Setting("scale", float, 0.07, range=Range(0.0, None)),
                         Setting("rate", float, 0.5, range=Range(0.0, 1.0))],
                        owner="initializer 'uniform'")
    qtbot.addWidget(form)
    assert form.editor("scale").text() == "0.07"
    type_into(qtbot, form.editor("scale"), "1e400")          # parses to inf
    assert is_red(form.editor("scale"))
    assert "finite number" in form.errors()["scale"]
    type_into(qtbot, form.editor("rate"), "1.5")
    assert "[0.0, 1.0]" in form.errors()["rate"]
    assert set(form.errors()) == {"scale", "rate"}
    type_into(qtbot, form.editor("scale"), "1e-05")
    type_into(qtbot, form.editor("rate"), "0.25")
    assert form.values() == {"scale": 1e-05, "rate": 0.25}


def test_a_choice_that_is_not_allowed_is_shown_and_refused(qtbot, dense_form):
    dense_form.set_values({"activation": "swish"})    # e.g. from a hand-edited file
    combo = dense_form.editor("activation")
    assert combo.currentText() == "'swish' (not allowed)"
    assert is_red(combo)
    assert "one of 'none', 'relu'" in combo.toolTip()
    assert "got 'swish'" in dense_form.errors()["activation"]
    with pytest.raises(SettingsError):
        dense_form.values()
    # picking an allowed choice (keyboard) drops the wrong one
    combo.setFocus()
    combo.setCurrentIndex(combo.findText("tanh"))
    assert not is_red(combo)
    assert combo.findText("'swish' (not allowed)") < 0
    assert dense_form.values()["activation"] == "tanh"


def test_choices_keep_their_types(qtbot):
    form = SettingsForm([Setting("factor", int, 2, choices=(1, 2, 4))])
    qtbot.addWidget(form)
    combo = form.editor("factor")
    combo.setCurrentIndex(combo.findText("4"))
    assert form.values() == {"factor": 4}
    form.set_values({"factor": 2.0})                  # 2.0 is not the choice 2
    assert "factor" in form.errors()


def test_bool_is_a_check_box(qtbot, dense_form):
    box = dense_form.editor("use_bias")
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    assert dense_form.values()["use_bias"] is False
    dense_form.set_values({"use_bias": "yes"})        # not a bool: shown undecided, red
    assert box.checkState() == Qt.CheckState.PartiallyChecked
    assert is_red(box) and "true or false" in dense_form.errors()["use_bias"]
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    assert not is_red(box)
    assert isinstance(dense_form.values()["use_bias"], bool)


def test_set_values_shows_a_model_and_is_not_a_user_edit(qtbot, dense_form):
    edited = []
    dense_form.edited.connect(lambda: edited.append(1))
    dense_form.set_values({"units": 8, "activation": "relu", "in_units": 5})
    assert dense_form.values() == {"units": 8, "activation": "relu", "use_bias": True,
                                   "flatten": True, "in_units": 5}
    assert not edited and not dense_form.modified
    dense_form.set_values({"units": -1})              # a wrong stored value is shown too
    assert dense_form.editor("units").text() == "-1" and is_red(dense_form.editor("units"))


def test_required_setting_and_text(qtbot):
    form = SettingsForm([Setting("name", str), Setting("count", int)], owner="thing")
    qtbot.addWidget(form)
    assert form.editor("count").placeholderText() == "required"
    assert "required" in form.errors()["count"]
    type_into(qtbot, form.editor("count"), "3")
    type_into(qtbot, form.editor("name"), "abc")
    assert form.values() == {"name": "abc", "count": 3}


def test_a_cross_field_check_blocks_values(qtbot):
    def check(values):
        if not values["high"] > values["low"]:
            return {"high": f"high ({values['high']}) must be greater than low "
                            f"({values['low']})"}
        return {}

    form = SettingsForm([Setting("low", float, 5.0), Setting("high", float, 10.0)],
                        owner="initializer 'myinit'", check=check)
    qtbot.addWidget(form)
    assert form.is_valid()
    type_into(qtbot, form.editor("low"), "12")
    assert is_red(form.editor("high")) and not is_red(form.editor("low"))
    assert "must be greater than low" in form.editor("high").toolTip()
    with pytest.raises(SettingsError, match="greater than low"):
        form.values()


def test_enter_submits(qtbot, dense_form):
    submitted = []
    dense_form.submitted.connect(lambda: submitted.append(1))
    qtbot.keyClick(dense_form.editor("units"), Qt.Key.Key_Return)
    assert submitted == [1]


def test_an_empty_form(qtbot):
    form = SettingsForm(KINDS["Flatten"].settings)
    qtbot.addWidget(form)
    assert form.values() == {} and form.is_valid()
    assert typing.cast(QLabel, form.findChildren(QLabel)[0]).text() == "No settings."
