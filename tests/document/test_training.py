"""Training from the document: configuration, the loop, divergence, data files, reproducibility."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from app.document import Document, DocumentError, fileformat
from app.document import training as T
from app.engine import autograd, gluon, nd
from app.engine import optimizer as engine_optimizer
from app.pluginhost import PluginHost
from app.pluginhost.settings import validate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"


@pytest.fixture(scope="module")
def host():
    return PluginHost(plugin_dirs=[ROOT / "plugins"], default_dirs=False, entry_points=False)


def load(host, name="chapter_mlp"):
    return fileformat.load(EXAMPLES / f"{name}.json", host=host)


def values(doc):
    return {n: p.data().asnumpy() for n, p in doc.params().items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for n in a:
        assert a[n].dtype == b[n].dtype and np.array_equal(a[n], b[n], equal_nan=True), n


def record(doc):
    seen = []
    doc.changed.connect(seen.append)
    return seen


# ------------------------------------------------------------------ configuration
def test_defaults_keep_the_chapter_and_the_old_training_dict(host):
    doc = load(host)
    assert doc.train_config.loss == "raw"
    assert doc.training == {"optimizer": "sgd", "learning_rate": 0.1, "batch_size": 0}
    assert doc.to_spec()["training"]["loss"] == "raw"
    doc.initialize()
    doc.forward()
    y = doc.backward()              # the chapter's y.backward(): head gradient of ones
    w1 = doc.params()["sequential0_dense1_weight"]
    h = doc.net[0](doc.x).asnumpy()
    assert np.allclose(w1.grad().asnumpy(), np.ones((3, 2)).T @ h, rtol=1e-6)
    assert doc.last_loss == pytest.approx(float(y.asnumpy().sum(dtype=np.float64)))


def test_optimizer_settings_cover_every_trainer_optimizer():
    assert set(T.OPTIMIZER_SETTINGS) == set(engine_optimizer._REGISTRY) == set(T.OPTIMIZERS)
    params = {"w": gluon.Parameter("w", shape=(2,))}
    params["w"].initialize()
    for name, settings in T.OPTIMIZER_SETTINGS.items():
        defaults = validate(settings, {}, name)
        trainer = gluon.Trainer(params, name, T.trainer_kwargs(name, defaults))
        assert trainer.learning_rate == defaults["learning_rate"]
        assert {"learning_rate", "wd", "clip_gradient"} <= {s.name for s in settings}
    assert [s.name for s in T.OPTIMIZER_SETTINGS["rmsprop"]][:5] == \
        ["learning_rate", "gamma1", "gamma2", "epsilon", "centered"]


def test_setters_validate_and_refuse_with_what_to_do(host):
    doc = load(host)
    seen = record(doc)
    spec = doc.to_spec()
    with pytest.raises(DocumentError, match=r"beta1.*\[0\.0, 1\.0\).*1\.5"):
        doc.set_optimizer("adam", {"beta1": 1.5})
    with pytest.raises(DocumentError, match="sgd, nag, adam, rmsprop, adagrad"):
        doc.set_optimizer("lbfgs")
    with pytest.raises(DocumentError, match="batch_size.*whole number"):
        doc.set_batch_size(2.5)
    with pytest.raises(DocumentError, match="snapshot_every"):
        doc.set_snapshot_every(-1)
    with pytest.raises(DocumentError, match="loss must be one of raw, l2, l1"):
        doc.set_loss("hinge")
    with pytest.raises(DocumentError, match="no setting 'momentum'"):
        doc.set_optimizer("adam", {"momentum": 0.9})
    assert doc.to_spec() == spec and seen == []

    doc.set_optimizer("adam", {"beta1": 0.5})
    assert seen == ["training"]
    assert doc.train_config.optimizer_settings == {
        "learning_rate": 0.001, "beta1": 0.5, "beta2": 0.999, "epsilon": 1e-8, "wd": 0.0,
        "clip_gradient": 0.0}
    assert doc.training == {"optimizer": "adam", "learning_rate": 0.001, "beta1": 0.5,
                            "batch_size": 0}
    doc.set_optimizer("adam")                   # the same optimizer: nothing changes
    assert seen == ["training"]
    doc.set_optimizer_settings(learning_rate=0.02)
    doc.initialize()
    assert doc.trainer().learning_rate == 0.02


def test_loss_and_target_shapes_are_checked_against_the_output(host):
    doc = load(host)                                    # output (3, 2)
    doc.set_loss("l2")
    assert doc.target_array().shape == (3, 2)          # a generated target follows the output
    with pytest.raises(DocumentError, match=r"output has shape \(3, 2\).*target.*\(3, 4\)"):
        doc.set_target(shape=(3, 4))
    doc.set_loss("softmax_ce")
    labels = doc.target_array()
    assert labels.shape == (3,) and set(np.unique(labels)) <= {0.0, 1.0}
    with pytest.raises(DocumentError, match=r"integer class labels in \[0, 2\).*'integers'"):
        doc.set_target(distribution="uniform", low=0.0, high=1.0)
    with pytest.raises(DocumentError, match=r"shape \(3,\).*output of shape \(3, 2\).*"
                                            r"shape \(3, 2\)"):
        doc.set_target(shape=(3, 2))
    doc.set_loss("sigmoid_bce")
    with pytest.raises(DocumentError, match=r"0/1 target.*holds 2"):
        doc.set_target(distribution="constant", value=2.0)
    assert doc.train_config.target.distribution == "integers"


def test_backward_and_loss_value_use_the_configured_loss(host):
    doc = load(host)
    doc.set_loss("l1")
    doc.initialize()
    doc.forward()
    target = doc.target_array()
    value = doc.loss_value()
    state = doc.capture()
    doc.backward()
    grads = {n: p.grad().asnumpy() for n, p in doc.params().items()}
    doc.restore(state)
    with autograd.record():
        y = doc.net(doc.x)
        loss = gluon.loss.L1Loss()(y, nd.array(target))
    loss.backward()
    assert value == pytest.approx(float(loss.asnumpy().mean(dtype=np.float64)), rel=1e-12)
    assert_same(grads, {n: p.grad().asnumpy() for n, p in doc.params().items()})


# ------------------------------------------------------------------ the loop
def test_train_is_the_engine_loop_bit_for_bit(host):
    doc = load(host, "chapter_shared")
    doc.set_training(loss="l2", optimizer="sgd", batch_size=2,
                     optimizer_settings={"learning_rate": 0.05, "momentum": 0.9, "wd": 1e-3})
    doc.initialize()
    doc.forward()
    state = doc.capture()
    # the same steps, written directly on the engine
    trainer = gluon.Trainer(doc.params(), "sgd", {"learning_rate": 0.05, "momentum": 0.9,
                                                   "wd": 1e-3})
    loss_fn, target = gluon.loss.L2Loss(), nd.array(doc.target_array())
    losses = []
    for _ in range(7):
        with autograd.record():
            loss = loss_fn(doc.net(doc.x), target)
        loss.backward()
        trainer.step(2)
        losses.append(float(loss.asnumpy().mean(dtype=np.float64)))
    expected = values(doc)
    doc.restore(state)
    result = doc.train(7)
    assert result.completed and result.steps == 7 and result.losses == losses
    assert_same(values(doc), expected)
    # Backward then Step is one training step
    doc.restore(state)
    doc.backward()
    doc.step()
    one = values(doc)
    doc.restore(state)
    doc.train(1)
    assert_same(values(doc), one)


def test_progress_cancel_snapshots_and_signals(host):
    doc = load(host, "chapter_shared")
    doc.initialize()
    doc.forward()
    seen, calls = record(doc), []
    result = doc.train(25, progress=lambda s, loss: calls.append((s, loss)),
                       cancel=lambda: len(calls) >= 12, snapshot_every=5)
    assert result.cancelled and result.steps == 12 and not result.completed
    assert [s for s, _ in calls] == list(range(1, 13))
    assert [v for _, v in calls] == result.losses
    labels = [s.label for s in doc.history.snapshots]
    assert labels[-3:] == ["train step 5", "train step 10", "train step 12 (cancelled)"]
    assert seen == ["params"]                           # once, at the end
    last = doc.history.snapshots[-1].params["sequential0_dense1_weight"].data
    assert np.array_equal(last, doc.params()["sequential0_dense1_weight"].data().asnumpy())
    assert "cancelled after 12 of 25 steps" in result.message

    # publish=False: nothing at all until publish_training (what a worker thread does)
    n_snaps = len(doc.history.snapshots)
    seen.clear()
    logged = []
    doc.logged.connect(logged.append)
    doc.history.changed.connect(lambda: logged.append("history"))
    result = doc.train(10, publish=False)           # the configured interval: 10
    assert seen == [] and logged == [] and len(doc.history.snapshots) == n_snaps
    doc.publish_training(result)
    doc.publish_training(result)                    # twice does nothing
    assert seen == ["params"]
    assert [s.label for s in doc.history.snapshots[n_snaps:]] == ["train step 10"]
    assert logged[0] == "history" and logged[1].message.startswith("trained 10 steps")


def test_train_refuses_before_changing_anything(host):
    doc = load(host)
    state = doc.capture()
    with pytest.raises(DocumentError, match="has not been initialized: Initialize first"):
        doc.train(3)
    assert doc.training_problem().startswith("Parameter 'sequential0_dense0_weight'")
    doc.initialize()
    doc.forward()
    doc.set_loss("l2")
    doc.load_target(_npy(doc, np.zeros((3, 2), np.float32)))
    doc.update_layer(doc.layers[1].uid, units=3)        # output now (3, 3)
    doc.initialize()
    doc.forward()
    state = doc.capture()
    with pytest.raises(DocumentError, match=r"output has shape \(3, 3\).*\(3, 2\)"):
        doc.train(3)
    with pytest.raises(DocumentError, match=r"output has shape \(3, 3\)"):
        doc.backward()
    assert "(3, 3)" in doc.training_problem()
    assert doc.state_equals(state)
    with pytest.raises(DocumentError, match="whole number ≥ 1"):
        doc.train(0)


def _npy(doc, arr, tmp=[]):  # noqa: B006 - a per-session temp folder
    import tempfile
    if not tmp:
        tmp.append(Path(tempfile.mkdtemp()))
    path = tmp[0] / f"a{len(list(tmp[0].iterdir()))}.npy"
    np.save(path, arr)
    return path


# ------------------------------------------------------------------ divergence
def test_myinit_divergence_names_the_step_and_shows_the_weights(host):
    doc = load(host)
    doc.update_layer(doc.layers[0].uid, activation="none")
    doc.set_global_init("myinit")
    doc.set_training(loss="l2", optimizer_settings={"learning_rate": 0.01})
    doc.initialize()
    doc.forward()
    state = doc.capture()
    result = doc.train(50)
    d = result.divergence
    assert (d.step, d.where, d.parameter, d.layer, d.kind) == (4, "loss", None, None, "Inf")
    assert result.steps == 3 and len(result.losses) == 3
    # weights in [5, 10) reach ±94 after one step, then explode: said plainly
    assert result.max_abs[0] == pytest.approx(93.8, abs=0.05)
    assert d.message.startswith("Training diverged at step 4 of 50: the loss became inf.")
    assert "9.89 before, 93.8 after step 1, 6.18e+04 after step 2, 2.53e+13 after step 3" in \
        d.message
    assert "Steps 1–3 are kept" in d.message and "learning rate (now 0.01)" in d.message
    assert doc.log_entries[-1].level == "warning" and doc.log_entries[-1].message == d.message
    assert doc.history.snapshots[-1].label == "train step 3 (diverged at step 4: Inf in the loss)"
    kept = values(doc)
    assert all(np.isfinite(a).all() for a in kept.values())
    doc.restore(state)
    doc.train(3)
    assert_same(values(doc), kept)


def test_divergence_in_a_gradient_first_in_stack_order(host):
    doc = load(host)
    doc.set_input(distribution="constant", value=1e-30)
    doc.initialize()
    doc.forward()
    doc.set_param_data("sequential0_dense1_weight", np.full((2, 4), 2e38, np.float32))
    state = doc.capture()
    result = doc.train(5)
    d = result.divergence
    assert (d.step, d.where, d.parameter, d.layer) == \
        (1, "gradient", "sequential0_dense0_weight", "0: Dense(4, relu)")
    assert "the gradient of sequential0_dense0_weight (layer 0: Dense(4, relu)) holds" in \
        d.message and "No step was applied" in d.message
    assert result.steps == 0 and doc.state_equals(state)


def test_divergence_in_a_parameter_after_the_update(host):
    doc = load(host)
    doc.set_global_init("myinit")
    doc.set_optimizer("sgd", {"learning_rate": 1e38})
    doc.initialize()
    doc.forward()
    result = doc.train(5)
    d = result.divergence
    assert (d.step, d.where, d.parameter, d.layer, d.kind) == \
        (1, "parameter", "sequential0_dense0_weight", "0: Dense(4, relu)", "Inf")
    assert result.steps == 1 and result.max_abs == [np.inf]
    assert np.isinf(doc.params()["sequential0_dense0_weight"].data().asnumpy()).any()


# ------------------------------------------------------------------ reproducibility
def test_same_file_and_seed_give_the_same_parameters_bit_for_bit(host, tmp_path):
    doc = Document(host=host)
    doc.add_layer("Dense", {"units": 8, "activation": "tanh"})
    doc.add_layer("Dropout", {"rate": 0.3})                 # draws from the stream every step
    doc.add_layer("Dense", {"units": 8, "activation": "relu"})
    doc.add_layer("Dense", {"units": 3})
    doc.set_input(shape=(6, 5), distribution="normal", seed=11)
    doc.set_training(loss="softmax_ce", optimizer="nag", batch_size=4,
                     target={"distribution": "integers", "low": 0.0, "high": 3.0, "seed": 5})
    doc.initialize()
    path = tmp_path / "m.paramlab"
    fileformat.save(doc, path)
    runs = []
    for _ in range(2):
        d = fileformat.load(path, host=host)
        spec, saved = d.to_spec(), doc.to_spec()
        # the reopened stream starts again, so with Dropout the replay record says so
        assert (spec.pop("replay")["rng"], saved.pop("replay")["rng"]) == (False, True)
        assert spec == saved
        d.forward()
        d.train(20)
        runs.append(values(d))
    assert_same(*runs)
    untrained = fileformat.load(path, host=host)
    untrained.forward()
    assert not any(np.array_equal(runs[0][n], a) for n, a in values(untrained).items())


def test_files_without_training_load_the_defaults(host, tmp_path, rewrite_paramlab):
    doc = load(host)
    path = tmp_path / "old.paramlab"
    fileformat.save(doc, path)
    rewrite_paramlab(path, spec=lambda spec: spec.pop("training"))
    assert fileformat.load(path, host=host).train_config == T.TrainingConfig()


# ------------------------------------------------------------------ data files
def test_input_and_target_from_files_round_trip_through_the_paramlab(host, tmp_path):
    doc = load(host)
    x = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    (tmp_path / "x.csv").write_text("a,b,c\n" + "\n".join(",".join(f"{v:g}" for v in row)
                                                          for row in x) + "\n")
    doc.load_input(tmp_path / "x.csv")
    assert doc.input.shape == (4, 3) and doc.train_config.input_file == "x.csv"
    assert np.array_equal(doc.x.asnumpy(), x)
    doc.set_loss("softmax_ce")
    (tmp_path / "labels.csv").write_text("1\n0\n1\n1\n")
    doc.load_target(tmp_path / "labels.csv")                 # one column → (batch,)
    assert doc.target_array().tolist() == [1.0, 0.0, 1.0, 1.0]
    doc.initialize()
    doc.forward()
    path = tmp_path / "m.paramlab"
    fileformat.save(doc, path)
    with zipfile.ZipFile(path) as zf:
        assert {"input.npy", "target.npy"} <= set(zf.namelist())
    back = fileformat.load(path, host=host)
    assert back.to_spec() == doc.to_spec()
    assert np.array_equal(back.x.asnumpy(), x)
    assert np.array_equal(back.target_array(), doc.target_array())
    a, b = doc.train(4), back.train(4)
    assert a.losses == b.losses
    assert_same(values(doc), values(back))
    # a generated input again
    back.set_input(distribution="uniform")
    assert back.train_config.input_file == ""


@pytest.mark.parametrize("content, message", [
    (None, r"Cannot load the input from 'bad\.npy': no such file\."),
    (b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }" +
     b" " * 45 + b"\n" + b"\0" * 8, r"not a valid \.npy file or it is damaged"),
    ("objects", r"holds Python objects, which ParamLab never loads"),
    ("nan", r"holds NaN, Inf.*index \(0, 1\)"),
])
def test_bad_npy_files_change_nothing(host, tmp_path, content, message):
    doc = load(host)
    path = tmp_path / "bad.npy"
    if content == "objects":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif content == "nan":
        np.save(path, np.array([[1.0, np.nan]]))
    elif content is not None:
        path.write_bytes(content)
    state = doc.capture()
    with pytest.raises(DocumentError, match=message):
        doc.load_input(path)
    with pytest.raises(DocumentError, match=message.replace("input", "target")):
        doc.load_target(path)
    assert doc.state_equals(state)


@pytest.mark.parametrize("name, text, message", [
    ("r.csv", "1,2,3\n4,5\n", r"line 2 has 2 values but line 1 has 3"),
    ("n.csv", "x,y\n1,2\n3,abc\n", r"line 3, column 2: 'abc' is not a number"),
    ("e.csv", "\n\n", r"the file is empty"),
    ("h.csv", "just,a,header\n", r"a header but no rows"),
    ("a.npz", "", r"use a \.npy or \.csv file"),
])
def test_bad_csv_files_say_where(host, tmp_path, name, text, message):
    doc = load(host)
    (tmp_path / name).write_text(text)
    state = doc.capture()
    with pytest.raises(DocumentError, match=message):
        doc.load_input(tmp_path / name)
    assert doc.state_equals(state)


def test_a_loaded_target_that_does_not_fit_is_refused(host, tmp_path):
    doc = load(host)
    doc.set_loss("l2")
    np.save(tmp_path / "t.npy", np.zeros((3, 5), np.float32))
    with pytest.raises(DocumentError, match=r"output has shape \(3, 2\) and the target \(from "
                                            r"t\.npy\) has shape \(3, 5\)"):
        doc.load_target(tmp_path / "t.npy")
    doc.set_loss("softmax_ce")
    np.save(tmp_path / "l.npy", np.array([0, 1, 2], np.int64))
    with pytest.raises(DocumentError, match=r"integer class labels in \[0, 2\).*holds 2 at "
                                            r"index \(2,\)"):
        doc.load_target(tmp_path / "l.npy")
    assert doc.train_config.target.source == "generated"


def test_undo_mementos_carry_the_configuration_and_the_target(host, tmp_path):
    doc = load(host)
    before = doc.capture()
    doc.set_loss("l2")
    np.save(tmp_path / "t.npy", np.full((3, 2), 0.25, np.float32))
    doc.load_target(tmp_path / "t.npy")
    doc.set_optimizer("rmsprop", {"centered": True})
    after = doc.capture()
    doc.restore(before)
    assert doc.train_config == T.TrainingConfig() and doc.target_array() is None
    assert doc.state_equals(before) and not doc.state_equals(after)
    doc.restore(after)
    assert doc.train_config.optimizer == "rmsprop" and doc.state_equals(after)
    assert (doc.target_array() == 0.25).all()


def test_step_after_a_structure_edit_updates_the_new_network(host):
    doc = load(host)
    doc.initialize()
    doc.forward()
    doc.backward()
    doc.step()                                          # creates the trainer
    doc.add_layer("Activation", {"activation": "relu"}, index=1)   # rebuilds, keeps values
    doc.forward()
    doc.backward()
    w = doc.params()["sequential0_dense0_weight"]
    before = w.data().asnumpy().copy()
    doc.step()
    assert not np.array_equal(before, w.data().asnumpy())


@pytest.mark.parametrize("size", [0, 7, (1 << 20) + 3, (1 << 21) + 5])
@pytest.mark.parametrize("where", ["none", "first", "last", "middle"])
def test_the_fast_scans_find_every_nan_and_inf_and_the_exact_extremes(size, where):
    """The per-step checks scan in halves and in chunks: a NaN or Inf anywhere is found and
    the extremes are exact, whichever half and chunk hold them."""
    from app.document.training import _grad_ok, _hi_lo
    rng = np.random.default_rng(size)
    a = rng.standard_normal(size).astype(np.float32)
    if size:
        i = {"none": None, "first": 0, "last": size - 1, "middle": size // 2 + 1}[where]
        if i is None:
            assert _grad_ok(a) and _hi_lo(a) == (float(a.max()), float(a.min()))
            return
        for bad in (np.nan, np.inf, -np.inf):
            b = a.copy()
            b[i] = bad
            assert not _grad_ok(b)
            hi, lo = _hi_lo(b)
            assert not (np.isfinite(hi) and np.isfinite(lo))
        big = a.copy()
        big[i] = 3e38                  # finite, but g·g overflows: rechecked exactly
        assert _grad_ok(big) and _hi_lo(big)[0] == np.float32(3e38)
    else:
        assert _grad_ok(a) and _hi_lo(a) == (0.0, 0.0)


def test_a_run_that_does_not_diverge_still_shows_the_myinit_jump(host):
    """The README's figure: MyInit's weights (up to 10) jump ×277 in the first raw-loss step
    on the chapter's shared network, and the summary says so."""
    doc = load(host, "chapter_shared")
    doc.set_global_init("myinit")
    doc.initialize()
    doc.forward()
    result = doc.train(3)
    assert result.completed
    assert "largest |parameter| 9.89 → 2.74e+03 (×277 at step 1: 9.89 → 2.74e+03)" in \
        result.message
