"""File menu, leaving ParamLab and coming back: export as Python (the script reproduces the
window's parameters), export/import parameters (.npz, .safetensors) with shape checks, load the
input and the target from files; refusals change nothing (model, undo history, files)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

import app
from app.document import Document
from app.document.interchange import param_keys, read_safetensors
from app.ui.file_actions import FileActions
from app.ui.workbench import Workbench

ROOT = Path(app.__file__).resolve().parent.parent
B = QMessageBox.StandardButton


# ------------------------------------------------------------------------------ helpers
def file_actions(window) -> FileActions:
    """The window's FileActions (built here until the window builds its own)."""
    existing = getattr(window, "file_actions", None)
    return existing if existing is not None else FileActions(window)


class Told(list):
    """``window.tell`` for tests: records (level, title, text)."""

    def __call__(self, level, title, text):
        self.append((level, title, text))


def setup(window, monkeypatch):
    """(FileActions, told, chooser calls): the choosers answer from ``paths`` (a list popped
    front first); every call is recorded."""
    fa = file_actions(window)
    told = Told()
    window.tell = told
    paths, calls = [], []

    def save(title, suggested, file_filter):
        calls.append(("save", title, suggested, file_filter))
        return os.fspath(paths.pop(0))

    def open_(title, file_filter):
        calls.append(("open", title, file_filter))
        return os.fspath(paths.pop(0))

    monkeypatch.setattr(fa, "choose_save_path", save)
    monkeypatch.setattr(fa, "choose_open_path", open_)
    fa.paths, fa.calls = paths, calls
    return fa, told


def build(wb, units=4, train=0):
    """Dense(units) → Dense(units) → Dense(units) sharing layer 1's parameters → Dense(2),
    initialized and run forward through the workbench (one undo step each)."""
    uids = []
    for n in (units, units, units, 2):
        ok, uid = wb.run("Add Dense", lambda d, n=n: d.add_layer("Dense", {"units": n}))
        assert ok, uid
        uids.append(uid)
    assert wb.run("Share", lambda d: d.link(uids[2], uids[1], "share"))[0]
    assert wb.run("Initialize", lambda d: d.initialize())[0]
    assert wb.run("Forward", lambda d: d.forward())[0]
    if train:
        ok, result = wb.run(f"Train {train} steps", lambda d: d.train(train))
        assert ok, result
    return wb.doc


def values(doc) -> dict:
    return {n: (None if p.state != "initialized" else p.data().asnumpy().copy())
            for n, p in doc.params().items()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k, mine in a.items():
        theirs = b[k]
        assert mine is not None and theirs is not None, k
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs), k


def second_window(make_window, host, units=4):
    """Another window on its own workbench with the same structure but other values."""
    wb = Workbench(host, Document(host=host))
    window = make_window(wb, show=False)
    assert wb.run("Global init", lambda d: d.set_global_init("normal", {"sigma": 0.5}))[0]
    build(wb, units)
    return window


def status(window) -> str:
    return window.statusBar().currentMessage()


# ------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("ext", [".npz", ".safetensors"])
def test_export_then_import_into_a_fresh_window_round_trips_bit_for_bit(
        window, workbench, make_window, host, tmp_path, monkeypatch, ext):
    doc = build(workbench, train=2)
    before = values(doc)
    fa, told = setup(window, monkeypatch)
    fa.paths.append(tmp_path / f"params{ext}")
    fa.action_export_params.trigger()
    assert told == []
    assert (tmp_path / f"params{ext}").is_file()
    assert f"Exported the parameters to params{ext}" in status(window)
    kind, title, suggested, file_filter = fa.calls[-1]
    assert (kind, title) == ("save", "Export Parameters") and suggested.endswith("untitled.npz")
    assert "(*.npz)" in file_filter and "(*.safetensors)" in file_filter

    if ext == ".safetensors":         # PyTorch names; the shared layer under its own too
        arrays, meta = read_safetensors(tmp_path / "params.safetensors")
        assert list(arrays) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight",
                                "2.bias", "3.weight", "3.bias"]
        assert np.array_equal(arrays["2.weight"], arrays["1.weight"])
        assert '"2.weight": "1.weight"' in meta["paramlab.aliases"]
    else:
        with np.load(tmp_path / "params.npz") as npz:
            assert npz.files == [k.name for k in param_keys(doc)]

    other = second_window(make_window, host)
    ofa, otold = setup(other, monkeypatch)
    odoc = other.wb.doc
    mine = values(odoc)
    assert not any(np.array_equal(mine[n], before[n]) for n in before)
    count = other.wb.undo_stack.count()
    ofa.paths.append(tmp_path / f"params{ext}")
    ofa.action_import_params.trigger()
    assert otold == []
    assert_same(values(odoc), before)
    assert other.wb.undo_stack.count() == count + 1                     # one undo step
    assert f"Imported 6 parameters from params{ext}" in status(other)
    other.wb.undo_stack.undo()
    assert_same(values(odoc), mine)
    other.wb.undo_stack.redo()
    assert_same(values(odoc), before)
    # the next export suggests the format used last
    fa.paths.append(tmp_path / "again")
    fa.action_export_params.trigger()
    assert fa.calls[-1][2].endswith(ext) and (tmp_path / f"again{ext}").is_file()


def test_import_with_mismatched_shapes_names_the_parameter_and_changes_nothing(
        window, workbench, make_window, host, tmp_path, monkeypatch):
    wide = second_window(make_window, host, units=6)
    wfa, _ = setup(wide, monkeypatch)
    wfa.paths.append(tmp_path / "wide.npz")
    wfa.export_params()
    doc = build(workbench)
    before, count, replay = values(doc), workbench.undo_stack.count(), doc.replay
    fa, told = setup(window, monkeypatch)
    seen = []
    workbench.changed.connect(seen.append)
    fa.paths.append(tmp_path / "wide.npz")
    assert fa.import_params() is False
    [(level, title, text)] = told
    assert level == "error" and title == "Cannot Import"
    assert "0.weight" in text and "sequential0_dense0_weight" in text
    assert "(6, 5)" in text and "(4, 5)" in text and "Nothing was changed" in text
    assert_same(values(doc), before)
    assert workbench.undo_stack.count() == count and doc.replay == replay and seen == []


def _corrupt(tmp_path, good_npz, good_st, case):
    rng = np.random.default_rng(7)
    if case.startswith("random"):
        data = rng.bytes(600)
    elif case == "truncated.npz":
        data = good_npz.read_bytes()[:-40]
    else:
        data = good_st.read_bytes()[:-10]
    path = tmp_path / case
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", ["random.npz", "random.safetensors", "truncated.npz",
                                  "truncated.safetensors"])
def test_a_corrupt_file_is_refused_cleanly(window, workbench, tmp_path, monkeypatch, case):
    doc = build(workbench)
    fa, told = setup(window, monkeypatch)
    fa.paths += [tmp_path / "good.npz", tmp_path / "good.safetensors"]
    assert fa.export_params() and fa.export_params()
    path = _corrupt(tmp_path, tmp_path / "good.npz", tmp_path / "good.safetensors", case)
    assert workbench.run("Re-init", lambda d: d.initialize(force_reinit=True))[0]
    before, count = values(doc), workbench.undo_stack.count()
    fa.paths.append(path)
    assert fa.import_params() is False
    [(level, _title, text)] = told
    assert level == "error" and f"'{case}'" in text
    assert ("damaged" in text or "truncated" in text or "not a safetensors" in text), text
    assert_same(values(doc), before)
    assert workbench.undo_stack.count() == count
    assert doc.log_entries[-1].level == "error" and case in doc.log_entries[-1].message


def test_export_refusal_keeps_the_existing_file_and_leaves_no_temporary(
        window, workbench, tmp_path, monkeypatch):
    fa, told = setup(window, monkeypatch)
    assert not fa.action_export_params.isEnabled()              # nothing to export yet
    assert not fa.action_export_python.isEnabled()
    assert not fa.action_import_params.isEnabled()
    assert fa.action_load_input.isEnabled() and fa.action_load_target.isEnabled()
    assert workbench.run("Add", lambda d: d.add_layer("Dense", {"units": 3}))[0]
    assert fa.action_export_params.isEnabled() and fa.action_export_python.isEnabled()
    assert "no values yet" in fa.action_export_params.toolTip()
    old = tmp_path / "keep.safetensors"
    old.write_bytes(b"my earlier export")
    fa.paths.append(old)
    assert fa.export_params() is False
    [(level, title, text)] = told
    assert level == "error" and title == "Cannot Export"
    assert "sequential0_dense0_weight" in text and "initialize" in text
    assert old.read_bytes() == b"my earlier export"
    assert not list(tmp_path.rglob("*.tmp"))
    # an unwritable place: said plainly, nothing written
    told.clear()
    fa.paths.append(tmp_path / "no such folder" / "p.npz")
    assert workbench.run("Initialize", lambda d: d.initialize())[0]
    assert workbench.run("Forward", lambda d: d.forward())[0]
    assert "no values yet" not in fa.action_export_params.toolTip()
    assert fa.export_params() is False
    [(level, _title, text)] = told
    assert level == "error" and "'p.npz'" in text and "No such file or directory" in text


def test_busy_disables_every_action_and_refuses_their_slots(window, workbench, monkeypatch):
    build(workbench)
    fa, told = setup(window, monkeypatch)
    assert all(a.isEnabled() for a in fa.actions)
    workbench.set_busy("training")
    assert not any(a.isEnabled() for a in fa.actions)
    assert fa.import_params() is False and fa.export_python() is False
    assert fa.calls == [] and told == [] and "training" in status(window)
    workbench.set_busy("")
    assert all(a.isEnabled() for a in fa.actions)


# ------------------------------------------------------------------------------ export as Python
def test_exported_script_reproduces_the_window_parameters(window, workbench, tmp_path,
                                                          monkeypatch):
    doc = build(workbench, train=5)
    assert doc.replay_steps == 5
    fa, told = setup(window, monkeypatch)
    script = tmp_path / "model.py"
    fa.paths.append(tmp_path / "model")                  # the .py is added
    fa.action_export_python.trigger()
    assert told == [] and window.asked == [] and script.is_file()
    assert fa.calls[-1][2].endswith("untitled.py")
    assert "the script reproduces the current parameters: initialize, forward, 5 steps" in \
        status(window)
    out = tmp_path / "out.npz"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PARAMLAB_PLUGIN_PATH": ""}
    proc = subprocess.run([sys.executable, str(script), str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as npz:
        arrays = {k: npz[k] for k in npz.files}
    keys = param_keys(doc)
    assert list(arrays) == [k.name for k in keys]
    for k in keys:
        mine = k.param.data()._data
        assert arrays[k.name].dtype == mine.dtype and np.array_equal(arrays[k.name], mine), \
            k.name


def test_export_python_asks_when_the_values_are_not_replayable(window, workbench, tmp_path,
                                                               monkeypatch):
    doc = build(workbench, train=1)
    fa, told = setup(window, monkeypatch)
    fa.paths.append(tmp_path / "p.npz")
    assert fa.export_params()
    fa.paths.append(tmp_path / "p.npz")
    assert fa.import_params()
    assert doc.replay_steps is None
    script = tmp_path / "recipe.py"
    script.write_text("# mine")
    window.answers["export_python_not_replayable"] = B.No
    assert fa.export_python() is False
    [(key, text)] = window.asked
    assert key == "export_python_not_replayable"
    assert "would not reproduce" in text and "imported from p.npz" in text
    assert script.read_text() == "# mine" and len(fa.calls) == 2       # no path was asked
    window.answers["export_python_not_replayable"] = B.Yes
    fa.paths.append(script)
    assert fa.export_python() is True
    text = script.read_text()
    assert "trainer" not in text and "net.initialize(global_init)" in text
    assert "the recipe only" in status(window) and "imported from p.npz" in status(window)
    assert doc.log_entries[-1].level == "warning" and "recipe.py" in doc.log_entries[-1].message
    assert told == []


# ------------------------------------------------------------------------------ data files
def test_load_input_csv_names_the_bad_line_and_changes_nothing(window, workbench, tmp_path,
                                                               monkeypatch):
    doc = build(workbench)
    fa, told = setup(window, monkeypatch)
    x, shape, count = doc.x.asnumpy().copy(), doc.input.shape, workbench.undo_stack.count()
    bad = tmp_path / "x.csv"
    bad.write_text("a,b,c,d,e\n1,2,3,4,5\n1,2,oops,4,5\n")
    fa.paths.append(bad)
    fa.action_load_input.trigger()
    [(level, title, text)] = told
    assert title == "Cannot Load the Input"
    assert level == "error" and "x.csv" in text and "line 3" in text and "'oops'" in text
    assert np.array_equal(doc.x.asnumpy(), x) and doc.input.shape == shape
    assert workbench.undo_stack.count() == count

    good = tmp_path / "x2.csv"
    good.write_text("1,2,3,4,5\n6,7,8,9,10\n")
    fa.paths.append(good)
    assert fa.load_input() is True
    assert doc.input.shape == (2, 5) and doc.x.asnumpy()[1, 4] == 10
    assert workbench.undo_stack.count() == count + 1 and "shape (2, 5)" in status(window)
    workbench.undo_stack.undo()
    assert np.array_equal(doc.x.asnumpy(), x) and doc.input.shape == shape


def test_load_target_refuses_a_bad_file_and_loads_a_good_one(window, workbench, tmp_path,
                                                             monkeypatch):
    doc = build(workbench)
    assert workbench.run("Loss", lambda d: d.set_loss("l2"))[0]
    fa, told = setup(window, monkeypatch)
    count = workbench.undo_stack.count()
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    fa.paths.append(tmp_path / "objects.npy")
    assert fa.load_target() is False
    [(level, title, text)] = told
    assert title == "Cannot Load the Target"
    assert level == "error" and "objects.npy" in text and "allow_pickle=False" in text
    assert workbench.undo_stack.count() == count and doc.train_config.target.source != "file"
    target = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.save(tmp_path / "t.npy", target)
    fa.paths.append(tmp_path / "t.npy")
    assert fa.load_target() is True
    assert np.array_equal(doc.target_array(), target)
    assert workbench.undo_stack.count() == count + 1 and told[1:] == []
