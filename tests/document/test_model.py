"""The Qt-free document: validation, links, initialization precedence, undo mementos, files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from app.document import Document, DocumentError, MemoryLimitError, fileformat
from app.document.fileformat import FileFormatError
from app.pluginhost import PluginHost
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"


@pytest.fixture(scope="module")
def host():
    return PluginHost(plugin_dirs=[ROOT / "plugins"], default_dirs=False, entry_points=False)


@pytest.fixture
def doc(host):
    return fileformat.load(EXAMPLES / "chapter_mlp.json", host=host)


def test_chapter_numbers_through_the_document(doc):
    doc.initialize()
    rows = {r.name: r for r in doc.param_rows()}
    assert rows["sequential0_dense0_weight"].shape == (4, 0)
    assert rows["sequential0_dense0_weight"].state == "deferred"
    assert rows["sequential0_dense0_bias"].state == "initialized"
    out = doc.forward()
    assert str(out).startswith("\n[[0.00212593 0.00365805]\n [0.00161272 0.00441845]")
    assert doc.params()["sequential0_dense0_weight"].shape == (4, 5)


def test_effective_initializer_answers_why_the_bias_stays_zero(doc):
    doc.set_global_init("myinit")
    rows = {r.name: r for r in doc.param_rows()}
    assert rows["sequential0_dense0_weight"].init_source == "global"
    assert rows["sequential0_dense0_bias"].init_source == "layer default"
    assert rows["sequential0_dense0_bias"].init == "zeros"
    doc.initialize()
    doc.forward()
    w = doc.params()["sequential0_dense0_weight"].data().asnumpy()
    assert ((w >= 5) & (w < 10)).all()
    assert (doc.params()["sequential0_dense0_bias"].data().asnumpy() == 0).all()
    # an explicit per-parameter choice wins over the layer default
    uid = doc.layers[0].uid
    doc.set_param_init(uid, "bias", "constant", {"value": 1.5})
    assert {r.name: r for r in doc.param_rows()}["sequential0_dense0_bias"].init_source == \
        "parameter"
    doc.initialize(force_reinit=True)
    assert (doc.params()["sequential0_dense0_bias"].data().asnumpy() == 1.5).all()


def test_invalid_settings_change_nothing(doc):
    before = doc.to_spec()
    for bad in ({"units": 0}, {"units": "4"}, {"activation": "gelu"}, {"in_units": -1}):
        with pytest.raises(DocumentError):
            doc.update_layer(doc.layers[0].uid, **bad)
    with pytest.raises(DocumentError):
        doc.add_layer("Conv2D")
    with pytest.raises(DocumentError):
        doc.set_input(shape=(3, 0))
    with pytest.raises(DocumentError):
        doc.set_global_init("xavier", {"magnitude": -1})
    assert doc.to_spec() == before


def test_share_link_refused_with_gluons_reason(doc):
    a, b = doc.layers[0].uid, doc.layers[1].uid
    with pytest.raises(DocumentError, match=r"desired '\(2, 4\)' vs stored '\(4, 5\)'"):
        doc.link(b, a)
    assert doc.links == []


def test_shared_and_tied_networks_sum_gradients(host):
    doc = fileformat.load(EXAMPLES / "chapter_shared.json", host=host)
    net = doc.net
    assert net[1].weight is net[2].weight
    assert "sequential0_dense2_weight" not in list(doc.params().keys())
    doc.initialize()
    doc.forward()
    doc.backward()
    rec = doc.history.snapshots[-1].params["sequential0_dense1_weight"]
    assert len(rec.contributions) == 2
    np.testing.assert_allclose(rec.contributions[0] + rec.contributions[1], rec.grad, rtol=1e-6)
    assert not np.allclose(rec.contributions[0], rec.grad)

    ae = fileformat.load(EXAMPLES / "tied_autoencoder.json", host=host)
    ae.initialize()
    ae.forward()
    w = ae.params()["sequential0_dense0_weight"]
    assert w.shape == (8, 16)
    assert ae.net[3].weight is w


def test_move_that_breaks_a_link_is_refused(host):
    doc = fileformat.load(EXAMPLES / "chapter_shared.json", host=host)
    sharer = doc.links[0].src
    order = [s.uid for s in doc.layers]
    with pytest.raises(DocumentError, match="above it"):
        doc.move_layer(sharer, 0)
    assert [s.uid for s in doc.layers] == order


def test_capture_restore_round_trips_exact_arrays(doc):
    doc.initialize()
    doc.forward()
    state = doc.capture()
    w0 = doc.params()["sequential0_dense0_weight"].data().asnumpy()
    doc.add_layer("Dense", {"units": 3})
    doc.initialize(force_reinit=True)
    assert not np.array_equal(w0, doc.params()["sequential0_dense0_weight"].data().asnumpy())
    doc.restore(state)
    assert len(doc.layers) == 2
    np.testing.assert_array_equal(w0, doc.params()["sequential0_dense0_weight"].data().asnumpy())


def test_structure_edit_keeps_unchanged_values(doc):
    doc.initialize()
    doc.forward()
    w = doc.params()["sequential0_dense0_weight"].data().asnumpy()
    doc.add_layer("Activation", {"activation": "tanh"}, index=1)
    np.testing.assert_array_equal(w, doc.params()["sequential0_dense0_weight"].data().asnumpy())
    doc.update_layer(doc.layers[0].uid, units=6)
    assert doc.params()["sequential0_dense0_weight"].state == "uninitialized"


def test_memory_limit_asks_before_allocating(host):
    doc = Document(host=host, memory_limit=1 << 20)
    with pytest.raises(MemoryLimitError) as info:
        doc.add_layer("Dense", {"units": 4096, "in_units": 4096})
    assert info.value.nbytes > 1 << 20
    assert doc.layers == []
    doc.add_layer("Dense", {"units": 4096, "in_units": 4096}, confirm_large=True)
    assert len(doc.layers) == 1


def test_file_round_trip_and_bad_files(doc, host, tmp_path):
    doc.set_global_init("myinit", {"low": 1.0, "high": 2.0})
    doc.initialize()
    doc.forward()
    path = tmp_path / "m.paramlab"
    fileformat.save(doc, path)
    again = fileformat.load(path, host=host)
    for name, p in doc.params().items():
        np.testing.assert_array_equal(p.data().asnumpy(), again.params()[name].data().asnumpy())
    assert again.global_init.name == "myinit"

    # deferred parameters come back deferred
    fresh = fileformat.load(EXAMPLES / "chapter_mlp.json", host=host)
    fresh.initialize()
    fileformat.save(fresh, tmp_path / "d.paramlab")
    back = fileformat.load(tmp_path / "d.paramlab", host=host)
    assert back.params()["sequential0_dense0_weight"].state == "deferred"

    raw = path.read_bytes()
    (tmp_path / "trunc.paramlab").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FileFormatError, match="damaged|not a ParamLab"):
        fileformat.load(tmp_path / "trunc.paramlab", host=host)
    (tmp_path / "junk.paramlab").write_bytes(b"not a zip")
    with pytest.raises(FileFormatError):
        fileformat.load(tmp_path / "junk.paramlab", host=host)

    with zipfile.ZipFile(path) as zf:
        spec = json.loads(zf.read("model.json"))
    spec["version"] = 99
    (tmp_path / "future.json").write_text(json.dumps(spec))
    with pytest.raises(FileFormatError, match="newer ParamLab"):
        fileformat.load(tmp_path / "future.json", host=host)

    spec["version"] = 1
    spec["global_init"] = {"name": "not_installed", "settings": {}}
    (tmp_path / "missing.json").write_text(json.dumps(spec))
    opened = fileformat.load(tmp_path / "missing.json", host=host)
    row = {r.name: r for r in opened.param_rows()}["sequential0_dense0_weight"]
    assert row.init_source == "missing" and "not available" in row.missing
    with pytest.raises(DocumentError, match="not available"):
        opened.initialize()


def test_failed_save_leaves_old_file(doc, tmp_path, monkeypatch):
    path = tmp_path / "keep.paramlab"
    fileformat.save(doc, path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        fileformat.save(doc, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.paramlab"]


def test_a_file_missing_its_values_says_so(doc, host, tmp_path):
    doc.initialize()
    doc.forward()
    path = tmp_path / "full.paramlab"
    fileformat.save(doc, path)
    stripped = tmp_path / "stripped.paramlab"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(stripped, "w") as dst:
        for item in src.infolist():
            if item.filename != "params.npz":
                dst.writestr(item, src.read(item.filename))
    opened = fileformat.load(stripped, host=host)
    assert all(p.state == "uninitialized" for p in opened.params().values())
    warnings = [e.message for e in opened.log_entries if e.level == "warning"]
    assert any("holds no values" in m and "sequential0_dense0_weight" in m for m in warnings)
