"""Parameters out and back in: .npz with Gluon keys, .safetensors with PyTorch names."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from app.document import Document, DocumentError, fileformat
from app.document import interchange as X
from app.pluginhost import PluginHost

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"


@pytest.fixture(scope="module")
def host():
    return PluginHost(plugin_dirs=[ROOT / "plugins"], default_dirs=False, entry_points=False)


def ready(host, name):
    doc = fileformat.load(EXAMPLES / f"{name}.json", host=host)
    doc.initialize()
    doc.forward()
    return doc


def values(doc):
    return {n: p.data().asnumpy() for n, p in doc.params().items()}


def norm_stack(host):
    doc = Document(host=host)
    doc.add_layer("Dense", {"units": 4})
    doc.add_layer("BatchNorm")
    doc.add_layer("LayerNorm")
    doc.add_layer("Dense", {"units": 2})
    doc.initialize()
    doc.forward()
    return doc


def parse(blob):
    """The safetensors layout, read by hand from the spec."""
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    return n, header, blob[8 + n:]


@pytest.mark.parametrize("example", ["chapter_shared", "tied_autoencoder"])
def test_npz_is_what_save_parameters_writes(host, tmp_path, example):
    doc = ready(host, example)
    X.export_npz(doc, tmp_path / "ours.npz")
    doc.net.save_parameters(str(tmp_path / "gluon.npz"))
    with np.load(tmp_path / "ours.npz") as a, np.load(tmp_path / "gluon.npz") as b:
        assert a.files == b.files == [k.name for k in X.param_keys(doc)]
        for k in a.files:
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k])


def test_safetensors_layout_follows_the_format(host, tmp_path):
    doc = ready(host, "tied_autoencoder")
    path = tmp_path / "m.safetensors"
    X.export_safetensors(doc, path)
    blob = path.read_bytes()
    n, header, data = parse(blob)
    assert (8 + n) % 8 == 0                                  # data 8-byte aligned
    meta = header.pop("__metadata__")
    assert meta["format"] == "pt" and all(isinstance(v, str) for v in meta.values())
    assert json.loads(meta["paramlab.aliases"]) == {"2.weight": "1.weightᵀ",
                                                     "3.weight": "0.weightᵀ"}
    assert list(header) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias",
                            "3.weight", "3.bias"]
    end = 0
    w1 = doc.params()["sequential0_dense1_weight"].data().asnumpy()       # (3, 8)
    for name, info in header.items():
        b, e = info["data_offsets"]
        assert info["dtype"] == "F32" and b == end
        arr = np.frombuffer(data[b:e], dtype="<f4").reshape(info["shape"])
        end = e
        if name == "2.weight":          # the tied decoder: nn.Linear(3, 8).weight = W1ᵀ
            assert info["shape"] == [8, 3] and np.array_equal(arr, w1.T)
        if name == "1.weight":
            assert np.array_equal(arr, w1)
    assert end == len(data)


def test_pytorch_names_for_normalization_layers(host, tmp_path):
    doc = norm_stack(host)
    assert [k.name for k in X.param_keys(doc)] == [
        "0.weight", "0.bias", "1.gamma", "1.beta", "1.running_mean", "1.running_var",
        "2.gamma", "2.beta", "3.weight", "3.bias"]
    X.export_safetensors(doc, tmp_path / "n.safetensors")
    arrays, _meta = X.read_safetensors(tmp_path / "n.safetensors")
    assert list(arrays) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                            "1.running_var", "2.weight", "2.bias", "3.weight", "3.bias"]
    assert np.array_equal(arrays["1.weight"],
                          doc.params()["sequential0_batchnorm0_gamma"].data().asnumpy())
    # a PyTorch state_dict also carries num_batches_tracked: accepted and ignored
    arrays["1.num_batches_tracked"] = np.array(0, np.int64)
    X.write_safetensors(tmp_path / "torch.safetensors", arrays)
    X.import_params(doc, tmp_path / "torch.safetensors")


@pytest.mark.parametrize("ext", [".npz", ".safetensors"])
@pytest.mark.parametrize("example", ["chapter_shared", "tied_autoencoder"])
def test_round_trip_restores_exact_arrays(host, tmp_path, ext, example):
    doc = ready(host, example)
    doc.set_training(optimizer_settings={"learning_rate": 0.01})
    doc.train(3)
    before = values(doc)
    X.export_params(doc, tmp_path / f"p{ext}")
    doc.initialize(force_reinit=True)
    assert not all(np.array_equal(before[n], a) for n, a in values(doc).items())
    seen = []
    doc.changed.connect(seen.append)
    names = X.import_params(doc, tmp_path / f"p{ext}")
    assert sorted(names) == sorted(before) and seen == ["params"]
    after = values(doc)
    assert all(np.array_equal(before[n], after[n]) for n in before)
    assert doc.history.snapshots[-1].label == f"import p{ext}"
    # into a fresh document whose shapes are still deferred
    fresh = fileformat.load(EXAMPLES / f"{example}.json", host=host)
    X.import_params(fresh, tmp_path / f"p{ext}")
    assert all(np.array_equal(before[n], a) for n, a in values(fresh).items())


def test_mismatched_shapes_are_refused_naming_both(host, tmp_path):
    doc = ready(host, "chapter_shared")
    X.export_npz(doc, tmp_path / "p.npz")
    X.export_safetensors(doc, tmp_path / "p.safetensors")
    other = fileformat.load(EXAMPLES / "chapter_shared.json", host=host)
    other.update_layer(other.layers[3].uid, units=3)
    other.initialize()
    other.forward()
    state = other.capture()
    with pytest.raises(DocumentError, match=r"3\.weight has shape \(2, 4\) in the file but "
                                            r"parameter 'sequential0_dense3_weight', layer "
                                            r"3: Dense\(3\) has shape \(3, 4\)"):
        X.import_params(other, tmp_path / "p.npz")
    with pytest.raises(DocumentError, match=r"3\.weight has shape \(2, 4\)"):
        X.import_params(other, tmp_path / "p.safetensors")
    assert other.state_equals(state)
    tied = ready(host, "tied_autoencoder")
    with pytest.raises(DocumentError, match=r"0\.weight has shape \(4, 5\) in the file but "
                                            r"parameter 'sequential0_dense0_weight', layer "
                                            r"0: Dense\(8, tanh\) has shape \(8, 16\)"):
        X.import_params(tied, tmp_path / "p.npz")


def test_missing_extra_and_inconsistent_names(host, tmp_path):
    doc = ready(host, "chapter_shared")
    state = doc.capture()
    arrays = dict(np.load(_export(doc, tmp_path, ".npz")))
    np.savez(tmp_path / "missing.npz", **{k: v for k, v in arrays.items() if k != "3.bias"})
    with pytest.raises(DocumentError, match=r"no values for 3\.bias \(parameter "
                                            r"'sequential0_dense3_bias', layer 3: Dense\(2\)\)"):
        X.import_params(doc, tmp_path / "missing.npz")
    np.savez(tmp_path / "extra.npz", **arrays, **{"4.weight": np.zeros((2, 2), np.float32)})
    with pytest.raises(DocumentError, match=r"values for 4\.weight, which this model does not"):
        X.import_params(doc, tmp_path / "extra.npz")
    bad = dict(arrays)
    bad["2.weight"] = bad["2.weight"] + 1
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(DocumentError, match=r"1\.weight and 2\.weight are the same parameter"):
        X.import_params(doc, tmp_path / "bad.npz")
    # one name per shared parameter is enough (save_parameters(deduplicate=True))
    np.savez(tmp_path / "dedup.npz", **{k: v for k, v in arrays.items() if k[0] != "2"})
    nan = dict(arrays)
    nan["0.bias"] = np.full(4, np.nan, np.float32)
    np.savez(tmp_path / "nan.npz", **nan)
    with pytest.raises(DocumentError, match=r"0\.bias holds NaN or Inf"):
        X.import_params(doc, tmp_path / "nan.npz")
    ints = dict(arrays)
    ints["0.bias"] = np.zeros(4, np.int32)
    np.savez(tmp_path / "int.npz", **ints)
    with pytest.raises(DocumentError, match=r"0\.bias holds int32 values"):
        X.import_params(doc, tmp_path / "int.npz")
    assert doc.state_equals(state)
    X.import_params(doc, tmp_path / "dedup.npz")


def _export(doc, tmp_path, ext):
    path = tmp_path / f"good{ext}"
    X.export_params(doc, path)
    return path


def _blob(tensors, header_edit=None, tail=b""):
    """A hand-made safetensors file, optionally with an edited header."""
    header, data, off = {}, b"", 0
    for k, a in tensors.items():
        b = a.astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        data += b
        off += len(b)
    if header_edit:
        header_edit(header)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data + tail


@pytest.mark.parametrize("make, message", [
    (lambda good: good[:-5], r"ends at byte .* \(truncated\?\)"),
    (lambda good: good[:6], r"too short to be a safetensors file"),
    (lambda good: struct.pack("<Q", 10 ** 6) + good[8:], r"header claims 1000000 bytes"),
    (lambda good: good[:8] + b"[" + good[9:], r"header is not valid JSON"),
    (lambda good: _blob({"a": np.ones(2), "b": np.ones(2)},
                        lambda h: h["b"].update(data_offsets=[4, 12])),
     r"'b' overlaps the previous tensor"),
    (lambda good: _blob({"a": np.ones(2)}, lambda h: h["a"].update(data_offsets=[0, 4])),
     r"'a' is F32 of shape \(2,\) \(8 bytes\) but its data_offsets span 4"),
    (lambda good: _blob({"a": np.ones(2)}, tail=b"\0" * 4),
     r"4 bytes after the last tensor belong to no tensor"),
    (lambda good: _blob({"a": np.ones(2)}, lambda h: h["a"].update(dtype="F8_E4M3")),
     r"dtype 'F8_E4M3', which ParamLab cannot read"),
    (lambda good: _blob({"a": np.ones(1)}, lambda h: h.update(b=dict(h["a"]))),
     r"overlaps|leaves a hole"),
])
def test_corrupt_safetensors_are_refused(host, tmp_path, make, message):
    doc = ready(host, "chapter_mlp")
    good = _export(doc, tmp_path, ".safetensors").read_bytes()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(make(good))
    state = doc.capture()
    with pytest.raises(DocumentError, match=message):
        X.import_params(doc, path)
    assert doc.state_equals(state)


def test_duplicate_header_names_and_bad_npz(host, tmp_path):
    doc = ready(host, "chapter_mlp")
    text = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' \
           b'"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    (tmp_path / "dup.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + b"\0" * 4)
    with pytest.raises(DocumentError, match="names 'a' twice"):
        X.import_params(doc, tmp_path / "dup.safetensors")
    good = _export(doc, tmp_path, ".npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DocumentError, match=r"Cannot read 'cut\.npz': it is not a valid \.npz"):
        X.import_params(doc, tmp_path / "cut.npz")
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(DocumentError, match=r"Cannot read 'obj\.npz'"):
        X.import_params(doc, tmp_path / "obj.npz")
    with pytest.raises(DocumentError, match=r"use a \.npz or \.safetensors"):
        X.import_params(doc, tmp_path / "x.pt")


def test_export_needs_values_and_writes_atomically(host, tmp_path):
    doc = fileformat.load(EXAMPLES / "chapter_mlp.json", host=host)
    doc.initialize()
    with pytest.raises(DocumentError, match=r"'sequential0_dense0_weight' \(0\.weight, layer "
                                            r"0: Dense\(4, relu\)\) has no values yet "
                                            r"\(deferred\): initialize and run Forward first"):
        X.export_npz(doc, tmp_path / "p.npz")
    assert list(tmp_path.iterdir()) == []
    doc.forward()
    (tmp_path / "p.safetensors").write_bytes(b"old")
    X.export_safetensors(doc, tmp_path / "p.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.safetensors"]
    assert X.read_safetensors(tmp_path / "p.safetensors")[0]["0.bias"].shape == (4,)


def test_dtypes_and_shapes_of_the_format(tmp_path):
    tensors = {"f16": np.arange(4, dtype=np.float16).reshape(2, 2),
               "f64": np.array(2.5), "i64": np.arange(3, dtype=np.int64),
               "u8": np.arange(3, dtype=np.uint8), "b": np.array([True, False]),
               "empty": np.zeros((0, 3), np.float32),
               "big": np.arange(6, dtype=">f4").reshape(3, 2)}
    X.write_safetensors(tmp_path / "t.safetensors", tensors, {"k": "v"})
    back, meta = X.read_safetensors(tmp_path / "t.safetensors")
    assert meta == {"k": "v"}
    for k, a in tensors.items():
        assert back[k].shape == a.shape and np.array_equal(back[k], a)
    _n, header, _d = parse((tmp_path / "t.safetensors").read_bytes())
    assert [header[k]["dtype"] for k in tensors] == ["F16", "F64", "I64", "U8", "BOOL", "F32",
                                                     "F32"]


def test_cross_check_with_the_safetensors_library(host, tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    doc = ready(host, "tied_autoencoder")
    X.export_safetensors(doc, tmp_path / "ours.safetensors")
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    ours, _ = X.read_safetensors(tmp_path / "ours.safetensors")
    assert theirs.keys() == ours.keys()
    assert all(np.array_equal(theirs[k], ours[k]) for k in ours)
    st.save_file(theirs, str(tmp_path / "theirs.safetensors"))
    X.import_params(doc, tmp_path / "theirs.safetensors")
