"""The Layers panel through its real widgets: Add menu, buttons, keys, drag and drop, links."""

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QAction, QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QToolButton

from app.document import Document, fileformat
from app.pluginhost import PluginHost
from app.ui.layers_panel import LAYER_MIME, UID_ROLE, LayersPanel
from app.ui.workbench import Workbench

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
KINDS = ["Dense", "Activation", "LeakyReLU", "Dropout", "Flatten", "BatchNorm", "LayerNorm",
         "Embedding"]


@pytest.fixture
def workbench(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("PARAMLAB_PLUGIN_PATH", raising=False)
    host = PluginHost(default_dirs=False)
    return Workbench(host=host, doc=Document(host=host))


@pytest.fixture
def panel(qtbot, workbench):
    p = LayersPanel(workbench)
    qtbot.addWidget(p)
    p.resize(380, 520)
    p.show()
    qtbot.waitExposed(p)
    return p


# ------------------------------------------------------------------ helpers
def add(panel, kind):
    action = panel.findChild(QAction, f"layersAdd{kind}")
    assert action is not None and action in panel.add_menu.actions()
    action.trigger()


def click_row(qtbot, panel, row):
    lst = panel.list
    rect = lst.visualItemRect(lst.item(row))
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def button(panel, name) -> QToolButton:
    b = panel.findChild(QToolButton, name)
    assert b is not None, name
    return b


def edit(wb, uid, **settings):
    """What the Inspector does when a setting is edited."""
    ok, msg = wb.run("Edit layer", lambda d: d.update_layer(uid, **settings))
    assert ok, msg


def order(wb):
    return [s.uid for s in wb.doc.layers]


def row_texts(panel):
    return [panel.list.item(r).text() for r in range(panel.list.count())]


def link_action(menu, dst):
    acts = [a for a in menu.actions() if a.data() == dst]
    assert acts, f"no entry for {dst} in {[a.text() for a in menu.actions()]}"
    return acts[0]


def build_chapter_mlp(panel, wb):
    add(panel, "Dense")
    add(panel, "Dense")
    a, b = order(wb)
    edit(wb, a, units=4, activation="relu")
    edit(wb, b, units=2)
    return a, b


def build_shared(qtbot, panel, wb):
    for _ in range(4):
        add(panel, "Dense")
    l1, l2, l3, l4 = order(wb)
    for uid in (l1, l2, l3):
        edit(wb, uid, units=4, activation="relu")
    edit(wb, l4, units=2)
    click_row(qtbot, panel, 2)
    link_action(panel.share_menu, l2).trigger()
    return l1, l2, l3, l4


def _event(cls, pos, *args):
    """Drag events take a QPointF in newer PySide6 and a QPoint in older ones."""
    try:
        return cls(QPointF(pos), *args)
    except TypeError:
        return cls(pos, *args)


def drag_drop(panel, uid, row, below=False):
    """Drop layer ``uid`` on ``row`` (upper half: before it; lower half: after it) with the
    same events a real drag delivers to the list's viewport."""
    lst = panel.list
    rect = lst.visualItemRect(lst.item(row))
    pos = QPoint(rect.center().x(), rect.bottom() - 3 if below else rect.top() + 3)
    mime = QMimeData()
    mime.setData(LAYER_MIME, uid.encode())
    vp = lst.viewport()
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    move = Qt.DropAction.MoveAction
    enter = _event(QDragEnterEvent, pos, move, mime, buttons, mods)
    QApplication.sendEvent(vp, enter)
    assert enter.isAccepted()
    over = _event(QDragMoveEvent, pos, move, mime, buttons, mods)
    QApplication.sendEvent(vp, over)
    assert over.isAccepted()
    drop = _event(QDropEvent, pos, move, mime, buttons, mods)
    QApplication.sendEvent(vp, drop)
    assert drop.isAccepted()


# ------------------------------------------------------------------ tests
def test_add_menu_offers_the_eight_kinds_with_descriptions(panel):
    from app.document.layers import KINDS as SPECS
    names = [a.text() for a in panel.add_menu.actions()]
    assert names == KINDS
    for a in panel.add_menu.actions():
        assert a.toolTip() == SPECS[a.text()].description
    assert panel.add_menu.toolTipsVisible()
    assert button(panel, "layersAddButton").menu() is panel.add_menu
    assert panel.list.objectName() == "layersList"


def test_build_the_chapter_mlp_from_the_add_menu(qtbot, panel, workbench):
    wb = workbench
    a, b = build_chapter_mlp(panel, wb)
    net = wb.doc.net
    assert repr(net) == ("Sequential(\n  (0): Dense(None -> 4, Activation(relu))\n"
                         "  (1): Dense(None -> 2, linear)\n)")
    assert list(net.collect_params().keys()) == [
        "sequential0_dense0_weight", "sequential0_dense0_bias",
        "sequential0_dense1_weight", "sequential0_dense1_bias"]
    assert wb.undo_stack.text(0) == "Add Dense"
    # the rows: index, label, Gluon block name, shapes
    rows = [panel.list.item(r).data(UID_ROLE + 1) for r in range(panel.list.count())]
    assert [(r["index"], r["label"], r["block"], r["shape"]) for r in rows] == [
        (0, "Dense(4, relu)", "sequential0_dense0", "(3, 5) → (3, 4)"),
        (1, "Dense(2)", "sequential0_dense1", "(3, 4) → (3, 2)")]
    # Add inserts after the selection
    click_row(qtbot, panel, 0)
    assert wb.selection == ("layer", a)
    add(panel, "Activation")
    assert [s.kind for s in wb.doc.layers] == ["Dense", "Activation", "Dense"]
    assert wb.selected_layer() == wb.doc.layers[1].uid
    assert panel.list.currentRow() == 1
    wb.undo_stack.undo()
    assert order(wb) == [a, b]
    # the engine runs the chapter's forward
    wb.run("Initialize", lambda d: d.initialize())
    out = wb.run("Forward", lambda d: d.forward())[1]
    assert out.shape == (3, 2)
    assert wb.doc.params()["sequential0_dense0_weight"].shape == (4, 5)


def test_build_the_shared_network_and_link_by_menu(qtbot, panel, workbench):
    wb = workbench
    l1, l2, l3, l4 = build_shared(qtbot, panel, wb)
    doc = wb.doc
    assert [ln.to_json() for ln in doc.links] == [{"src": l3, "dst": l2, "kind": "share"}]
    assert wb.undo_stack.undoText() == "Share dense1's parameters with Dense(4, relu)"
    net = doc.net
    assert net[1].weight is net[2].weight and net[1].bias is net[2].bias
    assert list(net.collect_params().keys()) == [
        "sequential0_dense0_weight", "sequential0_dense0_bias",
        "sequential0_dense1_weight", "sequential0_dense1_bias",
        "sequential0_dense3_weight", "sequential0_dense3_bias"]
    info = panel.list.item(2).data(UID_ROLE + 1)
    assert info["link"] == "shares dense1's parameters"
    assert panel.list.item(1).data(UID_ROLE + 1)["link"] == "parameters shared by dense2"
    # the link menu marks the current link; the chapter's forward and one backward agree
    assert link_action(panel.share_menu, l2).isChecked()
    wb.run("Initialize", lambda d: d.initialize())
    wb.run("Forward", lambda d: d.forward())
    assert net[1].weight.data().shape == (4, 4)
    np.testing.assert_array_equal(net[1].weight.data().asnumpy(),
                                  net[2].weight.data().asnumpy())
    # Unlink: one undo step, and undo puts the link back
    assert button(panel, "layersUnlinkButton").isEnabled()
    shared = net[1].weight.data().asnumpy().copy()
    qtbot.mouseClick(button(panel, "layersUnlinkButton"), Qt.MouseButton.LeftButton)
    assert doc.links == [] and doc.net[1].weight is not doc.net[2].weight
    assert wb.undo_stack.undoText() == "Unlink Dense(4, relu)"
    assert doc.net[2].weight.state == "uninitialized"       # its own, not yet initialized
    wb.undo_stack.undo()
    assert doc.net[1].weight is doc.net[2].weight
    np.testing.assert_array_equal(doc.net[2].weight.data().asnumpy(), shared)
    wb.undo_stack.redo()
    assert doc.links == []
    np.testing.assert_array_equal(doc.net[1].weight.data().asnumpy(), shared)


def test_a_link_whose_shapes_disagree_is_refused_in_place(qtbot, panel, workbench):
    wb = workbench
    l1, l2, l3, l4 = build_shared(qtbot, panel, wb)
    before = wb.doc.to_spec()
    steps = wb.undo_stack.count()
    click_row(qtbot, panel, 3)                          # Dense(2)
    assert not panel.message.isVisible()
    link_action(panel.share_menu, l1).trigger()         # with Dense(4, relu) on (3, 5)
    assert panel.message.isVisible()
    text = panel.message.text()
    assert text.startswith("Cannot retrieve Parameter 'sequential0_dense0_weight' because "
                           "desired attribute does not match with stored for attribute "
                           "'shape'")
    assert "desired '(2, 4)' vs stored '(4, 5)'" in text
    assert wb.doc.to_spec() == before and wb.undo_stack.count() == steps
    assert wb.doc.net[3].weight is not wb.doc.net[0].weight
    # moving Dense(2) above the sharer would change its input: refused too, same way
    qtbot.keyClick(panel.list, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert order(wb) == [l1, l2, l3, l4]
    assert "desired '(4, 2)' vs stored '(4, 4)'" in panel.message.text()
    # the next gesture that works clears the message
    add(panel, "Dropout")
    assert not panel.message.isVisible()


def test_keys_reorder_and_remove_one_undo_step_each(qtbot, panel, workbench):
    wb = workbench
    a, b = build_chapter_mlp(panel, wb)
    add(panel, "Dropout")
    c = order(wb)[2]
    click_row(qtbot, panel, 2)
    steps = wb.undo_stack.count()
    qtbot.keyClick(panel.list, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert order(wb) == [a, c, b]
    assert wb.undo_stack.count() == steps + 1
    assert wb.undo_stack.undoText() == "Move Dropout(0.5) up"
    assert panel.list.currentRow() == 1 and wb.selection == ("layer", c)
    qtbot.keyClick(panel.list, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert order(wb) == [c, a, b]
    assert not button(panel, "layersMoveUpButton").isEnabled()
    qtbot.keyClick(panel.list, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    assert order(wb) == [a, c, b]
    assert wb.undo_stack.undoText() == "Move Dropout(0.5) down"
    wb.undo_stack.undo()
    assert order(wb) == [c, a, b]
    wb.undo_stack.undo()
    assert order(wb) == [a, c, b]
    wb.undo_stack.undo()
    assert order(wb) == [a, b, c]
    assert [panel.list.item(r).data(UID_ROLE) for r in range(3)] == [a, b, c]
    # Delete removes the selected layer; undo brings it back
    click_row(qtbot, panel, 1)
    qtbot.keyClick(panel.list, Qt.Key.Key_Delete)
    assert order(wb) == [a, c]
    assert wb.undo_stack.undoText() == "Remove Dense(2)"
    wb.undo_stack.undo()
    assert order(wb) == [a, b, c]
    assert row_texts(panel)[1].startswith("1: Dense(2)")


def test_buttons_move_remove_duplicate(qtbot, panel, workbench):
    wb = workbench
    a, b = build_chapter_mlp(panel, wb)
    click_row(qtbot, panel, 0)
    assert not button(panel, "layersMoveUpButton").isEnabled()
    qtbot.mouseClick(button(panel, "layersMoveDownButton"), Qt.MouseButton.LeftButton)
    assert order(wb) == [b, a]
    assert wb.undo_stack.undoText() == "Move Dense(4, relu) down"
    qtbot.mouseClick(button(panel, "layersMoveUpButton"), Qt.MouseButton.LeftButton)
    assert order(wb) == [a, b]
    qtbot.mouseClick(button(panel, "layersDuplicateButton"), Qt.MouseButton.LeftButton)
    assert [s.label() for s in wb.doc.layers] == ["Dense(4, relu)", "Dense(4, relu)",
                                                  "Dense(2)"]
    assert wb.undo_stack.undoText() == "Duplicate Dense(4, relu)"
    dup = wb.doc.layers[1].uid
    assert wb.selection == ("layer", dup) and panel.list.currentRow() == 1
    assert wb.doc.block(dup).name == "sequential0_dense1"
    qtbot.mouseClick(button(panel, "layersRemoveButton"), Qt.MouseButton.LeftButton)
    assert order(wb) == [a, b]
    assert wb.undo_stack.undoText() == "Remove Dense(4, relu)"
    wb.undo_stack.undo()
    assert order(wb) == [a, dup, b]
    wb.undo_stack.undo()
    assert order(wb) == [a, b]


def test_drag_and_drop_reorders_in_one_undo_step(qtbot, panel, workbench):
    wb = workbench
    a, b = build_chapter_mlp(panel, wb)
    add(panel, "Dropout")
    c = order(wb)[2]
    steps = wb.undo_stack.count()
    drag_drop(panel, c, 0)                   # onto the top half of the first row
    assert order(wb) == [c, a, b]
    assert wb.undo_stack.count() == steps + 1
    assert wb.undo_stack.undoText() == "Move Dropout(0.5) to position 0"
    assert [panel.list.item(r).data(UID_ROLE) for r in range(3)] == [c, a, b]
    wb.undo_stack.undo()
    assert order(wb) == [a, b, c]
    assert [panel.list.item(r).data(UID_ROLE) for r in range(3)] == [a, b, c]
    drag_drop(panel, a, 1, below=True)       # after Dense(2)
    assert order(wb) == [b, a, c]
    # dropping a layer where it already is changes nothing and pushes no step
    steps = wb.undo_stack.count()
    drag_drop(panel, a, 1)
    assert order(wb) == [b, a, c] and wb.undo_stack.count() == steps


def test_drag_and_drop_that_breaks_a_link_is_refused(qtbot, panel, workbench):
    wb = workbench
    l1, l2, l3, l4 = build_shared(qtbot, panel, wb)
    drag_drop(panel, l3, 0)                  # the sharer above its owner
    assert order(wb) == [l1, l2, l3, l4]
    assert panel.message.isVisible()
    assert "can only use the parameters of a layer above it" in panel.message.text()


def test_tie_transposed_builds_the_autoencoder(qtbot, panel, workbench):
    wb = workbench
    ok, msg = wb.run("Input", lambda d: d.set_input(shape=(8, 16), distribution="normal"))
    assert ok, msg
    for _ in range(4):
        add(panel, "Dense")
    l1, l2, l3, l4 = order(wb)
    edit(wb, l1, units=8, activation="tanh")
    edit(wb, l2, units=3, activation="tanh")
    edit(wb, l3, units=8, activation="tanh")
    edit(wb, l4, units=16)
    click_row(qtbot, panel, 2)
    assert panel.tie_menu.menuAction().isVisible()
    link_action(panel.tie_menu, l2).trigger()
    assert wb.undo_stack.undoText() == "Tie Dense(8, tanh) to dense1ᵀ"
    click_row(qtbot, panel, 3)
    # an encoder layer of the wrong size is refused, with the engine's reason, in place
    link_action(panel.tie_menu, l2).trigger()
    assert panel.message.isVisible()
    assert "cannot apply the weight of Dense(3, tanh) transposed" in panel.message.text()
    link_action(panel.tie_menu, l1).trigger()
    assert not panel.message.isVisible()
    doc = wb.doc
    net = doc.net
    assert net[2].weight is net[1].weight and net[3].weight is net[0].weight
    assert "tied to sequential0_dense0_weightᵀ" in repr(net)
    assert list(net.collect_params().keys()) == [
        "sequential0_dense0_weight", "sequential0_dense0_bias",
        "sequential0_dense1_weight", "sequential0_dense1_bias",
        "sequential0_dense2_bias", "sequential0_dense3_bias"]
    assert panel.list.item(3).data(UID_ROLE + 1)["link"] == "tied to dense0ᵀ"
    assert panel.list.item(0).data(UID_ROLE + 1)["link"] == "weightᵀ used by dense3"
    wb.run("Initialize", lambda d: d.initialize())
    out = wb.run("Forward", lambda d: d.forward())[1]
    assert out.shape == (8, 16)
    w = net[0].weight.data().asnumpy()
    assert w.shape == (8, 16)
    # the decoder really applies W0ᵀ: recompute layer 3 by hand
    h = np.tanh(doc.x.asnumpy() @ w.T + net[0].bias.data().asnumpy())
    w1 = net[1].weight.data().asnumpy()
    h = np.tanh(h @ w1.T + net[1].bias.data().asnumpy())
    h = np.tanh(h @ w1 + net[2].bias.data().asnumpy())
    expect = h @ w + net[3].bias.data().asnumpy()
    np.testing.assert_allclose(out.asnumpy(), expect, rtol=1e-5, atol=1e-6)


def test_selection_is_two_way(qtbot, panel, workbench):
    wb = workbench
    a, b = build_chapter_mlp(panel, wb)
    assert wb.selection == ("layer", b)          # Add selects the new layer
    click_row(qtbot, panel, 0)
    assert wb.selection == ("layer", a)
    with qtbot.waitSignal(wb.selection_changed, timeout=1000) as blocker:
        click_row(qtbot, panel, 1)
    assert blocker.args == [("layer", b)]
    wb.select(("layer", a))
    assert panel.list.currentRow() == 0 and panel.list.item(0).isSelected()
    assert panel.selected_uid() == a
    wb.select(None)
    assert panel.selected_uid() is None
    assert not button(panel, "layersRemoveButton").isEnabled()
    wb.select(("param", "sequential0_dense0_weight"))
    assert panel.selected_uid() is None


def test_shape_problems_are_flagged_with_the_reason(qtbot, panel, workbench):
    wb = workbench
    add(panel, "Dense")
    add(panel, "BatchNorm")
    add(panel, "Dense")
    bn = order(wb)[1]
    edit(wb, bn, axis=3)
    rows = [panel.list.item(r).data(UID_ROLE + 1) for r in range(3)]
    assert rows[1]["problem"] == "axis 3 does not exist in an input of shape (3, 4)"
    assert rows[1]["shape"] == "(3, 4) → ?"
    assert rows[2]["shape"] == "? → ?"
    assert "axis 3 does not exist" in panel.list.item(1).toolTip()
    assert not rows[0]["problem"]


def test_opening_an_example_rerenders_the_list(qtbot, panel, workbench):
    wb = workbench
    wb.set_document(fileformat.load(EXAMPLES / "chapter_shared.json", host=wb.host))
    assert panel.list.count() == 4
    assert row_texts(panel)[2] == ("2: Dense(4, relu)  sequential0_dense2  (3, 4) → (3, 4)  "
                                   "(shares dense1's parameters)")
    # undo of a gesture re-renders from the model too
    wb.select(("layer", "L4"))
    qtbot.mouseClick(button(panel, "layersRemoveButton"), Qt.MouseButton.LeftButton)
    assert panel.list.count() == 3
    wb.undo_stack.undo()
    assert panel.list.count() == 4


def test_panel_renders_in_light_and_dark(qtbot, panel, workbench, tmp_path):
    from PySide6.QtGui import QColor, QPalette
    wb = workbench
    wb.set_document(fileformat.load(EXAMPLES / "tied_autoencoder.json", host=wb.host))
    img = panel.grab().toImage()
    assert not img.isNull() and img.width() >= 380
    pal = QPalette(panel.palette())
    pal.setColor(QPalette.ColorRole.Window, QColor(40, 40, 44))
    pal.setColor(QPalette.ColorRole.Base, QColor(30, 30, 32))
    pal.setColor(QPalette.ColorRole.Text, QColor(230, 230, 230))
    panel.setPalette(pal)
    assert panel.colors["dark"]
    assert panel.grab().save(str(tmp_path / "dark.png"))
