"""ParametersPanel: the collect_params() table — names, shapes with their 0s, states, the
effective initializer and where it came from, sharing; selection and sorting by mouse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QTableView

import app
from app.document import fileformat
from app.pluginhost import PluginHost
from app.ui.parameters_panel import COLUMNS, ParametersPanel, state_color
from app.ui.workbench import Workbench

ROOT = Path(app.__file__).resolve().parent.parent
EXAMPLES = ROOT / "resources" / "examples"
W0, B0, W1, B1 = (f"sequential0_dense{i}_{r}" for i in (0, 1) for r in ("weight", "bias"))




@pytest.fixture
def plugin_host():
    return PluginHost(plugin_dirs=[ROOT / "plugins"], default_dirs=False, entry_points=False)


def open_example(name, host) -> Workbench:
    return Workbench(host, fileformat.load(EXAMPLES / f"{name}.json", host))


@pytest.fixture
def wb(qapp, plugin_host):
    return open_example("chapter_mlp", plugin_host)


def make_panel(qtbot, wb) -> ParametersPanel:
    panel = ParametersPanel(wb)
    qtbot.addWidget(panel)
    panel.resize(900, 260)
    panel.show()
    return panel


@pytest.fixture
def panel(qtbot, wb):
    return make_panel(qtbot, wb)


def table(panel) -> QTableView:
    return panel.findChild(QTableView, "parametersTable")


def cell_rect(panel, name, column):
    view = table(panel)
    index = view.model().index(panel.view_row(name), COLUMNS.index(column))
    view.scrollTo(index)
    return view.visualRect(index)


def click_row(qtbot, panel, name, column="Name", double=False):  # noqa: FBT002
    view = table(panel)
    pos = cell_rect(panel, name, column).center()
    if double:      # a real double-click: a click, then the double-click event
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
        qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    else:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def column(panel, name):
    return [panel.cell(n, name) for n in panel.row_names()]


def test_the_chapter_network_before_initialize(panel):
    assert table(panel).model().columnCount() == len(COLUMNS)
    assert [table(panel).model().headerData(i, Qt.Orientation.Horizontal)
            for i in range(len(COLUMNS))] == list(COLUMNS)
    assert panel.row_names() == [W0, B0, W1, B1]           # Gluon's collect_params order
    assert column(panel, "Shape") == ["(4, 0)", "(4,)", "(2, 0)", "(2,)"]
    assert column(panel, "DType") == ["float32"] * 4
    assert column(panel, "State") == ["uninitialized"] * 4
    assert column(panel, "Initializer") == ["uniform(scale=0.07)", "zeros"] * 2
    assert column(panel, "Source") == ["global", "layer default"] * 2
    assert column(panel, "Shared by") == [""] * 4


def test_deferred_after_initialize_then_initialized_after_forward(panel, wb):
    wb.run("Initialize", lambda d: d.initialize())
    assert panel.cell(W0, "Shape") == "(4, 0)"
    assert panel.cell(W0, "State") == "deferred"
    assert panel.cell(B0, "State") == "initialized"
    assert "first forward" in panel.cell(W0, "State", Qt.ItemDataRole.ToolTipRole)
    wb.run("Forward", lambda d: d.forward())
    assert panel.cell(W0, "Shape") == "(4, 5)"
    assert panel.cell(W1, "Shape") == "(2, 4)"
    assert column(panel, "State") == ["initialized"] * 4
    wb.undo_stack.undo()                                   # the view follows undo
    assert panel.cell(W0, "Shape") == "(4, 0)"
    assert panel.cell(W0, "State") == "deferred"


def test_states_are_coloured(panel, wb):
    wb.run("Initialize", lambda d: d.initialize())
    fg = Qt.ItemDataRole.ForegroundRole
    assert panel.cell(W0, "State", fg) == state_color("deferred")
    assert panel.cell(B0, "State", fg) == state_color("initialized")
    assert state_color("deferred") != state_color("initialized") != state_color("uninitialized")
    for dark in (False, True):
        assert state_color("initialized", dark).isValid()


def test_the_initializer_tooltip_explains_the_precedence(panel, wb):
    wb.run("Global MyInit", lambda d: d.set_global_init("myinit", {}))
    assert panel.cell(W0, "Initializer") == "myinit"
    assert panel.cell(B0, "Initializer") == "zeros"
    tip = panel.cell(B0, "Initializer", Qt.ItemDataRole.ToolTipRole)
    assert "bias_initializer='zeros' set by the layer wins over the global MyInit: " \
           "Gluon's precedence" in tip
    tip = panel.cell(W0, "Initializer", Qt.ItemDataRole.ToolTipRole)
    assert "The global MyInit" in tip
    wb.run("Layer", lambda d: d.set_layer_init("L1", "ones", {}))
    assert panel.cell(W0, "Source") == "layer"
    assert "chosen for layer 0: Dense(4, relu)" in \
        panel.cell(W0, "Initializer", Qt.ItemDataRole.ToolTipRole)
    wb.run("Param", lambda d: d.set_param_init("L1", "bias", "constant", {"value": 1.0}))
    assert panel.cell(B0, "Source") == "parameter"
    assert panel.cell(B0, "Initializer") == "constant(value=1.0)"
    assert "was chosen for this parameter" in \
        panel.cell(B0, "Initializer", Qt.ItemDataRole.ToolTipRole)


def test_a_missing_plugin_is_red_with_its_reason(qtbot, tmp_path, plugin_host, qapp):
    spec = json.loads((EXAMPLES / "chapter_mlp.json").read_text())
    spec["global_init"] = {"name": "ghostinit", "settings": {}}
    path = tmp_path / "ghost.json"
    path.write_text(json.dumps(spec))
    wb = Workbench(plugin_host, fileformat.load(path, plugin_host))
    panel = make_panel(qtbot, wb)
    assert panel.cell(W0, "Source") == "missing"
    assert panel.cell(B0, "Source") == "layer default"     # zeros does not need the plugin
    color = panel.cell(W0, "Source", Qt.ItemDataRole.ForegroundRole)
    assert color.name().lower() != state_color("initialized").name().lower()
    assert color.red() > 150 and color.green() < 120
    tip = panel.cell(W0, "Source", Qt.ItemDataRole.ToolTipRole)
    assert "initializer 'ghostinit' is not available" in tip


def test_shared_and_tied_parameters_name_their_layers(qtbot, plugin_host, qapp):
    panel = make_panel(qtbot, open_example("chapter_shared", plugin_host))
    assert panel.row_names() == ["sequential0_dense0_weight", "sequential0_dense0_bias",
                                 "sequential0_dense1_weight", "sequential0_dense1_bias",
                                 "sequential0_dense3_weight", "sequential0_dense3_bias"]
    assert panel.cell("sequential0_dense1_weight", "Shared by") == \
        "1: Dense(4, relu), 2: Dense(4, relu)"
    assert panel.cell("sequential0_dense0_weight", "Shared by") == ""
    panel = make_panel(qtbot, open_example("tied_autoencoder", plugin_host))
    assert panel.cell("sequential0_dense0_weight", "Shared by") == \
        "0: Dense(8, tanh), 3: Dense(16) (transposed)"


def test_clicking_a_row_selects_the_parameter(qtbot, panel, wb):
    seen = []
    wb.selection_changed.connect(seen.append)
    click_row(qtbot, panel, B1)
    assert wb.selection == ("param", B1)
    assert seen[-1] == ("param", B1)
    rows = table(panel).selectionModel().selectedRows()
    assert [r.row() for r in rows] == [panel.view_row(B1)]
    # a model change keeps the selection
    wb.run("Initialize", lambda d: d.initialize())
    assert [r.row() for r in table(panel).selectionModel().selectedRows()] == \
        [panel.view_row(B1)]


def test_double_click_selects_the_owner_layer(qtbot, panel, wb):
    click_row(qtbot, panel, W1, double=True)
    assert wb.selection == ("layer", "L2")


def test_selection_from_elsewhere_highlights_the_row(panel, wb):
    wb.select(("param", W1))
    assert [r.row() for r in table(panel).selectionModel().selectedRows()] == \
        [panel.view_row(W1)]
    wb.select(("layer", "L1"))
    assert table(panel).selectionModel().selectedRows() == []


def test_sorting_by_clicking_a_header(qtbot, panel, wb):
    wb.run("Initialize", lambda d: d.initialize())
    view = table(panel)
    header = view.horizontalHeader()
    x = header.sectionViewportPosition(COLUMNS.index("State")) + 10
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(x, header.height() // 2))
    states = column(panel, "State")
    assert states == sorted(states, key=["uninitialized", "deferred", "initialized"].index) or \
        states == sorted(states, key=["uninitialized", "deferred", "initialized"].index,
                         reverse=True)
    assert states[0] != states[-1]
    first = panel.row_names()
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(x, header.height() // 2))
    assert column(panel, "State") == list(reversed(states))
    assert panel.row_names() != first
    # sorting by Name keeps Gluon's order (dense10 after dense9, not after dense1)
    view.sortByColumn(COLUMNS.index("Name"), Qt.SortOrder.AscendingOrder)
    assert panel.row_names() == [W0, B0, W1, B1]


def test_a_new_document_replaces_the_rows(qtbot, panel, wb, plugin_host):
    wb.set_document(fileformat.load(EXAMPLES / "tied_autoencoder.json", plugin_host))
    assert len(panel.row_names()) == 6
    assert panel.cell("sequential0_dense0_weight", "Shape") == "(8, 16)"
    assert "6 parameters" in panel.summary.text()
