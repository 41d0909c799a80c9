"""ConsolePanel: a Python prompt on the live model. Lines of the chapter change the model, the
window follows, and each line that changed parameters is one undo step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QPlainTextEdit

import app
from app.document import fileformat
from app.pluginhost import PluginHost
from app.ui.console_panel import ConsolePanel
from app.ui.log_panel import LogPanel
from app.ui.parameters_panel import ParametersPanel
from app.ui.workbench import Workbench

ROOT = Path(app.__file__).resolve().parent.parent
EXAMPLES = ROOT / "resources" / "examples"
W1 = "sequential0_dense1_weight"




@pytest.fixture
def plugin_host():
    return PluginHost(plugin_dirs=[ROOT / "plugins"], default_dirs=False, entry_points=False)


@pytest.fixture
def wb(qapp, plugin_host):
    """The chapter example, initialized (loading reseeds the stream: the chapter's numbers)."""
    w = Workbench(plugin_host, fileformat.load(EXAMPLES / "chapter_mlp.json", plugin_host))
    ok, _ = w.run("Initialize", lambda d: d.initialize())
    assert ok
    return w


@pytest.fixture
def console(qtbot, wb):
    c = ConsolePanel(wb)
    qtbot.addWidget(c)
    c.resize(700, 400)
    c.show()
    return c


def enter(qtbot, console, line: str) -> None:
    """Type ``line`` into consoleInput and press Enter."""
    field = console.findChild(QLineEdit, "consoleInput")
    field.setFocus()
    if line:
        qtbot.keyClicks(field, line)
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert field.text() == ""


def output(console) -> str:
    return console.findChild(QPlainTextEdit, "consoleOutput").toPlainText()


def snapshot(doc):
    return {n: (p.state, None if p.state != "initialized" else p.data().asnumpy().copy())
            for n, p in doc.params().items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for n in a:
        assert a[n][0] == b[n][0], n
        if a[n][1] is None:
            assert b[n][1] is None
        else:
            np.testing.assert_array_equal(a[n][1], b[n][1])


def test_widgets_and_namespace(console, wb):
    out = console.findChild(QPlainTextEdit, "consoleOutput")
    assert out.isReadOnly()
    ns = console.namespace
    assert ns["net"] is wb.doc.net and ns["x"] is wb.doc.x and ns["doc"] is wb.doc
    assert list(ns["params"].keys()) == list(wb.doc.params().keys())
    for name in ("nd", "init", "gluon", "autograd", "np"):
        assert name in ns


def test_net_of_x_prints_the_chapters_output(qtbot, console, wb):
    enter(qtbot, console, "net(x)")
    text = output(console)
    assert ">>> net(x)" in text
    assert "[[0.00212593 0.00365805]" in text
    assert "[0.00161272 0.00441845]" in text
    assert "<NDArray 3x2 @cpu(0)>" in text


def test_set_data_updates_the_table_and_is_one_undo_step(qtbot, console, wb):
    table = ParametersPanel(wb)
    qtbot.addWidget(table)
    enter(qtbot, console, "net(x)")                        # resolves the deferred shapes
    assert table.cell(W1, "Shape") == "(2, 4)"
    count = wb.undo_stack.count()
    before = snapshot(wb.doc)
    changes = []
    wb.changed.connect(changes.append)
    enter(qtbot, console, "net[1].weight.set_data(nd.ones(net[1].weight.shape))")
    np.testing.assert_array_equal(wb.doc.params()[W1].data().asnumpy(), np.ones((2, 4)))
    assert "params" in changes                             # the window follows
    assert wb.undo_stack.count() == count + 1
    assert wb.undo_stack.text(count).startswith("Console: net[1].weight.set_data(")
    assert table.cell(W1, "State") == "initialized"
    wb.undo_stack.undo()
    assert_same(snapshot(wb.doc), before)                  # exact arrays back
    wb.undo_stack.redo()
    np.testing.assert_array_equal(wb.doc.params()[W1].data().asnumpy(), np.ones((2, 4)))


def test_the_forward_that_resolves_shapes_is_undoable(qtbot, console, wb):
    table = ParametersPanel(wb)
    qtbot.addWidget(table)
    assert table.cell(W1, "Shape") == "(2, 0)" and table.cell(W1, "State") == "deferred"
    enter(qtbot, console, "net(x)")
    assert table.cell(W1, "Shape") == "(2, 4)" and table.cell(W1, "State") == "initialized"
    wb.undo_stack.undo()
    assert table.cell(W1, "Shape") == "(2, 0)" and table.cell(W1, "State") == "deferred"


def test_force_reinit_from_the_console(qtbot, console, wb):
    enter(qtbot, console, "net(x)")
    before = snapshot(wb.doc)
    enter(qtbot, console, "net.initialize(init.One(), force_reinit=True)")
    for name, p in wb.doc.params().items():
        expected = np.zeros(p.shape) if name.endswith("bias") else np.ones(p.shape)
        np.testing.assert_array_equal(p.data().asnumpy(), expected)   # bias keeps 'zeros'
    wb.undo_stack.undo()
    assert_same(snapshot(wb.doc), before)


def test_engine_warnings_print_like_python_and_go_to_the_log(qtbot, console, wb):
    log = LogPanel(wb)
    qtbot.addWidget(log)
    enter(qtbot, console, "net(x)")
    count = wb.undo_stack.count()
    enter(qtbot, console, "net.initialize()")
    text = output(console)
    message = ("Parameter sequential0_dense0_weight is already initialized, ignoring. "
               "Set force_reinit=True to re-initialize.")
    assert f"UserWarning: {message}" in text
    assert message in log.visible_messages()
    assert wb.undo_stack.count() == count                  # nothing changed: no undo step


def test_a_syntax_error_shows_a_traceback_and_changes_nothing(qtbot, console, wb):
    before = snapshot(wb.doc)
    count = wb.undo_stack.count()
    enter(qtbot, console, "net[1].weight.set_data(nd.ones(")
    prompt = console.findChild(QLabel, "consolePrompt")
    assert prompt.text() == "..."                          # an open bracket continues
    qtbot.keyClick(console.findChild(QLineEdit, "consoleInput"), Qt.Key.Key_Escape)
    assert prompt.text() == ">>>"                          # Escape abandons it
    assert "KeyboardInterrupt" in output(console)
    enter(qtbot, console, "def f(:")
    text = output(console)
    assert "SyntaxError" in text
    assert 'File "<console>", line 1' in text
    assert_same(snapshot(wb.doc), before)
    assert wb.undo_stack.count() == count


def test_exceptions_are_tracebacks_and_the_console_goes_on(qtbot, console, wb):
    enter(qtbot, console, "1/0")
    enter(qtbot, console, "net[1].weight.set_data(nd.ones((3, 3)))")
    enter(qtbot, console, "exit()")
    enter(qtbot, console, "print('still here', 6 * 7)")
    text = output(console)
    assert "Traceback (most recent call last):" in text
    assert "ZeroDivisionError: division by zero" in text
    assert "still here 42" in text
    assert wb.doc.params()[W1].state == "deferred"


def test_blocks_continue_with_a_prompt(qtbot, console, wb):
    prompt = console.findChild(QLabel, "consolePrompt")
    enter(qtbot, console, "for p in params.values():")
    assert prompt.text() == "..."
    enter(qtbot, console, "    print(p.name, p.shape)")
    enter(qtbot, console, "")
    assert prompt.text() == ">>>"
    text = output(console)
    assert "... " in text
    assert "sequential0_dense0_bias (4,)" in text
    # execute() takes a whole block too
    console.execute("total = 0\nfor i in range(4):\n    total += i\n\nprint('total', total)\n")
    assert "total 6" in output(console)


def test_history_with_up_and_down(qtbot, console):
    field = console.findChild(QLineEdit, "consoleInput")
    enter(qtbot, console, "a = 1")
    enter(qtbot, console, "b = 2")
    qtbot.keyClicks(field, "draft")
    qtbot.keyClick(field, Qt.Key.Key_Up)
    assert field.text() == "b = 2"
    qtbot.keyClick(field, Qt.Key.Key_Up)
    assert field.text() == "a = 1"
    qtbot.keyClick(field, Qt.Key.Key_Up)
    assert field.text() == "a = 1"
    qtbot.keyClick(field, Qt.Key.Key_Down)
    assert field.text() == "b = 2"
    qtbot.keyClick(field, Qt.Key.Key_Down)
    assert field.text() == "draft"


def test_stdout_and_results(qtbot, console):
    enter(qtbot, console, "print('hello')")
    enter(qtbot, console, "x.shape")
    enter(qtbot, console, "None")
    text = output(console)
    assert "hello\n" in text
    assert "(3, 5)" in text


def test_the_namespace_follows_the_document(qtbot, console, wb, plugin_host):
    wb.run("Add", lambda d: d.add_layer("Dense", {"units": 3}))
    enter(qtbot, console, "print(len(net), len(list(params.keys())))")
    assert "3 6" in output(console)
    new = fileformat.load(EXAMPLES / "tied_autoencoder.json", plugin_host)
    wb.set_document(new)
    assert console.namespace["net"] is new.net and console.namespace["doc"] is new
    wb.run("Input", lambda d: d.set_input(shape=(2, 16)))
    enter(qtbot, console, "x.shape")
    assert "(2, 16)" in output(console)


def test_console_edits_outside_document_gestures_end_the_replayable_recipe(qtbot, workbench):
    """Export as Python replays the document's gestures; a console line that changes values,
    gradients or the random stream directly makes the record say so."""
    from app.ui.console_panel import ConsolePanel
    doc = workbench.doc
    workbench.run("build", lambda d: (d.add_layer("Dense", {"units": 3, "in_units": 5}),
                                      d.initialize(), d.forward()))
    panel = ConsolePanel(workbench)
    qtbot.addWidget(panel)
    assert doc.replay_steps == 0
    panel.execute("doc.backward()\n")                   # a document gesture: still a recipe
    assert doc.replay_steps == 0
    panel.execute("_ = nd.random.uniform(shape=(4,))\n")
    assert doc.replay_steps is None and "random stream" in doc.replay_note

    workbench.run("again", lambda d: d.set_input(seed=3))
    workbench.run("init", lambda d: d.initialize(force_reinit=True))
    assert doc.replay_steps is None                     # values from before the new input


def test_console_input_edits_and_edits_after_a_gesture_end_the_recipe(qtbot, workbench):
    from app.ui.console_panel import ConsolePanel
    doc = workbench.doc
    workbench.run("build", lambda d: (d.add_layer("Dense", {"units": 3, "in_units": 5}),
                                      d.initialize(), d.forward()))
    panel = ConsolePanel(workbench)
    qtbot.addWidget(panel)
    panel.execute("x[:] = x * 2\n")
    assert doc.replay_steps is None and "input batch" in doc.replay_note

    workbench.run("again", lambda d: (d.set_input(seed=5), ))
    doc.replay = type(doc.replay)("recipe")             # as if freshly initialized
    name = next(iter(doc.params()))
    panel.execute(f"doc.train(1); params[{name!r}].data()[:] += 1\n")
    assert doc.replay_steps is None and "after a document gesture" in doc.replay_note
