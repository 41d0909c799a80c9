"""TrainingPanel: data, loss and optimizer configured through real widgets (one undo step each,
wrong values never applied), runs on the worker thread checked bit for bit against the engine
run directly, cancel, divergence, and editing disabled while a run holds the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

import app
from app.document import fileformat
from app.document import training as T
from app.engine import autograd, gluon, nd
from app.ui.training_panel import TrainingPanel, format_status
from app.ui.training_run import TrainingRunner

ROOT = Path(app.__file__).resolve().parent.parent
EXAMPLES = ROOT / "resources" / "examples"


# ----------------------------------------------------------------- fixtures and helpers
@pytest.fixture
def runner(workbench):
    r = TrainingRunner(workbench)
    yield r
    r.cancel()
    r.wait()


@pytest.fixture
def panel(qtbot, workbench, runner, settings):
    p = TrainingPanel(workbench, runner, settings=settings)
    qtbot.addWidget(p)
    p.resize(380, 1300)
    p.show()
    qtbot.waitExposed(p)
    return p


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def type_into(qtbot, editor, text: str) -> None:
    editor.setFocus()
    editor.selectAll()
    if text:
        qtbot.keyClicks(editor, text)
    else:
        qtbot.keyClick(editor, Qt.Key.Key_Backspace)


def pick(qtbot, combo, data) -> None:
    """Choose an entry as a user would: open the list, click the item (the panel may refuse
    it and show the entry in use again)."""
    index = combo.findData(data)
    assert index >= 0, data
    combo.showPopup()
    view = combo.view()
    qtbot.waitUntil(view.isVisible)
    rect = view.visualRect(view.model().index(index, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: not view.isVisible())


def values(doc) -> dict:
    return {n: p.data().asnumpy() for n, p in doc.params().items()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for n, value in a.items():
        assert value.dtype == b[n].dtype and np.array_equal(value, b[n]), n


def build(wb, units=(4, 2), shape=(3, 5), seed=3, loss=None) -> None:
    """A small initialized stack through workbench gestures (the engine defers the first
    layer's input size until Forward). Long runs use a bounded loss: the raw one, sum(output),
    falls without end and overflows after a few hundred SGD steps."""
    assert wb.run("Add", lambda d: d.add_layer("Dense", {"units": units[0],
                                                         "activation": "relu"}))[0]
    assert wb.run("Add", lambda d: d.add_layer("Dense", {"units": units[1]}))[0]
    assert wb.run("Input", lambda d: d.set_input(shape=shape, seed=seed))[0]
    assert wb.run("Initialize", lambda d: d.initialize())[0]
    if loss is not None:
        assert wb.run("Loss", lambda d: d.set_loss(loss))[0]


def engine_run(path, steps: int, host, optimizer: str, kwargs: dict, batch_size: int) -> dict:
    """The same steps written directly on the engine, on a fresh copy of the saved document."""
    d = fileformat.load(path, host=host)
    trainer = gluon.Trainer(d.params(), optimizer, dict(kwargs))
    loss_fn = T.make_loss(d.train_config.loss)
    target = None if loss_fn is None else nd.array(d.target_array())
    for _ in range(steps):
        with autograd.record():
            y = d.net(d.x)
            loss = y if loss_fn is None else loss_fn(y, target)
        loss.backward()
        trainer.step(batch_size)
    return values(d)


def train_and_wait(qtbot, panel, runner, steps: int):
    type_into(qtbot, panel.steps_spin, str(steps))
    with qtbot.waitSignal(runner.finished, timeout=60_000) as blocker:
        click(qtbot, panel.train_button)
    return blocker.args[0]


def editing_widgets(panel) -> list[QWidget]:
    """Controls that are enabled on an idle, initialized model with nothing edited."""
    return [panel.input_tracked.form.editor("shape"), panel.input_load,
            panel.target_tracked.form.editor("seed"), panel.target_load,
            panel.loss_combo, panel.optimizer_combo,
            panel.optimizer_tracked.form.editor("learning_rate"),
            panel.training_tracked.form.editor("batch_size"),
            panel.step_buttons["forward"], panel.step_buttons["backward"],
            panel.steps_spin, panel.train_button]


# ----------------------------------------------------------------- configuration
def test_configure_loss_optimizer_and_batch_size_one_undo_step_each(qtbot, panel, workbench):
    wb = workbench
    build(wb)
    stack = wb.undo_stack
    n0 = stack.count()
    lr = panel.optimizer_tracked.form.editor("learning_rate")
    type_into(qtbot, lr, "0.05")
    assert panel.optimizer_apply.isEnabled()
    click(qtbot, panel.optimizer_apply)
    assert wb.doc.train_config.optimizer_settings["learning_rate"] == 0.05
    assert stack.count() == n0 + 1 and stack.undoText() == "Learning rate 0.05"

    pick(qtbot, panel.optimizer_combo, "adam")
    cfg = wb.doc.train_config
    assert cfg.optimizer == "adam" and cfg.optimizer_settings == T.optimizer_defaults("adam")
    assert stack.count() == n0 + 2
    # the form now shows Adam's settings, learning rate first
    form = panel.optimizer_tracked.form
    assert [s.name for s in form.settings()][:3] == ["learning_rate", "beta1", "beta2"]
    assert form.editor("learning_rate").text() == "0.001"

    pick(qtbot, panel.loss_combo, "l2")
    assert wb.doc.train_config.loss == "l2" and stack.count() == n0 + 3
    assert panel.target_box.isVisible()
    assert "(3, 2)" in panel.target_source.text()
    assert "follows the output" in panel.target_source.text()

    batch = panel.training_tracked.form.editor("batch_size")
    type_into(qtbot, batch, "2")
    qtbot.keyClick(batch, Qt.Key.Key_Return)            # Enter applies like the button
    assert wb.doc.train_config.batch_size == 2 and stack.count() == n0 + 4
    assert "divided by 2" in panel.batch_hint.text()

    # one undo reverts exactly one change
    stack.undo()
    assert wb.doc.train_config.batch_size == 0 and wb.doc.train_config.loss == "l2"
    assert batch.text() == "0"
    stack.undo()
    assert wb.doc.train_config.loss == "raw"
    assert panel.loss_combo.currentData() == "raw" and not panel.target_box.isVisible()
    stack.undo()
    assert wb.doc.train_config.optimizer == "sgd"
    assert panel.optimizer_combo.currentData() == "sgd"
    assert panel.optimizer_tracked.form.editor("learning_rate").text() == "0.05"


@pytest.mark.parametrize("text", ["-1", "abc", "0", ""])
def test_a_wrong_learning_rate_stays_red_and_is_never_applied(qtbot, panel, workbench, text):
    wb = workbench
    build(wb)
    before, n0 = wb.doc.to_spec(), wb.undo_stack.count()
    lr = panel.optimizer_tracked.form.editor("learning_rate")
    type_into(qtbot, lr, text)
    assert lr.property("invalid") is True
    assert "Allowed: a number in (0.0, ∞)" in lr.toolTip()
    assert not panel.optimizer_apply.isEnabled()
    click(qtbot, panel.optimizer_apply)
    qtbot.keyClick(lr, Qt.Key.Key_Return)
    assert wb.doc.to_spec() == before and wb.undo_stack.count() == n0
    # a document change elsewhere neither applies nor clears the wrong value
    assert wb.run("Batch", lambda d: d.set_batch_size(3))[0]
    assert lr.text() == text and lr.property("invalid") is True
    assert panel.training_tracked.form.editor("batch_size").text() == "3"
    assert wb.doc.train_config.optimizer_settings["learning_rate"] == 0.1


def test_a_document_change_keeps_the_field_being_typed(qtbot, panel, workbench):
    wb = workbench
    build(wb)
    lr = panel.optimizer_tracked.form.editor("learning_rate")
    type_into(qtbot, lr, "0.5")
    assert wb.run("Batch", lambda d: d.set_batch_size(4))[0]
    batch = panel.training_tracked.form.editor("batch_size")
    assert batch.text() == "4" and lr.text() == "0.5"
    wb.undo_stack.undo()                                  # batch size back to 0
    assert batch.text() == "0" and lr.text() == "0.5"
    click(qtbot, panel.optimizer_apply)                   # applies the typed field only
    cfg = wb.doc.train_config
    assert cfg.optimizer_settings["learning_rate"] == 0.5 and cfg.batch_size == 0
    assert wb.undo_stack.undoText() == "Learning rate 0.5"
    assert not panel.optimizer_apply.isEnabled()


def test_input_generated_and_loaded_from_files(qtbot, panel, workbench, tmp_path, settings):
    wb = workbench
    build(wb)
    form = panel.input_tracked.form
    n0 = wb.undo_stack.count()
    type_into(qtbot, form.editor("shape"), "4, 5")
    type_into(qtbot, form.editor("seed"), "7")
    click(qtbot, panel.input_apply)
    assert wb.doc.input.shape == (4, 5) and wb.doc.input.seed == 7
    assert wb.undo_stack.count() == n0 + 1 and wb.undo_stack.undoText() == "Set input"
    assert panel.input_source.text() == "(4, 5) · generated, uniform, seed 7"

    # normal shows mean and std, not low and high
    pick(qtbot, panel.input_tracked.form.editor("distribution"), 1)     # normal
    assert form.editor("std").isVisibleTo(panel) and not form.editor("low").isVisibleTo(panel)

    arr = np.arange(30, dtype=np.float32).reshape(6, 5) / 30
    path = tmp_path / "data" / "x.npy"
    path.parent.mkdir()
    np.save(path, arr)
    panel.choose_input_path = lambda: str(path)
    click(qtbot, panel.input_load)
    assert wb.doc.train_config.input_file == "x.npy"
    assert np.array_equal(wb.doc.x.asnumpy(), arr)
    assert panel.input_source.text() == "(6, 5) · from x.npy"
    assert form.editor("shape").text() == "6, 5" and not form.editor("std").isVisibleTo(panel)
    assert settings.value("files/lastDir") == str(path.parent.resolve())
    assert panel.input_apply.text() == "Generate" and panel.input_apply.isEnabled()

    # a bad file: a clear message, nothing changed
    bad = tmp_path / "bad.csv"
    bad.write_text("1, 2\n3, oops\n")
    spec, n1 = wb.doc.to_spec(), wb.undo_stack.count()
    panel.choose_input_path = lambda: str(bad)
    click(qtbot, panel.input_load)
    assert panel.input_error.isVisible()
    assert "Cannot load the input from 'bad.csv': line 2, column 2" in panel.input_error.text()
    assert wb.doc.to_spec() == spec and wb.undo_stack.count() == n1
    # cancelling the dialog does nothing
    panel.choose_input_path = lambda: ""
    click(qtbot, panel.input_load)
    assert wb.undo_stack.count() == n1

    # Generate goes back to the generated input
    click(qtbot, panel.input_apply)
    assert wb.doc.train_config.input_file == ""
    assert panel.input_source.text().endswith("generated, uniform, seed 7")


def test_target_shown_for_a_loss_that_needs_one_generated_or_loaded(qtbot, panel, workbench,
                                                                    tmp_path):
    wb = workbench
    build(wb)
    assert not panel.target_box.isVisible()
    pick(qtbot, panel.loss_combo, "l2")
    assert panel.target_box.isVisible()
    form = panel.target_tracked.form
    type_into(qtbot, form.editor("seed"), "9")
    click(qtbot, panel.target_apply)
    assert wb.doc.train_config.target.seed == 9 and wb.undo_stack.undoText() == "Set target"
    # a shape the output cannot take: refused with the document's reason
    n0 = wb.undo_stack.count()
    type_into(qtbot, form.editor("shape"), "3, 4")
    click(qtbot, panel.target_apply)
    assert "output has shape (3, 2)" in panel.target_error.text()
    assert wb.doc.train_config.target.shape is None and wb.undo_stack.count() == n0
    click(qtbot, panel.target_revert)
    assert form.editor("shape").text() == "" and not panel.target_error.isVisible()

    target = np.full((3, 2), 0.5, np.float32)
    np.save(tmp_path / "t.npy", target)
    panel.choose_target_path = lambda: str(tmp_path / "t.npy")
    click(qtbot, panel.target_load)
    assert wb.doc.train_config.target.source == "file"
    assert np.array_equal(wb.doc.target_array(), target)
    assert panel.target_source.text() == "(3, 2) · from t.npy"
    np.save(tmp_path / "wrong.npy", np.zeros((3, 4), np.float32))
    panel.choose_target_path = lambda: str(tmp_path / "wrong.npy")
    click(qtbot, panel.target_load)
    assert "from wrong.npy" in panel.target_error.text()
    assert "(3, 4)" in panel.target_error.text()
    assert wb.doc.train_config.target.file == "t.npy"
    # a loss the loaded target cannot serve: refused, the combo shows the loss still in use
    n1 = wb.undo_stack.count()
    pick(qtbot, panel.loss_combo, "softmax_ce")
    assert wb.doc.train_config.loss == "l2" and wb.undo_stack.count() == n1
    assert panel.loss_combo.currentData() == "l2"
    assert "one class label per sample, shape (3,)" in panel.loss_error.text()


def test_problems_are_shown_under_train_and_disable_it(qtbot, panel, workbench):
    wb = workbench
    assert not panel.train_button.isEnabled()
    assert panel.problem.text() == "There is nothing to train: add a layer first"
    assert wb.run("Add", lambda d: d.add_layer("Dense", {"units": 2}))[0]
    assert "has not been initialized: Initialize first." in panel.problem.text()
    assert not panel.train_button.isEnabled()
    assert wb.run("Initialize", lambda d: d.initialize())[0]
    assert not panel.problem.isVisible() and panel.train_button.isEnabled()
    # the hint before any run, never an empty plot
    assert panel.curve_stack.currentWidget() is panel.curve_hint
    assert panel.plot_widget is None and not panel.progress.isVisible()


# ----------------------------------------------------------------- runs
def test_forward_backward_step_buttons_and_the_current_loss(qtbot, panel, workbench):
    wb = workbench
    build(wb)
    assert not panel.step_buttons["step"].isEnabled()           # no gradients yet
    click(qtbot, panel.step_buttons["forward"])
    assert wb.undo_stack.undoText() == "Forward" and wb.doc.output is not None
    assert panel.loss_value.text().startswith("—")
    click(qtbot, panel.step_buttons["backward"])
    assert wb.undo_stack.undoText() == "Backward"
    assert panel.loss_value.text() == f"{wb.doc.last_loss:.6g}"
    assert panel.step_buttons["step"].isEnabled()
    before = values(wb.doc)
    click(qtbot, panel.step_buttons["step"])
    assert wb.undo_stack.undoText() == "Step"
    assert not all(np.array_equal(a, values(wb.doc)[n]) for n, a in before.items())


def test_run_buttons_trigger_the_window_actions_when_given(qtbot, workbench, runner, settings):
    triggered = []
    actions = {k: QAction(k.title()) for k in ("forward", "backward", "step")}
    for k, a in actions.items():
        a.triggered.connect(lambda _c=False, k=k: triggered.append(k))
    p = TrainingPanel(workbench, runner, settings=settings, actions=actions)
    qtbot.addWidget(p)
    p.show()
    build(workbench)
    n0 = workbench.undo_stack.count()
    click(qtbot, p.step_buttons["forward"])
    actions["step"].setEnabled(False)                    # the window's state is shared
    assert not p.step_buttons["step"].isEnabled()
    click(qtbot, p.step_buttons["backward"])
    assert triggered == ["forward", "backward"]
    assert workbench.undo_stack.count() == n0            # the window runs them, not the panel
    # the window may hand them over later (its actions are made after its panels)
    late = QAction("Step")
    late.triggered.connect(lambda: triggered.append("late step"))
    p.set_actions({"step": late})
    click(qtbot, p.step_buttons["step"])
    assert triggered[-1] == "late step"


def test_train_n_steps_equals_the_engine_bit_for_bit_and_undoes_in_one_step(
        qtbot, panel, workbench, runner, host, tmp_path):
    wb = workbench
    build(wb)
    click(qtbot, panel.step_buttons["forward"])
    pick(qtbot, panel.loss_combo, "l2")
    pick(qtbot, panel.optimizer_combo, "adam")
    type_into(qtbot, panel.optimizer_tracked.form.editor("learning_rate"), "0.01")
    type_into(qtbot, panel.training_tracked.form.editor("batch_size"), "2")
    click(qtbot, panel.optimizer_apply)
    assert wb.undo_stack.undoText() == "Optimizer settings"
    cfg = wb.doc.train_config
    assert (cfg.optimizer, cfg.optimizer_settings["learning_rate"], cfg.batch_size) == \
        ("adam", 0.01, 2)
    path = tmp_path / "before.paramlab"
    fileformat.save(wb.doc, path)
    before = values(wb.doc)
    n0 = wb.undo_stack.count()

    result = train_and_wait(qtbot, panel, runner, 12)
    assert result.completed and result.steps == 12
    expected = engine_run(path, 12, host, "adam", {"learning_rate": 0.01}, 2)
    assert_same(values(wb.doc), expected)

    # the panel shows the run: progress, the whole curve, the outcome, the loss
    assert panel.progress.value() == 12 and panel.progress.maximum() == 12
    assert panel.status.text().startswith("step 12 / 12 · ")
    assert panel.status.text().endswith(f"loss {result.losses[-1]:.4g}")
    assert np.array_equal(panel.curve_data(), np.array(result.losses))
    curve = panel.findChild(QWidget, "lossCurve")
    assert curve is not None and panel.curve_stack.currentWidget() is curve
    x, y = panel.curve.getData()
    assert list(x) == list(range(1, 13)) and np.array_equal(y, result.losses)
    axis = panel.plot.getAxis("bottom").labelText, panel.plot.getAxis("left").labelText
    assert axis == ("step", "loss")
    assert panel.message.text() == result.message and "trained 12 steps" in result.message
    assert panel.message.property("role") == ""
    assert panel.loss_value.text() == f"{wb.doc.last_loss:.6g}"
    assert panel.log_check.isEnabled()                  # an L2 loss is positive
    panel.log_check.setChecked(True)
    assert panel.plot.getAxis("left").logMode

    # one undo reverts the whole run
    assert wb.undo_stack.count() == n0 + 1 and wb.undo_stack.undoText() == "Train 12 steps"
    wb.undo_stack.undo()
    assert_same(values(wb.doc), before)
    # the curve stays until the next run
    assert len(panel.curve_data()) == 12


def test_cancel_stops_after_the_current_step_and_keeps_what_completed(
        qtbot, panel, workbench, runner, host, tmp_path):
    wb = workbench
    build(wb, loss="l2")
    click(qtbot, panel.step_buttons["forward"])
    path = tmp_path / "before.paramlab"
    fileformat.save(wb.doc, path)
    before = values(wb.doc)
    type_into(qtbot, panel.steps_spin, "100000")
    assert panel.train_button.text() == "Train 100\u2009000 steps"
    assert not panel.cancel_button.isEnabled()
    with qtbot.waitSignal(runner.ticked, timeout=30_000,
                          check_params_cb=lambda status: status.step >= 1):
        click(qtbot, panel.train_button)
    assert panel.cancel_button.isEnabled()
    with qtbot.waitSignal(runner.finished, timeout=30_000) as blocker:
        click(qtbot, panel.cancel_button)
    result = blocker.args[0]
    assert result.cancelled and 1 <= result.steps < 100_000
    assert "cancelled after" in panel.message.text()
    assert not panel.cancel_button.isEnabled() and panel.train_button.isEnabled()
    assert panel.progress.value() == result.steps
    expected = engine_run(path, result.steps, host, "sgd", {"learning_rate": 0.1},
                          wb.doc.x.shape[0])
    assert_same(values(wb.doc), expected)
    wb.undo_stack.undo()
    assert_same(values(wb.doc), before)


def test_editing_is_disabled_during_a_run_and_esc_cancels(qtbot, panel, workbench, runner):
    wb = workbench
    build(wb, loss="l2")
    click(qtbot, panel.step_buttons["forward"])
    widgets = editing_widgets(panel)
    assert all(w.isEnabled() for w in widgets)
    type_into(qtbot, panel.steps_spin, "100000")
    with qtbot.waitSignal(runner.ticked, timeout=30_000,
                          check_params_cb=lambda status: status.step >= 1):
        click(qtbot, panel.train_button)
    assert wb.busy == "training"
    assert [w.objectName() for w in widgets if w.isEnabled()] == []
    assert panel.cancel_button.hasFocus()
    assert panel.cancel_button.isEnabled() and panel.log_check.isEnabled()
    # the live line: step, time, ETA, loss
    text = panel.status.text()
    assert text.startswith("step ") and " left · loss " in text or "estimating" in text
    panel.activateWindow()
    qtbot.waitActive(panel)
    with qtbot.waitSignal(runner.finished, timeout=30_000) as blocker:
        qtbot.keyClick(panel.cancel_button, Qt.Key.Key_Escape)
    assert blocker.args[0].cancelled
    assert wb.busy == "" and panel.train_button.hasFocus()
    assert all(w.isEnabled() for w in widgets)
    assert not panel.cancel_button.isEnabled()


def test_divergence_names_the_step_parameter_and_layer(qtbot, panel, workbench, runner, host):
    wb = workbench
    wb.set_document(fileformat.load(EXAMPLES / "chapter_mlp.json", host=host))
    assert wb.run("MyInit", lambda d: d.set_global_init("myinit"))[0]
    assert wb.run("Initialize", lambda d: d.initialize())[0]
    click(qtbot, panel.step_buttons["forward"])
    type_into(qtbot, panel.optimizer_tracked.form.editor("learning_rate"), "1e38")
    click(qtbot, panel.optimizer_apply)
    assert wb.doc.train_config.optimizer_settings["learning_rate"] == 1e38
    result = train_and_wait(qtbot, panel, runner, 20)
    d = result.divergence
    assert d is not None and result.steps == 1 < result.requested
    text = panel.message.text()
    assert text == d.message
    assert text.startswith("Training diverged at step 1 of 20: parameter "
                           "sequential0_dense0_weight (layer 0: Dense(4, relu)) holds Inf")
    assert panel.message.property("role") == "warning" and panel.message.wordWrap()
    assert panel.message.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    assert panel.progress.value() == 1


def test_a_negative_raw_loss_disables_the_log_scale(qtbot, panel, workbench, runner):
    wb = workbench
    assert wb.run("Add", lambda d: d.add_layer("Dense", {"units": 2}))[0]
    assert wb.run("Input", lambda d: d.set_input(distribution="constant", value=-1.0))[0]
    assert wb.run("Ones", lambda d: d.set_global_init("ones"))[0]
    assert wb.run("Initialize", lambda d: d.initialize())[0]
    click(qtbot, panel.step_buttons["forward"])
    type_into(qtbot, panel.optimizer_tracked.form.editor("learning_rate"), "0.001")
    click(qtbot, panel.optimizer_apply)
    panel.log_check.setChecked(True)
    result = train_and_wait(qtbot, panel, runner, 3)
    assert result.completed and all(v < 0 for v in result.losses)
    assert not panel.log_check.isEnabled()
    assert not panel.plot.getAxis("left").logMode
    assert "negative" in panel.log_check.toolTip()


def test_steps_are_remembered_and_a_refused_start_is_explained(qtbot, panel, workbench,
                                                              runner, settings):
    type_into(qtbot, panel.steps_spin, "25")
    assert settings.value("training/steps", type=int) == 25
    assert panel.train_button.text() == "Train 25 steps"
    p = TrainingPanel(workbench, runner, settings=settings)
    qtbot.addWidget(p)
    p.ensure_built()
    assert p.steps_spin.value() == 25
    assert not panel.train()                              # nothing to train
    assert panel.message.text() == "Train: there is nothing to train: add a layer first"
    assert panel.message.property("role") == "error"


def test_a_new_document_resets_the_panel(qtbot, panel, workbench, runner, host):
    build(workbench)
    click(qtbot, panel.step_buttons["forward"])
    train_and_wait(qtbot, panel, runner, 3)
    assert len(panel.curve_data()) == 3
    lr = panel.optimizer_tracked.form.editor("learning_rate")
    type_into(qtbot, lr, "0.7")                           # unapplied: dropped with the model
    workbench.set_document(fileformat.load(EXAMPLES / "chapter_mlp.json", host=host))
    assert lr.text() == "0.1" and not panel.optimizer_apply.isEnabled()
    assert panel.curve_stack.currentWidget() is panel.curve_hint
    assert not panel.message.isVisible() and not panel.progress.isVisible()


def test_collapsed_sections_are_remembered(qtbot, panel, workbench, runner, settings):
    click(qtbot, panel.data_section.header)
    assert not panel.data_section.is_expanded()
    assert panel.data_section.summary.full_text() == "x (3, 5)"
    p = TrainingPanel(workbench, runner, settings=settings)
    qtbot.addWidget(p)
    p.ensure_built()
    assert not p.data_section.is_expanded() and p.loss_section.is_expanded()


def test_format_status():
    assert format_status(37, 100, 2.14, "about 3 s left", 0.0123, running=True) == \
        "step 37 / 100 · 2.1 s · about 3 s left · loss 0.0123"
    assert format_status(37, 100, 2.1, "about 3 s left", 0.0123, running=True,
                         cancelling=True) == \
        "step 37 / 100 · 2.1 s · cancelling after this step… · loss 0.0123"
    assert format_status(1500, 1500, 75, "", None, running=False) == \
        "step 1\u2009500 / 1\u2009500 · 1 min 15 s"


def test_built_when_first_shown_with_the_last_run(qtbot, workbench, runner, settings):
    """The window makes the panel at start-up, hidden: it builds its widgets when shown, and
    then shows the run that happened meanwhile."""
    build(workbench, loss="l2")
    assert workbench.run("Forward", lambda d: d.forward())[0]
    p = TrainingPanel(workbench, runner, settings=settings)
    qtbot.addWidget(p)
    assert p.findChild(QWidget, "trainButton") is None
    with qtbot.waitSignal(runner.finished, timeout=60_000) as blocker:
        assert runner.start(4)
    result = blocker.args[0]
    assert p.findChild(QWidget, "trainButton") is None
    p.resize(380, 900)
    p.show()
    qtbot.waitExposed(p)
    assert p.findChild(QWidget, "trainButton").isVisible()
    assert np.array_equal(p.curve_data(), result.losses)
    assert p.curve_stack.currentWidget() is p.findChild(QWidget, "lossCurve")
    assert p.message.text() == result.message and p.progress.value() == 4
    run, config = p.splitter.sizes()[1], p.splitter.sizes()[0]
    assert 0 < run <= 0.56 * (run + config)


def test_a_dock_behind_another_tab_builds_when_its_tab_is_picked(qtbot, workbench, runner,
                                                                 settings):
    window = QMainWindow()
    qtbot.addWidget(window)
    window.setCentralWidget(QWidget())
    front = QDockWidget("Inspector", window)
    front.setObjectName("front")
    front.setWidget(QWidget())
    dock = QDockWidget("Training", window)
    dock.setObjectName("training")
    p = TrainingPanel(workbench, runner, settings=settings)
    dock.setWidget(p)
    area = Qt.DockWidgetArea.RightDockWidgetArea
    window.addDockWidget(area, front)
    window.addDockWidget(area, dock)
    window.tabifyDockWidget(front, dock)
    front.raise_()
    window.resize(900, 700)
    window.show()
    qtbot.waitExposed(window)
    assert not p._built and p.findChild(QWidget, "trainButton") is None
    dock.raise_()
    qtbot.waitUntil(lambda: p._built)
    button = p.findChild(QWidget, "trainButton")
    qtbot.waitUntil(button.isVisible)
    assert p.problem.text() == "There is nothing to train: add a layer first"


def test_pyqtgraph_is_not_needed_to_build_the_panel():
    """The panel module imports no pyqtgraph (the window builds it at start-up)."""
    import subprocess
    import sys
    code = ("import sys; import app.ui.training_panel; "
            "print('pyqtgraph' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"

