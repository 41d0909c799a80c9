"""PluginHost end to end: discovery, origins, isolation of broken plugins, create(), hot reload,
and the all-or-nothing initialization of plugin initializers.

Every plugin here is a file written to ``tmp_path`` or a fake entry-point distribution (a
``*.dist-info`` folder on a monkeypatched ``sys.path``), exactly as a user would ship one.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from app.engine import init, nd
from app.engine import random as engine_random
from app.engine.gluon import nn
from app.pluginhost import (InitializerInfo, PluginFailure, PluginHost, SettingsError,
                            default_plugin_dirs, user_plugin_dir)
from app.pluginhost import builtin as builtin_plugin
from app.pluginhost.manager import repo_plugin_dir

BUILTIN_NAMES = {"zeros", "ones", "constant", "uniform", "normal", "truncnorm", "xavier",
                 "msraprelu", "orthogonal", "bilinear", "lstmbias"}
SHIPPED_NAMES = {"myinit", "kaiming", "lsuv"}


def _failures_of(host, path) -> list[PluginFailure]:
    return [f for f in host.failures if f.plugin == str(path)]


def _only_failure(host, path) -> PluginFailure:
    found = _failures_of(host, path)
    assert len(found) == 1, [str(f) for f in host.failures]
    return found[0]


def _make_dist(site: Path, dist: str, module: str, source: str, ep_name: str = "fake",
               version: str = "1.0") -> None:
    info = site / f"{dist}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[paramlab]\n{ep_name} = {module}\n",
                                           encoding="utf-8")
    (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")


FAKE_DIST_MODULE = '''
    from app.engine import init
    from app.pluginhost import hookimpl


    class FromDist(init.Initializer):
        """Weights of 3, from an installed distribution."""

        def __init__(self, scale: float = 3.0):
            super().__init__(scale=scale)
            self.scale = scale

        def _init_weight(self, name, arr):
            arr[:] = self.scale


    class Clashy(init.Initializer):
        """Registered by the distribution first."""

        def _init_weight(self, name, arr):
            arr[:] = 1.0


    @hookimpl
    def paramlab_register_initializers(register):
        register(FromDist, label="From a dist", category="Installed")
        register(Clashy)
'''


@pytest.fixture
def fake_dists(tmp_path, monkeypatch):
    """Two fake installed distributions: ``fakedist`` (works) and ``brokendist`` (its module
    imports a package that is not installed)."""
    site = tmp_path / "site"
    site.mkdir()
    _make_dist(site, "fakedist", "fake_plugin_mod", FAKE_DIST_MODULE)
    _make_dist(site, "brokendist", "broken_plugin_mod",
               "import paramlab_no_such_dependency_xyz\n", ep_name="broken")
    monkeypatch.syspath_prepend(str(site))
    return site


# ------------------------------------------------------------------------------------- basics
def test_builtins_arrive_through_the_hook(make_host):
    host = make_host()
    assert set(host.initializers) == BUILTIN_NAMES
    assert host.failures == []
    # The built-ins are a pluggy plugin like any other, not a side table.
    assert host.pm.get_plugin("builtin") is builtin_plugin
    impls = host.pm.hook.paramlab_register_initializers.get_hookimpls()
    assert [i.plugin for i in impls] == [builtin_plugin]
    for name, info in host.initializers.items():
        assert isinstance(info, InitializerInfo)
        assert info.origin == "built-in"
        assert issubclass(info.cls, init.Initializer)
        assert info.name == name
        assert info.description, name
    assert host.initializers["xavier"].cls is init.Xavier
    assert host.initializers["xavier"].category == "Variance scaling"


def test_every_host_has_a_fresh_plugin_manager(make_host, write_plugin, good_source):
    folder = write_plugin(good_source).parent
    a = make_host(folder)
    b = make_host()
    assert a.pm is not b.pm
    assert "good" in a.initializers and "good" not in b.initializers
    # Building a host leaves no global behind: a third one is as empty as b.
    assert "good" not in make_host().initializers
    import pluggy

    import app.pluginhost
    import app.pluginhost.manager
    for module in (app.pluginhost, app.pluginhost.manager, builtin_plugin):
        assert not any(isinstance(v, pluggy.PluginManager) for v in vars(module).values())


def test_register_defaults_and_overrides(make_host, write_plugin):
    path = write_plugin('''
        from typing import Annotated, Literal

        from app.engine import init
        from app.pluginhost import Setting, hookimpl


        class Plain(init.Initializer):
            """First line is the description.

            Second paragraph is not.
            """

            def __init__(self, a: int = 3, b: bool = False, c: str = "x",
                         d: Literal["p", "q"] = "q",
                         e: Annotated[float, init.Range(0.0, 2.0)] = 1.5):
                super().__init__(a=a, b=b, c=c, d=d, e=e)

            def _init_weight(self, name, arr):
                arr[:] = 0.0


        class Tuned(Plain):
            """Tuned."""


        @hookimpl
        def paramlab_register_initializers(register):
            register(Plain)
            register(Tuned, name="tuned-one", label="Tuned one", category="Mine",
                     settings={"a": Setting("a", int, 4, range=init.Range(0, 10))})
    ''')
    host = make_host(path.parent)
    assert host.failures == []
    plain = host.initializers["plain"]
    assert (plain.label, plain.category) == ("Plain", "Plugins")
    assert plain.description == "First line is the description."
    assert plain.origin == str(path)
    assert [(s.name, s.type, s.default) for s in plain.settings] == [
        ("a", int, 3), ("b", bool, False), ("c", str, "x"), ("d", str, "q"), ("e", float, 1.5)]
    assert plain.setting("d").choices == ("p", "q")
    assert plain.setting("e").range.high == 2.0
    assert plain.defaults() == {"a": 3, "b": False, "c": "x", "d": "q", "e": 1.5}
    tuned = host.initializers["tuned-one"]
    assert (tuned.label, tuned.category) == ("Tuned one", "Mine")
    assert tuned.setting("a").default == 4
    with pytest.raises(SettingsError, match="'a'"):
        host.create("tuned-one", a=11)
    assert host.create("tuned-one")._kwargs["a"] == 4


# ------------------------------------------------------------------------ discovery and order
def test_entry_point_distributions(make_host, fake_dists):
    host = make_host(entry_points=True)
    info = host.initializers["fromdist"]
    assert info.origin == "distribution fakedist 1.0"
    assert (info.label, info.category) == ("From a dist", "Installed")
    assert host.create("fromdist", scale=2.0).scale == 2.0
    broken = _only_failure(host, "distribution brokendist 1.0")
    assert broken.kind == "import error"
    assert "paramlab_no_such_dependency_xyz" in broken.error
    assert "pip install" in broken.error and "reload" in broken.error
    assert "Traceback" in broken.traceback
    # entry_points=False ignores installed distributions entirely.
    assert "fromdist" not in make_host(entry_points=False).initializers


def test_entry_point_whose_module_raises(make_host, tmp_path, monkeypatch):
    site = tmp_path / "site2"
    site.mkdir()
    _make_dist(site, "raisingdist", "raising_plugin_mod", "raise RuntimeError('boom at import')\n",
               ep_name="raising", version="2.3")
    monkeypatch.syspath_prepend(str(site))
    host = make_host(entry_points=True)
    failure = _only_failure(host, "distribution raisingdist 2.3")
    assert failure.kind == "load error"
    assert "boom at import" in failure.error and "uninstall" in failure.error
    assert BUILTIN_NAMES <= set(host.initializers)


def test_two_distributions_with_the_same_entry_point_name(make_host, fake_dists):
    _make_dist(fake_dists, "otherdist", "fake_plugin_mod_two", """
        from app.engine import init
        from app.pluginhost import hookimpl


        class Second(init.Initializer):
            \"\"\"From a second distribution whose entry point is also called 'fake'.\"\"\"

            def _init_weight(self, name, arr):
                arr[:] = 2.0


        @hookimpl
        def paramlab_register_initializers(register):
            register(Second)
    """)
    host = make_host(entry_points=True)
    assert host.initializers["second"].origin == "distribution otherdist 1.0"
    assert host.initializers["fromdist"].origin == "distribution fakedist 1.0"
    assert [f.kind for f in host.failures] == ["import error"]      # brokendist only


def test_load_order_builtins_then_entry_points_then_folders(make_host, fake_dists,
                                                            write_plugin):
    path = write_plugin('''
        from app.engine import init
        from app.pluginhost import hookimpl


        class Clashy(init.Initializer):
            """The folder's clashy."""

            def _init_weight(self, name, arr):
                arr[:] = 2.0


        class Uniform(init.Initializer):
            """Shadows the built-in's name."""

            def _init_weight(self, name, arr):
                arr[:] = 3.0


        @hookimpl
        def paramlab_register_initializers(register):
            register(Clashy)
            register(Uniform)
    ''', name="late")
    host = make_host(path.parent, entry_points=True)
    # First come keeps the name; the later one stays reachable as name@plugin.
    assert host.initializers["uniform"].cls is init.Uniform
    assert host.initializers["uniform@late"].origin == str(path)
    assert host.initializers["clashy"].origin == "distribution fakedist 1.0"
    assert host.initializers["clashy@late"].origin == str(path)
    clashes = [f for f in host.failures if f.kind == "name clash"]
    assert {f.names for f in clashes} == {("clashy@late",), ("uniform@late",)}
    for f in clashes:
        assert f.plugin == str(path)
        assert "register(cls, name=...)" in f.error
    clash = next(f for f in clashes if f.names == ("clashy@late",))
    assert "distribution fakedist 1.0" in clash.error
    names = list(host.initializers)
    assert names.index("xavier") < names.index("fromdist") < names.index("clashy@late")


def test_default_dirs_discovery(monkeypatch, tmp_path, user_dir, write_plugin, good_source):
    """Repo plugins/, the user folder (platformdirs), PARAMLAB_PLUGIN_PATH, then --plugin-dir."""
    assert user_plugin_dir() == user_dir
    write_plugin(good_source.replace("register(Good)", "register(Good, name='in_user')"),
                 folder=user_dir)
    env1, env2 = tmp_path / "env1", tmp_path / "env2"
    write_plugin(good_source.replace("register(Good)", "register(Good, name='in_env1')"),
                 folder=env1)
    write_plugin(good_source.replace("register(Good)", "register(Good, name='in_env2')"),
                 folder=env2)
    extra = write_plugin(good_source.replace("register(Good)", "register(Good, name='extra')"),
                         folder=tmp_path / "extra").parent
    monkeypatch.setenv("PARAMLAB_PLUGIN_PATH", os.pathsep.join([str(env1), "", str(env2)]))
    assert default_plugin_dirs() == [repo_plugin_dir(), user_dir, env1, env2]
    host = PluginHost(plugin_dirs=[extra], entry_points=False)
    assert host.plugin_dirs == [repo_plugin_dir(), user_dir, env1, env2, extra]
    assert host.failures == [], [str(f) for f in host.failures]
    assert {"in_user", "in_env1", "in_env2", "extra"} | SHIPPED_NAMES | BUILTIN_NAMES <= \
        set(host.initializers)
    assert host.initializers["kaiming"].origin == str(repo_plugin_dir() / "kaiming.py")
    assert host.initializers["in_user"].origin == str(user_dir / "plug.py")


def test_same_folder_twice_loads_once(make_host, write_plugin, good_source):
    folder = write_plugin(good_source).parent
    host = make_host(folder, folder)
    assert host.failures == []
    assert [n for n in host.initializers if n.startswith("good")] == ["good"]


def test_missing_user_folder_is_fine_missing_explicit_folder_is_reported(tmp_path, make_host):
    host = PluginHost(entry_points=False)        # the user folder does not exist: no failure
    assert host.failures == []
    missing = tmp_path / "nope"
    host = make_host(missing)
    failure = _only_failure(host, missing)
    assert failure.kind == "missing folder" and "--plugin-dir" in failure.error


def test_private_files_are_skipped(make_host, write_plugin, good_source):
    folder = write_plugin("raise SystemError('must not run')\n", name="_helper").parent
    write_plugin(good_source, folder=folder)
    host = make_host(folder)
    assert host.failures == [] and "good" in host.initializers


@pytest.mark.parametrize("value, safe", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_safe_mode_loads_builtins_only(monkeypatch, fake_dists, write_plugin, good_source,
                                       user_dir, value, safe):
    write_plugin(good_source, folder=user_dir)
    extra = write_plugin(good_source.replace("register(Good)", "register(Good, name='x2')"),
                         name="x2").parent
    monkeypatch.setenv("PARAMLAB_SAFE_MODE", value)
    host = PluginHost(plugin_dirs=[extra])
    assert host.safe_mode is safe
    if safe:
        assert set(host.initializers) == BUILTIN_NAMES
        assert host.plugin_dirs == [] and host.failures == []
    else:
        assert {"good", "x2", "fromdist"} | SHIPPED_NAMES <= set(host.initializers)


# ---------------------------------------------------------------------- every failure kind
GOOD_NEIGHBOUR = "good"

BROKEN = {
    "syntax error": ('''
        from app.pluginhost import hookimpl

        def paramlab_register_initializers(register)
            pass
    ''', ["line 4", "Fix the file, then reload plugins"]),
    "import error": ('''
        import paramlab_missing_dependency_abc
    ''', ["paramlab_missing_dependency_abc", "pip install", "reload"]),
    "hook raised": ('''
        from app.engine import init
        from app.pluginhost import hookimpl


        class Early(init.Initializer):
            def _init_weight(self, name, arr):
                arr[:] = 0.0


        @hookimpl
        def paramlab_register_initializers(register):
            register(Early)
            raise KeyError("oops in the hook")
    ''', ["KeyError", "oops in the hook", "line 14", "Nothing this plugin registered",
          "fix the hook, then reload plugins"]),
    "unknown hook": ('''
        from app.pluginhost import hookimpl


        @hookimpl
        def paramlab_register_initialisers(register):
            pass
    ''', ["paramlab_register_initialisers", "Did you mean paramlab_register_initializers",
          "Rename the function"]),
    "not an initializer": ('''
        from app.pluginhost import hookimpl


        class NotAnInit:
            pass


        @hookimpl
        def paramlab_register_initializers(register):
            register(NotAnInit)
    ''', ["NotAnInit", "subclass it", "Initializer"]),
    "invalid defaults": ('''
        from typing import Annotated

        from app.engine import init
        from app.pluginhost import hookimpl


        class BadDefault(init.Initializer):
            def __init__(self, scale: Annotated[float, init.Range(0.0, 1.0)] = 5.0):
                super().__init__(scale=scale)

            def _init_weight(self, name, arr):
                arr[:] = 0.0


        @hookimpl
        def paramlab_register_initializers(register):
            register(BadDefault)
    ''', ["BadDefault", "scale", "[0.0, 1.0]", "5.0", "then reload plugins"]),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_plugin_is_reported_and_others_keep_working(kind, make_host, write_plugin,
                                                            good_source):
    source, needles = BROKEN[kind]
    bad = write_plugin(source, name="bad")
    write_plugin(good_source, name="zz_good", folder=bad.parent)
    host = make_host(bad.parent)
    failure = _only_failure(host, bad)
    assert failure.kind == kind
    for needle in needles:
        assert needle in failure.error, (needle, failure.error)
    assert str(bad) in str(failure)
    if kind not in ("not an initializer",):
        assert failure.traceback, kind
    # Nothing of the broken plugin is offered; everything else is.
    assert {i.origin for i in host.initializers.values()} == {"built-in", str(bad.parent /
                                                                             "zz_good.py")}
    assert host.create(GOOD_NEIGHBOUR).value == 0.5


def test_load_error_names_the_line(make_host, write_plugin):
    bad = write_plugin("x = 1\n\nraise RuntimeError('plugin exploded')\n", name="bad")
    failure = _only_failure(make_host(bad.parent), bad)
    assert failure.kind == "load error"
    assert "plugin exploded" in failure.error and "at line 3" in failure.error
    assert str(bad) in failure.traceback


def test_import_error_from_a_name(make_host, write_plugin):
    bad = write_plugin("from app.engine.initializer import NoSuchThing\n", name="bad")
    failure = _only_failure(make_host(bad.parent), bad)
    assert failure.kind == "import error" and "NoSuchThing" in failure.error


def test_import_error_of_a_missing_submodule_does_not_suggest_pip(make_host, write_plugin):
    # `init` is an attribute of app.engine, not a module: the package is there, the name is wrong.
    bad = write_plugin("import app.engine.init\n", name="bad")
    failure = _only_failure(make_host(bad.parent), bad)
    assert failure.kind == "import error"
    assert "app.engine.init" in failure.error
    assert "pip install" not in failure.error and "spelling" in failure.error


@pytest.mark.parametrize("value", ["42", "init.Uniform()", "len", "None"])
def test_register_of_non_classes(value, make_host, write_plugin, good_source):
    bad = write_plugin(f'''
        from app.engine import init
        from app.pluginhost import hookimpl

        @hookimpl
        def paramlab_register_initializers(register):
            register({value})
    ''', name="bad")
    write_plugin(good_source, folder=bad.parent)
    host = make_host(bad.parent)
    assert _only_failure(host, bad).kind == "not an initializer"
    assert "good" in host.initializers


def test_registration_is_per_class_one_bad_one_good(make_host, write_plugin):
    path = write_plugin('''
        from app.engine import init
        from app.pluginhost import hookimpl


        class Fine(init.Initializer):
            def _init_weight(self, name, arr):
                arr[:] = 1.0


        @hookimpl
        def paramlab_register_initializers(register):
            register(object)
            register(Fine)
    ''')
    host = make_host(path.parent)
    assert _only_failure(host, path).kind == "not an initializer"
    assert "fine" in host.initializers


def test_hook_with_wrong_signature_is_reported(make_host, write_plugin, good_source):
    bad = write_plugin('''
        from app.pluginhost import hookimpl

        @hookimpl
        def paramlab_register_initializers(register, extra):
            pass
    ''', name="bad")
    write_plugin(good_source, folder=bad.parent)
    host = make_host(bad.parent)
    failure = _only_failure(host, bad)
    assert failure.kind == "invalid hook" and "extra" in failure.error
    assert "good" in host.initializers


def test_unmarked_hook_is_reported(make_host, write_plugin):
    path = write_plugin('''
        from app.engine import init

        def paramlab_register_initializers(register):
            register(init.One)
    ''')
    failure = _only_failure(make_host(path.parent), path)
    assert failure.kind == "unmarked hook" and "@hookimpl" in failure.error


def test_misspelled_unmarked_hook_is_reported(make_host, write_plugin):
    path = write_plugin('''
        def paramlab_register_initialiser(register):
            pass
    ''')
    failure = _only_failure(make_host(path.parent), path)
    assert failure.kind == "unknown hook"
    assert "Did you mean paramlab_register_initializers" in failure.error


def test_register_with_a_wrong_keyword_is_a_hook_failure(make_host, write_plugin):
    path = write_plugin('''
        from app.engine import init
        from app.pluginhost import hookimpl

        @hookimpl
        def paramlab_register_initializers(register):
            register(init.One, nmae="typo")
    ''')
    failure = _only_failure(make_host(path.parent), path)
    assert failure.kind == "hook raised" and "nmae" in failure.error


@pytest.mark.parametrize("init_src, needle", [
    ("def __init__(self, k):\n    super().__init__()", "k"),
    ("def __init__(self, k: list = []):\n    super().__init__()", "list"),
    ("def __init__(self, k: int = 'three'):\n    super().__init__()", "whole number"),
    ("def __init__(self, k: float = 1.0):\n    raise ValueError('rejects its own defaults')",
     "rejects its own defaults"),
    ("def __init__(self, k: bool = 1):\n    super().__init__()", "true or false"),
])
def test_defaults_that_do_not_validate(init_src, needle, make_host, write_plugin):
    body = textwrap.indent(init_src, " " * 4)
    path = write_plugin(
        "from app.engine import init\nfrom app.pluginhost import hookimpl\n\n\n"
        f"class Odd(init.Initializer):\n{body}\n\n"
        "    def _init_weight(self, name, arr):\n        arr[:] = 0.0\n\n\n"
        "@hookimpl\ndef paramlab_register_initializers(register):\n    register(Odd)\n")
    host = make_host(path.parent)
    failure = _only_failure(host, path)
    assert failure.kind == "invalid defaults"
    assert needle in failure.error and "Odd" in failure.error
    assert failure.names == ("odd",)
    assert "odd" not in host.initializers


def test_invalid_name_is_reported(make_host, write_plugin):
    path = write_plugin('''
        from app.engine import init
        from app.pluginhost import hookimpl

        @hookimpl
        def paramlab_register_initializers(register):
            register(init.One, name="has space")
    ''')
    assert _only_failure(make_host(path.parent), path).kind == "invalid name"


def test_name_clash_between_two_plugin_files(make_host, write_plugin, good_source):
    a = write_plugin(good_source, name="a_first")
    b = write_plugin(good_source.replace("= 0.5", "= 0.25"), name="b_second")
    host = make_host(a.parent)
    assert host.initializers["good"].origin == str(a)
    assert host.initializers["good@b_second"].origin == str(b)
    assert host.create("good").value == 0.5
    assert host.create("good@b_second").value == 0.25
    failure = _only_failure(host, b)
    assert failure.kind == "name clash" and str(a) in failure.error
    assert "good@b_second" in failure.error


def test_a_plugin_calling_sys_exit_does_not_end_the_app(make_host, write_plugin, good_source):
    bad = write_plugin("import sys\nsys.exit(3)\n", name="bad")
    write_plugin(good_source, folder=bad.parent)
    host = make_host(bad.parent)
    assert _only_failure(host, bad).kind == "load error"
    assert "good" in host.initializers


def test_plugin_with_postponed_annotations(make_host, write_plugin):
    path = write_plugin('''
        from __future__ import annotations

        from typing import Annotated, Literal

        from app.engine import init
        from app.pluginhost import hookimpl


        class Later(init.Initializer):
            """Annotations are strings here."""

            def __init__(self, k: Annotated[int, init.Range(1, 5)] = 2,
                         how: Literal["a", "b"] = "a"):
                super().__init__(k=k, how=how)

            def _init_weight(self, name, arr):
                arr[:] = 0.0


        @hookimpl
        def paramlab_register_initializers(register):
            register(Later)
    ''')
    host = make_host(path.parent)
    assert host.failures == []
    info = host.initializers["later"]
    assert info.setting("k").type is int and info.setting("k").range.high == 5
    assert info.setting("how").choices == ("a", "b")
    with pytest.raises(SettingsError):
        host.create("later", k=9)


# --------------------------------------------------------------------------------- create()
def test_create_validates_settings(make_host):
    host = make_host()
    assert host.create("uniform", scale=0.5).scale == 0.5
    assert host.create("uniform", scale=1).scale == 1.0          # an int is a fine float
    assert isinstance(host.create("uniform", scale=1).scale, float)
    with pytest.raises(SettingsError, match=r"setting 'scale' of initializer 'uniform' must be "
                                            r"a number in \[0.0, ∞\), got -1.0"):
        host.create("uniform", scale=-1.0)
    with pytest.raises(SettingsError, match="must be a number, got 'big'"):
        host.create("uniform", scale="big")
    with pytest.raises(SettingsError, match="must be a number, got True"):
        host.create("uniform", scale=True)
    with pytest.raises(SettingsError, match="finite"):
        host.create("uniform", scale=float("nan"))
    with pytest.raises(SettingsError, match=r"one of 'uniform', 'gaussian', got 'gauss'"):
        host.create("xavier", rnd_type="gauss")
    with pytest.raises(SettingsError, match=r"has no setting 'sigma' \(its settings: scale\)"):
        host.create("uniform", sigma=1.0)
    with pytest.raises(SettingsError, match=r"No initializer named 'unifrom'\. Did you mean "
                                            r"'uniform'"):
        host.create("unifrom")
    # SettingsError is a ValueError, so callers that catch ValueError keep working.
    assert issubclass(SettingsError, ValueError)
    xavier = host.create("xavier", rnd_type="gaussian", magnitude=2)
    assert (xavier.rnd_type, xavier.factor_type, xavier.magnitude) == ("gaussian", "avg", 2.0)
    assert host.create("xavier") == init.Xavier()


def test_create_reports_a_constructor_that_rejects_its_settings(make_host):
    host = make_host(repo_plugin_dir())
    with pytest.raises(SettingsError, match=r"initializer 'myinit' rejected its settings.*"
                                            r"high \(1.0\) must be greater than low \(2.0\)"):
        host.create("myinit", low=2.0, high=1.0)


def test_parse_spec(make_host):
    host = make_host(repo_plugin_dir())
    assert host.parse_spec("xavier:magnitude=2,rnd_type=gaussian") == (
        "xavier", {"magnitude": 2.0, "rnd_type": "gaussian"})
    assert host.parse_spec(" zeros ") == ("zeros", {})
    k = host.create_from_spec("kaiming: mode=fan_out, negative_slope=0.2")
    assert (k.mode, k.negative_slope) == ("fan_out", 0.2)
    with pytest.raises(SettingsError, match="no setting 'bogus'"):
        host.parse_spec("uniform:bogus=1")
    with pytest.raises(SettingsError, match="not key=value"):
        host.parse_spec("uniform:0.5")
    with pytest.raises(SettingsError, match="must be a number, got 'abc'"):
        host.parse_spec("uniform:scale=abc")
    with pytest.raises(SettingsError, match=r"\[0.0, 1.0\]"):
        host.parse_spec("kaiming:negative_slope=3")


# ------------------------------------------------------------------------------ hot reload
def test_hot_reload_fixes_a_broken_plugin(make_host, write_plugin, good_source):
    path = write_plugin(good_source.replace("register(Good)", "register(Good"), name="wip")
    host = make_host(path.parent)
    assert _only_failure(host, path).kind == "syntax error"
    assert "good" not in host.initializers
    old_pm = host.pm

    path.write_text(textwrap.dedent(good_source), encoding="utf-8")
    assert host.reload() is host
    assert host.failures == []
    assert host.pm is not old_pm
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(3, in_units=2))
    net.initialize(host.create("good", value=0.75))
    assert (net[0].weight.data().asnumpy() == 0.75).all()


def test_hot_reload_picks_up_edits_and_removals(make_host, write_plugin, good_source):
    path = write_plugin(good_source, name="edit")
    other = write_plugin(good_source.replace("register(Good)", "register(Good, name='gone')"),
                         name="other")
    host = make_host(path.parent)
    cls_before = host.initializers["good"].cls
    module_before = sys.modules[cls_before.__module__]
    assert host.create("good").value == 0.5

    path.write_text(textwrap.dedent(good_source).replace("= 0.5", "= 0.125"), encoding="utf-8")
    other.unlink()
    host.reload()
    assert host.create("good").value == 0.125
    assert host.initializers["good"].cls is not cls_before
    assert "gone" not in host.initializers
    # The old module was dropped, not left behind in sys.modules.
    assert sys.modules.get(cls_before.__module__) is not module_before


def test_reload_breaking_a_working_plugin_keeps_the_rest(make_host, write_plugin, good_source):
    path = write_plugin(good_source, name="edit")
    write_plugin(good_source.replace("register(Good)", "register(Good, name='stays')"),
                 name="stays")
    host = make_host(path.parent)
    path.write_text("import paramlab_not_installed_qq\n", encoding="utf-8")
    host.reload()
    assert _only_failure(host, path).kind == "import error"
    assert "good" not in host.initializers and "stays" in host.initializers


# ------------------------------------------------------- failures at initialization time
BAD_INITIALIZERS = '''
    import numpy as np

    from app.engine import init
    from app.pluginhost import hookimpl


    class Raiser(init.Initializer):
        """Raises."""

        def _init_weight(self, name, arr):
            raise RuntimeError("raiser is broken")


    class Partial(init.Initializer):
        """Writes only the first row."""

        def _init_weight(self, name, arr):
            arr[0] = 1.0


    class NanWriter(init.Initializer):
        """Writes a NaN."""

        def _init_weight(self, name, arr):
            arr[:] = 0.5
            arr[0] = float("nan")


    class InfWriter(init.Initializer):
        """Writes an infinity."""

        def _init_weight(self, name, arr):
            arr[:] = float("inf")


    class Float64(init.Initializer):
        """Replaces the array with a float64 one."""

        def _init_weight(self, name, arr):
            arr._data = np.zeros(arr.shape, dtype=np.float64)


    @hookimpl
    def paramlab_register_initializers(register):
        for cls in (Raiser, Partial, NanWriter, InfWriter, Float64):
            register(cls)
'''


@pytest.mark.parametrize("name, cls_name, needle", [
    ("raiser", "Raiser", "raiser is broken"),
    ("partial", "Partial", "unwritten"),
    ("nanwriter", "NanWriter", "NaN or infinite"),
    ("infwriter", "InfWriter", "NaN or infinite"),
    ("float64", "Float64", "float64"),
])
def test_bad_initializer_changes_no_parameter(name, cls_name, needle, make_host, write_plugin,
                                              rng_guard):
    path = write_plugin(BAD_INITIALIZERS, name="bad_inits")
    host = make_host(path.parent)
    assert host.failures == []
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, activation="relu"), nn.Dense(2))
    net.initialize(init.Uniform())
    x = nd.random.uniform(shape=(3, 5))
    net(x)
    params = net.collect_params()
    before = {k: (p.data(), p.data().asnumpy().copy()) for k, p in params.items()}
    state = engine_random.getstate()

    with pytest.raises(Exception) as excinfo:
        net.initialize(host.create(name), force_reinit=True)
    message = str(excinfo.value)
    assert cls_name in message
    assert needle in message
    first_weight = next(k for k in before if k.endswith("weight"))
    assert first_weight in message                 # the parameter is named
    for k, p in params.items():
        assert p.data() is before[k][0]             # same array objects
        np.testing.assert_array_equal(p.data().asnumpy(), before[k][1])
        assert p.data().asnumpy().dtype == np.float32
    # The random stream was rewound: the next draw is what it would have been.
    after = nd.random.uniform(shape=(8,)).asnumpy()
    engine_random.setstate(state)
    np.testing.assert_array_equal(after, nd.random.uniform(shape=(8,)).asnumpy())
    # The net still works with the old values.
    net(x)


def test_bad_initializer_on_a_deferred_net_fails_at_the_forward(make_host, write_plugin,
                                                                rng_guard):
    path = write_plugin(BAD_INITIALIZERS, name="bad_inits")
    host = make_host(path.parent)
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, activation="relu"), nn.Dense(2))
    net.initialize(host.create("nanwriter"))
    with pytest.raises(ValueError, match=r"NanWriter.*dense0_weight"):
        net(nd.ones((3, 5)))
    assert net[0].weight.is_deferred


def test_deferred_failure_in_a_later_layer_undoes_the_earlier_ones(make_host, write_plugin,
                                                                   rng_guard):
    path = write_plugin('''
        from app.engine import init, nd
        from app.pluginhost import hookimpl


        class SecondFails(init.Initializer):
            """Fine for the first layer, raises for the second."""

            def _init_weight(self, name, arr):
                if "dense1" in name:
                    raise ArithmeticError("second layer refused")
                nd.random.uniform(-1, 1, out=arr)


        @hookimpl
        def paramlab_register_initializers(register):
            register(SecondFails)
    ''')
    host = make_host(path.parent)
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, activation="relu"), nn.Dense(2))
    net.initialize(host.create("secondfails"))
    state = engine_random.getstate()
    with pytest.raises(ArithmeticError, match=r"(?s)second layer refused.*dense1_weight.*"
                                              r"SecondFails"):
        net(nd.ones((3, 5)))
    # All or nothing across the forward pass: dense0's weight is deferred again ...
    assert net[0].weight.is_deferred and net[1].weight.is_deferred
    # ... and the stream is where it was, so a good initializer now draws what it would have.
    net.initialize(init.Uniform(), force_reinit=True)
    net(nd.ones((3, 5)))
    got = net[0].weight.data().asnumpy()
    engine_random.setstate(state)
    expect = nd.random.uniform(-0.07, 0.07, shape=(4, 5)).asnumpy()
    np.testing.assert_array_equal(got, expect)


def test_an_initializer_without_init_weight_is_refused_at_registration(make_host,
                                                                       write_plugin):
    path = write_plugin('''
        from app.engine import init
        from app.pluginhost import hookimpl


        class Forgot(init.Initializer):
            """Has no _init_weight."""

            def _init_bias(self, name, arr):
                arr[:] = 1.0


        @hookimpl
        def paramlab_register_initializers(register):
            register(Forgot)
    ''')
    host = make_host(path.parent)
    failure = _only_failure(host, path)
    assert failure.kind == "not an initializer"
    assert "Forgot" in failure.error and "_init_weight(name, arr)" in failure.error
    assert "forgot" not in host.initializers
