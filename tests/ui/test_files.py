"""Files, and nothing lost: save/open round trips, bad files, missing plugins, recent files,
autosave and crash restore, unsaved changes on New/Open/close."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QMenu, QMessageBox, QWidget

import app
from app.document import fileformat

ROOT = Path(app.__file__).resolve().parent.parent
EXAMPLES = ROOT / "resources" / "examples"
B = QMessageBox.StandardButton


def trigger(window, name):
    action = window.findChild(QAction, name)
    assert action is not None and action.isEnabled(), name
    action.trigger()


def values(doc) -> dict:
    return {n: (None if p.state != "initialized" else p.data().asnumpy().copy())
            for n, p in doc.params().items()}


def assert_same_values(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if a[k] is None or b[k] is None:
            assert a[k] is None and b[k] is None, k
        else:
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


def initialized_chapter(window, workbench):
    """The chapter example, initialized and run once (through the workbench, one step each)."""
    assert window.open_path(EXAMPLES / "chapter_mlp.json")
    assert workbench.run("Initialize", lambda d: d.initialize())[0]
    assert workbench.run("Forward", lambda d: d.forward())[0]
    return workbench.doc


def message_text(window) -> str:
    box = window.last_message
    assert box is not None and box.isVisible()
    return box.text()


# ------------------------------------------------------------------------------ round trip
def test_save_as_then_open_restores_exact_arrays(window, workbench, tmp_path, monkeypatch):
    doc = initialized_chapter(window, workbench)
    before = values(doc)
    spec = doc.to_spec()
    x = doc.x.asnumpy().copy()
    target = tmp_path / "mine"
    monkeypatch.setattr(window, "choose_save_path", lambda suggested: str(target) + ".paramlab")
    # chapter_mlp.json is an example (structure only): Save goes to Save As.
    trigger(window, "actionSave")
    saved = tmp_path / "mine.paramlab"
    assert saved.exists() and zipfile.is_zipfile(saved)
    assert window.windowTitle() == "mine.paramlab — ParamLab"
    assert (EXAMPLES / "chapter_mlp.json").read_text().count('"initialized"') == 0

    trigger(window, "actionNew")                            # clean: no question
    assert workbench.doc.layers == [] and window.asked == []
    monkeypatch.setattr(window, "choose_open_path", lambda: str(saved))
    trigger(window, "actionOpen")
    doc2 = workbench.doc
    assert doc2.to_spec() == spec
    assert_same_values(values(doc2), before)
    np.testing.assert_array_equal(doc2.x.asnumpy(), x)
    assert window.recent_files()[0] == str(saved)
    assert not window.is_modified()
    # Saving again writes in place, atomically (no temporary file left behind).
    workbench.run("Forward", lambda d: d.forward())
    assert window.windowTitle() == "mine.paramlab* — ParamLab"
    trigger(window, "actionSave")
    assert window.windowTitle() == "mine.paramlab — ParamLab"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("mine")) == [
        "mine.paramlab"]


def _corrupt(kind: str, tmp_path: Path, good: Path) -> Path:
    path = tmp_path / f"{kind}.paramlab"
    if kind == "garbage":
        path.write_bytes(b"\x00\x01 definitely not a zip file" * 20)
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "future":
        path = tmp_path / "future.json"
        spec = json.loads((EXAMPLES / "chapter_mlp.json").read_text())
        spec["version"] = 99
        path.write_text(json.dumps(spec))
    elif kind == "bad_json":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("model.json", "{not json")
    elif kind == "wrong_shape":
        with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
            for info in src.infolist():
                data = src.read(info.filename)
                if info.filename == "params.npz":
                    import io
                    with np.load(io.BytesIO(data)) as npz:
                        arrays = {k: npz[k] for k in npz.files}
                    arrays["sequential0_dense0_weight"] = np.zeros((7, 7), np.float32)
                    buf = io.BytesIO()
                    np.savez(buf, **arrays)
                    data = buf.getvalue()
                dst.writestr(info.filename, data)
    return path


@pytest.mark.parametrize("kind", ["garbage", "truncated", "future", "bad_json", "wrong_shape"])
def test_a_bad_file_shows_the_error_and_keeps_the_current_document(window, workbench, tmp_path,
                                                                   kind):
    doc = initialized_chapter(window, workbench)
    good = tmp_path / "good.paramlab"
    fileformat.save(doc, good)
    bad = _corrupt(kind, tmp_path, good)
    before, spec, steps = values(doc), doc.to_spec(), workbench.undo_stack.count()
    assert window.is_modified()
    window.answers["save_changes"] = B.Discard
    assert not window.open_path(bad)
    assert workbench.doc is doc and doc.to_spec() == spec
    assert_same_values(values(doc), before)
    assert workbench.undo_stack.count() == steps
    text = message_text(window)
    assert text.startswith(f"Cannot open '{bad.name}'")
    if kind == "future":
        assert "newer ParamLab" in text
    assert doc.log_entries[-1].level == "error" and bad.name in doc.log_entries[-1].message
    window.last_message.close()


def test_a_file_naming_a_missing_plugin_opens_with_the_choice_marked_missing(window, workbench,
                                                                             tmp_path, qtbot):
    spec = json.loads((EXAMPLES / "chapter_mlp.json").read_text())
    spec["global_init"] = {"name": "fancyinit", "settings": {"gain": 3.0}}
    spec["layers"][1]["init"] = {"name": "otherinit", "settings": {}}
    path = tmp_path / "needs_plugins.json"
    path.write_text(json.dumps(spec))
    assert window.open_path(path)
    doc = workbench.doc
    assert doc.global_init.name == "fancyinit"
    rows = {r.name: r for r in doc.param_rows()}
    assert rows["sequential0_dense0_weight"].init_source == "missing"
    assert "fancyinit" in rows["sequential0_dense0_weight"].missing
    assert rows["sequential0_dense1_weight"].init_source == "missing"
    assert rows["sequential0_dense0_bias"].init_source == "layer default"   # zeros, not missing
    warnings = [e.message for e in doc.log_entries if e.level == "warning"]
    assert any("fancyinit" in w and "not available" in w for w in warnings)
    assert any("otherinit" in w for w in warnings)
    # The Parameters view marks it too.
    table = window.findChild(QWidget, "parametersTable")
    cells = [str(table.model().index(r, c).data()) for r in range(table.model().rowCount())
             for c in range(table.model().columnCount())]
    assert any("missing" in c for c in cells)

    # The Initialize dialog lists the missing choice, explains it, and will not run it.
    trigger(window, "actionInitialize")
    dialog = window.initialize_dialog
    assert dialog.selected_name() == "fancyinit"
    assert "(missing)" in dialog.findChild(QComboBox, "initializerCombo").currentText()
    missing = dialog.findChild(QWidget, "initializerMissing")
    assert missing.isVisible() and "fancyinit" in missing.text() and "plugin" in missing.text()
    ok = dialog.findChild(QWidget, "initializeButton")
    assert not ok.isEnabled()
    dialog.select("normal")
    assert ok.isEnabled()
    steps = workbench.undo_stack.count()
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    # Layer 1's own choice is still missing: refused in place, all or nothing.
    error = dialog.findChild(QWidget, "initializeError")
    assert dialog.isVisible() and error.isVisible() and "otherinit" in error.text()
    assert doc.global_init.name == "fancyinit" and workbench.undo_stack.count() == steps
    assert {p.state for p in doc.params().values()} == {"uninitialized"}
    dialog.reject()
    workbench.run("Layer default", lambda d: d.set_layer_init(d.layers[1].uid, None))
    initialize = window.open_initialize_dialog()
    initialize.select("normal")
    qtbot.mouseClick(initialize.findChild(QWidget, "initializeButton"),
                     Qt.MouseButton.LeftButton)
    assert not initialize.isVisible() and doc.global_init.name == "normal"
    assert all(r.init_source != "missing" for r in doc.param_rows())


# ------------------------------------------------------------------------------ recent files
def _paramlab_copies(workbench, tmp_path, n):
    doc = workbench.doc
    paths = []
    for i in range(n):
        p = tmp_path / f"model{i}.paramlab"
        fileformat.save(doc, p)
        paths.append(p)
    return paths


def test_recent_files_are_kept_newest_first_at_most_ten_and_persist(make_window, workbench,
                                                                   tmp_path):
    window = make_window()
    paths = _paramlab_copies(workbench, tmp_path, 12)
    for p in paths:
        assert window.open_path(p)
    recent = window.recent_files()
    assert recent == [str(p) for p in reversed(paths)][:10]
    menu = window.findChild(QMenu, "menuRecentFiles")
    menu.aboutToShow.emit()
    files = [a.data() for a in menu.actions() if a.data()]
    assert files == recent
    # Opening one from the menu moves it to the top.
    next(a for a in menu.actions() if a.data() == str(paths[5])).trigger()
    assert window.recent_files()[0] == str(paths[5])
    assert workbench.doc.path == str(paths[5])
    # Persisted: another window with the same settings sees them.
    window.close()
    other = make_window()
    assert other.recent_files()[0] == str(paths[5])

    # A file that disappeared is removed with a message.
    gone = paths[9]
    gone.unlink()
    other_menu = other.findChild(QMenu, "menuRecentFiles")
    other_menu.aboutToShow.emit()
    current = workbench.doc
    next(a for a in other_menu.actions() if a.data() == str(gone)).trigger()
    assert str(gone) not in other.recent_files()
    assert "no longer exists" in message_text(other)
    assert workbench.doc is current
    other.last_message.close()


# ------------------------------------------------------------------------------ unsaved work
def test_new_asks_to_save_when_dirty(window, workbench):
    trigger(window, "actionAddDense")
    window.answers["save_changes"] = B.Cancel
    trigger(window, "actionNew")
    assert len(workbench.doc.layers) == 1                  # cancelled
    window.answers["save_changes"] = B.Discard
    trigger(window, "actionNew")
    assert workbench.doc.layers == [] and not window.is_modified()
    assert [k for k, _ in window.asked] == ["save_changes", "save_changes"]


def test_closing_with_unsaved_changes_asks_save_discard_cancel(window, workbench, tmp_path,
                                                              monkeypatch):
    trigger(window, "actionAddDense")
    window.answers["save_changes"] = B.Cancel
    window.close()
    assert window.isVisible()                               # still open, nothing lost
    target = tmp_path / "kept.paramlab"
    monkeypatch.setattr(window, "choose_save_path", lambda suggested: str(target))
    window.answers["save_changes"] = B.Save
    window.close()
    assert not window.isVisible()
    assert target.exists()
    assert [s.kind for s in fileformat.load(target).layers] == ["Dense"]


def test_cancelling_save_as_keeps_the_window_open(window, workbench, monkeypatch):
    trigger(window, "actionAddDense")
    monkeypatch.setattr(window, "choose_save_path", lambda suggested: "")
    window.answers["save_changes"] = B.Save
    window.close()
    assert window.isVisible()


# ------------------------------------------------------------------------------ autosave
def test_autosave_and_crash_restore(make_window, workbench, tmp_path, host):
    from app.document import Document
    from app.ui.workbench import Workbench

    data = tmp_path / "data"
    first = make_window()
    assert not first.start_session()                        # nothing to restore
    assert first.session_marker.exists()
    assert first.autosave_timer.isActive() and first.autosave_timer.interval() == 60_000
    assert first.open_path(EXAMPLES / "chapter_mlp.json")
    first.autosave_timer.timeout.emit()                     # clean: nothing written
    assert not first.autosave_path.exists()
    workbench.run("Initialize", lambda d: d.initialize())
    workbench.run("Forward", lambda d: d.forward())
    first.autosave_timer.timeout.emit()                     # dirty: written
    assert first.autosave_path.exists() and first.autosave_path.parent == data
    saved = values(workbench.doc)
    spec = workbench.doc.to_spec()
    # The session "crashes": the window goes away without a clean close.
    first.hide()

    wb2 = Workbench(host, Document(host=host))
    second = make_window(wb2)
    second.answers["restore_autosave"] = B.Yes
    assert second.start_session()
    assert second.asked[0][0] == "restore_autosave" and "chapter_mlp" in second.asked[0][1]
    assert wb2.doc.to_spec() == spec
    assert_same_values(values(wb2.doc), saved)
    assert second.is_modified() and second.windowTitle() == "chapter_mlp.json* — ParamLab"
    # A clean exit removes the autosave and the marker.
    second.answers["save_changes"] = B.Discard
    second.close()
    assert not second.autosave_path.exists() and not second.session_marker.exists()

    third = make_window(Workbench(host, Document(host=host)))
    assert not third.start_session() and third.asked == []  # nothing offered any more


def test_declining_the_restore_keeps_a_copy(make_window, workbench, host, tmp_path):
    from app.document import Document
    from app.ui.workbench import Workbench

    first = make_window()
    first.start_session()
    workbench.run("Add", lambda d: d.add_layer("Dense"))
    assert first.autosave_now()
    first.hide()
    wb2 = Workbench(host, Document(host=host))
    second = make_window(wb2)
    second.answers["restore_autosave"] = B.No
    assert not second.start_session()
    assert wb2.doc.layers == []
    kept = tmp_path / "data" / "autosave.previous.paramlab"
    assert kept.exists() and len(fileformat.load(kept).layers) == 1


def test_saving_removes_the_autosave(window, workbench, tmp_path):
    window.start_session()
    workbench.run("Add", lambda d: d.add_layer("Dense"))
    assert window.autosave_now() and window.autosave_path.exists()
    assert not window.autosave_now()                        # nothing new since
    assert window.save_to(tmp_path / "x.paramlab")
    assert not window.autosave_path.exists() and window.session_marker.exists()
    marker = json.loads(window.session_marker.read_text())
    assert marker["pid"] == os.getpid() and marker["path"] == str(tmp_path / "x.paramlab")
