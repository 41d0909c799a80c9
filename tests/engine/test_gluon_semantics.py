"""GLUON_SEMANTICS.md §3–§5, one focused test per fact, plus the engine's all-or-nothing extras.

Facts were measured on real MXNet 1.9.1; where the chapter's older MXNet printed a different
text (names without quotes, ``dtype=<class 'numpy.float32'>``), either form is accepted, as §3
allows. Block names come from process-global counters, so in-process tests build expected names
from ``net.prefix``; the exact counter values are checked in a fresh subprocess.
"""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from app.engine import autograd, gluon, init, nd
from app.engine import random as R
from app.engine.base import DeferredInitializationError, MXNetError
from app.engine.gluon import nn
from app.engine.gluon.parameter import Constant, InitializerError, Parameter, ParameterDict

ROOT = Path(__file__).resolve().parents[2]


def run_py(code: str) -> tuple[str, str]:
    """Run ``code`` in a fresh ``python -c`` at the checkout root; (stdout, stderr)."""
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    extra = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + extra if extra else "")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr


def get_net():
    """The chapter's MLP."""
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, activation="relu"))
        net.add(nn.Dense(2))
    return net


def known_net():
    """The chapter's MLP with in_units given: nothing is deferred."""
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, in_units=5, activation="relu"))
        net.add(nn.Dense(2, in_units=4))
    return net


def shared_net():
    """The chapter's n=80 net: net[1] shares net[0]'s parameters."""
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, in_units=4, activation="relu"))
        net.add(nn.Dense(4, in_units=4, activation="relu", params=net[-1].params))
        net.add(nn.Dense(1, in_units=4))
    return net


class MyInit(init.Initializer):
    """The chapter's custom initializer (cell n=77)."""

    def __init__(self):
        super().__init__()
        self._verbose = True

    def _init_weight(self, _, arr):
        nd.random.uniform(low=5, high=10, out=arr)

    def _init_bias(self, _, arr):
        arr[:] = 1.0


def x35():
    return nd.array(np.arange(15, dtype=np.float32).reshape(3, 5) / 10)


def npd(p):
    return p.data().asnumpy()


def either(name: str, template: str) -> tuple[str, str]:
    """The chapter's unquoted form and 1.9.1's quoted form of a message naming ``name``."""
    return template.format(name), template.format(f"'{name}'")


UNINIT = ("Parameter {} has not been initialized. Note that you should initialize parameters and "
          "create Trainer with Block.collect_params() instead of Block.params because the later "
          "does not include Parameters of nested child Blocks")
DEFERRED = ("Parameter {} has not been initialized yet because initialization was deferred. "
            "Actual initialization happens during the first forward pass. Please pass one batch "
            "of data through the network before accessing Parameters. You can also avoid "
            "deferred initialization by specifying in_units, num_features, etc., for network "
            "layers.")
REINIT = "Parameter {} is already initialized, ignoring. Set force_reinit=True to re-initialize."
STALE = ("Gradient of Parameter `{}` on context cpu(0) has not been updated by backward since "
         "last `step`. This could mean a bug in your model that made it only use a subset of the "
         "Parameters (Blocks) for this iteration. If you are intentionally only using a subset, "
         "call step with ignore_stale_grad=True to suppress this warning and skip updating of "
         "Parameters with stale gradient")
F32 = "<class 'numpy.float32'>"


def reinit_messages(records) -> list[str]:
    return [str(w.message) for w in records if issubclass(w.category, UserWarning)]


# ============================================================================ §3 exact strings
def test_forward_and_data_on_never_initialized_raise_plain_runtime_error():
    net = get_net()
    name = net.prefix + "dense0_weight"
    with pytest.raises(RuntimeError) as forward_err:
        net(x35())
    with pytest.raises(RuntimeError) as data_err:
        net[0].weight.data()
    for err in (forward_err, data_err):
        assert type(err.value) is RuntimeError
        assert str(err.value) in either(name, UNINIT)


def test_data_and_grad_on_deferred_raise_deferred_initialization_error():
    net = get_net()
    net.initialize()
    name = net.prefix + "dense0_weight"
    for access in (net[0].weight.data, net[0].weight.grad):
        with pytest.raises(DeferredInitializationError) as err:
            access()
        assert str(err.value) == DEFERRED.format(f"'{name}'")
    assert DeferredInitializationError.__mro__[1:3] == (MXNetError, RuntimeError)
    assert gluon.DeferredInitializationError is DeferredInitializationError


def test_reinitialize_warns_once_per_parameter_in_collect_params_order():
    net = known_net()
    net.initialize()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        net.initialize()
    names = list(net.collect_params().keys())
    assert len(names) == 4
    got = reinit_messages(rec)
    assert len(got) == 4
    for msg, name in zip(got, names):
        assert msg in either(name, REINIT)
    assert all(w.category is UserWarning for w in rec)
    # Reported from inside ParameterDict.initialize (gluon/parameter.py), as Gluon does.
    assert all(Path(w.filename).parts[-3:] == ("engine", "gluon", "parameter.py") for w in rec)


def test_force_reinit_warns_nothing():
    net = known_net()
    net.initialize()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        net.initialize(init.Normal(0.02), force_reinit=True)
        net.collect_params().initialize(init.One(), force_reinit=True)
    assert rec == []


def test_set_data_shape_mismatch_message_is_new_vs_current_shape():
    p = Parameter("p", shape=(4, 5))
    p.initialize()
    msg = "Expected shape (3, 3) is incompatible with given shape (4, 5)."
    with pytest.raises(AssertionError) as err:
        p.set_data(nd.ones((3, 3)))
    assert str(err.value) == msg
    with pytest.raises(AssertionError) as err:
        p.shape = (3, 3)
    assert str(err.value) == msg
    assert p.shape == (4, 5)
    assert (npd(p) != 1).any()


def test_set_data_on_never_initialized_parameter():
    p = Parameter("never", shape=(2, 3))
    with pytest.raises(AssertionError) as err:
        p.set_data(nd.ones((2, 3)))
    assert str(err.value) == "Parameter 'never' has not been initialized"


def test_list_ctx_and_trainer_on_uninitialized_parameters():
    with pytest.raises(RuntimeError) as err:
        Parameter("X", shape=(2,)).list_ctx()
    assert str(err.value) == "Parameter 'X' has not been initialized"
    net = known_net()
    with pytest.raises(RuntimeError) as err:
        gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    # The first parameter in sorted-name order is a bias.
    assert str(err.value) == f"Parameter '{net.prefix}dense0_bias' has not been initialized"


def test_initialize_with_unknown_shape_and_no_deferral():
    with pytest.raises(ValueError) as err:
        Parameter("nodefer", shape=(4, 0)).initialize()
    assert str(err.value) == ("Cannot initialize Parameter 'nodefer' because it has invalid "
                              "shape: (4, 0).")
    with pytest.raises(ValueError) as err:
        Parameter("nodefer").initialize()
    assert str(err.value).endswith("invalid shape: None.")


def test_grad_with_grad_req_null():
    p = Parameter("nograd", shape=(2,), grad_req="null")
    p.initialize()
    with pytest.raises(RuntimeError) as err:
        p.grad()
    assert str(err.value) == ("Cannot get gradient array for Parameter 'nograd' because "
                              "grad_req='null'")


def test_sharing_with_incompatible_shape_and_get_with_mismatch():
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, in_units=4))
        with pytest.raises(AssertionError) as err:
            nn.Dense(4, in_units=5, params=net[0].params)
    name = net.prefix + "dense0_weight"
    assert str(err.value) == (
        f"Cannot retrieve Parameter '{name}' because desired attribute does not match with "
        "stored for attribute 'shape': desired '(4, 5)' vs stored '(4, 4)'.")
    with net.name_scope(), pytest.raises(AssertionError, match=r"desired '\(3, 4\)' vs stored "
                                                               r"'\(4, 4\)'"):
        nn.Dense(3, in_units=4, params=net[0].params)     # different units
    pd = ParameterDict("p_")
    pd.get("w", shape=(4, 4))
    with pytest.raises(AssertionError) as err:
        pd.get("w", shape=(4, 5))
    assert str(err.value) == (
        "Cannot retrieve Parameter 'p_w' because desired attribute does not match with stored "
        "for attribute 'shape': desired '(4, 5)' vs stored '(4, 4)'.")


def test_wrong_input_dimension_after_init():
    net = nn.Sequential()
    net.add(nn.Dense(4))
    net.initialize()
    net(nd.ones((2, 5)))
    with pytest.raises(MXNetError, match=re.escape(
            "Shape inconsistent, Provided = [4,5], inferred shape=(4,7)")):
        net(nd.ones((2, 7)))


def test_base_initializer_must_be_overridden():
    with pytest.raises(NotImplementedError, match="^Must override it$"):
        init.Initializer()(init.InitDesc("w_weight"), nd.zeros((2, 2)))
    p = Parameter("w_weight", shape=(2, 2))
    with pytest.raises(NotImplementedError, match="Must override it"):
        p.initialize(init=init.Initializer())


def test_xavier_on_a_vector():
    p = Parameter("v_weight", shape=(5,))
    with pytest.raises(ValueError, match=re.escape(
            "Xavier initializer cannot be applied to vector v_weight. It requires at least 2D.")):
        p.initialize(init=init.Xavier())


def test_mixed_cannot_be_passed_to_initialize():
    mixed = init.Mixed([".*"], [init.One()])
    with pytest.raises(AssertionError, match="initializer must be of string type"):
        Parameter("m_weight", shape=(2, 2)).initialize(init=mixed)
    with pytest.raises(AssertionError, match="initializer must be of string type"):
        known_net().initialize(mixed)


def test_unknown_string_initializer():
    with pytest.raises(AssertionError, match=re.escape(
            "foo is not registered. Please register with initializer.register first")):
        Parameter("p_weight", shape=(2,)).initialize(init="foo")


def test_bad_grad_req():
    msg = "grad_req must be one of 'write', 'add', or 'null', but got 'foo'"
    with pytest.raises(AssertionError) as err:
        Parameter("p", shape=(2,), grad_req="foo")
    assert str(err.value) == msg
    p = Parameter("p", shape=(2,))
    with pytest.raises(AssertionError) as err:
        p.grad_req = "foo"
    assert str(err.value) == msg


def test_parameter_reprs():
    net = known_net()
    w = net[0].weight
    assert repr(w) in (f"Parameter {net.prefix}dense0_weight (shape=(4, 5), dtype=float32)",
                       f"Parameter {net.prefix}dense0_weight (shape=(4, 5), dtype={F32})")
    assert str(w) == repr(w)
    assert repr(Parameter("w", shape=(2, 3))) == f"Parameter w (shape=(2, 3), dtype={F32})"
    assert repr(Parameter("w", shape=5)) == f"Parameter w (shape=(5,), dtype={F32})"
    assert repr(Parameter("w")) == f"Parameter w (shape=None, dtype={F32})"
    assert repr(Constant("c", [1.0, 2.0])).startswith("Constant c (shape=(2,)")


def test_parameter_dict_reprs():
    assert repr(ParameterDict()) == "(\n\n)"
    net = nn.Sequential()
    assert repr(net.params) == f"{net.prefix} (\n\n)"
    pd = ParameterDict("pre_")
    pd.get("a", shape=(2,))
    pd.get("b", shape=(1, 3))
    assert repr(pd) == (f"pre_ (\n  Parameter pre_a (shape=(2,), dtype={F32})\n"
                        f"  Parameter pre_b (shape=(1, 3), dtype={F32})\n)")


def test_block_reprs():
    net = get_net()
    assert repr(net) == ("Sequential(\n  (0): Dense(None -> 4, Activation(relu))\n"
                         "  (1): Dense(None -> 2, linear)\n)")
    net.initialize()
    net(x35())
    assert repr(net) == ("Sequential(\n  (0): Dense(5 -> 4, Activation(relu))\n"
                         "  (1): Dense(4 -> 2, linear)\n)")
    assert repr(nn.Sequential()) == "Sequential(\n\n)"
    outer = nn.Sequential()
    with outer.name_scope():
        inner = nn.Sequential()
        with inner.name_scope():
            inner.add(nn.Dense(3, in_units=2))
        outer.add(inner)
    assert repr(outer) == ("Sequential(\n  (0): Sequential(\n    (0): Dense(2 -> 3, linear)\n"
                           "  )\n)")


def test_ndarray_repr():
    assert repr(nd.zeros((4,))) == "\n[0. 0. 0. 0.]\n<NDArray 4 @cpu(0)>"
    assert repr(nd.ones((2, 3), dtype="float64")) == ("\n[[1. 1. 1.]\n [1. 1. 1.]]\n"
                                                      "<NDArray 2x3 @cpu(0)>")
    assert str(nd.zeros((1,))) == repr(nd.zeros((1,)))


def test_verbose_logs_at_info_only(caplog):
    net = get_net()
    p = net.prefix
    u = init.Uniform()
    with caplog.at_level(logging.WARNING):
        get_net().initialize(init.Uniform(), verbose=True)
    assert caplog.records == []
    with caplog.at_level(logging.INFO):
        net.initialize(u, verbose=True)
        at_init = [r.getMessage() for r in caplog.records]
        caplog.clear()
        net(x35())
        at_forward = [r.getMessage() for r in caplog.records]
    # The biases are not deferred: logged by initialize(); the weights by the first forward.
    assert at_init == [f"Initialized {p}dense0_bias as zeros: 0.0",
                       f"Initialized {p}dense1_bias as zeros: 0.0"]
    assert len(at_forward) == 2
    for msg, layer in zip(at_forward, net):
        m = re.fullmatch(rf"Initialized {re.escape(layer.weight.name)} as "
                         r"<app\.engine\.initializer\.Uniform object at 0x[0-9a-fA-F]+>: (\S+)", msg)
        assert m, msg
        w = npd(layer.weight)
        assert float(m.group(1)) == pytest.approx(np.linalg.norm(w) / math.sqrt(w.size), rel=1e-6)
    assert all(r.levelno == logging.INFO for r in caplog.records)


def test_my_init_verbose_flag_logs_nothing(caplog):
    net = get_net()
    with caplog.at_level(logging.DEBUG):
        net.initialize(MyInit())
        net(x35())
    assert caplog.records == []


def test_verbose_sticks_to_the_shared_default_initializer():
    out, err = run_py(r'''
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
from app.engine import nd
from app.engine.gluon import nn
def net():
    n = nn.Sequential()
    with n.name_scope():
        n.add(nn.Dense(2, in_units=3))
    return n
print("@@quiet"); net().initialize()
print("@@verbose"); net().initialize(verbose=True)
print("@@after"); net().initialize()
''')
    quiet, verbose, after = re.split(r"^@@\w+\n", out, flags=re.M)[1:]
    assert quiet == ""
    assert re.fullmatch(r"Initialized sequential1_dense0_weight as <app\.engine\.initializer\."
                        r"Uniform object at 0x[0-9a-f]+>: \S+\nInitialized sequential1_dense0_bias"
                        r" as zeros: 0\.0\n", verbose), verbose
    # set_verbosity mutated the one default Uniform(): a later plain initialize() logs too.
    assert after.splitlines()[1] == "Initialized sequential2_dense0_bias as zeros: 0.0"
    assert err == ""


# ============================================================================ §4.1 naming
def test_naming_rules_in_a_fresh_process():
    out, _ = run_py(r'''
from app.engine.gluon import nn
def show(*blocks):
    print(" ".join(b.prefix for b in blocks))
net = nn.Sequential()
with net.name_scope():
    d0 = nn.Dense(4, activation="relu"); d1 = nn.Dense(2)
show(net, d0, d1, d0.act)                                             # 1
print(net.name, d0.name, d0.weight.name, d0.bias.name, d0.params.prefix)
show(nn.Sequential(), nn.Sequential())                                # 3: global counter
mlp = nn.Sequential(prefix="mlp_")
with mlp.name_scope():
    h = nn.Dense(3, prefix="hidden_"); d = nn.Dense(3)
show(mlp, h, d, nn.Sequential())                                      # 4: user prefixes are free
flat = nn.Sequential()
flat.add(nn.Dense(2), nn.Dense(2), nn.Dense(2))
show(flat, *flat)                                                     # 5: no name_scope
empty = nn.Sequential(prefix="")
with empty.name_scope():
    e = nn.Dense(2)
show(e)                                                               # 6: prefix='' is a no-op
outer = nn.Sequential()
with outer.name_scope():
    inner = nn.Sequential(); dd = nn.Dense(1)
    with inner.name_scope():
        deep = nn.Dense(1)
show(outer, inner, dd, deep)                                          # 7: nested
''')
    lines = out.splitlines()
    assert lines[0] == "sequential0_ sequential0_dense0_ sequential0_dense1_ sequential0_dense0_relu_"
    assert lines[1] == ("sequential0 sequential0_dense0 sequential0_dense0_weight "
                        "sequential0_dense0_bias sequential0_dense0_")
    assert lines[2] == "sequential1_ sequential2_"
    assert lines[3] == "mlp_ mlp_hidden_ mlp_dense0_ sequential3_"
    assert lines[4] == "sequential4_ dense0_ dense1_ dense2_"
    assert lines[5] == "dense3_"
    assert lines[6] == ("sequential5_ sequential5_sequential0_ sequential5_dense0_ "
                        "sequential5_sequential0_dense0_")


# ============================================================================ §4.2 collect_params
def test_collect_params_returns_a_new_dict_of_the_same_parameters():
    net = known_net()
    a, b = net.collect_params(), net.collect_params()
    assert a is not b
    assert a.prefix == net.prefix
    assert list(a.keys()) == list(b.keys())
    assert all(x is y for x, y in zip(a.values(), b.values()))
    assert a[net.prefix + "dense0_weight"] is net[0].weight


def test_collect_params_order_own_then_children_and_shared_listed_once():
    net = shared_net()
    p = net.prefix
    assert list(net.collect_params().keys()) == [
        p + "dense0_weight", p + "dense0_bias", p + "dense2_weight", p + "dense2_bias"]
    block = nn.Dense(2, in_units=3)
    with block.name_scope():
        block.extra = nn.Dense(1, in_units=2)
    keys = list(block.collect_params().keys())
    assert keys == [block.prefix + "weight", block.prefix + "bias",
                    block.extra.prefix + "weight", block.extra.prefix + "bias"]


def test_select_is_anchored_at_the_start_like_re_match():
    net = known_net()
    p = net.prefix
    assert list(net.collect_params(".*weight").keys()) == [p + "dense0_weight",
                                                           p + "dense1_weight"]
    assert list(net.collect_params("dense0").keys()) == []
    assert list(net.collect_params("weight").keys()) == []
    assert list(net.collect_params(p + "dense1").keys()) == [p + "dense1_weight",
                                                              p + "dense1_bias"]


def test_get_prepends_the_prefix_and_silently_creates():
    net = known_net()
    params = net.collect_params()
    assert params.get("dense0_weight") is net[0].weight
    full = params.get(net.prefix + "dense0_weight")
    assert full is not net[0].weight
    assert full.name == net.prefix + net.prefix + "dense0_weight"
    ghost = params.get("nonexistent")
    assert ghost.name == net.prefix + "nonexistent" and ghost.shape is None
    assert net.prefix + "nonexistent" in list(params.keys())
    assert net.prefix + "nonexistent" not in list(net.collect_params().keys())


def test_get_merges_unknown_dims_of_an_existing_parameter():
    pd = ParameterDict("q_")
    w = pd.get("w", shape=(4, 0))
    assert pd.get("w", shape=(0, 5)) is w
    assert w.shape == (4, 5)
    assert pd.get("w") is w


def test_brackets_need_the_full_name_len_is_a_type_error_in_uses_iter():
    net = known_net()
    params = net.collect_params()
    with pytest.raises(KeyError):
        params["dense0_weight"]
    assert params[net.prefix + "dense0_bias"] is net[0].bias
    with pytest.raises(TypeError):
        len(params)
    assert net.prefix + "dense1_bias" in params
    assert "dense1_bias" not in params
    assert list(iter(params)) == list(params.keys())


def test_sequential_params_is_empty_and_layer_params_equal_collect_params():
    net = known_net()
    assert list(net.params.keys()) == []
    assert repr(net.params) == f"{net.prefix} (\n\n)"
    assert list(net[0].params.items()) == list(net[0].collect_params().items())
    assert repr(net[0].params) == repr(net[0].collect_params())


# ============================================================================ §4.3 deferred init
def test_deferred_shapes_before_and_after_initialize_and_forward():
    net = get_net()
    assert (net[0].weight.shape, net[1].weight.shape) == ((4, 0), (2, 0))
    net.initialize()
    assert (net[0].weight.shape, net[1].weight.shape) == ((4, 0), (2, 0))
    net(x35())
    assert (net[0].weight.shape, net[1].weight.shape) == ((4, 5), (2, 4))


def test_known_shapes_are_materialized_immediately():
    net = get_net()
    net.initialize()
    np.testing.assert_array_equal(npd(net[0].bias), np.zeros(4))
    np.testing.assert_array_equal(net[0].bias.grad().asnumpy(), np.zeros(4))
    with pytest.raises(DeferredInitializationError):
        net[0].weight.data()
    full = known_net()
    full.initialize()
    assert npd(full[0].weight).shape == (4, 5)


def test_dense_flattens_its_input():
    d = nn.Dense(4)
    d.initialize()
    out = d(nd.ones((2, 3, 4)))
    assert d.weight.shape == (4, 12)
    assert out.shape == (2, 4)


def test_forward_infers_a_block_s_own_shapes_from_its_input():
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(3), nn.Dense(2), nn.Dense(1))
    net.initialize()
    net(nd.ones((1, 6)))
    assert [layer.weight.shape for layer in net] == [(3, 6), (2, 3), (1, 2)]


def test_reinitialize_while_deferred_replaces_the_initializer_without_warning():
    net = get_net()
    net.initialize()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        net.initialize(init.One())
    # Only the already materialized biases warn.
    assert [str(w.message) in either(n, REINIT) for w, n in
            zip(rec, [net.prefix + "dense0_bias", net.prefix + "dense1_bias"])] == [True, True]
    assert len(rec) == 2
    net(x35())
    np.testing.assert_array_equal(npd(net[0].weight), np.ones((4, 5)))
    np.testing.assert_array_equal(npd(net[1].weight), np.ones((2, 4)))
    np.testing.assert_array_equal(npd(net[0].bias), np.zeros(4))


def test_set_data_on_deferred_fixes_the_shape_and_is_used_by_the_forward():
    net = get_net()
    net.initialize()
    w = net[0].weight
    data = nd.array(np.arange(20, dtype=np.float32).reshape(4, 5))
    w.set_data(data)
    assert w.shape == (4, 5)
    with pytest.raises(DeferredInitializationError):
        w.data()
    net(x35())
    np.testing.assert_array_equal(npd(w), data.asnumpy())
    with pytest.raises(AssertionError):
        get_net()[0].weight.set_data(nd.ones((3, 5)))   # rows are known: 3 is not 4


# ============================================================================ §4.4 precedence
def test_parameter_init_beats_the_global_initializer():
    d = nn.Dense(3, in_units=2, weight_initializer=init.One())
    d.initialize(init.Constant(5))
    np.testing.assert_array_equal(npd(d.weight), np.ones((3, 2)))
    np.testing.assert_array_equal(npd(d.bias), np.zeros(3))     # bias_initializer='zeros'


def test_explicit_parameter_initialize_init_beats_parameter_init():
    p = Parameter("p_weight", shape=(2, 2), init=init.Constant(3))
    p.initialize(init=init.Constant(2), default_init=init.One())
    np.testing.assert_array_equal(npd(p), np.full((2, 2), 2))
    q = Parameter("q_weight", shape=(2, 2), init=init.Constant(3))
    q.initialize(default_init=init.One())
    np.testing.assert_array_equal(npd(q), np.full((2, 2), 3))
    r = Parameter("r_weight", shape=(2, 2))
    r.initialize(default_init=init.One())
    np.testing.assert_array_equal(npd(r), np.ones((2, 2)))


def test_global_init_reaches_a_bias_whose_init_is_none():
    d = nn.Dense(3, in_units=2, bias_initializer=None)
    d.initialize(init.Constant(8))
    np.testing.assert_array_equal(npd(d.bias), np.full(3, 8))


def test_my_init_as_bias_initializer_runs_init_weight():
    d = nn.Dense(3, in_units=2, bias_initializer=MyInit())
    d.initialize()
    b = npd(d.bias)
    assert ((b >= 5) & (b < 10)).all()


def test_my_init_as_global_leaves_biases_zero():
    net = get_net()
    net.initialize(MyInit())
    net(x35())
    for layer in net:
        w = npd(layer.weight)
        assert ((w >= 5) & (w < 10)).all()
        np.testing.assert_array_equal(npd(layer.bias), np.zeros(layer.bias.shape))


def test_batchnorm_parameters_keep_their_own_initializers():
    bn = nn.BatchNorm(in_channels=3)
    bn.initialize(init.Constant(7))
    assert npd(bn.gamma).tolist() == [1, 1, 1]
    assert npd(bn.beta).tolist() == [0, 0, 0]
    assert npd(bn.running_mean).tolist() == [0, 0, 0]
    assert npd(bn.running_var).tolist() == [1, 1, 1]


def test_dispatch_with_init_attr_ignores_the_name_suffix():
    arr = nd.zeros((4,))
    init.One()(init.InitDesc("foo_bias", {"__init__": MyInit()}), arr)
    assert ((arr.asnumpy() >= 5) & (arr.asnumpy() < 10)).all()
    arr = nd.zeros((2,))
    init.Uniform()(init.InitDesc("foo_gamma", {"__init__": "zeros"}), arr)
    assert arr.asnumpy().tolist() == [0, 0]


def test_suffix_dispatch_without_init_attr():
    my = MyInit()
    cases = {"x_bias": 1.0, "x_gamma": 1.0, "x_beta": 0.0, "x_min": 0.0, "x_max": 1.0}
    for name, value in cases.items():
        arr = nd.full((3,), 42.0)
        my(init.InitDesc(name), arr)
        assert arr.asnumpy().tolist() == [value] * 3, name
    arr = nd.zeros((3,))
    my(init.InitDesc("x_weight"), arr)
    assert ((arr.asnumpy() >= 5) & (arr.asnumpy() < 10)).all()
    with pytest.raises(ValueError, match="Unknown initialization pattern for x_other"):
        my(init.InitDesc("x_other"), nd.zeros((3,)))


def test_plain_str_name_goes_through_the_legacy_path_with_a_deprecation_warning():
    arr = nd.full((3,), 42.0)
    with pytest.warns(DeprecationWarning, match="init\\(str, NDArray\\) has been deprecated"):
        MyInit()("legacy_bias", arr)
    assert arr.asnumpy().tolist() == [1.0] * 3


@pytest.mark.parametrize(("name", "check"), [
    ("zeros", lambda a: (a == 0).all()), ("ONES", lambda a: (a == 1).all()),
    ("Xavier", lambda a: np.abs(a).max() <= math.sqrt(3 / 4.5)),
    ("uniform", lambda a: np.abs(a).max() < 0.07), ("normal", lambda a: np.abs(a).max() < 0.1),
    ("MSRAPrelu", lambda a: a.std() > 0)])
def test_string_initializers_case_insensitive(name, check):
    p = Parameter("s_weight", shape=(4, 5))
    p.initialize(init=name)
    assert check(npd(p))


# ============================================================================ §4.5 initializers
def test_initializer_dumps_and_eq():
    assert init.Uniform().dumps() == '["uniform", {"scale": 0.07}]'
    assert init.Normal().dumps() == '["normal", {"sigma": 0.01}]'
    assert init.Xavier().dumps() == ('["xavier", {"rnd_type": "uniform", "factor_type": "avg", '
                                     '"magnitude": 3}]')
    assert init.Constant(3).dumps() == '["constant", {"value": 3}]'
    assert init.Uniform(0.5) == init.Uniform(0.5)
    assert init.Uniform(0.5) != init.Uniform(0.6)
    assert init.Normal(0.5) != init.Uniform(0.5)
    u = init.Uniform(0.3)
    assert init.create(u) is u
    assert init.create(u.dumps()) == u
    assert isinstance(init.create("zeros"), init.Zero) and isinstance(init.create("ones"), init.One)


@pytest.fixture
def rng_seed():
    """``R.seed`` for this test; the stream is put back afterwards (other tests share it)."""
    state = R.getstate()
    yield R.seed
    R.setstate(state)


def _draw(initializer, shape):
    p = Parameter("stat_weight", shape=shape)
    p.initialize(init=initializer)
    return npd(p).astype(np.float64)


def test_uniform_and_normal_statistics(rng_seed):
    rng_seed(11)
    u = _draw(init.Uniform(), (256, 784))
    assert u.min() >= -0.07 and u.max() < 0.07
    assert abs(u.std() - 0.07 / math.sqrt(3)) < 5 * 0.07 / math.sqrt(3) / math.sqrt(2 * u.size)
    n = _draw(init.Normal(0.02), (256, 784))
    assert abs(n.mean()) < 5 * 0.02 / math.sqrt(n.size)
    assert abs(n.std() - 0.02) < 5 * 0.02 / math.sqrt(2 * n.size)


def test_xavier_bounds_and_factors(rng_seed):
    rng_seed(12)
    assert np.abs(_draw(init.Xavier(), (4, 5))).max() <= math.sqrt(3 / 4.5)
    big = _draw(init.Xavier(), (256, 784))
    bound = math.sqrt(3 / 520)
    assert np.abs(big).max() <= bound + 1e-7
    assert np.abs(big).max() > bound * 0.999
    conv = _draw(init.Xavier(), (8, 3, 3, 3))          # fan_in 27, fan_out 72
    assert np.abs(conv).max() <= math.sqrt(3 / 49.5) + 1e-7
    assert np.abs(conv).max() > 0.8 * math.sqrt(3 / 49.5)
    fin = _draw(init.Xavier(factor_type="in", magnitude=2), (256, 784))
    assert np.abs(fin).max() <= math.sqrt(2 / 784) + 1e-7
    fout = _draw(init.Xavier(factor_type="out"), (256, 784))
    assert np.abs(fout).max() <= math.sqrt(3 / 256) + 1e-7
    assert np.abs(fout).max() > math.sqrt(3 / 784)
    g = _draw(init.Xavier(rnd_type="gaussian"), (256, 784))
    assert abs(g.std() - bound) < 5 * bound / math.sqrt(2 * g.size)


def test_msraprelu_std(rng_seed):
    rng_seed(13)
    w = _draw(init.MSRAPrelu(), (256, 784))
    expected = math.sqrt(2 / (1 + 0.25 ** 2) / 520)
    assert expected == pytest.approx(0.060166, rel=1e-4)
    assert abs(w.std() - expected) < 5 * expected / math.sqrt(2 * w.size)


def test_orthogonal_rows_are_orthonormal_times_scale(rng_seed):
    rng_seed(14)
    w = _draw(init.Orthogonal(), (4, 6))
    np.testing.assert_allclose(w @ w.T, 1.414 ** 2 * np.eye(4), atol=1e-5)


def test_orthogonal_is_the_svd_of_one_uniform_draw():
    state = R.getstate()
    w = _draw(init.Orthogonal(scale=2.0), (3, 5))
    R.setstate(state)
    tmp = R.uniform(-1.0, 1.0, shape=(3, 5), dtype=np.float32)
    _, _, v = np.linalg.svd(tmp, full_matrices=False)     # (3, 5): the orthonormal rows
    np.testing.assert_allclose(w, 2.0 * v, rtol=1e-5, atol=1e-6)


def test_initializers_draw_when_arrays_materialize_weights_in_forward_order():
    net = get_net()
    state = R.getstate()
    net.initialize()                     # biases are made now, and 'zeros' draws nothing
    np.testing.assert_array_equal(R.uniform(0, 1, shape=(3,)), _replay(state, (3,)))
    state = R.getstate()
    net(x35())
    R.setstate(state)
    w0 = R.uniform(-0.07, 0.07, shape=(4, 5))
    w1 = R.uniform(-0.07, 0.07, shape=(2, 4))
    np.testing.assert_array_equal(npd(net[0].weight), w0)
    np.testing.assert_array_equal(npd(net[1].weight), w1)


def _replay(state, shape):
    now = R.getstate()
    R.setstate(state)
    out = R.uniform(0, 1, shape=shape)
    R.setstate(now)
    return out


def test_lstm_bias_and_load():
    assert _draw(init.LSTMBias(forget_bias=2.0), (8,)).tolist() == [0, 0, 2, 2, 0, 0, 0, 0]
    loader = init.Load({"arg:p_weight": nd.full((2,), 4.0)}, default_init=init.One())
    arr = nd.zeros((2,))
    loader("p_weight", arr)
    assert arr.asnumpy().tolist() == [4, 4]
    other = nd.zeros((2,))
    with pytest.warns(DeprecationWarning):
        loader("q_weight", other)
    assert other.asnumpy().tolist() == [1, 1]


def test_register_alias_and_create_by_name(monkeypatch):
    # Register into a copy of the registry: other tests list the real one.
    monkeypatch.setattr(init, "_REGISTRY", dict(init._REGISTRY))

    @init.register
    @init.alias("paramlab_test_sevens")
    class ParamlabTestSevens(init.Initializer):
        def _init_weight(self, _, arr):
            arr[:] = 7

    assert isinstance(init.create("ParamlabTestSevens"), ParamlabTestSevens)
    assert isinstance(init.create("paramlab_test_sevens"), ParamlabTestSevens)
    assert _draw("paramlab_test_sevens", (2,)).tolist() == [7, 7]
    assert "paramlabtestsevens" in init.registered()


def test_constant_one_zero():
    assert _draw(init.Constant(2.5), (2, 2)).tolist() == [[2.5, 2.5]] * 2
    assert _draw(init.Constant(nd.array([1.0, 2.0])), (2, 2)).tolist() == [[1, 2], [1, 2]]
    assert _draw(init.One(), (3,)).tolist() == [1, 1, 1]
    assert _draw("ones", (3,)).tolist() == [1, 1, 1]
    assert _draw(init.Zero(), (3,)).tolist() == [0, 0, 0]
    assert _draw("zeros", (3,)).tolist() == [0, 0, 0]


# ============================================================================ §4.6 warnings dedupe
def test_identical_reinit_of_the_same_net_warns_only_once_under_the_default_filter():
    net = known_net()
    net.initialize()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("default")
        net.initialize()
        first = len(reinit_messages(rec))
        net.initialize()
        net.collect_params().initialize()     # a different call site: still the same location
        second = len(reinit_messages(rec)) - first
        other = known_net()
        other.initialize()
        other.initialize()
        third = len(reinit_messages(rec)) - first - second
    assert (first, second, third) == (4, 0, 4)


# ============================================================================ §4.7 sharing, grads
def test_shared_layer_has_the_same_parameter_objects_and_prefix():
    net = shared_net()
    assert net[1].weight is net[0].weight and net[1].bias is net[0].bias
    assert net[1].params.prefix == net[0].params.prefix
    assert net[1].params._shared is net[0].params


def _shared_forward_backward(grad_req="write"):
    net = shared_net()
    net.initialize(init.Uniform(1.0))
    if grad_req != "write":
        net.collect_params().setattr("grad_req", grad_req)
    a = nd.array(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4))
    with autograd.record():
        y = net(a)
    y.backward()
    return net, a


def test_shared_gradient_is_the_sum_of_both_uses():
    net, a = _shared_forward_backward()
    W, b = npd(net[0].weight).astype(np.float64), npd(net[0].bias).astype(np.float64)
    w2 = npd(net[2].weight).astype(np.float64)
    x = a.asnumpy().astype(np.float64)
    z1 = x @ W.T + b
    h1 = np.maximum(z1, 0)
    z2 = h1 @ W.T + b
    g_z2 = np.ones((3, 1)) @ w2 * (z2 > 0)
    g_z1 = (g_z2 @ W) * (z1 > 0)
    use1_w, use2_w = g_z1.T @ x, g_z2.T @ h1
    use1_b, use2_b = g_z1.sum(0), g_z2.sum(0)
    gw, gb = net[0].weight.grad().asnumpy(), net[0].bias.grad().asnumpy()
    np.testing.assert_allclose(gw, use1_w + use2_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gb, use1_b + use2_b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(gw, use1_w, atol=1e-4) and not np.allclose(gw, use2_w, atol=1e-4)
    assert not np.allclose(gb, use1_b, atol=1e-4) and not np.allclose(gb, use2_b, atol=1e-4)
    assert net[0].weight.grad() is net[1].weight.grad()


def test_backward_of_a_non_scalar_is_backward_of_its_sum():
    net = known_net()
    net.initialize(init.Uniform(1.0))
    x = x35()
    with autograd.record():
        y = net(x)
    y.backward()
    g1 = net[0].weight.grad().asnumpy().copy()
    with autograd.record():
        s = net(x).sum()
    s.backward()
    np.testing.assert_allclose(net[0].weight.grad().asnumpy(), g1, rtol=1e-6)


def _linear_grad_steps(grad_req, n):
    d = nn.Dense(1, in_units=3)
    d.initialize(init.One())
    d.weight.grad_req = grad_req
    x = nd.array([[1.0, 2.0, 3.0]])
    for _ in range(n):
        with autograd.record():
            y = d(x)
        y.backward()
    return d


def test_grad_req_write_overwrites_and_add_accumulates():
    assert _linear_grad_steps("write", 2).weight.grad().asnumpy().tolist() == [[1, 2, 3]]
    d = _linear_grad_steps("add", 2)
    assert d.weight.grad().asnumpy().tolist() == [[2, 4, 6]]
    assert d.bias.grad().asnumpy().tolist() == [1]          # the bias stayed 'write'


def test_switching_grad_req_recreates_a_zero_gradient_and_null_drops_it():
    d = _linear_grad_steps("add", 2)
    d.weight.grad_req = "write"
    assert d.weight.grad().asnumpy().tolist() == [[0, 0, 0]]
    d.weight.grad_req = "null"
    with pytest.raises(RuntimeError, match="grad_req='null'"):
        d.weight.grad()
    d.weight.grad_req = "add"
    assert d.weight.grad().asnumpy().tolist() == [[0, 0, 0]]


def test_zero_grad_on_parameter_and_dict():
    d = _linear_grad_steps("write", 1)
    d.weight.zero_grad()
    assert d.weight.grad().asnumpy().tolist() == [[0, 0, 0]]
    assert d.bias.grad().asnumpy().tolist() == [1]
    d.collect_params().zero_grad()
    assert d.bias.grad().asnumpy().tolist() == [0]


# ============================================================================ §4.8 Trainer
def _trained_pair(**opt):
    d = nn.Dense(2, in_units=3)
    d.initialize(init.One())
    d.bias.set_data(nd.array([0.5, -0.5]))
    trainer = gluon.Trainer(d.collect_params(), "sgd", {"learning_rate": 0.1, **opt})
    x = nd.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    with autograd.record():
        y = d(x)
    y.backward()
    return d, trainer


def test_trainer_sorts_and_deduplicates_parameters():
    net = shared_net()
    net.initialize()
    trainer = gluon.Trainer(net.collect_params(), "sgd")
    names = [p.name for p in trainer._params]
    assert names == sorted(net.collect_params().keys())
    assert names[0].endswith("dense0_bias")
    listed = gluon.Trainer([net[0].weight, net[1].weight, net[2].weight], "sgd")
    assert [p for p in listed._params] == [net[0].weight, net[2].weight]


def test_trainer_optimizer_defaults():
    d = nn.Dense(2, in_units=3)
    d.initialize()
    trainer = gluon.Trainer(d.collect_params(), "sgd")
    opt = trainer.optimizer
    assert trainer.learning_rate == 0.01
    assert (opt.wd, opt.momentum, opt.clip_gradient) == (0.0, 0.0, None)


def test_step_rescales_by_batch_size_and_weight_decay_applies_to_biases():
    d, trainer = _trained_pair(wd=0.01)
    w0, b0 = npd(d.weight).copy(), npd(d.bias).copy()
    gw, gb = d.weight.grad().asnumpy().copy(), d.bias.grad().asnumpy().copy()
    trainer.step(4)
    np.testing.assert_allclose(npd(d.weight), w0 - 0.1 * (gw / 4 + 0.01 * w0), rtol=1e-6)
    np.testing.assert_allclose(npd(d.bias), b0 - 0.1 * (gb / 4 + 0.01 * b0), rtol=1e-6)
    # step does not clear the gradients
    np.testing.assert_array_equal(d.weight.grad().asnumpy(), gw)


def test_lr_mult_zero_freezes_and_wd_mult_scales_decay():
    d, trainer = _trained_pair(wd=0.5)
    d.weight.lr_mult = 0
    d.bias.wd_mult = 0
    w0, b0, gb = npd(d.weight).copy(), npd(d.bias).copy(), d.bias.grad().asnumpy().copy()
    trainer.step(1)
    np.testing.assert_array_equal(npd(d.weight), w0)
    np.testing.assert_allclose(npd(d.bias), b0 - 0.1 * gb, rtol=1e-6)


def test_a_shared_parameter_is_updated_once():
    net, _ = _shared_forward_backward()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    w0, g = npd(net[0].weight).copy(), net[0].weight.grad().asnumpy().copy()
    trainer.step(1)
    np.testing.assert_allclose(npd(net[0].weight), w0 - np.float32(0.1) * g, rtol=1e-6)
    np.testing.assert_array_equal(npd(net[1].weight), npd(net[0].weight))


def test_stale_gradient_is_raised_as_a_user_warning_and_nothing_changes():
    d, trainer = _trained_pair()
    trainer.step(1)
    w1, b1 = npd(d.weight).copy(), npd(d.bias).copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # it must be raised, not warned
        with pytest.raises(UserWarning) as err:
            trainer.step(1)
    assert str(err.value) == STALE.format(d.bias.name)
    np.testing.assert_array_equal(npd(d.weight), w1)
    np.testing.assert_array_equal(npd(d.bias), b1)


def test_ignore_stale_grad_skips_silently():
    d, trainer = _trained_pair()
    trainer.step(1)
    w1 = npd(d.weight).copy()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        trainer.step(1, ignore_stale_grad=True)
    assert rec == []
    np.testing.assert_array_equal(npd(d.weight), w1)
    # Only the parameters used since the last step are updated.
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(2, in_units=3), nn.Dense(1, in_units=2))
    net.initialize(init.One())
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    with autograd.record():
        y = net[0](nd.ones((1, 3)))
    y.backward()
    with pytest.raises(UserWarning):
        trainer.step(1)
    trainer.step(1, ignore_stale_grad=True)
    assert (npd(net[0].weight) != 1).all()
    assert (npd(net[1].weight) == 1).all()


def test_set_learning_rate():
    d, trainer = _trained_pair()
    trainer.set_learning_rate(0.5)
    assert trainer.learning_rate == 0.5
    w0, g = npd(d.weight).copy(), d.weight.grad().asnumpy().copy()
    trainer.step(1)
    np.testing.assert_allclose(npd(d.weight), w0 - 0.5 * g, rtol=1e-6)


def test_allreduce_grads_then_update_is_step():
    d1, t1 = _trained_pair(wd=0.1)
    d2, t2 = _trained_pair(wd=0.1)
    t1.step(2)
    t2.allreduce_grads()
    t2.update(2)
    np.testing.assert_array_equal(npd(d1.weight), npd(d2.weight))
    np.testing.assert_array_equal(npd(d1.bias), npd(d2.bias))


def test_grad_req_add_keeps_accumulating_across_steps():
    d = nn.Dense(1, in_units=3, use_bias=False)
    d.initialize(init.One())
    d.weight.grad_req = "add"
    trainer = gluon.Trainer(d.collect_params(), "sgd", {"learning_rate": 0.0})
    x = nd.array([[1.0, 2.0, 3.0]])
    for _ in range(3):
        with autograd.record():
            y = d(x)
        y.backward()
        trainer.step(1)
    assert d.weight.grad().asnumpy().tolist() == [[3, 6, 9]]


def test_trainer_accepts_deferred_parameters():
    net = get_net()
    net.initialize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    with autograd.record():
        y = net(x35())
    y.backward()
    w0 = npd(net[0].weight).copy()
    g = net[0].weight.grad().asnumpy().copy()
    trainer.step(1)
    np.testing.assert_allclose(npd(net[0].weight), w0 - np.float32(0.1) * g, rtol=1e-6)


# ============================================================================ §4.9 data identity
def test_data_returns_the_stored_array_not_a_copy():
    d = nn.Dense(2, in_units=3)
    d.initialize()
    assert d.weight.data() is d.weight.data()
    d.weight.data()[:] = 5
    assert (npd(d.weight) == 5).all()


def test_set_data_copies_in_place_and_casts():
    p = Parameter("p", shape=(2, 3))
    p.initialize()
    old = p.data()
    p.set_data(nd.ones((2, 3)))
    assert old.asnumpy().tolist() == [[1, 1, 1]] * 2
    p.set_data(np.full((2, 3), 0.1, dtype=np.float64))
    assert p.data() is old
    assert old.asnumpy().dtype == np.float32
    assert (old.asnumpy() == np.float32(0.1)).all()
    with pytest.raises(AttributeError, match="'list' object has no attribute 'shape'"):
        p.set_data([[1, 2, 3], [4, 5, 6]])


def test_force_reinit_creates_new_arrays():
    p = Parameter("p", shape=(2, 3))
    p.initialize(init=init.One())
    old_data, old_grad = p.data(), p.grad()
    p.initialize(init=init.Zero(), force_reinit=True)
    assert p.data() is not old_data and p.grad() is not old_grad
    assert old_data.asnumpy().tolist() == [[1, 1, 1]] * 2
    assert npd(p).tolist() == [[0, 0, 0]] * 2


# ============================================================================ §4.10 dtype
def test_float64_dense():
    d = nn.Dense(2, in_units=3, dtype="float64")
    d.initialize()
    assert repr(d.weight) == f"Parameter {d.prefix}weight (shape=(2, 3), dtype=float64)"
    assert d.weight.data().asnumpy().dtype == np.float64
    assert d(nd.ones((1, 3), dtype="float64")).asnumpy().dtype == np.float64
    with pytest.raises(MXNetError, match="expected float32, got float64"):
        d(nd.ones((1, 3)))


def test_cast_and_dtype_setter_cast_data_and_grad():
    net = known_net()
    net.initialize()
    net.cast("float16")
    for p in net.collect_params().values():
        assert p.data().asnumpy().dtype == np.float16
        assert p.grad().asnumpy().dtype == np.float16
        assert repr(p).endswith("dtype=float16)")
    w = net[0].weight
    w.dtype = np.float64
    assert w.data().asnumpy().dtype == np.float64 and w.grad().asnumpy().dtype == np.float64
    assert repr(w).endswith("dtype=<class 'numpy.float64'>)")


# ============================================================================ §4.11 save/load
def _trained_known_net():
    net = known_net()
    net.initialize(init.Uniform(1.0))
    return net


def _keys(path):
    with np.load(path, allow_pickle=False) as f:
        return list(f.files)


def test_save_parameters_uses_structural_keys(tmp_path):
    net = _trained_known_net()
    f = tmp_path / "net.params"
    net.save_parameters(str(f))
    assert _keys(f) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    with np.load(f, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["0.weight"], npd(net[0].weight))


def test_shared_net_saves_both_names_or_the_last_with_deduplicate(tmp_path):
    net = shared_net()
    net.initialize()
    net.save_parameters(str(tmp_path / "a"))
    assert _keys(tmp_path / "a") == ["0.weight", "0.bias", "1.weight", "1.bias",
                                     "2.weight", "2.bias"]
    net.save_parameters(str(tmp_path / "b"), deduplicate=True)
    assert _keys(tmp_path / "b") == ["1.weight", "1.bias", "2.weight", "2.bias"]
    fresh = shared_net()
    fresh.load_parameters(str(tmp_path / "b"))
    np.testing.assert_array_equal(npd(fresh[0].weight), npd(net[0].weight))


def test_load_into_a_fresh_net_with_another_prefix_materializes_parameters(tmp_path):
    src = get_net()
    src.initialize()
    src(x35())
    f = str(tmp_path / "p")
    src.save_parameters(f)
    never = get_net()
    deferred = get_net()
    deferred.initialize()
    for net in (never, deferred):
        assert net.prefix != src.prefix
        net.load_parameters(f)
        for a, b in zip(net.collect_params().values(), src.collect_params().values()):
            assert a.shape == b.shape
            np.testing.assert_array_equal(npd(a), npd(b))
        np.testing.assert_array_equal(net(x35()).asnumpy(), src(x35()).asnumpy())


def test_parameter_dict_save_uses_full_names_and_strip_prefix(tmp_path):
    net = _trained_known_net()
    p = net.prefix
    net.collect_params().save(str(tmp_path / "full"))
    assert _keys(tmp_path / "full") == [p + "dense0_weight", p + "dense0_bias",
                                        p + "dense1_weight", p + "dense1_bias"]
    net.collect_params().save(str(tmp_path / "short"), strip_prefix=p)
    assert _keys(tmp_path / "short") == ["dense0_weight", "dense0_bias", "dense1_weight",
                                         "dense1_bias"]
    # No '.' in the keys: the legacy path, restore_prefix = the loading net's prefix.
    other = known_net()
    other.load_parameters(str(tmp_path / "short"))
    for a, b in zip(other.collect_params().values(), net.collect_params().values()):
        np.testing.assert_array_equal(npd(a), npd(b))
    again = known_net()
    again.collect_params().load(str(tmp_path / "short"), restore_prefix=again.prefix)
    np.testing.assert_array_equal(npd(again[1].bias), npd(net[1].bias))


def test_missing_key_error_text_and_allow_missing(tmp_path):
    net = _trained_known_net()
    f = str(tmp_path / "two")
    net.save_parameters(f)
    bigger = nn.Sequential()
    with bigger.name_scope():
        bigger.add(nn.Dense(4, in_units=5), nn.Dense(2, in_units=4), nn.Dense(1, in_units=2))
    with pytest.raises(AssertionError) as err:
        bigger.load_parameters(f)
    assert str(err.value) == (
        f"Parameter '2.weight' is missing in file '{f}', which contains parameters: "
        "'0.weight', '0.bias', '1.weight', '1.bias'. Set allow_missing=True to ignore missing "
        "parameters.")
    bigger.initialize(init.Zero())
    bigger.load_parameters(f, allow_missing=True)
    np.testing.assert_array_equal(npd(bigger[0].weight), npd(net[0].weight))
    assert (npd(bigger[2].weight) == 0).all()


def test_saving_a_deferred_net_raises_and_writes_nothing(tmp_path):
    net = get_net()
    net.initialize()
    f = tmp_path / "deferred"
    with pytest.raises(DeferredInitializationError):
        net.save_parameters(str(f))
    assert not f.exists()
    assert list(tmp_path.iterdir()) == []


# ============================================================================ §5 API surface
def test_parameter_constructor_defaults_and_attributes():
    p = Parameter("p", shape=3)
    assert (p.grad_req, p.shape, p.dtype, p.lr_mult, p.wd_mult, p.init) == \
        ("write", (3,), np.float32, 1.0, 1.0, None)
    p.initialize()
    assert p.list_ctx() == [nd.zeros((1,)).context]
    assert repr(p.list_ctx()[0]) == "cpu(0)"
    assert p.list_data()[0] is p.data() and p.list_grad()[0] is p.grad()


def test_shape_setter_only_fills_unknown_dims():
    p = Parameter("p", shape=(4, 0), allow_deferred_init=True)
    p.shape = (4, 7)
    assert p.shape == (4, 7)
    with pytest.raises(AssertionError):
        p.shape = (4, 8)
    with pytest.raises(AssertionError):
        p.shape = (4, 7, 1)


def test_constant_never_has_a_gradient():
    pd = ParameterDict("c_")
    c = pd.get_constant("k", [1.0, 2.0])
    assert isinstance(c, Constant) and c.grad_req == "null"
    with pytest.warns(UserWarning):
        c.grad_req = "write"
    assert c.grad_req == "null"
    c.initialize()
    assert npd(c).tolist() == [1.0, 2.0]
    assert pd.get_constant("k") is c


def test_parameter_dict_update_setattr_and_list_ctx():
    a, b = ParameterDict("x_"), ParameterDict("x_")
    a.get("w", shape=(1,))
    b.get("w", shape=(1,))
    with pytest.raises(AssertionError):
        a.update(b)
    c = ParameterDict("y_")
    c.update(a)
    assert c["x_w"] is a["x_w"]
    net = known_net()
    net.initialize()
    net.collect_params().setattr("lr_mult", 0.5)
    assert {p.lr_mult for p in net.collect_params().values()} == {0.5}
    assert [repr(c) for c in net.collect_params().list_ctx()] == ["cpu(0)"]


def test_block_setattr_registers_and_refuses_type_changes():
    block = nn.Sequential()
    with block.name_scope():
        block.dense = nn.Dense(2, in_units=2)
    assert list(block._children.values()) == [block.dense]
    with pytest.raises(TypeError):
        block.dense = Parameter("p")
    order = []
    net = known_net()
    net.apply(lambda blk: order.append(type(blk).__name__))
    assert order == ["Activation", "Dense", "Dense", "Sequential"]


def test_sequential_indexing_slicing_and_len():
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(3, in_units=2), nn.Dense(2, in_units=3), nn.Dense(1, in_units=2))
    assert list(net._children.keys()) == ["0", "1", "2"]
    assert len(net) == 3 and net[-1] is net._children["2"]
    head = net[:2]
    assert isinstance(head, nn.Sequential) and head.prefix == net.prefix
    assert list(head) == [net[0], net[1]]


def test_autograd_state_and_backward_outside_record():
    assert not autograd.is_recording() and not autograd.is_training()
    with autograd.record():
        assert autograd.is_recording() and autograd.is_training()
    x = nd.ones((2,))
    x.attach_grad()
    y = x * 2
    with pytest.raises(MXNetError, match="Cannot differentiate node because it is not in a "
                                         "computational graph"):
        y.backward()


# ============================================================================ all-or-nothing extras
class Flaky(init.Initializer):
    """Draws like Uniform(1), then fails (raises, leaves elements unwritten, or writes NaN/Inf)
    on arrays of shape ``fail_shape`` while ``mode`` is set."""

    def __init__(self, mode=None, fail_shape=(2, 4)):
        super().__init__()
        self.mode = mode
        self.fail_shape = fail_shape

    def _init_weight(self, _, arr):
        if self.mode and arr.shape == self.fail_shape:
            if self.mode == "raise":
                nd.random.uniform(-1, 1, out=arr)
                raise RuntimeError("boom")
            if self.mode == "partial":
                arr[0] = 1.0
                return
            if self.mode in ("nan", "inf"):
                nd.random.uniform(-1, 1, out=arr)
                arr[0, 0] = float(self.mode)
                return
        nd.random.uniform(-1, 1, out=arr)


def _rng_probe():
    return R.uniform(0.0, 1.0, shape=(8,), dtype=np.float32)


def _assert_rng_rewound(state):
    after = _rng_probe()
    R.setstate(state)
    np.testing.assert_array_equal(after, _rng_probe())


@pytest.mark.parametrize(("mode", "err_type", "text"), [
    ("raise", RuntimeError, "boom"),
    ("partial", InitializerError, "left 4 of 8 elements of Parameter '{}' unwritten"),
    ("nan", InitializerError, "wrote 1 NaN or infinite value(s) into Parameter '{}'"),
    ("inf", InitializerError, "wrote 1 NaN or infinite value(s) into Parameter '{}'"),
])
def test_failing_initializer_on_force_reinit_changes_nothing(mode, err_type, text):
    net = known_net()
    net.initialize(init.One())
    before = {k: (p.data(), npd(p).copy()) for k, p in net.collect_params().items()}
    name = net.prefix + "dense1_weight"
    state = R.getstate()
    with pytest.raises(err_type) as err:
        net.initialize(Flaky(mode), force_reinit=True)
    msg = str(err.value)
    assert text.format(name) in msg
    assert "Flaky" in msg and name in msg          # names the initializer and the parameter
    for k, p in net.collect_params().items():
        assert p.data() is before[k][0]
        np.testing.assert_array_equal(npd(p), before[k][1])
    _assert_rng_rewound(state)


def test_failing_initializer_on_a_single_parameter_changes_nothing():
    p = Parameter("solo_weight", shape=(2, 4))
    p.initialize(init=init.One())
    old = p.data()
    with pytest.raises(InitializerError, match="solo_weight"):
        p.initialize(init=Flaky("nan"), force_reinit=True)
    assert p.data() is old and (npd(p) == 1).all()
    fresh = Parameter("fresh_weight", shape=(2, 4))
    with pytest.raises(RuntimeError, match="boom"):
        fresh.initialize(init=Flaky("raise"))
    assert not fresh.is_initialized
    with pytest.raises(RuntimeError, match="has not been initialized"):
        fresh.data()


def test_failure_at_the_first_forward_puts_deferred_parameters_back_and_rewinds():
    net = get_net()
    flaky = Flaky("raise")
    net.initialize(flaky)
    state = R.getstate()
    with pytest.raises(RuntimeError, match="boom") as err:
        net(x35())
    assert net.prefix + "dense1_weight" in str(err.value) and "Flaky" in str(err.value)
    assert (net[0].weight.shape, net[1].weight.shape) == ((4, 0), (2, 0))
    for layer in net:
        with pytest.raises(DeferredInitializationError):
            layer.weight.data()
    # The stream was rewound: a retry draws what a clean run draws.
    flaky.mode = None
    out = net(x35()).asnumpy()
    weights = [npd(layer.weight) for layer in net]
    R.setstate(state)
    clean = get_net()
    clean.initialize(Flaky())
    np.testing.assert_array_equal(clean(x35()).asnumpy(), out)
    for layer, w in zip(clean, weights):
        np.testing.assert_array_equal(npd(layer.weight), w)


def test_a_later_shape_error_puts_earlier_materialized_layers_back():
    outer = nn.Sequential()
    with outer.name_scope():
        inner = nn.Sequential()
        with inner.name_scope():
            inner.add(nn.Dense(3))
        outer.add(inner, nn.Dense(2, in_units=7))
    outer.initialize()
    state = R.getstate()
    with pytest.raises(MXNetError, match="Shape inconsistent"):
        outer(nd.ones((1, 4)))
    assert inner[0].weight.shape == (3, 0)
    with pytest.raises(DeferredInitializationError):
        inner[0].weight.data()
    _assert_rng_rewound(state)
    assert outer[1].weight.shape == (2, 7)


def test_load_parameters_with_one_mismatched_shape_changes_nothing(tmp_path):
    src = _trained_known_net()
    f = str(tmp_path / "src")
    src.save_parameters(f)
    dst = nn.Sequential()
    with dst.name_scope():
        dst.add(nn.Dense(4, in_units=5, activation="relu"), nn.Dense(3, in_units=4))
    dst.initialize(init.One())
    before = [(p.data(), npd(p).copy()) for p in dst.collect_params().values()]
    with pytest.raises(AssertionError, match="shape incompatible"):
        dst.load_parameters(f)
    for p, (obj, values) in zip(dst.collect_params().values(), before):
        assert p.data() is obj
        np.testing.assert_array_equal(npd(p), values)
    # The legacy (full-name) path is all-or-nothing too.
    src.collect_params().save(str(tmp_path / "legacy"), strip_prefix=src.prefix)
    with pytest.raises(AssertionError, match="shape incompatible"):
        dst.load_parameters(str(tmp_path / "legacy"))
    assert (npd(dst[0].weight) == 1).all()


def _touch_marker(path):  # pragma: no cover - must never run
    Path(path).write_text("unpickled!")


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (_touch_marker, (self.path,))


def test_loading_never_unpickles(tmp_path):
    marker = tmp_path / "marker"
    f = tmp_path / "evil.npz"
    with open(f, "wb") as fh:
        np.savez(fh, **{"0.weight": np.array([_Evil(str(marker))], dtype=object)})
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(1, in_units=1))
    with pytest.raises(ValueError, match="evil.npz"):
        net.load_parameters(str(f))
    with pytest.raises(ValueError, match="evil.npz"):
        nd.load(str(f))
    assert not marker.exists()


def test_a_failing_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    net = _trained_known_net()
    f = tmp_path / "net.params"
    net.save_parameters(str(f))
    old = f.read_bytes()

    def broken_savez(fh, **arrays):
        fh.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    net[0].weight.set_data(nd.zeros((4, 5)))
    with pytest.raises(OSError, match="disk full"):
        net.save_parameters(str(f))
    with pytest.raises(OSError, match="disk full"):
        net.collect_params().save(str(f))
    monkeypatch.undo()
    assert f.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.params"]
    deferred = get_net()
    deferred.initialize()
    with pytest.raises(DeferredInitializationError):
        deferred.save_parameters(str(f))
    assert f.read_bytes() == old


def test_a_failing_default_initializer_is_named_as_the_culprit():
    from app.engine import init
    from app.engine.gluon import nn
    net = nn.Dense(4, in_units=3)
    with pytest.raises(AssertionError, match="initializer must be of string type") as info:
        net.initialize(init.Mixed([".*"], [init.Zero()]))
    assert "Mixed" in str(info.value) and "'zeros'" not in str(info.value)
    assert net.weight.state == "uninitialized" and net.bias.state == "uninitialized"
