"""SignalPanel: per-layer mean/std of activations and gradients for the current input, the
exploding / healthy / vanishing verdict, "Forward first" while deferred, debounced recompute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

import app
from app.document import Document, analysis, fileformat
from app.ui import signal_panel as signal_module
from app.ui.signal_panel import SignalPanel, format_factor, signal_verdict
from app.ui.workbench import Workbench

EXAMPLES = Path(app.__file__).resolve().parent.parent / "resources" / "examples"


def run(wb, text, fn):
    ok, result = wb.run(text, fn)
    assert ok, result
    return result


def relu_stack(host, init):
    """The brief's net: four Dense(32, relu), input (16, 32), initialized (still deferred)."""
    wb = Workbench(host, Document(host=host))
    for _ in range(4):
        run(wb, "Add", lambda d: d.add_layer("Dense", {"units": 32, "activation": "relu"}))
    run(wb, "Input", lambda d: d.set_input(shape=(16, 32)))
    run(wb, "Init", lambda d: d.set_global_init(init))
    run(wb, "Initialize", lambda d: d.initialize())
    return wb


def make_panel(qtbot, wb) -> SignalPanel:
    panel = SignalPanel(wb)
    qtbot.addWidget(panel)
    panel.resize(640, 460)
    panel.show()
    panel.flush()
    return panel


def test_myinit_explodes_after_forward_first_and_xavier_does_not(qtbot, host):
    wb = relu_stack(host, "myinit")
    panel = make_panel(qtbot, wb)
    assert panel.objectName() == "signalPanel"
    # deferred: words and a button, no plot
    assert panel.state == "message" and panel.stack.currentIndex() == 0
    assert "first forward pass" in panel.message.text()
    assert panel.forward_button.isVisible()
    qtbot.mouseClick(panel.forward_button, Qt.MouseButton.LeftButton)
    assert wb.undo_stack.undoText() == "Forward"
    panel.flush()
    assert panel.state == "plot"
    assert panel.kind == "exploding"
    assert panel.verdict().startswith("activations grow ")
    assert panel.verdict().endswith("from layer 0 to 3: exploding")
    assert panel.verdict_label.property("verdict") == "exploding"
    stds = [s.act_std for s in panel.signals]
    assert stds[-1] / stds[0] > 1e3
    assert "Gradients grow" in panel.gradient_label.text()

    run(wb, "Init", lambda d: d.set_global_init("xavier"))
    run(wb, "Reinitialize", lambda d: d.initialize(force_reinit=True))
    panel.flush()
    assert panel.kind == "healthy"
    assert "exploding" not in panel.verdict()
    assert panel.verdict().endswith(": healthy")
    stds = [s.act_std for s in panel.signals]
    assert 0.1 < stds[-1] / stds[0] < 10


def test_plotted_series_are_the_analysis_numbers(qtbot, host):
    wb = relu_stack(host, "xavier")
    run(wb, "Forward", lambda d: d.forward())
    panel = make_panel(qtbot, wb)
    doc = wb.doc
    titles = [doc.layer_title(s.uid) for s in doc.layers]
    ref = analysis.signal_propagation(doc.net, doc.x, titles)
    for key, attr in (("act_std", "act_std"), ("grad_std", "grad_std"),
                      ("act_mean", "act_mean"), ("grad_mean", "grad_mean")):
        item = panel.curves[key]
        want = np.array([getattr(s, attr) for s in ref])
        if key.endswith("std"):
            want = np.where(want > 0, want, np.nan)     # a std of 0 has no log-scale place
        np.testing.assert_allclose(item.xData, np.arange(4))
        np.testing.assert_allclose(item.yData, want, equal_nan=True)
    # std on a log scale, the last layer's gradient (ones) has std 0: not drawn
    assert panel.std_plot.getAxis("left").logMode
    assert np.isnan(panel.curves["grad_std"].yData[-1])
    # the x axis is labelled by layer
    ticks = panel.mean_plot.getAxis("bottom")._tickLevels[0]
    assert [t[0] for t in ticks] == [0.0, 1.0, 2.0, 3.0]
    assert all(label in (title, title.split("(")[0], str(i))
               for i, ((_x, label), title) in enumerate(zip(ticks, titles)))
    assert "Input x (16, 32)" in panel.input_label.text()


def test_computing_the_signal_changes_nothing(qtbot, host):
    wb = Workbench(host, fileformat.load(EXAMPLES / "chapter_shared.json", host))
    run(wb, "Initialize", lambda d: d.initialize())
    run(wb, "Backward", lambda d: d.backward())
    doc = wb.doc
    before = {n: (p.data().asnumpy().copy(), p.grad().asnumpy().copy(), p._data._fresh_grad)
              for n, p in doc.params().items()}
    snaps = len(doc.history.snapshots)
    undo = wb.undo_stack.count()
    panel = make_panel(qtbot, wb)
    assert panel.state == "plot"
    for n, p in doc.params().items():
        data, grad, fresh = before[n]
        assert p.data().asnumpy().tobytes() == data.tobytes()
        assert p.grad().asnumpy().tobytes() == grad.tobytes()
        assert p._data._fresh_grad == fresh
    assert len(doc.history.snapshots) == snaps and wb.undo_stack.count() == undo


def test_a_burst_of_changes_computes_once(qtbot, host, monkeypatch):
    wb = relu_stack(host, "xavier")
    run(wb, "Forward", lambda d: d.forward())
    panel = make_panel(qtbot, wb)
    calls = []
    real = analysis.signal_propagation

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(signal_module.analysis, "signal_propagation", counting)
    for seed in (1, 2, 3):
        run(wb, "Input", lambda d, s=seed: d.set_input(seed=s))
    run(wb, "Reinitialize", lambda d: d.initialize(force_reinit=True))
    assert calls == [] and panel.pending
    qtbot.waitUntil(lambda: not panel.pending)
    assert calls == [1]
    assert "seed 3" in panel.input_label.text()


def test_uninitialized_and_empty_networks_are_explained(qtbot, host):
    wb = Workbench(host, Document(host=host))
    panel = make_panel(qtbot, wb)
    assert panel.state == "message" and "No layers yet" in panel.message.text()
    run(wb, "Add", lambda d: d.add_layer("Dense", {"units": 4}))
    panel.flush()
    assert "initialize the network" in panel.message.text()
    assert panel.forward_button.isHidden()


def test_verdict_words():
    S = analysis.LayerSignal
    grow = [S(0, "a", 0, 1.0, 0, 1), S(1, "b", 0, 1234.5, 0, 1)]
    assert signal_verdict(grow) == ("exploding",
                                    "activations grow 1.2e3× from layer 0 to 1: exploding")
    shrink = [S(0, "a", 0, 1.0, 0, 1), S(1, "b", 0, 0.001, 0, 1)]
    assert signal_verdict(shrink) == ("vanishing",
                                      "activations shrink 1e3× from layer 0 to 1: vanishing"
                                      .replace("1e3", format_factor(1000.0)))
    ok = [S(0, "a", 0, 1.0, 0, 1), S(1, "b", 0, 3.0, 0, 1)]
    assert signal_verdict(ok)[0] == "healthy"
    assert "within 10×" in signal_verdict(ok)[1]
    inf = [S(0, "a", 0, 1.0, 0, 1), S(1, "b", np.inf, np.nan, 0, 1)]
    assert signal_verdict(inf)[0] == "exploding"


def test_exports_png_and_svg(qtbot, host, tmp_path):
    wb = relu_stack(host, "xavier")
    run(wb, "Forward", lambda d: d.forward())
    panel = make_panel(qtbot, wb)
    assert panel.plots.scene().contextMenu == [panel.export_action]
    assert panel.export(tmp_path / "signal.png").stat().st_size > 1000
    assert "<svg" in (panel.export(tmp_path / "signal.svg")).read_text()
