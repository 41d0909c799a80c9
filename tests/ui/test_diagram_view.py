"""The diagram through its real widget: boxes, arrows, arcs, clicks, context menu, zoom."""

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QAction, QColor, QPalette, QWheelEvent
from PySide6.QtWidgets import QApplication, QGraphicsView

from app.document import Document, fileformat
from app.pluginhost import PluginHost
from app.ui.diagram_view import DiagramView, LayerBox, LinkArc, format_dims
from app.ui.layers_panel import LayersPanel
from app.ui.workbench import Workbench

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


@pytest.fixture
def workbench(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("PARAMLAB_PLUGIN_PATH", raising=False)
    host = PluginHost(default_dirs=False)
    return Workbench(host=host, doc=Document(host=host))


def open_example(wb, name):
    wb.set_document(fileformat.load(EXAMPLES / f"{name}.json", host=wb.host))
    return wb.doc


@pytest.fixture
def view(qtbot, workbench):
    v = DiagramView(workbench)
    qtbot.addWidget(v)
    v.resize(560, 760)
    v.show()
    qtbot.waitExposed(v)
    return v


def click_box(qtbot, view, uid, button=Qt.MouseButton.LeftButton):
    box = view.box(uid)
    pos = view.mapFromScene(box.sceneBoundingRect().center())
    assert view.viewport().rect().contains(pos)
    qtbot.mouseClick(view.viewport(), button, pos=pos)


def run(wb, text, fn):
    ok, res = wb.run(text, fn)
    assert ok, res
    return res


def menu_action(menu, name):
    act = menu.findChild(QAction, name)
    if act is None:
        act = next((a for a in menu.actions() if a.objectName() == name), None)
    assert act is not None, [a.objectName() for a in menu.actions()]
    return act


def link_entry(menu, dst):
    acts = [a for a in menu.actions() if a.data() == dst]
    assert acts, [a.text() for a in menu.actions()]
    return acts[0]


# ------------------------------------------------------------------ tests
def test_the_chapter_network_as_boxes_and_arrows(view, workbench):
    doc = open_example(workbench, "chapter_mlp")
    assert view.objectName() == "diagramView" and isinstance(view, QGraphicsView)
    uids = [s.uid for s in doc.layers]
    assert list(view.boxes) == uids
    first, second = (view.box(u) for u in uids)
    assert (first.index, first.title, first.block_name) == (0, "Dense(4, relu)",
                                                            "sequential0_dense0")
    assert (second.title, second.block_name) == ("Dense(2)", "sequential0_dense1")
    assert view.input_box.text == "Input (3, 5)"
    assert view.output_box.text == "Output (3, 2)"
    assert view.arrow_labels() == ["(3, 5)", "(3, 4)", "(3, 2)"]
    # top to bottom: input, boxes, output
    ys = [view.input_box.y(), first.y(), second.y(), view.output_box.y()]
    assert ys == sorted(ys)
    assert view.arcs == {}


def test_deferred_shapes_read_clearly_and_resolve_after_forward(view, workbench):
    doc = open_example(workbench, "chapter_mlp")
    a, b = (s.uid for s in doc.layers)
    assert view.box(a).param_text == "W 4×? · b 4"
    assert view.box(b).param_text == "W 2×? · b 2"
    assert view.box(a).state == "uninitialized"
    assert not any(arrow.seen for arrow in view.arrows)
    assert view.output_box.detail == "not computed yet: run Forward"

    run(workbench, "Initialize", lambda d: d.initialize())
    assert view.box(a).state == "deferred" and view.box(a).deferred
    assert view.box(a).param_text == "W 4×? · b 4"
    assert "first forward" in view.box(a).toolTip()

    run(workbench, "Forward", lambda d: d.forward())
    assert view.box(a).param_text == "W 4×5 · b 4"
    assert view.box(b).param_text == "W 2×4 · b 2"
    assert view.box(a).state == view.box(b).state == "initialized"
    assert all(arrow.seen for arrow in view.arrows)
    assert view.output_box.text == "Output (3, 2)"
    assert view.output_box.detail.startswith("computed · values in [")
    # undo goes back to the deferred picture
    workbench.undo_stack.undo()
    assert view.box(a).param_text == "W 4×? · b 4" and view.box(a).state == "deferred"
    assert format_dims((4, 0)) == "4×?" and format_dims((2,)) == "2"


def test_unknown_shapes_show_question_marks(view, workbench):
    doc = workbench.doc
    run(workbench, "Add", lambda d: d.add_layer("Dense"))
    bn = run(workbench, "Add", lambda d: d.add_layer("BatchNorm", {"axis": 3}))
    run(workbench, "Add", lambda d: d.add_layer("Dense", {"units": 2}))
    assert view.arrow_labels() == ["(3, 5)", "(3, 4)", "?", "?"]
    assert view.box(bn).problem == "axis 3 does not exist in an input of shape (3, 4)"
    assert view.arrows[2].problem
    assert doc.layers[1].uid == bn


def test_links_are_drawn_as_arcs(view, workbench):
    open_example(workbench, "chapter_shared")
    assert set(view.arcs) == {"L3"}
    arc = view.arcs["L3"]
    assert isinstance(arc, LinkArc)
    assert (arc.src, arc.dst, arc.kind, arc.label_text) == ("L3", "L2", "share", "shares")
    assert view.box("L3").param_text == "W 4×? · b 4   ← dense1"
    # the arc joins the two boxes, on their right
    rect = arc.mapRectToScene(arc.path.boundingRect())
    owner, user = (view.box(u).mapRectToScene(view.box(u).rect) for u in ("L2", "L3"))
    assert rect.left() >= owner.right() - 1
    assert rect.top() == pytest.approx(owner.center().y())
    assert rect.bottom() == pytest.approx(user.center().y())

    open_example(workbench, "tied_autoencoder")
    assert {k: (a.dst, a.label_text) for k, a in view.arcs.items()} == {
        "L3": ("L2", "tied ᵀ"), "L4": ("L1", "tied ᵀ")}
    assert view.arcs["L3"].color != LinkArc(view._theme, "x", "y", "share", 0, 0, 10, 5).color
    # nested arcs do not share a label position
    assert not view.arcs["L3"]._label_rect.intersects(view.arcs["L4"]._label_rect)
    assert view.box("L4").param_text == "Wᵀ 8×16 · b 16   (W of dense0)"


def test_clicking_a_box_selects_the_layer_and_the_list_follows(qtbot, view, workbench):
    open_example(workbench, "chapter_shared")
    panel = LayersPanel(workbench)
    qtbot.addWidget(panel)
    click_box(qtbot, view, "L2")
    assert workbench.selection == ("layer", "L2")
    assert view.box("L2").selected and not view.box("L1").selected
    assert panel.selected_uid() == "L2"
    # selecting in the list highlights the box
    lst = panel.list
    panel.resize(360, 400)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton,
                     pos=lst.visualItemRect(lst.item(3)).center())
    assert workbench.selection == ("layer", "L4")
    assert view.box("L4").selected and not view.box("L2").selected
    # clicking the background clears the selection
    empty = view.mapFromScene(QPointF(view.sceneRect().left() + 4, view.sceneRect().top() + 4))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=empty)
    assert workbench.selection is None
    assert not any(b.selected for b in view.boxes.values())
    assert panel.selected_uid() is None


def test_context_menu_gestures(qtbot, view, workbench):
    doc = open_example(workbench, "chapter_shared")
    menu = view.context_menu_for("L4")
    names = [a.objectName() for a in menu.actions() if a.objectName()]
    assert names[:2] == ["diagramRemove", "diagramDuplicate"]
    assert [a.text() for a in menu.actions() if a.menu() is not None] == ["Link with…",
                                                                          "Tie to…"]
    assert not menu_action(menu, "diagramUnlink").isEnabled()
    menu_action(menu, "diagramDuplicate").trigger()
    assert [s.label() for s in doc.layers][-2:] == ["Dense(2)", "Dense(2)"]
    assert workbench.undo_stack.undoText() == "Duplicate Dense(2)"
    assert len(view.boxes) == 5
    workbench.undo_stack.undo()
    assert len(view.boxes) == 4
    menu_action(view.context_menu_for("L2"), "diagramDuplicate").trigger()
    new = doc.layers[2].uid
    assert [s.uid for s in doc.layers] == ["L1", "L2", new, "L3", "L4"]
    menu = view.context_menu_for(new)
    share = menu.findChild(type(menu), "diagramShareMenu")
    assert [a.data() for a in share.actions()] == ["L1", "L2"]
    link_entry(share, "L2").trigger()
    assert not view.message.isVisible()
    assert doc.net[2].weight is doc.net[1].weight is doc.net[3].weight
    assert set(view.arcs) == {"L3", new}
    assert workbench.undo_stack.undoText() == "Share dense1's parameters with Dense(4, relu)"
    menu = view.context_menu_for(new)
    assert menu_action(menu, "diagramUnlink").isEnabled()
    menu_action(menu, "diagramUnlink").trigger()
    assert set(view.arcs) == {"L3"}
    assert doc.net[2].weight is not doc.net[1].weight
    menu_action(view.context_menu_for(new), "diagramRemove").trigger()
    assert [s.uid for s in doc.layers] == ["L1", "L2", "L3", "L4"]
    assert workbench.undo_stack.undoText() == "Remove Dense(4, relu)"
    assert list(view.boxes) == ["L1", "L2", "L3", "L4"]


def test_refused_link_from_the_diagram_shows_gluon_reason(qtbot, view, workbench):
    doc = open_example(workbench, "chapter_shared")
    spec = doc.to_spec()
    menu = view.context_menu_for("L4")
    share = menu.findChild(type(menu), "diagramShareMenu")
    link_entry(share, "L1").trigger()
    assert view.message.isVisible()
    assert view.message.text().startswith("Cannot retrieve Parameter "
                                          "'sequential0_dense0_weight'")
    assert doc.to_spec() == spec and workbench.undo_stack.count() == 0
    # the message sits inside the view, and goes away with the next click
    assert view.viewport().rect().contains(view.message.geometry().center())
    click_box(qtbot, view, "L1")
    assert not view.message.isVisible()


def test_tie_from_the_diagram_on_the_autoencoder(view, workbench):
    doc = open_example(workbench, "tied_autoencoder")
    run(workbench, "Untie", lambda d: d.unlink("L4"))
    assert set(view.arcs) == {"L3"}
    tie = view.context_menu_for("L4").findChild(type(view.context_menu_for("L4")),
                                                "diagramTieMenu")
    assert [a.data() for a in tie.actions()] == ["L1", "L2"]   # L3 is itself tied
    link_entry(tie, "L1").trigger()
    assert doc.net[3].weight is doc.net[0].weight
    assert workbench.undo_stack.undoText() == "Tie Dense(16) to dense0ᵀ"
    assert view.arcs["L4"].kind == "tie"


def test_right_click_selects_the_box(qtbot, view, workbench, monkeypatch):
    open_example(workbench, "chapter_mlp")
    shown = []
    monkeypatch.setattr(view, "_exec_menu", lambda menu, pos: shown.append(
        [x.text() for x in menu.actions()]))
    box = view.box("L2")
    pos = view.mapFromScene(box.sceneBoundingRect().center())
    from PySide6.QtGui import QContextMenuEvent
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos, view.viewport().mapToGlobal(pos))
    QApplication.sendEvent(view.viewport(), event)
    assert workbench.selection == ("layer", "L2")
    assert shown and "Remove" in shown[0] and "Unlink" in shown[0]


def test_ctrl_wheel_zooms_and_resize_fits(qtbot, view, workbench):
    open_example(workbench, "chapter_shared")
    scale = view.transform().m11()
    center = view.viewport().rect().center()
    event = QWheelEvent(QPointF(center), QPointF(view.viewport().mapToGlobal(center)),
                        QPoint(0, 0), QPoint(0, 240), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase,
                        False)
    QApplication.sendEvent(view.viewport(), event)
    assert view.transform().m11() == pytest.approx(scale * 1.15 ** 2, rel=1e-3)
    # a rebuild keeps the user's zoom
    run(workbench, "Add", lambda d: d.add_layer("Dropout"))
    assert view.transform().m11() == pytest.approx(scale * 1.15 ** 2, rel=1e-3)
    # a resize fits the diagram again: every box is in view
    view.resize(700, 1000)
    QApplication.processEvents()
    vp = view.viewport().rect()
    for box in view.boxes.values():
        assert vp.contains(view.mapFromScene(box.sceneBoundingRect()).boundingRect())


def test_many_layers_build_and_stay_readable(view, workbench):
    for i in range(40):
        run(workbench, "Add", lambda d: d.add_layer("Dense", {"units": 4 + i % 3}))
    assert len(view.boxes) == 40 and len(view.arrows) == 41
    assert view.transform().m11() >= 0.45          # scrolls rather than shrinking to dust
    workbench.select(("layer", workbench.doc.layers[-1].uid))
    assert view.boxes[workbench.doc.layers[-1].uid].selected


def test_renders_in_light_and_dark(qtbot, view, workbench, tmp_path):
    open_example(workbench, "tied_autoencoder")
    light = view.backgroundBrush().color()
    img = view.grab().toImage()
    assert not img.isNull()
    pal = QPalette(view.palette())
    pal.setColor(QPalette.ColorRole.Window, QColor(40, 40, 44))
    pal.setColor(QPalette.ColorRole.Base, QColor(30, 30, 32))
    pal.setColor(QPalette.ColorRole.Text, QColor(230, 230, 230))
    view.setPalette(pal)
    assert view.backgroundBrush().color() == QColor(30, 30, 32) != light
    assert all(isinstance(b, LayerBox) and b.theme.c["dark"] for b in view.boxes.values())
    assert view.grab().save(str(tmp_path / "dark.png"))
