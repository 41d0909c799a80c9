"""The snapshot timeline: every snapshot listed, the A/B pair (defaults, picking, pinning,
following), memory against the budget, the budget setting and the dropped-snapshot notice."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

import app
from app.document import Document, fileformat
from app.ui.timeline_panel import MIB, TimelinePanel, format_bytes
from app.ui.workbench import Workbench

EXAMPLES = Path(app.__file__).resolve().parent.parent / "resources" / "examples"


@pytest.fixture
def mlp(qapp, host):
    return Workbench(host, fileformat.load(EXAMPLES / "chapter_mlp.json", host=host))


def make_timeline(qtbot, wb) -> TimelinePanel:
    panel = TimelinePanel(wb)
    qtbot.addWidget(panel)
    panel.resize(560, 380)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def labels(panel):
    return [panel.list.topLevelItem(i).text(panel.COL_LABEL)
            for i in range(panel.list.topLevelItemCount())]


def checked(panel):
    """The ids whose A / B column shows the chosen mark."""
    marks = {}
    for col in (panel.COL_A, panel.COL_B):
        marks[col] = [int(panel.list.topLevelItem(i).text(panel.COL_ID))
                      for i in range(panel.list.topLevelItemCount())
                      if panel.list.topLevelItem(i).text(col) == "●"]
    return tuple(marks[panel.COL_A]), tuple(marks[panel.COL_B])


def click(qtbot, panel, snap_id, which):
    col = panel.COL_A if which == "A" else panel.COL_B
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton,
                     pos=panel.cell_rect(snap_id, col).center())


def test_lists_every_snapshot_and_defaults_to_the_last_two(qtbot, mlp):
    doc = mlp.doc
    panel = make_timeline(qtbot, mlp)
    assert labels(panel) == ["load chapter_mlp.json"]
    assert panel.pair() == (doc.history.snapshots[0], doc.history.snapshots[0])
    with qtbot.waitSignal(panel.pair_changed) as blocker:
        doc.initialize()
    ids = [s.id for s in doc.history.snapshots]
    assert blocker.args == ids[-2:]
    doc.forward()
    doc.backward()
    assert labels(panel) == ["load chapter_mlp.json", "initialize",
                             "forward: deferred shapes resolved", "backward"]
    a, b = panel.pair()
    assert (a.label, b.label) == ("forward: deferred shapes resolved", "backward")
    assert checked(panel) == ((a.id,), (b.id,))
    assert "A</b> #3" in panel.pair_label.text() and "B</b> #4 backward" in panel.pair_label.text()
    item = panel.list.topLevelItem(3)
    assert item.text(panel.COL_ID) == "4"
    assert item.text(panel.COL_TIME).count(":") == 2
    # memory: the backward holds its new gradients of its own; the load holds nothing
    own = doc.history.snapshots[3].nbytes_own(doc.history.snapshots[2])
    assert item.text(panel.COL_MEM) == format_bytes(own)
    assert panel.list.topLevelItem(0).text(panel.COL_MEM) == "—"
    assert f"Memory in use: {format_bytes(doc.history.nbytes())} of 1024 MiB" in \
        panel.memory_label.text()
    assert panel.budget.value() == 1024
    assert panel.memory_summary() == f"Snapshots: {format_bytes(doc.history.nbytes())} of 1024 MiB"
    assert panel.dropped_label.isHidden()
    assert panel.follow.isChecked() and not panel.is_pinned()


def test_picking_a_and_b_pins_the_choice(qtbot, mlp):
    doc = mlp.doc
    doc.initialize()
    doc.forward()
    doc.backward()
    panel = make_timeline(qtbot, mlp)
    s = doc.history.snapshots
    with qtbot.waitSignal(panel.pair_changed) as blocker:
        click(qtbot, panel, s[1].id, "A")
    assert blocker.args == [s[1].id, s[3].id]
    assert panel.pair() == (s[1], s[3])
    assert panel.is_pinned() and not panel.follow.isChecked()
    click(qtbot, panel, s[2].id, "B")
    assert panel.pair() == (s[1], s[2])
    # a new snapshot does not move a pinned pair
    with qtbot.assertNotEmitted(panel.pair_changed):
        doc.step()
    assert panel.pair() == (s[1], s[2]) and len(labels(panel)) == 5
    click(qtbot, panel, s[3].id, "B")
    qtbot.keyClick(panel.list, Qt.Key.Key_Up)       # moves the current row, picks nothing
    assert panel.pair() == (s[1], s[3])
    click(qtbot, panel, s[2].id, "B")
    assert checked(panel) == ((s[1].id,), (s[2].id,))
    # keyboard: select a row and press B
    panel.list.setCurrentItem(panel.list.topLevelItem(3))
    qtbot.keyClick(panel.list, Qt.Key.Key_B)
    assert panel.pair() == (s[1], s[3])
    # "Follow latest" goes back to the last two, and follows again
    qtbot.mouseClick(panel.follow, Qt.MouseButton.LeftButton)
    assert [x.label for x in panel.pair()] == ["backward", "step"]
    doc.backward()
    assert [x.label for x in panel.pair()] == ["step", "backward"]


def test_double_click_compares_with_the_snapshot_before(qtbot, mlp):
    doc = mlp.doc
    doc.initialize()
    doc.forward()
    doc.backward()
    panel = make_timeline(qtbot, mlp)
    item = panel.list.topLevelItem(2)
    rect = panel.list.visualItemRect(item)
    pos = rect.center()
    pos.setX(panel.list.visualItemRect(item).left() +
             panel.list.header().sectionPosition(panel.COL_LABEL) + 10)
    # Qt 6's QTest double click needs the press before it, as a real double click has
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.mouseDClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    s = doc.history.snapshots
    assert panel.pair() == (s[1], s[2]) and panel.is_pinned()


def test_set_pair_and_unknown_ids(qtbot, mlp):
    doc = mlp.doc
    doc.initialize()
    doc.forward()
    panel = make_timeline(qtbot, mlp)
    s = doc.history.snapshots
    panel.set_pair(s[2], s[0])
    assert panel.pair() == (s[2], s[0]) and panel.is_pinned()
    with pytest.raises(KeyError):
        panel.set_pair(s[0].id, 999)
    assert panel.pair() == (s[2], s[0])


def test_the_budget_drops_the_oldest_and_the_timeline_says_so(qtbot, host, qapp):
    doc = Document(host=host)
    doc.set_input(shape=(3, 512))
    doc.add_layer("Dense", {"units": 512, "in_units": 512})    # 1 MiB of weights
    wb = Workbench(host, doc)
    panel = make_timeline(qtbot, wb)
    doc.initialize()
    doc.forward()
    for _ in range(3):
        doc.backward()
        doc.step()
    s = doc.history.snapshots
    assert len(s) == 8 and doc.history.dropped == 0
    panel.set_pair(s[1], s[2])                      # pin two old ones
    # the budget spin box applies when committed (not while typing)
    panel.budget.clear()
    qtbot.keyClicks(panel.budget, "4")
    assert doc.history.budget == 1024 * MIB
    qtbot.keyClick(panel.budget, Qt.Key.Key_Return)
    assert doc.history.budget == 4 * MIB
    assert doc.history.nbytes() <= 4 * MIB
    dropped = doc.history.dropped
    assert dropped > 0
    assert len(labels(panel)) == 8 - dropped
    assert panel.dropped_label.isVisible()
    assert panel.dropped_label.text() == (
        f"{dropped} older snapshot{'s' if dropped != 1 else ''} dropped to stay within the "
        f"budget (4 MiB).")
    assert "of 4 MiB" in panel.memory_label.text()
    assert panel.memory_bar.value() > 500
    # the pinned snapshots were dropped: back to following the last two
    assert not panel.is_pinned()
    assert panel.pair() == doc.history.default_pair()
    # recording more keeps within the budget and counts on
    doc.backward()
    doc.step()
    assert doc.history.nbytes() <= 4 * MIB
    assert doc.history.dropped > dropped
    assert f"{doc.history.dropped} older snapshots dropped" in panel.dropped_label.text()


def test_empty_history_and_a_new_document(qtbot, host, qapp):
    wb = Workbench(host, Document(host=host))
    panel = make_timeline(qtbot, wb)
    assert panel.pair() == (None, None)
    assert panel.empty_label.isVisible() and not panel.list.isVisible()
    assert "nothing to compare" in panel.pair_label.text()
    with qtbot.waitSignal(panel.pair_changed):
        wb.set_document(fileformat.load(EXAMPLES / "chapter_mlp.json", host=host))
    assert labels(panel) == ["load chapter_mlp.json"]
    assert panel.list.isVisible() and not panel.empty_label.isVisible()
    old = wb.doc
    wb.set_document(Document(host=host))
    old.initialize()                                # the old document no longer shows
    assert labels(panel) == []
    assert len(old.history.changed) == 0            # and holds no reference to the panel
