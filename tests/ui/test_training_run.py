"""Training in the background from the window: the runner, the busy state, undo, live frames.

The Training panel's own widgets are tested in test_training_panel.py; here the window's part:
``MainWindow.runner`` (a worker thread), what a run disables, one undo step per run, the
divergence message, live heatmap frames, closing the window mid-run."""

from __future__ import annotations

import numpy as np
import pytest

from app.document import Document
from app.ui.training_run import RunStatus


def build(doc: Document, lr=0.1, optimizer="adam"):
    doc.set_input(shape=(5, 8), distribution="normal", seed=2)
    doc.add_layer("Dense", {"units": 8, "activation": "tanh"})
    doc.add_layer("Dense", {"units": 8, "activation": "relu"})
    doc.link(doc.layers[1].uid, doc.layers[0].uid)      # the chapter's shared layers
    doc.add_layer("Dense", {"units": 3})
    doc.set_training(loss="softmax_ce", optimizer=optimizer,
                     optimizer_settings={"learning_rate": lr},
                     target={"distribution": "integers", "low": 0.0, "high": 3.0, "seed": 4})
    doc.initialize()
    doc.forward()


def values(doc):
    return {n: p.data().asnumpy().copy() for n, p in doc.params().items()}


def assert_same(a, b):
    assert list(a) == list(b)
    for n in a:
        assert np.array_equal(a[n], b[n]), n


@pytest.fixture
def trained_window(window, host):
    build(window.wb.doc)
    window.wb.undo_stack.clear()
    return window


def run_and_wait(qtbot, window, n):
    with qtbot.waitSignal(window.runner.finished, timeout=60_000) as blocker:
        assert window.runner.start(n)
    return blocker.args[0]


def test_a_run_equals_the_engine_run_and_is_one_undo_step(qtbot, trained_window, host):
    window = trained_window
    doc = window.wb.doc
    before = values(doc)
    result = run_and_wait(qtbot, window, 25)
    assert result.completed and result.steps == 25
    direct = Document(host=host)
    build(direct)
    direct.train(25)
    assert_same(values(doc), values(direct))
    stack = window.wb.undo_stack
    assert stack.count() == 1 and stack.text(0) == "Train 25 steps"
    assert not window.wb.busy and window.action_initialize.isEnabled()
    assert window.action_undo.isEnabled()
    after = values(doc)
    stack.undo()
    assert_same(values(doc), before)
    stack.redo()
    assert_same(values(doc), after)
    # the run's snapshots are in the timeline, labelled by step
    labels = [s.label for s in doc.history.snapshots]
    assert "train step 10" in labels and labels[-1].startswith("redo")


def test_undo_then_train_again_ends_where_one_longer_run_ends(qtbot, trained_window, host):
    """Undo puts back Adam's moments with the parameters, so 5 + (10, undone) + 10 = 15."""
    window = trained_window
    run_and_wait(qtbot, window, 5)
    run_and_wait(qtbot, window, 10)
    window.wb.undo_stack.undo()
    run_and_wait(qtbot, window, 10)
    direct = Document(host=host)
    build(direct)
    direct.train(15)
    assert_same(values(window.wb.doc), values(direct))
    assert window.wb.doc.replay_steps == 15


def test_while_running_editing_is_refused_and_disabled(qtbot, trained_window):
    window = trained_window
    wb = window.wb
    seen = []

    def on_tick(status: RunStatus):
        if status.step >= 1 and not seen:
            seen.append((wb.busy, window.action_initialize.isEnabled(),
                         window.action_undo.isEnabled(), window.layers_panel.isEnabled(),
                         window.inspector_panel.isEnabled(),
                         window.action_cancel_training.isEnabled()))
            ok, message = wb.run("Add Dense", lambda d: d.add_layer("Dense"))
            seen.append((ok, message))
            window.console_panel.execute("doc.add_layer('Dense')")
            seen.append(window.console_panel.text())
            window.runner.cancel()
    window.runner.ticked.connect(on_tick)
    result = run_and_wait(qtbot, window, 1_000_000)
    state, (ok, message), console = seen
    assert state == ("training", False, False, False, False, True)
    assert not ok and "training" in message and "Cancel Training" in message
    assert "Not run: the model is training" in console
    assert len(wb.doc.layers) == 3                      # nothing was added
    assert result.cancelled and 1 <= result.steps < 1_000_000
    assert not wb.busy and window.layers_panel.isEnabled()
    assert window.action_initialize.isEnabled() and not window.action_cancel_training.isEnabled()


def test_cancel_keeps_what_completed_exactly(qtbot, trained_window, host):
    window = trained_window
    window.runner.ticked.connect(lambda s: s.step >= 3 and window.runner.cancel())
    result = run_and_wait(qtbot, window, 1_000_000)
    assert result.cancelled and result.steps >= 3
    assert "cancelled after" in result.message
    direct = Document(host=host)
    build(direct)
    direct.train(result.steps)
    assert_same(values(window.wb.doc), values(direct))
    assert window.wb.undo_stack.text(0) == f"Train {result.steps} steps"


def test_a_refused_run_changes_nothing(qtbot, window):
    doc = window.wb.doc
    assert not window.runner.start(5)                   # no layers
    window.wb.run("Add", lambda d: d.add_layer("Dense", {"units": 2}))
    with qtbot.waitSignal(window.runner.refused) as blocker:
        assert not window.runner.start(5)
    assert "not been initialized" in blocker.args[0]
    assert not window.wb.busy and window.wb.undo_stack.count() == 1
    assert any("Train:" in e.message and "Initialize first" in e.message
               for e in doc.log_entries)


def test_divergence_is_told_with_step_parameter_and_layer(qtbot, trained_window):
    window = trained_window
    # the chapter's MyInit weights (|w| up to 10) and a huge step overflow a weight at step 1
    window.wb.run("myinit", lambda d: (d.set_global_init("myinit"),
                                       d.initialize(force_reinit=True)))
    window.wb.run("lr", lambda d: d.set_optimizer("sgd", {"learning_rate": 1e38}))
    told = []
    window.tell = lambda level, title, text: told.append((level, title, text))
    result = run_and_wait(qtbot, window, 50)
    d = result.divergence
    assert d is not None and d.step == 1 and result.steps < 50
    assert d.where == "parameter" and d.kind in ("Inf", "NaN and Inf")
    level, title, text = told[-1]
    assert (level, title) == ("warning", "Training Diverged")
    assert "step 1 of 50" in text and d.parameter in text and d.layer in text
    assert "Lower the learning rate" in text
    assert "diverged at step 1" in window.statusBar().currentMessage()


def test_live_heatmaps_show_frames_while_training(qtbot, trained_window):
    window = trained_window
    index = next(i for i in range(window.center_tabs.count())
                 if window.center_tabs.tabText(i) == "Heatmaps")
    window.center_tabs.setCurrentIndex(index)
    panel = window.heatmap_panel
    labels = []

    def on_tick(status):
        if status.frame is not None or panel.live:
            labels.append(panel.pair_label.text())
        if len(labels) >= 2:
            window.runner.cancel()
    window.runner.ticked.connect(on_tick)
    result = run_and_wait(qtbot, window, 1_000_000)
    live = [t for t in labels if "live: step" in t]
    assert live, labels
    assert result.cancelled
    # afterwards the panel is back on the timeline: the run's last snapshot
    assert not panel.live
    assert f"train step {result.steps} (cancelled)" in panel.pair_label.text()


def test_closing_the_window_mid_run_stops_it_and_keeps_the_steps(qtbot, trained_window):
    window = trained_window
    ticks = []
    window.runner.ticked.connect(lambda s: ticks.append(s.step))
    assert window.runner.start(1_000_000)
    qtbot.waitUntil(lambda: any(t >= 1 for t in ticks), timeout=30_000)
    from PySide6.QtWidgets import QMessageBox
    window.answers["quit_while_training"] = QMessageBox.StandardButton.No
    window.close()                                      # "No": the run goes on
    assert window.isVisible() and window.runner.running
    window.answers["quit_while_training"] = QMessageBox.StandardButton.Yes
    window.answers["save_changes"] = QMessageBox.StandardButton.Discard
    window.close()
    assert not window.runner.running and not window.wb.busy
    result = window.runner.last_result
    assert result.cancelled and result.steps >= 1
    assert window.wb.undo_stack.text(0) == f"Train {result.steps} steps"


def test_analysis_tabs_wait_for_the_run_and_catch_up(qtbot, trained_window):
    """Signal runs its own forward/backward on the model: never while a run holds it."""
    window = trained_window
    window.ensure_panels()
    signal, dist = window.signal_panel, window.distribution_panel
    calls = []
    from app.document import analysis
    real = analysis.signal_propagation
    import app.ui.signal_panel as sp
    sp_real = getattr(sp, "signal_propagation", None)

    def spy(*args, **kwargs):
        calls.append(window.wb.busy)
        return real(*args, **kwargs)
    if sp_real is not None:
        sp.signal_propagation = spy
    analysis.signal_propagation = spy
    try:
        index = next(i for i in range(window.center_tabs.count())
                     if window.center_tabs.tabText(i) == "Signal")
        window.center_tabs.setCurrentIndex(index)
        window.wb.set_busy("training")                  # as during a run
        signal._recompute()
        dist._render()
        assert "updates when the run ends" in signal.message.text()
        assert "updates when the run ends" in dist.message.text()
        assert "training" not in calls
        window.wb.set_busy("")
        qtbot.waitUntil(lambda: signal.state == "plot", timeout=5000)
        assert calls and "training" not in calls
    finally:
        analysis.signal_propagation = real
        if sp_real is not None:
            sp.signal_propagation = sp_real


def test_files_and_plugins_are_refused_during_a_run(qtbot, trained_window):
    window = trained_window
    wb = window.wb
    doc = wb.doc
    wb.set_busy("training")
    try:
        assert not window.menu_examples.isEnabled() and \
            not window.toolbar_add_dense.isEnabled()
        assert not window.open_example("chapter_mlp.json")
        assert wb.doc is doc
        window.reload_plugins()
        assert any("Reload plugins: the model is training" in e.message
                   for e in doc.log_entries)
    finally:
        wb.set_busy("")
    assert window.menu_examples.isEnabled() and window.toolbar_add_dense.isEnabled()


def test_a_late_finished_signal_does_not_end_the_next_run(qtbot, trained_window):
    window = trained_window
    runner = window.runner
    assert runner.start(3)
    assert runner.wait()                               # handled here, its signal still queued
    assert runner.start(50)
    with qtbot.waitSignal(runner.finished, timeout=60_000) as blocker:
        pass
    result = blocker.args[0]
    assert result.completed and result.steps == 50
    assert not window.wb.busy and window.wb.undo_stack.text(1) == "Train 50 steps"


def test_workers_are_freed_after_their_run(qtbot, trained_window):
    import gc
    import weakref

    from PySide6.QtCore import QCoreApplication, QEvent
    window = trained_window
    refs = []
    window.runner.started.connect(lambda n: refs.append(weakref.ref(window.runner._worker)))
    for _ in range(3):
        run_and_wait(qtbot, window, 2)
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    assert len(refs) == 3 and all(r() is None for r in refs)


def test_a_run_stopped_at_step_1_after_deferred_init_is_still_one_undo_step(qtbot, window):
    """Step 1's forward initializes the deferred weights (random draws), then the loss is
    Inf: no step applied, but the model changed — undo puts it back."""
    wb = window.wb
    wb.run("build", lambda d: (d.set_input(distribution="constant", value=1e38),
                               d.add_layer("Dense", {"units": 4}), d.set_global_init("myinit"),
                               d.initialize()))
    before = wb.doc.capture()
    assert any(p.state == "deferred" for p in wb.doc.params().values())
    result = run_and_wait(qtbot, window, 5)
    assert result.steps == 0 and result.divergence is not None
    assert "initialized the deferred parameters first" in result.message
    stack = wb.undo_stack
    assert stack.text(stack.count() - 1) == "Train (stopped at step 1)"
    stack.undo()
    assert wb.doc.state_equals(before)
