"""Gradient checks for the engine: every differentiable op, layer and loss against central finite
differences, the autograd mechanics, and every optimizer against a NumPy reference of MXNet's rule.

The finite-difference checks run in float64 (eps = 1e-6, rtol = 1e-5) through ``autograd.record()``
and ``y.backward(out_grad)`` with a random head gradient, so every element of every gradient is
checked, not only their sum. Each check also runs

* with one input attached at a time (the rules' ``bufs[i] is None`` paths),
* with ``grad_req='add'`` (no direct write into the gradient buffer),
* at float32, where the results must stay float32, finite and close to the float64 ones,

and verifies that neither the inputs nor the head gradient were modified by forward or backward.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from app.engine import autograd, gluon, init, nd
from app.engine import random as engine_random
from app.engine.base import MXNetError
from app.engine.gluon import nn
from app.engine.ndarray.ndarray import NDArray

EPS = 1e-6
RTOL = 1e-5
ATOL = 1e-7          # scaled by max(1, |f|) where f is the scalar sum(out * head)
F32_RTOL = 2e-3      # float32 results against the float64 ones


# --------------------------------------------------------------------------- input helpers
def N(r, *shape, avoid=(0.0,), margin=1e-2, scale=1.0):
    """Standard normal draws (times ``scale``) kept at least ``margin`` away from ``avoid``
    (the kinks of relu, abs, clip, ... where a finite difference is meaningless)."""
    a = r.standard_normal(shape) * scale
    for k in avoid:
        close = np.abs(a - k) < margin
        a[close] = k + np.where(a[close] >= k, 1, -1) * (margin + r.uniform(0, 0.5, close.sum()))
    return a


def P(r, *shape, low=0.5, high=2.0):
    """Positive inputs (for log, sqrt, power, division)."""
    return r.uniform(low, high, shape)


def distinct(r, *shape):
    """Values with no ties and gaps far above eps (for max/min/maximum)."""
    n = int(np.prod(shape))
    return (r.permutation(n).astype(np.float64) * 0.37 - n * 0.18 + r.uniform(0, 0.01, n)) \
        .reshape(shape)


def _nd(a, dtype):
    return nd.array(a, dtype=dtype)


# --------------------------------------------------------------------------- the checker
def _mode(train):
    return autograd.train_mode() if train else autograd.predict_mode()


def _analytic(fn, inputs, attach, head, dtype, req="write", train=True):
    xs = [_nd(a, dtype) for a in inputs]
    before = [x.asnumpy() for x in xs]
    for i in attach:
        xs[i].attach_grad(req)
    with autograd.record(train_mode=train):
        y = fn(*xs)
    assert isinstance(y, NDArray), f"op returned {type(y).__name__}, not an NDArray"
    head_nd = _nd(head, dtype)
    head_before = head_nd.asnumpy()
    y.backward(head_nd)
    for x, b in zip(xs, before):
        np.testing.assert_array_equal(x.asnumpy(), b, err_msg="an input was modified")
    np.testing.assert_array_equal(head_nd.asnumpy(), head_before,
                                  err_msg="backward modified the head gradient")
    grads = {}
    for i in attach:
        assert xs[i].grad.dtype == np.dtype(dtype).type, \
            f"gradient of input {i} is {xs[i].grad.dtype}, expected {dtype}"
        assert xs[i].grad.shape == xs[i].shape
        grads[i] = xs[i].grad.asnumpy()
    return y, grads


def _numeric(fn, inputs, wrt, head, train):
    arrs = [a.copy() for a in inputs]

    def f():
        with _mode(train):
            y = fn(*[_nd(a, np.float64) for a in arrs])
        return float(np.sum(y.asnumpy() * head))

    f0 = f()
    grads = {}
    for i in wrt:
        a = arrs[i]
        g = np.empty_like(a)
        for idx in np.ndindex(a.shape):
            v = a[idx]
            a[idx] = v + EPS
            fp = f()
            a[idx] = v - EPS
            fm = f()
            a[idx] = v
            g[idx] = (fp - fm) / (2 * EPS)
        grads[i] = g
    return f0, grads


def check_grad(fn, inputs, wrt=None, *, train=True, seed=0, f32=True, rtol=RTOL,
               f32_rtol=F32_RTOL, f32_dtype=np.float32):
    """Check ``fn``'s gradients with respect to ``inputs[i]`` for ``i in wrt`` (default: all)."""
    inputs = [np.asarray(a, dtype=np.float64) for a in inputs]
    wrt = list(range(len(inputs))) if wrt is None else list(wrt)
    r = np.random.default_rng(seed + 1000)
    with _mode(train):
        shape = fn(*[_nd(a, np.float64) for a in inputs]).shape
    head = r.standard_normal(shape)

    y64, ana = _analytic(fn, inputs, wrt, head, np.float64, train=train)
    assert y64.dtype == np.float64, f"float64 inputs gave a {y64.dtype} output"
    f0, num = _numeric(fn, inputs, wrt, head, train)
    atol = ATOL * max(1.0, abs(f0))
    for i in wrt:
        np.testing.assert_allclose(ana[i], num[i], rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i} vs finite differences")

    # each input alone (other inputs need no gradient), and grad_req='add'
    if len(wrt) > 1:
        for i in wrt:
            _, one = _analytic(fn, inputs, [i], head, np.float64, train=train)
            np.testing.assert_allclose(one[i], ana[i], rtol=1e-12, atol=1e-12 * (1 + abs(f0)),
                                       err_msg=f"gradient of input {i} attached alone")
    _, add = _analytic(fn, inputs, wrt, head, np.float64, req="add", train=train)
    for i in wrt:
        np.testing.assert_allclose(add[i], ana[i], rtol=1e-12, atol=1e-12 * (1 + abs(f0)),
                                   err_msg=f"gradient of input {i} with grad_req='add'")

    if f32:
        y32, g32 = _analytic(fn, inputs, wrt, head, f32_dtype, train=train)
        assert y32.dtype == np.dtype(f32_dtype).type, \
            f"{np.dtype(f32_dtype).name} inputs gave a {np.dtype(y32.dtype).name} output"
        out32 = y32.asnumpy()
        assert np.isfinite(out32).all()
        out64 = y64.asnumpy()
        np.testing.assert_allclose(out32, out64, rtol=f32_rtol,
                                   atol=f32_rtol * max(1.0, np.abs(out64).max(initial=0)))
        for i in wrt:
            assert np.isfinite(g32[i]).all(), f"non-finite float32 gradient of input {i}"
            scale = max(1.0, np.abs(ana[i]).max(initial=0))
            np.testing.assert_allclose(g32[i], ana[i], rtol=f32_rtol, atol=f32_rtol * scale,
                                       err_msg=f"float32 gradient of input {i}")
    return ana


# --------------------------------------------------------------------------- the op cases
class Case(SimpleNamespace):
    pass


CASES: list[Case] = []


def case(name, ops, fn, make, wrt=None, **opts):
    CASES.append(Case(name=name, ops=tuple(ops), fn=fn, make=make, wrt=wrt, opts=opts))


def _idx(*v):
    return nd.array(np.array(v, dtype=np.float64))


# elementwise binary, broadcasting in both directions, scalar and NumPy operands
case("add", ["add"], lambda a, b: nd.add(a, b), lambda r: [N(r, 2, 3), N(r, 2, 3)])
case("add_bcast_both", ["add"], lambda a, b: a + b, lambda r: [N(r, 3, 1), N(r, 1, 4)])
case("add_bcast_lhs_rank", ["add"], lambda a, b: a + b, lambda r: [N(r, 4), N(r, 2, 3, 4)])
case("add_bcast_rhs_rank", ["add"], lambda a, b: a + b, lambda r: [N(r, 2, 3, 4), N(r, 3, 1)])
case("add_scalar", ["add"], lambda a: 1.5 + a + 2, lambda r: [N(r, 2, 3)])
case("add_numpy_scalar", ["add"], lambda a: a + np.float64(0.25) + np.float32(2),
     lambda r: [N(r, 2, 3)])
case("add_numpy_array", ["add"], lambda a: a + np.arange(3.0), lambda r: [N(r, 2, 3)])
case("subtract", ["subtract"], lambda a, b: nd.subtract(a, b), lambda r: [N(r, 2, 3), N(r, 1, 3)])
case("subtract_bcast", ["subtract"], lambda a, b: a - b, lambda r: [N(r, 3), N(r, 2, 3)])
case("rsubtract_scalar", ["subtract"], lambda a: 3.0 - a - 1, lambda r: [N(r, 2, 3)])
case("multiply", ["multiply"], lambda a, b: nd.multiply(a, b), lambda r: [N(r, 2, 3), N(r, 2, 3)])
case("multiply_bcast", ["multiply"], lambda a, b: a * b, lambda r: [N(r, 2, 1, 4), N(r, 3, 1)])
case("multiply_scalar", ["multiply"], lambda a: 2.5 * a * -0.5, lambda r: [N(r, 2, 3)])
case("multiply_numpy_scalar", ["multiply"], lambda a: np.float64(1.5) * a * np.float32(0.5),
     lambda r: [N(r, 2, 3)])
case("multiply_self", ["multiply"], lambda a: a * a, lambda r: [N(r, 2, 3)])
case("divide", ["divide"], lambda a, b: nd.divide(a, b), lambda r: [N(r, 2, 3), P(r, 2, 3)])
case("divide_bcast", ["divide"], lambda a, b: a / b, lambda r: [N(r, 2, 3), P(r, 3)])
case("divide_bcast_lhs", ["divide"], lambda a, b: a / b, lambda r: [N(r, 1, 3), P(r, 2, 1)])
case("rdivide_scalar", ["divide"], lambda a: 2.0 / a / 4, lambda r: [P(r, 2, 3)])
case("power", ["power"], lambda a, b: nd.power(a, b), lambda r: [P(r, 2, 3), N(r, 2, 3)])
case("power_bcast", ["power"], lambda a, b: a ** b, lambda r: [P(r, 2, 3), N(r, 3)])
case("power_scalar_exp", ["power"], lambda a: a ** 2.5, lambda r: [P(r, 2, 3)])
case("power_int_exp_negative_base", ["power"], lambda a: a ** 3, lambda r: [N(r, 2, 3)])
case("rpower_scalar_base", ["power"], lambda a: 2.0 ** a, lambda r: [N(r, 2, 3)])
case("maximum", ["maximum"], lambda a, b: nd.maximum(a, b),
     lambda r: [distinct(r, 2, 3), distinct(r, 2, 3) + 0.11])
case("maximum_bcast", ["maximum"], lambda a, b: nd.maximum(a, b),
     lambda r: [distinct(r, 2, 3), distinct(r, 3) + 0.11])
case("maximum_scalar", ["maximum"], lambda a: nd.maximum(a, 0.1) + nd.maximum(-0.2, a),
     lambda r: [N(r, 3, 4, avoid=(0.1, -0.2))])
case("minimum", ["minimum"], lambda a, b: nd.minimum(a, b),
     lambda r: [distinct(r, 2, 3), distinct(r, 2, 3) + 0.11])
case("minimum_bcast", ["minimum"], lambda a, b: nd.minimum(a, b),
     lambda r: [distinct(r, 3, 1), distinct(r, 1, 4) + 0.11])
case("minimum_scalar", ["minimum"], lambda a: nd.minimum(a, 0.1) + nd.minimum(-0.2, a),
     lambda r: [N(r, 3, 4, avoid=(0.1, -0.2))])
case("matmul_operator", ["dot"], lambda a, b: a @ b, lambda r: [N(r, 2, 3), N(r, 3, 4)])

# elementwise unary
case("negative", ["negative"], lambda a: nd.negative(a) + (-a), lambda r: [N(r, 2, 3)])
case("identity", ["identity"], lambda a: nd.identity(a) * a, lambda r: [N(r, 2, 3)])
case("exp", ["exp"], lambda a: nd.exp(a), lambda r: [N(r, 2, 3)])
case("log", ["log"], lambda a: nd.log(a), lambda r: [P(r, 2, 3)])
case("sqrt", ["sqrt"], lambda a: nd.sqrt(a), lambda r: [P(r, 2, 3)])
case("square", ["square"], lambda a: nd.square(a), lambda r: [N(r, 2, 3)])
case("abs", ["abs"], lambda a: nd.abs(a) + abs(a), lambda r: [N(r, 2, 3)])
case("sign", ["sign"], lambda a: nd.sign(a) * a, lambda r: [N(r, 2, 3)])
case("sin", ["sin"], lambda a: nd.sin(a), lambda r: [N(r, 2, 3)])
case("cos", ["cos"], lambda a: nd.cos(a), lambda r: [N(r, 2, 3)])
case("relu", ["relu"], lambda a: nd.relu(a), lambda r: [N(r, 3, 4)])
case("sigmoid", ["sigmoid"], lambda a: nd.sigmoid(a), lambda r: [N(r, 3, 4, scale=3)])
case("tanh", ["tanh"], lambda a: nd.tanh(a), lambda r: [N(r, 3, 4)])
case("softrelu", ["softrelu"], lambda a: nd.softrelu(a), lambda r: [N(r, 3, 4, scale=3)])
case("softsign", ["softsign"], lambda a: nd.softsign(a), lambda r: [N(r, 3, 4)])
for _act in ("relu", "sigmoid", "tanh", "softrelu", "softsign"):
    case(f"Activation_{_act}", ["Activation"],
         (lambda act: lambda a: nd.Activation(a, act_type=act))(_act), lambda r: [N(r, 3, 4)])
case("LeakyReLU", ["LeakyReLU"], lambda a: nd.LeakyReLU(a, act_type="leaky", slope=0.1),
     lambda r: [N(r, 3, 4)])
case("LeakyReLU_default_slope", ["LeakyReLU"], lambda a: nd.LeakyReLU(a), lambda r: [N(r, 3, 4)])
case("clip", ["clip"], lambda a: nd.clip(a, -0.5, 0.7),
     lambda r: [N(r, 4, 5, avoid=(-0.5, 0.7))])
case("clip_method", ["clip"], lambda a: a.clip(0.0, 1.0), lambda r: [N(r, 4, 5, avoid=(0, 1))])

# reductions
case("sum_all", ["sum"], lambda a: nd.sum(a), lambda r: [N(r, 2, 3, 4)])
case("sum_axis", ["sum"], lambda a: nd.sum(a, axis=1), lambda r: [N(r, 2, 3, 4)])
case("sum_neg_axis_keepdims", ["sum"], lambda a: nd.sum(a, axis=-1, keepdims=True),
     lambda r: [N(r, 2, 3, 4)])
case("sum_tuple_axis", ["sum"], lambda a: a.sum(axis=(0, 2)), lambda r: [N(r, 2, 3, 4)])
case("sum_exclude", ["sum"], lambda a: nd.sum(a, axis=1, exclude=True), lambda r: [N(r, 2, 3, 4)])
case("sum_exclude_keepdims", ["sum"], lambda a: nd.sum(a, axis=(0, 2), keepdims=True,
                                                       exclude=True), lambda r: [N(r, 2, 3, 4)])
case("mean_all", ["mean"], lambda a: nd.mean(a), lambda r: [N(r, 2, 3, 4)])
case("mean_axis_keepdims", ["mean"], lambda a: nd.mean(a, axis=0, keepdims=True),
     lambda r: [N(r, 2, 3, 4)])
case("mean_exclude", ["mean"], lambda a: a.mean(axis=0, exclude=True), lambda r: [N(r, 2, 3, 4)])
case("max_all", ["max"], lambda a: nd.max(a), lambda r: [distinct(r, 3, 4)])
case("max_axis", ["max"], lambda a: nd.max(a, axis=1), lambda r: [distinct(r, 3, 4)])
case("max_axis_keepdims", ["max"], lambda a: a.max(axis=0, keepdims=True),
     lambda r: [distinct(r, 3, 4)])
case("min_all", ["min"], lambda a: nd.min(a), lambda r: [distinct(r, 3, 4)])
case("min_tuple_axis", ["min"], lambda a: nd.min(a, axis=(0, 2)), lambda r: [distinct(r, 2, 3, 4)])
case("min_neg_axis_keepdims", ["min"], lambda a: nd.min(a, axis=-1, keepdims=True),
     lambda r: [distinct(r, 3, 4)])
case("norm", ["norm"], lambda a: nd.norm(a), lambda r: [N(r, 3, 4)])
case("norm_axis", ["norm"], lambda a: nd.norm(a, axis=1, keepdims=True), lambda r: [N(r, 3, 4)])
case("norm_l1", ["norm"], lambda a: nd.norm(a, ord=1, axis=0), lambda r: [N(r, 3, 4)])
case("square_sum", ["square_sum"], lambda a: nd.square_sum(a, axis=1), lambda r: [N(r, 3, 4)])

# shapes
case("reshape_codes", ["reshape"], lambda a: nd.reshape(a, (0, -1)) * 1.5,
     lambda r: [N(r, 2, 3, 4)])
case("reshape_minus1_first", ["reshape"], lambda a: nd.reshape(a, (-1, 0)) * 1.5,
     lambda r: [N(r, 2, 3, 4)])
case("reshape_method_varargs", ["reshape"], lambda a: a.reshape(4, 0, -1) * 2,
     lambda r: [N(r, 2, 3, 4)])
case("reshape_like", ["reshape"], lambda a, b: a.reshape_like(b) * b,
     lambda r: [N(r, 2, 6), N(r, 3, 4)])
case("transpose_default", ["transpose"], lambda a: nd.transpose(a) * 1.0, lambda r: [N(r, 2, 3, 4)])
case("transpose_axes", ["transpose"], lambda a: nd.transpose(a, axes=(1, 2, 0)),
     lambda r: [N(r, 2, 3, 4)])
case("transpose_negative_axes", ["transpose"], lambda a: nd.transpose(a, axes=(0, -1, 1)),
     lambda r: [N(r, 2, 3, 4)])
case("T", ["transpose"], lambda a, b: a.T * b, lambda r: [N(r, 3, 2), N(r, 2, 3)])
case("flatten", ["flatten"], lambda a: nd.flatten(a) * 2, lambda r: [N(r, 2, 3, 4)])
case("Flatten", ["Flatten"], lambda a: nd.Flatten(a) * 2, lambda r: [N(r, 2, 3, 2, 2)])
case("expand_dims", ["expand_dims"], lambda a, b: nd.expand_dims(a, 1) * b,
     lambda r: [N(r, 2, 4), N(r, 2, 3, 4)])
case("expand_dims_neg", ["expand_dims"], lambda a: nd.expand_dims(a, -1) * 3,
     lambda r: [N(r, 2, 4)])
case("squeeze_all", ["squeeze"], lambda a: nd.squeeze(a) * 3, lambda r: [N(r, 1, 3, 1, 2)])
case("squeeze_axis", ["squeeze"], lambda a: nd.squeeze(a, axis=2) * 3, lambda r: [N(r, 1, 3, 1, 2)])
case("squeeze_to_scalar", ["squeeze"], lambda a: nd.squeeze(a) * 3, lambda r: [N(r, 1, 1)])
case("broadcast_to", ["broadcast_to"], lambda a: nd.broadcast_to(a, (4, 3)) * 1.0,
     lambda r: [N(r, 1, 3)])
case("broadcast_to_middle", ["broadcast_to"], lambda a: a.broadcast_to((2, 4, 3)) * 1.0,
     lambda r: [N(r, 2, 1, 3)])
case("broadcast_to_zero_code", ["broadcast_to"], lambda a: nd.broadcast_to(a, (0, 5)) * 1.0,
     lambda r: [N(r, 3, 1)])
case("tile", ["tile"], lambda a: nd.tile(a, (2, 3)), lambda r: [N(r, 2, 3)])
case("tile_more_reps", ["tile"], lambda a: nd.tile(a, (2, 1, 2)), lambda r: [N(r, 2, 3)])
case("tile_fewer_reps", ["tile"], lambda a: a.tile(3), lambda r: [N(r, 2, 3)])
case("swapaxes", ["swapaxes"], lambda a: nd.swapaxes(a, 0, 2), lambda r: [N(r, 2, 3, 4)])
case("moveaxis", ["moveaxis"], lambda a: nd.moveaxis(a, 0, -1), lambda r: [N(r, 2, 3, 4)])
case("concat", ["concat"], lambda a, b, c: nd.concat(a, b, c, dim=1),
     lambda r: [N(r, 2, 1, 3), N(r, 2, 2, 3), N(r, 2, 3, 3)])
case("concat_neg_dim", ["concat"], lambda a, b: nd.concat(a, b, dim=-1),
     lambda r: [N(r, 2, 3), N(r, 2, 2)])
case("concat_dim0", ["concat"], lambda a, b: nd.concat(a, b, dim=0),
     lambda r: [N(r, 2, 3), N(r, 1, 3)])
case("stack", ["stack"], lambda a, b, c: nd.stack(a, b, c, axis=1),
     lambda r: [N(r, 2, 3), N(r, 2, 3), N(r, 2, 3)])
case("stack_last", ["stack"], lambda a, b: nd.stack(a, b, axis=-1),
     lambda r: [N(r, 2, 3), N(r, 2, 3)])
case("split", ["split"], lambda a: (lambda o: o[0] * o[1] + o[2])(nd.split(a, 3, axis=1)),
     lambda r: [N(r, 2, 6)])
case("split_squeeze", ["split"],
     lambda a: (lambda o: o[0] * 2 + o[1] * o[2])(a.split(3, axis=0, squeeze_axis=True)),
     lambda r: [N(r, 3, 4)])
case("slice_axis", ["slice_axis"], lambda a: nd.slice_axis(a, axis=1, begin=1, end=3),
     lambda r: [N(r, 2, 4, 3)])
case("slice_axis_negative", ["slice_axis"], lambda a: a.slice_axis(-1, -2, None) * 2,
     lambda r: [N(r, 2, 4, 3)])
case("getitem_int", ["getitem"], lambda a: a[1] * 2, lambda r: [N(r, 3, 4)])
case("getitem_scalar_element", ["getitem"], lambda a: a[1, 2] * a[0, 0], lambda r: [N(r, 3, 4)])
case("getitem_slices", ["getitem"], lambda a: a[1:3, ::2] * 2, lambda r: [N(r, 4, 5)])
case("getitem_negative_step", ["getitem"], lambda a: a[::-1, 1:] * 2, lambda r: [N(r, 4, 5)])
case("getitem_ellipsis_newaxis", ["getitem"], lambda a: a[..., None, 1] * 2,
     lambda r: [N(r, 2, 3, 4)])
case("getitem_list_repeated", ["getitem"], lambda a: a[[0, 2, 2]] * 2, lambda r: [N(r, 3, 4)])
case("getitem_ndarray_index", ["getitem"], lambda a: a[_idx(2, 0, 2)] * 2, lambda r: [N(r, 3, 4)])
case("getitem_mixed_advanced", ["getitem"], lambda a: a[:, [1, 1, 3]] * 2, lambda r: [N(r, 3, 4)])
case("getitem_two_arrays", ["getitem"], lambda a: a[np.array([0, 2, 0]), np.array([1, 3, 1])] * 2,
     lambda r: [N(r, 3, 4)])
case("where", ["where"], lambda c, a, b: nd.where(c, a, b),
     lambda r: [(r.uniform(size=(3, 4)) > 0.5).astype(float), N(r, 3, 4), N(r, 3, 4)], wrt=[1, 2])
case("where_computed_condition", ["where"], lambda a, b: nd.where(a > b, a * b, a - b),
     lambda r: [distinct(r, 3, 4), distinct(r, 3, 4) + 0.05])

# linear algebra
for _ta in (False, True):
    for _tb in (False, True):
        case(f"dot_2d_ta{int(_ta)}_tb{int(_tb)}", ["dot"],
             (lambda ta, tb: lambda a, b: nd.dot(a, b, transpose_a=ta, transpose_b=tb))(_ta, _tb),
             (lambda ta, tb: lambda r: [N(r, *((4, 2) if ta else (2, 4))),
                                        N(r, *((3, 4) if tb else (4, 3)))])(_ta, _tb))
case("dot_1d_2d", ["dot"], lambda a, b: nd.dot(a, b), lambda r: [N(r, 4), N(r, 4, 3)])
case("dot_2d_1d", ["dot"], lambda a, b: nd.dot(a, b), lambda r: [N(r, 3, 4), N(r, 4)])
case("dot_1d_1d", ["dot"], lambda a, b: nd.dot(a, b), lambda r: [N(r, 4), N(r, 4)])
case("dot_1d_2d_transpose_b", ["dot"], lambda a, b: nd.dot(a, b, transpose_b=True),
     lambda r: [N(r, 4), N(r, 3, 4)])
case("dot_3d_2d", ["dot"], lambda a, b: nd.dot(a, b), lambda r: [N(r, 2, 3, 4), N(r, 4, 5)])
case("dot_2d_3d", ["dot"], lambda a, b: nd.dot(a, b), lambda r: [N(r, 2, 3), N(r, 3, 4, 2)])
for _ta in (False, True):
    for _tb in (False, True):
        case(f"batch_dot_ta{int(_ta)}_tb{int(_tb)}", ["batch_dot"],
             (lambda ta, tb: lambda a, b: nd.batch_dot(a, b, transpose_a=ta, transpose_b=tb))(
                 _ta, _tb),
             (lambda ta, tb: lambda r: [N(r, *((2, 4, 3) if ta else (2, 3, 4))),
                                        N(r, *((2, 5, 4) if tb else (2, 4, 5)))])(_ta, _tb))
case("linalg_gemm2", ["linalg_gemm2"],
     lambda a, b: nd.linalg_gemm2(a, b, transpose_b=True, alpha=0.5),
     lambda r: [N(r, 2, 3, 4), N(r, 2, 5, 4)])
case("linalg_gemm2_2d", ["linalg_gemm2"], lambda a, b: nd.linalg_gemm2(a, b, transpose_a=True),
     lambda r: [N(r, 4, 3), N(r, 4, 5)])
case("FullyConnected", ["FullyConnected"], lambda x, w, b: nd.FullyConnected(x, w, b, num_hidden=3),
     lambda r: [N(r, 4, 5), N(r, 3, 5), N(r, 3)])
case("FullyConnected_flatten", ["FullyConnected"],
     lambda x, w, b: nd.FullyConnected(x, w, b, num_hidden=3, flatten=True),
     lambda r: [N(r, 2, 3, 4), N(r, 3, 12), N(r, 3)])
case("FullyConnected_no_flatten", ["FullyConnected"],
     lambda x, w, b: nd.FullyConnected(x, w, b, num_hidden=3, flatten=False),
     lambda r: [N(r, 2, 3, 4), N(r, 3, 4), N(r, 3)])
case("FullyConnected_no_flatten_4d", ["FullyConnected"],
     lambda x, w, b: nd.FullyConnected(x, w, b, num_hidden=3, flatten=False),
     lambda r: [N(r, 2, 2, 3, 4), N(r, 3, 4), N(r, 3)])
case("FullyConnected_no_bias", ["FullyConnected"],
     lambda x, w: nd.FullyConnected(x, w, None, num_hidden=3, no_bias=True),
     lambda r: [N(r, 4, 5), N(r, 3, 5)])
for _act in ("relu", "sigmoid", "tanh"):
    case(f"FullyConnected_fused_{_act}", ["FullyConnected"],
         (lambda act: lambda x, w, b: nd.FullyConnected(x, w, b, num_hidden=3, act_type=act))(_act),
         lambda r: [N(r, 4, 5), N(r, 3, 5), N(r, 3)])
case("FullyConnected_fused_no_flatten", ["FullyConnected"],
     lambda x, w: nd.FullyConnected(x, w, None, no_bias=True, flatten=False, act_type="tanh"),
     lambda r: [N(r, 2, 3, 4), N(r, 3, 4)])
case("FullyConnected_transpose_weight", ["FullyConnected"],
     lambda x, w, b: nd.FullyConnected(x, w, b, num_hidden=3, transpose_weight=True),
     lambda r: [N(r, 4, 5), N(r, 5, 3), N(r, 3)])
case("FullyConnected_transpose_weight_flatten_act", ["FullyConnected"],
     lambda x, w: nd.FullyConnected(x, w, None, no_bias=True, transpose_weight=True,
                                    act_type="sigmoid"),
     lambda r: [N(r, 2, 3, 2), N(r, 6, 4)])
case("FullyConnected_transpose_weight_no_flatten", ["FullyConnected"],
     lambda x, w, b: nd.FullyConnected(x, w, b, flatten=False, transpose_weight=True),
     lambda r: [N(r, 2, 3, 4), N(r, 4, 3), N(r, 3)])
case("FullyConnected_tied_weights", ["FullyConnected"],
     lambda x, w: nd.FullyConnected(nd.FullyConnected(x, w, None, no_bias=True, act_type="tanh"),
                                    w, None, no_bias=True, transpose_weight=True),
     lambda r: [N(r, 4, 5), N(r, 3, 5)])
case("FullyConnected_weight_used_after", ["FullyConnected"],
     lambda x, w, b: nd.FullyConnected(x, w, b, num_hidden=3) * 2 + nd.sum(w * w),
     lambda r: [N(r, 4, 5), N(r, 3, 5), N(r, 3)])

# softmax and friends
case("softmax", ["softmax"], lambda a: nd.softmax(a), lambda r: [N(r, 3, 5)])
case("softmax_axis0_temperature", ["softmax"], lambda a: nd.softmax(a, axis=0, temperature=2.0),
     lambda r: [N(r, 3, 5)])
case("log_softmax", ["log_softmax"], lambda a: nd.log_softmax(a), lambda r: [N(r, 3, 5)])
case("log_softmax_axis1_temperature", ["log_softmax"],
     lambda a: nd.log_softmax(a, axis=1, temperature=0.5), lambda r: [N(r, 2, 3, 4)])
case("pick", ["pick"], lambda a: nd.pick(a, _idx(0, 2, 4)), lambda r: [N(r, 3, 5)])
case("pick_axis0_keepdims", ["pick"], lambda a: nd.pick(a, _idx(1, 0, 2, 2, 0), axis=0,
                                                        keepdims=True), lambda r: [N(r, 3, 5)])
case("pick_3d", ["pick"], lambda a: a.pick(nd.array(np.array([[0, 3], [2, 1]])), axis=1),
     lambda r: [N(r, 2, 4, 2)])
case("pick_clip_out_of_range", ["pick"], lambda a: nd.pick(a, _idx(-1, 7, 2)),
     lambda r: [N(r, 3, 5)])
case("take", ["take"], lambda a: nd.take(a, _idx(2, 0, 2, 1)), lambda r: [N(r, 3, 4)])
case("take_axis1", ["take"], lambda a: nd.take(a, _idx(3, 3, 0), axis=1), lambda r: [N(r, 2, 4, 3)])
case("take_2d_indices_axis1", ["take"], lambda a: nd.take(a, nd.array(np.array([[0, 3], [3, 1]])),
                                                          axis=1), lambda r: [N(r, 2, 4, 3)])
case("take_2d_indices_last_axis", ["take"],
     lambda a: nd.take(a, nd.array(np.array([[0, 2], [2, 1]])), axis=-1), lambda r: [N(r, 2, 4, 3)])
case("take_wrap", ["take"], lambda a: nd.take(a, _idx(-1, 4, 5), mode="wrap"),
     lambda r: [N(r, 3, 2)])
case("take_clip", ["take"], lambda a: a.take(_idx(-1, 4, 1)), lambda r: [N(r, 3, 2)])
case("Embedding", ["Embedding"],
     lambda w: nd.Embedding(_idx(1, 3, 1, 0, 3, 3), w, input_dim=4, output_dim=3),
     lambda r: [N(r, 4, 3)])
case("Embedding_2d_indices", ["Embedding"],
     lambda w: nd.Embedding(nd.array(np.array([[1, 2], [2, 2]])), w, input_dim=4, output_dim=3),
     lambda r: [N(r, 4, 3)])

# normalization, dropout, dtype
case("LayerNorm", ["LayerNorm"], lambda x, g, b: nd.LayerNorm(x, g, b),
     lambda r: [N(r, 3, 5), N(r, 5), N(r, 5)])
case("LayerNorm_axis1", ["LayerNorm"], lambda x, g, b: nd.LayerNorm(x, g, b, axis=1, eps=1e-3),
     lambda r: [N(r, 2, 4, 3), N(r, 4), N(r, 4)])


def _bn(train_stats=True, **kw):
    def fn(x, g, b):
        c = x.shape[kw.get("axis", 1)]
        mm = nd.array(np.linspace(-0.5, 0.5, c), dtype=x.dtype)
        mv = nd.array(np.linspace(0.5, 1.5, c), dtype=x.dtype)
        return nd.BatchNorm(x, g, b, mm, mv, **kw)
    return fn


case("BatchNorm_train", ["BatchNorm"], _bn(), lambda r: [N(r, 4, 3), N(r, 3), N(r, 3)])
case("BatchNorm_train_4d", ["BatchNorm"], _bn(eps=1e-3),
     lambda r: [N(r, 2, 3, 2, 2), N(r, 3), N(r, 3)])
case("BatchNorm_train_axis_last", ["BatchNorm"], _bn(axis=-1),
     lambda r: [N(r, 2, 4, 3), N(r, 3), N(r, 3)])
case("BatchNorm_train_fix_gamma", ["BatchNorm"], _bn(fix_gamma=True),
     lambda r: [N(r, 4, 3), N(r, 3), N(r, 3)])
case("BatchNorm_inference", ["BatchNorm"], _bn(), lambda r: [N(r, 4, 3), N(r, 3), N(r, 3)],
     train=False)
case("BatchNorm_global_stats", ["BatchNorm"], _bn(use_global_stats=True),
     lambda r: [N(r, 2, 3, 2), N(r, 3), N(r, 3)])


def _dropout(**kw):
    def fn(x):
        engine_random.seed(7)       # the same mask on every call
        return nd.Dropout(x, **kw)
    return fn


case("Dropout_seeded", ["Dropout"], _dropout(p=0.4), lambda r: [N(r, 6, 5)])
case("Dropout_axes", ["Dropout"], _dropout(p=0.5, axes=(0,)), lambda r: [N(r, 6, 5)])
case("Dropout_always_in_predict", ["Dropout"], _dropout(p=0.3, mode="always"),
     lambda r: [N(r, 6, 5)], train=False)
case("Dropout_predict_identity", ["Dropout"], _dropout(p=0.3), lambda r: [N(r, 6, 5)], train=False)
case("astype_same_width", ["astype"], lambda a: a.astype(a.dtype) * a, lambda r: [N(r, 2, 3)])
case("cast", ["cast"], lambda a: nd.cast(a, dtype=a.dtype) * 2, lambda r: [N(r, 2, 3)])


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_op_gradient(c):
    seed = sum(map(ord, c.name))
    r = np.random.default_rng(seed)
    check_grad(c.fn, c.make(r), c.wrt, seed=seed, **c.opts)


# Ops that have no backward (creation, indices, random draws, I/O) and ops checked by the
# dedicated tests below.
NOT_DIFFERENTIABLE = {"NDArray", "array", "zeros", "ones", "full", "empty", "arange", "zeros_like",
                      "ones_like", "full_like", "one_hot", "argmax", "argmin", "waitall", "random",
                      "random_uniform", "random_normal", "random_randint", "save", "load"}
DEDICATED = {"stop_gradient", "BlockGrad"}


def test_every_differentiable_op_is_checked():
    covered = {op for c in CASES for op in c.ops}
    exported = set(nd.__all__)
    missing = exported - covered - NOT_DIFFERENTIABLE - DEDICATED
    assert not missing, f"exported ops without a gradient check: {sorted(missing)}"
    assert covered - exported <= {"getitem", "astype"}


@pytest.mark.parametrize("op", ["stop_gradient", "BlockGrad"])
def test_stop_gradient_blocks_gradient(op):
    x = nd.array([[1.0, -2.0], [3.0, 0.5]], dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = getattr(nd, op)(x * 2) * x
    y.backward()
    # only the direct use counts: d/dx (c·x) with c = 2x held constant
    np.testing.assert_array_equal(x.grad.asnumpy(), 2 * x.asnumpy())


def test_max_min_ties_each_get_the_whole_gradient():
    # MXNet's _backward_max/_backward_min is ograd * (data == out): ties are not split
    x = nd.array([[1.0, 3.0, 3.0], [2.0, -1.0, -1.0]], dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = nd.max(x, axis=1) * nd.array([2.0, 5.0], dtype="float64") + nd.min(x, axis=1)
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [[1.0, 2.0, 2.0], [5.0, 1.0, 1.0]])
    with autograd.record():
        z = nd.max(x)
    z.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [[0, 1, 1], [0, 0, 0]])


def test_astype_gradient_crosses_dtypes():
    x = nd.array([[1.5, -2.0, 0.25]], dtype="float32")
    x.attach_grad()
    head = np.array([[0.5, -1.0, 2.0]])
    with autograd.record():
        y = x.astype("float64") * nd.array([[2.0, 3.0, -1.0]], dtype="float64")
    assert y.dtype == np.float64
    y.backward(nd.array(head, dtype="float64"))
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.asnumpy(), head * [[2.0, 3.0, -1.0]], rtol=1e-7)
    x64 = nd.array([[1.5, -2.0]], dtype="float64")
    x64.attach_grad()
    with autograd.record():
        z = nd.cast(x64, "float32") * 3
    assert z.dtype == np.float32
    z.backward()
    assert x64.grad.dtype == np.float64
    np.testing.assert_array_equal(x64.grad.asnumpy(), [[3.0, 3.0]])


def test_dropout_mask_follows_the_seed():
    x = nd.ones((50, 40), dtype="float64")
    x.attach_grad()
    engine_random.seed(3)
    with autograd.record():
        y = nd.Dropout(x, p=0.25)
    y.backward()
    out, grad = y.asnumpy(), x.grad.asnumpy()
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1 / 0.75)
    np.testing.assert_array_equal(grad, out)            # d/dx (x·mask) = mask, with x = 1
    assert 0.2 < 1 - kept.mean() < 0.3
    engine_random.seed(3)
    with autograd.record():
        y2 = nd.Dropout(x, p=0.25)
    np.testing.assert_array_equal(y2.asnumpy(), out)


_EXTREME = {
    "sigmoid": nd.sigmoid, "softrelu": nd.softrelu, "tanh": nd.tanh, "softsign": nd.softsign,
    "softmax": nd.softmax, "log_softmax": nd.log_softmax,
    "FullyConnected_sigmoid": lambda x: nd.FullyConnected(x, nd.array(np.eye(5)), nd.zeros(5),
                                                          act_type="sigmoid"),
    "LayerNorm": lambda x: nd.LayerNorm(x, nd.ones((5,)), nd.zeros((5,))),
    "SigmoidBCE_label1": lambda x: gluon.loss.SigmoidBinaryCrossEntropyLoss()(x, nd.ones_like(x)),
    "SigmoidBCE_label0": lambda x: gluon.loss.SigmoidBinaryCrossEntropyLoss()(x, nd.zeros_like(x)),
    "SoftmaxCE": lambda x: gluon.loss.SoftmaxCrossEntropyLoss()(x, nd.array([0, 4])),
}


@pytest.mark.parametrize("name", sorted(_EXTREME))
def test_extreme_float32_inputs_stay_finite(name):
    x = nd.array([[-200.0, -30.0, 0.5, 30.0, 200.0], [88.0, -88.0, 0.0, 1e-30, -1e4]])
    x.attach_grad()
    with np.errstate(invalid="raise", divide="raise"):     # no NaN or inf is ever produced
        with autograd.record():
            y = _EXTREME[name](x)
        y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    assert np.isfinite(y.asnumpy()).all() and np.isfinite(x.grad.asnumpy()).all()


# --------------------------------------------------------------------------- layers and losses
def _block_grad(block, inputs, wrt, head, dtype, train, call):
    xs = [_nd(a, dtype) for a in inputs]
    for i in wrt:
        xs[i].attach_grad()
    with autograd.record(train_mode=train):
        y = call(block, *xs)
    y.backward(_nd(head, dtype))
    params = {name: p.grad().asnumpy() for name, p in block.collect_params().items()
              if p.grad_req != "null"}
    return y, {i: xs[i].grad.asnumpy() for i in wrt}, params


def check_block(block, inputs, wrt=(0,), *, train=True, seed=0, call=None, values=None,
                f32=True):
    """Finite-difference check of a block's parameter and input gradients (float64 block)."""
    call = call or (lambda b, *xs: b(*xs))
    inputs = [np.asarray(a, dtype=np.float64) for a in inputs]
    r = np.random.default_rng(seed)
    block.cast("float64")
    block.initialize()
    with _mode(train):
        shape = call(block, *[_nd(a, np.float64) for a in inputs]).shape   # materialize
    params = block.collect_params()
    for name, p in params.items():
        v = (values or {}).get(name.rsplit("_", 1)[-1])
        p.set_data(v(r, p.shape) if v else r.normal(0, 0.6, p.shape))
    head = r.standard_normal(shape)

    y64, gin, gpar = _block_grad(block, inputs, wrt, head, np.float64, train, call)
    assert y64.dtype == np.float64

    def f(arrs):
        with _mode(train):
            return float(np.sum(call(block, *[_nd(a, np.float64) for a in arrs]).asnumpy()
                                * head))

    arrs = [a.copy() for a in inputs]
    f0 = f(arrs)
    atol = ATOL * max(1.0, abs(f0))
    targets = [(f"input {i}", arrs[i], gin[i]) for i in wrt]
    targets += [(name, p.data()._data, gpar[name]) for name, p in params.items()
                if p.grad_req != "null"]
    assert gpar, "the block has no parameter with a gradient"
    for label, arr, ana in targets:
        num = np.empty_like(arr)
        for idx in np.ndindex(arr.shape):
            v = arr[idx]
            arr[idx] = v + EPS
            fp = f(arrs)
            arr[idx] = v - EPS
            fm = f(arrs)
            arr[idx] = v
            num[idx] = (fp - fm) / (2 * EPS)
        np.testing.assert_allclose(ana, num, rtol=RTOL, atol=atol,
                                   err_msg=f"gradient of {label} vs finite differences")

    if f32:
        block.cast("float32")
        y32, gin32, gpar32 = _block_grad(block, inputs, wrt, head, np.float32, train, call)
        assert y32.dtype == np.float32
        np.testing.assert_allclose(y32.asnumpy(), y64.asnumpy(), rtol=F32_RTOL,
                                   atol=F32_RTOL * max(1.0, np.abs(y64.asnumpy()).max()))
        for key, g in list(gin32.items()) + list(gpar32.items()):
            ref = gin[key] if key in gin else gpar[key]
            assert g.dtype == np.float32 and np.isfinite(g).all(), key
            np.testing.assert_allclose(g, ref, rtol=F32_RTOL,
                                       atol=F32_RTOL * max(1.0, np.abs(ref).max()),
                                       err_msg=f"float32 gradient of {key}")


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "softrelu", "softsign"])
def test_dense_gradient(activation):
    r = np.random.default_rng(11)
    check_block(nn.Dense(4, activation=activation), [N(r, 3, 5)], seed=1)


@pytest.mark.parametrize("kw, shape", [
    ({"in_units": 12}, (2, 3, 4)),                    # flatten=True, in_units given
    ({"flatten": False}, (2, 3, 4)),
    ({"flatten": False, "use_bias": False}, (2, 2, 3, 4)),
    ({"use_bias": False, "activation": "tanh", "in_units": 5}, (3, 5)),
])
def test_dense_variants_gradient(kw, shape):
    r = np.random.default_rng(12)
    check_block(nn.Dense(3, **kw), [N(r, *shape)], seed=2)


def test_leaky_relu_layer_gradient():
    r = np.random.default_rng(13)
    net = nn.Sequential()
    net.add(nn.Dense(4), nn.LeakyReLU(0.15))
    check_block(net, [N(r, 3, 5)], seed=3)


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4)])
def test_layer_norm_layer_gradient(shape):
    r = np.random.default_rng(14)
    check_block(nn.LayerNorm(), [N(r, *shape)], seed=4)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 2, 2)])
def test_batch_norm_layer_gradient(train, shape):
    r = np.random.default_rng(15)
    pos = {"var": lambda rr, s: rr.uniform(0.5, 1.5, s)}
    check_block(nn.BatchNorm(), [N(r, *shape)], train=train, seed=5, values=pos)


def test_batch_norm_layer_updates_running_stats_only_in_training():
    x = nd.array(np.random.default_rng(16).normal(2.0, 3.0, (8, 3)))
    bn = nn.BatchNorm(momentum=0.9, in_channels=3)
    bn.initialize()
    with autograd.predict_mode():
        bn(x)
    np.testing.assert_array_equal(bn.running_mean.data().asnumpy(), 0)
    with autograd.record():
        bn(x)
    xa = x.asnumpy()
    np.testing.assert_allclose(bn.running_mean.data().asnumpy(), 0.1 * xa.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.data().asnumpy(), 0.9 + 0.1 * xa.var(0), rtol=1e-5)


def test_embedding_layer_gradient():
    idx = np.array([[0, 3, 3], [1, 0, 3]], dtype=np.float64)
    check_block(nn.Embedding(5, 3), [idx], wrt=(), seed=6)


@pytest.mark.parametrize("weight", [None, 0.7])
def test_l2_loss_gradient(weight):
    r = np.random.default_rng(17)
    kw = {} if weight is None else {"weight": weight}
    check_grad(lambda p, lab: gluon.loss.L2Loss(**kw)(p, lab), [N(r, 4, 3), N(r, 4, 3)])


def test_l2_loss_with_sample_weight_gradient():
    r = np.random.default_rng(18)
    check_grad(lambda p, lab, sw: gluon.loss.L2Loss()(p, lab, sw),
               [N(r, 4, 3), N(r, 4, 3), P(r, 4, 1)])


def test_l1_loss_gradient():
    r = np.random.default_rng(19)
    pred = N(r, 4, 3)
    label = pred + N(r, 4, 3, margin=0.05)
    check_grad(lambda p, lab: gluon.loss.L1Loss()(p, lab), [pred, label])


def test_softmax_ce_sparse_gradient():
    r = np.random.default_rng(20)
    label = nd.array([2, 0, 4, 1], dtype="float64")
    check_grad(lambda p: gluon.loss.SoftmaxCrossEntropyLoss()(p, label), [N(r, 4, 5)])


def test_softmax_ce_sparse_axis_gradient():
    r = np.random.default_rng(21)
    label = nd.array([[2, 0, 1], [1, 1, 0]], dtype="float64")
    check_grad(lambda p: gluon.loss.SoftmaxCrossEntropyLoss(axis=1)(p, label), [N(r, 2, 4, 3)])


def test_softmax_ce_dense_gradient():
    r = np.random.default_rng(22)
    label = r.dirichlet(np.ones(5), size=4)
    check_grad(lambda p, lab: gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)(p, lab),
               [N(r, 4, 5), label])


def test_softmax_ce_from_logits_gradient():
    r = np.random.default_rng(23)
    label = nd.array([2, 0, 1], dtype="float64")
    check_grad(lambda p: gluon.loss.SoftmaxCrossEntropyLoss(from_logits=True)(nd.log_softmax(p),
                                                                             label), [N(r, 3, 4)])


def test_sigmoid_bce_from_logits_gradient():
    r = np.random.default_rng(24)
    check_grad(lambda p, lab: gluon.loss.SigmoidBinaryCrossEntropyLoss()(p, lab),
               [N(r, 4, 3, scale=2), r.uniform(0, 1, (4, 3))])


def test_sigmoid_bce_from_sigmoid_gradient():
    r = np.random.default_rng(25)
    check_grad(lambda p, lab: gluon.loss.SigmoidBinaryCrossEntropyLoss(from_sigmoid=True)(p, lab),
               [r.uniform(0.1, 0.9, (4, 3)), r.uniform(0, 1, (4, 3))])


def test_sigmoid_bce_logits_matches_closed_form():
    r = np.random.default_rng(26)
    x, y = N(r, 5, 2, scale=3), r.uniform(0, 1, (5, 2))
    out = gluon.loss.SigmoidBinaryCrossEntropyLoss()(nd.array(x, dtype="float64"),
                                                     nd.array(y, dtype="float64")).asnumpy()
    ref = np.mean(np.logaddexp(0, x) - x * y, axis=1)
    np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_net_with_loss_end_to_end_gradient():
    r = np.random.default_rng(27)
    net = nn.Sequential()
    net.add(nn.Dense(5, activation="tanh"), nn.Dense(3))
    label = nd.array([0, 2, 1, 1], dtype="float64")
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    check_block(net, [N(r, 4, 6)], seed=7, call=lambda b, x: loss(b(x), label))


# --------------------------------------------------------------------------- autograd mechanics
def test_variable_used_twice_gets_the_sum():
    x = nd.array([1.0, -2.0, 3.0], dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = x * 3 + nd.exp(x) + x * x
    y.backward()
    xa = x.asnumpy()
    np.testing.assert_allclose(x.grad.asnumpy(), 3 + np.exp(xa) + 2 * xa, rtol=1e-12)


def test_same_head_twice_in_one_backward_call_sums():
    x = nd.array([1.0, 2.0], dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = x * x
    autograd.backward([y, y], [nd.ones(2, dtype="float64"), nd.full((2,), 2.0, dtype="float64")])
    np.testing.assert_allclose(x.grad.asnumpy(), 3 * 2 * x.asnumpy())


def test_grad_req_add_accumulates_and_write_overwrites():
    for req, factor in (("add", 3), ("write", 1)):
        x = nd.array([1.0, 2.0, -1.0], dtype="float64")
        x.attach_grad(grad_req=req)
        for _ in range(3):
            with autograd.record():
                y = (x * x).sum()
            y.backward()
        np.testing.assert_allclose(x.grad.asnumpy(), factor * 2 * x.asnumpy())


@pytest.mark.parametrize("req, factor", [("add", 3), ("write", 1)])
def test_parameter_grad_req_across_backward_calls(req, factor):
    dense = nn.Dense(2, in_units=3)
    dense.initialize()
    dense.collect_params().setattr("grad_req", req)
    x = nd.array([[1.0, 2.0, 3.0]])
    for _ in range(3):
        with autograd.record():
            y = dense(x)
        y.backward()
    np.testing.assert_allclose(dense.weight.grad().asnumpy(), factor * np.tile(x.asnumpy(), (2, 1)))
    np.testing.assert_allclose(dense.bias.grad().asnumpy(), factor * np.ones(2))


def test_retain_graph_allows_second_backward():
    x = nd.array([1.0, 2.0], dtype="float64")
    x.attach_grad(grad_req="add")
    with autograd.record():
        y = nd.exp(x) * x
    y.backward(retain_graph=True)
    y.backward()
    xa = x.asnumpy()
    np.testing.assert_allclose(x.grad.asnumpy(), 2 * (np.exp(xa) * (1 + xa)), rtol=1e-12)
    with pytest.raises(MXNetError):
        y.backward()


def test_second_backward_without_retain_graph_raises():
    x = nd.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        y = (x * 2).sum()
    y.backward()
    with pytest.raises(MXNetError, match="Cannot differentiate node because it is not in a "
                                         "computational graph"):
        y.backward()


def test_second_backward_through_a_freed_shared_subgraph_raises():
    # y2 was recorded before y1's backward freed h: its gradient would silently stop at h
    x = nd.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        h = x * 3
        y1 = (h * 2).sum()
        y2 = (h * h).sum()
    y1.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), [6.0, 6.0])
    with pytest.raises(MXNetError, match="retain_graph=True"):
        y2.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), [6.0, 6.0])   # nothing was written


def test_shared_subgraph_with_retain_graph_gives_both_gradients():
    x = nd.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        h = x * 3
        y1 = (h * 2).sum()
        y2 = (h * h).sum()
    y1.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.asnumpy(), [6.0, 6.0])
    y2.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 18 * x.asnumpy())


def test_output_of_a_freed_graph_is_a_constant_in_a_new_recording():
    x = nd.array([1.0, 2.0], dtype="float64")
    x.attach_grad()
    with autograd.record():
        h = x * 3
        y1 = (h * 2).sum()
    y1.backward()
    with autograd.record():
        y2 = (h * x).sum()          # h's graph is gone: h is a constant now
    y2.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 3 * x.asnumpy())


def test_backward_outside_record_raises_mxnet_error():
    x = nd.array([1.0, 2.0])
    x.attach_grad()
    y = x * 2
    with pytest.raises(MXNetError, match="Cannot differentiate node because it is not in a "
                                         "computational graph. You need to set is_recording to "
                                         "true or use autograd.record"):
        y.backward()
    z = nd.array([3.0]) * 2          # no variable at all
    with autograd.record():
        w = z * 2
    with pytest.raises(MXNetError, match="Cannot differentiate node"):
        w.backward()


def test_pause_stops_recording():
    x = nd.array([1.0, 2.0, 3.0], dtype="float64")
    x.attach_grad()
    with autograd.record():
        assert autograd.is_recording()
        y = x * 2
        with autograd.pause():
            assert not autograd.is_recording()
            assert not autograd.is_training()
            c = x * 10                  # a constant: no gradient flows through it
        assert autograd.is_recording()
        z = (y * c).sum()
    assert not autograd.is_recording()
    z.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 2 * 10 * x.asnumpy())
    with autograd.record():
        with autograd.pause(train_mode=True):
            assert autograd.is_training() and not autograd.is_recording()


def test_is_training_in_each_scope():
    assert not autograd.is_training() and not autograd.is_recording()
    with autograd.record():
        assert autograd.is_training() and autograd.is_recording()
        with autograd.predict_mode():
            assert not autograd.is_training() and autograd.is_recording()
        with autograd.train_mode():
            assert autograd.is_training()
    with autograd.record(train_mode=False):
        assert not autograd.is_training() and autograd.is_recording()
        with autograd.train_mode():
            assert autograd.is_training() and autograd.is_recording()
    with autograd.train_mode():
        assert autograd.is_training() and not autograd.is_recording()
        with autograd.predict_mode():
            assert not autograd.is_training()
        assert autograd.is_training()
    assert not autograd.is_training() and not autograd.is_recording()
    prev = autograd.set_training(True)
    try:
        assert prev is False and autograd.is_training()
    finally:
        autograd.set_training(prev)
    prev = autograd.set_recording(True)
    try:
        assert prev is False and autograd.is_recording()
    finally:
        autograd.set_recording(prev)


def test_backward_train_mode_flag_reaches_nothing_after_return():
    x = nd.array([1.0])
    x.attach_grad()
    with autograd.record():
        y = x * 2
    y.backward(train_mode=False)
    assert not autograd.is_training()


def test_scopes_restore_state_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with autograd.record():
            1 / 0   # noqa: B018
    assert not autograd.is_recording() and not autograd.is_training()


@pytest.mark.parametrize("retain", [False, True])
def test_deep_chain_does_not_hit_the_recursion_limit(retain):
    depth = 5000
    assert depth > sys.getrecursionlimit() // 2
    x = nd.array([0.5, -0.25], dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = x
        for _ in range(depth):
            y = y * 1.0001 + 0.001
    y.backward(retain_graph=retain)
    np.testing.assert_allclose(x.grad.asnumpy(), 1.0001 ** depth, rtol=1e-10)
    del y   # freeing the (retained) chain must not recurse either


def test_deep_layer_stack():
    net = nn.Sequential()
    for _ in range(1200):
        net.add(nn.Dense(2, in_units=2, weight_initializer=init.Constant(
            nd.array([[1.0, 0.0], [0.0, 1.0]]))), nn.Activation("tanh"))
    net.initialize()
    x = nd.array([[0.3, -0.2]])
    with autograd.record():
        y = net(x).sum()
    y.backward()
    assert np.isfinite(net[0].weight.grad().asnumpy()).all()
    assert np.abs(net[0].weight.grad().asnumpy()).sum() > 0


class _WriteSpy:
    """Counts ``_write_grad`` calls on each NDArray (the non-direct path)."""

    def __init__(self, monkeypatch):
        self.calls = {}
        original = NDArray._write_grad

        def spy(arr, g):
            self.calls[id(arr)] = self.calls.get(id(arr), 0) + 1
            return original(arr, g)
        monkeypatch.setattr(NDArray, "_write_grad", spy)


def _dense_net(shared):
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(3, in_units=3, activation="tanh"))
        net.add(nn.Dense(3, in_units=3, params=net[0].params) if shared
                else nn.Dense(3, in_units=3))
    net.cast("float64")
    net.initialize(init.Normal(0.5))
    return net


def _manual_two_layer(x, w0, b0, w1, b1, head):
    h = np.tanh(x @ w0.T + b0)
    gy = head
    gw1, gb1, gh = gy.T @ h, gy.sum(0), gy @ w1
    ga = gh * (1 - h * h)
    gw0, gb0 = ga.T @ x, ga.sum(0)
    return gw0, gb0, gw1, gb1


def test_direct_gradient_write_happens_for_single_use_parameters(monkeypatch):
    net = _dense_net(shared=False)
    x = np.random.default_rng(30).normal(size=(4, 3))
    head = np.random.default_rng(31).normal(size=(4, 3))
    spy = _WriteSpy(monkeypatch)
    w0, w1 = net[0].weight, net[1].weight
    buf0 = w0.grad()
    with autograd.record():
        y = net(nd.array(x, dtype="float64"))
    y.backward(nd.array(head, dtype="float64"))
    assert spy.calls.get(id(w0.data()), 0) == 0, "single-use weight did not get a direct write"
    assert w0.grad() is buf0
    ref = _manual_two_layer(x, w0.data().asnumpy(), net[0].bias.data().asnumpy(),
                            w1.data().asnumpy(), net[1].bias.data().asnumpy(), head)
    got = (w0.grad().asnumpy(), net[0].bias.grad().asnumpy(), w1.grad().asnumpy(),
           net[1].bias.grad().asnumpy())
    for g, rf in zip(got, ref):
        np.testing.assert_allclose(g, rf, rtol=1e-12)
    assert w0.data()._fresh_grad and w1.data()._fresh_grad


def test_shared_dense_gets_the_sum_of_both_uses(monkeypatch):
    net = _dense_net(shared=True)
    x = np.random.default_rng(32).normal(size=(4, 3))
    head = np.random.default_rng(33).normal(size=(4, 3))
    w, b = net[0].weight, net[0].bias
    assert net[1].weight is w and len(list(net.collect_params().values())) == 2
    # a stale value in the buffer must be overwritten, not added to
    w.grad()[:] = 123.0
    spy = _WriteSpy(monkeypatch)
    with autograd.record():
        y = net(nd.array(x, dtype="float64"))
    y.backward(nd.array(head, dtype="float64"))
    assert spy.calls.get(id(w.data()), 0) == 1
    gw0, gb0, gw1, gb1 = _manual_two_layer(x, w.data().asnumpy(), b.data().asnumpy(),
                                           w.data().asnumpy(), b.data().asnumpy(), head)
    np.testing.assert_allclose(w.grad().asnumpy(), gw0 + gw1, rtol=1e-12)
    np.testing.assert_allclose(b.grad().asnumpy(), gb0 + gb1, rtol=1e-12)


def test_recorded_contributions_of_a_shared_parameter_sum_to_its_gradient():
    net = _dense_net(shared=True)
    x = np.random.default_rng(34).normal(size=(4, 3))
    w, b = net[0].weight, net[0].bias
    with autograd.record():
        y = net(nd.array(x, dtype="float64"))
    with autograd.record_contributions() as rc:
        y.backward()
    for p in (w, b):
        parts = rc.by_array[p.data()]
        assert len(parts) == 2
        np.testing.assert_allclose(parts[0] + parts[1], p.grad().asnumpy(), rtol=1e-12)
    gw0, gb0, gw1, gb1 = _manual_two_layer(x, w.data().asnumpy(), b.data().asnumpy(),
                                           w.data().asnumpy(), b.data().asnumpy(),
                                           np.ones((4, 3)))
    np.testing.assert_allclose(rc.by_array[w.data()][0], gw0, rtol=1e-12)   # forward order
    np.testing.assert_allclose(rc.by_array[w.data()][1], gw1, rtol=1e-12)


def test_single_use_parameter_plus_regularizer_gets_the_sum():
    dense = nn.Dense(2, in_units=3, dtype="float64")
    dense.initialize(init.Normal(0.5))
    x = nd.array(np.ones((1, 3)), dtype="float64")
    with autograd.record():
        y = dense(x).sum() + 0.5 * (dense.weight.data() ** 2).sum()
    y.backward()
    np.testing.assert_allclose(dense.weight.grad().asnumpy(),
                               np.ones((2, 3)) + dense.weight.data().asnumpy(), rtol=1e-12)


def test_direct_write_respects_grad_req_add():
    dense = nn.Dense(2, in_units=3, dtype="float64")
    dense.initialize(init.Normal(0.5))
    dense.weight.grad_req = "add"
    dense.weight.grad()[:] = 1.0
    x = nd.array([[1.0, 2.0, 3.0]], dtype="float64")
    with autograd.record():
        y = dense(x)
    y.backward()
    np.testing.assert_allclose(dense.weight.grad().asnumpy(),
                               1.0 + np.tile([1.0, 2.0, 3.0], (2, 1)))


def test_embedding_direct_write_clears_the_old_gradient():
    emb = nn.Embedding(4, 2, dtype="float64")
    emb.initialize()
    for idx in ([0, 1, 1], [3]):
        with autograd.record():
            y = emb(nd.array(idx))
        y.backward()
    expected = np.zeros((4, 2))
    expected[3] = 1
    np.testing.assert_array_equal(emb.weight.grad().asnumpy(), expected)


def test_head_gradient_defaults_to_ones():
    x = nd.array([[1.0, 2.0], [3.0, 4.0]], dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = x * x
    y.backward()
    g1 = x.grad.asnumpy()
    with autograd.record():
        z = (x * x).sum()
    z.backward()
    np.testing.assert_array_equal(g1, x.grad.asnumpy())


def test_mark_variables_and_autograd_backward():
    x = nd.array([1.0, 2.0], dtype="float64")
    g = nd.zeros((2,), dtype="float64")
    autograd.mark_variables([x], [g], grad_reqs="write")
    with autograd.record():
        y = x * x * x
    autograd.backward(y)
    np.testing.assert_allclose(g.asnumpy(), 3 * x.asnumpy() ** 2)


# --------------------------------------------------------------------------- optimizers
def _clip(g, c):
    return g if c is None else np.clip(g, -c, c)


def ref_step(name, o, w, g, state, t, lr, wd, rescale):
    """One update of MXNet's rule (the fused kernels of MXNet 1.9) in float64 NumPy."""
    c = o.get("clip_gradient")
    mom = o.get("momentum", 0.0)
    if name == "sgd":
        gc = _clip(rescale * g, c)
        if not mom:
            return (1 - lr * wd) * w - lr * gc, state
        state = mom * state - lr * wd * w - lr * gc
        return w + state, state
    if name == "nag":
        gc = _clip(rescale * g, c)
        if not mom:
            return (1 - lr * wd) * w - lr * gc, state
        m = mom * state
        new_w = w - m + (mom + 1) * (m - lr * (gc + wd * w))
        return new_w, m - lr * (gc + wd * w)
    if name == "adam":
        b1, b2, eps = o.get("beta1", 0.9), o.get("beta2", 0.999), o.get("epsilon", 1e-8)
        m, v = state
        gr = _clip(rescale * g + wd * w, c)
        m = b1 * m + (1 - b1) * gr
        v = b2 * v + (1 - b2) * gr * gr
        lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return w - lr_t * m / (np.sqrt(v) + eps), (m, v)
    if name == "rmsprop":
        g1, g2, eps = o.get("gamma1", 0.9), o.get("gamma2", 0.9), o.get("epsilon", 1e-8)
        gr = _clip(rescale * g + wd * w, c)
        cw = o.get("clip_weights")
        if not o.get("centered"):
            n = (1 - g1) * gr * gr + g1 * state
            new_w = w - lr * gr / np.sqrt(n + eps)
            return (new_w if not cw else np.clip(new_w, -cw, cw)), n
        n, gbar, delta = state
        n = (1 - g1) * gr * gr + g1 * n
        gbar = (1 - g1) * gr + g1 * gbar
        delta = g2 * delta - lr * gr / np.sqrt(n - gbar * gbar + eps)
        new_w = w + delta
        return (new_w if not cw else np.clip(new_w, -cw, cw)), (n, gbar, delta)
    if name == "adagrad":
        eps = o.get("eps", 1e-7)
        gc = _clip(rescale * g, c)
        h = state + gc * gc
        return w - lr * (gc / np.sqrt(h + eps) + wd * w), h
    raise AssertionError(name)


def _init_state(name, o, w):
    z = np.zeros_like(w)
    return {"sgd": z, "nag": z, "adam": (z, z), "adagrad": z,
            "rmsprop": (z, z, z) if o.get("centered") else z}[name]


OPTIMIZER_CASES = [
    ("sgd", {"learning_rate": 0.1}),
    ("sgd", {"learning_rate": 0.1, "wd": 0.05}),
    ("sgd", {"learning_rate": 0.1, "wd": 0.05, "clip_gradient": 0.3}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.05, "clip_gradient": 0.3}),
    ("nag", {"learning_rate": 0.1, "wd": 0.05, "clip_gradient": 0.3}),
    ("nag", {"learning_rate": 0.1, "momentum": 0.9}),
    ("nag", {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.05, "clip_gradient": 0.3}),
    ("adam", {"learning_rate": 0.01}),
    ("adam", {"learning_rate": 0.01, "wd": 0.05}),
    ("adam", {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6, "wd": 0.5,
              "clip_gradient": 0.3}),
    ("rmsprop", {"learning_rate": 0.01, "wd": 0.05}),
    ("rmsprop", {"learning_rate": 0.01, "wd": 0.5, "clip_gradient": 0.3, "gamma1": 0.8}),
    ("rmsprop", {"learning_rate": 0.01, "wd": 0.5, "clip_gradient": 0.3, "clip_weights": 0.9}),
    ("rmsprop", {"learning_rate": 0.01, "centered": True, "wd": 0.05}),
    ("rmsprop", {"learning_rate": 0.01, "centered": True, "gamma1": 0.8, "gamma2": 0.7,
                 "wd": 0.5, "clip_gradient": 0.3}),
    ("adagrad", {"learning_rate": 0.1}),
    ("adagrad", {"learning_rate": 0.1, "wd": 0.05, "clip_gradient": 0.3, "eps": 1e-5}),
]


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("name, opts", OPTIMIZER_CASES,
                         ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items())}"
                              for n, o in OPTIMIZER_CASES])
def test_optimizer_matches_mxnet_rule(name, opts, dtype, rtol):
    r = np.random.default_rng(40)
    batch_size = 4
    w = gluon.Parameter("w", shape=(3, 4), dtype=dtype, lr_mult=0.5, wd_mult=2.0)
    b = gluon.Parameter("b", shape=(4,), dtype=dtype)
    frozen = gluon.Parameter("frozen", shape=(2,), dtype=dtype, lr_mult=0.0)
    params = [w, b, frozen]
    start = {p.name: r.normal(0, 1, p.shape) for p in params}
    for p in params:
        p.initialize(init.Zero())
        p.set_data(nd.array(start[p.name], dtype=dtype))
    mult = {"w": (0.5, 2.0), "b": (1.0, 1.0), "frozen": (0.0, 1.0)}
    trainer = gluon.Trainer(params, name, dict(opts))
    lr = opts["learning_rate"]
    wd = opts.get("wd", 0.0)
    ref = {k: v.astype(np.float64) for k, v in start.items()}
    ref = {k: v.astype(dtype).astype(np.float64) for k, v in ref.items()}
    states = {k: _init_state(name, opts, v) for k, v in ref.items()}
    for t in range(1, 4):
        grads = {p.name: r.normal(0, 2.0, p.shape).astype(dtype).astype(np.float64)
                 for p in params}
        if "clip_gradient" in opts and t == 1:     # the clipping must actually engage
            scaled = np.abs(grads["w"] / batch_size)
            assert (scaled > opts["clip_gradient"]).any() and (scaled < opts["clip_gradient"]).any()
        with autograd.record():
            loss = sum((p.data() * nd.array(grads[p.name], dtype=dtype)).sum() for p in params)
        loss.backward()
        for p in params:
            np.testing.assert_array_equal(p.grad().asnumpy(), grads[p.name].astype(dtype))
        trainer.step(batch_size)
        for p in params:
            lm, wm = mult[p.name]
            ref[p.name], states[p.name] = ref_step(name, opts, ref[p.name], grads[p.name],
                                                   states[p.name], t, lr * lm, wd * wm,
                                                   1.0 / batch_size)
            got = p.data().asnumpy()
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_allclose(got, ref[p.name], rtol=rtol, atol=rtol,
                                       err_msg=f"{p.name} after step {t}")
    np.testing.assert_array_equal(frozen.data().asnumpy(), start["frozen"].astype(dtype))


def test_trainer_rescale_grad_option_and_learning_rate_change():
    p = gluon.Parameter("p", shape=(2,), dtype="float64")
    p.initialize(init.One())
    trainer = gluon.Trainer([p], "sgd", {"learning_rate": 0.5, "rescale_grad": 2.0})
    for lr, expected in ((0.5, 1 - 0.5 * 2.0 * 3.0 / 2), (0.1, None)):
        trainer.set_learning_rate(lr)
        assert trainer.learning_rate == lr
        before = p.data().asnumpy()
        with autograd.record():
            y = (p.data() * 3.0).sum()
        y.backward()
        trainer.step(2)
        np.testing.assert_allclose(p.data().asnumpy(), before - lr * 2.0 * 3.0 / 2, rtol=1e-12)
        if expected is not None:
            np.testing.assert_allclose(p.data().asnumpy(), expected, rtol=1e-12)
