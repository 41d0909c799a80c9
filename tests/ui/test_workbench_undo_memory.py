"""The undo history keeps within a memory budget by forgetting its oldest steps."""

from __future__ import annotations

import numpy as np

from app.ui.workbench import Workbench


def test_oldest_steps_are_forgotten_and_the_rest_still_undo(qtbot, host):
    wb = Workbench(host)
    doc = wb.doc
    wb.run("input", lambda d: d.set_input(shape=(4, 64)))
    wb.run("layer", lambda d: d.add_layer("Dense", {"units": 256}))
    wb.run("init", lambda d: (d.initialize(), d.forward()))
    wb.run("loss", lambda d: d.set_training(optimizer="sgd",
                                            optimizer_settings={"learning_rate": 0.01}))
    wb.undo_stack.setClean()
    clean_values = {n: p.data().asnumpy().copy() for n, p in doc.params().items()}
    per_step = 2 * 256 * 64 * 4                          # a run's new values and gradients
    wb.UNDO_BUDGET = 6 * per_step
    for _ in range(12):
        before = doc.capture()
        doc.train(1)
        wb.push_captured("Train 1 step", before, doc.capture(latest_is_current=True))
        assert wb.undo_bytes() <= wb.UNDO_BUDGET
    stack = wb.undo_stack
    assert 2 <= stack.count() < 16 and stack.index() == stack.count()
    assert all(stack.text(i) == "Train 1 step" for i in range(stack.count()))
    assert not stack.isClean() and stack.cleanIndex() == -1   # the saved state was dropped
    assert any("oldest step" in e.message and "forgotten" in e.message
               for e in doc.log_entries)
    # what is left still undoes exactly, one run at a time
    values = []
    for i in range(stack.count()):
        values.append({n: p.data().asnumpy().copy() for n, p in doc.params().items()})
        stack.undo()
    stack.redo()
    for n, p in doc.params().items():
        assert np.array_equal(p.data().asnumpy(), values[-1][n])
        assert not np.array_equal(p.data().asnumpy(), clean_values[n])
    stack.clear()
