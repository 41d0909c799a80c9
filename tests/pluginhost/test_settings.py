"""The forms' signature introspection (``settings_of``), validation and text parsing."""

from __future__ import annotations

import json
import math
from typing import Annotated, Literal, Optional

import pytest

from app.engine import init
from app.pluginhost import REQUIRED, PluginHost, Setting, SettingsError
from app.pluginhost.manager import repo_plugin_dir
from app.pluginhost.settings import parse_value, settings_of, validate


class Everything(init.Initializer):
    """One setting of every kind a form offers."""

    def __init__(self, count: int = 3, scale: float = 0.5, flag: bool = True, label: str = "hi",
                 mode: Literal["fan_in", "fan_out"] = "fan_in",
                 order: Literal[1, 2, 3] = 2,
                 bounded: Annotated[float, init.Range(0.0, 1.0)] = 0.25,
                 open_low: Annotated[float, init.Range(0.0, None, low_open=True)] = 1.0,
                 steps: Annotated[int, init.Range(1, 10)] = 5,
                 maybe: Optional[float] = 2.0,           # noqa: UP007 - Optional is the point
                 untyped=7, *args, keyword_only: bool = False, **kwargs):
        super().__init__()

    def _init_weight(self, name, arr):
        arr[:] = 0.0


def _by_name(settings):
    return {s.name: s for s in settings}


def test_settings_of_reads_every_kind_from_the_signature():
    s = _by_name(settings_of(Everything))
    assert list(s) == ["count", "scale", "flag", "label", "mode", "order", "bounded",
                       "open_low", "steps", "maybe", "untyped", "keyword_only"]
    assert (s["count"].type, s["count"].default, s["count"].type_name) == (int, 3, "int")
    assert (s["scale"].type, s["scale"].default, s["scale"].type_name) == (float, 0.5, "float")
    assert (s["flag"].type, s["flag"].type_name) == (bool, "bool")
    assert (s["label"].type, s["label"].type_name) == (str, "str")
    assert (s["mode"].type, s["mode"].choices, s["mode"].type_name) == (
        str, ("fan_in", "fan_out"), "choice")
    assert (s["order"].type, s["order"].choices) == (int, (1, 2, 3))
    assert (s["bounded"].range.low, s["bounded"].range.high) == (0.0, 1.0)
    assert s["open_low"].range.low_open and s["open_low"].range.high is None
    assert (s["steps"].type, s["steps"].range.low, s["steps"].range.high) == (int, 1, 10)
    assert s["maybe"].type is float                   # Optional[float] offers a float
    assert (s["untyped"].type, s["untyped"].default) == (int, 7)   # type of the default
    assert s["keyword_only"].type is bool
    assert not any(x.required for x in s.values())


def test_settings_of_the_base_signature_and_required():
    class NoInit(init.Initializer):
        def _init_weight(self, name, arr):
            arr[:] = 0.0

    class Needs(init.Initializer):
        def __init__(self, k: int):
            super().__init__(k=k)

    assert settings_of(NoInit) == []                  # Initializer.__init__(**kwargs) only
    (k,) = settings_of(Needs)
    assert k.required and k.default is REQUIRED
    with pytest.raises(SettingsError, match=r"setting 'k' of Needs is required \(a whole "
                                            r"number\)"):
        validate([k], {}, "Needs")
    assert validate([k], {"k": 4}, "Needs") == {"k": 4}


@pytest.mark.parametrize("signature, needle", [
    ("def __init__(self, k: list = None): pass", "list"),
    ("def __init__(self, k: dict = {}): pass", "dict"),
    ("def __init__(self, k=None): pass", "neither a type annotation nor a default"),
    ("def __init__(self, k): pass", "neither a type annotation nor a default"),
    ("def __init__(self, k: 'complex' = 1j): pass", "complex"),
    ("def __init__(self, k: float = 1.0, /): pass", "keyword"),
])
def test_settings_a_form_cannot_offer(signature, needle):
    namespace = {"init": init}
    exec(f"class Odd(init.Initializer):\n    {signature}\n", namespace)  # noqa: S102
    with pytest.raises(SettingsError, match=needle):
        settings_of(namespace["Odd"])


def test_builtin_and_shipped_settings_are_what_the_forms_show():
    host = PluginHost(plugin_dirs=[repo_plugin_dir()], default_dirs=False, entry_points=False)
    assert host.failures == []
    expect = {
        "zeros": [], "ones": [], "bilinear": [],
        "constant": [("value", "float", 0.0)],
        "uniform": [("scale", "float", 0.07)],
        "normal": [("sigma", "float", 0.01)],
        "truncnorm": [("mean", "float", 0.0), ("stdev", "float", 0.01)],
        "xavier": [("rnd_type", "choice", "uniform"), ("factor_type", "choice", "avg"),
                   ("magnitude", "float", 3.0)],
        "msraprelu": [("factor_type", "choice", "avg"), ("slope", "float", 0.25)],
        "orthogonal": [("scale", "float", 1.414), ("rand_type", "choice", "uniform")],
        "lstmbias": [("forget_bias", "float", 1.0)],
        "myinit": [("low", "float", 5.0), ("high", "float", 10.0)],
        "kaiming": [("mode", "choice", "fan_in"), ("nonlinearity", "choice", "relu"),
                    ("negative_slope", "float", 0.01), ("distribution", "choice", "normal")],
        "lsuv": [("target_var", "float", 1.0), ("tol", "float", 0.05), ("max_iter", "int", 10)],
    }
    assert set(expect) <= set(host.initializers)     # more shipped plugins may come
    for name, settings in expect.items():
        info = host.initializers[name]
        assert [(s.name, s.type_name, s.default) for s in info.settings] == settings, name
        # Every default validates and builds the initializer.
        assert isinstance(host.create(name), info.cls)
    kaiming = host.initializers["kaiming"]
    assert kaiming.setting("nonlinearity").choices == (
        "relu", "leaky_relu", "tanh", "sigmoid", "linear")
    assert kaiming.setting("negative_slope").range.describe() == "[0.0, 1.0]"
    assert host.initializers["lsuv"].setting("tol").range.describe() == "(0.0, 1.0]"
    assert host.initializers["lsuv"].needs_data
    assert host.initializers["kaiming"].has_density and host.initializers["myinit"].has_density
    # JSON-ready, as the command line prints it.
    doc = json.loads(json.dumps([i.to_json() for i in host.initializers.values()]))
    xavier = next(d for d in doc if d["name"] == "xavier")
    assert xavier["params"][0] == {"name": "rnd_type", "type": "choice", "default": "uniform",
                                   "choices": ["uniform", "gaussian"]}
    assert xavier["params"][2] == {"name": "magnitude", "type": "float", "default": 3.0,
                                   "min": 0.0, "max": None}
    assert isinstance(xavier["params"][2]["default"], float)


# ------------------------------------------------------------------------------- validate
SETTINGS = settings_of(Everything)


@pytest.mark.parametrize("values, expected", [
    ({"count": 4}, {"count": 4}),
    ({"count": 4.0}, {"count": 4}),                    # an integral float is a whole number
    ({"scale": 2}, {"scale": 2.0}),
    ({"flag": False}, {"flag": False}),
    ({"mode": "fan_out"}, {"mode": "fan_out"}),
    ({"order": 3}, {"order": 3}),
    ({"bounded": 0.0}, {"bounded": 0.0}),              # closed bounds include the ends
    ({"bounded": 1}, {"bounded": 1.0}),
    ({"steps": 10}, {"steps": 10}),
    ({"open_low": 1e-9}, {"open_low": 1e-9}),
])
def test_validate_accepts(values, expected):
    out = validate(SETTINGS, values, "Everything")
    for key, value in expected.items():
        assert out[key] == value and type(out[key]) is type(value)
    # Everything else takes its default.
    assert out["label"] == "hi" and out["untyped"] == 7
    assert len(out) == len(SETTINGS)


@pytest.mark.parametrize("values, needle", [
    ({"count": 2.5}, "setting 'count' of Everything must be a whole number, got 2.5"),
    ({"count": True}, "must be a whole number, got True"),
    ({"count": "3"}, "must be a whole number, got '3'"),
    ({"scale": "0.5"}, "must be a number, got '0.5'"),
    ({"scale": False}, "must be a number, got False"),
    ({"scale": math.inf}, "must be a finite number"),
    ({"flag": 1}, "must be true or false, got 1"),
    ({"flag": "yes"}, "must be true or false"),
    ({"label": 3}, "must be text, got 3"),
    ({"mode": "fan-in"}, "must be one of 'fan_in', 'fan_out', got 'fan-in'"),
    ({"mode": None}, "must be one of 'fan_in', 'fan_out', got None"),
    ({"order": 4}, "must be one of 1, 2, 3, got 4"),
    ({"order": True}, "must be one of 1, 2, 3, got True"),      # True == 1, but not a choice
    ({"order": 2.0}, "must be one of 1, 2, 3, got 2.0"),
    ({"bounded": 1.5}, r"must be a number in [0.0, 1.0], got 1.5"),
    ({"bounded": -0.1}, r"must be a number in [0.0, 1.0], got -0.1"),
    ({"open_low": 0.0}, r"must be a number in (0.0, ∞), got 0.0"),
    ({"steps": 0}, r"must be a whole number in [1, 10], got 0"),
    ({"nope": 1, "zap": 2}, "Everything has no setting 'nope', 'zap' (its settings: count,"),
])
def test_validate_rejects_with_a_clear_message(values, needle):
    with pytest.raises(SettingsError) as excinfo:
        validate(SETTINGS, values, "Everything")
    assert needle in str(excinfo.value)


def test_validate_accepts_numpy_numbers():
    np = pytest.importorskip("numpy")
    out = validate(SETTINGS, {"scale": np.float32(0.5), "count": np.int64(2),
                              "bounded": np.float64(0.5)}, "Everything")
    assert out == {**out, "scale": 0.5, "count": 2, "bounded": 0.5}
    assert type(out["scale"]) is float and type(out["count"]) is int


def test_bool_choices_are_not_ints():
    class Flags(init.Initializer):
        def __init__(self, on: Literal[True, False] = True):
            super().__init__(on=on)

    (on,) = settings_of(Flags)
    assert on.type is bool and on.choices == (True, False)
    assert validate([on], {"on": False}, "Flags") == {"on": False}
    with pytest.raises(SettingsError):
        validate([on], {"on": 1}, "Flags")


# ---------------------------------------------------------------------------- parse_value
@pytest.mark.parametrize("name, text, value", [
    ("count", " 12 ", 12), ("scale", "1e-3", 1e-3), ("scale", "2", 2.0),
    ("flag", "true", True), ("flag", "Off", False), ("flag", "1", True), ("flag", "no", False),
    ("label", "  some text ", "some text"),
    ("mode", "fan_out", "fan_out"), ("order", "3", 3),
])
def test_parse_value(name, text, value):
    setting = _by_name(SETTINGS)[name]
    parsed = parse_value(setting, text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("name, text, needle", [
    ("count", "1.5", "whole number"), ("scale", "abc", "must be a number"),
    ("flag", "maybe", "true or false"), ("mode", "fan", "one of 'fan_in', 'fan_out'"),
    ("order", "4", "one of 1, 2, 3"),
])
def test_parse_value_rejects(name, text, needle):
    with pytest.raises(SettingsError, match=needle):
        parse_value(_by_name(SETTINGS)[name], text)


def test_setting_describes_itself():
    s = _by_name(SETTINGS)
    assert s["bounded"].allowed() == "a number in [0.0, 1.0]"
    assert s["steps"].allowed() == "a whole number in [1, 10]"
    assert s["mode"].allowed() == "one of 'fan_in', 'fan_out'"
    assert s["flag"].allowed() == "true or false"
    assert s["label"].allowed() == "text"
    assert s["bounded"].to_json() == {"name": "bounded", "type": "float", "default": 0.25,
                                      "min": 0.0, "max": 1.0}
    assert s["order"].to_json() == {"name": "order", "type": "choice", "default": 2,
                                    "choices": [1, 2, 3]}
    assert Setting("k", int).to_json() == {"name": "k", "type": "int", "default": None}
    assert repr(REQUIRED) == "REQUIRED"
