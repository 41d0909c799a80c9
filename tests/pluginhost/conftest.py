"""Shared fixtures for the plugin-host tests.

Every test runs isolated from the machine: no ``PARAMLAB_PLUGIN_PATH``, no ``PARAMLAB_SAFE_MODE``,
and the user plugin folder redirected under ``tmp_path`` (platformdirs honours ``XDG_DATA_HOME``
on Linux). Modules a test's plugins create in ``sys.modules`` are removed afterwards.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from app.engine import random as engine_random
from app.pluginhost import PluginHost, user_plugin_dir


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    monkeypatch.delenv("PARAMLAB_PLUGIN_PATH", raising=False)
    monkeypatch.delenv("PARAMLAB_SAFE_MODE", raising=False)
    xdg = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg))
    # Never let a test read or write the real user plugin folder.
    assert str(user_plugin_dir()).startswith(str(xdg)), user_plugin_dir()
    before = set(sys.modules)
    yield xdg
    for name in set(sys.modules) - before:
        if name.startswith(("_paramlab_plugin_", "fake_plugin_mod", "broken_plugin_mod",
                            "raising_plugin_mod")):
            del sys.modules[name]


@pytest.fixture
def user_dir(isolated_env) -> Path:
    """The user plugin folder as platformdirs reports it under the isolated XDG_DATA_HOME."""
    return isolated_env / "paramlab" / "plugins"


@pytest.fixture
def write_plugin(tmp_path):
    """``write_plugin(source, name='plug', folder=None) -> Path``: a plugin file (dedented)."""

    def write(source: str, name: str = "plug", folder: Path | None = None) -> Path:
        folder = Path(folder) if folder is not None else tmp_path / "plugins"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.py"
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    return write


@pytest.fixture
def make_host():
    """A host that sees only the built-ins and the given folders (no defaults, no entry points)."""

    def make(*dirs, **kwargs) -> PluginHost:
        kwargs.setdefault("default_dirs", False)
        kwargs.setdefault("entry_points", False)
        return PluginHost(plugin_dirs=dirs, **kwargs)

    return make


@pytest.fixture
def rng_guard():
    """Seed the engine's stream for the test and restore the previous state afterwards."""
    state = engine_random.getstate()
    engine_random.seed(0)
    yield
    engine_random.setstate(state)


@pytest.fixture
def good_source() -> str:
    """A working plugin registering ``Good`` (constant weights, one float setting)."""
    return '''
    from app.engine import init, nd
    from app.pluginhost import hookimpl


    class Good(init.Initializer):
        """Constant weights of value `value`.

        More text that is not the description.
        """

        def __init__(self, value: float = 0.5):
            super().__init__(value=value)
            self.value = value

        def _init_weight(self, name, arr):
            arr[:] = self.value


    @hookimpl
    def paramlab_register_initializers(register):
        register(Good)
'''
