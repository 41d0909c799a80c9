"""StepPreviewDialog: the Δ heatmaps of one optimizer step before it is applied; Apply applies
exactly the previewed step, Discard changes nothing, no gradients → "Backward first"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

import app
from app.document import analysis, fileformat
from app.ui.step_preview import StepPreviewDialog
from app.ui.workbench import Workbench

EXAMPLES = Path(app.__file__).resolve().parent.parent / "resources" / "examples"


def run(wb, text, fn):
    ok, result = wb.run(text, fn)
    assert ok, result
    return result


@pytest.fixture
def shared_wb(qapp, host):
    """chapter_shared after initialize, forward and backward: fresh gradients."""
    wb = Workbench(host, fileformat.load(EXAMPLES / "chapter_shared.json", host))
    run(wb, "Initialize", lambda d: d.initialize())
    run(wb, "Forward", lambda d: d.forward())
    run(wb, "Backward", lambda d: d.backward())
    return wb


def make_dialog(qtbot, wb) -> StepPreviewDialog:
    dialog = StepPreviewDialog(wb)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def state_of(wb):
    return {n: (p.data().asnumpy().tobytes(), p.grad().asnumpy().tobytes(),
                p._data._fresh_grad) for n, p in wb.doc.params().items()}


def test_apply_applies_exactly_the_previewed_step(qtbot, shared_wb):
    wb = shared_wb
    dialog = make_dialog(qtbot, wb)
    assert dialog.objectName() == "stepPreviewDialog"
    assert dialog.status == "ok" and dialog.apply_button.isEnabled()
    preview = {n: (b.copy(), a.copy()) for n, (b, a) in dialog.preview.items()}
    deltas = {n: d.copy() for n, d in dialog.deltas.items()}
    assert set(preview) == set(wb.doc.params())          # the shared parameter once
    assert any(np.abs(d).max() > 0 for d in deltas.values())
    undo_before = wb.undo_stack.count()

    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted and dialog.applied
    assert wb.undo_stack.count() == undo_before + 1 and wb.undo_stack.undoText() == "Step"
    for name, p in wb.doc.params().items():
        before, after = preview[name]
        now = p.data().asnumpy()
        assert now.dtype == after.dtype
        assert now.tobytes() == after.tobytes(), name        # bit-identical
        np.testing.assert_array_equal(now - before, deltas[name])
    assert wb.doc.history.snapshots[-1].label == "step"

    wb.undo_stack.undo()
    for name, p in wb.doc.params().items():
        assert p.data().asnumpy().tobytes() == preview[name][0].tobytes()


def test_discard_changes_nothing(qtbot, shared_wb):
    wb = shared_wb
    before = state_of(wb)
    snaps = [s.id for s in wb.doc.history.snapshots]
    undo = wb.undo_stack.count()
    dialog = make_dialog(qtbot, wb)
    assert dialog.preview is not None
    qtbot.mouseClick(dialog.discard_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Rejected and not dialog.applied
    assert state_of(wb) == before
    assert [s.id for s in wb.doc.history.snapshots] == snaps
    assert wb.undo_stack.count() == undo
    # and a real step afterwards still runs on the same, fresh gradients
    run(wb, "Step", lambda d: d.step())


def test_heatmaps_show_the_delta_on_a_symmetric_scale(qtbot, shared_wb):
    dialog = make_dialog(qtbot, shared_wb)
    assert set(dialog.images) == set(dialog.deltas)
    for name, img in dialog.images.items():
        delta = dialog.deltas[name]
        np.testing.assert_array_equal(img.image, analysis.display_matrix(delta))
        m = float(np.abs(delta).max())
        lo, hi = dialog.levels[name]
        assert lo == -hi
        assert hi == pytest.approx(m if m > 0 else 1.0)
        assert tuple(img.levels) == (lo, hi)
    bias = "sequential0_dense3_bias"          # d sum(out)/d b = 1 per row: Δ = -lr
    np.testing.assert_allclose(dialog.deltas[bias], -0.1, rtol=1e-6)
    assert "largest |Δ| = 0.1 in dense3_bias" in dialog.summary.text()
    assert "sgd" in dialog.info.text() and "learning rate 0.1" in dialog.info.text()
    assert "batch size 3 (the input's first dimension)" in dialog.info.text()


def test_without_gradients_it_offers_backward_first(qtbot, host):
    wb = Workbench(host, fileformat.load(EXAMPLES / "chapter_shared.json", host))
    run(wb, "Initialize", lambda d: d.initialize())
    run(wb, "Forward", lambda d: d.forward())
    dialog = make_dialog(qtbot, wb)
    assert dialog.status == "stale" and dialog.preview is None
    assert dialog.stack.currentIndex() == 0
    assert "No fresh gradients" in dialog.message.text()
    assert dialog.backward_button.isVisible() and not dialog.apply_button.isEnabled()
    errors = [e for e in wb.doc.log_entries if e.level == "error"]
    assert errors == []                       # checking does not try (and log) a failed step

    qtbot.mouseClick(dialog.backward_button, Qt.MouseButton.LeftButton)
    assert wb.undo_stack.undoText() == "Backward"
    assert dialog.status == "ok" and dialog.stack.currentIndex() == 1
    assert dialog.apply_button.isEnabled()

    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    # after a step the gradients are used up: a new dialog says so
    again = make_dialog(qtbot, wb)
    assert again.status == "stale" and "the last step used them" in again.message.text()


def test_uninitialized_network_is_explained(qtbot, host):
    wb = Workbench(host, fileformat.load(EXAMPLES / "chapter_mlp.json", host))
    dialog = make_dialog(qtbot, wb)
    assert dialog.status == "uninitialized"
    assert "initialize the network" in dialog.message.text()
    assert dialog.backward_button.isHidden() and not dialog.apply_button.isEnabled()


def test_exports_png_and_svg(qtbot, shared_wb, tmp_path):
    dialog = make_dialog(qtbot, shared_wb)
    assert dialog.plots.scene().contextMenu == [dialog.export_action]
    assert dialog.export(tmp_path / "step.png").stat().st_size > 1000
    assert "<svg" in dialog.export(tmp_path / "step.svg").read_text()
