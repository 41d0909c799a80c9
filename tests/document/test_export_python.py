"""Export as Python: the script, run in a fresh process, reproduces the document bit for bit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.document import Document, DocumentError, fileformat
from app.document.export_python import script_for, write_script
from app.document.interchange import param_keys
from app.pluginhost import PluginHost

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"


@pytest.fixture(scope="module")
def host():
    return PluginHost(plugin_dirs=[ROOT / "plugins"], default_dirs=False, entry_points=False)


def run_script(text, tmp_path):
    """Run the script in a fresh interpreter; its parameters by structural key."""
    script, out = tmp_path / "exported.py", tmp_path / "params.npz"
    script.write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PARAMLAB_PLUGIN_PATH": ""}
    proc = subprocess.run([sys.executable, str(script), str(out)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as npz:
        return {k: npz[k] for k in npz.files}, proc.stdout


def assert_reproduces(doc, arrays):
    keys = param_keys(doc)
    assert list(arrays) == [k.name for k in keys]
    for k in keys:
        mine = k.param.data()._data
        assert arrays[k.name].dtype == mine.dtype and np.array_equal(arrays[k.name], mine), \
            k.name


def test_chapter_shared_with_a_non_default_configuration(host, tmp_path):
    doc = fileformat.load(EXAMPLES / "chapter_shared.json", host=host)
    doc.set_input(distribution="normal", std=2.0, seed=7)
    doc.set_training(loss="l2", optimizer="sgd", batch_size=2,
                     optimizer_settings={"learning_rate": 0.05, "momentum": 0.9, "wd": 1e-3},
                     target={"distribution": "uniform", "low": -1.0, "high": 1.0, "seed": 3})
    doc.set_layer_init(doc.layers[1].uid, "xavier", {"magnitude": 2.0})
    doc.set_param_init(doc.layers[0].uid, "bias", "constant", {"value": 0.5})
    doc.initialize()
    doc.forward()
    result = doc.train(5)
    text = script_for(doc, steps=5)
    assert "params=net[1].params" in text and "init.Xavier(magnitude=2.0)" in text
    assert "net[0].bias.initialize(init=init.Constant(value=0.5), default_init=global_init)" \
        in text
    arrays, stdout = run_script(text, tmp_path)
    assert_reproduces(doc, arrays)
    assert f"step 5: loss {result.losses[-1]:.6g}" in stdout


def test_ties_plugins_normalization_dropout_and_files(host, tmp_path):
    doc = Document(host=host)
    l1 = doc.add_layer("Dense", {"units": 8, "activation": "tanh"})
    doc.add_layer("BatchNorm")
    doc.add_layer("Dropout", {"rate": 0.25})
    l4 = doc.add_layer("Dense", {"units": 3, "activation": "relu"})
    doc.add_layer("LeakyReLU", {"alpha": 0.1})
    l6 = doc.add_layer("Dense", {"units": 8})
    doc.add_layer("LayerNorm")
    doc.add_layer("Dense", {"units": 4, "use_bias": False})
    doc.link(l6, l4, "tie")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(6, 8)).astype(np.float32))
    np.save(tmp_path / "t.npy", (rng.uniform(size=(6, 4)) > 0.5).astype(np.float32))
    doc.load_input(tmp_path / "x.npy")
    doc.set_loss("sigmoid_bce")
    doc.load_target(tmp_path / "t.npy")
    doc.set_optimizer("adam", {"learning_rate": 0.01, "wd": 1e-4})
    doc.set_layer_init(l1, "myinit", {"low": -0.5, "high": 0.5})
    doc.set_param_init(l4, "weight", "normal", {"sigma": 0.3})
    doc.initialize()
    doc.forward()
    doc.train(6)
    text = script_for(doc, steps=6)
    assert "tie_weight=net[3].weight" in text and "host.create('myinit', low=-0.5, high=0.5)" \
        in text and "_array(" in text
    arrays, _out = run_script(text, tmp_path)
    assert_reproduces(doc, arrays)


def test_data_dependent_global_initializer_and_raw_loss(host, tmp_path):
    doc = fileformat.load(EXAMPLES / "chapter_shared.json", host=host)
    doc.set_global_init("lsuv")
    doc.set_optimizer("rmsprop", {"centered": True, "learning_rate": 0.01})
    doc.initialize()
    doc.forward()
    doc.train(3)
    text = script_for(doc, steps=3)
    assert "init.initialize_with_data(net, global_init, x)" in text and "out.backward()" in text
    arrays, _out = run_script(text, tmp_path)
    assert_reproduces(doc, arrays)


def test_script_text_and_refusals(host, tmp_path):
    doc = fileformat.load(EXAMPLES / "chapter_mlp.json", host=host)
    text = script_for(doc)
    compile(text, "exported.py", "exec")
    assert "trainer" not in text and "net.initialize(global_init)" in text
    assert "nd.random.seed(0)\nx = nd.random.uniform(0.0, 1.0, shape=(3, 5))" in text
    path = tmp_path / "s.py"
    path.write_text("old")
    write_script(doc, path, steps=2)
    assert path.read_text() == script_for(doc, steps=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.py"]
    with pytest.raises(DocumentError, match="steps must be a whole number ≥ 0"):
        script_for(doc, steps=-1)
    with pytest.raises(DocumentError, match="add a layer first"):
        script_for(Document(host=host))
    doc.set_global_init("myinit")
    doc.host = PluginHost(default_dirs=False, entry_points=False)      # without the plugin
    with pytest.raises(DocumentError, match="No initializer named 'myinit'"):
        script_for(doc)
