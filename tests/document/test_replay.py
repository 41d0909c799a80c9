"""The replay record: when the document says the exported script reproduces its parameters
(``doc.replay_steps`` is a number), running that script gives them bit for bit; when it cannot
(set_data, an import, an extra Backward drawing Dropout masks, settings changed mid-training),
it says so and why.

The scripts run in this process (``exec``): they seed the engine's stream themselves, and the
conftest-style fixture puts the stream back afterwards. A fresh-process run is in
test_export_python.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from app.document import Document, DocumentError, fileformat
from app.document.export_python import script_for
from app.document.interchange import export_npz, import_params
from app.engine import random as engine_random
from app.pluginhost import PluginHost

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def host():
    return PluginHost(plugin_dirs=[ROOT / "plugins"], default_dirs=False, entry_points=False)


@pytest.fixture(autouse=True)
def _keep_stream():
    state = engine_random.getstate()
    yield
    engine_random.setstate(state)


def replayed(doc) -> dict:
    """Run the exported script for ``doc.replay_steps`` steps in-process; its parameters."""
    text = script_for(doc, steps=doc.replay_steps)
    namespace = {"__name__": "__exported__"}
    argv = sys.argv
    sys.argv = ["exported.py"]                       # no save
    try:
        exec(compile(text, "exported.py", "exec"), namespace)  # noqa: S102 - our own script
    finally:
        sys.argv = argv
    return {name: p.data().asnumpy() for name, p in namespace["net"].collect_params().items()}


def same_as_script(doc) -> bool:
    mine = {n: p.data().asnumpy() for n, p in doc.params().items()}
    theirs = replayed(doc)
    return list(mine) == list(theirs) and all(np.array_equal(mine[n], theirs[n])
                                              for n in mine)


def model(host, dropout=False, deferred=True) -> Document:
    doc = Document(host=host)
    doc.add_layer("Dense", {"units": 6, "activation": "tanh",
                            **({} if deferred else {"in_units": 5})})
    if dropout:
        doc.add_layer("Dropout", {"rate": 0.25})
    doc.add_layer("Dense", {"units": 3})
    doc.set_input(shape=(4, 5), distribution="normal", seed=3)
    doc.set_training(loss="l2", optimizer="adam", optimizer_settings={"learning_rate": 0.01},
                     target={"distribution": "uniform", "low": -1.0, "high": 1.0, "seed": 9})
    return doc


def test_a_fresh_document_has_no_recipe_yet(host):
    doc = model(host)
    assert doc.replay_steps is None
    assert "not initialized" in doc.replay_note


@pytest.mark.parametrize("dropout", [False, True])
def test_initialize_forward_train_backward_step_is_the_recipe(host, dropout):
    doc = model(host, dropout=dropout)
    doc.initialize()
    assert doc.replay_steps == 0
    doc.forward()
    doc.train(3)
    doc.backward()
    doc.step()
    doc.train(2)
    assert doc.replay_steps == 6 and doc.replay_note == ""
    assert same_as_script(doc)


def test_backward_twice_with_dropout_breaks_the_recipe_but_not_without(host):
    plain = model(host)
    plain.initialize()
    plain.forward()
    plain.backward()
    plain.backward()                 # nothing drawn: the same gradients again
    plain.step()
    assert plain.replay_steps == 1 and same_as_script(plain)

    doc = model(host, dropout=True)
    doc.initialize()
    doc.forward()
    doc.backward()
    doc.backward()                   # new Dropout masks the script never draws
    assert doc.replay_steps is None and "Dropout" in doc.replay_note
    doc.step()
    assert doc.replay_steps is None


def test_hand_edits_break_it_a_refused_step_does_not(host, tmp_path):
    doc = model(host)
    doc.initialize()
    doc.forward()
    doc.backward()
    doc.step()
    with pytest.raises(DocumentError, match="has not been updated by backward"):
        doc.step()                   # stale gradients: refused, as Gluon does
    assert doc.replay_steps == 1

    doc = model(host)
    doc.initialize()
    doc.forward()
    name = next(iter(doc.params()))
    doc.set_param_data(name, np.zeros(doc.params()[name].shape, np.float32))
    assert doc.replay_steps is None and f"{name} was set by hand" in doc.replay_note

    doc = model(host)
    doc.initialize()
    doc.forward()
    export_npz(doc, tmp_path / "p.npz")
    import_params(doc, tmp_path / "p.npz")
    assert doc.replay_steps is None and "imported from p.npz" in doc.replay_note


def test_settings_may_change_before_training_but_not_during_it(host):
    doc = model(host)
    doc.initialize()
    doc.forward()
    doc.set_optimizer_settings(learning_rate=0.05)   # no step yet: the script uses it
    doc.set_snapshot_every(3)                        # snapshots do not change values
    doc.train(2)
    assert doc.replay_steps == 2 and same_as_script(doc)
    doc.set_snapshot_every(5)
    assert doc.replay_steps == 2
    doc.set_optimizer_settings(learning_rate=0.1)
    assert doc.replay_steps is None and "changed after training began" in doc.replay_note


def test_initialize_again_or_a_new_input_after_initialize(host):
    doc = model(host, deferred=False)
    doc.initialize()
    doc.initialize()                         # initialized already: Gluon draws nothing
    assert doc.replay_steps == 0
    doc.initialize(force_reinit=True)        # draws again, further down the stream
    assert doc.replay_steps is None

    doc = model(host, deferred=False)
    doc.initialize()
    doc.set_input(seed=4)
    assert doc.replay_steps is None and "input was changed" in doc.replay_note


def test_undo_restores_the_record_and_the_optimizer_state(host):
    """A run undone and trained again ends where one uninterrupted run ends: undo puts back
    the record and Adam's moments with the parameters."""
    doc = model(host)
    doc.initialize()
    doc.forward()
    doc.train(2)
    before = doc.capture()
    doc.train(3)
    after_five = {n: p.data().asnumpy() for n, p in doc.params().items()}
    doc.set_param_data(next(iter(doc.params())), np.ones((6, 5), np.float32))
    assert doc.replay_steps is None
    doc.restore(before)
    assert doc.replay_steps == 2
    doc.train(3)
    assert doc.replay_steps == 5
    for n, p in doc.params().items():
        assert np.array_equal(p.data().asnumpy(), after_five[n]), n
    assert same_as_script(doc)


def test_files_carry_the_record(host, tmp_path):
    doc = model(host)
    doc.initialize()
    doc.forward()
    doc.train(4)
    fileformat.save(doc, tmp_path / "m.paramlab")
    again = fileformat.load(tmp_path / "m.paramlab", host=host)
    assert again.replay_steps == 4
    again.train(2)
    assert again.replay_steps == 6 and same_as_script(again)

    # with Dropout the reopened stream differs from the session's: training on breaks it
    doc = model(host, dropout=True)
    doc.initialize()
    doc.forward()
    doc.train(1)
    fileformat.save(doc, tmp_path / "d.paramlab")
    again = fileformat.load(tmp_path / "d.paramlab", host=host)
    assert again.replay_steps == 1 and same_as_script(again)
    again.train(1)
    assert again.replay_steps is None and "not saved with the file" in again.replay_note


def test_a_file_without_a_record_says_so(host, tmp_path, rewrite_paramlab):
    doc = model(host)
    doc.initialize()
    doc.forward()
    path = tmp_path / "old.paramlab"
    fileformat.save(doc, path)
    rewrite_paramlab(path, spec=lambda spec: spec.pop("replay"))
    again = fileformat.load(path, host=host)
    assert again.replay_steps is None and "does not record" in again.replay_note


def test_a_damaged_optimizer_state_is_dropped_with_a_warning(host, tmp_path,
                                                            rewrite_paramlab):
    import io
    doc = model(host)
    doc.initialize()
    doc.forward()
    doc.train(2)
    path = tmp_path / "m.paramlab"
    fileformat.save(doc, path)
    damaged = []

    def damage(members):
        assert "optimizer.npz" in members                  # Adam's moments travel along
        with np.load(io.BytesIO(members["optimizer.npz"])) as npz:
            arrays = {k: npz[k] for k in npz.files}
        damaged.append(next(iter(arrays)))
        arrays[damaged[0]] = np.zeros((1, 1), np.float32)  # the wrong shape
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        members["optimizer.npz"] = buf.getvalue()
    rewrite_paramlab(path, members=damage)
    key = damaged[0]
    again = fileformat.load(path, host=host)
    assert any("optimizer's saved state cannot be used" in e.message and key.split(":")[0]
               in e.message for e in again.log_entries)
    for n, p in doc.params().items():                      # the values are intact
        assert np.array_equal(again.params()[n].data().asnumpy(), p.data().asnumpy())
    assert again.replay_steps is None and "optimizer" in again.replay_note
    again.train(1)                                         # and it trains on


@pytest.mark.parametrize("how", ["train", "backward+step"])
def test_deferred_shapes_resolved_between_dropout_draws_are_not_replayable(host, how):
    """Without Forward first, step 1's recorded forward initializes the deferred weights
    between Dropout draws; the script's Forward draws them first: not the same values."""
    doc = model(host, dropout=True)
    doc.initialize()
    if how == "train":
        doc.train(2)
    else:
        doc.backward()
        doc.step()
    assert doc.replay_steps is None and "between Dropout draws" in doc.replay_note
    assert not same_as_script_anyway(doc, 2 if how == "train" else 1)

    plain = model(host)                      # no Dropout: the order does not matter
    plain.initialize()
    plain.train(2)
    assert plain.replay_steps == 2 and same_as_script(plain)


def same_as_script_anyway(doc, steps) -> bool:
    text = script_for(doc, steps=steps)
    namespace = {"__name__": "__exported__"}
    argv, sys.argv = sys.argv, ["exported.py"]
    try:
        exec(compile(text, "exported.py", "exec"), namespace)  # noqa: S102 - our own script
    finally:
        sys.argv = argv
    theirs = {n: p.data().asnumpy() for n, p in namespace["net"].collect_params().items()}
    return all(np.array_equal(p.data().asnumpy(), theirs[n]) for n, p in doc.params().items())


def test_undoing_a_structure_edit_keeps_the_optimizer_state(host):
    """Train 5 (Adam) → add a layer → undo → train 5 equals 10 uninterrupted steps."""
    doc = model(host)
    doc.initialize()
    doc.forward()
    doc.train(5)
    before = doc.capture()
    doc.add_layer("Dense", {"units": 3})
    doc.restore(before)
    doc.train(5)
    straight = model(host)
    straight.initialize()
    straight.forward()
    straight.train(10)
    for n, p in straight.params().items():
        assert np.array_equal(doc.params()[n].data().asnumpy(), p.data().asnumpy()), n
    assert doc.replay_steps == 10 and same_as_script(doc)


def test_a_file_that_cannot_be_opened_leaves_the_random_stream_alone(host, tmp_path,
                                                                    rewrite_paramlab):
    """Opening reseeds the stream to draw the new document's input; a refused file must not
    move the stream of the document still open (its Dropout masks would change)."""
    from app.document.fileformat import FileFormatError
    other = model(host)                  # (building a document reseeds the shared stream)
    other.initialize()
    other.forward()
    path = tmp_path / "bad.paramlab"
    fileformat.save(other, path)
    # its values no longer fit its layers
    rewrite_paramlab(path, spec=lambda spec: spec["layers"][0]["settings"].update(units=7))
    doc = model(host, dropout=True)
    doc.initialize()
    doc.forward()
    doc.train(2)
    with pytest.raises(FileFormatError):
        fileformat.load(path, host=host)
    doc.train(2)
    assert doc.replay_steps == 4 and same_as_script(doc)
