"""Every built-in initializer against its formula, with real statistical bounds.

Arrays are large (≥ 256×784) and the seed is fixed. Means and variances must lie within
``K = 5`` standard errors of the formula's values, and a Kolmogorov–Smirnov test against the exact
distribution (scipy.stats) must give p > 1e-3. Initializers run through Gluon's path
(``Parameter.initialize(init=...)``), so dispatch and the all-or-nothing guard are exercised too.
Where it is cheap, the engine's vectorized draws are compared bit for bit with an independent
scalar implementation of the documented MXNet generator (GLUON_SEMANTICS §2).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import math

import numpy as np
import pytest
from scipy import stats

from app.engine import gluon, init, nd
from app.engine import random as engine_random
from app.engine.gluon.parameter import InitializerError

K = 5.0             # standard errors
KS_P = 1e-3
BIG = (512, 1024)


def draw(initializer, shape, dtype="float32", seed=0, name="stat_weight"):
    """Initialize a fresh Parameter with ``initializer`` (Gluon's path) and return its values."""
    engine_random.seed(seed)
    p = gluon.Parameter(name, shape=shape, dtype=dtype)
    p.initialize(init=initializer)
    out = p.data().asnumpy()
    assert out.shape == tuple(shape) and out.dtype == np.dtype(dtype)
    return out


def check_moments(a, mean, var, mu4=None):
    """Sample mean and variance within K standard errors (mu4: 4th central moment)."""
    x = a.astype(np.float64).ravel()
    n = x.size
    se_mean = math.sqrt(var / n)
    assert abs(x.mean() - mean) < K * se_mean, (x.mean(), mean, se_mean)
    mu4 = 3 * var * var if mu4 is None else mu4
    se_var = math.sqrt((mu4 - var * var) / n)
    assert abs(x.var() - var) < K * se_var, (x.var(), var, se_var)


def check_ks(a, dist):
    res = stats.kstest(a.astype(np.float64).ravel(), dist.cdf)
    assert res.pvalue > KS_P, f"KS statistic {res.statistic:.5f}, p = {res.pvalue:.2e}"


def check_uniform(a, bound, closed=False):
    lo, hi = np.float32(-bound), np.float32(bound)
    assert a.min() >= lo
    assert (a.max() <= hi) if closed else (a.max() < hi)
    check_moments(a, 0.0, bound * bound / 3, mu4=bound ** 4 / 5)
    check_ks(a, stats.uniform(loc=-bound, scale=2 * bound))


def check_normal(a, sigma, mean=0.0):
    check_moments(a, mean, sigma * sigma)
    n = a.size
    assert abs(a.astype(np.float64).std() - sigma) < K * sigma / math.sqrt(2 * n)
    check_ks(a, stats.norm(loc=mean, scale=sigma))


# --------------------------------------------------------------------------- Uniform, Normal
@pytest.mark.parametrize("scale", [0.07, 1.0, 2.5])
def test_uniform(scale):
    a = draw(init.Uniform(scale), BIG, seed=1)
    check_uniform(a, scale)


def test_uniform_default_scale_float64():
    a = draw(init.Uniform(), (256, 784), dtype="float64", seed=2)
    check_uniform(a, 0.07)


@pytest.mark.parametrize("sigma", [0.01, 0.02, 1.5])
def test_normal(sigma):
    a = draw(init.Normal(sigma), BIG, seed=3)
    check_normal(a, sigma)


def test_normal_0_02_on_256x784():
    a = draw(init.Normal(0.02), (256, 784), seed=4)
    check_normal(a, 0.02)


def test_normal_float64():
    a = draw(init.Normal(0.5), (256, 784), dtype="float64", seed=5)
    check_normal(a, 0.5)


@pytest.mark.parametrize("mean, stdev", [(0.0, 0.01), (0.5, 2.0)])
def test_trunc_norm(mean, stdev):
    a = draw(init.TruncNorm(mean=mean, stdev=stdev), BIG, seed=6).astype(np.float64)
    lo, hi = mean - 2 * stdev, mean + 2 * stdev
    assert a.min() >= np.float32(lo) and a.max() <= np.float32(hi)
    # the edges are reached: it is truncated, not squeezed
    assert a.min() < lo + 0.01 * stdev and a.max() > hi - 0.01 * stdev
    dist = stats.truncnorm(-2, 2, loc=mean, scale=stdev)
    check_moments(a, dist.mean(), dist.var(), mu4=dist.moment(4) - 4 * dist.mean() *
                  dist.moment(3) + 6 * dist.mean() ** 2 * dist.moment(2) - 3 * dist.mean() ** 4)
    check_ks(a, dist)


# --------------------------------------------------------------------------- Xavier, MSRAPrelu
def xavier_scale(shape, factor_type, magnitude):
    hw = float(np.prod(shape[2:])) if len(shape) > 2 else 1.0
    fan_in, fan_out = shape[1] * hw, shape[0] * hw
    factor = {"avg": (fan_in + fan_out) / 2.0, "in": fan_in, "out": fan_out}[factor_type]
    return math.sqrt(magnitude / factor)


@pytest.mark.parametrize("shape", [(256, 784), (64, 32, 3, 3)])
@pytest.mark.parametrize("factor_type", ["avg", "in", "out"])
@pytest.mark.parametrize("rnd_type", ["uniform", "gaussian"])
@pytest.mark.parametrize("magnitude", [3, 2.34])
def test_xavier(rnd_type, factor_type, magnitude, shape):
    a = draw(init.Xavier(rnd_type=rnd_type, factor_type=factor_type, magnitude=magnitude), shape,
             seed=7)
    scale = xavier_scale(shape, factor_type, magnitude)
    if rnd_type == "uniform":
        check_uniform(a, scale, closed=True)
    else:
        check_normal(a, scale)


def test_xavier_fans_of_a_conv_weight():
    # (64, 32, 3, 3): fan_in = 32·9 = 288, fan_out = 64·9 = 576
    assert xavier_scale((64, 32, 3, 3), "in", 3) == pytest.approx(math.sqrt(3 / 288))
    assert xavier_scale((64, 32, 3, 3), "out", 3) == pytest.approx(math.sqrt(3 / 576))
    assert xavier_scale((64, 32, 3, 3), "avg", 3) == pytest.approx(math.sqrt(3 / 432))
    a = draw(init.Xavier(factor_type="in"), (64, 32, 3, 3), seed=8)
    assert abs(a).max() <= np.float32(math.sqrt(3 / 288))
    assert abs(a).max() > 0.999 * math.sqrt(3 / 288)


def test_xavier_default_bound_on_256x784():
    assert math.sqrt(3 / 520) == pytest.approx(0.0759555, abs=1e-7)
    a = draw(init.Xavier(), (256, 784), seed=9)
    assert np.abs(a).max() <= np.float32(0.0759555) + 1e-7
    assert np.abs(a).max() > 0.0759555 - 2e-5
    b = draw(init.Xavier(), (4, 5), seed=9)
    assert np.abs(b).max() <= np.float32(math.sqrt(3 / 4.5))


def test_xavier_rejects_a_vector():
    p = gluon.Parameter("v_weight", shape=(5,))
    with pytest.raises(ValueError, match="Xavier initializer cannot be applied to vector "
                                         "v_weight. It requires at least 2D"):
        p.initialize(init=init.Xavier())


def test_msraprelu_std_on_256x784():
    std = math.sqrt(2.0 / (1 + 0.25 ** 2) / 520)
    assert std == pytest.approx(0.060166, abs=1e-6)
    a = draw(init.MSRAPrelu(), (256, 784), seed=10)
    check_normal(a, std)


@pytest.mark.parametrize("factor_type, slope", [("in", 0.0), ("out", 0.1)])
def test_msraprelu_variants_on_a_conv_weight(factor_type, slope):
    shape = (64, 32, 3, 3)
    a = draw(init.MSRAPrelu(factor_type=factor_type, slope=slope), shape, seed=11)
    check_normal(a, xavier_scale(shape, factor_type, 2.0 / (1 + slope ** 2)))


# --------------------------------------------------------------------------- Orthogonal
@pytest.mark.parametrize("shape", [(64, 784), (32, 16, 3, 3), (50, 50), (784, 64), (200, 3, 2)])
@pytest.mark.parametrize("rand_type", ["uniform", "normal"])
@pytest.mark.parametrize("scale", [1.414, 0.5])
def test_orthogonal(shape, rand_type, scale):
    w = draw(init.Orthogonal(scale=scale, rand_type=rand_type), shape, seed=12)
    nout, nin = shape[0], int(np.prod(shape[1:]))
    m = w.reshape(nout, nin).astype(np.float64)
    if nout <= nin:
        np.testing.assert_allclose(m @ m.T, scale ** 2 * np.eye(nout), atol=2e-5 * scale ** 2)
    if nout >= nin:
        np.testing.assert_allclose(m.T @ m, scale ** 2 * np.eye(nin), atol=2e-5 * scale ** 2)


def test_orthogonal_draws_and_svd_match_the_reference():
    nout, nin = 30, 40      # 1200 values: 19 generator states
    w = draw(init.Orthogonal(), (nout, nin), seed=13)
    tmp = ref_uniform(13, -1.0, 1.0, nout * nin).reshape(nout, nin)
    u, _s, v = np.linalg.svd(tmp, full_matrices=False)
    np.testing.assert_allclose(w, (1.414 * v).astype(np.float32), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- constants
def test_zero_one():
    np.testing.assert_array_equal(draw(init.Zero(), (16, 9)), 0)
    np.testing.assert_array_equal(draw(init.One(), (16, 9)), 1)
    np.testing.assert_array_equal(draw(init.One(), (3, 4), dtype="float64"), 1)


@pytest.mark.parametrize("value, expected", [
    (3.5, np.full((4, 5), 3.5)),
    (-2, np.full((4, 5), -2.0)),
    (nd.array(np.arange(5.0).reshape(1, 5)), np.tile(np.arange(5.0), (4, 1))),
    (nd.array(np.arange(20.0).reshape(4, 5)), np.arange(20.0).reshape(4, 5)),
    (np.arange(4.0).reshape(4, 1), np.tile(np.arange(4.0)[:, None], (1, 5))),
])
def test_constant(value, expected):
    np.testing.assert_array_equal(draw(init.Constant(value), (4, 5)), expected.astype(np.float32))


def test_constant_dumps_array_value():
    c = init.Constant(nd.array([[1.0, 2.0]]))
    name, kw = json.loads(c.dumps())
    assert name == "constant" and kw == {"value": [[1.0, 2.0]]}


def ref_bilinear(shape):
    """MXNet's Bilinear._init_weight, element by element."""
    weight = np.zeros(int(np.prod(shape)), dtype="float32")
    f = np.ceil(shape[3] / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    for i in range(int(np.prod(shape))):
        x = i % shape[3]
        y = (i // shape[3]) % shape[2]
        weight[i] = (1 - abs(x / f - c)) * (1 - abs(y / f - c))
    return weight.reshape(shape)


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 1, 5, 5), (3, 1, 3, 6), (1, 2, 7, 1)])
def test_bilinear(shape):
    np.testing.assert_array_equal(draw(init.Bilinear(), shape), ref_bilinear(shape))


def test_bilinear_4x4_kernel_values():
    w = draw(init.Bilinear(), (1, 1, 4, 4))[0, 0]
    k = np.array([0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(w, np.outer(k, k), rtol=1e-7)


@pytest.mark.parametrize("hidden, forget_bias", [(5, 1.0), (3, 2.5), (1, -1.0)])
def test_lstm_bias(hidden, forget_bias):
    b = draw(init.LSTMBias(forget_bias=forget_bias), (4 * hidden,), name="lstm_i2h_bias")
    expected = np.zeros(4 * hidden, np.float32)
    expected[hidden:2 * hidden] = forget_bias
    np.testing.assert_array_equal(b, expected)


# --------------------------------------------------------------------------- names and dumps
@pytest.mark.parametrize("name, cls", [
    ("zeros", init.Zero), ("ones", init.One), ("xavier", init.Xavier),
    ("uniform", init.Uniform), ("normal", init.Normal), ("msraprelu", init.MSRAPrelu),
    ("Zeros", init.Zero), ("ONES", init.One), ("Xavier", init.Xavier),
    ("UNIFORM", init.Uniform), ("Normal", init.Normal), ("MSRAPrelu", init.MSRAPrelu),
    ("zero", init.Zero), ("one", init.One), ("constant", init.Constant),
    ("orthogonal", init.Orthogonal), ("bilinear", init.Bilinear), ("lstmbias", init.LSTMBias),
    ("TruncNorm", init.TruncNorm),
])
def test_create_by_name_is_case_insensitive(name, cls):
    assert type(init.create(name)) is cls


@pytest.mark.parametrize("name", ["zeros", "ones", "xavier", "uniform", "normal", "msraprelu",
                                  "Xavier", "MSRAPRELU"])
def test_string_initializer_through_gluon(name):
    a = draw(name, (64, 48), seed=14)
    expected = draw(init.create(name), (64, 48), seed=14)
    np.testing.assert_array_equal(a, expected)


def test_unknown_name_is_rejected():
    with pytest.raises(AssertionError, match="foo is not registered. Please register with "
                                             "initializer.register first"):
        init.create("foo")


@pytest.mark.parametrize("initializer, text", [
    (init.Uniform(), '["uniform", {"scale": 0.07}]'),
    (init.Uniform(0.5), '["uniform", {"scale": 0.5}]'),
    (init.Normal(), '["normal", {"sigma": 0.01}]'),
    (init.Xavier(), '["xavier", {"rnd_type": "uniform", "factor_type": "avg", "magnitude": 3}]'),
    (init.Xavier("gaussian", "in", 2), '["xavier", {"rnd_type": "gaussian", "factor_type": "in", '
                                       '"magnitude": 2}]'),
    (init.MSRAPrelu(), '["msraprelu", {"factor_type": "avg", "slope": 0.25}]'),
    (init.Zero(), '["zero", {}]'),
    (init.One(), '["one", {}]'),
    (init.Constant(2.5), '["constant", {"value": 2.5}]'),
    (init.Orthogonal(), '["orthogonal", {"scale": 1.414, "rand_type": "uniform"}]'),
    (init.TruncNorm(), '["truncnorm", {"mean": 0.0, "stdev": 0.01}]'),
    (init.LSTMBias(), '["lstmbias", {"forget_bias": 1.0}]'),
    (init.Bilinear(), '["bilinear", {}]'),
])
def test_dumps_and_round_trip(initializer, text):
    assert initializer.dumps() == text
    again = init.create(text)
    assert again == initializer and type(again) is type(initializer)
    assert again.dumps() == text


# --------------------------------------------------------------------------- scalar references
def _ref_states(seed, n):
    nthread = min(math.ceil(n / 64), 1024)
    step = math.ceil(n / nthread)
    for t in range(nthread):
        count = max(0, min((t + 1) * step, n) - t * step)
        yield np.random.RandomState((seed * 127 + t) % 2 ** 32), count


def _canonical(raw):
    u = np.float32(raw) / np.float32(2.0 ** 32)
    return np.nextafter(np.float32(1), np.float32(0)) if u >= 1 else u


def ref_uniform(seed, low, high, n):
    """The documented MXNet CPU uniform, one element at a time."""
    lo, hi = np.float32(low), np.float32(high)
    out = []
    for rs, count in _ref_states(seed, n):
        raws = rs.randint(0, 2 ** 32, size=count, dtype=np.uint32)
        out += [lo + (hi - lo) * _canonical(int(r)) for r in raws]
    return np.array(out, dtype=np.float32)


def _libm_logf():
    name = ctypes.util.find_library("m")
    if not name:
        return None
    try:
        f = ctypes.CDLL(name).logf
    except (OSError, AttributeError):
        return None
    f.restype, f.argtypes = ctypes.c_float, [ctypes.c_float]
    return f


def ref_normal(seed, loc, scale, n, logf):
    """libstdc++'s Marsaglia polar with a fresh distribution per element, one at a time."""
    mu, sd = np.float32(loc), np.float32(scale)
    out = []
    for rs, count in _ref_states(seed, n):
        raws = iter(rs.randint(0, 2 ** 32, size=4 * count + 64, dtype=np.uint32).tolist())
        for _ in range(count):
            while True:
                x = np.float32(np.float32(2) * _canonical(next(raws)) - np.float32(1))
                y = np.float32(np.float32(2) * _canonical(next(raws)) - np.float32(1))
                r2 = np.float32(x * x + y * y)
                if 0 < r2 <= 1:
                    break
            mult = np.sqrt(np.float32(np.float32(-2) * np.float32(logf(r2)) / r2))
            out.append(np.float32(np.float32(y * mult) * sd) + mu)
    return np.array(out, dtype=np.float32)


@pytest.mark.parametrize("shape", [(4, 5), (20, 30), (10, 100), (7, 1, 3)])
@pytest.mark.parametrize("scale", [0.07, 1.0])
def test_uniform_matches_the_scalar_reference(shape, scale):
    n = int(np.prod(shape))
    a = draw(init.Uniform(scale), shape, seed=21)
    np.testing.assert_array_equal(a.ravel(), ref_uniform(21, -scale, scale, n))


def test_xavier_matches_the_scalar_reference():
    shape = (24, 50)
    a = draw(init.Xavier(), shape, seed=22)
    s = math.sqrt(3 / 37)
    np.testing.assert_array_equal(a.ravel(), ref_uniform(22, -s, s, 1200))


def test_uniform_draw_windows_follow_the_stream():
    # two draws in a row continue each state's stream (states persist across ops)
    engine_random.seed(23)
    first = engine_random.uniform(-1.0, 1.0, shape=(10,))
    second = engine_random.uniform(-1.0, 1.0, shape=(10,))
    np.testing.assert_array_equal(np.concatenate([first, second]), ref_uniform(23, -1, 1, 20))


@pytest.mark.parametrize("shape, sigma", [((4, 5), 0.01), ((10, 30), 1.0), ((3, 100), 0.5)])
def test_normal_matches_the_scalar_reference(shape, sigma):
    logf = _libm_logf()
    if logf is None:
        pytest.skip("no C logf to build the reference with")
    n = int(np.prod(shape))
    a = draw(init.Normal(sigma), shape, seed=24)
    np.testing.assert_array_equal(a.ravel(), ref_normal(24, 0.0, sigma, n, logf))


# --------------------------------------------------------------------------- the guard
class _Partial(init.Initializer):
    def _init_weight(self, _, arr):
        arr[: arr.shape[0] // 2] = 1.0


class _Writes(init.Initializer):
    def __init__(self, value, draw_first=False):
        super().__init__(value=value)
        self.value = value
        self.draw_first = draw_first

    def _init_weight(self, _, arr):
        if self.draw_first:
            engine_random.uniform(-1.0, 1.0, out=arr._data)
        else:
            arr[:] = 0.5
        arr[1, 2] = self.value


class _Nothing(init.Initializer):
    def _init_weight(self, _, arr):
        pass


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("bad, what", [
    (_Partial(), "unwritten"), (_Nothing(), "unwritten"),
    (_Writes(float("nan")), "NaN or infinite"), (_Writes(float("inf")), "NaN or infinite"),
    (_Writes(-float("inf"), draw_first=True), "NaN or infinite"),
    (_Writes(float("nan"), draw_first=True), "NaN or infinite"),
])
def test_guard_rejects_bad_initializer_on_a_fresh_parameter(bad, what, dtype):
    p = gluon.Parameter("guarded_weight", shape=(4, 5), dtype=dtype)
    engine_random.seed(31)
    state = engine_random.getstate()
    with pytest.raises(InitializerError, match=what) as info:
        p.initialize(init=bad)
    msg = str(info.value)
    assert type(bad).__name__ in msg and "'guarded_weight'" in msg
    assert info.value.parameter == "guarded_weight" and info.value.initializer is bad
    assert not p.is_initialized
    with pytest.raises(RuntimeError, match="has not been initialized"):
        p.data()
    # the random stream was rewound: the next draw is the one the failed attempt would have taken
    after = engine_random.uniform(-1.0, 1.0, shape=(30,))
    engine_random.setstate(state)
    np.testing.assert_array_equal(after, engine_random.uniform(-1.0, 1.0, shape=(30,)))


@pytest.mark.parametrize("bad", [_Partial(), _Writes(float("nan"), draw_first=True)])
def test_guard_keeps_previous_values_on_force_reinit(bad):
    p = gluon.Parameter("kept_weight", shape=(4, 5))
    p.initialize(init=init.Normal(1.0))
    data, grad = p.data(), p.grad()
    before = data.asnumpy()
    with pytest.raises(InitializerError, match="kept_weight"):
        p.initialize(init=bad, force_reinit=True)
    assert p.data() is data and p.grad() is grad
    np.testing.assert_array_equal(p.data().asnumpy(), before)


def test_guard_accepts_a_complete_custom_initializer():
    class Full(init.Initializer):
        def _init_weight(self, _, arr):
            arr[:] = 0.25

    np.testing.assert_array_equal(draw(Full(), (3, 3)), 0.25)
