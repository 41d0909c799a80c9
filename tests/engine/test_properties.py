"""Property tests over random layer stacks and sharing patterns (hypothesis).

A stack is a Sequential of Dense (random units, activation, use_bias, flatten, ``in_units`` given
or deferred), Activation, LeakyReLU, Flatten, LayerNorm, BatchNorm and Dropout(0), where a Dense
may share the parameters of an earlier Dense with the same units and input size
(``params=earlier.params``). For every stack:

* the output shape and every parameter's shape are as predicted, and fully known after the first
  forward; ``collect_params`` lists each (shared) parameter exactly once;
* the gradient of every parameter (float64 net) matches central finite differences of a scalar
  loss, shared parameters receiving the sum of their uses;
* saving and loading parameters round-trips bit for bit (structural and full-name files);
* ``initialize(force_reinit=True)`` with a failing initializer leaves every array, gradient and
  the random stream bit-identical.

Settings are modest and derandomized (a fixed set of examples), so the file is fast and stable.
"""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import autograd, init, nd
from app.engine import random as engine_random
from app.engine.gluon import nn
from app.engine.gluon.parameter import InitializerError

ACTS = [None, "relu", "sigmoid", "tanh", "softrelu", "softsign"]
EPS = 1e-6
RTOL = 1e-5

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- stacks
@st.composite
def stack_specs(draw):
    batch = draw(st.integers(2, 4))
    shape = (batch, *draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    spec = {"input": shape, "layers": []}
    owners = []                     # Dense layers that own their parameters
    kinds = draw(st.lists(st.sampled_from(["dense", "dense", "dense", "act", "leaky", "flatten",
                                           "ln", "bn", "drop"]), min_size=2, max_size=7))
    if "dense" not in kinds:
        kinds.append("dense")
    for kind in kinds:
        layer = {"kind": kind, "in_shape": shape}
        if kind == "dense":
            flatten = draw(st.booleans())
            in_dim = math.prod(shape[1:]) if flatten else shape[-1]
            candidates = [i for i in owners if spec["layers"][i]["in_dim"] == in_dim]
            # sharing is drawn first (likely), and square layers make later sharing possible
            share = draw(st.sampled_from(candidates) | st.none()) if candidates else None
            if share is None:
                units = draw(st.just(min(in_dim, 6)) | st.integers(1, 5))
                use_bias = draw(st.booleans())
            else:
                units, use_bias = (spec["layers"][share][k] for k in ("units", "use_bias"))
            layer.update(units=units, use_bias=use_bias, flatten=flatten, in_dim=in_dim,
                         share=share, act=draw(st.sampled_from(ACTS)),
                         in_units=draw(st.sampled_from([0, in_dim])))
            if share is None:
                owners.append(len(spec["layers"]))
            shape = (shape[0], units) if flatten else shape[:-1] + (units,)
        elif kind == "act":
            layer["act"] = draw(st.sampled_from(ACTS[1:]))
        elif kind == "leaky":
            layer["alpha"] = draw(st.sampled_from([0.0, 0.1, 0.3]))
        elif kind == "flatten":
            shape = (shape[0], math.prod(shape[1:]))
        elif kind == "ln":
            layer["in_channels"] = draw(st.sampled_from([0, shape[-1]]))
        elif kind == "bn":
            layer["in_channels"] = draw(st.sampled_from([0, shape[1]]))
        spec["layers"].append(layer)
    spec["output"] = shape
    return spec


def build(spec):
    net = nn.Sequential()
    with net.name_scope():
        for layer in spec["layers"]:
            kind = layer["kind"]
            if kind == "dense":
                shared = None if layer["share"] is None else net[layer["share"]].params
                block = nn.Dense(layer["units"], activation=layer["act"],
                                 use_bias=layer["use_bias"], flatten=layer["flatten"],
                                 in_units=layer["in_units"], dtype="float64", params=shared)
            elif kind == "act":
                block = nn.Activation(layer["act"])
            elif kind == "leaky":
                block = nn.LeakyReLU(layer["alpha"])
            elif kind == "flatten":
                block = nn.Flatten()
            elif kind == "ln":
                block = nn.LayerNorm(in_channels=layer["in_channels"])
            elif kind == "bn":
                block = nn.BatchNorm(in_channels=layer["in_channels"])
            else:
                block = nn.Dropout(0.0)
            net.add(block)
    net.cast("float64")
    return net


def layer_params(block):
    names = {nn.Dense: ("weight", "bias"), nn.LayerNorm: ("gamma", "beta"),
             nn.BatchNorm: ("gamma", "beta", "running_mean", "running_var")}.get(type(block), ())
    return [getattr(block, n) for n in names if getattr(block, n) is not None]


def expected_param_shapes(spec, net):
    shapes = {}
    for layer, block in zip(spec["layers"], net):
        kind = layer["kind"]
        if kind == "dense":
            shapes[id(block.weight)] = (layer["units"], layer["in_dim"])
            if block.bias is not None:
                shapes[id(block.bias)] = (layer["units"],)
        elif kind in ("ln", "bn"):
            c = layer["in_shape"][-1 if kind == "ln" else 1]
            for p in layer_params(block):
                shapes[id(p)] = (c,)
    return shapes


def random_input(spec, seed):
    return np.random.default_rng(seed).normal(0, 1, spec["input"])


def set_random_values(net, seed):
    r = np.random.default_rng(seed)
    for name, p in net.collect_params().items():
        if name.endswith("running_var"):
            p.set_data(r.uniform(0.5, 1.5, p.shape))
        else:
            p.set_data(r.normal(0, 0.7, p.shape))


def forward(net, x, train=True):
    with (autograd.train_mode() if train else autograd.predict_mode()):
        return net(nd.array(x, dtype="float64"))


def materialized(spec, seed=0):
    net = build(spec)
    net.initialize()
    forward(net, random_input(spec, seed))
    return net


def snapshot(net):
    out = {}
    for name, p in net.collect_params().items():
        out[name] = (p.data(), p.data().asnumpy().tobytes(),
                     None if p.grad_req == "null" else (p.grad(), p.grad().asnumpy().tobytes()))
    return out


# --------------------------------------------------------------------------- properties
@SETTINGS
@given(spec=stack_specs(), seed=st.integers(0, 2 ** 16))
def test_shapes_and_collect_params(spec, seed):
    net = build(spec)
    net.initialize()
    params = list(net.collect_params().values())
    assert len({id(p) for p in params}) == len(params), "a parameter is listed twice"
    distinct = {id(p): p for block in net for p in layer_params(block)}
    assert {id(p) for p in params} == set(distinct)
    for layer, block in zip(spec["layers"], net):
        if layer["kind"] == "dense" and layer["share"] is not None:
            owner = net[layer["share"]]
            assert block.weight is owner.weight and block.bias is owner.bias
    expected = expected_param_shapes(spec, net)
    for p in params:            # known shapes are materialized now, unknown ones deferred
        full = all(p.shape)
        assert p.is_initialized == full and p.is_deferred == (not full), p
    out = forward(net, random_input(spec, seed))
    assert out.shape == spec["output"]
    assert out.dtype == np.float64
    assert np.isfinite(out.asnumpy()).all()
    for p in params:
        assert p.is_initialized and all(p.shape), p
        assert p.shape == expected[id(p)], (p.name, p.shape, expected[id(p)])
        assert p.data().shape == p.shape and p.data().dtype == np.float64
    # a second batch size works with the same parameters
    x2 = np.random.default_rng(seed + 1).normal(0, 1, (spec["input"][0] + 1,) + spec["input"][1:])
    assert forward(net, x2, train=False).shape == (x2.shape[0],) + spec["output"][1:]


@SETTINGS
@given(spec=stack_specs(), seed=st.integers(0, 2 ** 16))
def test_parameter_gradients_match_finite_differences(spec, seed):
    net = materialized(spec, seed)
    set_random_values(net, seed + 1)
    x = random_input(spec, seed + 2)
    head = np.random.default_rng(seed + 3).normal(0, 1, spec["output"])
    with autograd.record():
        out = net(nd.array(x, dtype="float64"))
    out.backward(nd.array(head, dtype="float64"))
    params = [p for p in net.collect_params().values() if p.grad_req != "null"]
    analytic = {p.name: p.grad().asnumpy() for p in params}

    def loss():
        return float(np.sum(forward(net, x).asnumpy() * head))

    def central(arr, idx, h):
        v = arr[idx]
        arr[idx] = v + h
        fp = loss()
        arr[idx] = v - h
        fm = loss()
        arr[idx] = v
        return (fp - fm) / (2 * h)

    f0 = loss()
    atol = 1e-7 * max(1.0, abs(f0))
    for p in params:
        arr = p.data()._data
        ana = analytic[p.name]
        num = np.empty_like(arr)
        for idx in np.ndindex(arr.shape):
            num[idx] = central(arr, idx, EPS)
            if abs(num[idx] - ana[idx]) > atol + RTOL * abs(num[idx]):
                # steep spots (LayerNorm over 2 features, BatchNorm over 2 samples...) leave an
                # O(h²) truncation error above the tolerance: Richardson-extrapolate to O(h⁴)
                num[idx] = (4 * num[idx] - central(arr, idx, 2 * EPS)) / 3
        np.testing.assert_allclose(ana, num, rtol=RTOL, atol=atol,
                                   err_msg=f"gradient of {p.name}")


@SETTINGS
@given(spec=stack_specs(), seed=st.integers(0, 2 ** 16), dedup=st.booleans())
def test_save_load_round_trips_exactly(spec, seed, dedup):
    net = materialized(spec, seed)
    set_random_values(net, seed + 1)
    x = random_input(spec, seed + 2)
    expected = forward(net, x, train=False).asnumpy()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "net.params")
        net.save_parameters(path, deduplicate=dedup)
        fresh = build(spec)                    # never initialized: load materializes
        fresh.load_parameters(path)
        for block_a, block_b in zip(net, fresh):
            for pa, pb in zip(layer_params(block_a), layer_params(block_b)):
                assert pb.shape == pa.shape
                assert pb.data().dtype == pa.data().dtype
                assert pb.data().asnumpy().tobytes() == pa.data().asnumpy().tobytes()
        np.testing.assert_array_equal(forward(fresh, x, train=False).asnumpy(), expected)

        full = os.path.join(tmp, "net_full.params")
        net.collect_params().save(full)
        before = {k: v[1] for k, v in snapshot(net).items()}
        net.initialize(init.Normal(3.0), force_reinit=True)
        net.collect_params().load(full)
        after = {k: v[1] for k, v in snapshot(net).items()}
        assert after == before
        np.testing.assert_array_equal(forward(net, x, train=False).asnumpy(), expected)


class _Partial(init.Initializer):
    def _init_weight(self, _, arr):
        arr._data.reshape(-1)[:-1] = 0.5        # the last element stays unwritten


class _DrawsThenNaN(init.Initializer):
    def _init_weight(self, _, arr):
        engine_random.uniform(-1.0, 1.0, out=arr._data)
        arr._data.flat[-1] = np.nan


class _Raises(init.Initializer):
    def _init_weight(self, _, arr):
        engine_random.normal(0.0, 1.0, out=arr._data)
        raise RuntimeError("boom")


BAD = {"partial": (_Partial, InitializerError), "nan": (_DrawsThenNaN, InitializerError),
       "raises": (_Raises, RuntimeError)}


@SETTINGS
@given(spec=stack_specs(), seed=st.integers(0, 2 ** 16), bad=st.sampled_from(sorted(BAD)),
       backward=st.booleans())
def test_failing_force_reinit_changes_nothing(spec, seed, bad, backward):
    net = materialized(spec, seed)
    set_random_values(net, seed + 1)
    if backward:    # non-zero gradients must survive too
        with autograd.record():
            out = net(nd.array(random_input(spec, seed + 2), dtype="float64"))
        out.backward()
    before = snapshot(net)
    engine_random.seed(seed)
    state = engine_random.getstate()
    cls, err = BAD[bad]
    initializer = cls()
    with pytest.raises(err) as info:
        net.initialize(initializer, force_reinit=True)
    if err is InitializerError:
        assert type(initializer).__name__ in str(info.value)
        assert info.value.parameter in net.collect_params().keys()
    after = snapshot(net)
    assert after.keys() == before.keys()
    for name, (data, raw, grad) in before.items():
        data2, raw2, grad2 = after[name]
        assert data2 is data and raw2 == raw, name
        if grad is not None:
            assert grad2[0] is grad[0] and grad2[1] == grad[1], name
    drawn = engine_random.uniform(0.0, 1.0, shape=(7,))
    engine_random.setstate(state)
    np.testing.assert_array_equal(drawn, engine_random.uniform(0.0, 1.0, shape=(7,)))
    # and the net still works with a good initializer afterwards
    net.initialize(init.Xavier(), force_reinit=True)
    assert forward(net, random_input(spec, seed)).shape == spec["output"]
