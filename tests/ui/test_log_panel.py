"""LogPanel: the engine's warnings in Gluon's words, timestamped, with details, a level filter
and Clear; it follows the current document."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QToolButton, QTreeWidget

import app
from app.document import fileformat
from app.pluginhost import PluginHost
from app.ui.log_panel import LogDetailsDialog, LogPanel
from app.ui.workbench import Workbench

ROOT = Path(app.__file__).resolve().parent.parent
EXAMPLES = ROOT / "resources" / "examples"
REINIT = ("Parameter sequential0_dense0_weight is already initialized, ignoring. "
          "Set force_reinit=True to re-initialize.")
REINIT_BIAS = ("Parameter sequential0_dense0_bias is already initialized, ignoring. "
               "Set force_reinit=True to re-initialize.")


def initialize_twice(wb, forward=True):  # noqa: FBT002
    """initialize, (forward: every shape known), initialize again: Gluon's warnings."""
    wb.run("Initialize", lambda d: d.initialize())
    if forward:
        wb.run("Forward", lambda d: d.forward())
    wb.run("Initialize", lambda d: d.initialize())




@pytest.fixture
def plugin_host():
    return PluginHost(plugin_dirs=[ROOT / "plugins"], default_dirs=False, entry_points=False)


@pytest.fixture
def wb(qapp, plugin_host):
    return Workbench(plugin_host, fileformat.load(EXAMPLES / "chapter_mlp.json", plugin_host))


@pytest.fixture
def panel(qtbot, wb):
    p = LogPanel(wb)
    qtbot.addWidget(p)
    p.resize(800, 300)
    p.show()
    return p


def view(panel) -> QTreeWidget:
    return panel.findChild(QTreeWidget, "logView")


def items(panel):
    v = view(panel)
    return [v.topLevelItem(i) for i in range(v.topLevelItemCount())]


def click(qtbot, widget):
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def click_item(qtbot, panel, item, double=False):  # noqa: FBT002
    v = view(panel)
    v.scrollToItem(item)
    pos = v.visualItemRect(item).center()
    qtbot.mouseClick(v.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    if double:
        qtbot.mouseDClick(v.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_existing_entries_are_shown_timestamped(panel, wb):
    assert [e.message for e in wb.doc.log_entries] == panel.visible_messages()
    first = items(panel)[0]
    assert re.fullmatch(r"\d\d:\d\d:\d\d", first.text(0))
    assert "opened" in first.text(1)


def test_initialize_twice_shows_the_engines_warnings_verbatim(panel, wb):
    initialize_twice(wb, forward=False)
    # the weights were still deferred (shape unknown), so only the biases warn
    assert [m for m in panel.visible_messages() if "already initialized" in m] == [
        REINIT_BIAS, REINIT_BIAS.replace("dense0", "dense1")]
    wb.run("Forward", lambda d: d.forward())
    wb.run("Initialize", lambda d: d.initialize())
    messages = panel.visible_messages()
    assert REINIT in messages
    warnings = [m for m in messages if "is already initialized, ignoring" in m]
    assert len(warnings) == 6
    warn_items = [it for it in items(panel) if it.data(0, Qt.ItemDataRole.UserRole).level ==
                  "warning"]
    assert len(warn_items) == 6
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", it.text(0)) for it in warn_items)
    assert not warn_items[0].icon(0).isNull()
    assert panel.findChild(QToolButton, "logFilterWarning").text() == "6"


def test_the_level_filter(qtbot, panel, wb):
    initialize_twice(wb)
    wb.doc.error("something broke")
    warn = panel.findChild(QToolButton, "logFilterWarning")
    info = panel.findChild(QToolButton, "logFilterInfo")
    click(qtbot, warn)
    assert not any("already initialized" in m for m in panel.visible_messages())
    assert "something broke" in panel.visible_messages()
    click(qtbot, info)
    assert panel.visible_messages() == ["something broke"]
    wb.doc.info("later info")                              # filtered as it arrives
    assert panel.visible_messages() == ["something broke"]
    click(qtbot, warn)
    click(qtbot, info)
    assert "later info" in panel.visible_messages() and REINIT in panel.visible_messages()


def test_details_of_an_entry_with_a_traceback(qtbot, panel, wb):
    wb.doc.info("no details here")
    wb.doc.error("plugin broken.py: load error", "Traceback (most recent call last):\n"
                 "  File \"broken.py\", line 3\nZeroDivisionError: division by zero")
    details = panel.findChild(QPushButton, "logDetails")
    plain = items(panel)[-2]
    click_item(qtbot, panel, plain)
    assert details.isEnabled()              # the whole message, without a traceback
    click(qtbot, details)
    dialog = panel.findChild(LogDetailsDialog, "logDetailsDialog")
    assert dialog.isVisible() and not dialog.text.isVisible()
    assert dialog.findChild(QLabel, "logDetailsMessage").text() == "no details here"
    dialog.close()
    item = items(panel)[-1]
    assert "[details…]" in item.text(1)
    click_item(qtbot, panel, item)
    assert details.isEnabled()
    click(qtbot, details)
    dialog = panel.details_dialog
    assert isinstance(dialog, LogDetailsDialog) and dialog.isVisible()
    assert "ZeroDivisionError: division by zero" in dialog.text.toPlainText()
    assert dialog.text.isReadOnly()
    dialog.close()
    click_item(qtbot, panel, item, double=True)            # double-click opens it too
    assert panel.details_dialog.isVisible()
    panel.details_dialog.close()


def test_a_refused_gesture_and_a_failing_engine_call_are_errors(panel, wb):
    ok, message = wb.run("Link", lambda d: d.link("L2", "L1"))
    assert not ok
    errors = [e for e in panel.entries() if e.level == "error"]
    assert errors and message in errors[-1].message


def test_clear_hides_old_entries_and_keeps_new_ones(qtbot, panel, wb):
    initialize_twice(wb)
    n = len(wb.doc.log_entries)
    click(qtbot, panel.findChild(QPushButton, "logClear"))
    assert panel.visible_messages() == []
    assert len(wb.doc.log_entries) == n                    # the document keeps its log
    wb.run("Initialize", lambda d: d.initialize())
    assert REINIT in panel.visible_messages()
    assert all(e in wb.doc.log_entries for e in panel.entries())


def test_a_new_document_reloads_from_its_entries(qtbot, panel, wb, plugin_host):
    initialize_twice(wb)
    click(qtbot, panel.findChild(QPushButton, "logClear"))
    new = fileformat.load(EXAMPLES / "tied_autoencoder.json", plugin_host)
    wb.set_document(new)
    assert panel.visible_messages() == [e.message for e in new.log_entries]
    assert any("tied_autoencoder.json" in m for m in panel.visible_messages())
    assert REINIT not in panel.visible_messages()
    new.warning("from the new document")
    assert panel.visible_messages()[-1] == "from the new document"
