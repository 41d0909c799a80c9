"""``paramlab plugins [--plugin-dir DIR]... [--json]`` and ``paramlab plugins new NAME``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app import cli
from app.engine import random as engine_random
from app.engine.gluon import nn
from app.pluginhost import PluginHost
from app.pluginhost.manager import repo_plugin_dir

REPO = Path(__file__).resolve().parents[2]
BROKEN_SOURCE = "import paramlab_not_installed_pkg\n"


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def two_dirs(tmp_path, write_plugin, good_source):
    a = write_plugin(good_source, name="good", folder=tmp_path / "a")
    b = write_plugin(BROKEN_SOURCE, name="needs_pkg", folder=tmp_path / "b")
    return a, b


def test_list_shows_every_initializer_origin_settings_and_failures(capsys, two_dirs):
    good, broken = two_dirs
    code, out, err = _run(capsys, "plugins", "--plugin-dir", str(good.parent),
                          "--plugin-dir", str(broken.parent))
    assert code == 0 and err == ""
    listing, _, failures = out.partition("Failures (1):")
    for name in ("zeros", "uniform", "xavier", "myinit", "kaiming", "lsuv", "good"):
        assert f"  {name} " in listing, name
    lines = listing.splitlines()
    i = next(n for n, line in enumerate(lines) if line.split()[:1] == ["good"])
    assert lines[i].split()[1] == str(good)
    assert lines[i + 1].strip() == "Constant weights of value `value`."
    assert lines[i + 2].strip() == "settings: value: float = 0.5"
    assert "kaiming" in listing and str(repo_plugin_dir() / "kaiming.py") in listing
    assert "mode: choice = 'fan_in' {fan_in|fan_out}" in listing
    assert "negative_slope: float = 0.01 in [0.0, 1.0]" in listing
    assert "[needs a data batch]" in listing
    assert "zeros" in listing and "settings: no settings" in listing
    # The folders searched, in order, then the failure with its reason and what to do.
    assert f"{good.parent}, {broken.parent}" in listing
    assert str(broken) in failures
    assert "import error" in failures and "paramlab_not_installed_pkg" in failures
    assert "pip install" in failures


def test_list_without_failures(capsys, tmp_path):
    code, out, _ = _run(capsys, "plugins")
    assert code == 0
    assert "No plugin failed to load." in out
    assert str(tmp_path / "xdg-data" / "paramlab" / "plugins") in out   # the user folder


def test_json(capsys, two_dirs):
    good, broken = two_dirs
    code, out, _ = _run(capsys, "plugins", "--plugin-dir", str(good.parent),
                        "--plugin-dir", str(broken.parent), "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"initializers", "failures"}
    by_name = {}
    for entry in doc["initializers"]:
        assert {"name", "origin", "params"} <= set(entry)
        for param in entry["params"]:
            assert {"name", "type", "default"} <= set(param)
        by_name[entry["name"]] = entry
    assert by_name["zeros"] == {**by_name["zeros"], "origin": "built-in", "params": []}
    assert by_name["good"]["origin"] == str(good)
    assert by_name["good"]["params"] == [{"name": "value", "type": "float", "default": 0.5}]
    assert by_name["kaiming"]["params"][2] == {"name": "negative_slope", "type": "float",
                                               "default": 0.01, "min": 0.0, "max": 1.0}
    assert by_name["lsuv"]["params"][2]["type"] == "int"
    assert list(by_name)[:2] == ["zeros", "ones"]             # built-ins first
    assert len(doc["failures"]) == 1
    failure = doc["failures"][0]
    assert {"plugin", "error"} <= set(failure)
    assert failure["plugin"] == str(broken)
    assert "paramlab_not_installed_pkg" in failure["error"]
    # Same content as the host's own view.
    host = PluginHost(plugin_dirs=[good.parent, broken.parent])
    assert [e["name"] for e in doc["initializers"]] == list(host.initializers)


def test_plugin_path_env_and_safe_mode(capsys, monkeypatch, two_dirs):
    good, broken = two_dirs
    monkeypatch.setenv("PARAMLAB_PLUGIN_PATH", os.pathsep.join([str(good.parent),
                                                                str(broken.parent)]))
    doc = json.loads(_run(capsys, "plugins", "--json")[1])
    assert "good" in {e["name"] for e in doc["initializers"]}
    assert len(doc["failures"]) == 1
    monkeypatch.setenv("PARAMLAB_SAFE_MODE", "1")
    code, out, _ = _run(capsys, "plugins")
    assert code == 0
    assert "Plugin folders searched: none (safe mode)" in out
    assert "good" not in out and "kaiming" not in out and "No plugin failed" in out


def test_usage_errors(capsys):
    code, _, err = _run(capsys, "plugins", "--plugin-dir")
    assert code == 2 and "--plugin-dir" in err
    code, _, err = _run(capsys, "plugins", "new")
    assert code == 2 and "NAME" in err


# ----------------------------------------------------------------------------- plugins new
def test_new_writes_a_starter_plugin_that_loads_and_works(capsys, user_dir):
    code, out, err = _run(capsys, "plugins", "new", "my scaled init")
    assert code == 0, err
    path = user_dir / "my_scaled_init.py"
    assert path.is_file() and f"Wrote {path}" in out
    text = path.read_text(encoding="utf-8")
    assert text.count("#") >= 5                               # commented
    assert "class MyScaledInit(init.Initializer):" in text
    assert "@hookimpl" in text and "paramlab_register_initializers" in text
    # The default discovery finds it in the user folder; it validates and initializes.
    host = PluginHost(entry_points=False)
    assert host.failures == [], [str(f) for f in host.failures]
    info = host.initializers["myscaledinit"]
    assert (info.origin, info.label, info.category) == (str(path), "my scaled init",
                                                        "My plugins")
    assert [s.name for s in info.settings] == ["scale", "distribution"]
    assert info.setting("distribution").choices == ("uniform", "normal")
    state = engine_random.getstate()
    try:
        engine_random.seed(0)
        for distribution in ("uniform", "normal"):
            layer = nn.Dense(50, in_units=40)
            layer.initialize(host.create("myscaledinit", scale=0.2, distribution=distribution))
            w = layer.weight.data().asnumpy()
            assert np.isfinite(w).all() and w.std() > 0
            if distribution == "uniform":
                assert np.abs(w).max() < 0.2
    finally:
        engine_random.setstate(state)
    with pytest.raises(ValueError, match="scale"):
        host.create("myscaledinit", scale=-1.0)
    # The listing shows it.
    assert "myscaledinit" in _run(capsys, "plugins")[1]


def test_new_refuses_to_overwrite_without_force(capsys, user_dir):
    assert _run(capsys, "plugins", "new", "mine")[0] == 0
    path = user_dir / "mine.py"
    path.write_text("# my edits\n", encoding="utf-8")
    code, _, err = _run(capsys, "plugins", "new", "mine")
    assert code == 1 and "already exists" in err and "--force" in err
    assert path.read_text(encoding="utf-8") == "# my edits\n"
    assert _run(capsys, "plugins", "new", "mine", "--force")[0] == 0
    assert "class Mine(init.Initializer)" in path.read_text(encoding="utf-8")


def test_new_into_a_given_dir_with_an_awkward_name(capsys, tmp_path):
    target = tmp_path / "deep" / "folder"
    code, out, _ = _run(capsys, "plugins", "new", '2nd "quoted" init', "--dir", str(target))
    assert code == 0
    path = target / "2nd_quoted_init.py"
    assert path.is_file()
    host = PluginHost(plugin_dirs=[target], default_dirs=False, entry_points=False)
    assert host.failures == []
    assert host.initializers["init2ndquotedinit"].label == '2nd "quoted" init'


@pytest.mark.parametrize("name", ["!!!", "   ", "-"])
def test_new_rejects_a_name_without_letters(capsys, name, user_dir):
    code, _, err = _run(capsys, "plugins", "new", name)
    assert code == 2 and "letters" in err
    assert not user_dir.exists() or not any(user_dir.iterdir())


def test_cli_subprocess_json(tmp_path, two_dirs):
    """The real command line in a fresh process: `python -m app plugins --json`."""
    good, broken = two_dirs
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run([sys.executable, "-m", "app", "plugins", "--json", "--plugin-dir",
                           str(good.parent), "--plugin-dir", str(broken.parent)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert "good" in {e["name"] for e in doc["initializers"]}
    assert [f["plugin"] for f in doc["failures"]] == [str(broken)]
