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


def test_the_generation_moves_on_every_push_even_when_trimming_keeps_the_index(qtbot, host):
    """Autosave keys on it: the index alone repeats once old steps are forgotten."""
    wb = Workbench(host)
    doc = wb.doc
    wb.run("input", lambda d: d.set_input(shape=(4, 64)))
    wb.run("layer", lambda d: d.add_layer("Dense", {"units": 256}))
    wb.run("init", lambda d: (d.initialize(), d.forward()))
    wb.UNDO_BUDGET = 3 * 2 * 256 * 64 * 4
    seen = []
    for _ in range(8):
        before = doc.capture()
        doc.train(1)
        wb.push_captured("Train 1 step", before, doc.capture(latest_is_current=True))
        seen.append((wb.undo_stack.index(), wb.generation))
    indexes, generations = zip(*seen)
    assert len(set(indexes)) < len(indexes)                  # the index repeats...
    assert list(generations) == sorted(set(generations))     # ...the generation never does
    assert sum("forgotten" in e.message for e in doc.log_entries) == 1   # said once
    wb.undo_stack.clear()


def test_captures_do_not_keep_an_old_network_alive(qtbot, host):
    import gc
    import weakref
    wb = Workbench(host)
    doc = wb.doc
    wb.run("layer", lambda d: (d.set_input(shape=(4, 8)), d.add_layer("Dense", {"units": 6}),
                               d.initialize(), d.forward()))
    wb.run("adam", lambda d: d.set_optimizer("adam"))
    before = doc.capture()
    doc.train(2)
    wb.push_captured("Train 2 steps", before, doc.capture(latest_is_current=True))
    old_trainer = weakref.ref(doc._trainer)
    old_weight = weakref.ref(next(iter(doc.params().values())))
    wb.run("Add", lambda d: d.add_layer("Dense", {"units": 2}))   # rebuilds the network
    gc.collect()
    assert old_trainer() is None and old_weight() is None
    wb.undo_stack.undo()                          # the optimizer state comes back by name
    assert doc._trainer is not None and doc._trainer.optimizer.num_update == 2
    wb.undo_stack.clear()
